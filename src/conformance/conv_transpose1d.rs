//! conv_transpose1d's conformance cases (on the conv_transpose2d cases' width axis), forward
//! and backward.

use super::*;
use crate::ops::conv2d_backward::Grads;

/// conv_transpose1d on a conv_transpose2d case's width axis (its width, stride, padding,
/// output_padding, dilation and algorithm; its data's first values), against the 1-D
/// reference.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose1dCase(pub ConvTranspose2dCase);

impl std::fmt::Display for ConvTranspose1dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conv_transpose1d on the width axis of {}", self.0)
    }
}

impl ConvTranspose1dCase {
    /// The case of a conv_transpose1d of `input` `[N, Cin, L]` and `weight`
    /// `[Cin, Cout/G, k]` with `params` (seed 0).
    pub fn of(params: ConvTranspose1dParams, input: [usize; 3], weight: [usize; 3], bias: bool) -> Self {
        ConvTranspose1dCase(ConvTranspose2dCase {
            input: [input[0], input[1], 1, input[2]],
            weight: [weight[0], weight[1], 1, weight[2]],
            bias,
            params: params.as_conv_transpose2d(),
            seed: 0,
        })
    }

    /// The conv_transpose1d parameters of the case's width axis.
    pub fn params(&self) -> ConvTranspose1dParams {
        let p = &self.0.params;
        let padding = match p.padding {
            Padding::Valid | Padding::Same => Padding1d::Valid,
            Padding::Symmetric([_, w]) => Padding1d::Symmetric(w),
            Padding::Explicit { left, right, .. } => Padding1d::Explicit { left, right },
        };
        ConvTranspose1dParams {
            stride: p.stride[1],
            padding,
            output_padding: p.output_padding[1],
            dilation: p.dilation[1],
            groups: p.groups,
            activation: p.activation,
            algorithm: p.algorithm,
        }
    }

    /// Input `[N, Cin, W]` and weight `[Cin, Cout/G, kw]`: the first values of the case's
    /// seeded data; the bias as is.
    fn data(&self) -> Result<(HostTensor, HostTensor, Option<HostTensor>)> {
        let (c, (x, w, b)) = (&self.0, self.0.data());
        let row =
            |h: HostTensor, s: [usize; 4]| HostTensor::new(&[s[0], s[1], s[3]], h.data[..s[0] * s[1] * s[3]].to_vec());
        Ok((row(x, c.input)?, row(w, c.weight)?, b))
    }
}

/// `count` conv_transpose1d cases from `seed` (those of the conv_transpose2d cases whose width
/// axis alone is a valid conv_transpose1d).
pub fn conv_transpose1d_cases(seed: u64, count: usize) -> Vec<ConvTranspose1dCase> {
    conv_transpose2d_cases(seed ^ 0x1d, count)
        .into_iter()
        .map(ConvTranspose1dCase)
        .filter(|c| {
            let s = |a: [usize; 4]| [a[0], a[1], a[3]];
            c.params().validate(&s(c.0.input), &s(c.0.weight), None).is_ok()
        })
        .collect()
}

impl OpCase for ConvTranspose1dCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, b) = self.data()?;
        Ok([x, w].into_iter().chain(b).collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::conv_transpose1d(&i[0], &i[1], i.get(2), &self.params())?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let out = self.params().validate(&crate::ops::as_batched(s[0], 3), s[1], s.get(2).copied())?;
        Ok(vec![crate::ops::returned_shape(s[0], &out)])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let info =
            crate::ops::conv_transpose1d::conv_transpose1d_into(ctx, e, &t[0], &t[1], t.get(2), &self.params(), &o[0])?;
        Ok(Ran { label: info.algorithm.name().to_string(), workspace_bytes: info.workspace_bytes })
    }
    /// 2·N·Cin·L·(Cout/groups)·k.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(2.0 * s[0].iter().product::<usize>() as f64 * s[1][1..].iter().product::<usize>() as f64)
    }
    fn simpler(&self) -> Vec<Self> {
        let s = |a: [usize; 4]| [a[0], a[1], a[3]];
        self.0
            .simpler()
            .into_iter()
            .map(ConvTranspose1dCase)
            .filter(|c| c.params().validate(&s(c.0.input), &s(c.0.weight), None).is_ok())
            .collect()
    }
}

/// conv_transpose1d_backward on a conv_transpose1d case (its grad_output seeded from the
/// case's seed), the gradients in its `Grads` in the order input, weight, bias. Cases whose
/// output_padding the backward pass refuses do not apply.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose1dBackwardCase(pub ConvTranspose1dCase, pub Grads);

impl ConvTranspose1dBackwardCase {
    fn params(&self) -> ConvTranspose1dParams {
        ConvTranspose1dParams { activation: Activation::None, ..self.0.params() }
    }
}

impl std::fmt::Display for ConvTranspose1dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backward of {}", self.0)
    }
}

impl OpCase for ConvTranspose1dBackwardCase {
    /// (input, weight, grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, _) = self.0.data()?;
        let out = self.params().output_shape(&x.shape, &w.shape)?;
        let dy = HostTensor::random(&out, self.0 .0.seed ^ 0xd1d1);
        Ok(vec![x, w, dy])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let grads = crate::reference::conv_transpose1d_backward(&i[0], &i[1], &i[2], &self.params())?;
        Ok(super::conv2d_backward::asked(self.1, grads))
    }
    /// grad_bias: `[Cout]` = `[Cout/groups · groups]`.
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let c_out = s[1][1] * self.params().groups as usize;
        Ok(super::conv2d_backward::asked(self.1, (s[0].to_vec(), s[1].to_vec(), vec![c_out])))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let grads = super::conv2d_backward::grads_of(self.1, o);
        let p = self.params();
        crate::ops::conv_transpose1d_backward::conv_transpose1d_backward_into(ctx, e, &t[0], &t[1], &t[2], &p, &grads)?;
        Ok(Ran::named("conv_transpose1d_bwd"))
    }
    /// Each gradient of input and weight counts as one forward pass.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.0.flops(&s[..2])? * (self.1.input as u32 + self.1.weight as u32) as f64)
    }
    fn applies(&self) -> bool {
        let p = self.params().as_conv_transpose2d();
        crate::ops::conv_transpose2d_backward::as_conv2d(&p, &self.0 .0.input, &self.0 .0.weight).is_ok()
    }
    fn simpler(&self) -> Vec<Self> {
        self.0.simpler().into_iter().map(|c| ConvTranspose1dBackwardCase(c, self.1)).collect()
    }
}
