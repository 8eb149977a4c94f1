//! Reference conv_transpose3d backward: the scatter of [`super::conv_transpose3d()`] walked
//! again; wherever `x[n, ci, z, y, x]` met `w[ci, cl, a, i, j]` in `out[n, co, oz, oy, ox]`,
//! `dx += w·dy` and `dw += x·dy`; `db` sums dy. Accumulates in f64.
//!
//! A tap that lands in the cropped border (`padding`) meets dy = 0 there: the terms `w·0` and
//! `x·0` are summed too (NaN where w or x is not finite), as autograd of the forward as full
//! output then crop gives, and as the GPU's gathers of dy (a conv over dy, zero-padded) do.

use super::conv_transpose3d::for_each_tap;
use crate::error::{Error, Result};
use crate::params::ConvTranspose3dParams;
use crate::tensor::HostTensor;

/// (grad_input, grad_weight, grad_bias), in the layouts of input (`[N, Cin, D, H, W]` or
/// unbatched), weight (`[Cin, Cout/groups, kd, kh, kw]`) and `[Cout]`.
pub fn conv_transpose3d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    grad_output: &HostTensor,
    params: &ConvTranspose3dParams,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let (input, grad_output) = (&input.batched(5), &grad_output.batched(5));
    let g = params.validate(&input.shape, &weight.shape, None)?;
    if grad_output.shape != g.output_shape() {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected {:?}", grad_output.shape, g.output_shape()),
        });
    }
    let mut dx = vec![0f64; input.data.len()];
    let mut dw = vec![0f64; weight.data.len()];
    let c_out = g.c_out as usize;
    let mut db = vec![0f64; c_out];
    let per_channel: usize = g.out.iter().map(|&v| v as usize).product();
    for (i, d) in grad_output.data.iter().enumerate() {
        db[(i / per_channel.max(1)) % c_out] += *d as f64;
    }
    for_each_tap(&g, |xi, wi, oi| {
        // a tap into the cropped border meets grad_output's explicit zero there
        let d = oi.map_or(0.0, |oi| grad_output.data[oi] as f64);
        dx[xi] += weight.data[wi] as f64 * d;
        dw[wi] += input.data[xi] as f64 * d;
    });
    Ok((dx, dw, db))
}
