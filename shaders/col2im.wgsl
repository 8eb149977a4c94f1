// col2im for conv_transpose2d, as a gather: each output element is written by exactly one
// invocation, which sums the column entries that land on it (deterministic, no atomics).
// (activation.wgsl and transposed_taps.wgsl are concatenated in front: ACT and activate(),
// first_tap().)
//
// col: [imgs, Cout·kh·kw, H·W] for the images img0 .. img0 + imgs of this chunk, row
//      (co·kh + i)·kw + j holding, at input pixel (iy, ix), the contribution of that input
//      pixel to output (iy·sh − pt + i·dh, ix·sw − pl + j·dw) (the GEMM Wᵀ·X of gemm.wgsl).
// out: [N, Cout, Ho, Wo] (Y_NHWC: stored [N, Ho, Wo, Cout]); this dispatch writes images
//      img0 .. img0 + imgs.
// out[n, co, oy, ox] = bias[co] + Σ_{i, j} col[n − img0, (co·kh + i)·kw + j, iy·W + ix] over the
//      taps with oy + pt − i·dh = iy·sh (and likewise x) for an input pixel (iy, ix).
// Only the taps that land are visited (transposed_taps.wgsl: from the first, every step-th,
// the input row stepped down), in increasing (i, j): a 7×7 at stride 2 visits 16 of its 49
// taps at most, with no division per tap.

override HAS_BIAS: bool = false;
override Y_NHWC: bool = false;

struct Col2imParams {
    c_out: u32,
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_top: u32,
    pad_left: u32,
    h_out: u32,
    w_out: u32,
    img0: u32,
    total: u32,
    alpha_bits: u32,
    // taps i, i + step_h, … land on the same output rows: step_h = sh / gcd(sh, dh)
    step_h: u32,
    step_w: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Col2imParams;
@group(0) @binding(1) var<storage, read> col: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // idx runs over this chunk's outputs: ((n − img0)·Cout + co)·Ho·Wo + oy·Wo + ox.
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (idx >= params.total) {
        return;
    }
    let ox = idx % params.w_out;
    var rest = idx / params.w_out;
    let oy = rest % params.h_out;
    rest = rest / params.h_out;
    let co = rest % params.c_out;
    let n_local = rest / params.c_out;

    let hw = params.h * params.w;
    let taps = params.kh * params.kw;
    let row0 = (n_local * params.c_out + co) * taps;
    let oy_p = oy + params.pad_top;
    let ox_p = ox + params.pad_left;
    let i0 = first_tap(oy_p, params.stride_h, params.dil_h, params.step_h, params.kh);
    let j0 = first_tap(ox_p, params.stride_w, params.dil_w, params.step_w, params.kw);
    let down_h = i32(params.dil_h * params.step_h / params.stride_h);
    let down_w = i32(params.dil_w * params.step_w / params.stride_w);
    // the input row and column of taps i0 and j0 (−1: before the input, as every later tap)
    let ty = i32(oy_p) - i32(i0 * params.dil_h);
    let tx = i32(ox_p) - i32(j0 * params.dil_w);
    // (divided unsigned: a signed / of a negative value is undefined in GLSL)
    var iy = select(-1, i32(u32(max(ty, 0)) / params.stride_h), ty >= 0);
    let ix0 = select(-1, i32(u32(max(tx, 0)) / params.stride_w), tx >= 0);
    var acc = 0.0;
    for (var i = i0; i < params.kh && iy >= 0; i += params.step_h) {
        if (u32(iy) < params.h) {
            let row = (row0 + i * params.kw) * hw + u32(iy) * params.w;
            var ix = ix0;
            for (var j = j0; j < params.kw && ix >= 0; j += params.step_w) {
                if (u32(ix) < params.w) {
                    acc += col[row + j * hw + u32(ix)];
                }
                ix -= down_w;
            }
        }
        iy -= down_h;
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = bias[co];
    }
    let first = params.img0 * params.c_out * params.h_out * params.w_out;
    var at = first + idx;
    if (Y_NHWC) {
        at = first + ((n_local * params.h_out + oy) * params.w_out + ox) * params.c_out + co;
    }
    out[at] = activate(acc + add, bitcast<f32>(params.alpha_bits));
}
