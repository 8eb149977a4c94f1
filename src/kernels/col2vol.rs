//! `shaders/col2vol.wgsl`: the gather that turns conv3d_backward's column gradients into
//! grad_input, one invocation per input voxel.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, uniform_block, Step};
use crate::params::Conv3dGeometry;
use crate::shaders::{Overrides, ShaderId};

uniform_block! {
    /// Twin of `Col2volParams` in `shaders/col2vol.wgsl`.
    Col2volParams {
        c_in, d, h, w, kd, kh, kw, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w,
        pad_front, pad_top, pad_left, d_out, h_out, w_out, img0, total, _pad0, _pad1, _pad2,
    }
}

impl Col2volParams {
    /// The gather of images `img0 .. img0 + images` of `g`'s input gradient.
    pub fn new(g: &Conv3dGeometry, img0: u32, images: u32) -> Self {
        Col2volParams {
            c_in: g.c_in,
            d: g.size[0],
            h: g.size[1],
            w: g.size[2],
            kd: g.kernel[0],
            kh: g.kernel[1],
            kw: g.kernel[2],
            stride_d: g.stride[0],
            stride_h: g.stride[1],
            stride_w: g.stride[2],
            dil_d: g.dilation[0],
            dil_h: g.dilation[1],
            dil_w: g.dilation[2],
            pad_front: g.pad_begin[0],
            pad_top: g.pad_begin[1],
            pad_left: g.pad_begin[2],
            d_out: g.out[0],
            h_out: g.out[1],
            w_out: g.out[2],
            img0,
            total: images * g.c_in * g.size.iter().product::<u32>(),
            ..Default::default()
        }
    }
}

/// The loop turns of one invocation (the taps, inner loops counted at every turn).
pub(crate) fn turns(g: &Conv3dGeometry) -> u64 {
    let [kd, kh, kw] = g.kernel.map(u64::from);
    kd * (1 + kh * (1 + kw))
}

/// The launch of the gather `p`.
pub(crate) fn step(ctx: &GpuContext, p: &Col2volParams) -> Result<Step> {
    Ok(Step {
        shader: ShaderId::Col2vol,
        overrides: Overrides::none(),
        workgroups: fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?,
        note: format!("grad_input from image {}", p.img0),
    })
}
