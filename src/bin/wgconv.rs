//! The `wgconv` command line: `info`, `run <op>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use wgconv::bench::{measure_ceilings, parse_suite, run_case, BenchOptions, Report, DEFAULT_SUITE};
use wgconv::cli::{parse_padding, parse_pair};
use wgconv::conformance::{
    run_all, ConformanceReport, Conv1dBackwardCase, Conv1dCase, Conv2dBackwardCase, Conv2dCase, Conv3dBackwardCase,
    Conv3dCase, ConvTranspose1dBackwardCase, ConvTranspose1dCase, ConvTranspose2dBackwardCase, ConvTranspose2dCase,
    ConvTranspose3dBackwardCase, ConvTranspose3dCase, DeformConv2dBackwardCase, DeformConv2dCase, OpCase,
    Pool2dBackwardCase, Pool2dCase,
};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    Activation, Algorithm, ContextOptions, Conv2dParams, ConvTranspose2dParams, GpuContext, HostTensor, Padding, Tensor,
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
    /// Run one op on .npy files (or arrays of .npz archives).
    #[command(subcommand)]
    Run(RunOp),
    /// Time the benchmark shape suite (bench/shapes.md, compiled in) on this adapter.
    Bench(BenchArgs),
    /// Check every op on seeded random cases against the CPU reference, and every shader's
    /// translation by naga; exits 1 on any failure.
    Conformance(ConformanceArgs),
    /// A layer's (or a stack's) numbers: output shape, parameters, MACs and FLOPs, receptive
    /// field and jump, memory, binding splits, the algorithm Auto picks here and why, and
    /// the launches its plan records. No GPU work.
    Explain(ExplainArgs),
    /// Bench runs side by side: each side's median per case and its ratio to the first side's,
    /// with their geometric mean (BENCHMARKS.md's tables). Reads `wgconv bench --json` reports
    /// or a peer's array of {id, median_ms}; no GPU work.
    Compare(CompareArgs),
}

#[derive(Args)]
struct CompareArgs {
    /// The sides, the first the baseline: each a JSON file, or comma-separated files (rounds of
    /// an interleaved measurement: each case's fastest median is taken).
    #[arg(required = true, num_args = 2..)]
    sides: Vec<String>,
    /// Column titles, comma-separated, one per side (default: each side's first file's stem).
    #[arg(long)]
    names: Option<String>,
    /// A GitHub markdown table instead of aligned text.
    #[arg(long)]
    markdown: bool,
}

#[derive(Args)]
struct ExplainArgs {
    /// conv2d, conv2d_backward (every gradient, grad_bias with --bias), conv_transpose2d,
    /// deform_conv2d, conv1d or conv3d (with --weight-shape), max_pool2d or avg_pool2d (with
    /// --kernel); or a stack with --layers.
    op: Option<String>,
    /// N,C,H,W (conv1d: N,C,L; conv3d: N,C,D,H,W; the stack's input with --layers).
    #[arg(long)]
    input_shape: String,
    /// Cout,Cin/groups,kh,kw (conv_transpose2d: Cin,Cout/groups,kh,kw; conv1d: Cout,Cin/groups,k;
    /// conv3d: Cout,Cin/groups,kd,kh,kw).
    #[arg(long)]
    weight_shape: Option<String>,
    /// deform_conv2d: offset groups (the offset has 2·G·kh·kw channels).
    #[arg(long, default_value_t = 1)]
    offset_groups: usize,
    /// deform_conv2d: with a mask (DCN v2).
    #[arg(long)]
    mask: bool,
    /// conv_transpose2d: output_padding (one value or H,W).
    #[arg(long, default_value = "0")]
    output_padding: String,
    /// The conv has a bias [Cout].
    #[arg(long)]
    bias: bool,
    /// KH,KW (pooling).
    #[arg(long)]
    kernel: Option<String>,
    #[arg(long)]
    stride: Option<String>,
    #[arg(long, default_value = "0")]
    padding: String,
    #[arg(long, default_value = "1")]
    dilation: String,
    #[arg(long, default_value_t = 1)]
    groups: u32,
    /// The tensors stored as f16.
    #[arg(long)]
    f16: bool,
    /// A stack of layers, one per line (see `wgconv::explain::stack`): `conv2d 64 k=7 s=2
    /// p=3 bias`, `max_pool2d k=3 s=2 p=1`, ...
    #[arg(long)]
    layers: Option<PathBuf>,
    /// Also write the numbers as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
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
    /// Algorithm to force (auto, im2col_gemm, implicit_gemm, gemm_1x1, depthwise, direct,
    /// winograd; gemm_col2im for conv_transpose2d), or `all` to time each one that applies.
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
    /// Whether the flat GEMM reads A (the weights) from 64 KiB uniform windows, one per K pass:
    /// auto (CPU adapters, where K fits one window), on (wherever it applies, K in passes) or off.
    #[arg(long, value_parser = ["auto", "on", "off"], default_value = "auto")]
    uniform_a: String,
    /// Store the conv2d, conv_transpose2d and deform_conv2d rows' tensors as f16 (f32 accumulation; needs SHADER_F16); the
    /// other ops' rows are n/a.
    #[arg(long)]
    f16: bool,
    /// conv2d and conv_transpose2d rows with channels-last (NHWC) input and output, read and
    /// written natively (the other ops' rows are n/a): compare with the same rows without it.
    #[arg(long)]
    channels_last: bool,
    /// Also time the backward pass (grad input, weight, bias) of every conv2d and
    /// conv_transpose2d row.
    #[arg(long)]
    backward: bool,
    /// Also time depthwise-separable blocks (each depthwise row + a 1x1 to 24 channels),
    /// fused and in two passes.
    #[arg(long)]
    separable: bool,
    /// After timing each case, time each of its launches (kernel dispatches) in a compute pass
    /// of its own, 3 runs, and print their medians and shares per case (needs timestamp
    /// queries; in the JSON as `profile`).
    #[arg(long)]
    profile: bool,
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
    /// Write a roofline as SVG: GFLOP/s against FLOPs per byte, under the adapter's GEMM
    /// and copy ceilings (not drawn with --no-ceilings).
    #[arg(long)]
    roofline: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RunOp {
    /// torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups).
    Conv2d(Conv2dArgs),
    /// torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation).
    #[command(name = "conv_transpose2d", alias = "conv-transpose2d")]
    ConvTranspose2d(ConvTranspose2dArgs),
    /// torch.nn.functional.conv_transpose1d on [N, Cin, L], weight [Cin, Cout/groups, k]:
    /// conv_transpose2d's flags with one value each (padding P, L,R or valid).
    #[command(name = "conv_transpose1d", alias = "conv-transpose1d")]
    ConvTranspose1d(ConvTranspose2dArgs),
    /// torch.nn.functional.conv_transpose3d on [N, Cin, D, H, W], weight [Cin, Cout/groups, kd, kh, kw]:
    /// stride/padding/output_padding/dilation one value or D,H,W (f32).
    #[command(name = "conv_transpose3d", alias = "conv-transpose3d")]
    ConvTranspose3d(ConvTranspose3dArgs),
    /// torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask).
    #[command(name = "deform_conv2d", alias = "deform-conv2d")]
    DeformConv2d(DeformArgs),
    /// torch.nn.functional.conv1d on [N, C, L] (padding P | L,R | same | valid).
    Conv1d(Conv2dArgs),
    /// torch.nn.functional.conv3d on [N, C, D, H, W] (stride/padding/dilation: one value or D,H,W).
    Conv3d(ConvArgs),
    /// torch.nn.functional.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode).
    #[command(name = "max_pool2d", alias = "max-pool2d")]
    MaxPool2d(PoolArgs),
    /// torch.nn.functional.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
    /// divisor_override).
    #[command(name = "avg_pool2d", alias = "avg-pool2d")]
    AvgPool2d(PoolArgs),
    /// Gradients of conv2d (as PyTorch autograd): grad_input, grad_weight, grad_bias.
    #[command(name = "conv2d_backward", alias = "conv2d-backward")]
    Conv2dBackward(BackwardArgs),
    /// Gradients of conv1d (as PyTorch autograd) on [N, C, L]: conv2d_backward's flags, one
    /// value per axis (padding P, L,R, same or valid).
    #[command(name = "conv1d_backward", alias = "conv1d-backward")]
    Conv1dBackward(BackwardArgs),
    /// Gradients of conv3d (as PyTorch autograd) on [N, C, D, H, W]: conv2d_backward's flags,
    /// one value or D,H,W per axis (padding P, D,H,W, same or valid).
    #[command(name = "conv3d_backward", alias = "conv3d-backward")]
    Conv3dBackward(BackwardArgs),
    /// Gradients of conv_transpose2d (as PyTorch autograd): conv2d_backward's flags with the
    /// weight [Cin, Cout/groups, kh, kw], --output-padding, and the forward's --bias (its
    /// shape is checked; no gradient depends on its values).
    #[command(name = "conv_transpose2d_backward", alias = "conv-transpose2d-backward")]
    ConvTranspose2dBackward(TransposedBackwardArgs),
    /// Gradients of conv_transpose1d (as PyTorch autograd) on [N, Cin, L]:
    /// conv_transpose2d_backward's flags, one value per axis.
    #[command(name = "conv_transpose1d_backward", alias = "conv-transpose1d-backward")]
    ConvTranspose1dBackward(TransposedBackwardArgs),
    /// Gradients of conv_transpose3d (as PyTorch autograd) on [N, Cin, D, H, W]:
    /// conv_transpose2d_backward's flags, one value or D,H,W per axis.
    #[command(name = "conv_transpose3d_backward", alias = "conv-transpose3d-backward")]
    ConvTranspose3dBackward(TransposedBackwardArgs),
    /// Gradients of torchvision.ops.deform_conv2d (as autograd): conv2d_backward's flags with
    /// --offset, --mask (v2), the forward's --bias (its shape is checked), and
    /// --out-grad-offset, --out-grad-mask.
    #[command(name = "deform_conv2d_backward", alias = "deform-conv2d-backward")]
    DeformConv2dBackward(DeformBackwardArgs),
    /// Gradient of max_pool2d (as PyTorch autograd): the window's maximum (first on ties,
    /// last NaN) gets the window's gradient.
    #[command(name = "max_pool2d_backward", alias = "max-pool2d-backward")]
    MaxPool2dBackward(PoolBackwardArgs),
    /// Gradient of avg_pool2d (as PyTorch autograd).
    #[command(name = "avg_pool2d_backward", alias = "avg-pool2d-backward")]
    AvgPool2dBackward(PoolBackwardArgs),
}

#[derive(Args)]
struct PoolBackwardArgs {
    /// The pooling's input [N, C, H, W].
    #[arg(long)]
    input: PathBuf,
    /// Gradient of the loss with respect to the pooling's output [N, C, Ho, Wo].
    #[arg(long)]
    grad_output: PathBuf,
    #[command(flatten)]
    options: PoolOptions,
    /// Where to write grad_input [N, C, H, W].
    #[arg(long)]
    out_grad_input: PathBuf,
    /// Also run the naive f64 loops and compare; exit 3 past tolerance.
    #[arg(long)]
    verify: bool,
}

#[derive(Args)]
struct DeformBackwardArgs {
    #[command(flatten)]
    backward: BackwardArgs,
    /// Offsets [N, 2·offset_groups·kh·kw, Ho, Wo] (dy, dx per tap).
    #[arg(long)]
    offset: PathBuf,
    /// Modulation mask [N, offset_groups·kh·kw, Ho, Wo] (v2); absent: v1.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// The forward's bias [Cout] (optional).
    #[arg(long)]
    bias: Option<PathBuf>,
    /// Where to write grad_offset (computed only if given).
    #[arg(long)]
    out_grad_offset: Option<PathBuf>,
    /// Where to write grad_mask (computed only if given; needs --mask).
    #[arg(long)]
    out_grad_mask: Option<PathBuf>,
}

#[derive(Args)]
struct TransposedBackwardArgs {
    #[command(flatten)]
    backward: BackwardArgs,
    /// OH,OW or one value for both; each < max(stride, dilation).
    #[arg(long, default_value = "0")]
    output_padding: String,
    /// The forward's bias [Cout] (optional).
    #[arg(long)]
    bias: Option<PathBuf>,
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

/// The pooling flags of `run` (forward and backward), PyTorch's options.
#[derive(Args)]
struct PoolOptions {
    /// KH,KW or one value for both.
    #[arg(long)]
    kernel: String,
    /// SH,SW (default: the kernel).
    #[arg(long)]
    stride: Option<String>,
    /// PH,PW, each ≤ kernel/2.
    #[arg(long, default_value = "0")]
    padding: String,
    /// max_pool2d: DH,DW, the window's taps apart.
    #[arg(long, default_value = "1")]
    dilation: String,
    /// Round the output size up (the last window must start inside the input or its padding).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    ceil_mode: bool,
    /// avg_pool2d: divide by the window including padding (PyTorch's default) or its in-image positions.
    #[arg(long, num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    count_include_pad: bool,
    /// avg_pool2d: divide by D instead.
    #[arg(long)]
    divisor_override: Option<u32>,
}

impl PoolOptions {
    fn params(&self) -> Result<wgconv::Pool2dParams, Failure> {
        Ok(wgconv::Pool2dParams {
            kernel: parse_pair("kernel", &self.kernel)?,
            stride: self.stride.as_deref().map(|s| parse_pair("stride", s)).transpose()?,
            padding: parse_pair("padding", &self.padding)?,
            dilation: parse_pair("dilation", &self.dilation)?,
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
            divisor_override: self.divisor_override,
            adaptive: None,
        })
    }
}

#[derive(Args)]
struct PoolArgs {
    /// Input [N, C, H, W].
    #[arg(long)]
    input: PathBuf,
    #[command(flatten)]
    options: PoolOptions,
    #[arg(long)]
    out: PathBuf,
    /// max_pool2d: also write each window's flat in-plane index (PyTorch's return_indices)
    /// here, as int64.
    #[arg(long)]
    out_indices: Option<PathBuf>,
    #[arg(long)]
    verify: bool,
}

#[derive(Args)]
struct BackwardArgs {
    /// The conv's input [N, Cin, H, W] (conv1d: [N, Cin, L]).
    #[arg(long)]
    input: PathBuf,
    /// The conv's weight [Cout, Cin/groups, kh, kw] (conv1d: [Cout, Cin/groups, k]).
    #[arg(long)]
    weight: PathBuf,
    /// Gradient of the loss with respect to the conv's output [N, Cout, Ho, Wo] (conv1d: [N, Cout, Lo]).
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
    /// What the padding reads (conv1d, conv2d, conv3d): zeros | reflect | replicate | circular.
    /// The transposed and deformable convs take zeros only, as in PyTorch.
    #[arg(long, default_value = "zeros")]
    padding_mode: String,
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
    /// Input [N, Cin, H, W]: a .npy file or an array of a .npz archive (f.npz:NAME); float32
    /// (float64, float16, integers and bool are converted, with a note).
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
    /// What the padding reads (conv1d, conv2d, conv3d; nn.ConvNd's padding_mode): zeros |
    /// reflect | replicate | circular. Transposed and deformable convs take zeros only, as in PyTorch.
    #[arg(long, default_value = "zeros")]
    padding_mode: String,
    /// Output: .npy, or .npz (the array named `output`, or f.npz:NAME).
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
    #[command(flatten)]
    layouts: LayoutArgs,
}

/// The memory layouts of conv2d's and conv_transpose2d's input and output files.
#[derive(Args)]
struct LayoutArgs {
    /// nchw | nhwc: the --input file holds [N, C, H, W], or [N, H, W, C] (channels-last: an
    /// HWC image batch), read by the kernels as stored (no transpose).
    #[arg(long, default_value = "nchw")]
    input_layout: String,
    /// nchw | nhwc: write the output as [N, Cout, Ho, Wo], or as [N, Ho, Wo, Cout] written so
    /// by the kernels.
    #[arg(long, default_value = "nchw")]
    output_layout: String,
}

impl LayoutArgs {
    /// The layouts asked for; a channels-last input file's `[N, H, W, C]` shape becomes the
    /// logical `[N, C, H, W]` (the same values: what the case uploads).
    fn apply(&self, input: &mut HostTensor) -> Result<wgconv::Conv2dLayouts, Failure> {
        let parse = |flag: &str, text: &str| match text.trim() {
            "nchw" => Ok(wgconv::Layout::Contiguous),
            "nhwc" => Ok(wgconv::Layout::ChannelsLast),
            other => Err(Failure(format!("--{flag}: unknown '{other}' (nchw, nhwc)"), 2)),
        };
        let layouts = wgconv::Conv2dLayouts {
            input: parse("input-layout", &self.input_layout)?,
            output: parse("output-layout", &self.output_layout)?,
        };
        if layouts.input == wgconv::Layout::ChannelsLast {
            let s = &input.shape;
            if s.len() != 4 {
                return Err(Failure(format!("--input-layout nhwc: the input {s:?} is not [N, H, W, C]"), 2));
            }
            input.shape = vec![s[0], s[3], s[1], s[2]];
        }
        Ok(layouts)
    }
}

/// `, <input> in, <output> out` for a summary line (empty for NCHW).
fn layouts_text(l: wgconv::Conv2dLayouts) -> String {
    match (l.input, l.output) {
        (wgconv::Layout::Contiguous, wgconv::Layout::Contiguous) => String::new(),
        (i, o) => format!(", {} in, {} out", i.name(), o.name()),
    }
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
    #[command(flatten)]
    layouts: LayoutArgs,
}

#[derive(Args)]
struct ConvTranspose3dArgs {
    #[command(flatten)]
    conv: ConvArgs,
    /// One value or D,H,W; each < max(stride, dilation) on its axis.
    #[arg(long, default_value = "0")]
    output_padding: String,
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
        Cmd::Run(RunOp::Conv1dBackward(a)) => run_conv1d_backward(&a),
        Cmd::Run(RunOp::Conv3dBackward(a)) => run_conv3d_backward(&a),
        Cmd::Run(RunOp::ConvTranspose2dBackward(a)) => run_conv_transpose2d_backward(&a),
        Cmd::Run(RunOp::ConvTranspose1d(a)) => run_conv_transpose1d(&a),
        Cmd::Run(RunOp::ConvTranspose3d(a)) => run_conv_transpose3d(&a),
        Cmd::Run(RunOp::ConvTranspose1dBackward(a)) => run_conv_transpose1d_backward(&a),
        Cmd::Run(RunOp::ConvTranspose3dBackward(a)) => run_conv_transpose3d_backward(&a),
        Cmd::Run(RunOp::DeformConv2dBackward(a)) => run_deform_conv2d_backward(&a),
        Cmd::Run(RunOp::MaxPool2dBackward(a)) => run_pool_backward(&a, wgconv::PoolMode::Max),
        Cmd::Run(RunOp::AvgPool2dBackward(a)) => run_pool_backward(&a, wgconv::PoolMode::Avg),
        Cmd::Run(RunOp::DeformConv2d(a)) => run_deform_conv2d(&a),
        Cmd::Run(RunOp::Conv1d(a)) => run_conv1d(&a),
        Cmd::Run(RunOp::Conv3d(a)) => run_conv3d(&a),
        Cmd::Run(RunOp::MaxPool2d(a)) => run_pool(&a, wgconv::PoolMode::Max),
        Cmd::Run(RunOp::AvgPool2d(a)) => run_pool(&a, wgconv::PoolMode::Avg),
        Cmd::Bench(a) => bench(&a),
        Cmd::Conformance(a) => conformance(&a),
        Cmd::Explain(a) => explain(&a),
        Cmd::Compare(a) => compare_runs(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg, code)) => {
            eprintln!("wgconv: error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn compare_runs(a: &CompareArgs) -> Result<(), Failure> {
    use wgconv::bench::compare::{table, Side};
    let names: Vec<&str> = a.names.as_deref().map(|n| n.split(',').collect()).unwrap_or_default();
    if !names.is_empty() && names.len() != a.sides.len() {
        return Err(Failure(format!("--names gives {} names for {} sides", names.len(), a.sides.len()), 2));
    }
    let mut sides = Vec::with_capacity(a.sides.len());
    for (i, side) in a.sides.iter().enumerate() {
        let files: Vec<PathBuf> = side.split(',').map(PathBuf::from).collect();
        let files: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
        sides.push(Side::load(&files, names.get(i).copied()).map_err(|e| Failure(e, 1))?);
    }
    print!("{}", table(&sides, a.markdown).map_err(|e| Failure(e, 2))?);
    Ok(())
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
        "             max_compute_workgroup_storage_size {} B, max_storage_buffers_per_shader_stage {},",
        l.max_compute_workgroup_storage_size, l.max_storage_buffers_per_shader_stage
    );
    println!(
        "             max_uniform_buffer_binding_size {} B, max_uniform_buffers_per_shader_stage {}",
        l.max_uniform_buffer_binding_size, l.max_uniform_buffers_per_shader_stage
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

/// One `wgconv run` call: the op's case (its one description, [`OpCase`]: the GPU call and
/// the f64 reference that conformance, the replay export and the tests use; built from the
/// files' shapes, its seed unused), the inputs loaded from files in the case's order, and
/// where each output the case computes goes.
struct RunCall<'a, C> {
    case: C,
    /// (what, tensor): `what` names the tensor in messages.
    inputs: Vec<(&'static str, HostTensor)>,
    /// (name, file) of each output, in the case's output order.
    outputs: Vec<(&'static str, &'a PathBuf)>,
    dtype: wgconv::DType,
    allow_f16_overflow: bool,
    verify: bool,
    /// The outputs are channels-last: each written with the shape `[N, H, W, C]` its values
    /// are in (the case's expected values are in that order too).
    nhwc_outputs: bool,
}

/// Stores the inputs as `dtype` (f16 refuses values it cannot hold, one line naming the
/// tensor, unless `--allow-f16-overflow`), runs the case on a new context, writes each
/// output, prints `summary` (given the context, the outputs and the milliseconds the call
/// took with upload, first-use compile and readback) and the files written; with `--verify`
/// compares each output with the reference of the stored inputs (exit 3 past tolerance),
/// and for f16 also with the f32 reference of the unrounded inputs: an output that is ±inf
/// or NaN where that one is finite fails, whatever the f16 comparison says.
fn run_call<C: OpCase>(
    call: RunCall<'_, C>,
    summary: impl FnOnce(&GpuContext, &[HostTensor], f64) -> Result<String, Failure>,
) -> Result<(), Failure> {
    let RunCall { case, inputs, outputs, dtype, allow_f16_overflow, verify, nhwc_outputs } = call;
    let unrounded: Vec<HostTensor> = inputs.iter().map(|(_, h)| h.clone()).collect();
    let stored = inputs
        .into_iter()
        .map(|(what, h)| {
            if allow_f16_overflow {
                Ok(h.rounded_to(dtype))
            } else {
                h.checked_to(dtype, what)
                    .map_err(|e| Failure(format!("{e} (--allow-f16-overflow stores them as ±inf)"), 2))
            }
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let ctx = GpuContext::new()?;
    let t0 = Instant::now();
    let up = stored
        .iter()
        .map(|h| Tensor::from_slice_as_lossy(&ctx, &h.shape, &h.data, dtype))
        .collect::<wgconv::Result<Vec<_>>>()?;
    let mut host = case.run(&ctx, &up)?.iter().map(|t| t.to_host(&ctx)).collect::<wgconv::Result<Vec<_>>>()?;
    if nhwc_outputs {
        // to_host gave NCHW order: back to the buffer's [N, H, W, C] for the file (and the
        // case's expected values, in that order too)
        for h in host.iter_mut().filter(|h| h.shape.len() == 4) {
            let s = h.shape.clone();
            *h = HostTensor { shape: vec![s[0], s[2], s[3], s[1]], data: h.to_channels_last()? };
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    write_outputs(&outputs, &host)?;
    println!("{}", summary(&ctx, &host, ms)?);
    for (_, path) in &outputs {
        println!("wrote {}", path.display());
    }
    if !verify {
        return Ok(());
    }
    let tol = tolerance(dtype);
    let mut failed = false;
    for ((name, _), (h, want)) in outputs.iter().zip(host.iter().zip(&case.expected(&stored)?)) {
        let stats = compare(&h.data, want);
        let ok = stats.passes(tol);
        failed |= !ok;
        println!(
            "verify{}: {stats}; tolerance rel-L2 ≤ {:.0e}, max-abs ≤ {:.0e}·(1+max|ref|): {}",
            if outputs.len() > 1 { format!(" {name}") } else { String::new() },
            tol.rel_l2,
            tol.abs,
            if ok { "PASS" } else { "FAIL" }
        );
    }
    if failed {
        return Err(Failure("GPU result differs from the CPU reference beyond tolerance".into(), 3));
    }
    if dtype == wgconv::DType::F16 {
        let exact = case.expected(&unrounded)?;
        let bad: usize = host
            .iter()
            .zip(&exact)
            .map(|(h, e)| h.data.iter().zip(e).filter(|(o, r)| !o.is_finite() && r.is_finite()).count())
            .sum();
        if bad > 0 {
            println!(
                "verify: {bad} output(s) are ±inf or NaN where the f32 reference of the unrounded inputs is finite: FAIL"
            );
            return Err(Failure("f16 storage overflowed: outputs are not finite where the f32 answer is".into(), 3));
        }
    }
    Ok(())
}

/// Writes each output to its file: `.npy`, or an array of a `.npz` archive named by the
/// path (`y.npz:name`) or else after the output (`output`, `grad_input`, ...); outputs given
/// the same archive go into it together.
fn write_outputs(outputs: &[(&'static str, &PathBuf)], host: &[HostTensor]) -> Result<(), Failure> {
    let mut archives: Vec<(PathBuf, Vec<(String, &HostTensor)>)> = Vec::new();
    for ((name, path), h) in outputs.iter().zip(host) {
        if !wgconv::npy::is_archive(path) {
            h.write_npy(path)?;
            continue;
        }
        let text = path.to_string_lossy();
        let (file, array) = match text.rsplit_once(':') {
            Some((f, a)) if f.ends_with(".npz") => (PathBuf::from(f), a.to_string()),
            _ => ((*path).clone(), name.to_string()),
        };
        match archives.iter_mut().find(|(f, _)| *f == file) {
            Some((_, arrays)) => arrays.push((array, h)),
            None => archives.push((file, vec![(array, h)])),
        }
    }
    for (file, arrays) in &archives {
        let list: Vec<(&str, &[usize], &[f32])> =
            arrays.iter().map(|(n, h)| (n.as_str(), h.shape.as_slice(), h.data.as_slice())).collect();
        wgconv::npy::write_npz(file, &list)?;
    }
    Ok(())
}

/// `--padding-mode`; `op` names a conv that takes zeros only (PyTorch's transposed and
/// deformable convs), `None` one that takes every mode.
fn parse_padding_mode(text: &str, zeros_only: Option<&str>) -> Result<wgconv::PaddingMode, Failure> {
    let mode = wgconv::PaddingMode::from_name(text.trim())
        .ok_or_else(|| Failure(format!("--padding-mode: unknown '{text}' (zeros, reflect, replicate, circular)"), 2))?;
    match zeros_only {
        Some(op) if mode != wgconv::PaddingMode::Zeros => {
            Err(Failure(format!("--padding-mode: {op} takes zeros only (as in PyTorch), not {}", mode.name()), 2))
        }
        _ => Ok(mode),
    }
}

/// The conv inputs a `run` op takes: input, weight and the bias if given.
fn conv_inputs(a: &ConvArgs) -> Result<Vec<(&'static str, HostTensor)>, Failure> {
    let mut v = vec![("the input", load(&a.input, "input")?), ("the weight", load(&a.weight, "weight")?)];
    if let Some(p) = &a.bias {
        v.push(("the bias", load(p, "bias")?));
    }
    Ok(v)
}

/// A shape of rank `N` (validated before, so the rank holds).
fn dims<const N: usize>(shape: &[usize], what: &str) -> Result<[usize; N], Failure> {
    shape.try_into().map_err(|_| Failure(format!("{what}: shape {shape:?} is not of rank {N}"), 2))
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
        padding_mode: parse_padding_mode(&a.padding_mode, None)?,
    };
    let mut inputs = conv_inputs(a)?;
    let layouts = args.layouts.apply(&mut inputs[0].1)?;
    let (x, w, b) = (&inputs[0].1.shape, &inputs[1].1.shape, inputs.get(2).map(|b| b.1.shape.as_slice()));
    // Validate before touching the GPU: a bad shape is reported without opening a device.
    let batched = wgconv::params::as_batched(x, 4);
    let geometry = params.validate(&batched, w, b)?;
    let dtype = storage(args.f16);
    let case =
        Conv2dCase { input: dims(&batched, "input")?, weight: dims(w, "weight")?, bias: b.is_some(), params, seed: 0 };
    let (x, w, b) = (x.clone(), w.clone(), b.map(<[usize]>::to_vec));
    let layout_text = layouts_text(layouts);
    let call = RunCall {
        case: wgconv::conformance::LayoutCase::new(case, layouts),
        inputs,
        outputs: vec![("output", &a.out)],
        dtype,
        allow_f16_overflow: a.allow_f16_overflow,
        verify: a.verify,
        nhwc_outputs: layouts.output == wgconv::Layout::ChannelsLast,
    };
    run_call(call, |ctx, out, ms| {
        let info = wgconv::plan_conv2d_with_layouts(ctx, &x, &w, b.as_deref(), dtype, layouts, &params)?.info();
        Ok(format!(
            "conv2d {x:?} * {w:?} (stride {:?}, padding {}, dilation {:?}, groups {}{layout_text}) -> {:?} {} via {} ({} chunk(s), workspace {} B{}) in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            params.stride, pads_text(params.padding, geometry.pads), params.dilation, params.groups, out[0].shape,
            dtype.name(), info.algorithm.name(), info.chunks, info.workspace_bytes, split_text(&info), ctx.adapter_info().name
        ))
    })
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
    parse_padding_mode(&a.padding_mode, Some("conv_transpose2d"))?;
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
    let mut inputs = conv_inputs(a)?;
    let layouts = args.layouts.apply(&mut inputs[0].1)?;
    let (x, w, b) = (&inputs[0].1.shape, &inputs[1].1.shape, inputs.get(2).map(|b| b.1.shape.as_slice()));
    let batched = wgconv::params::as_batched(x, 4);
    let geometry = params.validate(&batched, w, b)?;
    let dtype = storage(args.f16);
    let case = ConvTranspose2dCase {
        input: dims(&batched, "input")?,
        weight: dims(w, "weight")?,
        bias: b.is_some(),
        params,
        seed: 0,
    };
    let (x, w, b) = (x.clone(), w.clone(), b.map(<[usize]>::to_vec));
    let layout_text = layouts_text(layouts);
    let call = RunCall {
        case: wgconv::conformance::LayoutCase::new(case, layouts),
        inputs,
        outputs: vec![("output", &a.out)],
        dtype,
        allow_f16_overflow: a.allow_f16_overflow,
        verify: a.verify,
        nhwc_outputs: layouts.output == wgconv::Layout::ChannelsLast,
    };
    run_call(call, |ctx, out, ms| {
        let info =
            wgconv::plan_conv_transpose2d_with_layouts(ctx, &x, &w, b.as_deref(), dtype, layouts, &params)?.info();
        Ok(format!(
            "conv_transpose2d {x:?} * {w:?} (stride {:?}, padding {}, output_padding {:?}, dilation {:?}, groups {}{layout_text}) -> {:?} {} via {} ({} chunk(s), workspace {} B) in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            params.stride, pads_text(params.padding, geometry.pads), params.output_padding, params.dilation,
            params.groups, out[0].shape, dtype.name(), info.algorithm.name(), info.chunks, info.workspace_bytes, ctx.adapter_info().name
        ))
    })
}

fn run_deform_conv2d(args: &DeformArgs) -> Result<(), Failure> {
    let a = &args.conv;
    parse_padding_mode(&a.padding_mode, Some("deform_conv2d"))?;
    let params = wgconv::DeformConv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        activation: parse_activation(&a.activation)?,
        algorithm: Algorithm::from_name(&args.algo)
            .ok_or_else(|| Failure(format!("--algo: unknown '{}' (auto, implicit_gemm, im2col_gemm)", args.algo), 2))?,
        ..Default::default()
    };
    // (input, weight, offset, mask (v2), bias): the case's order
    let mut inputs = vec![
        ("the input", load(&a.input, "input")?),
        ("the weight", load(&a.weight, "weight")?),
        ("the offsets", load(&args.offset, "offset")?),
    ];
    if let Some(p) = &args.mask {
        inputs.push(("the mask", load(p, "mask")?));
    }
    if let Some(p) = &a.bias {
        inputs.push(("the bias", load(p, "bias")?));
    }
    let shape = |i: usize| wgconv::params::as_batched(&inputs[i].1.shape, 4);
    let mask = args.mask.is_some();
    let bias = a.bias.as_ref().map(|_| inputs[inputs.len() - 1].1.shape.clone());
    let dg = params.validate_deform(
        &shape(0),
        &inputs[1].1.shape,
        &shape(2),
        mask.then(|| shape(3)).as_deref(),
        bias.as_deref(),
    )?;
    let conv = Conv2dCase {
        input: dims(&shape(0), "input")?,
        weight: dims(&inputs[1].1.shape, "weight")?,
        bias: bias.is_some(),
        params,
        seed: 0,
    };
    let case = DeformConv2dCase { conv, offset_groups: dg.offset_groups as usize, scale: 0.0, mask };
    let (x, w, o, m) = (shape(0), inputs[1].1.shape.clone(), shape(2), mask.then(|| shape(3)));
    let x_file = inputs[0].1.shape.clone();
    let call = RunCall {
        case,
        inputs,
        outputs: vec![("output", &a.out)],
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        let plan =
            wgconv::plan_deform_conv2d(ctx, &x, &w, &o, m.as_deref(), bias.as_deref(), wgconv::DType::F32, &params)?;
        Ok(format!(
            "deform_conv2d {} x{:?} * w{:?}, {} offset group(s) (stride {:?}, padding {}, dilation {:?}, groups {}) -> {:?} via deform {} in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            if mask { "v2" } else { "v1" }, x_file, w, dg.offset_groups, params.stride,
            pads_text(params.padding, dg.conv.pads), params.dilation, params.groups, out[0].shape, plan.algorithm.name(),
            ctx.adapter_info().name
        ))
    })
}

/// conv1d's parameters from the conv flags: one value each for stride and dilation, padding
/// P, L,R, same or valid.
fn conv1d_params(stride: &str, padding: &str, dilation: &str, groups: u32) -> Result<wgconv::Conv1dParams, Failure> {
    let one = |flag: &str, text: &str| -> Result<u32, Failure> {
        text.trim()
            .parse::<u32>()
            .map_err(|_| Failure(format!("--{flag} takes one non-negative integer for conv1d, got '{text}'"), 2))
    };
    let padding = match parse_padding(padding)? {
        Padding::Same => wgconv::Padding1d::Same,
        Padding::Valid => wgconv::Padding1d::Valid,
        Padding::Symmetric([p, q]) if p == q => wgconv::Padding1d::Symmetric(p),
        Padding::Symmetric([l, r]) => wgconv::Padding1d::Explicit { left: l, right: r },
        Padding::Explicit { .. } => {
            return Err(Failure("--padding for conv1d is P, L,R, same or valid".into(), 2));
        }
    };
    Ok(wgconv::Conv1dParams {
        stride: one("stride", stride)?,
        padding,
        dilation: one("dilation", dilation)?,
        groups,
        ..Default::default()
    })
}

fn run_conv1d(args: &Conv2dArgs) -> Result<(), Failure> {
    let a = &args.conv;
    let params = wgconv::Conv1dParams {
        activation: parse_activation(&a.activation)?,
        algorithm: Algorithm::from_name(&args.algo)
            .ok_or_else(|| Failure(format!("--algo: unknown '{}'", args.algo), 2))?,
        padding_mode: parse_padding_mode(&a.padding_mode, None)?,
        ..conv1d_params(&a.stride, &a.padding, &a.dilation, a.groups)?
    };
    let inputs = conv_inputs(a)?;
    let (x, w) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone());
    params.validate(&wgconv::params::as_batched(&x, 3), &w, inputs.get(2).map(|b| b.1.shape.as_slice()))?;
    let case = Conv1dCase::of(
        params,
        dims(&wgconv::params::as_batched(&x, 3), "input")?,
        dims(&w, "weight")?,
        inputs.len() > 2,
    );
    let dtype = storage(args.f16);
    let call = RunCall {
        case,
        inputs,
        outputs: vec![("output", &a.out)],
        dtype,
        allow_f16_overflow: a.allow_f16_overflow,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        Ok(format!(
            "conv1d {x:?} * {w:?} (stride {}, padding {:?}, dilation {}, groups {}) -> {:?} {} in {ms:.1} ms on {}",
            params.stride,
            params.padding,
            params.dilation,
            params.groups,
            out[0].shape,
            dtype.name(),
            ctx.adapter_info().name
        ))
    })
}

fn parse_triple(flag: &str, text: &str) -> Result<[u32; 3], Failure> {
    let vals: Result<Vec<u32>, _> = text.split(',').map(|v| v.trim().parse::<u32>()).collect();
    match vals.as_deref() {
        Ok([v]) => Ok([*v; 3]),
        Ok([a, b, c]) => Ok([*a, *b, *c]),
        _ => Err(Failure(format!("--{flag} takes one value or D,H,W for conv3d, got '{text}'"), 2)),
    }
}

/// conv3d's parameters from the conv flags (one value or D,H,W each; padding also same or valid).
fn conv3d_params(
    stride: &str,
    padding: &str,
    dilation: &str,
    groups: u32,
    activation: Activation,
) -> Result<wgconv::Conv3dParams, Failure> {
    let padding = match padding.trim() {
        "same" => wgconv::Padding3d::Same,
        "valid" => wgconv::Padding3d::Valid,
        p => wgconv::Padding3d::Symmetric(parse_triple("padding", p)?),
    };
    Ok(wgconv::Conv3dParams {
        stride: parse_triple("stride", stride)?,
        padding,
        dilation: parse_triple("dilation", dilation)?,
        groups,
        activation,
        ..Default::default()
    })
}

fn run_conv3d_backward(a: &BackwardArgs) -> Result<(), Failure> {
    let params = wgconv::Conv3dParams {
        padding_mode: parse_padding_mode(&a.padding_mode, None)?,
        ..conv3d_params(&a.stride, &a.padding, &a.dilation, a.groups, Activation::None)?
    };
    let (which, outputs) = asked_grads(a)?;
    let inputs = backward_inputs(a)?;
    let (x, w, dy) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone(), inputs[2].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 5);
    let g = params.validate(&batched, &w, None)?;
    if wgconv::params::as_batched(&dy, 5) != g.output_shape() {
        return Err(Failure(format!("grad_output has shape {dy:?}, the conv's output is {:?}", g.output_shape()), 1));
    }
    let conv =
        Conv3dCase { input: dims(&batched, "input")?, weight: dims(&w, "weight")?, bias: false, params, seeds: [0, 0] };
    run_backward("conv3d_backward", a, Conv3dBackwardCase(conv, which), outputs, inputs)
}

fn run_conv3d(a: &ConvArgs) -> Result<(), Failure> {
    let params = wgconv::Conv3dParams {
        padding_mode: parse_padding_mode(&a.padding_mode, None)?,
        ..conv3d_params(&a.stride, &a.padding, &a.dilation, a.groups, parse_activation(&a.activation)?)?
    };
    let inputs = conv_inputs(a)?;
    let (x, w) = (wgconv::params::as_batched(&inputs[0].1.shape, 5), inputs[1].1.shape.clone());
    params.validate(&x, &w, inputs.get(2).map(|b| b.1.shape.as_slice()))?;
    let case = Conv3dCase {
        input: dims(&x, "input")?,
        weight: dims(&w, "weight")?,
        bias: inputs.len() > 2,
        params,
        seeds: [0, 0],
    };
    let call = RunCall {
        case,
        inputs,
        outputs: vec![("output", &a.out)],
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        Ok(format!(
            "conv3d {x:?} * {w:?} (stride {:?}, padding {:?}, dilation {:?}, groups {}) -> {:?} via vol2col+gemm in {ms:.1} ms on {}",
            params.stride, params.padding, params.dilation, params.groups, out[0].shape, ctx.adapter_info().name
        ))
    })
}

fn run_pool(a: &PoolArgs, mode: wgconv::PoolMode) -> Result<(), Failure> {
    let params = a.options.params()?;
    let x = load(&a.input, "input")?;
    let batched = wgconv::params::as_batched(&x.shape, 4);
    params.validate(&batched)?;
    let case = Pool2dCase { input: dims(&batched, "input")?, params, mode, seed: 0 };
    let shape = x.shape.clone();
    if let Some(path) = &a.out_indices {
        if mode != wgconv::PoolMode::Max {
            return Err(Failure("--out-indices is for max_pool2d (avg_pool2d has no indices)".into(), 2));
        }
        let archive = |p: &PathBuf| {
            let text = p.to_string_lossy().into_owned();
            wgconv::npy::is_archive(p).then(|| text.rsplit_once(':').map_or(text.clone(), |(f, _)| f.to_string()))
        };
        if archive(path).is_some() && archive(path) == archive(&a.out) {
            return Err(Failure("--out-indices and --out name one .npz archive: give each its own file".into(), 2));
        }
        // a bare archive names the array after what it holds
        let path = &match wgconv::npy::is_archive(path) && !path.to_string_lossy().contains(".npz:") {
            true => PathBuf::from(format!("{}:indices", path.display())),
            false => path.clone(),
        };
        let ctx = GpuContext::new()?;
        let (_, indices) = wgconv::max_pool2d_with_indices(&ctx, &Tensor::from_host(&ctx, &x)?, &params)?;
        let idx: Vec<i64> = indices.to_vec(&ctx)?.into_iter().map(i64::from).collect();
        wgconv::npy::write_i64(path, indices.shape(), &idx)?;
        println!("wrote {} (int64 indices {:?})", path.display(), indices.shape());
    }
    let call = RunCall {
        case,
        inputs: vec![("the input", x)],
        outputs: vec![("output", &a.out)],
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |_, out, _| {
        Ok(format!(
            "{mode:?} pool {shape:?} (kernel {:?}, stride {:?}, padding {:?}) -> {:?}",
            params.kernel,
            params.stride(),
            params.padding,
            out[0].shape
        ))
    })
}

fn run_pool_backward(a: &PoolBackwardArgs, mode: wgconv::PoolMode) -> Result<(), Failure> {
    let params = a.options.params()?;
    let (x, dy) = (load(&a.input, "input")?, load(&a.grad_output, "grad_output")?);
    let batched = wgconv::params::as_batched(&x.shape, 4);
    let out = params.validate(&batched)?;
    if wgconv::params::as_batched(&dy.shape, 4) != out {
        return Err(Failure(format!("grad_output has shape {:?}, the pooling's output is {out:?}", dy.shape), 1));
    }
    let case = Pool2dBackwardCase(Pool2dCase { input: dims(&batched, "input")?, params, mode, seed: 0 });
    let shape = x.shape.clone();
    let call = RunCall {
        case,
        inputs: vec![("the input", x), ("grad_output", dy)],
        outputs: vec![("grad_input", &a.out_grad_input)],
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    let op = match mode {
        wgconv::PoolMode::Max => "max_pool2d_backward",
        wgconv::PoolMode::Avg => "avg_pool2d_backward",
    };
    run_call(call, |ctx, out, ms| {
        Ok(format!(
            "{op} x{shape:?} (kernel {:?}, stride {:?}, padding {:?}) -> grad_input{:?} in {ms:.1} ms on {}",
            params.kernel,
            params.stride(),
            params.padding,
            out[0].shape,
            ctx.adapter_info().name
        ))
    })
}

/// (name, file) of each output of a run.
type Outputs<'a> = Vec<(&'static str, &'a PathBuf)>;

/// The gradients a backward run asks for (those given an `--out-grad-*` file), and their
/// files in output order; an error when none is.
fn asked_grads(a: &BackwardArgs) -> Result<(wgconv::Grads, Outputs<'_>), Failure> {
    let which = wgconv::Grads {
        input: a.out_grad_input.is_some(),
        weight: a.out_grad_weight.is_some(),
        bias: a.out_grad_bias.is_some(),
    };
    let outputs: Vec<(&str, &PathBuf)> =
        [("grad_input", &a.out_grad_input), ("grad_weight", &a.out_grad_weight), ("grad_bias", &a.out_grad_bias)]
            .into_iter()
            .filter_map(|(name, path)| path.as_ref().map(|p| (name, p)))
            .collect();
    if outputs.is_empty() {
        return Err(Failure("give at least one of --out-grad-input, --out-grad-weight, --out-grad-bias".into(), 2));
    }
    Ok((which, outputs))
}

/// A backward run's inputs: the conv's input and weight, and the gradient of its output.
fn backward_inputs(a: &BackwardArgs) -> Result<Vec<(&'static str, HostTensor)>, Failure> {
    Ok(vec![
        ("the input", load(&a.input, "input")?),
        ("the weight", load(&a.weight, "weight")?),
        ("grad_output", load(&a.grad_output, "grad_output")?),
    ])
}

/// Runs a backward case (all gradients asked for by `--out-grad-*`) on the loaded inputs
/// (input, weight, grad_output), writes and verifies each gradient, and prints one line.
fn run_backward<C: OpCase>(
    op: &str,
    a: &BackwardArgs,
    case: C,
    outputs: Outputs<'_>,
    inputs: Vec<(&'static str, HostTensor)>,
) -> Result<(), Failure> {
    let [x, w, dy] = [0, 1, 2].map(|i| inputs[i].1.shape.clone());
    let call = RunCall {
        case,
        inputs,
        outputs: outputs.clone(),
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        let grads: Vec<String> = outputs.iter().zip(out).map(|((n, _), h)| format!("{n}{:?}", h.shape)).collect();
        Ok(format!(
            "{op} x{x:?} w{w:?} dy{dy:?} -> {} in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            grads.join(", "),
            ctx.adapter_info().name
        ))
    })
}

fn run_conv1d_backward(a: &BackwardArgs) -> Result<(), Failure> {
    let params = wgconv::Conv1dParams {
        padding_mode: parse_padding_mode(&a.padding_mode, None)?,
        ..conv1d_params(&a.stride, &a.padding, &a.dilation, a.groups)?
    };
    let (which, outputs) = asked_grads(a)?;
    let inputs = backward_inputs(a)?;
    let (x, w, dy) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone(), inputs[2].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 3);
    let out = params.validate(&batched, &w, None)?;
    if wgconv::params::as_batched(&dy, 3) != out {
        return Err(Failure(format!("grad_output has shape {dy:?}, the conv's output is {out:?}"), 1));
    }
    let case = Conv1dBackwardCase(Conv1dCase::of(params, dims(&batched, "input")?, dims(&w, "weight")?, false), which);
    run_backward("conv1d_backward", a, case, outputs, inputs)
}

fn run_conv2d_backward(a: &BackwardArgs) -> Result<(), Failure> {
    let params = Conv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        padding_mode: parse_padding_mode(&a.padding_mode, None)?,
        ..Default::default()
    };
    let (which, outputs) = asked_grads(a)?;
    let inputs = backward_inputs(a)?;
    let (x, w, dy) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone(), inputs[2].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 4);
    let g = params.validate(&batched, &w, None)?;
    if wgconv::params::as_batched(&dy, 4) != g.output_shape() {
        return Err(Failure(format!("grad_output has shape {dy:?}, the conv's output is {:?}", g.output_shape()), 1));
    }
    let conv =
        Conv2dCase { input: dims(&batched, "input")?, weight: dims(&w, "weight")?, bias: false, params, seed: 0 };
    run_backward("conv2d_backward", a, Conv2dBackwardCase(conv, which), outputs, inputs)
}

fn run_conv_transpose2d_backward(args: &TransposedBackwardArgs) -> Result<(), Failure> {
    let a = &args.backward;
    parse_padding_mode(&a.padding_mode, Some("conv_transpose2d_backward"))?;
    let params = ConvTranspose2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        output_padding: parse_pair("output-padding", &args.output_padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        ..Default::default()
    };
    let (which, outputs) = asked_grads(a)?;
    let inputs = backward_inputs(a)?;
    let (x, w, dy) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone(), inputs[2].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 4);
    let bias = args.bias.as_ref().map(|p| load(p, "bias")).transpose()?;
    let g = params.validate(&batched, &w, bias.as_ref().map(|b| b.shape.as_slice()))?;
    if wgconv::params::as_batched(&dy, 4) != g.output_shape() {
        return Err(Failure(
            format!("grad_output has shape {dy:?}, the transposed conv's output is {:?}", g.output_shape()),
            1,
        ));
    }
    let conv = ConvTranspose2dCase {
        input: dims(&batched, "input")?,
        weight: dims(&w, "weight")?,
        bias: false,
        params,
        seed: 0,
    };
    run_backward("conv_transpose2d_backward", a, ConvTranspose2dBackwardCase(conv, which), outputs, inputs)
}

/// conv_transpose1d's parameters from the flags (one value each; padding P, L,R or valid).
fn conv_transpose1d_params(
    stride: &str,
    padding: &str,
    output_padding: &str,
    dilation: &str,
    groups: u32,
) -> Result<wgconv::ConvTranspose1dParams, Failure> {
    let p = conv1d_params(stride, padding, dilation, groups)?;
    let output_padding = output_padding.trim().parse::<u32>().map_err(|_| {
        Failure(
            format!("--output-padding takes one non-negative integer for conv_transpose1d, got '{output_padding}'"),
            2,
        )
    })?;
    Ok(wgconv::ConvTranspose1dParams {
        stride: p.stride,
        padding: p.padding,
        output_padding,
        dilation: p.dilation,
        groups,
        ..Default::default()
    })
}

fn run_conv_transpose1d(args: &ConvTranspose2dArgs) -> Result<(), Failure> {
    let a = &args.conv;
    parse_padding_mode(&a.padding_mode, Some("conv_transpose1d"))?;
    let params = wgconv::ConvTranspose1dParams {
        activation: parse_activation(&a.activation)?,
        algorithm: Algorithm::from_name(&args.algo)
            .ok_or_else(|| Failure(format!("--algo: unknown '{}' (auto, implicit_gemm, gemm_col2im)", args.algo), 2))?,
        ..conv_transpose1d_params(&a.stride, &a.padding, &args.output_padding, &a.dilation, a.groups)?
    };
    let inputs = conv_inputs(a)?;
    let (x, w) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 3);
    params.validate(&batched, &w, inputs.get(2).map(|b| b.1.shape.as_slice()))?;
    let case = ConvTranspose1dCase::of(params, dims(&batched, "input")?, dims(&w, "weight")?, inputs.len() > 2);
    let dtype = storage(args.f16);
    let call = RunCall {
        case,
        inputs,
        outputs: vec![("output", &a.out)],
        dtype,
        allow_f16_overflow: a.allow_f16_overflow,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        Ok(format!(
            "conv_transpose1d {x:?} * {w:?} (stride {}, padding {:?}, output_padding {}, dilation {}, groups {}) -> {:?} {} in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            params.stride, params.padding, params.output_padding, params.dilation, params.groups, out[0].shape,
            dtype.name(), ctx.adapter_info().name
        ))
    })
}

/// conv_transpose3d's parameters from the flags (one value or D,H,W each; padding also valid).
fn conv_transpose3d_params(
    stride: &str,
    padding: &str,
    output_padding: &str,
    dilation: &str,
    groups: u32,
    activation: Activation,
) -> Result<wgconv::ConvTranspose3dParams, Failure> {
    let padding = match padding.trim() {
        "valid" => wgconv::Padding3d::Valid,
        "same" => wgconv::Padding3d::Same,
        p => wgconv::Padding3d::Symmetric(parse_triple("padding", p)?),
    };
    Ok(wgconv::ConvTranspose3dParams {
        stride: parse_triple("stride", stride)?,
        padding,
        output_padding: parse_triple("output-padding", output_padding)?,
        dilation: parse_triple("dilation", dilation)?,
        groups,
        activation,
    })
}

fn run_conv_transpose3d(args: &ConvTranspose3dArgs) -> Result<(), Failure> {
    let a = &args.conv;
    parse_padding_mode(&a.padding_mode, Some("conv_transpose3d"))?;
    let activation = parse_activation(&a.activation)?;
    let params =
        conv_transpose3d_params(&a.stride, &a.padding, &args.output_padding, &a.dilation, a.groups, activation)?;
    let inputs = conv_inputs(a)?;
    let (x, w) = (wgconv::params::as_batched(&inputs[0].1.shape, 5), inputs[1].1.shape.clone());
    params.validate(&x, &w, inputs.get(2).map(|b| b.1.shape.as_slice()))?;
    let case = ConvTranspose3dCase {
        input: dims(&x, "input")?,
        weight: dims(&w, "weight")?,
        bias: inputs.len() > 2,
        params,
        seeds: [0, 0],
    };
    let call = RunCall {
        case,
        inputs,
        outputs: vec![("output", &a.out)],
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        Ok(format!(
            "conv_transpose3d {x:?} * {w:?} (stride {:?}, padding {:?}, output_padding {:?}, dilation {:?}, groups {}) -> {:?} via gemm+col2vol in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            params.stride, params.padding, params.output_padding, params.dilation, params.groups, out[0].shape,
            ctx.adapter_info().name
        ))
    })
}

fn run_conv_transpose1d_backward(args: &TransposedBackwardArgs) -> Result<(), Failure> {
    let a = &args.backward;
    parse_padding_mode(&a.padding_mode, Some("conv_transpose1d_backward"))?;
    let params = conv_transpose1d_params(&a.stride, &a.padding, &args.output_padding, &a.dilation, a.groups)?;
    let (which, outputs) = asked_grads(a)?;
    let inputs = backward_inputs(a)?;
    let (x, w, dy) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone(), inputs[2].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 3);
    let bias = args.bias.as_ref().map(|p| load(p, "bias")).transpose()?;
    let out = params.validate(&batched, &w, bias.as_ref().map(|b| b.shape.as_slice()))?;
    if wgconv::params::as_batched(&dy, 3) != out {
        return Err(Failure(format!("grad_output has shape {dy:?}, the transposed conv's output is {out:?}"), 1));
    }
    let case = ConvTranspose1dCase::of(params, dims(&batched, "input")?, dims(&w, "weight")?, false);
    run_backward("conv_transpose1d_backward", a, ConvTranspose1dBackwardCase(case, which), outputs, inputs)
}

fn run_conv_transpose3d_backward(args: &TransposedBackwardArgs) -> Result<(), Failure> {
    let a = &args.backward;
    parse_padding_mode(&a.padding_mode, Some("conv_transpose3d_backward"))?;
    let params =
        conv_transpose3d_params(&a.stride, &a.padding, &args.output_padding, &a.dilation, a.groups, Activation::None)?;
    let (which, outputs) = asked_grads(a)?;
    let inputs = backward_inputs(a)?;
    let (x, w, dy) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone(), inputs[2].1.shape.clone());
    let batched = wgconv::params::as_batched(&x, 5);
    let bias = args.bias.as_ref().map(|p| load(p, "bias")).transpose()?;
    let g = params.validate(&batched, &w, bias.as_ref().map(|b| b.shape.as_slice()))?;
    if wgconv::params::as_batched(&dy, 5) != g.output_shape() {
        return Err(Failure(
            format!("grad_output has shape {dy:?}, the transposed conv's output is {:?}", g.output_shape()),
            1,
        ));
    }
    let case = ConvTranspose3dCase {
        input: dims(&batched, "input")?,
        weight: dims(&w, "weight")?,
        bias: false,
        params,
        seeds: [0, 0],
    };
    run_backward("conv_transpose3d_backward", a, ConvTranspose3dBackwardCase(case, which), outputs, inputs)
}

fn run_deform_conv2d_backward(args: &DeformBackwardArgs) -> Result<(), Failure> {
    let a = &args.backward;
    parse_padding_mode(&a.padding_mode, Some("deform_conv2d_backward"))?;
    let params = wgconv::DeformConv2dParams {
        stride: parse_pair("stride", &a.stride)?,
        padding: parse_padding(&a.padding)?,
        dilation: parse_pair("dilation", &a.dilation)?,
        groups: a.groups,
        ..Default::default()
    };
    if args.out_grad_mask.is_some() && args.mask.is_none() {
        return Err(Failure("--out-grad-mask needs --mask (deform_conv2d v1 has no mask)".into(), 2));
    }
    let which = wgconv::DeformGrads {
        input: a.out_grad_input.is_some(),
        weight: a.out_grad_weight.is_some(),
        offset: args.out_grad_offset.is_some(),
        mask: args.out_grad_mask.is_some(),
        bias: a.out_grad_bias.is_some(),
    };
    // the case's output order: input, weight, offset, mask, bias
    let outputs: Outputs<'_> = [
        ("grad_input", &a.out_grad_input),
        ("grad_weight", &a.out_grad_weight),
        ("grad_offset", &args.out_grad_offset),
        ("grad_mask", &args.out_grad_mask),
        ("grad_bias", &a.out_grad_bias),
    ]
    .into_iter()
    .filter_map(|(name, path)| path.as_ref().map(|p| (name, p)))
    .collect();
    if outputs.is_empty() {
        return Err(Failure(
            "give at least one of --out-grad-input, --out-grad-weight, --out-grad-offset, --out-grad-mask, --out-grad-bias"
                .into(),
            2,
        ));
    }
    // (input, weight, offset, mask (v2), grad_output): the case's order
    let mut inputs = vec![
        ("the input", load(&a.input, "input")?),
        ("the weight", load(&a.weight, "weight")?),
        ("the offsets", load(&args.offset, "offset")?),
    ];
    if let Some(p) = &args.mask {
        inputs.push(("the mask", load(p, "mask")?));
    }
    inputs.push(("grad_output", load(&a.grad_output, "grad_output")?));
    let shape = |i: usize| wgconv::params::as_batched(&inputs[i].1.shape, 4);
    let mask = args.mask.is_some();
    let bias = args.bias.as_ref().map(|p| load(p, "bias")).transpose()?;
    let dg = params.validate_deform(
        &shape(0),
        &inputs[1].1.shape,
        &shape(2),
        mask.then(|| shape(3)).as_deref(),
        bias.as_ref().map(|b| b.shape.as_slice()),
    )?;
    let dy = shape(inputs.len() - 1);
    if dy != dg.conv.output_shape() {
        return Err(Failure(
            format!("grad_output has shape {dy:?}, the deform_conv2d's output is {:?}", dg.conv.output_shape()),
            1,
        ));
    }
    let conv = Conv2dCase {
        input: dims(&shape(0), "input")?,
        weight: dims(&inputs[1].1.shape, "weight")?,
        bias: false,
        params,
        seed: 0,
    };
    let case = DeformConv2dCase { conv, offset_groups: dg.offset_groups as usize, scale: 0.0, mask };
    let (x, w) = (inputs[0].1.shape.clone(), inputs[1].1.shape.clone());
    let call = RunCall {
        case: DeformConv2dBackwardCase(case, which),
        inputs,
        outputs: outputs.clone(),
        dtype: wgconv::DType::F32,
        allow_f16_overflow: false,
        verify: a.verify,
        nhwc_outputs: false,
    };
    run_call(call, |ctx, out, ms| {
        let grads: Vec<String> = outputs.iter().zip(out).map(|((n, _), h)| format!("{n}{:?}", h.shape)).collect();
        Ok(format!(
            "deform_conv2d_backward {} x{x:?} w{w:?}, {} offset group(s) -> {} in {ms:.1} ms (upload, first-use compile and readback included) on {}",
            if mask { "v2" } else { "v1" },
            dg.offset_groups,
            grads.join(", "),
            ctx.adapter_info().name
        ))
    })
}

fn explain(a: &ExplainArgs) -> Result<(), Failure> {
    let shape = |text: &str, what: &str| -> Result<Vec<usize>, Failure> {
        text.split(',')
            .map(|v| v.trim().parse::<usize>().map_err(|_| Failure(format!("{what}: `{text}` is not N,C,H,W-like"), 2)))
            .collect()
    };
    let input = shape(&a.input_shape, "--input-shape")?;
    let dtype = storage(a.f16);
    let ctx = GpuContext::new()?;
    let prev = wgconv::explain::Field::default();
    let layers = match (&a.layers, a.op.as_deref()) {
        (Some(path), None) => {
            let text = std::fs::read_to_string(path).map_err(|e| Failure(format!("{}: {e}", path.display()), 1))?;
            wgconv::explain::stack(&ctx, &input, dtype, &text)?
        }
        (Some(_), Some(op)) => return Err(Failure(format!("give either an op ({op}) or --layers, not both"), 2)),
        (None, Some(op @ ("conv2d" | "conv2d_backward"))) => {
            let w = a.weight_shape.as_deref().ok_or_else(|| Failure(format!("{op} needs --weight-shape"), 2))?;
            let params = Conv2dParams {
                stride: parse_pair("stride", a.stride.as_deref().unwrap_or("1"))?,
                padding: parse_padding(&a.padding)?,
                dilation: parse_pair("dilation", &a.dilation)?,
                groups: a.groups,
                ..Default::default()
            };
            let w = shape(w, "--weight-shape")?;
            if op == "conv2d" {
                vec![wgconv::explain::conv2d(&ctx, &input, &w, a.bias, dtype, &params, &prev)?]
            } else {
                vec![wgconv::explain::conv2d_backward(&ctx, &input, &w, a.bias, dtype, &params, &prev)?]
            }
        }
        (None, Some(op @ ("conv_transpose2d" | "deform_conv2d" | "conv1d" | "conv3d"))) => {
            let w = a.weight_shape.as_deref().ok_or_else(|| Failure(format!("{op} needs --weight-shape"), 2))?;
            let w = shape(w, "--weight-shape")?;
            let stride = a.stride.as_deref().unwrap_or("1");
            let facts = match op {
                "conv_transpose2d" => {
                    let params = wgconv::ConvTranspose2dParams {
                        stride: parse_pair("stride", stride)?,
                        padding: parse_padding(&a.padding)?,
                        output_padding: parse_pair("output-padding", &a.output_padding)?,
                        dilation: parse_pair("dilation", &a.dilation)?,
                        groups: a.groups,
                        ..Default::default()
                    };
                    wgconv::explain::conv_transpose2d(&ctx, &input, &w, a.bias, dtype, &params, &prev)?
                }
                "deform_conv2d" => {
                    let params = Conv2dParams {
                        stride: parse_pair("stride", stride)?,
                        padding: parse_padding(&a.padding)?,
                        dilation: parse_pair("dilation", &a.dilation)?,
                        groups: a.groups,
                        ..Default::default()
                    };
                    wgconv::explain::deform_conv2d(
                        &ctx,
                        &input,
                        &w,
                        a.offset_groups,
                        a.mask,
                        a.bias,
                        dtype,
                        &params,
                        &prev,
                    )?
                }
                "conv1d" => {
                    let params = conv1d_params(stride, &a.padding, &a.dilation, a.groups)?;
                    wgconv::explain::conv1d(&ctx, &input, &w, a.bias, dtype, &params, &prev)?
                }
                _ => {
                    let params = conv3d_params(stride, &a.padding, &a.dilation, a.groups, Activation::None)?;
                    wgconv::explain::conv3d(&ctx, &input, &w, a.bias, dtype, &params, &prev)?
                }
            };
            vec![facts]
        }
        (None, Some(op @ ("max_pool2d" | "avg_pool2d"))) => {
            let k = a.kernel.as_deref().ok_or_else(|| Failure(format!("{op} needs --kernel"), 2))?;
            let params = wgconv::Pool2dParams {
                kernel: parse_pair("kernel", k)?,
                stride: a.stride.as_deref().map(|s| parse_pair("stride", s)).transpose()?,
                padding: parse_pair("padding", &a.padding)?,
                count_include_pad: true,
                ..Default::default()
            };
            let mode = if op == "max_pool2d" { wgconv::PoolMode::Max } else { wgconv::PoolMode::Avg };
            vec![wgconv::explain::pool2d(&ctx, &input, dtype, &params, mode, &prev)?]
        }
        (None, Some(other)) => {
            return Err(Failure(
                format!(
                    "explain: `{other}`: conv2d, conv2d_backward, conv_transpose2d, deform_conv2d, conv1d, conv3d, \
                     max_pool2d or avg_pool2d (or --layers)"
                ),
                2,
            ))
        }
        (None, None) => {
            return Err(Failure(
                "explain: give an op (conv2d, conv2d_backward, conv_transpose2d, deform_conv2d, conv1d, conv3d, \
                 max_pool2d, avg_pool2d) or --layers"
                    .into(),
                2,
            ))
        }
    };
    println!("adapter: {} ({:?})", ctx.adapter_info().name, ctx.adapter_info().backend);
    for l in &layers {
        print!("{l}");
    }
    if layers.len() > 1 {
        let last = layers.last().expect("more than one");
        let sum = |f: fn(&wgconv::explain::LayerFacts) -> u64| layers.iter().map(f).sum::<u64>();
        println!(
            "stack: {} layers, {:?} → {:?}, parameters {}, MACs {}, FLOPs {}, receptive field {}, jump {}",
            layers.len(),
            input,
            last.output_shape,
            sum(|l| l.parameters),
            sum(|l| l.macs),
            sum(|l| l.flops),
            wgconv::explain::axes(&last.receptive_field),
            wgconv::explain::jumps(&last.jump)
        );
    }
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&layers).map_err(|e| Failure(format!("json: {e}"), 1))?;
        std::fs::write(path, text).map_err(|e| Failure(format!("{}: {e}", path.display()), 1))?;
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

/// A one-line progress bar on stderr with the elapsed time and an ETA (indicatif: drawn only
/// when stderr is a terminal).
struct Progress(indicatif::ProgressBar);

impl Progress {
    fn new(total: usize) -> Self {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("[{bar:30}] {pos}/{len} {elapsed} (ETA {eta}) {msg}")
        {
            bar.set_style(style.progress_chars("#>."));
        }
        Progress(bar)
    }
    fn show(&self, what: &str) {
        self.0.set_message(what.to_string());
    }
    fn step(&mut self) {
        self.0.inc(1);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
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
        channels_last: a.channels_last,
        profile: a.profile,
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
    let uniform_a = match a.uniform_a.as_str() {
        "on" => wgconv::UniformA::On,
        "off" => wgconv::UniformA::Off,
        _ => wgconv::UniformA::Auto,
    };
    ctx.set_config(wgconv::EngineConfig { uniform_a, ..ctx.config() });
    if let Some(p) = &a.autotune_cache {
        let n = ctx.set_autotune_cache(p)?;
        eprintln!("autotune: {n} entries for this adapter loaded from {}", p.display());
    }
    ctx.autotune(a.autotune || a.autotune_cache.is_some());
    let backward_rows = if a.backward { cases.iter().filter(|c| c.op.backward().is_some()).count() } else { 0 };
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
        if a.backward && case.op.backward().is_some() {
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
        write_file(p, &report.svg()?)?;
    }
    if let Some(p) = &a.roofline {
        write_file(p, &report.roofline_svg()?)?;
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
