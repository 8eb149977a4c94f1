//! conv_transpose2d_backward's conformance cases (on the conv_transpose2d cases).

use super::*;
use crate::ops::conv2d_backward::Grads;

/// conv_transpose2d_backward on a conv_transpose2d case (its grad_output seeded from the
/// case's seed), the gradients in its `Grads` in the order input, weight, bias; the case
/// judged by the one furthest from passing. Cases whose output_padding the backward pass
/// refuses ([`crate::ops::conv_transpose2d_backward::as_conv2d`]) do not apply.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2dBackwardCase(pub ConvTranspose2dCase, pub Grads);

impl ConvTranspose2dBackwardCase {
    fn params(&self) -> ConvTranspose2dParams {
        ConvTranspose2dParams { algorithm: Algorithm::Auto, ..self.0.params }
    }
}

impl std::fmt::Display for ConvTranspose2dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backward of {}", self.0)
    }
}

impl OpCase for ConvTranspose2dBackwardCase {
    /// (input, weight, grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, _) = self.0.data();
        let out_shape = self.params().output_shape(&x.shape, &w.shape)?;
        let dy = HostTensor::random(&out_shape, self.0.seed ^ 0xd1d1);
        Ok(vec![x, w, dy])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let grads = crate::reference::conv_transpose2d_backward(&i[0], &i[1], &i[2], &self.params())?;
        Ok(super::conv2d_backward::asked(self.1, grads))
    }
    /// grad_bias: `[Cout]` = `[Cout/groups · groups]`.
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let c_out = s[1][1] * self.0.params.groups as usize;
        Ok(super::conv2d_backward::asked(self.1, (s[0].to_vec(), s[1].to_vec(), vec![c_out])))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let grads = super::conv2d_backward::grads_of(self.1, o);
        crate::ops::conv_transpose2d_backward::conv_transpose2d_backward_into(
            ctx,
            e,
            &t[0],
            &t[1],
            &t[2],
            &self.params(),
            &grads,
        )?;
        Ok(Ran::named("conv_transpose2d_bwd"))
    }
    /// Each gradient of input and weight counts as one forward pass.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let forward = self.params().validate(&crate::ops::as_batched(s[0], 4), s[1], None)?.flops();
        Ok(forward * (self.1.input as u32 + self.1.weight as u32) as f64)
    }
    fn applies(&self) -> bool {
        crate::ops::conv_transpose2d_backward::as_conv2d(&self.params(), &self.0.input, &self.0.weight).is_ok()
    }
    fn simpler(&self) -> Vec<Self> {
        self.0.simpler().into_iter().map(|c| ConvTranspose2dBackwardCase(c, self.1)).collect()
    }
}
