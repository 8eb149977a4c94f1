//! The conv3d backward pass (PyTorch autograd of `torch.nn.functional.conv3d`) on
//! `[N, C, D, H, W]`, from the unfolded conv's GEMMs:
//! - grad_input: the column gradients `Wᵀ · dY` (per group, the GEMM core's
//!   `TransposedCols`) of a chunk of images, gathered into the input's voxels by
//!   `col2vol.wgsl` (each voxel sums its taps in order);
//! - grad_weight: `dY · vol2col(x)ᵀ` per group (`GradWeightColumns`: the forward's unfold,
//!   `vol2col.wgsl`, in chunks of voxels under the workspace budget, read transposed; K in
//!   fixed-order passes);
//! - grad_bias: the channel sums of dY (`channel_sum.wgsl`).
//!
//! Gathers and fixed-order sums, no atomics: bit-identical run to run. f32 kernels (f16
//! tensors through f32 copies, [`crate::ops::widen`]). An input or grad_output beyond one
//! storage binding runs in batch pieces ([`crate::ops::batch`]): grad_input per piece (the
//! same kernels: bit-identical to one call), grad_weight and grad_bias per piece into slots
//! then summed over the pieces in order (equal to one call within f32 rounding); the weight
//! and one image of each tensor within one binding (f16: the f32 copies each within one
//! binding too).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::channel_sum::{self, SumParams};
use crate::kernels::col2vol;
use crate::kernels::gemm::{self, GemmParams, GemmProblem};
use crate::kernels::vol2col::{self, Vol2colParams};
use crate::kernels::{check_recorded, optional, range, record, whole, write_plan, Step, UniformArena};
use crate::ops::batch::{self, BatchPieces, PartialSums};
use crate::ops::conv2d::plan_chunks_of_16;
use crate::ops::conv2d_backward::{Conv2dGrads, Grads};
use crate::ops::{as_batched, unbatched, widen};
use crate::params::{Activation, Conv3dGeometry, Conv3dParams};
use crate::tensor::{DType, Tensor};

/// What one conv3d_backward call records ([`plan_conv3d_backward`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3dBackwardPlan {
    /// Every size of the validated conv3d.
    pub geometry: Conv3dGeometry,
    /// The gradients asked for.
    pub grads: Grads,
    /// Images per chunk of grad_input's column gradients (0 without grad_input or images).
    pub images_per_chunk: u32,
    /// Chunks of voxels of grad_weight's unfold (0 without grad_weight).
    pub voxel_chunks: u32,
    /// Bytes of the shared workspace (column gradients, or one chunk of the unfold).
    pub workspace_bytes: u64,
    /// Pieces the batch runs in (1: one call; 0: an empty batch), each piece planned as above.
    pub batch_pieces: u32,
    /// Every launch, in recording order.
    pub steps: Vec<Step>,
}

impl std::fmt::Display for Conv3dBackwardPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry;
        let input = [g.n, g.c_in, g.size[0], g.size[1], g.size[2]].map(|v| v as usize);
        let chunking = format_args!(
            "{} images per chunk of column gradients, {} voxel chunks for grad_weight",
            self.images_per_chunk, self.voxel_chunks
        );
        let pieces = format!("{} batch pieces", self.batch_pieces);
        let what = ("gradients", if self.batch_pieces > 1 { pieces.as_str() } else { "one call" });
        write_plan(f, "conv3d_backward", &input, &g.output_shape(), what, self.workspace_bytes, chunking, &self.steps)
    }
}

/// Validates a backward pass of these shapes (batched, or unbatched) stored as `dtype`.
fn validate(ctx: &GpuContext, input: &[usize], weight: &[usize], params: &Conv3dParams) -> Result<Conv3dGeometry> {
    if params.activation != Activation::None {
        return Err(Error::param(
            "activation",
            "conv3d_backward differentiates the convolution alone: pass the gradient with respect to the \
             convolution's output and no activation",
        ));
    }
    let x = as_batched(input, 5);
    let g = params.validate(&x, weight, None)?;
    let (max, bytes) = (ctx.max_binding(), weight.iter().product::<usize>() as u64 * 4);
    if bytes > max {
        return Err(Error::TooLarge(format!(
            "conv3d_backward: weight {weight:?} is {bytes} bytes; it binds the weight whole and one storage binding \
             holds at most {max} on this device"
        )));
    }
    let (turns, budget) = (col2vol::turns(&g) + 1, ctx.config().loop_budget as u64);
    if turns > budget {
        return Err(Error::Unsupported(format!(
            "conv3d_backward gathers each input voxel over the {:?} kernel's taps in one loop ({turns} turns), beyond \
             the loop budget of {budget} (EngineConfig::loop_budget; some drivers stop longer loops early)",
            g.kernel
        )));
    }
    Ok(g)
}

/// A conv3d's input gradient from its output gradient `dy` (conv3d_backward's grad_input; and
/// conv_transpose3d's output, with its bias and activation): per chunk of images under the
/// workspace budget, the column gradients `Wᵀ · dY` per group (the GEMM core's
/// `TransposedCols`) into the workspace, then the `col2vol.wgsl` gather (+ bias, activation).
pub(crate) struct ColumnGather {
    geometry: Conv3dGeometry,
    activation: Activation,
    has_bias: bool,
    /// Images per chunk.
    images: u32,
}

/// One chunk's uniform blocks: (images, GEMM, its block, gather, its block).
type ChunkBlocks = Vec<(u32, GemmParams, (u64, u64), Vol2colParams, (u64, u64))>;

impl ColumnGather {
    /// Cuts `g` (a conv3d geometry: `c_in`·taps rows, `out` voxels per image) into chunks of
    /// images whose column gradients (`Cin·kd·kh·kw·Do·Ho·Wo·4` bytes each) fit the workspace
    /// budget; `op` names the caller in the error.
    pub(crate) fn new(
        ctx: &GpuContext,
        op: &str,
        g: &Conv3dGeometry,
        activation: Activation,
        has_bias: bool,
    ) -> Result<Self> {
        let per_image = Self::image_bytes(g);
        let budget = ctx.config().workspace_budget.min(ctx.max_binding());
        let images = (budget / per_image.max(1)).min(g.n as u64);
        if images == 0 && g.n > 0 {
            return Err(Error::TooLarge(format!(
                "{op}: one image's column gradients take {per_image} bytes (channels·kd·kh·kw·voxels·4) but the \
                 workspace budget is {budget}"
            )));
        }
        Ok(ColumnGather { geometry: *g, activation, has_bias, images: images.max(1) as u32 })
    }

    fn image_bytes(g: &Conv3dGeometry) -> u64 {
        let u = g.unfolded();
        u.rows as u64 * u.pixels_per_image as u64 * 4
    }

    /// Images per chunk.
    pub(crate) fn images_per_chunk(&self) -> u32 {
        self.images
    }

    /// Workspace bytes of one chunk.
    pub(crate) fn workspace_bytes(&self) -> u64 {
        Self::image_bytes(&self.geometry) * self.images.min(self.geometry.n) as u64
    }

    fn chunks(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let n = self.geometry.n;
        (0..n).step_by(self.images as usize).map(move |img0| (img0, self.images.min(n - img0)))
    }

    fn gemm_plan(ctx: &GpuContext, gp: &GemmParams, numel: usize) -> Result<gemm::GemmPlan> {
        // no vec4 B: the same kernel and passes whatever the binding's offset
        let problem = GemmProblem::TransposedCols;
        let ov = gemm::overrides(problem, Activation::None, false, &gemm::Aux::None);
        gemm::plan(ctx, gp, problem, ov, false, None, numel)
    }

    /// Every launch, in recording order.
    pub(crate) fn steps(&self, ctx: &GpuContext) -> Result<Vec<Step>> {
        let (g, u) = (&self.geometry, self.geometry.unfolded());
        let mut steps = Vec::new();
        for (img0, k) in self.chunks() {
            let gp = GemmParams::column_gradients(&u, img0, k);
            let numel = u.rows as usize * u.pixels_per_image as usize * k as usize;
            let gplan = Self::gemm_plan(ctx, &gp, numel)?;
            steps.extend(gplan.steps(&format!("images {img0}..{}: column gradients", img0 + k)));
            let cp = col2vol::params(g, img0, k, self.activation.alpha());
            steps.push(col2vol::step(ctx, &cp, self.activation, self.has_bias, g.padding_mode)?);
        }
        Ok(steps)
    }

    /// Pushes every chunk's uniform blocks.
    pub(crate) fn push(&self, arena: &mut UniformArena) -> ChunkBlocks {
        let u = self.geometry.unfolded();
        self.chunks()
            .map(|(img0, k)| {
                let gp = GemmParams::column_gradients(&u, img0, k);
                let cp = col2vol::params(&self.geometry, img0, k, self.activation.alpha());
                (k, gp, arena.push(&gp), cp, arena.push(&cp))
            })
            .collect()
    }

    /// The launches: `weight` `[Cout, Cin/groups, k…]` of the conv3d (read transposed), `dy`
    /// its output gradient `[N, Cout, Do, Ho, Wo]`, `out` its input gradient `[N, Cin, D, H,
    /// W]`, `bias` `[Cin]` when the gather adds one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        &self,
        ctx: &GpuContext,
        uniforms: &wgpu::Buffer,
        blocks: &ChunkBlocks,
        workspace: &wgpu::Buffer,
        weight: &Tensor,
        dy: &Tensor,
        bias: Option<&Tensor>,
        out: &Tensor,
    ) -> Result<Vec<crate::kernels::Dispatch>> {
        let u = self.geometry.unfolded();
        let mut dispatches = Vec::new();
        for (imgs, gp, gb, cp, cb) in blocks {
            let bytes = u.rows as u64 * u.pixels_per_image as u64 * 4 * *imgs as u64;
            let cols = Tensor::from_buffer(ctx, workspace.clone(), &[(bytes / 4) as usize])?;
            let gplan = Self::gemm_plan(ctx, gp, cols.numel())?;
            dispatches.extend(gemm::prepare_planned(
                ctx,
                uniforms,
                *gb,
                &gplan,
                weight,
                whole(dy),
                None,
                &cols,
                gemm::Aux::None,
            )?);
            let step = col2vol::step(ctx, cp, self.activation, self.has_bias, self.geometry.padding_mode)?;
            let bindings = [range(uniforms, *cb), range(workspace, (0, bytes)), optional(ctx, bias), whole(out)];
            dispatches.push(step.dispatch(ctx, &bindings)?);
        }
        Ok(dispatches)
    }
}

/// Plans the backward pass of a conv3d of `input` `[N, Cin, D, H, W]` (or unbatched) and
/// `weight` for the gradients in `which`: validates, cuts the work to the workspace budget and
/// lists the launches. Creates no GPU object. Errors as [`conv3d_backward`].
pub fn plan_conv3d_backward(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    params: &Conv3dParams,
    which: Grads,
) -> Result<Conv3dBackwardPlan> {
    let g = validate(ctx, input, weight, params)?;
    let mut plan = Conv3dBackwardPlan {
        geometry: g,
        grads: which,
        images_per_chunk: 0,
        voxel_chunks: 0,
        workspace_bytes: 0,
        batch_pieces: u32::from(g.n > 0),
        steps: vec![],
    };
    if g.n == 0 {
        return Ok(plan);
    }
    let pieces = pieces_of(ctx, &g)?;
    if pieces.pieces > 1 {
        // Each piece planned as a call of its own, then the sums over the pieces.
        let n = g.n as usize;
        let x = as_batched(input, 5);
        for n0 in (0..n).step_by(pieces.per_piece) {
            let len = pieces.per_piece.min(n - n0);
            let piece: Vec<usize> = [len].into_iter().chain(x[1..].iter().copied()).collect();
            let part = plan_conv3d_backward(ctx, &piece, weight, params, which)?;
            if n0 == 0 {
                (plan.images_per_chunk, plan.voxel_chunks) = (part.images_per_chunk, part.voxel_chunks);
                plan.workspace_bytes = part.workspace_bytes;
            }
            plan.steps.extend(part.steps.into_iter().map(|s| s.noted(&format!("images {n0}..{}", n0 + len))));
        }
        let (dw, db) = (which.weight.then_some(weight), which.bias.then_some(g.c_out as usize));
        plan.steps.extend(PartialSums::steps(ctx, "conv3d_backward", dw, db, DType::F32, pieces.pieces)?);
        plan.batch_pieces = pieces.pieces as u32;
        return Ok(plan);
    }
    let u = g.unfolded();
    if which.input {
        let gather = ColumnGather::new(ctx, "conv3d_backward", &g, Activation::None, false)?;
        plan.images_per_chunk = gather.images_per_chunk();
        plan.workspace_bytes = gather.workspace_bytes();
        plan.steps.extend(gather.steps(ctx)?);
    }
    if which.weight {
        let chunks = plan_chunks_of_16(ctx, &u)?;
        plan.voxel_chunks = chunks.chunks;
        plan.workspace_bytes = plan.workspace_bytes.max(chunks.rows as u64 * chunks.cols as u64 * 4);
        let (gplan, per_chunk) = weight_plan(ctx, &g, weight, chunks.cols)?;
        let mut gemm_steps = gplan.steps("grad_weight").into_iter();
        for (c, passes) in per_chunk.iter().enumerate() {
            let col0 = c as u32 * chunks.cols;
            let vp = Vol2colParams::new(&g, col0, chunks.cols.min(chunks.pixels - col0));
            plan.steps.push(vol2col::step(ctx, &vp, g.padding_mode)?);
            plan.steps.extend(gemm_steps.by_ref().take(*passes));
        }
    }
    if which.bias {
        let sp = SumParams { channels: g.c_out, hw: g.out.iter().product(), n: g.n, _pad0: 0 };
        plan.steps.extend(channel_sum::steps(ctx, &sp, false, "grad_bias")?);
    }
    Ok(plan)
}

/// The batch pieces of the input and grad_output (f32; grad_input is the input's shape).
fn pieces_of(ctx: &GpuContext, g: &Conv3dGeometry) -> Result<BatchPieces> {
    let x = [g.n, g.c_in, g.size[0], g.size[1], g.size[2]].map(|v| v as usize);
    let out = g.output_shape();
    let per = |s: &[usize]| s[1..].iter().product::<usize>() as u64 * 4;
    let tensors = [("input", &x[..], per(&x)), ("grad_output", &out[..], per(&out))];
    batch::plan(ctx, "conv3d_backward", g.n as usize, &tensors)
}

fn weight_plan(
    ctx: &GpuContext,
    g: &Conv3dGeometry,
    weight: &[usize],
    chunk_cols: u32,
) -> Result<(gemm::GemmPlan, Vec<usize>)> {
    let problem = GemmProblem::GradWeightColumns;
    let ov = gemm::overrides(problem, Activation::None, false, &gemm::Aux::None);
    let gp = GemmParams::unfold_weight_gradient(&g.unfolded(), chunk_cols);
    gemm::plan_column_chunks(ctx, &gp, problem, ov, weight.iter().product())
}

/// Computes the gradients in `which` of `y = conv3d(input, weight, bias)` given `grad_output`
/// (`[N, Cout, Do, Ho, Wo]`), submitted: grad_input `[N, Cin, D, H, W]`, grad_weight
/// `[Cout, Cin/groups, kd, kh, kw]`, grad_bias `[Cout]` (PyTorch autograd's); unbatched
/// inputs give unbatched gradients; what is not asked for is not computed.
///
/// Errors: the forward's validation; [`Error::InvalidParam`] for an activation;
/// [`Error::Unsupported`] for a kernel whose taps exceed the loop budget;
/// [`Error::TooLarge`] for the weight or one image of a tensor beyond one storage binding,
/// the slots of the gradients summed over the batch pieces beyond one, or one image's column
/// gradients beyond the workspace budget.
pub fn conv3d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv3dParams,
    which: Grads,
) -> Result<Conv2dGrads> {
    let g = validate(ctx, input.shape(), weight.shape(), params)?;
    let grads = Conv2dGrads::empty(ctx, which, input, weight, g.c_out as usize)?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv3d_backward") });
    conv3d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient `grads` holds
/// (shapes of input, weight and `[Cout]`). Errors as [`conv3d_backward`].
pub fn conv3d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv3dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    let mut ts: Vec<(&Tensor, &'static str)> = vec![(input, "input"), (grad_output, "grad_output")];
    ts.extend(grads.grad_input.as_ref().map(|t| (t, "grad_input")));
    if let Some(v) = unbatched(5, &ts)? {
        let batched = Conv2dGrads {
            grad_input: v.get(2).cloned(),
            grad_weight: grads.grad_weight.clone(),
            grad_bias: grads.grad_bias.clone(),
        };
        return conv3d_backward_into(ctx, encoder, &v[0], weight, &v[1], params, &batched);
    }
    let dtype = crate::ops::common_dtype(
        "conv3d_backward",
        input,
        &[(Some(weight), "weight"), (Some(grad_output), "grad_output")],
    )?;
    let g = validate(ctx, input.shape(), weight.shape(), params)?;
    let out = g.output_shape();
    if grad_output.shape() != out {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected the conv3d's output shape {out:?}", grad_output.shape()),
        });
    }
    grads.check(ctx, input.shape(), weight.shape(), g.c_out as usize, dtype)?;
    if dtype == DType::F16 {
        let ins = [Some(input), Some(weight), Some(grad_output)];
        let outs = [grads.grad_input.as_ref(), grads.grad_weight.as_ref(), grads.grad_bias.as_ref()];
        return widen::with_f32(ctx, encoder, "conv3d_backward", &ins, &outs, |e, i, o| {
            let [x, w, dy] = [&i[0], &i[1], &i[2]].map(|t| t.as_ref().expect("given"));
            let wide = Conv2dGrads { grad_input: o[0].clone(), grad_weight: o[1].clone(), grad_bias: o[2].clone() };
            conv3d_backward_into(ctx, e, x, w, dy, params, &wide)
        });
    }
    let which = Grads {
        input: grads.grad_input.is_some(),
        weight: grads.grad_weight.is_some(),
        bias: grads.grad_bias.is_some(),
    };
    let plan = plan_conv3d_backward(ctx, input.shape(), weight.shape(), params, which)?;
    if g.n == 0 {
        // sums over no voxels: zeros, as PyTorch
        for t in [&grads.grad_weight, &grads.grad_bias].into_iter().flatten() {
            encoder.clear_buffer(t.buffer(), t.offset(), Some(t.byte_len()));
        }
        return check_recorded("conv3d_backward", 0, &plan.steps);
    }
    let recorded = if plan.batch_pieces > 1 {
        let mut batched = vec![batch::input(input, "input"), batch::input(grad_output, "grad_output")];
        batched.extend(grads.grad_input.as_ref().map(|dx| batch::output(dx, "grad_input")));
        let pieces = batch::pieces(ctx, "conv3d_backward", &batched)?;
        let op = "conv3d_backward";
        batch::backward_in_pieces(ctx, encoder, op, &pieces, &batched, grads.sums(), |e, t, slots| {
            let part = plan_conv3d_backward(ctx, t[0].shape(), weight.shape(), params, which)?;
            let grads = grads.part(t.get(2).cloned(), slots);
            ctx.scoped(|| record_backward(ctx, e, &part, &t[0], weight, &t[1], &grads))?
        })?
    } else {
        ctx.scoped(|| record_backward(ctx, encoder, &plan, input, weight, grad_output, grads))??
    };
    check_recorded("conv3d_backward", recorded, &plan.steps)
}

/// Records `plan`'s launches; returns their number.
fn record_backward(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Conv3dBackwardPlan,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    grads: &Conv2dGrads,
) -> Result<usize> {
    let g = plan.geometry;
    let u = g.unfolded();
    let workspace = ctx.workspace(plan.workspace_bytes.max(16))?;
    let mut arena = UniformArena::new(ctx);
    let gather = match grads.grad_input {
        Some(_) => Some(ColumnGather::new(ctx, "conv3d_backward", &g, Activation::None, false)?),
        None => None,
    };
    let chunks_in = gather.as_ref().map(|c| c.push(&mut arena));
    let mut unfold = None;
    if grads.grad_weight.is_some() {
        let chunks = plan_chunks_of_16(ctx, &u)?;
        let blocks: Vec<_> = (0..chunks.chunks)
            .map(|c| {
                let col0 = c * chunks.cols;
                let vp = Vol2colParams::new(&g, col0, chunks.cols.min(chunks.pixels - col0));
                (vp, arena.push(&vp))
            })
            .collect();
        let block = arena.push(&GemmParams::unfold_weight_gradient(&u, chunks.cols));
        unfold = Some((chunks, blocks, block));
    }
    let sum = SumParams { channels: g.c_out, hw: g.out.iter().product(), n: g.n, _pad0: 0 };
    let sum_block = grads.grad_bias.as_ref().map(|_| arena.push(&sum));
    let uniforms = arena.finish(ctx)?;

    let mut dispatches = Vec::new();
    if let (Some(gather), Some(blocks), Some(dx)) = (&gather, &chunks_in, &grads.grad_input) {
        dispatches.extend(gather.prepare(ctx, &uniforms, blocks, &workspace, weight, grad_output, None, dx)?);
    }
    if let (Some((chunks, blocks, block)), Some(dw)) = (&unfold, &grads.grad_weight) {
        let (gplan, per_chunk) = weight_plan(ctx, &g, weight.shape(), chunks.cols)?;
        let b = range(&workspace, (0, chunks.rows as u64 * chunks.cols as u64 * 4));
        let mut gemm_dispatches =
            gemm::prepare_planned(ctx, &uniforms, *block, &gplan, grad_output, b, None, dw, gemm::Aux::None)?
                .into_iter();
        for ((vp, vb), passes) in blocks.iter().zip(&per_chunk) {
            dispatches.push(vol2col::prepare(ctx, &uniforms, *vb, vp.total, g.padding_mode, input, &workspace)?);
            dispatches.extend(gemm_dispatches.by_ref().take(*passes));
        }
    }
    if let (Some(block), Some(db)) = (sum_block, &grads.grad_bias) {
        dispatches.extend(channel_sum::prepare(ctx, &uniforms, block, &sum, grad_output, db, false)?);
    }
    record(ctx, encoder, "conv3d_backward", &dispatches);
    Ok(dispatches.len())
}
