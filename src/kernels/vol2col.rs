//! `shaders/vol2col.wgsl`: conv3d's unfold of a chunk of output voxels into the column matrix
//! `[Cin·kd·kh·kw, cols]` that the dense GEMM reads.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, range, uniform_block, whole, Dispatch, Step};
use crate::params::{Conv3dGeometry, PaddingMode};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `Vol2colParams` in `shaders/vol2col.wgsl`.
    Vol2colParams {
        c_in, d, h, w, kd, kh, kw, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w,
        pad_front, pad_top, pad_left, d_out, h_out, w_out, col0, cols, total, alpha_bits, pad_back, pad_bottom, pad_right, _pad0,
    }
}

impl Vol2colParams {
    /// The block for output voxels `col0 .. col0 + cols` of `g` (`total` = Cin·kd·kh·kw · `cols`).
    pub fn new(g: &Conv3dGeometry, col0: u32, cols: u32) -> Self {
        let rows = g.c_in * g.kernel.iter().product::<u32>();
        Vol2colParams {
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
            col0,
            cols,
            total: rows * cols,
            alpha_bits: 0,
            pad_back: g.pad_end[0],
            pad_bottom: g.pad_end[1],
            pad_right: g.pad_end[2],
            _pad0: 0,
        }
    }
}

/// The unfold of output voxels `col0 .. col0 + cols` (`total` = rows × cols entries of `col`),
/// the padding read as `mode` says.
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    total: u32,
    mode: PaddingMode,
    input: &Tensor,
    col: &wgpu::Buffer,
) -> Result<Dispatch> {
    let (pipeline, bgl) = ctx.pipeline(ShaderId::Vol2col, &overrides(mode))?;
    let grid = fold_grid((total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
    let bind_group = ctx.bind_group(
        ShaderId::Vol2col,
        &bgl,
        &[range(uniforms, block), whole(input), range(col, (0, total as u64 * 4))],
    );
    Ok(Dispatch { pipeline, bind_group, grid })
}

fn overrides(mode: PaddingMode) -> Overrides {
    Overrides::none().with("PAD_MODE", mode.code() as f64)
}

/// The launch [`prepare`] makes for `p`.
pub(crate) fn step(ctx: &GpuContext, p: &Vol2colParams, mode: PaddingMode) -> Result<Step> {
    Ok(Step {
        shader: ShaderId::Vol2col,
        overrides: overrides(mode),
        workgroups: fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?,
        note: format!("voxels {}..{}", p.col0, p.col0 + p.cols),
    })
}
