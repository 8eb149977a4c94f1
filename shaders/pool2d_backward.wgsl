// max_pool2d / avg_pool2d backward (PyTorch autograd: dilation for max, ceil_mode,
// divisor_override for avg; pool2d.wgsl's windows), two entry points. (dtype_f32.wgsl or
// dtype_f16.wgsl in front: input, grad_output and grad_input hold `elem`, sums in f32; then
// pool_window.wgsl: the uniform block (`total`: the launch's invocations), the overrides,
// avg's divisor.)
//
// input, grad_input: [P, H, W] with P = N·C planes; grad_output, index: [P, Ho, Wo].
// `argmax` (max pooling), one invocation per output: the flat in-plane index y·W + x of the
//   window's maximum, as PyTorch picks it: walking the window row by row, a value replaces
//   the running maximum when it is greater or NaN (so ties keep the first, NaNs the last);
//   starting from −∞ at the window's first in-image position (on its dilated grid). Long
//   windows run in passes (as pool2d.wgsl: `Pass`), the running maximum kept in `part` and
//   its index in `index`.
// `gather`, one invocation per input element (p, y, x): the sum over the windows that
//   contain it (those whose span reaches it and have a tap on it), in row-major order of
//   (oy, ox) as PyTorch adds them, of
//   MODE_MAX: grad_output[p, oy, ox] where index[p, oy, ox] is this element;
//   MODE_AVG: grad_output[p, oy, ox] / divisor, the divisor as the forward's
//             (divisor_override; the window clipped to the padded input; or, without
//             COUNT_PAD, its in-image positions).
//   Each element is written once, by one fixed-order sum: bit-identical run to run.


@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read> grad_output: array<elem>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<elem>;
@group(0) @binding(4) var<storage, read_write> index: array<u32>;
@group(0) @binding(5) var<uniform> range: Pass;
// argmax's running maximum between passes (unused with one pass)
@group(0) @binding(6) var<storage, read_write> part: array<f32>;


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
    let win = window_of(oy, ox);
    // −∞ made at run time (Dawn refuses non-finite constant expressions)
    var neg_inf_bits = 0xff800000u;
    var best = bitcast<f32>(neg_inf_bits);
    var at = first_inside(win.y0, params.dil_h) * params.w + first_inside(win.x0, params.dil_w);
    if (range.begin > 0u) {
        best = part[idx];
        at = index[idx];
    }
    let u_end = min(range.end, params.kh * params.chunks);
    for (var u = range.begin; u < u_end; u++) {
        let i = u / params.chunks;
        let y = win.y0 + i32(i * params.dil_h);
        if (i >= win.kh || y < 0 || y >= i32(params.h)) {
            continue;
        }
        let j0 = (u - i * params.chunks) * params.col_chunk;
        let j1 = min(win.kw, j0 + params.col_chunk);
        for (var j = j0; j < j1; j++) {
            let x = win.x0 + i32(j * params.dil_w);
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
    var rows = windows(y + params.pad_top, params.kh, params.dil_h, params.stride_h, params.h_out);
    var cols = windows(x + params.pad_left, params.kw, params.dil_w, params.stride_w, params.w_out);
    if (params.adaptive != 0u) {
        // oy with ⌊oy·H/Ho⌋ ≤ y < ⌈(oy+1)·H/Ho⌉ (likewise ox)
        rows = vec2<u32>(y * params.h_out / params.h, min(((y + 1u) * params.h_out - 1u) / params.h + 1u, params.h_out));
        cols = vec2<u32>(x * params.w_out / params.w, min(((x + 1u) * params.w_out - 1u) / params.w + 1u, params.w_out));
    }
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
            } else if (params.adaptive != 0u) {
                // divided by the window's rows, then its columns, as PyTorch's adaptive kernel
                let win = window_of(oy, ox);
                sum += f32(grad_output[o]) / f32(win.kh) / f32(win.kw);
            } else {
                sum += f32(grad_output[o]) / avg_divisor(window_of(oy, ox));
            }
        }
    }
    grad_input[idx] = elem(sum);
}
