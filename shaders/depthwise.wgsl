// Depthwise conv2d (groups = Cin) with channel multiplier `mult` = Cout / Cin.
// (activation.wgsl is concatenated in front: it provides ACT and activate().)
//
// input:  [N, Cin, H, W]
// weight: [Cin·mult, 1, kh, kw]; output channel co reads input channel co / mult
// bias:   [Cin·mult] (read only when HAS_BIAS)
// out:    [N, Cin·mult, Ho, Wo]
//
// Each invocation computes four horizontally adjacent outputs (n, co, oy, 4q .. 4q+3) in one
// vec4: every weight tap is loaded once and applied to four inputs. The work is a 1-D range
// of (n, co, oy, q) in that order (q fastest, so neighbouring invocations read neighbouring
// input), folded into y/z like the other kernels. Padding contributes 0·w (not skipped), so
// non-finite weights propagate exactly as in the reference.

override HAS_BIAS: bool = false;

struct DepthwiseParams {
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
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
    mult: u32,
    quads: u32,
    total: u32,
    alpha_bits: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: DepthwiseParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

fn tap(row: u32, row_ok: bool, ix: i32) -> f32 {
    if (row_ok && ix >= 0 && ix < i32(params.w)) {
        return input[row + u32(ix)];
    }
    return 0.0;
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (idx >= params.total) {
        return;
    }
    let q = idx % params.quads;
    var rest = idx / params.quads;
    let oy = rest % params.h_out;
    rest = rest / params.h_out;
    let co = rest % params.c_out;
    let n = rest / params.c_out;
    let ci = co / params.mult;

    let plane = (n * params.c_in + ci) * params.h * params.w;
    let ox0 = 4u * q;
    let sw = i32(params.stride_w);
    let x0 = i32(ox0 * params.stride_w) - i32(params.pad_left);
    let wbase = co * params.kh * params.kw;
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < params.kh; i++) {
        let iy = i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top);
        let row_ok = iy >= 0 && iy < i32(params.h);
        let row = plane + u32(max(iy, 0)) * params.w;
        for (var j = 0u; j < params.kw; j++) {
            let wv = weight[wbase + i * params.kw + j];
            let ix = x0 + i32(j * params.dil_w);
            let xv = vec4<f32>(tap(row, row_ok, ix), tap(row, row_ok, ix + sw),
                               tap(row, row_ok, ix + 2 * sw), tap(row, row_ok, ix + 3 * sw));
            acc += xv * wv;
        }
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = bias[co];
    }
    let alpha = bitcast<f32>(params.alpha_bits);
    let dst = ((n * params.c_out + co) * params.h_out + oy) * params.w_out;
    for (var e = 0u; e < 4u; e++) {
        if (ox0 + e < params.w_out) {
            out[dst + ox0 + e] = activate(acc[e] + add, alpha);
        }
    }
}
