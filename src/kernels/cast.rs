//! `shaders/cast_widen.wgsl` and `shaders/cast_narrow.wgsl`: f16 → f32 and f32 → f16, element
//! for element (the storage conversions of [`crate::ops::widen`]).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, uniform_block, Step};
use crate::shaders::{Overrides, ShaderId};

uniform_block! {
    /// Twin of `CastParams` in `shaders/cast_widen.wgsl` and `shaders/cast_narrow.wgsl`.
    CastParams { count, _pad0, _pad1, _pad2 }
}

impl CastParams {
    /// The block of a cast of `count` elements.
    pub fn new(count: u32) -> Self {
        CastParams { count, _pad0: 0, _pad1: 0, _pad2: 0 }
    }
}

/// The launch converting `p.count` elements: f16 → f32 when `widen`, else f32 → f16
/// (bindings: uniforms, source, destination).
pub(crate) fn step(ctx: &GpuContext, p: &CastParams, widen: bool) -> Result<Step> {
    Ok(Step {
        shader: if widen { ShaderId::CastWiden } else { ShaderId::CastNarrow },
        overrides: Overrides::none(),
        workgroups: fold_grid((p.count as u64).div_ceil(256), ctx.max_workgroups_per_dim())?,
        note: format!("{} elements", p.count),
    })
}
