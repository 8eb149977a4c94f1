// The GEMM's B operand: what each invocation knows of its four columns, the bounded
// gathers every loader shares, and the dispatch to the loader of B_MODE.

// The input and window of the loaders that gather from it (B_IMPLICIT, B_TAPS, B_DEFORM,
// B_DEPTHWISE, B_TRANSPOSED), and w_out: the width of the grid the columns walk (the conv's
// output width; B_TRANSPOSED: the phase grid's, ⌈Wo/sw⌉).
struct ConvWindow {
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
}


// X_NHWC: the input the gathering loaders read (B_IMPLICIT, B_POINTWISE, B_TRANSPOSED) is channels-last,
// [N, H, W, C] in memory: element (img, ci, y, x) at img·C·H·W + ci·x_chan_stride() +
// (y·W + x)·x_pixel_stride() (NCHW: strides H·W and 1; channels-last: 1 and C).
override X_NHWC: bool = false;

fn x_chan_stride() -> u32 {
    return select(params.conv.h * params.conv.w, 1u, X_NHWC);
}

fn x_pixel_stride() -> u32 {
    return select(1u, params.conv.c_in, X_NHWC);
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
    // base + (iy0·W + ix0)·x_pixel_stride(): the input index of tap (0, 0) of channel 0 (B_IMPLICIT and B_TRANSPOSED) or of
    // the tap at output pixel (0, 0) (B_TAPS); may point outside the image, only in-image
    // positions are read.
    at: vec4<i32>,
}

fn columns(ph: Phase, b_c: u32) -> Cols {
    let g = ph.gc;
    var c: Cols;
    let cols = vec4<u32>(b_c, b_c + 1u, b_c + 2u, b_c + 3u);
    c.ok = cols < vec4<u32>(params.dims.n);
    let p = vec4<u32>(params.dims.col0) + cols;
    c.img = p / vec4<u32>(params.dims.hw);
    let q = p - c.img * params.dims.hw;
    c.q = q;
    c.base = vec4<u32>(0u);
    c.iy0 = vec4<i32>(0);
    c.ix0 = vec4<i32>(0);
    if (B_MODE == B_IMPLICIT || B_MODE == B_DEFORM || B_MODE == B_DEPTHWISE) {
        let oy = q / vec4<u32>(params.conv.w_out);
        let ox = q - oy * params.conv.w_out;
        c.base = c.img * (params.conv.c_in * params.conv.h * params.conv.w);
        c.iy0 = vec4<i32>(oy * params.conv.stride_h) - i32(params.conv.pad_top);
        c.ix0 = vec4<i32>(ox * params.conv.stride_w) - i32(params.conv.pad_left);
    } else if (B_MODE == B_TRANSPOSED) {
        // Phase pixel (qy, qx); columns outside the real output plane gather nothing.
        let qy = q / vec4<u32>(params.conv.w_out);
        let qx = q - qy * params.conv.w_out;
        c.ok = c.ok & (vec4<u32>(ph.ry) + qy * params.conv.stride_h < vec4<u32>(params.phases.out_h))
                    & (vec4<u32>(ph.rx) + qx * params.conv.stride_w < vec4<u32>(params.phases.out_w));
        c.base = c.img * (params.conv.c_in * params.conv.h * params.conv.w);
        c.iy0 = vec4<i32>(qy) + ph.by;
        c.ix0 = vec4<i32>(qx) + ph.bx;
    } else if (B_MODE == B_POINTWISE) {
        c.base = c.img * (params.conv.c_in * params.dims.hw) + q * x_pixel_stride();
    } else if (B_MODE == B_TAPS) {
        // Columns are taps: their channel plane and offsets.
        let taps = params.conv.kh * params.conv.kw;
        let cl = cols / vec4<u32>(taps);
        let tap = cols - cl * taps;
        let ti = tap / vec4<u32>(params.conv.kw);
        let tj = tap - ti * params.conv.kw;
        c.base = (vec4<u32>(g * (params.conv.c_in / params.dims.groups)) + cl) * (params.conv.h * params.conv.w);
        c.iy0 = vec4<i32>(ti * params.conv.dil_h);
        c.ix0 = vec4<i32>(tj * params.conv.dil_w);
    }
    c.at = vec4<i32>(c.base) + (c.iy0 * i32(params.conv.w) + c.ix0) * i32(x_pixel_stride());
    return c;
}

// One input element for the implicit modes, 0 outside the image or past the last column.
fn gather(ok: bool, base: u32, iy: i32, ix: i32) -> f32 {
    if (ok && iy >= 0 && iy < i32(params.conv.h) && ix >= 0 && ix < i32(params.conv.w)) {
        return b_at(base + (u32(iy) * params.conv.w + u32(ix)) * x_pixel_stride());
    }
    return 0.0;
}

// The inputs at `at` (tap_index) in the channel plane `plane` elements further; 0 at −1.
fn tap_load(at: vec4<i32>, plane: u32) -> vec4<f32> {
    let ok = at >= vec4<i32>(0);
    let i = vec4<u32>(select(vec4<i32>(0), at + i32(plane), ok));
    return select(vec4<f32>(0.0), vec4<f32>(b_at(i.x), b_at(i.y), b_at(i.z), b_at(i.w)), ok);
}

// Four values of row bk of B at columns b_c .. b_c + 3 (0 past K or N): the loader of B_MODE.
fn load_b(ph: Phase, c: Cols, bk: u32, b_c: u32) -> vec4<f32> {
    let g = ph.gc;
    var bv = vec4<f32>(0.0);
    if (bk >= params.dims.k) {
        return bv;
    }
    if (B_MODE == B_DENSE) {
        bv = load_b_dense(g, c, bk, b_c);
    } else if (B_MODE == B_IMPLICIT) {
        bv = load_b_implicit(g, c, bk);
    } else if (B_MODE == B_DEPTHWISE) {
        bv = depthwise_row(c, bk);
    } else if (B_MODE == B_TRANSPOSED) {
        bv = load_b_transposed(ph, c, bk);
    } else if (B_MODE == B_DEFORM) {
        bv = load_b_deform(g, c, bk, b_c);
    } else if (B_MODE == B_TAPS) {
        bv = load_b_taps(c, bk);
    } else if (B_MODE == B_COLUMNS_T) {
        bv = load_b_columns_t(g, c, bk, b_c);
    } else {
        bv = load_b_pointwise(g, c, bk);
    }
    return bv;
}
