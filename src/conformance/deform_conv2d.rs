//! deform_conv2d's conformance cases (a conv2d case with offsets and mask).

use super::*;

/// A deform_conv2d case: a conv2d case plus offset groups, offset scale and v1/v2.
#[derive(Clone, Debug, PartialEq)]
pub struct DeformConv2dCase {
    /// The underlying conv: input, weight, bias, parameters and seed.
    pub conv: Conv2dCase,
    /// Offset groups (divides Cin); the offset is `[N, 2·offset_groups·kh·kw, Ho, Wo]`.
    pub offset_groups: usize,
    /// Offsets are uniform in [−scale, scale] (scales up to 4 send samples out of the image).
    pub scale: f32,
    /// v2 with a mask `[N, offset_groups·kh·kw, Ho, Wo]` (values in [0, 1)); v1 without.
    pub mask: bool,
}

impl DeformConv2dCase {
    /// The conv's parameters (the algorithm of `conv.params` included: `Auto` as generated).
    pub fn params(&self) -> DeformConv2dParams {
        self.conv.params
    }

    /// The case with `algorithm` forced.
    pub fn with_algorithm(&self, algorithm: Algorithm) -> Self {
        let conv = Conv2dCase { params: Conv2dParams { algorithm, ..self.conv.params }, ..self.conv.clone() };
        DeformConv2dCase { conv, ..self.clone() }
    }

    /// (input, weight, offset, mask, bias)
    pub fn data(&self) -> (HostTensor, HostTensor, HostTensor, Option<HostTensor>, Option<HostTensor>) {
        let (x, w, b) = self.conv.data();
        let g = self.conv.params.validate(&x.shape, &w.shape, None).expect("valid case");
        let (n, ho, wo, taps) = (x.shape[0], g.h_out as usize, g.w_out as usize, (g.kh * g.kw) as usize);
        let mut rng = SplitMix64::new(self.conv.seed ^ 0x0ff5);
        let shape = [n, 2 * self.offset_groups * taps, ho, wo];
        let off = (0..shape.iter().product()).map(|_| (rng.next_f32() * 2.0 - 1.0) * self.scale).collect();
        let offset = HostTensor::new(&shape, off).expect("sized above");
        let mask = self.mask.then(|| {
            let shape = [n, self.offset_groups * taps, ho, wo];
            HostTensor::new(&shape, (0..shape.iter().product()).map(|_| rng.next_f32()).collect()).expect("sized above")
        });
        (x, w, offset, mask, b)
    }
}

impl std::fmt::Display for DeformConv2dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deform_{} offset_groups={} scale={} mask={}", self.conv, self.offset_groups, self.scale, self.mask)
    }
}

/// `count` deform_conv2d cases from `seed`: the conv2d generator without `Same` padding, an
/// offset-group count dividing Cin, offset scales 0.5–4, v1 and v2.
pub fn deform_conv2d_cases(seed: u64, count: usize) -> Vec<DeformConv2dCase> {
    let mut rng = SplitMix64::new(seed ^ 0xdef0);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let conv = random_conv2d_case(&mut rng);
        if conv.params.padding == Padding::Same {
            continue;
        }
        let c_in = conv.input[1];
        let divisors: Vec<usize> = (1..=c_in).filter(|d| c_in % d == 0).collect();
        let offset_groups = divisors[rng.range(0, divisors.len() as u32 - 1) as usize];
        let scale = [0.5f32, 1.0, 2.0, 4.0][rng.range(0, 3) as usize];
        out.push(DeformConv2dCase { conv, offset_groups, scale, mask: rng.range(0, 1) == 1 });
    }
    out
}

impl OpCase for DeformConv2dCase {
    /// (input, weight, offset, mask (v2), bias (if any))
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let (x, w, o, m, b) = self.data();
        Ok([x, w, o].into_iter().chain(m).chain(b).collect())
    }
    fn expected(&self, i: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        let (m, b) = (self.mask.then(|| &i[3]), i.get(if self.mask { 4 } else { 3 }));
        Ok(vec![crate::reference::deform_conv2d(&i[0], &i[1], &i[2], m, b, &self.params())?.1])
    }
    fn output_shapes(&self, s: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        let batched = |x: &[usize]| crate::ops::as_batched(x, 4);
        let (m, b) = (self.mask.then(|| batched(s[3])), s.get(if self.mask { 4 } else { 3 }).copied());
        let dg = self.params().validate_deform(&batched(s[0]), s[1], &batched(s[2]), m.as_deref(), b)?;
        Ok(vec![crate::ops::returned_shape(s[0], &dg.conv.output_shape())])
    }
    fn record(&self, ctx: &GpuContext, e: &mut wgpu::CommandEncoder, t: &[Tensor], o: &[Tensor]) -> Result<Ran> {
        let (m, b) = (self.mask.then(|| &t[3]), t.get(if self.mask { 4 } else { 3 }));
        let p = self.params();
        let info = crate::ops::deform_conv2d::deform_conv2d_into(ctx, e, &t[0], &t[1], &t[2], m, b, &p, &o[0])?;
        Ok(Ran { label: info.algorithm.name().to_string(), workspace_bytes: info.workspace_bytes })
    }
    fn flops(&self, s: &[&[usize]]) -> Result<f64> {
        Ok(self.params().validate(&crate::ops::as_batched(s[0], 4), s[1], None)?.flops())
    }
    fn simpler(&self) -> Vec<Self> {
        simpler_deform(self)
    }
}

/// One step simpler deform_conv2d cases: the conv part as a conv2d case (offset groups
/// fall back to 1 when they stop dividing Cin), then one offset group, no mask, small offsets.
fn simpler_deform(c: &DeformConv2dCase) -> Vec<DeformConv2dCase> {
    let mut out: Vec<DeformConv2dCase> = super::conv2d::simpler(&c.conv)
        .into_iter()
        .filter(|s| s.params.padding != Padding::Same)
        .map(|conv| {
            let og = if conv.input[1] % c.offset_groups == 0 { c.offset_groups } else { 1 };
            DeformConv2dCase { conv, offset_groups: og, ..c.clone() }
        })
        .collect();
    for d in [
        DeformConv2dCase { offset_groups: 1, ..c.clone() },
        DeformConv2dCase { mask: false, ..c.clone() },
        DeformConv2dCase { scale: 0.5, ..c.clone() },
    ] {
        if d != *c {
            out.push(d);
        }
    }
    out
}
