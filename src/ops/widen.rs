//! f16 storage for the ops whose kernels are f32 only (conv3d and its backward pass,
//! conv_transpose3d, separable_conv2d, deform_conv2d_backward, and conv2d with a padding
//! mode): each f16 input is widened into an f32 copy (exact: every f16 is an f32), the op
//! runs on the copies, and each result is narrowed into the caller's f16 tensor (one
//! rounding, as the f16 kernels' own stores). The numerics of the f16 kernels (f16 values in,
//! f32 arithmetic, one f16 rounding out), at the cost of a pass per tensor each way and f32
//! copies of every tensor, made per call.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::cast::{self, CastParams};
use crate::kernels::{range, record, whole, Step, UniformArena};
use crate::tensor::{DType, Tensor};

/// Runs `run` on f32 copies of `inputs` (each f16, or `None`) that fill f32 copies of
/// `outputs`, then narrows those into `outputs`. `op` names the op in errors.
///
/// Errors: [`Error::TooLarge`] when a tensor's f32 copy exceeds one storage binding; those of
/// `run`.
pub(crate) fn with_f32<R>(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    op: &str,
    inputs: &[Option<&Tensor>],
    outputs: &[Option<&Tensor>],
    run: impl FnOnce(&mut wgpu::CommandEncoder, &[Option<Tensor>], &[Option<Tensor>]) -> Result<R>,
) -> Result<R> {
    let max = ctx.max_binding();
    let wide = |t: &Tensor| -> Result<Tensor> {
        let bytes = t.numel() as u64 * 4;
        if bytes > max {
            return Err(Error::TooLarge(format!(
                "{op} stores f16 through f32 copies (its kernels are f32 only); a {:?} tensor as f32 is {bytes} \
                 bytes, beyond one storage binding ({max} bytes) on this device",
                t.shape()
            )));
        }
        // an elementwise copy: the same layout
        Tensor::empty_as(ctx, t.shape(), DType::F32)?.with_layout(t.layout())
    };
    let copies = |ts: &[Option<&Tensor>]| -> Result<Vec<Option<Tensor>>> {
        ts.iter().map(|t| t.map(wide).transpose()).collect()
    };
    let (ins, outs) = (copies(inputs)?, copies(outputs)?);
    let widened: Vec<(Tensor, Tensor)> =
        inputs.iter().zip(&ins).filter_map(|(t, w)| Some(((*t)?.clone(), w.clone()?))).collect();
    let narrowed: Vec<(Tensor, Tensor)> =
        outs.iter().zip(outputs).filter_map(|(w, t)| Some((w.clone()?, (*t)?.clone()))).collect();
    convert(ctx, encoder, op, &widened, true)?;
    let result = run(encoder, &ins, &outs)?;
    convert(ctx, encoder, op, &narrowed, false)?;
    Ok(result)
}

/// Records one conversion per `(source, destination)` pair: f16 → f32 when `widen`, else
/// f32 → f16.
fn convert(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    op: &str,
    pairs: &[(Tensor, Tensor)],
    widen: bool,
) -> Result<()> {
    let pairs: Vec<&(Tensor, Tensor)> = pairs.iter().filter(|(s, _)| s.numel() > 0).collect();
    if pairs.is_empty() {
        return Ok(());
    }
    ctx.scoped(|| {
        let mut arena = UniformArena::new(ctx);
        let mut blocks = Vec::with_capacity(pairs.len());
        for (src, _) in &pairs {
            let count = u32::try_from(src.numel())
                .map_err(|_| Error::TooLarge(format!("{op}: {} elements to convert", src.numel())))?;
            let p = CastParams::new(count);
            blocks.push((p, arena.push(&p)));
        }
        let uniforms = arena.finish(ctx)?;
        let mut dispatches = Vec::with_capacity(pairs.len());
        for ((src, dst), (p, block)) in pairs.iter().zip(&blocks) {
            let step = cast::step(ctx, p, widen)?;
            dispatches.push(step.dispatch(ctx, &[range(&uniforms, *block), whole(src), whole(dst)])?);
        }
        record(ctx, encoder, if widen { "widen_f16" } else { "narrow_f16" }, &dispatches);
        Ok(())
    })?
}

/// Puts a plan's `steps` between the widen of each input (element counts `inputs`; empty
/// ones convert nothing) and the narrow of each output, as [`with_f32`] records them.
pub(crate) fn bracket(ctx: &GpuContext, steps: &mut Vec<Step>, inputs: &[usize], outputs: &[usize]) -> Result<()> {
    let casts = |counts: &[usize], widen: bool| -> Result<Vec<Step>> {
        let counts = counts.iter().filter(|&&n| n > 0);
        counts.map(|&n| cast::step(ctx, &CastParams::new(n.min(u32::MAX as usize) as u32), widen)).collect()
    };
    let mut all = casts(inputs, true)?;
    all.append(steps);
    all.extend(casts(outputs, false)?);
    *steps = all;
    Ok(())
}
