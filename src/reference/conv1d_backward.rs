//! Reference conv1d backward: the conv2d backward loops ([`super::conv2d_backward()`]) on the
//! `[N, C, 1, L]` views, in f64.

use crate::error::Result;
use crate::params::Conv1dParams;
use crate::tensor::HostTensor;

/// (grad_input, grad_weight, grad_bias), in the layouts of input (`[N, Cin, L]` or `[Cin,
/// L]`), weight (`[Cout, Cin/groups, k]`) and `[Cout]`.
pub fn conv1d_backward(
    input: &HostTensor,
    weight: &HostTensor,
    grad_output: &HostTensor,
    params: &Conv1dParams,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let view = |t: &HostTensor| {
        let t = t.batched(3).into_owned();
        HostTensor::new(&[t.shape[0], t.shape[1], 1, t.shape[2]], t.data)
    };
    super::conv2d_backward(&view(input)?, &view(weight)?, &view(grad_output)?, &params.as_conv2d())
}
