//! `shaders/deform_backward.wgsl`: deform_conv2d_backward's per-sample passes (grad_offset
//! and grad_mask as gathers; grad_input's largest term per element, then its exact fixed-point
//! sums) and the pass that turns the sums into grad_input.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, uniform_block, Step};
use crate::params::DeformGeometry;
use crate::shaders::{Overrides, ShaderId};

uniform_block! {
    /// Twin of `DeformBackParams` in `shaders/deform_backward.wgsl`.
    DeformBackParams {
        c_in, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        offset_groups, img0, threads, count_bits, _pad0, _pad1, _pad2,
    }
}

/// Which gradients the per-sample pass forms (its overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleGrads {
    /// The call has a mask (deform_conv2d v2): `HAS_MASK`.
    pub has_mask: bool,
    /// Form grad_input (`GRAD_INPUT`).
    pub input: bool,
    /// Form grad_offset (`GRAD_OFFSET`).
    pub offset: bool,
    /// Form grad_mask (`GRAD_MASK`, set only with `has_mask`).
    pub mask: bool,
}

impl SampleGrads {
    /// The pass's flags: `HAS_MASK`, `GRAD_INPUT`, `GRAD_OFFSET`, and `GRAD_MASK` (off without a mask).
    pub fn overrides(self) -> Overrides {
        Overrides::none()
            .flag("HAS_MASK", self.has_mask)
            .flag("GRAD_INPUT", self.input)
            .flag("GRAD_OFFSET", self.offset)
            .flag("GRAD_MASK", self.mask && self.has_mask)
    }

    /// Every combination the engine runs (at least one gradient; grad_mask with a mask only).
    pub fn all() -> Vec<SampleGrads> {
        let mut all = Vec::new();
        for bits in 0..16u32 {
            let [has_mask, input, offset, mask] = [0, 1, 2, 3].map(|b| bits >> b & 1 == 1);
            if (input || offset || mask) && (has_mask || !mask) {
                all.push(SampleGrads { has_mask, input, offset, mask });
            }
        }
        all
    }
}

/// ⌈log2⌉ of the most terms one grad_input element receives: each (tap, output pixel) adds at
/// most one corner to it.
pub fn count_bits(dg: &DeformGeometry) -> u32 {
    let g = dg.conv;
    let terms = g.kh as u64 * g.kw as u64 * g.h_out as u64 * g.w_out as u64;
    64 - terms.saturating_sub(1).leading_zeros()
}

impl DeformBackParams {
    /// The block of the launches over images `img0 ..` of a call over `dg` with `threads`
    /// invocations.
    pub fn new(dg: &DeformGeometry, img0: u32, threads: u32) -> Self {
        let g = dg.conv;
        DeformBackParams {
            c_in: g.c_in,
            h: g.h,
            w: g.w,
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
            offset_groups: dg.offset_groups,
            img0,
            threads,
            count_bits: count_bits(dg),
            ..Default::default()
        }
    }
}

fn step(ctx: &GpuContext, shader: ShaderId, overrides: Overrides, threads: u64, note: String) -> Result<Step> {
    Ok(Step { shader, overrides, workgroups: fold_grid(threads.div_ceil(256), ctx.max_workgroups_per_dim())?, note })
}

/// grad_input's first pass over one chunk (the largest term of each element): `p.threads` =
/// images · G_off · kh·kw · Ho·Wo.
pub(crate) fn largest_step(ctx: &GpuContext, p: &DeformBackParams, grads: SampleGrads, note: String) -> Result<Step> {
    step(ctx, ShaderId::DeformBackwardLargest, grads.overrides(), p.threads as u64, note)
}

/// The per-sample launch over one chunk: `p.threads` = images · G_off · kh·kw · Ho·Wo.
pub(crate) fn sample_step(ctx: &GpuContext, p: &DeformBackParams, grads: SampleGrads, note: String) -> Result<Step> {
    step(ctx, ShaderId::DeformBackwardSample, grads.overrides(), p.threads as u64, note)
}

/// The launch writing one chunk's grad_input: `p.threads` = images · Cin · H · W.
pub(crate) fn finish_step(ctx: &GpuContext, p: &DeformBackParams, grads: SampleGrads, note: String) -> Result<Step> {
    step(ctx, ShaderId::DeformBackwardFinish, grads.overrides(), p.threads as u64, note)
}
