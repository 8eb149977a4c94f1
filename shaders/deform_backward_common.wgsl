// What deform_backward.wgsl (grad_offset, grad_mask) and deform_grad_input.wgsl (grad_input)
// share: the launch's block, and where each (image, offset group, tap, output pixel) samples.
// Both files declare `params`, `offset` and `mask` (the bindings differ).
//
// offset: [N, 2·G_off·kh·kw, Ho, Wo] (channel og·2·kh·kw + 2t is dy of tap t, the next dx)
// mask:   [N, G_off·kh·kw, Ho, Wo] (read when HAS_MASK)

struct DeformBackParams {
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
    offset_groups: u32,
    // the chunk's first image (cols holds images img0 ..)
    img0: u32,
    // invocations of this launch
    threads: u32,
    // ⌈log2⌉ of the most terms one grad_input element can receive (kh·kw·Ho·Wo)
    count_bits: u32,
    // grad_input's walks: the entries one invocation walks, and the walks per (image, offset
    // group)
    seg_len: u32,
    segs: u32,
    _pad0: u32,
}

const WG: u32 = 256u;

override HAS_MASK: bool = false;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
}

// By the bits: drivers may assume finite floats in comparisons.
fn finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// One (image, offset group, tap, output pixel) of the chunk: where it samples.
struct Site {
    // the image within the chunk, and within the call
    img_l: u32,
    img: u32,
    og: u32,
    t: u32,
    q: u32,
    // offset[off] is dy, offset[off + Ho·Wo] dx; mask[mi] is m
    off: u32,
    mi: u32,
    // the sample position (y = oy·sh − pt + i·dh + dy, x likewise) and its mask value
    y: f32,
    x: f32,
    m: f32,
}

// Site `id` of the chunk, ids in the order (image, offset group, tap, output pixel).
fn site_at(id: u32) -> Site {
    var s: Site;
    let hw_out = params.h_out * params.w_out;
    let taps = params.kh * params.kw;
    s.q = id % hw_out;
    var rest = id / hw_out;
    s.t = rest % taps;
    rest = rest / taps;
    s.og = rest % params.offset_groups;
    s.img_l = rest / params.offset_groups;
    s.img = params.img0 + s.img_l;
    let oy = s.q / params.w_out;
    let ox = s.q - oy * params.w_out;
    let i = s.t / params.kw;
    let j = s.t - i * params.kw;
    s.off = ((s.img * params.offset_groups + s.og) * 2u * taps + 2u * s.t) * hw_out + s.q;
    s.y = f32(i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top)) + offset[s.off];
    s.x = f32(i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left)) + offset[s.off + hw_out];
    s.mi = ((s.img * params.offset_groups + s.og) * taps + s.t) * hw_out + s.q;
    s.m = 1.0;
    if (HAS_MASK) {
        s.m = mask[s.mi];
    }
    return s;
}
