//! Batch pieces: an op whose batched tensors (input, output, offsets, …) do not fit one
//! storage binding runs over consecutive images `[n0, n0 + count)` at a time, each piece a
//! complete call of the op's kernels on views of the same buffers.
//!
//! A piece binds its images in place when their byte offset is a multiple of the device's
//! `min_storage_buffer_offset_alignment` (256 on WebGPU's defaults): the piece length is then
//! chosen so that every piece starts aligned in every tensor. Where no piece length fitting
//! one binding can do that (an image of an odd number of words near the binding limit), the
//! misaligned pieces go through a scratch buffer: inputs are copied in before the piece's
//! kernels, outputs copied out after (buffer copies need only 4-byte alignment).
//!
//! Each output element is computed by the same kernel with the same sum order as in a
//! single call (an op passes the algorithm chosen for the whole batch to every piece), so a
//! split run is bit-identical to an unsplit one. The exception is a sum over the batch: a
//! backward pass's grad_weight and grad_bias (and deform_conv2d's) are summed per piece into
//! slots, then over the pieces in a fixed order (`PartialSums`).

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::channel_sum::{self, SumParams};
use crate::kernels::{record, Step, UniformArena};
use crate::tensor::{DType, Tensor, TENSOR_USAGE};

/// Whether a batched tensor is read or written by the op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    In,
    Out,
}

/// One batched tensor of an op: its first axis is the batch.
pub(crate) struct Batched<'a> {
    pub tensor: &'a Tensor,
    pub what: &'static str,
    pub role: Role,
}

pub(crate) fn input<'a>(tensor: &'a Tensor, what: &'static str) -> Batched<'a> {
    Batched { tensor, what, role: Role::In }
}

pub(crate) fn output<'a>(tensor: &'a Tensor, what: &'static str) -> Batched<'a> {
    Batched { tensor, what, role: Role::Out }
}

/// How a batch is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPieces {
    /// Images in the batch.
    pub n: usize,
    /// Images per piece (the last may hold fewer); `n` when nothing is split.
    pub per_piece: usize,
    /// Number of pieces (0 for an empty batch).
    pub pieces: usize,
    /// Whether some pieces go through scratch buffers (their offsets are not aligned).
    pub staged: bool,
}

pub(crate) fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// Plans the pieces of a batch of `n` images for tensors whose one image takes `per_image`
/// bytes each (named for errors, with their shapes), under the context's binding limit.
///
/// Errors: [`Error::TooLarge`] when one image of a tensor exceeds one binding (the ops that
/// split images into bands, [`crate::ops::bands`], check that first).
pub fn plan(ctx: &GpuContext, op: &str, n: usize, tensors: &[(&str, &[usize], u64)]) -> Result<BatchPieces> {
    let max = ctx.max_binding();
    let whole = |&(_, _, per): &(&str, &[usize], u64)| (per * n as u64).next_multiple_of(4) <= max;
    if n == 0 || tensors.iter().all(whole) {
        return Ok(BatchPieces { n, per_piece: n, pieces: usize::from(n > 0), staged: false });
    }
    let mut fit = u64::MAX;
    for &(what, shape, per) in tensors {
        if per > max {
            return Err(Error::TooLarge(format!(
                "{op}: one image of {what} {shape:?} is {per} bytes; one storage binding holds at most {max} on this \
                 device (max_storage_buffer_binding_size, capped by EngineConfig::max_binding_size), and {op} \
                 does not split one image"
            )));
        }
        fit = fit.min(max / per.max(1));
    }
    // Piece lengths that keep every piece's offset a multiple of `align` in every tensor.
    let step = |align: u64| tensors.iter().fold(1, |s, &(_, _, per)| lcm(s, align / gcd(per.max(1), align)));
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    let (step, staged) = if step(align) <= fit { (step(align), false) } else { (step(4), true) };
    if step > fit {
        return Err(Error::TooLarge(format!(
            "{op}: pieces of the batch must hold a multiple of {step} images to start on 4-byte boundaries, but \
             one storage binding ({max} bytes) holds only {fit}"
        )));
    }
    let per_piece = (fit - fit % step) as usize;
    Ok(BatchPieces { n, per_piece, pieces: n.div_ceil(per_piece), staged })
}

/// Bytes of one image of `t` (its first axis the batch).
fn per_image(t: &Tensor) -> u64 {
    let n = t.shape()[0].max(1);
    (t.numel() / n) as u64 * t.dtype().size()
}

/// [`plan`] for these tensors (the first axis of each is the batch).
pub(crate) fn pieces(ctx: &GpuContext, op: &str, batched: &[Batched<'_>]) -> Result<BatchPieces> {
    let n = batched[0].tensor.shape()[0];
    let sizes: Vec<(&str, &[usize], u64)> =
        batched.iter().map(|b| (b.what, b.tensor.shape(), per_image(b.tensor))).collect();
    plan(ctx, op, n, &sizes)
}

/// Runs `each` over the whole tensors when `pieces` (from [`pieces`]) has one piece, else
/// once per piece of the batch (see the module docs) with views of `batched` in the same
/// order; records nothing for an empty batch.
pub(crate) fn for_each_piece(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    pieces: &BatchPieces,
    batched: &[Batched<'_>],
    mut each: impl FnMut(&mut wgpu::CommandEncoder, &[Tensor]) -> Result<()>,
) -> Result<()> {
    let n = pieces.n;
    if pieces.pieces == 0 {
        return Ok(());
    }
    if pieces.pieces == 1 {
        let whole: Vec<Tensor> = batched.iter().map(|b| b.tensor.clone()).collect();
        return each(encoder, &whole);
    }
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    let mut scratch: Vec<Option<wgpu::Buffer>> = vec![None; batched.len()];
    for n0 in (0..n).step_by(pieces.per_piece) {
        let len = pieces.per_piece.min(n - n0);
        let mut views = Vec::with_capacity(batched.len());
        let mut copy_out = Vec::new();
        for (i, b) in batched.iter().enumerate() {
            let view = b.tensor.narrow_batch(n0, len)?;
            if view.offset() % align == 0 {
                views.push(view);
                continue;
            }
            let bytes = view.byte_len();
            if scratch[i].is_none() {
                let size = (per_image(b.tensor) * pieces.per_piece as u64).next_multiple_of(4);
                scratch[i] = Some(ctx.create_buffer("wgconv.batch_piece", size, TENSOR_USAGE)?);
            }
            let buf = scratch[i].clone().expect("created above");
            if b.role == Role::In {
                encoder.copy_buffer_to_buffer(b.tensor.buffer(), view.offset(), &buf, 0, bytes);
            } else {
                copy_out.push((buf.clone(), view.clone()));
            }
            views.push(Tensor::from_buffer_as(ctx, buf, view.shape(), view.dtype())?.with_layout(view.layout())?);
        }
        each(encoder, &views)?;
        for (buf, view) in copy_out {
            encoder.copy_buffer_to_buffer(&buf, 0, view.buffer(), view.offset(), view.byte_len());
        }
    }
    Ok(())
}

/// The partial sums of the gradients a split backward pass sums over the batch
/// (grad_weight, grad_bias): one slot per unit (a batch piece, or one image's band of rows)
/// and gradient in a scratch buffer, each slot starting at the storage offset alignment. Each
/// unit's backward pass writes its gradients into its slots ([`PartialSums::slots`]);
/// [`PartialSums::finish`] sums each gradient's slots in unit order (`channel_sum.wgsl` over
/// `[units, slot, 1]`) and copies the totals into place. The sum over the batch is regrouped
/// at the unit boundaries: equal to one call within f32 rounding, not bit for bit (f16: each
/// unit's gradient is rounded to f16), and the same bits run to run.
pub(crate) struct PartialSums<'a> {
    op: &'static str,
    sums: Vec<&'a Tensor>,
    scratch: Vec<wgpu::Buffer>,
    units: usize,
}

impl<'a> PartialSums<'a> {
    /// Slots of `units` units for each tensor of `sums` (its shape and dtype).
    ///
    /// Errors: [`Error::TooLarge`] when a gradient's slots exceed one storage binding.
    pub(crate) fn new(ctx: &GpuContext, op: &'static str, sums: Vec<&'a Tensor>, units: usize) -> Result<Self> {
        let scratch = sums
            .iter()
            .map(|t| {
                let bytes = slots_bytes(ctx, op, t.shape(), t.dtype(), units)?;
                ctx.create_buffer("wgconv.piece_gradients", bytes, TENSOR_USAGE)
            })
            .collect::<Result<_>>()?;
        Ok(PartialSums { op, sums, scratch, units })
    }

    /// Unit `k`'s slot of each gradient, in the order of `sums`.
    pub(crate) fn slots(&self, ctx: &GpuContext, k: usize) -> Result<Vec<Tensor>> {
        self.sums
            .iter()
            .zip(&self.scratch)
            .map(|(t, buf)| {
                let at = k as u64 * slot_bytes(ctx, t.shape(), t.dtype());
                Tensor::from_buffer_as(ctx, buf.clone(), t.shape(), t.dtype()).map(|s| s.with_offset(at))
            })
            .collect()
    }

    /// Records the sums over the units' slots and the copies into place; returns the launches.
    pub(crate) fn finish(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) -> Result<usize> {
        if self.sums.is_empty() {
            return Ok(0);
        }
        ctx.scoped(|| -> Result<usize> {
            let mut arena = UniformArena::new(ctx);
            let blocks: Vec<_> = self
                .sums
                .iter()
                .map(|t| {
                    let sp = sum_params(ctx, t.shape(), t.dtype(), self.units);
                    (sp, arena.push(&sp))
                })
                .collect();
            let uniforms = arena.finish(ctx)?;
            let mut dispatches = Vec::new();
            let mut totals = Vec::new();
            for ((t, buf), (sp, block)) in self.sums.iter().zip(&self.scratch).zip(&blocks) {
                let dtype = t.dtype();
                let x = Tensor::from_buffer_as(ctx, buf.clone(), &[self.units, sp.channels as usize, 1], dtype)?;
                let total = Tensor::empty_as(ctx, &[sp.channels as usize], dtype)?;
                dispatches.extend(channel_sum::prepare(ctx, &uniforms, *block, sp, &x, &total, dtype == DType::F16)?);
                totals.push(total);
            }
            record(ctx, encoder, self.op, &dispatches);
            for (total, t) in totals.iter().zip(&self.sums) {
                encoder.copy_buffer_to_buffer(total.buffer(), 0, t.buffer(), t.offset(), t.byte_len());
            }
            Ok(dispatches.len())
        })?
    }

    /// The launches [`PartialSums::finish`] records over `units` units for a grad_weight of
    /// `weight`'s shape and a grad_bias of `bias` channels (each where given).
    pub(crate) fn steps(
        ctx: &GpuContext,
        op: &'static str,
        weight: Option<&[usize]>,
        bias: Option<usize>,
        dtype: DType,
        units: usize,
    ) -> Result<Vec<Step>> {
        let bias = bias.map(|c| [c]);
        let shapes = [("grad_weight", weight), ("grad_bias", bias.as_ref().map(|b| &b[..]))];
        let mut steps = Vec::new();
        for (what, shape) in shapes.into_iter().filter_map(|(what, s)| s.map(|s| (what, s))) {
            slots_bytes(ctx, op, shape, dtype, units)?;
            let sp = sum_params(ctx, shape, dtype, units);
            let note = format!("{what}: Σ over {units} parts");
            steps.extend(channel_sum::steps(ctx, &sp, dtype == DType::F16, &note)?);
        }
        Ok(steps)
    }
}

/// The slots of one gradient as channel_sum's `[units, slot elements, 1]`.
fn sum_params(ctx: &GpuContext, shape: &[usize], dtype: DType, units: usize) -> SumParams {
    let channels = (slot_bytes(ctx, shape, dtype) / dtype.size()) as u32;
    SumParams { channels, hw: 1, n: units as u32, _pad0: 0 }
}

/// Bytes of one aligned slot holding a partial gradient of `shape` (each slot starts at the
/// device's storage offset alignment).
fn slot_bytes(ctx: &GpuContext, shape: &[usize], dtype: DType) -> u64 {
    let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
    (shape.iter().product::<usize>() as u64 * dtype.size()).next_multiple_of(4).next_multiple_of(align)
}

/// Bytes of `units` slots of a partial gradient of `shape`; an error past one binding.
fn slots_bytes(ctx: &GpuContext, op: &str, shape: &[usize], dtype: DType, units: usize) -> Result<u64> {
    let (bytes, max) = (slot_bytes(ctx, shape, dtype) * units as u64, ctx.max_binding());
    if bytes > max {
        return Err(Error::TooLarge(format!(
            "{op}: the {units} partial gradients {shape:?} (one per batch piece or row band) take {bytes} bytes; one \
             storage binding holds at most {max} on this device",
        )));
    }
    Ok(bytes)
}

/// A backward pass over the pieces of the batch: `each` records one piece's pass on the views
/// of `batched` (as [`for_each_piece`]) with that piece's slots of `sums` (in order), and
/// returns its launches; then the slots are summed into `sums` ([`PartialSums`]). Returns every
/// launch recorded.
pub(crate) fn backward_in_pieces(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    op: &'static str,
    pieces: &BatchPieces,
    batched: &[Batched<'_>],
    sums: Vec<&Tensor>,
    mut each: impl FnMut(&mut wgpu::CommandEncoder, &[Tensor], Vec<Tensor>) -> Result<usize>,
) -> Result<usize> {
    let partial = PartialSums::new(ctx, op, sums, pieces.pieces)?;
    let (mut k, mut recorded) = (0, 0);
    for_each_piece(ctx, encoder, pieces, batched, |encoder, views| {
        recorded += each(encoder, views, partial.slots(ctx, k)?)?;
        k += 1;
        Ok(())
    })?;
    Ok(recorded + partial.finish(ctx, encoder)?)
}
