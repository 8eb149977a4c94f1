//! Reference conv_transpose1d backward: the conv_transpose2d backward loops
//! ([`super::conv_transpose2d_backward()`]) on the `[N, C, 1, L]` views, in f64.

use super::conv_transpose1d::as_rows;
use crate::error::Result;
use crate::params::ConvTranspose1dParams;
use crate::tensor::HostTensor;

/// (grad_input, grad_weight, grad_bias), in the layouts of input (`[N, Cin, L]` or `[Cin,
/// L]`), weight (`[Cin, Cout/groups, k]`) and `[Cout]`.
pub fn conv_transpose1d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    grad_output: &HostTensor,
    params: &ConvTranspose1dParams,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    params.validate(&input.batched(3).shape, &weight.shape, None)?;
    let p = params.as_conv_transpose2d();
    super::conv_transpose2d_backward(&as_rows(input)?, &as_rows(weight)?, &as_rows(grad_output)?, &p)
}
