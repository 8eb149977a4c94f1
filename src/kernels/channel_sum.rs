//! `shaders/channel_sum.wgsl`: per-channel sums of an NCHW tensor (conv2d's grad_bias), one
//! workgroup per channel, a fixed-order tree reduction, the elements in passes under the
//! loop budget with a running sum between them.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, loop_passes, pass_dispatches, range, uniform_block, whole, Dispatch};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `SumParams` in `shaders/channel_sum.wgsl`.
    SumParams { channels, hw, n, _pad0 }
}

/// The dispatches that write `out[c] = Σ x[n, c, ·]` for the `p.channels` channels of `x`
/// (`[p.n, p.channels, p.hw]`), f16 storage when `half`; `block` is `p` in `uniforms`.
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &SumParams,
    x: &Tensor,
    out: &Tensor,
    half: bool,
) -> Result<Vec<Dispatch>> {
    let id = if half { ShaderId::ChannelSumHalf } else { ShaderId::ChannelSum };
    let (pipeline, bgl) = ctx.pipeline(id, &Overrides::none())?;
    let grid = fold_grid(p.channels as u64, ctx.max_workgroups_per_dim())?;
    // each of 256 invocations turns once per 256 elements of its range (+ 8 for the tree
    // reduction): ranges of bounded turns, a running sum between them
    let passes = loop_passes(p.n * p.hw, 256, 1, ctx.config().loop_budget.saturating_sub(8).max(1));
    let fixed = [range(uniforms, block), whole(x), whole(out)];
    pass_dispatches(ctx, (id, &pipeline, &bgl), &fixed, &passes, p.channels as u64, grid)
}
