//! conv3d's conformance cases.

use super::*;

/// A conv3d case (the generator's have no bias).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3dCase {
    /// Input shape `[N, Cin, D, H, W]`.
    pub input: [usize; 5],
    /// Weight shape `[Cout, Cin/groups, kd, kh, kw]`.
    pub weight: [usize; 5],
    /// Whether the case has a bias (`[Cout]`, seeded from the weight's seed).
    pub bias: bool,
    /// Stride, padding, dilation, groups, activation and padding mode.
    pub params: crate::params::Conv3dParams,
    /// Seeds of the input and the weight.
    pub seeds: [u64; 2],
}

impl std::fmt::Display for Conv3dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conv3d x{:?} w{:?} {:?}", self.input, self.weight, self.params)
    }
}

/// `count` conv3d cases from `seed`: small volumes, kernels 1–3 per axis, strides and
/// dilations 1–2, symmetric or `same` padding, groups 1–2.
pub fn conv3d_cases(seed: u64, count: usize) -> Vec<Conv3dCase> {
    use crate::params::{Conv3dParams, Padding3d};
    let mut rng = SplitMix64::new(seed ^ 0x3d3d);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let groups = rng.range(1, 2);
        let k = [rng.range(1, 3), rng.range(1, 3), rng.range(1, 3)];
        let same = rng.range(0, 3) == 0;
        let stride = if same { [1; 3] } else { [rng.range(1, 2), rng.range(1, 2), rng.range(1, 2)] };
        let dilation = [rng.range(1, 2), rng.range(1, 2), rng.range(1, 2)];
        let padding =
            if same { Padding3d::Same } else { Padding3d::Symmetric([0, 1, 2].map(|a| rng.range(0, k[a] - 1))) };
        let params = Conv3dParams { stride, padding, dilation, groups, ..Default::default() };
        let cin = groups as usize * rng.range(1, 3) as usize;
        let cout = groups as usize * rng.range(1, 3) as usize;
        let size = [0, 1, 2].map(|a| (dilation[a] * (k[a] - 1) + 1 + rng.range(0, 4)) as usize);
        let input = [rng.range(1, 2) as usize, cin, size[0], size[1], size[2]];
        let x_seed = rng.next_u64();
        let weight = [cout, cin / groups as usize, k[0] as usize, k[1] as usize, k[2] as usize];
        let case = Conv3dCase { input, weight, bias: false, params, seeds: [x_seed, rng.next_u64()] };
        if params.validate(&input, &weight, None).is_ok() {
            out.push(case);
        }
    }
    out
}

/// The padding cases of `count` conv3d cases from `seed`, each with a padding mode other
/// than zeros (reflect, replicate, circular in turn) where the mode's rules admit it.
pub fn conv3d_padding_mode_cases(seed: u64, count: usize) -> Vec<Conv3dCase> {
    use crate::params::PaddingMode;
    let modes = [PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular];
    conv3d_cases(seed ^ 0x9ad, count)
        .into_iter()
        .enumerate()
        .map(|(i, c)| Conv3dCase {
            params: crate::params::Conv3dParams { padding_mode: modes[i % 3], ..c.params },
            ..c
        })
        .filter(|c| c.params.validate(&c.input, &c.weight, None).is_ok_and(|g| g.pads_by_mode()))
        .collect()
}

impl OpCase for Conv3dCase {
    /// (input, weight, bias if any)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let bias = self.bias.then(|| HostTensor::random(&[self.weight[0]], self.seeds[1] ^ 0xb1a5));
        Ok([HostTensor::random(&self.input, self.seeds[0]), HostTensor::random(&self.weight, self.seeds[1])]
            .into_iter()
            .chain(bias)
            .collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::conv3d(&i[0], &i[1], i.get(2), &self.params)?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let g = self.params.validate(&crate::ops::as_batched(s[0], 5), s[1], s.get(2).copied())?;
        Ok(vec![crate::ops::returned_shape(s[0], &g.output_shape())])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        crate::ops::conv3d::conv3d_into(ctx, e, &t[0], &t[1], t.get(2), &self.params, &o[0])?;
        Ok(Ran::named("vol2col_gemm"))
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let g = self.params.validate(&crate::ops::as_batched(s[0], 5), s[1], None)?;
        Ok(2.0 * g.output_shape().iter().product::<usize>() as f64 * s[1][1..].iter().product::<usize>() as f64)
    }
    fn simpler(&self) -> Vec<Self> {
        simpler_3d(self)
    }
}

/// Valid variants of `c` one step simpler: one image, no bias, one group, fewer channels per
/// group, an axis of the kernel, stride, dilation or padding down to 1 (0), a padding mode
/// back to zeros, an axis of the volume one shorter.
fn simpler_3d(c: &Conv3dCase) -> Vec<Conv3dCase> {
    use crate::params::{Padding3d, PaddingMode};
    let mut out = Vec::new();
    let mut push = |v: Conv3dCase| {
        if v != *c && v.params.validate(&v.input, &v.weight, None).is_ok() {
            out.push(v);
        }
    };
    push(Conv3dCase { input: [1, c.input[1], c.input[2], c.input[3], c.input[4]], ..c.clone() });
    push(Conv3dCase { bias: false, ..c.clone() });
    let g = c.params.groups as usize;
    if g > 1 {
        let mut v = c.clone();
        v.params.groups = 1;
        v.input[1] = c.input[1] / g;
        v.weight[0] = c.weight[0] / g;
        push(v);
    }
    if c.weight[1] > 1 {
        let mut v = c.clone();
        v.weight[1] -= 1;
        v.input[1] = v.weight[1] * g;
        push(v);
    }
    if c.weight[0] > g {
        let mut v = c.clone();
        v.weight[0] -= g;
        push(v);
    }
    for a in 0..3 {
        let mut v = c.clone();
        v.weight[2 + a] = 1;
        push(v);
        let mut v = c.clone();
        v.params.stride[a] = 1;
        push(v);
        let mut v = c.clone();
        v.params.dilation[a] = 1;
        push(v);
        if c.input[2 + a] > 1 {
            let mut v = c.clone();
            v.input[2 + a] -= 1;
            push(v);
        }
    }
    push(Conv3dCase {
        params: crate::params::Conv3dParams { padding: Padding3d::Symmetric([0; 3]), ..c.params },
        ..c.clone()
    });
    push(Conv3dCase {
        params: crate::params::Conv3dParams { padding_mode: PaddingMode::Zeros, ..c.params },
        ..c.clone()
    });
    out
}

/// conv3d_backward on a conv3d case (its grad_output seeded from the case's input seed), the
/// gradients in its `Grads` in the order input, weight, bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3dBackwardCase(pub Conv3dCase, pub crate::ops::conv2d_backward::Grads);

impl std::fmt::Display for Conv3dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backward of {}", self.0)
    }
}

impl OpCase for Conv3dBackwardCase {
    /// (input, weight, grad_output)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let g = self.0.params.validate(&self.0.input, &self.0.weight, None)?;
        let dy = HostTensor::random(&g.output_shape(), self.0.seeds[0] ^ 0xd1d1);
        Ok(vec![
            HostTensor::random(&self.0.input, self.0.seeds[0]),
            HostTensor::random(&self.0.weight, self.0.seeds[1]),
            dy,
        ])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let grads = crate::reference::conv3d_backward(&i[0], &i[1], &i[2], &self.0.params)?;
        Ok(super::conv2d_backward::asked(self.1, grads))
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        Ok(super::conv2d_backward::grad_shapes(self.1, s))
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let grads = super::conv2d_backward::grads_of(self.1, o);
        crate::ops::conv3d_backward::conv3d_backward_into(ctx, e, &t[0], &t[1], &t[2], &self.0.params, &grads)?;
        Ok(Ran::named("conv3d_bwd"))
    }
    /// Each gradient of input and weight counts as one forward pass.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.0.flops(s)? * (self.1.input as u32 + self.1.weight as u32) as f64)
    }
    fn simpler(&self) -> Vec<Self> {
        simpler_3d(&self.0).into_iter().map(|c| Conv3dBackwardCase(c, self.1)).collect()
    }
}
