//! Reference deform_conv2d, written from torchvision's definition: for output (n, co, oy, ox),
//! `bias[co] + Σ_{ci ∈ group(co), i, j} w[co, ci − g·Cin/G, i, j] · m · sample(x[n, ci], y, x)`
//! with `y = (oy·sh − pt + i·dh) + dy`, `x = (ox·sw − pl + j·dw) + dx` (dy, dx, m from the
//! offset and mask of ci's offset group at tap (i, j)), `sample` = 0 when y ≤ −1, y ≥ H,
//! x ≤ −1 or x ≥ W, else the bilinear sum over the in-image corners. Positions are formed in
//! f32 as torchvision does for float tensors; everything else accumulates in f64.

use crate::error::Result;
use crate::params::{DeformConv2dParams, DeformGeometry};
use crate::tensor::HostTensor;

pub(crate) fn sample(plane: &[f32], h: usize, w: usize, y: f32, x: f32) -> f64 {
    if y <= -1.0 || y >= h as f32 || x <= -1.0 || x >= w as f32 {
        return 0.0;
    }
    let (y0, x0) = (y.floor() as i64, x.floor() as i64);
    let (ly, lx) = (y as f64 - y0 as f64, x as f64 - x0 as f64);
    let at = |yy: i64, xx: i64| -> f64 {
        if yy >= 0 && yy < h as i64 && xx >= 0 && xx < w as i64 {
            plane[yy as usize * w + xx as usize] as f64
        } else {
            0.0
        }
    };
    (1.0 - ly) * (1.0 - lx) * at(y0, x0)
        + (1.0 - ly) * lx * at(y0, x0 + 1)
        + ly * (1.0 - lx) * at(y0 + 1, x0)
        + ly * lx * at(y0 + 1, x0 + 1)
}

/// Returns the output shape `[N, Cout, Ho, Wo]` and the values in f64.
pub fn deform_conv2d(
    input: &HostTensor,
    weight: &HostTensor,
    offset: &HostTensor,
    mask: Option<&HostTensor>,
    bias: Option<&HostTensor>,
    params: &DeformConv2dParams,
) -> Result<([usize; 4], Vec<f64>)> {
    let (input, offset) = (&input.batched(4), &offset.batched(4));
    let mask = mask.map(|m| m.batched(4));
    let mask = mask.as_deref();
    let dg = params.validate_deform(
        &input.shape,
        &weight.shape,
        &offset.shape,
        mask.map(|m| m.shape.as_slice()),
        bias.map(|b| b.shape.as_slice()),
    )?;
    let out = (0..dg.conv.output_numel())
        .map(|i| params.activation.apply(deform_conv2d_at(input, weight, offset, mask, bias, &dg, i)))
        .collect();
    Ok((dg.conv.output_shape(), out))
}

/// One output element (flat index `index` of the NCHW output) before the activation, for
/// spot checks of large outputs. `dg` must come from `params.validate_deform` of these
/// (batched) tensors.
pub fn deform_conv2d_at(
    input: &HostTensor,
    weight: &HostTensor,
    offset: &HostTensor,
    mask: Option<&HostTensor>,
    bias: Option<&HostTensor>,
    dg: &DeformGeometry,
    index: usize,
) -> f64 {
    let g = dg.conv;
    let og_count = dg.offset_groups as usize;
    let [c_in, h, w] = [g.c_in, g.h, g.w].map(|v| v as usize);
    let [c_out, kh, kw, ho, wo] = [g.c_out, g.kh, g.kw, g.h_out, g.w_out].map(|v| v as usize);
    let (cig, cog) = (g.c_in_per_group() as usize, g.c_out_per_group() as usize);
    let (per_og, taps, hw_out) = (c_in / og_count, kh * kw, ho * wo);
    let (pix, rest) = (index % hw_out, index / hw_out);
    let (co, b) = (rest % c_out, rest / c_out);
    let (oy, ox) = (pix / wo, pix % wo);
    let grp = co / cog;
    let mut acc = bias.map_or(0.0, |bv| bv.data[co] as f64);
    for cl in 0..cig {
        let ci = grp * cig + cl;
        let og = ci / per_og;
        let plane = &input.data[(b * c_in + ci) * h * w..][..h * w];
        for i in 0..kh {
            for j in 0..kw {
                let t = i * kw + j;
                let off = ((b * og_count + og) * 2 * taps + 2 * t) * hw_out + pix;
                let (dy, dx) = (offset.data[off], offset.data[off + hw_out]);
                let base_y = (oy * g.stride[0] as usize + i * g.dilation[0] as usize) as i64 - g.pads.top as i64;
                let base_x = (ox * g.stride[1] as usize + j * g.dilation[1] as usize) as i64 - g.pads.left as i64;
                let mut v = sample(plane, h, w, base_y as f32 + dy, base_x as f32 + dx);
                if let Some(m) = mask {
                    v *= m.data[((b * og_count + og) * taps + t) * hw_out + pix] as f64;
                }
                acc += weight.data[((co * cig + cl) * kh + i) * kw + j] as f64 * v;
            }
        }
    }
    acc
}
