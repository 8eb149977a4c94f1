// B_POINTWISE: B is the input of a 1x1, stride-1, unpadded conv (NCHW, or channels-last with
// X_NHWC: c.base then holds each column's pixel times C).

// Row bk (an input channel) of a pointwise conv's B at the four columns of `c`.
fn load_b_pointwise(g: u32, c: Cols, bk: u32) -> vec4<f32> {
    var bv = vec4<f32>(0.0);
    let off = (g * params.dims.k + bk) * select(params.dims.hw, 1u, X_NHWC);
    if (B_VEC4 && !X_NHWC) {
        // Read as vec4 (H·W and the first column multiples of 4): a quad's columns lie in
        // one image, those past N are zeros (their load clamped into the binding). No other
        // branch: on llvmpipe the code of a branch no lane takes still runs, masked.
        let s = min(c.base.x + off, b_len() - 4u);
        bv = select(vec4<f32>(0.0), b_quad(s), c.ok);
    } else if (!X_NHWC && c.ok.w && c.img.x == c.img.w) {
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
    return bv;
}
