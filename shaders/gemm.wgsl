// Batched tiled GEMM with the convolution write-out: C[g] = A[g] · B[g] (+ bias, activation).
// (concatenated in front: dtype_f32.wgsl or dtype_f16.wgsl (the storage type `elem`),
// activation.wgsl, bilinear.wgsl (B_DEFORM samples with bilinear_at4), gemm_modes.wgsl, and gemm_b_scalar.wgsl
// or gemm_b_quad.wgsl (the binding `b` with its f32 readers b_at(i), b_quad(i) (elements
// i .. i + 3, i a multiple of 4 for the quad variant) and b_len()).)
//
// a: depends on A_MODE (the names are gemm_modes.wgsl's constants):
//    A_ROW_MAJOR    [groups, M, K] row-major. The conv weight [Cout, Cin/G, kh, kw] is exactly this with
//      M = Cout/G, K = (Cin/G)·kh·kw.
//    A_TRANSPOSED   [groups, K, M] row-major, read transposed. The conv_transpose2d weight
//      [Cin, Cout/G, kh, kw] is this with K = Cin/G, M = (Cout/G)·kh·kw.
//    A_OUTPUT_GRAD  an NCHW conv output gradient dY [N, a_channels, a_hw] read as [groups, M, K] with
//      A[g, m, k] = dY[img, g·M + m, q] for pixel k = img·a_hw + q (grad_weight).
//    A_PHASE_TAPS   the conv_transpose2d weight [Cin, Cout/G, kh, kw] seen by one output phase (B_TRANSPOSED):
//      A[m, k] = W[gc·Cin/G + cl, m, i, j] for k = (cl·taps_y + ty)·taps_x + tx, with the
//      phase's taps i = i0y + ty·step_y, j = i0x + tx·step_x; 0 for a tap past the kernel.
//    A_TAP_MAJOR    the conv weight [Cout, Cin/G, kh, kw] with its columns taken tap-major (B_DEFORM):
//      A[g, m, k] = W[g·M + m, cl, t] for k = t·Cin/G + cl.
// b: depends on B_MODE, the source of the [groups, K, N] operand (B_DENSE .. B_TRANSPOSED):
//    DENSE      b is that matrix, row-major (the im2col workspace of one chunk).
//    IMPLICIT   b is the NCHW input; B[g, k, n] is gathered on the fly (implicit GEMM):
//                k = (cl·kh + i)·kw + j, channel ci = g·Cin/G + cl, pixel p = col0 + n =
//                (img·Ho + oy)·Wo + ox, value input[img, ci, oy·sh − pt + i·dh,
//                ox·sw − pl + j·dw] or 0 in the padding. No workspace.
//    POINTWISE  b is the NCHW input of a 1x1, stride-1, unpadded conv: B[g, k, n] =
//                input[img, g·K + k, q] with q the pixel within the image.
//    TAPS       b is the NCHW input; the im2col matrix transposed (grad_weight): row k is
//                output pixel k = (img·Ho + oy)·Wo + ox (a_hw = Ho·Wo), column
//                n = (cl·kh + i)·kw + j is a kernel tap of channel g·Cin/G + cl.
//    DEFORM     b is the NCHW input; as implicit, but tap (i, j) of pixel (oy, ox) samples
//                bilinearly at (oy·sh − pt + i·dh + dy, ox·sw − pl + j·dw + dx), dy/dx from
//                `offset` [N, 2·G_off·kh·kw, Ho, Wo] of the channel's offset group, times
//                `mask` [N, G_off·kh·kw, Ho, Wo] when HAS_MASK (deform_im2col.wgsl's layouts).
//                Rows are tap-major: k = t·Cin/G + cl, t = i·kw + j (with A_TAP_MAJOR).
//    DEPTHWISE  b is the NCHW input [N, C, H, W]; B[k, n] is the depthwise conv's output
//                channel k (of C·dw_mult) at pixel n, computed on the fly from `dw_weight`
//                [C·dw_mult, 1, kh, kw] (+ `dw_bias` when HAS_DW_BIAS, then DW_ACT): the
//                fused depthwise-separable block, A being the pointwise weight [Cout, K].
//    TRANSPOSED b is the NCHW input of a conv_transpose2d, decomposed into its sh·sw output
//                phases (ry, rx) = (oy mod sh, ox mod sw): group index g = phase·G + gc. An
//                output row oy = ry + sh·qy receives exactly the taps i ≡ i0y (mod step_y),
//                step_y = sh / gcd(sh, dh), where i0y·dh ≡ ry + pt (mod sh), from input row
//                iy = (oy + pt − i·dh) / sh = qy + by − ty·dq_y, dq_y = dh / gcd(sh, dh) (same
//                along x). Column n is phase pixel (img, qy, qx) of the grid [N, ⌈Ho/sh⌉,
//                ⌈Wo/sw⌉] (hw and w_out hold that grid); row k is (cl, ty, tx) as in A_PHASE_TAPS.
//                A stride-s transposed conv thus becomes s² dense implicit GEMMs with no
//                zero-insertion and no col2im; each output is written once.
// bias: [groups·M] (read only when HAS_BIAS).
// c: column n is output pixel p = col0 + n, image img = p / hw and pixel q = p % hw; row m
//    of group g is channel co = g·M + m; the value goes to
//    c[(img − img0)·c_image_stride + co·hw + q] (B_TRANSPOSED: co = gc·M + m and the pixel
//    (ry + sh·qy)·out_w + rx + sw·qx of an out_h × out_w plane). An NCHW conv output has hw = Ho·Wo and
//    c_image_stride = Cout·Ho·Wo; a plain GEMM sets hw = N and col0 = img0 = 0; a chunk of
//    images img0.. written to a workspace sets img0 to its first image.
//
// Each workgroup computes one tile of C for one group, K advancing in slices of 16 through
// workgroup memory. Four entry points share everything but the tile and register blocking:
//   main        64×64 tile, 16×16 invocations, a 4×4 block each in four named vec4
//               accumulators;
//   main_8x8    64×64 tile, 8×8 invocations, an 8×8 block each in sixteen named vec4
//               accumulators: four times the multiply-adds per workgroup-memory load, and a
//               quarter of the invocations to step through each barrier (llvmpipe runs a
//               workgroup's invocations as SIMD groups on one thread);
//   main_16x16  128×128 tile, 8×8 invocations, a 16×16 block each in sixteen mat4x4
//               accumulators (4×4 sub-blocks): eight vec4 loads from workgroup memory feed 256
//               multiply-adds, twice the 8×8 kernel's ratio. On llvmpipe every load inside a
//               loop runs lane by lane, so that ratio sets the speed.
//   main_flat   main_16x16's tiles and blocks with no workgroup memory and no barrier, the
//               implicit and transposed gathers walked tap-major (see there: for CPU
//               adapters).
// Named accumulators, not arrays: llvmpipe and most drivers keep them in registers, where a
// private array would spill. Tiles are numbered (g, tile_m, tile_n) and the grid may be
// folded into y and z: linear id = x + nx·(y + ny·z).

override HAS_BIAS: bool = false;
override B_MODE: u32 = B_DENSE;
override A_MODE: u32 = A_ROW_MAJOR;
override HAS_MASK: bool = false;
override HAS_DW_BIAS: bool = false;
// The depthwise stage's activation in B_DEPTHWISE: ACT_NONE, ACT_RELU or ACT_RELU6.
override DW_ACT: u32 = ACT_NONE;

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    groups: u32,
    hw: u32,
    col0: u32,
    c_image_stride: u32,
    alpha_bits: u32,
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
    w_out: u32,
    img0: u32,
    a_hw: u32,
    a_channels: u32,
    offset_groups: u32,
    dw_mult: u32,
    // B_TRANSPOSED (transposed) only: the real output plane, the taps per phase and their steps.
    out_h: u32,
    out_w: u32,
    taps_y: u32,
    taps_x: u32,
    step_y: u32,
    step_x: u32,
    dq_y: u32,
    dq_x: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
// a, b, bias, c, offset and mask hold `elem` (f32, or f16 storage with f32 arithmetic); the
// fused depthwise stage's weight and bias are always f32.
@group(0) @binding(1) var<storage, read> a: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> c: array<elem>;
@group(0) @binding(5) var<storage, read> offset: array<elem>;
@group(0) @binding(6) var<storage, read> mask: array<elem>;
@group(0) @binding(7) var<storage, read> dw_weight: array<f32>;
// B_DEPTHWISE: the fused depthwise stage's bias (read only). Otherwise, when K runs in several
// passes over f16 storage: the f32 partial sums, laid out as c (f32 storage keeps them in c).
@group(0) @binding(8) var<storage, read_write> aux: array<f32>;

// K in passes. Some drivers stop every loop of an invocation once it has run 65535
// iterations in total (Mesa ≤ 22's llvmpipe: one limiter per shader, shared by all its
// loops, nested ones included), so the host splits K into ranges whose loop iterations stay
// within a budget and records one dispatch per range, in order: pass j sums k in
// [begin, end) from 0 and adds that onto the partial sums of passes 0 .. j − 1 (begin > 0);
// only the last pass (last = 1) adds the bias, applies the activation and stores `elem`,
// earlier ones store their f32 partial sums unrounded (in c for f32, in aux for f16). The
// order of the additions is fixed, so results are the same run to run. begin is a multiple
// of 16 (every K slice size).
struct KPass {
    begin: u32,
    end: u32,
    last: u32,
    _pad: u32,
}
@group(0) @binding(9) var<uniform> kpass: KPass;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// a_tile[k·16 + i] = A[row0 + 4i .. row0 + 4i + 3][k0 + k]  (four rows of one column of A)
var<workgroup> a_tile: array<vec4<f32>, 256>;
// b_tile[k·16 + j] = B[k0 + k][col0 + 4j .. col0 + 4j + 3]  (four columns of one row of B)
var<workgroup> b_tile: array<vec4<f32>, 256>;

// What a workgroup's group index g means. Every mode but B_TRANSPOSED: the conv group gc = g.
// B_TRANSPOSED: g = phase·G + gc with phase = ry·sw + rx; the phase's first taps (i0y, i0x), the
// input offsets (by, bx) of its tap (i0y, i0x), and whether it has taps at all along y / x.
struct Phase {
    gc: u32,
    ry: u32,
    rx: u32,
    i0y: u32,
    i0x: u32,
    by: i32,
    bx: i32,
    ok: bool,
}

// The first tap i0 < step with i0·d ≡ r + p (mod s), and (r + p − i0·d) / s (exact), or
// i0 = step when no tap reaches this phase (gcd(s, d) ∤ r + p).
fn phase_axis(r: u32, s: u32, d: u32, p: u32, step: u32) -> vec2<i32> {
    let a = r + p;
    for (var i0 = 0u; i0 < step; i0++) {
        if ((i0 * d) % s == a % s) {
            return vec2<i32>(i32(i0), (i32(a) - i32(i0 * d)) / i32(s));
        }
    }
    return vec2<i32>(i32(step), 0);
}

fn phase_of(g: u32) -> Phase {
    var ph: Phase;
    ph.gc = g;
    ph.ok = true;
    if (B_MODE == B_TRANSPOSED) {
        let conv_groups = params.groups / (params.stride_h * params.stride_w);
        let phase = g / conv_groups;
        ph.gc = g - phase * conv_groups;
        ph.ry = phase / params.stride_w;
        ph.rx = phase - ph.ry * params.stride_w;
        let y = phase_axis(ph.ry, params.stride_h, params.dil_h, params.pad_top, params.step_y);
        let x = phase_axis(ph.rx, params.stride_w, params.dil_w, params.pad_left, params.step_x);
        ph.i0y = u32(y.x);
        ph.i0x = u32(x.x);
        ph.by = y.y;
        ph.bx = x.y;
        ph.ok = ph.i0y < params.step_y && ph.i0x < params.step_x;
    }
    return ph;
}

// Row k of a phase (B_TRANSPOSED / A_PHASE_TAPS) as (channel cl, tap ty, tap tx, real): the tap
// (i0y + ty·step_y, i0x + tx·step_x) is real when it lies inside the kernel. Phantom taps are
// 0 in both A and B, so they add exactly 0.
fn phase_tap(ph: Phase, k: u32) -> vec4<u32> {
    let per = params.taps_y * params.taps_x;
    let cl = k / per;
    let t = k - cl * per;
    let ty = t / params.taps_x;
    let tx = t - ty * params.taps_x;
    let ok = ph.ok && ph.i0y + ty * params.step_y < params.kh && ph.i0x + tx * params.step_x < params.kw;
    return vec4<u32>(cl, ty, tx, select(0u, 1u, ok));
}

// First input channel of conv group gc in B_TRANSPOSED (params.groups counts phases × groups).
fn phase_channel0(gc: u32) -> u32 {
    return gc * (params.c_in / (params.groups / (params.stride_h * params.stride_w)));
}

fn load_a(ph: Phase, row: u32, k: u32) -> f32 {
    let g = ph.gc;
    if (row < params.m) {
        if (A_MODE == A_PHASE_TAPS) {
            let t = phase_tap(ph, k);
            if (t.w == 0u) {
                return 0.0;
            }
            let i = ph.i0y + t.y * params.step_y;
            let j = ph.i0x + t.z * params.step_x;
            return f32(a[(((phase_channel0(g) + t.x) * params.m + row) * params.kh + i) * params.kw + j]);
        }
        if (A_MODE == A_TRANSPOSED) {
            return f32(a[(g * params.k + k) * params.m + row]);
        }
        if (A_MODE == A_TAP_MAJOR) {
            // tap-major column k = t·Cin/G + cl of the weight row (cl, t)
            let taps = params.kh * params.kw;
            let cin_g = params.k / taps;
            let t = k / cin_g;
            return f32(a[(g * params.m + row) * params.k + (k - t * cin_g) * taps + t]);
        }
        if (A_MODE == A_OUTPUT_GRAD) {
            let img = k / params.a_hw;
            let q = k - img * params.a_hw;
            return f32(a[(img * params.a_channels + g * params.m + row) * params.a_hw + q]);
        }
        return f32(a[(g * params.m + row) * params.k + k]);
    }
    return 0.0;
}

// One input element for the implicit modes, 0 outside the image or past the last column.
fn gather(ok: bool, base: u32, iy: i32, ix: i32) -> f32 {
    if (ok && iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w)) {
        return b_at(base + u32(iy) * params.w + u32(ix));
    }
    return 0.0;
}

// Index in c of row m, column n (the conv write-out described at the top), or −1 for a
// position that is not stored: past M or N, or outside the real output plane (B_TRANSPOSED).
fn out_index(ph: Phase, m: u32, n: u32) -> i32 {
    if (m >= params.m || n >= params.n) {
        return -1;
    }
    let co = ph.gc * params.m + m;
    let p = params.col0 + n;
    let img = p / params.hw;
    let q = p - img * params.hw;
    if (B_MODE == B_TRANSPOSED) {
        let qy = q / params.w_out;
        let oy = ph.ry + params.stride_h * qy;
        let ox = ph.rx + params.stride_w * (q - qy * params.w_out);
        if (oy >= params.out_h || ox >= params.out_w) {
            return -1;
        }
        let plane = params.out_h * params.out_w;
        return i32((img - params.img0) * params.c_image_stride + co * plane + oy * params.out_w + ox);
    }
    return i32((img - params.img0) * params.c_image_stride + co * params.hw + q);
}

// The partial sums that the K passes before this one left at c's index i (KPass).
fn partial_at(i: i32) -> f32 {
    if (ELEM_IS_F32) {
        return f32(c[i]);
    }
    return aux[i];
}

// Row m, columns n0 .. n0 + 3 of this K pass's sums: added to the partial sums of the
// passes before (begin > 0), then the last pass adds the bias, applies the activation and
// stores `elem`, an earlier one stores the f32 partial sums (see KPass).
fn store_row(ph: Phase, m: u32, n0: u32, v: vec4<f32>) {
    var add = 0.0;
    if (HAS_BIAS && m < params.m) {
        add = f32(bias[ph.gc * params.m + m]);
    }
    let alpha = bitcast<f32>(params.alpha_bits);
    for (var e = 0u; e < 4u; e++) {
        let i = out_index(ph, m, n0 + e);
        if (i >= 0) {
            var sum = v[e];
            if (kpass.begin > 0u) {
                sum += partial_at(i);
            }
            let done = select(sum, activate(sum + add, alpha), kpass.last != 0u);
            if (ELEM_IS_F32 || kpass.last != 0u) {
                c[i] = elem(done);
            } else {
                aux[i] = sum;
            }
        }
    }
}

// What the B loader of one invocation knows about its four columns b_c .. b_c + 3, fixed for
// the whole K loop: validity, image/plane offset and the input position of tap (0, 0)
// (implicit) or the tap offsets (taps mode).
struct Cols {
    ok: vec4<bool>,
    img: vec4<u32>,
    q: vec4<u32>,
    base: vec4<u32>,
    iy0: vec4<i32>,
    ix0: vec4<i32>,
    // base + iy0·W + ix0: the input index of tap (0, 0) of channel 0 (B_IMPLICIT and 6) or of
    // the tap at output pixel (0, 0) (B_TAPS); may point outside the image, only in-image
    // positions are read.
    at: vec4<i32>,
}

fn columns(ph: Phase, b_c: u32) -> Cols {
    let g = ph.gc;
    var c: Cols;
    let cols = vec4<u32>(b_c, b_c + 1u, b_c + 2u, b_c + 3u);
    c.ok = cols < vec4<u32>(params.n);
    let p = vec4<u32>(params.col0) + cols;
    c.img = p / vec4<u32>(params.hw);
    let q = p - c.img * params.hw;
    c.q = q;
    c.base = vec4<u32>(0u);
    c.iy0 = vec4<i32>(0);
    c.ix0 = vec4<i32>(0);
    if (B_MODE == B_IMPLICIT || B_MODE == B_DEFORM || B_MODE == B_DEPTHWISE) {
        let oy = q / vec4<u32>(params.w_out);
        let ox = q - oy * params.w_out;
        c.base = c.img * (params.c_in * params.h * params.w);
        c.iy0 = vec4<i32>(oy * params.stride_h) - i32(params.pad_top);
        c.ix0 = vec4<i32>(ox * params.stride_w) - i32(params.pad_left);
    } else if (B_MODE == B_TRANSPOSED) {
        // Phase pixel (qy, qx); columns outside the real output plane gather nothing.
        let qy = q / vec4<u32>(params.w_out);
        let qx = q - qy * params.w_out;
        c.ok = c.ok & (vec4<u32>(ph.ry) + qy * params.stride_h < vec4<u32>(params.out_h))
                    & (vec4<u32>(ph.rx) + qx * params.stride_w < vec4<u32>(params.out_w));
        c.base = c.img * (params.c_in * params.h * params.w);
        c.iy0 = vec4<i32>(qy) + ph.by;
        c.ix0 = vec4<i32>(qx) + ph.bx;
    } else if (B_MODE == B_POINTWISE) {
        c.base = c.img * (params.c_in * params.hw) + q;
    } else if (B_MODE == B_TAPS) {
        // Columns are taps: their channel plane and offsets.
        let taps = params.kh * params.kw;
        let cl = cols / vec4<u32>(taps);
        let tap = cols - cl * taps;
        let ti = tap / vec4<u32>(params.kw);
        let tj = tap - ti * params.kw;
        c.base = (vec4<u32>(g * (params.c_in / params.groups)) + cl) * (params.h * params.w);
        c.iy0 = vec4<i32>(ti * params.dil_h);
        c.ix0 = vec4<i32>(tj * params.dil_w);
    }
    c.at = vec4<i32>(c.base) + c.iy0 * i32(params.w) + c.ix0;
    return c;
}

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
    let key = t * params.offset_groups + og;
    if (key == ds_key && b_c == ds_col) {
        return;
    }
    ds_key = key;
    ds_col = b_c;
    let taps = params.kh * params.kw;
    let i = t / params.kw;
    let j = t - i * params.kw;
    // offset[img, og·2·taps + 2t (+1), q] and mask[img, og·taps + t, q]
    let off = ((c.img * params.offset_groups + og) * 2u * taps + 2u * t) * params.hw + c.q;
    let dy = vec4<f32>(f32(offset[off.x]), f32(offset[off.y]), f32(offset[off.z]), f32(offset[off.w]));
    let o2 = off + params.hw;
    let dx = vec4<f32>(f32(offset[o2.x]), f32(offset[o2.y]), f32(offset[o2.z]), f32(offset[o2.w]));
    let y = vec4<f32>(c.iy0 + i32(i * params.dil_h)) + dy;
    let x = vec4<f32>(c.ix0 + i32(j * params.dil_w)) + dx;
    var m = vec4<f32>(1.0);
    if (HAS_MASK) {
        let mi = ((c.img * params.offset_groups + og) * taps + t) * params.hw + c.q;
        m = vec4<f32>(f32(mask[mi.x]), f32(mask[mi.y]), f32(mask[mi.z]), f32(mask[mi.w]));
    }
    let s = bilinear_at4(y, x, params.h, params.w);
    let inside = s.inside & c.ok;
    let w = i32(params.w);
    let y1 = s.y0 + 1;
    let x1 = s.x0 + 1;
    let in_y0 = inside & (s.y0 >= vec4<i32>(0));
    let in_y1 = inside & (y1 < vec4<i32>(i32(params.h)));
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

// Row cm of the depthwise stage (B_DEPTHWISE) at the four columns of `c`.
fn depthwise_row(c: Cols, cm: u32) -> vec4<f32> {
    let taps = params.kh * params.kw;
    let plane = (cm / params.dw_mult) * params.h * params.w;
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < params.kh; i++) {
        let dy = i32(i * params.dil_h);
        for (var j = 0u; j < params.kw; j++) {
            let dx = i32(j * params.dil_w);
            let wv = dw_weight[cm * taps + i * params.kw + j];
            v += wv * vec4<f32>(gather(c.ok.x, c.base.x + plane, c.iy0.x + dy, c.ix0.x + dx),
                                gather(c.ok.y, c.base.y + plane, c.iy0.y + dy, c.ix0.y + dx),
                                gather(c.ok.z, c.base.z + plane, c.iy0.z + dy, c.ix0.z + dx),
                                gather(c.ok.w, c.base.w + plane, c.iy0.w + dy, c.ix0.w + dx));
        }
    }
    if (HAS_DW_BIAS) {
        v += aux[cm];
    }
    // NaN stays NaN (tested on the bits, see is_nan)
    let nan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
    if (DW_ACT == ACT_RELU) {
        v = select(max(v, vec4<f32>(0.0)), v, nan);
    } else if (DW_ACT == ACT_RELU6) {
        v = select(clamp(v, vec4<f32>(0.0), vec4<f32>(6.0)), v, nan);
    }
    // Columns past N stay 0 (their products are never stored, but keep them finite).
    return select(vec4<f32>(0.0), v, c.ok);
}

// A_ROW_MAJOR, 2 and 3 in main_flat: where rows r .. r + 3 of A start. Rows past M read row M − 1
// instead of a bounds check per load: their products land in accumulator rows that are never
// stored.
fn a_rows(ph: Phase, r: u32) -> vec4<u32> {
    let rows = min(vec4<u32>(r, r + 1u, r + 2u, r + 3u), vec4<u32>(params.m - 1u));
    if (A_MODE == A_PHASE_TAPS) {
        // rows of the transposed-conv weight [Cin, M, kh, kw]; the channel is in the tap's offset
        return rows * (params.kh * params.kw);
    }
    if (A_MODE == A_OUTPUT_GRAD) {
        // channels g·M + row of dY [N, a_channels, a_hw]; the image and pixel are in Pix.a
        return (vec4<u32>(ph.gc * params.m) + rows) * params.a_hw;
    }
    return (vec4<u32>(ph.gc * params.m) + rows) * params.k;
}

// Column k of the four rows starting at `rows` (a_rows).
fn a_col(rows: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(f32(a[rows.x + k]), f32(a[rows.y + k]), f32(a[rows.z + k]), f32(a[rows.w + k]));
}

// main_flat walks the K of the gathering modes B_IMPLICIT and 6 tap-major: step k is channel
// cl = k mod C of tap t = k / C, C the input channels per conv group. B_IMPLICIT: t = i·kw + j
// is the kernel tap (i, j) and A's column cl·kh·kw + t (A_ROW_MAJOR). B_TRANSPOSED: t = ty·taps_x +
// tx is the phase's tap (ty, tx), kernel tap (i0y + ty·step_y, i0x + tx·step_x), and A's
// element ((c0 + cl)·M + row)·kh·kw + i·kw + j (A_PHASE_TAPS). Each column's input index and
// padding test are worked out once per tap (tap_index); each channel then adds its plane, and
// A its channel step (walk_a_step).
struct Tap {
    // (i, j) for B_IMPLICIT, (ty, tx) for B_TRANSPOSED
    i: u32,
    j: u32,
    // A's offset of this tap at channel cl = 0 (the row's own offset is in a_rows)
    a: u32,
    // false for a B_TRANSPOSED tap past the kernel, or a phase no tap reaches: contributes 0
    real: bool,
}

// Input channels per conv group (params.groups counts phases × groups in B_TRANSPOSED).
fn walk_channels() -> u32 {
    if (B_MODE == B_TRANSPOSED) {
        return params.c_in / (params.groups / (params.stride_h * params.stride_w));
    }
    return params.c_in / params.groups;
}

// How far A's offset moves from one channel to the next.
fn walk_a_step() -> u32 {
    if (B_MODE == B_TRANSPOSED) {
        return params.m * params.kh * params.kw;
    }
    return params.kh * params.kw;
}

fn tap_at(ph: Phase, i: u32, j: u32) -> Tap {
    if (B_MODE == B_TRANSPOSED) {
        let ki = ph.i0y + i * params.step_y;
        let kj = ph.i0x + j * params.step_x;
        let real = ph.ok && ki < params.kh && kj < params.kw;
        // a phantom tap reads a real weight (clamped) that is then zeroed
        let a = phase_channel0(ph.gc) * walk_a_step() + min(ki, params.kh - 1u) * params.kw + min(kj, params.kw - 1u);
        return Tap(i, j, a, real);
    }
    return Tap(i, j, i * params.kw + j, true);
}

fn next_tap(ph: Phase, p: Tap) -> Tap {
    let nx = select(params.kw, params.taps_x, B_MODE == B_TRANSPOSED);
    if (p.j + 1u == nx) {
        return tap_at(ph, p.i + 1u, 0u);
    }
    return tap_at(ph, p.i, p.j + 1u);
}

// Input index of tap p in channel 0 of the conv group at the four columns of `c`, or −1
// where the tap falls in the padding (or is phantom, or the column is past N).
fn tap_index(ph: Phase, c: Cols, p: Tap) -> vec4<i32> {
    var dy: i32;
    var dx: i32;
    if (B_MODE == B_TRANSPOSED) {
        dy = -i32(p.i * params.dq_y);
        dx = -i32(p.j * params.dq_x);
    } else {
        dy = i32(p.i * params.dil_h);
        dx = i32(p.j * params.dil_w);
    }
    let ok = c.ok & vec4<bool>(p.real) & (vec4<u32>(c.iy0 + dy) < vec4<u32>(params.h))
                  & (vec4<u32>(c.ix0 + dx) < vec4<u32>(params.w));
    let off = i32(ph.gc * walk_channels() * params.h * params.w) + dy * i32(params.w) + dx;
    return select(vec4<i32>(-1), c.at + off, ok);
}

// main_flat walks B_TAPS's K (the output pixels p = (img·Ho + oy)·Wo + ox, in order) with
// the pixel's coordinates stepped, no division per k: `a` is dY's offset of the pixel
// (img·a_channels·a_hw + q, A_OUTPUT_GRAD), `b` the input index of its window's corner
// img·Cin·H·W + y0·W + x0 with y0 = oy·sh − pt, x0 = ox·sw − pl (may lie outside the image).
struct Pix {
    img: u32,
    oy: u32,
    ox: u32,
    y0: i32,
    x0: i32,
    a: u32,
    b: i32,
}

fn pix_at(img: u32, oy: u32, ox: u32) -> Pix {
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
    let a = (img * params.a_channels) * params.a_hw + oy * params.w_out + ox;
    let b = i32(img * params.c_in * params.h * params.w) + y0 * i32(params.w) + x0;
    return Pix(img, oy, ox, y0, x0, a, b);
}

fn next_pix(p: Pix) -> Pix {
    if (p.ox + 1u < params.w_out) {
        var n = p;
        n.ox += 1u;
        n.x0 += i32(params.stride_w);
        n.a += 1u;
        n.b += i32(params.stride_w);
        return n;
    }
    if (p.oy + 1u < params.a_hw / params.w_out) {
        return pix_at(p.img, p.oy + 1u, 0u);
    }
    return pix_at(p.img + 1u, 0u, 0u);
}

// B_TAPS's row at pixel p for the four tap columns of `c` (0 where the tap falls outside
// the image, or the column is past N).
fn pix_load(c: Cols, p: Pix) -> vec4<f32> {
    let ok = c.ok & (vec4<u32>(c.iy0 + p.y0) < vec4<u32>(params.h)) & (vec4<u32>(c.ix0 + p.x0) < vec4<u32>(params.w));
    return tap_load(select(vec4<i32>(-1), c.at + p.b, ok), 0u);
}

// The inputs at `at` (tap_index) in the channel plane `plane` elements further; 0 at −1.
fn tap_load(at: vec4<i32>, plane: u32) -> vec4<f32> {
    let ok = at >= vec4<i32>(0);
    let i = vec4<u32>(select(vec4<i32>(0), at + i32(plane), ok));
    return select(vec4<f32>(0.0), vec4<f32>(b_at(i.x), b_at(i.y), b_at(i.z), b_at(i.w)), ok);
}

// Four values of row bk of B at columns b_c .. b_c + 3 (0 past K or N).
fn load_b(ph: Phase, c: Cols, bk: u32, b_c: u32) -> vec4<f32> {
    let g = ph.gc;
    var bv = vec4<f32>(0.0);
    if (bk >= params.k) {
        return bv;
    }
    if (B_MODE == B_DENSE) {
        let row = g * params.k * params.n + bk * params.n;
        if (c.ok.w) {
            bv = b_quad(row + b_c);
        } else {
            for (var e = 0u; e < 4u; e++) {
                if (b_c + e < params.n) {
                    bv[e] = b_at(row + b_c + e);
                }
            }
        }
    } else if (B_MODE == B_IMPLICIT) {
        let taps = params.kh * params.kw;
        let cl = bk / taps;
        let tap = bk - cl * taps;
        let i = tap / params.kw;
        let j = tap - i * params.kw;
        let chan = (g * (params.c_in / params.groups) + cl) * params.h * params.w;
        let dy = i32(i * params.dil_h);
        let dx = i32(j * params.dil_w);
        bv = vec4<f32>(gather(c.ok.x, c.base.x + chan, c.iy0.x + dy, c.ix0.x + dx),
                       gather(c.ok.y, c.base.y + chan, c.iy0.y + dy, c.ix0.y + dx),
                       gather(c.ok.z, c.base.z + chan, c.iy0.z + dy, c.ix0.z + dx),
                       gather(c.ok.w, c.base.w + chan, c.iy0.w + dy, c.ix0.w + dx));
    } else if (B_MODE == B_DEPTHWISE) {
        bv = depthwise_row(c, bk);
    } else if (B_MODE == B_TRANSPOSED) {
        let t = phase_tap(ph, bk);
        let ok = t.w != 0u;
        let chan = (phase_channel0(g) + t.x) * params.h * params.w;
        let dy = i32(t.y * params.dq_y);
        let dx = i32(t.z * params.dq_x);
        bv = vec4<f32>(gather(ok && c.ok.x, c.base.x + chan, c.iy0.x - dy, c.ix0.x - dx),
                       gather(ok && c.ok.y, c.base.y + chan, c.iy0.y - dy, c.ix0.y - dx),
                       gather(ok && c.ok.z, c.base.z + chan, c.iy0.z - dy, c.ix0.z - dx),
                       gather(ok && c.ok.w, c.base.w + chan, c.iy0.w - dy, c.ix0.w - dx));
    } else if (B_MODE == B_DEFORM) {
        // Tap-major rows: k = t·Cin/G + cl (A_TAP_MAJOR reads the weight in the same order).
        let cin_g = params.c_in / params.groups;
        let t = bk / cin_g;
        let cl = bk - t * cin_g;
        let ci = g * cin_g + cl;
        deform_refresh(c, b_c, t, ci / (params.c_in / params.offset_groups));
        let plane = ci * params.h * params.w;
        bv = ds_w00 * deform_corner(ds_c00, plane) + ds_w01 * deform_corner(ds_c01, plane)
           + ds_w10 * deform_corner(ds_c10, plane) + ds_w11 * deform_corner(ds_c11, plane);
    } else if (B_MODE == B_TAPS) {
        // Row bk is one output pixel: where its window starts in the input.
        let pimg = bk / params.a_hw;
        let pq = bk - pimg * params.a_hw;
        let oy = pq / params.w_out;
        let ox = pq - oy * params.w_out;
        let plane0 = pimg * (params.c_in * params.h * params.w);
        let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
        let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
        bv = vec4<f32>(gather(c.ok.x, plane0 + c.base.x, y0 + c.iy0.x, x0 + c.ix0.x),
                       gather(c.ok.y, plane0 + c.base.y, y0 + c.iy0.y, x0 + c.ix0.y),
                       gather(c.ok.z, plane0 + c.base.z, y0 + c.iy0.z, x0 + c.ix0.z),
                       gather(c.ok.w, plane0 + c.base.w, y0 + c.iy0.w, x0 + c.ix0.w));
    } else {
        let off = (g * params.k + bk) * params.hw;
        if (c.ok.w && c.img.x == c.img.w) {
            // Four columns in one image: contiguous.
            let s = c.base.x + off;
            bv = b_quad(s);
        } else {
            let last = b_len() - 1u;
            bv = vec4<f32>(select(0.0, b_at(min(c.base.x + off, last)), c.ok.x),
                           select(0.0, b_at(min(c.base.y + off, last)), c.ok.y),
                           select(0.0, b_at(min(c.base.z + off, last)), c.ok.z),
                           select(0.0, b_at(min(c.base.w + off, last)), c.ok.w));
        }
    }
    return bv;
}

// Rows 4·i4 .. 4·i4 + 3 of the tile at column k0 + kk of A.
fn load_a4(ph: Phase, row0: u32, i4: u32, k: u32) -> vec4<f32> {
    if (k >= params.k) {
        return vec4<f32>(0.0);
    }
    let r = row0 + 4u * i4;
    return vec4<f32>(load_a(ph, r, k), load_a(ph, r + 1u, k), load_a(ph, r + 2u, k), load_a(ph, r + 3u, k));
}

// The tile of workgroup `tile` for a kernel of bm × bn tiles: (group, first row, first
// column, 1), or w = 0 when the workgroup is past the last tile of a folded grid.
fn tile_origin(tile: u32, bm: u32, bn: u32) -> vec4<u32> {
    let tiles_m = (params.m + bm - 1u) / bm;
    let tiles_n = (params.n + bn - 1u) / bn;
    let per_group = tiles_m * tiles_n;
    let g = tile / per_group;
    let t = tile - g * per_group;
    return vec4<u32>(g, (t / tiles_n) * bm, (t % tiles_n) * bn, select(0u, 1u, g < params.groups));
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let o = tile_origin(wid.x + nwg.x * (wid.y + nwg.y * wid.z), BM, BN);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x);
    let row0 = o.y;
    let col0 = o.z;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let m0 = row0 + 4u * lid.y;
    let n0 = col0 + 4u * lid.x;

    // Loader roles: for A, column k = li % 16 of rows 4·(li / 16)..+3; for B, row li / 16
    // and the four columns 4·(li % 16)..+3.
    let a_k = li % BK;
    let a_i = li / BK;
    let b_k = li / 16u;
    let b_j = li % 16u;
    let cols = columns(ph, col0 + 4u * b_j);

    let k_end = min(kpass.end, params.k);
    for (var kt = kpass.begin / BK; kt * BK < k_end; kt++) {
        let k0 = kt * BK;
        a_tile[a_k * 16u + a_i] = load_a4(ph, row0, a_i, k0 + a_k);
        b_tile[b_k * 16u + b_j] = load_b(ph, cols, k0 + b_k, col0 + 4u * b_j);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let x = a_tile[kk * 16u + lid.y];
            let y = b_tile[kk * 16u + lid.x];
            acc0 += x.x * y;
            acc1 += x.y * y;
            acc2 += x.z * y;
            acc3 += x.w * y;
        }
        workgroupBarrier();
    }

    store_row(ph, m0, n0, acc0);
    store_row(ph, m0 + 1u, n0, acc1);
    store_row(ph, m0 + 2u, n0, acc2);
    store_row(ph, m0 + 3u, n0, acc3);
}

@compute @workgroup_size(8, 8, 1)
fn main_8x8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let o = tile_origin(wid.x + nwg.x * (wid.y + nwg.y * wid.z), BM, BN);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x);
    let row0 = o.y;
    let col0 = o.z;

    // acc<r><h>: row 8·lid.y + r, columns 8·lid.x + 4h .. + 3.
    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    var acc40 = vec4<f32>(0.0);
    var acc41 = vec4<f32>(0.0);
    var acc50 = vec4<f32>(0.0);
    var acc51 = vec4<f32>(0.0);
    var acc60 = vec4<f32>(0.0);
    var acc61 = vec4<f32>(0.0);
    var acc70 = vec4<f32>(0.0);
    var acc71 = vec4<f32>(0.0);
    let m0 = row0 + 8u * lid.y;
    let n0 = col0 + 8u * lid.x;

    // Loader roles (64 invocations fill 256 slots of each tile, four each): for A, column
    // k = li % 16 of row groups li / 16 + 4e; for B, rows li / 16 + 4e and the four columns
    // 4·(li % 16) .. + 3, the same for every e (so one column precompute serves all four).
    let a_k = li % BK;
    let b_j = li % 16u;
    let cols = columns(ph, col0 + 4u * b_j);

    let k_end = min(kpass.end, params.k);
    for (var kt = kpass.begin / BK; kt * BK < k_end; kt++) {
        let k0 = kt * BK;
        for (var e = 0u; e < 4u; e++) {
            let slot = li / 16u + 4u * e;
            a_tile[a_k * 16u + slot] = load_a4(ph, row0, slot, k0 + a_k);
            b_tile[slot * 16u + b_j] = load_b(ph, cols, k0 + slot, col0 + 4u * b_j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let x0 = a_tile[kk * 16u + 2u * lid.y];
            let x1 = a_tile[kk * 16u + 2u * lid.y + 1u];
            let y0 = b_tile[kk * 16u + 2u * lid.x];
            let y1 = b_tile[kk * 16u + 2u * lid.x + 1u];
            acc00 += x0.x * y0;
            acc01 += x0.x * y1;
            acc10 += x0.y * y0;
            acc11 += x0.y * y1;
            acc20 += x0.z * y0;
            acc21 += x0.z * y1;
            acc30 += x0.w * y0;
            acc31 += x0.w * y1;
            acc40 += x1.x * y0;
            acc41 += x1.x * y1;
            acc50 += x1.y * y0;
            acc51 += x1.y * y1;
            acc60 += x1.z * y0;
            acc61 += x1.z * y1;
            acc70 += x1.w * y0;
            acc71 += x1.w * y1;
        }
        workgroupBarrier();
    }

    store_row(ph, m0, n0, acc00);
    store_row(ph, m0, n0 + 4u, acc01);
    store_row(ph, m0 + 1u, n0, acc10);
    store_row(ph, m0 + 1u, n0 + 4u, acc11);
    store_row(ph, m0 + 2u, n0, acc20);
    store_row(ph, m0 + 2u, n0 + 4u, acc21);
    store_row(ph, m0 + 3u, n0, acc30);
    store_row(ph, m0 + 3u, n0 + 4u, acc31);
    store_row(ph, m0 + 4u, n0, acc40);
    store_row(ph, m0 + 4u, n0 + 4u, acc41);
    store_row(ph, m0 + 5u, n0, acc50);
    store_row(ph, m0 + 5u, n0 + 4u, acc51);
    store_row(ph, m0 + 6u, n0, acc60);
    store_row(ph, m0 + 6u, n0 + 4u, acc61);
    store_row(ph, m0 + 7u, n0, acc70);
    store_row(ph, m0 + 7u, n0 + 4u, acc71);
}

// main_16x16's tile shape (the Rust twin is `TileShape`): TILE_SQUARE 128×128 (8×8
// invocations, K slices of 16), TILE_WIDE 64×256 (4×16 invocations, K slices of 8), TILE_TALL
// 256×64 (16×4 invocations, K slices of 8). The host picks the one that wastes the fewest padded rows and
// columns for the GEMM's M and N; all three use at most 16 KiB of workgroup memory.
override TILE_SHAPE: u32 = TILE_SQUARE;

// Invocations along N; along M there are 64 / that.
fn wg_x() -> u32 {
    return select(select(8u, 16u, TILE_SHAPE == TILE_WIDE), 4u, TILE_SHAPE == TILE_TALL);
}

fn bk16() -> u32 {
    return select(8u, 16u, TILE_SHAPE == TILE_SQUARE);
}

// a_tile16[k·BM/4 + i] = A[row0 + 4i .. row0 + 4i + 3][k0 + k]
var<workgroup> a_tile16: array<vec4<f32>, 512>;
// b_tile16[k·BN/4 + j] = B[k0 + k][col0 + 4j .. col0 + 4j + 3]
var<workgroup> b_tile16: array<vec4<f32>, 512>;

// Stores a 16×16 block, sub-block 4t + u (acc<t><u>) at rows m0 + 4t, columns n0 + 4u, in a
// loop: one inlined copy of the write-out instead of sixteen (llvmpipe compiles each copy
// with its own masks; sixteen made the first dispatch of a kernel ~3× slower).
fn store16(ph: Phase, m0: u32, n0: u32, blocks: array<mat4x4<f32>, 16>) {
    var b = blocks;
    for (var i = 0u; i < 16u; i++) {
        store4(ph, m0 + 4u * (i / 4u), n0 + 4u * (i % 4u), b[i]);
    }
}

// x·yᵀ for four rows x and four columns y: column c of the result is row c's four values.
fn outer4(x: vec4<f32>, y: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(x.x * y, x.y * y, x.z * y, x.w * y);
}

// Stores the 4×4 sub-block `acc` whose first row is m and first column n.
fn store4(ph: Phase, m: u32, n: u32, acc: mat4x4<f32>) {
    store_row(ph, m, n, acc[0]);
    store_row(ph, m + 1u, n, acc[1]);
    store_row(ph, m + 2u, n, acc[2]);
    store_row(ph, m + 3u, n, acc[3]);
}

@compute @workgroup_size(64, 1, 1)
fn main_16x16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let nx = wg_x();
    let lx = li % nx;
    let ly = li / nx;
    let bm = 16u * (64u / nx);
    let bn = 16u * nx;
    let bk = bk16();
    // vec4 slots per row of k in each tile
    let aq = bm / 4u;
    let bq = bn / 4u;
    let o = tile_origin(wid.x + nwg.x * (wid.y + nwg.y * wid.z), bm, bn);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x);
    let row0 = o.y;
    let col0 = o.z;

    // acc<t><u>: rows 16·ly + 4t .. + 3 (one per matrix column), columns 16·lx + 4u .. + 3
    // (the four components).
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc02 = mat4x4<f32>();
    var acc03 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    var acc12 = mat4x4<f32>();
    var acc13 = mat4x4<f32>();
    var acc20 = mat4x4<f32>();
    var acc21 = mat4x4<f32>();
    var acc22 = mat4x4<f32>();
    var acc23 = mat4x4<f32>();
    var acc30 = mat4x4<f32>();
    var acc31 = mat4x4<f32>();
    var acc32 = mat4x4<f32>();
    var acc33 = mat4x4<f32>();
    let m0 = row0 + 16u * ly;
    let n0 = col0 + 16u * lx;

    // Loader roles (64 invocations fill the bk·aq and bk·bq slots of the tiles): for A,
    // column k = li % bk of row quads li / bk + (64 / bk)·e; for B, rows li / bq + (64 / bq)·e
    // and the four columns 4·(li % bq) .. + 3, the same for every e (one column precompute
    // serves them all).
    let a_k = li % bk;
    let b_j = li % bq;
    let cols = columns(ph, col0 + 4u * b_j);
    let a_loads = bk * aq / 64u;
    let b_loads = bk * bq / 64u;

    let k_end = min(kpass.end, params.k);
    for (var kt = kpass.begin / bk; kt * bk < k_end; kt++) {
        let k0 = kt * bk;
        for (var e = 0u; e < a_loads; e++) {
            let a_slot = li / bk + (64u / bk) * e;
            a_tile16[a_k * aq + a_slot] = load_a4(ph, row0, a_slot, k0 + a_k);
        }
        for (var e = 0u; e < b_loads; e++) {
            let b_row = li / bq + (64u / bq) * e;
            b_tile16[b_row * bq + b_j] = load_b(ph, cols, k0 + b_row, col0 + 4u * b_j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < bk; kk++) {
            let a = kk * aq + 4u * ly;
            let b = kk * bq + 4u * lx;
            let x0 = a_tile16[a];
            let x1 = a_tile16[a + 1u];
            let x2 = a_tile16[a + 2u];
            let x3 = a_tile16[a + 3u];
            let y0 = b_tile16[b];
            let y1 = b_tile16[b + 1u];
            let y2 = b_tile16[b + 2u];
            let y3 = b_tile16[b + 3u];
            acc00 += outer4(x0, y0);
            acc01 += outer4(x0, y1);
            acc02 += outer4(x0, y2);
            acc03 += outer4(x0, y3);
            acc10 += outer4(x1, y0);
            acc11 += outer4(x1, y1);
            acc12 += outer4(x1, y2);
            acc13 += outer4(x1, y3);
            acc20 += outer4(x2, y0);
            acc21 += outer4(x2, y1);
            acc22 += outer4(x2, y2);
            acc23 += outer4(x2, y3);
            acc30 += outer4(x3, y0);
            acc31 += outer4(x3, y1);
            acc32 += outer4(x3, y2);
            acc33 += outer4(x3, y3);
        }
        workgroupBarrier();
    }

    store16(ph, m0, n0, array<mat4x4<f32>, 16>(acc00, acc01, acc02, acc03, acc10, acc11, acc12, acc13,
                                                acc20, acc21, acc22, acc23, acc30, acc31, acc32, acc33));
}

// main_flat: main_16x16's tiles and 16×16 blocks without workgroup memory or barriers: each
// invocation reads its own 16 rows of A and 16 columns of B straight from the buffers, one k
// at a time (L1 serves the neighbours' repeats). llvmpipe runs a workgroup's SIMD groups as
// coroutines that switch at every barrier; with no barrier there is no switch, and on
// lavapipe this kernel runs the GEMMs whose B rows load as vec4 (dense, pointwise: four
// loads for 16 columns) ~1.3–1.4× faster than main_16x16 (single-threaded bench, r50_pw and
// the 1024³ GEMM). The implicit conv (B_IMPLICIT) and the transposed phases (B_TRANSPOSED) walk K
// tap-major (see Tap): each column's input index and padding test once per tap, then one
// add and one load per channel; r50_c3 runs in ~16 ms against ~21–23 ms for main_16x16.
// grad_weight's taps (B_TAPS) walk the output pixels in order (see Pix).
// Where B is sampled (deform) it recomputes per load and is not faster. On GPUs shared tiles
// win. Measured on lavapipe (Mesa 22.3): every storage-buffer load runs as a loop over the
// SIMD lanes with a bounds test per component, so cost follows loaded elements, not load
// instructions: reading A as vec4 (four k at once) was ~2× slower here, and removing three
// of the four A loads per k (wrong results, an experiment) sped r50_c3 up only ~1.4×.
@compute @workgroup_size(64, 1, 1)
fn main_flat(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let nx = wg_x();
    let lx = li % nx;
    let ly = li / nx;
    let o = tile_origin(wid.x + nwg.x * (wid.y + nwg.y * wid.z), 16u * (64u / nx), 16u * nx);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x);
    let m0 = o.y + 16u * ly;
    let n0 = o.z + 16u * lx;

    // acc<t><u> as in main_16x16: rows m0 + 4t .. + 3, columns n0 + 4u .. + 3.
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc02 = mat4x4<f32>();
    var acc03 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    var acc12 = mat4x4<f32>();
    var acc13 = mat4x4<f32>();
    var acc20 = mat4x4<f32>();
    var acc21 = mat4x4<f32>();
    var acc22 = mat4x4<f32>();
    var acc23 = mat4x4<f32>();
    var acc30 = mat4x4<f32>();
    var acc31 = mat4x4<f32>();
    var acc32 = mat4x4<f32>();
    var acc33 = mat4x4<f32>();
    let c0 = columns(ph, n0);
    let c1 = columns(ph, n0 + 4u);
    let c2 = columns(ph, n0 + 8u);
    let c3 = columns(ph, n0 + 12u);
    // B_IMPLICIT and 6: K tap-major (see Tap); at<u> hold the tap's input indices of columns
    // n0 + 4u .. + 3.
    let walk = B_MODE == B_IMPLICIT || B_MODE == B_TRANSPOSED;
    let channels = walk_channels();
    let a_step = walk_a_step();
    let plane = params.h * params.w;
    var tap = tap_at(ph, 0u, 0u);
    var cl = 0u;
    var at0 = vec4<i32>(-1);
    var at1 = vec4<i32>(-1);
    var at2 = vec4<i32>(-1);
    var at3 = vec4<i32>(-1);
    let r0 = a_rows(ph, m0);
    let r1 = a_rows(ph, m0 + 4u);
    let r2 = a_rows(ph, m0 + 8u);
    let r3 = a_rows(ph, m0 + 12u);
    // This pass starts at step kpass.begin (KPass): the walks' state there.
    let k0 = kpass.begin;
    if (walk) {
        let t0 = k0 / channels;
        cl = k0 - t0 * channels;
        let per_row = select(params.kw, params.taps_x, B_MODE == B_TRANSPOSED);
        tap = tap_at(ph, t0 / per_row, t0 % per_row);
        at0 = tap_index(ph, c0, tap);
        at1 = tap_index(ph, c1, tap);
        at2 = tap_index(ph, c2, tap);
        at3 = tap_index(ph, c3, tap);
    }
    // B_TAPS: the pixel of step k (see Pix)
    let img0 = k0 / max(params.a_hw, 1u);
    let q0 = k0 - img0 * params.a_hw;
    let oy0 = q0 / max(params.w_out, 1u);
    var px = pix_at(img0, oy0, q0 - oy0 * params.w_out);
    let k_end = min(kpass.end, params.k);
    for (var k = k0; k < k_end; k++) {
        var y0: vec4<f32>;
        var y1: vec4<f32>;
        var y2: vec4<f32>;
        var y3: vec4<f32>;
        // A's column (A_ROW_MAJOR) or element offset (A_OUTPUT_GRAD and 3) for step k
        var ka = k;
        var real = true;
        if (walk) {
            if (cl == 0u) {
                at0 = tap_index(ph, c0, tap);
                at1 = tap_index(ph, c1, tap);
                at2 = tap_index(ph, c2, tap);
                at3 = tap_index(ph, c3, tap);
            }
            ka = tap.a + cl * a_step;
            real = tap.real;
            let pl = cl * plane;
            y0 = tap_load(at0, pl);
            y1 = tap_load(at1, pl);
            y2 = tap_load(at2, pl);
            y3 = tap_load(at3, pl);
            cl += 1u;
            if (cl == channels) {
                cl = 0u;
                tap = next_tap(ph, tap);
            }
        } else if (B_MODE == B_TAPS && A_MODE == A_OUTPUT_GRAD) {
            ka = px.a;
            y0 = pix_load(c0, px);
            y1 = pix_load(c1, px);
            y2 = pix_load(c2, px);
            y3 = pix_load(c3, px);
            px = next_pix(px);
        } else {
            y0 = load_b(ph, c0, k, n0);
            y1 = load_b(ph, c1, k, n0 + 4u);
            y2 = load_b(ph, c2, k, n0 + 8u);
            y3 = load_b(ph, c3, k, n0 + 12u);
        }
        var x0: vec4<f32>;
        var x1: vec4<f32>;
        var x2: vec4<f32>;
        var x3: vec4<f32>;
        if (walk && !real) {
            // a phantom tap: its B is 0 and its (clamped) weight must not make 0·∞ = NaN
            x0 = vec4<f32>(0.0);
            x1 = vec4<f32>(0.0);
            x2 = vec4<f32>(0.0);
            x3 = vec4<f32>(0.0);
        } else if (A_MODE == A_ROW_MAJOR || A_MODE == A_PHASE_TAPS || (A_MODE == A_OUTPUT_GRAD && B_MODE == B_TAPS)) {
            x0 = a_col(r0, ka);
            x1 = a_col(r1, ka);
            x2 = a_col(r2, ka);
            x3 = a_col(r3, ka);
        } else {
            x0 = load_a4(ph, m0, 0u, ka);
            x1 = load_a4(ph, m0, 1u, ka);
            x2 = load_a4(ph, m0, 2u, ka);
            x3 = load_a4(ph, m0, 3u, ka);
        }
        acc00 += outer4(x0, y0);
        acc01 += outer4(x0, y1);
        acc02 += outer4(x0, y2);
        acc03 += outer4(x0, y3);
        acc10 += outer4(x1, y0);
        acc11 += outer4(x1, y1);
        acc12 += outer4(x1, y2);
        acc13 += outer4(x1, y3);
        acc20 += outer4(x2, y0);
        acc21 += outer4(x2, y1);
        acc22 += outer4(x2, y2);
        acc23 += outer4(x2, y3);
        acc30 += outer4(x3, y0);
        acc31 += outer4(x3, y1);
        acc32 += outer4(x3, y2);
        acc33 += outer4(x3, y3);
    }

    store16(ph, m0, n0, array<mat4x4<f32>, 16>(acc00, acc01, acc02, acc03, acc10, acc11, acc12, acc13,
                                                acc20, acc21, acc22, acc23, acc30, acc31, acc32, acc33));
}
