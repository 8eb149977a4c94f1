// conv_transpose2d's output phases (gemm.wgsl, B_TRANSPOSED) recomputed where they may have
// formed a product the op does not have. The op is a scatter: output (oy, ox) sums
// x[iy, ix]·w[i, j] over the input pixels and taps with iy·sh − pt + i·dh = oy (and likewise x),
// 0 ≤ iy < H, 0 ≤ ix < W. The phases' GEMM reads a tap whose input row or column lies outside the
// input as 0 and still multiplies it by the tap's weight: 0·±∞ = NaN where the scatter adds
// nothing. Such a product can only turn the output NaN (0·w is 0 for a finite w; NaN survives
// the bias and every activation), and only on the border band: the rows before
// (kh − 1)·dh − pt or from sh·H − pt on, the columns likewise. This pass, after the GEMM, reads
// each band element and, where it is NaN, sums the scatter's own terms (+ bias, activation):
// NaN and ±∞ land where the scatter puts them, at the cost of one read of the band when none is.
// (dtype_f32.wgsl or dtype_f16.wgsl and activation.wgsl in front.)
//
// input  [N, Cin, H, W] (elem; X_NHWC: stored [N, H, W, Cin])
// weight [Cin, Cout/G, kh, kw] (elem)
// out    [N, Cout, Ho, Wo] (elem; Y_NHWC: stored [N, Ho, Wo, Cout]), written by the GEMM
// part   f32 per band element: the running sum of the passes before the last (Pass)
//
// Band element e (0 ≤ e < total) of plane p = e / plane (p = n·Cout + co), r = e mod plane: the
// edge rows [0, top) and [bottom, Ho) whole first (r < (top + Ho − bottom)·Wo), then the
// columns [0, left) and [right, Wo) of the rows top .. bottom.

struct BorderParams {
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    groups: u32,
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
    // taps i, i + step_y, … land on the same output rows: step_y = sh / gcd(sh, dh)
    step_y: u32,
    step_x: u32,
    // the band (top ≤ bottom, left ≤ right) and its elements per plane
    top: u32,
    bottom: u32,
    left: u32,
    right: u32,
    plane: u32,
    // band elements of this dispatch (N·Cout·plane)
    total: u32,
    alpha_bits: u32,
}

// The steps begin .. min(end, taps_y·taps_x·Cin/G) of the sum this dispatch adds (the loop in
// main). Some drivers stop every loop of an invocation after 65535 iterations in total (Mesa
// ≤ 22's llvmpipe), so the host splits a long sum into passes of bounded loop turns: each adds
// its terms onto the running sum in `part`, and the last writes `out`. Every pass finds the
// same NaN elements, as only the last writes them.
struct Pass {
    begin: u32,
    end: u32,
    last: u32,
    // gemm.wgsl's A window width (unused here)
    a_width: u32,
}

@group(0) @binding(0) var<uniform> params: BorderParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read> weight: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;
@group(0) @binding(5) var<uniform> range: Pass;
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

override HAS_BIAS: bool = false;
override X_NHWC: bool = false;
override Y_NHWC: bool = false;

const WG: u32 = 64u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (e >= params.total) {
        return;
    }
    let pl = e / params.plane;
    var r = e - pl * params.plane;
    let co = pl % params.c_out;
    let n = pl / params.c_out;
    let edge_rows = params.top + params.h_out - params.bottom;
    var oy: u32;
    var ox: u32;
    if (r < edge_rows * params.w_out) {
        let ri = r / params.w_out;
        ox = r - ri * params.w_out;
        oy = select(params.bottom + ri - params.top, ri, ri < params.top);
    } else {
        r -= edge_rows * params.w_out;
        let cols = params.left + params.w_out - params.right;
        let mi = r / cols;
        let c = r - mi * cols;
        oy = params.top + mi;
        ox = select(params.right + c - params.left, c, c < params.left);
    }
    var at = ((n * params.c_out + co) * params.h_out + oy) * params.w_out + ox;
    if (Y_NHWC) {
        at = ((n * params.h_out + oy) * params.w_out + ox) * params.c_out + co;
    }
    // only a NaN can be the GEMM's 0·∞ (and only the last pass writes out)
    if (!is_nan(f32(out[at]))) {
        return;
    }

    let per_group = params.c_in / params.groups;
    let m_per_group = params.c_out / params.groups;
    let gc = co / m_per_group;
    let m = co - gc * m_per_group;
    let ci0 = gc * per_group;
    let chan_step = select(params.h * params.w, 1u, X_NHWC);
    let px = select(1u, params.c_in, X_NHWC);
    let x_image = select(n * params.c_in * params.h * params.w, n * params.h * params.w * params.c_in, X_NHWC);
    let oy_p = oy + params.pad_top;
    let ox_p = ox + params.pad_left;
    let i0 = first_tap(oy_p, params.stride_h, params.dil_h, params.step_y, params.kh);
    let j0 = first_tap(ox_p, params.stride_w, params.dil_w, params.step_x, params.kw);
    let taps = params.kh * params.kw;
    // The terms in one loop over k = (a·taps_x + b)·(Cin/G) + cl, tap (i0 + a·step_y,
    // j0 + b·step_x) and channel cl, from range.begin on: a tap past the kernel, before the
    // input or past it adds nothing. One loop, so that passes split any kernel and channel
    // count under the loop budget (the counters carry; no division per turn).
    let taps_x = (params.kw + params.step_x - 1u) / params.step_x;
    let taps_y = (params.kh + params.step_y - 1u) / params.step_y;
    let k_end = min(range.end, taps_y * taps_x * per_group);
    let t0 = range.begin / per_group;
    var cl = range.begin - t0 * per_group;
    var a = t0 / taps_x;
    var b = t0 - a * taps_x;
    var acc = 0.0;
    for (var k = range.begin; k < k_end; k++) {
        let i = i0 + a * params.step_y;
        let j = j0 + b * params.step_x;
        let ty = i32(oy_p) - i32(i * params.dil_h);
        let tx = i32(ox_p) - i32(j * params.dil_w);
        // (ty, tx ≥ 0 tested before the unsigned division)
        if (i < params.kh && j < params.kw && ty >= 0 && tx >= 0) {
            let iy = u32(ty) / params.stride_h;
            let ix = u32(tx) / params.stride_w;
            if (iy < params.h && ix < params.w) {
                let c = ci0 + cl;
                let xv = f32(input[x_image + c * chan_step + (iy * params.w + ix) * px]);
                acc += xv * f32(weight[(c * m_per_group + m) * taps + i * params.kw + j]);
            }
        }
        cl += 1u;
        if (cl == per_group) {
            cl = 0u;
            b += 1u;
            if (b == taps_x) {
                b = 0u;
                a += 1u;
            }
        }
    }
    if (range.begin > 0u) {
        acc = part[e] + acc;
    }
    if (range.last == 0u) {
        part[e] = acc;
        return;
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = f32(bias[co]);
    }
    out[at] = elem(activate(acc + add, bitcast<f32>(params.alpha_bits)));
}
