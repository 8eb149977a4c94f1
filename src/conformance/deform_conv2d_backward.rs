//! deform_conv2d_backward's conformance cases (on the deform_conv2d cases).

use super::*;
use crate::ops::deform_conv2d_backward::{DeformConv2dGrads, DeformGrads};

/// deform_conv2d_backward on a deform_conv2d case (its grad_output seeded from the case's
/// seed), the gradients its `DeformGrads` asks for in the order input, weight, offset, mask
/// (v2 cases only), bias; judged by the one furthest from passing.
#[derive(Clone, Debug, PartialEq)]
pub struct DeformConv2dBackwardCase(pub DeformConv2dCase, pub DeformGrads);

impl DeformConv2dBackwardCase {
    fn params(&self) -> DeformConv2dParams {
        DeformConv2dParams {
            algorithm: Algorithm::Auto,
            activation: crate::params::Activation::None,
            ..self.0.params()
        }
    }

    /// The gradients asked for, the mask's only with a mask.
    fn which(&self) -> DeformGrads {
        DeformGrads { mask: self.1.mask && self.0.mask, ..self.1 }
    }

    /// `items` (input, weight, offset, mask, bias) filtered to the gradients asked for.
    fn asked<T>(&self, items: [T; 5]) -> Vec<T> {
        let w = self.which();
        let on = [w.input, w.weight, w.offset, w.mask, w.bias];
        items.into_iter().zip(on).filter(|(_, on)| *on).map(|(t, _)| t).collect()
    }
}

impl std::fmt::Display for DeformConv2dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backward of {}", self.0)
    }
}

impl OpCase for DeformConv2dBackwardCase {
    /// (input, weight, offset, mask (v2), grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, o, m, _) = self.0.data();
        let dg = self.params().validate_deform(
            &x.shape,
            &w.shape,
            &o.shape,
            m.as_ref().map(|m| m.shape.as_slice()),
            None,
        )?;
        let dy = HostTensor::random(&dg.conv.output_shape(), self.0.conv.seed ^ 0xd1d1);
        Ok([x, w, o].into_iter().chain(m).chain([dy]).collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let m = self.0.mask.then(|| &i[3]);
        let dy = &i[i.len() - 1];
        let r = crate::reference::deform_conv2d_backward(&i[0], &i[1], &i[2], m, dy, &self.params())?;
        Ok(self.asked([r.grad_input, r.grad_weight, r.grad_offset, r.grad_mask, r.grad_bias]))
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let c_out = vec![s[1][0]];
        let mask = if self.0.mask { s[3].to_vec() } else { Vec::new() };
        Ok(self.asked([s[0].to_vec(), s[1].to_vec(), s[2].to_vec(), mask, c_out]))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let w = self.which();
        let mut outs = o.iter().cloned();
        let mut next = |on: bool| if on { outs.next() } else { None };
        let grads = DeformConv2dGrads {
            grad_input: next(w.input),
            grad_weight: next(w.weight),
            grad_offset: next(w.offset),
            grad_mask: next(w.mask),
            grad_bias: next(w.bias),
        };
        let m = self.0.mask.then(|| &t[3]);
        let dy = &t[t.len() - 1];
        crate::ops::deform_conv2d_backward::deform_conv2d_backward_into(
            ctx,
            e,
            &t[0],
            &t[1],
            &t[2],
            m,
            dy,
            &self.params(),
            &grads,
        )?;
        Ok(Ran::named("deform_conv2d_bwd"))
    }
    /// The input-side gradients (input, offset, mask: one column-gradient GEMM) and the
    /// weight's each count as one forward pass.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let forward = self.params().validate(&crate::ops::as_batched(s[0], 4), s[1], None)?.flops();
        let w = self.which();
        Ok(forward * ((w.input || w.offset || w.mask) as u32 + w.weight as u32) as f64)
    }
    fn simpler(&self) -> Vec<Self> {
        self.0.simpler().into_iter().map(|c| DeformConv2dBackwardCase(c, self.1)).collect()
    }
}
