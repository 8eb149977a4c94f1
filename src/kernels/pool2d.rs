//! `shaders/pool2d.wgsl`: max and average pooling, one invocation per output element, the
//! window walked in (row, chunk of columns) units in passes under the loop budget (a running
//! max or sum kept in an f32 buffer between passes).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{
    fold_grid, loop_passes, pass_dispatches, range, record as record_all, uniform_block, whole, UniformArena,
};
use crate::ops::pool2d::PoolMode;
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `PoolParams` in `shaders/pool2d.wgsl`.
    PoolParams {
        h, w, kh, kw, stride_h, stride_w, pad_top, pad_left, h_out, w_out, total, col_chunk, chunks, _pad0, _pad1, _pad2,
    }
}

/// Records the pooling `p` describes (its `col_chunk` and `chunks` are set here) of `input`
/// into `output`; `count_pad`: avg divides by the window's size (max ignores it).
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
) -> Result<()> {
    let id = if half { ShaderId::Pool2dHalf } else { ShaderId::Pool2d };
    // The window in units of (row, chunk of columns), in passes of bounded loop turns (see
    // `Pass` in the shader): one pass unless the window has thousands of positions.
    let budget = ctx.config().loop_budget.max(2);
    let col_chunk = p.kw.min(budget - 1);
    let p = PoolParams { col_chunk, chunks: p.kw.div_ceil(col_chunk), ..p };
    let passes = loop_passes(p.kh * p.chunks, 1, col_chunk as u64 + 1, budget);
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&p);
        let uniforms = arena.finish(ctx)?;
        let overrides = Overrides::none().with("MODE", mode as u32 as f64).flag("COUNT_PAD", count_pad);
        let (pipeline, bgl) = ctx.pipeline(id, &overrides)?;
        let grid = fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
        let fixed = [range(&uniforms, block), whole(input), whole(output)];
        let dispatches = pass_dispatches(ctx, (id, &pipeline, &bgl), &fixed, &passes, p.total as u64, grid)?;
        record_all(ctx, encoder, "pool2d", &dispatches);
        Ok(())
    })?
}
