//! conv_transpose3d's conformance cases, forward and backward.

use super::*;
use crate::ops::conv2d_backward::Grads;
use crate::params::{ConvTranspose3dParams, Padding3d};

/// A conv_transpose3d case: shapes, parameters and the seeds of its data.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose3dCase {
    /// Input shape `[N, Cin, D, H, W]`.
    pub input: [usize; 5],
    /// `[Cin, Cout/groups, kd, kh, kw]`
    pub weight: [usize; 5],
    /// Whether the case has a bias (`[Cout]`, Cout = `weight[1]`·groups).
    pub bias: bool,
    /// Stride, padding, output_padding, dilation, groups and activation.
    pub params: ConvTranspose3dParams,
    /// Seeds of the input and the weight (the bias and grad_output derive from them).
    pub seeds: [u64; 2],
}

impl std::fmt::Display for ConvTranspose3dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        write!(
            f,
            "conv_transpose3d x{:?} w{:?} bias={} stride={:?} padding={:?} output_padding={:?} dilation={:?} groups={} activation={:?}",
            self.input, self.weight, self.bias, p.stride, p.padding, p.output_padding, p.dilation, p.groups,
            p.activation
        )
    }
}

/// `count` conv_transpose3d cases from `seed`: small volumes, kernels 1–3 per axis, strides
/// and dilations 1–2, output_padding below max(stride, dilation), symmetric or explicit crops
/// that leave an output, groups 1–2, a bias and an activation on some.
pub fn conv_transpose3d_cases(seed: u64, count: usize) -> Vec<ConvTranspose3dCase> {
    let mut rng = SplitMix64::new(seed ^ 0x73d3);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let groups = rng.range(1, 2);
        let k = [rng.range(1, 3), rng.range(1, 3), rng.range(1, 3)];
        let stride = [rng.range(1, 2), rng.range(1, 2), rng.range(1, 2)];
        let dilation = [rng.range(1, 2), rng.range(1, 2), rng.range(1, 2)];
        let output_padding = [0, 1, 2].map(|a| rng.range(0, stride[a].max(dilation[a]) - 1));
        let size = [rng.range(1, 4), rng.range(1, 4), rng.range(1, 4)];
        let full = [0, 1, 2].map(|a| (size[a] - 1) * stride[a] + dilation[a] * (k[a] - 1) + output_padding[a] + 1);
        let padding = match rng.range(0, 2) {
            0 => Padding3d::Valid,
            1 => Padding3d::Symmetric([0, 1, 2].map(|a| rng.range(0, (full[a] - 1) / 2))),
            _ => {
                let begin = [0, 1, 2].map(|a| rng.range(0, full[a] - 1));
                let end = [0, 1, 2].map(|a| rng.range(0, full[a] - 1 - begin[a]));
                Padding3d::Explicit { begin, end }
            }
        };
        let activation = if rng.range(0, 3) == 0 { Activation::Relu } else { Activation::None };
        let params = ConvTranspose3dParams { stride, padding, output_padding, dilation, groups, activation };
        let (cig, cog) = (rng.range(1, 3) as usize, rng.range(1, 3) as usize);
        let input =
            [rng.range(1, 2) as usize, groups as usize * cig, size[0] as usize, size[1] as usize, size[2] as usize];
        let weight = [groups as usize * cig, cog, k[0] as usize, k[1] as usize, k[2] as usize];
        let bias = rng.range(0, 1) == 1;
        let case = ConvTranspose3dCase { input, weight, bias, params, seeds: [rng.next_u64(), rng.next_u64()] };
        if params.validate(&input, &weight, None).is_ok() {
            out.push(case);
        }
    }
    out
}

impl ConvTranspose3dCase {
    fn c_out(&self) -> usize {
        self.weight[1] * self.params.groups as usize
    }
}

impl OpCase for ConvTranspose3dCase {
    /// (input, weight, bias if any)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let bias = self.bias.then(|| HostTensor::random(&[self.c_out()], self.seeds[1] ^ 0xb1a5));
        Ok([HostTensor::random(&self.input, self.seeds[0]), HostTensor::random(&self.weight, self.seeds[1])]
            .into_iter()
            .chain(bias)
            .collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::conv_transpose3d(&i[0], &i[1], i.get(2), &self.params)?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let g = self.params.validate(&crate::ops::as_batched(s[0], 5), s[1], s.get(2).copied())?;
        Ok(vec![crate::ops::returned_shape(s[0], &g.output_shape())])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let plan =
            crate::ops::conv_transpose3d::conv_transpose3d_into(ctx, e, &t[0], &t[1], t.get(2), &self.params, &o[0])?;
        Ok(Ran { label: "gemm_col2vol".into(), workspace_bytes: plan.workspace_bytes })
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.params.validate(&crate::ops::as_batched(s[0], 5), s[1], None)?.flops())
    }
}

/// conv_transpose3d_backward on a conv_transpose3d case (no activation; its grad_output
/// seeded from the case's input seed), the gradients in its `Grads` in the order input,
/// weight, bias. Cases whose output_padding the backward pass refuses do not apply.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose3dBackwardCase(pub ConvTranspose3dCase, pub Grads);

impl ConvTranspose3dBackwardCase {
    fn params(&self) -> ConvTranspose3dParams {
        ConvTranspose3dParams { activation: Activation::None, ..self.0.params }
    }
}

impl std::fmt::Display for ConvTranspose3dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backward of {}", self.0)
    }
}

impl OpCase for ConvTranspose3dBackwardCase {
    /// (input, weight, grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let out = self.params().output_shape(&self.0.input, &self.0.weight)?;
        Ok(vec![
            HostTensor::random(&self.0.input, self.0.seeds[0]),
            HostTensor::random(&self.0.weight, self.0.seeds[1]),
            HostTensor::random(&out, self.0.seeds[0] ^ 0xd1d1),
        ])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let grads = crate::reference::conv_transpose3d_backward(&i[0], &i[1], &i[2], &self.params())?;
        Ok(super::conv2d_backward::asked(self.1, grads))
    }
    /// grad_bias: `[Cout]` = `[Cout/groups · groups]`.
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let c_out = s[1][1] * self.0.params.groups as usize;
        Ok(super::conv2d_backward::asked(self.1, (s[0].to_vec(), s[1].to_vec(), vec![c_out])))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let grads = super::conv2d_backward::grads_of(self.1, o);
        let p = self.params();
        crate::ops::conv_transpose3d_backward::conv_transpose3d_backward_into(ctx, e, &t[0], &t[1], &t[2], &p, &grads)?;
        Ok(Ran::named("conv_transpose3d_bwd"))
    }
    /// Each gradient of input and weight counts as one forward pass.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.0.flops(&s[..2])? * (self.1.input as u32 + self.1.weight as u32) as f64)
    }
    fn applies(&self) -> bool {
        crate::ops::conv_transpose3d_backward::as_conv3d(&self.params(), &self.0.input, &self.0.weight).is_ok()
    }
}
