//! `shaders/pool2d.wgsl`: max and average pooling, one invocation per output element, the
//! window walked in (row, chunk of columns) units in passes under the loop budget (a running
//! max or sum kept in an f32 buffer between passes).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{
    fold_grid, loop_passes, pass_dispatches, range, record as record_all, uniform_block, whole, Step, UniformArena,
};
use crate::ops::pool2d::PoolMode;
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `PoolParams` in `shaders/pool2d.wgsl`.
    PoolParams {
        h, w, kh, kw, stride_h, stride_w, pad_top, pad_left, h_out, w_out, total, col_chunk, chunks,
        dil_h, dil_w, divisor, h_end, w_end, adaptive, _pad0,
    }
}

/// The launches of the pooling `p` describes: the kernel, `p` with its `col_chunk` and
/// `chunks` set, the passes over the window (in units of (row, chunk of columns), each of
/// bounded loop turns: see `Pass` in the shader; one pass unless the window has thousands of
/// positions), the overrides and the grid. `count_pad`: avg divides by the window's size.
struct Launches {
    id: ShaderId,
    params: PoolParams,
    passes: Vec<(u32, u32)>,
    overrides: Overrides,
    grid: [u32; 3],
}

fn launches(ctx: &GpuContext, p: PoolParams, mode: PoolMode, count_pad: bool, half: bool) -> Result<Launches> {
    let id = if half { ShaderId::Pool2dHalf } else { ShaderId::Pool2d };
    let budget = ctx.config().loop_budget.max(2);
    let col_chunk = p.kw.min(budget - 1);
    let params = PoolParams { col_chunk, chunks: p.kw.div_ceil(col_chunk), ..p };
    let passes = loop_passes(params.kh * params.chunks, 1, col_chunk as u64 + 1, budget);
    let overrides = Overrides::none().with("MODE", mode as u32 as f64).flag("COUNT_PAD", count_pad);
    let grid = fold_grid((params.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
    Ok(Launches { id, params, passes, overrides, grid })
}

/// The steps [`record`] records for these arguments, one per pass, each note prefixed
/// with `what`.
pub(crate) fn steps(
    ctx: &GpuContext,
    p: PoolParams,
    mode: PoolMode,
    count_pad: bool,
    half: bool,
    what: &str,
) -> Result<Vec<Step>> {
    let l = launches(ctx, p, mode, count_pad, half)?;
    let many = l.passes.len() > 1;
    let note = |a: u32, b: u32| match (what.is_empty(), many) {
        (true, true) => format!("window units {a}..{b}"),
        (false, true) => format!("{what}: window units {a}..{b}"),
        _ => what.to_string(),
    };
    let step = |&(a, b): &(u32, u32)| Step {
        shader: l.id,
        overrides: l.overrides.clone(),
        workgroups: l.grid,
        note: note(a, b),
    };
    Ok(l.passes.iter().map(step).collect())
}

/// Records the pooling `p` describes (its `col_chunk` and `chunks` are set here) of `input`
/// into `output`; `count_pad`: avg divides by the window's size (max ignores it). Returns the
/// number of launches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    p: PoolParams,
    mode: PoolMode,
    count_pad: bool,
    input: &Tensor,
    output: &Tensor,
    half: bool,
) -> Result<usize> {
    let l = launches(ctx, p, mode, count_pad, half)?;
    ctx.scoped(|| -> Result<usize> {
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&l.params);
        let uniforms = arena.finish(ctx)?;
        let (pipeline, bgl) = ctx.pipeline(l.id, &l.overrides)?;
        let fixed = [range(&uniforms, block), whole(input), whole(output)];
        let part = l.params.total as u64;
        let dispatches = pass_dispatches(ctx, (l.id, &pipeline, &bgl), &fixed, &l.passes, part, l.grid)?;
        record_all(ctx, encoder, "pool2d", &dispatches);
        Ok(dispatches.len())
    })?
}
