//! max_pool2d and avg_pool2d (`torch.nn.functional`'s, with dilation for max, ceil_mode,
//! count_include_pad and divisor_override for avg): one kernel (`shaders/pool2d.wgsl`), the
//! reduction chosen by the `MODE` override; f32 or f16 storage (the output takes the input's
//! dtype; f32 arithmetic).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::pool2d::{self, PoolParams};
use crate::kernels::{check_recorded, write_plan, Step};
use crate::ops::bands::{self, RowGeometry};
use crate::ops::{as_batched, batch, common_dtype, returned_shape, unbatched};
use crate::params::Pool2dParams;
use crate::tensor::{DType, Tensor};

/// Which reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    /// Each window's maximum, the padding read as −∞ (`max_pool2d`).
    Max = 0,
    /// Each window's mean (`avg_pool2d`; `count_include_pad` and `divisor_override` set the divisor).
    Avg = 1,
}

impl PoolMode {
    /// Both modes, in `MODE` order.
    pub const ALL: [PoolMode; 2] = [PoolMode::Max, PoolMode::Avg];
}

/// `torch.nn.functional.adaptive_avg_pool2d(input, output_size)`, submitted: `[N, C, oh, ow]`.
pub fn adaptive_avg_pool2d(ctx: &GpuContext, input: &Tensor, output_size: [u32; 2]) -> Result<Tensor> {
    pool2d(ctx, input, &Pool2dParams::adaptive(output_size), PoolMode::Avg)
}

/// `torch.nn.functional.adaptive_max_pool2d(input, output_size)` (its values; the indices are
/// not returned), submitted: `[N, C, oh, ow]`.
pub fn adaptive_max_pool2d(ctx: &GpuContext, input: &Tensor, output_size: [u32; 2]) -> Result<Tensor> {
    pool2d(ctx, input, &Pool2dParams::adaptive(output_size), PoolMode::Max)
}

/// The flat in-plane index `y·W + x` of each window's maximum (PyTorch's `return_indices`:
/// the first maximum on ties, the last NaN), `[N, C, Ho, Wo]` (unbatched `[C, Ho, Wo]`) of u32
/// in a storage buffer of the context.
#[derive(Clone, Debug)]
pub struct PoolIndices {
    shape: Vec<usize>,
    buffer: wgpu::Buffer,
}

impl PoolIndices {
    /// The pooled output's shape: `[N, C, Ho, Wo]`, or `[C, Ho, Wo]` for an unbatched input.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The buffer: `shape`'s elements as little-endian u32 from byte 0.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Reads the indices back (blocking natively; see [`Tensor::to_vec`]).
    pub fn to_vec(&self, ctx: &GpuContext) -> Result<Vec<u32>> {
        // the buffer read as f32 words: their bits are the indices
        let words = Tensor::from_buffer(ctx, self.buffer.clone(), &[self.shape.iter().product()])?;
        Ok(words.to_vec(ctx)?.into_iter().map(f32::to_bits).collect())
    }
}

/// `torch.nn.functional.max_pool2d(..., return_indices=True)`, submitted: the pooled values
/// `[N, C, Ho, Wo]` (as [`max_pool2d`]) and each window's [`PoolIndices`]. f32 or f16.
///
/// With `params.adaptive` set, `adaptive_max_pool2d(..., return_indices=True)`.
///
/// Errors: those of [`max_pool2d`]; [`Error::TooLarge`] when the input or the indices exceed
/// one storage binding (the indices are not split into batch pieces).
pub fn max_pool2d_with_indices(
    ctx: &GpuContext,
    input: &Tensor,
    params: &Pool2dParams,
) -> Result<(Tensor, PoolIndices)> {
    let x: [usize; 4] = as_batched(input.shape(), 4).try_into().map_err(|_| Error::Rank {
        what: "input",
        expected: 4,
        layout: "N, C, H, W",
        got: input.shape().to_vec(),
    })?;
    let y = params.validate(&x)?;
    let outputs = y.iter().product::<usize>();
    let max = ctx.max_binding();
    if input.byte_len() > max || outputs as u64 * 4 > max {
        return Err(Error::TooLarge(format!(
            "max_pool2d_with_indices binds the input {:?} and the indices {y:?} (u32) whole; one storage binding \
             holds at most {max} bytes on this device",
            input.shape()
        )));
    }
    let values = max_pool2d(ctx, input, params)?;
    let buffer = ctx.create_buffer(
        "wgconv.max_pool2d_indices",
        (outputs as u64 * 4).next_multiple_of(4).max(16),
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    )?;
    let indices = PoolIndices { shape: returned_shape(input.shape(), &y), buffer };
    if outputs == 0 {
        return Ok((values, indices));
    }
    let batched = input.reshape(&x)?;
    let p = crate::ops::pool2d_backward::back_params(params, x, y);
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("max_pool2d_indices") });
    let half = input.dtype() == DType::F16;
    crate::kernels::pool2d_backward::record_argmax(
        ctx,
        &mut encoder,
        p,
        outputs as u32,
        &batched,
        &indices.buffer,
        half,
    )?;
    ctx.submit(encoder)?;
    Ok((values, indices))
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

/// What one pool2d call records, decided from the input's shape, the dtype and the
/// parameters before any GPU object ([`plan_pool2d`]; [`pool2d_into`] records it).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dPlan {
    /// `[N, C, H, W]` (an unbatched input as a batch of one)
    pub input: [usize; 4],
    /// `[N, C, Ho, Wo]`
    pub output: [usize; 4],
    /// The reduction.
    pub mode: PoolMode,
    /// The storage type of the input and the output (f32 or f16).
    pub dtype: DType,
    /// Pieces of the batch run one after another because the input or output exceeds one
    /// storage binding ([`crate::ops::batch`]); 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Bands of output rows per image because one image exceeds one binding
    /// ([`crate::ops::bands`]; `batch_pieces` then counts images); 1 otherwise.
    pub row_bands: u32,
    /// Every launch, in recording order (a split call's each note says which piece or band).
    pub steps: Vec<Step>,
}

impl std::fmt::Display for Pool2dPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.mode {
            PoolMode::Max => "max_pool2d",
            PoolMode::Avg => "avg_pool2d",
        };
        let split = match (self.batch_pieces, self.row_bands) {
            (_, b) if b > 1 => format!("each image in {b} row bands"),
            (p, _) if p > 1 => format!("{p} batch pieces"),
            _ => "one call".to_string(),
        };
        write_plan(f, op, &self.input, &self.output, ("pool2d", &split), 0, format_args!(""), &self.steps)
    }
}

/// Plans a pooling of `input` `[N, C, H, W]` (or `[C, H, W]`) stored as `dtype`: validates
/// `params` and lists the launches, splitting over the batch or into bands of output rows
/// where a tensor exceeds one storage binding. Creates no GPU object. Errors as [`pool2d()`].
pub fn plan_pool2d(
    ctx: &GpuContext,
    input: &[usize],
    dtype: DType,
    params: &Pool2dParams,
    mode: PoolMode,
) -> Result<Pool2dPlan> {
    let input = as_batched(input, 4);
    let output = params.validate(&input)?;
    check_mode(params, mode)?;
    let (x, y): ([usize; 4], [usize; 4]) = (
        input.as_slice().try_into().map_err(|_| Error::Internal("pool2d input rank".into()))?,
        output.as_slice().try_into().map_err(|_| Error::Internal("pool2d output rank".into()))?,
    );
    let mut plan = Pool2dPlan { input: x, output: y, mode, dtype, batch_pieces: 1, row_bands: 1, steps: Vec::new() };
    let n = x[0];
    if n == 0 {
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    let (count_pad, half) = (mode == PoolMode::Max || params.count_include_pad, dtype == DType::F16);
    let max = ctx.max_binding();
    let per_image = |s: &[usize; 4]| (s.iter().product::<usize>() / n) as u64 * dtype.size();
    let mut steps = |x: [usize; 4], y: [usize; 4], (pad_top, pad_bottom): (u32, u32), what: String| -> Result<()> {
        let p = pool_params(params, x, y, pad_top, pad_bottom);
        plan.steps.extend(pool2d::steps(ctx, p, mode, count_pad, half, &what)?);
        Ok(())
    };
    if per_image(&x) > max || per_image(&y) > max {
        if params.adaptive.is_some() {
            return Err(Error::TooLarge(format!(
                "adaptive pooling: one image of {x:?} or {y:?} exceeds one storage binding ({max} bytes); it runs whole \
                 images only"
            )));
        }
        let rows = row_geometry(params, x, y, dtype);
        let bands = rows.plan("pool2d", max)?;
        for i in 0..n {
            for b in rows.bands(&bands)? {
                let (bx, by) = ([1, x[1], b.rows_in as usize, x[3]], [1, y[1], (b.oy1 - b.oy0) as usize, y[3]]);
                steps(bx, by, (b.pad_top, b.pad_bottom), format!("image {i}, rows {}..{}", b.oy0, b.oy1))?;
            }
        }
        plan.batch_pieces = n as u32;
        plan.row_bands = bands.bands as u32;
    } else {
        let pieces = batch::plan(ctx, "pool2d", n, &[("input", &x, per_image(&x)), ("output", &y, per_image(&y))])?;
        for n0 in (0..n).step_by(pieces.per_piece) {
            let len = pieces.per_piece.min(n - n0);
            let what = if pieces.pieces > 1 { format!("images {n0}..{}", n0 + len) } else { String::new() };
            steps([len, x[1], x[2], x[3]], [len, y[1], y[2], y[3]], (params.padding[0], params.padding[0]), what)?;
        }
        plan.batch_pieces = pieces.pieces as u32;
    }
    Ok(plan)
}

/// The options one pooling has and the other not: PyTorch's avg_pool2d has no dilation,
/// max_pool2d no divisor.
pub(crate) fn check_mode(params: &Pool2dParams, mode: PoolMode) -> Result<()> {
    match mode {
        PoolMode::Avg if params.dilation != [1, 1] => {
            Err(Error::param("dilation", format!("{:?}: avg_pool2d has no dilation (as in PyTorch)", params.dilation)))
        }
        PoolMode::Max if params.divisor_override.is_some() => {
            Err(Error::param("divisor_override", "max_pool2d divides nothing: it is avg_pool2d's option"))
        }
        _ => Ok(()),
    }
}

/// The kernel's parameters for input `x` and output `y` (a piece, a band or the whole),
/// `pad_top` and `pad_bottom` rows of padding above and below `x` (the params' own, or a
/// band's: an inner band's windows end inside its rows).
pub(crate) fn pool_params(
    params: &Pool2dParams,
    x: [usize; 4],
    y: [usize; 4],
    pad_top: u32,
    pad_bottom: u32,
) -> PoolParams {
    let stride = params.stride();
    let p = PoolParams {
        dil_h: params.dilation[0],
        dil_w: params.dilation[1],
        divisor: params.divisor_override.unwrap_or(0),
        // where count_include_pad's window is clipped: the end of the padded input
        h_end: x[2] as u32 + pad_bottom.min(params.padding[0]),
        w_end: (x[3] as u32) + params.padding[1],
        h: x[2] as u32,
        w: x[3] as u32,
        kh: params.kernel[0],
        kw: params.kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        pad_top,
        pad_left: params.padding[1],
        h_out: y[2] as u32,
        w_out: y[3] as u32,
        total: y.iter().product::<usize>() as u32,
        ..Default::default()
    };
    if params.adaptive.is_none() {
        return p;
    }
    // adaptive: each window's own rows and columns (window_of in the shader); kh, kw bound them
    let [kh, kw] = params.window_extent(&x);
    PoolParams {
        kh,
        kw,
        stride_h: 1,
        stride_w: 1,
        pad_top: 0,
        pad_left: 0,
        dil_h: 1,
        dil_w: 1,
        h_end: x[2] as u32,
        w_end: x[3] as u32,
        adaptive: 1,
        ..p
    }
}

/// The rows of one image as [`crate::ops::bands`] cuts them.
fn row_geometry(params: &Pool2dParams, x: [usize; 4], y: [usize; 4], dtype: DType) -> RowGeometry {
    RowGeometry {
        c_in: x[1] as u64,
        h: x[2] as u64,
        w: x[3] as u64,
        c_out: y[1] as u64,
        h_out: y[2] as u64,
        w_out: y[3] as u64,
        span: (params.dilation[0] * (params.kernel[0] - 1) + 1) as u64,
        stride: params.stride()[0] as u64,
        pad_top: params.padding[0] as u64,
        elem: dtype.size(),
        transposed: false,
        workspace: None,
    }
}

/// Records into the caller's encoder; writes `output`. Records [`plan_pool2d`]'s launches:
/// a tensor beyond one storage binding runs in batch pieces, one image beyond it in bands of
/// output rows (a band's top edge is the image's padding or real rows; avg's divisor, the
/// window's size or its in-image positions, is the same as in one call).
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
    let plan = plan_pool2d(ctx, input.shape(), dtype, params, mode)?;
    let mut recorded = 0;
    if plan.row_bands > 1 {
        let rows = row_geometry(params, plan.input, plan.output, dtype);
        let bands = rows.plan("pool2d", ctx.max_binding())?;
        for i in 0..plan.input[0] {
            let (x, y) = (input.narrow_batch(i, 1)?, output.narrow_batch(i, 1)?);
            bands::for_each_band(ctx, encoder, &rows, &bands, &x, &y, bands::Role::Out, |encoder, x, y, band| {
                recorded += record_pool2d(ctx, encoder, x, params, mode, y, half, (band.pad_top, band.pad_bottom))?;
                Ok(())
            })?;
        }
    } else if plan.batch_pieces > 0 {
        let batched = [batch::input(input, "input"), batch::output(output, "output")];
        let pieces = batch::pieces(ctx, "pool2d", &batched)?;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            let pads = (params.padding[0], params.padding[0]);
            recorded += record_pool2d(ctx, encoder, &t[0], params, mode, &t[1], half, pads)?;
            Ok(())
        })?;
    }
    check_recorded("pool2d", recorded, &plan.steps)
}

/// Records the pooling of tensors that each fit one binding, `pads` rows of padding above and
/// below `input` (the params' own, or a row band's); returns the number of launches.
#[allow(clippy::too_many_arguments)]
fn record_pool2d(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    params: &Pool2dParams,
    mode: PoolMode,
    output: &Tensor,
    half: bool,
    (pad_top, pad_bottom): (u32, u32),
) -> Result<usize> {
    let shape = |t: &Tensor| -> Result<[usize; 4]> {
        t.shape().try_into().map_err(|_| Error::Internal("pool2d tensor rank".into()))
    };
    let p = pool_params(params, shape(input)?, shape(output)?, pad_top, pad_bottom);
    let count_pad = mode == PoolMode::Max || params.count_include_pad;
    pool2d::record(ctx, encoder, p, mode, count_pad, input, output, half)
}
