//! The conformance runner behind `wgconv conformance` and the tests: seeded random cases
//! over each op's parameter space, each compared with the f64 CPU reference, plus the static
//! check of every shader × override set × translation target.

use std::cell::RefCell;

use serde::Serialize;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::params::{
    Algorithm, Conv1dParams, Conv2dParams, ConvTranspose2dParams, DeformConv2dParams, Padding, Padding1d,
};
use crate::replay::ReplayWriter;
use crate::shaders::{check_shader, ShaderId};
use crate::tensor::{HostTensor, Tensor};
use crate::verify::{compare, SplitMix64, Tolerance};

/// A replay export under way on this thread ([`export_all`]): the writer, and the call that
/// [`outputs`] traced last, written by [`OpSummary::record`] (which knows the op and the case).
struct Export {
    writer: ReplayWriter,
    pending: Option<(crate::kernels::trace::Trace, Vec<Tensor>, Vec<Vec<f64>>)>,
}

thread_local! {
    static EXPORT: RefCell<Option<Export>> = const { RefCell::new(None) };
}

/// Runs `call` (one op call that returns its output tensors) and reads the outputs back.
/// While [`export_all`] runs, the call is traced and kept, with `expected` (one slice per
/// output), for the next [`OpSummary::record`] to write as a replay case.
pub(crate) fn outputs(
    ctx: &GpuContext,
    expected: &[&[f64]],
    call: impl FnOnce() -> Result<Vec<Tensor>>,
) -> Result<Vec<Vec<f32>>> {
    let exporting = EXPORT.with(|e| e.borrow().is_some());
    if exporting {
        ctx.begin_trace();
    }
    let tensors = call();
    let trace = if exporting { Some(ctx.end_trace()) } else { None };
    let tensors = tensors?;
    if let Some(trace) = trace {
        let kept = (trace?, tensors.clone(), expected.iter().map(|e| e.to_vec()).collect());
        EXPORT.with(|e| e.borrow_mut().as_mut().expect("checked above").pending = Some(kept));
    }
    tensors.iter().map(|t| t.to_vec(ctx)).collect()
}

/// Writes the call [`outputs`] kept, if any, as a replay case of `op`.
fn write_pending(op: &str, case: &dyn std::fmt::Display, tol: Tolerance) -> Result<()> {
    EXPORT.with(|e| {
        let mut slot = e.borrow_mut();
        let Some(export) = slot.as_mut() else { return Ok(()) };
        let Some((trace, tensors, expected)) = export.pending.take() else { return Ok(()) };
        let outs: Vec<(&Tensor, &[f64])> = tensors.iter().zip(expected.iter().map(Vec::as_slice)).collect();
        export.writer.write_case(op, &case.to_string(), &trace, &outs, tol)
    })
}

/// A conv2d case: shapes, parameters and the seed of its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dCase {
    pub input: [usize; 4],
    pub weight: [usize; 4],
    pub bias: bool,
    pub params: Conv2dParams,
    pub seed: u64,
}

impl Conv2dCase {
    /// Seeded data: values in [-1, 1).
    pub fn data(&self) -> (HostTensor, HostTensor, Option<HostTensor>) {
        let x = HostTensor::random(&self.input, self.seed);
        let w = HostTensor::random(&self.weight, self.seed ^ 0x5151_5151);
        let b = self.bias.then(|| HostTensor::random(&[self.weight[0]], self.seed ^ 0xb1a5));
        (x, w, b)
    }
}

impl std::fmt::Display for Conv2dCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.params;
        write!(
            f,
            "conv2d x{:?} w{:?} bias={} stride={:?} padding={:?} dilation={:?} groups={} seed={}",
            self.input, self.weight, self.bias, p.stride, p.padding, p.dilation, p.groups, self.seed
        )
    }
}

/// A random valid conv2d over the whole parameter space, small enough to check quickly:
/// groups 1, 2–4 or depthwise (channel multiplier 1–2), kernels 1–5 (non-square), strides and
/// dilations 1–3 (asymmetric), every padding kind, N 1–3, sizes that include 1 and primes.
pub fn random_conv2d_case(rng: &mut SplitMix64) -> Conv2dCase {
    let (groups, cig, cog) = match rng.range(0, 9) {
        0..=4 => (1, rng.range(1, 6), rng.range(1, 6)),
        5..=6 => (rng.range(2, 4), rng.range(1, 3), rng.range(1, 3)),
        _ => {
            let c = rng.range(1, 9);
            (c, 1, rng.range(1, 2))
        }
    };
    // One case in eight is pointwise (1x1, stride 1, unpadded): its own fast path.
    let pointwise = rng.range(0, 7) == 0;
    let k = if pointwise { [1, 1] } else { [rng.range(1, 5), rng.range(1, 5)] };
    let dilation = [rng.range(1, 3), rng.range(1, 3)];
    let stride = if pointwise { [1, 1] } else { [rng.range(1, 3), rng.range(1, 3)] };
    let padding = match rng.range(0, 4) {
        _ if pointwise => Padding::Valid,
        0 => Padding::Valid,
        1 => Padding::Symmetric([rng.range(0, k[0]), rng.range(0, k[1])]),
        2 => Padding::Explicit {
            top: rng.range(0, 3),
            left: rng.range(0, 3),
            bottom: rng.range(0, 3),
            right: rng.range(0, 3),
        },
        _ => Padding::Same,
    };
    let stride = if padding == Padding::Same { [1, 1] } else { stride };
    let pads = padding.resolve(k, dilation);
    // Smallest input that gives an output of ≥ 1, then a few more.
    let min_len = |axis: usize, pb: u32, pe: u32| (dilation[axis] * (k[axis] - 1) + 1).saturating_sub(pb + pe).max(1);
    let h = min_len(0, pads.top, pads.bottom) + rng.range(0, 9);
    let w = min_len(1, pads.left, pads.right) + rng.range(0, 9);
    let params = Conv2dParams { stride, padding, dilation, groups, ..Default::default() };
    Conv2dCase {
        input: [rng.range(1, 3) as usize, (groups * cig) as usize, h as usize, w as usize],
        weight: [(groups * cog) as usize, cig as usize, k[0] as usize, k[1] as usize],
        bias: rng.range(0, 1) == 1,
        params,
        seed: rng.next_u64(),
    }
}

/// `count` cases from `seed`.
pub fn conv2d_cases(seed: u64, count: usize) -> Vec<Conv2dCase> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| random_conv2d_case(&mut rng)).collect()
}

/// Computes the expected output of a case (the f64 reference, unless a test swaps it).
pub type Conv2dOracle = fn(&HostTensor, &HostTensor, Option<&HostTensor>, &Conv2dParams) -> Result<Vec<f64>>;

/// The default oracle: [`crate::reference::conv2d()`].
pub fn reference_conv2d(x: &HostTensor, w: &HostTensor, b: Option<&HostTensor>, p: &Conv2dParams) -> Result<Vec<f64>> {
    crate::reference::conv2d(x, w, b, p).map(|(_, v)| v)
}

/// Results of one op over its cases.
#[derive(Clone, Debug, Serialize)]
pub struct OpSummary {
    pub op: String,
    pub cases: usize,
    pub passed: usize,
    pub worst_rel_l2: f64,
    pub worst_max_abs: f64,
    /// One line per failing case (first 20).
    pub failures: Vec<String>,
}

impl OpSummary {
    pub fn new(op: String) -> Self {
        OpSummary { op, cases: 0, passed: 0, worst_rel_l2: 0.0, worst_max_abs: 0.0, failures: Vec::new() }
    }

    pub fn ok(&self) -> bool {
        self.passed == self.cases
    }

    /// Counts one case's outcome.
    /// Counts one case's outcome (and, during a replay export, writes the call the case
    /// traced).
    pub fn record(&mut self, case: &dyn std::fmt::Display, outcome: Result<crate::verify::ErrorStats>, tol: Tolerance) {
        let outcome = write_pending(&self.op, case, tol).and(outcome);
        self.cases += 1;
        let failure = match outcome {
            Ok(stats) => {
                self.worst_rel_l2 = self.worst_rel_l2.max(stats.rel_l2);
                self.worst_max_abs = self.worst_max_abs.max(stats.max_abs);
                if stats.passes(tol) {
                    self.passed += 1;
                    None
                } else {
                    Some(format!("{case}: {stats}"))
                }
            }
            Err(e) => Some(format!("{case}: error: {e}")),
        };
        if let Some(f) = failure {
            if self.failures.len() < 20 {
                self.failures.push(f);
            }
        }
    }
}

/// Runs `cases` on the GPU with `algorithm` and compares each with `oracle`. Cases the
/// algorithm cannot run are left out of the count.
pub fn run_conv2d(
    ctx: &GpuContext,
    cases: &[Conv2dCase],
    algorithm: Algorithm,
    tol: Tolerance,
    oracle: Conv2dOracle,
) -> OpSummary {
    let mut s = OpSummary::new(format!("conv2d/{}", algorithm.name()));
    for case in cases {
        let params = Conv2dParams { algorithm, ..case.params };
        let bias_shape = [case.weight[0]];
        if let Err(Error::InvalidParam { name: "algorithm", .. }) =
            params.validate(&case.input, &case.weight, case.bias.then_some(&bias_shape[..]))
        {
            continue;
        }
        let outcome = (|| -> Result<crate::verify::ErrorStats> {
            let (x, w, b) = case.data();
            let expected = oracle(&x, &w, b.as_ref(), &params)?;
            let xg = Tensor::from_host(ctx, &x)?;
            let wg = Tensor::from_host(ctx, &w)?;
            let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b)).transpose()?;
            let y = outputs(ctx, &[&expected], || {
                Ok(vec![crate::ops::conv2d::conv2d(ctx, &xg, &wg, bg.as_ref(), &params)?])
            })?;
            Ok(compare(&y[0], &expected))
        })();
        s.record(case, outcome, tol);
    }
    s
}

/// A conv_transpose2d case: shapes and parameters and the seed of its data.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2dCase {
    pub input: [usize; 4],
    /// `[Cin, Cout/groups, kh, kw]`
    pub weight: [usize; 4],
    pub bias: bool,
    pub params: ConvTranspose2dParams,
    pub seed: u64,
}

impl ConvTranspose2dCase {
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

/// Runs conv_transpose2d cases on the GPU against the scatter reference.
/// Runs conv_transpose2d with `algorithm` (`Auto`, `ImplicitGemm` or `GemmCol2im`) on
/// `cases` against the scatter reference.
pub fn run_conv_transpose2d(
    ctx: &GpuContext,
    cases: &[ConvTranspose2dCase],
    algorithm: Algorithm,
    tol: Tolerance,
) -> OpSummary {
    let mut s = OpSummary::new(format!("conv_transpose2d/{}", algorithm.name()));
    for case in cases {
        let params = ConvTranspose2dParams { algorithm, ..case.params };
        s.record(case, conv_transpose2d_outcome(ctx, case, &params), tol);
    }
    s
}

fn conv_transpose2d_outcome(
    ctx: &GpuContext,
    case: &ConvTranspose2dCase,
    params: &ConvTranspose2dParams,
) -> Result<crate::verify::ErrorStats> {
    let (x, w, b) = case.data();
    let (_, expected) = crate::reference::conv_transpose2d(&x, &w, b.as_ref(), params)?;
    let t = |h: &HostTensor| Tensor::from_host(ctx, h);
    let (xg, wg, bg) = (t(&x)?, t(&w)?, b.as_ref().map(t).transpose()?);
    let y = outputs(ctx, &[&expected], || {
        Ok(vec![crate::ops::conv_transpose2d::conv_transpose2d(ctx, &xg, &wg, bg.as_ref(), params)?])
    })?;
    Ok(compare(&y[0], &expected))
}

/// conv2d on f16 tensors (`Auto`: implicit GEMM or 1x1 GEMM) against the reference of the
/// f16-rounded inputs, at the f16 tolerance; `None` when the device lacks `SHADER_F16`.
pub fn run_conv2d_f16(ctx: &GpuContext, cases: &[Conv2dCase]) -> Option<OpSummary> {
    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        return None;
    }
    let tol = Tolerance { rel_l2: 1e-3, abs: 1e-3 };
    let f16 = crate::tensor::DType::F16;
    let mut s = OpSummary::new("conv2d/f16".into());
    for case in cases {
        let outcome = (|| -> Result<crate::verify::ErrorStats> {
            let (x, w, b) = case.data();
            let (x, w, b) = (x.rounded_to(f16), w.rounded_to(f16), b.map(|b| b.rounded_to(f16)));
            let (_, expected) = crate::reference::conv2d(&x, &w, b.as_ref(), &case.params)?;
            let t = |h: &HostTensor| Tensor::from_slice_as(ctx, &h.shape, &h.data, f16);
            let (xg, wg, bg) = (t(&x)?, t(&w)?, b.as_ref().map(t).transpose()?);
            let y = outputs(ctx, &[&expected], || {
                Ok(vec![crate::ops::conv2d::conv2d(ctx, &xg, &wg, bg.as_ref(), &case.params)?])
            })?;
            Ok(compare(&y[0], &expected))
        })();
        s.record(case, outcome, tol);
    }
    Some(s)
}

/// Runs conv2d backward (all three gradients) on the conv2d cases against the naive
/// reference loops; a case passes when every gradient does.
pub fn run_conv2d_backward(ctx: &GpuContext, cases: &[Conv2dCase], tol: Tolerance) -> OpSummary {
    let mut s = OpSummary::new("conv2d_backward".into());
    for case in cases {
        s.record(case, conv2d_backward_outcome(ctx, case, tol), tol);
    }
    s
}

/// The statistics of the gradient furthest from passing.
fn conv2d_backward_outcome(ctx: &GpuContext, case: &Conv2dCase, tol: Tolerance) -> Result<crate::verify::ErrorStats> {
    let (x, w, _) = case.data();
    let out_shape = case.params.output_shape(&x.shape, &w.shape)?;
    let dy = HostTensor::random(&out_shape, case.seed ^ 0xd1d1);
    let (rdx, rdw, rdb) = crate::reference::conv2d_backward(&x, &w, &dy, &case.params)?;
    let t = |h: &HostTensor| Tensor::from_host(ctx, h);
    let all = crate::ops::conv2d_backward::Grads::ALL;
    let (xg, wg, dyg) = (t(&x)?, t(&w)?, t(&dy)?);
    let got = outputs(ctx, &[&rdx, &rdw, &rdb], || {
        let g = crate::ops::conv2d_backward::conv2d_backward(ctx, &xg, &wg, &dyg, &case.params, all)?;
        let all = "all gradients were requested";
        Ok(vec![g.grad_input.expect(all), g.grad_weight.expect(all), g.grad_bias.expect(all)])
    })?;
    let score = |s: &crate::verify::ErrorStats| (s.rel_l2 / tol.rel_l2).max(s.max_abs / (tol.abs * (1.0 + s.max_ref)));
    let mut worst: Option<crate::verify::ErrorStats> = None;
    for (got, want) in got.iter().zip([rdx, rdw, rdb]) {
        let st = compare(got, &want);
        if worst.as_ref().is_none_or(|w| score(&st) > score(w)) {
            worst = Some(st);
        }
    }
    Ok(worst.expect("three gradients"))
}

/// A deform_conv2d case: a conv2d case plus offset groups, offset scale and v1/v2.
#[derive(Clone, Debug, PartialEq)]
pub struct DeformConv2dCase {
    pub conv: Conv2dCase,
    pub offset_groups: usize,
    /// Offsets are uniform in [−scale, scale] (scales up to 4 send samples out of the image).
    pub scale: f32,
    pub mask: bool,
}

impl DeformConv2dCase {
    pub fn params(&self) -> DeformConv2dParams {
        Conv2dParams { algorithm: Algorithm::Auto, ..self.conv.params }
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

/// Runs deform_conv2d cases on the GPU with `algorithm` against the reference.
pub fn run_deform_conv2d(
    ctx: &GpuContext,
    cases: &[DeformConv2dCase],
    algorithm: Algorithm,
    tol: Tolerance,
) -> OpSummary {
    let mut s = OpSummary::new(format!("deform_conv2d/{}", algorithm.name()));
    for case in cases {
        s.record(case, deform_conv2d_outcome(ctx, case, algorithm), tol);
    }
    s
}

fn deform_conv2d_outcome(
    ctx: &GpuContext,
    case: &DeformConv2dCase,
    algorithm: Algorithm,
) -> Result<crate::verify::ErrorStats> {
    let (x, w, o, m, b) = case.data();
    let p = DeformConv2dParams { algorithm, ..case.params() };
    let (_, expected) = crate::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &p)?;
    let t = |h: &HostTensor| Tensor::from_host(ctx, h);
    let (mg, bg) = (m.as_ref().map(t).transpose()?, b.as_ref().map(t).transpose()?);
    let (xg, wg, og) = (t(&x)?, t(&w)?, t(&o)?);
    let y = outputs(ctx, &[&expected], || {
        Ok(vec![crate::ops::deform_conv2d::deform_conv2d(ctx, &xg, &wg, &og, mg.as_ref(), bg.as_ref(), &p)?])
    })?;
    Ok(compare(&y[0], &expected))
}

/// conv1d on the conv2d cases' width axis (first row of input and kernel, the case's width
/// stride, dilation and padding), against the 1-D reference.
pub fn run_conv1d(ctx: &GpuContext, cases: &[Conv2dCase], tol: Tolerance) -> OpSummary {
    let mut s = OpSummary::new("conv1d".into());
    for case in cases {
        let p = &case.params;
        let padding = match p.padding {
            Padding::Valid => Padding1d::Valid,
            Padding::Same => Padding1d::Same,
            Padding::Symmetric([_, w]) => Padding1d::Symmetric(w),
            Padding::Explicit { left, right, .. } => Padding1d::Explicit { left, right },
        };
        let params = Conv1dParams {
            stride: p.stride[1],
            padding,
            dilation: p.dilation[1],
            groups: p.groups,
            activation: p.activation,
            algorithm: Algorithm::Auto,
        };
        let (x, w, b) = case.data();
        let x = HostTensor {
            shape: vec![case.input[0], case.input[1], case.input[3]],
            data: x.data[..case.input[0] * case.input[1] * case.input[3]].to_vec(),
        };
        let w = HostTensor {
            shape: vec![case.weight[0], case.weight[1], case.weight[3]],
            data: w.data[..case.weight[0] * case.weight[1] * case.weight[3]].to_vec(),
        };
        let outcome = (|| -> Result<crate::verify::ErrorStats> {
            let (_, expected) = crate::reference::conv1d(&x, &w, b.as_ref(), &params)?;
            let t = |h: &HostTensor| Tensor::from_host(ctx, h);
            let (xg, wg, bg) = (t(&x)?, t(&w)?, b.as_ref().map(t).transpose()?);
            let y = outputs(ctx, &[&expected], || {
                Ok(vec![crate::ops::conv1d::conv1d(ctx, &xg, &wg, bg.as_ref(), &params)?])
            })?;
            Ok(compare(&y[0], &expected))
        })();
        s.record(case, outcome, tol);
    }
    s
}

/// max and average pooling on random shapes, kernels, strides and legal paddings.
pub fn run_pool2d(ctx: &GpuContext, seed: u64, count: usize, tol: Tolerance) -> OpSummary {
    let mut s = OpSummary::new("pool2d".into());
    let mut rng = SplitMix64::new(seed ^ 0x9001);
    for i in 0..count {
        let kernel = [rng.range(1, 4), rng.range(1, 4)];
        let stride = if rng.range(0, 2) == 0 { None } else { Some([rng.range(1, 3), rng.range(1, 3)]) };
        let padding = [rng.range(0, kernel[0] / 2), rng.range(0, kernel[1] / 2)];
        let p = crate::params::Pool2dParams { kernel, stride, padding, count_include_pad: rng.range(0, 1) == 1 };
        let shape = [
            rng.range(1, 2) as usize,
            rng.range(1, 4) as usize,
            rng.range(kernel[0], 12) as usize,
            rng.range(kernel[1], 12) as usize,
        ];
        let mode = if i % 2 == 0 { crate::ops::pool2d::PoolMode::Max } else { crate::ops::pool2d::PoolMode::Avg };
        let x = HostTensor::random(&shape, rng.next_u64());
        let label = format!("{mode:?} pool x{shape:?} {p:?}");
        let outcome = (|| -> Result<crate::verify::ErrorStats> {
            let (_, expected) = crate::reference::pool2d(&x, &p, mode)?;
            let xg = Tensor::from_host(ctx, &x)?;
            let y = outputs(ctx, &[&expected], || Ok(vec![crate::ops::pool2d::pool2d(ctx, &xg, &p, mode)?]))?;
            Ok(compare(&y[0], &expected))
        })();
        s.record(&label, outcome, tol);
    }
    s
}

/// conv3d on random small volumes (kernels 1–3 per axis, strides and dilations 1–2,
/// symmetric or `same` padding, groups 1–2), against the 3-D reference.
pub fn run_conv3d(ctx: &GpuContext, seed: u64, count: usize, tol: Tolerance) -> OpSummary {
    use crate::params::{Conv3dParams, Padding3d};
    let mut s = OpSummary::new("conv3d".into());
    let mut rng = SplitMix64::new(seed ^ 0x3d3d);
    let mut done = 0;
    while done < count {
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
        let x = HostTensor::random(&[rng.range(1, 2) as usize, cin, size[0], size[1], size[2]], rng.next_u64());
        let w = HostTensor::random(
            &[cout, cin / groups as usize, k[0] as usize, k[1] as usize, k[2] as usize],
            rng.next_u64(),
        );
        if params.validate(&x.shape, &w.shape, None).is_err() {
            continue;
        }
        done += 1;
        let label = format!("conv3d x{:?} w{:?} {params:?}", x.shape, w.shape);
        let outcome = (|| -> Result<crate::verify::ErrorStats> {
            let (_, expected) = crate::reference::conv3d(&x, &w, None, &params)?;
            let t = |h: &HostTensor| Tensor::from_host(ctx, h);
            let (xg, wg) = (t(&x)?, t(&w)?);
            let y = outputs(ctx, &[&expected], || Ok(vec![crate::ops::conv3d::conv3d(ctx, &xg, &wg, None, &params)?]))?;
            Ok(compare(&y[0], &expected))
        })();
        s.record(&label, outcome, tol);
    }
    s
}

/// The depthwise-separable block (two passes and fused) on random shapes against the two
/// conv2d references composed (the intermediate rounded to f32, as the GPU stores it).
pub fn run_separable(ctx: &GpuContext, seed: u64, count: usize, fused: bool, tol: Tolerance) -> OpSummary {
    use crate::ops::separable_conv2d::{separable_conv2d, SeparableParams};
    use crate::params::Activation;
    let mut s = OpSummary::new(format!("separable_conv2d/{}", if fused { "fused" } else { "two_pass" }));
    let mut rng = SplitMix64::new(seed ^ 0x5e9a);
    for _ in 0..count {
        let (c, mult, cout) = (rng.range(1, 6) as usize, rng.range(1, 2) as usize, rng.range(1, 70) as usize);
        let k = [rng.range(1, 3), rng.range(1, 3)];
        let stride = [rng.range(1, 2), rng.range(1, 2)];
        let padding =
            Padding::Symmetric([rng.range(0, k[0] / 2 + 1).min(k[0] - 1), rng.range(0, k[1] / 2 + 1).min(k[1] - 1)]);
        let acts = [Activation::None, Activation::Relu, Activation::Relu6];
        let p = SeparableParams {
            stride,
            padding,
            depthwise_activation: acts[rng.range(0, 2) as usize],
            pointwise_activation: acts[rng.range(0, 2) as usize],
            fused,
            ..Default::default()
        };
        let x = HostTensor::random(
            &[rng.range(1, 2) as usize, c, (k[0] + rng.range(0, 6)) as usize, (k[1] + rng.range(0, 6)) as usize],
            rng.next_u64(),
        );
        let dw = HostTensor::random(&[c * mult, 1, k[0] as usize, k[1] as usize], rng.next_u64());
        let pw = HostTensor::random(&[cout, c * mult, 1, 1], rng.next_u64());
        let (db, pb) = (HostTensor::random(&[c * mult], rng.next_u64()), HostTensor::random(&[cout], rng.next_u64()));
        let label = format!("separable x{:?} dw{:?} pw{:?} {p:?}", x.shape, dw.shape, pw.shape);
        let outcome = (|| -> Result<crate::verify::ErrorStats> {
            let dwp = Conv2dParams {
                stride,
                padding,
                groups: c as u32,
                activation: p.depthwise_activation,
                ..Default::default()
            };
            let (ms, m) = crate::reference::conv2d(&x, &dw, Some(&db), &dwp)?;
            let m = HostTensor::new(&ms, m.iter().map(|&v| v as f32).collect())?;
            let pwp = Conv2dParams { activation: p.pointwise_activation, ..Default::default() };
            let (_, expected) = crate::reference::conv2d(&m, &pw, Some(&pb), &pwp)?;
            let t = |h: &HostTensor| Tensor::from_host(ctx, h);
            let (xg, dwg, dbg, pwg, pbg) = (t(&x)?, t(&dw)?, t(&db)?, t(&pw)?, t(&pb)?);
            let y = outputs(ctx, &[&expected], || {
                Ok(vec![separable_conv2d(ctx, &xg, &dwg, Some(&dbg), &pwg, Some(&pbg), &p)?])
            })?;
            Ok(compare(&y[0], &expected))
        })();
        s.record(&label, outcome, tol);
    }
    s
}

/// The static part: shader × override set × target.
#[derive(Clone, Debug, Serialize)]
pub struct StaticSummary {
    pub checked: usize,
    pub failures: Vec<String>,
}

pub fn run_static() -> StaticSummary {
    let mut checked = 0;
    let mut failures = Vec::new();
    for &id in ShaderId::ALL {
        checked += id.override_sets().len() * id.targets().len();
        failures.extend(check_shader(id).into_iter().map(|e| e.to_string()));
    }
    StaticSummary { checked, failures }
}

/// One adapter's conformance run.
#[derive(Clone, Debug, Serialize)]
pub struct ConformanceReport {
    pub adapter: String,
    pub backend: String,
    /// The driver and its version as the adapter reports them (e.g. "llvmpipe Mesa 22.3.6
    /// (LLVM 15.0.6)"), so that reports from different machines can be compared.
    pub driver: String,
    pub ops: Vec<OpSummary>,
    pub static_check: Option<StaticSummary>,
}

impl ConformanceReport {
    pub fn ok(&self) -> bool {
        self.ops.iter().all(OpSummary::ok) && self.static_check.as_ref().is_none_or(|s| s.failures.is_empty())
    }

    pub fn table(&self) -> String {
        let mut s = format!("adapter: {} ({}, driver: {})\n", self.adapter, self.backend, self.driver);
        s += &format!("{:<32} {:>6} {:>7} {:>14} {:>14}\n", "op", "cases", "passed", "worst rel-L2", "worst max-abs");
        for o in &self.ops {
            s += &format!(
                "{:<32} {:>6} {:>7} {:>14.3e} {:>14.3e}\n",
                o.op, o.cases, o.passed, o.worst_rel_l2, o.worst_max_abs
            );
        }
        if let Some(st) = &self.static_check {
            s += &format!(
                "{:<32} {:>6} {:>7}   (naga: WGSL → SPIR-V, MSL, HLSL, GLSL)\n",
                "shaders (static)",
                st.checked,
                st.checked - st.failures.len()
            );
        }
        for o in &self.ops {
            for f in &o.failures {
                s += &format!("FAIL {f}\n");
            }
        }
        if let Some(st) = &self.static_check {
            for f in &st.failures {
                s += &format!("FAIL {f}\n");
            }
        }
        s += if self.ok() { "result: PASS\n" } else { "result: FAIL\n" };
        s
    }
}

/// Runs every op's cases, the probes at `probes` scale ([`crate::probes`]; none for `None`)
/// and optionally the static check on `ctx`.
pub fn run_all(
    ctx: &GpuContext,
    seed: u64,
    cases_per_op: usize,
    with_static: bool,
    probes: Option<crate::probes::ProbeScale>,
) -> ConformanceReport {
    let info = ctx.adapter_info();
    let cases = conv2d_cases(seed, cases_per_op);
    let mut ops: Vec<OpSummary> = std::iter::once(Algorithm::Auto)
        .chain(Algorithm::ALL)
        .map(|a| run_conv2d(ctx, &cases, a, Tolerance::default(), reference_conv2d))
        .collect();
    let transposed = conv_transpose2d_cases(seed, cases_per_op);
    for algo in Algorithm::TRANSPOSED {
        ops.push(run_conv_transpose2d(ctx, &transposed, algo, Tolerance::default()));
    }
    ops.extend(run_conv2d_f16(ctx, &cases));
    ops.push(run_conv2d_backward(ctx, &cases, Tolerance::default()));
    ops.push(run_conv1d(ctx, &cases, Tolerance::default()));
    ops.push(run_pool2d(ctx, seed, cases_per_op, Tolerance::default()));
    ops.push(run_conv3d(ctx, seed, cases_per_op, Tolerance::default()));
    for fused in [false, true] {
        ops.push(run_separable(ctx, seed, cases_per_op, fused, Tolerance::default()));
    }
    let deform = deform_conv2d_cases(seed, cases_per_op);
    for algo in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        ops.push(run_deform_conv2d(ctx, &deform, algo, Tolerance::default()));
    }
    if let Some(scale) = probes {
        ops.extend(crate::probes::run_probes(ctx, scale));
    }
    ConformanceReport {
        adapter: info.name.clone(),
        backend: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        ops,
        static_check: with_static.then(run_static),
    }
}

/// Runs the cases of [`run_all`] and the probes at `probes` scale (no static check) and
/// writes each call as a replay into `dir` ([`crate::replay`]). Returns the report of the run
/// on `ctx` and the number of replay cases written.
pub fn export_all(
    ctx: &GpuContext,
    seed: u64,
    cases_per_op: usize,
    probes: Option<crate::probes::ProbeScale>,
    dir: &std::path::Path,
) -> Result<(ConformanceReport, usize)> {
    let writer = ReplayWriter::new(ctx, dir)?;
    EXPORT.with(|e| *e.borrow_mut() = Some(Export { writer, pending: None }));
    let report = run_all(ctx, seed, cases_per_op, false, probes);
    let writer = EXPORT.with(|e| e.borrow_mut().take()).expect("set above").writer;
    let written = writer.len();
    writer.finish()?;
    Ok((report, written))
}

/// Smaller variants of a case, each one step simpler (used to shrink a failure).
fn simpler(c: &Conv2dCase) -> Vec<Conv2dCase> {
    let mut out = Vec::new();
    let g = c.params.groups as usize;
    let (cig, cog) = (c.input[1] / g, c.weight[0] / g);
    let mut push = |f: &dyn Fn(&mut Conv2dCase)| {
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
    push(&|d| d.params.stride = [1, 1]);
    push(&|d| d.params.dilation = [1, 1]);
    push(&|d| d.params.padding = Padding::Valid);
    push(&|d| {
        // one group, keeping the per-group channel counts
        d.params.groups = 1;
        d.input[1] = cig;
        d.weight[0] = cog;
    });
    if cig > 1 {
        push(&|d| {
            d.input[1] = g * (cig - 1);
            d.weight[1] = cig - 1;
        });
    }
    if cog > 1 {
        push(&|d| d.weight[0] = g * (cog - 1));
    }
    out.retain(|d| d.params.validate(&d.input, &d.weight, None).is_ok());
    out
}

/// Greedily shrinks a failing case: takes any one-step-simpler variant (from `simpler`)
/// that still fails, until none does. Returns the minimal case found.
pub fn shrink<C: Clone>(case: &C, simpler: impl Fn(&C) -> Vec<C>, fails: impl Fn(&C) -> bool) -> C {
    let mut cur = case.clone();
    'outer: for _ in 0..200 {
        for cand in simpler(&cur) {
            if fails(&cand) {
                cur = cand;
                continue 'outer;
            }
        }
        break;
    }
    cur
}

/// [`shrink`] for conv2d cases (also the cases of conv2d_backward).
pub fn shrink_conv2d(case: &Conv2dCase, fails: impl Fn(&Conv2dCase) -> bool) -> Conv2dCase {
    shrink(case, simpler, fails)
}

/// [`shrink`] for deform_conv2d cases: the conv part shrinks as a conv2d case (offset groups
/// fall back to 1 when they stop dividing Cin), then one offset group, no mask, small offsets.
pub fn shrink_deform_conv2d(case: &DeformConv2dCase, fails: impl Fn(&DeformConv2dCase) -> bool) -> DeformConv2dCase {
    let simpler_deform = |c: &DeformConv2dCase| -> Vec<DeformConv2dCase> {
        let mut out: Vec<DeformConv2dCase> = simpler(&c.conv)
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
    };
    shrink(case, simpler_deform, fails)
}

/// [`shrink`] for conv_transpose2d cases.
pub fn shrink_conv_transpose2d(
    case: &ConvTranspose2dCase,
    fails: impl Fn(&ConvTranspose2dCase) -> bool,
) -> ConvTranspose2dCase {
    let simpler_t = |c: &ConvTranspose2dCase| -> Vec<ConvTranspose2dCase> {
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
    };
    shrink(case, simpler_t, fails)
}

/// Checks one conv_transpose2d case: `None` if it matches the reference, else why not.
pub fn check_conv_transpose2d(ctx: &GpuContext, case: &ConvTranspose2dCase, tol: Tolerance) -> Option<String> {
    let mut s = OpSummary::new(String::new());
    s.record(case, conv_transpose2d_outcome(ctx, case, &case.params), tol);
    s.failures.pop()
}

/// Checks one deform_conv2d case with `algorithm`.
pub fn check_deform_conv2d(
    ctx: &GpuContext,
    case: &DeformConv2dCase,
    algorithm: Algorithm,
    tol: Tolerance,
) -> Option<String> {
    let mut s = OpSummary::new(String::new());
    s.record(case, deform_conv2d_outcome(ctx, case, algorithm), tol);
    s.failures.pop()
}

/// Checks one conv2d_backward case (all three gradients).
pub fn check_conv2d_backward(ctx: &GpuContext, case: &Conv2dCase, tol: Tolerance) -> Option<String> {
    let mut s = OpSummary::new(String::new());
    s.record(case, conv2d_backward_outcome(ctx, case, tol), tol);
    s.failures.pop()
}
