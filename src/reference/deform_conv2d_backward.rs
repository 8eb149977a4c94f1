//! Reference deform_conv2d backward, written from torchvision's autograd of
//! `torchvision.ops.deform_conv2d`. With `col[n, ci, t, q] = Σ_k w[k, ci − g·Cin/G, t] ·
//! dy[n, k, q]` over the output channels k of ci's weight group g, and for each (n, offset
//! group, tap t, output pixel q) the sample position (y, x) and mask m of the forward
//! ([`super::deform_conv2d()`]):
//! - grad_input[n, ci, yp, xp] += m · (1 − |y − yp|) · (1 − |x − xp|) · col for every in-image
//!   (yp, xp) with |y − yp| < 1 and |x − xp| < 1;
//! - grad_offset (dy channel) = Σ_ci m · col · (lx · (v11 − v01) + (1 − lx) · (v10 − v00)), the
//!   dx channel Σ_ci m · col · (ly · (v11 − v10) + (1 − ly) · (v01 − v00)), with (ly, lx) the
//!   fractions of (y, x) and v the four corners floor(y) + {0, 1} × floor(x) + {0, 1} (0 off
//!   the image; torchvision's `get_coordinate_weight`: no sampling-box test);
//! - grad_mask = Σ_ci col · sample(x[n, ci], y, x);
//! - grad_weight[k, cl, t] = Σ_{n, q} dy[n, k, q] · m · sample(x[n, ci], y, x);
//! - `grad_bias[k] = Σ_{n, q} dy[n, k, q]`.
//!
//! Positions in f32 as torchvision forms them; everything else in f64.

use crate::error::{Error, Result};
use crate::params::DeformConv2dParams;
use crate::tensor::HostTensor;

/// Every gradient of one deform_conv2d, in f64, each flat in its tensor's layout (grad_mask
/// empty without a mask).
#[derive(Clone, Debug)]
pub struct DeformGradsF64 {
    /// Gradient of the input, `[N, Cin, H, W]`.
    pub grad_input: Vec<f64>,
    /// Gradient of the weight, `[Cout, Cin/groups, kh, kw]`.
    pub grad_weight: Vec<f64>,
    /// Gradient of the offsets, `[N, 2·offset_groups·kh·kw, Ho, Wo]` (dy, dx channels per tap).
    pub grad_offset: Vec<f64>,
    /// Gradient of the mask, `[N, offset_groups·kh·kw, Ho, Wo]`; empty without a mask.
    pub grad_mask: Vec<f64>,
    /// Gradient of the bias, `[Cout]` (computed whether or not the op had a bias).
    pub grad_bias: Vec<f64>,
}

/// Computes every gradient given `grad_output` `[N, Cout, Ho, Wo]` (unbatched tensors as a
/// batch of one).
pub fn deform_conv2d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    offset: &HostTensor,
    mask: Option<&HostTensor>,
    grad_output: &HostTensor,
    params: &DeformConv2dParams,
) -> Result<DeformGradsF64> {
    let (input, offset, grad_output) = (&input.batched(4), &offset.batched(4), &grad_output.batched(4));
    let mask = mask.map(|m| m.batched(4));
    let mask = mask.as_deref();
    let dg =
        params.validate_deform(&input.shape, &weight.shape, &offset.shape, mask.map(|m| m.shape.as_slice()), None)?;
    let g = dg.conv;
    if grad_output.shape != g.output_shape() {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected {:?}", grad_output.shape, g.output_shape()),
        });
    }
    let ogs = dg.offset_groups as usize;
    let [n, c_in, h, w] = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
    let [c_out, kh, kw, ho, wo] = [g.c_out, g.kh, g.kw, g.h_out, g.w_out].map(|v| v as usize);
    let (cig, cog) = (g.c_in_per_group() as usize, g.c_out_per_group() as usize);
    let (per_og, taps, hw_out) = (c_in / ogs, kh * kw, ho * wo);
    let dy = &grad_output.data;
    let mut r = DeformGradsF64 {
        grad_input: vec![0.0; input.data.len()],
        grad_weight: vec![0.0; weight.data.len()],
        grad_offset: vec![0.0; offset.data.len()],
        grad_mask: vec![0.0; mask.map_or(0, |m| m.data.len())],
        grad_bias: vec![0.0; c_out],
    };
    for b in 0..n {
        for og in 0..ogs {
            for t in 0..taps {
                let (i, j) = (t / kw, t % kw);
                for q in 0..hw_out {
                    let (oy, ox) = (q / wo, q % wo);
                    let off = ((b * ogs + og) * 2 * taps + 2 * t) * hw_out + q;
                    let base_y = (oy * g.stride[0] as usize + i * g.dilation[0] as usize) as i64 - g.pads.top as i64;
                    let base_x = (ox * g.stride[1] as usize + j * g.dilation[1] as usize) as i64 - g.pads.left as i64;
                    let (y, x) = (base_y as f32 + offset.data[off], base_x as f32 + offset.data[off + hw_out]);
                    let mi = ((b * ogs + og) * taps + t) * hw_out + q;
                    let m = mask.map_or(1.0, |mk| mk.data[mi] as f64);
                    let (yf, xf) = (y.floor(), x.floor());
                    let (ly, lx) = (y as f64 - yf as f64, x as f64 - xf as f64);
                    let corner = |dy: i64, dx: i64| -> Option<usize> {
                        let (yy, xx) = (yf as i64 + dy, xf as i64 + dx);
                        (y.is_finite() && x.is_finite() && yy >= 0 && yy < h as i64 && xx >= 0 && xx < w as i64)
                            .then(|| yy as usize * w + xx as usize)
                    };
                    let corners = [corner(0, 0), corner(0, 1), corner(1, 0), corner(1, 1)];
                    let (mut gy, mut gx, mut gm) = (0.0, 0.0, 0.0);
                    for cl in 0..per_og {
                        let ci = og * per_og + cl;
                        let grp = ci / cig;
                        let col: f64 = (0..cog)
                            .map(|m| {
                                let k = grp * cog + m;
                                weight.data[(k * cig + ci % cig) * taps + t] as f64
                                    * dy[(b * c_out + k) * hw_out + q] as f64
                            })
                            .sum();
                        let plane = &input.data[(b * c_in + ci) * h * w..][..h * w];
                        let v = corners.map(|c| c.map_or(0.0, |p| plane[p] as f64));
                        gy += m * col * (lx * (v[3] - v[1]) + (1.0 - lx) * (v[2] - v[0]));
                        gx += m * col * (ly * (v[3] - v[2]) + (1.0 - ly) * (v[1] - v[0]));
                        let s = super::deform_conv2d::sample(plane, h, w, y, x);
                        gm += col * s;
                        for (k, c) in corners.iter().enumerate() {
                            let (yp, xp) = (yf as f64 + (k / 2) as f64, xf as f64 + (k % 2) as f64);
                            let (ay, ax) = ((y as f64 - yp).abs(), (x as f64 - xp).abs());
                            if let (Some(p), true) = (c, ay < 1.0 && ax < 1.0) {
                                r.grad_input[(b * c_in + ci) * h * w + p] += m * (1.0 - ay) * (1.0 - ax) * col;
                            }
                        }
                        for mo in 0..cog {
                            let k = grp * cog + mo;
                            r.grad_weight[(k * cig + ci % cig) * taps + t] +=
                                dy[(b * c_out + k) * hw_out + q] as f64 * m * s;
                        }
                    }
                    r.grad_offset[off] = gy;
                    r.grad_offset[off + hw_out] = gx;
                    if mask.is_some() {
                        r.grad_mask[mi] = gm;
                    }
                }
            }
        }
        for k in 0..c_out {
            r.grad_bias[k] += dy[(b * c_out + k) * hw_out..][..hw_out].iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    Ok(r)
}
