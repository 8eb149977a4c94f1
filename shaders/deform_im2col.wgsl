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
//
// Bands (ops/deform_conv2d.rs, one image beyond one binding): the offsets, the mask and the
// columns hold output rows row0 .. row0 + h_out only (oy counts from row0), and the input
// binding may hold channels c_first .. c_first + c_count of each image only; rows of the
// other channels are left to the launches that bind them. row0 = 0, c_first = 0 and
// c_count = c_in for a whole call.
//
// One invocation per (offset group og, tap t, column c): the offsets, the mask, the bilinear
// weights and the corners depend on those only, so they are computed once and serve every
// input channel of the offset group (a loop writing rows (ci·kh + i)·kw + j): four corner
// loads per column entry instead of seven loads and the sampling arithmetic.

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
    // G_off·kh·kw·cols invocations
    threads: u32,
    row0: u32,
    c_first: u32,
    c_count: u32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> params: DeformIm2colParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> offset: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> col: array<f32>;

const WG: u32 = 256u;

// Input element `at` of channel plane `plane`, or 0 where the corner is absent (at < 0).
fn corner(plane: u32, at: i32) -> f32 {
    return select(0.0, input[plane + u32(max(at, 0))], at >= 0);
}

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (idx >= params.threads) {
        return;
    }
    let taps = params.kh * params.kw;
    let group_tap = idx / params.cols;
    let c = idx - group_tap * params.cols;
    let og = group_tap / taps;
    let tap = group_tap - og * taps;
    let i = tap / params.kw;
    let j = tap - i * params.kw;

    // The input channels this launch binds, within offset group og.
    let per_group = params.c_in / params.offset_groups;
    let c_lo = max(og * per_group, params.c_first);
    let c_hi = min((og + 1u) * per_group, params.c_first + params.c_count);
    if (c_lo >= c_hi) {
        return;
    }

    let p = params.col0 + c;
    let hw_out = params.h_out * params.w_out;
    let n = p / hw_out;
    let pix = p - n * hw_out;
    let oy = pix / params.w_out;
    let ox = pix - oy * params.w_out;

    let off = ((n * params.offset_groups + og) * 2u * taps + 2u * tap) * hw_out + pix;
    let y = f32(i32((params.row0 + oy) * params.stride_h + i * params.dil_h) - i32(params.pad_top)) + offset[off];
    let x = f32(i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left)) + offset[off + hw_out];
    var m = 1.0;
    if (HAS_MASK) {
        m = mask[((n * params.offset_groups + og) * taps + tap) * hw_out + pix];
    }
    // The four corners as offsets within a channel plane (−1: absent) and their weights
    // times the mask; all absent outside the sampling box.
    var at = vec4<i32>(-1);
    var wt = vec4<f32>(0.0);
    if (inside_sampling_box(y, x, params.h, params.w)) {
        let s = bilinear_at(y, x);
        let h = i32(params.h);
        let w = i32(params.w);
        let in_y = vec2<bool>(s.y0 >= 0, s.y0 + 1 < h);
        let in_x = vec2<bool>(s.x0 >= 0, s.x0 + 1 < w);
        let a = s.y0 * w + s.x0;
        at = select(vec4<i32>(-1), vec4<i32>(a, a + 1, a + w, a + w + 1),
                    vec4<bool>(in_y.x && in_x.x, in_y.x && in_x.y, in_y.y && in_x.x, in_y.y && in_x.y));
        wt = s.w * m;
    }
    let plane_len = params.h * params.w;
    for (var ci = c_lo; ci < c_hi; ci++) {
        let plane = (n * params.c_count + ci - params.c_first) * plane_len;
        let v = wt.x * corner(plane, at.x) + wt.y * corner(plane, at.y)
              + wt.z * corner(plane, at.z) + wt.w * corner(plane, at.w);
        col[(ci * taps + tap) * params.cols + c] = v;
    }
}
