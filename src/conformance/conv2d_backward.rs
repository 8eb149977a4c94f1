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

/// The gradients in `g`, of (grad_input, grad_weight, grad_bias) in that order: what a
/// backward case's outputs are (shared by the conv2d and conv1d backward cases).
pub(super) fn asked<T>(g: Grads, (dx, dw, db): (T, T, T)) -> Vec<T> {
    [(g.input, dx), (g.weight, dw), (g.bias, db)].into_iter().filter_map(|(on, v)| on.then_some(v)).collect()
}

/// The shapes of the gradients in `g` of a conv whose input and weight have shapes `s[0]`,
/// `s[1]` (grad_bias: `[Cout]`).
pub(super) fn grad_shapes(g: Grads, s: &[&[usize]]) -> Vec<Vec<usize>> {
    asked(g, (s[0].to_vec(), s[1].to_vec(), vec![s[1][0]]))
}

/// The output tensors of a backward case, in order, as the gradients in `g`.
pub(super) fn grads_of(g: Grads, outputs: &[Tensor]) -> crate::ops::conv2d_backward::Conv2dGrads {
    let mut outs = outputs.iter().cloned();
    let mut next = |on: bool| if on { outs.next() } else { None };
    crate::ops::conv2d_backward::Conv2dGrads {
        grad_input: next(g.input),
        grad_weight: next(g.weight),
        grad_bias: next(g.bias),
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
        Ok(asked(self.1, crate::reference::conv2d_backward(&i[0], &i[1], &i[2], &self.0.params)?))
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        Ok(grad_shapes(self.1, s))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let grads = grads_of(self.1, o);
        crate::ops::conv2d_backward::conv2d_backward_into(ctx, e, &t[0], &t[1], &t[2], &self.0.params, &grads)?;
        let g = self.0.params.validate(&crate::ops::as_batched(t[0].shape(), 4), t[1].shape(), None)?;
        let label = if g.c_in_per_group() == 1 && g.groups > 1 { "depthwise_bwd" } else { "gemm_bwd" };
        // grad_input's workspace (col2im's columns, Winograd's transforms); a padding mode
        // runs as conv3d_backward, which plans none
        let (x, w, dtype) = (t[0].shape(), t[1].shape(), t[0].dtype());
        let which = crate::ops::conv2d_backward::plan_conv2d_backward(ctx, x, w, &self.0.params, dtype, self.1);
        Ok(Ran { label: label.into(), workspace_bytes: which.map_or(0, |p| p.workspace_bytes) })
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
