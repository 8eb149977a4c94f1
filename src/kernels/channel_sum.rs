//! `shaders/channel_sum.wgsl`: per-channel sums of an NCHW tensor (conv2d's grad_bias), one
//! workgroup per channel, a fixed-order tree reduction, the elements in passes under the
//! loop budget with a running sum between them.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, loop_passes, pass_dispatches, range, uniform_block, whole, Dispatch, Step};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `SumParams` in `shaders/channel_sum.wgsl`.
    SumParams { channels, hw, n, _pad0 }
}

/// (kernel, ranges of elements, grid)
type Launches = (ShaderId, Vec<(u32, u32)>, [u32; 3]);

/// The kernel, its passes over the `n·hw` elements of a channel and its grid: each of 64
/// invocations turns once per 64 elements of its range (+ 69 in the first invocation, which
/// adds the 64 partial sums as a tree), so the ranges keep the turns bounded, a running sum
/// between them.
fn launches(ctx: &GpuContext, p: &SumParams, half: bool) -> Result<Launches> {
    let id = if half { ShaderId::ChannelSumHalf } else { ShaderId::ChannelSum };
    let grid = fold_grid(p.channels as u64, ctx.max_workgroups_per_dim())?;
    let passes = loop_passes(p.n * p.hw, 64, 1, ctx.config().loop_budget.saturating_sub(70).max(1));
    Ok((id, passes, grid))
}

/// The steps [`prepare`] makes for `p`, one per pass, each note naming `what`.
pub(crate) fn steps(ctx: &GpuContext, p: &SumParams, half: bool, what: &str) -> Result<Vec<Step>> {
    let (id, passes, grid) = launches(ctx, p, half)?;
    let many = passes.len() > 1;
    Ok(passes
        .iter()
        .map(|&(a, b)| Step {
            shader: id,
            overrides: Overrides::none(),
            workgroups: grid,
            note: if many { format!("{what}, elements {a}..{b} of {}", p.n * p.hw) } else { what.to_string() },
        })
        .collect())
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
    let (id, passes, grid) = launches(ctx, p, half)?;
    let (pipeline, bgl) = ctx.pipeline(id, &Overrides::none())?;
    let fixed = [range(uniforms, block), whole(x), whole(out)];
    pass_dispatches(ctx, (id, &pipeline, &bgl), &fixed, &passes, p.channels as u64, grid)
}
