//! conv_transpose2d (PyTorch `torch.nn.functional.conv_transpose2d` semantics).
//!
//! Two algorithms, neither a scatter; each output element is written by exactly one
//! invocation, so results are bit-identical run to run (a scatter would need float atomics).
//!
//! `Auto` ([`auto_algorithm`]) runs `ImplicitGemm` on every adapter, but for stride-1 3×3
//! transposed convs of many channels: `Winograd` on the conv2d they equal (the weight read
//! flipped with its channel axes swapped, `FLIP` in `shaders/winograd.wgsl`); and for few
//! output channels per group from many input channels (a conv2d_backward's grad_input into
//! an RGB image): `GemmCol2im`.
//!
//! `ImplicitGemm`: output row oy only receives the taps i with
//! i·dh ≡ oy + pt (mod sh). Split the output into its sh·sw phases (oy mod sh, ox mod sw): in
//! one phase those taps are i0, i0 + step, …, step = sh / gcd(sh, dh), and they read input rows
//! that advance one by one with the phase's own rows, so each phase is an ordinary implicit
//! GEMM (`A_PHASE_TAPS` picks the phase's taps out of the weight, `B_TRANSPOSED` gathers the input),
//! all phases and groups in one dispatch. No zero is inserted, no multiply is wasted (but on
//! taps past the kernel when step ∤ kh), and no workspace is used. The GEMM reads a tap whose
//! input row or column lies outside the input as 0 and multiplies it by the tap's weight: with
//! an infinite weight that is NaN (0·∞) where the scatter that defines the op adds nothing. Such
//! a product can only make an output NaN, and only on the output's border band, so a second
//! launch (`shaders/transposed_border.wgsl`) reads the band and recomputes each NaN element by
//! the scatter's own terms: NaN and ±∞ where the reference has them, for one read of the band.
//!
//! `GemmCol2im`: per chunk of images, `gemm.wgsl`
//! computes `col[g] = W[g]ᵀ · X[g]` (`A_MODE` transposed: the weight `[Cin, Cout/G, kh, kw]`
//! read as `[(Cout/G)·kh·kw, Cin/G]`; `B_MODE` pointwise: the input image as
//! `[Cin/G, H·W]`), i.e. every input pixel's contribution to every tap of every output
//! channel; then `col2im.wgsl` gathers, for each output element, the taps that land on it.
//! A 1×1 kernel at stride 1 without padding has the output itself as its column matrix: its
//! GEMM writes the output (NCHW) with the bias and activation in its epilogue, and `Auto`
//! runs it (conv2d_backward's grad_input of a 1×1 conv: one GEMM of the weight transposed).
//!
//! Both read and write channels-last tensors too ([`crate::Layout::ChannelsLast`], any mix
//! of input and output layouts, as conv2d): the phases' gather and the pointwise B read NHWC
//! (`X_NHWC`), the phases' write-out and col2im write it (`Y_NHWC`); no transpose pass.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::col2im::{self, Col2imParams};
use crate::kernels::gemm::{GemmParams, GemmProblem};
use crate::kernels::transposed_border::{self, BorderParams};
use crate::kernels::{check_recorded, gcd, gemm, optional, range, record, whole, write_plan, Step, UniformArena};
use crate::ops::bands::{self, RowGeometry};
use crate::ops::conv2d::Conv2dLayouts;
use crate::ops::winograd;
use crate::ops::{as_batched, batch, channels, common_dtype_any_layout, contiguous, returned_shape, unbatched};
use crate::params::{Activation, Algorithm, ConvTranspose2dGeometry, ConvTranspose2dParams, Padding};
use crate::tensor::{DType, Layout, Tensor};

/// What one conv_transpose2d call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dInfo {
    /// `ImplicitGemm` or `GemmCol2im` (never `Auto`).
    pub algorithm: Algorithm,
    /// Every size of the validated conv_transpose2d.
    pub geometry: ConvTranspose2dGeometry,
    /// Chunks of images the work was split into.
    pub chunks: u32,
    /// Images per chunk (the last may hold fewer).
    pub images_per_chunk: u32,
    /// Workspace bytes one chunk uses.
    pub workspace_bytes: u64,
    /// Kernel launches recorded (the plan's steps).
    pub launches: u32,
}

/// Transposed convolution, submitted; returns `[N, Cout, Ho, Wo]` in the input's layout.
pub fn conv_transpose2d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose2dParams,
) -> Result<Tensor> {
    conv_transpose2d_with_info(ctx, input, weight, bias, params).map(|(t, _)| t)
}

/// [`conv_transpose2d`] that also says how the work was split.
pub fn conv_transpose2d_with_info(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose2dParams,
) -> Result<(Tensor, ConvTranspose2dInfo)> {
    let g = params.validate(&as_batched(input.shape(), 4), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &g.output_shape()), input.dtype())?
        .with_layout(input.layout())?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv_transpose2d") });
    let info = conv_transpose2d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok((output, info))
}

/// One image's column matrix for `GemmCol2im`: Cout·kh·kw rows of H·W, in bytes.
fn col_bytes_per_image(g: &ConvTranspose2dGeometry) -> u64 {
    g.c_out as u64 * g.kh as u64 * g.kw as u64 * g.h as u64 * g.w as u64 * 4
}

/// Whether `GemmCol2im` beats the output phases for `c_in` input and `c_out` output
/// channels per group: at most 16 output channels, and either at most 4 or at most half the
/// input channels. The phases' GEMM has M = Cout/G rows, so few output channels leave most
/// of each tile idle and feed each gathered input element to only Cout/G multiply-adds,
/// while col2im's GEMM has M = (Cout/G)·kh·kw rows over the plain input, and pays for its
/// columns (Cout/G·kh·kw per input pixel, written then gathered) in proportion to Cout/G
/// against a GEMM in proportion to Cin/G·Cout/G. Measured on lavapipe (BENCHMARKS.md, "Why
/// Auto picks what it picks"): 64 → 3 channels 7×7 stride 2 (r50_stem's grad_input) 9.6×
/// faster, 8 → 16 channels 2.5× slower, 64 → 32 even.
pub fn col2im_pays(c_in: u32, c_out: u32) -> bool {
    c_out <= 16 && (c_out <= 4 || c_in >= 2 * c_out)
}

/// What `Algorithm::Auto` runs for `g` with `dtype` tensors (contiguous) on this context:
/// `GemmCol2im` for f32 1×1 stride-1 unpadded convs (its columns are the output: one GEMM);
/// `Winograd` where `g` is a stride-1 3×3 transposed conv whose equal conv2d
/// ([`ConvTranspose2dGeometry::as_conv`]) conv2d's `Auto` runs with Winograd and each image
/// fits one binding (Winograd cannot run in the transposed bands); `GemmCol2im` for f32
/// where its channels per group make it pay ([`col2im_pays`]) and col2im can run (its gather loop within the loop budget, its columns within
/// the workspace in one call or in bands of rows); else `ImplicitGemm` (the output phases:
/// no workspace, no col2im pass) on every adapter (ahead of `GemmCol2im` on every other
/// shape measured, CPU adapters included; BENCHMARKS.md, "Why Auto picks what it picks").
pub fn auto_algorithm(ctx: &GpuContext, g: &ConvTranspose2dGeometry, dtype: DType) -> Algorithm {
    auto_choice(ctx, g, dtype, Conv2dLayouts::default()).0
}

/// [`auto_algorithm`] for these layouts, with its reason.
fn auto_choice(
    ctx: &GpuContext,
    g: &ConvTranspose2dGeometry,
    dtype: DType,
    layouts: Conv2dLayouts,
) -> (Algorithm, &'static str) {
    if let Some(conv) = g.as_conv() {
        let image = |c: u32, h: u32, w: u32| c as u64 * h as u64 * w as u64 * dtype.size();
        let fits = image(g.c_in, g.h, g.w).max(image(g.c_out, g.h_out, g.w_out)) <= ctx.max_binding();
        if fits && crate::ops::conv2d::auto_algorithm(ctx, &conv) == Algorithm::Winograd {
            return (Algorithm::Winograd, "stride-1 3x3 whose equal conv runs winograd (≥ 128 channels, ≥ 32 tiles)");
        }
    }
    if dtype == DType::F32 && columns_are_output(g, layouts.output) {
        return (Algorithm::GemmCol2im, "1x1, stride 1, no padding: the GEMM's columns are the output");
    }
    let pays = col2im_pays(g.c_in_per_group(), g.c_out_per_group());
    if dtype == DType::F32 && pays && col2im_runs(ctx, g, layouts) {
        return (
            Algorithm::GemmCol2im,
            "≤ 16 output channels per group, ≤ 4 or ≤ half the input's: col2im's GEMM has kh·kw times the rows",
        );
    }
    (Algorithm::ImplicitGemm, "output phases: no workspace, no col2im pass")
}

/// Whether `GemmCol2im` can run `g` on this context: its gather loop within the loop budget,
/// one image's columns within the workspace, or (NCHW only) bands of rows whose columns are.
fn col2im_runs(ctx: &GpuContext, g: &ConvTranspose2dGeometry, layouts: Conv2dLayouts) -> bool {
    if col2im_turns(g) > ctx.config().loop_budget as u64 {
        return false;
    }
    // a weight beyond one binding runs in chunks of output channels, one image at a time:
    // one channel's columns of one image must fit (channels::Limits::most)
    let weight = g.c_in as u64 * g.c_out_per_group() as u64 * g.kh as u64 * g.kw as u64 * 4;
    if weight > ctx.max_binding() {
        return col_bytes_per_image(g) / g.c_out as u64 <= col_budget(ctx);
    }
    if col_bytes_per_image(g) <= col_budget(ctx) {
        return true;
    }
    layouts.is_nchw()
        && row_geometry(ctx, g, Algorithm::GemmCol2im, DType::F32).plan("conv_transpose2d", ctx.max_binding()).is_ok()
}

/// The loop turns of col2im.wgsl's gather: the first landing tap sought per axis (at most
/// step = s / gcd(s, d) turns), then every landing tap in one nest.
fn col2im_turns(g: &ConvTranspose2dGeometry) -> u64 {
    let step = |s: u32, d: u32| (s / gcd(s, d)) as u64;
    let (sy, sx) = (step(g.stride[0], g.dilation[0]), step(g.stride[1], g.dilation[1]));
    sy + sx + (g.kh as u64).div_ceil(sy) * (1 + (g.kw as u64).div_ceil(sx))
}

/// The bytes `GemmCol2im`'s columns may take: the workspace budget within one binding.
fn col_budget(ctx: &GpuContext) -> u64 {
    ctx.config().workspace_budget.min(ctx.max_binding())
}

/// Whether `GemmCol2im`'s columns are the output itself: a 1×1 kernel at stride 1 without
/// padding, written NCHW. Its column matrix `[N, Cout·1·1, H·W]` is then the output, so the
/// GEMM writes the output directly (its epilogue adding the bias and activation): no
/// workspace, no col2im pass. (conv2d_backward's grad_input of every 1×1 conv.)
fn columns_are_output(g: &ConvTranspose2dGeometry, output: Layout) -> bool {
    let p = g.pads;
    g.kh == 1
        && g.kw == 1
        && g.stride == [1, 1]
        && g.output_padding == [0, 0]
        && [p.top, p.left, p.bottom, p.right] == [0; 4]
        && output == Layout::Contiguous
}

/// What one conv_transpose2d call does, decided before any GPU object is created
/// ([`plan_conv_transpose2d`]); [`conv_transpose2d_into`] records it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose2dPlan {
    /// Every size of the validated conv_transpose2d.
    pub geometry: ConvTranspose2dGeometry,
    /// The storage type of every tensor (f32 or f16).
    pub dtype: DType,
    /// `ImplicitGemm` or `GemmCol2im` (never `Auto`).
    pub algorithm: Algorithm,
    /// Why: the rule that chose it, or "forced".
    pub reason: String,
    /// Chunks of images (1 for `ImplicitGemm`).
    pub chunks: u32,
    /// Images per chunk (the last may hold fewer).
    pub images_per_chunk: u32,
    /// Workspace bytes one chunk uses (0 for `ImplicitGemm`).
    pub workspace_bytes: u64,
    /// The fused activation.
    pub activation: Activation,
    /// The input's and output's layouts.
    pub layouts: Conv2dLayouts,
    /// Pieces of the batch run one after another (an input or output beyond one storage
    /// binding; `chunks` and `workspace_bytes` then describe the first); 1 otherwise, 0 for
    /// an empty batch.
    pub batch_pieces: u32,
    /// Bands of output rows per image (one image beyond one binding); 1 otherwise.
    pub row_bands: u32,
    /// Chunks of output channels (the weight beyond one binding); 1 otherwise.
    pub channel_chunks: u32,
    /// The kernel launches, in recording order (a split call's each note says which part).
    pub steps: Vec<Step>,
}

impl ConvTranspose2dPlan {
    /// What [`conv_transpose2d_into`] returns for this plan.
    pub fn info(&self) -> ConvTranspose2dInfo {
        ConvTranspose2dInfo {
            algorithm: self.algorithm,
            geometry: self.geometry,
            chunks: self.chunks,
            images_per_chunk: self.images_per_chunk,
            workspace_bytes: self.workspace_bytes,
            launches: self.steps.len() as u32,
        }
    }
}

impl std::fmt::Display for ConvTranspose2dPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry;
        write_plan(
            f,
            "conv_transpose2d",
            &[g.n, g.c_in, g.h, g.w].map(|v| v as usize),
            &g.output_shape(),
            (self.algorithm.name(), &self.reason),
            self.workspace_bytes,
            format_args!("{} chunks of {} images", self.chunks, self.images_per_chunk),
            &self.steps,
        )
    }
}

/// The GEMM of chunk `c` of `GemmCol2im` (images `img0 .. img0 + imgs` into the workspace).
fn col_gemm_params(g: &ConvTranspose2dGeometry, img0: u32, imgs: u32) -> GemmParams {
    let hw = g.h * g.w;
    let (m, k) = (g.c_out_per_group() * g.kh * g.kw, g.c_in_per_group());
    let mut p = GemmParams::new(m, imgs * hw, k, g.groups, hw, img0 * hw, g.c_out * g.kh * g.kw * hw);
    p.dims.img0 = img0;
    // the pointwise B reads the input's channels: its channel count
    p.conv.c_in = g.c_in;
    p
}

/// Plans a conv_transpose2d of `input` `[N, Cin, H, W]` and `weight` `[Cin, Cout/groups, kh,
/// kw]` (and `bias` `[Cout]`) stored as `dtype`: validates `params`, picks the algorithm and
/// lists the launches. Creates no GPU object. Errors as [`conv_transpose2d`]. Contiguous
/// (NCHW) input and output: [`plan_conv_transpose2d_with_layouts`] plans other layouts.
pub fn plan_conv_transpose2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    dtype: DType,
    params: &ConvTranspose2dParams,
) -> Result<ConvTranspose2dPlan> {
    plan_conv_transpose2d_with_layouts(ctx, input, weight, bias, dtype, Conv2dLayouts::default(), params)
}

/// [`plan_conv_transpose2d`] for an input and output of these layouts (the shapes are the
/// logical `[N, C, H, W]` ones): both algorithms and batch pieces take channels-last tensors;
/// an image or a weight beyond one storage binding (row bands, channel chunks) is
/// [`Error::TooLarge`] with them.
pub fn plan_conv_transpose2d_with_layouts(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    dtype: DType,
    layouts: Conv2dLayouts,
    params: &ConvTranspose2dParams,
) -> Result<ConvTranspose2dPlan> {
    let input = &as_batched(input, 4)[..];
    let g = params.validate(input, weight, bias)?;
    // f16 storage: the output-phase implicit GEMM only (f16 loads and stores, f32 accumulation).
    if dtype == DType::F16 && params.algorithm == Algorithm::GemmCol2im {
        return Err(Error::param("algorithm", "f16 storage runs implicit_gemm, not gemm_col2im"));
    }
    let (algorithm, reason) = match params.algorithm {
        Algorithm::Auto => auto_choice(ctx, &g, dtype, layouts),
        a => (a, "forced"),
    };
    let reason = reason.to_string() + &layouts.note();
    // col2im.wgsl gathers each output over its landing taps in one loop nest: past the loop
    // budget (some drivers cut loops short) it is refused rather than wrong; the output
    // phases split their K into passes.
    if algorithm == Algorithm::GemmCol2im && col2im_turns(&g) > ctx.config().loop_budget as u64 {
        return Err(Error::Unsupported(format!(
            "gemm_col2im gathers each output over {}x{} taps in one loop, beyond the loop budget of {} \
             (EngineConfig::loop_budget; some drivers stop longer loops early): implicit_gemm splits it",
            g.kh,
            g.kw,
            ctx.config().loop_budget
        )));
    }
    // Winograd's direct fallback sums each tile in one loop of Cin/G turns (conv2d's rule).
    let conv = g.as_conv();
    if let (Algorithm::Winograd, Some(c)) = (algorithm, conv) {
        let (turns, budget) = (winograd::loop_turns(&c), ctx.config().loop_budget as u64);
        if turns > budget {
            return Err(Error::Unsupported(format!(
                "winograd's direct fallback loops about {turns} times, beyond the loop budget of {budget} \
                 (EngineConfig::loop_budget): implicit_gemm splits it"
            )));
        }
    }
    let act = params.activation;
    let has_bias = bias.is_some();
    let input_bytes = input.iter().product::<usize>() as u64 * dtype.size();
    let mut plan = ConvTranspose2dPlan {
        geometry: g,
        dtype,
        algorithm,
        reason,
        chunks: 1,
        images_per_chunk: g.n,
        workspace_bytes: 0,
        activation: act,
        layouts,
        batch_pieces: 1,
        row_bands: 1,
        channel_chunks: 1,
        steps: Vec::new(),
    };
    if g.n == 0 {
        // An empty batch: an empty output and nothing to run.
        plan.chunks = 0;
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    if plan_split(ctx, &mut plan, input, weight, bias, params)? {
        return Ok(plan);
    }
    if let (Algorithm::Winograd, Some(c)) = (algorithm, conv) {
        let (chunks, steps) = winograd::plan(ctx, &c, (act, has_bias), dtype, layouts, true)?;
        (plan.chunks, plan.workspace_bytes, plan.steps) = (chunks.chunks, chunks.workspace_bytes(&c), steps);
        return Ok(plan);
    }
    if algorithm != Algorithm::GemmCol2im {
        let p = phase_gemm_params(&g, act.alpha());
        let problem = GemmProblem::TransposedPhases;
        let ov = gemm::overrides(problem, act, has_bias, &gemm::Aux::None).layouts(layouts.input, layouts.output);
        let gplan = gemm::plan(ctx, &p, problem, ov, dtype == DType::F16, Some((0, input_bytes)), g.output_numel())?;
        plan.algorithm = Algorithm::ImplicitGemm;
        plan.steps = gplan.steps("output phases");
        if let Some(bp) = BorderParams::new(&g, act.alpha()) {
            let ov = transposed_border::overrides(act, has_bias, (layouts.input, layouts.output));
            plan.steps.extend(transposed_border::steps(ctx, &bp, dtype == DType::F16, &ov)?);
        }
        return Ok(plan);
    }
    if columns_are_output(&g, layouts.output) {
        let gp = col_gemm_params(&g, 0, g.n).with_alpha(act.alpha());
        let problem = GemmProblem::TransposedCols;
        let ov = gemm::overrides(problem, act, has_bias, &gemm::Aux::None).layouts(layouts.input, Layout::Contiguous);
        let gplan = gemm::plan(ctx, &gp, problem, ov, false, Some((0, input_bytes)), g.output_numel())?;
        plan.steps = gplan.steps("columns: the output");
        return Ok(plan);
    }
    let per_image = col_bytes_per_image(&g);
    let budget = col_budget(ctx);
    let per_chunk = budget / per_image;
    if per_chunk == 0 {
        return Err(Error::TooLarge(format!(
            "one image's column matrix is {per_image} bytes (Cout·kh·kw·H·W·4) but the workspace budget is {budget}"
        )));
    }
    let images = per_chunk.min(g.n as u64) as u32;
    plan.images_per_chunk = images;
    plan.chunks = g.n.div_ceil(images);
    plan.workspace_bytes = per_image * images as u64;
    let problem = GemmProblem::TransposedCols;
    let ov =
        gemm::overrides(problem, Activation::None, false, &gemm::Aux::None).layouts(layouts.input, Layout::Contiguous);
    for c in 0..plan.chunks {
        let (img0, imgs) = (c * images, images.min(g.n - c * images));
        let gp = col_gemm_params(&g, img0, imgs);
        let col_numel = (per_image * imgs as u64 / 4) as usize;
        let gplan = gemm::plan(ctx, &gp, problem, ov.clone(), false, Some((0, input_bytes)), col_numel)?;
        plan.steps.extend(gplan.steps(&format!("chunk {}/{} columns", c + 1, plan.chunks)));
        let cp = Col2imParams::new(&g, img0, imgs, act.alpha());
        plan.steps.push(col2im::step(ctx, &cp, act, has_bias, layouts.output)?);
    }
    Ok(plan)
}

/// Where a tensor exceeds one storage binding: fills `plan` with the steps of every chunk of
/// output channels of every image (the weight beyond it, [`crate::ops::channels`]), of every
/// batch piece ([`crate::ops::batch`]) or of every band of output rows of every image (one
/// image beyond it, [`crate::ops::bands`]), each planned with `plan.algorithm`, and returns
/// true; false when one call binds everything.
fn plan_split(
    ctx: &GpuContext,
    plan: &mut ConvTranspose2dPlan,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    params: &ConvTranspose2dParams,
) -> Result<bool> {
    let (g, dtype) = (plan.geometry, plan.dtype);
    let (n, elem, max) = (g.n as usize, dtype.size(), ctx.max_binding());
    let out = g.output_shape();
    let per_image = |s: &[usize]| (s.iter().product::<usize>() / n) as u64 * elem;
    let forced = ConvTranspose2dParams { algorithm: plan.algorithm, ..*params };
    // (input, weight, bias, params, note) of each call
    type Part = (Vec<usize>, Vec<usize>, Option<Vec<usize>>, ConvTranspose2dParams, String);
    let mut parts: Vec<Part> = Vec::new();
    let weight_bytes = weight.iter().product::<usize>() as u64 * elem;
    // GemmCol2im with one image's columns beyond the workspace runs in bands of rows too
    // (NCHW; channels-last is refused by the columns' own check).
    let cols_over = plan.algorithm == Algorithm::GemmCol2im
        && !columns_are_output(&g, plan.layouts.output)
        && col_bytes_per_image(&g) > col_budget(ctx)
        && plan.layouts.is_nchw();
    let banded = per_image(input) > max || per_image(&out) > max || cols_over;
    if weight_bytes > max {
        plan.layouts.check_split("conv_transpose2d", true, max)?;
    } else if banded {
        plan.layouts.check_split("conv_transpose2d", false, max)?;
    }
    if weight_bytes > max {
        channels::check_images("conv_transpose2d", weight, weight_bytes, per_image(input), per_image(&out), max)?;
        let (groups, cog) = (g.groups as u64, weight[1] as u64);
        let row = g.c_in as u64 / groups * weight[2..].iter().product::<usize>() as u64 * elem;
        let limits = chunk_limits(ctx, &g, plan.algorithm);
        let chunks =
            channels::ranges("conv_transpose2d", groups, g.c_in as u64, g.c_out as u64, row, elem, max, limits)?;
        for c in &chunks {
            let (ci, co) = (c.c_in as usize, c.c_out as usize);
            // Whole groups keep [Cin', Cout/G]; part of one group is [Cin/G, its channels].
            let w1 = if c.groups > 1 || c.c_out == cog { weight[1] } else { co };
            let p = ConvTranspose2dParams { groups: c.groups as u32, ..forced };
            for i in 0..n {
                let note = format!("channels {}..{}, image {i}", c.c_out0, c.c_out0 + c.c_out);
                let x = vec![1, ci, input[2], input[3]];
                parts.push((x, vec![ci, w1, weight[2], weight[3]], bias.map(|_| vec![co]), p, note));
            }
        }
        plan.batch_pieces = g.n;
        plan.channel_chunks = chunks.len() as u32;
    } else if banded {
        if plan.algorithm == Algorithm::Winograd {
            // a transposed band crops up to kh rows of its equal conv's output: no such conv
            return Err(Error::TooLarge(format!(
                "conv_transpose2d: one image beyond one storage binding ({max} bytes) runs in bands of rows, which \
                 winograd cannot run: implicit_gemm (or auto) can"
            )));
        }
        let rows = row_geometry(ctx, &g, plan.algorithm, dtype);
        let bands = rows.plan("conv_transpose2d", max)?;
        for i in 0..n {
            for b in rows.bands(&bands)? {
                let padding =
                    Padding::Explicit { top: b.pad_top, left: g.pads.left, bottom: b.pad_bottom, right: g.pads.right };
                let p = ConvTranspose2dParams { padding, output_padding: [b.out_pad, g.output_padding[1]], ..forced };
                let x = vec![1, input[1], b.rows_in as usize, input[3]];
                parts.push((
                    x,
                    weight.to_vec(),
                    bias.map(<[usize]>::to_vec),
                    p,
                    format!("image {i}, rows {}..{}", b.oy0, b.oy1),
                ));
            }
        }
        plan.batch_pieces = g.n;
        plan.row_bands = bands.bands as u32;
    } else {
        let pieces = batch::plan(
            ctx,
            "conv_transpose2d",
            n,
            &[("input", input, per_image(input)), ("output", &out, per_image(&out))],
        )?;
        if pieces.pieces <= 1 {
            return Ok(false);
        }
        for n0 in (0..n).step_by(pieces.per_piece) {
            let len = pieces.per_piece.min(n - n0);
            let x = vec![len, input[1], input[2], input[3]];
            parts.push((x, weight.to_vec(), bias.map(<[usize]>::to_vec), forced, format!("images {n0}..{}", n0 + len)));
        }
        plan.batch_pieces = pieces.pieces as u32;
    }
    plan.steps.clear();
    for (k, (x, w, b, p, what)) in parts.into_iter().enumerate() {
        let part = plan_conv_transpose2d_with_layouts(ctx, &x, &w, b.as_deref(), dtype, plan.layouts, &p)?;
        if k == 0 {
            (plan.chunks, plan.images_per_chunk, plan.workspace_bytes) =
                (part.chunks, part.images_per_chunk, part.workspace_bytes);
        }
        plan.steps.extend(part.steps.into_iter().map(|s| s.noted(&what)));
    }
    Ok(true)
}

/// The limits of a chunk of output channels besides its weight: with `GemmCol2im`, one
/// image's columns of the chunk (Cout'·kh·kw·H·W floats) fit the workspace.
fn chunk_limits(ctx: &GpuContext, g: &ConvTranspose2dGeometry, algorithm: Algorithm) -> channels::Limits {
    let budget = col_budget(ctx);
    let most = (algorithm == Algorithm::GemmCol2im).then(|| budget / (col_bytes_per_image(g) / g.c_out as u64));
    channels::Limits { most, group_step: 1 }
}

/// The rows of one image as [`crate::ops::bands`] cuts them (the transposed mapping; with
/// `GemmCol2im`, bands also sized to the workspace: one input row's columns are
/// Cout·kh·kw·W floats).
fn row_geometry(ctx: &GpuContext, g: &ConvTranspose2dGeometry, algorithm: Algorithm, dtype: DType) -> RowGeometry {
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
        transposed: true,
        workspace: (algorithm == Algorithm::GemmCol2im).then(|| (col_bytes_per_image(g) / g.h as u64, col_budget(ctx))),
    }
}

/// Records into the caller's encoder without submitting; writes `output`. The input and
/// output may each be contiguous (NCHW) or channels-last, the weight and bias contiguous.
/// Validates, plans ([`plan_conv_transpose2d_with_layouts`]) and records the plan's steps.
pub fn conv_transpose2d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose2dParams,
    output: &Tensor,
) -> Result<ConvTranspose2dInfo> {
    if let Some(v) = unbatched(4, &[(input, "input"), (output, "output")])? {
        return conv_transpose2d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(input, "input"), (weight, "weight"), (output, "output")] {
        t.check_device(ctx, what)?;
    }
    if let Some(b) = bias {
        b.check_device(ctx, "bias")?;
    }
    contiguous("conv_transpose2d", &[(Some(weight), "weight"), (bias, "bias")])?;
    let others = [(Some(weight), "weight"), (bias, "bias"), (Some(output), "output")];
    let dtype = common_dtype_any_layout("conv_transpose2d", input, &others)?;
    let layouts = Conv2dLayouts { input: input.layout(), output: output.layout() };
    let bias_shape = bias.map(|b| b.shape());
    let plan =
        plan_conv_transpose2d_with_layouts(ctx, input.shape(), weight.shape(), bias_shape, dtype, layouts, params)?;
    // A split call: every piece, band or chunk is planned again for its own shape with the
    // algorithm chosen for the whole call (bit-identical results).
    let forced = ConvTranspose2dParams { algorithm: plan.algorithm, ..*params };
    let mut recorded = 0;
    let mut part = |encoder: &mut wgpu::CommandEncoder,
                    p: &ConvTranspose2dParams,
                    x: &Tensor,
                    w: &Tensor,
                    b: Option<&Tensor>,
                    y: &Tensor|
     -> Result<()> {
        let part =
            plan_conv_transpose2d_with_layouts(ctx, x.shape(), w.shape(), b.map(|b| b.shape()), dtype, layouts, p)?;
        record_conv_transpose2d(ctx, encoder, &part, x, w, b, y)?;
        recorded += part.steps.len();
        Ok(())
    };
    if plan.channel_chunks > 1 {
        // Chunks of output channels, one image at a time (crate::ops::channels).
        let (layout, limits) = (channels::Layout::InOut, chunk_limits(ctx, &g, plan.algorithm));
        let op = "conv_transpose2d";
        channels::for_each_chunk(
            ctx,
            encoder,
            op,
            layout,
            g.groups,
            input,
            weight,
            bias,
            output,
            limits,
            |encoder, c| {
                part(
                    encoder,
                    &ConvTranspose2dParams { groups: c.groups, ..forced },
                    c.input,
                    c.weight,
                    c.bias,
                    c.output,
                )
            },
        )?;
    } else if plan.row_bands > 1 {
        recorded = conv_transpose2d_in_bands(ctx, encoder, &g, &forced, dtype, input, weight, bias, output)?;
    } else if plan.batch_pieces > 1 {
        let batched = [batch::input(input, "input"), batch::output(output, "output")];
        let pieces = batch::pieces(ctx, "conv_transpose2d", &batched)?;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            part(encoder, &forced, &t[0], weight, bias, &t[1])
        })?;
    } else if plan.batch_pieces == 1 {
        record_conv_transpose2d(ctx, encoder, &plan, input, weight, bias, output)?;
        recorded = plan.steps.len();
    }
    check_recorded("conv_transpose2d", recorded, &plan.steps)?;
    Ok(plan.info())
}

/// conv_transpose2d_into for images larger than one storage binding: each image in bands of
/// output rows ([`crate::ops::bands`], the transposed mapping), every band with
/// `params.algorithm` (the whole call's): bit-identical. Returns the number of launches.
#[allow(clippy::too_many_arguments)]
fn conv_transpose2d_in_bands(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &ConvTranspose2dGeometry,
    params: &ConvTranspose2dParams,
    dtype: DType,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<usize> {
    let rows = row_geometry(ctx, g, params.algorithm, dtype);
    let bands = rows.plan("conv_transpose2d", ctx.max_binding())?;
    let mut recorded = 0;
    for i in 0..g.n as usize {
        let (x, y) = (input.narrow_batch(i, 1)?, output.narrow_batch(i, 1)?);
        bands::for_each_band(ctx, encoder, &rows, &bands, &x, &y, bands::Role::Out, |encoder, x, y, band| {
            let padding = Padding::Explicit {
                top: band.pad_top,
                left: g.pads.left,
                bottom: band.pad_bottom,
                right: g.pads.right,
            };
            let output_padding = [band.out_pad, g.output_padding[1]];
            let p = ConvTranspose2dParams { padding, output_padding, ..*params };
            recorded += conv_transpose2d_into(ctx, encoder, x, weight, bias, &p, y)?.launches as usize;
            Ok(())
        })?;
    }
    Ok(recorded)
}

/// Records `plan` (made for these tensors by [`plan_conv_transpose2d`]).
fn record_conv_transpose2d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    plan: &ConvTranspose2dPlan,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<()> {
    let g = plan.geometry;
    let act = plan.activation;
    ctx.scoped(|| -> Result<()> {
        if let (Algorithm::Winograd, Some(c)) = (plan.algorithm, g.as_conv()) {
            let chunks = winograd::plan_chunks(ctx, &c)?;
            let recorded = winograd::encode(ctx, encoder, &c, &chunks, (act, true), (input, weight, bias, output))?;
            return check_recorded("conv_transpose2d", recorded, &plan.steps);
        }
        let mut arena = UniformArena::new(ctx);
        let mut dispatches = Vec::new();
        if plan.algorithm == Algorithm::ImplicitGemm {
            let p = phase_gemm_params(&g, act.alpha());
            let block = arena.push(&p);
            let border = BorderParams::new(&g, act.alpha()).map(|bp| (bp, arena.push(&bp)));
            let uniforms = arena.finish(ctx)?;
            dispatches.extend(gemm::prepare_reading(
                ctx,
                &uniforms,
                block,
                &p,
                GemmProblem::TransposedPhases,
                act,
                weight,
                input,
                bias,
                output,
            )?);
            // the NaN a tap outside the input left on the border (0·∞), recomputed
            if let Some((bp, block)) = border {
                let ov = transposed_border::overrides(act, bias.is_some(), (input.layout(), output.layout()));
                let tensors = (input, weight, bias, output);
                dispatches.extend(transposed_border::prepare(ctx, &uniforms, block, &bp, &ov, tensors)?);
            }
        } else if columns_are_output(&g, output.layout()) {
            let gp = col_gemm_params(&g, 0, g.n).with_alpha(act.alpha());
            let block = arena.push(&gp);
            let uniforms = arena.finish(ctx)?;
            let problem = GemmProblem::TransposedCols;
            dispatches
                .extend(gemm::prepare_reading(ctx, &uniforms, block, &gp, problem, act, weight, input, bias, output)?);
        } else {
            let workspace = ctx.workspace(plan.workspace_bytes)?;
            let per_image = col_bytes_per_image(&g);
            let images = plan.images_per_chunk;
            let mut blocks = Vec::new();
            for c in 0..plan.chunks {
                let (img0, imgs) = (c * images, images.min(g.n - c * images));
                let gp = col_gemm_params(&g, img0, imgs);
                let cp = Col2imParams::new(&g, img0, imgs, act.alpha());
                blocks.push((gp, arena.push(&gp), cp, arena.push(&cp), per_image * imgs as u64));
            }
            let uniforms = arena.finish(ctx)?;
            for (gp, gb, cp, cb, bytes) in &blocks {
                dispatches.extend(gemm::prepare_reading(
                    ctx,
                    &uniforms,
                    *gb,
                    gp,
                    GemmProblem::TransposedCols,
                    Activation::None,
                    weight,
                    input,
                    None,
                    &col_tensor(ctx, &workspace, *bytes)?,
                )?);
                let col = range(&workspace, (0, *bytes));
                let step = col2im::step(ctx, cp, act, bias.is_some(), output.layout())?;
                dispatches.push(step.dispatch(ctx, &[range(&uniforms, *cb), col, optional(ctx, bias), whole(output)])?);
            }
        }
        check_recorded("conv_transpose2d", dispatches.len(), &plan.steps)?;
        record(ctx, encoder, "conv_transpose2d", &dispatches);
        Ok(())
    })?
}

/// The GEMM of the phase decomposition (see the module docs and `B_TRANSPOSED` in gemm.wgsl's header): one
/// group per (phase, conv group), M = Cout/G, K = (Cin/G)·taps_y·taps_x, and N the pixels of
/// the largest phase grid ⌈Ho/sh⌉ × ⌈Wo/sw⌉ of every image (columns past a smaller phase's
/// edge are skipped).
pub(crate) fn phase_gemm_params(g: &ConvTranspose2dGeometry, alpha: f32) -> GemmParams {
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    let (gy, gx) = (gcd(sh, dh), gcd(sw, dw));
    let (step_y, step_x) = (sh / gy, sw / gx);
    let (taps_y, taps_x) = (g.kh.div_ceil(step_y), g.kw.div_ceil(step_x));
    let (hq, wq) = (g.h_out.div_ceil(sh), g.w_out.div_ceil(sw));
    let k = g.c_in_per_group() * taps_y * taps_x;
    let base = GemmParams::new(
        g.c_out_per_group(),
        g.n * hq * wq,
        k,
        g.groups * sh * sw,
        hq * wq,
        0,
        g.c_out * g.h_out * g.w_out,
    );
    let conv = gemm::ConvWindow {
        c_in: g.c_in,
        h: g.h,
        w: g.w,
        kh: g.kh,
        kw: g.kw,
        stride_h: sh,
        stride_w: sw,
        dil_h: dh,
        dil_w: dw,
        pad_top: g.pads.top,
        pad_left: g.pads.left,
        // the columns walk the phase grid
        w_out: wq,
    };
    let phases = gemm::OutputPhases {
        out_h: g.h_out,
        out_w: g.w_out,
        taps_y,
        taps_x,
        step_y,
        step_x,
        dq_y: dh / gy,
        dq_x: dw / gx,
    };
    GemmParams { conv, phases, ..base.with_alpha(alpha) }
}

/// The workspace as a tensor of `bytes / 4` floats (the GEMM's C binding).
fn col_tensor(ctx: &GpuContext, workspace: &wgpu::Buffer, bytes: u64) -> Result<Tensor> {
    Tensor::from_buffer(ctx, workspace.clone(), &[(bytes / 4) as usize])
}
