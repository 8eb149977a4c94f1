//! The conv_transpose1d backward pass (PyTorch autograd of
//! `torch.nn.functional.conv_transpose1d`): conv_transpose2d's backward over the same buffers
//! viewed as `[N, C, 1, L]` (no copy), or `[N, C, L, 1]` when one sequence exceeds a storage
//! binding (conv2d's backward then cuts it into bands of rows).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::conv2d_backward::{Conv2dGrads, Grads};
use crate::ops::conv_transpose1d::{is_long, params_2d, view};
use crate::ops::conv_transpose2d_backward::conv_transpose2d_backward_into;
use crate::ops::{as_batched, unbatched};
use crate::params::ConvTranspose1dParams;
use crate::tensor::Tensor;

/// Computes the gradients in `which` of `y = conv_transpose1d(input, weight, bias)` given
/// `grad_output` (`[N, Cout, Lo]`), submitted: grad_input `[N, Cin, L]`, grad_weight
/// `[Cin, Cout/groups, k]`, grad_bias `[Cout]` (PyTorch autograd's). Unbatched `[Cin, L]`
/// inputs give unbatched gradients. Errors as [`crate::conv_transpose2d_backward`] (no
/// activation; an output_padding that would need the gradient cropped; shapes; one dtype).
pub fn conv_transpose1d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &ConvTranspose1dParams,
    which: Grads,
) -> Result<Conv2dGrads> {
    let shape = params.validate(&as_batched(input.shape(), 3), weight.shape(), None)?;
    let grads = Conv2dGrads::empty(ctx, which, input, weight, shape[1])?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv_transpose1d_backward") });
    conv_transpose1d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient `grads` holds
/// (shapes of input, weight and `[Cout]`).
pub fn conv_transpose1d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &ConvTranspose1dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    let mut tensors = vec![(input, "input"), (grad_output, "grad_output")];
    tensors.extend(grads.grad_input.as_ref().map(|t| (t, "grad_input")));
    if let Some(v) = unbatched(3, &tensors)? {
        let batched = Conv2dGrads {
            grad_input: grads.grad_input.as_ref().map(|_| v[2].clone()),
            grad_weight: grads.grad_weight.clone(),
            grad_bias: grads.grad_bias.clone(),
        };
        return conv_transpose1d_backward_into(ctx, encoder, &v[0], weight, &v[1], params, &batched);
    }
    let shape = params.validate(input.shape(), weight.shape(), None)?;
    if grad_output.shape() != shape {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected the transposed conv's output shape {shape:?}", grad_output.shape()),
        });
    }
    grads.check(ctx, input.shape(), weight.shape(), shape[1], input.dtype())?;
    let long = is_long(ctx, input, grad_output);
    let grads2 = Conv2dGrads {
        grad_input: grads.grad_input.as_ref().map(|t| view(t, long)).transpose()?,
        grad_weight: grads.grad_weight.as_ref().map(|t| view(t, long)).transpose()?,
        grad_bias: grads.grad_bias.clone(),
    };
    let p2 = params_2d(params, long);
    conv_transpose2d_backward_into(
        ctx,
        encoder,
        &view(input, long)?,
        &view(weight, long)?,
        &view(grad_output, long)?,
        &p2,
        &grads2,
    )
}
