//! conv_transpose2d (PyTorch `torch.nn.functional.conv_transpose2d` semantics).
//!
//! Two algorithms, neither a scatter; each output element is written by exactly one
//! invocation, so results are bit-identical run to run (a scatter would need float atomics).
//!
//! `Auto` ([`auto_algorithm`]) runs `ImplicitGemm` on every adapter.
//!
//! `ImplicitGemm`: output row oy only receives the taps i with
//! i·dh ≡ oy + pt (mod sh). Split the output into its sh·sw phases (oy mod sh, ox mod sw): in
//! one phase those taps are i0, i0 + step, …, step = sh / gcd(sh, dh), and they read input rows
//! that advance one by one with the phase's own rows, so each phase is an ordinary implicit
//! GEMM (`A_PHASE_TAPS` picks the phase's taps out of the weight, `B_TRANSPOSED` gathers the input),
//! all phases and groups in one dispatch. No zero is inserted, no multiply is wasted (but on
//! taps past the kernel when step ∤ kh), and no workspace is used. One caveat of any GEMM
//! formulation: an infinite weight meeting a tap that falls outside the input gives NaN
//! (0·∞) where the scatter that defines the op adds nothing; finite weights are exact.
//!
//! `GemmCol2im`: per chunk of images, `gemm.wgsl`
//! computes `col[g] = W[g]ᵀ · X[g]` (`A_MODE` transposed: the weight `[Cin, Cout/G, kh, kw]`
//! read as `[(Cout/G)·kh·kw, Cin/G]`; `B_MODE` pointwise: the input image as
//! `[Cin/G, H·W]`), i.e. every input pixel's contribution to every tap of every output
//! channel; then `col2im.wgsl` gathers, for each output element, the taps that land on it.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::col2im::Col2imParams;
use crate::kernels::gemm::{GemmParams, GemmProblem};
use crate::kernels::{fold_grid, gemm, optional, range, record, whole, Dispatch, UniformArena};
use crate::ops::{check_binding, common_dtype};
use crate::params::{Activation, Algorithm, ConvTranspose2dGeometry, ConvTranspose2dParams};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{DType, Tensor};

/// What one conv_transpose2d call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dInfo {
    /// `ImplicitGemm` or `GemmCol2im` (never `Auto`).
    pub algorithm: Algorithm,
    pub geometry: ConvTranspose2dGeometry,
    /// Chunks of images the work was split into.
    pub chunks: u32,
    /// Images per chunk (the last may hold fewer).
    pub images_per_chunk: u32,
    /// Workspace bytes one chunk uses.
    pub workspace_bytes: u64,
}

/// Transposed convolution, submitted; returns `[N, Cout, Ho, Wo]`.
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
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty_as(ctx, &g.output_shape(), input.dtype())?;
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

/// What `Algorithm::Auto` runs for `g` with `dtype` tensors on this context: `ImplicitGemm`
/// (the output phases: no workspace, no col2im pass) on every adapter: ahead of `GemmCol2im`
/// on every shape measured, CPU adapters included (dcgan_up on lavapipe: 16.3 against 22.7
/// ms; the others in BENCHMARKS.md, "Why Auto picks what it picks").
pub fn auto_algorithm(_ctx: &GpuContext, _g: &ConvTranspose2dGeometry, _dtype: DType) -> Algorithm {
    Algorithm::ImplicitGemm
}

/// Records into the caller's encoder without submitting; writes `output`.
pub fn conv_transpose2d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &ConvTranspose2dParams,
    output: &Tensor,
) -> Result<ConvTranspose2dInfo> {
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(input, "input"), (weight, "weight"), (output, "output")] {
        t.check_device(ctx, what)?;
        check_binding(ctx, t, what)?;
    }
    if let Some(b) = bias {
        b.check_device(ctx, "bias")?;
    }
    // f16 storage: the output-phase implicit GEMM only (f16 loads and stores, f32 accumulation).
    let dtype =
        common_dtype("conv_transpose2d", input, &[(Some(weight), "weight"), (bias, "bias"), (Some(output), "output")])?;
    if dtype == DType::F16 && params.algorithm == Algorithm::GemmCol2im {
        return Err(Error::param("algorithm", "f16 storage runs implicit_gemm, not gemm_col2im"));
    }
    let algorithm = match params.algorithm {
        Algorithm::Auto => auto_algorithm(ctx, &g, dtype),
        a => a,
    };
    // col2im.wgsl gathers each output over every kernel tap in one loop nest: past the loop
    // budget (some drivers cut loops short) it is refused rather than wrong; the output
    // phases split their K into passes.
    let col2im_turns = g.kh as u64 * (1 + g.kw as u64);
    if algorithm == Algorithm::GemmCol2im && col2im_turns > ctx.config().loop_budget as u64 {
        return Err(Error::Unsupported(format!(
            "gemm_col2im gathers each output over {}x{} taps in one loop, beyond the loop budget of {} \
             (EngineConfig::loop_budget; some drivers stop longer loops early): implicit_gemm splits it",
            g.kh,
            g.kw,
            ctx.config().loop_budget
        )));
    }
    if algorithm != Algorithm::GemmCol2im {
        let p = phase_gemm_params(&g, params.activation.alpha());
        ctx.scoped(|| -> Result<()> {
            let mut arena = UniformArena::new(ctx);
            let block = arena.push(&p);
            let uniforms = arena.finish(ctx)?;
            let dispatches = gemm::prepare(
                ctx,
                &uniforms,
                block,
                &p,
                GemmProblem::TransposedPhases,
                params.activation,
                weight,
                whole(input),
                bias,
                output,
            )?;
            record(encoder, "conv_transpose2d", &dispatches);
            Ok(())
        })??;
        return Ok(ConvTranspose2dInfo {
            algorithm: Algorithm::ImplicitGemm,
            geometry: g,
            chunks: 1,
            images_per_chunk: g.n,
            workspace_bytes: 0,
        });
    }
    let per_image = col_bytes_per_image(&g);
    let budget = ctx.config().workspace_budget.min(ctx.max_binding());
    let per_chunk = budget / per_image;
    if per_chunk == 0 {
        return Err(Error::TooLarge(format!(
            "one image's column matrix is {per_image} bytes (Cout·kh·kw·H·W·4) but the workspace budget is {budget}"
        )));
    }
    let images = per_chunk.min(g.n as u64) as u32;
    let chunks = g.n.div_ceil(images);
    let info = ConvTranspose2dInfo {
        algorithm: Algorithm::GemmCol2im,
        geometry: g,
        chunks,
        images_per_chunk: images,
        workspace_bytes: per_image * images as u64,
    };
    let act = params.activation;
    ctx.scoped(|| -> Result<()> {
        let workspace = ctx.workspace(info.workspace_bytes)?;
        let hw = g.h * g.w;
        let (m, k) = (g.c_out_per_group() * g.kh * g.kw, g.c_in_per_group());
        let mut arena = UniformArena::new(ctx);
        let mut blocks = Vec::new();
        for c in 0..chunks {
            let img0 = c * images;
            let imgs = images.min(g.n - img0);
            let gp = GemmParams {
                c_in: g.c_in,
                img0,
                ..GemmParams::new(m, imgs * hw, k, g.groups, hw, img0 * hw, g.c_out * g.kh * g.kw * hw)
            };
            let cp = Col2imParams {
                c_out: g.c_out,
                h: g.h,
                w: g.w,
                kh: g.kh,
                kw: g.kw,
                stride_h: g.stride[0],
                stride_w: g.stride[1],
                dil_h: g.dilation[0],
                dil_w: g.dilation[1],
                pad_top: g.pads.top,
                pad_left: g.pads.left,
                h_out: g.h_out,
                w_out: g.w_out,
                img0,
                total: imgs * g.c_out * g.h_out * g.w_out,
                alpha_bits: act.alpha().to_bits(),
            };
            blocks.push((gp, arena.push(&gp), cp, arena.push(&cp), per_image * imgs as u64));
        }
        let uniforms = arena.finish(ctx)?;
        let (col2im, bgl) = ctx.pipeline(
            ShaderId::Col2im,
            &Overrides::none().flag("HAS_BIAS", bias.is_some()).with("ACT", act.code() as f64),
        )?;
        let mut dispatches = Vec::new();
        for (gp, gb, cp, cb, bytes) in &blocks {
            let col = range(&workspace, (0, *bytes));
            dispatches.extend(gemm::prepare(
                ctx,
                &uniforms,
                *gb,
                gp,
                GemmProblem::TransposedCols,
                Activation::None,
                weight,
                whole(input),
                None,
                &col_tensor(ctx, &workspace, *bytes)?,
            )?);
            let bind_group = ctx.bind_group(
                ShaderId::Col2im,
                &bgl,
                &[range(&uniforms, *cb), col, optional(ctx, bias), whole(output)],
            );
            let grid = fold_grid((cp.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
            dispatches.push(Dispatch { pipeline: col2im.clone(), bind_group, grid });
        }
        record(encoder, "conv_transpose2d", &dispatches);
        Ok(())
    })??;
    Ok(info)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
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
    GemmParams {
        alpha_bits: alpha.to_bits(),
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
        w_out: wq,
        out_h: g.h_out,
        out_w: g.w_out,
        taps_y,
        taps_x,
        step_y,
        step_x,
        dq_y: dh / gy,
        dq_x: dw / gx,
        ..base
    }
}

/// The workspace as a tensor of `bytes / 4` floats (the GEMM's C binding).
fn col_tensor(ctx: &GpuContext, workspace: &wgpu::Buffer, bytes: u64) -> Result<Tensor> {
    Tensor::from_buffer(ctx, workspace.clone(), &[(bytes / 4) as usize])
}
