//! Reference conv2d backward: the naive loops of the classic `conv_backward_naive`. For
//! every output position and every tap that reads an input position (inside the image, or
//! the one its padding mode reads: [`crate::params::PaddingMode::source`]),
//! `dx += w·dy` at that position, `dw += x·dy`; `db` sums dy. Accumulates in f64.
//!
//! A tap that reads zero padding reads an explicit zero: `dw += 0·dy` (NaN where dy is not
//! finite), as the forward's `0·w` and autograd through the zero-padded input give; dx has no
//! element there, so no term. (PyTorch's im2col/col2im path sums the same terms.)

use crate::error::{Error, Result};
use crate::params::Conv2dParams;
use crate::tensor::HostTensor;

/// (grad_input, grad_weight, grad_bias), in the layouts of input, weight and `[Cout]`.
pub fn conv2d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    grad_output: &HostTensor,
    params: &Conv2dParams,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (input, grad_output) = (&input.batched(4), &grad_output.batched(4));
    let g = params.validate(&input.shape, &weight.shape, None)?;
    if grad_output.shape != g.output_shape() {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected {:?}", grad_output.shape, g.output_shape()),
        });
    }
    let [n, c_in, h, w] = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
    let [c_out, kh, kw, ho, wo] = [g.c_out, g.kh, g.kw, g.h_out, g.w_out].map(|v| v as usize);
    let (cig, cog) = (g.c_in_per_group() as usize, g.c_out_per_group() as usize);
    let [sh, sw] = g.stride.map(|v| v as isize);
    let [dh, dw] = g.dilation.map(|v| v as isize);
    let (pt, pl) = (g.pads.top as isize, g.pads.left as isize);
    let mut dx = vec![0f64; input.data.len()];
    let mut dwt = vec![0f64; weight.data.len()];
    let mut db = vec![0f64; c_out];
    for b in 0..n {
        for co in 0..c_out {
            let grp = co / cog;
            for oy in 0..ho {
                for ox in 0..wo {
                    let d = grad_output.data[((b * c_out + co) * ho + oy) * wo + ox] as f64;
                    db[co] += d;
                    for cl in 0..cig {
                        let ci = grp * cig + cl;
                        for i in 0..kh {
                            let iy = oy as isize * sh - pt + i as isize * dh;
                            let sy = g.padding_mode.source(iy, h as isize);
                            for j in 0..kw {
                                let ix = ox as isize * sw - pl + j as isize * dw;
                                let wi = ((co * cig + cl) * kh + i) * kw + j;
                                let (Some(sy), Some(sx)) = (sy, g.padding_mode.source(ix, w as isize)) else {
                                    dwt[wi] += 0.0 * d;
                                    continue;
                                };
                                let xi = ((b * c_in + ci) * h + sy) * w + sx;
                                dx[xi] += weight.data[wi] as f64 * d;
                                dwt[wi] += input.data[xi] as f64 * d;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((dx, dwt, db))
}
