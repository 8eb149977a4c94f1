//! Reference conv_transpose2d backward: the scatter of [`super::conv_transpose2d()`] walked
//! again; wherever `x[n, ci, iy, ix]` met `w[ci, cl, i, j]` in `out[n, co, oy, ox]`,
//! `dx += w·dy` and `dw += x·dy`; `db` sums dy. Accumulates in f64.
//!
//! A tap that lands in the cropped border (`padding`) meets dy = 0 there: the terms `w·0` and
//! `x·0` are summed too (NaN where w or x is not finite), as autograd of the forward as full
//! output then crop gives, and as the GPU's gathers of dy (a conv over dy, zero-padded) do.

use crate::error::{Error, Result};
use crate::params::ConvTranspose2dParams;
use crate::tensor::HostTensor;

/// (grad_input, grad_weight, grad_bias), in the layouts of input (`[N, Cin, H, W]` or `[Cin,
/// H, W]`), weight (`[Cin, Cout/groups, kh, kw]`) and `[Cout]`.
pub fn conv_transpose2d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    grad_output: &HostTensor,
    params: &ConvTranspose2dParams,
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
    for (i, d) in grad_output.data.iter().enumerate() {
        db[(i / (ho * wo)) % c_out] += *d as f64;
    }
    for b in 0..n {
        for ci in 0..c_in {
            let grp = ci / cig;
            for iy in 0..h {
                for ix in 0..w {
                    let xi = ((b * c_in + ci) * h + iy) * w + ix;
                    for cl in 0..cog {
                        let co = grp * cog + cl;
                        for i in 0..kh {
                            let oy = iy as isize * sh - pt + i as isize * dh;
                            for j in 0..kw {
                                let ox = ix as isize * sw - pl + j as isize * dw;
                                let inside = (0..ho as isize).contains(&oy) && (0..wo as isize).contains(&ox);
                                let d = if inside {
                                    grad_output.data[((b * c_out + co) * ho + oy as usize) * wo + ox as usize] as f64
                                } else {
                                    0.0
                                };
                                let wi = ((ci * cog + cl) * kh + i) * kw + j;
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
