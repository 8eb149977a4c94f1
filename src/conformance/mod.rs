//! The conformance runner behind `wgconv conformance` and the tests: seeded random cases
//! over each op's parameter space, each compared with the f64 CPU reference, plus the static
//! check of every shader × override set × translation target.

#[cfg(feature = "cli")]
use std::cell::RefCell;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::params::{
    Activation, Algorithm, Conv1dParams, Conv2dParams, ConvTranspose1dParams, ConvTranspose2dParams,
    DeformConv2dParams, Padding, Padding1d,
};
#[cfg(feature = "cli")]
use crate::replay::ReplayWriter;
use crate::tensor::{DType, HostTensor, Layout, Tensor};
use crate::verify::{compare, SplitMix64, Tolerance};

mod conv1d;
mod conv1d_backward;
mod conv2d;
mod conv2d_backward;
mod conv3d;
mod conv_transpose1d;
mod conv_transpose2d;
mod conv_transpose2d_backward;
mod conv_transpose3d;
mod deform_conv2d;
mod deform_conv2d_backward;
mod pool2d;
mod separable_conv2d;
mod special;

pub use conv1d::*;
pub use conv1d_backward::*;
pub use conv2d::*;
pub use conv2d_backward::*;
pub use conv3d::*;
pub use conv_transpose1d::*;
pub use conv_transpose2d::*;
pub use conv_transpose2d_backward::*;
pub use conv_transpose3d::*;
pub use deform_conv2d::*;
pub use deform_conv2d_backward::*;
pub use pool2d::*;
pub use separable_conv2d::*;
pub use special::*;

/// A replay export under way on this thread ([`export_all`]): the writer, and the call that
/// [`outputs`] traced last, written by [`OpSummary::record`] (which knows the op and the case).
#[cfg(feature = "cli")]
struct Export {
    writer: ReplayWriter,
    pending: Option<(crate::kernels::trace::Trace, Vec<Tensor>, Vec<Vec<f64>>)>,
}

#[cfg(feature = "cli")]
thread_local! {
    static EXPORT: RefCell<Option<Export>> = const { RefCell::new(None) };
}

/// Runs `call` (one op call that returns its output tensors) and reads the outputs back,
/// awaiting the readbacks (on the web nothing blocks). While [`export_all`] runs, the call is
/// traced and kept, with `expected` (one slice per output), for the next
/// [`OpSummary::record`] to write as a replay case.
pub(crate) async fn outputs_async(
    ctx: &GpuContext,
    expected: &[&[f64]],
    call: impl FnOnce() -> Result<Vec<Tensor>>,
) -> Result<Vec<Vec<f32>>> {
    #[cfg(feature = "cli")]
    let tensors = {
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
        tensors
    };
    #[cfg(not(feature = "cli"))]
    let tensors = {
        let _ = expected;
        call()?
    };
    let mut values = Vec::with_capacity(tensors.len());
    for t in &tensors {
        values.push(t.to_vec_async(ctx).await?);
    }
    Ok(values)
}

/// Writes the call [`outputs`] kept, if any, as a replay case of `op`.
#[cfg(feature = "cli")]
fn write_pending(op: &str, case: &dyn std::fmt::Display, tol: Tolerance) -> Result<()> {
    EXPORT.with(|e| {
        let mut slot = e.borrow_mut();
        let Some(export) = slot.as_mut() else { return Ok(()) };
        let Some((trace, tensors, expected)) = export.pending.take() else { return Ok(()) };
        let outs: Vec<(&Tensor, &[f64])> = tensors.iter().zip(expected.iter().map(Vec::as_slice)).collect();
        export.writer.write_case(op, &case.to_string(), &trace, &outs, tol)
    })
}

/// Without the tool there is no replay export, so nothing is pending.
#[cfg(not(feature = "cli"))]
fn write_pending(_op: &str, _case: &dyn std::fmt::Display, _tol: Tolerance) -> Result<()> {
    Ok(())
}

/// One op's test case: seeded inputs, the f64 reference, the GPU call and simpler variants.
/// The conformance runner, the replay export, the shrinker and the property tests all take
/// an op through this, so an op is described once: its case type (with its generator), one
/// `impl OpCase`, and its line in [`run_all`].
pub trait OpCase: Clone + std::fmt::Display {
    /// The inputs, seeded, in the op's argument order.
    fn inputs(&self) -> Result<Vec<HostTensor>>;
    /// The f64 reference of each output for `inputs`.
    fn expected(&self, inputs: &[HostTensor]) -> Result<Vec<Vec<f64>>>;
    /// The shapes of the outputs for inputs of these shapes (same order).
    fn output_shapes(&self, inputs: &[&[usize]]) -> Result<Vec<Vec<usize>>>;
    /// Records the op's `_into` call on `inputs` (uploaded, same order) into `encoder`,
    /// writing `outputs` (of [`output_shapes`](Self::output_shapes)): what [`run`](Self::run)
    /// submits and what `wgconv bench` times. Returns what ran.
    fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        inputs: &[Tensor],
        outputs: &[Tensor],
    ) -> Result<Ran>;
    /// The GPU call on `inputs` uploaded (same order), submitted; its output tensors (stored
    /// as the first input is).
    fn run(&self, ctx: &GpuContext, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let shapes: Vec<&[usize]> = inputs.iter().map(Tensor::shape).collect();
        let dtype = inputs.first().map_or(DType::F32, Tensor::dtype);
        let outputs =
            self.output_shapes(&shapes)?.iter().map(|s| Tensor::empty_as(ctx, s, dtype)).collect::<Result<Vec<_>>>()?;
        let mut encoder = ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("case") });
        self.record(ctx, &mut encoder, inputs, &outputs)?;
        ctx.submit(encoder)?;
        Ok(outputs)
    }
    /// 2 × the multiply-adds of one call on inputs of these shapes (the bench's GFLOP/s; each
    /// gradient of a backward pass counts as a forward pass).
    fn flops(&self, inputs: &[&[usize]]) -> Result<f64>;
    /// Element `i` of the first output from the f64 reference alone, where the op has a
    /// pointwise reference (the bench's spot checks of large cases); `None`: the bench
    /// computes [`expected`](Self::expected) whole.
    fn expected_at(&self, _inputs: &[HostTensor], _i: usize) -> Option<Result<f64>> {
        None
    }
    /// Whether the case's forced algorithm takes it at all (the runner leaves out the cases
    /// it does not).
    fn applies(&self) -> bool {
        true
    }
    /// Variants one step simpler, each valid ([`shrink_case`]).
    fn simpler(&self) -> Vec<Self> {
        Vec::new()
    }
}

/// What one recorded call ran: the algorithm (and how it split a tensor beyond one binding),
/// and the workspace it used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ran {
    /// The algorithm's name (`implicit_gemm`, ...), with how the call was split where it was
    /// (`implicit_gemm, 2 batch pieces`).
    pub label: String,
    /// Workspace bytes the call used (one chunk's, where the work is chunked; 0 for none).
    pub workspace_bytes: u64,
}

impl Ran {
    fn named(label: impl Into<String>) -> Self {
        Ran { label: label.into(), workspace_bytes: 0 }
    }
}

/// How far `s` is from failing `tol` (above 1: it fails).
fn score(s: &crate::verify::ErrorStats, tol: Tolerance) -> f64 {
    (s.rel_l2 / tol.rel_l2).max(s.max_abs / (tol.abs * (1.0 + s.max_ref)))
}

/// Runs one case with its tensors stored as `dtype` (f16: the inputs rounded to f16 first,
/// the reference computed from the rounded values) and returns the statistics of the output
/// furthest from passing `tol`. Blocks (native only: the web awaits [`outcome_async`]).
#[cfg(not(target_arch = "wasm32"))]
pub fn outcome<C: OpCase>(
    ctx: &GpuContext,
    case: &C,
    dtype: DType,
    tol: Tolerance,
) -> Result<crate::verify::ErrorStats> {
    pollster::block_on(outcome_async(ctx, case, dtype, tol))
}

/// [`outcome`] as a future.
pub async fn outcome_async<C: OpCase>(
    ctx: &GpuContext,
    case: &C,
    dtype: DType,
    tol: Tolerance,
) -> Result<crate::verify::ErrorStats> {
    let inputs: Vec<HostTensor> =
        case.inputs()?.into_iter().map(|h| if dtype == DType::F32 { h } else { h.rounded_to(dtype) }).collect();
    let expected = case.expected(&inputs)?;
    let uploaded: Vec<Tensor> =
        inputs.iter().map(|h| Tensor::from_slice_as(ctx, &h.shape, &h.data, dtype)).collect::<Result<_>>()?;
    let refs: Vec<&[f64]> = expected.iter().map(Vec::as_slice).collect();
    let got = outputs_async(ctx, &refs, || case.run(ctx, &uploaded)).await?;
    let mut worst: Option<crate::verify::ErrorStats> = None;
    for (got, want) in got.iter().zip(&expected) {
        let st = compare(got, want);
        if worst.as_ref().is_none_or(|w| score(&st, tol) > score(w, tol)) {
            worst = Some(st);
        }
    }
    worst.ok_or_else(|| Error::Internal("a conformance case without outputs".into()))
}

/// Runs the cases that apply, stored as `dtype`, each against its reference at `tol`
/// (blocking; native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_op<C: OpCase>(
    ctx: &GpuContext,
    op: impl Into<String>,
    cases: &[C],
    dtype: DType,
    tol: Tolerance,
) -> OpSummary {
    pollster::block_on(run_op_async(ctx, op, cases, dtype, tol))
}

/// [`run_op`] as a future.
pub async fn run_op_async<C: OpCase>(
    ctx: &GpuContext,
    op: impl Into<String>,
    cases: &[C],
    dtype: DType,
    tol: Tolerance,
) -> OpSummary {
    let mut s = OpSummary::new(op.into());
    for case in cases.iter().filter(|c| c.applies()) {
        let outcome = outcome_async(ctx, case, dtype, tol).await;
        s.record(case, outcome, tol);
    }
    s
}

/// One f32 case: `None` if it matches its reference at `tol` (or does not apply), else why
/// not (blocking; native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn check<C: OpCase>(ctx: &GpuContext, case: &C, tol: Tolerance) -> Option<String> {
    if !case.applies() {
        return None;
    }
    let mut s = OpSummary::new(String::new());
    s.record(case, outcome(ctx, case, DType::F32, tol), tol);
    s.failures.pop()
}

/// Greedily shrinks a failing case through [`OpCase::simpler`] ([`shrink`]).
pub fn shrink_case<C: OpCase>(case: &C, fails: impl Fn(&C) -> bool) -> C {
    shrink(case, C::simpler, fails)
}

/// Results of one op over its cases.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct OpSummary {
    /// The op and variant run (`conv2d/implicit_gemm`, `conv2d_backward`, ...).
    pub op: String,
    /// Cases counted.
    pub cases: usize,
    /// Cases within the tolerance.
    pub passed: usize,
    /// Largest relative L2 error over the cases that returned an output (failing ones too).
    pub worst_rel_l2: f64,
    /// Largest absolute error over the same cases.
    pub worst_max_abs: f64,
    /// One line per failing case (first 20).
    pub failures: Vec<String>,
}

impl OpSummary {
    /// An empty summary for the op named `op`.
    pub fn new(op: String) -> Self {
        OpSummary { op, cases: 0, passed: 0, worst_rel_l2: 0.0, worst_max_abs: 0.0, failures: Vec::new() }
    }

    /// True when every case counted passed (also when there were none).
    pub fn ok(&self) -> bool {
        self.passed == self.cases
    }

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

/// The static part: shader × override set × target.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct StaticSummary {
    /// Translations checked: shader × override set × target.
    pub checked: usize,
    /// One message per error found.
    pub failures: Vec<String>,
}

/// Checks every shader with every override set the engine uses by translating it with naga to
/// each of its targets (SPIR-V, MSL, HLSL, GLSL; no GLSL for f16 kernels); needs no device.
#[cfg(feature = "shader-check")]
pub fn run_static() -> StaticSummary {
    let (checked, failures) = crate::shaders::check_all_shaders();
    StaticSummary { checked, failures: failures.into_iter().map(|e| e.to_string()).collect() }
}

/// One adapter's conformance run.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct ConformanceReport {
    /// The adapter's name.
    pub adapter: String,
    /// The wgpu backend (`Vulkan`, `Metal`, ...).
    pub backend: String,
    /// The driver and its version as the adapter reports them (e.g. "llvmpipe Mesa 22.3.6
    /// (LLVM 15.0.6)"), so that reports from different machines can be compared.
    pub driver: String,
    /// One summary per op variant (and per probe), in run order.
    pub ops: Vec<OpSummary>,
    /// The static shader check, when it ran.
    pub static_check: Option<StaticSummary>,
}

impl ConformanceReport {
    /// Every case and static check passed, and at least one case ran (a run of nothing
    /// proves nothing).
    pub fn ok(&self) -> bool {
        self.ops.iter().all(OpSummary::ok)
            && self.ops.iter().any(|o| o.cases > 0)
            && self.static_check.as_ref().is_none_or(|s| s.failures.is_empty())
    }

    /// The terminal table: one line per op (and the static check), each failure, then
    /// `result: PASS` or `result: FAIL`.
    pub fn table(&self) -> String {
        let mut s = format!("adapter: {} ({}, driver: {})\n", self.adapter, self.backend, self.driver);
        // the op column as wide as its longest name
        let w = self.ops.iter().map(|o| o.op.chars().count()).max().unwrap_or(0).max(32);
        s += &format!("{:<w$} {:>6} {:>7} {:>14} {:>14}\n", "op", "cases", "passed", "worst rel-L2", "worst max-abs");
        for o in &self.ops {
            s += &format!(
                "{:<w$} {:>6} {:>7} {:>14.3e} {:>14.3e}\n",
                o.op, o.cases, o.passed, o.worst_rel_l2, o.worst_max_abs
            );
        }
        if let Some(st) = &self.static_check {
            s += &format!(
                "{:<w$} {:>6} {:>7}   (naga: WGSL → SPIR-V, MSL, HLSL, GLSL)\n",
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
#[cfg(feature = "cli")]
pub fn run_all(
    ctx: &GpuContext,
    seed: u64,
    cases_per_op: usize,
    with_static: bool,
    probes: Option<crate::probes::ProbeScale>,
) -> ConformanceReport {
    let mut report = pollster::block_on(run_cases_async(ctx, seed, cases_per_op, probes));
    report.static_check = with_static.then(run_static);
    report
}

/// Every op's seeded cases (`cases_per_op` each, every algorithm; f16 where the device has
/// it) against the f64 reference, then the probes at `probes` scale: [`run_all`] without
/// the static check, and what the library runs in a browser, where nothing may block.
pub async fn run_cases_async(
    ctx: &GpuContext,
    seed: u64,
    cases_per_op: usize,
    probes: Option<crate::probes::ProbeScale>,
) -> ConformanceReport {
    let info = ctx.adapter_info();
    let (f32, tol, n) = (DType::F32, Tolerance::default(), cases_per_op);
    let cases = conv2d_cases(seed, n);
    let mut ops: Vec<OpSummary> = Vec::new();
    for a in std::iter::once(Algorithm::Auto).chain(Algorithm::ALL) {
        ops.push(run_op_async(ctx, format!("conv2d/{}", a.name()), &conv2d::with_algorithm(&cases, a), f32, tol).await);
    }
    ops.push(run_op_async(ctx, "conv2d/padding_mode", &with_padding_modes(&cases), f32, tol).await);
    ops.push(run_op_async(ctx, "conv2d/channels_last", &with_channels_last(&cases), f32, tol).await);
    let transposed = conv_transpose2d_cases(seed, n);
    for a in Algorithm::TRANSPOSED {
        let forced: Vec<_> = transposed
            .iter()
            .map(|c| ConvTranspose2dCase { params: ConvTranspose2dParams { algorithm: a, ..c.params }, ..c.clone() })
            .collect();
        ops.push(run_op_async(ctx, format!("conv_transpose2d/{}", a.name()), &forced, f32, tol).await);
    }
    let winograd = winograd_transposed(&transposed);
    ops.push(run_op_async(ctx, "conv_transpose2d/winograd", &winograd, f32, tol).await);
    // each layout mix, both algorithms in turn
    let alternating: Vec<_> = transposed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let algorithm = Algorithm::TRANSPOSED[(i / 3) % 2];
            ConvTranspose2dCase { params: ConvTranspose2dParams { algorithm, ..c.params }, ..c.clone() }
        })
        .collect();
    ops.push(run_op_async(ctx, "conv_transpose2d/channels_last", &with_layouts(&alternating), f32, tol).await);
    let transposed_backward: Vec<_> = transposed
        .iter()
        .cloned()
        .map(|c| ConvTranspose2dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "conv_transpose2d_backward", &transposed_backward, f32, tol).await);
    let transposed_1d = conv_transpose1d_cases(seed, n);
    ops.push(run_op_async(ctx, "conv_transpose1d", &transposed_1d, f32, tol).await);
    let transposed_1d_backward: Vec<_> = transposed_1d
        .into_iter()
        .map(|c| ConvTranspose1dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "conv_transpose1d_backward", &transposed_1d_backward, f32, tol).await);
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        // Auto (implicit GEMM or 1x1 GEMM) on the f16-rounded inputs, at the f16 tolerance.
        ops.push(run_op_async(ctx, "conv2d/f16", &cases, DType::F16, Tolerance { rel_l2: 1e-3, abs: 1e-3 }).await);
        // channels-last with the algorithms that have f16 kernels (the others left out)
        let f16_cl: Vec<_> = with_channels_last(&cases)
            .into_iter()
            .filter(|c| {
                matches!(
                    c.case.params.algorithm,
                    Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::Gemm1x1 | Algorithm::Depthwise
                )
            })
            .collect();
        let f16_tol = Tolerance { rel_l2: 1e-3, abs: 1e-3 };
        ops.push(run_op_async(ctx, "conv2d/channels_last/f16", &f16_cl, DType::F16, f16_tol).await);
        // conv_transpose2d's f16 kernels: implicit_gemm (what Auto runs)
        let transposed_cl = with_layouts(&conv_transpose2d_cases(seed, n));
        ops.push(run_op_async(ctx, "conv_transpose2d/channels_last/f16", &transposed_cl, DType::F16, f16_tol).await);
    }
    let backward: Vec<_> =
        cases.iter().cloned().map(|c| Conv2dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL)).collect();
    ops.push(run_op_async(ctx, "conv2d_backward", &backward, f32, tol).await);
    let backward_modes: Vec<_> = with_padding_modes(&cases)
        .into_iter()
        .map(|c| Conv2dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "conv2d_backward/padding_mode", &backward_modes, f32, tol).await);
    let conv1d: Vec<_> = cases.iter().cloned().map(Conv1dCase).collect();
    ops.push(run_op_async(ctx, "conv1d", &conv1d, f32, tol).await);
    let conv1d_modes: Vec<_> =
        with_padding_modes(&cases).into_iter().map(Conv1dCase).filter(Conv1dCase::pads_by_mode).collect();
    ops.push(run_op_async(ctx, "conv1d/padding_mode", &conv1d_modes, f32, tol).await);
    let conv1d_backward: Vec<_> =
        conv1d.iter().cloned().map(|c| Conv1dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL)).collect();
    ops.push(run_op_async(ctx, "conv1d_backward", &conv1d_backward, f32, tol).await);
    ops.push(run_op_async(ctx, "pool2d", &pool2d_cases(seed, n), f32, tol).await);
    let pool_backward: Vec<_> = pool2d_cases(seed, n).into_iter().map(Pool2dBackwardCase).collect();
    ops.push(run_op_async(ctx, "pool2d_backward", &pool_backward, f32, tol).await);
    ops.push(run_op_async(ctx, "conv3d", &conv3d_cases(seed, n), f32, tol).await);
    let conv3d_modes = conv3d_padding_mode_cases(seed, n);
    ops.push(run_op_async(ctx, "conv3d/padding_mode", &conv3d_modes, f32, tol).await);
    let conv3d_backward_modes: Vec<_> =
        conv3d_modes.into_iter().map(|c| Conv3dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL)).collect();
    ops.push(run_op_async(ctx, "conv3d_backward/padding_mode", &conv3d_backward_modes, f32, tol).await);
    let conv3d_backward: Vec<_> = conv3d_cases(seed, n)
        .into_iter()
        .map(|c| Conv3dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "conv3d_backward", &conv3d_backward, f32, tol).await);
    let transposed_3d = conv_transpose3d_cases(seed, n);
    ops.push(run_op_async(ctx, "conv_transpose3d", &transposed_3d, f32, tol).await);
    let transposed_3d_backward: Vec<_> = transposed_3d
        .into_iter()
        .map(|c| ConvTranspose3dBackwardCase(c, crate::ops::conv2d_backward::Grads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "conv_transpose3d_backward", &transposed_3d_backward, f32, tol).await);
    for fused in [false, true] {
        let name = format!("separable_conv2d/{}", if fused { "fused" } else { "two_pass" });
        ops.push(run_op_async(ctx, name, &separable_cases(seed, n, fused), f32, tol).await);
    }
    let deform = deform_conv2d_cases(seed, n);
    for a in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        let forced: Vec<_> = deform.iter().map(|c| c.with_algorithm(a)).collect();
        ops.push(run_op_async(ctx, format!("deform_conv2d/{}", a.name()), &forced, f32, tol).await);
    }
    let deform_backward: Vec<_> = deform
        .iter()
        .cloned()
        .map(|c| DeformConv2dBackwardCase(c, crate::ops::deform_conv2d_backward::DeformGrads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "deform_conv2d_backward", &deform_backward, f32, tol).await);
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        // the ops whose kernels are f32 only, on f16 storage through f32 copies (ops::widen)
        ops.extend(f16_through_f32_copies_async(ctx, seed, n.div_ceil(4)).await);
    }
    if let Some(scale) = probes {
        ops.extend(crate::probes::run_probes_async(ctx, scale).await);
    }
    ConformanceReport {
        adapter: info.name.clone(),
        backend: format!("{:?}", info.backend),
        driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        ops,
        static_check: None,
    }
}

/// Winograd on the conv2d a stride-1 3x3 transposed conv equals (the weight read flipped):
/// `transposed` made so (3x3, stride and dilation 1, padding at most 2, no output_padding),
/// those that are then valid.
fn winograd_transposed(transposed: &[ConvTranspose2dCase]) -> Vec<ConvTranspose2dCase> {
    transposed
        .iter()
        .map(|c| {
            let pad = c.params.padding.resolve([3, 3], [1, 1]);
            let padding = Padding::Explicit {
                top: pad.top.min(2),
                left: pad.left.min(2),
                bottom: pad.bottom.min(2),
                right: pad.right.min(2),
            };
            let params = ConvTranspose2dParams {
                stride: [1, 1],
                dilation: [1, 1],
                output_padding: [0, 0],
                padding,
                algorithm: Algorithm::Winograd,
                ..c.params
            };
            ConvTranspose2dCase { weight: [c.weight[0], c.weight[1], 3, 3], params, ..c.clone() }
        })
        .filter(|c| c.params.validate(&c.input, &c.weight, None).is_ok())
        .collect()
}

/// Every op's and algorithm's seeded cases (`cases_per_op` each, f32) with NaN and ±∞ planted
/// in their inputs, weights and grad_outputs ([`SpecialCase`]): the generator's geometry
/// (padding, strides, dilation, groups, cropped borders, output_padding) met by special values,
/// each output matched with the reference in kind and value.
pub async fn special_cases_async(ctx: &GpuContext, seed: u64, cases_per_op: usize) -> Vec<OpSummary> {
    use crate::ops::conv2d_backward::Grads;
    let (f32, tol, n) = (DType::F32, Tolerance::default(), cases_per_op);
    let mut ops = Vec::new();
    let cases = conv2d_cases(seed, n);
    for a in Algorithm::ALL {
        let v = SpecialCase::convs(conv2d::with_algorithm(&cases, a), seed, None);
        ops.push(run_op_async(ctx, format!("special/conv2d/{}", a.name()), &v, f32, tol).await);
    }
    let v = SpecialCase::convs(with_padding_modes(&cases), seed, None);
    ops.push(run_op_async(ctx, "special/conv2d/padding_mode", &v, f32, tol).await);
    let v = SpecialCase::convs(cases.iter().cloned().map(|c| Conv2dBackwardCase(c, Grads::ALL)), seed, Some(2));
    ops.push(run_op_async(ctx, "special/conv2d_backward", &v, f32, tol).await);
    let transposed = conv_transpose2d_cases(seed, n);
    for a in Algorithm::TRANSPOSED {
        let forced = transposed
            .iter()
            .map(|c| ConvTranspose2dCase { params: ConvTranspose2dParams { algorithm: a, ..c.params }, ..c.clone() });
        let v = SpecialCase::convs(forced, seed, None);
        ops.push(run_op_async(ctx, format!("special/conv_transpose2d/{}", a.name()), &v, f32, tol).await);
    }
    let v = SpecialCase::convs(winograd_transposed(&transposed), seed, None);
    ops.push(run_op_async(ctx, "special/conv_transpose2d/winograd", &v, f32, tol).await);
    let backward = transposed.iter().cloned().map(|c| ConvTranspose2dBackwardCase(c, Grads::ALL));
    let v = SpecialCase::convs(backward, seed, Some(2));
    ops.push(run_op_async(ctx, "special/conv_transpose2d_backward", &v, f32, tol).await);
    let conv1d: Vec<_> = cases.iter().cloned().map(Conv1dCase).collect();
    ops.push(run_op_async(ctx, "special/conv1d", &SpecialCase::convs(conv1d.clone(), seed, None), f32, tol).await);
    let v = SpecialCase::convs(conv1d.into_iter().map(|c| Conv1dBackwardCase(c, Grads::ALL)), seed, Some(2));
    ops.push(run_op_async(ctx, "special/conv1d_backward", &v, f32, tol).await);
    let t1 = conv_transpose1d_cases(seed, n);
    ops.push(
        run_op_async(ctx, "special/conv_transpose1d", &SpecialCase::convs(t1.clone(), seed, None), f32, tol).await,
    );
    let v = SpecialCase::convs(t1.into_iter().map(|c| ConvTranspose1dBackwardCase(c, Grads::ALL)), seed, Some(2));
    ops.push(run_op_async(ctx, "special/conv_transpose1d_backward", &v, f32, tol).await);
    let c3 = conv3d_cases(seed, n);
    ops.push(run_op_async(ctx, "special/conv3d", &SpecialCase::convs(c3.clone(), seed, None), f32, tol).await);
    let v = SpecialCase::convs(c3.into_iter().map(|c| Conv3dBackwardCase(c, Grads::ALL)), seed, Some(2));
    ops.push(run_op_async(ctx, "special/conv3d_backward", &v, f32, tol).await);
    let t3 = conv_transpose3d_cases(seed, n);
    ops.push(
        run_op_async(ctx, "special/conv_transpose3d", &SpecialCase::convs(t3.clone(), seed, None), f32, tol).await,
    );
    let v = SpecialCase::convs(t3.into_iter().map(|c| ConvTranspose3dBackwardCase(c, Grads::ALL)), seed, Some(2));
    ops.push(run_op_async(ctx, "special/conv_transpose3d_backward", &v, f32, tol).await);
    let deform = deform_conv2d_cases(seed, n);
    for a in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        let v = SpecialCase::convs(deform.iter().map(|c| c.with_algorithm(a)), seed, None);
        ops.push(run_op_async(ctx, format!("special/deform_conv2d/{}", a.name()), &v, f32, tol).await);
    }
    let backward =
        deform.into_iter().map(|c| DeformConv2dBackwardCase(c, crate::ops::deform_conv2d_backward::DeformGrads::ALL));
    let v = SpecialCase::convs(backward, seed, Some(LAST));
    ops.push(run_op_async(ctx, "special/deform_conv2d_backward", &v, f32, tol).await);
    for fused in [false, true] {
        let v = SpecialCase::convs(separable_cases(seed, n, fused), seed, None);
        let name = format!("special/separable_conv2d/{}", if fused { "fused" } else { "two_pass" });
        ops.push(run_op_async(ctx, name, &v, f32, tol).await);
    }
    let pools = pool2d_cases(seed, n);
    let v: Vec<_> =
        pools.iter().cloned().map(|c| SpecialCase { case: c, planted: vec![(0, INPUT_SPECIALS)], seed }).collect();
    ops.push(run_op_async(ctx, "special/pool2d", &v, f32, tol).await);
    let planted = vec![(0, INPUT_SPECIALS), (1, INPUT_SPECIALS)];
    let v: Vec<_> = pools
        .into_iter()
        .map(|c| SpecialCase { case: Pool2dBackwardCase(c), planted: planted.clone(), seed })
        .collect();
    ops.push(run_op_async(ctx, "special/pool2d_backward", &v, f32, tol).await);
    ops
}

/// The ops whose kernels are f32 only, on f16 tensors (`count` cases each; f16-rounded inputs,
/// the f16 tolerance): conv3d and its backward, conv_transpose3d and its backward,
/// separable_conv2d (both paths), deform_conv2d_backward, conv2d and its backward with a
/// padding mode.
pub async fn f16_through_f32_copies_async(ctx: &GpuContext, seed: u64, count: usize) -> Vec<OpSummary> {
    use crate::ops::conv2d_backward::Grads;
    let (f16, tol) = (DType::F16, Tolerance { rel_l2: 1e-3, abs: 1e-3 });
    let mut ops = Vec::new();
    let conv3d = conv3d_cases(seed, count);
    ops.push(run_op_async(ctx, "conv3d/f16", &conv3d, f16, tol).await);
    let conv3d_backward: Vec<_> = conv3d.into_iter().map(|c| Conv3dBackwardCase(c, Grads::ALL)).collect();
    ops.push(run_op_async(ctx, "conv3d_backward/f16", &conv3d_backward, f16, tol).await);
    let transposed = conv_transpose3d_cases(seed, count);
    ops.push(run_op_async(ctx, "conv_transpose3d/f16", &transposed, f16, tol).await);
    let transposed_backward: Vec<_> =
        transposed.into_iter().map(|c| ConvTranspose3dBackwardCase(c, Grads::ALL)).collect();
    ops.push(run_op_async(ctx, "conv_transpose3d_backward/f16", &transposed_backward, f16, tol).await);
    for fused in [false, true] {
        let name = format!("separable_conv2d/{}/f16", if fused { "fused" } else { "two_pass" });
        ops.push(run_op_async(ctx, name, &separable_cases(seed, count, fused), f16, tol).await);
    }
    let deform: Vec<_> = deform_conv2d_cases(seed, count)
        .into_iter()
        .map(|c| DeformConv2dBackwardCase(c, crate::ops::deform_conv2d_backward::DeformGrads::ALL))
        .collect();
    ops.push(run_op_async(ctx, "deform_conv2d_backward/f16", &deform, f16, tol).await);
    let modes = with_padding_modes(&conv2d_cases(seed, 4 * count));
    ops.push(run_op_async(ctx, "conv2d/padding_mode/f16", &modes, f16, tol).await);
    let modes_backward: Vec<_> = modes.into_iter().map(|c| Conv2dBackwardCase(c, Grads::ALL)).collect();
    ops.push(run_op_async(ctx, "conv2d_backward/padding_mode/f16", &modes_backward, f16, tol).await);
    ops
}

/// Runs the cases of [`run_all`] and the probes at `probes` scale (no static check) and
/// writes each call as a replay into `dir` ([`crate::replay`]). Returns the report of the run
/// on `ctx` and the number of replay cases written.
#[cfg(feature = "cli")]
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
