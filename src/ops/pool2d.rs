//! max_pool2d and avg_pool2d: one kernel (`shaders/pool2d.wgsl`), the reduction chosen by the
//! `MODE` override; f32 or f16 storage (the output takes the input's dtype; f32 arithmetic).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::ops::{
    check_binding, common_dtype, fold_grid, loop_passes, pass_dispatches, range, record, uniform_block, whole,
    UniformArena,
};
use crate::params::Pool2dParams;
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{DType, Tensor};

uniform_block! {
    /// Twin of `PoolParams` in `shaders/pool2d.wgsl`.
    PoolParams {
        h, w, kh, kw, stride_h, stride_w, pad_top, pad_left, h_out, w_out, total, col_chunk, chunks, _pad0, _pad1, _pad2,
    }
}

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
    let shape = params.validate(input.shape())?;
    let output = Tensor::empty_as(ctx, &shape, input.dtype())?;
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
    let shape = params.validate(input.shape())?;
    if output.shape() != shape {
        return Err(Error::Buffer {
            what: "output",
            reason: format!("shape {:?}, expected {shape:?}", output.shape()),
        });
    }
    for (t, what) in [(input, "input"), (output, "output")] {
        t.check_device(ctx, what)?;
        check_binding(ctx, t, what)?;
    }
    let id = match common_dtype("pool2d", input, &[(Some(output), "output")])? {
        DType::F16 => ShaderId::Pool2dHalf,
        _ => ShaderId::Pool2d,
    };
    let s = input.shape();
    let stride = params.stride();
    let p = PoolParams {
        h: s[2] as u32,
        w: s[3] as u32,
        kh: params.kernel[0],
        kw: params.kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        pad_top: params.padding[0],
        pad_left: params.padding[1],
        h_out: shape[2] as u32,
        w_out: shape[3] as u32,
        total: output.numel() as u32,
        ..Default::default()
    };
    // The window in units of (row, chunk of columns), in passes of bounded loop turns (see
    // `Pass` in the shader): one pass unless the window has thousands of positions.
    let budget = ctx.config().loop_budget.max(2);
    let col_chunk = p.kw.min(budget - 1);
    let p = PoolParams { col_chunk, chunks: p.kw.div_ceil(col_chunk), ..p };
    let passes = loop_passes(p.kh * p.chunks, 1, col_chunk as u64 + 1, budget);
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let block = arena.push(&p);
        let uniforms = arena.finish(ctx)?;
        let overrides = Overrides::none()
            .with("MODE", mode as u32 as f64)
            .flag("COUNT_PAD", mode == PoolMode::Max || params.count_include_pad); // max ignores it
        let (pipeline, bgl) = ctx.pipeline(id, &overrides)?;
        let grid = fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?;
        let fixed = [range(&uniforms, block), whole(input), whole(output)];
        let dispatches = pass_dispatches(ctx, (id, &pipeline, &bgl), &fixed, &passes, p.total as u64, grid)?;
        record(encoder, "pool2d", &dispatches);
        Ok(())
    })?
}
