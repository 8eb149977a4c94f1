//! The conv1d backward pass (PyTorch autograd of `torch.nn.functional.conv1d`): conv2d's
//! backward over the same buffers viewed as `[N, C, 1, L]` (no copy), see
//! [`Conv1dParams::as_conv2d`]. One sequence beyond one storage binding takes the view
//! `[N, C, L, 1]` instead, which conv2d_backward cuts into bands of rows.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::conv2d_backward::{conv2d_backward_into, Conv2dGrads, Grads};
use crate::ops::{as_batched, unbatched};
use crate::params::{Conv1dParams, Conv2dParams, Padding};
use crate::tensor::Tensor;

/// Computes the gradients in `which` of `y = conv1d(input, weight, bias)` given `grad_output`
/// (`[N, Cout, Lo]`), submitted: grad_input `[N, Cin, L]`, grad_weight `[Cout, Cin/groups,
/// k]`, grad_bias `[Cout]`. Unbatched `[C, L]` inputs give unbatched gradients. Errors as
/// [`crate::conv2d_backward`] (no activation; shapes; f16 for every tensor or none).
pub fn conv1d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv1dParams,
    which: Grads,
) -> Result<Conv2dGrads> {
    let shape = params.validate(&as_batched(input.shape(), 3), weight.shape(), None)?;
    let grads = Conv2dGrads::empty(ctx, which, input, weight, shape[1])?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv1d_backward") });
    conv1d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient `grads` holds
/// (shapes of input, weight and `[Cout]`).
pub fn conv1d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv1dParams,
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
        return conv1d_backward_into(ctx, encoder, &v[0], weight, &v[1], params, &batched);
    }
    let shape = params.validate(input.shape(), weight.shape(), None)?;
    if grad_output.shape() != shape {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected the conv's output shape {shape:?}", grad_output.shape()),
        });
    }
    for (t, want) in [(&grads.grad_input, input.shape()), (&grads.grad_weight, weight.shape())] {
        if let Some(t) = t {
            if t.shape() != want {
                return Err(Error::Buffer {
                    what: "gradient",
                    reason: format!("shape {:?}, expected {want:?}", t.shape()),
                });
            }
        }
    }
    // [N, C, L] as [N, C, 1, L] (or [N, C, L, 1] when one sequence exceeds a binding).
    let n = input.shape()[0];
    let image_bytes = |t: &Tensor| (t.numel() / n.max(1)) as u64 * t.dtype().size();
    let long = n > 0 && (image_bytes(input) > ctx.max_binding() || image_bytes(grad_output) > ctx.max_binding());
    let view = |t: &Tensor| {
        let s = t.shape();
        if long {
            t.reshape(&[s[0], s[1], s[2], 1])
        } else {
            t.reshape(&[s[0], s[1], 1, s[2]])
        }
    };
    let p2 = params.as_conv2d();
    let p2 = if long {
        // the sequence along the rows: its padding at the top and bottom
        let pads = p2.padding.resolve([1, weight.shape()[2] as u32], p2.dilation);
        let padding = Padding::Explicit { top: pads.left, left: 0, bottom: pads.right, right: 0 };
        Conv2dParams { stride: [params.stride, 1], padding, dilation: [params.dilation, 1], ..p2 }
    } else {
        p2
    };
    let grads2 = Conv2dGrads {
        grad_input: grads.grad_input.as_ref().map(view).transpose()?,
        grad_weight: grads.grad_weight.as_ref().map(view).transpose()?,
        grad_bias: grads.grad_bias.clone(),
    };
    conv2d_backward_into(ctx, encoder, &view(input)?, &view(weight)?, &view(grad_output)?, &p2, &grads2)
}
