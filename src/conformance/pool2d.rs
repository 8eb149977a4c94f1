//! max_pool2d and avg_pool2d conformance cases.

use super::*;

/// A max or average pooling case.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dCase {
    pub input: [usize; 4],
    pub params: crate::params::Pool2dParams,
    pub mode: crate::ops::pool2d::PoolMode,
    pub seed: u64,
}

impl std::fmt::Display for Pool2dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} pool x{:?} {:?}", self.mode, self.input, self.params)
    }
}

/// `count` pooling cases from `seed`, max and average in turn: kernels 1–4, default or
/// random strides 1–3, paddings up to half the kernel, both `count_include_pad`.
pub fn pool2d_cases(seed: u64, count: usize) -> Vec<Pool2dCase> {
    let mut rng = SplitMix64::new(seed ^ 0x9001);
    (0..count)
        .map(|i| {
            let kernel = [rng.range(1, 4), rng.range(1, 4)];
            let stride = if rng.range(0, 2) == 0 { None } else { Some([rng.range(1, 3), rng.range(1, 3)]) };
            let padding = [rng.range(0, kernel[0] / 2), rng.range(0, kernel[1] / 2)];
            let params =
                crate::params::Pool2dParams { kernel, stride, padding, count_include_pad: rng.range(0, 1) == 1 };
            let input = [
                rng.range(1, 2) as usize,
                rng.range(1, 4) as usize,
                rng.range(kernel[0], 12) as usize,
                rng.range(kernel[1], 12) as usize,
            ];
            let mode = if i % 2 == 0 { crate::ops::pool2d::PoolMode::Max } else { crate::ops::pool2d::PoolMode::Avg };
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
