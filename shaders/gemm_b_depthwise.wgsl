// B_DEPTHWISE: the fused depthwise-separable block, B being the depthwise conv's output
// computed on the fly from the input.

// The depthwise stage's channel multiplier (its output channels per input channel).
struct DepthwiseStage {
    dw_mult: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}


@group(0) @binding(7) var<storage, read> dw_weight: array<f32>;

// Row cm of the depthwise stage (B_DEPTHWISE) at the four columns of `c`.
fn depthwise_row(c: Cols, cm: u32) -> vec4<f32> {
    let taps = params.conv.kh * params.conv.kw;
    let plane = (cm / params.dw.dw_mult) * params.conv.h * params.conv.w;
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < params.conv.kh; i++) {
        let dy = i32(i * params.conv.dil_h);
        for (var j = 0u; j < params.conv.kw; j++) {
            let dx = i32(j * params.conv.dil_w);
            let wv = dw_weight[cm * taps + i * params.conv.kw + j];
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
