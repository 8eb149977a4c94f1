//! conv3d (PyTorch `torch.nn.functional.conv3d` semantics) on `[N, C, D, H, W]`: `vol2col.wgsl`
//! unfolds chunks of output voxels, then the same dense tiled GEMM as conv2d's `Im2colGemm`
//! (depth and height flattened into one axis of its conv write-out; see
//! [`Conv3dGeometry::as_gemm_geometry`]). Chunked to the workspace budget.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::conv2d::{encode_im2col_gemm, plan_chunks, Unfold};
use crate::ops::{check_binding, fold_grid, range, uniform_block, whole, Dispatch};
use crate::params::{Conv3dGeometry, Conv3dParams};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

uniform_block! {
    /// Twin of `Vol2colParams` in `shaders/vol2col.wgsl`.
    Vol2colParams {
        c_in, d, h, w, kd, kh, kw, stride_d, stride_h, stride_w, dil_d, dil_h, dil_w,
        pad_front, pad_top, pad_left, d_out, h_out, w_out, col0, cols, total, _pad0, _pad1,
    }
}

impl Vol2colParams {
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
            _pad0: 0,
            _pad1: 0,
        }
    }
}

pub(crate) fn prepare_unfold(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    total: u32,
    input: &Tensor,
    col: &wgpu::Buffer,
) -> Result<Dispatch> {
    let (pipeline, bgl) = ctx.pipeline(ShaderId::Vol2col, &Overrides::none())?;
    let grid = fold_grid((total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
    let bind_group = ctx.bind_group(
        ShaderId::Vol2col,
        &bgl,
        &[range(uniforms, block), whole(input), range(col, (0, total as u64 * 4))],
    );
    Ok(Dispatch { pipeline, bind_group, grid })
}

/// 3-D convolution, submitted; returns `[N, Cout, Do, Ho, Wo]`.
pub fn conv3d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
) -> Result<Tensor> {
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty(ctx, &g.output_shape())?;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv3d") });
    conv3d_into(ctx, &mut encoder, input, weight, bias, params, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records into the caller's encoder; writes `output`.
pub fn conv3d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
    output: &Tensor,
) -> Result<()> {
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    if output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {:?}", output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(input, "input"), (weight, "weight"), (output, "output")] {
        t.check_device(ctx, what)?;
        t.require_f32("conv3d", what)?;
        check_binding(ctx, t, what)?;
    }
    if let Some(b) = bias {
        b.check_device(ctx, "bias")?;
        b.require_f32("conv3d", "bias")?;
    }
    let flat = g.as_gemm_geometry();
    let plan = plan_chunks(ctx, &flat)?;
    // The GEMM reads the weight [Cout, Cin/G, kd, kh, kw] as [Cout, Cin/G·kd·kh·kw] and writes
    // the output as [N, Cout, Do·Ho, Wo]: the same bytes.
    let w2 = weight.reshape(&[weight.shape()[0], weight.shape()[1], flat.kh as usize, flat.kw as usize])?;
    let o2 = output.reshape(&flat.output_shape())?;
    let unfold = Unfold::Vol2col { input, geometry: g };
    ctx.scoped(|| encode_im2col_gemm(ctx, encoder, &flat, &plan, params.activation, unfold, &w2, bias, &o2))?
}
