//! conv2d forward (PyTorch `torch.nn.functional.conv2d` semantics).
//!
//! Algorithms (see [`Algorithm`]; `Auto` picks with [`auto_algorithm`]: [`Algorithm::choose`]
//! per shape):
//! - `Im2colGemm`: the output pixels `p = (n·Ho + oy)·Wo + ox` are cut into chunks whose
//!   column matrix fits the workspace budget and one storage binding. For each chunk,
//!   `im2col.wgsl` unfolds the input into `[Cin·kh·kw, cols]` and `gemm.wgsl` multiplies each
//!   group's weight block `[Cout/G, (Cin/G)·kh·kw]` with that group's rows, all groups in one
//!   dispatch, writing straight into the NCHW output.
//! - `ImplicitGemm` / `Gemm1x1`: the same GEMM over all pixels in one dispatch, its B loader
//!   gathering from the input (`B_IMPLICIT` / `B_POINTWISE`): no workspace, no im2col pass.
//! - `Depthwise`: `depthwise.wgsl`, one dispatch.
//!
//! - `Direct`: `direct.wgsl`, one dispatch, 4 pixels × 16 channels per invocation.
//! - `Winograd` (3x3, stride 1, dilation 1): F(2×2, 3×3) — `winograd.wgsl`'s weight and
//!   input transforms, the GEMM core's 16·G batched dense GEMMs, the output transform with the
//!   epilogue (`src/ops/winograd.rs`); the 2×2 output tiles in chunks under the workspace
//!   budget.
//!
//! Every path adds the bias and applies the activation in its write-out, and reads and writes
//! either layout ([`Layout`]): channels-last inputs and outputs (any mix) are indexed so by
//! the loaders and the write-out themselves (`X_NHWC`, `Y_NHWC`), no transpose pass. f16 tensors
//! ([`crate::DType::F16`]) run `ImplicitGemm`, `Gemm1x1`, `Depthwise` or `Winograd` with f16
//! loads and stores and f32 accumulation.

use crate::context::{BLoads, GemmKernel, GpuContext};
use crate::error::{Error, Result};
use crate::kernels::gemm::GemmProblem;
use crate::kernels::{
    check_recorded, depthwise, direct, gemm, im2col, range, record, whole, write_plan, Dispatch, Step, UniformArena,
};
use crate::ops::bands::{self, RowGeometry};
use crate::ops::channels;
use crate::ops::winograd;
use crate::ops::{as_batched, batch, common_dtype_any_layout, contiguous, returned_shape, unbatched};
use crate::params::{Activation, Algorithm, Conv2dGeometry, Conv2dParams, Padding, Unfolded};
use crate::tensor::{DType, Layout, Tensor};

/// What one conv2d call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dInfo {
    /// The algorithm that ran (never `Auto`).
    pub algorithm: Algorithm,
    /// Every size of the validated conv2d.
    pub geometry: Conv2dGeometry,
    /// Number of pixel chunks the work was split into (1 without a workspace).
    pub chunks: u32,
    /// Output pixels per chunk (`Winograd`: 2×2 output tiles; the last may hold fewer).
    pub chunk_cols: u32,
    /// Workspace bytes one chunk uses (0 for every algorithm but `Im2colGemm` and `Winograd`).
    pub workspace_bytes: u64,
    /// Pieces of the batch run one after another because the input or output exceeds one
    /// storage binding ([`crate::ops::batch`]; `chunks` and `workspace_bytes` then describe
    /// the first piece); 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Bands of output rows each image runs in because one image exceeds one storage
    /// binding ([`crate::ops::bands`]; `batch_pieces` then counts images); 1 otherwise.
    pub row_bands: u32,
    /// Chunks of output channels the weight runs in because it exceeds one storage binding
    /// ([`crate::ops::channels`]: every image of every chunk is a call of its own; `chunks`
    /// and `workspace_bytes` then describe the first); 1 otherwise.
    pub channel_chunks: u32,
    /// Kernel launches recorded (the plan's steps).
    pub launches: u32,
}

/// The layouts of a conv2d's (or conv_transpose2d's) input and output ([`plan_conv2d_with_layouts`],
/// [`crate::plan_conv_transpose2d_with_layouts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Conv2dLayouts {
    /// The input's layout.
    pub input: Layout,
    /// The output's layout.
    pub output: Layout,
}

impl Conv2dLayouts {
    pub(crate) fn is_nchw(self) -> bool {
        self == Conv2dLayouts::default()
    }

    /// What a plan's reason adds: nothing for NCHW, else `; input …, output …`.
    pub(crate) fn note(self) -> String {
        if self.is_nchw() {
            return String::new();
        }
        format!("; input {}, output {}", self.input.name(), self.output.name())
    }

    /// `Error::TooLarge` with channels-last tensors for a split that reads and writes NCHW
    /// only: `weight` true for chunks of output channels (a weight beyond one binding), false
    /// for bands of rows (an image beyond it).
    pub(crate) fn check_split(self, op: &str, weight: bool, max: u64) -> Result<()> {
        if self.is_nchw() {
            return Ok(());
        }
        let (what, how) = if weight { ("the weight", "chunks of channels") } else { ("one image", "bands of rows") };
        Err(Error::TooLarge(format!(
            "{op}: {what} beyond one storage binding ({max} bytes) runs in {how}, which read and write NCHW only: a \
             channels-last input or output needs the weight and each image within one binding"
        )))
    }
}

/// Convolves and submits; returns the output `[N, Cout, Ho, Wo]` (read it with
/// [`Tensor::to_vec`], which waits for the GPU) in the input's layout (PyTorch's memory
/// format propagation: a channels-last input gives a channels-last output).
pub fn conv2d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
) -> Result<Tensor> {
    conv2d_with_info(ctx, input, weight, bias, params).map(|(t, _)| t)
}

/// [`conv2d`] that also says what ran.
pub fn conv2d_with_info(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
) -> Result<(Tensor, Conv2dInfo)> {
    let g = params.validate(&as_batched(input.shape(), 4), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &g.output_shape()), input.dtype())?
        .with_layout(input.layout())?;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv2d") });
    let info = conv2d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok((output, info))
}

/// What one conv2d call does, decided from the shapes, the dtype and the context's settings
/// before any GPU object is created ([`plan_conv2d`]); [`conv2d_into`] records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dPlan {
    /// Every size of the validated conv2d.
    pub geometry: Conv2dGeometry,
    /// The storage type of every tensor (f32 or f16).
    pub dtype: DType,
    /// The algorithm that runs (never `Auto`).
    pub algorithm: Algorithm,
    /// Why: the rule that chose it, or "forced".
    pub reason: String,
    /// Pixel chunks of the im2col workspace (1 for the other algorithms).
    pub chunks: u32,
    /// Output pixels per chunk (`Winograd`: 2×2 output tiles; the last may hold fewer).
    pub chunk_cols: u32,
    /// Workspace bytes one chunk uses (0 but for `Im2colGemm` and `Winograd`).
    pub workspace_bytes: u64,
    /// The fused activation.
    pub activation: Activation,
    /// The input's and output's layouts.
    pub layouts: Conv2dLayouts,
    /// The kernel launches, in recording order (for a split call, every piece's or band's,
    /// each note saying which).
    pub steps: Vec<Step>,
    /// Pieces of the batch run one after another ([`Conv2dInfo::batch_pieces`]).
    pub batch_pieces: u32,
    /// Bands of output rows per image ([`Conv2dInfo::row_bands`]).
    pub row_bands: u32,
    /// Chunks of output channels ([`Conv2dInfo::channel_chunks`]).
    pub channel_chunks: u32,
    /// The GEMM of `ImplicitGemm` / `Gemm1x1` (its steps are in `steps`) of an unsplit call.
    gemm: Option<gemm::GemmPlan>,
}

impl Conv2dPlan {
    /// What [`conv2d_into`] returns for this plan.
    pub fn info(&self) -> Conv2dInfo {
        Conv2dInfo {
            algorithm: self.algorithm,
            geometry: self.geometry,
            chunks: self.chunks,
            chunk_cols: self.chunk_cols,
            workspace_bytes: self.workspace_bytes,
            batch_pieces: self.batch_pieces,
            row_bands: self.row_bands,
            channel_chunks: self.channel_chunks,
            launches: self.steps.len() as u32,
        }
    }
}

impl std::fmt::Display for Conv2dPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry;
        write_plan(
            f,
            "conv2d",
            &[g.n, g.c_in, g.h, g.w].map(|v| v as usize),
            &g.output_shape(),
            (self.algorithm.name(), &self.reason),
            self.workspace_bytes,
            format_args!(
                "{} chunks of {} {}",
                self.chunks,
                self.chunk_cols,
                if self.algorithm == Algorithm::Winograd { "2x2 output tiles" } else { "pixels" }
            ),
            &self.steps,
        )
    }
}

/// Plans a conv2d of `input` `[N, Cin, H, W]` and `weight` `[Cout, Cin/groups, kh, kw]` (and
/// `bias` `[Cout]`) stored as `dtype`: validates `params` (every rule of
/// [`Conv2dParams::validate`]), picks the algorithm (`Auto`: [`Algorithm::choose`], or the
/// autotuner's measurement when it is on, which runs GPU work once per bucketed shape), and
/// lists the launches. Creates no GPU object but the autotuner's. Errors as [`conv2d`].
/// Contiguous (NCHW) input and output: [`plan_conv2d_with_layouts`] plans other layouts.
pub fn plan_conv2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    dtype: DType,
    params: &Conv2dParams,
) -> Result<Conv2dPlan> {
    plan_conv2d_with_layouts(ctx, input, weight, bias, dtype, Conv2dLayouts::default(), params)
}

/// [`plan_conv2d`] for an input and output of these layouts (the shapes are the logical
/// `[N, C, H, W]` ones). Channels-last tensors run every algorithm and batch pieces; an image
/// or a weight beyond one storage binding (row bands, channel chunks) is
/// [`Error::TooLarge`] with them, and the autotuner measures NCHW only (`Auto` takes
/// [`Algorithm::choose`]).
pub fn plan_conv2d_with_layouts(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    dtype: DType,
    layouts: Conv2dLayouts,
    params: &Conv2dParams,
) -> Result<Conv2dPlan> {
    let input = &as_batched(input, 4)[..];
    let g = params.validate(input, weight, bias)?;
    if dtype == DType::F16 && g.pads_by_mode() {
        // im2col_gemm, which applies the mode, has no f16 kernels: the f32 plan on copies
        let mut plan = plan_conv2d_with_layouts(ctx, input, weight, bias, DType::F32, layouts, params)?;
        let numel = |s: &[usize]| s.iter().product::<usize>();
        let ins = [numel(input), numel(weight), bias.map_or(0, numel)];
        crate::ops::widen::bracket(ctx, &mut plan.steps, &ins, &[g.output_numel()])?;
        plan.dtype = dtype;
        plan.reason += "; f16 through f32 copies";
        return Ok(plan);
    }
    let (algorithm, reason) = choose_algorithm(ctx, &g, params, dtype, bias.is_some(), layouts)?;
    let reason = reason + &layouts.note();
    let act = params.activation;
    let has_bias = bias.is_some();
    let half = dtype == DType::F16;
    let pixels = g.n * g.h_out * g.w_out;
    let mut plan = Conv2dPlan {
        geometry: g,
        dtype,
        algorithm,
        reason,
        chunks: 1,
        chunk_cols: pixels,
        workspace_bytes: 0,
        activation: act,
        layouts,
        steps: Vec::new(),
        batch_pieces: 1,
        row_bands: 1,
        channel_chunks: 1,
        gemm: None,
    };
    if g.n == 0 {
        // An empty batch: an empty output and nothing to run (PyTorch returns the same).
        plan.chunks = 0;
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    if plan_split(ctx, &mut plan, input, weight, bias, params)? {
        return Ok(plan);
    }
    match algorithm {
        Algorithm::Im2colGemm => {
            let chunks = plan_chunks(ctx, &g.unfolded())?;
            plan.chunks = chunks.chunks;
            plan.chunk_cols = chunks.cols;
            plan.workspace_bytes = chunks.cols as u64 * chunks.rows as u64 * 4;
            let unfold = |col0, cols| {
                let ip = im2col::Im2colParams::new(&g, col0, cols);
                Ok(vec![im2col::step(ctx, &ip, g.padding_mode, layouts.input)?])
            };
            plan.steps = im2col_gemm_steps(ctx, &g.unfolded(), &chunks, act, has_bias, layouts.output, unfold)?;
        }
        Algorithm::ImplicitGemm | Algorithm::Gemm1x1 => {
            let problem = if algorithm == Algorithm::Gemm1x1 { GemmProblem::Pointwise } else { GemmProblem::Implicit };
            let p = gemm::GemmParams::conv(&g, 0, pixels, act.alpha());
            let ov = gemm::overrides(problem, act, has_bias, &gemm::Aux::None).layouts(layouts.input, layouts.output);
            let input_bytes = input.iter().product::<usize>() as u64 * dtype.size();
            let gplan = gemm::plan(ctx, &p, problem, ov, half, Some((0, input_bytes)), g.output_numel())?;
            plan.steps = gplan.steps(algorithm.name());
            plan.gemm = Some(gplan);
        }
        Algorithm::Depthwise => plan.steps.push(depthwise::step(
            ctx,
            &depthwise::DepthwiseParams::new(&g, act.alpha()),
            act,
            has_bias,
            half,
            (layouts.input, layouts.output),
        )?),
        Algorithm::Direct => {
            let p = direct::DirectParams::new(&g, act.alpha());
            plan.steps.push(direct::step(ctx, &p, act, has_bias, (layouts.input, layouts.output))?)
        }
        Algorithm::Winograd => {
            let (chunks, steps) = winograd::plan(ctx, &g, (act, has_bias), dtype, layouts, false)?;
            (plan.chunks, plan.chunk_cols) = (chunks.chunks, chunks.per_chunk);
            plan.workspace_bytes = chunks.workspace_bytes(&g);
            plan.steps = steps;
        }
        Algorithm::Auto => unreachable!("resolved above"),
        Algorithm::GemmCol2im => unreachable!("rejected by validate (not a conv2d algorithm)"),
    }
    Ok(plan)
}

/// Where a tensor exceeds one storage binding: fills `plan` with the steps of every chunk
/// of output channels of every image when the weight exceeds it ([`crate::ops::channels`]),
/// of every batch piece ([`crate::ops::batch`]) or, when one image exceeds it, of every band
/// of output rows of every image ([`crate::ops::bands`]), each planned with
/// `plan.algorithm`, and returns true; false when one call binds everything.
fn plan_split(
    ctx: &GpuContext,
    plan: &mut Conv2dPlan,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    params: &Conv2dParams,
) -> Result<bool> {
    let (g, dtype) = (plan.geometry, plan.dtype);
    let n = g.n as usize;
    let out_shape = g.output_shape();
    let per_image = |shape: &[usize]| (shape.iter().product::<usize>() / n) as u64 * dtype.size();
    let (in_image, out_image) = (per_image(input), per_image(&out_shape));
    let forced = Conv2dParams { algorithm: plan.algorithm, ..*params };
    // (input, weight, bias, params, note) of each call
    type Part = (Vec<usize>, Vec<usize>, Option<Vec<usize>>, Conv2dParams, String);
    let mut parts: Vec<Part> = Vec::new();
    let max = ctx.max_binding();
    let weight_bytes = weight.iter().product::<usize>() as u64 * dtype.size();
    if weight_bytes > max {
        plan.layouts.check_split("conv2d", true, max)?;
        channels::check_images("conv2d", weight, weight_bytes, in_image, out_image, max)?;
        let row = weight[1..].iter().product::<usize>() as u64 * dtype.size();
        let (groups, c_in, c_out) = (g.groups as u64, g.c_in as u64, g.c_out as u64);
        let limits = channels::Limits::default();
        let chunks = channels::ranges("conv2d", groups, c_in, c_out, row, dtype.size(), max, limits)?;
        for c in &chunks {
            let (ci, co) = (c.c_in as usize, c.c_out as usize);
            let p = Conv2dParams { groups: c.groups as u32, ..forced };
            for i in 0..n {
                parts.push((
                    vec![1, ci, input[2], input[3]],
                    vec![co, weight[1], weight[2], weight[3]],
                    bias.map(|_| vec![co]),
                    p,
                    format!("channels {}..{}, image {i}", c.c_out0, c.c_out0 + c.c_out),
                ));
            }
        }
        plan.batch_pieces = g.n;
        plan.channel_chunks = chunks.len() as u32;
    } else if in_image > max || out_image > max {
        if g.pads_by_mode() {
            return Err(Error::TooLarge(format!(
                "conv2d: one image beyond one storage binding ({max} bytes) runs in bands of rows, whose halo rows \
                 read zeros: padding_mode {} needs each image within one binding",
                g.padding_mode.name()
            )));
        }
        plan.layouts.check_split("conv2d", false, max)?;
        let rows = row_geometry(&g, dtype);
        let bands = band_plan(&rows, plan.algorithm, max)?;
        let list = rows.bands(&bands)?;
        for i in 0..n {
            for b in &list {
                let padding =
                    Padding::Explicit { top: b.pad_top, left: g.pads.left, bottom: b.pad_bottom, right: g.pads.right };
                let shape = vec![1, input[1], b.rows_in as usize, input[3]];
                parts.push((
                    shape,
                    weight.to_vec(),
                    bias.map(<[usize]>::to_vec),
                    Conv2dParams { padding, ..forced },
                    format!("image {i}, rows {}..{}", b.oy0, b.oy1),
                ));
            }
        }
        plan.batch_pieces = g.n;
        plan.row_bands = bands.bands as u32;
    } else {
        let pieces = batch::plan(ctx, "conv2d", n, &[("input", input, in_image), ("output", &out_shape, out_image)])?;
        if pieces.pieces <= 1 {
            return Ok(false);
        }
        for n0 in (0..n).step_by(pieces.per_piece) {
            let len = pieces.per_piece.min(n - n0);
            let shape = vec![len, input[1], input[2], input[3]];
            parts.push((
                shape,
                weight.to_vec(),
                bias.map(<[usize]>::to_vec),
                forced,
                format!("images {n0}..{}", n0 + len),
            ));
        }
        plan.batch_pieces = pieces.pieces as u32;
    }
    for (k, (shape, weight, bias, p, what)) in parts.into_iter().enumerate() {
        let part = plan_conv2d_with_layouts(ctx, &shape, &weight, bias.as_deref(), dtype, plan.layouts, &p)?;
        if k == 0 {
            (plan.chunks, plan.chunk_cols, plan.workspace_bytes) = (part.chunks, part.chunk_cols, part.workspace_bytes);
        }
        plan.steps.extend(part.steps.into_iter().map(|s| s.noted(&what)));
    }
    Ok(true)
}

/// The bands of output rows of one image of `rows` run with `algorithm`: Winograd's start at
/// even rows, so that every 2×2 tile is the one of an unsplit call (bit-identical results).
fn band_plan(rows: &RowGeometry, algorithm: Algorithm, max: u64) -> Result<bands::RowBands> {
    let plan = rows.plan("conv2d", max)?;
    if algorithm != Algorithm::Winograd || plan.bands == 1 || plan.rows < 2 {
        return Ok(plan);
    }
    // balanced again, each band an even number of rows (at most the rows that fit)
    let bands = rows.h_out.div_ceil(plan.rows / 2 * 2);
    Ok(bands::RowBands { rows: rows.h_out.div_ceil(bands).next_multiple_of(2), bands })
}

/// The rows of one image of `g` as [`crate::ops::bands`] cuts them.
pub(crate) fn row_geometry(g: &Conv2dGeometry, dtype: DType) -> RowGeometry {
    RowGeometry {
        c_in: g.c_in as u64,
        h: g.h as u64,
        w: g.w as u64,
        c_out: g.c_out as u64,
        h_out: g.h_out as u64,
        w_out: g.w_out as u64,
        span: g.dilation[0] as u64 * (g.kh as u64 - 1) + 1,
        stride: g.stride[0] as u64,
        pad_top: g.pads.top as u64,
        elem: dtype.size(),
        transposed: false,
        workspace: None,
    }
}

/// The algorithm a conv2d of `g` runs and why: `params.algorithm` unless `Auto`, then the
/// autotuner's pick when it is on (NCHW tensors), else [`Algorithm::choose`]; a kernel that
/// would loop past the loop budget is replaced (Auto) or refused (forced). Every batch piece
/// of a split call runs the choice made for the whole batch.
pub(crate) fn choose_algorithm(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    params: &Conv2dParams,
    dtype: DType,
    has_bias: bool,
    layouts: Conv2dLayouts,
) -> Result<(Algorithm, String)> {
    let tune = dtype == DType::F32 && g.n > 0 && !g.pads_by_mode() && layouts.is_nchw();
    let (algorithm, reason) = match params.algorithm {
        Algorithm::Auto if tune && ctx.autotune_enabled() => {
            let tuned = (ctx.tune_conv2d(g, params, has_bias)?, "autotuned: fastest measured".to_string());
            runnable(ctx, g, tuned)
        }
        Algorithm::Auto => heuristic(ctx, g),
        forced => (forced, "forced".to_string()), // validate() has checked that it supports g
    };
    // A forced kernel that would loop past the loop budget is an error rather than a wrong
    // answer (Auto's choice has been replaced above).
    let budget = ctx.config().loop_budget;
    if let Some(turns) = loop_turns(algorithm, g).filter(|&t| t > budget as u64) {
        return Err(Error::Unsupported(format!(
            "{} sums each output in one loop of about {turns} turns, beyond the loop budget of {budget} \
             (EngineConfig::loop_budget; some drivers stop longer loops early): implicit_gemm splits it",
            algorithm.name(),
        )));
    }
    // (f16 with a padding mode runs im2col_gemm on f32 copies: plan_conv2d and conv2d_into)
    if dtype == DType::F16
        && !g.pads_by_mode()
        && !matches!(
            algorithm,
            Algorithm::ImplicitGemm | Algorithm::Gemm1x1 | Algorithm::Depthwise | Algorithm::Winograd
        )
    {
        return Err(Error::param(
            "algorithm",
            format!("f16 storage runs implicit_gemm, gemm_1x1, depthwise or winograd, not {}", algorithm.name()),
        ));
    }

    Ok((algorithm, reason))
}

/// Records the conv into the caller's `encoder` without submitting; writes `output`, which
/// must have the output shape (see [`Conv2dParams::output_shape`]). Tensors may wrap the
/// caller's own buffers ([`Tensor::from_buffer`]); the input and output may each be
/// contiguous (NCHW) or channels-last ([`Tensor::with_layout`]), the weight and bias
/// contiguous. Validates, plans ([`plan_conv2d_with_layouts`]) and records the plan's steps.
pub fn conv2d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv2dParams,
    output: &Tensor,
) -> Result<Conv2dInfo> {
    if let Some(v) = unbatched(4, &[(input, "input"), (output, "output")])? {
        return conv2d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    input.check_device(ctx, "input")?;
    weight.check_device(ctx, "weight")?;
    output.check_device(ctx, "output")?;
    if let Some(b) = bias {
        b.check_device(ctx, "bias")?;
    }
    contiguous("conv2d", &[(Some(weight), "weight"), (bias, "bias")])?;
    let others = [(Some(weight), "weight"), (bias, "bias"), (Some(output), "output")];
    let dtype = common_dtype_any_layout("conv2d", input, &others)?;
    let layouts = Conv2dLayouts { input: input.layout(), output: output.layout() };
    if dtype == DType::F16 && g.pads_by_mode() {
        // im2col_gemm, which applies padding modes, has no f16 kernels: f32 copies
        let (ins, outs) = ([Some(input), Some(weight), bias], [Some(output)]);
        return crate::ops::widen::with_f32(ctx, encoder, "conv2d", &ins, &outs, |e, i, o| {
            let [x, w, y] = [&i[0], &i[1], &o[0]].map(|t| t.as_ref().expect("given"));
            conv2d_into(ctx, e, x, w, i[2].as_ref(), params, y)
        });
    }
    let bias_shape = bias.map(|b| b.shape());
    let plan = plan_conv2d_with_layouts(ctx, input.shape(), weight.shape(), bias_shape, dtype, layouts, params)?;
    // A split call: every piece, band or chunk is planned again for its own shape, with the
    // algorithm chosen for the whole call (bit-identical results).
    let split = Conv2dParams { algorithm: plan.algorithm, ..*params };
    if plan.channel_chunks > 1 {
        let layout = channels::Layout::OutIn;
        let limits = channels::Limits::default();
        channels::for_each_chunk(
            ctx,
            encoder,
            "conv2d",
            layout,
            g.groups,
            input,
            weight,
            bias,
            output,
            limits,
            |encoder, c| {
                let p = Conv2dParams { groups: c.groups, ..split };
                let part = plan_conv2d(ctx, c.input.shape(), c.weight.shape(), c.bias.map(|b| b.shape()), dtype, &p)?;
                record_conv2d(ctx, encoder, &part, c.input, c.weight, c.bias, c.output)
            },
        )?;
    } else if plan.row_bands > 1 {
        let rows = row_geometry(&g, dtype);
        let bands = band_plan(&rows, plan.algorithm, ctx.max_binding())?;
        for i in 0..g.n as usize {
            let (x, y) = (input.narrow_batch(i, 1)?, output.narrow_batch(i, 1)?);
            bands::for_each_band(ctx, encoder, &rows, &bands, &x, &y, bands::Role::Out, |encoder, x, y, band| {
                let (top, bottom) = (band.pad_top, band.pad_bottom);
                let padding = Padding::Explicit { top, left: g.pads.left, bottom, right: g.pads.right };
                let band =
                    plan_conv2d(ctx, x.shape(), weight.shape(), bias_shape, dtype, &Conv2dParams { padding, ..split })?;
                record_conv2d(ctx, encoder, &band, x, weight, bias, y)
            })?;
        }
    } else if plan.batch_pieces > 1 {
        let batched = [batch::input(input, "input"), batch::output(output, "output")];
        let pieces = batch::pieces(ctx, "conv2d", &batched)?;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            let piece =
                plan_conv2d_with_layouts(ctx, t[0].shape(), weight.shape(), bias_shape, dtype, layouts, &split)?;
            record_conv2d(ctx, encoder, &piece, &t[0], weight, bias, &t[1])
        })?;
    } else if plan.batch_pieces == 1 {
        record_conv2d(ctx, encoder, &plan, input, weight, bias, output)?;
    }
    Ok(plan.info())
}

/// Records `plan` (made for these tensors by [`plan_conv2d`]).
fn record_conv2d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Conv2dPlan,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<()> {
    let g = &plan.geometry;
    let act = plan.activation;
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let dispatches: Vec<Dispatch> = match plan.algorithm {
            Algorithm::Im2colGemm => {
                let (u, unfold) = (g.unfolded(), Unfold::Plain { input, geometry: *g });
                let chunks = plan_chunks(ctx, &u)?;
                let recorded = encode_im2col_gemm(ctx, encoder, &u, &chunks, act, unfold, weight, bias, output)?;
                return check_recorded("conv2d", recorded, &plan.steps);
            }
            Algorithm::ImplicitGemm | Algorithm::Gemm1x1 => {
                let gplan = plan.gemm.as_ref().ok_or_else(|| Error::Internal("conv2d plan without its GEMM".into()))?;
                let p = gemm::GemmParams::conv(g, 0, plan.chunk_cols, act.alpha());
                let block = arena.push(&p);
                let uniforms = arena.finish(ctx)?;
                gemm::prepare_planned(
                    ctx,
                    &uniforms,
                    block,
                    gplan,
                    weight,
                    whole(input),
                    bias,
                    output,
                    gemm::Aux::None,
                )?
            }
            Algorithm::Depthwise => {
                let p = depthwise::DepthwiseParams::new(g, act.alpha());
                let block = arena.push(&p);
                let uniforms = arena.finish(ctx)?;
                vec![depthwise::prepare(ctx, &uniforms, block, &p, act, input, weight, bias, output)?]
            }
            Algorithm::Direct => {
                let p = direct::DirectParams::new(g, act.alpha());
                let block = arena.push(&p);
                let uniforms = arena.finish(ctx)?;
                vec![direct::prepare(ctx, &uniforms, block, &p, act, input, weight, bias, output)?]
            }
            Algorithm::Winograd => {
                let chunks = winograd::plan_chunks(ctx, g)?;
                let recorded = winograd::encode(ctx, encoder, g, &chunks, (act, false), (input, weight, bias, output))?;
                return check_recorded("conv2d", recorded, &plan.steps);
            }
            Algorithm::Auto | Algorithm::GemmCol2im => {
                return Err(Error::Internal(format!("conv2d plan with algorithm {}", plan.algorithm.name())))
            }
        };
        check_recorded("conv2d", dispatches.len(), &plan.steps)?;
        record(ctx, encoder, "conv2d", &dispatches);
        Ok(())
    })?
}

/// What unfolds the input into the column workspace.
#[derive(Clone, Copy)]
pub(crate) enum Unfold<'a> {
    /// im2col.wgsl over a conv2d of this geometry.
    Plain { input: &'a Tensor, geometry: Conv2dGeometry },
    /// deform_im2col.wgsl: bilinear samples at the offsets, times the mask. `inputs` are
    /// chunks of input channels `(first channel, [N, channels, H, W])`, one launch each (one
    /// chunk, all channels, in a whole call); the offsets, mask and output hold output rows
    /// `row0 ..` (0 in a whole call).
    Deform {
        inputs: &'a [(u32, Tensor)],
        offset: &'a Tensor,
        mask: Option<&'a Tensor>,
        offset_groups: u32,
        row0: u32,
        geometry: Conv2dGeometry,
    },
    /// vol2col.wgsl: the 3-D unfold of conv3d.
    Vol2col { input: &'a Tensor, geometry: crate::params::Conv3dGeometry },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkPlan {
    /// Rows of the column matrix: Cin·taps.
    pub rows: u32,
    /// Output pixels of the batch.
    pub pixels: u32,
    /// Pixels per chunk.
    pub cols: u32,
    pub chunks: u32,
}

/// Upper bound on the loop turns of one invocation of the kernels that do not split their
/// sums (see `depthwise.wgsl` and `direct.wgsl`); `None` for the GEMM-based algorithms.
pub(crate) fn loop_turns(algorithm: Algorithm, g: &Conv2dGeometry) -> Option<u64> {
    let (kh, kw) = (g.kh as u64, g.kw as u64);
    match algorithm {
        // per kernel row: the input window of four outputs, the taps, the taps × 4 outputs
        Algorithm::Depthwise => {
            let window = 3 * g.stride[1] as u64 + (kw - 1) * g.dilation[1] as u64 + 1;
            Some(4 + kh * (1 + window + 6 * kw))
        }
        // every channel of the group, every tap
        Algorithm::Direct => Some(4 + g.c_in_per_group() as u64 * (1 + kh * (1 + kw))),
        // the direct sum of a tile whose transformed values are not finite
        Algorithm::Winograd => Some(winograd::loop_turns(g)),
        _ => None,
    }
}

/// What `Algorithm::Auto` runs for `g` (autotuner off) on this context: [`Algorithm::choose`]
/// on every adapter (the implicit GEMM is ahead of `Im2colGemm` on CPU adapters too: r50_c4
/// on lavapipe 16.7 against 20.1 ms; the others in BENCHMARKS.md, "Why Auto picks what it
/// picks"), replaced by the implicit GEMM where that choice cannot run here: a kernel that
/// would loop past `EngineConfig::loop_budget`, Winograd's workspace beyond the budget or a
/// binding. `ctx.autotune(true)` measures instead of guessing.
pub fn auto_algorithm(ctx: &GpuContext, g: &Conv2dGeometry) -> Algorithm {
    heuristic(ctx, g).0
}

/// [`auto_algorithm`] with its reason.
fn heuristic(ctx: &GpuContext, g: &Conv2dGeometry) -> (Algorithm, String) {
    let (a, why) = Algorithm::choose_why(g);
    runnable(ctx, g, (a, why.to_string()))
}

/// Auto's `choice` where it can run on this context, else the implicit GEMM (whose K runs in
/// passes and which needs no workspace) and why: the direct, depthwise and Winograd kernels sum
/// (part of) each output in one loop nest of one invocation, which some drivers cut short
/// past the loop budget; Winograd's U + four tiles must fit the workspace budget and a binding.
fn runnable(ctx: &GpuContext, g: &Conv2dGeometry, choice: (Algorithm, String)) -> (Algorithm, String) {
    let (a, _) = &choice;
    let budget = ctx.config().loop_budget;
    if let Some(turns) = loop_turns(*a, g).filter(|&t| t > budget as u64) {
        return (
            Algorithm::ImplicitGemm,
            format!("{} would loop {turns} times, past the loop budget {budget}", a.name()),
        );
    }
    if *a == Algorithm::Winograd {
        if let Err(e) = winograd::plan_chunks(ctx, g) {
            return (Algorithm::ImplicitGemm, format!("general conv: implicit GEMM (winograd does not fit: {e})"));
        }
    }
    choice
}

/// Whether the dense GEMM of `g`'s im2col path (conv2d's, deform_conv2d's) resolves to
/// [`GemmKernel::Flat16x16`] on this context: B rows read as vec4 when the chunks are whole
/// vec4s, element by element otherwise (the flat kernel then only for few tiles).
pub fn im2col_gemm_runs_flat(ctx: &GpuContext, g: &Conv2dGeometry) -> bool {
    let Ok(plan) = plan_chunks(ctx, &g.unfolded()) else { return false };
    let loads = if plan.cols % 4 == 0 { BLoads::Vec4 } else { BLoads::Gather };
    let kernel = ctx.config().gemm_kernel.resolve(
        ctx.adapter_info().device_type,
        g.c_out_per_group(),
        plan.cols,
        g.groups,
        loads,
    );
    kernel == GemmKernel::Flat16x16
}

/// [`plan_chunks`] with every chunk a multiple of 16 pixels where there are several (the
/// unfold read transposed as a GEMM's K, `BMode::ColumnsT`: no K slice of a tiled GEMM, 16
/// or 8 wide, may straddle two chunks): at least 16 columns, even where the workspace budget
/// holds fewer (one binding must hold them).
pub(crate) fn plan_chunks_of_16(ctx: &GpuContext, u: &Unfolded) -> Result<ChunkPlan> {
    let c = plan_chunks(ctx, u)?;
    if c.chunks == 1 {
        return Ok(c);
    }
    let cols = (c.cols / 16 * 16).max(16);
    if c.rows as u64 * cols as u64 * 4 > ctx.max_binding() {
        return Err(Error::TooLarge(format!(
            "16 columns of an unfold of {} rows exceed one storage binding ({} bytes)",
            c.rows,
            ctx.max_binding()
        )));
    }
    Ok(ChunkPlan { cols, chunks: c.pixels.div_ceil(cols), ..c })
}

/// Largest balanced chunks whose column matrix fits the workspace budget and one binding.
pub(crate) fn plan_chunks(ctx: &GpuContext, u: &Unfolded) -> Result<ChunkPlan> {
    let (rows, pixels) = (u.rows as u64, u.pixels());
    let budget = ctx.config().workspace_budget.min(ctx.max_binding());
    let max_cols = budget / (rows * 4);
    if max_cols == 0 {
        return Err(Error::TooLarge(format!(
            "one output pixel needs a {}-byte im2col column (Cin·taps = {rows}) but the workspace budget is {budget} bytes",
            rows * 4
        )));
    }
    let chunks = pixels.div_ceil(max_cols.min(pixels));
    let cols = pixels.div_ceil(chunks);
    // rows·cols·4 ≤ budget < 2^32 bytes, so every index the kernels form fits in u32.
    let to_u32 = |v: u64| u32::try_from(v).map_err(|_| Error::TooLarge(format!("{v} exceeds u32")));
    Ok(ChunkPlan { rows: to_u32(rows)?, pixels: to_u32(pixels)?, cols: to_u32(cols)?, chunks: to_u32(chunks)? })
}

/// The launches [`encode_im2col_gemm`] records for the conv `u` in `chunks`: per chunk the
/// unfold (`unfold(col0, cols)`: the unfold kernel's launches) and the dense GEMM's K passes.
pub(crate) fn im2col_gemm_steps(
    ctx: &GpuContext,
    u: &Unfolded,
    chunks: &ChunkPlan,
    act: Activation,
    has_bias: bool,
    output: Layout,
    unfold: impl Fn(u32, u32) -> Result<Vec<Step>>,
) -> Result<Vec<Step>> {
    let ov = gemm::overrides(GemmProblem::Dense, act, has_bias, &gemm::Aux::None).layouts(Layout::Contiguous, output);
    let mut steps = Vec::new();
    for c in 0..chunks.chunks {
        let col0 = c * chunks.cols;
        let cols = chunks.cols.min(chunks.pixels - col0);
        steps.extend(unfold(col0, cols)?);
        let gp = gemm::GemmParams::unfolded(u, col0, cols, act.alpha());
        let b_span = Some((0, chunks.rows as u64 * cols as u64 * 4));
        let gplan = gemm::plan(ctx, &gp, GemmProblem::Dense, ov.clone(), false, b_span, u.output_numel())?;
        steps.extend(gplan.steps(&format!("chunk {}/{}", c + 1, chunks.chunks)));
    }
    Ok(steps)
}

/// Per chunk: unfold the input into the workspace, then the dense GEMM of the conv `u` into
/// the output. Returns the number of launches recorded.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_im2col_gemm(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    u: &Unfolded,
    plan: &ChunkPlan,
    act: Activation,
    unfold: Unfold<'_>,
    weight: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<usize> {
    let workspace = ctx.workspace(plan.cols as u64 * plan.rows as u64 * 4)?;
    let mut arena = UniformArena::new(ctx);
    let mut blocks = Vec::with_capacity(plan.chunks as usize);
    for c in 0..plan.chunks {
        let col0 = c * plan.cols;
        let cols = plan.cols.min(plan.pixels - col0);
        // The 2-D unfolds' block (the deformable one extends it); conv3d's is its own.
        let ip = match unfold {
            Unfold::Plain { geometry, .. } | Unfold::Deform { geometry, .. } => {
                Some(im2col::Im2colParams::new(&geometry, col0, cols))
            }
            Unfold::Vol2col { .. } => None,
        };
        // One unfold block per launch (a deformable unfold: one per chunk of input channels).
        let ibs: Vec<(u64, u64)> = match (unfold, &ip) {
            (Unfold::Plain { .. }, Some(ip)) => vec![arena.push(ip)],
            (Unfold::Deform { inputs, offset_groups, row0, .. }, Some(ip)) => inputs
                .iter()
                .map(|(c_first, x)| {
                    let p = crate::kernels::deform_im2col::DeformIm2colParams {
                        row0,
                        c_first: *c_first,
                        c_count: x.shape()[1] as u32,
                        ..crate::kernels::deform_im2col::DeformIm2colParams::new(ip, offset_groups)
                    };
                    arena.push(&p)
                })
                .collect(),
            (Unfold::Vol2col { geometry, .. }, _) => {
                vec![arena.push(&crate::kernels::vol2col::Vol2colParams::new(&geometry, col0, cols))]
            }
            _ => return Err(Error::Internal("a 2-D unfold without its block".into())),
        };
        let gp = gemm::GemmParams::unfolded(u, col0, cols, act.alpha());
        blocks.push((ip, plan.rows * cols, ibs, gp, arena.push(&gp)));
    }
    let uniforms = arena.finish(ctx)?;

    let mut dispatches: Vec<Dispatch> = Vec::with_capacity(2 * blocks.len());
    for (ip, total, ibs, gp, gb) in &blocks {
        match (unfold, ip) {
            (Unfold::Plain { input, geometry }, Some(ip)) => {
                dispatches.push(im2col::prepare(ctx, &uniforms, ibs[0], ip, geometry.padding_mode, input, &workspace)?)
            }
            (Unfold::Deform { inputs, offset, mask, offset_groups, .. }, Some(ip)) => {
                for ((_, input), ib) in inputs.iter().zip(ibs) {
                    dispatches.push(crate::kernels::deform_im2col::prepare(
                        ctx,
                        &uniforms,
                        *ib,
                        ip,
                        offset_groups,
                        input,
                        offset,
                        mask,
                        &workspace,
                    )?);
                }
            }
            (Unfold::Vol2col { input, geometry }, _) => dispatches.push(crate::kernels::vol2col::prepare(
                ctx,
                &uniforms,
                ibs[0],
                *total,
                geometry.padding_mode,
                input,
                &workspace,
            )?),
            _ => return Err(Error::Internal("a 2-D unfold without its block".into())),
        }
        let col = range(&workspace, (0, *total as u64 * 4));
        dispatches.extend(gemm::prepare(ctx, &uniforms, *gb, gp, GemmProblem::Dense, act, weight, col, bias, output)?);
    }
    record(ctx, encoder, "im2col_gemm", &dispatches);
    Ok(dispatches.len())
}
