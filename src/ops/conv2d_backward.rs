//! The conv2d backward pass: the gradients of `y = conv2d(x, w, b)` with respect to `x`, `w`
//! and `b`, given `dy`, matching PyTorch autograd for every parameter conv2d accepts.
//!
//! - grad_input = conv_transpose2d(dy, w) with the conv's stride, padding, dilation and
//!   groups, and the output_padding that restores H×W (the rows/columns a stride never reads
//!   get zero gradient). The conv weight `[Cout, Cin/G, kh, kw]` is already the transposed
//!   conv's `[Cin_T, Cout_T/G, kh, kw]`.
//! - grad_weight = one GEMM per group, `dW[g] = dY[g] · im2col(x)[g]ᵀ`, with the im2col
//!   matrix gathered on the fly (`A_OUTPUT_GRAD`, `B_TAPS`): K runs over all N·Ho·Wo pixels, no
//!   workspace.
//! - grad_bias = per-channel sums of dy (`channel_sum.wgsl`, a fixed-order tree reduction).
//! - Depthwise convs (one input channel per group) use `depthwise_backward.wgsl` for
//!   grad_input (a gather) and grad_weight (one fixed-order reduction per weight element).
//!
//! f16 storage (every tensor f16, f32 accumulation in every kernel) runs the same kernels'
//! f16 variants; grad_input goes through conv_transpose2d's f16 output phases.
//!
//! No float atomics anywhere: every result is bit-identical run to run.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::channel_sum::{self, SumParams};
use crate::kernels::depthwise_backward;
use crate::kernels::gemm::{GemmParams, GemmProblem};
use crate::kernels::{gemm, record, whole, Dispatch, UniformArena};
use crate::ops::{as_batched, check_binding, common_dtype, unbatched};
use crate::params::{Activation, Conv2dParams, ConvTranspose2dParams, Padding};
use crate::tensor::{DType, Tensor};

/// Which gradients to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grads {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

impl Grads {
    pub const ALL: Grads = Grads { input: true, weight: true, bias: true };
}

/// The gradients asked for.
#[derive(Clone, Debug)]
pub struct Conv2dGrads {
    /// `[N, Cin, H, W]`
    pub grad_input: Option<Tensor>,
    /// `[Cout, Cin/groups, kh, kw]`
    pub grad_weight: Option<Tensor>,
    /// `[Cout]`
    pub grad_bias: Option<Tensor>,
}

/// The transposed-conv parameters whose output is the conv's input gradient.
pub fn grad_input_params(params: &Conv2dParams, input: &[usize], weight: &[usize]) -> Result<ConvTranspose2dParams> {
    let g = params.validate(&as_batched(input, 4), weight, None)?;
    let op = |axis: usize, len: u32, k: u32, pads: u32| {
        // H + pads − d·(k−1) − 1 = (Ho − 1)·s + r with 0 ≤ r < s: r rows are never reached.
        let span = (len + pads) as i64 - (g.dilation[axis] * (k - 1)) as i64 - 1;
        let out = if axis == 0 { g.h_out } else { g.w_out } as i64;
        (span - (out - 1) * g.stride[axis] as i64) as u32
    };
    Ok(ConvTranspose2dParams {
        stride: g.stride,
        padding: Padding::Explicit { top: g.pads.top, left: g.pads.left, bottom: g.pads.bottom, right: g.pads.right },
        output_padding: [op(0, g.h, g.kh, g.pads.top + g.pads.bottom), op(1, g.w, g.kw, g.pads.left + g.pads.right)],
        dilation: g.dilation,
        groups: g.groups,
        activation: Activation::None,
        algorithm: crate::params::Algorithm::Auto,
    })
}

/// Computes the gradients in `which`, submitted; see the module docs.
pub fn conv2d_backward(
    ctx: &GpuContext,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    which: Grads,
) -> Result<Conv2dGrads> {
    let g = params.validate(&as_batched(input.shape(), 4), weight.shape(), None)?;
    let alloc = |on: bool, shape: &[usize]| on.then(|| Tensor::empty_as(ctx, shape, input.dtype())).transpose();
    let grads = Conv2dGrads {
        grad_input: alloc(which.input, input.shape())?,
        grad_weight: alloc(which.weight, weight.shape())?,
        grad_bias: alloc(which.bias, &[g.c_out as usize])?,
    };
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv2d_backward") });
    conv2d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// Records the backward pass into the caller's encoder, writing each gradient tensor that
/// `grads` holds (shapes of input, weight and `[Cout]`).
pub fn conv2d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    let mut tensors = vec![(input, "input"), (grad_output, "grad_output")];
    tensors.extend(grads.grad_input.as_ref().map(|t| (t, "grad_input")));
    if let Some(v) = unbatched(4, &tensors)? {
        let batched = Conv2dGrads {
            grad_input: grads.grad_input.as_ref().map(|_| v[2].clone()),
            grad_weight: grads.grad_weight.clone(),
            grad_bias: grads.grad_bias.clone(),
        };
        return conv2d_backward_into(ctx, encoder, &v[0], weight, &v[1], params, &batched);
    }
    let g = params.validate(input.shape(), weight.shape(), None)?;
    if params.activation != Activation::None {
        return Err(Error::param(
            "activation",
            "conv2d_backward differentiates the convolution alone: pass the gradient with respect to the conv's output and no activation",
        ));
    }
    if grad_output.shape() != g.output_shape() {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected the conv's output shape {:?}", grad_output.shape(), g.output_shape()),
        });
    }
    for (t, what) in [(input, "input"), (weight, "weight"), (grad_output, "grad_output")] {
        t.check_device(ctx, what)?;
    }
    check_binding(ctx, weight, "weight")?;
    // f16 storage for every tensor or none (f32 accumulation in every kernel).
    let dtype = common_dtype(
        "conv2d_backward",
        input,
        &[
            (Some(weight), "weight"),
            (Some(grad_output), "grad_output"),
            (grads.grad_input.as_ref(), "grad_input"),
            (grads.grad_weight.as_ref(), "grad_weight"),
            (grads.grad_bias.as_ref(), "grad_bias"),
        ],
    )?;
    let half = dtype == DType::F16;
    let outs = [(&grads.grad_input, input.shape()), (&grads.grad_weight, weight.shape())];
    for (t, shape) in outs {
        if let Some(t) = t {
            if t.shape() != shape {
                return Err(Error::Buffer {
                    what: "gradient",
                    reason: format!("shape {:?}, expected {shape:?}", t.shape()),
                });
            }
            t.check_device(ctx, "gradient")?;
        }
    }
    if let Some(db) = &grads.grad_bias {
        if db.shape() != [g.c_out as usize] {
            return Err(Error::Buffer {
                what: "grad_bias",
                reason: format!("shape {:?}, expected [{}]", db.shape(), g.c_out),
            });
        }
        db.check_device(ctx, "grad_bias")?;
    }
    // Depthwise convs (one input channel per group) have kernels of their own: through the
    // grouped GEMMs each group would be a one-row GEMM (measured: mbv2_dw backward 760 ms).
    // They loop over every tap (grad_input) or every output pixel (grad_weight) in one
    // invocation: past the loop budget (`EngineConfig::loop_budget`: some drivers cut loops
    // short) that gradient takes the general path, whose GEMM splits K into passes.
    if g.n == 0 {
        // An empty batch: grad_input is empty, grad_weight and grad_bias are sums over no
        // pixels (zeros, as PyTorch returns).
        for t in [&grads.grad_weight, &grads.grad_bias].into_iter().flatten() {
            encoder.clear_buffer(t.buffer(), t.offset(), Some(t.byte_len()));
        }
        return Ok(());
    }
    // grad_input splits over the batch (conv_transpose2d's pieces); grad_weight and grad_bias
    // sum over the whole batch in one reduction, which reads input and grad_output whole.
    if grads.grad_weight.is_some() || grads.grad_bias.is_some() {
        for (t, what) in [(input, "input"), (grad_output, "grad_output")] {
            check_binding(ctx, t, what).map_err(|e| match e {
                Error::TooLarge(m) => Error::TooLarge(format!(
                    "{m}: grad_weight and grad_bias reduce over the whole batch in one binding (only grad_input \
                     splits over the batch); call conv2d_backward per batch piece and add the gradients"
                )),
                e => e,
            })?;
        }
    }
    let depthwise = g.c_in_per_group() == 1 && g.groups > 1;
    let budget = ctx.config().loop_budget as u64;
    // (Its grad_input kernel binds the whole tensors; conv_transpose2d's splits the batch.)
    let whole_fits = [input, grad_output].iter().all(|t| t.byte_len() <= ctx.max_binding());
    let dw_input = depthwise && whole_fits && depthwise_backward::grad_input_turns(&g) <= budget;
    let dw_weight = depthwise && depthwise_backward::grad_weight_turns(&g) <= budget;
    if dw_input || dw_weight {
        let gi = grads.grad_input.as_ref().filter(|_| dw_input);
        let gw = grads.grad_weight.as_ref().filter(|_| dw_weight);
        depthwise_backward::record_backward(ctx, encoder, &g, input, weight, grad_output, (gi, gw), half)?;
    }
    if let Some(dx) = grads.grad_input.as_ref().filter(|_| !dw_input) {
        let tp = grad_input_params(params, input.shape(), weight.shape())?;
        crate::ops::conv_transpose2d::conv_transpose2d_into(ctx, encoder, grad_output, weight, None, &tp, dx)?;
    }
    let dw = if dw_weight { &None } else { &grads.grad_weight };
    let db = &grads.grad_bias;
    if dw.is_none() && db.is_none() {
        return Ok(());
    }
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let hw = g.h_out * g.w_out;
        let pixels = g.n * hw;
        let taps = g.c_in_per_group() * g.kh * g.kw;
        // dW[g]: M = Cout/G rows, N = taps columns (hw = N keeps every column in image 0),
        // K = all output pixels of the batch.
        let gp = GemmParams {
            a_hw: hw,
            a_channels: g.c_out,
            ..GemmParams::new(g.c_out_per_group(), taps, pixels, g.groups, taps, 0, 0).gathering(&g)
        };
        let gb = arena.push(&gp);
        let sp = SumParams { channels: g.c_out, hw, n: g.n, _pad0: 0 };
        let sb = arena.push(&sp);
        let uniforms = arena.finish(ctx)?;
        let mut dispatches: Vec<Dispatch> = Vec::new();
        if let Some(dw) = dw {
            dispatches.extend(gemm::prepare(
                ctx,
                &uniforms,
                gb,
                &gp,
                GemmProblem::GradWeight,
                Activation::None,
                grad_output,
                whole(input),
                None,
                dw,
            )?);
        }
        if let Some(db) = db {
            dispatches.extend(channel_sum::prepare(ctx, &uniforms, sb, &sp, grad_output, db, half)?);
        }
        record(ctx, encoder, "conv2d_backward", &dispatches);
        Ok(())
    })?
}
