//! Reference conv3d backward from the forward's definition ([`super::conv3d()`]): every
//! (output voxel, tap, input channel) term `x · w` of the forward adds `dy · w` to the
//! gradient of the input voxel it read (through the padding mode) and `dy · x` to its
//! weight's (`dy · 0` where it read zero padding: NaN where dy is not finite, as autograd
//! through the zero-padded input gives); grad_bias sums dy per channel.

use crate::error::{Error, Result};
use crate::params::Conv3dParams;
use crate::tensor::HostTensor;

/// (grad_input, grad_weight, grad_bias) in f64, for `grad_output` `[N, Cout, Do, Ho, Wo]`
/// (unbatched tensors as a batch of one).
pub fn conv3d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    grad_output: &HostTensor,
    params: &Conv3dParams,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (input, grad_output) = (&input.batched(5), &grad_output.batched(5));
    let g = params.validate(&input.shape, &weight.shape, None)?;
    if grad_output.shape != g.output_shape() {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected {:?}", grad_output.shape, g.output_shape()),
        });
    }
    let [n, c_out, od, oh, ow] = g.output_shape();
    let c_in = g.c_in as usize;
    let [d, h, w] = g.size.map(|v| v as isize);
    let [kd, kh, kw] = g.kernel.map(|v| v as usize);
    let (s, dl, p) = (g.stride.map(|v| v as isize), g.dilation.map(|v| v as isize), g.pad_begin.map(|v| v as isize));
    let (cig, cog) = (c_in / g.groups as usize, c_out / g.groups as usize);
    let (mut dx, mut dw, mut db) = (vec![0.0; input.data.len()], vec![0.0; weight.data.len()], vec![0.0; c_out]);
    // the input element a padded position reads (its padding mode's), if any
    let m = g.padding_mode;
    let at = |b: usize, c: usize, z: isize, y: isize, x: isize| -> Option<usize> {
        let (z, y, x) = (m.source(z, d)?, m.source(y, h)?, m.source(x, w)?);
        Some((((b * c_in + c) * d as usize + z) * h as usize + y) * w as usize + x)
    };
    for b in 0..n {
        for co in 0..c_out {
            let grp = co / cog;
            for z in 0..od {
                for y in 0..oh {
                    for x in 0..ow {
                        let dy = grad_output.data[(((b * c_out + co) * od + z) * oh + y) * ow + x] as f64;
                        db[co] += dy;
                        for cl in 0..cig {
                            for a in 0..kd {
                                for i in 0..kh {
                                    for j in 0..kw {
                                        let iz = z as isize * s[0] - p[0] + a as isize * dl[0];
                                        let iy = y as isize * s[1] - p[1] + i as isize * dl[1];
                                        let ix = x as isize * s[2] - p[2] + j as isize * dl[2];
                                        let wi = (((co * cig + cl) * kd + a) * kh + i) * kw + j;
                                        // zero padding: an explicit zero, dw += 0·dy
                                        let Some(q) = at(b, grp * cig + cl, iz, iy, ix) else {
                                            dw[wi] += dy * 0.0;
                                            continue;
                                        };
                                        dx[q] += dy * weight.data[wi] as f64;
                                        dw[wi] += dy * input.data[q] as f64;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((dx, dw, db))
}
