// B_DEFORM: deform_conv2d's B, bilinear samples of the input at the offsets (times the
// mask), rows tap-major.

struct DeformSampling {
    offset_groups: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(5) var<storage, read> offset: array<elem>;
@group(0) @binding(6) var<storage, read> mask: array<elem>;

// B_DEFORM's bilinear sampling of one (tap, offset group) at the invocation's four columns
// (component e: column e): each corner's flat input index (image base + y·W + x) or −1 when
// the corner lies outside the image or the sample outside the open box, and its weight times
// the mask. Rows are ordered tap-major (k = t·Cin/G + cl), so every channel of a K slice
// shares one (tap, offset group): the offsets, the mask and the weights are loaded and
// computed once for all of them, and each row costs its four corner loads only (on llvmpipe,
// where each load inside a loop runs lane by lane, that count sets the speed). The key holds
// the first column too: main_flat loads four column quads per k (and then misses every time).
var<private> ds_key: u32 = 0xffffffffu;
var<private> ds_col: u32 = 0xffffffffu;
var<private> ds_c00: vec4<i32>;
var<private> ds_c01: vec4<i32>;
var<private> ds_c10: vec4<i32>;
var<private> ds_c11: vec4<i32>;
var<private> ds_w00: vec4<f32>;
var<private> ds_w01: vec4<f32>;
var<private> ds_w10: vec4<f32>;
var<private> ds_w11: vec4<f32>;

fn deform_refresh(c: Cols, b_c: u32, t: u32, og: u32) {
    let key = t * params.deform.offset_groups + og;
    if (key == ds_key && b_c == ds_col) {
        return;
    }
    ds_key = key;
    ds_col = b_c;
    let taps = params.conv.kh * params.conv.kw;
    let i = t / params.conv.kw;
    let j = t - i * params.conv.kw;
    // offset[img, og·2·taps + 2t (+1), q] and mask[img, og·taps + t, q]
    let off = ((c.img * params.deform.offset_groups + og) * 2u * taps + 2u * t) * params.dims.hw + c.q;
    let dy = vec4<f32>(f32(offset[off.x]), f32(offset[off.y]), f32(offset[off.z]), f32(offset[off.w]));
    let o2 = off + params.dims.hw;
    let dx = vec4<f32>(f32(offset[o2.x]), f32(offset[o2.y]), f32(offset[o2.z]), f32(offset[o2.w]));
    let y = vec4<f32>(c.iy0 + i32(i * params.conv.dil_h)) + dy;
    let x = vec4<f32>(c.ix0 + i32(j * params.conv.dil_w)) + dx;
    var m = vec4<f32>(1.0);
    if (HAS_MASK) {
        let mi = ((c.img * params.deform.offset_groups + og) * taps + t) * params.dims.hw + c.q;
        m = vec4<f32>(f32(mask[mi.x]), f32(mask[mi.y]), f32(mask[mi.z]), f32(mask[mi.w]));
    }
    let s = bilinear_at4(y, x, params.conv.h, params.conv.w);
    let inside = s.inside & c.ok;
    let w = i32(params.conv.w);
    let y1 = s.y0 + 1;
    let x1 = s.x0 + 1;
    let in_y0 = inside & (s.y0 >= vec4<i32>(0));
    let in_y1 = inside & (y1 < vec4<i32>(i32(params.conv.h)));
    let in_x0 = s.x0 >= vec4<i32>(0);
    let in_x1 = x1 < vec4<i32>(w);
    let base = vec4<i32>(c.base);
    let none = vec4<i32>(-1);
    ds_c00 = select(none, base + s.y0 * w + s.x0, in_y0 & in_x0);
    ds_c01 = select(none, base + s.y0 * w + x1, in_y0 & in_x1);
    ds_c10 = select(none, base + y1 * w + s.x0, in_y1 & in_x0);
    ds_c11 = select(none, base + y1 * w + x1, in_y1 & in_x1);
    let k = select(vec4<f32>(0.0), m, c.ok);
    ds_w00 = s.w00 * k;
    ds_w01 = s.w01 * k;
    ds_w10 = s.w10 * k;
    ds_w11 = s.w11 * k;
}

// One corner's input value at the four columns in channel plane `plane`; 0 where absent.
fn deform_corner(at: vec4<i32>, plane: u32) -> vec4<f32> {
    let i = vec4<u32>(max(at, vec4<i32>(0))) + plane;
    return select(vec4<f32>(0.0), vec4<f32>(b_at(i.x), b_at(i.y), b_at(i.z), b_at(i.w)), at >= vec4<i32>(0));
}

// Row bk of the deformable B (tap-major) at columns b_c .. b_c + 3: the bilinear sample of
// the row's channel at its tap, the per-tap sampling cached across the tap's channels.
fn load_b_deform(g: u32, c: Cols, bk: u32, b_c: u32) -> vec4<f32> {
    // Tap-major rows: k = t·Cin/G + cl (A_TAP_MAJOR reads the weight in the same order).
    let cin_g = params.conv.c_in / params.dims.groups;
    let t = bk / cin_g;
    let cl = bk - t * cin_g;
    let ci = g * cin_g + cl;
    deform_refresh(c, b_c, t, ci / (params.conv.c_in / params.deform.offset_groups));
    let plane = ci * params.conv.h * params.conv.w;
    return ds_w00 * deform_corner(ds_c00, plane) + ds_w01 * deform_corner(ds_c01, plane)
        + ds_w10 * deform_corner(ds_c10, plane) + ds_w11 * deform_corner(ds_c11, plane);
}
