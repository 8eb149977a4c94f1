// deform_conv2d_backward (torchvision.ops.deform_conv2d's autograd) over one chunk of images,
// from the column gradients cols = weightᵀ · grad_output (a GEMM run before, per weight
// group).
//
// input:       [N, Cin, H, W]
// offset:      [N, 2·G_off·kh·kw, Ho, Wo] (channel og·2·kh·kw + 2t is dy of tap t, the next dx)
// mask:        [N, G_off·kh·kw, Ho, Wo] (read when HAS_MASK)
// cols:        [images of the chunk, Cin·kh·kw, Ho·Wo]: row ci·kh·kw + t, the chunk's image
//              img − img0
// grad_offset, grad_mask: shaped as offset and mask; grad_input as input.
//
// `sample`: one invocation per (image, offset group og, tap t, output pixel), which computes
// the sample position y = (oy·sh − pt + i·dh) + dy (x likewise), the corners and their
// weights once and loops over the group's channels in order:
// - grad_offset (GRAD_OFFSET) = Σ_c m · ∂sample_c/∂(dy or dx) · cols[c, t, pixel], the
//   derivative of the bilinear sum taken over the four corners that lie in the image, as
//   torchvision's get_coordinate_weight (no sampling-box test there);
// - grad_mask (GRAD_MASK) = Σ_c cols[c, t, pixel] · sample_c(y, x) (0 outside the open box
//   (−1, H) × (−1, W), as the forward);
// - grad_input (GRAD_INPUT): each in-image corner (yp, xp) with |y − yp| < 1 and |x − xp| < 1
//   receives m · (1 − |y − yp|)·(1 − |x − xp|) · cols[c, t, pixel]. Those are scatters to
//   data-dependent places, so they are summed in fixed point: each term is scaled by 2^S_e
//   and rounded to a signed 64-bit integer, added with two 32-bit atomics (the low word's
//   carry into the high one). Integer sums do not depend on their order: the result is the
//   same bits every run. S_e is the element's own: `largest` (run first, the same terms in
//   the same f32 arithmetic) leaves the largest finite |term| each element receives (atomicMax
//   on the bits of non-negative floats: exact), and S_e scales that into [2^29, 2^30): each
//   term is then exact to 2^−30 of the largest (f32 keeps 2^−24 of each term), and no sum of
//   count ≤ 2^count_bits terms overflows 64 bits. NaN and ±∞ terms set flags instead (NaN,
//   or +∞ and −∞ together, give NaN; one infinity gives it).
// `finish`: one invocation per grad_input element of the chunk: the sum times 2^−S_e (or what
// the flags say), written once; the accumulator words are reset for the next chunk.
// Every other result is one invocation's fixed-order sum: deterministic throughout.

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
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// acc: four u32 words per grad_input element e of the chunk, from 4e: the signed 64-bit sum
// (low word, high word), the flags of the non-finite terms received, the bits of the largest
// finite |term|.

const WG: u32 = 256u;
const NAN_BIT: u32 = 1u;
const POS_INF_BIT: u32 = 2u;
const NEG_INF_BIT: u32 = 4u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
}

// By the bits: drivers may assume finite floats in comparisons.
fn finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

override HAS_MASK: bool = false;
override GRAD_INPUT: bool = false;
override GRAD_OFFSET: bool = false;
override GRAD_MASK: bool = false;

@group(0) @binding(0) var<uniform> params: DeformBackParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> offset: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> cols: array<f32>;
@group(0) @binding(5) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> grad_offset: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad_mask: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_input: array<f32>;

// S_e as two halves (each within ldexp's exponent range): the element's largest |term| (<
// 2^exponent) scaled into [2^29, 2^30), so that a term's magnitude fits the low word and the
// low word's carry is rare (one atomic per term, mostly); below 2^(61 − count_bits) where
// count_bits is larger, so that no sum overflows. Clamped where every term rounds to 0 anyway.
fn scale_halves(e: u32) -> vec2<i32> {
    let largest = bitcast<f32>(atomicLoad(&acc[4u * e + 3u]));
    let top = min(30, 61 - i32(params.count_bits));
    let s = clamp(top - frexp(largest).exp, -240, 210);
    return vec2<i32>(s / 2, s - s / 2);
}

// Adds term v to grad_input element e of the chunk.
fn add_term(e: u32, v: f32) {
    if (v == 0.0) {
        return;
    }
    let bits = bitcast<u32>(v);
    if (!finite(v)) {
        var flag = NAN_BIT;
        if ((bits & 0x007fffffu) == 0u) {
            flag = select(POS_INF_BIT, NEG_INF_BIT, (bits >> 31u) == 1u);
        }
        atomicOr(&acc[4u * e + 2u], flag);
        return;
    }
    let s = scale_halves(e);
    // |r| < 2^30: an exact integer in f32, the two's complement of a negative one in 64 bits
    let r = round(ldexp(ldexp(v, s.x), s.y));
    let magnitude = u32(abs(r));
    if (magnitude == 0u) {
        return;
    }
    var lo = magnitude;
    var hi = 0u;
    if (r < 0.0) {
        lo = ~magnitude + 1u;
        hi = 0xffffffffu;
    }
    let at = 4u * e;
    let old = atomicAdd(&acc[at], lo);
    let up = hi + select(0u, 1u, old + lo < old);
    if (up != 0u) {
        atomicAdd(&acc[at + 1u], up);
    }
}

// One (image, offset group, tap, output pixel): where it samples and with what weights.
struct Site {
    img_l: u32,
    img: u32,
    og: u32,
    t: u32,
    q: u32,
    // offset[off] is dy, offset[off + Ho·Wo] dx; mask[mi] is m
    off: u32,
    mi: u32,
    m: f32,
    y: f32,
    x: f32,
    ly: f32,
    lx: f32,
    // the corners (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1): in the image, their
    // offset within a plane (valid where ok), the open-box test, the bilinear weights
    ok: vec4<bool>,
    at: vec4<i32>,
    inside: bool,
    bil: vec4<f32>,
    // grad_input's corners (also |y − yp| < 1 and |x − xp| < 1) and their weights times m
    near: vec4<bool>,
    scat: vec4<f32>,
}

fn site(id: u32) -> Site {
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
    let y = f32(i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top)) + offset[s.off];
    let x = f32(i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left)) + offset[s.off + hw_out];
    s.y = y;
    s.x = x;
    s.mi = ((s.img * params.offset_groups + s.og) * taps + s.t) * hw_out + s.q;
    s.m = 1.0;
    if (HAS_MASK) {
        s.m = mask[s.mi];
    }
    let yf = floor(y);
    let xf = floor(x);
    s.ly = y - yf;
    s.lx = x - xf;
    // false for non-finite positions
    let fh = f32(params.h) - 1.0;
    let fw = f32(params.w) - 1.0;
    // (NaN and ±∞ positions tested on the bits first: drivers may assume finite floats)
    let real = finite(y) && finite(x);
    let in_y = vec2<bool>(real && yf >= 0.0 && yf <= fh, real && yf + 1.0 >= 0.0 && yf + 1.0 <= fh);
    let in_x = vec2<bool>(real && xf >= 0.0 && xf <= fw, real && xf + 1.0 >= 0.0 && xf + 1.0 <= fw);
    s.ok = vec4<bool>(in_y.x && in_x.x, in_y.x && in_x.y, in_y.y && in_x.x, in_y.y && in_x.y);
    let y0 = select(0, i32(yf), in_y.x || in_y.y);
    let x0 = select(0, i32(xf), in_x.x || in_x.y);
    let a00 = y0 * i32(params.w) + x0;
    s.at = vec4<i32>(a00, a00 + 1, a00 + i32(params.w), a00 + i32(params.w) + 1);
    s.inside = real && y > -1.0 && y < f32(params.h) && x > -1.0 && x < f32(params.w);
    let hy = 1.0 - s.ly;
    let hx = 1.0 - s.lx;
    s.bil = vec4<f32>(hy * hx, hy * s.lx, s.ly * hx, s.ly * s.lx);
    s.near = s.ok & vec4<bool>(true, s.lx > 0.0, s.ly > 0.0, s.ly > 0.0 && s.lx > 0.0);
    let wy0 = 1.0 - abs(y - yf);
    let wy1 = 1.0 - abs(y - (yf + 1.0));
    let wx0 = 1.0 - abs(x - xf);
    let wx1 = 1.0 - abs(x - (xf + 1.0));
    s.scat = s.m * vec4<f32>(wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1);
    return s;
}

// Column gradient of channel ci at site s.
fn col_at(s: Site, ci: u32) -> f32 {
    let taps = params.kh * params.kw;
    return cols[((s.img_l * params.c_in + ci) * taps + s.t) * (params.h_out * params.w_out) + s.q];
}

// Raises element e's largest |term| to v (non-negative; non-finite values take no part).
// (A load first: most terms do not raise it, and a read-modify-write max is a
// compare-and-swap loop on CPUs.)
fn raise(on: bool, e: u32, v: f32) {
    let bits = bitcast<u32>(v);
    if (on && finite(v) && bits > atomicLoad(&acc[4u * e + 3u])) {
        atomicMax(&acc[4u * e + 3u], bits);
    }
}

// The first pass of grad_input: the largest finite |term| of every element (see the header).
@compute @workgroup_size(256, 1, 1)
fn largest(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if (id >= params.threads) {
        return;
    }
    let s = site(id);
    let per_og = params.c_in / params.offset_groups;
    let hw = params.h * params.w;
    for (var cl = 0u; cl < per_og; cl++) {
        let ci = s.og * per_og + cl;
        let col = col_at(s, ci);
        let e = vec4<u32>((s.img_l * params.c_in + ci) * hw) + vec4<u32>(select(vec4<i32>(0), s.at, s.near));
        let v = abs(s.scat * col);
        let on = s.near & (v > vec4<f32>(0.0));
        raise(on.x, e.x, v.x);
        raise(on.y, e.y, v.y);
        raise(on.z, e.z, v.z);
        raise(on.w, e.w, v.w);
    }
}

@compute @workgroup_size(256, 1, 1)
fn sample(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if (id >= params.threads) {
        return;
    }
    let s = site(id);
    let per_og = params.c_in / params.offset_groups;
    let hw = params.h * params.w;
    var gy = 0.0;
    var gx = 0.0;
    var gm = 0.0;
    for (var cl = 0u; cl < per_og; cl++) {
        let ci = s.og * per_og + cl;
        let col = col_at(s, ci);
        if (GRAD_OFFSET || GRAD_MASK) {
            let plane = (s.img * params.c_in + ci) * hw;
            let p = vec4<u32>(select(vec4<i32>(0), s.at, s.ok)) + plane;
            let v = select(vec4<f32>(0.0), vec4<f32>(input[p.x], input[p.y], input[p.z], input[p.w]), s.ok);
            if (GRAD_OFFSET) {
                let wy = s.lx * (v.w - v.y) + (1.0 - s.lx) * (v.z - v.x);
                let wx = s.ly * (v.w - v.z) + (1.0 - s.ly) * (v.y - v.x);
                gy += s.m * wy * col;
                gx += s.m * wx * col;
            }
            if (GRAD_MASK) {
                var val = 0.0;
                if (s.inside) {
                    val = s.bil.x * v.x + s.bil.y * v.y + s.bil.z * v.z + s.bil.w * v.w;
                }
                gm += col * val;
            }
        }
        if (GRAD_INPUT) {
            let e = vec4<u32>((s.img_l * params.c_in + ci) * hw) + vec4<u32>(select(vec4<i32>(0), s.at, s.near));
            let v = s.scat * col;
            if (s.near.x) {
                add_term(e.x, v.x);
            }
            if (s.near.y) {
                add_term(e.y, v.y);
            }
            if (s.near.z) {
                add_term(e.z, v.z);
            }
            if (s.near.w) {
                add_term(e.w, v.w);
            }
        }
    }
    if (GRAD_OFFSET) {
        grad_offset[s.off] = gy;
        grad_offset[s.off + params.h_out * params.w_out] = gx;
    }
    if (GRAD_MASK) {
        grad_mask[s.mi] = gm;
    }
}

@compute @workgroup_size(256, 1, 1)
fn finish(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = linear_id(wid, nwg, lid);
    if (e >= params.threads) {
        return;
    }
    let s = scale_halves(e);
    let at = 4u * e;
    var lo = atomicLoad(&acc[at]);
    var hi = atomicLoad(&acc[at + 1u]);
    let flags = atomicLoad(&acc[at + 2u]);
    // |sum| in two non-negative words, converted without cancellation, then the sign.
    let negative = (hi >> 31u) == 1u;
    if (negative) {
        lo = ~lo + 1u;
        hi = ~hi + select(0u, 1u, lo == 0u);
    }
    // (two roundings: within one ulp of the exact sum times 2^−S_e)
    let magnitude = f32(hi) * 4294967296.0 + f32(lo);
    var v = 0.0;
    var special = 0u;
    if (magnitude != 0.0 && frexp(magnitude).exp - (s.x + s.y) > 128) {
        // past f32's range: ±∞, as an IEEE sum of these finite terms overflows
        special = select(0x7f800000u, 0xff800000u, negative);
    } else {
        v = ldexp(ldexp(magnitude, -s.x), -s.y);
        if (negative) {
            v = -v;
        }
    }
    // non-finite results from run-time bits (Dawn refuses non-finite constant expressions)
    if ((flags & NAN_BIT) != 0u || (flags & (POS_INF_BIT | NEG_INF_BIT)) == (POS_INF_BIT | NEG_INF_BIT)) {
        special = 0x7fc00000u;
    } else if ((flags & POS_INF_BIT) != 0u) {
        special = 0x7f800000u;
    } else if ((flags & NEG_INF_BIT) != 0u) {
        special = 0xff800000u;
    }
    if (special != 0u) {
        v = bitcast<f32>(special);
    }
    grad_input[params.img0 * params.c_in * params.h * params.w + e] = v;
    atomicStore(&acc[at], 0u);
    atomicStore(&acc[at + 1u], 0u);
    atomicStore(&acc[at + 2u], 0u);
    atomicStore(&acc[at + 3u], 0u);
}
