// max_pool2d / avg_pool2d (PyTorch semantics: dilation for max, ceil_mode, divisor_override
// for avg), one invocation per output element.
// (concatenated in front: dtype_f32.wgsl or dtype_f16.wgsl, the storage type `elem` of input
// and out; the reduction runs in f32: max is exact either way, avg rounds once on the store;
// then pool_window.wgsl: the uniform block, the overrides, avg's divisor.)
//
// input: [P, H, W] with P = N·C planes; out: [P, Ho, Wo].
// Window of (oy, ox): rows oy·sh − pt + i·dh (i < kh), columns ox·sw − pl + j·dw (j < kw);
// with ceil_mode the last window may reach past the padded input.
// MODE_MAX: maximum over the in-image positions (padding is −∞, never 0); a NaN in the
//           window gives NaN, as PyTorch.
// MODE_AVG: sum over the in-image positions divided by `divisor` when set
//           (divisor_override), else (COUNT_PAD) by the window's size clipped to the padded
//           input (rows up to h_end, columns up to w_end), else by the number of in-image
//           positions. (avg has no dilation.)


@group(0) @binding(0) var<uniform> params: PoolParams;

@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;
@group(0) @binding(3) var<uniform> range: Pass;
// the running max or sum of each output between passes (f32; unused with one pass)
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (idx >= params.total) {
        return;
    }
    let ox = idx % params.w_out;
    let rest = idx / params.w_out;
    let oy = rest % params.h_out;
    let plane = (rest / params.h_out) * params.h * params.w;
    let win = window_of(oy, ox);
    // −∞ made at run time: WGSL makes a constant expression that evaluates to an infinity a
    // shader-creation error (Tint rejected the bitcast of a literal here; naga accepted it).
    var neg_inf_bits = 0xff800000u;
    var best = bitcast<f32>(neg_inf_bits);
    var sum = 0.0;
    if (range.begin > 0u) {
        best = part[idx];
        sum = best;
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
            let v = f32(input[plane + u32(y) * params.w + u32(x)]);
            if (MODE == MODE_MAX) {
                // NaN is tested on the bits: WGSL lets compilers assume `v != v` is false.
                // Once NaN, best stays NaN (no comparison with it is true).
                if (v > best || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
                    best = v;
                }
            } else {
                sum += v;
            }
        }
    }
    if (range.last == 0u) {
        part[idx] = select(sum, best, MODE == MODE_MAX);
        return;
    }
    if (MODE == MODE_MAX) {
        out[idx] = elem(best);
    } else {
        out[idx] = elem(sum / avg_divisor(win));
    }
}
