//! max_pool2d and avg_pool2d conformance cases.

use super::*;

/// A max or average pooling case.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dCase {
    /// Input shape `[N, C, H, W]`.
    pub input: [usize; 4],
    /// Kernel, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override, or an
    /// adaptive output size.
    pub params: crate::params::Pool2dParams,
    /// Max or average pooling.
    pub mode: crate::ops::pool2d::PoolMode,
    /// Seed of the random input.
    pub seed: u64,
}

impl std::fmt::Display for Pool2dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} pool x{:?} {:?}", self.mode, self.input, self.params)
    }
}

/// `count` pooling cases from `seed`, max and average in turn: kernels 1–4, default or
/// random strides 1–3, dilations 1–2 (max), paddings up to half the kernel, ceil_mode
/// either way, both `count_include_pad`, a divisor_override on half the avg cases; every fifth
/// case adaptive instead.
pub fn pool2d_cases(seed: u64, count: usize) -> Vec<Pool2dCase> {
    use crate::ops::pool2d::PoolMode;
    let mut rng = SplitMix64::new(seed ^ 0x9001);
    (0..count)
        .map(|i| {
            let mode = if i % 2 == 0 { PoolMode::Max } else { PoolMode::Avg };
            let kernel = [rng.range(1, 4), rng.range(1, 4)];
            let stride = if rng.range(0, 2) == 0 { None } else { Some([rng.range(1, 3), rng.range(1, 3)]) };
            let dilation =
                if mode == PoolMode::Max && rng.range(0, 2) == 0 { [rng.range(1, 2), rng.range(1, 2)] } else { [1, 1] };
            let span = [0, 1].map(|a| dilation[a] * (kernel[a] - 1) + 1);
            let padding = [rng.range(0, kernel[0] / 2), rng.range(0, kernel[1] / 2)];
            let divisor_override = (mode == PoolMode::Avg && rng.range(0, 2) == 0).then(|| rng.range(1, 9));
            let params = crate::params::Pool2dParams {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode: rng.range(0, 1) == 1,
                count_include_pad: rng.range(0, 1) == 1,
                divisor_override,
                adaptive: None,
            };
            let input = [
                rng.range(1, 2) as usize,
                rng.range(1, 4) as usize,
                rng.range(span[0], 12) as usize,
                rng.range(span[1], 12) as usize,
            ];
            // every fifth: adaptive, to output sizes below and above the input's
            let params = if i % 5 == 4 {
                crate::params::Pool2dParams::adaptive([
                    rng.range(1, input[2] as u32 + 2),
                    rng.range(1, input[3] as u32 + 2),
                ])
            } else {
                params
            };
            Pool2dCase { input, params, mode, seed: rng.next_u64() }
        })
        .collect()
}

impl OpCase for Pool2dCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        Ok(vec![HostTensor::random(&self.input, self.seed)])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::pool2d(&i[0], &self.params, self.mode)?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let out = self.params.validate(&crate::ops::as_batched(s[0], 4))?;
        Ok(vec![crate::ops::returned_shape(s[0], &out)])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        crate::ops::pool2d::pool2d_into(ctx, e, &t[0], &self.params, self.mode, &o[0])?;
        Ok(Ran::named(format!("{:?} pool", self.mode)))
    }
    /// One comparison or addition per window position of each output.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let out = self.params.validate(&crate::ops::as_batched(s[0], 4))?;
        Ok(out.iter().product::<usize>() as f64 * (self.params.kernel[0] * self.params.kernel[1]) as f64)
    }
}

/// max_pool2d_backward or avg_pool2d_backward on a pooling case: inputs (input, grad_output),
/// output grad_input. Every third case rounds its input to halves, so that windows hold ties
/// (max pooling's gradient then goes to the first of them in row-major order).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dBackwardCase(pub Pool2dCase);

impl std::fmt::Display for Pool2dBackwardCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "backward of {}", self.0)
    }
}

impl OpCase for Pool2dBackwardCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let mut x = HostTensor::random(&self.0.input, self.0.seed);
        if self.0.seed % 3 == 0 {
            x.data.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
        }
        let out = self.0.params.validate(&self.0.input)?;
        Ok(vec![x, HostTensor::random(&out, self.0.seed ^ 0xd1d1)])
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::pool2d_backward(&i[0], &i[1], &self.0.params, self.0.mode)?])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        self.0.params.validate(&crate::ops::as_batched(s[0], 4))?;
        Ok(vec![s[0].to_vec()])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        crate::ops::pool2d_backward::pool2d_backward_into(ctx, e, &t[0], &t[1], &self.0.params, self.0.mode, &o[0])?;
        Ok(Ran::named(format!("{:?} pool backward", self.0.mode)))
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        self.0.flops(s)
    }
    fn simpler(&self) -> Vec<Self> {
        self.0.simpler().into_iter().map(Pool2dBackwardCase).collect()
    }
}
