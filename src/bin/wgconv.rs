//! The `wgconv` command line: `info`, `run <op>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use wgconv::bench::{measure_ceilings, parse_suite, run_case, BenchOptions, Report, DEFAULT_SUITE};
use wgconv::cli::{parse_padding, parse_pair};
use wgconv::conformance::{run_all, ConformanceReport};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv2d_with_info, Activation, Algorithm, ContextOptions, Conv2dParams, ConvTranspose2dParams, GpuContext,
    HostTensor, Padding, Tensor,
};

#[derive(Parser)]
#[command(
    name = "wgconv",
    version,
    about = "Convolutions as WGSL compute shaders on wgpu, checked against an f64 CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show the adapter wgconv opens (honours WGPU_BACKEND, WGPU_ADAPTER_NAME) and every adapter found.
    Info,
    /// Run one op on .npy files.
    #[command(subcommand)]
    Run(RunOp),
    /// Time the benchmark shape suite (bench/shapes.md, compiled in) on this adapter.
    Bench(BenchArgs),
    /// Check every op on seeded random cases against the CPU reference, and every shader's
    /// translation by naga; exits 1 on any failure.
    Conformance(ConformanceArgs),
}

#[derive(Args)]
struct ConformanceArgs {
    /// Random cases per op.
    #[arg(long, default_value_t = 200)]
    cases: usize,
    /// Seed of the case generator.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// vulkan | gl | metal | dx12 (default: WGPU_BACKEND, else any).
    #[arg(long)]
    backend: Option<String>,
    /// Substring of the adapter name (default: WGPU_ADAPTER_NAME, else the default adapter).
    #[arg(long)]
    adapter: Option<String>,
    /// Run on every adapter wgpu finds and print one matrix.
    #[arg(long)]
    all_adapters: bool,
    /// Skip the static naga check.
    #[arg(long)]
    no_static: bool,
    /// The probes of where faults hide (long reductions, special values, f16 limits):
    /// quick (65535, 65536, ~100k terms per output), full (also ~1M) or none.
    #[arg(long, default_value = "quick")]
    probes: String,
    /// Write the report(s) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write every case and probe as a replay into this folder: the kernels, constants,
    /// buffers and dispatches as they ran here, with the expected output, for any WebGPU
    /// implementation to run (`conformance/webgpu/`). No static check; one adapter.
    #[arg(long, conflicts_with = "all_adapters")]
    export: Option<PathBuf>,
    /// The device limits to request: `adapter` (all it offers) or `webgpu` (WebGPU's defaults,
    /// what a browser grants without asking: 256-byte offset alignment, 128 MiB bindings).
    /// Default: `webgpu` with --export (so that a replay runs on any implementation), else
    /// `adapter`.
    #[arg(long)]
    limits: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    /// Another suite table in the format of bench/shapes.md.
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Only these case ids (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Algorithm to force (auto, im2col_gemm, implicit_gemm, gemm_1x1, depthwise), or `all`
    /// to time each one that applies.
    #[arg(long, default_value = "auto")]
    algo: String,
    /// Override every case's batch size N.
    #[arg(long)]
    batch: Option<u32>,
    /// Timed runs per case (at least).
    #[arg(long, default_value_t = 10)]
    runs: u32,
    /// Untimed warm-up runs per case (pipeline compilation happens there).
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Keep timing a case until this many seconds have been timed (max 1000 runs).
    #[arg(long, default_value_t = 0.5)]
    min_time: f64,
    /// Fewer runs and a smaller ceiling GEMM: a run of the whole suite in about a minute on lavapipe.
    #[arg(long)]
    quick: bool,
    /// Turn the autotuner on for `--algo auto` (tuning happens in the warm-up, untimed).
    #[arg(long)]
    autotune: bool,
    /// Keep autotuning results in this file (implies --autotune).
    #[arg(long)]
    autotune_cache: Option<PathBuf>,
    /// Tile and register blocking of the tiled GEMM behind the GEMM-based algorithms:
    /// 4x4, 8x8, 16x16 or flat (16x16 without workgroup memory) (default: the engine's).
    #[arg(long)]
    gemm_kernel: Option<String>,
    /// Store the conv2d, conv_transpose2d and deform_conv2d rows' tensors as f16 (f32 accumulation; needs SHADER_F16); the
    /// other ops' rows are n/a.
    #[arg(long)]
    f16: bool,
    /// Also time the backward pass (grad input, weight, bias) of every conv2d row.
    #[arg(long)]
    backward: bool,
    /// Also time depthwise-separable blocks (each depthwise row + a 1x1 to 24 channels),
    /// fused and in two passes.
    #[arg(long)]
    separable: bool,
    /// Skip measuring the adapter's GEMM and copy ceilings.
    #[arg(long)]
    no_ceilings: bool,
    /// Add the high-resolution row `seg_hr` ([4, 64, 512, 512], 3x3, 64 -> 64: 268 MB in and
    /// out, past a 128 MiB storage binding, so one call runs in batch pieces), timed as one
    /// call and as 4 calls of one image. About 3 minutes with --quick on lavapipe.
    #[arg(long)]
    large: bool,
    /// Time with the host clock even when the adapter has timestamp queries.
    #[arg(long)]
    wall_clock: bool,
    /// Output elements spot-checked against the f64 reference per case (0: no check).
    #[arg(long, default_value_t = 256)]
    check_points: usize,
    /// Write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the results as CSV.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write a bar chart of GFLOP/s per case as SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RunOp {
    /// torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups).
    Conv2d(Conv2dArgs),
    /// torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation).
    #[command(name = "conv_transpose2d", alias = "conv-transpose2d")]
    ConvTranspose2d(ConvTranspose2dArgs),
    /// torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask).
    #[command(name = "deform_conv2d", alias = "deform-conv2d")]
    DeformConv2d(DeformArgs),
    /// torch.nn.functional.conv1d on [N, C, L] (padding P | L,R | same | valid).
    Conv1d(Conv2dArgs),
    /// torch.nn.functional.conv3d on [N, C, D, H, W] (stride/padding/dilation: one value or D,H,W).
    Conv3d(ConvArgs),
    /// torch.nn.functional.max_pool2d (ceil_mode false).
    #[command(name = "max_pool2d", alias = "max-pool2d")]
    MaxPool2d(PoolArgs),
    /// torch.nn.functional.avg_pool2d (ceil_mode false).
    #[command(name = "avg_pool2d", alias = "avg-pool2d")]
    AvgPool2d(PoolArgs),
    /// Gradients of conv2d (as PyTorch autograd): grad_input, grad_weight, grad_bias.
    #[command(name = "conv2d_backward", alias = "conv2d-backward")]
    Conv2dBackward(BackwardArgs),
}

#[derive(Args)]
struct DeformArgs {
    #[command(flatten)]
    conv: ConvArgs,
    /// Offsets [N, 2·offset_groups·kh·kw, Ho, Wo] (dy, dx per tap).
    #[arg(long)]
    offset: PathBuf,
    /// Modulation mask [N, offset_groups·kh·kw, Ho, Wo] (v2); absent: v1.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// auto | implicit_gemm | im2col_gemm.
    #[arg(long, default_value = "auto")]
    algo: String,
}

#[derive(Args)]
struct PoolArgs {
    /// Input [N, C, H, W].
    #[arg(long)]
    input: PathBuf,
    /// KH,KW or one value for both.
    #[arg(long)]
    kernel: String,
    /// SH,SW (default: the kernel).
    #[arg(long)]
    stride: Option<String>,
    /// PH,PW, each ≤ kernel/2.
    #[arg(long, default_value = "0")]
    padding: String,
    /// avg_pool2d: divide by the whole window including padding (PyTorch's default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    count_include_pad: bool,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    verify: bool,
}

#[derive(Args)]
struct BackwardArgs {
    /// The conv's input [N, Cin, H, W].
    #[arg(long)]
    input: PathBuf,
    /// The conv's weight [Cout, Cin/groups, kh, kw].
    #[arg(long)]
    weight: PathBuf,
    /// Gradient of the loss with respect to the conv's output [N, Cout, Ho, Wo].
    #[arg(long)]
    grad_output: PathBuf,
    #[arg(long, default_value = "1")]
    stride: String,
    #[arg(long, default_value = "0")]
    padding: String,
    #[arg(long, default_value = "1")]
    dilation: String,
    #[arg(long, default_value_t = 1)]
    groups: u32,
    /// Where to write grad_input (computed only if given).
    #[arg(long)]
    out_grad_input: Option<PathBuf>,
    /// Where to write grad_weight (computed only if given).
    #[arg(long)]
    out_grad_weight: Option<PathBuf>,
    /// Where to write grad_bias (computed only if given).
    #[arg(long)]
    out_grad_bias: Option<PathBuf>,
    /// Also run the naive f64 loops and compare each gradient; exit 3 past tolerance.
    #[arg(long)]
    verify: bool,
}

/// Flags every `run` op shares.
#[derive(Args)]
struct ConvArgs {
    /// Input [N, Cin, H, W], float32 .npy (float64/float16 are converted).
    #[arg(long)]
    input: PathBuf,
    /// Weight: [Cout, Cin/groups, kh, kw] for conv2d, [Cin, Cout/groups, kh, kw] for conv_transpose2d.
    #[arg(long)]
    weight: PathBuf,
    /// Bias [Cout].
    #[arg(long)]
    bias: Option<PathBuf>,
    /// SH,SW or one value for both.
    #[arg(long, default_value = "1")]
    stride: String,
    /// same | valid | P | PH,PW | T,L,B,R (top,left,bottom,right).
    #[arg(long, default_value = "0")]
    padding: String,
    /// DH,DW or one value for both.
    #[arg(long, default_value = "1")]
    dilation: String,
    #[arg(long, default_value_t = 1)]
    groups: u32,
    /// Fused activation: none | relu | relu6 | leaky_relu[:SLOPE] | sigmoid | tanh | gelu.
    #[arg(long, default_value = "none")]
    activation: String,
    /// Output .npy.
    #[arg(long)]
    out: PathBuf,
    /// Also run the CPU reference (f64) and compare; exit 3 past tolerance.
    #[arg(long)]
    verify: bool,
    /// With --f16: store values beyond f16's range (|x| > 65504) as ±inf instead of
    /// refusing them.
    #[arg(long)]
    allow_f16_overflow: bool,
}

#[derive(Args)]
struct Conv2dArgs {
    #[command(flatten)]
    conv: ConvArgs,
    /// auto | im2col_gemm | implicit_gemm | gemm_1x1 | depthwise | direct.
    #[arg(long, default_value = "auto")]
    algo: String,
    /// Store the tensors as f16 on the GPU (f32 accumulation; needs SHADER_F16): the inputs
    /// are rounded to f16, --verify compares with the reference of the rounded inputs at the
    /// f16 tolerance, and the output file holds the f16 values widened to f32.
    #[arg(long)]
    f16: bool,
}

/// The storage `--f16` asks for.
fn storage(f16: bool) -> wgconv::DType {
    if f16 {
        wgconv::DType::F16
    } else {
        wgconv::DType::F32
    }
}

/// `--verify`'s bounds for results stored as `dtype`: the default for f32; for f16, one
/// rounding of the output (2⁻¹¹ relative) with margin.
fn tolerance(dtype: wgconv::DType) -> Tolerance {
    match dtype {
        wgconv::DType::F16 => Tolerance { rel_l2: 1e-3, abs: 1e-3 },
        _ => Tolerance::default(),
    }
}

#[derive(Args)]
struct ConvTranspose2dArgs {
    #[command(flatten)]
    conv: ConvArgs,
    /// OH,OW or one value for both; each < max(stride, dilation).
    #[arg(long, default_value = "0")]
    output_padding: String,
    /// auto | implicit_gemm (output phases, no workspace) | gemm_col2im.
    #[arg(long, default_value = "auto")]
    algo: String,
    /// Store the tensors as f16 on the GPU (implicit_gemm; f32 accumulation; needs
    /// SHADER_F16), as `run conv2d --f16`.
    #[arg(long)]
    f16: bool,
}

/// A failure to report on one line, with its exit code.
struct Failure(String, u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 1)
    }
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("wgconv: internal error (please report): {info}");
    }));
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Info => info(),
        Cmd::Run(RunOp::Conv2d(a)) => run_conv2d(&a),
        Cmd::Run(RunOp::ConvTranspose2d(a)) => run_conv_transpose2d(&a),
        Cmd::Run(RunOp::Conv2dBackward(a)) => run_conv2d_backward(&a),
        Cmd::Run(RunOp::DeformConv2d(a)) => run_deform_conv2d(&a),
        Cmd::Run(RunOp::Conv1d(a)) => run_conv1d(&a),
        Cmd::Run(RunOp::Conv3d(a)) => run_conv3d(&a),
        Cmd::Run(RunOp::MaxPool2d(a)) => run_pool(&a, wgconv::PoolMode::Max),
        Cmd::Run(RunOp::AvgPool2d(a)) => run_pool(&a, wgconv::PoolMode::Avg),
        Cmd::Bench(a) => bench(&a),
        Cmd::Conformance(a) => conformance(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg, code)) => {
            eprintln!("wgconv: error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn info() -> Result<(), Failure> {
    let ctx = GpuContext::new()?;
    let i = ctx.adapter_info();
    let l = ctx.limits();
    println!("adapter      {}", i.name);
    println!("backend      {:?}", i.backend);
    println!("device type  {:?}", i.device_type);
    println!("driver       {} {}", i.driver, i.driver_info);
    println!("features     {:?}", ctx.device().features());
    println!(
        "limits       max_storage_buffer_binding_size {} B, max_buffer_size {} B,",
        l.max_storage_buffer_binding_size, l.max_buffer_size
    );
    println!(
        "             max_compute_workgroups_per_dimension {}, max_compute_invocations_per_workgroup {},",
        l.max_compute_workgroups_per_dimension, l.max_compute_invocations_per_workgroup
    );
    println!(
        "             max_compute_workgroup_storage_size {} B, max_storage_buffers_per_shader_stage {}",
        l.max_compute_workgroup_storage_size, l.max_storage_buffers_per_shader_stage
    );
    println!("all adapters:");
    for a in GpuContext::enumerate_adapters(None) {
        println!("  - {} ({:?}, {:?}, driver {})", a.name, a.backend, a.device_type, a.driver);
    }
    Ok(())
}

fn load(path: &PathBuf, what: &str) -> Result<HostTensor, Failure> {
    let (t, converted) = HostTensor::read_npy(path)?;
    if let Some(from) = converted {
        eprintln!("wgconv: note: {what} {} converted from {from} to float32", path.display());
    }
    Ok(t)
}

fn parse_activation(text: &str) -> Result<Activation, Failure> {
    Activation::parse(text).ok_or_else(|| {
        Failure(
            format!("--activation: unknown '{text}' (none, relu, relu6, leaky_relu[:SLOPE], sigmoid, tanh, gelu)"),
            2,
        )
    })
}

/// The op's input files, loaded and checked by `validate` before a device is opened.
struct Loaded {
    x: HostTensor,
    w: HostTensor,
    b: Option<HostTensor>,
}

fn load_all(a: &ConvArgs) -> Result<Loaded, Failure> {
    Ok(Loaded {
        x: load(&a.input, "input")?,
        w: load(&a.weight, "weight")?,
        b: a.bias.as_ref().map(|p| load(p, "bias")).transpose()?,
    })
}

/// Writes the output, prints what ran, and with `--verify` compares with `reference`.
fn finish(
    a: &ConvArgs,
    out: &HostTensor,
    summary: String,
    reference: impl FnOnce() -> wgconv::Result<Vec<f64>>,
) -> Result<(), Failure> {
    finish_with(a, out, summary, Tolerance::default(), reference, None)
}

/// The loaded inputs as stored in `dtype`: f16 rounds them, refusing values f16 cannot hold
/// (one line naming the tensor, how many values and the largest) unless
/// `--allow-f16-overflow`.
fn stored_as(a: &ConvArgs, dtype: wgconv::DType, l: Loaded) -> Result<Loaded, Failure> {
    let round = |h: HostTensor, what: &str| -> Result<HostTensor, Failure> {
        if a.allow_f16_overflow {
            Ok(h.rounded_to(dtype))
        } else {
            h.checked_to(dtype, what).map_err(|e| Failure(format!("{e} (--allow-f16-overflow stores them as ±inf)"), 2))
        }
    };
    Ok(Loaded {
        x: round(l.x, "the input")?,
        w: round(l.w, "the weight")?,
        b: l.b.map(|b| round(b, "the bias")).transpose()?,
    })
}

/// The f32 reference of the inputs before f16 rounding, for `--verify` of an f16 run: an
/// output that is ±inf or NaN where it is finite fails, whatever the f16 comparison says.
type Unrounded<'a> = Option<Box<dyn FnOnce() -> wgconv::Result<Vec<f64>> + 'a>>;

fn finish_with(
    a: &ConvArgs,
    out: &HostTensor,
    summary: String,
    tol: Tolerance,
    reference: impl FnOnce() -> wgconv::Result<Vec<f64>>,
    unrounded: Unrounded<'_>,
) -> Result<(), Failure> {
    out.write_npy(&a.out)?;
    println!("{summary}");
    println!("wrote {}", a.out.display());
    if a.verify {
        let stats = compare(&out.data, &reference()?);
        let ok = stats.passes(tol);
        println!(
            "verify: {stats}; tolerance rel-L2 ≤ {:.0e}, max-abs ≤ {:.0e}·(1+max|ref|): {}",
            tol.rel_l2,
            tol.abs,
            if ok { "PASS" } else { "FAIL" }
        );
        if !ok {
            return Err(Failure("GPU result differs from the CPU reference beyond tolerance".into(), 3));
        }
        if let Some(unrounded) = unrounded {
            let exact = unrounded()?;
            let bad = out.data.iter().zip(&exact).filter(|(o, r)| !o.is_finite() && r.is_finite()).count();
            if bad > 0 {
                println!("verify: {bad} output(s) are ±inf or NaN where the f32 reference of the unrounded inputs is finite: FAIL");
                return Err(Failure(
                    "f16 storage overflowed: outputs are not finite where the f32 answer is".into(),
                    3,
                ));
            }
        }
    }
    Ok(())
}

fn pads_text(padding: Padding, p: wgconv::Pads) -> String {
    match padding {
        Padding::Same => "same".to_string(),
        _ => format!("{},{},{},{}", p.top, p.left, p.bottom, p.right),
    }
}

fn run_conv2d(args: &Conv2dArgs) -> Result<(), Failure> {
    let a = &args.conv;
    let params = Conv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        algorithm: parse_algos(&args.algo)?
            .into_iter()
            .next()
            .filter(|_| args.algo != "all")
            .ok_or_else(|| Failure("--algo all is for bench; run takes one algorithm".into(), 2))?,
        activation: parse_activation(&a.activation)?,
    };
    let Loaded { x, w, b } = load_all(a)?;
    // Validate before touching the GPU: a bad shape is reported without opening a device.
    let geometry =
        params.validate(&wgconv::params::as_batched(&x.shape, 4), &w.shape, b.as_ref().map(|b| b.shape.as_slice()))?;
    let dtype = storage(args.f16);
    let (x0, w0, b0) = (x.clone(), w.clone(), b.clone());
    let Loaded { x, w, b } = stored_as(a, dtype, Loaded { x, w, b })?;
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let up = |h: &HostTensor| Tensor::from_slice_as_lossy(&ctx, &h.shape, &h.data, dtype);
    let bg = b.as_ref().map(up).transpose()?;
    let (y, info) = conv2d_with_info(&ctx, &up(&x)?, &up(&w)?, bg.as_ref(), &params)?;
    let out = y.to_host(&ctx)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let summary = format!(
        "conv2d {:?} * {:?} (stride {:?}, padding {}, dilation {:?}, groups {}) -> {:?} {} via {} ({} chunk(s), workspace {} B{}) in {ms:.1} ms (upload, first-use compile and readback included) on {}",
        x.shape, w.shape, params.stride, pads_text(params.padding, geometry.pads), params.dilation, params.groups, out.shape,
        dtype.name(), info.algorithm.name(), info.chunks, info.workspace_bytes, split_text(&info), ctx.adapter_info().name
    );
    let unrounded: Unrounded<'_> = (dtype == wgconv::DType::F16).then(|| {
        Box::new(|| wgconv::reference::conv2d(&x0, &w0, b0.as_ref(), &params).map(|(_, r)| r)) as Box<dyn FnOnce() -> _>
    });
    finish_with(
        a,
        &out,
        summary,
        tolerance(dtype),
        || wgconv::reference::conv2d(&x, &w, b.as_ref(), &params).map(|(_, r)| r),
        unrounded,
    )
}

/// How a conv2d beyond one storage binding was split (empty when it was not).
fn split_text(info: &wgconv::Conv2dInfo) -> String {
    match (info.batch_pieces, info.row_bands) {
        _ if info.channel_chunks > 1 => {
            format!("; the weight in {} chunks of output channels (beyond one storage binding)", info.channel_chunks)
        }
        (_, b) if b > 1 => format!("; each image in {b} row bands (beyond one storage binding)"),
        (p, _) if p > 1 => format!("; {p} batch pieces (beyond one storage binding)"),
        _ => String::new(),
    }
}

fn run_conv_transpose2d(args: &ConvTranspose2dArgs) -> Result<(), Failure> {
    let a = &args.conv;
    let params = ConvTranspose2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        output_padding: parse_pair("output-padding", &args.output_padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        activation: parse_activation(&a.activation)?,
        algorithm: Algorithm::from_name(&args.algo)
            .ok_or_else(|| Failure(format!("--algo: unknown '{}' (auto, implicit_gemm, gemm_col2im)", args.algo), 2))?,
    };
    let Loaded { x, w, b } = load_all(a)?;
    let geometry =
        params.validate(&wgconv::params::as_batched(&x.shape, 4), &w.shape, b.as_ref().map(|b| b.shape.as_slice()))?;
    let dtype = storage(args.f16);
    let (x0, w0, b0) = (x.clone(), w.clone(), b.clone());
    let Loaded { x, w, b } = stored_as(a, dtype, Loaded { x, w, b })?;
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let up = |h: &HostTensor| Tensor::from_slice_as_lossy(&ctx, &h.shape, &h.data, dtype);
    let bg = b.as_ref().map(up).transpose()?;
    let (y, info) = wgconv::conv_transpose2d_with_info(&ctx, &up(&x)?, &up(&w)?, bg.as_ref(), &params)?;
    let out = y.to_host(&ctx)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let summary = format!(
        "conv_transpose2d {:?} * {:?} (stride {:?}, padding {}, output_padding {:?}, dilation {:?}, groups {}) -> {:?} {} via {} ({} chunk(s), workspace {} B) in {ms:.1} ms (upload, first-use compile and readback included) on {}",
        x.shape, w.shape, params.stride, pads_text(params.padding, geometry.pads), params.output_padding, params.dilation,
        params.groups, out.shape, dtype.name(), info.algorithm.name(), info.chunks, info.workspace_bytes, ctx.adapter_info().name
    );
    let unrounded: Unrounded<'_> = (dtype == wgconv::DType::F16).then(|| {
        Box::new(|| wgconv::reference::conv_transpose2d(&x0, &w0, b0.as_ref(), &params).map(|(_, r)| r))
            as Box<dyn FnOnce() -> _>
    });
    finish_with(
        a,
        &out,
        summary,
        tolerance(dtype),
        || wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &params).map(|(_, r)| r),
        unrounded,
    )
}

fn run_deform_conv2d(args: &DeformArgs) -> Result<(), Failure> {
    let a = &args.conv;
    let params = wgconv::DeformConv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        activation: parse_activation(&a.activation)?,
        algorithm: Algorithm::from_name(&args.algo)
            .ok_or_else(|| Failure(format!("--algo: unknown '{}' (auto, implicit_gemm, im2col_gemm)", args.algo), 2))?,
    };
    let Loaded { x, w, b } = load_all(a)?;
    let o = load(&args.offset, "offset")?;
    let m = args.mask.as_ref().map(|p| load(p, "mask")).transpose()?;
    let batched = |s: &[usize]| wgconv::params::as_batched(s, 4);
    let dg = params.validate_deform(
        &batched(&x.shape),
        &w.shape,
        &batched(&o.shape),
        m.as_ref().map(|m| batched(&m.shape)).as_deref(),
        b.as_ref().map(|b| b.shape.as_slice()),
    )?;
    // An unbatched input ([C, H, W]) gives an unbatched output.
    let out_shape = &dg.conv.output_shape()[4 - x.shape.len()..];
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let t = |h: &HostTensor| Tensor::from_host(&ctx, h);
    let (mg, bg) = (m.as_ref().map(t).transpose()?, b.as_ref().map(t).transpose()?);
    let y = Tensor::empty(&ctx, out_shape)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let info = wgconv::deform_conv2d_into(
        &ctx,
        &mut encoder,
        &t(&x)?,
        &t(&w)?,
        &t(&o)?,
        mg.as_ref(),
        bg.as_ref(),
        &params,
        &y,
    )?;
    ctx.submit(encoder)?;
    let out = y.to_host(&ctx)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let summary = format!(
        "deform_conv2d {} x{:?} * w{:?}, {} offset group(s) (stride {:?}, padding {}, dilation {:?}, groups {}) -> {:?} via deform {} in {ms:.1} ms (upload, first-use compile and readback included) on {}",
        if m.is_some() { "v2" } else { "v1" }, x.shape, w.shape, dg.offset_groups, params.stride,
        pads_text(params.padding, dg.conv.pads), params.dilation, params.groups, out.shape, info.algorithm.name(),
        ctx.adapter_info().name
    );
    finish(a, &out, summary, || {
        wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &params).map(|(_, r)| r)
    })
}

fn run_conv1d(args: &Conv2dArgs) -> Result<(), Failure> {
    let a = &args.conv;
    let one = |flag: &str, text: &str| -> Result<u32, Failure> {
        text.trim()
            .parse::<u32>()
            .map_err(|_| Failure(format!("--{flag} takes one non-negative integer for conv1d, got '{text}'"), 2))
    };
    let padding = match parse_padding(&a.padding)? {
        Padding::Same => wgconv::Padding1d::Same,
        Padding::Valid => wgconv::Padding1d::Valid,
        Padding::Symmetric([p, q]) if p == q => wgconv::Padding1d::Symmetric(p),
        Padding::Symmetric([l, r]) => wgconv::Padding1d::Explicit { left: l, right: r },
        Padding::Explicit { .. } => {
            return Err(Failure("--padding for conv1d is P, L,R, same or valid".into(), 2));
        }
    };
    let params = wgconv::Conv1dParams {
        stride: one("stride", &a.stride)?,
        padding,
        dilation: one("dilation", &a.dilation)?,
        groups: a.groups,
        activation: parse_activation(&a.activation)?,
        algorithm: Algorithm::from_name(&args.algo)
            .ok_or_else(|| Failure(format!("--algo: unknown '{}'", args.algo), 2))?,
    };
    let Loaded { x, w, b } = load_all(a)?;
    params.validate(&wgconv::params::as_batched(&x.shape, 3), &w.shape, b.as_ref().map(|b| b.shape.as_slice()))?;
    let dtype = storage(args.f16);
    let (x0, w0, b0) = (x.clone(), w.clone(), b.clone());
    let Loaded { x, w, b } = stored_as(a, dtype, Loaded { x, w, b })?;
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let t = |h: &HostTensor| Tensor::from_slice_as_lossy(&ctx, &h.shape, &h.data, dtype);
    let bg = b.as_ref().map(t).transpose()?;
    let out = wgconv::conv1d(&ctx, &t(&x)?, &t(&w)?, bg.as_ref(), &params)?.to_host(&ctx)?;
    let summary = format!(
        "conv1d {:?} * {:?} (stride {}, padding {:?}, dilation {}, groups {}) -> {:?} in {:.1} ms on {}",
        x.shape,
        w.shape,
        params.stride,
        params.padding,
        params.dilation,
        params.groups,
        out.shape,
        t0.elapsed().as_secs_f64() * 1e3,
        ctx.adapter_info().name
    );
    let unrounded: Unrounded<'_> = (dtype == wgconv::DType::F16).then(|| {
        Box::new(|| wgconv::reference::conv1d(&x0, &w0, b0.as_ref(), &params).map(|(_, r)| r)) as Box<dyn FnOnce() -> _>
    });
    finish_with(
        a,
        &out,
        summary,
        tolerance(dtype),
        || wgconv::reference::conv1d(&x, &w, b.as_ref(), &params).map(|(_, r)| r),
        unrounded,
    )
}

fn parse_triple(flag: &str, text: &str) -> Result<[u32; 3], Failure> {
    let vals: Result<Vec<u32>, _> = text.split(',').map(|v| v.trim().parse::<u32>()).collect();
    match vals.as_deref() {
        Ok([v]) => Ok([*v; 3]),
        Ok([a, b, c]) => Ok([*a, *b, *c]),
        _ => Err(Failure(format!("--{flag} takes one value or D,H,W for conv3d, got '{text}'"), 2)),
    }
}

fn run_conv3d(a: &ConvArgs) -> Result<(), Failure> {
    let padding = match a.padding.trim() {
        "same" => wgconv::Padding3d::Same,
        "valid" => wgconv::Padding3d::Valid,
        p => wgconv::Padding3d::Symmetric(parse_triple("padding", p)?),
    };
    let params = wgconv::Conv3dParams {
        stride: parse_triple("stride", &a.stride)?,
        padding,
        dilation: parse_triple("dilation", &a.dilation)?,
        groups: a.groups,
        activation: parse_activation(&a.activation)?,
    };
    let Loaded { x, w, b } = load_all(a)?;
    params.validate(&wgconv::params::as_batched(&x.shape, 5), &w.shape, b.as_ref().map(|b| b.shape.as_slice()))?;
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let t = |h: &HostTensor| Tensor::from_host(&ctx, h);
    let bg = b.as_ref().map(t).transpose()?;
    let out = wgconv::conv3d(&ctx, &t(&x)?, &t(&w)?, bg.as_ref(), &params)?.to_host(&ctx)?;
    let summary = format!(
        "conv3d {:?} * {:?} (stride {:?}, padding {:?}, dilation {:?}, groups {}) -> {:?} via vol2col+gemm in {:.1} ms on {}",
        x.shape, w.shape, params.stride, params.padding, params.dilation, params.groups, out.shape,
        t0.elapsed().as_secs_f64() * 1e3, ctx.adapter_info().name
    );
    finish(a, &out, summary, || wgconv::reference::conv3d(&x, &w, b.as_ref(), &params).map(|(_, r)| r))
}

fn run_pool(a: &PoolArgs, mode: wgconv::PoolMode) -> Result<(), Failure> {
    let params = wgconv::Pool2dParams {
        kernel: parse_pair("kernel", &a.kernel)?,
        stride: a.stride.as_deref().map(|s| parse_pair("stride", s)).transpose()?,
        padding: parse_pair("padding", &a.padding)?,
        count_include_pad: a.count_include_pad,
    };
    let x = load(&a.input, "input")?;
    params.validate(&wgconv::params::as_batched(&x.shape, 4))?;
    let ctx = GpuContext::new()?;
    let xg = Tensor::from_host(&ctx, &x)?;
    let y = match mode {
        wgconv::PoolMode::Max => wgconv::max_pool2d(&ctx, &xg, &params)?,
        wgconv::PoolMode::Avg => wgconv::avg_pool2d(&ctx, &xg, &params)?,
    };
    let out = y.to_host(&ctx)?;
    out.write_npy(&a.out)?;
    println!(
        "{mode:?} pool {:?} (kernel {:?}, stride {:?}, padding {:?}) -> {:?}",
        x.shape,
        params.kernel,
        params.stride(),
        params.padding,
        out.shape
    );
    println!("wrote {}", a.out.display());
    if a.verify {
        let (_, r) = wgconv::reference::pool2d(&x, &params, mode)?;
        let stats = compare(&out.data, &r);
        let ok = stats.passes(Tolerance::default());
        println!("verify: {stats}: {}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            return Err(Failure("GPU result differs from the CPU reference beyond tolerance".into(), 3));
        }
    }
    Ok(())
}

fn run_conv2d_backward(a: &BackwardArgs) -> Result<(), Failure> {
    let params = Conv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        ..Default::default()
    };
    let which = wgconv::Grads {
        input: a.out_grad_input.is_some(),
        weight: a.out_grad_weight.is_some(),
        bias: a.out_grad_bias.is_some(),
    };
    if !(which.input || which.weight || which.bias) {
        return Err(Failure("give at least one of --out-grad-input, --out-grad-weight, --out-grad-bias".into(), 2));
    }
    let (x, w, dy) = (load(&a.input, "input")?, load(&a.weight, "weight")?, load(&a.grad_output, "grad_output")?);
    let g = params.validate(&wgconv::params::as_batched(&x.shape, 4), &w.shape, None)?;
    if wgconv::params::as_batched(&dy.shape, 4) != g.output_shape() {
        return Err(Failure(
            format!("grad_output has shape {:?}, the conv's output is {:?}", dy.shape, g.output_shape()),
            1,
        ));
    }
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let t = |h: &HostTensor| Tensor::from_host(&ctx, h);
    let grads = wgconv::conv2d_backward(&ctx, &t(&x)?, &t(&w)?, &t(&dy)?, &params, which)?;
    let outs = [
        ("grad_input", grads.grad_input, &a.out_grad_input),
        ("grad_weight", grads.grad_weight, &a.out_grad_weight),
        ("grad_bias", grads.grad_bias, &a.out_grad_bias),
    ];
    let mut host = Vec::new();
    for (name, tensor, path) in outs {
        if let (Some(tensor), Some(path)) = (tensor, path) {
            let h = tensor.to_host(&ctx)?;
            h.write_npy(path)?;
            host.push((name, h, path.clone()));
        }
    }
    println!(
        "conv2d_backward x{:?} w{:?} dy{:?} -> {} in {:.1} ms (upload, first-use compile and readback included) on {}",
        x.shape,
        w.shape,
        dy.shape,
        host.iter().map(|(n, h, _)| format!("{n}{:?}", h.shape)).collect::<Vec<_>>().join(", "),
        t0.elapsed().as_secs_f64() * 1e3,
        ctx.adapter_info().name
    );
    for (_, _, path) in &host {
        println!("wrote {}", path.display());
    }
    if a.verify {
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &params)?;
        let tol = Tolerance::default();
        let mut all = true;
        for (name, h, _) in &host {
            let want = match *name {
                "grad_input" => &rdx,
                "grad_weight" => &rdw,
                _ => &rdb,
            };
            let stats = compare(&h.data, want);
            let ok = stats.passes(tol);
            all &= ok;
            println!("verify {name}: {stats}: {}", if ok { "PASS" } else { "FAIL" });
        }
        if !all {
            return Err(Failure("a gradient differs from the CPU reference beyond tolerance".into(), 3));
        }
    }
    Ok(())
}

fn parse_algos(text: &str) -> Result<Vec<Algorithm>, Failure> {
    if text == "all" {
        return Ok(Algorithm::ALL.into_iter().chain([Algorithm::GemmCol2im]).collect());
    }
    Algorithm::from_name(text).map(|a| vec![a]).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().chain(&[Algorithm::GemmCol2im]).map(|a| a.name()).collect();
        Failure(format!("--algo: unknown '{text}' (auto, all, {})", names.join(", ")), 2)
    })
}

/// A one-line progress bar on stderr (only when stderr is a terminal).
struct Progress {
    total: usize,
    done: usize,
    tty: bool,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
        use std::io::IsTerminal;
        Progress { total, done: 0, tty: std::io::stderr().is_terminal(), started: Instant::now() }
    }
    fn show(&self, what: &str) {
        if !self.tty {
            return;
        }
        let width = 30;
        let filled = width * self.done / self.total.max(1);
        eprint!(
            "\r\x1b[2K[{}{}] {}/{} {:.0}s {what}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
    }
    fn step(&mut self) {
        self.done += 1;
    }
    fn finish(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

fn write_file(path: &PathBuf, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| Failure(format!("{}: {e}", path.display()), 1))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn bench(a: &BenchArgs) -> Result<(), Failure> {
    let text = match &a.suite {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Failure(format!("{}: {e}", p.display()), 1))?,
        None => DEFAULT_SUITE.to_string(),
    };
    let mut cases = parse_suite(&text).map_err(|e| Failure(format!("suite: {e}"), 2))?;
    if a.large {
        cases.extend(parse_suite(wgconv::bench::LARGE_ROW).map_err(|e| Failure(format!("suite: {e}"), 2))?);
    }
    if !a.only.is_empty() {
        if let Some(bad) = a.only.iter().find(|id| !cases.iter().any(|c| &c.id == *id)) {
            return Err(Failure(format!("--only: no case '{bad}' in the suite"), 2));
        }
        cases.retain(|c| a.only.contains(&c.id));
    }
    if let Some(n) = a.batch {
        if n == 0 {
            return Err(Failure("--batch must be ≥ 1".into(), 2));
        }
        cases.iter_mut().for_each(|c| c.n = n);
    }
    let algos = parse_algos(&a.algo)?;
    let opts = BenchOptions {
        warmup: if a.quick { 1 } else { a.warmup },
        runs: if a.quick { 3 } else { a.runs },
        min_time: std::time::Duration::from_secs_f64(if a.quick { 0.0 } else { a.min_time.max(0.0) }),
        check_points: a.check_points,
        wall_clock: a.wall_clock,
        dtype: if a.f16 { wgconv::DType::F16 } else { wgconv::DType::F32 },
    };
    let ctx = GpuContext::new()?;
    if let Some(k) = &a.gemm_kernel {
        let kernel = match k.as_str() {
            "4x4" => wgconv::GemmKernel::Block4x4,
            "8x8" => wgconv::GemmKernel::Block8x8,
            "16x16" => wgconv::GemmKernel::Block16x16,
            "flat" => wgconv::GemmKernel::Flat16x16,
            other => return Err(Failure(format!("--gemm-kernel: unknown '{other}' (4x4, 8x8, 16x16, flat)"), 2)),
        };
        ctx.set_config(wgconv::EngineConfig { gemm_kernel: kernel, ..ctx.config() });
    }
    if let Some(p) = &a.autotune_cache {
        let n = ctx.set_autotune_cache(p)?;
        eprintln!("autotune: {n} entries for this adapter loaded from {}", p.display());
    }
    ctx.autotune(a.autotune || a.autotune_cache.is_some());
    let backward_rows =
        if a.backward { cases.iter().filter(|c| c.op == wgconv::bench::BenchOp::Conv2d).count() } else { 0 };
    let batch1_rows = usize::from(a.large && cases.iter().any(|c| c.id == "seg_hr"));
    let mut progress =
        Progress::new(cases.len() * algos.len() + backward_rows + batch1_rows + usize::from(!a.no_ceilings));
    let ceilings = if a.no_ceilings {
        None
    } else {
        progress.show("ceilings: large GEMM and copy");
        let (size, mib) = if a.quick { (512, 64) } else { (1024, 256) };
        let c = measure_ceilings(&ctx, size, mib, &opts)?;
        progress.step();
        Some(c)
    };
    let mut results = Vec::new();
    for case in &cases {
        for &algo in &algos {
            progress.show(&format!("{} ({})", case.id, algo.name()));
            results.push(run_case(&ctx, case, algo, &opts));
            progress.step();
        }
        if a.separable && case.op == wgconv::bench::BenchOp::Conv2d && case.groups == case.c_in && case.groups > 1 {
            for fused in [false, true] {
                progress.show(&format!("{} (separable)", case.id));
                results.push(wgconv::bench::run_separable(&ctx, case, 24, fused, &opts));
            }
        }
        if a.large && case.id == "seg_hr" {
            progress.show(&format!("{} (batch-1 calls)", case.id));
            results.push(wgconv::bench::run_batch1_calls(&ctx, case, &opts));
            progress.step();
        }
        if a.backward && case.op == wgconv::bench::BenchOp::Conv2d {
            progress.show(&format!("{} (backward)", case.id));
            results.push(wgconv::bench::run_backward_case(&ctx, case, &opts));
            progress.step();
        }
    }
    progress.finish();
    let report = Report::new(&ctx, ceilings, results);
    print!("{}", report.table());
    if let Some(p) = &a.json {
        write_file(p, &serde_json::to_string_pretty(&report).map_err(|e| Failure(e.to_string(), 1))?)?;
    }
    if let Some(p) = &a.csv {
        write_file(p, &report.csv())?;
    }
    if let Some(p) = &a.plot {
        write_file(p, &report.svg())?;
    }
    let failed: Vec<&str> =
        report.results.iter().filter(|r| r.status.starts_with("error")).map(|r| r.id.as_str()).collect();
    if !failed.is_empty() {
        return Err(Failure(format!("{} case(s) failed: {}", failed.len(), failed.join(", ")), 3));
    }
    Ok(())
}

fn parse_backend(name: &str) -> Result<wgpu::Backends, Failure> {
    match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => Ok(wgpu::Backends::VULKAN),
        "gl" | "gles" | "opengl" => Ok(wgpu::Backends::GL),
        "metal" | "mtl" => Ok(wgpu::Backends::METAL),
        "dx12" | "d3d12" => Ok(wgpu::Backends::DX12),
        other => Err(Failure(format!("--backend: unknown '{other}' (vulkan, gl, metal, dx12)"), 2)),
    }
}

fn conformance(a: &ConformanceArgs) -> Result<(), Failure> {
    let probes = match a.probes.as_str() {
        "quick" => Some(wgconv::probes::ProbeScale::Quick),
        "full" => Some(wgconv::probes::ProbeScale::Full),
        "none" => None,
        other => return Err(Failure(format!("--probes: unknown '{other}' (quick, full, none)"), 2)),
    };
    let backends = a.backend.as_deref().map(parse_backend).transpose()?;
    let limits = match a.limits.as_deref().unwrap_or(if a.export.is_some() { "webgpu" } else { "adapter" }) {
        "adapter" => None,
        "webgpu" => Some(wgpu::Limits::default()),
        other => return Err(Failure(format!("--limits: unknown '{other}' (adapter, webgpu)"), 2)),
    };
    let targets: Vec<ContextOptions> = if a.all_adapters {
        let found = GpuContext::enumerate_adapters(backends);
        if found.is_empty() {
            return Err(Failure("no adapters found".into(), 1));
        }
        found
            .into_iter()
            .map(|i| ContextOptions {
                backends: Some(wgpu::Backends::from(i.backend)),
                adapter_name: Some(i.name),
                limits: limits.clone(),
            })
            .collect()
    } else {
        vec![ContextOptions { backends, adapter_name: a.adapter.clone(), limits }]
    };
    let mut reports: Vec<ConformanceReport> = Vec::new();
    let mut open_failures = Vec::new();
    for (i, opts) in targets.into_iter().enumerate() {
        let label = match (&opts.backends, &opts.adapter_name) {
            (None, None) => "default adapter".to_string(),
            (b, n) => format!(
                "{} {}",
                b.map_or("any backend".to_string(), |b| format!("{b:?}")),
                n.clone().unwrap_or_default()
            ),
        };
        eprintln!("conformance: {label}");
        let ctx = match GpuContext::with_options(opts) {
            Ok(c) => c,
            Err(e) if a.all_adapters => {
                open_failures.push(format!("{label}: {e}"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let report = match &a.export {
            Some(dir) => {
                let (report, written) = wgconv::conformance::export_all(&ctx, a.seed, a.cases, probes, dir)?;
                eprintln!("conformance: {written} replay cases written to {}", dir.display());
                report
            }
            // The static check does not depend on the adapter: run it once.
            None => run_all(&ctx, a.seed, a.cases, !a.no_static && i == 0, probes),
        };
        print!("{}", report.table());
        reports.push(report);
    }
    if reports.len() > 1 {
        println!("\nmatrix ({} cases per op, seed {}; passed/applicable per op/algorithm):", a.cases, a.seed);
        let ops: Vec<String> = reports[0].ops.iter().map(|o| o.op.clone()).collect();
        print!("{:<36} {:<8}", "adapter", "backend");
        for op in &ops {
            print!(" {:>22}", op);
        }
        println!(" result");
        for r in &reports {
            print!("{:<36} {:<8}", r.adapter, r.backend);
            for o in &r.ops {
                print!(" {:>22}", format!("{}/{}", o.passed, o.cases));
            }
            println!(" {}", if r.ok() { "PASS" } else { "FAIL" });
        }
    }
    for f in &open_failures {
        println!("could not open {f}");
    }
    if let Some(p) = &a.json {
        write_file(p, &serde_json::to_string_pretty(&reports).map_err(|e| Failure(e.to_string(), 1))?)?;
    }
    let failed = reports.iter().filter(|r| !r.ok()).count();
    if failed > 0 || !open_failures.is_empty() {
        return Err(Failure(
            format!("{failed} adapter(s) failed conformance, {} could not be opened", open_failures.len()),
            1,
        ));
    }
    Ok(())
}
