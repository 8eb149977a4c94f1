//! conv2d_backward's conformance cases (on the conv2d cases).

use super::*;
use crate::ops::conv2d_backward::Grads;

/// conv2d_backward on a conv2d case (its grad_output seeded from the case's seed), the
/// gradients in its `Grads` (all of them as generated; `wgconv run` asks for those it is
/// given files for), in the order input, weight, bias; the case judged by the one furthest
/// from passing.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dBackwardCase(pub Conv2dCase, pub Grads);

impl std::fmt::Display for Conv2dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Conv2dBackwardCase {
    /// The gradients' names, those asked for, in output order.
    pub fn outputs(&self) -> Vec<&'static str> {
        let g = self.1;
        [(g.input, "grad_input"), (g.weight, "grad_weight"), (g.bias, "grad_bias")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }
}

impl OpCase for Conv2dBackwardCase {
    /// (input, weight, grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, _) = self.0.data();
        let out_shape = self.0.params.output_shape(&x.shape, &w.shape)?;
        let dy = HostTensor::random(&out_shape, self.0.seed ^ 0xd1d1);
        Ok(vec![x, w, dy])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let (dx, dw, db) = crate::reference::conv2d_backward(&i[0], &i[1], &i[2], &self.0.params)?;
        let g = self.1;
        Ok([(g.input, dx), (g.weight, dw), (g.bias, db)].into_iter().filter_map(|(on, v)| on.then_some(v)).collect())
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let g = self.1;
        let bias = vec![s[1][0]];
        Ok([(g.input, s[0].to_vec()), (g.weight, s[1].to_vec()), (g.bias, bias)]
            .into_iter()
            .filter_map(|(on, shape)| on.then_some(shape))
            .collect())
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let mut outs = o.iter().cloned();
        let mut next = |on: bool| if on { outs.next() } else { None };
        let grads = crate::ops::conv2d_backward::Conv2dGrads {
            grad_input: next(self.1.input),
            grad_weight: next(self.1.weight),
            grad_bias: next(self.1.bias),
        };
        crate::ops::conv2d_backward::conv2d_backward_into(ctx, e, &t[0], &t[1], &t[2], &self.0.params, &grads)?;
        let g = self.0.params.validate(&crate::ops::as_batched(t[0].shape(), 4), t[1].shape(), None)?;
        Ok(Ran::named(if g.c_in_per_group() == 1 && g.groups > 1 { "depthwise_bwd" } else { "gemm_bwd" }))
    }
    /// Each gradient asked for counts as one forward pass (grad_bias: none).
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let forward = self.0.params.validate(&crate::ops::as_batched(s[0], 4), s[1], None)?.flops();
        Ok(forward * (self.1.input as u32 + self.1.weight as u32) as f64)
    }
    fn simpler(&self) -> Vec<Self> {
        super::conv2d::simpler(&self.0).into_iter().map(|c| Conv2dBackwardCase(c, self.1)).collect()
    }
}
