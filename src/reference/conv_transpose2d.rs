//! Reference conv_transpose2d, written as the scatter that defines it: every input pixel
//! `x[n, ci, iy, ix]` adds `x · w[ci, co − g·Cout/G, i, j]` to
//! `out[n, co, iy·sh − pt + i·dh, ix·sw − pl + j·dw]` for each output channel co of its group
//! and each tap (i, j) that lands inside the output; then bias and activation.

use crate::error::Result;
use crate::params::ConvTranspose2dParams;
use crate::tensor::HostTensor;

/// Returns the output shape `[N, Cout, Ho, Wo]` and the values in f64.
pub fn conv_transpose2d(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    params: &ConvTranspose2dParams,
) -> Result<([usize; 4], Vec<f64>)> {
    let input = &input.batched(4);
    let g = params.validate(&input.shape, &weight.shape, bias.map(|b| b.shape.as_slice()))?;
    let [n, c_in, h, w] = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
    let [c_out, kh, kw, ho, wo] = [g.c_out, g.kh, g.kw, g.h_out, g.w_out].map(|v| v as usize);
    let (cig, cog) = (g.c_in_per_group() as usize, g.c_out_per_group() as usize);
    let [sh, sw] = g.stride.map(|v| v as isize);
    let [dh, dw] = g.dilation.map(|v| v as isize);
    let (pt, pl) = (g.pads.top as isize, g.pads.left as isize);
    let mut out = vec![0f64; n * c_out * ho * wo];
    for b in 0..n {
        for ci in 0..c_in {
            let grp = ci / cig;
            for iy in 0..h {
                for ix in 0..w {
                    let x = input.data[((b * c_in + ci) * h + iy) * w + ix] as f64;
                    for cl in 0..cog {
                        let co = grp * cog + cl;
                        for i in 0..kh {
                            let oy = iy as isize * sh - pt + i as isize * dh;
                            if oy < 0 || oy >= ho as isize {
                                continue;
                            }
                            for j in 0..kw {
                                let ox = ix as isize * sw - pl + j as isize * dw;
                                if ox < 0 || ox >= wo as isize {
                                    continue;
                                }
                                let wt = weight.data[((ci * cog + cl) * kh + i) * kw + j] as f64;
                                out[((b * c_out + co) * ho + oy as usize) * wo + ox as usize] += x * wt;
                            }
                        }
                    }
                }
            }
        }
    }
    let per_channel = ho * wo;
    for (idx, v) in out.iter_mut().enumerate() {
        let co = (idx / per_channel) % c_out;
        *v = params.activation.apply(*v + bias.map_or(0.0, |b| b.data[co] as f64));
    }
    Ok((g.output_shape(), out))
}
