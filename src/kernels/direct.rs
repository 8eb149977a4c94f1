//! Encoding of `shaders/direct.wgsl`: direct conv2d, 4 output pixels × 16 output channels
//! per invocation, no workspace and no workgroup memory (see the shader for why).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, optional, range, uniform_block, whole, Dispatch, Step};
use crate::params::{Activation, Conv2dGeometry};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{Layout, Tensor};

uniform_block! {
    /// Twin of `DirectParams` in `shaders/direct.wgsl`.
    DirectParams {
        c_in, h, w, c_out, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left,
        h_out, w_out, groups, pixels, pixel_blocks, co_blocks, total_tiles, alpha_bits,
    }
}

/// Output pixels of one workgroup (64 invocations × 4).
const PIXELS_PER_WG: u32 = 256;
/// Output channels of one invocation.
const CHANNELS: u32 = 16;

impl DirectParams {
    /// The block of the conv `g`, `alpha` the activation slope (leaky_relu).
    pub fn new(g: &Conv2dGeometry, alpha: f32) -> Self {
        // N·Ho·Wo ≤ output elements, which fit one binding: no overflow.
        let pixels = g.n * g.h_out * g.w_out;
        let pixel_blocks = pixels.div_ceil(PIXELS_PER_WG);
        let co_blocks = g.c_out_per_group().div_ceil(CHANNELS);
        DirectParams {
            c_in: g.c_in,
            h: g.h,
            w: g.w,
            c_out: g.c_out,
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
            groups: g.groups,
            pixels,
            pixel_blocks,
            co_blocks,
            total_tiles: pixel_blocks * co_blocks * g.groups,
            alpha_bits: alpha.to_bits(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &DirectParams,
    activation: Activation,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    out: &Tensor,
) -> Result<Dispatch> {
    let step = step(ctx, p, activation, bias.is_some(), (input.layout(), out.layout()))?;
    let bias = optional(ctx, bias);
    step.dispatch(ctx, &[range(uniforms, block), whole(input), whole(weight), bias, whole(out)])
}

/// The launch of the direct conv `p`: one workgroup per tile of pixels × channels; the
/// input's and output's layouts.
pub(crate) fn step(
    ctx: &GpuContext,
    p: &DirectParams,
    activation: Activation,
    has_bias: bool,
    (input, output): (Layout, Layout),
) -> Result<Step> {
    let overrides = Overrides::none().flag("HAS_BIAS", has_bias).with("ACT", activation.code() as f64);
    Ok(Step {
        shader: ShaderId::Direct,
        overrides: overrides.layouts(input, output),
        workgroups: fold_grid(p.total_tiles as u64, ctx.max_workgroups_per_dim())?,
        note: String::new(),
    })
}
