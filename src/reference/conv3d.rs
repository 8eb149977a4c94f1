//! Reference conv3d, its own loops: `out[n, co, z, y, x] = bias[co] + Σ_{ci ∈ group(co), a, i, j}
//! in[n, ci, z·sd − pf + a·dd, y·sh − pt + i·dh, x·sw − pl + j·dw] · w[co, ci − g·Cin/G, a, i, j]`,
//! positions outside the input read as the padding mode says (0 for zeros).

use crate::error::Result;
use crate::params::Conv3dParams;
use crate::tensor::HostTensor;

/// Returns the output shape `[N, Cout, Do, Ho, Wo]` and the values in f64.
pub fn conv3d(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    params: &Conv3dParams,
) -> Result<([usize; 5], Vec<f64>)> {
    let input = &input.batched(5);
    let g = params.validate(&input.shape, &weight.shape, bias.map(|b| b.shape.as_slice()))?;
    let shape = g.output_shape();
    let [n, c_out, od, oh, ow] = shape;
    let c_in = g.c_in as usize;
    let [d, h, w] = g.size.map(|v| v as isize);
    let [kd, kh, kw] = g.kernel.map(|v| v as usize);
    let (s, dl, p) = (g.stride.map(|v| v as isize), g.dilation.map(|v| v as isize), g.pad_begin.map(|v| v as isize));
    let cig = c_in / g.groups as usize;
    let cog = c_out / g.groups as usize;
    let mut out = Vec::with_capacity(shape.iter().product());
    for b in 0..n {
        for co in 0..c_out {
            let grp = co / cog;
            for z in 0..od as isize {
                for y in 0..oh as isize {
                    for x in 0..ow as isize {
                        let mut acc = bias.map_or(0.0, |bv| bv.data[co] as f64);
                        for cl in 0..cig {
                            let ci = grp * cig + cl;
                            for a in 0..kd {
                                let iz = z * s[0] - p[0] + a as isize * dl[0];
                                for i in 0..kh {
                                    let iy = y * s[1] - p[1] + i as isize * dl[1];
                                    for j in 0..kw {
                                        let ix = x * s[2] - p[2] + j as isize * dl[2];
                                        let m = params.padding_mode;
                                        let v = match (m.source(iz, d), m.source(iy, h), m.source(ix, w)) {
                                            (Some(sz), Some(sy), Some(sx)) => {
                                                let plane = (b * c_in + ci) * d as usize + sz;
                                                input.data[(plane * h as usize + sy) * w as usize + sx] as f64
                                            }
                                            _ => 0.0,
                                        };
                                        acc += v * weight.data[(((co * cig + cl) * kd + a) * kh + i) * kw + j] as f64;
                                    }
                                }
                            }
                        }
                        out.push(params.activation.apply(acc));
                    }
                }
            }
        }
    }
    Ok((shape, out))
}
