// B_TAPS: grad_weight's B, the im2col matrix transposed, gathered from the input. The tiled
// read takes one output pixel per row; main_flat walks the pixels in order (Pix).

// Row bk (an output pixel) of grad_weight's B at the four tap columns of `c`.
fn load_b_taps(c: Cols, bk: u32) -> vec4<f32> {
    // Row bk is one output pixel: where its window starts in the input.
    let pimg = bk / params.grad.a_hw;
    let pq = bk - pimg * params.grad.a_hw;
    let oy = pq / params.conv.w_out;
    let ox = pq - oy * params.conv.w_out;
    let plane0 = pimg * (params.conv.c_in * params.conv.h * params.conv.w);
    let y0 = i32(oy * params.conv.stride_h) - i32(params.conv.pad_top);
    let x0 = i32(ox * params.conv.stride_w) - i32(params.conv.pad_left);
    return vec4<f32>(gather(c.ok.x, plane0 + c.base.x, y0 + c.iy0.x, x0 + c.ix0.x),
                     gather(c.ok.y, plane0 + c.base.y, y0 + c.iy0.y, x0 + c.ix0.y),
                     gather(c.ok.z, plane0 + c.base.z, y0 + c.iy0.z, x0 + c.ix0.z),
                     gather(c.ok.w, plane0 + c.base.w, y0 + c.iy0.w, x0 + c.ix0.w));
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
    let y0 = i32(oy * params.conv.stride_h) - i32(params.conv.pad_top);
    let x0 = i32(ox * params.conv.stride_w) - i32(params.conv.pad_left);
    let a = (img * params.grad.a_channels) * params.grad.a_hw + oy * params.conv.w_out + ox;
    let b = i32(img * params.conv.c_in * params.conv.h * params.conv.w) + y0 * i32(params.conv.w) + x0;
    return Pix(img, oy, ox, y0, x0, a, b);
}

fn next_pix(p: Pix) -> Pix {
    if (p.ox + 1u < params.conv.w_out) {
        var n = p;
        n.ox += 1u;
        n.x0 += i32(params.conv.stride_w);
        n.a += 1u;
        n.b += i32(params.conv.stride_w);
        return n;
    }
    if (p.oy + 1u < params.grad.a_hw / params.conv.w_out) {
        return pix_at(p.img, p.oy + 1u, 0u);
    }
    return pix_at(p.img + 1u, 0u, 0u);
}

// B_TAPS's row at pixel p for the four tap columns of `c` (0 where the tap falls outside
// the image, or the column is past N).
fn pix_load(c: Cols, p: Pix) -> vec4<f32> {
    let ok = c.ok & (vec4<u32>(c.iy0 + p.y0) < vec4<u32>(params.conv.h)) & (vec4<u32>(c.ix0 + p.x0) < vec4<u32>(params.conv.w));
    return tap_load(select(vec4<i32>(-1), c.at + p.b, ok), 0u);
}
