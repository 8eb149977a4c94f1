//! Output-channel chunks: an op whose weight `[Cout, Cin/G, k..]` exceeds one storage binding
//! runs over chunks of output channels (whole groups where one group's weight fits a binding,
//! else part of one group), one image at a time. Each chunk's weight rows, bias and input
//! channels are copied into scratch tensors and its output channels copied back. A chunk
//! runs the op's kernels on fewer channels with the algorithm chosen for the whole call, and
//! every output sums the same taps in the same order: bit-identical to one call.
//!
//! Used by conv2d and conv3d (the shapes come from the tensors: input `[N, Cin, s..]`,
//! weight `[Cout, Cin/G, k..]`, output `[N, Cout, o..]`) and conv_transpose2d (weight
//! `[Cin, Cout/G, k..]`: a chunk of whole groups is one run of its bytes, part of one group
//! one run per input channel). One image of the input and of the output must each fit one
//! binding. Copies need 4-byte alignment, so f16 tensors need even planes, even channel
//! counts per group and weight rows of whole words.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::tensor::{Tensor, TENSOR_USAGE};

/// How the weight's first two axes hold the channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `[Cout, Cin/G, k..]` (convolutions)
    OutIn,
    /// `[Cin, Cout/G, k..]` (transposed convolutions)
    InOut,
}

/// One chunk's tensors (scratch views) and its group count.
pub(crate) struct Chunk<'a> {
    /// `[1, channels, s..]`
    pub input: &'a Tensor,
    /// `[channels out, Cin/G, k..]`
    pub weight: &'a Tensor,
    pub bias: Option<&'a Tensor>,
    /// `[1, channels out, o..]`
    pub output: &'a Tensor,
    /// Groups of the chunk's call (1 when it is part of one group).
    pub groups: u32,
    /// The image of the batch the chunk's input and output hold.
    pub image: usize,
    /// The chunk's channels (input and output, with the group count).
    pub range: Range,
}

/// Runs `each` over the output-channel chunks of `weight` (see the module docs) within
/// `limits`; returns the number of chunks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_chunk(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    op: &str,
    layout: Layout,
    groups: u32,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    output: &Tensor,
    limits: Limits,
    mut each: impl FnMut(&mut wgpu::CommandEncoder, Chunk<'_>) -> Result<()>,
) -> Result<usize> {
    let max = ctx.max_binding();
    let dtype = input.dtype();
    let elem = dtype.size();
    let (xs, ws, ys) = (input.shape(), weight.shape(), output.shape());
    let n = xs[0] as u64;
    let (c_in, c_out) = (xs[1] as u64, ys[1] as u64);
    let plane = |s: &[usize]| s[2..].iter().product::<usize>() as u64;
    let (hw, hw_out) = (plane(xs), plane(ys));
    check_images(op, ws, weight.byte_len(), c_in * hw * elem, c_out * hw_out * elem, max)?;
    let groups = groups as u64;
    let (cig, cog) = (c_in / groups, c_out / groups);
    let taps = ws[2..].iter().product::<usize>() as u64;
    let row = cig * taps * elem; // one output channel's weights
    if elem % 4 != 0 && (hw % 2 != 0 || hw_out % 2 != 0) {
        return Err(Error::TooLarge(format!(
            "{op}: an f16 weight {ws:?} beyond one storage binding ({max} bytes) is cut into channel chunks by \
             4-byte copies, which this shape's odd planes cannot make"
        )));
    }
    let ranges = ranges(op, groups, c_in, c_out, row, elem, max, limits)?;
    let chunks: Vec<(u64, u64, u64, u64, u64)> =
        ranges.iter().map(|r| (r.c_in0, r.c_in, r.c_out0, r.c_out, r.groups)).collect();
    let most = |f: fn(&(u64, u64, u64, u64, u64)) -> u64| chunks.iter().map(f).max().unwrap_or(1);
    let (max_ci, max_co) = (most(|c| c.1), most(|c| c.3));
    let scratch = |label, bytes: u64| ctx.create_buffer(label, bytes.next_multiple_of(4), TENSOR_USAGE);
    let (xb, wb) = (scratch("wgconv.chunk_input", max_ci * hw * elem)?, scratch("wgconv.chunk_weight", max_co * row)?);
    let (bb, yb) =
        (scratch("wgconv.chunk_bias", max_co * elem)?, scratch("wgconv.chunk_output", max_co * hw_out * elem)?);
    let view = |buf: &wgpu::Buffer, first: &[usize], shape: &[usize], rest: &[usize]| {
        let s: Vec<usize> = first.iter().chain(shape).chain(rest).copied().collect();
        Tensor::from_buffer_as(ctx, buf.clone(), &s, dtype)
    };
    let copy = |encoder: &mut wgpu::CommandEncoder, from: &Tensor, at: u64, to: &wgpu::Buffer, bytes: u64| {
        encoder.copy_buffer_to_buffer(from.buffer(), from.offset() + at, to, 0, bytes.next_multiple_of(4));
    };
    for (&(ci0, ci, co0, co, k), &range) in chunks.iter().zip(&ranges) {
        let w = match layout {
            Layout::OutIn => {
                copy(encoder, weight, co0 * row, &wb, co * row);
                view(&wb, &[], &[co as usize], &ws[1..])?
            }
            // Whole groups: their input channels' rows in one run; part of one group: the
            // chunk's output channels of each input channel.
            Layout::InOut if k > 1 || co == cog => {
                copy(encoder, weight, ci0 * cog * taps * elem, &wb, co * row);
                view(&wb, &[], &[ci as usize, cog as usize], &ws[2..])?
            }
            Layout::InOut => {
                let (len, first) = (co * taps * elem, co0 - (co0 / cog) * cog);
                for c in 0..ci {
                    let at = weight.offset() + ((ci0 + c) * cog + first) * taps * elem;
                    encoder.copy_buffer_to_buffer(weight.buffer(), at, &wb, c * len, len);
                }
                view(&wb, &[], &[ci as usize, co as usize], &ws[2..])?
            }
        };
        if let Some(b) = bias {
            copy(encoder, b, co0 * elem, &bb, co * elem);
        }
        let b = bias.map(|_| view(&bb, &[], &[co as usize], &[])).transpose()?;
        let x = view(&xb, &[1], &[ci as usize], &xs[2..])?;
        let y = view(&yb, &[1], &[co as usize], &ys[2..])?;
        for i in 0..n {
            copy(encoder, input, (i * c_in + ci0) * hw * elem, &xb, ci * hw * elem);
            let chunk = Chunk {
                input: &x,
                weight: &w,
                bias: b.as_ref(),
                output: &y,
                groups: k as u32,
                image: i as usize,
                range,
            };
            each(encoder, chunk)?;
            let y_at = output.offset() + (i * c_out + co0) * hw_out * elem;
            encoder.copy_buffer_to_buffer(&yb, 0, output.buffer(), y_at, (co * hw_out * elem).next_multiple_of(4));
        }
    }
    Ok(chunks.len())
}

/// What else bounds a chunk besides the weight's binding.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limits {
    /// At most this many output channels a chunk (an op's workspace or other tensors).
    pub most: Option<u64>,
    /// Chunks of whole groups hold a multiple of this many groups, or a divisor of it
    /// (deform_conv2d: the weight groups one offset group spans); 0 or 1: any number.
    pub group_step: u64,
}

/// A chunk of output channels and the input channels it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub c_in0: u64,
    pub c_in: u64,
    pub c_out0: u64,
    pub c_out: u64,
    /// Groups of the chunk's call (1 when it is part of one group).
    pub groups: u64,
}

/// The chunks of `c_out` output channels (`row` bytes of weight each) in `groups` groups:
/// whole groups where one group's weight fits `max` bytes, else parts of one group; within
/// `limits`. f16 (`elem` 2): an even number of channels a chunk, so that every copy starts
/// on a 4-byte word.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ranges(
    op: &str,
    groups: u64,
    c_in: u64,
    c_out: u64,
    row: u64,
    elem: u64,
    max: u64,
    limits: Limits,
) -> Result<Vec<Range>> {
    let (cig, cog) = (c_in / groups, c_out / groups);
    if elem % 4 != 0 && (row % 4 != 0 || cog % 2 != 0) {
        return Err(Error::TooLarge(format!(
            "{op}: f16 weights beyond one storage binding ({max} bytes) are cut into channel chunks by 4-byte \
             copies, which odd channel counts ({cog} a group) or rows ({row} bytes) cannot make"
        )));
    }
    let fit = (max / row).min(limits.most.unwrap_or(u64::MAX));
    let per_chunk = if elem % 4 != 0 { fit & !1 } else { fit };
    if per_chunk == 0 {
        return Err(Error::TooLarge(format!(
            "{op}: one output channel's weights ({row} bytes) exceed one storage binding ({max} bytes), or its \
             other tensors or workspace do"
        )));
    }
    let mut chunks = Vec::new();
    if per_chunk >= cog {
        let step = limits.group_step.max(1);
        let per = per_chunk / cog;
        // A multiple of the step, or its largest divisor that fits.
        let per = if per >= step { per - per % step } else { (1..=per).rev().find(|k| step % k == 0).unwrap_or(1) };
        for g0 in (0..groups).step_by(per as usize) {
            let k = per.min(groups - g0);
            chunks.push(Range { c_in0: g0 * cig, c_in: k * cig, c_out0: g0 * cog, c_out: k * cog, groups: k });
        }
    } else {
        for gi in 0..groups {
            for c in (0..cog).step_by(per_chunk as usize) {
                let co = per_chunk.min(cog - c);
                chunks.push(Range { c_in0: gi * cig, c_in: cig, c_out0: gi * cog + c, c_out: co, groups: 1 });
            }
        }
    }
    Ok(chunks)
}

/// Errors unless one image of the input (`input` bytes) and of the output fit `max` bytes
/// beside a weight (`shape`, `bytes`) beyond one binding: the chunks run one image at a time.
pub(crate) fn check_images(op: &str, shape: &[usize], bytes: u64, input: u64, output: u64, max: u64) -> Result<()> {
    if input > max || output > max {
        return Err(Error::TooLarge(format!(
            "{op}: the weight {shape:?} ({bytes} bytes) and one image of the input or output exceed one storage \
             binding ({max} bytes) together; only one of them may"
        )));
    }
    Ok(())
}
