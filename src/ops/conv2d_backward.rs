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
use crate::ops::{as_batched, bands, batch, channels, common_dtype, unbatched};
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

/// conv2d_backward_into for an input or grad_output beyond one storage binding: the backward
/// pass of each batch piece ([`crate::ops::batch`]), grad_input into the piece's images (the
/// same kernels as one call: bit-identical), grad_weight and grad_bias into aligned slots
/// of a scratch buffer. When one image exceeds a binding: grad_input by conv_transpose2d's
/// row bands, and the weight and bias gradients of each band of output rows of each image
/// (its grad_output rows and its input rows with their halo, [`crate::ops::bands`]) into
/// the slots. The slots are then summed
/// over the pieces in a fixed order (`channel_sum.wgsl` over `[pieces, slot]`) and copied
/// into place. The sum over the batch is regrouped at the piece boundaries: equal to one
/// call within f32 rounding, not bit for bit (f16: each piece's gradient is rounded to f16).
#[allow(clippy::too_many_arguments)]
fn backward_in_pieces(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
    half: bool,
) -> Result<()> {
    let sums: Vec<&Tensor> = [&grads.grad_weight, &grads.grad_bias].into_iter().flatten().collect();
    let g = params.validate(input.shape(), weight.shape(), None)?;
    let dtype = input.dtype();
    let n = g.n as usize;
    let image_bytes = |t: &Tensor| (t.numel() / n) as u64 * dtype.size();
    let max = ctx.max_binding();
    // The units each gradient gets a slot for: batch pieces, or (image, row band) pairs when
    // one image exceeds a binding.
    let mut batched = vec![batch::input(input, "input"), batch::input(grad_output, "grad_output")];
    batched.extend(grads.grad_input.as_ref().map(|dx| batch::output(dx, "grad_input")));
    let (units, split) = if image_bytes(input) > max || image_bytes(grad_output) > max {
        let rows = crate::ops::conv2d::row_geometry(&g, dtype);
        let bands = rows.plan("conv2d_backward", max)?;
        (n * bands.bands as usize, Err((rows, bands)))
    } else {
        let pieces = batch::pieces(ctx, "conv2d_backward", &batched)?;
        (pieces.pieces, Ok(pieces))
    };
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    // One slot per unit for each gradient, each slot starting at an aligned offset.
    let slot = |t: &Tensor| t.byte_len().next_multiple_of(align);
    let mut scratch = Vec::new();
    for t in &sums {
        let bytes = slot(t) * units as u64;
        if bytes > max {
            return Err(Error::TooLarge(format!(
                "conv2d_backward: the {units} partial gradients {:?} (one per batch piece or row band) take {bytes} \
                 bytes; one storage binding holds at most {max} on this device",
                t.shape(),
            )));
        }
        scratch.push(ctx.create_buffer("wgconv.piece_gradients", bytes, crate::tensor::TENSOR_USAGE)?);
    }
    let view = |k: usize, i: usize| {
        Tensor::from_buffer_as(ctx, scratch[i].clone(), sums[i].shape(), sums[i].dtype())
            .map(|t| t.with_offset(k as u64 * slot(sums[i])))
    };
    // The backward pass of unit k into its slots.
    let mut k = 0;
    let mut unit =
        |encoder: &mut wgpu::CommandEncoder, x: &Tensor, dy: &Tensor, dx: Option<Tensor>, p: &Conv2dParams| {
            let mut i = 0;
            let mut next = |on: bool| -> Result<Option<Tensor>> {
                if !on {
                    return Ok(None);
                }
                i += 1;
                view(k, i - 1).map(Some)
            };
            let grads_k = Conv2dGrads {
                grad_input: dx,
                grad_weight: next(grads.grad_weight.is_some())?,
                grad_bias: next(grads.grad_bias.is_some())?,
            };
            k += 1;
            conv2d_backward_into(ctx, encoder, x, weight, dy, p, &grads_k)
        };
    match &split {
        Ok(pieces) => batch::for_each_piece(ctx, encoder, pieces, &batched, |encoder, t| {
            unit(encoder, &t[0], &t[1], t.get(2).cloned(), params)
        })?,
        Err((rows, bands)) => {
            // grad_input: conv_transpose2d cuts each image into bands itself.
            if let Some(dx) = &grads.grad_input {
                let tp = grad_input_params(params, input.shape(), weight.shape())?;
                crate::ops::conv_transpose2d::conv_transpose2d_into(ctx, encoder, grad_output, weight, None, &tp, dx)?;
            }
            if !sums.is_empty() {
                for i in 0..n {
                    let (x, dy) = (input.narrow_batch(i, 1)?, grad_output.narrow_batch(i, 1)?);
                    bands::for_each_band(ctx, encoder, rows, bands, &x, &dy, bands::Role::In, |encoder, x, dy, b| {
                        let (top, bottom) = (b.pad_top, b.pad_bottom);
                        let padding = Padding::Explicit { top, left: g.pads.left, bottom, right: g.pads.right };
                        unit(encoder, x, dy, None, &Conv2dParams { padding, ..*params })
                    })?;
                }
            }
        }
    }
    if sums.is_empty() {
        return Ok(());
    }
    // Σ over the pieces: the slots as [pieces, slot elements, 1], summed per element.
    ctx.scoped(|| -> Result<()> {
        let mut arena = UniformArena::new(ctx);
        let elem = sums[0].dtype().size();
        let blocks: Vec<_> = sums
            .iter()
            .map(|t| {
                let sp = SumParams { channels: (slot(t) / elem) as u32, hw: 1, n: units as u32, _pad0: 0 };
                (sp, arena.push(&sp))
            })
            .collect();
        let uniforms = arena.finish(ctx)?;
        let mut dispatches = Vec::new();
        let mut totals = Vec::new();
        for (i, (sp, block)) in blocks.iter().enumerate() {
            let dtype = sums[i].dtype();
            let x = Tensor::from_buffer_as(ctx, scratch[i].clone(), &[units, sp.channels as usize, 1], dtype)?;
            let total = Tensor::empty_as(ctx, &[sp.channels as usize], dtype)?;
            dispatches.extend(channel_sum::prepare(ctx, &uniforms, *block, sp, &x, &total, half)?);
            totals.push(total);
        }
        record(ctx, encoder, "conv2d_backward", &dispatches);
        for (total, t) in totals.iter().zip(&sums) {
            encoder.copy_buffer_to_buffer(total.buffer(), 0, t.buffer(), t.offset(), t.byte_len());
        }
        Ok(())
    })?
}

/// conv2d_backward_into for a weight beyond one storage binding: chunks of output channels
/// ([`crate::ops::channels`]), each chunk's grad_output channels and input channels of the
/// whole batch copied into scratch tensors, its backward pass run on them, its gradient rows
/// (and, for chunks of whole groups, its grad_input channels) copied into place. Where a
/// chunk is part of one group, grad_input is conv_transpose2d's (its own output-channel
/// chunks of the weight read as `[Cin', Cout'/G]`).
/// Every gradient element is the sum one call forms: bit-identical. The batch's channels of
/// one chunk must fit one binding.
fn backward_by_channels(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    let g = params.validate(input.shape(), weight.shape(), None)?;
    let (max, dtype) = (ctx.max_binding(), input.dtype());
    let elem = dtype.size();
    let (n, hw, hw_out) = (g.n as u64, g.h as u64 * g.w as u64, g.h_out as u64 * g.w_out as u64);
    let row = g.c_in_per_group() as u64 * g.kh as u64 * g.kw as u64 * elem;
    // A chunk's grad_output channels of the whole batch fit one binding.
    let most = max / (n * hw_out * elem);
    let chunks = channels::ranges(
        "conv2d_backward",
        g.groups as u64,
        g.c_in as u64,
        g.c_out as u64,
        row,
        elem,
        max,
        channels::Limits { most: Some(most), group_step: 1 },
    )?;
    let widest = chunks.iter().map(|c| c.c_in).max().unwrap_or(0);
    if n * widest * hw * elem > max || (elem % 4 != 0 && (hw % 2 != 0 || hw_out % 2 != 0)) {
        return Err(Error::TooLarge(format!(
            "conv2d_backward: the weight {:?} exceeds one storage binding ({max} bytes), and so do the input \
             channels of the batch one chunk of its output channels reads ({} bytes){}",
            weight.shape(),
            n * widest * hw * elem,
            if elem % 4 != 0 { ", or f16 planes of odd size" } else { "" }
        )));
    }
    // Chunks of whole groups hold every output channel their input channels feed: grad_input
    // per chunk too (the kernels one call runs: the depthwise ones among them). Else the
    // chunks' grad_input would be partial sums: conv_transpose2d forms it.
    let whole_groups = chunks.iter().all(|c| c.c_out % g.c_out_per_group() as u64 == 0);
    let dx_in_chunks = grads.grad_input.as_ref().filter(|_| whole_groups);
    if let Some(dx) = grads.grad_input.as_ref().filter(|_| !whole_groups) {
        let tp = grad_input_params(params, input.shape(), weight.shape())?;
        crate::ops::conv_transpose2d::conv_transpose2d_into(ctx, encoder, grad_output, weight, None, &tp, dx)?;
    }
    if grads.grad_weight.is_none() && grads.grad_bias.is_none() && dx_in_chunks.is_none() {
        return Ok(());
    }
    let most_out = chunks.iter().map(|c| c.c_out).max().unwrap_or(0);
    let scratch = |label, bytes: u64| ctx.create_buffer(label, bytes.next_multiple_of(4), crate::tensor::TENSOR_USAGE);
    let xb = scratch("wgconv.chunk_input", n * widest * hw * elem)?;
    let dyb = scratch("wgconv.chunk_grad_output", n * most_out * hw_out * elem)?;
    let (wb, dwb) =
        (scratch("wgconv.chunk_weight", most_out * row)?, scratch("wgconv.chunk_grad_weight", most_out * row)?);
    let dbb = scratch("wgconv.chunk_grad_bias", most_out * elem)?;
    let dxb = dx_in_chunks.map(|_| scratch("wgconv.chunk_grad_input", n * widest * hw * elem)).transpose()?;
    let tensor = |b: &wgpu::Buffer, shape: &[usize]| Tensor::from_buffer_as(ctx, b.clone(), shape, dtype);
    let copy =
        |encoder: &mut wgpu::CommandEncoder, from: &wgpu::Buffer, at: u64, to: &wgpu::Buffer, to_at: u64, len| {
            encoder.copy_buffer_to_buffer(from, at, to, to_at, len);
        };
    let (h, w, ho, wo) = (g.h as usize, g.w as usize, g.h_out as usize, g.w_out as usize);
    for c in &chunks {
        // Channels of every image, packed: [N, channels, plane].
        for i in 0..n {
            let (x_at, x_len) = (input.offset() + (i * g.c_in as u64 + c.c_in0) * hw * elem, c.c_in * hw * elem);
            copy(encoder, input.buffer(), x_at, &xb, i * x_len, x_len);
            let dy_at = grad_output.offset() + (i * g.c_out as u64 + c.c_out0) * hw_out * elem;
            let dy_len = c.c_out * hw_out * elem;
            copy(encoder, grad_output.buffer(), dy_at, &dyb, i * dy_len, dy_len);
        }
        copy(encoder, weight.buffer(), weight.offset() + c.c_out0 * row, &wb, 0, c.c_out * row);
        let (ci, co) = (c.c_in as usize, c.c_out as usize);
        let x = tensor(&xb, &[n as usize, ci, h, w])?;
        let dy = tensor(&dyb, &[n as usize, co, ho, wo])?;
        let wshape = [co, g.c_in_per_group() as usize, g.kh as usize, g.kw as usize];
        let chunk_grads = Conv2dGrads {
            grad_input: dxb.as_ref().map(|b| tensor(b, &[n as usize, ci, h, w])).transpose()?,
            grad_weight: grads.grad_weight.as_ref().map(|_| tensor(&dwb, &wshape)).transpose()?,
            grad_bias: grads.grad_bias.as_ref().map(|_| tensor(&dbb, &[co])).transpose()?,
        };
        let p = Conv2dParams { groups: c.groups as u32, ..*params };
        conv2d_backward_into(ctx, encoder, &x, &tensor(&wb, &wshape)?, &dy, &p, &chunk_grads)?;
        if let (Some(dx), Some(dxb)) = (dx_in_chunks, &dxb) {
            for i in 0..n {
                let (at, len) = (dx.offset() + (i * g.c_in as u64 + c.c_in0) * hw * elem, c.c_in * hw * elem);
                copy(encoder, dxb, i * len, dx.buffer(), at, len);
            }
        }
        if let Some(dw) = &grads.grad_weight {
            copy(encoder, &dwb, 0, dw.buffer(), dw.offset() + c.c_out0 * row, (c.c_out * row).next_multiple_of(4));
        }
        if let Some(db) = &grads.grad_bias {
            copy(encoder, &dbb, 0, db.buffer(), db.offset() + c.c_out0 * elem, (c.c_out * elem).next_multiple_of(4));
        }
    }
    Ok(())
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
    if weight.byte_len() > ctx.max_binding() {
        return backward_by_channels(ctx, encoder, input, weight, grad_output, params, grads);
    }
    if input.byte_len() > ctx.max_binding() || grad_output.byte_len() > ctx.max_binding() {
        return backward_in_pieces(ctx, encoder, input, weight, grad_output, params, grads, half);
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
