//! Reference conv_transpose1d: the conv_transpose2d scatter ([`super::conv_transpose2d()`]) on
//! the `[N, C, 1, L]` views, in f64.

use crate::error::Result;
use crate::params::ConvTranspose1dParams;
use crate::tensor::HostTensor;

/// `t` (`[N, C, L]` or unbatched `[C, L]`) as `[N, C, 1, L]`.
pub(crate) fn as_rows(t: &HostTensor) -> Result<HostTensor> {
    let t = t.batched(3).into_owned();
    HostTensor::new(&[t.shape[0], t.shape[1], 1, t.shape[2]], t.data)
}

/// Returns the output shape `[N, Cout, Lo]` and the values in f64.
pub fn conv_transpose1d(
    input: &HostTensor,
    weight: &HostTensor,
    bias: Option<&HostTensor>,
    params: &ConvTranspose1dParams,
) -> Result<([usize; 3], Vec<f64>)> {
    let shape = params.validate(&input.batched(3).shape, &weight.shape, bias.map(|b| b.shape.as_slice()))?;
    let (_, out) = super::conv_transpose2d(&as_rows(input)?, &as_rows(weight)?, bias, &params.as_conv_transpose2d())?;
    Ok((shape, out))
}
