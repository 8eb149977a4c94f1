//! conv1d (PyTorch `torch.nn.functional.conv1d` semantics) on `[N, C, L]`: the conv2d kernels
//! over the same buffers viewed as `[N, C, 1, L]` (no copy), see [`Conv1dParams::as_conv2d`].

use crate::context::GpuContext;
use crate::error::Result;
use crate::ops::conv2d::{conv2d_into, Conv2dInfo};
use crate::ops::{as_batched, returned_shape, unbatched};
use crate::params::{Conv1dParams, Conv2dParams, Padding};
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
    let p2 = params.as_conv2d();
    let n = input.shape()[0];
    let image_bytes = |t: &Tensor| (t.numel() / n.max(1)) as u64 * t.dtype().size();
    if n > 0 && (image_bytes(input) > ctx.max_binding() || image_bytes(output) > ctx.max_binding()) {
        // One sequence beyond one binding: the sequence along conv2d's rows ([N, C, L, 1]),
        // which conv2d cuts into bands, with the algorithm chosen for the usual [N, C, 1, L]
        // view (the same taps in the same order: bit-identical).
        let g = p2.validate(as_2d(input)?.shape(), as_2d(weight)?.shape(), bias.map(|b| b.shape()))?;
        let dtype = input.dtype();
        let (algorithm, _) =
            crate::ops::conv2d::choose_algorithm(ctx, &g, &p2, dtype, bias.is_some(), Default::default())?;
        let rows = |t: &Tensor| {
            let s = t.shape();
            t.reshape(&[s[0], s[1], s[2], 1])
        };
        let padding = Padding::Explicit { top: g.pads.left, left: 0, bottom: g.pads.right, right: 0 };
        let pr = Conv2dParams { stride: [params.stride, 1], padding, dilation: [params.dilation, 1], algorithm, ..p2 };
        return conv2d_into(ctx, encoder, &rows(input)?, &rows(weight)?, bias, &pr, &rows(output)?);
    }
    conv2d_into(ctx, encoder, &as_2d(input)?, &as_2d(weight)?, bias, &p2, &as_2d(output)?)
}
