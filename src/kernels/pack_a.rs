//! `shaders/pack_a.wgsl`: a GEMM's A operand packed into 64 KiB uniform windows, one per K
//! pass, for the flat GEMM's A reads from uniforms (`shaders/gemm_a_window.wgsl`).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, range, uniform_block, whole, Dispatch, Step};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

/// f32 elements of one window: the most one uniform binding holds (64 KiB, WebGPU's
/// guaranteed `maxUniformBufferBindingSize`).
pub const WINDOW_ELEMS: u32 = 16384;
/// Bytes of one window (a multiple of every uniform offset alignment).
pub const WINDOW_BYTES: u64 = WINDOW_ELEMS as u64 * 4;

uniform_block! {
    /// Twin of `PackAParams` in `shaders/pack_a.wgsl`: A is `rows × k` f32; `windows`
    /// windows of `width` steps each; `order` 0 for A's columns in order, 1 for the implicit
    /// conv's tap-major walk over `channels` × `taps`, 2 for A stored transposed (`m` rows
    /// per group).
    PackAParams { rows, k, width, windows, order, channels, taps, m }
}

/// The most workgroups the packing launch runs (each invocation loops over the rest).
const MAX_WORKGROUPS: u64 = 256;

/// The launch that packs `p.windows` windows (its note says so; the GEMM's plan names it).
pub(crate) fn step(ctx: &GpuContext, p: &PackAParams) -> Result<Step> {
    let elems = p.windows as u64 * p.rows as u64 * p.width as u64;
    let dim = ctx.max_workgroups_per_dim() as u64;
    let workgroups = elems.div_ceil(64).clamp(1, MAX_WORKGROUPS.min(dim.saturating_pow(3)));
    Ok(Step {
        shader: ShaderId::PackA,
        overrides: Overrides::none(),
        workgroups: fold_grid(workgroups, ctx.max_workgroups_per_dim())?,
        note: format!("A in {} uniform window(s) of {} steps", p.windows, p.width),
    })
}

/// The dispatch that fills `windows` (at least `p.windows` · [`WINDOW_BYTES`] bytes) from `a`;
/// `block` is `p` in `uniforms`.
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &PackAParams,
    a: &Tensor,
    windows: &wgpu::Buffer,
) -> Result<Dispatch> {
    let step = step(ctx, p)?;
    step.dispatch(ctx, &[range(uniforms, block), whole(a), range(windows, (0, p.windows as u64 * WINDOW_BYTES))])
}
