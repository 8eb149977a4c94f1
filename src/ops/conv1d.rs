//! conv1d (PyTorch `torch.nn.functional.conv1d` semantics) on `[N, C, L]`: the conv2d kernels
//! over the same buffers viewed as `[N, C, 1, L]` (no copy), see [`Conv1dParams::as_conv2d`].

use crate::context::GpuContext;
use crate::error::Result;
use crate::ops::conv2d::{conv2d_into, Conv2dInfo};
use crate::ops::{as_batched, returned_shape, unbatched};
use crate::params::Conv1dParams;
use crate::tensor::Tensor;

fn as_2d(t: &Tensor) -> Result<Tensor> {
    let s = t.shape();
    t.reshape(&[s[0], s[1], 1, s[2]])
}

/// 1-D convolution, submitted; returns `[N, Cout, Lo]`.
pub fn conv1d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv1dParams,
) -> Result<Tensor> {
    let shape = params.validate(&as_batched(input.shape(), 3), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &shape), input.dtype())?;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv1d") });
    conv1d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records into the caller's encoder; writes `output` (`[N, Cout, Lo]`).
pub fn conv1d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv1dParams,
    output: &Tensor,
) -> Result<Conv2dInfo> {
    if let Some(v) = unbatched(3, &[(input, "input"), (output, "output")])? {
        return conv1d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
    let shape = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    if output.shape() != shape {
        return Err(crate::Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {shape:?}", output.shape()),
        });
    }
    conv2d_into(ctx, encoder, &as_2d(input)?, &as_2d(weight)?, bias, &params.as_conv2d(), &as_2d(output)?)
}
