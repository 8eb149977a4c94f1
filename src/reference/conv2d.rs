//! Reference conv2d: out[n, co, oy, ox] = bias[co] + Σ_{ci∈group(co), i, j}
//! in[n, ci, oy·sh − pt + i·dh, ox·sw − pl + j·dw] · w[co, ci − g·Cin/G, i, j],
//! with out-of-range input positions read as 0.

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
    let g = params.validate(
        &input.shape,
        &weight.shape,
        bias.map(|b| b.shape.as_slice()),
    )?;
    let [n, c_in, h, w] = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
    let [c_out, kh, kw, ho, wo] = [g.c_out, g.kh, g.kw, g.h_out, g.w_out].map(|v| v as usize);
    let (cig, cog) = (g.c_in_per_group() as usize, g.c_out_per_group() as usize);
    let [sh, sw] = g.stride.map(|v| v as isize);
    let [dh, dw] = g.dilation.map(|v| v as isize);
    let (pt, pl) = (g.pads.top as isize, g.pads.left as isize);
    let mut out = vec![0f64; n * c_out * ho * wo];
    for b in 0..n {
        for co in 0..c_out {
            let grp = co / cog;
            let base = bias.map_or(0.0, |bv| bv.data[co] as f64);
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = base;
                    for cl in 0..cig {
                        let ci = grp * cig + cl;
                        for i in 0..kh {
                            let iy = oy as isize * sh - pt + i as isize * dh;
                            for j in 0..kw {
                                let ix = ox as isize * sw - pl + j as isize * dw;
                                // Zero padding is a value: 0·w is still added, so an infinite
                                // weight over padding gives NaN exactly as in PyTorch.
                                let inside =
                                    iy >= 0 && iy < h as isize && ix >= 0 && ix < w as isize;
                                let x = if inside {
                                    input.data
                                        [((b * c_in + ci) * h + iy as usize) * w + ix as usize]
                                        as f64
                                } else {
                                    0.0
                                };
                                let wt = weight.data[((co * cig + cl) * kh + i) * kw + j] as f64;
                                acc += x * wt;
                            }
                        }
                    }
                    out[((b * c_out + co) * ho + oy) * wo + ox] = acc;
                }
            }
        }
    }
    Ok((g.output_shape(), out))
}
