//! conv1d_backward's conformance cases (on the conv1d cases).

use super::*;
use crate::ops::conv2d_backward::Grads;

/// conv1d_backward on a conv1d case (its grad_output seeded from the case's seed), the
/// gradients in its `Grads` in the order input, weight, bias; the case judged by the one
/// furthest from passing.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv1dBackwardCase(pub Conv1dCase, pub Grads);

impl std::fmt::Display for Conv1dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conv1d_backward on {}", self.0)
    }
}

impl OpCase for Conv1dBackwardCase {
    /// (input, weight, grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let mut i = self.0.inputs()?;
        i.truncate(2);
        let out = self.0.params().validate(&i[0].shape, &i[1].shape, None)?;
        i.push(HostTensor::random(&out, self.0 .0.seed ^ 0xd1d1));
        Ok(i)
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(super::conv2d_backward::asked(
            self.1,
            crate::reference::conv1d_backward(&i[0], &i[1], &i[2], &self.0.params())?,
        ))
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        Ok(super::conv2d_backward::grad_shapes(self.1, s))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let grads = super::conv2d_backward::grads_of(self.1, o);
        crate::ops::conv1d_backward::conv1d_backward_into(ctx, e, &t[0], &t[1], &t[2], &self.0.params(), &grads)?;
        Ok(Ran::named("conv1d_bwd"))
    }
    /// Each gradient of input and weight counts as one forward pass.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let forward = self.0.flops(&s[..2])?;
        Ok(forward * (self.1.input as u32 + self.1.weight as u32) as f64)
    }
    fn simpler(&self) -> Vec<Self> {
        super::conv2d::simpler(&self.0 .0).into_iter().map(|c| Conv1dBackwardCase(Conv1dCase(c), self.1)).collect()
    }
}
