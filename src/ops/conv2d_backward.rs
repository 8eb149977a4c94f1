//! The conv2d backward pass: the gradients of `y = conv2d(x, w, b)` with respect to `x`, `w`
//! and `b`, given `dy`, matching PyTorch autograd for every parameter conv2d accepts.
//!
//! - grad_input = conv_transpose2d(dy, w) with the conv's stride, padding, dilation and
//!   groups, and the output_padding that restores H×W (the rows/columns a stride never reads
//!   get zero gradient). The conv weight `[Cout, Cin/G, kh, kw]` is already the transposed
//!   conv's `[Cin_T, Cout_T/G, kh, kw]`.
//! - grad_weight = one GEMM per group, `dW[g] = dY[g] · im2col(x)[g]ᵀ`, with the im2col
//!   matrix gathered on the fly (`A_MODE` 2, `B_MODE` 3): K runs over all N·Ho·Wo pixels, no
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
use crate::ops::gemm::{AMode, BMode, GemmParams};
use crate::ops::{
    check_binding, common_dtype, fold_grid, gemm, loop_passes, pass_dispatches, range, record, uniform_block, whole,
    Dispatch, UniformArena,
};
use crate::params::{Activation, Conv2dParams, ConvTranspose2dParams, Padding};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{DType, Tensor};

uniform_block! {
    /// Twin of `SumParams` in `shaders/channel_sum.wgsl`.
    SumParams { channels, hw, n, _pad0 }
}

uniform_block! {
    /// Twin of `DwBackParams` in `shaders/depthwise_backward.wgsl`.
    DwBackParams {
        c_in, h, w, c_out, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        mult, n, total, _pad0, _pad1, _pad2,
    }
}

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
    let g = params.validate(input, weight, None)?;
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
    let g = params.validate(input.shape(), weight.shape(), None)?;
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
        check_binding(ctx, t, what)?;
    }
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
    let depthwise = g.c_in_per_group() == 1 && g.groups > 1;
    let budget = ctx.config().loop_budget as u64;
    let dw_input = depthwise && depthwise_grad_input_turns(&g) <= budget;
    let dw_weight = depthwise && depthwise_grad_weight_turns(&g) <= budget;
    if dw_input || dw_weight {
        let gi = grads.grad_input.as_ref().filter(|_| dw_input);
        let gw = grads.grad_weight.as_ref().filter(|_| dw_weight);
        encode_depthwise_backward(ctx, encoder, &g, input, weight, grad_output, (gi, gw), half)?;
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
                (AMode::OutputGrad, BMode::Taps),
                Activation::None,
                grad_output,
                whole(input),
                None,
                dw,
            )?);
        }
        if let Some(db) = db {
            let id = if half { ShaderId::ChannelSumHalf } else { ShaderId::ChannelSum };
            let (pipeline, bgl) = ctx.pipeline(id, &Overrides::none())?;
            let grid = fold_grid(g.c_out as u64, ctx.max_workgroups_per_dim())?;
            // each of 256 invocations turns once per 256 elements of its range (+ 8 for the
            // tree reduction): ranges of bounded turns, a running sum between them
            let passes = loop_passes(pixels, 256, 1, ctx.config().loop_budget.saturating_sub(8).max(1));
            let fixed = [range(&uniforms, sb), whole(grad_output), whole(db)];
            dispatches.extend(pass_dispatches(ctx, (id, &pipeline, &bgl), &fixed, &passes, g.c_out as u64, grid)?);
        }
        record(encoder, "conv2d_backward", &dispatches);
        Ok(())
    })?
}

/// Loop turns of one `depthwise_backward.wgsl` grad_input invocation: every tap of every
/// channel multiple.
fn depthwise_grad_input_turns(g: &crate::params::Conv2dGeometry) -> u64 {
    let mult = (g.c_out / g.c_in) as u64;
    mult * (1 + g.kh as u64 * (1 + g.kw as u64))
}

/// Loop turns of one grad_weight invocation: per chunk of 25 taps, its 1/64 of the output
/// pixels (each turning over the chunk's taps), then the store and the 6-step tree reduction.
fn depthwise_grad_weight_turns(g: &crate::params::Conv2dGeometry) -> u64 {
    let taps = (g.kh * g.kw) as u64;
    let pixels = g.n as u64 * g.h_out as u64 * g.w_out as u64;
    let chunk = taps.min(25);
    taps.div_ceil(25) * (1 + pixels.div_ceil(64) * (1 + chunk) + 8 * (1 + chunk))
}

/// grad_input and grad_weight of a depthwise conv (`shaders/depthwise_backward.wgsl`), f16
/// storage when `half`; each only where given.
#[allow(clippy::too_many_arguments)]
fn encode_depthwise_backward(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    g: &crate::params::Conv2dGeometry,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    (grad_input, grad_weight): (Option<&Tensor>, Option<&Tensor>),
    half: bool,
) -> Result<()> {
    let base = DwBackParams {
        c_in: g.c_in,
        h: g.h,
        w: g.w,
        c_out: g.c_out,
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
        mult: g.c_out / g.c_in,
        n: g.n,
        ..Default::default()
    };
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        // grad_input: one invocation per input element; grad_weight: one workgroup per
        // (output channel, kernel row).
        let pi = DwBackParams { total: input.numel() as u32, ..base };
        let pw = DwBackParams { total: g.c_out, ..base };
        let (bi, bw) = (arena.push(&pi), arena.push(&pw));
        let uniforms = arena.finish(ctx)?;
        let mut dispatches = Vec::new();
        let (gi, gw) = if half {
            (ShaderId::DepthwiseGradInputHalf, ShaderId::DepthwiseGradWeightHalf)
        } else {
            (ShaderId::DepthwiseGradInput, ShaderId::DepthwiseGradWeight)
        };
        let jobs = [(grad_input, gi, bi, (pi.total as u64).div_ceil(256)), (grad_weight, gw, bw, pw.total as u64)];
        for (out, id, block, groups) in jobs {
            let Some(out) = out else { continue };
            let (pipeline, bgl) = ctx.pipeline(id, &Overrides::none())?;
            let bind_group = ctx.bind_group(
                id,
                &bgl,
                &[range(&uniforms, block), whole(input), whole(weight), whole(grad_output), whole(out)],
            );
            dispatches.push(Dispatch { pipeline, bind_group, grid: fold_grid(groups, ctx.max_workgroups_per_dim())? });
        }
        record(encoder, "depthwise_backward", &dispatches);
        Ok(())
    })?
}
