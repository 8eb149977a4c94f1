//! `shaders/deform_im2col.wgsl`: deform_conv2d's unfold, each column entry the bilinear
//! sample of its input channel at the offset position (times the mask), one invocation per
//! (offset group, tap, column) for all the group's channels.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::im2col::Im2colParams;
use crate::kernels::{fold_grid, optional, range, uniform_block, whole, Dispatch, Step};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `DeformIm2colParams` in `shaders/deform_im2col.wgsl`.
    DeformIm2colParams {
        c_in, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        col0, cols, total, offset_groups, threads, row0, c_first, c_count, _pad1, _pad2, _pad3,
    }
}

impl DeformIm2colParams {
    /// The block for the columns `p` describes with `offset_groups` offset groups, over every input
    /// channel (one invocation per offset group, tap and column).
    pub fn new(p: &Im2colParams, offset_groups: u32) -> Self {
        DeformIm2colParams {
            c_in: p.c_in,
            h: p.h,
            w: p.w,
            kh: p.kh,
            kw: p.kw,
            stride_h: p.stride_h,
            stride_w: p.stride_w,
            dil_h: p.dil_h,
            dil_w: p.dil_w,
            pad_top: p.pad_top,
            pad_left: p.pad_left,
            h_out: p.h_out,
            w_out: p.w_out,
            col0: p.col0,
            cols: p.cols,
            total: p.total,
            offset_groups,
            // one invocation per (offset group, tap, column)
            threads: offset_groups * p.kh * p.kw * p.cols,
            row0: 0,
            c_first: 0,
            c_count: p.c_in,
            ..Default::default()
        }
    }
}

/// The launch [`prepare`] makes for the columns `p` describes (`has_mask`: v2), `note`
/// saying which.
pub(crate) fn step(
    ctx: &GpuContext,
    p: &Im2colParams,
    offset_groups: u32,
    has_mask: bool,
    note: String,
) -> Result<Step> {
    let threads = offset_groups as u64 * p.kh as u64 * p.kw as u64 * p.cols as u64;
    Ok(Step {
        shader: ShaderId::DeformIm2col,
        overrides: Overrides::none().flag("HAS_MASK", has_mask),
        workgroups: fold_grid(threads.div_ceil(256), ctx.max_workgroups_per_dim())?,
        note,
    })
}

/// The deformable unfold of the columns `p` describes into `col` (mask where given).
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &Im2colParams,
    offset_groups: u32,
    input: &Tensor,
    offset: &Tensor,
    mask: Option<&Tensor>,
    col: &wgpu::Buffer,
) -> Result<Dispatch> {
    let (pipeline, bgl) = ctx.pipeline(ShaderId::DeformIm2col, &Overrides::none().flag("HAS_MASK", mask.is_some()))?;
    let threads = offset_groups as u64 * p.kh as u64 * p.kw as u64 * p.cols as u64;
    let grid = fold_grid(threads.div_ceil(256), ctx.max_workgroups_per_dim())?;
    let bind_group = ctx.bind_group(
        ShaderId::DeformIm2col,
        &bgl,
        &[
            range(uniforms, block),
            whole(input),
            whole(offset),
            optional(ctx, mask),
            range(col, (0, p.total as u64 * 4)),
        ],
    );
    Ok(Dispatch { pipeline, bind_group, grid })
}
