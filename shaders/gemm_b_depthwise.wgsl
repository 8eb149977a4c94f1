// B_DEPTHWISE: the fused depthwise-separable block, B being the depthwise conv's output
// computed on the fly from the input.

@group(0) @binding(7) var<storage, read> dw_weight: array<f32>;

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
