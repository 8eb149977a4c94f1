//! conv_transpose3d (PyTorch `torch.nn.functional.conv_transpose3d` semantics) on
//! `[N, C, D, H, W]`. A transposed conv is the input gradient of the conv3d with its stride,
//! padding, dilation and groups whose weight `[Cout', Cin'/groups, k…]` is the transposed
//! conv's `[Cin, Cout/groups, k…]` ([`ConvTranspose3dGeometry::as_conv3d`]); so it runs as
//! conv3d_backward's grad_input does: per chunk of images, the column matrix `Wᵀ · X` per
//! group (the GEMM core's `TransposedCols`) into the workspace, then the `col2vol.wgsl` gather,
//! each output voxel summing the taps that land on it in order, + bias, activation. No
//! scatter and no atomics: bit-identical run to run.
//!
//! f32 kernels (f16 tensors through f32 copies, [`crate::ops::widen`]); an input or output
//! beyond one storage binding runs in batch pieces ([`crate::ops::batch`]: each image and the
//! weight within one binding).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::{check_recorded, col2vol, record, write_plan, Step, UniformArena};
use crate::ops::conv3d_backward::ColumnGather;
use crate::ops::{as_batched, batch, common_dtype, returned_shape, unbatched, widen};
use crate::params::{ConvTranspose3dGeometry, ConvTranspose3dParams};
use crate::tensor::{DType, Tensor};

/// What one conv_transpose3d call records ([`plan_conv_transpose3d`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTranspose3dPlan {
    /// Every size of the validated conv_transpose3d.
    pub geometry: ConvTranspose3dGeometry,
    /// Images per chunk of the column matrix (0 for an empty batch).
    pub images_per_chunk: u32,
    /// Workspace bytes one chunk uses (`Cout·kd·kh·kw·D·H·W·4` per image).
    pub workspace_bytes: u64,
    /// Pieces of the batch run one after another (the input or output beyond one storage
    /// binding; each piece's images within it); 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Every launch, in recording order (a split call's pieces one after another).
    pub steps: Vec<Step>,
}

impl std::fmt::Display for ConvTranspose3dPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry;
        let input = [g.n, g.c_in, g.size[0], g.size[1], g.size[2]].map(|v| v as usize);
        let chunking = format_args!("{} images per chunk", self.images_per_chunk);
        let split = format!("{} batch piece(s)", self.batch_pieces);
        let what = ("gemm_col2vol", split.as_str());
        write_plan(f, "conv_transpose3d", &input, &g.output_shape(), what, self.workspace_bytes, chunking, &self.steps)
    }
}

/// Validates a conv_transpose3d of these shapes (batched or unbatched).
fn validate(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    params: &ConvTranspose3dParams,
) -> Result<ConvTranspose3dGeometry> {
    let x = as_batched(input, 5);
    let g = params.validate(&x, weight, bias)?;
    let max = ctx.max_binding();
    let bytes = |s: &[usize]| s.iter().product::<usize>() as u64 * 4;
    if bytes(weight) > max {
        return Err(Error::TooLarge(format!(
            "conv_transpose3d: the weight {weight:?} is {} bytes; one storage binding holds at most {max} on this \
             device",
            bytes(weight)
        )));
    }
    // the input and output in batch pieces, each image within one binding (batch::plan)
    pieces(ctx, &g)?;
    let (turns, budget) = (col2vol::turns(&g.as_conv3d()) + 1, ctx.config().loop_budget as u64);
    if turns > budget {
        return Err(Error::Unsupported(format!(
            "conv_transpose3d gathers each output voxel over the {:?} kernel's taps in one loop ({turns} turns), \
             beyond the loop budget of {budget} (EngineConfig::loop_budget; some drivers stop longer loops early)",
            g.kernel
        )));
    }
    Ok(g)
}

/// The batch pieces of `g`'s input and output (f32), each within one binding.
fn pieces(ctx: &GpuContext, g: &ConvTranspose3dGeometry) -> Result<batch::BatchPieces> {
    let n = g.n as usize;
    let x = [n, g.c_in as usize, g.size[0] as usize, g.size[1] as usize, g.size[2] as usize];
    let y = g.output_shape();
    let per = |s: &[usize]| s[1..].iter().product::<usize>() as u64 * 4;
    batch::plan(ctx, "conv_transpose3d", n, &[("input", &x, per(&x)), ("output", &y, per(&y))])
}

/// Plans a conv_transpose3d of `input` `[N, Cin, D, H, W]` (or unbatched), `weight`
/// `[Cin, Cout/groups, kd, kh, kw]` and `bias` `[Cout]`: validates, cuts the batch into
/// chunks of images under the workspace budget and lists the launches. Creates no GPU
/// object. Errors as [`conv_transpose3d`].
pub fn plan_conv_transpose3d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    params: &ConvTranspose3dParams,
) -> Result<ConvTranspose3dPlan> {
    let g = validate(ctx, input, weight, bias, params)?;
    let mut plan =
        ConvTranspose3dPlan { geometry: g, images_per_chunk: 0, workspace_bytes: 0, batch_pieces: 0, steps: vec![] };
    if g.n == 0 {
        return Ok(plan);
    }
    let split = pieces(ctx, &g)?;
    plan.batch_pieces = split.pieces as u32;
    for n0 in (0..split.n).step_by(split.per_piece) {
        let piece = ConvTranspose3dGeometry { n: split.per_piece.min(split.n - n0) as u32, ..g };
        let gather = ColumnGather::new(ctx, "conv_transpose3d", &piece.as_conv3d(), params.activation, bias.is_some())?;
        plan.images_per_chunk = plan.images_per_chunk.max(gather.images_per_chunk());
        plan.workspace_bytes = plan.workspace_bytes.max(gather.workspace_bytes());
        plan.steps.extend(gather.steps(ctx)?);
    }
    Ok(plan)
}

/// Transposed 3-D convolution, submitted; returns `[N, Cout, Do, Ho, Wo]` (unbatched
/// `[Cin, D, H, W]` gives `[Cout, Do, Ho, Wo]`), where each output axis is
/// `(in − 1)·stride − (begin + end) + dilation·(k − 1) + output_padding + 1`.
///
/// Errors: [`ConvTranspose3dParams::validate`]'s; [`Error::Unsupported`] for a kernel whose
/// taps exceed the loop budget; [`Error::TooLarge`] for the weight or one image beyond one
/// storage binding, or one image's column matrix beyond the workspace budget (an input or
/// output beyond one binding runs in batch pieces);
/// [`Error::DTypeMismatch`] for mixed dtypes.
pub fn conv_transpose3d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose3dParams,
) -> Result<Tensor> {
    let g = validate(ctx, input.shape(), weight.shape(), bias.map(|b| b.shape()), params)?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &g.output_shape()), input.dtype())?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv_transpose3d") });
    conv_transpose3d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records into the caller's encoder; writes `output` (`[N, Cout, Do, Ho, Wo]`, or unbatched
/// with an unbatched input). Errors as [`conv_transpose3d`], and [`Error::Buffer`] for an
/// output of another shape.
pub fn conv_transpose3d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose3dParams,
    output: &Tensor,
) -> Result<ConvTranspose3dPlan> {
    if let Some(v) = unbatched(5, &[(input, "input"), (output, "output")])? {
        return conv_transpose3d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
    let dtype =
        common_dtype("conv_transpose3d", input, &[(Some(weight), "weight"), (bias, "bias"), (Some(output), "output")])?;
    let g = validate(ctx, input.shape(), weight.shape(), bias.map(|b| b.shape()), params)?;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(Some(input), "input"), (Some(weight), "weight"), (bias, "bias"), (Some(output), "output")] {
        if let Some(t) = t {
            t.check_device(ctx, what)?;
        }
    }
    if dtype == DType::F16 {
        let (ins, outs) = ([Some(input), Some(weight), bias], [Some(output)]);
        return widen::with_f32(ctx, encoder, "conv_transpose3d", &ins, &outs, |e, i, o| {
            let [x, w, y] = [&i[0], &i[1], &o[0]].map(|t| t.as_ref().expect("given"));
            conv_transpose3d_into(ctx, e, x, w, i[2].as_ref(), params, y)
        });
    }
    let plan = plan_conv_transpose3d(ctx, input.shape(), weight.shape(), bias.map(|b| b.shape()), params)?;
    if g.n == 0 {
        check_recorded("conv_transpose3d", 0, &plan.steps)?;
        return Ok(plan);
    }
    // Each batch piece (the whole batch when it fits) through the column GEMM and the gather:
    // the same kernels and sum order per image as one call, so bit-identical.
    let batched = [batch::input(input, "input"), batch::output(output, "output")];
    let split = batch::pieces(ctx, "conv_transpose3d", &batched)?;
    let mut recorded = 0;
    batch::for_each_piece(ctx, encoder, &split, &batched, |encoder, t| {
        let (x, y) = (&t[0], &t[1]);
        let piece = ConvTranspose3dGeometry { n: x.shape()[0] as u32, ..g };
        recorded += ctx.scoped(|| {
            let gather =
                ColumnGather::new(ctx, "conv_transpose3d", &piece.as_conv3d(), params.activation, bias.is_some())?;
            let mut arena = UniformArena::new(ctx);
            let blocks = gather.push(&mut arena);
            let uniforms = arena.finish(ctx)?;
            let workspace = ctx.workspace(gather.workspace_bytes().max(16))?;
            let dispatches = gather.prepare(ctx, &uniforms, &blocks, &workspace, weight, x, bias, y)?;
            record(ctx, encoder, "conv_transpose3d", &dispatches);
            Ok::<_, Error>(dispatches.len())
        })??;
        Ok(())
    })?;
    check_recorded("conv_transpose3d", recorded, &plan.steps)?;
    Ok(plan)
}
