//! Any op's case with NaN and ±∞ planted in its inputs ([`SpecialCase`]): the generated
//! geometry of every op and algorithm (padding, strides, dilation, groups, cropped borders,
//! output_padding) met by special values, each output compared with the reference in kind
//! (NaN with NaN, +∞ with +∞) as well as in value. The fixed special-value probes
//! ([`crate::probes`]) try a few geometries; these try the generator's.

use std::fmt;

use crate::context::GpuContext;
use crate::error::Result;
use crate::tensor::{HostTensor, Tensor};
use crate::verify::SplitMix64;

use super::{OpCase, Ran};

/// NaN, +∞ and −∞: what an input gets.
pub const INPUT_SPECIALS: &[f32] = &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
/// One infinity: what a weight gets (it spreads over a whole output channel, and meets every
/// zero a formulation may multiply it by: padding, taps outside the input, cropped borders).
pub const WEIGHT_SPECIALS: &[f32] = &[f32::INFINITY];

/// The input index of a case's last argument (deform_conv2d_backward's grad_output follows
/// an optional mask).
pub const LAST: usize = usize::MAX;

/// `case` with `values` written at seeded positions of its inputs: `(input index, values)`.
/// No subnormal is planted (an implementation may flush one to 0, and then 0·∞ is NaN where
/// IEEE arithmetic gives ∞; see the probes' `SPECIAL_NORMAL`).
#[derive(Clone, Debug)]
pub struct SpecialCase<C> {
    /// The case whose inputs get the values.
    pub case: C,
    /// Which inputs get which values ([`LAST`]: the last input).
    pub planted: Vec<(usize, &'static [f32])>,
    /// Seeds the positions.
    pub seed: u64,
}

impl<C> SpecialCase<C> {
    /// A conv's case: NaN, +∞ and −∞ in its input (argument 0), +∞ in its weight (argument 1)
    /// and, for a backward case, NaN, +∞ and −∞ in grad_output (argument `grad_output`).
    pub fn conv(case: C, seed: u64, grad_output: Option<usize>) -> Self {
        let mut planted = vec![(0, INPUT_SPECIALS), (1, WEIGHT_SPECIALS)];
        planted.extend(grad_output.map(|i| (i, INPUT_SPECIALS)));
        SpecialCase { case, planted, seed }
    }

    /// Each of `cases` as [`SpecialCase::conv`], seeded from `seed` and its position.
    pub fn convs(cases: impl IntoIterator<Item = C>, seed: u64, grad_output: Option<usize>) -> Vec<Self> {
        let seed_of = |i: usize| seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        cases.into_iter().enumerate().map(|(i, c)| SpecialCase::conv(c, seed_of(i), grad_output)).collect()
    }
}

impl<C: fmt::Display> fmt::Display for SpecialCase<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at: Vec<String> = self.planted.iter().map(|(i, v)| format!("{}×{i}", v.len())).collect();
        write!(f, "{} with NaN/±inf (seed {}, values×input {})", self.case, self.seed, at.join(" "))
    }
}

impl<C: OpCase> OpCase for SpecialCase<C> {
    fn inputs(&self) -> Result<Vec<HostTensor>> {
        let mut inputs = self.case.inputs()?;
        let mut rng = SplitMix64::new(self.seed);
        for &(i, values) in &self.planted {
            let i = if i == LAST { inputs.len().saturating_sub(1) } else { i };
            let Some(t) = inputs.get_mut(i) else { continue };
            if t.data.is_empty() {
                continue;
            }
            for &v in values {
                let at = rng.range(0, t.data.len() as u32 - 1) as usize;
                t.data[at] = v;
            }
        }
        Ok(inputs)
    }
    fn expected(&self, inputs: &[HostTensor]) -> Result<Vec<Vec<f64>>> {
        self.case.expected(inputs)
    }
    fn output_shapes(&self, inputs: &[&[usize]]) -> Result<Vec<Vec<usize>>> {
        self.case.output_shapes(inputs)
    }
    fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &[Tensor],
        outputs: &[Tensor],
    ) -> Result<Ran> {
        self.case.record(ctx, encoder, inputs, outputs)
    }
    fn run(&self, ctx: &GpuContext, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.case.run(ctx, inputs)
    }
    fn flops(&self, inputs: &[&[usize]]) -> Result<f64> {
        self.case.flops(inputs)
    }
    fn applies(&self) -> bool {
        self.case.applies()
    }
    fn simpler(&self) -> Vec<Self> {
        self.case.simpler().into_iter().map(|c| SpecialCase { case: c, ..self.clone() }).collect()
    }
}
