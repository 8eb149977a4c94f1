//! conv2d_backward's conformance cases (on the conv2d cases).

use super::*;

/// conv2d_backward on a conv2d case (its grad_output seeded from the case's seed): all three
/// gradients, the case judged by the one furthest from passing.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dBackwardCase(pub Conv2dCase);

impl std::fmt::Display for Conv2dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl OpCase for Conv2dBackwardCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, _) = self.0.data();
        let out_shape = self.0.params.output_shape(&x.shape, &w.shape)?;
        let dy = HostTensor::random(&out_shape, self.0.seed ^ 0xd1d1);
        Ok(vec![x, w, dy])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let (dx, dw, db) = crate::reference::conv2d_backward(&i[0], &i[1], &i[2], &self.0.params)?;
        Ok(vec![dx, dw, db])
    }
    fn run(&self, ctx: &GpuContext, t: &[Tensor]) -> Result<Vec<Tensor>> {
        let all = crate::ops::conv2d_backward::Grads::ALL;
        let g = crate::ops::conv2d_backward::conv2d_backward(ctx, &t[0], &t[1], &t[2], &self.0.params, all)?;
        let asked = "all gradients were requested";
        Ok(vec![g.grad_input.expect(asked), g.grad_weight.expect(asked), g.grad_bias.expect(asked)])
    }
    fn simpler(&self) -> Vec<Self> {
        super::conv2d::simpler(&self.0).into_iter().map(Conv2dBackwardCase).collect()
    }
}
