//! `shaders/col2im.wgsl`: the gather that finishes conv_transpose2d's `GemmCol2im`, each
//! output element summing the column entries of the taps that land on it (+ bias, activation).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, gcd, uniform_block, Step};
use crate::params::{Activation, ConvTranspose2dGeometry};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Layout;

uniform_block! {
    /// Twin of `Col2imParams` in `shaders/col2im.wgsl`.
    Col2imParams {
        c_out, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        img0, total, alpha_bits, step_h, step_w, _pad0, _pad1,
    }
}

impl Col2imParams {
    /// The gather of images `img0 .. img0 + images` of `g`'s output.
    pub fn new(g: &ConvTranspose2dGeometry, img0: u32, images: u32, alpha: f32) -> Self {
        Col2imParams {
            c_out: g.c_out,
            h: g.h,
            w: g.w,
            kh: g.kh,
            kw: g.kw,
            stride_h: g.stride[0],
            stride_w: g.stride[1],
            dil_h: g.dilation[0],
            dil_w: g.dilation[1],
            pad_top: g.pads.top,
            pad_left: g.pads.left,
            h_out: g.h_out,
            w_out: g.w_out,
            img0,
            total: images * g.c_out * g.h_out * g.w_out,
            alpha_bits: alpha.to_bits(),
            step_h: g.stride[0] / gcd(g.stride[0], g.dilation[0]),
            step_w: g.stride[1] / gcd(g.stride[1], g.dilation[1]),
            _pad0: 0,
            _pad1: 0,
        }
    }
}

/// The launch of the gather `p` into an output of `layout`: one invocation per output element.
pub(crate) fn step(
    ctx: &GpuContext,
    p: &Col2imParams,
    activation: Activation,
    has_bias: bool,
    layout: Layout,
) -> Result<Step> {
    let overrides = Overrides::none().flag("HAS_BIAS", has_bias).with("ACT", activation.code() as f64);
    Ok(Step {
        shader: ShaderId::Col2im,
        overrides: overrides.layouts(Layout::Contiguous, layout),
        workgroups: fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?,
        note: format!("from image {}", p.img0),
    })
}
