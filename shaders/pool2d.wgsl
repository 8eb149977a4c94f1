// max_pool2d / avg_pool2d (PyTorch semantics: dilation for max, ceil_mode, divisor_override
// for avg), one invocation per output element.
// (concatenated in front: dtype_f32.wgsl or dtype_f16.wgsl, the storage type `elem` of input
// and out; the reduction runs in f32: max is exact either way, avg rounds once on the store.)
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
// (The Rust twin is `PoolMode`; tests/shaders.rs checks that both agree.)

const MODE_MAX: u32 = 0u;
const MODE_AVG: u32 = 1u;

override MODE: u32 = MODE_MAX;
override COUNT_PAD: bool = true;

struct PoolParams {
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
    total: u32,
    // The window is walked in units of (row, chunk of col_chunk columns): chunks per row.
    col_chunk: u32,
    chunks: u32,
    dil_h: u32,
    dil_w: u32,
    // divisor_override, 0: none
    divisor: u32,
    // the padded input's end (H + bottom padding, W + right padding) in this launch's rows
    h_end: u32,
    w_end: u32,
    _pad0: u32,
    _pad1: u32,
}

// The units begin .. min(end, kh·chunks) of the window this dispatch covers. Some drivers stop
// every loop of an invocation after 65535 iterations in total (Mesa ≤ 22's llvmpipe), so the
// host splits long windows (global pooling) into passes of bounded loop turns: each continues
// the running max / sum the previous one left in `part`, and the last writes the output.
struct Pass {
    begin: u32,
    end: u32,
    last: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: PoolParams;

// avg's divisor for the window whose first row and column are y0, x0 (see the header).
fn avg_divisor(y0: i32, x0: i32) -> f32 {
    if (params.divisor != 0u) {
        return f32(params.divisor);
    }
    if (COUNT_PAD) {
        let rows = min(i32(params.h_end), y0 + i32(params.kh)) - y0;
        let cols = min(i32(params.w_end), x0 + i32(params.kw)) - x0;
        return f32(rows * cols);
    }
    // the in-image rows times the in-image columns of the window
    let rows = min(i32(params.h), y0 + i32(params.kh)) - max(0, y0);
    let cols = min(i32(params.w), x0 + i32(params.kw)) - max(0, x0);
    return f32(max(rows, 0) * max(cols, 0));
}
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;
@group(0) @binding(3) var<uniform> range: Pass;
// the running max or sum of each output between passes (f32; unused with one pass)
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

const WG: u32 = 256u;

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
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
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
        out[idx] = elem(sum / avg_divisor(y0, x0));
    }
}
