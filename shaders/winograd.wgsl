// Winograd F(2×2, 3×3) conv2d (stride 1, dilation 1, zero padding): the output is cut into
// 2×2 tiles, each read through a 4×4 input patch. With the transforms of Lavin & Gray (2016)
//   Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 −1 −1],
// one tile of one output channel is Aᵀ [Σ_ci (G w Gᵀ) ⊙ (Bᵀ d Bᵀᵀ)] A: the sum over input
// channels is, for each of the 16 transform points t = 4·a + b, a GEMM
//   M[t, g] (Cout/G × tiles) = U[t, g] (Cout/G × Cin/G) · V[t, g] (Cin/G × tiles),
// which the GEMM core computes as 16·G batched dense GEMMs (batch index t·G + g). Three entry
// points around it (dtype_f32.wgsl or dtype_f16.wgsl and activation.wgsl in front):
//   weights   w [Cout, Cin/G, 3, 3] (elem; FLIP: a conv_transpose2d's weight, below) → U [16·G, Cout/G, Cin/G]
//             (f32), u[((t·G + g)·Mo + m)·K + cl]
//   inputs    x [N, Cin, H, W] (elem; X_NHWC: stored [N, H, W, Cin]), tiles tile0 .. tile0 + tiles → V [16·G, Cin/G, stride] (f32),
//             ws[((t·G + g)·K + cl)·stride + n], the columns tiles .. stride zeros (stride = tiles
//             rounded up to 4: the GEMM reads whole vec4 rows)
//   outputs   M [16·G, Cout/G, stride] (f32, ws) → y [N, Cout, Ho, Wo] (elem; Y_NHWC: stored
//             [N, Ho, Wo, Cout]): Aᵀ M A, + bias,
//             activation; the 2×2 tile clipped at the bottom and right edges.
// (K = Cin/G, Mo = Cout/G.) Tile number `tile` (over the whole batch) is image tile / (th·tw),
// tile row ty and column tx within it; its outputs are (2ty + i, 2tx + j), i, j < 2, and its
// patch the input rows 2ty − pad_top + 0..3, columns 2tx − pad_left + 0..3 (zeros outside).
//
// NaN and ±∞: the transforms add values of different positions (Bᵀ d B mixes the whole
// patch, Aᵀ M A the 16 points), so an ∞ in one input would leave ∞ − ∞ = NaN on outputs the
// direct conv gives ±∞ or a finite value, and values near the f32 limit can overflow in a
// transform where the direct sum does not. A non-finite input, weight or transform overflow
// makes the tile's 2×2 result non-finite (additions and products by nonzero constants keep a
// non-finite value non-finite — G's zeros are never multiplied —, every point of M sums every
// channel of the group, and every point of M reaches an output through Aᵀ M A), so `outputs`
// recomputes a tile whose result is not all finite by the direct sum (padding taps read 0,
// 0·w included, as the reference): NaN and ±∞ land where the reference puts them, at the
// cost of that tile only. (Where only an f32 partial sum overflows and the exact sum is
// finite, the summation order decides, as between any two algorithms: the direct sum may
// give ±∞ where the transforms' halved values stay finite.)

struct WinogradParams {
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    groups: u32,
    pad_top: u32,
    pad_left: u32,
    h_out: u32,
    w_out: u32,
    // tiles per row, tiles per image
    tiles_w: u32,
    tiles_per_image: u32,
    // this launch's first tile and its number of tiles (the workspace's column count)
    tile0: u32,
    tiles: u32,
    // invocations of this launch (weights: Cout·K, inputs: Cin·stride/4, outputs: Cout·stride/4)
    total: u32,
    alpha_bits: u32,
    // the row length of V and M: tiles rounded up to a multiple of 4
    stride: u32,
}

@group(0) @binding(0) var<uniform> params: WinogradParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read> weight: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;
// V (inputs) or M (outputs) of the layout above, four columns (tiles) per element: the rows'
// length is a multiple of 4 (f32 whatever `elem` is).
@group(0) @binding(5) var<storage, read_write> ws: array<vec4<f32>>;
// U (weights).
@group(0) @binding(6) var<storage, read_write> u: array<f32>;

override HAS_BIAS: bool = false;
// The weight is a stride-1 conv_transpose2d's [Cin, Cout/G, 3, 3] (K = Cin/G input channels
// per group, Mo = Cout/G): the conv it equals (padding 2 − p) has the taps flipped and the
// channel axes swapped, W[g·K + cl, m, 2 − i, 2 − j] for the conv's (g·Mo + m, cl, i, j).
override FLIP: bool = false;
override X_NHWC: bool = false;
override Y_NHWC: bool = false;

const WG: u32 = 64u;

fn index_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
}

// The tile's image, first output row and first output column.
fn tile_origin(n: u32) -> vec3<u32> {
    let tile = params.tile0 + n;
    let img = tile / params.tiles_per_image;
    let r = tile - img * params.tiles_per_image;
    let ty = r / params.tiles_w;
    return vec3<u32>(img, 2u * ty, 2u * (r - ty * params.tiles_w));
}

// Where channel c of image img starts in x (its pixels px apart, rows W·px).
fn channel_base(img: u32, c: u32) -> u32 {
    if (X_NHWC) {
        return img * params.h * params.w * params.c_in + c;
    }
    return (img * params.c_in + c) * params.h * params.w;
}

// x at row y, column x of the channel at `base`, or 0 outside the image (the zero padding).
fn pixel(base: u32, y: i32, x: i32) -> f32 {
    if (y < 0 || x < 0 || y >= i32(params.h) || x >= i32(params.w)) {
        return 0.0;
    }
    let px = select(1u, params.c_in, X_NHWC);
    return f32(input[base + (u32(y) * params.w + u32(x)) * px]);
}

// Bᵀ applied along one axis: (d0 − d2, d1 + d2, d2 − d1, d1 − d3).
fn b_t(d: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(d.x - d.z, d.y + d.z, d.z - d.y, d.y - d.w);
}

// G applied along one axis of three values: (g0, ½(g0 + g1 + g2), ½(g0 − g1 + g2), g2).
fn g_of(g: vec3<f32>) -> vec4<f32> {
    return vec4<f32>(g.x, 0.5 * (g.x + g.y + g.z), 0.5 * (g.x - g.y + g.z), g.z);
}

// Aᵀ applied along one axis: (m0 + m1 + m2, m1 − m2 − m3).
fn a_t(m: vec4<f32>) -> vec2<f32> {
    return vec2<f32>(m.x + m.y + m.z, m.y - m.z - m.w);
}

// The weight of the conv's output channel co (group g = co / Mo), input channel cl of the
// group, tap t = 3i + j.
fn w_at(co: u32, cl: u32, t: u32) -> f32 {
    let k = params.c_in / params.groups;
    if (FLIP) {
        let mo = params.c_out / params.groups;
        let g = co / mo;
        return f32(weight[((g * k + cl) * mo + co - g * mo) * 9u + 8u - t]);
    }
    return f32(weight[(co * k + cl) * 9u + t]);
}

fn finite(v: vec4<f32>) -> bool {
    return all((bitcast<vec4<u32>>(v) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u));
}

@compute @workgroup_size(64, 1, 1)
fn weights(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index_of(wid, nwg, lid);
    if (i >= params.total) {
        return;
    }
    let k = params.c_in / params.groups;
    let mo = params.c_out / params.groups;
    let co = i / k;
    let cl = i - co * k;
    let g = co / mo;
    let m = co - g * mo;
    // G w, column by column (G along the kernel's rows), then each row of it times Gᵀ
    let col0 = g_of(vec3<f32>(w_at(co, cl, 0u), w_at(co, cl, 3u), w_at(co, cl, 6u)));
    let col1 = g_of(vec3<f32>(w_at(co, cl, 1u), w_at(co, cl, 4u), w_at(co, cl, 7u)));
    let col2 = g_of(vec3<f32>(w_at(co, cl, 2u), w_at(co, cl, 5u), w_at(co, cl, 8u)));
    let step = params.groups * mo * k;
    let base = (g * mo + m) * k + cl;
    for (var a = 0u; a < 4u; a++) {
        let row = g_of(vec3<f32>(col0[a], col1[a], col2[a]));
        for (var b = 0u; b < 4u; b++) {
            u[(4u * a + b) * step + base] = row[b];
        }
    }
}

// V of tile n of the channel at `base` (x's rows and columns from its origin o), rows a of
// points 4a .. 4a + 3; zeros for a padding column n ≥ tiles.
fn tile_v(base: u32, n: u32) -> array<vec4<f32>, 4> {
    if (n >= params.tiles) {
        return array<vec4<f32>, 4>();
    }
    let o = tile_origin(n);
    let y0 = i32(o.y) - i32(params.pad_top);
    let x0 = i32(o.z) - i32(params.pad_left);
    // image o.x: C·H·W elements further in either layout
    let base_i = base + o.x * params.c_in * params.h * params.w;
    var d: array<vec4<f32>, 4>;
    for (var r = 0; r < 4; r++) {
        let y = y0 + r;
        d[r] = vec4<f32>(pixel(base_i, y, x0), pixel(base_i, y, x0 + 1), pixel(base_i, y, x0 + 2), pixel(base_i, y, x0 + 3));
    }
    // Bᵀ d (rows), then each row times B (columns)
    return array<vec4<f32>, 4>(
        b_t(d[0] - d[2]),
        b_t(d[1] + d[2]),
        b_t(d[2] - d[1]),
        b_t(d[1] - d[3]),
    );
}

// One channel, four consecutive tiles n0 .. n0 + 3 (one vec4 of every row of V).
@compute @workgroup_size(64, 1, 1)
fn inputs(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index_of(wid, nwg, lid);
    if (i >= params.total) {
        return;
    }
    let quads = params.stride / 4u;
    let c = i / quads;
    let q = i - c * quads;
    let n0 = 4u * q;
    // channel c of image 0 (tile_v adds the image)
    let base = channel_base(0u, c);
    let v0 = tile_v(base, n0);
    let v1 = tile_v(base, n0 + 1u);
    let v2 = tile_v(base, n0 + 2u);
    let v3 = tile_v(base, n0 + 3u);
    // point t = 4a + b of channel c = g·K + cl, tiles n0 .. n0 + 3, at vec4
    // ((t·G + g)·K + cl)·stride/4 + q
    let step = params.c_in * quads;
    let dst = c * quads + q;
    for (var a = 0u; a < 4u; a++) {
        let r0 = v0[a];
        let r1 = v1[a];
        let r2 = v2[a];
        let r3 = v3[a];
        let t = 4u * a * step + dst;
        ws[t] = vec4<f32>(r0.x, r1.x, r2.x, r3.x);
        ws[t + step] = vec4<f32>(r0.y, r1.y, r2.y, r3.y);
        ws[t + 2u * step] = vec4<f32>(r0.z, r1.z, r2.z, r3.z);
        ws[t + 3u * step] = vec4<f32>(r0.w, r1.w, r2.w, r3.w);
    }
}

// Row i of the 3×3 taps `w` over the patch rows `top` (row i) and `bottom` (row i + 1):
// acc + each of the three taps times the four outputs' pixels (y00, y01, y10, y11), a product
// only where `ok` holds for its pixel (`ok_top`, `ok_bottom`: patch_ok of the two rows).
fn taps_row(acc: vec4<f32>, top: vec4<f32>, bottom: vec4<f32>, ok_top: vec4<bool>, ok_bottom: vec4<bool>, w: vec3<f32>) -> vec4<f32> {
    let z = vec4<f32>(0.0);
    var a = acc + select(z, vec4<f32>(top.x, top.y, bottom.x, bottom.y) * w.x, vec4<bool>(ok_top.xy, ok_bottom.xy));
    a += select(z, vec4<f32>(top.y, top.z, bottom.y, bottom.z) * w.y, vec4<bool>(ok_top.yz, ok_bottom.yz));
    return a + select(z, vec4<f32>(top.z, top.w, bottom.z, bottom.w) * w.z, vec4<bool>(ok_top.zw, ok_bottom.zw));
}

// The patch row y of the channel at `base`, columns x0 .. x0 + 3 (zeros outside).
fn patch_row(base: u32, y: i32, x0: i32) -> vec4<f32> {
    return vec4<f32>(pixel(base, y, x0), pixel(base, y, x0 + 1), pixel(base, y, x0 + 2), pixel(base, y, x0 + 3));
}

// Which pixels of the patch row y, columns x0 .. x0 + 3, take part in the direct sum: all of
// them for a conv (the padding is zeros, 0·w included, as the reference); for a transposed
// conv (FLIP) only those inside the input: its weights meet no padding zeros (0·∞ would be
// NaN where the reference sums nothing).
fn patch_ok(y: i32, x0: i32) -> vec4<bool> {
    if (!FLIP) {
        return vec4<bool>(true);
    }
    let x = vec4<i32>(x0, x0 + 1, x0 + 2, x0 + 3);
    let row = y >= 0 && y < i32(params.h);
    return (x >= vec4<i32>(0)) & (x < vec4<i32>(i32(params.w))) & vec4<bool>(row);
}

// The direct sum of the 2×2 outputs at (oy, ox) .. (oy + 1, ox + 1) of channel co of image
// img (a tile whose Winograd result is not finite): (y00, y01, y10, y11), channel by channel,
// taps in row-major order (patch_ok says which products count). 4·Cin/G loop turns.
fn direct_tile(img: u32, co: u32, oy: u32, ox: u32) -> vec4<f32> {
    let k = params.c_in / params.groups;
    let g = co / (params.c_out / params.groups);
    var acc = vec4<f32>(0.0);
    let y0 = i32(oy) - i32(params.pad_top);
    let x0 = i32(ox) - i32(params.pad_left);
    for (var cl = 0u; cl < k; cl++) {
        let base = channel_base(img, g * k + cl);
        // one kernel row per turn (the three taps of a row unrolled; all nine unrolled crash
        // SwiftShader's shader compiler)
        for (var i = 0u; i < 3u; i++) {
            let y = y0 + i32(i);
            let top = patch_row(base, y, x0);
            let bottom = patch_row(base, y + 1, x0);
            let w = vec3<f32>(w_at(co, cl, 3u * i), w_at(co, cl, 3u * i + 1u), w_at(co, cl, 3u * i + 2u));
            acc = taps_row(acc, top, bottom, patch_ok(y, x0), patch_ok(y + 1, x0), w);
        }
    }
    return acc;
}

// One output channel, four consecutive tiles n0 .. n0 + 3 (one vec4 of every row of M).
@compute @workgroup_size(64, 1, 1)
fn outputs(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = index_of(wid, nwg, lid);
    if (i >= params.total) {
        return;
    }
    let quads = params.stride / 4u;
    let mo = params.c_out / params.groups;
    let co = i / quads;
    let q = i - co * quads;
    let g = co / mo;
    let m = co - g * mo;
    // point t of (g, m), tiles 4q .. 4q + 3, at vec4 ((t·G + g)·Mo + m)·stride/4 + q
    let step = params.c_out * quads;
    let src = (g * mo + m) * quads + q;
    var pts: array<vec4<f32>, 16>;
    for (var t = 0u; t < 16u; t++) {
        pts[t] = ws[t * step + src];
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = f32(bias[co]);
    }
    let alpha = bitcast<f32>(params.alpha_bits);
    let hw = params.h_out * params.w_out;
    let px = select(1u, params.c_out, Y_NHWC);
    for (var e = 0u; e < 4u; e++) {
        let n = 4u * q + e;
        if (n >= params.tiles) {
            break;
        }
        var rows: array<vec4<f32>, 4>;
        for (var a = 0u; a < 4u; a++) {
            rows[a] = vec4<f32>(pts[4u * a][e], pts[4u * a + 1u][e], pts[4u * a + 2u][e], pts[4u * a + 3u][e]);
        }
        let o = tile_origin(n);
        // Aᵀ M (rows), then each row times A (columns)
        var y = vec4<f32>(a_t(rows[0] + rows[1] + rows[2]), a_t(rows[1] - rows[2] - rows[3]));
        if (!finite(y)) {
            y = direct_tile(o.x, co, o.y, o.z);
        }
        // NCHW: plane co of image img, pixels 1 apart; Y_NHWC: pixels Cout apart
        let first = select((o.x * params.c_out + co) * hw, o.x * hw * params.c_out + co, Y_NHWC);
        for (var f = 0u; f < 4u; f++) {
            let oy = o.y + f / 2u;
            let ox = o.z + f % 2u;
            if (oy < params.h_out && ox < params.w_out) {
                out[first + (oy * params.w_out + ox) * px] = elem(activate(y[f] + add, alpha));
            }
        }
    }
}
