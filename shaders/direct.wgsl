// Direct conv2d: no workspace, no workgroup memory, no barrier.
// (activation.wgsl is concatenated in front: it provides ACT and activate().)
//
// input:  [N, Cin, H, W] (X_NHWC: stored [N, H, W, Cin], channels-last)
// weight: [Cout, Cin/G, kh, kw], row co of length K = (Cin/G)·kh·kw
// bias:   [Cout] (read only when HAS_BIAS)
// out:    [N, Cout, Ho, Wo] (Y_NHWC: stored [N, Ho, Wo, Cout])
//
// Each invocation computes 4 consecutive output pixels p .. p + 3 (p = (n·Ho + oy)·Wo + ox,
// flattened over images and rows) × 16 consecutive output channels of one group, in sixteen
// named vec4 accumulators. A workgroup covers 256 pixels × the same 16 channels: its tile
// number t = pixel block + pixel_blocks·(channel block + co_blocks·g), folded into y/z.
//
// Why this shape: every invocation of a workgroup reads the same weight at each step k, so
// the weight index depends only on the workgroup and the loop counters (dynamically uniform).
// Software rasterisers (llvmpipe, SwiftShader), which run a workgroup's invocations as SIMD
// lanes, turn such a load into one scalar load and a broadcast, while a per-lane address
// becomes a per-lane loop; here each step k costs one per-lane load of 4 input values
// (bounds-checked: padding contributes 0·w, as in the reference) for 64 multiply-adds. On a
// GPU the same uniform loads hit the constant/L1 path and the kernel is a plain direct conv.

override HAS_BIAS: bool = false;
override X_NHWC: bool = false;
override Y_NHWC: bool = false;

struct DirectParams {
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
    groups: u32,
    pixels: u32,
    pixel_blocks: u32,
    co_blocks: u32,
    total_tiles: u32,
    alpha_bits: u32,
}

@group(0) @binding(0) var<uniform> params: DirectParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
// Output channels per invocation (the sixteen accumulators below).
const CO: u32 = 16u;

fn tap(ok: bool, idx: u32) -> f32 {
    if (ok) {
        return input[idx];
    }
    return 0.0;
}

// Writes channel co0 + r of the four pixels (skipped past the block's last channel).
fn store(r: u32, rows: u32, co0: u32, ok: vec4<bool>, dst: vec4<u32>, v: vec4<f32>) {
    if (r >= rows) {
        return;
    }
    let co = co0 + r;
    var add = 0.0;
    if (HAS_BIAS) {
        add = bias[co];
    }
    let alpha = bitcast<f32>(params.alpha_bits);
    let plane = co * select(params.h_out * params.w_out, 1u, Y_NHWC);
    for (var e = 0u; e < 4u; e++) {
        if (ok[e]) {
            out[dst[e] + plane] = activate(v[e] + add, alpha);
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tile = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (tile >= params.total_tiles) {
        return;
    }
    let pb = tile % params.pixel_blocks;
    let rest = tile / params.pixel_blocks;
    let cb = rest % params.co_blocks;
    let g = rest / params.co_blocks;
    let cig = params.c_in / params.groups;
    let cog = params.c_out / params.groups;
    let co0 = g * cog + cb * CO;
    let rows = min(CO, cog - cb * CO);

    // This invocation's four pixels: image, position in the image, window origin.
    let p0 = (pb * WG + lid) * 4u;
    let p = vec4<u32>(p0, p0 + 1u, p0 + 2u, p0 + 3u);
    let ok = p < vec4<u32>(params.pixels);
    let hw = params.h_out * params.w_out;
    let img = p / vec4<u32>(hw);
    let q = p - img * hw;
    let oy = q / vec4<u32>(params.w_out);
    let ox = q - oy * params.w_out;
    let iy0 = vec4<i32>(oy * params.stride_h) - i32(params.pad_top);
    let ix0 = vec4<i32>(ox * params.stride_w) - i32(params.pad_left);
    // steps between input channels and between input pixels (NCHW: H·W and 1)
    let chan_step = select(params.h * params.w, 1u, X_NHWC);
    let px = select(1u, params.c_in, X_NHWC);
    let image = img * (params.c_in * params.h * params.w) + vec4<u32>(g * cig * chan_step);
    let h = i32(params.h);
    let w = i32(params.w);

    // Weight row offsets of the block's channels; rows past the block repeat its last row
    // (in bounds, never stored).
    let k_len = cig * params.kh * params.kw;
    let last = rows - 1u;
    let w0 = co0 * k_len;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);

    var k = 0u;
    for (var cl = 0u; cl < cig; cl++) {
        let plane = image + vec4<u32>(cl * chan_step);
        for (var i = 0u; i < params.kh; i++) {
            let iy = iy0 + i32(i * params.dil_h);
            let row_ok = ok & (iy >= vec4<i32>(0)) & (iy < vec4<i32>(h));
            let row = plane + vec4<u32>(max(iy, vec4<i32>(0))) * (params.w * px);
            for (var j = 0u; j < params.kw; j++) {
                let ix = ix0 + i32(j * params.dil_w);
                let m = row_ok & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(w));
                let idx = row + vec4<u32>(max(ix, vec4<i32>(0))) * px;
                let x = vec4<f32>(tap(m.x, idx.x), tap(m.y, idx.y), tap(m.z, idx.z), tap(m.w, idx.w));
                let wk = w0 + k;
                acc0 += weight[wk] * x;
                acc1 += weight[wk + min(1u, last) * k_len] * x;
                acc2 += weight[wk + min(2u, last) * k_len] * x;
                acc3 += weight[wk + min(3u, last) * k_len] * x;
                acc4 += weight[wk + min(4u, last) * k_len] * x;
                acc5 += weight[wk + min(5u, last) * k_len] * x;
                acc6 += weight[wk + min(6u, last) * k_len] * x;
                acc7 += weight[wk + min(7u, last) * k_len] * x;
                acc8 += weight[wk + min(8u, last) * k_len] * x;
                acc9 += weight[wk + min(9u, last) * k_len] * x;
                acc10 += weight[wk + min(10u, last) * k_len] * x;
                acc11 += weight[wk + min(11u, last) * k_len] * x;
                acc12 += weight[wk + min(12u, last) * k_len] * x;
                acc13 += weight[wk + min(13u, last) * k_len] * x;
                acc14 += weight[wk + min(14u, last) * k_len] * x;
                acc15 += weight[wk + min(15u, last) * k_len] * x;
                k++;
            }
        }
    }

    let dst = img * (params.c_out * hw) + q * select(1u, params.c_out, Y_NHWC);
    store(0u, rows, co0, ok, dst, acc0);
    store(1u, rows, co0, ok, dst, acc1);
    store(2u, rows, co0, ok, dst, acc2);
    store(3u, rows, co0, ok, dst, acc3);
    store(4u, rows, co0, ok, dst, acc4);
    store(5u, rows, co0, ok, dst, acc5);
    store(6u, rows, co0, ok, dst, acc6);
    store(7u, rows, co0, ok, dst, acc7);
    store(8u, rows, co0, ok, dst, acc8);
    store(9u, rows, co0, ok, dst, acc9);
    store(10u, rows, co0, ok, dst, acc10);
    store(11u, rows, co0, ok, dst, acc11);
    store(12u, rows, co0, ok, dst, acc12);
    store(13u, rows, co0, ok, dst, acc13);
    store(14u, rows, co0, ok, dst, acc14);
    store(15u, rows, co0, ok, dst, acc15);
}
