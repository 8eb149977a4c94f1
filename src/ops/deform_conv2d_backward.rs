//! The deform_conv2d backward pass: the gradients torchvision's autograd gives for
//! `torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)`
//! with respect to the input, the offsets, the mask, the weight and the bias.
//!
//! - The column gradients `cols = weightᵀ · grad_output` (per weight group, the GEMM core's
//!   `TransposedCols`, as conv_transpose2d's `GemmCol2im`) of a chunk of images go to the
//!   workspace. `deform_backward.wgsl`'s per-sample pass forms, for each (image, offset
//!   group, tap, output pixel), grad_offset (the derivative of the bilinear sample times the
//!   mask, as torchvision's `get_coordinate_weight`, summed over the group's channels in
//!   order) and grad_mask (the sample times the column gradient).
//! - grad_input receives each sample's column gradients at the in-image corners around where
//!   it lands: scatters to data-dependent places, summed in exact 64-bit fixed point
//!   (`deform_grad_input.wgsl`; integer atomics: the same bits in any order). The samples are
//!   first sorted by the cell they land in (a count, a scan and a fill per (image, offset
//!   group)); invocations then walk runs of sorted samples, one channel each, and add a run's
//!   partial sums to its four corners once, not once per term. Each element's fixed-point
//!   scale comes from the largest term it receives (a first walk over the same terms), so no
//!   sum can overflow and each keeps more precision than an f32 sum; NaN and ±∞ terms
//!   propagate as IEEE sums would. A last pass turns the sums into grad_input.
//! - grad_weight = grad_output · unfold(input)ᵀ per weight group, the deformable unfold
//!   (`deform_im2col.wgsl`, the forward's) in chunks of pixels under the workspace budget
//!   and the GEMM core's `GradWeightColumns` reading each chunk transposed, K (the pixels) in
//!   fixed-order passes.
//! - grad_bias = the channel sums of grad_output (`channel_sum.wgsl`).
//!
//! No float atomics: every gradient is bit-identical run to run. f32 kernels (f16 tensors
//! through f32 copies, [`crate::ops::widen`]). Batched tensors beyond one storage binding run
//! in batch pieces ([`crate::ops::batch`]): grad_input, grad_offset and grad_mask per piece
//! (the same kernels: bit-identical to one call), grad_weight and grad_bias per piece into
//! slots then summed over the pieces in order (equal to one call within f32 rounding); the
//! weight and one image of each tensor within one binding (f16: the f32 copies each within
//! one binding too).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::channel_sum::{self, SumParams};
use crate::kernels::deform_backward::{self, DeformBackParams, InputPass, SampleGrads};
use crate::kernels::deform_im2col::{self, DeformIm2colParams};
use crate::kernels::gemm::{self, GemmParams, GemmProblem};
use crate::kernels::im2col::Im2colParams;
use crate::kernels::{check_recorded, optional, range, record, whole, write_plan, Step, UniformArena};
use crate::ops::batch::{self, BatchPieces};
use crate::ops::conv2d::plan_chunks_of_16;
use crate::ops::{as_batched, unbatched, widen};
use crate::params::{Activation, Conv2dGeometry, DeformConv2dParams, DeformGeometry};
use crate::tensor::{DType, Tensor};

/// Which gradients of a deform_conv2d to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeformGrads {
    /// Compute grad_input.
    pub input: bool,
    /// Compute grad_weight.
    pub weight: bool,
    /// Compute grad_offset.
    pub offset: bool,
    /// Only with a mask (v2).
    pub mask: bool,
    /// Compute grad_bias.
    pub bias: bool,
}

impl DeformGrads {
    /// Every gradient (the mask's only where there is a mask).
    pub const ALL: DeformGrads = DeformGrads { input: true, weight: true, offset: true, mask: true, bias: true };
}

/// The gradients asked for, each shaped as its tensor: grad_input `[N, Cin, H, W]`,
/// grad_weight `[Cout, Cin/groups, kh, kw]`, grad_offset `[N, 2·G_off·kh·kw, Ho, Wo]`,
/// grad_mask `[N, G_off·kh·kw, Ho, Wo]`, grad_bias `[Cout]` (unbatched where the input is).
#[derive(Clone, Debug)]
pub struct DeformConv2dGrads {
    /// `[N, Cin, H, W]`
    pub grad_input: Option<Tensor>,
    /// `[Cout, Cin/groups, kh, kw]`
    pub grad_weight: Option<Tensor>,
    /// `[N, 2·G_off·kh·kw, Ho, Wo]`
    pub grad_offset: Option<Tensor>,
    /// `[N, G_off·kh·kw, Ho, Wo]` (`None` without a mask)
    pub grad_mask: Option<Tensor>,
    /// `[Cout]`
    pub grad_bias: Option<Tensor>,
}

/// What one deform_conv2d_backward call records, decided from the shapes before any GPU
/// object ([`plan_deform_conv2d_backward`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DeformConv2dBackwardPlan {
    /// The validated conv's sizes and its number of offset groups.
    pub geometry: DeformGeometry,
    /// The gradients asked for.
    pub grads: DeformGrads,
    /// Images per chunk of the column gradients (grad_input, grad_offset, grad_mask); 0 when
    /// none of those is asked for or the batch is empty.
    pub images_per_chunk: u32,
    /// Chunks of pixels of grad_weight's unfold; 0 when grad_weight is not asked for.
    pub pixel_chunks: u32,
    /// Bytes of the shared workspace (column gradients, or one chunk of the unfold).
    pub workspace_bytes: u64,
    /// Bytes of grad_input's own buffers for one chunk of images: the fixed-point accumulator
    /// (16 per element), the samples' counts and starts per cell and the samples sorted by
    /// cell (4 each); 0 when grad_input is not asked for.
    pub accumulator_bytes: u64,
    /// Pieces the batch runs in (1: one call; 0: an empty batch), each piece planned as above.
    pub batch_pieces: u32,
    /// Every launch, in recording order.
    pub steps: Vec<Step>,
}

impl std::fmt::Display for DeformConv2dBackwardPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry.conv;
        let input = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
        let chunking = format_args!(
            "{} images per chunk of column gradients, {} pixel chunks for grad_weight, {} bytes of grad_input's accumulator and sorted samples",
            self.images_per_chunk, self.pixel_chunks, self.accumulator_bytes
        );
        let pieces = format!("{} batch pieces", self.batch_pieces);
        write_plan(
            f,
            "deform_conv2d_backward",
            &input,
            &g.output_shape(),
            ("gradients", if self.batch_pieces > 1 { pieces.as_str() } else { "one call" }),
            self.workspace_bytes,
            chunking,
            &self.steps,
        )
    }
}

/// How the column gradients are cut: images per chunk, the bytes of one image's columns, and
/// of one image's grad_input buffers (accumulator, cell counts, cell starts, sorted samples;
/// zeros without grad_input).
fn image_chunks(ctx: &GpuContext, dg: &DeformGeometry, input_grad: bool) -> Result<(u32, u64, [u64; 4])> {
    let g = &dg.conv;
    let (taps, hw_out) = (g.kh as u64 * g.kw as u64, g.h_out as u64 * g.w_out as u64);
    let cols = g.c_in as u64 * taps * hw_out * 4;
    let bufs = if input_grad { deform_backward::input_bytes_per_image(dg) } else { [0; 4] };
    let budget = ctx.config().workspace_budget.min(ctx.max_binding());
    let mut images = (budget / cols.max(1)).min(g.n as u64);
    for b in bufs {
        images = images.min(ctx.max_binding() / b.max(1));
    }
    if images == 0 {
        return Err(Error::TooLarge(format!(
            "deform_conv2d_backward: one image's column gradients take {cols} bytes (Cin·kh·kw·Ho·Wo·4) and its \
             grad_input buffers {bufs:?} (accumulator, cell counts, cell starts, sorted samples); the workspace \
             budget is {budget} bytes and one storage binding holds {}",
            ctx.max_binding()
        )));
    }
    Ok((images as u32, cols, bufs))
}

#[allow(clippy::too_many_arguments)]
fn validate(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    offset: &[usize],
    mask: Option<&[usize]>,
    params: &DeformConv2dParams,
    which: DeformGrads,
) -> Result<DeformGeometry> {
    if params.activation != Activation::None {
        return Err(Error::param(
            "activation",
            "deform_conv2d_backward differentiates the convolution alone: pass the gradient with respect to the \
             convolution's output and no activation",
        ));
    }
    if which.mask && mask.is_none() {
        return Err(Error::param("grad_mask", "asked for without a mask (deform_conv2d v1 has none)"));
    }
    let unbatched = input.len() == 3;
    let batched = |s: &[usize]| if unbatched { as_batched(s, 4) } else { s.to_vec() };
    let (x, off, m) = (batched(input), batched(offset), mask.map(batched));
    let dg = params.validate_deform(&x, weight, &off, m.as_deref(), None)?;
    let (max, bytes) = (ctx.max_binding(), weight.iter().product::<usize>() as u64 * 4);
    if bytes > max {
        return Err(Error::TooLarge(format!(
            "deform_conv2d_backward: weight {weight:?} is {bytes} bytes; it binds the weight whole and one storage \
             binding holds at most {max} on this device"
        )));
    }
    // The per-sample passes loop over an offset group's channels (five turns each): within the
    // loop budget or not at all.
    let g = dg.conv;
    let (per_og, budget) = ((g.c_in / dg.offset_groups) as u64, ctx.config().loop_budget as u64);
    if 5 * per_og + 2 > budget {
        return Err(Error::Unsupported(format!(
            "deform_conv2d_backward loops over the {per_og} channels of an offset group in one invocation, beyond \
             the loop budget of {budget} (EngineConfig::loop_budget; some drivers stop longer loops early)"
        )));
    }
    if which.input {
        deform_backward::check_loops(&dg, ctx.config().loop_budget)?;
    }
    Ok(dg)
}

/// Plans the backward pass of a deform_conv2d of these shapes (batched, or all unbatched) for
/// the gradients in `which`: validates, cuts the work to the workspace budget and lists the
/// launches (f16: the f32 kernels' on f32 copies, after a widen per input and before a narrow
/// per gradient, [`crate::ops::widen`]). Creates no GPU object. Errors as
/// [`deform_conv2d_backward`].
#[allow(clippy::too_many_arguments)]
pub fn plan_deform_conv2d_backward(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    offset: &[usize],
    mask: Option<&[usize]>,
    dtype: DType,
    params: &DeformConv2dParams,
    which: DeformGrads,
) -> Result<DeformConv2dBackwardPlan> {
    let which = DeformGrads { mask: which.mask && mask.is_some(), ..which };
    let dg = validate(ctx, input, weight, offset, mask, params, which)?;
    let g = dg.conv;
    let mut plan = DeformConv2dBackwardPlan {
        geometry: dg,
        grads: which,
        images_per_chunk: 0,
        pixel_chunks: 0,
        workspace_bytes: 0,
        accumulator_bytes: 0,
        batch_pieces: u32::from(g.n > 0),
        steps: Vec::new(),
    };
    if g.n == 0 {
        // grad_weight and grad_bias are cleared; the others are empty.
        return Ok(plan);
    }
    let pieces = pieces_of(ctx, &dg, mask.is_some())?;
    if pieces.pieces > 1 {
        // Each piece planned as a call of its own (f32), then the sums over the pieces.
        let n = g.n as usize;
        let unbatched = input.len() == 3;
        let piece = |s: &[usize], len: usize| -> Vec<usize> {
            let s = if unbatched { as_batched(s, 4) } else { s.to_vec() };
            [len].into_iter().chain(s[1..].iter().copied()).collect()
        };
        for n0 in (0..n).step_by(pieces.per_piece) {
            let len = pieces.per_piece.min(n - n0);
            let m = mask.map(|m| piece(m, len));
            let (x, off) = (piece(input, len), piece(offset, len));
            let part = plan_deform_conv2d_backward(ctx, &x, weight, &off, m.as_deref(), DType::F32, params, which)?;
            if n0 == 0 {
                (plan.images_per_chunk, plan.pixel_chunks) = (part.images_per_chunk, part.pixel_chunks);
                (plan.workspace_bytes, plan.accumulator_bytes) = (part.workspace_bytes, part.accumulator_bytes);
            }
            plan.steps.extend(part.steps.into_iter().map(|s| s.noted(&format!("images {n0}..{}", n0 + len))));
        }
        let (dw, db) = (which.weight.then_some(weight), which.bias.then_some(g.c_out as usize));
        plan.steps.extend(batch::PartialSums::steps(ctx, "deform_conv2d_backward", dw, db, DType::F32, pieces.pieces)?);
        plan.batch_pieces = pieces.pieces as u32;
        if dtype == DType::F16 {
            bracket_f16(ctx, &mut plan.steps, &g, input, weight, offset, mask, which)?;
        }
        return Ok(plan);
    }
    let sample = sample_grads(which, mask.is_some());
    if which.input || sample.is_some() {
        let (imgs, cols_bytes, input_bufs) = image_chunks(ctx, &dg, which.input)?;
        plan.images_per_chunk = imgs;
        plan.workspace_bytes = cols_bytes * imgs as u64;
        plan.accumulator_bytes = input_bufs.iter().sum::<u64>() * imgs as u64;
        let (problem, ov) = column_gemm();
        for img0 in (0..g.n).step_by(imgs as usize) {
            let k = imgs.min(g.n - img0);
            let what = format!("images {img0}..{}", img0 + k);
            let gp = GemmParams::column_gradients(&g.unfolded(), img0, k);
            let numel = (cols_bytes / 4) as usize * k as usize;
            // B: grad_output, bound whole (as the recording binds it), read as vec4 where aligned
            let gplan = gemm::plan(ctx, &gp, problem, ov.clone(), false, Some((0, grad_output_bytes(&g))), numel)?;
            plan.steps.extend(gplan.steps(&format!("{what}: column gradients")));
            if which.input {
                let blocks = DeformBackParams::input_passes(&dg, img0, k, ctx.config().loop_budget);
                for (pass, p) in InputPass::ALL.into_iter().zip(&blocks) {
                    let note = format!("{what}: {}", pass.note());
                    plan.steps.push(deform_backward::input_step(ctx, pass, p, mask.is_some(), note)?);
                }
            }
            if let Some(sg) = sample {
                let sp = sample_block(&g, &dg, img0, k);
                plan.steps.push(deform_backward::sample_step(ctx, &sp, sg, format!("{what}: grad_offset, grad_mask"))?);
            }
        }
    }
    if which.weight {
        let chunks = plan_chunks_of_16(ctx, &g.unfolded())?;
        plan.pixel_chunks = chunks.chunks;
        plan.workspace_bytes = plan.workspace_bytes.max(chunks.rows as u64 * chunks.cols as u64 * 4);
        let (gplan, per_chunk) = weight_plan(ctx, &g, weight, chunks.cols)?;
        let mut gemm_steps = gplan.steps("grad_weight").into_iter();
        for (c, passes) in per_chunk.iter().enumerate() {
            let col0 = c as u32 * chunks.cols;
            let cols = chunks.cols.min(chunks.pixels - col0);
            let ip = Im2colParams::new(&g, col0, cols);
            let note = format!("grad_weight: unfold of pixels {col0}..{}", col0 + cols);
            plan.steps.push(deform_im2col::step(ctx, &ip, dg.offset_groups, mask.is_some(), note)?);
            plan.steps.extend(gemm_steps.by_ref().take(*passes));
        }
    }
    if which.bias {
        let sp = SumParams { channels: g.c_out, hw: g.h_out * g.w_out, n: g.n, _pad0: 0 };
        plan.steps.extend(channel_sum::steps(ctx, &sp, false, "grad_bias")?);
    }
    if dtype == DType::F16 {
        bracket_f16(ctx, &mut plan.steps, &g, input, weight, offset, mask, which)?;
    }
    Ok(plan)
}

/// The batch pieces of the batched tensors (f32; each gradient is its tensor's shape).
fn pieces_of(ctx: &GpuContext, dg: &DeformGeometry, has_mask: bool) -> Result<BatchPieces> {
    let g = &dg.conv;
    let x = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
    let out = g.output_shape();
    let taps = (dg.offset_groups * g.kh * g.kw) as usize;
    let off = [g.n as usize, 2 * taps, out[2], out[3]];
    let m = [g.n as usize, taps, out[2], out[3]];
    let per = |s: &[usize]| s[1..].iter().product::<usize>() as u64 * 4;
    let mut tensors =
        vec![("input", &x[..], per(&x)), ("offset", &off[..], per(&off)), ("grad_output", &out[..], per(&out))];
    if has_mask {
        tensors.push(("mask", &m[..], per(&m)));
    }
    batch::plan(ctx, "deform_conv2d_backward", g.n as usize, &tensors)
}

/// f16: a widen per input in front of the plan's steps and a narrow per gradient after
/// ([`crate::ops::widen`]).
#[allow(clippy::too_many_arguments)]
fn bracket_f16(
    ctx: &GpuContext,
    steps: &mut Vec<Step>,
    g: &Conv2dGeometry,
    input: &[usize],
    weight: &[usize],
    offset: &[usize],
    mask: Option<&[usize]>,
    which: DeformGrads,
) -> Result<()> {
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let ins = [numel(input), numel(weight), numel(offset), mask.map_or(0, numel), g.output_numel()];
    let asked = [(which.input, numel(input)), (which.weight, numel(weight)), (which.offset, numel(offset))];
    let more = [(which.mask, mask.map_or(0, numel)), (which.bias, g.c_out as usize)];
    let outs: Vec<usize> = asked.into_iter().chain(more).filter(|(on, _)| *on).map(|(_, n)| n).collect();
    widen::bracket(ctx, steps, &ins, &outs)
}

/// The column GEMM: `cols = weightᵀ · grad_output` written pixel-major,
/// `[images, Ho·Wo, Cin·kh·kw]` (`Y_NHWC`): grad_input's walks read the rows of one pixel for
/// their channels, side by side.
fn column_gemm() -> (GemmProblem, crate::shaders::Overrides) {
    let problem = GemmProblem::TransposedCols;
    let ov = gemm::overrides(problem, Activation::None, false, &gemm::Aux::None);
    (problem, ov.layouts(crate::Layout::Contiguous, crate::Layout::ChannelsLast))
}

/// Bytes of grad_output `[N, Cout, Ho, Wo]` in f32 (the column GEMM's B, bound whole).
fn grad_output_bytes(g: &Conv2dGeometry) -> u64 {
    g.output_numel() as u64 * 4
}

/// The per-sample pass's gradients (grad_offset, grad_mask), `None` when it has nothing to form.
fn sample_grads(which: DeformGrads, has_mask: bool) -> Option<SampleGrads> {
    let sg = SampleGrads { has_mask, offset: which.offset, mask: which.mask && has_mask };
    (sg.offset || sg.mask).then_some(sg)
}

/// The block of one chunk's per-sample launch.
fn sample_block(g: &Conv2dGeometry, dg: &DeformGeometry, img0: u32, imgs: u32) -> DeformBackParams {
    DeformBackParams::new(dg, img0, imgs * dg.offset_groups * g.kh * g.kw * g.h_out * g.w_out)
}

fn weight_plan(
    ctx: &GpuContext,
    g: &Conv2dGeometry,
    weight: &[usize],
    chunk_cols: u32,
) -> Result<(gemm::GemmPlan, Vec<usize>)> {
    let problem = GemmProblem::GradWeightColumns;
    let ov = gemm::overrides(problem, Activation::None, false, &gemm::Aux::None);
    gemm::plan_column_chunks(
        ctx,
        &GemmParams::unfold_weight_gradient(&g.unfolded(), chunk_cols),
        problem,
        ov,
        weight.iter().product(),
    )
}

/// Computes the gradients in `which` of `y = deform_conv2d(input, weight, offset, mask, bias)`
/// given `grad_output` (`[N, Cout, Ho, Wo]`), submitted (shapes: [`DeformConv2dGrads`]); what
/// is not asked for is not computed. The bias's value plays no part (grad_bias is
/// grad_output's channel sums). PyTorch's unbatched form (every tensor without its batch
/// axis) gives unbatched gradients.
///
/// Semantics are torchvision's (`torchvision.ops.deform_conv2d` under autograd): grad_offset
/// follows `get_coordinate_weight` (the bilinear derivative over the in-image corners, with
/// no sampling-box test, so a sample exactly at y = −1 still has a y-derivative), grad_input
/// gets each in-image corner's bilinear weight, grad_mask the bilinear sample (0 outside the
/// open box (−1, H) × (−1, W)).
///
/// Errors: the forward's validation ([`deform_conv2d`](crate::deform_conv2d));
/// [`Error::InvalidParam`] for an activation (the backward differentiates the convolution
/// alone) or grad_mask without a mask; [`Error::Unsupported`] for an offset group beyond the
/// loop budget, or grad_input of images whose (H + 1)·(W + 1) cells one workgroup cannot scan
/// within it (about 2 million with the default budget); [`Error::TooLarge`] for the weight or
/// one image of a tensor beyond one storage binding, the slots of the gradients summed over the
/// batch pieces beyond one, one image's column gradients beyond the workspace budget, or one
/// image's grad_input accumulator (16 bytes per input element) beyond one binding.
#[allow(clippy::too_many_arguments)]
pub fn deform_conv2d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    grad_output: &Tensor,
    params: &DeformConv2dParams,
    which: DeformGrads,
) -> Result<DeformConv2dGrads> {
    let which = DeformGrads { mask: which.mask && mask.is_some(), ..which };
    let dg = validate(ctx, input.shape(), weight.shape(), offset.shape(), mask.map(|m| m.shape()), params, which)?;
    let alloc = |on: bool, shape: &[usize]| on.then(|| Tensor::empty_as(ctx, shape, input.dtype())).transpose();
    let grads = DeformConv2dGrads {
        grad_input: alloc(which.input, input.shape())?,
        grad_weight: alloc(which.weight, weight.shape())?,
        grad_offset: alloc(which.offset, offset.shape())?,
        grad_mask: match mask {
            Some(m) => alloc(which.mask, m.shape())?,
            None => None,
        },
        grad_bias: alloc(which.bias, &[dg.conv.c_out as usize])?,
    };
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("deform_conv2d_backward") });
    deform_conv2d_backward_into(ctx, &mut encoder, input, weight, offset, mask, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient `grads` holds
/// (shaped as its tensor, [`DeformConv2dGrads`]). Errors as [`deform_conv2d_backward`].
#[allow(clippy::too_many_arguments)]
pub fn deform_conv2d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    grad_output: &Tensor,
    params: &DeformConv2dParams,
    grads: &DeformConv2dGrads,
) -> Result<()> {
    // The unbatched form: every tensor (and gradient) viewed with a batch of one.
    let mut ts: Vec<(&Tensor, &'static str)> = vec![(input, "input"), (offset, "offset"), (grad_output, "grad_output")];
    ts.extend(mask.map(|m| (m, "mask")));
    ts.extend(grads.grad_input.as_ref().map(|t| (t, "grad_input")));
    ts.extend(grads.grad_offset.as_ref().map(|t| (t, "grad_offset")));
    ts.extend(grads.grad_mask.as_ref().map(|t| (t, "grad_mask")));
    if let Some(views) = unbatched(4, &ts)? {
        let mut v = views.into_iter();
        let (x, off, dy) = (v.next(), v.next(), v.next());
        let (x, off, dy) = (x.expect("input"), off.expect("offset"), dy.expect("grad_output"));
        let m = mask.and_then(|_| v.next());
        let batched = DeformConv2dGrads {
            grad_input: grads.grad_input.as_ref().and_then(|_| v.next()),
            grad_offset: grads.grad_offset.as_ref().and_then(|_| v.next()),
            grad_mask: grads.grad_mask.as_ref().and_then(|_| v.next()),
            grad_weight: grads.grad_weight.clone(),
            grad_bias: grads.grad_bias.clone(),
        };
        return deform_conv2d_backward_into(ctx, encoder, &x, weight, &off, m.as_ref(), &dy, params, &batched);
    }
    if grads.grad_mask.is_some() && mask.is_none() {
        return Err(Error::param("grad_mask", "asked for without a mask (deform_conv2d v1 has none)"));
    }
    let which = DeformGrads {
        input: grads.grad_input.is_some(),
        weight: grads.grad_weight.is_some(),
        offset: grads.grad_offset.is_some(),
        mask: grads.grad_mask.is_some(),
        bias: grads.grad_bias.is_some(),
    };
    let dtype = crate::ops::common_dtype(
        "deform_conv2d_backward",
        input,
        &[(Some(weight), "weight"), (Some(offset), "offset"), (mask, "mask"), (Some(grad_output), "grad_output")],
    )?;
    let plan = plan_deform_conv2d_backward(
        ctx,
        input.shape(),
        weight.shape(),
        offset.shape(),
        mask.map(|m| m.shape()),
        dtype,
        params,
        which,
    )?;
    let g = plan.geometry.conv;
    let out = g.output_shape();
    if grad_output.shape() != out {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected the deform_conv2d's output shape {out:?}", grad_output.shape()),
        });
    }
    let c_out = [g.c_out as usize];
    for (t, what, want) in [
        (&grads.grad_input, "grad_input", input.shape()),
        (&grads.grad_weight, "grad_weight", weight.shape()),
        (&grads.grad_offset, "grad_offset", offset.shape()),
        (&grads.grad_mask, "grad_mask", mask.map_or(&[][..], |m| m.shape())),
        (&grads.grad_bias, "grad_bias", &c_out[..]),
    ] {
        if let Some(t) = t {
            if t.shape() != want || t.dtype() != dtype {
                return Err(Error::Buffer {
                    what,
                    reason: format!(
                        "shape {:?} ({}), expected {want:?} ({})",
                        t.shape(),
                        t.dtype().name(),
                        dtype.name()
                    ),
                });
            }
            t.check_device(ctx, "gradient")?;
        }
    }
    if dtype == DType::F16 {
        let ins = [Some(input), Some(weight), Some(offset), mask, Some(grad_output)];
        let outs = [
            grads.grad_input.as_ref(),
            grads.grad_weight.as_ref(),
            grads.grad_offset.as_ref(),
            grads.grad_mask.as_ref(),
            grads.grad_bias.as_ref(),
        ];
        return widen::with_f32(ctx, encoder, "deform_conv2d_backward", &ins, &outs, |e, i, o| {
            let [x, w, off, dy] = [&i[0], &i[1], &i[2], &i[4]].map(|t| t.as_ref().expect("given"));
            let wide = DeformConv2dGrads {
                grad_input: o[0].clone(),
                grad_weight: o[1].clone(),
                grad_offset: o[2].clone(),
                grad_mask: o[3].clone(),
                grad_bias: o[4].clone(),
            };
            deform_conv2d_backward_into(ctx, e, x, w, off, i[3].as_ref(), dy, params, &wide)
        });
    }
    if g.n == 0 {
        // An empty batch: grad_weight and grad_bias are sums over no pixels (zeros, as PyTorch).
        for t in [&grads.grad_weight, &grads.grad_bias].into_iter().flatten() {
            encoder.clear_buffer(t.buffer(), t.offset(), Some(t.byte_len()));
        }
        return check_recorded("deform_conv2d_backward", 0, &plan.steps);
    }
    let recorded = if plan.batch_pieces > 1 {
        let mut batched = vec![batch::input(input, "input"), batch::input(offset, "offset")];
        batched.extend(mask.map(|m| batch::input(m, "mask")));
        batched.push(batch::input(grad_output, "grad_output"));
        let outs =
            [(&grads.grad_input, "grad_input"), (&grads.grad_offset, "grad_offset"), (&grads.grad_mask, "grad_mask")];
        batched.extend(outs.iter().filter_map(|(t, what)| t.as_ref().map(|t| batch::output(t, what))));
        let pieces = batch::pieces(ctx, "deform_conv2d_backward", &batched)?;
        let sums: Vec<&Tensor> = [&grads.grad_weight, &grads.grad_bias].into_iter().flatten().collect();
        let op = "deform_conv2d_backward";
        batch::backward_in_pieces(ctx, encoder, op, &pieces, &batched, sums, |e, t, slots| {
            let mut v = t.iter().cloned();
            let (x, off) = (v.next().expect("input"), v.next().expect("offset"));
            let m = mask.and_then(|_| v.next());
            let dy = v.next().expect("grad_output");
            let mut s = slots.into_iter();
            let part_grads = DeformConv2dGrads {
                grad_input: grads.grad_input.as_ref().and_then(|_| v.next()),
                grad_offset: grads.grad_offset.as_ref().and_then(|_| v.next()),
                grad_mask: grads.grad_mask.as_ref().and_then(|_| v.next()),
                grad_weight: grads.grad_weight.as_ref().and_then(|_| s.next()),
                grad_bias: grads.grad_bias.as_ref().and_then(|_| s.next()),
            };
            let part = plan_deform_conv2d_backward(
                ctx,
                x.shape(),
                weight.shape(),
                off.shape(),
                m.as_ref().map(|m| m.shape()),
                DType::F32,
                params,
                which,
            )?;
            ctx.scoped(|| record_backward(ctx, e, &part, &x, weight, &off, m.as_ref(), &dy, &part_grads))?
        })?
    } else {
        ctx.scoped(|| record_backward(ctx, encoder, &plan, input, weight, offset, mask, grad_output, grads))??
    };
    check_recorded("deform_conv2d_backward", recorded, &plan.steps)
}

/// Records `plan`'s launches (see the module docs); returns their number.
#[allow(clippy::too_many_arguments)]
fn record_backward(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    plan: &DeformConv2dBackwardPlan,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    grad_output: &Tensor,
    grads: &DeformConv2dGrads,
) -> Result<usize> {
    let dg = plan.geometry;
    let g = dg.conv;
    let workspace = ctx.workspace(plan.workspace_bytes.max(16))?;
    let mut arena = UniformArena::new(ctx);
    let sample = sample_grads(plan.grads, mask.is_some());
    let input_grad = plan.grads.input;
    // Per chunk of the column gradients: its images, its GEMM's block, grad_input's passes'
    // blocks and the per-sample launch's.
    let mut chunk_blocks = Vec::new();
    if input_grad || sample.is_some() {
        let imgs = plan.images_per_chunk;
        for img0 in (0..g.n).step_by(imgs as usize) {
            let k = imgs.min(g.n - img0);
            let gp = GemmParams::column_gradients(&g.unfolded(), img0, k);
            let passes = DeformBackParams::input_passes(&dg, img0, k, ctx.config().loop_budget);
            let input_blocks = if input_grad { passes.map(|p| (p, arena.push(&p))).to_vec() } else { Vec::new() };
            let sp = sample_block(&g, &dg, img0, k);
            chunk_blocks.push((k, gp, arena.push(&gp), input_blocks, (sp, arena.push(&sp))));
        }
    }
    let mut unfold_blocks = Vec::new();
    let mut weight_gemm_ = None;
    if plan.grads.weight {
        let chunks = plan_chunks_of_16(ctx, &g.unfolded())?;
        for c in 0..chunks.chunks {
            let col0 = c * chunks.cols;
            let ip = Im2colParams::new(&g, col0, chunks.cols.min(chunks.pixels - col0));
            unfold_blocks.push((ip, arena.push(&DeformIm2colParams::new(&ip, dg.offset_groups))));
        }
        let block = arena.push(&GemmParams::unfold_weight_gradient(&g.unfolded(), chunks.cols));
        weight_gemm_ = Some((chunks, block));
    }
    let sum = SumParams { channels: g.c_out, hw: g.h_out * g.w_out, n: g.n, _pad0: 0 };
    let sum_block = grads.grad_bias.as_ref().map(|_| arena.push(&sum));
    let uniforms = arena.finish(ctx)?;

    let mut dispatches = Vec::new();
    if !chunk_blocks.is_empty() {
        // grad_input's buffers, for a whole chunk of images: created zeroed; each chunk's fill
        // pass leaves the counts at 0 and its finishing pass zeroes the accumulator.
        let imgs = plan.images_per_chunk as u64;
        let names = [
            "wgconv.deform_grad_input_sums",
            "wgconv.deform_cells",
            "wgconv.deform_cell_starts",
            "wgconv.deform_samples",
        ];
        let mut bufs = Vec::new();
        if input_grad {
            for (name, bytes) in names.into_iter().zip(deform_backward::input_bytes_per_image(&dg)) {
                let bytes = (bytes * imgs).max(16);
                bufs.push((ctx.create_buffer(name, bytes, wgpu::BufferUsages::STORAGE)?, bytes));
            }
        }
        // unused gradients: each its own slot (WebGPU refuses aliasing writable bindings)
        fn rw<'a>(ctx: &'a GpuContext, t: &'a Option<Tensor>, slot: u64) -> wgpu::BindingResource<'a> {
            match t {
                Some(t) => whole(t),
                None => ctx.unused_rw(slot),
            }
        }
        for (imgs, gp, gb, input_blocks, (sp, sb)) in &chunk_blocks {
            let cols_bytes = g.c_in as u64 * (g.kh * g.kw) as u64 * (g.h_out * g.w_out) as u64 * 4 * *imgs as u64;
            let cols = Tensor::from_buffer(ctx, workspace.clone(), &[(cols_bytes / 4) as usize])?;
            // planned as the plan does (grad_output bound whole: its span starts the binding)
            let (problem, ov) = column_gemm();
            let b_span = Some((0, grad_output_bytes(&g)));
            let gplan = gemm::plan(ctx, gp, problem, ov, false, b_span, cols.numel())?;
            dispatches.extend(gemm::prepare_planned(
                ctx,
                &uniforms,
                *gb,
                &gplan,
                weight,
                whole(grad_output),
                None,
                &cols,
                gemm::Aux::None,
            )?);
            if let Some(dx) = &grads.grad_input {
                for (pass, (p, block)) in InputPass::ALL.into_iter().zip(input_blocks) {
                    let mut bindings = vec![
                        range(&uniforms, *block),
                        whole(offset),
                        optional(ctx, mask),
                        range(&workspace, (0, cols_bytes)),
                    ];
                    bindings.extend(bufs.iter().map(|(b, bytes)| range(b, (0, *bytes))));
                    bindings.push(whole(dx));
                    let step = deform_backward::input_step(ctx, pass, p, mask.is_some(), String::new())?;
                    dispatches.push(step.dispatch(ctx, &bindings)?);
                }
            }
            if let Some(sg) = sample {
                let bindings = [
                    range(&uniforms, *sb),
                    whole(input),
                    whole(offset),
                    optional(ctx, mask),
                    range(&workspace, (0, cols_bytes)),
                    rw(ctx, &grads.grad_offset, 0),
                    rw(ctx, &grads.grad_mask, 1),
                ];
                let step = deform_backward::sample_step(ctx, sp, sg, String::new())?;
                dispatches.push(step.dispatch(ctx, &bindings)?);
            }
        }
    }
    if let (Some((chunks, gb)), Some(dw)) = (&weight_gemm_, &grads.grad_weight) {
        let (gplan, per_chunk) = weight_plan(ctx, &g, weight.shape(), chunks.cols)?;
        let unfold_bytes = chunks.rows as u64 * chunks.cols as u64 * 4;
        let b = range(&workspace, (0, unfold_bytes));
        let mut gemm_dispatches =
            gemm::prepare_planned(ctx, &uniforms, *gb, &gplan, grad_output, b, None, dw, gemm::Aux::None)?.into_iter();
        for ((ip, block), passes) in unfold_blocks.iter().zip(&per_chunk) {
            dispatches.push(deform_im2col::prepare(
                ctx,
                &uniforms,
                *block,
                ip,
                dg.offset_groups,
                input,
                offset,
                mask,
                &workspace,
            )?);
            dispatches.extend(gemm_dispatches.by_ref().take(*passes));
        }
    }
    if let (Some(block), Some(db)) = (sum_block, &grads.grad_bias) {
        dispatches.extend(channel_sum::prepare(ctx, &uniforms, block, &sum, grad_output, db, false)?);
    }
    record(ctx, encoder, "deform_conv2d_backward", &dispatches);
    Ok(dispatches.len())
}
