//! `shaders/col2vol.wgsl`: the gather that turns conv3d_backward's column gradients into
//! grad_input, one invocation per input voxel.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::vol2col::Vol2colParams;
use crate::kernels::{fold_grid, Step};
use crate::params::Conv3dGeometry;
use crate::shaders::{Overrides, ShaderId};

/// The gather of images `img0 .. img0 + images` of `g`'s input gradient: the window's block
/// with `col0` the first image and `total` the chunk's input voxels.
pub fn params(g: &Conv3dGeometry, img0: u32, images: u32) -> Vol2colParams {
    Vol2colParams {
        col0: img0,
        cols: images,
        total: images * g.c_in * g.size.iter().product::<u32>(),
        ..Vol2colParams::new(g, 0, 0)
    }
}

/// The loop turns of one invocation (the taps, inner loops counted at every turn).
pub(crate) fn turns(g: &Conv3dGeometry) -> u64 {
    let [kd, kh, kw] = g.kernel.map(u64::from);
    kd * (1 + kh * (1 + kw))
}

/// The launch of the gather `p`.
pub(crate) fn step(ctx: &GpuContext, p: &Vol2colParams) -> Result<Step> {
    Ok(Step {
        shader: ShaderId::Col2vol,
        overrides: Overrides::none(),
        workgroups: fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?,
        note: format!("grad_input of images {}..{}", p.col0, p.col0 + p.cols),
    })
}
