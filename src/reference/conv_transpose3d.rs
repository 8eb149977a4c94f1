//! Reference conv_transpose3d, written as the scatter that defines it: every input voxel
//! `x[n, ci, z, y, x]` adds `x · w[ci, co − g·Cout/G, a, i, j]` to
//! `out[n, co, z·sd − pf + a·dd, y·sh − pt + i·dh, x·sw − pl + j·dw]` for each output channel
//! co of its group and each tap that lands inside the output; then bias and activation.

use crate::error::Result;
use crate::params::{ConvTranspose3dGeometry, ConvTranspose3dParams};
use crate::tensor::HostTensor;

/// Calls `f(input index, weight index, output index)` for every (input voxel, output channel
/// of its group, tap) of the scatter, in that loop order; the output index is `None` where
/// the tap lands in the cropped border (`padding`), outside the output.
pub(crate) fn for_each_tap(g: &ConvTranspose3dGeometry, mut f: impl FnMut(usize, usize, Option<usize>)) {
    let [n, c_in, c_out, groups] = [g.n, g.c_in, g.c_out, g.groups].map(|v| v as usize);
    let (cig, cog) = (c_in / groups, c_out / groups);
    let [d, h, w] = g.size.map(|v| v as usize);
    let [kd, kh, kw] = g.kernel.map(|v| v as usize);
    let [dout, hout, wout] = g.out.map(|v| v as isize);
    let place = |pos: usize, a: usize, axis: usize| {
        pos as isize * g.stride[axis] as isize - g.pad_begin[axis] as isize + (a * g.dilation[axis] as usize) as isize
    };
    for b in 0..n {
        for ci in 0..c_in {
            let grp = ci / cig;
            for z in 0..d {
                for y in 0..h {
                    for x in 0..w {
                        let xi = (((b * c_in + ci) * d + z) * h + y) * w + x;
                        for cl in 0..cog {
                            let co = grp * cog + cl;
                            for a in 0..kd {
                                let oz = place(z, a, 0);
                                for i in 0..kh {
                                    let oy = place(y, i, 1);
                                    for j in 0..kw {
                                        let ox = place(x, j, 2);
                                        let wi = (((ci * cog + cl) * kd + a) * kh + i) * kw + j;
                                        let inside = (0..dout).contains(&oz)
                                            && (0..hout).contains(&oy)
                                            && (0..wout).contains(&ox);
                                        let oi = inside.then(|| {
                                            (((b * c_out + co) * dout as usize + oz as usize) * hout as usize
                                                + oy as usize)
                                                * wout as usize
                                                + ox as usize
                                        });
                                        f(xi, wi, oi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Returns the output shape `[N, Cout, Do, Ho, Wo]` and the values in f64.
pub fn conv_transpose3d(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    params: &ConvTranspose3dParams,
) -> Result<([usize; 5], Vec<f64>)> {
    let input = &input.batched(5);
    let g = params.validate(&input.shape, &weight.shape, bias.map(|b| b.shape.as_slice()))?;
    let shape = g.output_shape();
    let mut out = vec![0f64; shape.iter().product()];
    for_each_tap(&g, |xi, wi, oi| {
        if let Some(oi) = oi {
            out[oi] += input.data[xi] as f64 * weight.data[wi] as f64;
        }
    });
    let per_channel: usize = shape[2..].iter().product();
    for (idx, v) in out.iter_mut().enumerate() {
        let co = (idx / per_channel.max(1)) % shape[1].max(1);
        *v = params.activation.apply(*v + bias.map_or(0.0, |b| b.data[co] as f64));
    }
    Ok((shape, out))
}
