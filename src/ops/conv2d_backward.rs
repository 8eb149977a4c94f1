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
//!   grad_input (a gather) and grad_weight (one fixed-order reduction per weight element;
//!   where it walks down columns, grad_bias too, from the dy it reads).
//!
//! f16 storage (every tensor f16, f32 accumulation in every kernel) runs the same kernels'
//! f16 variants; grad_input goes through conv_transpose2d's f16 output phases.
//!
//! No float atomics anywhere: every result is bit-identical run to run.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::channel_sum::{self, SumParams};
use crate::kernels::depthwise_backward;
use crate::kernels::gemm::{self, GemmParams, GemmProblem};
use crate::kernels::{check_recorded, record, whole, write_plan, Dispatch, Step, UniformArena};
use crate::ops::{as_batched, bands, batch, channels, common_dtype, unbatched};
use crate::params::{Activation, Conv2dGeometry, Conv2dParams, ConvTranspose2dParams, Padding};
use crate::tensor::{DType, Tensor};

/// Which gradients to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grads {
    /// grad_input, the gradient of the input.
    pub input: bool,
    /// grad_weight, the gradient of the weight.
    pub weight: bool,
    /// grad_bias, the gradient of the bias (per-channel sums of grad_output).
    pub bias: bool,
}

impl Grads {
    /// All three gradients.
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

impl Conv2dGrads {
    /// New tensors for the gradients in `which`, stored as `input` is: grad_input of
    /// `input`'s shape, grad_weight of `weight`'s, grad_bias `[c_out]` (what the allocating
    /// backward calls hand their `_into` twins).
    pub(crate) fn empty(ctx: &GpuContext, which: Grads, input: &Tensor, weight: &Tensor, c_out: usize) -> Result<Self> {
        let alloc = |on: bool, shape: &[usize]| on.then(|| Tensor::empty_as(ctx, shape, input.dtype())).transpose();
        Ok(Conv2dGrads {
            grad_input: alloc(which.input, input.shape())?,
            grad_weight: alloc(which.weight, weight.shape())?,
            grad_bias: alloc(which.bias, &[c_out])?,
        })
    }

    /// The gradients of one part of a split call: its grad_input (or none), and its slots for
    /// the gradients summed over the batch ([`batch::PartialSums::slots`]) where `self` holds
    /// grad_weight and grad_bias.
    pub(crate) fn part(&self, grad_input: Option<Tensor>, slots: Vec<Tensor>) -> Conv2dGrads {
        let mut s = slots.into_iter();
        Conv2dGrads {
            grad_input,
            grad_weight: self.grad_weight.as_ref().and_then(|_| s.next()),
            grad_bias: self.grad_bias.as_ref().and_then(|_| s.next()),
        }
    }

    /// The gradients summed over the batch that `self` holds: grad_weight, grad_bias.
    pub(crate) fn sums(&self) -> Vec<&Tensor> {
        [&self.grad_weight, &self.grad_bias].into_iter().flatten().collect()
    }

    /// Errors ([`Error::Buffer`], [`Error::DeviceMismatch`]) unless each gradient held has its
    /// shape (`input`'s, `weight`'s, `[c_out]`), stores `dtype` and was made on `ctx`.
    pub(crate) fn check(
        &self,
        ctx: &GpuContext,
        input: &[usize],
        weight: &[usize],
        c_out: usize,
        dtype: DType,
    ) -> Result<()> {
        let c_out = [c_out];
        for (t, what, want) in [
            (&self.grad_input, "grad_input", input),
            (&self.grad_weight, "grad_weight", weight),
            (&self.grad_bias, "grad_bias", &c_out[..]),
        ] {
            if let Some(t) = t {
                if t.shape() != want || t.dtype() != dtype {
                    return Err(Error::Buffer {
                        what,
                        reason: format!(
                            "shape {:?} {}, expected {want:?} {}",
                            t.shape(),
                            t.dtype().name(),
                            dtype.name()
                        ),
                    });
                }
                t.check_device(ctx, "gradient")?;
                t.require_contiguous("the backward pass", what)?;
            }
        }
        Ok(())
    }
}

/// conv2d_backward_into for an input or grad_output beyond one storage binding: the backward
/// pass of each batch piece ([`crate::ops::batch`]), grad_input into the piece's images (the
/// same kernels as one call: bit-identical), grad_weight and grad_bias into the piece's slots
/// ([`batch::PartialSums`]: summed over the pieces in a fixed order, equal to one call within
/// f32 rounding). When one image exceeds a binding: grad_input by conv_transpose2d's row
/// bands, and the weight and bias gradients of each band of output rows of each image (its
/// grad_output rows and its input rows with their halo, [`crate::ops::bands`]) into the
/// slots.
fn backward_in_pieces(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
) -> Result<usize> {
    let sums = grads.sums();
    let g = params.validate(input.shape(), weight.shape(), None)?;
    let dtype = input.dtype();
    let n = g.n as usize;
    let image_bytes = |t: &Tensor| (t.numel() / n) as u64 * dtype.size();
    let max = ctx.max_binding();
    let mut batched = vec![batch::input(input, "input"), batch::input(grad_output, "grad_output")];
    batched.extend(grads.grad_input.as_ref().map(|dx| batch::output(dx, "grad_input")));
    if image_bytes(input) <= max && image_bytes(grad_output) <= max {
        let pieces = batch::pieces(ctx, "conv2d_backward", &batched)?;
        return batch::backward_in_pieces(ctx, encoder, "conv2d_backward", &pieces, &batched, sums, |e, t, slots| {
            record_checked(ctx, e, &t[0], weight, &t[1], params, &grads.part(t.get(2).cloned(), slots))
        });
    }
    // One image exceeds a binding: a unit per (image, row band).
    let rows = crate::ops::conv2d::row_geometry(&g, dtype);
    let bands = rows.plan("conv2d_backward", max)?;
    let mut recorded = 0;
    // grad_input: conv_transpose2d cuts each image into bands itself.
    if let Some(dx) = &grads.grad_input {
        recorded += grad_input_transposed(ctx, encoder, grad_output, weight, params, input.shape(), dx)?;
    }
    if sums.is_empty() {
        return Ok(recorded);
    }
    let partial = batch::PartialSums::new(ctx, "conv2d_backward", sums, n * bands.bands as usize)?;
    let mut k = 0;
    for i in 0..n {
        let (x, dy) = (input.narrow_batch(i, 1)?, grad_output.narrow_batch(i, 1)?);
        bands::for_each_band(ctx, encoder, &rows, &bands, &x, &dy, bands::Role::In, |encoder, x, dy, b| {
            let (top, bottom) = (b.pad_top, b.pad_bottom);
            let padding = Padding::Explicit { top, left: g.pads.left, bottom, right: g.pads.right };
            let p = Conv2dParams { padding, ..*params };
            recorded += record_checked(ctx, encoder, x, weight, dy, &p, &grads.part(None, partial.slots(ctx, k)?))?;
            k += 1;
            Ok(())
        })?;
    }
    Ok(recorded + partial.finish(ctx, encoder)?)
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
) -> Result<usize> {
    let g = params.validate(input.shape(), weight.shape(), None)?;
    let (max, dtype) = (ctx.max_binding(), input.dtype());
    let elem = dtype.size();
    let (n, hw, hw_out) = (g.n as u64, g.h as u64 * g.w as u64, g.h_out as u64 * g.w_out as u64);
    let row = g.c_in_per_group() as u64 * g.kh as u64 * g.kw as u64 * elem;
    let chunks = channel_chunks(&g, weight.shape(), dtype, max)?;
    let widest = chunks.iter().map(|c| c.c_in).max().unwrap_or(0);
    // Chunks of whole groups hold every output channel their input channels feed: grad_input
    // per chunk too (the kernels one call runs: the depthwise ones among them). Else the
    // chunks' grad_input would be partial sums: conv_transpose2d forms it.
    let whole_groups = chunks.iter().all(|c| c.c_out % g.c_out_per_group() as u64 == 0);
    let dx_in_chunks = grads.grad_input.as_ref().filter(|_| whole_groups);
    let mut recorded = 0;
    if let Some(dx) = grads.grad_input.as_ref().filter(|_| !whole_groups) {
        recorded += grad_input_transposed(ctx, encoder, grad_output, weight, params, input.shape(), dx)?;
    }
    if grads.grad_weight.is_none() && grads.grad_bias.is_none() && dx_in_chunks.is_none() {
        return Ok(recorded);
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
        recorded += record_checked(ctx, encoder, &x, &tensor(&wb, &wshape)?, &dy, &p, &chunk_grads)?;
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
    Ok(recorded)
}

/// The chunks of output channels a weight beyond one binding runs in: a chunk's
/// grad_output channels and input channels of the whole batch must each fit one binding
/// (f16: planes of even size, for 4-byte copies).
fn channel_chunks(g: &Conv2dGeometry, weight: &[usize], dtype: DType, max: u64) -> Result<Vec<channels::Range>> {
    let elem = dtype.size();
    let (n, hw, hw_out) = (g.n as u64, g.h as u64 * g.w as u64, g.h_out as u64 * g.w_out as u64);
    let row = g.c_in_per_group() as u64 * g.kh as u64 * g.kw as u64 * elem;
    let most = max / (n * hw_out * elem).max(1);
    let limits = channels::Limits { most: Some(most), group_step: 1 };
    let chunks =
        channels::ranges("conv2d_backward", g.groups as u64, g.c_in as u64, g.c_out as u64, row, elem, max, limits)?;
    let widest = chunks.iter().map(|c| c.c_in).max().unwrap_or(0);
    if n * widest * hw * elem > max || (elem % 4 != 0 && (hw % 2 != 0 || hw_out % 2 != 0)) {
        return Err(Error::TooLarge(format!(
            "conv2d_backward: the weight {weight:?} exceeds one storage binding ({max} bytes), and so do the input \
             channels of the batch one chunk of its output channels reads ({} bytes){}",
            n * widest * hw * elem,
            if elem % 4 != 0 { ", or f16 planes of odd size" } else { "" }
        )));
    }
    Ok(chunks)
}

/// grad_input as conv_transpose2d of grad_output (which bands, pieces and chunks itself);
/// returns its number of launches.
fn grad_input_transposed(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    grad_output: &Tensor,
    weight: &Tensor,
    params: &Conv2dParams,
    input: &[usize],
    dx: &Tensor,
) -> Result<usize> {
    let tp = grad_input_params(params, input, weight.shape())?;
    let info = crate::ops::conv_transpose2d::conv_transpose2d_into(ctx, encoder, grad_output, weight, None, &tp, dx)?;
    Ok(info.launches as usize)
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
    let grads = Conv2dGrads::empty(ctx, which, input, weight, g.c_out as usize)?;
    let mut encoder =
        ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("conv2d_backward") });
    conv2d_backward_into(ctx, &mut encoder, input, weight, grad_output, params, &grads)?;
    ctx.submit(encoder)?;
    Ok(grads)
}

/// What one conv2d_backward call records, decided from the shapes, the parameters and the
/// gradients asked for before any GPU object ([`plan_conv2d_backward`];
/// [`conv2d_backward_into`] records it).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dBackwardPlan {
    /// Every size of the validated conv2d.
    pub geometry: Conv2dGeometry,
    /// The gradients asked for.
    pub grads: Grads,
    /// The storage type of every tensor (f32 or f16).
    pub dtype: DType,
    /// A depthwise conv's grad_input by `depthwise_backward.wgsl`'s gather (else
    /// conv_transpose2d's); of the first part of a split call.
    pub depthwise_input: bool,
    /// A depthwise conv's grad_weight by `depthwise_backward.wgsl`'s reduction (else the
    /// gathering GEMM); of the first part of a split call.
    pub depthwise_weight: bool,
    /// Pieces of the batch run one after another (an input or grad_output beyond one storage
    /// binding); 1 otherwise, 0 for an empty batch.
    pub batch_pieces: u32,
    /// Bands of output rows per image for grad_weight and grad_bias (one image beyond one
    /// binding); 1 otherwise.
    pub row_bands: u32,
    /// Chunks of output channels (the weight beyond one binding); 1 otherwise.
    pub channel_chunks: u32,
    /// The largest workspace one launch uses, in bytes: grad_input's conv_transpose2d
    /// (`GemmCol2im`'s columns, `Winograd`'s transforms); 0 when every gradient gathers in
    /// place. (The per-part slots of a split call's weight and bias sums are not counted.)
    pub workspace_bytes: u64,
    /// Every launch, in recording order (a split call's each note says which part).
    pub steps: Vec<Step>,
}

impl std::fmt::Display for Conv2dBackwardPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = &self.geometry;
        let input = [g.n, g.c_in, g.h, g.w].map(|v| v as usize);
        let asked: Vec<&str> = [(self.grads.input, "input"), (self.grads.weight, "weight"), (self.grads.bias, "bias")]
            .into_iter()
            .filter_map(|(on, what)| on.then_some(what))
            .collect();
        let split = match (self.batch_pieces, self.row_bands, self.channel_chunks) {
            (_, _, c) if c > 1 => format!("{c} chunks of output channels"),
            (_, b, _) if b > 1 => format!("each image in {b} row bands"),
            (p, _, _) if p > 1 => format!("{p} batch pieces"),
            _ => "one call".to_string(),
        };
        let depthwise = match (self.depthwise_input, self.depthwise_weight) {
            (false, false) => "",
            _ => ", depthwise kernels",
        };
        let what = format!("grad {}", asked.join(", "));
        write_plan(
            f,
            "conv2d_backward",
            &input,
            &g.output_shape(),
            (&what, &format!("{split}{depthwise}")),
            self.workspace_bytes,
            format_args!(""),
            &self.steps,
        )
    }
}

/// Plans the backward pass of a conv2d of `input` `[N, Cin, H, W]` (or unbatched) and
/// `weight` for the gradients in `which`: validates, and lists every launch (grad_input by
/// conv_transpose2d or the depthwise gather, grad_weight by the gathering GEMM or the
/// depthwise reduction, grad_bias by channel sums), split over the batch, into row bands or
/// into chunks of output channels where a tensor exceeds one storage binding (then the
/// partial weight and bias gradients summed). Creates no GPU object. Errors as
/// [`conv2d_backward`], and [`Error::Unsupported`] for a padding mode other than zeros with
/// some padding: conv2d_backward runs that as conv3d_backward on the `[N, C, 1, H, W]` views
/// (plan it with [`crate::plan_conv3d_backward`]).
pub fn plan_conv2d_backward(
    ctx: &GpuContext,
    input: &[usize],
    weight: &[usize],
    params: &Conv2dParams,
    dtype: DType,
    which: Grads,
) -> Result<Conv2dBackwardPlan> {
    let input = as_batched(input, 4);
    let g = params.validate(&input, weight, None)?;
    check_no_activation(params)?;
    if g.pads_by_mode() {
        return Err(Error::Unsupported(format!(
            "conv2d_backward with padding_mode {} runs as conv3d_backward on the [N, C, 1, H, W] views: plan that \
             (plan_conv3d_backward)",
            g.padding_mode.name()
        )));
    }
    let mut plan = Conv2dBackwardPlan {
        geometry: g,
        grads: which,
        dtype,
        depthwise_input: false,
        depthwise_weight: false,
        batch_pieces: 1,
        row_bands: 1,
        channel_chunks: 1,
        workspace_bytes: 0,
        steps: Vec::new(),
    };
    let n = g.n as usize;
    if n == 0 {
        // grad_weight and grad_bias are cleared: no launch.
        plan.batch_pieces = 0;
        return Ok(plan);
    }
    let (max, elem) = (ctx.max_binding(), dtype.size());
    let out = g.output_shape();
    let bytes = |s: &[usize]| s.iter().product::<usize>() as u64 * elem;
    let transposed = |plan: &mut Conv2dBackwardPlan, note: &str| -> Result<()> {
        let tp = grad_input_params(params, &input, weight)?;
        let t = crate::ops::conv_transpose2d::plan_conv_transpose2d(ctx, &out, weight, None, dtype, &tp)?;
        plan.workspace_bytes = plan.workspace_bytes.max(t.workspace_bytes);
        plan.steps.extend(t.steps.into_iter().map(|s| s.noted(note)));
        Ok(())
    };
    // (input, weight, params, grads, note) of each backward pass of a split call
    type Part = (Vec<usize>, Vec<usize>, Conv2dParams, Grads, String);
    let mut parts: Vec<Part> = Vec::new();
    let sums = Grads { input: false, ..which };
    let mut units = 0;
    if bytes(weight) > max {
        let chunks = channel_chunks(&g, weight, dtype, max)?;
        let whole_groups = chunks.iter().all(|c| c.c_out % g.c_out_per_group() as u64 == 0);
        if which.input && !whole_groups {
            transposed(&mut plan, "grad_input")?;
        }
        let each = Grads { input: which.input && whole_groups, ..which };
        if each != (Grads { input: false, weight: false, bias: false }) {
            for c in &chunks {
                let x = vec![n, c.c_in as usize, input[2], input[3]];
                let w: Vec<usize> = [c.c_out as usize].into_iter().chain(weight[1..].iter().copied()).collect();
                let p = Conv2dParams { groups: c.groups as u32, ..*params };
                parts.push((x, w, p, each, format!("channels {}..{}", c.c_out0, c.c_out0 + c.c_out)));
            }
        }
        plan.channel_chunks = chunks.len() as u32;
    } else if bytes(&input) > max || bytes(&out) > max {
        if bytes(&input) / n as u64 > max || bytes(&out) / n as u64 > max {
            let rows = crate::ops::conv2d::row_geometry(&g, dtype);
            let bands = rows.plan("conv2d_backward", max)?;
            units = n * bands.bands as usize;
            if which.input {
                transposed(&mut plan, "grad_input")?;
            }
            if which.weight || which.bias {
                for i in 0..n {
                    for b in rows.bands(&bands)? {
                        let padding = Padding::Explicit {
                            top: b.pad_top,
                            left: g.pads.left,
                            bottom: b.pad_bottom,
                            right: g.pads.right,
                        };
                        let x = vec![1, input[1], b.rows_in as usize, input[3]];
                        let note = format!("image {i}, rows {}..{}", b.oy0, b.oy1);
                        parts.push((x, weight.to_vec(), Conv2dParams { padding, ..*params }, sums, note));
                    }
                }
            }
            plan.batch_pieces = n as u32;
            plan.row_bands = bands.bands as u32;
        } else {
            let per = |s: &[usize]| bytes(s) / n as u64;
            let tensors = [("input", &input[..], per(&input)), ("grad_output", &out[..], per(&out))];
            let pieces = batch::plan(ctx, "conv2d_backward", n, &tensors)?;
            units = pieces.pieces;
            for n0 in (0..n).step_by(pieces.per_piece) {
                let len = pieces.per_piece.min(n - n0);
                let x = [len].into_iter().chain(input[1..].iter().copied()).collect();
                parts.push((x, weight.to_vec(), *params, which, format!("images {n0}..{}", n0 + len)));
            }
            plan.batch_pieces = pieces.pieces as u32;
        }
    } else {
        whole_steps(ctx, &mut plan, &g, params, &input, weight)?;
        return Ok(plan);
    }
    for (k, (x, w, p, grads, note)) in parts.into_iter().enumerate() {
        let part = plan_conv2d_backward(ctx, &x, &w, &p, dtype, grads)?;
        if k == 0 {
            (plan.depthwise_input, plan.depthwise_weight) = (part.depthwise_input, part.depthwise_weight);
        }
        plan.workspace_bytes = plan.workspace_bytes.max(part.workspace_bytes);
        plan.steps.extend(part.steps.into_iter().map(|s| s.noted(&note)));
    }
    // The slots of the pieces or bands, summed per element.
    if units > 0 {
        let (dw, db) = (which.weight.then_some(weight), which.bias.then_some(g.c_out as usize));
        plan.steps.extend(batch::PartialSums::steps(ctx, "conv2d_backward", dw, db, dtype, units)?);
    }
    Ok(plan)
}

/// The depthwise kernels each gradient of a conv whose tensors fit one binding takes:
/// (grad_input, grad_weight). Depthwise convs (one input channel per group) have kernels of
/// their own: through the grouped GEMMs each group would be a one-row GEMM (measured:
/// mbv2_dw backward 760 ms). They loop over every tap (grad_input) or every output pixel
/// (grad_weight) in one invocation: past the loop budget (`EngineConfig::loop_budget`: some
/// drivers cut loops short) that gradient takes the general path, whose GEMM splits K into
/// passes.
fn depthwise_kernels(ctx: &GpuContext, g: &Conv2dGeometry) -> (bool, bool) {
    let depthwise = g.c_in_per_group() == 1 && g.groups > 1;
    let budget = ctx.config().loop_budget as u64;
    (
        depthwise && depthwise_backward::grad_input_turns(g) <= budget,
        depthwise && depthwise_backward::grad_weight_turns(g, budget) <= budget,
    )
}

/// The grad_weight GEMM: `dW[g]` of M = Cout/G rows and N = taps columns (hw = N keeps every
/// column in image 0), K = every output pixel of the batch, split into slices that run side
/// by side where its tiles are few ([`gemm::split_k`]; f16 storage when `half`).
fn grad_weight_gemm(ctx: &GpuContext, g: &Conv2dGeometry, half: bool) -> Result<GemmParams> {
    let hw = g.h_out * g.w_out;
    let taps = g.c_in_per_group() * g.kh * g.kw;
    let mut p = GemmParams::new(g.c_out_per_group(), taps, g.n * hw, g.groups, taps, 0, 0).gathering(g);
    p.grad = gemm::OutputGrad { a_hw: hw, a_channels: g.c_out, ..Default::default() };
    let numel = (g.c_out * taps) as usize;
    gemm::split_k(ctx, p, GemmProblem::GradWeight, half, numel)
}

/// The launches of a backward pass whose tensors each fit one binding.
fn whole_steps(
    ctx: &GpuContext,
    plan: &mut Conv2dBackwardPlan,
    g: &Conv2dGeometry,
    params: &Conv2dParams,
    input: &[usize],
    weight: &[usize],
) -> Result<()> {
    let (which, dtype, half) = (plan.grads, plan.dtype, plan.dtype == DType::F16);
    let (dw_input, dw_weight) = depthwise_kernels(ctx, g);
    (plan.depthwise_input, plan.depthwise_weight) = (dw_input && which.input, dw_weight && which.weight);
    let dw_bias = depthwise_bias(plan);
    let dw_which = (plan.depthwise_input, plan.depthwise_weight, dw_bias);
    plan.steps.extend(depthwise_backward::steps(ctx, g, dw_which, half)?);
    if which.input && !dw_input {
        let tp = grad_input_params(params, input, weight)?;
        let t = crate::ops::conv_transpose2d::plan_conv_transpose2d(ctx, &g.output_shape(), weight, None, dtype, &tp)?;
        plan.workspace_bytes = t.workspace_bytes;
        plan.steps.extend(t.steps.into_iter().map(|s| s.noted("grad_input")));
    }
    if which.weight && !dw_weight {
        let overrides = gemm::overrides(GemmProblem::GradWeight, Activation::None, false, &gemm::Aux::None);
        let numel = weight.iter().product();
        let gp = grad_weight_gemm(ctx, g, half)?;
        plan.steps
            .extend(gemm::plan(ctx, &gp, GemmProblem::GradWeight, overrides, half, None, numel)?.steps("grad_weight"));
    }
    if which.bias && !dw_bias {
        let sp = SumParams { channels: g.c_out, hw: g.h_out * g.w_out, n: g.n, _pad0: 0 };
        plan.steps.extend(channel_sum::steps(ctx, &sp, half, "grad_bias")?);
    }
    Ok(())
}

/// grad_bias by the depthwise grad_weight's launch (it reads every dy element anyway) rather
/// than by `channel_sum`: where both are asked for and its kernel takes it.
fn depthwise_bias(plan: &Conv2dBackwardPlan) -> bool {
    plan.depthwise_weight && plan.grads.bias && depthwise_backward::fuses_bias(&plan.geometry)
}

/// No fused activation: the backward pass differentiates the convolution alone.
fn check_no_activation(params: &Conv2dParams) -> Result<()> {
    if params.activation != Activation::None {
        return Err(Error::param(
            "activation",
            "conv2d_backward differentiates the convolution alone: pass the gradient with respect to the conv's output and no activation",
        ));
    }
    Ok(())
}

/// conv2d_backward with a padding mode other than zeros: conv3d_backward on the
/// `[N, C, 1, H, W]` views (its unfold reads the padding as the mode does, its grad_input
/// gather folds the padding's gradient back onto the input positions it read).
#[allow(clippy::too_many_arguments)]
fn backward_by_padding_mode(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
    g: &Conv2dGeometry,
) -> Result<()> {
    let p = g.pads;
    let conv3d = crate::params::Conv3dParams {
        stride: [1, g.stride[0], g.stride[1]],
        padding: crate::params::Padding3d::Explicit { begin: [0, p.top, p.left], end: [0, p.bottom, p.right] },
        dilation: [1, g.dilation[0], g.dilation[1]],
        groups: g.groups,
        activation: params.activation,
        padding_mode: g.padding_mode,
    };
    let view = |t: &Tensor| {
        let s = t.shape();
        t.reshape(&[s[0], s[1], 1, s[2], s[3]])
    };
    let grads3 = Conv2dGrads {
        grad_input: grads.grad_input.as_ref().map(view).transpose()?,
        grad_weight: grads.grad_weight.as_ref().map(view).transpose()?,
        grad_bias: grads.grad_bias.clone(),
    };
    let (x, w, dy) = (view(input)?, view(weight)?, view(grad_output)?);
    crate::ops::conv3d_backward::conv3d_backward_into(ctx, encoder, &x, &w, &dy, &conv3d, &grads3)
}

/// Records the backward pass into the caller's encoder, writing each gradient tensor that
/// `grads` holds (shapes of input, weight and `[Cout]`). Validates, plans
/// ([`plan_conv2d_backward`]) and records the plan's launches.
pub fn conv2d_backward_into(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
) -> Result<()> {
    record_checked(ctx, encoder, input, weight, grad_output, params, grads).map(|_| ())
}

/// [`conv2d_backward_into`], returning the number of launches (checked against the plan).
fn record_checked(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
) -> Result<usize> {
    let mut tensors = vec![(input, "input"), (grad_output, "grad_output")];
    tensors.extend(grads.grad_input.as_ref().map(|t| (t, "grad_input")));
    if let Some(v) = unbatched(4, &tensors)? {
        let batched = Conv2dGrads {
            grad_input: grads.grad_input.as_ref().map(|_| v[2].clone()),
            grad_weight: grads.grad_weight.clone(),
            grad_bias: grads.grad_bias.clone(),
        };
        return record_checked(ctx, encoder, &v[0], weight, &v[1], params, &batched);
    }
    let g = params.validate(input.shape(), weight.shape(), None)?;
    check_no_activation(params)?;
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
    if g.pads_by_mode() {
        return backward_by_padding_mode(ctx, encoder, input, weight, grad_output, params, grads, &g).map(|_| 0);
    }
    let which = Grads {
        input: grads.grad_input.is_some(),
        weight: grads.grad_weight.is_some(),
        bias: grads.grad_bias.is_some(),
    };
    let plan = plan_conv2d_backward(ctx, input.shape(), weight.shape(), params, dtype, which)?;
    let recorded = if plan.batch_pieces == 0 {
        // An empty batch: grad_input is empty, grad_weight and grad_bias are sums over no
        // pixels (zeros, as PyTorch returns).
        for t in [&grads.grad_weight, &grads.grad_bias].into_iter().flatten() {
            encoder.clear_buffer(t.buffer(), t.offset(), Some(t.byte_len()));
        }
        0
    } else if plan.channel_chunks > 1 {
        backward_by_channels(ctx, encoder, input, weight, grad_output, params, grads)?
    } else if plan.batch_pieces > 1 || plan.row_bands > 1 {
        backward_in_pieces(ctx, encoder, input, weight, grad_output, params, grads)?
    } else {
        record_whole(ctx, encoder, &plan, input, weight, grad_output, params, grads)?
    };
    check_recorded("conv2d_backward", recorded, &plan.steps)?;
    Ok(recorded)
}

/// Records a backward pass whose tensors each fit one binding, as `plan` lists it; returns
/// the number of launches.
#[allow(clippy::too_many_arguments)]
fn record_whole(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Conv2dBackwardPlan,
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    grads: &Conv2dGrads,
) -> Result<usize> {
    let (g, half) = (&plan.geometry, plan.dtype == DType::F16);
    let mut recorded = 0;
    if plan.depthwise_input || plan.depthwise_weight {
        let gi = grads.grad_input.as_ref().filter(|_| plan.depthwise_input);
        let gw = grads.grad_weight.as_ref().filter(|_| plan.depthwise_weight);
        let gb = grads.grad_bias.as_ref().filter(|_| depthwise_bias(plan));
        recorded +=
            depthwise_backward::record_backward(ctx, encoder, g, input, weight, grad_output, (gi, gw, gb), half)?;
    }
    if let Some(dx) = grads.grad_input.as_ref().filter(|_| !plan.depthwise_input) {
        recorded += grad_input_transposed(ctx, encoder, grad_output, weight, params, input.shape(), dx)?;
    }
    let dw = grads.grad_weight.as_ref().filter(|_| !plan.depthwise_weight);
    let db = grads.grad_bias.as_ref().filter(|_| !depthwise_bias(plan));
    if dw.is_none() && db.is_none() {
        return Ok(recorded);
    }
    let more = ctx.scoped(|| -> Result<usize> {
        let mut arena = UniformArena::new(ctx);
        // (planned only when grad_weight runs here: split_k plans the GEMM)
        let gp = dw.map(|_| grad_weight_gemm(ctx, g, half)).transpose()?.unwrap_or_default();
        let gb = arena.push(&gp);
        let sp = SumParams { channels: g.c_out, hw: g.h_out * g.w_out, n: g.n, _pad0: 0 };
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
        Ok(dispatches.len())
    })??;
    Ok(recorded + more)
}
