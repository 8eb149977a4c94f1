// Deformable im2col (torchvision.ops.deform_conv2d semantics, v1 and v2): like im2col.wgsl,
// (bilinear.wgsl is concatenated in front: it provides bilinear_at and inside_sampling_box.)
// but kernel tap (i, j) of output pixel (oy, ox) samples the input bilinearly at a learned
// offset, optionally scaled by a mask.
//
// input:  [N, Cin, H, W]
// offset: [N, 2·G_off·kh·kw, Ho, Wo]; for offset group og and tap t = i·kw + j, channel
//         og·2·kh·kw + 2t is dy and the next is dx. Input channel ci uses group
//         og = ci / (Cin / G_off).
// mask:   [N, G_off·kh·kw, Ho, Wo] (read only when HAS_MASK), channel og·kh·kw + t.
// col:    [Cin·kh·kw, cols], row (ci·kh + i)·kw + j, column = output pixel col0 + c of the
//         flattened (n, oy, ox), as im2col.wgsl.
// Sample position y = (oy·sh − pt + i·dh) + dy, x likewise, computed in f32 with the integer
// part first, as torchvision does. A sample with y ≤ −1, y ≥ H, x ≤ −1 or x ≥ W is 0;
// otherwise each of the four bilinear corners that lies inside the image contributes with
// its weight (no renormalisation).

override HAS_MASK: bool = false;

struct DeformIm2colParams {
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
    offset_groups: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: DeformIm2colParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> offset: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> col: array<f32>;

const WG: u32 = 256u;

// One input value, 0 outside the image.
fn texel(plane: u32, y: i32, x: i32) -> f32 {
    if (y >= 0 && y < i32(params.h) && x >= 0 && x < i32(params.w)) {
        return input[plane + u32(y) * params.w + u32(x)];
    }
    return 0.0;
}

fn sample(plane: u32, y: f32, x: f32) -> f32 {
    if (!inside_sampling_box(y, x, params.h, params.w)) {
        return 0.0;
    }
    let s = bilinear_at(y, x);
    return s.w.x * texel(plane, s.y0, s.x0) + s.w.y * texel(plane, s.y0, s.x0 + 1)
         + s.w.z * texel(plane, s.y0 + 1, s.x0) + s.w.w * texel(plane, s.y0 + 1, s.x0 + 1);
}

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

    let og = ci / (params.c_in / params.offset_groups);
    let off = ((n * params.offset_groups + og) * 2u * taps + 2u * tap) * hw_out + pix;
    let y = f32(i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top)) + offset[off];
    let x = f32(i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left)) + offset[off + hw_out];
    var v = sample((n * params.c_in + ci) * params.h * params.w, y, x);
    if (HAS_MASK) {
        v = v * mask[((n * params.offset_groups + og) * taps + tap) * hw_out + pix];
    }
    col[idx] = v;
}
