//! `shaders/transposed_border.wgsl`: after conv_transpose2d's output phases, the border band
//! of the output where a tap can fall outside the input, each NaN element of it recomputed by
//! the scatter's own terms (the phases' GEMM multiplies such a tap's 0 by its weight, and
//! 0·±∞ is NaN where the op adds nothing). One invocation per band element; a long sum (many
//! taps × input channels) in passes under the loop budget.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::{
    fold_grid, gcd, loop_passes, optional, pass_dispatches, range, uniform_block, whole, Dispatch, Step,
};
use crate::params::{Activation, ConvTranspose2dGeometry};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{Layout, Tensor};

uniform_block! {
    /// Twin of `BorderParams` in `shaders/transposed_border.wgsl`.
    BorderParams {
        c_in, h, w, c_out, groups, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left,
        h_out, w_out, step_y, step_x, top, bottom, left, right, plane, total, alpha_bits,
    }
}

/// Invocations per workgroup.
const WG: u64 = 64;

/// The edge of one axis where some tap falls outside the input: `(first, last)`, the band
/// being `0 .. first` and `last .. out` with `first ≤ last` (a tap before the input needs
/// `o + pad < (k − 1)·d`; one past it `o + pad ≥ s·len`).
fn edges(len: u32, k: u32, s: u32, d: u32, pad: u32, out: u32) -> (u32, u32) {
    let first = ((k - 1) * d).saturating_sub(pad).min(out);
    let last = ((s as u64 * len as u64).saturating_sub(pad as u64)).min(out as u64) as u32;
    (first, last.max(first))
}

impl BorderParams {
    /// The band of `g`'s output (`alpha` the activation slope), or `None` where no tap of any
    /// output element falls outside the input (a 1×1 kernel without padding).
    pub fn new(g: &ConvTranspose2dGeometry, alpha: f32) -> Option<Self> {
        let [sh, sw] = g.stride;
        let [dh, dw] = g.dilation;
        let (top, bottom) = edges(g.h, g.kh, sh, dh, g.pads.top, g.h_out);
        let (left, right) = edges(g.w, g.kw, sw, dw, g.pads.left, g.w_out);
        let edge_rows = top as u64 + (g.h_out - bottom) as u64;
        let plane = edge_rows * g.w_out as u64 + (bottom - top) as u64 * (left + g.w_out - right) as u64;
        // ≤ Ho·Wo, and N·Cout·Ho·Wo elements fit one binding: no overflow
        let total = plane * g.n as u64 * g.c_out as u64;
        if total == 0 {
            return None;
        }
        Some(BorderParams {
            c_in: g.c_in,
            h: g.h,
            w: g.w,
            c_out: g.c_out,
            groups: g.groups,
            kh: g.kh,
            kw: g.kw,
            stride_h: sh,
            stride_w: sw,
            dil_h: dh,
            dil_w: dw,
            pad_top: g.pads.top,
            pad_left: g.pads.left,
            h_out: g.h_out,
            w_out: g.w_out,
            step_y: sh / gcd(sh, dh),
            step_x: sw / gcd(sw, dw),
            top,
            bottom,
            left,
            right,
            plane: plane as u32,
            total: total as u32,
            alpha_bits: alpha.to_bits(),
        })
    }

    /// Ranges of the sum's steps (taps_y·taps_x·Cin/G, tap-major), one pass each: an invocation
    /// turns step_y + step_x times to find its first taps, then once per step of its range.
    fn passes(&self, budget: u32) -> Result<Vec<(u32, u32)>> {
        let (ty, tx) = (self.kh.div_ceil(self.step_y) as u64, self.kw.div_ceil(self.step_x) as u64);
        let fixed = self.step_y as u64 + self.step_x as u64 + 4;
        if fixed >= budget as u64 {
            return Err(Error::Unsupported(format!(
                "conv_transpose2d's border pass searches {} + {} taps per output (the strides over their gcd with \
                 the dilations), beyond the loop budget of {budget} (EngineConfig::loop_budget; some drivers stop \
                 longer loops early)",
                self.step_y, self.step_x
            )));
        }
        // ≤ kh·kw·Cin/G: the weight's elements, which fit one binding
        let len = (ty * tx * (self.c_in / self.groups) as u64).min(u32::MAX as u64) as u32;
        Ok(loop_passes(len, 1, 1, budget - fixed as u32))
    }
}

fn shader(half: bool) -> ShaderId {
    if half {
        ShaderId::TransposedBorderHalf
    } else {
        ShaderId::TransposedBorder
    }
}

/// The override constants: the epilogue and the input's and output's layouts.
pub fn overrides(activation: Activation, has_bias: bool, (input, output): (Layout, Layout)) -> Overrides {
    Overrides::none().flag("HAS_BIAS", has_bias).with("ACT", activation.code() as f64).layouts(input, output)
}

/// The launches for `p` (one per pass over the input channels), f16 storage when `half`.
pub(crate) fn steps(ctx: &GpuContext, p: &BorderParams, half: bool, overrides: &Overrides) -> Result<Vec<Step>> {
    let passes = p.passes(ctx.config().loop_budget)?;
    let workgroups = fold_grid((p.total as u64).div_ceil(WG), ctx.max_workgroups_per_dim())?;
    let many = passes.len() > 1;
    Ok(passes
        .iter()
        .map(|&(a, b)| Step {
            shader: shader(half),
            overrides: overrides.clone(),
            workgroups,
            note: if many {
                format!("border: NaN recomputed, steps {a}..{b} (taps × channels)")
            } else {
                "border: NaN recomputed".to_string()
            },
        })
        .collect())
}

/// The dispatches of `p` on these tensors (`block` is `p` in `uniforms`); `output` holds the
/// phases' result.
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &BorderParams,
    overrides: &Overrides,
    (input, weight, bias, output): (&Tensor, &Tensor, Option<&Tensor>, &Tensor),
) -> Result<Vec<Dispatch>> {
    let id = shader(output.dtype() == crate::tensor::DType::F16);
    let passes = p.passes(ctx.config().loop_budget)?;
    let grid = fold_grid((p.total as u64).div_ceil(WG), ctx.max_workgroups_per_dim())?;
    let (pipeline, bgl) = ctx.pipeline(id, overrides)?;
    let fixed = [range(uniforms, block), whole(input), whole(weight), optional(ctx, bias), whole(output)];
    pass_dispatches(ctx, (id, &pipeline, &bgl), &fixed, &passes, p.total as u64, grid)
}

#[cfg(test)]
mod tests {
    use super::edges;

    #[test]
    fn edges_cover_every_output_with_a_tap_outside_the_input() {
        // brute force: an output o has a tap outside the input iff some tap k with
        // (o + pad − k·d) ≡ 0 (mod s) reads a row outside 0 .. len
        for len in 1..6u32 {
            for k in 1..5u32 {
                for s in 1..4u32 {
                    for d in 1..3u32 {
                        for pad in 0..(d * (k - 1) + 1) {
                            let full = (len - 1) * s + d * (k - 1) + 1;
                            if pad * 2 >= full {
                                continue;
                            }
                            let out = full - 2 * pad;
                            let (first, last) = edges(len, k, s, d, pad, out);
                            assert!(first <= last && last <= out);
                            for o in 0..out {
                                let outside = (0..k).any(|t| {
                                    let at = o as i64 + pad as i64 - (t * d) as i64;
                                    at.rem_euclid(s as i64) == 0 && (at < 0 || at / s as i64 >= len as i64)
                                });
                                if outside {
                                    assert!(o < first || o >= last, "len {len} k {k} s {s} d {d} pad {pad}: {o}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
