// im2col: unfold a chunk of output pixels of an NCHW (or channels-last) input into a column
// matrix.
//
// input: [N, Cin, H, W] f32, row-major; X_NHWC: stored [N, H, W, Cin] (channels-last).
// col:   [Cin·kh·kw, cols] f32, row-major. Row r = (ci·kh + i)·kw + j is kernel tap (i, j) of
//        input channel ci; column c is output pixel p = col0 + c of the flattened
//        (n, oy, ox) index p = (n·Ho + oy)·Wo + ox. Rows of group g are g·(Cin/G)·kh·kw ..,
//        so the GEMM of group g reads a contiguous block of rows.
// col[r, c] = input[n, ci, oy·sh − pad_top + i·dh, ox·sw − pad_left + j·dw] where that position
// lies in the input; in the padding, what PAD_MODE reads there (pad_mode.wgsl, joined in
// front: 0, or the input reflected, replicated or wrapped).
//
// One invocation per element of col; the 1-D grid of workgroups may be folded into y and z
// (linear workgroup id = x + nx·(y + ny·z)) when it exceeds the per-dimension limit.

struct Im2colParams {
    c_in: u32,
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
    col0: u32,
    cols: u32,
    total: u32,
}

@group(0) @binding(0) var<uniform> params: Im2colParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

const WG: u32 = 256u;

override X_NHWC: bool = false;

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
    let row = idx / params.cols;
    let c = idx - row * params.cols;
    let taps = params.kh * params.kw;
    let ci = row / taps;
    let tap = row - ci * taps;
    let i = tap / params.kw;
    let j = tap - i * params.kw;

    let p = params.col0 + c;
    let hw_out = params.h_out * params.w_out;
    let n = p / hw_out;
    let pix = p - n * hw_out;
    let oy = pix / params.w_out;
    let ox = pix - oy * params.w_out;

    // Signed so that positions in the top/left padding compare below zero.
    let iy = i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top);
    let ix = i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left);
    let sy = pad_source(iy, i32(params.h));
    let sx = pad_source(ix, i32(params.w));
    var v = 0.0;
    if (sy >= 0 && sx >= 0) {
        let pixel = u32(sy) * params.w + u32(sx);
        if (X_NHWC) {
            v = input[(n * params.h * params.w + pixel) * params.c_in + ci];
        } else {
            v = input[(n * params.c_in + ci) * params.h * params.w + pixel];
        }
    }
    col[idx] = v;
}
