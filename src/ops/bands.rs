//! Row bands: one image whose input or output exceeds one storage binding runs over bands of
//! output rows, each band a complete call of the op's kernels on scratch copies.
//!
//! Transposed convs (`RowGeometry::transposed`) band the same way: output rows `[oy0, oy1)`
//! are rows `[f0, f1) = [oy0 + pt, oy1 + pt)` of the uncropped output, which input row `iy`
//! reaches over `[iy·s, iy·s + span)`; the band takes input rows `[a, b)` with
//! `a = min(⌈(f0 − span + 1)/s⌉, ⌊f0/s⌋)` (clipped at 0) and `b = ⌈f1/s⌉ + 1` (clipped at H),
//! crops `f0 − a·s` rows at its top and the rest at its bottom (or, at the image's bottom,
//! adds the output padding still missing). Each output row keeps its phase
//! `(oy + pt) mod s`, so its taps are summed as in one call.
//!
//! In NCHW a band of rows is not contiguous (one run of rows per channel), so it cannot be
//! bound in place: each band's input rows, with the halo its kernel window reaches, are
//! copied channel by channel into a scratch tensor `[1, C, rows_in, W]`; the op writes the
//! band's output `[1, Cout, rows, Wo]` into another scratch tensor, copied back channel by
//! channel. Output rows `[oy0, oy1)` read input rows `[oy0·s − pt, (oy1 − 1)·s − pt + span)`
//! (span = dilation·(kh − 1) + 1); the part outside the image becomes the band's own top and
//! bottom padding, so every output element sums the same terms in the same order as in one
//! call (zero padding is a value in every kernel): the result is bit-identical.

use crate::context::GpuContext;
use crate::error::{Error, Result};
pub(crate) use crate::ops::batch::Role;
use crate::tensor::{Tensor, TENSOR_USAGE};

/// The row geometry of one image of a 2-D window op.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowGeometry {
    pub c_in: u64,
    pub h: u64,
    pub w: u64,
    pub c_out: u64,
    pub h_out: u64,
    pub w_out: u64,
    /// Dilated kernel extent along the rows: dilation·(kh − 1) + 1.
    pub span: u64,
    pub stride: u64,
    pub pad_top: u64,
    /// Bytes per element.
    pub elem: u64,
    /// A transposed conv (the mapping of the module docs; its output padding is implied by
    /// `h_out`), not a windowed op (conv, pooling).
    pub transposed: bool,
    /// (bytes per input row, budget) of a workspace the band's kernels fill per input row
    /// (conv_transpose2d's `GemmCol2im` columns); `None` without one.
    pub workspace: Option<(u64, u64)>,
}

/// How an image is cut into bands of output rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowBands {
    /// Output rows per band (the last may hold fewer).
    pub rows: u64,
    /// Bands per image (`rows · bands` ≥ the image's output rows).
    pub bands: u64,
}

/// One band: output rows `[oy0, oy1)` from input rows `[in0, in0 + rows_in)` with this much
/// padding above and below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Band {
    pub oy0: u64,
    pub oy1: u64,
    pub in0: u64,
    pub rows_in: u64,
    pub pad_top: u32,
    pub pad_bottom: u32,
    /// Output padding of a transposed band (0 for the others).
    pub out_pad: u32,
}

impl RowGeometry {
    /// The bands of `plan` in order.
    pub fn bands(&self, plan: &RowBands) -> Result<Vec<Band>> {
        (0..plan.bands)
            .map(|b| {
                let oy0 = b * plan.rows;
                let oy1 = (oy0 + plan.rows).min(self.h_out);
                if self.transposed {
                    return self.transposed_band(oy0, oy1);
                }
                let (lo, hi) = self.input_rows(oy0, oy1);
                let (a, z) = (lo.max(0) as u64, hi.clamp(0, self.h as i64) as u64);
                if z <= a {
                    return Err(Error::Unsupported(format!(
                        "output rows {oy0}..{oy1} read only padding (top padding {} with a kernel span of {}): \
                         such an image cannot be cut into row bands",
                        self.pad_top, self.span
                    )));
                }
                let (pad_top, pad_bottom) = ((a as i64 - lo) as u32, (hi - z as i64) as u32);
                Ok(Band { oy0, oy1, in0: a, rows_in: z - a, pad_top, pad_bottom, out_pad: 0 })
            })
            .collect()
    }

    /// A transposed conv's band of output rows `[oy0, oy1)` (module docs).
    fn transposed_band(&self, oy0: u64, oy1: u64) -> Result<Band> {
        let (s, span, h) = (self.stride as i64, self.span as i64, self.h as i64);
        let (f0, f1) = ((oy0 + self.pad_top) as i64, (oy1 + self.pad_top) as i64);
        let a = (f0 - span + 1).div_euclid(s) + i64::from((f0 - span + 1).rem_euclid(s) != 0);
        let a = a.min(f0.div_euclid(s)).max(0);
        let b = ((f1 + s - 1).div_euclid(s) + 1).min(h);
        if b <= a {
            return Err(Error::Unsupported(format!(
                "output rows {oy0}..{oy1} receive no input row: such an image cannot be cut into row bands"
            )));
        }
        let crop_top = f0 - a * s;
        let full = (b - a - 1) * s + span;
        let rest = full - crop_top - (f1 - f0);
        let (pad_bottom, out_pad) = if rest >= 0 { (rest, 0) } else { (0, -rest) };
        Ok(Band {
            oy0,
            oy1,
            in0: a as u64,
            rows_in: (b - a) as u64,
            pad_top: crop_top as u32,
            pad_bottom: pad_bottom as u32,
            out_pad: out_pad as u32,
        })
    }

    /// Input rows `[lo, hi)` (before clipping to the image) that output rows `[oy0, oy1)` read.
    fn input_rows(&self, oy0: u64, oy1: u64) -> (i64, i64) {
        let lo = (oy0 * self.stride) as i64 - self.pad_top as i64;
        (lo, lo + ((oy1 - oy0 - 1) * self.stride + self.span) as i64)
    }

    /// The largest balanced bands whose input (with its halo) and output each fit `max` bytes.
    pub fn plan(&self, op: &str, max: u64) -> Result<RowBands> {
        let out_row = self.c_out * self.w_out * self.elem;
        let in_row = self.c_in * self.w * self.elem;
        let by_out = max / out_row.max(1);
        // (rows − 1)·stride + span input rows must fit, and their workspace.
        let in_rows = max / in_row.max(1);
        let in_rows = self.workspace.map_or(in_rows, |(row, budget)| in_rows.min(budget / row.max(1)));
        let by_in = if in_rows >= self.span { (in_rows - self.span) / self.stride + 1 } else { 0 };
        let rows = if self.transposed {
            // A band of r output rows reads at most ⌈(r + max(span − 1, s))/s⌉ + 2 input rows
            // (the `a` and `b` of the module docs).
            let reach = (self.span - 1).max(self.stride);
            let r = if in_rows >= 3 { ((in_rows - 3) * self.stride).saturating_sub(reach) } else { 0 };
            by_out.min(r).min(self.h_out)
        } else {
            by_out.min(by_in).min(self.h_out)
        };
        if rows == 0 {
            let workspace = self.workspace.map_or(String::new(), |(row, budget)| {
                format!(", and each input row's workspace of {row} bytes must fit its budget of {budget}")
            });
            return Err(Error::TooLarge(format!(
                "{op}: one output row needs {} input rows of {in_row} bytes and {out_row} bytes of output; one \
                 storage binding holds at most {max} bytes on this device{workspace}",
                self.span
            )));
        }
        // 4-byte aligned copies: rows of f16 need an even number of elements.
        if self.elem % 4 != 0 && (self.w % 2 != 0 || self.w_out % 2 != 0) {
            return Err(Error::TooLarge(format!(
                "{op}: one image exceeds one storage binding ({max} bytes), and f16 rows of odd width ({} in, {} \
                 out) cannot be copied in bands (buffer copies move whole 4-byte words)",
                self.w, self.w_out
            )));
        }
        let bands = self.h_out.div_ceil(rows);
        Ok(RowBands { rows: self.h_out.div_ceil(bands), bands })
    }
}

/// Runs `each(encoder, band_input, band_output, band)` over the bands of one image (`input`
/// `[1, C, H, W]`, `output` `[1, Cout, Ho, Wo]`, views at any 4-byte offset). `output_role`:
/// `Out` copies each band's output rows back after `each`; `In` copies them into the band
/// tensor before (a gradient with respect to the output, read by a backward pass).
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_band(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    geo: &RowGeometry,
    bands: &RowBands,
    input: &Tensor,
    output: &Tensor,
    output_role: Role,
    mut each: impl FnMut(&mut wgpu::CommandEncoder, &Tensor, &Tensor, &Band) -> Result<()>,
) -> Result<()> {
    let g = geo;
    let dtype = input.dtype();
    let list = g.bands(bands)?;
    let max_in_rows = list.iter().map(|b| b.rows_in).max().unwrap_or(1);
    let in_buf = ctx.create_buffer("wgconv.band_input", g.c_in * max_in_rows * g.w * g.elem, TENSOR_USAGE)?;
    let out_buf = ctx.create_buffer("wgconv.band_output", g.c_out * bands.rows * g.w_out * g.elem, TENSOR_USAGE)?;
    let (in_plane, out_plane) = (g.h * g.w * g.elem, g.h_out * g.w_out * g.elem);
    for band in &list {
        let Band { oy0, oy1, in0: a, rows_in, .. } = *band;
        let run = rows_in * g.w * g.elem;
        for c in 0..g.c_in {
            let src = input.offset() + c * in_plane + a * g.w * g.elem;
            encoder.copy_buffer_to_buffer(input.buffer(), src, &in_buf, c * run, run);
        }
        let band_in =
            Tensor::from_buffer_as(ctx, in_buf.clone(), &[1, g.c_in as usize, rows_in as usize, g.w as usize], dtype)?;
        let rows = oy1 - oy0;
        let band_out = Tensor::from_buffer_as(
            ctx,
            out_buf.clone(),
            &[1, g.c_out as usize, rows as usize, g.w_out as usize],
            dtype,
        )?;
        let run = rows * g.w_out * g.elem;
        let at = |c: u64| output.offset() + c * out_plane + oy0 * g.w_out * g.elem;
        if output_role == Role::In {
            for c in 0..g.c_out {
                encoder.copy_buffer_to_buffer(output.buffer(), at(c), &out_buf, c * run, run);
            }
        }
        each(encoder, &band_in, &band_out, band)?;
        if output_role == Role::Out {
            for c in 0..g.c_out {
                encoder.copy_buffer_to_buffer(&out_buf, c * run, output.buffer(), at(c), run);
            }
        }
    }
    Ok(())
}
