//! The conv_transpose2d backward pass (PyTorch autograd of
//! `torch.nn.functional.conv_transpose2d`), from conv2d's kernels and plans. A transposed conv
//! is the input gradient of the conv2d with its stride, padding, dilation and groups whose
//! weight `[Cout', Cin'/groups, kh, kw]` is the transposed conv's `[Cin, Cout/groups, kh, kw]`
//! ([`as_conv2d`]); so
//! - grad_input = that conv2d of grad_output ([`crate::conv2d_into`]);
//! - grad_weight = that conv2d's weight gradient, with grad_output as its input and the input
//!   as its output gradient ([`crate::conv2d_backward_into`], grad_weight alone);
//! - grad_bias = the channel sums of grad_output (the grad_bias of a 1×1 depthwise conv2d on
//!   grad_output, whose output has grad_output's shape).
//!
//! Each is deterministic (gathers and fixed-order sums, no atomics) and splits as conv2d and
//! its backward do when a tensor exceeds one storage binding.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::as_batched;
use crate::ops::conv2d_backward::{conv2d_backward_into, Conv2dGrads, Grads};
use crate::params::{Activation, Conv2dParams, ConvTranspose2dParams, Padding};
use crate::tensor::Tensor;

/// The conv2d whose input gradient `params` computes on input `[N, Cin, H, W]` (or `[Cin, H,
/// W]`) and weight `[Cin, Cout/groups, kh, kw]`: the same stride, dilation and groups, the same
/// padding less the output_padding rows and columns at the bottom and right (which no input
/// reaches), so that it maps grad_output `[N, Cout, Ho, Wo]` to exactly `[N, Cin, H, W]`.
///
/// Errors: those of [`ConvTranspose2dParams::validate`]; [`Error::InvalidParam`] for a fused
/// activation (the backward pass differentiates the convolution alone); [`Error::Unsupported`]
/// when output_padding exceeds that side's padding by a stride or more (possible only with a
/// dilation above the stride): the conv2d would then reach past the input and its gradient
/// would need cropping.
pub fn as_conv2d(params: &ConvTranspose2dParams, input: &[usize], weight: &[usize]) -> Result<Conv2dParams> {
    if params.activation != Activation::None {
        return Err(Error::param(
            "activation",
            "conv_transpose2d_backward differentiates the convolution alone: pass the gradient with respect to the transposed conv's output and no activation",
        ));
    }
    let g = params.validate(&as_batched(input, 4), weight, None)?;
    let conv = Conv2dParams {
        stride: g.stride,
        padding: Padding::Explicit {
            top: g.pads.top,
            left: g.pads.left,
            bottom: g.pads.bottom.saturating_sub(g.output_padding[0]),
            right: g.pads.right.saturating_sub(g.output_padding[1]),
        },
        dilation: g.dilation,
        groups: g.groups,
        ..Default::default()
    };
    let c = conv.validate(&g.output_shape(), weight, None)?;
    if (c.h_out, c.w_out) != (g.h, g.w) {
        return Err(Error::Unsupported(format!(
            "conv_transpose2d_backward with output_padding {:?}, stride {:?} and padding {:?}: the input gradient \
             covers {}×{} positions for an input of {}×{} and would need cropping",
            g.output_padding, g.stride, params.padding, c.h_out, c.w_out, g.h, g.w
        )));
    }
    Ok(conv)
}

/// Computes the gradients in `which` of `y = conv_transpose2d(input, weight, bias)` given
/// `grad_output` (`[N, Cout, Ho, Wo]`), submitted: grad_input `[N, Cin, H, W]`, grad_weight
/// `[Cin, Cout/groups, kh, kw]`, grad_bias `[Cout]` (PyTorch autograd's). Unbatched `[C, H, W]`
/// inputs give unbatched gradients; what is not asked for is not computed. Errors: see
/// [`as_conv2d`]; shapes; f16 for every tensor or none ([`Error::DTypeMismatch`]).
pub fn conv_transpose2d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &ConvTranspose2dParams,
    which: Grads,
) -> Result<Conv2dGrads> {
    let g = params.validate(&as_batched(input.shape(), 4), weight.shape(), None)?;
    as_conv2d(params, input.shape(), weight.shape())?;
    let grads = Conv2dGrads::empty(ctx, which, input, weight, g.c_out as usize)?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv_transpose2d_backward") });
    conv_transpose2d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient `grads` holds
/// (shapes of input, weight and `[Cout]`). Errors as [`conv_transpose2d_backward`].
pub fn conv_transpose2d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &ConvTranspose2dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    let conv = as_conv2d(params, input.shape(), weight.shape())?;
    let g = params.validate(&as_batched(input.shape(), 4), weight.shape(), None)?;
    let tensors = [(Some(input), "input"), (Some(weight), "weight"), (Some(grad_output), "grad_output")];
    crate::ops::contiguous("conv_transpose2d_backward", &tensors)?;
    let unbatched = input.shape().len() == 3;
    let expected = if unbatched { g.output_shape()[1..].to_vec() } else { g.output_shape().to_vec() };
    if grad_output.shape() != expected {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!(
                "shape {:?}, expected the transposed conv's output shape {expected:?}",
                grad_output.shape()
            ),
        });
    }
    grads.check(ctx, input.shape(), weight.shape(), g.c_out as usize, input.dtype())?;
    if let Some(dx) = &grads.grad_input {
        crate::ops::conv2d::conv2d_into(ctx, encoder, grad_output, weight, None, &conv, dx)?;
    }
    if let Some(dw) = &grads.grad_weight {
        let only = Conv2dGrads { grad_input: None, grad_weight: Some(dw.clone()), grad_bias: None };
        conv2d_backward_into(ctx, encoder, grad_output, weight, input, &conv, &only)?;
    }
    if let Some(db) = &grads.grad_bias {
        // grad_bias alone reads grad_output only; the 1×1 depthwise weight gives the shapes.
        let ones = Tensor::empty_as(ctx, &[g.c_out as usize, 1, 1, 1], grad_output.dtype())?;
        let sums = Conv2dParams { groups: g.c_out, ..Default::default() };
        let only = Conv2dGrads { grad_input: None, grad_weight: None, grad_bias: Some(db.clone()) };
        conv2d_backward_into(ctx, encoder, grad_output, &ones, grad_output, &sums, &only)?;
    }
    Ok(())
}
