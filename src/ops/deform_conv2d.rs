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
use crate::kernels::{check_recorded, deform_im2col, record, whole, write_plan, Step, UniformArena};
use crate::ops::conv2d::{encode_im2col_gemm, im2col_gemm_steps, plan_chunks, Unfold};
use crate::ops::{as_batched, batch, channels, check_binding, common_dtype, returned_shape, unbatched};
use crate::params::{Algorithm, Conv2dGeometry, DeformConv2dParams, DeformGeometry};
use crate::tensor::{DType, Tensor};

/// What one deform_conv2d call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeformConv2dInfo {
    /// `ImplicitGemm` or `Im2colGemm`.
    pub algorithm: Algorithm,
    /// The validated conv's sizes and its number of offset groups.
    pub geometry: DeformGeometry,
    /// Column chunks of `Im2colGemm`'s workspace (`DeformConv2dPlan::chunks`).
    pub chunks: u32,
    /// Workspace bytes one chunk uses (0 for `ImplicitGemm`).
    pub workspace_bytes: u64,
    /// Bands of output rows per image: 1 unless one image of a tensor exceeds one storage
    /// binding (then `Im2colGemm` runs band by band, see [`deform_conv2d_into`]).
    pub row_bands: u32,
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

/// What one deform_conv2d call records, decided from the shapes, the dtype and the
/// parameters before any GPU object ([`plan_deform_conv2d`]; [`deform_conv2d_into`]
/// records it).
#[derive(Clone, Debug, PartialEq)]
pub struct DeformConv2dPlan {
    /// The validated conv's sizes and its number of offset groups.
    pub geometry: DeformGeometry,
    /// The algorithm that runs (never `Auto`).
    pub algorithm: Algorithm,
    /// Column chunks of `Im2colGemm`'s workspace (of the first call of a split one).
    pub chunks: u32,
    /// Workspace bytes one chunk uses (0 for `ImplicitGemm`).
    pub workspace_bytes: u64,
    /// Pieces of the batch run one after another; 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Bands of output rows per image ([`DeformConv2dInfo::row_bands`]).
    pub row_bands: u32,
    /// Chunks of output channels (a weight beyond one binding); 1 otherwise.
    pub channel_chunks: u32,
    /// Every launch, in recording order (a split call's each note says which part).
    pub steps: Vec<Step>,
}

impl std::fmt::Display for DeformConv2dPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry.conv;
        let input = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
        let split = match (self.batch_pieces, self.row_bands, self.channel_chunks) {
            (_, _, c) if c > 1 => format!("{c} chunks of output channels"),
            (_, b, _) if b > 1 => format!("each image in {b} row bands"),
            (p, _, _) if p > 1 => format!("{p} batch pieces"),
            _ => "one call".to_string(),
        };
        let chunking = format_args!("{} chunks", self.chunks);
        let algorithm = (self.algorithm.name(), split.as_str());
        write_plan(
            f,
            "deform_conv2d",
            &input,
            &g.output_shape(),
            algorithm,
            self.workspace_bytes,
            chunking,
            &self.steps,
        )
    }
}

/// Plans a deform_conv2d of these shapes (batched, or all unbatched) stored as `dtype`:
/// validates, picks the algorithm and lists the launches, split over the batch, into bands
/// of output rows or into chunks of output channels where a tensor exceeds one storage
/// binding. Creates no GPU object. Errors as [`deform_conv2d`].
#[allow(clippy::too_many_arguments)]
pub fn plan_deform_conv2d(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    offset: &[usize],
    mask: Option<&[usize]>,
    bias: Option<&[usize]>,
    dtype: DType,
    params: &DeformConv2dParams,
) -> Result<DeformConv2dPlan> {
    let unbatched = input.len() == 3;
    let batched = |s: &[usize]| if unbatched { as_batched(s, 4) } else { s.to_vec() };
    let (x, off, m) = (batched(input), batched(offset), mask.map(batched));
    let dg = params.validate_deform(&x, weight, &off, m.as_deref(), bias)?;
    let g = dg.conv;
    let (n, elem, max) = (g.n as usize, dtype.size(), ctx.max_binding());
    let mut plan = DeformConv2dPlan {
        geometry: dg,
        algorithm: Algorithm::Auto,
        chunks: 0,
        workspace_bytes: 0,
        batch_pieces: 1,
        row_bands: 1,
        channel_chunks: 1,
        steps: Vec::new(),
    };
    let out = g.output_shape();
    let per_image = |s: &[usize]| (s.iter().product::<usize>() / n.max(1)) as u64 * elem;
    let weight_bytes = weight.iter().product::<usize>() as u64 * elem;
    let beyond = [&x, &off, &out.to_vec()].into_iter().chain(m.as_ref()).any(|s| per_image(s) > max);
    if n > 0 && weight_bytes <= max && beyond {
        let BandLayout { algorithm, rows, per_chunk } = band_layout(ctx, params, &dg, dtype, m.is_some())?;
        let (ho, c_in) = (g.h_out as u64, g.c_in as u64);
        for i in 0..n {
            for oy0 in (0..ho).step_by(rows as usize) {
                let r = rows.min(ho - oy0);
                let gb = Conv2dGeometry { n: 1, h_out: r as u32, ..g };
                let chunks = plan_chunks(ctx, &gb.unfolded())?;
                let what = format!("image {i}, rows {oy0}..{}", oy0 + r);
                let unfold = |col0, cols| -> Result<Vec<Step>> {
                    let ip = crate::kernels::im2col::Im2colParams::new(&gb, col0, cols);
                    (0..c_in)
                        .step_by(per_chunk as usize)
                        .map(|c0| {
                            let note = format!(
                                "{what}: columns {col0}..{}, channels {c0}..{}",
                                col0 + cols,
                                (c0 + per_chunk).min(c_in)
                            );
                            deform_im2col::step(ctx, &ip, dg.offset_groups, m.is_some(), note)
                        })
                        .collect()
                };
                let steps = im2col_gemm_steps(
                    ctx,
                    &gb.unfolded(),
                    &chunks,
                    params.activation,
                    bias.is_some(),
                    crate::Layout::Contiguous,
                    unfold,
                )?;
                plan.steps.extend(steps.into_iter().map(|mut s| {
                    if !s.note.starts_with(&what) {
                        s.note = format!("{what}: {}", s.note);
                    }
                    s
                }));
                if plan.chunks == 0 {
                    (plan.chunks, plan.workspace_bytes) = (chunks.chunks, chunks.cols as u64 * chunks.rows as u64 * 4);
                }
            }
        }
        (plan.algorithm, plan.batch_pieces, plan.row_bands) = (algorithm, n as u32, ho.div_ceil(rows) as u32);
        return Ok(plan);
    }
    plan.algorithm = choose_algorithm(ctx, params, &dg, dtype)?;
    if n == 0 {
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    let forced = DeformConv2dParams { algorithm: plan.algorithm, ..*params };
    // (input, weight, offset, mask, bias, params, note) of each call of a split one
    type Part =
        (Vec<usize>, Vec<usize>, Vec<usize>, Option<Vec<usize>>, Option<Vec<usize>>, DeformConv2dParams, String);
    let mut parts: Vec<Part> = Vec::new();
    let with = |first: &[usize], rest: &[usize]| -> Vec<usize> { first.iter().chain(rest).copied().collect() };
    if weight_bytes > max {
        check_chunk_companions(weight, weight_bytes, per_image(&off), m.as_ref().map(|m| per_image(m)), max)?;
        channels::check_images("deform_conv2d", weight, weight_bytes, per_image(&x), per_image(&out), max)?;
        let row = weight[1..].iter().product::<usize>() as u64 * elem;
        let (groups, c_in, c_out) = (g.groups as u64, g.c_in as u64, g.c_out as u64);
        let chunks = channels::ranges("deform_conv2d", groups, c_in, c_out, row, elem, max, chunk_limits(&dg))?;
        let taps = (g.kh * g.kw) as usize;
        for c in &chunks {
            let (og0, og1) = chunk_offset_groups(&dg, weight, c, max)?;
            let ogs = (og1 - og0) as usize;
            let p = DeformConv2dParams { groups: c.groups as u32, ..forced };
            for i in 0..n {
                let note = format!("channels {}..{}, image {i}", c.c_out0, c.c_out0 + c.c_out);
                let xo = with(&[1, c.c_in as usize], &x[2..]);
                let wo = with(&[c.c_out as usize], &weight[1..]);
                let oo = with(&[1, ogs * 2 * taps], &off[2..]);
                let mo = m.as_ref().map(|m| with(&[1, ogs * taps], &m[2..]));
                parts.push((xo, wo, oo, mo, bias.map(|_| vec![c.c_out as usize]), p, note));
            }
        }
        plan.batch_pieces = n as u32;
        plan.channel_chunks = chunks.len() as u32;
    } else {
        let mut tensors = vec![("input", &x[..], per_image(&x)), ("offset", &off[..], per_image(&off))];
        if let Some(m) = &m {
            tensors.push(("mask", m, per_image(m)));
        }
        tensors.push(("output", &out[..], per_image(&out)));
        let pieces = batch::plan(ctx, "deform_conv2d", n, &tensors)?;
        if pieces.pieces > 1 {
            for n0 in (0..n).step_by(pieces.per_piece) {
                let len = pieces.per_piece.min(n - n0);
                let note = format!("images {n0}..{}", n0 + len);
                let mo = m.as_ref().map(|m| with(&[len], &m[1..]));
                parts.push((
                    with(&[len], &x[1..]),
                    weight.to_vec(),
                    with(&[len], &off[1..]),
                    mo,
                    bias.map(<[usize]>::to_vec),
                    forced,
                    note,
                ));
            }
            plan.batch_pieces = pieces.pieces as u32;
        }
    }
    if parts.is_empty() {
        let act = params.activation;
        if plan.algorithm == Algorithm::Im2colGemm {
            let chunks = plan_chunks(ctx, &g.unfolded())?;
            let unfold = |col0, cols| {
                let ip = crate::kernels::im2col::Im2colParams::new(&g, col0, cols);
                let note = format!("columns {col0}..{}", col0 + cols);
                Ok(vec![deform_im2col::step(ctx, &ip, dg.offset_groups, m.is_some(), note)?])
            };
            plan.steps =
                im2col_gemm_steps(ctx, &g.unfolded(), &chunks, act, bias.is_some(), crate::Layout::Contiguous, unfold)?;
            (plan.chunks, plan.workspace_bytes) = (chunks.chunks, chunks.cols as u64 * chunks.rows as u64 * 4);
        } else {
            let pixels = g.n * g.h_out * g.w_out;
            let mut p = GemmParams::conv(&g, 0, pixels, act.alpha());
            p.deform.offset_groups = dg.offset_groups;
            let ov = gemm::overrides(GemmProblem::Deform, act, bias.is_some(), &gemm::Aux::None)
                .flag("HAS_MASK", m.is_some());
            let input_bytes = x.iter().product::<usize>() as u64 * elem;
            let gplan = gemm::plan(
                ctx,
                &p,
                GemmProblem::Deform,
                ov,
                dtype == DType::F16,
                Some((0, input_bytes)),
                g.output_numel(),
            )?;
            plan.steps = gplan.steps("implicit_gemm");
            plan.chunks = 1;
        }
        return Ok(plan);
    }
    for (k, (xs, ws, os, ms, bs, p, what)) in parts.into_iter().enumerate() {
        let part = plan_deform_conv2d(ctx, &xs, &ws, &os, ms.as_deref(), bs.as_deref(), dtype, &p)?;
        if k == 0 {
            (plan.chunks, plan.workspace_bytes) = (part.chunks, part.workspace_bytes);
        }
        plan.steps.extend(part.steps.into_iter().map(|mut s| {
            s.note = if s.note.is_empty() { what.clone() } else { format!("{what}: {}", s.note) };
            s
        }));
    }
    Ok(plan)
}

/// Records into the caller's encoder without submitting; writes `output`.
///
/// Tensors beyond one storage binding: the batch runs in pieces of whole images; when one
/// image of the input, offset, mask or output exceeds a binding, every image runs
/// `Im2colGemm` in bands of output rows (`Auto` picks it; a forced `ImplicitGemm` and f16
/// tensors are [`Error::TooLarge`]), the input image bound whole or, past one binding, in
/// chunks of input channels.
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
    let plan = plan_deform_conv2d(
        ctx,
        input.shape(),
        weight.shape(),
        offset.shape(),
        mask.map(|m| m.shape()),
        bias.map(|b| b.shape()),
        dtype,
        params,
    )?;
    // Every piece, band or chunk runs the algorithm chosen for the whole call.
    let forced = DeformConv2dParams { algorithm: plan.algorithm, ..*params };
    let recorded = if plan.channel_chunks > 1 {
        deform_by_channels(ctx, encoder, &forced, &dg, dtype, input, weight, offset, mask, bias, output)?
    } else if plan.row_bands > 1 {
        deform_in_bands(ctx, encoder, &forced, &dg, dtype, input, weight, offset, mask, bias, output)?
    } else {
        let mut batched = vec![batch::input(input, "input"), batch::input(offset, "offset")];
        if let Some(m) = mask {
            batched.push(batch::input(m, "mask"));
        }
        batched.push(batch::output(output, "output"));
        let pieces = batch::pieces(ctx, "deform_conv2d", &batched)?;
        let mut recorded = 0;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            let (x, off, m, out) = match t {
                [x, off, m, out] => (x, off, Some(m), out),
                [x, off, out] => (x, off, None, out),
                _ => return Err(Error::Internal("deform_conv2d pieces".into())),
            };
            recorded += record_deform_conv2d(ctx, encoder, &forced, x, weight, off, m, bias, out)?;
            Ok(())
        })?;
        recorded
    };
    check_recorded("deform_conv2d", recorded, &plan.steps)?;
    Ok(DeformConv2dInfo {
        algorithm: plan.algorithm,
        geometry: dg,
        chunks: plan.chunks,
        workspace_bytes: plan.workspace_bytes,
        row_bands: plan.row_bands,
    })
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

/// Records `params.algorithm` (`ImplicitGemm` or `Im2colGemm`) over tensors that each fit
/// one binding; returns the number of launches.
#[allow(clippy::too_many_arguments)]
fn record_deform_conv2d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    params: &DeformConv2dParams,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<usize> {
    let dg = params.validate_deform(
        input.shape(),
        weight.shape(),
        offset.shape(),
        mask.map(|m| m.shape()),
        bias.map(|b| b.shape()),
    )?;
    let g = dg.conv;
    let act = params.activation;
    if params.algorithm == Algorithm::Im2colGemm {
        let (u, inputs) = (g.unfolded(), [(0, input.clone())]);
        let plan = plan_chunks(ctx, &u)?;
        let offset_groups = dg.offset_groups;
        let unfold = Unfold::Deform { inputs: &inputs, offset, mask, offset_groups, row0: 0, geometry: g };
        return ctx.scoped(|| encode_im2col_gemm(ctx, encoder, &u, &plan, act, unfold, weight, bias, output))?;
    }
    ctx.scoped(|| -> Result<usize> {
        let pixels = g.n * g.h_out * g.w_out;
        let mut p = GemmParams::conv(&g, 0, pixels, act.alpha());
        p.deform.offset_groups = dg.offset_groups;
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
        Ok(dispatches.len())
    })?
}

/// How [`deform_in_bands`] cuts an image: the algorithm (`Im2colGemm`), output rows per
/// band, input channels per chunk (all of them where the image fits one binding).
struct BandLayout {
    algorithm: Algorithm,
    rows: u64,
    per_chunk: u64,
}

fn band_layout(
    ctx: &GpuContext,
    params: &DeformConv2dParams,
    dg: &DeformGeometry,
    dtype: DType,
    has_mask: bool,
) -> Result<BandLayout> {
    let g = dg.conv;
    let max = ctx.max_binding();
    let beyond = format!("deform_conv2d: one image beyond one storage binding ({max} bytes) runs im2col_gemm in bands");
    if dtype == DType::F16 {
        return Err(Error::TooLarge(format!("{beyond}, which has no f16 path")));
    }
    if params.algorithm == Algorithm::ImplicitGemm {
        return Err(Error::TooLarge(format!(
            "{beyond}; implicit_gemm binds whole images (ask for auto or im2col_gemm)"
        )));
    }
    let forced = DeformConv2dParams { algorithm: Algorithm::Im2colGemm, ..*params };
    let algorithm = choose_algorithm(ctx, &forced, dg, dtype)?;
    let (ho, wo, elem) = (g.h_out as u64, g.w_out as u64, 4u64);
    let (taps, groups) = (g.kh as u64 * g.kw as u64, dg.offset_groups as u64);
    let widest = (2 * groups * taps).max(g.c_out as u64).max(if has_mask { groups * taps } else { 0 });
    let rows = (max / (widest * wo * elem)).min(ho);
    if rows == 0 {
        return Err(Error::TooLarge(format!(
            "{beyond}, but one output row of {widest} channels × {wo} pixels exceeds one binding"
        )));
    }
    let (plane, c_in) = (g.h as u64 * g.w as u64 * elem, g.c_in as u64);
    let mut per_chunk = (max / plane).min(c_in);
    if per_chunk == 0 {
        return Err(Error::TooLarge(format!(
            "{beyond}, but one input channel plane ({plane} bytes) exceeds one binding"
        )));
    }
    // Chunks that start aligned within an image, where that still fits.
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    let step = align / batch::gcd(plane, align);
    if per_chunk < c_in && step <= per_chunk {
        per_chunk -= per_chunk % step;
    }
    Ok(BandLayout { algorithm, rows, per_chunk })
}

/// deform_conv2d when one image of a tensor exceeds one storage binding: image by image,
/// `Im2colGemm` in bands of output rows. A band's offset and mask rows are copied channel
/// by channel into scratch tensors `[1, C, rows, Wo]`, its output written to a scratch
/// `[1, Cout, rows, Wo]` and copied out, and the deformable unfold counts rows from the
/// band's first (`row0`). The samples may reach any input row, so the input image is bound
/// whole: in place where its offset is aligned (else copied to scratch), in chunks of input
/// channels where it exceeds one binding, one unfold launch per chunk, each writing its
/// channels' rows of the same column matrix. Every output is the sum one `Im2colGemm` call
/// forms. Returns the number of launches.
#[allow(clippy::too_many_arguments)]
fn deform_in_bands(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    params: &DeformConv2dParams,
    dg: &DeformGeometry,
    dtype: DType,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<usize> {
    let g = dg.conv;
    let BandLayout { rows, per_chunk, .. } = band_layout(ctx, params, dg, dtype, mask.is_some())?;
    let (ho, wo, elem) = (g.h_out as u64, g.w_out as u64, 4u64);
    let taps = g.kh as u64 * g.kw as u64;
    let groups = dg.offset_groups as u64;
    let (off_c, mask_c, c_out) = (2 * groups * taps, groups * taps, g.c_out as u64);
    let (plane, c_in) = (g.h as u64 * g.w as u64 * elem, g.c_in as u64);
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    let scratch = |label, bytes: u64| ctx.create_buffer(label, bytes.next_multiple_of(4), crate::tensor::TENSOR_USAGE);
    let tensor = |buf: &wgpu::Buffer, shape: &[usize]| Tensor::from_buffer_as(ctx, buf.clone(), shape, dtype);
    let off_band = scratch("wgconv.deform_band_offset", off_c * rows * wo * elem)?;
    let mask_band = mask.map(|_| scratch("wgconv.deform_band_mask", mask_c * rows * wo * elem)).transpose()?;
    let out_band = scratch("wgconv.deform_band_output", c_out * rows * wo * elem)?;
    let mut staged: Vec<Option<wgpu::Buffer>> = vec![None; c_in.div_ceil(per_chunk) as usize];
    let (h, w) = (g.h as usize, g.w as usize);
    let mut recorded = 0;
    // Rows oy0 .. oy0 + r of each of `channels` planes of image i of `t` (Ho·Wo each) to or
    // from a packed band `[channels, r, Wo]`.
    let band_copy = |encoder: &mut wgpu::CommandEncoder, t: &Tensor, band: &wgpu::Buffer, i, channels, oy0, r, into| {
        for c in 0..channels {
            let at = t.offset() + ((i * channels + c) * ho + oy0) * wo * elem;
            let (len, b_at) = (r * wo * elem, c * r * wo * elem);
            if into {
                encoder.copy_buffer_to_buffer(t.buffer(), at, band, b_at, len);
            } else {
                encoder.copy_buffer_to_buffer(band, b_at, t.buffer(), at, len);
            }
        }
    };
    for i in 0..g.n as u64 {
        let mut inputs = Vec::with_capacity(staged.len());
        for (k, c0) in (0..c_in).step_by(per_chunk as usize).enumerate() {
            let cc = per_chunk.min(c_in - c0);
            let at = input.offset() + (i * c_in + c0) * plane;
            let shape = [1, cc as usize, h, w];
            let x = if at % align == 0 {
                tensor(input.buffer(), &shape)?.with_offset(at)
            } else {
                if staged[k].is_none() {
                    staged[k] = Some(scratch("wgconv.deform_input_chunk", cc * plane)?);
                }
                let buf = staged[k].as_ref().expect("created above");
                encoder.copy_buffer_to_buffer(input.buffer(), at, buf, 0, cc * plane);
                tensor(buf, &shape)?
            };
            inputs.push((c0 as u32, x));
        }
        for oy0 in (0..ho).step_by(rows as usize) {
            let r = rows.min(ho - oy0);
            band_copy(encoder, offset, &off_band, i, off_c, oy0, r, true);
            if let (Some(m), Some(mb)) = (mask, &mask_band) {
                band_copy(encoder, m, mb, i, mask_c, oy0, r, true);
            }
            let band = |c: u64| [1, c as usize, r as usize, wo as usize];
            let (off_t, out_t) = (tensor(&off_band, &band(off_c))?, tensor(&out_band, &band(c_out))?);
            let mask_t = mask_band.as_ref().map(|mb| tensor(mb, &band(mask_c))).transpose()?;
            let gb = Conv2dGeometry { n: 1, h_out: r as u32, ..g };
            let u = gb.unfolded();
            let plan = plan_chunks(ctx, &u)?;
            let unfold = Unfold::Deform {
                inputs: &inputs,
                offset: &off_t,
                mask: mask_t.as_ref(),
                offset_groups: dg.offset_groups,
                row0: oy0 as u32,
                geometry: gb,
            };
            recorded += ctx.scoped(|| {
                encode_im2col_gemm(ctx, encoder, &u, &plan, params.activation, unfold, weight, bias, &out_t)
            })??;
            band_copy(encoder, output, &out_band, i, c_out, oy0, r, false);
        }
    }
    Ok(recorded)
}

/// Errors unless one image of the offsets (and mask) fits one binding beside a weight that
/// does not (the chunks copy the offset groups they read, one image at a time).
fn check_chunk_companions(
    weight: &[usize],
    weight_bytes: u64,
    offset_image: u64,
    mask_image: Option<u64>,
    max: u64,
) -> Result<()> {
    if offset_image > max || mask_image.is_some_and(|m| m > max) {
        return Err(Error::TooLarge(format!(
            "deform_conv2d: the weight {weight:?} ({weight_bytes} bytes) and one image of the offsets or mask exceed \
             one storage binding ({max} bytes) together; only one of them may"
        )));
    }
    Ok(())
}

/// Chunks of whole groups hold whole offset groups where the weight groups nest in them.
fn chunk_limits(dg: &DeformGeometry) -> channels::Limits {
    let g = dg.conv;
    let group_step = if g.groups % dg.offset_groups == 0 { (g.groups / dg.offset_groups) as u64 } else { 1 };
    channels::Limits { most: None, group_step }
}

/// The offset groups `og0 .. og1` a chunk's input channels belong to: whole ones, or part of
/// one; an error where the chunk cuts across offset groups.
fn chunk_offset_groups(dg: &DeformGeometry, weight: &[usize], c: &channels::Range, max: u64) -> Result<(u64, u64)> {
    let per_group = (dg.conv.c_in / dg.offset_groups) as u64;
    let (ci0, ci) = (c.c_in0, c.c_in);
    let (og0, og1) = (ci0 / per_group, (ci0 + ci - 1) / per_group + 1);
    if !(ci0 % per_group == 0 && ci % per_group == 0 || og1 - og0 == 1) {
        return Err(Error::TooLarge(format!(
            "deform_conv2d: a chunk of output channels of the weight {weight:?} (beyond one storage binding, {max} \
             bytes) reads input channels {ci0}..{}, across offset groups of {per_group} channels",
            ci0 + ci
        )));
    }
    Ok((og0, og1))
}

/// deform_conv2d when the weight exceeds one storage binding: chunks of output channels,
/// one image at a time ([`crate::ops::channels`]), each with the offsets and mask of the
/// offset groups its input channels belong to (copied into scratch tensors), with the
/// algorithm chosen for the whole call: bit-identical. A chunk's input channels must be
/// whole offset groups or lie within one: an error where the offset groups cut the weight
/// groups (the group counts divide neither way). Returns the number of launches.
#[allow(clippy::too_many_arguments)]
fn deform_by_channels(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    params: &DeformConv2dParams,
    dg: &DeformGeometry,
    dtype: DType,
    input: &Tensor,
    weight: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    bias: Option<&Tensor>,
    output: &Tensor,
) -> Result<usize> {
    let g = dg.conv;
    let max = ctx.max_binding();
    let per_image = |t: &Tensor| t.byte_len() / g.n as u64;
    let (taps, groups) = (g.kh as u64 * g.kw as u64, dg.offset_groups as u64);
    let (hw_out, elem) = (g.h_out as u64 * g.w_out as u64, dtype.size());
    let scratch =
        |label, t: &Tensor| ctx.create_buffer(label, per_image(t).next_multiple_of(4), crate::tensor::TENSOR_USAGE);
    let off_s = scratch("wgconv.chunk_offset", offset)?;
    let mask_s = mask.map(|m| scratch("wgconv.chunk_mask", m)).transpose()?;
    let mut recorded = 0;
    let (layout, limits) = (channels::Layout::OutIn, chunk_limits(dg));
    channels::for_each_chunk(
        ctx,
        encoder,
        "deform_conv2d",
        layout,
        g.groups,
        input,
        weight,
        bias,
        output,
        limits,
        |encoder, c| {
            let (og0, og1) = chunk_offset_groups(dg, weight.shape(), &c.range, max)?;
            // The chunk's offset groups: channels og0·k·(2 or 1) .. of image i, one run each.
            let i = c.image as u64;
            let part = |t: &Tensor, buf: &wgpu::Buffer, per: u64, encoder: &mut wgpu::CommandEncoder| {
                let at = t.offset() + (i * groups + og0) * per * taps * hw_out * elem;
                let len = (og1 - og0) * per * taps * hw_out * elem;
                encoder.copy_buffer_to_buffer(t.buffer(), at, buf, 0, len.next_multiple_of(4));
                let shape = [1, ((og1 - og0) * per * taps) as usize, g.h_out as usize, g.w_out as usize];
                Tensor::from_buffer_as(ctx, buf.clone(), &shape, dtype)
            };
            let off = part(offset, &off_s, 2, encoder)?;
            let m = match (mask, &mask_s) {
                (Some(m), Some(buf)) => Some(part(m, buf, 1, encoder)?),
                _ => None,
            };
            let p = DeformConv2dParams { groups: c.groups, ..*params };
            recorded += record_deform_conv2d(ctx, encoder, &p, c.input, c.weight, &off, m.as_ref(), c.bias, c.output)?;
            Ok(())
        },
    )?;
    Ok(recorded)
}
