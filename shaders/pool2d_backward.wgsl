// max_pool2d / avg_pool2d backward (PyTorch autograd: dilation for max, ceil_mode,
// divisor_override for avg; pool2d.wgsl's windows), two entry points. (dtype_f32.wgsl or dtype_f16.wgsl in front: input, grad_output and grad_input hold
// `elem`; sums in f32.)
//
// input, grad_input: [P, H, W] with P = N·C planes; grad_output, index: [P, Ho, Wo].
// Window of (oy, ox): rows oy·sh − pt + i·dh (i < kh), columns ox·sw − pl + j·dw (j < kw).
//
// `argmax` (max pooling), one invocation per output: the flat in-plane index y·W + x of the
//   window's maximum, as PyTorch picks it: walking the window row by row, a value replaces
//   the running maximum when it is greater or NaN (so ties keep the first, NaNs the last);
//   starting from −∞ at the window's first in-image position (on its dilated grid). Long windows run in passes
//   (as pool2d.wgsl: `Pass`), the running maximum kept in `part` and its index in `index`.
// `gather`, one invocation per input element (p, y, x): the sum over the windows that
//   contain it (those whose span reaches it and have a tap on it), in row-major order of
//   (oy, ox) as PyTorch adds them, of
//   MODE_MAX: grad_output[p, oy, ox] where index[p, oy, ox] is this element;
//   MODE_AVG: grad_output[p, oy, ox] / divisor, the divisor as the forward's
//             (divisor_override; the window clipped to the padded input; or, without
//             COUNT_PAD, its in-image positions).
//   Each element is written once, by one fixed-order sum: bit-identical run to run.

const MODE_MAX: u32 = 0u;
const MODE_AVG: u32 = 1u;

override MODE: u32 = MODE_MAX;
override COUNT_PAD: bool = true;

struct PoolBackParams {
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    h_out: u32,
    w_out: u32,
    // invocations: outputs (argmax) or input elements (grad_input)
    total: u32,
    // argmax walks the window in units of (row, chunk of col_chunk columns): chunks per row
    col_chunk: u32,
    chunks: u32,
    dil_h: u32,
    dil_w: u32,
    // divisor_override, 0: none
    divisor: u32,
    // the padded input's end (H + bottom padding, W + right padding)
    h_end: u32,
    w_end: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Pass {
    begin: u32,
    end: u32,
    last: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: PoolBackParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read> grad_output: array<elem>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<elem>;
@group(0) @binding(4) var<storage, read_write> index: array<u32>;
@group(0) @binding(5) var<uniform> range: Pass;
// argmax's running maximum between passes (unused with one pass)
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

const WG: u32 = 256u;

// avg's divisor for the window whose first row and column are y0, x0 (pool2d.wgsl's).
fn avg_divisor(y0: i32, x0: i32) -> f32 {
    if (params.divisor != 0u) {
        return f32(params.divisor);
    }
    if (COUNT_PAD) {
        let rows = min(i32(params.h_end), y0 + i32(params.kh)) - y0;
        let cols = min(i32(params.w_end), x0 + i32(params.kw)) - x0;
        return f32(rows * cols);
    }
    let rows = min(i32(params.h), y0 + i32(params.kh)) - max(0, y0);
    let cols = min(i32(params.w), x0 + i32(params.kw)) - max(0, x0);
    return f32(max(rows, 0) * max(cols, 0));
}

// The windows o (lo ≤ o < hi) along one axis whose span reaches position t (the element's
// position plus the leading padding): o·s ≤ t ≤ o·s + (k − 1)·d, o < out.
fn windows(t: u32, k: u32, d: u32, s: u32, out: u32) -> vec2<u32> {
    let reach = (k - 1u) * d;
    var lo = 0u;
    if (t > reach) {
        lo = (t - reach + s - 1u) / s;
    }
    return vec2<u32>(lo, min(t / s + 1u, out));
}

// The first in-image position of a window starting at `start` on a grid of step `d`.
fn first_inside(start: i32, d: u32) -> u32 {
    if (start >= 0) {
        return u32(start);
    }
    let behind = u32(-start);
    return (behind + d - 1u) / d * d - behind;
}

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
}

@compute @workgroup_size(256, 1, 1)
fn argmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_id(wid, nwg, lid);
    if (idx >= params.total) {
        return;
    }
    let ox = idx % params.w_out;
    let rest = idx / params.w_out;
    let oy = rest % params.h_out;
    let plane = (rest / params.h_out) * params.h * params.w;
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
    // −∞ made at run time (Dawn refuses non-finite constant expressions)
    var neg_inf_bits = 0xff800000u;
    var best = bitcast<f32>(neg_inf_bits);
    var at = first_inside(y0, params.dil_h) * params.w + first_inside(x0, params.dil_w);
    if (range.begin > 0u) {
        best = part[idx];
        at = index[idx];
    }
    let u_end = min(range.end, params.kh * params.chunks);
    for (var u = range.begin; u < u_end; u++) {
        let i = u / params.chunks;
        let y = y0 + i32(i * params.dil_h);
        if (y < 0 || y >= i32(params.h)) {
            continue;
        }
        let j0 = (u - i * params.chunks) * params.col_chunk;
        let j1 = min(params.kw, j0 + params.col_chunk);
        for (var j = j0; j < j1; j++) {
            let x = x0 + i32(j * params.dil_w);
            if (x < 0 || x >= i32(params.w)) {
                continue;
            }
            let q = u32(y) * params.w + u32(x);
            let v = f32(input[plane + q]);
            // NaN tested on the bits: WGSL lets compilers assume `v != v` is false
            if (v > best || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
                best = v;
                at = q;
            }
        }
    }
    index[idx] = at;
    if (range.last == 0u) {
        part[idx] = best;
    }
}

@compute @workgroup_size(256, 1, 1)
fn gather(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_id(wid, nwg, lid);
    if (idx >= params.total) {
        return;
    }
    let x = idx % params.w;
    let rest = idx / params.w;
    let y = rest % params.h;
    let p = rest / params.h;
    let me = y * params.w + x;
    let out_plane = p * params.h_out * params.w_out;
    let rows = windows(y + params.pad_top, params.kh, params.dil_h, params.stride_h, params.h_out);
    let cols = windows(x + params.pad_left, params.kw, params.dil_w, params.stride_w, params.w_out);
    var sum = 0.0;
    for (var oy = rows.x; oy < rows.y; oy++) {
        // a window holds this row only where the row is one of its (dilated) taps
        if ((y + params.pad_top - oy * params.stride_h) % params.dil_h != 0u) {
            continue;
        }
        for (var ox = cols.x; ox < cols.y; ox++) {
            if ((x + params.pad_left - ox * params.stride_w) % params.dil_w != 0u) {
                continue;
            }
            let o = out_plane + oy * params.w_out + ox;
            if (MODE == MODE_MAX) {
                if (index[o] == me) {
                    sum += f32(grad_output[o]);
                }
            } else {
                let wy = i32(oy * params.stride_h) - i32(params.pad_top);
                let wx = i32(ox * params.stride_w) - i32(params.pad_left);
                sum += f32(grad_output[o]) / avg_divisor(wy, wx);
            }
        }
    }
    grad_input[idx] = elem(sum);
}
