//! The benchmark runner behind `wgconv bench` and `benches/`: the shape suite, GPU timing,
//! the adapter's ceilings (large GEMM, copy bandwidth), and the report (table, JSON, CSV, SVG).

use std::time::Duration;

pub mod compare;
mod plot;

use serde::Serialize;

use crate::conformance::{
    Conv2dBackwardCase, Conv2dCase, ConvTranspose2dCase, DeformConv2dCase, OpCase, SeparableCase,
};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::params::{Algorithm, Conv2dParams, Padding};
use crate::tensor::{DType, HostTensor, Tensor};
pub use crate::timing::{summarize, time_op, TimingMethod, TimingOptions};

/// The suite of `bench/shapes.md`, compiled in.
pub const DEFAULT_SUITE: &str = include_str!("../bench/shapes.md");

/// The op a suite row benchmarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchOp {
    /// A conv2d row (`torch.nn.functional.conv2d`, with a bias).
    Conv2d,
    /// The backward pass of a conv2d row (`wgconv bench --backward`).
    Conv2dBackward,
    /// A depthwise-separable block (`wgconv bench --separable`).
    SeparableConv2d,
    /// A conv_transpose2d row (`torch.nn.functional.conv_transpose2d`, with a bias).
    ConvTranspose2d,
    /// The backward pass of a conv_transpose2d row (`wgconv bench --backward`).
    ConvTranspose2dBackward,
    /// A deform_conv2d v2 row (`torchvision.ops.deform_conv2d` with a mask, one offset group).
    DeformConv2d,
    /// The backward pass of a deform_conv2d row (`wgconv bench --backward`).
    DeformConv2dBackward,
}

impl BenchOp {
    /// The op's snake_case name, as the report writes it (`conv2d`, `conv2d_backward`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BenchOp::Conv2d => "conv2d",
            BenchOp::Conv2dBackward => "conv2d_backward",
            BenchOp::SeparableConv2d => "separable_conv2d",
            BenchOp::ConvTranspose2d => "conv_transpose2d",
            BenchOp::ConvTranspose2dBackward => "conv_transpose2d_backward",
            BenchOp::DeformConv2d => "deform_conv2d",
            BenchOp::DeformConv2dBackward => "deform_conv2d_backward",
        }
    }
}

/// One row of the suite (square stride/padding/dilation, as the table writes them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BenchCase {
    /// The row's name (`r50_stem`, ...); also seeds its random inputs.
    pub id: String,
    /// The op the row runs.
    pub op: BenchOp,
    /// Batch size N.
    pub n: u32,
    /// Input channels.
    pub c_in: u32,
    /// Input height.
    pub h: u32,
    /// Input width.
    pub w: u32,
    /// Output channels.
    pub c_out: u32,
    /// Kernel height.
    pub kh: u32,
    /// Kernel width.
    pub kw: u32,
    /// Stride, on both axes.
    pub stride: u32,
    /// Zero padding on every side.
    pub pad: u32,
    /// Dilation, on both axes.
    pub dil: u32,
    /// Groups (= channels for a depthwise row).
    pub groups: u32,
    /// The free-text last column (`depthwise`, `dilated`, ...); not read by the runner.
    pub extra: String,
}

impl BenchCase {
    /// The row's stride, symmetric padding, dilation and groups as conv2d parameters running
    /// `algorithm` (everything else default).
    pub fn conv2d_params(&self, algorithm: Algorithm) -> Conv2dParams {
        Conv2dParams {
            stride: [self.stride; 2],
            padding: Padding::Symmetric([self.pad; 2]),
            dilation: [self.dil; 2],
            groups: self.groups,
            algorithm,
            ..Default::default()
        }
    }
}

fn parse_dims(text: &str, what: &str, id: &str) -> std::result::Result<[u32; 2], String> {
    let parts: Vec<&str> = text.split(['x', 'X', '×']).map(str::trim).collect();
    let nums: std::result::Result<Vec<u32>, _> = parts.iter().map(|p| p.parse::<u32>()).collect();
    match nums.as_deref() {
        Ok([a]) => Ok([*a, *a]),
        Ok([a, b]) => Ok([*a, *b]),
        _ => Err(format!("row {id}: bad {what} '{text}' (want A or AxB)")),
    }
}

/// Parses a markdown table with the columns of `bench/shapes.md`:
/// `id | op | N | Cin | H x W | Cout | kernel | stride | pad | dil | groups | extra`.
pub fn parse_suite(text: &str) -> std::result::Result<Vec<BenchCase>, String> {
    let mut cases = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.first().is_some_and(|c| *c == "id" || c.starts_with("---") || c.is_empty()) {
            continue;
        }
        if cells.len() < 11 {
            return Err(format!("row '{line}': {} columns, want 12", cells.len()));
        }
        let id = cells[0].to_string();
        let op = match cells[1] {
            "conv2d" => BenchOp::Conv2d,
            "conv_transpose2d" => BenchOp::ConvTranspose2d,
            "deform_conv2d" => BenchOp::DeformConv2d,
            other => return Err(format!("row {id}: unknown op '{other}'")),
        };
        let num =
            |i: usize, what: &str| cells[i].parse::<u32>().map_err(|_| format!("row {id}: bad {what} '{}'", cells[i]));
        let [h, w] = parse_dims(cells[4], "H x W", &id)?;
        let [kh, kw] = parse_dims(cells[6], "kernel", &id)?;
        cases.push(BenchCase {
            op,
            n: num(2, "N")?,
            c_in: num(3, "Cin")?,
            h,
            w,
            c_out: num(5, "Cout")?,
            kh,
            kw,
            stride: num(7, "stride")?,
            pad: num(8, "pad")?,
            dil: num(9, "dil")?,
            groups: num(10, "groups")?,
            extra: cells.get(11).unwrap_or(&"").to_string(),
            id,
        });
    }
    if cases.is_empty() {
        return Err("no benchmark rows found".into());
    }
    Ok(cases)
}

/// Timing settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Untimed runs first (pipeline compilation happens in the first).
    pub warmup: u32,
    /// Timed runs, at least.
    pub runs: u32,
    /// Keep running (up to 1000 runs) until this much time has been timed.
    pub min_time: Duration,
    /// Spot-check each output against the f64 reference at this many sampled elements.
    pub check_points: usize,
    /// Force GPU timestamps off.
    pub wall_clock: bool,
    /// Storage of the conv2d, conv_transpose2d and deform_conv2d rows' tensors (f16: the other
    /// ops' rows are n/a).
    pub dtype: DType,
    /// conv2d and conv_transpose2d rows with channels-last (NHWC) input and output (the
    /// other ops' rows are n/a).
    pub channels_last: bool,
    /// After timing, time each launch of the call on its own ([`crate::timing::profile_op`],
    /// `--profile`: 3 runs).
    pub profile: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            warmup: 2,
            runs: 10,
            min_time: Duration::from_millis(500),
            check_points: 256,
            wall_clock: false,
            dtype: DType::F32,
            channels_last: false,
            profile: false,
        }
    }
}

impl BenchOptions {
    /// The timing part of these options.
    pub fn timing(&self) -> TimingOptions {
        TimingOptions { warmup: self.warmup, runs: self.runs, min_time: self.min_time, wall_clock: self.wall_clock }
    }
}

/// One measured (or skipped) case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The suite row's id (separable blocks: `<id>_sep<Cout>`).
    pub id: String,
    /// The op that was timed (a `_backward` op for `--backward`).
    pub op: BenchOp,
    /// The algorithm that ran (or was asked for, when skipped).
    pub algorithm: String,
    /// `ok`, `skipped: …` (op not implemented), `n/a: …` (algorithm does not apply to the
    /// shape) or `error: …`.
    pub status: String,
    /// Timed runs (0 when not run).
    pub runs: usize,
    /// Median time of one run, in ms (NaN when not run).
    pub median_ms: f64,
    /// Fastest run, in ms (NaN when not run).
    pub min_ms: f64,
    /// Slowest run, in ms (NaN when not run).
    pub max_ms: f64,
    /// How the runs were timed (None when not run).
    pub timing: Option<TimingMethod>,
    /// Floating-point operations of one call (a multiply-add counts 2).
    pub flops: f64,
    /// `flops` over the median time, in GFLOP/s (NaN when not run).
    pub gflops: f64,
    /// Bytes of inputs, weights and outputs, once each.
    pub bytes: f64,
    /// `bytes` over the median time, in GB/s (10^9 bytes; NaN when not run).
    pub gbps: f64,
    /// Bytes of the scratch workspace the call used (im2col or Winograd chunk; 0 for none).
    pub workspace_bytes: u64,
    /// Worst |gpu − ref| / (1 + |ref|) over the sampled points (None when not checked).
    pub check_max_err: Option<f64>,
    /// Storage of the tensors.
    #[serde(serialize_with = "dtype_name")]
    pub dtype: DType,
    /// Each launch's GPU time (`--profile`; None without it or without timestamp queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::timing::Profile>,
}

fn dtype_name<S: serde::Serializer>(d: &DType, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(d.name())
}

impl CaseResult {
    fn skipped(case: &BenchCase, algorithm: &str, why: String) -> Self {
        CaseResult {
            id: case.id.clone(),
            op: case.op,
            algorithm: algorithm.into(),
            status: why,
            runs: 0,
            median_ms: f64::NAN,
            min_ms: f64::NAN,
            max_ms: f64::NAN,
            timing: None,
            flops: 0.0,
            gflops: f64::NAN,
            bytes: 0.0,
            gbps: f64::NAN,
            workspace_bytes: 0,
            check_max_err: None,
            dtype: DType::F32,
            profile: None,
        }
    }
    /// True when the case ran and passed its spot check (`status` is `ok`).
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
}

/// A row that did not run: "n/a" where the algorithm cannot run it (an f16 row of an
/// algorithm without f16 kernels), else the error.
fn not_run(case: &BenchCase, algorithm: Algorithm, e: Error) -> CaseResult {
    match e {
        Error::InvalidParam { name: "algorithm", reason } => {
            CaseResult::skipped(case, algorithm.name(), format!("n/a: {reason}"))
        }
        e => CaseResult::skipped(case, algorithm.name(), format!("error: {e}")),
    }
}

/// Runs one suite case with one algorithm.
pub fn run_case(ctx: &GpuContext, case: &BenchCase, algorithm: Algorithm, opts: &BenchOptions) -> CaseResult {
    if opts.dtype != DType::F32
        && !matches!(case.op, BenchOp::Conv2d | BenchOp::ConvTranspose2d | BenchOp::DeformConv2d)
    {
        let why = format!("n/a: {} storage is conv2d's, conv_transpose2d's and deform_conv2d's", opts.dtype.name());
        return CaseResult::skipped(case, algorithm.name(), why);
    }
    if opts.channels_last && !matches!(case.op, BenchOp::Conv2d | BenchOp::ConvTranspose2d) {
        let why = "n/a: channels-last tensors are conv2d's and conv_transpose2d's".into();
        return CaseResult::skipped(case, algorithm.name(), why);
    }
    match case.op {
        BenchOp::Conv2d => match run_conv2d(ctx, case, algorithm, opts) {
            Ok(r) => r,
            Err(e) => not_run(case, algorithm, e),
        },
        BenchOp::ConvTranspose2d
            if matches!(algorithm, Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::GemmCol2im) =>
        {
            match run_conv_transpose2d(ctx, case, algorithm, opts) {
                Ok(r) => r,
                Err(e) => not_run(case, algorithm, e),
            }
        }
        BenchOp::ConvTranspose2d => CaseResult::skipped(
            case,
            algorithm.name(),
            "n/a: conv_transpose2d runs implicit_gemm or gemm_col2im".into(),
        ),
        BenchOp::Conv2dBackward | BenchOp::ConvTranspose2dBackward | BenchOp::DeformConv2dBackward => {
            run_backward_case(ctx, case, opts)
        }
        BenchOp::SeparableConv2d => {
            CaseResult::skipped(case, algorithm.name(), "n/a: separable rows come from run_separable".into())
        }
        BenchOp::DeformConv2d => match run_deform_conv2d(ctx, case, algorithm, opts) {
            Ok(r) => r,
            Err(e) => not_run(case, algorithm, e),
        },
    }
}

fn case_seed(case: &BenchCase) -> u64 {
    case.id.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
}

/// Worst |out − ref| / (1 + |ref|) over `points` sampled elements (first, last, random).
fn spot_check(out: &[f32], points: usize, seed: u64, mut reference: impl FnMut(usize) -> f64) -> Option<f64> {
    if points == 0 || out.is_empty() {
        return None;
    }
    let mut rng = crate::verify::SplitMix64::new(seed ^ 0xc4ec);
    let mut worst = 0f64;
    for k in 0..points.min(out.len()) {
        let i = match k {
            0 => 0,
            1 => out.len() - 1,
            _ => (rng.next_u64() % out.len() as u64) as usize,
        };
        let r = reference(i);
        let e = (out[i] as f64 - r).abs() / (1.0 + r.abs());
        worst = worst.max(if e.is_nan() { f64::INFINITY } else { e });
    }
    Some(worst)
}

/// Assembles a measured result.
#[allow(clippy::too_many_arguments)]
fn measured(
    case: &BenchCase,
    algorithm: &str,
    times: &[f64],
    method: TimingMethod,
    flops: f64,
    bytes: f64,
    workspace_bytes: u64,
    check_max_err: Option<f64>,
) -> CaseResult {
    let (median, min, max) = summarize(times);
    let mut r = CaseResult {
        id: case.id.clone(),
        op: case.op,
        algorithm: algorithm.into(),
        runs: times.len(),
        median_ms: median,
        min_ms: min,
        max_ms: max,
        timing: Some(method),
        flops,
        gflops: flops / (median * 1e6),
        bytes,
        gbps: bytes / (median * 1e6),
        workspace_bytes,
        check_max_err: None,
        status: String::new(),
        dtype: DType::F32,
        profile: None,
    };
    apply_check(&mut r, check_max_err, CHECK_TOL);
    r
}

/// A case's launches (`--profile`): each one's median ms and share of their sum, in
/// recording order.
fn profile_table(r: &CaseResult, p: &crate::timing::Profile) -> String {
    let sum: f64 = p.launches.iter().map(|l| l.median_ms).sum();
    let mut s = format!(
        "\n{} {} ({}): {} launches, each in a pass of its own, medians of {} runs: {:.3} ms together \
         ({:.3} ms as one call)\n",
        r.id,
        r.op.name(),
        r.algorithm,
        p.launches.len(),
        p.runs,
        sum,
        r.median_ms
    );
    for (i, l) in p.launches.iter().enumerate() {
        let [x, y, z] = l.workgroups;
        s += &format!(
            "  {:>3}. {:>9.3} ms {:>5.1}%  {} [{}] grid {x}x{y}x{z}\n",
            i + 1,
            l.median_ms,
            100.0 * l.median_ms / sum.max(f64::MIN_POSITIVE),
            l.kernel,
            l.overrides
        );
    }
    if p.untimed > 0 {
        s += &format!("  ({} more launches ran untimed)\n", p.untimed);
    }
    s
}

/// Largest spot-check error (relative, see `spot_check`) an f32 result may show.
const CHECK_TOL: f64 = 1e-4;

/// Records the spot check and sets the status: `ok`, or an error past `tol`.
fn apply_check(r: &mut CaseResult, check_max_err: Option<f64>, tol: f64) {
    r.check_max_err = check_max_err;
    r.status = match check_max_err {
        Some(e) if e > tol => format!("error: output differs from the reference (max rel err {e:.2e})"),
        _ => "ok".into(),
    };
}

/// A timed row of `dtype` tensors (`elems` elements moved) with its spot check: "ok" within
/// the dtype's tolerance (f16: one f16 rounding of the output).
#[allow(clippy::too_many_arguments)]
fn checked_row(
    case: &BenchCase,
    algorithm: &str,
    (times, method): (&[f64], TimingMethod),
    flops: f64,
    elems: usize,
    dtype: DType,
    workspace_bytes: u64,
    check: Option<f64>,
) -> CaseResult {
    let bytes = dtype.size() as f64 * elems as f64;
    let tol = if dtype == DType::F16 { 2e-3 } else { CHECK_TOL };
    let mut r = measured(case, algorithm, times, method, flops, bytes, workspace_bytes, None);
    apply_check(&mut r, check, tol);
    r.dtype = dtype;
    r
}

/// Times one op call described by its case (the same [`OpCase`] conformance, the CLI and
/// the tests use): its seeded inputs stored as `dtype` (f16: rounded first, and the
/// reference sees the rounded values), its `_into` call recorded per timed run into
/// preallocated outputs, then `check_points` sampled outputs of each output against the f64
/// reference (pointwise where the op has one, else whole). Bytes moved: every input and
/// output once.
fn timed_case<C: OpCase>(
    ctx: &GpuContext,
    row: &BenchCase,
    case: &C,
    dtype: DType,
    opts: &BenchOptions,
) -> Result<CaseResult> {
    let inputs: Vec<HostTensor> = case.inputs()?.into_iter().map(|h| h.rounded_to(dtype)).collect();
    let shapes: Vec<&[usize]> = inputs.iter().map(|h| h.shape.as_slice()).collect();
    let flops = case.flops(&shapes)?;
    let up = inputs.iter().map(|h| Tensor::from_slice_as(ctx, &h.shape, &h.data, dtype)).collect::<Result<Vec<_>>>()?;
    let outputs =
        case.output_shapes(&shapes)?.iter().map(|s| Tensor::empty_as(ctx, s, dtype)).collect::<Result<Vec<_>>>()?;
    let mut ran = None;
    let (times, method) = time_op(ctx, &opts.timing(), |enc| {
        ran = Some(case.record(ctx, enc, &up, &outputs)?);
        Ok(())
    })?;
    let ran = ran.ok_or_else(|| Error::Internal("time_op ran no call".into()))?;
    let seed = case_seed(row);
    let check = if opts.check_points == 0 {
        None
    } else if case.expected_at(&inputs, 0).is_some() && outputs.len() == 1 {
        let out = outputs[0].to_vec(ctx)?;
        let mut failed = None;
        let worst = spot_check(&out, opts.check_points, seed, |i| match case.expected_at(&inputs, i) {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                failed = Some(e);
                f64::NAN
            }
            None => f64::NAN,
        });
        if let Some(e) = failed {
            return Err(e);
        }
        worst
    } else {
        let expected = case.expected(&inputs)?;
        let mut worst = 0f64;
        for (t, r) in outputs.iter().zip(&expected) {
            worst = worst.max(spot_check(&t.to_vec(ctx)?, opts.check_points, seed, |i| r[i]).unwrap_or(0.0));
        }
        Some(worst)
    };
    let elems = inputs.iter().map(|h| h.data.len()).sum::<usize>() + outputs.iter().map(Tensor::numel).sum::<usize>();
    let timed = (times.as_slice(), method);
    let mut r = checked_row(row, &ran.label, timed, flops, elems, dtype, ran.workspace_bytes, check);
    if opts.profile {
        r.profile = crate::timing::profile_op(ctx, 3, |enc| case.record(ctx, enc, &up, &outputs).map(drop))?;
    }
    Ok(r)
}

/// The row's conv2d as a conformance case (with a bias), seeded from the row's id.
fn conv2d_case(row: &BenchCase, algorithm: Algorithm) -> Conv2dCase {
    let (n, c, co, g) = (row.n as usize, row.c_in as usize, row.c_out as usize, row.groups.max(1) as usize);
    Conv2dCase {
        input: [n, c, row.h as usize, row.w as usize],
        weight: [co, c / g, row.kh as usize, row.kw as usize],
        bias: true,
        params: row.conv2d_params(algorithm),
        seed: case_seed(row),
    }
}

fn run_conv2d(ctx: &GpuContext, case: &BenchCase, algorithm: Algorithm, opts: &BenchOptions) -> Result<CaseResult> {
    let c = conv2d_case(case, algorithm);
    match c.params.validate(&c.input, &c.weight, Some(&[c.weight[0]])) {
        Err(Error::InvalidParam { name: "algorithm", reason }) => {
            return Ok(CaseResult::skipped(case, algorithm.name(), format!("n/a: {reason}")));
        }
        other => other?,
    };
    if opts.channels_last {
        let layouts = crate::Conv2dLayouts { input: crate::Layout::ChannelsLast, output: crate::Layout::ChannelsLast };
        return timed_case(ctx, case, &crate::conformance::LayoutCase::new(c, layouts), opts.dtype, opts);
    }
    timed_case(ctx, case, &c, opts.dtype, opts)
}

/// The high-resolution row (`wgconv bench --large`): 268 MB input and output, past the
/// 128 MiB storage binding of lavapipe and WebGPU's defaults, so one call runs in batch
/// pieces ([`crate::ops::batch`]).
pub const LARGE_ROW: &str = "| seg_hr | conv2d | 4 | 64 | 512x512 | 64 | 3x3 | 1 | 1 | 1 | 1 | beyond one binding |";

/// Times a conv2d row's work issued as N calls of one image each (views of the same
/// buffers, one encoder): what a caller would do without batch pieces. Compare its GFLOP/s
/// with the row's own (one call).
pub fn run_batch1_calls(ctx: &GpuContext, case: &BenchCase, opts: &BenchOptions) -> CaseResult {
    let algorithm = Algorithm::Auto;
    match batch1_calls(ctx, case, opts) {
        Ok(r) => r,
        Err(e) => not_run(case, algorithm, e),
    }
}

fn batch1_calls(ctx: &GpuContext, case: &BenchCase, opts: &BenchOptions) -> Result<CaseResult> {
    let params = case.conv2d_params(Algorithm::Auto);
    let seed = case_seed(case);
    let n = case.n as usize;
    let x = HostTensor::random(&[n, case.c_in as usize, case.h as usize, case.w as usize], seed);
    let w = HostTensor::random(
        &[case.c_out as usize, (case.c_in / case.groups.max(1)) as usize, case.kh as usize, case.kw as usize],
        seed + 1,
    );
    let b = HostTensor::random(&[case.c_out as usize], seed + 2);
    let g = params.validate(&x.shape, &w.shape, Some(&b.shape))?;
    let (xg, wg, bg) = (Tensor::from_host(ctx, &x)?, Tensor::from_host(ctx, &w)?, Tensor::from_host(ctx, &b)?);
    let y = Tensor::empty(ctx, &g.output_shape())?;
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    let image_bytes = |t: &Tensor| t.byte_len() / n as u64;
    if image_bytes(&xg) % align != 0 || image_bytes(&y) % align != 0 {
        return Ok(CaseResult::skipped(case, "auto, N calls", "n/a: images not at aligned offsets".into()));
    }
    let mut info = None;
    let (times, method) = time_op(ctx, &opts.timing(), |enc| {
        for i in 0..n {
            let (xi, yi) = (xg.narrow_batch(i, 1)?, y.narrow_batch(i, 1)?);
            info = Some(crate::ops::conv2d::conv2d_into(ctx, enc, &xi, &wg, Some(&bg), &params, &yi)?);
        }
        Ok(())
    })?;
    let info = info.expect("time_op ran at least once");
    let check =
        spot_check(&y.to_vec(ctx)?, opts.check_points, seed, |i| crate::reference::conv2d_at(&x, &w, Some(&b), &g, i));
    let elems = x.data.len() + w.data.len() + b.data.len() + y.numel();
    let label = format!("{}, {n} calls of N=1", info.algorithm.name());
    Ok(checked_row(case, &label, (&times, method), g.flops(), elems, DType::F32, info.workspace_bytes, check))
}

impl BenchOp {
    /// The op whose backward pass `wgconv bench --backward` times for this row's, if any.
    pub fn backward(self) -> Option<BenchOp> {
        match self {
            BenchOp::Conv2d | BenchOp::Conv2dBackward => Some(BenchOp::Conv2dBackward),
            BenchOp::ConvTranspose2d | BenchOp::ConvTranspose2dBackward => Some(BenchOp::ConvTranspose2dBackward),
            BenchOp::DeformConv2d | BenchOp::DeformConv2dBackward => Some(BenchOp::DeformConv2dBackward),
            BenchOp::SeparableConv2d => None,
        }
    }
}

/// Times the backward pass (every gradient) of a conv2d, conv_transpose2d or deform_conv2d
/// row; the result's op is that op's `_backward` and its FLOPs are those of grad_input plus
/// grad_weight (2× forward).
pub fn run_backward_case(ctx: &GpuContext, case: &BenchCase, opts: &BenchOptions) -> CaseResult {
    let mut case = case.clone();
    let Some(op) = case.op.backward() else {
        return CaseResult::skipped(&case, "backward", format!("n/a: no backward pass of {}", case.op.name()));
    };
    case.op = op;
    let all = crate::ops::conv2d_backward::Grads::ALL;
    let timed = match op {
        BenchOp::Conv2dBackward => {
            timed_case(ctx, &case, &Conv2dBackwardCase(conv2d_case(&case, Algorithm::Auto), all), DType::F32, opts)
        }
        BenchOp::DeformConv2dBackward => {
            let all = crate::ops::deform_conv2d_backward::DeformGrads::ALL;
            let dcn = dcn_case(&case, Algorithm::Auto);
            timed_case(ctx, &case, &crate::conformance::DeformConv2dBackwardCase(dcn, all), DType::F32, opts)
        }
        _ => timed_case(
            ctx,
            &case,
            &crate::conformance::ConvTranspose2dBackwardCase(conv_transpose2d_case(&case, Algorithm::Auto), all),
            DType::F32,
            opts,
        ),
    };
    timed.unwrap_or_else(|e| CaseResult::skipped(&case, "backward", format!("error: {e}")))
}

/// Times a depthwise-separable block (MobileNetV2's expansion-free form): a depthwise 3x3
/// over the depthwise row `case` (`mbv2_dw`/`mbv2_dw_s2`: 144 channels) then a pointwise
/// conv to `c_out_pw` channels, fused or in two passes. FLOPs: both stages' together.
pub fn run_separable(
    ctx: &GpuContext,
    case: &BenchCase,
    c_out_pw: u32,
    fused: bool,
    opts: &BenchOptions,
) -> CaseResult {
    let mut row = case.clone();
    row.op = BenchOp::SeparableConv2d;
    row.id = format!("{}_sep{c_out_pw}", case.id);
    let name = if fused { "fused" } else { "two_pass" };
    let params = crate::ops::separable_conv2d::SeparableParams {
        stride: [case.stride; 2],
        padding: Padding::Symmetric([case.pad; 2]),
        dilation: [case.dil; 2],
        depthwise_activation: crate::params::Activation::Relu6,
        fused,
        ..Default::default()
    };
    let (c, cp) = (case.c_in as usize, c_out_pw as usize);
    let seed = case_seed(case);
    let sep = SeparableCase {
        input: [case.n as usize, c, case.h as usize, case.w as usize],
        dw_weight: [c, 1, case.kh as usize, case.kw as usize],
        pw_weight: [cp, c, 1, 1],
        params,
        biases: false,
        seeds: [seed, seed + 1, seed + 2, seed + 3, seed + 4],
    };
    let run = || timed_case(ctx, &row, &sep, DType::F32, opts);
    run().unwrap_or_else(|e| CaseResult::skipped(&row, name, format!("error: {e}")))
}

/// deform_conv2d v2 with one offset group (the `dcn_v2` row): offsets uniform in [−2, 2],
/// mask in [0, 1).
fn run_deform_conv2d(
    ctx: &GpuContext,
    case: &BenchCase,
    algorithm: Algorithm,
    opts: &BenchOptions,
) -> Result<CaseResult> {
    if !matches!(algorithm, Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::Im2colGemm) {
        return Ok(CaseResult::skipped(
            case,
            algorithm.name(),
            format!("n/a: deform_conv2d has no {}", algorithm.name()),
        ));
    }
    timed_case(ctx, case, &dcn_case(case, algorithm), opts.dtype, opts)
}

/// The row's deform_conv2d (v2: one offset group, offsets in [−2, 2], a mask) as a case.
fn dcn_case(case: &BenchCase, algorithm: Algorithm) -> DeformConv2dCase {
    DeformConv2dCase { conv: conv2d_case(case, algorithm), offset_groups: 1, scale: 2.0, mask: true }
}

fn run_conv_transpose2d(
    ctx: &GpuContext,
    case: &BenchCase,
    algorithm: Algorithm,
    opts: &BenchOptions,
) -> Result<CaseResult> {
    let c = conv_transpose2d_case(case, algorithm);
    if opts.channels_last {
        let layouts = crate::Conv2dLayouts { input: crate::Layout::ChannelsLast, output: crate::Layout::ChannelsLast };
        return timed_case(ctx, case, &crate::conformance::LayoutCase::new(c, layouts), opts.dtype, opts);
    }
    timed_case(ctx, case, &c, opts.dtype, opts)
}

/// The row's conv_transpose2d (with a bias) as a case.
fn conv_transpose2d_case(case: &BenchCase, algorithm: Algorithm) -> ConvTranspose2dCase {
    let params = crate::params::ConvTranspose2dParams {
        stride: [case.stride; 2],
        padding: Padding::Symmetric([case.pad; 2]),
        dilation: [case.dil; 2],
        groups: case.groups,
        algorithm,
        ..Default::default()
    };
    let (n, c, co, g) = (case.n as usize, case.c_in as usize, case.c_out as usize, case.groups.max(1) as usize);
    ConvTranspose2dCase {
        input: [n, c, case.h as usize, case.w as usize],
        weight: [c, co / g, case.kh as usize, case.kw as usize],
        bias: true,
        params,
        seed: case_seed(case),
    }
}

/// What this adapter reaches at best, measured once per run.
#[derive(Clone, Debug, Serialize)]
pub struct Ceilings {
    /// Size S of the S×S×S GEMM.
    pub gemm_size: u32,
    /// Median throughput of that GEMM (2·S³ FLOPs), in GFLOP/s.
    pub gemm_gflops: f64,
    /// Bytes of the copied buffer.
    pub copy_bytes: u64,
    /// Read + write bytes per second of a buffer-to-buffer copy, in GB/s.
    pub copy_gbps: f64,
}

/// Measures a large GEMM (with the engine's own kernel) and a large buffer copy.
pub fn measure_ceilings(ctx: &GpuContext, gemm_size: u32, copy_mib: u64, opts: &BenchOptions) -> Result<Ceilings> {
    let s = gemm_size as usize;
    let a = Tensor::from_host(ctx, &HostTensor::random(&[s, s], 11))?;
    let b = Tensor::from_host(ctx, &HostTensor::random(&[s, s], 12))?;
    let c = Tensor::empty(ctx, &[s, s])?;
    let (t, _) = time_op(ctx, &opts.timing(), |enc| crate::ops::matmul::matmul_into(ctx, enc, &a, &b, &c))?;
    let gemm_gflops = 2.0 * (s as f64).powi(3) / (summarize(&t).0 * 1e6);

    let bytes = copy_mib << 20;
    let src = ctx.create_buffer("bench.copy.src", bytes, wgpu::BufferUsages::COPY_SRC)?;
    let dst = ctx.create_buffer("bench.copy.dst", bytes, wgpu::BufferUsages::COPY_DST)?;
    let (t, _) = time_op(ctx, &opts.timing(), |enc| {
        enc.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
        Ok(())
    })?;
    let copy_gbps = 2.0 * bytes as f64 / (summarize(&t).0 * 1e6);
    Ok(Ceilings { gemm_size, gemm_gflops, copy_bytes: bytes, copy_gbps })
}

/// A whole run: adapter, settings, ceilings and cases.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The adapter's name.
    pub adapter: String,
    /// The wgpu backend (`Vulkan`, `Metal`, ...).
    pub backend: String,
    /// The adapter type (`DiscreteGpu`, `Cpu`, ...).
    pub device_type: String,
    /// Driver name and driver info, space-separated.
    pub driver: String,
    /// When the report was made, in seconds since the Unix epoch (0 if the clock is before it).
    pub date_unix: u64,
    /// The adapter's ceilings, when they were measured.
    pub ceilings: Option<Ceilings>,
    /// One entry per case and algorithm.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// A report of `results` on `ctx`'s adapter, dated now.
    pub fn new(ctx: &GpuContext, ceilings: Option<Ceilings>, results: Vec<CaseResult>) -> Self {
        let i = ctx.adapter_info();
        Report {
            adapter: i.name.clone(),
            backend: format!("{:?}", i.backend),
            device_type: format!("{:?}", i.device_type),
            driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
            date_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            ceilings,
            results,
        }
    }

    /// The terminal table.
    pub fn table(&self) -> String {
        let mut s = format!("adapter: {} ({}, {}, {})\n", self.adapter, self.backend, self.device_type, self.driver);
        if let Some(c) = &self.ceilings {
            s += &format!(
                "ceilings: GEMM {0}x{0}x{0} {1:.2} GFLOP/s; copy {2} MiB {3:.2} GB/s (read+write)\n",
                c.gemm_size,
                c.gemm_gflops,
                c.copy_bytes >> 20,
                c.copy_gbps
            );
        }
        let timing = self.results.iter().find_map(|r| r.timing);
        s += &format!(
            "timing: {}\n",
            match timing {
                Some(TimingMethod::GpuTimestamps) => "GPU timestamps around the op's passes",
                Some(TimingMethod::WallClock) => "wall clock of encode + submit + wait",
                None => "-",
            }
        );
        if self.results.iter().any(|r| r.ok() && r.dtype == DType::F16) {
            s += "storage: f16 tensors, f32 accumulation (conv2d, conv_transpose2d and deform_conv2d rows)\n";
        }
        let aw = self.results.iter().map(|r| r.algorithm.chars().count()).max().unwrap_or(0).max(12);
        s += &format!(
            "{:<12} {:<16} {:<aw$} {:>10} {:>10} {:>10} {:>9} {:>7} {:>8} {:>7} {:>11}  {}\n",
            "id",
            "op",
            "algorithm",
            "median ms",
            "min ms",
            "max ms",
            "GFLOP/s",
            "%gemm",
            "GB/s",
            "%copy",
            "workspace",
            "status"
        );
        for r in &self.results {
            if r.status.starts_with("n/a") {
                continue; // an algorithm that does not apply to this shape (kept in JSON/CSV)
            }
            if !r.ok() && r.runs == 0 {
                s += &format!("{:<12} {:<16} {:<aw$} {}\n", r.id, r.op.name(), r.algorithm, r.status);
                continue;
            }
            let (pg, pc) = match &self.ceilings {
                Some(c) => (
                    format!("{:.0}%", 100.0 * r.gflops / c.gemm_gflops),
                    format!("{:.0}%", 100.0 * r.gbps / c.copy_gbps),
                ),
                None => ("-".into(), "-".into()),
            };
            s += &format!(
                "{:<12} {:<16} {:<aw$} {:>10.3} {:>10.3} {:>10.3} {:>9.2} {:>7} {:>8.2} {:>7} {:>11}  {}\n",
                r.id,
                r.op.name(),
                r.algorithm,
                r.median_ms,
                r.min_ms,
                r.max_ms,
                r.gflops,
                pg,
                r.gbps,
                pc,
                human_bytes(r.workspace_bytes),
                r.status
            );
        }
        let ok: Vec<f64> = self.results.iter().filter(|r| r.ok()).map(|r| r.gflops.ln()).collect();
        if !ok.is_empty() {
            s += &format!(
                "geometric mean over {} cases: {:.2} GFLOP/s\n",
                ok.len(),
                (ok.iter().sum::<f64>() / ok.len() as f64).exp()
            );
        }
        for r in &self.results {
            if let Some(p) = &r.profile {
                s += &profile_table(r, p);
            }
        }
        s
    }

    /// The results as CSV: a header line, then one line per case (adapter and ceilings are
    /// not included; `status` is quoted).
    pub fn csv(&self) -> String {
        let mut s = String::from("id,op,algorithm,status,runs,median_ms,min_ms,max_ms,timing,gflops,gbps,flops,bytes,workspace_bytes,check_max_err\n");
        for r in &self.results {
            s += &format!(
                "{},{},{},\"{}\",{},{},{},{},{},{},{},{},{},{},{}\n",
                r.id,
                r.op.name(),
                r.algorithm,
                r.status.replace('"', "'"),
                r.runs,
                r.median_ms,
                r.min_ms,
                r.max_ms,
                r.timing.map_or("", |t| match t {
                    TimingMethod::GpuTimestamps => "gpu_timestamps",
                    TimingMethod::WallClock => "wall_clock",
                }),
                r.gflops,
                r.gbps,
                r.flops,
                r.bytes,
                r.workspace_bytes,
                r.check_max_err.map_or(String::new(), |e| e.to_string())
            );
        }
        s
    }

    /// A bar chart of median GFLOP/s per case (a bar per algorithm), with the GEMM ceiling
    /// drawn, as SVG (plotters).
    ///
    /// # Errors
    /// [`Error::Internal`] if plotters fails to draw (it draws into a string: not expected).
    pub fn svg(&self) -> Result<String> {
        plot::throughput_svg(self)
    }

    /// A roofline as SVG (plotters): each case's GFLOP/s against its arithmetic intensity
    /// (FLOPs per byte of input, weight and output; log–log), under min(GEMM ceiling,
    /// intensity × copy bandwidth) when the report has the adapter's ceilings.
    ///
    /// # Errors
    /// As [`Report::svg`].
    pub fn roofline_svg(&self) -> Result<String> {
        plot::roofline_svg(self)
    }
}

/// `1.5 MiB` style.
pub fn human_bytes(b: u64) -> String {
    match b {
        0 => "0".into(),
        b if b < 1 << 10 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_suite_parses() {
        let s = parse_suite(DEFAULT_SUITE).unwrap();
        assert_eq!(s.len(), 12);
        let stem = &s[0];
        assert_eq!(
            (stem.id.as_str(), stem.c_in, stem.h, stem.kh, stem.stride, stem.pad),
            ("r50_stem", 3, 224, 7, 2, 3)
        );
        assert_eq!(s.iter().filter(|c| c.op == BenchOp::Conv2d).count(), 10);
        assert_eq!(s[7].groups, 144);
        assert!(parse_suite("| a | conv9d | 1 |").is_err());
        assert!(parse_suite("nothing").is_err());
    }
}
