//! conv_transpose2d's conformance cases.

use super::*;

/// A conv_transpose2d case: shapes and parameters and the seed of its data.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2dCase {
    /// Input shape `[N, Cin, H, W]`.
    pub input: [usize; 4],
    /// `[Cin, Cout/groups, kh, kw]`
    pub weight: [usize; 4],
    /// Whether the case has a bias (`[Cout]`, Cout = `weight[1]`·groups).
    pub bias: bool,
    /// Stride, padding, output_padding, dilation, groups, activation and algorithm.
    pub params: ConvTranspose2dParams,
    /// Seed of the random input, weight and bias (see `data`).
    pub seed: u64,
}

impl ConvTranspose2dCase {
    /// Seeded data (input, weight, bias if any): values in [-1, 1).
    pub fn data(&self) -> (HostTensor, HostTensor, Option<HostTensor>) {
        let x = HostTensor::random(&self.input, self.seed);
        let w = HostTensor::random(&self.weight, self.seed ^ 0x5151_5151);
        let c_out = self.weight[1] * self.params.groups as usize;
        let b = self.bias.then(|| HostTensor::random(&[c_out], self.seed ^ 0xb1a5));
        (x, w, b)
    }
}

impl std::fmt::Display for ConvTranspose2dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        write!(
            f,
            "conv_transpose2d x{:?} w{:?} bias={} stride={:?} padding={:?} output_padding={:?} dilation={:?} groups={} algorithm={} seed={}",
            self.input, self.weight, self.bias, p.stride, p.padding, p.output_padding, p.dilation, p.groups,
            p.algorithm.name(), self.seed
        )
    }
}

/// A random valid conv_transpose2d: groups 1, 2–4 or depthwise (multiplier 1–2), kernels
/// 1–5, strides and dilations 1–3, output_padding below max(stride, dilation), symmetric or
/// explicit padding that leaves an output, N 1–3.
pub fn random_conv_transpose2d_case(rng: &mut SplitMix64) -> ConvTranspose2dCase {
    let (groups, cig, cog) = match rng.range(0, 9) {
        0..=4 => (1, rng.range(1, 6), rng.range(1, 6)),
        5..=6 => (rng.range(2, 4), rng.range(1, 3), rng.range(1, 3)),
        _ => (rng.range(1, 9), 1, rng.range(1, 2)),
    };
    let k = [rng.range(1, 5), rng.range(1, 5)];
    let stride = [rng.range(1, 3), rng.range(1, 3)];
    let dilation = [rng.range(1, 3), rng.range(1, 3)];
    let output_padding = [0, 1].map(|a| rng.range(0, stride[a].max(dilation[a]) - 1));
    let (h, w) = (rng.range(1, 8), rng.range(1, 8));
    let full = |a: usize, len: u32| (len - 1) * stride[a] + dilation[a] * (k[a] - 1) + output_padding[a] + 1;
    let (fh, fw) = (full(0, h), full(1, w));
    // Any crop that leaves at least one row and column.
    let padding = match rng.range(0, 2) {
        0 => Padding::Valid,
        1 => Padding::Symmetric([rng.range(0, (fh - 1) / 2), rng.range(0, (fw - 1) / 2)]),
        _ => {
            let top = rng.range(0, fh - 1);
            let bottom = rng.range(0, fh - 1 - top);
            let left = rng.range(0, fw - 1);
            let right = rng.range(0, fw - 1 - left);
            Padding::Explicit { top, left, bottom, right }
        }
    };
    ConvTranspose2dCase {
        input: [rng.range(1, 3) as usize, (groups * cig) as usize, h as usize, w as usize],
        weight: [(groups * cig) as usize, cog as usize, k[0] as usize, k[1] as usize],
        bias: rng.range(0, 1) == 1,
        params: ConvTranspose2dParams { stride, padding, output_padding, dilation, groups, ..Default::default() },
        seed: rng.next_u64(),
    }
}

/// `count` conv_transpose2d cases from `seed`.
pub fn conv_transpose2d_cases(seed: u64, count: usize) -> Vec<ConvTranspose2dCase> {
    let mut rng = SplitMix64::new(seed ^ 0x7a45);
    (0..count).map(|_| random_conv_transpose2d_case(&mut rng)).collect()
}

impl OpCase for ConvTranspose2dCase {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, b) = self.data();
        Ok([x, w].into_iter().chain(b).collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        Ok(vec![crate::reference::conv_transpose2d(&i[0], &i[1], i.get(2), &self.params)?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let g = self.params.validate(&crate::ops::as_batched(s[0], 4), s[1], s.get(2).copied())?;
        Ok(vec![crate::ops::returned_shape(s[0], &g.output_shape())])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let info =
            crate::ops::conv_transpose2d::conv_transpose2d_into(ctx, e, &t[0], &t[1], t.get(2), &self.params, &o[0])?;
        Ok(Ran { label: info.algorithm.name().to_string(), workspace_bytes: info.workspace_bytes })
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.params.validate(&crate::ops::as_batched(s[0], 4), s[1], None)?.flops())
    }
    fn simpler(&self) -> Vec<Self> {
        simpler_transposed(self)
    }
}

/// One step simpler conv_transpose2d cases.
fn simpler_transposed(c: &ConvTranspose2dCase) -> Vec<ConvTranspose2dCase> {
    let g = c.params.groups as usize;
    let (cig, cog) = (c.input[1] / g, c.weight[1]);
    let mut out = Vec::new();
    let mut push = |f: &dyn Fn(&mut ConvTranspose2dCase)| {
        let mut d = c.clone();
        f(&mut d);
        if d != *c {
            out.push(d);
        }
    };
    push(&|d| d.input[0] = 1);
    push(&|d| d.bias = false);
    push(&|d| d.input[2] = (d.input[2] / 2).max(1));
    push(&|d| d.input[3] = (d.input[3] / 2).max(1));
    push(&|d| d.input[2] = d.input[2].saturating_sub(1).max(1));
    push(&|d| d.input[3] = d.input[3].saturating_sub(1).max(1));
    push(&|d| d.weight[2] = d.weight[2].saturating_sub(1).max(1));
    push(&|d| d.weight[3] = d.weight[3].saturating_sub(1).max(1));
    push(&|d| d.params.padding = Padding::Valid);
    push(&|d| d.params.output_padding = [0, 0]);
    push(&|d| {
        d.params.stride = [1, 1];
        d.params.output_padding = [0, 0];
    });
    push(&|d| {
        d.params.dilation = [1, 1];
        d.params.output_padding = [0, 0];
    });
    push(&|d| {
        d.params.groups = 1;
        d.input[1] = cig;
        d.weight[0] = cig;
    });
    if cig > 1 {
        push(&|d| {
            d.input[1] = g * (cig - 1);
            d.weight[0] = g * (cig - 1);
        });
    }
    if cog > 1 {
        push(&|d| d.weight[1] = cog - 1);
    }
    out.retain(|d| d.params.validate(&d.input, &d.weight, None).is_ok());
    out
}
