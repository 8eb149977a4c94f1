//! separable_conv2d's conformance cases (two passes and fused).

use super::*;

/// A depthwise-separable block case, with both biases or none.
#[derive(Clone, Debug, PartialEq)]
pub struct SeparableCase {
    /// Input shape `[N, C, H, W]`.
    pub input: [usize; 4],
    /// `[C·mult, 1, kh, kw]`
    pub dw_weight: [usize; 4],
    /// `[Cout, C·mult, 1, 1]`
    pub pw_weight: [usize; 4],
    /// The depthwise stage's stride, padding and dilation, each stage's activation, and
    /// whether the two stages run fused.
    pub params: crate::ops::separable_conv2d::SeparableParams,
    /// Both stages' biases (the generator's cases), or neither.
    pub biases: bool,
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
            SeparableCase { input, dw_weight, pw_weight: [cout, c * mult, 1, 1], params, biases: true, seeds }
        })
        .collect()
}

impl SeparableCase {
    /// (input, dw_weight, dw_bias, pw_weight, pw_bias) of the case's inputs in order.
    fn parts<'a, T>(&self, t: &'a [T]) -> (&'a T, &'a T, Option<&'a T>, &'a T, Option<&'a T>) {
        if self.biases {
            (&t[0], &t[1], Some(&t[2]), &t[3], Some(&t[4]))
        } else {
            (&t[0], &t[1], None, &t[2], None)
        }
    }
}

impl OpCase for SeparableCase {
    /// (input, dw_weight, dw_bias, pw_weight, pw_bias), the biases only with `biases`
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let [sx, sdw, spw, sdb, spb] = self.seeds;
        let bias = |len: usize, seed| self.biases.then(|| HostTensor::random(&[len], seed));
        Ok([HostTensor::random(&self.input, sx), HostTensor::random(&self.dw_weight, sdw)]
            .into_iter()
            .chain(bias(self.dw_weight[0], sdb))
            .chain([HostTensor::random(&self.pw_weight, spw)])
            .chain(bias(self.pw_weight[0], spb))
            .collect())
    }
    /// The two conv2d references composed, the intermediate rounded to f32 (as the GPU
    /// stores it).
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let p = &self.params;
        let (x, dw, dwb, pw, pwb) = self.parts(i);
        let dwp = Conv2dParams {
            stride: p.stride,
            padding: p.padding,
            groups: self.input[1] as u32,
            activation: p.depthwise_activation,
            ..Default::default()
        };
        let (ms, m) = crate::reference::conv2d(x, dw, dwb, &dwp)?;
        let m = HostTensor::new(&ms, m.iter().map(|&v| v as f32).collect())?;
        let pwp = Conv2dParams { activation: p.pointwise_activation, ..Default::default() };
        Ok(vec![crate::reference::conv2d(&m, pw, pwb, &pwp)?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let (x, dw, dwb, pw, pwb) = self.parts(s);
        let (_, out) = self.params.validate(x, dw, dwb.copied(), pw, pwb.copied())?;
        Ok(vec![out.to_vec()])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let (x, dw, dwb, pw, pwb) = self.parts(t);
        crate::ops::separable_conv2d::separable_conv2d_into(ctx, e, x, dw, dwb, pw, pwb, &self.params, &o[0])?;
        Ok(Ran::named(if self.params.fused { "fused" } else { "two_pass" }))
    }
    /// Both stages': the depthwise conv's and the pointwise conv's.
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        let (x, dw, _, pw, _) = self.parts(s);
        let (mid, out) = self.params.validate(x, dw, None, pw, None)?;
        let taps = (dw[2] * dw[3]) as f64;
        Ok(2.0 * mid.iter().product::<usize>() as f64 * taps + 2.0 * (out.iter().product::<usize>() * pw[1]) as f64)
    }
}
