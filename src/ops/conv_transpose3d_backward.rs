//! The conv_transpose3d backward pass (PyTorch autograd of
//! `torch.nn.functional.conv_transpose3d`), from conv3d's kernels, as conv_transpose2d's
//! backward is from conv2d's: the transposed conv is the input gradient of the conv3d
//! [`as_conv3d`] gives (same stride, dilation, groups; its weight `[Cout', Cin'/groups, k…]`
//! is the transposed conv's `[Cin, Cout/groups, k…]`), so
//! - grad_input = that conv3d of grad_output ([`crate::conv3d_into`]);
//! - grad_weight = that conv3d's weight gradient, with grad_output as its input and the input
//!   as its output gradient ([`crate::conv3d_backward_into`], grad_weight alone);
//! - grad_bias = the channel sums of grad_output.
//!
//! Gathers and fixed-order sums, no atomics: bit-identical run to run. f32 kernels (f16
//! through f32 copies); batched tensors beyond one storage binding in batch pieces, as
//! conv3d's and conv3d_backward's (the weight and one image within one binding).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::conv2d_backward::{conv2d_backward_into, Conv2dGrads, Grads};
use crate::ops::conv3d_backward::conv3d_backward_into;
use crate::ops::{as_batched, batched_shape};
use crate::params::{Activation, Conv2dParams, Conv3dParams, ConvTranspose3dParams, Padding3d};
use crate::tensor::Tensor;

/// The conv3d whose input gradient `params` computes on input `[N, Cin, D, H, W]` (or
/// unbatched) and weight `[Cin, Cout/groups, kd, kh, kw]`: the same stride, dilation and
/// groups, the same crop at the front of each axis and the crop at its end less the
/// output_padding, so that it maps grad_output `[N, Cout, Do, Ho, Wo]` to exactly the input's
/// shape.
///
/// Errors: those of [`ConvTranspose3dParams::validate`]; [`Error::InvalidParam`] for a fused
/// activation (the backward pass differentiates the convolution alone);
/// [`Error::Unsupported`] when output_padding exceeds that end's crop by a stride or more
/// (only with a dilation above the stride): the conv3d would reach past the input and its
/// gradient would need cropping.
pub fn as_conv3d(params: &ConvTranspose3dParams, input: &[usize], weight: &[usize]) -> Result<Conv3dParams> {
    if params.activation != Activation::None {
        return Err(Error::param(
            "activation",
            "conv_transpose3d_backward differentiates the convolution alone: pass the gradient with respect to the \
             transposed conv's output and no activation",
        ));
    }
    let g = params.validate(&as_batched(input, 5), weight, None)?;
    let end = [0, 1, 2].map(|a| g.pad_end[a].saturating_sub(g.output_padding[a]));
    let conv = Conv3dParams {
        stride: g.stride,
        padding: Padding3d::Explicit { begin: g.pad_begin, end },
        dilation: g.dilation,
        groups: g.groups,
        ..Default::default()
    };
    let c = conv.validate(&g.output_shape(), weight, None)?;
    if c.out != g.size {
        return Err(Error::Unsupported(format!(
            "conv_transpose3d_backward with output_padding {:?}, stride {:?} and padding {:?}: the input gradient \
             covers {:?} positions for an input of {:?} and would need cropping",
            g.output_padding, g.stride, params.padding, c.out, g.size
        )));
    }
    Ok(conv)
}

/// Computes the gradients in `which` of `y = conv_transpose3d(input, weight, bias)` given
/// `grad_output` (`[N, Cout, Do, Ho, Wo]`), submitted: grad_input `[N, Cin, D, H, W]`,
/// grad_weight `[Cin, Cout/groups, kd, kh, kw]`, grad_bias `[Cout]` (PyTorch autograd's).
/// Unbatched inputs give unbatched gradients; what is not asked for is not computed.
///
/// Errors: see [`as_conv3d`]; shapes ([`Error::Buffer`]); those of [`crate::conv3d`] and
/// [`crate::conv3d_backward`] (the weight and one image within one storage binding; f16
/// through f32 copies).
pub fn conv_transpose3d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &ConvTranspose3dParams,
    which: Grads,
) -> Result<Conv2dGrads> {
    let g = params.validate(&as_batched(input.shape(), 5), weight.shape(), None)?;
    as_conv3d(params, input.shape(), weight.shape())?;
    let grads = Conv2dGrads::empty(ctx, which, input, weight, g.c_out as usize)?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv_transpose3d_backward") });
    conv_transpose3d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient `grads` holds
/// (shapes of input, weight and `[Cout]`). Errors as [`conv_transpose3d_backward`].
pub fn conv_transpose3d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &ConvTranspose3dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    let conv = as_conv3d(params, input.shape(), weight.shape())?;
    let g = params.validate(&as_batched(input.shape(), 5), weight.shape(), None)?;
    let unbatched = input.shape().len() == 4;
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
        crate::ops::conv3d::conv3d_into(ctx, encoder, grad_output, weight, None, &conv, dx)?;
    }
    if let Some(dw) = &grads.grad_weight {
        let only = Conv2dGrads { grad_input: None, grad_weight: Some(dw.clone()), grad_bias: None };
        conv3d_backward_into(ctx, encoder, grad_output, weight, input, &conv, &only)?;
    }
    if let Some(db) = &grads.grad_bias {
        // grad_output [N, Cout, Do, Ho, Wo] as [N, Cout, Do, Ho·Wo]: the grad_bias of a 1×1
        // depthwise conv2d on it (grad_bias alone reads grad_output only; the weight gives the
        // shapes).
        let s = if unbatched { batched_shape(grad_output.shape()) } else { grad_output.shape().to_vec() };
        let dy = grad_output.reshape(&[s[0], s[1], s[2], s[3] * s[4]])?;
        let ones = Tensor::empty_as(ctx, &[g.c_out as usize, 1, 1, 1], grad_output.dtype())?;
        let sums = Conv2dParams { groups: g.c_out, ..Default::default() };
        let only = Conv2dGrads { grad_input: None, grad_weight: None, grad_bias: Some(db.clone()) };
        conv2d_backward_into(ctx, encoder, &dy, &ones, &dy, &sums, &only)?;
    }
    Ok(())
}
