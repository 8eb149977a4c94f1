//! `shaders/slot_sum.wgsl`: the fixed-order sum of a split K's slices (`GemmDims::slices` in
//! `shaders/gemm.wgsl`), one invocation per element of C.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, range, uniform_block, whole, Dispatch, Step};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `SlotParams` in `shaders/slot_sum.wgsl`: `slots` slices of `len` f32 sums.
    SlotParams { len, slots, _pad0, _pad1 }
}

fn id(half: bool) -> ShaderId {
    if half {
        ShaderId::SlotSumHalf
    } else {
        ShaderId::SlotSum
    }
}

/// The launch that adds `p.slots` slices of `p.len` elements into an output of f16 storage
/// when `half`, its note naming `what`.
pub(crate) fn step(ctx: &GpuContext, p: &SlotParams, half: bool, what: &str) -> Result<Step> {
    Ok(Step {
        shader: id(half),
        overrides: Overrides::none(),
        workgroups: fold_grid((p.len as u64).div_ceil(64), ctx.max_workgroups_per_dim())?,
        note: format!("{what}, {} slices of K summed", p.slots),
    })
}

/// The dispatch that writes `out[i] = Σ_s parts[s·len + i]` (s in order); `block` is `p` in
/// `uniforms`.
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &SlotParams,
    parts: &wgpu::Buffer,
    out: &Tensor,
) -> Result<Dispatch> {
    let half = out.dtype() == crate::tensor::DType::F16;
    let step = step(ctx, p, half, "")?;
    let bytes = p.slots as u64 * p.len as u64 * 4;
    step.dispatch(ctx, &[range(uniforms, block), range(parts, (0, bytes)), whole(out)])
}
