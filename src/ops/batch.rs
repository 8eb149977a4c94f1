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
//! split run is bit-identical to an unsplit one. The exception is a sum over the batch:
//! conv2d_backward's grad_weight and grad_bias are summed per piece, then over the pieces.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::tensor::{Tensor, TENSOR_USAGE};

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
            views.push(Tensor::from_buffer_as(ctx, buf, view.shape(), view.dtype())?);
        }
        each(encoder, &views)?;
        for (buf, view) in copy_out {
            encoder.copy_buffer_to_buffer(&buf, 0, view.buffer(), view.offset(), view.byte_len());
        }
    }
    Ok(())
}
