// col2im for conv_transpose2d, as a gather: each output element is written by exactly one
// invocation, which sums the column entries that land on it (deterministic, no atomics).
// (activation.wgsl is concatenated in front: it provides ACT and activate().)
//
// col: [imgs, Cout·kh·kw, H·W] for the images img0 .. img0 + imgs of this chunk, row
//      (co·kh + i)·kw + j holding, at input pixel (iy, ix), the contribution of that input
//      pixel to output (iy·sh − pt + i·dh, ix·sw − pl + j·dw) (the GEMM Wᵀ·X of gemm.wgsl).
// out: [N, Cout, Ho, Wo] (Y_NHWC: stored [N, Ho, Wo, Cout]); this dispatch writes images
//      img0 .. img0 + imgs.
// out[n, co, oy, ox] = bias[co] + Σ_{i, j} col[n − img0, (co·kh + i)·kw + j, iy·W + ix] over the
//      taps with oy + pt − i·dh = iy·sh (and likewise x) for an input pixel (iy, ix).

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
    var acc = 0.0;
    for (var i = 0u; i < params.kh; i++) {
        let ty = i32(oy + params.pad_top) - i32(i * params.dil_h);
        // (ty ≥ 0 before the remainder: u32, as GLSL leaves a signed % undefined)
        if (ty < 0 || u32(ty) % params.stride_h != 0u) {
            continue;
        }
        let iy = u32(ty) / params.stride_h;
        if (iy >= params.h) {
            continue;
        }
        for (var j = 0u; j < params.kw; j++) {
            let tx = i32(ox + params.pad_left) - i32(j * params.dil_w);
            if (tx < 0 || u32(tx) % params.stride_w != 0u) {
                continue;
            }
            let ix = u32(tx) / params.stride_w;
            if (ix >= params.w) {
                continue;
            }
            acc += col[(row0 + i * params.kw + j) * hw + iy * params.w + ix];
        }
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
