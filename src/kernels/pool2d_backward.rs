//! `shaders/pool2d_backward.wgsl`: the window maxima's indices (max pooling; the window in
//! passes under the loop budget, as the forward) and the gather of grad_input.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::pool2d::PoolParams;
use crate::kernels::{
    fold_grid, loop_passes, pass_blocks, pass_dispatches, range, whole, Dispatch, Step, UniformArena,
};
use crate::ops::pool2d::PoolMode;
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

/// The two kernels' registrations for a dtype: (argmax, gather).
fn ids(half: bool) -> (ShaderId, ShaderId) {
    if half {
        (ShaderId::Pool2dArgmaxHalf, ShaderId::Pool2dGatherHalf)
    } else {
        (ShaderId::Pool2dArgmax, ShaderId::Pool2dGather)
    }
}

/// The gather's overrides: the reduction and (avg) the divisor.
pub(crate) fn gather_overrides(mode: PoolMode, count_pad: bool) -> Overrides {
    Overrides::none().with("MODE", mode as u32 as f64).flag("COUNT_PAD", count_pad || mode == PoolMode::Max)
}

/// The gather's loop turns per input element: the windows whose span reaches it, rows times
/// (columns + 1).
pub(crate) fn windows_per_element(p: &PoolParams) -> u64 {
    let most = |k: u32, d: u32, s: u32, len: u32, out: u32| {
        if p.adaptive != 0 {
            // adaptive windows overlap by at most one position
            (out.div_ceil(len.max(1)) as u64 + 1).min(out as u64)
        } else {
            ((d as u64 * (k as u64 - 1)) / s as u64 + 1).min(out as u64)
        }
    };
    most(p.kh, p.dil_h, p.stride_h, p.h, p.h_out) * (most(p.kw, p.dil_w, p.stride_w, p.w, p.w_out) + 1)
}

/// `p` with argmax's window walk set (`col_chunk`, `chunks`) and its passes over the window.
fn argmax_passes(ctx: &GpuContext, p: PoolParams, outputs: u32) -> (PoolParams, Vec<(u32, u32)>) {
    let budget = ctx.config().loop_budget.max(2);
    let col_chunk = p.kw.min(budget - 1);
    let q = PoolParams { col_chunk, chunks: p.kw.div_ceil(col_chunk), total: outputs, ..p };
    let passes = loop_passes(q.kh * q.chunks, 1, col_chunk as u64 + 1, budget);
    (q, passes)
}

/// The launches of one backward pooling of tensors that fit one binding: `p` describes the
/// input (`total` its elements) and window; `outputs` is grad_output's element count.
pub(crate) fn steps(
    ctx: &GpuContext,
    p: PoolParams,
    outputs: u32,
    mode: PoolMode,
    count_pad: bool,
    half: bool,
    what: &str,
) -> Result<Vec<Step>> {
    let (argmax, gather) = ids(half);
    let max = ctx.max_workgroups_per_dim();
    let mut steps = Vec::new();
    if mode == PoolMode::Max {
        let (_, passes) = argmax_passes(ctx, p, outputs);
        let workgroups = fold_grid((outputs as u64).div_ceil(256), max)?;
        for &(a, b) in &passes {
            let note = if passes.len() > 1 {
                format!("{what} maxima, window units {a}..{b}")
            } else {
                format!("{what} maxima")
            };
            steps.push(Step {
                shader: argmax,
                overrides: Overrides::none(),
                workgroups,
                note: note.trim().to_string(),
            });
        }
    }
    let workgroups = fold_grid((p.total as u64).div_ceil(256), max)?;
    let note = format!("{what} grad_input").trim().to_string();
    steps.push(Step { shader: gather, overrides: gather_overrides(mode, count_pad), workgroups, note });
    Ok(steps)
}

/// Records the backward pooling `p` describes (see [`steps`]) of `input` and `grad_output`
/// into `grad_input`; returns the number of launches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    p: PoolParams,
    mode: PoolMode,
    count_pad: bool,
    input: &Tensor,
    grad_output: &Tensor,
    grad_input: &Tensor,
    half: bool,
) -> Result<usize> {
    let (argmax, gather) = ids(half);
    let outputs = grad_output.numel() as u32;
    if windows_per_element(&p) + 2 > ctx.config().loop_budget as u64 {
        return Err(Error::Internal("pool2d_backward: the plan checks the gather's loop budget".into()));
    }
    ctx.scoped(|| -> Result<usize> {
        let mut arena = UniformArena::new(ctx);
        let (ap, passes) = argmax_passes(ctx, p, outputs);
        let (a_block, g_block) = (arena.push(&ap), arena.push(&p));
        let uniforms = arena.finish(ctx)?;
        let index = match mode {
            PoolMode::Max => Some(ctx.create_buffer(
                "wgconv.pool_indices",
                (outputs as u64 * 4).max(16),
                wgpu::BufferUsages::STORAGE,
            )?),
            PoolMode::Avg => None,
        };
        let index_binding = match &index {
            Some(b) => range(b, (0, b.size())),
            // slot 1: the gather binds slot 0 as its (unused) running part
            None => ctx.unused_rw(1),
        };
        let mut dispatches: Vec<Dispatch> = Vec::new();
        let fixed = |block| {
            [range(&uniforms, block), whole(input), whole(grad_output), whole(grad_input), index_binding.clone()]
        };
        if mode == PoolMode::Max {
            let (pipeline, bgl) = ctx.pipeline(argmax, &Overrides::none())?;
            let grid = fold_grid((outputs as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
            let part = outputs as u64;
            dispatches.extend(pass_dispatches(ctx, (argmax, &pipeline, &bgl), &fixed(a_block), &passes, part, grid)?);
        }
        let (pipeline, bgl) = ctx.pipeline(gather, &gather_overrides(mode, count_pad))?;
        let (pass_uniforms, blocks) = pass_blocks(ctx, &[(0, u32::MAX)])?;
        let mut bindings = fixed(g_block).to_vec();
        bindings.extend([range(&pass_uniforms, blocks[0]), ctx.unused_rw(0)]);
        let bind_group = ctx.bind_group(gather, &bgl, &bindings);
        let grid = fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
        dispatches.push(Dispatch { pipeline, bind_group, grid });
        crate::kernels::record(ctx, encoder, "pool2d_backward", &dispatches);
        Ok(dispatches.len())
    })?
}

/// Records the `argmax` entry alone: the flat in-plane index (y·W + x) of each window's
/// maximum of `input` (as PyTorch's `return_indices`) into `index` (`outputs` u32); `p`
/// describes the input and window as for [`record`]. Returns the number of launches.
pub(crate) fn record_argmax(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    p: PoolParams,
    outputs: u32,
    input: &Tensor,
    index: &wgpu::Buffer,
    half: bool,
) -> Result<usize> {
    let (argmax, _) = ids(half);
    ctx.scoped(|| -> Result<usize> {
        let mut arena = UniformArena::new(ctx);
        let (ap, passes) = argmax_passes(ctx, p, outputs);
        let block = arena.push(&ap);
        let uniforms = arena.finish(ctx)?;
        // grad_output and grad_input are not read: the input (read-only) and an unused
        // read-write slot of its own (the running part takes slot 0)
        let fixed =
            [range(&uniforms, block), whole(input), whole(input), ctx.unused_rw(2), range(index, (0, index.size()))];
        let (pipeline, bgl) = ctx.pipeline(argmax, &Overrides::none())?;
        let grid = fold_grid((outputs as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
        let dispatches = pass_dispatches(ctx, (argmax, &pipeline, &bgl), &fixed, &passes, outputs as u64, grid)?;
        crate::kernels::record(ctx, encoder, "max_pool2d_indices", &dispatches);
        Ok(dispatches.len())
    })?
}
