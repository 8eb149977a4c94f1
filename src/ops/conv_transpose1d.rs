//! conv_transpose1d (PyTorch `torch.nn.functional.conv_transpose1d` semantics) on `[N, C, L]`:
//! conv_transpose2d's kernels over the same buffers viewed as `[N, C, 1, L]` (no copy), see
//! [`ConvTranspose1dParams::as_conv_transpose2d`]. A sequence beyond one storage binding takes
//! the view `[N, C, L, 1]` instead, which conv_transpose2d cuts into bands of rows.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::conv_transpose2d::{conv_transpose2d_into, ConvTranspose2dInfo};
use crate::ops::{as_batched, common_dtype, returned_shape, unbatched};
use crate::params::{ConvTranspose1dParams, ConvTranspose2dParams, Padding};
use crate::tensor::Tensor;

/// The conv_transpose2d view of a conv_transpose1d call: `[N, C, 1, L]` tensors, or
/// `[N, C, L, 1]` with the sequence along the rows when `long`.
pub(crate) fn view(t: &Tensor, long: bool) -> Result<Tensor> {
    let s = t.shape();
    if long {
        t.reshape(&[s[0], s[1], s[2], 1])
    } else {
        t.reshape(&[s[0], s[1], 1, s[2]])
    }
}

/// `params` as the conv_transpose2d of [`view`].
pub(crate) fn params_2d(params: &ConvTranspose1dParams, long: bool) -> ConvTranspose2dParams {
    let p = params.as_conv_transpose2d();
    if !long {
        return p;
    }
    let padding = match p.padding {
        Padding::Explicit { left, right, .. } => Padding::Explicit { top: left, left: 0, bottom: right, right: 0 },
        other => other,
    };
    ConvTranspose2dParams {
        stride: [params.stride, 1],
        padding,
        output_padding: [params.output_padding, 0],
        dilation: [params.dilation, 1],
        ..p
    }
}

/// Whether one sequence of `input` or `output` (batched) exceeds one storage binding.
pub(crate) fn is_long(ctx: &GpuContext, input: &Tensor, output: &Tensor) -> bool {
    let n = input.shape()[0];
    let image_bytes = |t: &Tensor| (t.numel() / n.max(1)) as u64 * t.dtype().size();
    n > 0 && (image_bytes(input) > ctx.max_binding() || image_bytes(output) > ctx.max_binding())
}

/// Transposed 1-D convolution, submitted; returns `[N, Cout, Lo]` (unbatched `[Cin, L]`
/// gives `[Cout, Lo]`), `Lo = (L − 1)·stride − (left + right) + dilation·(k − 1) +
/// output_padding + 1`. Weight `[Cin, Cout/groups, k]`, bias `[Cout]`; f32 or f16 (every
/// tensor alike). Errors as [`crate::conv_transpose2d`] and
/// [`ConvTranspose1dParams::validate`].
pub fn conv_transpose1d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose1dParams,
) -> Result<Tensor> {
    let shape = params.validate(&as_batched(input.shape(), 3), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &shape), input.dtype())?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv_transpose1d") });
    conv_transpose1d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records into the caller's encoder; writes `output` (`[N, Cout, Lo]`, or unbatched with an
/// unbatched input). Returns what the conv_transpose2d it runs as did.
pub fn conv_transpose1d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose1dParams,
    output: &Tensor,
) -> Result<ConvTranspose2dInfo> {
    if let Some(v) = unbatched(3, &[(input, "input"), (output, "output")])? {
        return conv_transpose1d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
    let shape = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    common_dtype("conv_transpose1d", input, &[(Some(weight), "weight"), (bias, "bias"), (Some(output), "output")])?;
    if output.shape() != shape {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {shape:?}", output.shape()),
        });
    }
    let long = is_long(ctx, input, output);
    let p2 = params_2d(params, long);
    conv_transpose2d_into(ctx, encoder, &view(input, long)?, &view(weight, long)?, bias, &p2, &view(output, long)?)
}
