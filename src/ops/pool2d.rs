//! max_pool2d and avg_pool2d: one kernel (`shaders/pool2d.wgsl`), the reduction chosen by the
//! `MODE` override; f32 or f16 storage (the output takes the input's dtype; f32 arithmetic).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::pool2d::{self, PoolParams};
use crate::ops::bands::{self, RowGeometry};
use crate::ops::{as_batched, batch, common_dtype, returned_shape, unbatched};
use crate::params::Pool2dParams;
use crate::tensor::{DType, Tensor};

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Max = 0,
    Avg = 1,
}

impl PoolMode {
    pub const ALL: [PoolMode; 2] = [PoolMode::Max, PoolMode::Avg];
}

/// Max pooling (padding is −∞), submitted.
pub fn max_pool2d(ctx: &GpuContext, input: &Tensor, params: &Pool2dParams) -> Result<Tensor> {
    pool2d(ctx, input, params, PoolMode::Max)
}

/// Average pooling, submitted.
pub fn avg_pool2d(ctx: &GpuContext, input: &Tensor, params: &Pool2dParams) -> Result<Tensor> {
    pool2d(ctx, input, params, PoolMode::Avg)
}

/// Either pooling, submitted; returns `[N, C, Ho, Wo]`.
pub fn pool2d(ctx: &GpuContext, input: &Tensor, params: &Pool2dParams, mode: PoolMode) -> Result<Tensor> {
    let shape = params.validate(&as_batched(input.shape(), 4))?;
    let output = Tensor::empty_as(ctx, &returned_shape(input.shape(), &shape), input.dtype())?;
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("pool2d") });
    pool2d_into(ctx, &mut encoder, input, params, mode, &output)?;
    ctx.submit(encoder)?;
    Ok(output)
}

/// Records into the caller's encoder; writes `output`.
pub fn pool2d_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    params: &Pool2dParams,
    mode: PoolMode,
    output: &Tensor,
) -> Result<()> {
    if let Some(v) = unbatched(4, &[(input, "input"), (output, "output")])? {
        return pool2d_into(ctx, encoder, &v[0], params, mode, &v[1]);
    }
    let shape = params.validate(input.shape())?;
    if output.shape() != shape {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {shape:?}", output.shape()),
        });
    }
    for (t, what) in [(input, "input"), (output, "output")] {
        t.check_device(ctx, what)?;
    }
    let dtype = common_dtype("pool2d", input, &[(Some(output), "output")])?;
    let half = dtype == DType::F16;
    let n = input.shape()[0];
    let image_bytes = |t: &Tensor| (t.numel() / n.max(1)) as u64 * dtype.size();
    if n > 0 && (image_bytes(input) > ctx.max_binding() || image_bytes(output) > ctx.max_binding()) {
        // One image beyond one binding: bands of output rows ([`crate::ops::bands`]). A band's
        // top edge is the image's padding or real rows; the divisor of avg (the window's size,
        // or its in-image positions) is the same as in one call.
        let s = input.shape();
        let rows = RowGeometry {
            c_in: s[1] as u64,
            h: s[2] as u64,
            w: s[3] as u64,
            c_out: s[1] as u64,
            h_out: shape[2] as u64,
            w_out: shape[3] as u64,
            span: params.kernel[0] as u64,
            stride: params.stride()[0] as u64,
            pad_top: params.padding[0] as u64,
            elem: dtype.size(),
            transposed: false,
            workspace: None,
        };
        let bands = rows.plan("pool2d", ctx.max_binding())?;
        for i in 0..n {
            let (x, y) = (input.narrow_batch(i, 1)?, output.narrow_batch(i, 1)?);
            bands::for_each_band(ctx, encoder, &rows, &bands, &x, &y, bands::Role::Out, |encoder, x, y, band| {
                record_pool2d(ctx, encoder, x, params, mode, y, half, band.pad_top)
            })?;
        }
        return Ok(());
    }
    let batched = [batch::input(input, "input"), batch::output(output, "output")];
    let pieces = batch::pieces(ctx, "pool2d", &batched)?;
    batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
        record_pool2d(ctx, encoder, &t[0], params, mode, &t[1], half, params.padding[0])
    })
}

/// Records the pooling of tensors that each fit one binding, `pad_top` rows of padding above
/// `input` (the params' own, or a row band's).
#[allow(clippy::too_many_arguments)]
fn record_pool2d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    params: &Pool2dParams,
    mode: PoolMode,
    output: &Tensor,
    half: bool,
    pad_top: u32,
) -> Result<()> {
    let shape = output.shape();
    let s = input.shape();
    let stride = params.stride();
    let p = PoolParams {
        h: s[2] as u32,
        w: s[3] as u32,
        kh: params.kernel[0],
        kw: params.kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        pad_top,
        pad_left: params.padding[1],
        h_out: shape[2] as u32,
        w_out: shape[3] as u32,
        total: output.numel() as u32,
        ..Default::default()
    };
    pool2d::record(ctx, encoder, p, mode, mode == PoolMode::Max || params.count_include_pad, input, output, half)
}
