//! conv3d (PyTorch `torch.nn.functional.conv3d` semantics) on `[N, C, D, H, W]`: `vol2col.wgsl`
//! unfolds chunks of output voxels, then the same dense tiled GEMM as conv2d's `Im2colGemm`
//! (depth and height flattened into one axis of its conv write-out; see
//! [`crate::params::Conv3dGeometry::as_gemm_geometry`]). Chunked to the workspace budget.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::bands::{self, RowGeometry};
use crate::ops::conv2d::{encode_im2col_gemm, plan_chunks, Unfold};
use crate::ops::{as_batched, batch, channels, returned_shape, unbatched};
use crate::params::{Conv3dGeometry, Conv3dParams, Padding3d};
use crate::tensor::Tensor;

/// 3-D convolution, submitted; returns `[N, Cout, Do, Ho, Wo]`.
pub fn conv3d(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
) -> Result<Tensor> {
    let g = params.validate(&as_batched(input.shape(), 5), weight.shape(), bias.map(|b| b.shape()))?;
    let output = Tensor::empty(ctx, &returned_shape(input.shape(), &g.output_shape()))?;
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
    if let Some(v) = unbatched(5, &[(input, "input"), (output, "output")])? {
        return conv3d_into(ctx, encoder, &v[0], weight, bias, params, &v[1]);
    }
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
    }
    if let Some(b) = bias {
        b.check_device(ctx, "bias")?;
        b.require_f32("conv3d", "bias")?;
    }
    let max = ctx.max_binding();
    if g.n > 0 && weight.byte_len() > max {
        // Chunks of output channels, one volume at a time (crate::ops::channels).
        channels::for_each_chunk(
            ctx,
            encoder,
            "conv3d",
            channels::Layout::OutIn,
            g.groups,
            input,
            weight,
            bias,
            output,
            channels::Limits::default(),
            |encoder, c| {
                let p = Conv3dParams { groups: c.groups, ..*params };
                record_conv3d(ctx, encoder, c.input, c.weight, c.bias, &p, c.output)
            },
        )?;
        return Ok(());
    }
    let volume_bytes = |t: &Tensor| (t.numel() / (g.n as usize).max(1)) as u64 * 4;
    if g.n > 0 && (volume_bytes(input) > max || volume_bytes(output) > max) {
        return conv3d_in_slabs(ctx, encoder, &g, input, weight, bias, params, output);
    }
    let batched = [batch::input(input, "input"), batch::output(output, "output")];
    let pieces = batch::pieces(ctx, "conv3d", &batched)?;
    batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
        record_conv3d(ctx, encoder, &t[0], weight, bias, params, &t[1])
    })
}

/// conv3d_into for volumes larger than one storage binding: each volume in slabs of output
/// depth ([`crate::ops::bands`] with a depth plane as the row), bit-identical to one call.
#[allow(clippy::too_many_arguments)]
fn conv3d_in_slabs(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &Conv3dGeometry,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
    output: &Tensor,
) -> Result<()> {
    let ([_, h, w], [_, ho, wo]) = (g.size.map(|v| v as u64), g.out.map(|v| v as u64));
    let planes = RowGeometry {
        c_in: g.c_in as u64,
        h: g.size[0] as u64,
        w: h * w,
        c_out: g.c_out as u64,
        h_out: g.out[0] as u64,
        w_out: ho * wo,
        span: g.dilation[0] as u64 * (g.kernel[0] as u64 - 1) + 1,
        stride: g.stride[0] as u64,
        pad_top: g.pad_begin[0] as u64,
        elem: 4,
        transposed: false,
        workspace: None,
    };
    let slabs = planes.plan("conv3d", ctx.max_binding())?;
    for i in 0..g.n as usize {
        let (x, y) = (input.narrow_batch(i, 1)?, output.narrow_batch(i, 1)?);
        bands::for_each_band(ctx, encoder, &planes, &slabs, &x, &y, bands::Role::Out, |encoder, x, y, band| {
            let (front, back) = (band.pad_top, band.pad_bottom);
            let x = x.reshape(&[1, g.c_in as usize, x.shape()[2], h as usize, w as usize])?;
            let y = y.reshape(&[1, g.c_out as usize, y.shape()[2], ho as usize, wo as usize])?;
            let [_, pt, pl] = g.pad_begin;
            let [_, pb, pr] = g.pad_end;
            let padding = Padding3d::Explicit { begin: [front, pt, pl], end: [back, pb, pr] };
            record_conv3d(ctx, encoder, &x, weight, bias, &Conv3dParams { padding, ..*params }, &y)
        })?;
    }
    Ok(())
}

/// Records the conv of tensors that each fit one binding.
fn record_conv3d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: &Conv3dParams,
    output: &Tensor,
) -> Result<()> {
    let g = params.validate(input.shape(), weight.shape(), bias.map(|b| b.shape()))?;
    let flat = g.as_gemm_geometry();
    let plan = plan_chunks(ctx, &flat)?;
    // The GEMM reads the weight [Cout, Cin/G, kd, kh, kw] as [Cout, Cin/G·kd·kh·kw] and writes
    // the output as [N, Cout, Do·Ho, Wo]: the same bytes.
    let w2 = weight.reshape(&[weight.shape()[0], weight.shape()[1], flat.kh as usize, flat.kw as usize])?;
    let o2 = output.reshape(&flat.output_shape())?;
    let unfold = Unfold::Vol2col { input, geometry: g };
    ctx.scoped(|| encode_im2col_gemm(ctx, encoder, &flat, &plan, params.activation, unfold, &w2, bias, &o2))??;
    Ok(())
}
