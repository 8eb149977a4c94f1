//! Reference conv1d, its own loops: `out[n, co, o] = bias[co] + Σ_{ci ∈ group(co), k}
//! in[n, ci, o·s − pl + k·d] · w[co, ci − g·Cin/G, k]`, out-of-range positions read as the
//! padding mode says (0 for zeros).

use crate::error::Result;
use crate::params::{Conv1dParams, Padding1d};
use crate::tensor::HostTensor;

/// Returns the output shape `[N, Cout, Lo]` and the values in f64.
pub fn conv1d(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    params: &Conv1dParams,
) -> Result<([usize; 3], Vec<f64>)> {
    let input = &input.batched(3);
    let shape = params.validate(&input.shape, &weight.shape, bias.map(|b| b.shape.as_slice()))?;
    let [n, c_out, lo] = shape;
    let (c_in, l) = (input.shape[1], input.shape[2]);
    let (cig, k) = (weight.shape[1], weight.shape[2]);
    let cog = c_out / params.groups as usize;
    let (s, d) = (params.stride as isize, params.dilation as isize);
    let left = match params.padding {
        Padding1d::Valid => 0,
        Padding1d::Symmetric(p) => p,
        Padding1d::Explicit { left, .. } => left,
        Padding1d::Same => params.dilation * (k as u32 - 1) / 2,
    } as isize;
    let mut out = vec![0f64; n * c_out * lo];
    for b in 0..n {
        for co in 0..c_out {
            let g = co / cog;
            for o in 0..lo {
                let mut acc = bias.map_or(0.0, |bv| bv.data[co] as f64);
                for cl in 0..cig {
                    let ci = g * cig + cl;
                    for t in 0..k {
                        let i = o as isize * s - left + t as isize * d;
                        let x = match params.padding_mode.source(i, l as isize) {
                            Some(i) => input.data[(b * c_in + ci) * l + i] as f64,
                            None => 0.0,
                        };
                        acc += x * weight.data[(co * cig + cl) * k + t] as f64;
                    }
                }
                out[(b * c_out + co) * lo + o] = params.activation.apply(acc);
            }
        }
    }
    Ok((shape, out))
}
