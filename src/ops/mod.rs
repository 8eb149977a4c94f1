//! The public ops: each validates everything before it creates any GPU object (an invalid
//! call returns an [`crate::Error`] with no work submitted), then records the kernels of
//! [`crate::kernels`].

pub mod conv1d;
pub mod conv2d;
pub mod conv2d_backward;
pub mod conv3d;
pub mod conv_transpose2d;
pub mod deform_conv2d;
pub mod matmul;
pub mod pool2d;
pub mod separable_conv2d;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// The dtype every tensor of an op shares (the input's), or `Error::DTypeMismatch` naming the
/// first that differs.
pub(crate) fn common_dtype(op: &str, input: &Tensor, others: &[(Option<&Tensor>, &str)]) -> Result<DType> {
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
