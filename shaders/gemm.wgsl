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
//    COLUMNS_T  b is a column matrix (an unfold of output pixels, rows (g·N + n), one column per
//                pixel) read transposed, chunk by chunk: row k of B is pixel k, column n the
//                kernel column n (grad_weight over deform_im2col.wgsl's workspace, with
//                A_OUTPUT_GRAD). The binding holds the chunk of chunk_cols pixels that k lies in
//                (the last chunk fewer): B[g, k, n] = b[(g·N + n)·len + k − k0] with
//                k0 = k − k mod chunk_cols, len = min(chunk_cols, K − k0).
// bias: [groups·M] (read only when HAS_BIAS).
// c: column n is output pixel p = col0 + n, image img = p / hw and pixel q = p % hw; row m
//    of group g is channel co = g·M + m; the value goes to
//    c[(img − img0)·c_image_stride + co·hw + q] (Y_NHWC: + q·groups·M + co; B_TRANSPOSED: co = gc·M + m and the pixel
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
//
// The GEMM is whole files joined (ShaderId::spec): this file (overrides, the uniform block,
// the write-out shared by every kernel), gemm_a.wgsl (A's modes), gemm_b.wgsl (B's columns
// and the loader dispatch) with one file per B loader, each holding its tiled read and its
// flat walk side by side (gemm_b_dense, _pointwise, _implicit, _transposed, _taps, _deform,
// _depthwise, _columns_t), and one core file per register blocking, the entry point: gemm_4x4.wgsl and
// gemm_8x8.wgsl (64×64 tiles, gemm_tile64.wgsl), gemm_16x16.wgsl and gemm_flat.wgsl (16×16
// blocks, gemm_block16.wgsl).

override HAS_BIAS: bool = false;
override B_MODE: u32 = B_DENSE;
override A_MODE: u32 = A_ROW_MAJOR;
override HAS_MASK: bool = false;
override HAS_DW_BIAS: bool = false;
// The depthwise stage's activation in B_DEPTHWISE: ACT_NONE, ACT_RELU or ACT_RELU6.
override DW_ACT: u32 = ACT_NONE;
// The conv output c is channels-last: row co of column p = (img, q) goes to
// c[(img − img0)·c_image_stride + q·Cout + co] (not co·hw + q), Cout = groups·M (B_TRANSPOSED:
// the conv groups' M, and q the output pixel oy·out_w + ox).
override Y_NHWC: bool = false;

// The uniform block: the GEMM's own sizes here, each loader's fields in its own struct,
// declared in that loader's file (a uniform struct member of struct type starts at a multiple
// of 16 bytes: every struct is padded to one).
// A split K (slices > 1; 0 or 1: none): every tile runs in `slices` workgroups side by side,
// slice s summing k in [s·slice_k, min((s + 1)·slice_k, K)) (slice_k a multiple of 16), and
// stores its raw f32 sum of C's element i at aux[s·slot_len + i] (slot_len: C's elements), no
// bias and no activation; slot_sum.wgsl then adds the slices in order into c. For GEMMs of
// few tiles and a long K (grad_weight: Cout/G × Cin/G·kh·kw over every output pixel), which
// would otherwise keep a handful of workgroups busy. One dispatch: K then runs in one pass
// (each slice within the loop budget).
struct GemmDims {
    m: u32,
    n: u32,
    k: u32,
    groups: u32,
    hw: u32,
    col0: u32,
    c_image_stride: u32,
    alpha_bits: u32,
    img0: u32,
    slices: u32,
    slice_k: u32,
    slot_len: u32,
}

struct GemmParams {
    dims: GemmDims,
    // gemm_b.wgsl: the input and window the gathering loaders read
    conv: ConvWindow,
    // gemm_a.wgsl: A_OUTPUT_GRAD's (and B_TAPS') output-gradient layout
    grad: OutputGrad,
    // gemm_b_deform.wgsl
    deform: DeformSampling,
    // gemm_b_depthwise.wgsl
    dw: DepthwiseStage,
    // gemm_b_transposed.wgsl
    phases: OutputPhases,
    // gemm_b_columns_t.wgsl
    cols: ColumnChunk,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
// a, b, bias and c hold `elem` (f32, or f16 storage with f32 arithmetic); so do the deform
// loader's offset and mask (gemm_b_deform.wgsl); the fused depthwise stage's weight
// (gemm_b_depthwise.wgsl) and bias are always f32. b is declared by gemm_b_scalar.wgsl or
// gemm_b_quad.wgsl.
@group(0) @binding(1) var<storage, read> a: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> c: array<elem>;
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
// of 16 (every K slice size). With A in uniform windows (gemm_a_window.wgsl), a_width is the
// width of this pass's window: its steps begin .. begin + a_width (0 otherwise).
struct KPass {
    begin: u32,
    end: u32,
    last: u32,
    a_width: u32,
}
@group(0) @binding(9) var<uniform> kpass: KPass;

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
    // the slice of a split K this workgroup sums (GemmDims.slices)
    slot: u32,
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

fn phase_of(g: u32, slot: u32) -> Phase {
    var ph: Phase;
    ph.gc = g;
    ph.slot = slot;
    ph.ok = true;
    if (B_MODE == B_TRANSPOSED) {
        let conv_groups = params.dims.groups / (params.conv.stride_h * params.conv.stride_w);
        let phase = g / conv_groups;
        ph.gc = g - phase * conv_groups;
        ph.ry = phase / params.conv.stride_w;
        ph.rx = phase - ph.ry * params.conv.stride_w;
        let y = phase_axis(ph.ry, params.conv.stride_h, params.conv.dil_h, params.conv.pad_top, params.phases.step_y);
        let x = phase_axis(ph.rx, params.conv.stride_w, params.conv.dil_w, params.conv.pad_left, params.phases.step_x);
        ph.i0y = u32(y.x);
        ph.i0x = u32(x.x);
        ph.by = y.y;
        ph.bx = x.y;
        ph.ok = ph.i0y < params.phases.step_y && ph.i0x < params.phases.step_x;
    }
    return ph;
}

// Index in c of row m, column n (the conv write-out described at the top), or −1 for a
// position that is not stored: past M or N, or outside the real output plane (B_TRANSPOSED).
fn out_index(ph: Phase, m: u32, n: u32) -> i32 {
    if (m >= params.dims.m || n >= params.dims.n) {
        return -1;
    }
    let co = ph.gc * params.dims.m + m;
    let p = params.dims.col0 + n;
    let img = p / params.dims.hw;
    let q = p - img * params.dims.hw;
    if (B_MODE == B_TRANSPOSED) {
        let qy = q / params.conv.w_out;
        let oy = ph.ry + params.conv.stride_h * qy;
        let ox = ph.rx + params.conv.stride_w * (q - qy * params.conv.w_out);
        if (oy >= params.phases.out_h || ox >= params.phases.out_w) {
            return -1;
        }
        let plane = params.phases.out_h * params.phases.out_w;
        let pixel = oy * params.phases.out_w + ox;
        if (Y_NHWC) {
            let c_out = params.dims.groups / (params.conv.stride_h * params.conv.stride_w) * params.dims.m;
            return i32((img - params.dims.img0) * params.dims.c_image_stride + pixel * c_out + co);
        }
        return i32((img - params.dims.img0) * params.dims.c_image_stride + co * plane + pixel);
    }
    if (Y_NHWC) {
        return i32((img - params.dims.img0) * params.dims.c_image_stride + q * params.dims.groups * params.dims.m + co);
    }
    return i32((img - params.dims.img0) * params.dims.c_image_stride + co * params.dims.hw + q);
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
    if (HAS_BIAS && m < params.dims.m) {
        add = f32(bias[ph.gc * params.dims.m + m]);
    }
    let alpha = bitcast<f32>(params.dims.alpha_bits);
    for (var e = 0u; e < 4u; e++) {
        let i = out_index(ph, m, n0 + e);
        if (i >= 0 && params.dims.slices > 1u) {
            // one slice of a split K: its raw sum, added up by slot_sum.wgsl
            aux[ph.slot * params.dims.slot_len + u32(i)] = v[e];
        } else if (i >= 0) {
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

// Tiles of C over every group for a kernel of bm × bn tiles (one slice of a split K).
fn tile_count(bm: u32, bn: u32) -> u32 {
    return ((params.dims.m + bm - 1u) / bm) * ((params.dims.n + bn - 1u) / bn) * params.dims.groups;
}

// The tile of workgroup `tile` for a kernel of bm × bn tiles: (group, first row, first
// column, 1), or w = 0 when the workgroup is past the last tile of a folded grid. With a
// split K the workgroups run slice by slice (see k_slice).
fn tile_origin(tile: u32, bm: u32, bn: u32) -> vec4<u32> {
    let tiles_m = (params.dims.m + bm - 1u) / bm;
    let tiles_n = (params.dims.n + bn - 1u) / bn;
    let per_group = tiles_m * tiles_n;
    let slice = tile / tile_count(bm, bn);
    let within = tile - slice * tile_count(bm, bn);
    let g = within / per_group;
    let t = within - g * per_group;
    let real = g < params.dims.groups && slice < max(params.dims.slices, 1u);
    return vec4<u32>(g, (t / tiles_n) * bm, (t % tiles_n) * bn, select(0u, 1u, real));
}

// The range of K workgroup `tile` sums, [x, y), and its slice z: this pass's range (KPass),
// or with a split K (GemmDims.slices > 1) its slice's part of K.
fn k_slice(tile: u32, bm: u32, bn: u32) -> vec3<u32> {
    let k_end = min(kpass.end, params.dims.k);
    if (params.dims.slices <= 1u) {
        return vec3<u32>(kpass.begin, k_end, 0u);
    }
    let slice = tile / tile_count(bm, bn);
    let lo = slice * params.dims.slice_k;
    return vec3<u32>(lo, min(lo + params.dims.slice_k, k_end), slice);
}
