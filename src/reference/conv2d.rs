//! Reference conv2d: `out[n, co, oy, ox] = bias[co] + Σ_{ci∈group(co), i, j}`
//! `in[n, ci, oy·sh − pt + i·dh, ox·sw − pl + j·dw] · w[co, ci − g·Cin/G, i, j]`,
//! with out-of-range input positions read as the padding mode says (0, or the input
//! reflected, replicated or wrapped: [`crate::params::PaddingMode::source`]), then the
//! activation.

use crate::error::Result;
use crate::params::Conv2dParams;
use crate::tensor::HostTensor;

/// Returns the output shape `[N, Cout, Ho, Wo]` and the values in f64.
pub fn conv2d(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    params: &Conv2dParams,
) -> Result<([usize; 4], Vec<f64>)> {
    let input = &input.batched(4);
    let g = params.validate(&input.shape, &weight.shape, bias.map(|b| b.shape.as_slice()))?;
    let shape = g.output_shape();
    let act = params.activation;
    let out = (0..shape.iter().product()).map(|i| act.apply(conv2d_at(input, weight, bias, &g, i))).collect();
    Ok((shape, out))
}

/// One output element `out[n, co, oy, ox]` (flat index `index` of the NCHW output) before
/// the activation, for spot checks of large outputs. `g` must come from `params.validate` of these tensors.
pub fn conv2d_at(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    g: &crate::params::Conv2dGeometry,
    index: usize,
) -> f64 {
    let [c_in, h, w] = [g.c_in, g.h, g.w].map(|v| v as usize);
    let [c_out, kh, kw, ho, wo] = [g.c_out, g.kh, g.kw, g.h_out, g.w_out].map(|v| v as usize);
    let (cig, cog) = (g.c_in_per_group() as usize, g.c_out_per_group() as usize);
    let (ox, rest) = (index % wo, index / wo);
    let (oy, rest) = (rest % ho, rest / ho);
    let (co, b) = (rest % c_out, rest / c_out);
    let grp = co / cog;
    let mut acc = bias.map_or(0.0, |bv| bv.data[co] as f64);
    for cl in 0..cig {
        let ci = grp * cig + cl;
        for i in 0..kh {
            let iy = oy as isize * g.stride[0] as isize - g.pads.top as isize + (i * g.dilation[0] as usize) as isize;
            for j in 0..kw {
                let ix =
                    ox as isize * g.stride[1] as isize - g.pads.left as isize + (j * g.dilation[1] as usize) as isize;
                let mode = g.padding_mode;
                // Zero padding is a value: 0·w is still added, so an infinite weight over
                // padding gives NaN exactly as in PyTorch.
                let x = match (mode.source(iy, h as isize), mode.source(ix, w as isize)) {
                    (Some(sy), Some(sx)) => input.data[((b * c_in + ci) * h + sy) * w + sx] as f64,
                    _ => 0.0,
                };
                acc += x * weight.data[((co * cig + cl) * kh + i) * kw + j] as f64;
            }
        }
    }
    acc
}
