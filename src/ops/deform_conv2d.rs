//! deform_conv2d (torchvision.ops.deform_conv2d semantics, v1 without a mask, v2 with one).
//!
//! Algorithms (`DeformConv2dParams::algorithm`; `Auto` picks per adapter, [`auto_algorithm`]):
//! - `ImplicitGemm` (the default on GPUs): the tiled GEMM's B loader takes the bilinear samples
//!   itself (`B_DEFORM`), no workspace. Its K runs tap-major (`A_TAP_MAJOR` reads the weight in
//!   that order) so that one tap's offsets, mask and bilinear weights serve every channel.
//! - `Im2colGemm` (the default on CPU adapters): a deformable im2col (`deform_im2col.wgsl`:
//!   each column entry is the bilinear sample of its input channel at the offset position,
//!   times the mask; one invocation samples one (offset group, tap, pixel) for all the group's
//!   channels) feeding the dense GEMM, chunked over output pixels to the workspace budget.
//!
//! f16 tensors (every operand, offsets and mask included) run `ImplicitGemm` with f16 loads
//! and stores and f32 sampling and accumulation; `Im2colGemm` has no f16 path (an error).
//!
//! See deform_im2col.wgsl for the offset and mask layouts.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::gemm::{self, GemmParams, GemmProblem};
use crate::kernels::{record, whole, UniformArena};
use crate::ops::conv2d::{encode_im2col_gemm, plan_chunks, Unfold};
use crate::ops::{as_batched, batch, check_binding, common_dtype, returned_shape, unbatched};
use crate::params::{Algorithm, Conv2dGeometry, DeformConv2dParams, DeformGeometry};
use crate::tensor::{DType, Tensor};

/// What one deform_conv2d call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeformConv2dInfo {
    /// `ImplicitGemm` or `Im2colGemm`.
    pub algorithm: Algorithm,
    pub geometry: DeformGeometry,
    pub chunks: u32,
    pub workspace_bytes: u64,
}

/// What `Algorithm::Auto` runs for the conv `g` of a deform_conv2d on this context:
/// `Im2colGemm` where its dense GEMM runs the flat kernel
/// ([`crate::ops::conv2d::im2col_gemm_runs_flat`]: CPU adapters with the engine's GEMM kernel
/// choice; dcn_v2 on lavapipe: 21–22 ms against 45 ms), else `ImplicitGemm` (no workspace).
/// f16 tensors always run `ImplicitGemm` (the deformable im2col has no f16 variant).
pub fn auto_algorithm(ctx: &GpuContext, g: &Conv2dGeometry) -> Algorithm {
    if crate::ops::conv2d::im2col_gemm_runs_flat(ctx, g) {
        Algorithm::Im2colGemm
    } else {
        Algorithm::ImplicitGemm
    }
}

/// Deformable convolution, submitted; returns `[N, Cout, Ho, Wo]`.
pub fn deform_conv2d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    bias: Option<&Tensor>,
    params: &DeformConv2dParams,
) -> Result<Tensor> {
    // PyTorch's unbatched form: input, offset and mask all without the batch axis.
    let unbatched_input = input.shape().len() == 3;
    let batched = |s: &[usize]| if unbatched_input { as_batched(s, 4) } else { s.to_vec() };
    let dg = params.validate_deform(
        &batched(input.shape()),
        weight.shape(),
        &batched(offset.shape()),
        mask.map(|m| batched(m.shape())).as_deref(),
        bias.map(|b| b.shape()),
    )?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &dg.conv.output_shape()), input.dtype())?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("deform_conv2d") });
    deform_conv2d_into(ctx, &mut encoder, input, weight, offset, mask, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records into the caller's encoder without submitting; writes `output`.
#[allow(clippy::too_many_arguments)]
pub fn deform_conv2d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    bias: Option<&Tensor>,
    params: &DeformConv2dParams,
    output: &Tensor,
) -> Result<DeformConv2dInfo> {
    let mut tensors = vec![(input, "input"), (offset, "offset"), (output, "output")];
    tensors.extend(mask.map(|m| (m, "mask")));
    if let Some(v) = unbatched(4, &tensors)? {
        let mask = mask.map(|_| &v[3]);
        return deform_conv2d_into(ctx, encoder, &v[0], weight, &v[1], mask, bias, params, &v[2]);
    }
    let dg = params.validate_deform(
        input.shape(),
        weight.shape(),
        offset.shape(),
        mask.map(|m| m.shape()),
        bias.map(|b| b.shape()),
    )?;
    let g = dg.conv;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(input, "input"), (weight, "weight"), (offset, "offset"), (output, "output")] {
        t.check_device(ctx, what)?;
    }
    check_binding(ctx, weight, "weight")?;
    for (t, what) in [(mask, "mask"), (bias, "bias")] {
        if let Some(t) = t {
            t.check_device(ctx, what)?;
        }
    }
    if let Some(b) = bias {
        check_binding(ctx, b, "bias")?;
    }
    // f16 storage: the implicit GEMM only (f16 loads and stores, f32 sampling and accumulation).
    let dtype = common_dtype(
        "deform_conv2d",
        input,
        &[(Some(weight), "weight"), (Some(offset), "offset"), (mask, "mask"), (bias, "bias"), (Some(output), "output")],
    )?;
    // Chosen for the whole batch; every piece of a split call runs it.
    let algorithm = choose_algorithm(ctx, params, &dg, dtype)?;
    let mut batched = vec![batch::input(input, "input"), batch::input(offset, "offset")];
    if let Some(m) = mask {
        batched.push(batch::input(m, "mask"));
    }
    batched.push(batch::output(output, "output"));
    let pieces = batch::pieces(ctx, "deform_conv2d", &batched)?;
    let mut info = DeformConv2dInfo { algorithm, geometry: dg, chunks: 0, workspace_bytes: 0 };
    batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
        let (x, off, m, out) = match t {
            [x, off, m, out] => (x, off, Some(m), out),
            [x, off, out] => (x, off, None, out),
            _ => return Err(Error::Internal("deform_conv2d pieces".into())),
        };
        let piece = record_deform_conv2d(ctx, encoder, algorithm, params, x, weight, off, m, bias, out)?;
        if info.chunks == 0 {
            info.chunks = piece.chunks;
            info.workspace_bytes = piece.workspace_bytes;
        }
        Ok(())
    })?;
    Ok(info)
}

/// The algorithm a deform_conv2d runs: `params.algorithm` unless `Auto` (f16:
/// `ImplicitGemm`; else [`auto_algorithm`]); `Im2colGemm` past the loop budget is replaced
/// (Auto) or refused (forced).
fn choose_algorithm(
    ctx: &GpuContext,
    params: &DeformConv2dParams,
    dg: &DeformGeometry,
    dtype: DType,
) -> Result<Algorithm> {
    let g = dg.conv;
    if dtype == DType::F16 && params.algorithm == Algorithm::Im2colGemm {
        return Err(Error::param("algorithm", "f16 storage runs implicit_gemm, not im2col_gemm"));
    }
    let algorithm = match params.algorithm {
        Algorithm::Auto if dtype == DType::F16 => Algorithm::ImplicitGemm,
        Algorithm::Auto => auto_algorithm(ctx, &g),
        a => a,
    };
    // deform_im2col.wgsl loops over the channels of an offset group in one invocation: past
    // the loop budget (some drivers cut loops short) Auto takes the implicit GEMM, whose K
    // runs in passes, and a forced im2col_gemm is an error rather than a wrong answer.
    let per_group = (g.c_in / dg.offset_groups) as u64;
    match algorithm {
        Algorithm::Im2colGemm if per_group + 1 > ctx.config().loop_budget as u64 => {
            if params.algorithm == Algorithm::Im2colGemm {
                return Err(Error::Unsupported(format!(
                    "im2col_gemm samples the {per_group} channels of an offset group in one loop, beyond the loop \
                     budget of {} (EngineConfig::loop_budget; some drivers stop longer loops early): implicit_gemm splits it",
                    ctx.config().loop_budget
                )));
            }
            Ok(Algorithm::ImplicitGemm)
        }
        a => Ok(a),
    }
}

/// Records `algorithm` over tensors that each fit one binding.
#[allow(clippy::too_many_arguments)]
fn record_deform_conv2d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    algorithm: Algorithm,
    params: &DeformConv2dParams,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<DeformConv2dInfo> {
    let dg = params.validate_deform(
        input.shape(),
        weight.shape(),
        offset.shape(),
        mask.map(|m| m.shape()),
        bias.map(|b| b.shape()),
    )?;
    let g = dg.conv;
    let act = params.activation;
    if algorithm == Algorithm::Im2colGemm {
        let plan = plan_chunks(ctx, &g)?;
        let unfold = Unfold::Deform { input, offset, mask, offset_groups: dg.offset_groups };
        ctx.scoped(|| encode_im2col_gemm(ctx, encoder, &g, &plan, act, unfold, weight, bias, output))??;
        return Ok(DeformConv2dInfo {
            algorithm: Algorithm::Im2colGemm,
            geometry: dg,
            chunks: plan.chunks,
            workspace_bytes: plan.cols as u64 * plan.rows as u64 * 4,
        });
    }
    ctx.scoped(|| -> Result<()> {
        let pixels = g.n * g.h_out * g.w_out;
        let p = GemmParams { offset_groups: dg.offset_groups, ..GemmParams::conv(&g, 0, pixels, act.alpha()) };
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&p);
        let uniforms = arena.finish(ctx)?;
        let dispatches = gemm::prepare_sampling(
            ctx,
            &uniforms,
            block,
            &p,
            GemmProblem::Deform,
            act,
            weight,
            whole(input),
            bias,
            output,
            gemm::Aux::Deform { offset, mask },
        )?;
        record(ctx, encoder, "deform_conv2d", &dispatches);
        Ok(())
    })??;
    Ok(DeformConv2dInfo { algorithm: Algorithm::ImplicitGemm, geometry: dg, chunks: 1, workspace_bytes: 0 })
}
