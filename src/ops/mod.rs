//! The public ops: each validates everything before it creates any GPU object (an invalid
//! call returns an [`crate::Error`] with no work submitted), then records the kernels of
//! [`crate::kernels`].

pub mod bands;
pub mod batch;
pub mod channels;
pub mod conv1d;
pub mod conv1d_backward;
pub mod conv2d;
pub mod conv2d_backward;
pub mod conv3d;
pub mod conv3d_backward;
pub mod conv_transpose1d;
pub mod conv_transpose1d_backward;
pub mod conv_transpose2d;
pub mod conv_transpose2d_backward;
pub mod conv_transpose3d;
pub mod conv_transpose3d_backward;
pub mod deform_conv2d;
pub mod deform_conv2d_backward;
pub mod matmul;
pub mod pool2d;
pub mod pool2d_backward;
pub mod separable_conv2d;
pub mod widen;
pub(crate) mod winograd;

use crate::context::GpuContext;
use crate::error::{Error, Result};
pub(crate) use crate::params::as_batched;
use crate::tensor::{DType, Tensor};

/// The dtype every tensor of an op shares (the input's), or `Error::DTypeMismatch` naming the
/// first that differs; `Error::Unsupported` for a channels-last tensor (every op but conv2d
/// and conv_transpose2d, which check layouts themselves with [`common_dtype_any_layout`],
/// reads NCHW only).
pub(crate) fn common_dtype(op: &str, input: &Tensor, others: &[(Option<&Tensor>, &str)]) -> Result<DType> {
    contiguous(op, &[(Some(input), "input")])?;
    contiguous(op, others)?;
    common_dtype_any_layout(op, input, others)
}

/// `Error::Unsupported` for the first channels-last tensor of `tensors` (the ops that read
/// and write NCHW only).
pub(crate) fn contiguous(op: &str, tensors: &[(Option<&Tensor>, &str)]) -> Result<()> {
    tensors.iter().filter_map(|(t, what)| t.map(|t| (t, what))).try_for_each(|(t, what)| t.require_contiguous(op, what))
}

/// [`common_dtype`] whatever the tensors' layouts.
pub(crate) fn common_dtype_any_layout(op: &str, input: &Tensor, others: &[(Option<&Tensor>, &str)]) -> Result<DType> {
    let dtype = input.dtype();
    for (t, what) in others {
        if let Some(t) = t.filter(|t| t.dtype() != dtype) {
            return Err(Error::DTypeMismatch(format!(
                "input is {} but {what} is {}: every tensor of a {op} has one dtype",
                dtype.name(),
                t.dtype().name()
            )));
        }
    }
    Ok(dtype)
}

/// Errors unless `t` fits one storage binding under the context's current limit.
pub(crate) fn check_binding(ctx: &GpuContext, t: &Tensor, what: &str) -> Result<()> {
    let max = ctx.max_binding();
    if t.byte_len() > max {
        return Err(Error::TooLarge(format!(
            "{what} {:?} is {} bytes; one storage binding holds at most {max} on this device",
            t.shape(),
            t.byte_len()
        )));
    }
    Ok(())
}

/// PyTorch's unbatched form: when `tensors[0]` (the input) has rank `rank − 1`, every tensor
/// of `tensors` must too, and each is returned as a batch of one (a view, no copy); `None`
/// when the input is batched (or of another rank, which validation then reports).
pub(crate) fn unbatched(rank: usize, tensors: &[(&Tensor, &'static str)]) -> Result<Option<Vec<Tensor>>> {
    if tensors[0].0.shape().len() + 1 != rank {
        return Ok(None);
    }
    let mut views = Vec::with_capacity(tensors.len());
    for &(t, what) in tensors {
        if t.shape().len() + 1 != rank {
            return Err(Error::Buffer {
                what,
                reason: format!(
                    "shape {:?}: an unbatched input (rank {}) takes unbatched tensors of rank {} throughout",
                    t.shape(),
                    rank - 1,
                    rank - 1
                ),
            });
        }
        views.push(t.reshape(&batched_shape(t.shape()))?);
    }
    Ok(Some(views))
}

/// `shape` with a batch of one in front.
pub(crate) fn batched_shape(shape: &[usize]) -> Vec<usize> {
    std::iter::once(1).chain(shape.iter().copied()).collect()
}

/// The shape an op returns: `batched` without its batch axis when the input was unbatched
/// (rank `batched.len() − 1`).
pub(crate) fn returned_shape(input: &[usize], batched: &[usize]) -> Vec<usize> {
    if input.len() + 1 == batched.len() {
        batched[1..].to_vec()
    } else {
        batched.to_vec()
    }
}
