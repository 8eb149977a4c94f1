//! The max_pool2d and avg_pool2d backward passes (PyTorch autograd, with every option the
//! forward takes: dilation, ceil_mode, count_include_pad, divisor_override): grad_input from
//! grad_output, by gathers (`shaders/pool2d_backward.wgsl`).
//!
//! - Max: each window's maximum is located first (its flat index, as PyTorch's
//!   `max_pool2d_with_indices` picks it: ties keep the first position in row-major order, a
//!   NaN the last NaN), then each input element sums the gradients of the windows whose
//!   maximum it is.
//! - Avg: each input element sums grad_output / divisor over the windows that contain it
//!   (the divisor as the forward's: divisor_override, the window clipped to the padded input,
//!   or its in-image positions without `count_include_pad`).
//!
//! Every element is one fixed-order sum (windows in row-major order, as PyTorch's CPU kernel
//! adds them): bit-identical run to run, no atomics. f32 or f16 storage (f32 sums).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::pool2d::PoolParams;
use crate::kernels::pool2d_backward;
use crate::kernels::{check_recorded, write_plan, Step};
use crate::ops::pool2d::PoolMode;
use crate::ops::{as_batched, batch, common_dtype, unbatched};
use crate::params::Pool2dParams;
use crate::tensor::{DType, Tensor};

/// The gradient of `max_pool2d(input, params)` with respect to its input given `grad_output`
/// (`[N, C, Ho, Wo]`), submitted: `[N, C, H, W]` (unbatched `[C, H, W]` for an unbatched
/// input), as `torch.nn.functional.max_pool2d` under autograd. Errors as
/// [`pool2d_backward_into`].
pub fn max_pool2d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    grad_output: &Tensor,
    params: &Pool2dParams,
) -> Result<Tensor> {
    pool2d_backward(ctx, input, grad_output, params, PoolMode::Max)
}

/// The gradient of `avg_pool2d(input, params)` with respect to its input given `grad_output`,
/// submitted (the input's values play no part: its shape and dtype give grad_input's).
/// Errors as [`pool2d_backward_into`].
pub fn avg_pool2d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    grad_output: &Tensor,
    params: &Pool2dParams,
) -> Result<Tensor> {
    pool2d_backward(ctx, input, grad_output, params, PoolMode::Avg)
}

/// Either pooling's input gradient, submitted.
pub fn pool2d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    grad_output: &Tensor,
    params: &Pool2dParams,
    mode: PoolMode,
) -> Result<Tensor> {
    params.validate(&as_batched(input.shape(), 4))?;
    let grad_input = Tensor::empty_as(ctx, input.shape(), input.dtype())?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("pool2d_backward") });
    pool2d_backward_into(ctx, &mut encoder, input, grad_output, params, mode, &grad_input)?;
    ctx.submit(encoder)?;
    Ok(grad_input)
}

/// What one pool2d_backward call records ([`plan_pool2d_backward`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Pool2dBackwardPlan {
    /// `[N, C, H, W]` (an unbatched input as a batch of one)
    pub input: [usize; 4],
    /// `[N, C, Ho, Wo]`
    pub output: [usize; 4],
    /// The reduction.
    pub mode: PoolMode,
    /// The storage type of every tensor (f32 or f16).
    pub dtype: DType,
    /// Pieces of the batch run one after another (a tensor beyond one storage binding); 1
    /// otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Every launch, in recording order.
    pub steps: Vec<Step>,
}

impl std::fmt::Display for Pool2dBackwardPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.mode {
            PoolMode::Max => "max_pool2d_backward",
            PoolMode::Avg => "avg_pool2d_backward",
        };
        let split =
            if self.batch_pieces > 1 { format!("{} batch pieces", self.batch_pieces) } else { "one call".into() };
        write_plan(f, op, &self.input, &self.output, ("gathers", &split), 0, format_args!(""), &self.steps)
    }
}

/// The kernels' parameters for input `x` and output `y` (a piece or the whole): the
/// forward's window, one invocation per input element (the gather's; argmax counts outputs).
pub(crate) fn back_params(params: &Pool2dParams, x: [usize; 4], y: [usize; 4]) -> PoolParams {
    let p = crate::ops::pool2d::pool_params(params, x, y, params.padding[0], params.padding[0]);
    PoolParams { total: x.iter().product::<usize>() as u32, ..p }
}

/// The batch pieces: input, grad_output, grad_input and (max) the u32 window indices must
/// each fit one binding per piece.
fn pieces(ctx: &GpuContext, x: [usize; 4], y: [usize; 4], dtype: DType, mode: PoolMode) -> Result<batch::BatchPieces> {
    let n = x[0];
    let per_image = |s: &[usize; 4], elem: u64| (s[1..].iter().product::<usize>()) as u64 * elem;
    let mut sizes: Vec<(&str, &[usize], u64)> =
        vec![("input", &x[..], per_image(&x, dtype.size())), ("grad_output", &y[..], per_image(&y, dtype.size()))];
    if mode == PoolMode::Max {
        sizes.push(("the window indices", &y[..], per_image(&y, 4)));
    }
    batch::plan(ctx, "pool2d_backward", n, &sizes)
}

/// Plans the backward pooling of an input `[N, C, H, W]` (or `[C, H, W]`) stored as `dtype`:
/// validates and lists the launches, in batch pieces where a tensor exceeds one storage
/// binding. Creates no GPU object. Errors as [`pool2d_backward_into`].
pub fn plan_pool2d_backward(
    ctx: &GpuContext,
    input: &[usize],
    dtype: DType,
    params: &Pool2dParams,
    mode: PoolMode,
) -> Result<Pool2dBackwardPlan> {
    let input = as_batched(input, 4);
    let output = params.validate(&input)?;
    crate::ops::pool2d::check_mode(params, mode)?;
    let x: [usize; 4] = input.as_slice().try_into().map_err(|_| Error::Internal("pool2d input rank".into()))?;
    let mut plan = Pool2dBackwardPlan { input: x, output, mode, dtype, batch_pieces: 0, steps: Vec::new() };
    let p = back_params(params, x, output);
    let (turns, budget) = (pool2d_backward::windows_per_element(&p) + 2, ctx.config().loop_budget as u64);
    if turns > budget {
        return Err(Error::Unsupported(format!(
            "pool2d_backward gathers over up to {turns} windows per input element (kernel {:?}, stride {:?}) in \
             one loop, beyond the loop budget of {budget} (EngineConfig::loop_budget; some drivers stop longer \
             loops early)",
            params.kernel,
            params.stride()
        )));
    }
    if x[0] == 0 {
        return Ok(plan);
    }
    let pieces = pieces(ctx, x, output, dtype, mode)?;
    let count_pad = params.count_include_pad;
    for n0 in (0..x[0]).step_by(pieces.per_piece) {
        let len = pieces.per_piece.min(x[0] - n0);
        let what = if pieces.pieces > 1 { format!("images {n0}..{}", n0 + len) } else { String::new() };
        let (xp, yp) = ([len, x[1], x[2], x[3]], [len, output[1], output[2], output[3]]);
        let outputs = yp.iter().product::<usize>() as u32;
        let half = dtype == DType::F16;
        plan.steps.extend(pool2d_backward::steps(
            ctx,
            back_params(params, xp, yp),
            outputs,
            mode,
            count_pad,
            half,
            &what,
        )?);
    }
    plan.batch_pieces = pieces.pieces as u32;
    Ok(plan)
}

/// Records the backward pooling into the caller's encoder, writing `grad_input` (the input's
/// shape). Errors: the forward's validation; shapes of grad_output and grad_input; one dtype
/// for every tensor ([`Error::DTypeMismatch`]); [`Error::TooLarge`] when one image exceeds a
/// storage binding; [`Error::Unsupported`] when an input element lies in more windows than
/// the loop budget allows one gather.
pub fn pool2d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    grad_output: &Tensor,
    params: &Pool2dParams,
    mode: PoolMode,
    grad_input: &Tensor,
) -> Result<()> {
    let ts = [(input, "input"), (grad_output, "grad_output"), (grad_input, "grad_input")];
    if let Some(v) = unbatched(4, &ts)? {
        return pool2d_backward_into(ctx, encoder, &v[0], &v[1], params, mode, &v[2]);
    }
    let shape = params.validate(input.shape())?;
    if grad_output.shape() != shape {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected the pooling's output shape {shape:?}", grad_output.shape()),
        });
    }
    if grad_input.shape() != input.shape() {
        return Err(Error::Buffer {
            what: "grad_input",
            reason: format!("shape {:?}, expected the input's {:?}", grad_input.shape(), input.shape()),
        });
    }
    for (t, what) in ts {
        t.check_device(ctx, what)?;
    }
    let dtype = common_dtype(
        "pool2d_backward",
        input,
        &[(Some(grad_output), "grad_output"), (Some(grad_input), "grad_input")],
    )?;
    let plan = plan_pool2d_backward(ctx, input.shape(), dtype, params, mode)?;
    let mut recorded = 0;
    if plan.batch_pieces > 0 {
        let batched = [
            batch::input(input, "input"),
            batch::input(grad_output, "grad_output"),
            batch::output(grad_input, "grad_input"),
        ];
        let pieces = pieces(ctx, plan.input, plan.output, dtype, mode)?;
        batch::for_each_piece(ctx, encoder, &pieces, &batched, |encoder, t| {
            let dims = |t: &Tensor| -> Result<[usize; 4]> {
                t.shape().try_into().map_err(|_| Error::Internal("pool2d_backward tensor rank".into()))
            };
            let p = back_params(params, dims(&t[0])?, dims(&t[1])?);
            let half = dtype == DType::F16;
            recorded +=
                pool2d_backward::record(ctx, encoder, p, mode, params.count_include_pad, &t[0], &t[1], &t[2], half)?;
            Ok(())
        })?;
    }
    check_recorded("pool2d_backward", recorded, &plan.steps)
}
