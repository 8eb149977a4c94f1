// Backward of a depthwise conv2d (groups = Cin, channel multiplier `mult`), two entry points.
// (dtype_f32.wgsl or dtype_f16.wgsl in front: x, w, dy and grad hold `elem`; sums in f32.)
// Both are gathers or fixed-order reductions: every result is written by one invocation or
// one workgroup, so it is bit-identical run to run.
//
// x:  [N, Cin, H, W]            the conv's input
// w:  [Cin·mult, 1, kh, kw]     the conv's weight; output channel co reads input channel co / mult
// dy: [N, Cin·mult, Ho, Wo]     gradient with respect to the conv's output
//
// grad_input:  dx[n, ci, iy, ix] = Σ_{m, i, j} w[ci·mult + m, i, j] · dy[n, ci·mult + m, oy, ox]
//              over the taps with iy = oy·sh − pt + i·dh and ix = ox·sw − pl + j·dw.
// grad_weight: dw[co, i, j] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, co / mult, oy·sh − pt + i·dh, ...]
//              with x = 0 in the zero padding.
// As autograd through the zero-padded input (and the reference): grad_input sums only the
// (tap, dy) pairs that exist (a term is masked, never a zero operand multiplied), grad_weight
// multiplies dy by the padding's explicit zero (NaN where dy is not finite).
//
// KH, KW, SW and DW specialise the kernel size, the horizontal stride and dilation (0 = read
// them from `params` at run time), as in depthwise.wgsl: specialised, the tap loops have
// constant trip counts and unroll, each row window is read once into `win` and the taps
// index it with constants. No branch around a storage load (clamped indices, masked terms)
// but those whose test is a constant once specialised (they vanish when compiled): on
// software rasterisers such as llvmpipe a load under a branch runs lane by lane.

override KH: u32 = 0u;
override KW: u32 = 0u;
override SW: u32 = 0u;
override DW: u32 = 0u;
// grad_input's block specialisation: the vertical stride and dilation (grad_weight's walk
// too), the residues RY = pt mod sh and RX = pl mod sw, and the channel multiplier
override SH: u32 = 0u;
override DH: u32 = 0u;
override RY: u32 = 0u;
override RX: u32 = 0u;
override MULT: u32 = 0u;
// grad_weight: Wo is a multiple of 4, so every quad of outputs exists (no term to mask)
override QUADS_FULL: bool = false;
// grad_weight's walk also writes grad_bias (db[co] = Σ dy[n, co, ·], the dy it reads anyway)
override BIAS_GRAD: bool = false;

struct DwBackParams {
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
    mult: u32,
    n: u32,
    // workgroups with work: grad_input N·Cin·tiles, grad_weight Cout
    total: u32,
    // items per row: grad_input's blocks ⌈W/(4·sw)⌉, its other path ⌈⌈W/sw⌉/4⌉ (per column
    // phase); grad_weight ⌈Wo/4⌉
    quads: u32,
    // grad_input: workgroups per dx plane
    tiles: u32,
    // grad_input's blocks: block rows ⌈H/sh⌉
    rows: u32,
    // grad_weight's walk: dy rows per strip and strips per image column
    strip: u32,
    strips: u32,
    // grad_input's blocks: my = pt div sh, mx = pl div sw
    my: u32,
    mx: u32,
}

@group(0) @binding(0) var<uniform> params: DwBackParams;
@group(0) @binding(1) var<storage, read> x: array<elem>;
@group(0) @binding(2) var<storage, read> w: array<elem>;
@group(0) @binding(3) var<storage, read> dy: array<elem>;
@group(0) @binding(4) var<storage, read_write> grad: array<elem>;
// grad_weight only: grad_bias [Cout] (written where BIAS_GRAD)
@group(0) @binding(5) var<storage, read_write> grad_bias: array<elem>;

const WG: u32 = 64u;
// Longest row window the specialised paths hold in `win`.
const WIN_MAX: u32 = 32u;

// floor(a / b) for b > 0, dividing only non-negative values (WGSL's / truncates toward
// zero; GLSL leaves a negative operand undefined)
fn floor_div(a: i32, b: i32) -> i32 {
    let q = (abs(a) + select(0, b - 1, a < 0)) / b;
    return select(q, -q, a < 0);
}

// grad_input. Specialised (KH, KW, SW, DW, SH and DH set, RY = pt mod sh and RX = pl mod sw),
// one dispatch for every stride phase of dx: a block (k, q) is dx rows k·sh + py (py < SH)
// and columns 4q·sw + e·sw + px (px < SW, e < 4), all SH·SW phases of four column positions.
// Dx element (iy, ix) gathers dy[(iy + pt − i·dh) / sh, (ix + pl − j·dw) / sw] over the taps
// whose numerators sh and sw divide: with pt = my·sh + RY and pl = mx·sw + RX, whether tap
// (i, j) reaches phase (py, px), and the dy row and column it reaches relative to the block's
// window (rows from k + my + row0, columns from 4q + mx + col0), are constants, so only the
// taps that reach are in the code and the window, read once for the whole block, is indexed
// by constants. One workgroup per tile of a dx plane (n, ci): workgroup g of the folded grid
// is plane g / tiles, tile g % tiles; its 64 invocations take blocks (k, q) = tile·64 + lid
// in row-major order. (Walking strips of blocks down a column, each dy row read once
// instead of nr times, measured no faster on llvmpipe, as a loop or unrolled.)
//
// Otherwise (grad_input_any) every tap test runs per element: a row's items are (r, q), r <
// min(sw, W) the column phase.
@compute @workgroup_size(64, 1, 1)
fn grad_input(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (KH != 0u && KW != 0u && SW != 0u && DW != 0u && SH != 0u && DH != 0u) {
        grad_input_block(g, lid);
    } else {
        grad_input_any(g, lid);
    }
}

// Most dy elements a block's window holds (rows × columns; on llvmpipe, function arrays
// longer than 32 left the kernel 3× slower). A block holds strides up to 2 (four phases,
// four accumulators); larger windows and strides run grad_input_any.
const BLOCK_WIN_MAX: u32 = 32u;

// The block window's first row and column relative to (k + my, 4q + mx): the least of
// ⌊(py + RY − i·DH) / SH⌋ (py = 0, i = KH − 1), and along x.
fn block_row0() -> i32 {
    return floor_div(i32(RY) - i32((KH - 1u) * DH), i32(max(SH, 1u)));
}
fn block_col0() -> i32 {
    return floor_div(i32(RX) - i32((KW - 1u) * DW), i32(max(SW, 1u)));
}

// Phase (py, px)'s four sums over the taps that reach it, from the block's window (win[r·nc +
// t] = dy[ys + r, xs + t], `on` where that element exists: a tap on a missing element adds no
// term) and output channel co's weights. Called with constant (py, px): once inlined, every
// test here is a constant and the window's indices are constants once the loops unroll
// (small loops: in one loop over the phases the unroller gave up and the kernel ran 3×
// slower on llvmpipe).
fn block_phase(py: u32, px: u32, co: u32, nc: u32, win: ptr<function, array<f32, BLOCK_WIN_MAX>>, on: ptr<function, array<bool, BLOCK_WIN_MAX>>) -> vec4<f32> {
    let sh = max(SH, 1u);
    let sw = max(SW, 1u);
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < KH; i++) {
        // py + RY − i·DH, shifted by (KH − 1)·DH·sh to stay unsigned: a signed / or % of a
        // negative value is undefined in GLSL (Mesa's GL took −1 % 3 as 0)
        let cy = py + RY + (KH - 1u) * DH * sh - i * DH;
        if (cy % sh == 0u) {
            let r = u32(i32(cy / sh) - i32((KH - 1u) * DH) - block_row0());
            for (var j = 0u; j < KW; j++) {
                let cx = px + RX + (KW - 1u) * DW * sw - j * DW;
                if (cx % sw == 0u) {
                    let t = r * nc + u32(i32(cx / sw) - i32((KW - 1u) * DW) - block_col0());
                    let wv = f32(w[co * KH * KW + i * KW + j]);
                    for (var e = 0u; e < 4u; e++) {
                        acc[e] += select(0.0, wv * (*win)[t + e], (*on)[t + e]);
                    }
                }
            }
        }
    }
    return acc;
}

// Phase (py, px)'s four elements of block (k, q) of dx plane `plane`, where they exist.
fn block_store(py: u32, px: u32, plane: u32, k: u32, q: u32, acc: vec4<f32>) {
    let sw = max(SW, 1u);
    let iy = k * max(SH, 1u) + py;
    let dst = (plane * params.h + min(iy, params.h - 1u)) * params.w;
    for (var e = 0u; e < 4u; e++) {
        let ix = 4u * q * sw + e * sw + px;
        if (iy < params.h && ix < params.w) {
            grad[dst + ix] = elem(acc[e]);
        }
    }
}

fn grad_input_block(g: u32, lid: u32) {
    let mult = select(params.mult, MULT, MULT != 0u);
    let planes = params.n * params.c_in;
    let plane = min(g / params.tiles, planes - 1u);
    let tile = g - (g / params.tiles) * params.tiles;
    let ci = plane % params.c_in;
    let n = plane / params.c_in;
    let item = tile * WG + lid;
    let q = item % params.quads;
    // past the last item: a block row past the last, whose stores are all masked
    let k = select(params.rows, item / params.quads, g < params.total);

    // Phase py's tap i reaches dy row k + my + ⌊(py + RY − i·DH) / SH⌋ when SH divides the
    // numerator: the block's window runs from row0 (py = 0, i = KH − 1) to the largest
    // (py = SH − 1, i = 0) rows, and along x, four columns per phase.
    let sh = max(SH, 1u);
    let sw = max(SW, 1u);
    let nr = u32(floor_div(i32(sh - 1u + RY), i32(sh)) - block_row0()) + 1u;
    let nc = u32(floor_div(i32(sw - 1u + RX), i32(sw)) - block_col0()) + 4u;
    let ys = i32(k + params.my) + block_row0();
    let xs = i32(4u * q + params.mx) + block_col0();
    let wo = i32(params.w_out);
    var col_ok: array<bool, BLOCK_WIN_MAX>;
    for (var t = 0u; t < nc; t++) {
        col_ok[t] = xs + i32(t) >= 0 && xs + i32(t) < wo;
    }
    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    for (var m = 0u; m < mult; m++) {
        let co = ci * mult + m;
        // win[r·nc + t] = dy[ys + r, xs + t], `on` where that element exists (a tap on a
        // missing element adds no term)
        var win: array<f32, BLOCK_WIN_MAX>;
        var on: array<bool, BLOCK_WIN_MAX>;
        load_rows(nr, n * params.c_out + co, ys, xs, nc, &col_ok, &win, &on);
        acc00 += block_phase(0u, 0u, co, nc, &win, &on);
        if (SW > 1u) {
            acc01 += block_phase(0u, 1u, co, nc, &win, &on);
        }
        if (SH > 1u) {
            acc10 += block_phase(1u, 0u, co, nc, &win, &on);
        }
        if (SH > 1u && SW > 1u) {
            acc11 += block_phase(1u, 1u, co, nc, &win, &on);
        }
    }
    block_store(0u, 0u, plane, k, q, acc00);
    if (SW > 1u) {
        block_store(0u, 1u, plane, k, q, acc01);
    }
    if (SH > 1u) {
        block_store(1u, 0u, plane, k, q, acc10);
    }
    if (SH > 1u && SW > 1u) {
        block_store(1u, 1u, plane, k, q, acc11);
    }
}

// The nr rows of the block window of dy plane `dplane` (n·Cout + co) from dy row ys.
fn load_rows(nr: u32, dplane: u32, ys: i32, xs: i32, nc: u32, col_ok: ptr<function, array<bool, BLOCK_WIN_MAX>>, win: ptr<function, array<f32, BLOCK_WIN_MAX>>, on: ptr<function, array<bool, BLOCK_WIN_MAX>>) {
    let ho = i32(params.h_out);
    let wo = i32(params.w_out);
    for (var r = 0u; r < nr; r++) {
        let qy = ys + i32(r);
        let row = (dplane * params.h_out + u32(clamp(qy, 0, ho - 1))) * params.w_out;
        for (var t = 0u; t < nc; t++) {
            (*win)[r * nc + t] = f32(dy[row + u32(clamp(xs + i32(t), 0, wo - 1))]);
            (*on)[r * nc + t] = qy >= 0 && qy < ho && (*col_ok)[t];
        }
    }
}

fn grad_input_any(g: u32, lid: u32) {
    let kh = params.kh;
    let kw = params.kw;
    let sw = params.stride_w;
    let dw = params.dil_w;
    let planes = params.n * params.c_in;
    let plane = min(g / params.tiles, planes - 1u);
    let tile = g - (g / params.tiles) * params.tiles;
    let ci = plane % params.c_in;
    let n = plane / params.c_in;
    // column phases r < min(sw, W): a phase r ≥ W holds no column
    let per_row = min(sw, params.w) * params.quads;
    let item = tile * WG + lid;
    let live = g < params.total && item < params.h * per_row;
    let iy = min(item / per_row, params.h - 1u);
    let rest = item - (item / per_row) * per_row;
    let r = rest / params.quads;
    let q = rest - r * params.quads;
    let ix0 = r + 4u * q * sw;

    // Along x: write a = ix0 + pl − (kw − 1)·dw = ws·sw + rem (0 ≤ rem < sw). Tap j
    // reaches when sw divides num = (kw − 1 − j)·dw + rem = tq·sw + tr (tr = 0), at dy
    // columns ws + tq + e. Stepping j subtracts dw = dqx·sw + drx from num, so (tq, tr)
    // follow with no division per tap.
    let a = i32(ix0 + params.pad_left) - i32((kw - 1u) * dw);
    let ws = floor_div(a, i32(sw));
    let rem = u32(a - ws * i32(sw));
    let wo = i32(params.w_out);
    let dqx = i32(dw / sw);
    let drx = i32(dw % sw);
    let tq0 = i32(((kw - 1u) * dw + rem) / sw);
    let tr0 = i32(((kw - 1u) * dw + rem) % sw);
    // Along y, tap i reaches dy row oy when iy + pt − i·dh = oy·sh. Write ty = iy + pt − i·dh
    // as qy·sh + ry (0 ≤ ry < sh): the tap counts when ry = 0 and 0 ≤ qy < Ho; (qy, ry)
    // are stepped the same way.
    let dqy = i32(params.dil_h / params.stride_h);
    let dry = i32(params.dil_h % params.stride_h);
    let qy0 = i32((iy + params.pad_top) / params.stride_h);
    let ry0 = i32((iy + params.pad_top) % params.stride_h);

    let taps = kh * kw;
    let hw_out = params.h_out * params.w_out;
    var acc = vec4<f32>(0.0);
    for (var m = 0u; m < params.mult; m++) {
        let co = ci * params.mult + m;
        let dplane = (n * params.c_out + co) * hw_out;
        var qy = qy0;
        var ry = ry0;
        for (var i = 0u; i < kh; i++) {
            let row_ok = ry == 0 && qy >= 0 && qy < i32(params.h_out);
            let row = dplane + u32(clamp(qy, 0, i32(params.h_out) - 1)) * params.w_out;
            let wrow = co * taps + i * kw;
            var tq = tq0;
            var tr = tr0;
            for (var j = 0u; j < kw; j++) {
                let wv = f32(w[wrow + j]);
                for (var e = 0u; e < 4u; e++) {
                    let ox = ws + tq + i32(e);
                    let d = f32(dy[row + u32(clamp(ox, 0, wo - 1))]);
                    acc[e] += select(0.0, wv * d, row_ok && tr == 0 && ox >= 0 && ox < wo);
                }
                tq -= dqx;
                tr -= drx;
                if (tr < 0) {
                    tr += i32(sw);
                    tq -= 1;
                }
            }
            qy -= dqy;
            ry -= dry;
            if (ry < 0) {
                ry += i32(params.stride_h);
                qy -= 1;
            }
        }
    }
    let dst = (plane * params.h + iy) * params.w;
    for (var e = 0u; e < 4u; e++) {
        // e·sw < W unless sw ≥ W (then only e = 0 can be inside): no u32 wrap-around
        let ix = ix0 + e * sw;
        if (live && (e == 0u || sw < params.w) && ix < params.w) {
            grad[dst + ix] = elem(acc[e]);
        }
    }
}

// grad_weight's workgroup: 64 invocations (on llvmpipe every barrier switches between the
// workgroup's SIMD groups, so fewer invocations mean cheaper barriers); taps in chunks of
// TAPS_MAX, each invocation holding one partial sum per tap of the chunk.
const TAPS_MAX: u32 = 25u;
// wpart[t·64 + lid]: invocation lid's partial sum of tap t0 + t (t = taps: of the bias)
var<workgroup> wpart: array<f32, 1664>;

// The workgroup's sums of the nt taps from t0, after every invocation stored its partial
// sums in wpart: invocation t < nt adds tap t's 64 partials pairwise, as a tree (halves
// folded onto halves, in place), and writes dw[co, t0 + t] (t0 + t = taps: grad_bias[co]). One invocation walks the tree,
// so one barrier where a tree across the invocations takes log2(64) + 1: on llvmpipe each
// barrier switches between all of the workgroup's SIMD groups, which costs more than the
// 63 adds. Called in uniform control flow.
fn reduce_taps(lid: u32, co: u32, taps: u32, t0: u32, nt: u32) {
    workgroupBarrier();
    if (lid < nt) {
        let base = lid * WG;
        for (var half = WG / 2u; half > 0u; half = half / 2u) {
            for (var i = 0u; i < half; i++) {
                wpart[base + i] += wpart[base + i + half];
            }
        }
        if (BIAS_GRAD && t0 + lid == taps) {
            grad_bias[co] = elem(wpart[base]);
        } else {
            grad[co * taps + t0 + lid] = elem(wpart[base]);
        }
    }
    // the next chunk reuses wpart
    workgroupBarrier();
}

@compute @workgroup_size(64, 1, 1)
fn grad_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup per output channel co (total = Cout).
    let co = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (co >= params.total) {
        return;
    }
    let kh = select(params.kh, KH, KH != 0u);
    let kw = select(params.kw, KW, KW != 0u);
    let sw = select(params.stride_w, SW, SW != 0u);
    let dw = select(params.dil_w, DW, DW != 0u);
    let taps = kh * kw;
    let ci = co / params.mult;
    let hw_out = params.h_out * params.w_out;
    // four outputs at stride sw with a kw-tap kernel dilated by dw read this many inputs
    let win_len = 3u * sw + (kw - 1u) * dw + 1u;
    let ring_rows = (KH - 1u) * DH + 1u;
    if (KH != 0u && KW != 0u && SW != 0u && DW != 0u && SH != 0u && DH != 0u && win_len <= WIN_MAX && taps <= TAPS_MAX && ring_rows * win_len <= RING_MAX) {
        grad_weight_walk(lid, co, ci);
        return;
    }
    if (KH != 0u && KW != 0u && SW != 0u && DW != 0u && win_len <= WIN_MAX && taps <= TAPS_MAX) {
        // Every tap in one chunk, in an array indexed by constants only once the loops
        // unroll (so it stays in registers). An item is four adjacent outputs
        // (n, oy, 4q .. 4q + 3) of dy: one vec4 of dy, and per tap row one window of x the
        // four share; the invocations take strided shares of the items.
        var acc: array<f32, TAPS_MAX>;
        let per_image = params.h_out * params.quads;
        let count = params.n * per_image;
        // Item p = (n, oy, q) in mixed radix (Ho, quads); from item lid on, each turn adds
        // 64 = (n_step, oy_step, q_step) with carries (no division per item).
        let q_step = WG % params.quads;
        let oy_step = (WG / params.quads) % params.h_out;
        let n_step = WG / per_image;
        var n = lid / per_image;
        var oy = (lid - n * per_image) / params.quads;
        var q = lid - n * per_image - oy * params.quads;
        for (var p = lid; p < count; p += WG) {
            let ox0 = 4u * q;
            let drow = (n * params.c_out + co) * hw_out + oy * params.w_out;
            var d = vec4<f32>(0.0);
            for (var e = 0u; e < 4u; e++) {
                d[e] = f32(dy[drow + min(ox0 + e, params.w_out - 1u)]);
            }
            // which of the four outputs exist (all but in a row's last quad when Wo is not
            // a multiple of 4)
            let d_ok = vec4<u32>(ox0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.w_out);
            let plane = (n * params.c_in + ci) * params.h;
            let x0 = i32(ox0 * sw) - i32(params.pad_left);
            let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
            for (var i = 0u; i < kh; i++) {
                let iy = y0 + i32(i * params.dil_h);
                let row_ok = iy >= 0 && iy < i32(params.h);
                let row = (plane + u32(clamp(iy, 0, i32(params.h) - 1))) * params.w;
                // the row's window, the zero padding as explicit zeros
                var win: array<f32, WIN_MAX>;
                for (var t = 0u; t < win_len; t++) {
                    let ix = x0 + i32(t);
                    let v = f32(x[row + u32(clamp(ix, 0, i32(params.w) - 1))]);
                    win[t] = select(0.0, v, row_ok && ix >= 0 && ix < i32(params.w));
                }
                for (var j = 0u; j < kw; j++) {
                    var s = acc[i * kw + j];
                    for (var e = 0u; e < 4u; e++) {
                        s += select(0.0, d[e] * win[j * dw + e * sw], QUADS_FULL || d_ok[e]);
                    }
                    acc[i * kw + j] = s;
                }
            }
            q += q_step;
            let wrap_q = q >= params.quads;
            q = select(q, q - params.quads, wrap_q);
            oy += oy_step + select(0u, 1u, wrap_q);
            let wrap_y = oy >= params.h_out;
            oy = select(oy, oy - params.h_out, wrap_y);
            n += n_step + select(0u, 1u, wrap_y);
        }
        for (var t = 0u; t < taps; t++) {
            wpart[t * WG + lid] = acc[t];
        }
        reduce_taps(lid, co, taps, 0u, taps);
    } else {
        for (var t0 = 0u; t0 < taps; t0 += TAPS_MAX) {
            let nt = min(TAPS_MAX, taps - t0);
            var acc: array<f32, TAPS_MAX>;
            // One item per output pixel; each pixel's dy read once for the chunk's taps.
            let count = params.n * hw_out;
            for (var p = lid; p < count; p += WG) {
                let n = p / hw_out;
                let q = p - n * hw_out;
                let oy = q / params.w_out;
                let ox = q - oy * params.w_out;
                let d = f32(dy[(n * params.c_out + co) * hw_out + q]);
                let plane = (n * params.c_in + ci) * params.h;
                let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
                let x0 = i32(ox * sw) - i32(params.pad_left);
                // tap t0 + t = (i, j), stepped without a division per tap
                var i = t0 / kw;
                var j = t0 - i * kw;
                for (var t = 0u; t < nt; t++) {
                    let iy = y0 + i32(i * params.dil_h);
                    let ix = x0 + i32(j * dw);
                    let on = iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w);
                    let xi = (plane + u32(clamp(iy, 0, i32(params.h) - 1))) * params.w + u32(clamp(ix, 0, i32(params.w) - 1));
                    acc[t] += d * select(0.0, f32(x[xi]), on);
                    j += 1u;
                    if (j == kw) {
                        j = 0u;
                        i += 1u;
                    }
                }
            }
            for (var t = 0u; t < nt; t++) {
                wpart[t * WG + lid] = acc[t];
            }
            reduce_taps(lid, co, taps, t0, nt);
        }
    }
}

// grad_weight's walk down columns (KH, KW, SW, DW, SH and DH all set): an item is a strip of
// `strip` dy rows of one quad column q of one image (n, s, q), strip s from dy row s·strip.
// Dy row oy reads the R = (KH − 1)·DH + 1 x rows from oy·SH − pt, each as the window the four
// outputs share; the next dy row reuses the last R − SH of them. `ring` holds the R windows
// (row r at ring[r·win_len ..]), shifted down by SH rows per dy row, so every x element is
// read once per strip instead of KH times; every index into ring and acc is a constant once
// the loops unroll.
const RING_MAX: u32 = 64u;
fn grad_weight_walk(lid: u32, co: u32, ci: u32) {
    let sh = max(SH, 1u);
    let sw = max(SW, 1u);
    let ring_rows = (KH - 1u) * DH + 1u;
    let win_len = 3u * sw + (KW - 1u) * DW + 1u;
    // rows kept from one dy row to the next
    let keep = ring_rows - min(sh, ring_rows);
    let hw_out = params.h_out * params.w_out;
    let per_image = params.strips * params.quads;
    let count = params.n * per_image;
    var acc: array<f32, TAPS_MAX>;
    var bias_acc = 0.0;
    for (var p = lid; p < count; p += WG) {
        let n = p / per_image;
        let rest = p - n * per_image;
        let s = rest / params.quads;
        let q = rest - s * params.quads;
        let ox0 = 4u * q;
        let oy0 = s * params.strip;
        let oy1 = min(oy0 + params.strip, params.h_out);
        let plane = (n * params.c_in + ci) * params.h;
        let x0 = i32(ox0 * sw) - i32(params.pad_left);
        var col_ok: array<bool, WIN_MAX>;
        for (var t = 0u; t < win_len; t++) {
            col_ok[t] = x0 + i32(t) >= 0 && x0 + i32(t) < i32(params.w);
        }
        let d_ok = vec4<u32>(ox0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(params.w_out);
        var ring: array<f32, RING_MAX>;
        // the rows the first dy row shares with the one before it
        let y0 = i32(oy0 * sh) - i32(params.pad_top);
        ring_load(0u, keep, plane, y0, x0, win_len, &col_ok, &ring);
        for (var oy = oy0; oy < oy1; oy++) {
            let yt = i32(oy * sh) - i32(params.pad_top);
            ring_load(keep, ring_rows, plane, yt, x0, win_len, &col_ok, &ring);
            let drow = (n * params.c_out + co) * hw_out + oy * params.w_out;
            var d = vec4<f32>(0.0);
            for (var e = 0u; e < 4u; e++) {
                d[e] = f32(dy[drow + min(ox0 + e, params.w_out - 1u)]);
            }
            if (BIAS_GRAD) {
                for (var e = 0u; e < 4u; e++) {
                    bias_acc += select(0.0, d[e], QUADS_FULL || d_ok[e]);
                }
            }
            for (var i = 0u; i < KH; i++) {
                for (var j = 0u; j < KW; j++) {
                    var a = acc[i * KW + j];
                    for (var e = 0u; e < 4u; e++) {
                        a += select(0.0, d[e] * ring[i * DH * win_len + j * DW + e * sw], QUADS_FULL || d_ok[e]);
                    }
                    acc[i * KW + j] = a;
                }
            }
            for (var r = 0u; r < keep; r++) {
                for (var t = 0u; t < win_len; t++) {
                    ring[r * win_len + t] = ring[(r + sh) * win_len + t];
                }
            }
        }
    }
    for (var t = 0u; t < KH * KW; t++) {
        wpart[t * WG + lid] = acc[t];
    }
    wpart[KH * KW * WG + lid] = bias_acc;
    reduce_taps(lid, co, KH * KW, 0u, KH * KW + select(0u, 1u, BIAS_GRAD));
}

// Rows r0 .. r1 of the walk's ring: ring[r·win_len + t] = x[plane row y + r, column x0 + t],
// the zero padding as explicit zeros.
fn ring_load(r0: u32, r1: u32, plane: u32, y: i32, x0: i32, win_len: u32, col_ok: ptr<function, array<bool, WIN_MAX>>, ring: ptr<function, array<f32, RING_MAX>>) {
    for (var r = r0; r < r1; r++) {
        let iy = y + i32(r);
        let row_ok = iy >= 0 && iy < i32(params.h);
        let row = (plane + u32(clamp(iy, 0, i32(params.h) - 1))) * params.w;
        for (var t = 0u; t < win_len; t++) {
            let v = f32(x[row + u32(clamp(x0 + i32(t), 0, i32(params.w) - 1))]);
            (*ring)[r * win_len + t] = select(0.0, v, row_ok && (*col_ok)[t]);
        }
    }
}
