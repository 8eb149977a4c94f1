//! separable_conv2d's conformance cases (two passes and fused).

use super::*;

/// A depthwise-separable block case (both biases).
#[derive(Clone, Debug, PartialEq)]
pub struct SeparableCase {
    pub input: [usize; 4],
    /// `[C·mult, 1, kh, kw]`
    pub dw_weight: [usize; 4],
    /// `[Cout, C·mult, 1, 1]`
    pub pw_weight: [usize; 4],
    pub params: crate::ops::separable_conv2d::SeparableParams,
    /// Seeds of the input, the two weights and the two biases.
    pub seeds: [u64; 5],
}

impl std::fmt::Display for SeparableCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "separable x{:?} dw{:?} pw{:?} {:?}", self.input, self.dw_weight, self.pw_weight, self.params)
    }
}

/// `count` separable blocks from `seed` (two passes, or fused): channels 1–6, multiplier
/// 1–2, Cout 1–70, kernels 1–3, strides 1–2, symmetric padding, none/relu/relu6 after
/// either stage.
pub fn separable_cases(seed: u64, count: usize, fused: bool) -> Vec<SeparableCase> {
    use crate::ops::separable_conv2d::SeparableParams;
    use crate::params::Activation;
    let mut rng = SplitMix64::new(seed ^ 0x5e9a);
    (0..count)
        .map(|_| {
            let (c, mult, cout) = (rng.range(1, 6) as usize, rng.range(1, 2) as usize, rng.range(1, 70) as usize);
            let k = [rng.range(1, 3), rng.range(1, 3)];
            let stride = [rng.range(1, 2), rng.range(1, 2)];
            let padding = Padding::Symmetric([
                rng.range(0, k[0] / 2 + 1).min(k[0] - 1),
                rng.range(0, k[1] / 2 + 1).min(k[1] - 1),
            ]);
            let acts = [Activation::None, Activation::Relu, Activation::Relu6];
            let params = SeparableParams {
                stride,
                padding,
                depthwise_activation: acts[rng.range(0, 2) as usize],
                pointwise_activation: acts[rng.range(0, 2) as usize],
                fused,
                ..Default::default()
            };
            let input =
                [rng.range(1, 2) as usize, c, (k[0] + rng.range(0, 6)) as usize, (k[1] + rng.range(0, 6)) as usize];
            let seeds = [rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()];
            let dw_weight = [c * mult, 1, k[0] as usize, k[1] as usize];
            SeparableCase { input, dw_weight, pw_weight: [cout, c * mult, 1, 1], params, seeds }
        })
        .collect()
}

impl OpCase for SeparableCase {
    /// (input, dw_weight, dw_bias, pw_weight, pw_bias)
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let [sx, sdw, spw, sdb, spb] = self.seeds;
        Ok(vec![
            HostTensor::random(&self.input, sx),
            HostTensor::random(&self.dw_weight, sdw),
            HostTensor::random(&[self.dw_weight[0]], sdb),
            HostTensor::random(&self.pw_weight, spw),
            HostTensor::random(&[self.pw_weight[0]], spb),
        ])
    }
    /// The two conv2d references composed, the intermediate rounded to f32 (as the GPU
    /// stores it).
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let p = &self.params;
        let dwp = Conv2dParams {
            stride: p.stride,
            padding: p.padding,
            groups: self.input[1] as u32,
            activation: p.depthwise_activation,
            ..Default::default()
        };
        let (ms, m) = crate::reference::conv2d(&i[0], &i[1], Some(&i[2]), &dwp)?;
        let m = HostTensor::new(&ms, m.iter().map(|&v| v as f32).collect())?;
        let pwp = Conv2dParams { activation: p.pointwise_activation, ..Default::default() };
        Ok(vec![crate::reference::conv2d(&m, &i[3], Some(&i[4]), &pwp)?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let (_, out) = self.params.validate(s[0], s[1], Some(s[2]), s[3], Some(s[4]))?;
        Ok(vec![out.to_vec()])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        crate::ops::separable_conv2d::separable_conv2d_into(
            ctx,
            e,
            &t[0],
            &t[1],
            Some(&t[2]),
            &t[3],
            Some(&t[4]),
            &self.params,
            &o[0],
        )?;
        Ok(Ran::named(if self.params.fused { "fused" } else { "two_pass" }))
    }
    /// Both stages': the depthwise conv's and the pointwise conv's.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let (mid, out) = self.params.validate(s[0], s[1], None, s[3], None)?;
        let taps = (s[1][2] * s[1][3]) as f64;
        Ok(2.0 * mid.iter().product::<usize>() as f64 * taps + 2.0 * (out.iter().product::<usize>() * s[3][1]) as f64)
    }
}
