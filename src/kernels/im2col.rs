//! Encoding of `shaders/im2col.wgsl` (see the shader for the workspace layout).

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, range, uniform_block, whole, Dispatch, Step};
use crate::params::{Conv2dGeometry, PaddingMode};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{Layout, Tensor};

uniform_block! {
    /// Twin of `Im2colParams` in `shaders/im2col.wgsl`.
    Im2colParams {
        c_in, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left,
        h_out, w_out, col0, cols, total,
    }
}

/// Threads per workgroup of the im2col kernel.
const WG: u64 = 256;

impl Im2colParams {
    /// Block for output pixels `col0 .. col0 + cols` of `g`.
    pub fn new(g: &Conv2dGeometry, col0: u32, cols: u32) -> Self {
        let rows = g.c_in * g.kh * g.kw;
        Im2colParams {
            c_in: g.c_in,
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
            col0,
            cols,
            total: rows * cols,
        }
    }
}

/// Prepares the im2col of `p` (uniform block at `block` of `uniforms`) from `input` (either
/// layout) into the first `p.total` floats of `col`, the padding read as `mode` says.
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &Im2colParams,
    mode: PaddingMode,
    input: &Tensor,
    col: &wgpu::Buffer,
) -> Result<Dispatch> {
    let bindings = [range(uniforms, block), whole(input), range(col, (0, p.total as u64 * 4))];
    step(ctx, p, mode, input.layout())?.dispatch(ctx, &bindings)
}

/// The launch of the im2col of `p` from an input of `layout`: one invocation per
/// column-matrix entry.
pub(crate) fn step(ctx: &GpuContext, p: &Im2colParams, mode: PaddingMode, layout: Layout) -> Result<Step> {
    Ok(Step {
        shader: ShaderId::Im2col,
        overrides: Overrides::none().with("PAD_MODE", mode.code() as f64).layouts(layout, Layout::Contiguous),
        workgroups: fold_grid((p.total as u64).div_ceil(WG), ctx.max_workgroups_per_dim())?,
        note: format!("columns {}..{}", p.col0, p.col0 + p.cols),
    })
}
