//! Encoding of `shaders/depthwise.wgsl`: depthwise conv2d (groups = Cin, any channel
//! multiplier), one output plane per workgroup, four outputs of a row per invocation, the
//! kernel size, horizontal stride and dilation specialised as override constants; f32 or f16
//! storage (f32 arithmetic).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, optional, range, uniform_block, whole, Dispatch, Step};
use crate::params::{Activation, Conv2dGeometry};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{DType, Layout, Tensor};

uniform_block! {
    /// Twin of `DepthwiseParams` in `shaders/depthwise.wgsl`.
    DepthwiseParams {
        c_in, h, w, c_out, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left,
        h_out, w_out, mult, quads, planes, tiles, alpha_bits, _pad0,
    }
}

/// Invocations per workgroup of the depthwise kernel.
const WG: u64 = 64;

impl DepthwiseParams {
    /// The block of the depthwise conv `g` (groups = Cin, Cout = Cin·mult), `alpha` the activation slope
    /// (leaky_relu).
    pub fn new(g: &Conv2dGeometry, alpha: f32) -> Self {
        let quads = g.w_out.div_ceil(4);
        DepthwiseParams {
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
            mult: g.c_out / g.c_in,
            quads,
            planes: g.n * g.c_out,
            // Ho·⌈Wo/4⌉ ≤ a plane's outputs, which fit one binding: no overflow.
            tiles: (g.h_out * quads).div_ceil(WG as u32),
            alpha_bits: alpha.to_bits(),
            _pad0: 0,
        }
    }

    /// The `KH`, `KW`, `SW`, `DW` overrides: this conv's values when the window four outputs
    /// share fits the shader's `WIN_MAX`, else 0 (read at run time).
    pub fn specialisation(&self) -> [u32; 4] {
        let window = 3 * self.stride_w as u64 + (self.kw as u64 - 1) * self.dil_w as u64 + 1;
        if window <= WIN_MAX && self.kh <= WIN_MAX as u32 {
            [self.kh, self.kw, self.stride_w, self.dil_w]
        } else {
            [0; 4]
        }
    }
}

/// The shader's `WIN_MAX`.
const WIN_MAX: u64 = 32;

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &DepthwiseParams,
    activation: Activation,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    out: &Tensor,
) -> Result<Dispatch> {
    // f16 storage (conv2d checked that every tensor has the output's dtype)
    let layouts = (input.layout(), out.layout());
    let step = step(ctx, p, activation, bias.is_some(), out.dtype() == DType::F16, layouts)?;
    let bias = optional(ctx, bias);
    step.dispatch(ctx, &[range(uniforms, block), whole(input), whole(weight), bias, whole(out)])
}

/// The launch of the depthwise conv `p`, specialised to its kernel shape where it is a common
/// one; `half`: f16 storage; the input's and output's layouts.
pub(crate) fn step(
    ctx: &GpuContext,
    p: &DepthwiseParams,
    activation: Activation,
    has_bias: bool,
    half: bool,
    (input, output): (Layout, Layout),
) -> Result<Step> {
    let [kh, kw, sw, dw] = p.specialisation();
    let overrides = Overrides::none()
        .flag("HAS_BIAS", has_bias)
        .with("ACT", activation.code() as f64)
        .with("KH", kh as f64)
        .with("KW", kw as f64)
        .with("SW", sw as f64)
        .with("DW", dw as f64)
        .layouts(input, output);
    Ok(Step {
        shader: if half { ShaderId::DepthwiseHalf } else { ShaderId::Depthwise },
        overrides,
        workgroups: fold_grid(p.planes as u64 * p.tiles as u64, ctx.max_workgroups_per_dim())?,
        note: String::new(),
    })
}
