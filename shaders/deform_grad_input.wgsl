// grad_input of deform_conv2d_backward (torchvision.ops.deform_conv2d's autograd) over one
// chunk of images, from the column gradients cols = weightᵀ · grad_output: each in-image
// corner (yp, xp) of a sample at (y, x) with |y − yp| < 1 and |x − xp| < 1 receives
// m · (1 − |y − yp|)·(1 − |x − xp|) · cols[c, t, pixel], for every channel c of the sample's
// offset group. Samples land at data-dependent places; no float atomics:
//
// 1. `bin_count`, `bin_scan`, `bin_fill`: the samples (sites, deform_backward_common.wgsl)
//    of each (image, offset group) are sorted by their cell (⌊y⌋, ⌊x⌋) ∈ [−1, H−1]×[−1, W−1],
//    whose four corners they feed: a count per cell (integer atomics), an exclusive scan per
//    (image, offset group) (one workgroup each), then each site written into its cell's range
//    at a slot taken by an atomic decrement (so the counts end at 0, ready for the next
//    chunk). Sites with no corner in the image (or a non-finite position) are left out.
//    Within a cell the order is the atomics', not fixed: what follows does not depend on it.
// 2. `largest` and `sum` walk the sorted entries, seg_len at a time, one invocation per
//    (walk, channel). A workgroup of 64 takes `spw` consecutive walks of one (image, offset
//    group) times min(channels of the group, 64) channels: it first works out each entry's
//    cell, corner weights and column into workgroup memory (at most 256 entries), then each
//    invocation walks its entries for its channel. The terms of a run of entries in one cell
//    go to the same four elements, so each invocation keeps per-corner partials and touches
//    the accumulator once per run, not once per term.
//    `largest` leaves in each element the largest finite |term| it receives (atomicMax on
//    the bits of non-negative floats: exact). `sum` adds the terms as 64-bit fixed-point
//    integers, each scaled by the element's 2^S_e (the largest term scaled into
//    [2^29, 2^30): each term exact to 2^−30 of the largest, where f32 keeps 2^−24 of each;
//    below 2^(61 − count_bits), so no sum of ≤ 2^count_bits terms overflows) and rounded;
//    the partial sums are added with two 32-bit atomics (the low word's carry into the high
//    one). Integer sums do not depend on their order or grouping: the same bits every run
//    and whatever the walks' cuts. NaN and ±∞ terms set flags instead (NaN, or +∞ and −∞
//    together, give NaN; one infinity gives it).
// 3. `finish`: one invocation per grad_input element of the chunk: the sum times 2^−S_e (or
//    what the flags say), written once; the accumulator words are reset for the next chunk.
//
// cols:    [images of the chunk, Ho·Wo, Cin·kh·kw] (pixel-major: a pixel's rows ci·kh·kw + t
//          together)
// acc:     four u32 words per grad_input element e of the chunk, from 4e: the signed 64-bit
//          sum (low word, high word), the flags of the non-finite terms received, the bits of
//          the largest finite |term|.
// bins:    the count of cell b of (image, offset group) g at g·(H+1)·(W+1) + b.
// starts:  g·((H+1)·(W+1) + 1) + b: where cell b's entries begin within g's, then g's total.
// entries: g's at g·kh·kw·Ho·Wo (the most it can hold): the ids of its sites (site_at),
//          sorted by cell (4 bytes per sample: half the offset tensor).

const NAN_BIT: u32 = 1u;
const POS_INF_BIT: u32 = 2u;
const NEG_INF_BIT: u32 = 4u;

@group(0) @binding(0) var<uniform> params: DeformBackParams;
@group(0) @binding(1) var<storage, read> offset: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> cols: array<f32>;
@group(0) @binding(4) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> bins: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> starts: array<u32>;
@group(0) @binding(7) var<storage, read_write> entries: array<u32>;
@group(0) @binding(8) var<storage, read_write> grad_input: array<f32>;

var<workgroup> part: array<u32, WG>;

fn cells() -> u32 {
    return (params.h + 1u) * (params.w + 1u);
}

// The cell of a sample at (y, x), numbered from (−1, −1); cells() where none of its corners
// lies in the image or the position is not finite.
fn cell_of(y: f32, x: f32) -> u32 {
    let yf = floor(y);
    let xf = floor(x);
    let real = finite(y) && finite(x);
    if (!(real && yf >= -1.0 && yf <= f32(params.h) - 1.0 && xf >= -1.0 && xf <= f32(params.w) - 1.0)) {
        return cells();
    }
    return u32(i32(yf) + 1) * (params.w + 1u) + u32(i32(xf) + 1);
}

@compute @workgroup_size(256, 1, 1)
fn bin_count(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if (id >= params.threads) {
        return;
    }
    let s = site_at(id);
    let b = cell_of(s.y, s.x);
    if (b < cells()) {
        atomicAdd(&bins[(s.img_l * params.offset_groups + s.og) * cells() + b], 1u);
    }
}

// One workgroup per (image, offset group) g: each invocation scans a run of ⌈cells / 256⌉
// consecutive cells, after the runs before it (a scan of the runs' totals in workgroup
// memory).
@compute @workgroup_size(256, 1, 1)
fn bin_scan(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (g >= params.threads) {
        return;
    }
    let n = cells();
    let per = (n + WG - 1u) / WG;
    let lo = min(lid * per, n);
    let hi = min(lo + per, n);
    var total = 0u;
    for (var b = lo; b < hi; b++) {
        total += atomicLoad(&bins[g * n + b]);
    }
    part[lid] = total;
    workgroupBarrier();
    // inclusive scan of the runs' totals (Hillis–Steele)
    for (var d = 1u; d < WG; d *= 2u) {
        var before = 0u;
        if (lid >= d) {
            before = part[lid - d];
        }
        workgroupBarrier();
        part[lid] += before;
        workgroupBarrier();
    }
    var run = part[lid] - total;
    let at = g * (n + 1u);
    for (var b = lo; b < hi; b++) {
        starts[at + b] = run;
        run += atomicLoad(&bins[g * n + b]);
    }
    // the last invocation's run ends at the last cell
    if (lid == WG - 1u) {
        starts[at + n] = run;
    }
}

@compute @workgroup_size(256, 1, 1)
fn bin_fill(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if (id >= params.threads) {
        return;
    }
    let s = site_at(id);
    let b = cell_of(s.y, s.x);
    if (b < cells()) {
        let g = s.img_l * params.offset_groups + s.og;
        let slot = atomicSub(&bins[g * cells() + b], 1u) - 1u;
        let at = g * params.kh * params.kw * params.h_out * params.w_out + starts[g * (cells() + 1u) + b] + slot;
        entries[at] = id;
    }
}

// A sample's cell and what its four corners (y0, x0), (y0, x0 + 1), (y0 + 1, x0),
// (y0 + 1, x0 + 1) receive per unit of column gradient: whether they receive a term (in the
// image, |y − yp| < 1 and |x − xp| < 1) and the bilinear weight times m.
struct Corners {
    cell: vec2<i32>,
    near: vec4<bool>,
    scat: vec4<f32>,
}

// (y, x) finite with its cell in [−1, H−1]×[−1, W−1] (a binned entry).
fn corners(y: f32, x: f32, m: f32) -> Corners {
    var c: Corners;
    let yf = floor(y);
    let xf = floor(x);
    let ly = y - yf;
    let lx = x - xf;
    c.cell = vec2<i32>(i32(yf), i32(xf));
    let ok = in_image(c.cell);
    c.near = ok & vec4<bool>(true, lx > 0.0, ly > 0.0, ly > 0.0 && lx > 0.0);
    let wy0 = 1.0 - abs(y - yf);
    let wy1 = 1.0 - abs(y - (yf + 1.0));
    let wx0 = 1.0 - abs(x - xf);
    let wx1 = 1.0 - abs(x - (xf + 1.0));
    c.scat = m * vec4<f32>(wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1);
    return c;
}

// Which of cell's four corners lie in the image.
fn in_image(cell: vec2<i32>) -> vec4<bool> {
    let ys = vec2<bool>(cell.x >= 0, cell.x + 1 < i32(params.h));
    let xs = vec2<bool>(cell.y >= 0, cell.y + 1 < i32(params.w));
    return vec4<bool>(ys.x && xs.x, ys.x && xs.y, ys.y && xs.x, ys.y && xs.y);
}

// The elements of cell's four corners in the plane from `plane` (valid where in the image).
fn corner_elements(plane: u32, cell: vec2<i32>) -> vec4<u32> {
    let w = i32(params.w);
    let a = i32(plane) + cell.x * w + cell.y;
    return vec4<u32>(vec4<i32>(a, a + 1, a + w, a + w + 1));
}

const WALK_WG: u32 = 64u;
// the most entries one walking workgroup stages
const STAGED: u32 = 256u;

// A walking workgroup's entries: their cells, which corners receive a term (bits 0..3), the
// corners' weights times m, and where their column gradients start (pixel·Cin·kh·kw + t).
var<workgroup> staged_cell: array<vec2<i32>, STAGED>;
var<workgroup> staged_near: array<u32, STAGED>;
var<workgroup> staged_scat: array<vec4<f32>, STAGED>;
var<workgroup> staged_col: array<u32, STAGED>;

// One invocation's walk: entries begin..end of the staged ones, for channel c.
struct Walk {
    // false for the lanes past the group's channels or walks
    on: bool,
    begin: u32,
    end: u32,
    // cols[col + staged_col[j]] is entry j's column gradient; grad_input's plane from `plane`
    col: u32,
    plane: u32,
}

// Stages the workgroup's entries (every invocation of the workgroup calls it, in uniform
// control flow) and returns this invocation's walk. Workgroup `wg` takes walks
// sb·spw .. (sb + 1)·spw of group g, channels cb·64 .. of the group, where lanes =
// min(per_og, 64) channels per walk and spw = 64 / lanes walks of seg_len ≤ 256 / spw
// entries (the host's numbers).
fn stage(wg: u32, lid: u32) -> Walk {
    let per_og = params.c_in / params.offset_groups;
    let lanes = min(per_og, WALK_WG);
    let spw = WALK_WG / lanes;
    let cblocks = (per_og + WALK_WG - 1u) / WALK_WG;
    let sblocks = (params.segs + spw - 1u) / spw;
    let cb = wg % cblocks;
    let rest = wg / cblocks;
    let sb = rest % sblocks;
    let g = rest / sblocks;
    let og = g % params.offset_groups;
    let img_l = g / params.offset_groups;
    let n = cells();
    let room = params.kh * params.kw * params.h_out * params.w_out;
    let count = starts[g * (n + 1u) + n];
    let first = min(sb * spw * params.seg_len, count);
    let staged = min(spw * params.seg_len, count - first);
    for (var e = lid; e < staged; e += WALK_WG) {
        let st = site_at(entries[g * room + first + e]);
        let c = corners(st.y, st.x, st.m);
        staged_cell[e] = c.cell;
        staged_near[e] = dot(select(vec4<u32>(0u), vec4<u32>(1u, 2u, 4u, 8u), c.near), vec4<u32>(1u));
        staged_scat[e] = c.scat;
        staged_col[e] = st.q * params.c_in * params.kh * params.kw + st.t;
    }
    workgroupBarrier();
    var k: Walk;
    let walk = lid / lanes;
    let cl = cb * WALK_WG + lid % lanes;
    k.on = walk < spw && cl < per_og;
    k.begin = min(walk * params.seg_len, staged);
    k.end = min(k.begin + params.seg_len, staged);
    let c = og * per_og + cl;
    k.col = img_l * params.c_in * room + c * params.kh * params.kw;
    k.plane = (img_l * params.c_in + c) * params.h * params.w;
    return k;
}

fn near_bits(bits: u32) -> vec4<bool> {
    return (vec4<u32>(bits) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
}

// Raises element e's largest |term| to v (non-negative, finite; 0: nothing). (A load first:
// most runs do not raise it, and a read-modify-write max is a compare-and-swap loop on CPUs.)
fn raise(e: u32, v: f32) {
    let bits = bitcast<u32>(v);
    if (bits != 0u && bits > atomicLoad(&acc[4u * e + 3u])) {
        atomicMax(&acc[4u * e + 3u], bits);
    }
}

fn raise_corners(plane: u32, cell: vec2<i32>, v: vec4<f32>) {
    let e = corner_elements(plane, cell);
    raise(e.x, v.x);
    raise(e.y, v.y);
    raise(e.z, v.z);
    raise(e.w, v.w);
}

// The first pass of grad_input: the largest finite |term| of every element (see the header).
@compute @workgroup_size(64, 1, 1)
fn largest(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (wg >= params.threads) {
        return;
    }
    let k = stage(wg, lid);
    if (!k.on) {
        return;
    }
    var cell = vec2<i32>(-2);
    var run = vec4<f32>(0.0);
    for (var j = k.begin; j < k.end; j++) {
        if (any(staged_cell[j] != cell)) {
            raise_corners(k.plane, cell, run);
            cell = staged_cell[j];
            run = vec4<f32>(0.0);
        }
        let v = abs(staged_scat[j] * cols[k.col + staged_col[j]]);
        let finite4 = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7f800000u)) != vec4<u32>(0x7f800000u);
        run = select(run, max(run, v), near_bits(staged_near[j]) & finite4 & (v > vec4<f32>(0.0)));
    }
    raise_corners(k.plane, cell, run);
}

// S_e as two halves (each within ldexp's exponent range): the element's largest |term| (<
// 2^exponent) scaled into [2^29, 2^30), so that a term's magnitude fits the low word and the
// low word's carry is rare; below 2^(61 − count_bits) where count_bits is larger, so that no
// sum overflows. Clamped where every term rounds to 0 anyway.
fn scale_halves(e: u32) -> vec2<i32> {
    let largest = bitcast<f32>(atomicLoad(&acc[4u * e + 3u]));
    let top = min(30, 61 - i32(params.count_bits));
    let s = clamp(top - frexp(largest).exp, -240, 210);
    return vec2<i32>(s / 2, s - s / 2);
}

// 2^e as an f32, for e in [−126, 127] (scale_halves' halves are within [−120, 105]).
fn pow2(e: i32) -> f32 {
    return bitcast<f32>(u32(e + 127) << 23u);
}

// An element's scale 2^S_e as two factors (scale_halves), for add_term.
fn scale_factors(e: u32) -> vec2<f32> {
    let s = scale_halves(e);
    return vec2<f32>(pow2(s.x), pow2(s.y));
}

// A run's partial sum of one element, (low word, high word, flags), after term v at scale
// f.x·f.y = 2^S_e (two exact multiplications by powers of 2: ldexp's result, without its cost
// per term; an intermediate below f32's normal range only arises where the term rounds to 0).
fn add_term(sum: vec3<u32>, v: f32, f: vec2<f32>) -> vec3<u32> {
    if (v == 0.0) {
        return sum;
    }
    let bits = bitcast<u32>(v);
    if (!finite(v)) {
        var flag = NAN_BIT;
        if ((bits & 0x007fffffu) == 0u) {
            flag = select(POS_INF_BIT, NEG_INF_BIT, (bits >> 31u) == 1u);
        }
        return vec3<u32>(sum.xy, sum.z | flag);
    }
    // |r| < 2^30: an exact integer in f32, the two's complement of a negative one in 64 bits
    let r = round(v * f.x * f.y);
    let magnitude = u32(abs(r));
    var lo = magnitude;
    var hi = 0u;
    if (r < 0.0 && magnitude != 0u) {
        lo = ~magnitude + 1u;
        hi = 0xffffffffu;
    }
    let low = sum.x + lo;
    return vec3<u32>(low, sum.y + hi + select(0u, 1u, low < sum.x), sum.z);
}

// Adds a run's partial sum to element e's.
fn flush(e: u32, sum: vec3<u32>) {
    let at = 4u * e;
    if (sum.x != 0u || sum.y != 0u) {
        let old = atomicAdd(&acc[at], sum.x);
        let up = sum.y + select(0u, 1u, old + sum.x < old);
        if (up != 0u) {
            atomicAdd(&acc[at + 1u], up);
        }
    }
    if (sum.z != 0u) {
        atomicOr(&acc[at + 2u], sum.z);
    }
}

fn flush_corners(plane: u32, cell: vec2<i32>, s0: vec3<u32>, s1: vec3<u32>, s2: vec3<u32>, s3: vec3<u32>) {
    let e = corner_elements(plane, cell);
    flush(e.x, s0);
    flush(e.y, s1);
    flush(e.z, s2);
    flush(e.w, s3);
}

// The second pass of grad_input: the fixed-point sums (see the header).
@compute @workgroup_size(64, 1, 1)
fn sum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (wg >= params.threads) {
        return;
    }
    let k = stage(wg, lid);
    if (!k.on) {
        return;
    }
    var cell = vec2<i32>(-2);
    // the run's partial sums and its corners' scales
    var s0 = vec3<u32>(0u);
    var s1 = vec3<u32>(0u);
    var s2 = vec3<u32>(0u);
    var s3 = vec3<u32>(0u);
    var x0 = vec2<f32>(0.0);
    var x1 = vec2<f32>(0.0);
    var x2 = vec2<f32>(0.0);
    var x3 = vec2<f32>(0.0);
    for (var j = k.begin; j < k.end; j++) {
        if (any(staged_cell[j] != cell)) {
            flush_corners(k.plane, cell, s0, s1, s2, s3);
            cell = staged_cell[j];
            s0 = vec3<u32>(0u);
            s1 = vec3<u32>(0u);
            s2 = vec3<u32>(0u);
            s3 = vec3<u32>(0u);
            let e = corner_elements(k.plane, cell);
            let ok = in_image(cell);
            if (ok.x) {
                x0 = scale_factors(e.x);
            }
            if (ok.y) {
                x1 = scale_factors(e.y);
            }
            if (ok.z) {
                x2 = scale_factors(e.z);
            }
            if (ok.w) {
                x3 = scale_factors(e.w);
            }
        }
        let v = staged_scat[j] * cols[k.col + staged_col[j]];
        let near = near_bits(staged_near[j]);
        if (near.x) {
            s0 = add_term(s0, v.x, x0);
        }
        if (near.y) {
            s1 = add_term(s1, v.y, x1);
        }
        if (near.z) {
            s2 = add_term(s2, v.z, x2);
        }
        if (near.w) {
            s3 = add_term(s3, v.w, x3);
        }
    }
    flush_corners(k.plane, cell, s0, s1, s2, s3);
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
