//! deform_conv2d_backward's own passes: `shaders/deform_backward.wgsl` (grad_offset and
//! grad_mask, one invocation per sample) and `shaders/deform_grad_input.wgsl` (grad_input:
//! the samples sorted by the cell they land in, the largest term per element, exact
//! fixed-point sums over runs of samples in one cell, then the pass that turns the sums into
//! grad_input), both over `shaders/deform_backward_common.wgsl`.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::{fold_grid, uniform_block, Step};
use crate::params::DeformGeometry;
use crate::shaders::{Overrides, ShaderId};

uniform_block! {
    /// Twin of `DeformBackParams` in `shaders/deform_backward_common.wgsl`.
    DeformBackParams {
        c_in, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        offset_groups, img0, threads, count_bits, seg_len, segs, _pad0,
    }
}

/// Which gradients the per-sample pass forms (its overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleGrads {
    /// The call has a mask (deform_conv2d v2): `HAS_MASK`.
    pub has_mask: bool,
    /// Form grad_offset (`GRAD_OFFSET`).
    pub offset: bool,
    /// Form grad_mask (`GRAD_MASK`, set only with `has_mask`).
    pub mask: bool,
}

impl SampleGrads {
    /// The pass's flags: `HAS_MASK`, `GRAD_OFFSET`, and `GRAD_MASK` (off without a mask).
    pub fn overrides(self) -> Overrides {
        Overrides::none()
            .flag("HAS_MASK", self.has_mask)
            .flag("GRAD_OFFSET", self.offset)
            .flag("GRAD_MASK", self.mask && self.has_mask)
    }

    /// Every combination the engine runs (at least one gradient; grad_mask with a mask only).
    pub fn all() -> Vec<SampleGrads> {
        let mut all = Vec::new();
        for bits in 0..8u32 {
            let [has_mask, offset, mask] = [0, 1, 2].map(|b| bits >> b & 1 == 1);
            if (offset || mask) && (has_mask || !mask) {
                all.push(SampleGrads { has_mask, offset, mask });
            }
        }
        all
    }
}

/// The passes of grad_input over one chunk of images, in order (`deform_grad_input.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputPass {
    /// `bin_count`: samples per cell.
    Count,
    /// `bin_scan`: where each cell's samples begin.
    Scan,
    /// `bin_fill`: the samples sorted by cell.
    Fill,
    /// `largest`: the largest term of each element.
    Largest,
    /// `sum`: the fixed-point sums.
    Sum,
    /// `finish`: grad_input from the sums.
    Finish,
}

impl InputPass {
    /// Every pass, in recording order.
    pub const ALL: [InputPass; 6] =
        [InputPass::Count, InputPass::Scan, InputPass::Fill, InputPass::Largest, InputPass::Sum, InputPass::Finish];

    /// The pass's kernel.
    pub fn shader(self) -> ShaderId {
        match self {
            InputPass::Count => ShaderId::DeformGradInputCount,
            InputPass::Scan => ShaderId::DeformGradInputScan,
            InputPass::Fill => ShaderId::DeformGradInputFill,
            InputPass::Largest => ShaderId::DeformGradInputLargest,
            InputPass::Sum => ShaderId::DeformGradInputSum,
            InputPass::Finish => ShaderId::DeformGradInputFinish,
        }
    }

    /// Its override sets: the passes that read the samples (all but the scan and the
    /// finish) take `HAS_MASK`.
    pub fn override_sets(self) -> Vec<Overrides> {
        if self.reads_samples() {
            [false, true].map(|m| self.overrides(m)).to_vec()
        } else {
            vec![self.overrides(false)]
        }
    }

    fn reads_samples(self) -> bool {
        !matches!(self, InputPass::Scan | InputPass::Finish)
    }

    /// What the pass leaves, for a plan's listing.
    pub fn note(self) -> &'static str {
        match self {
            InputPass::Count => "grad_input: samples per cell",
            InputPass::Scan => "grad_input: where each cell's samples begin",
            InputPass::Fill => "grad_input: samples sorted by cell",
            InputPass::Largest => "grad_input: largest term per element",
            InputPass::Sum => "grad_input: fixed-point sums",
            InputPass::Finish => "grad_input",
        }
    }

    fn overrides(self, has_mask: bool) -> Overrides {
        if self.reads_samples() {
            Overrides::none().flag("HAS_MASK", has_mask)
        } else {
            Overrides::none()
        }
    }
}

/// ⌈log2⌉ of the most terms one grad_input element receives: each (tap, output pixel) adds at
/// most one corner to it.
pub fn count_bits(dg: &DeformGeometry) -> u32 {
    let g = dg.conv;
    let terms = g.kh as u64 * g.kw as u64 * g.h_out as u64 * g.w_out as u64;
    64 - terms.saturating_sub(1).leading_zeros()
}

/// Invocations of a workgroup of grad_input's walks (`WALK_WG` in the shader).
pub const WALK_WG: u32 = 64;
/// The most entries a workgroup of grad_input's walks stages (`STAGED` in the shader).
pub const STAGED: u32 = 256;
/// Entries one invocation of grad_input's walks covers at most (fewer where the loop budget
/// is smaller, or where a workgroup's walks would stage more than [`STAGED`]): more per walk
/// touch the accumulator less often at the walks' cuts, fewer keep more invocations busy.
const SEG_LEN: u32 = 32;

/// Cells (⌊y⌋, ⌊x⌋) of a plane the samples are sorted by: (H + 1)·(W + 1), from (−1, −1).
pub(crate) fn cells(dg: &DeformGeometry) -> u64 {
    (dg.conv.h as u64 + 1) * (dg.conv.w as u64 + 1)
}

/// Bytes per image of grad_input's buffers: the accumulator (16 per element), the cell
/// counts, their starts and the sorted samples (4 per sample: half of an image of offsets).
pub(crate) fn input_bytes_per_image(dg: &DeformGeometry) -> [u64; 4] {
    let g = dg.conv;
    let og = dg.offset_groups as u64;
    let samples = og * g.kh as u64 * g.kw as u64 * g.h_out as u64 * g.w_out as u64;
    let acc = g.c_in as u64 * g.h as u64 * g.w as u64 * 16;
    [acc, og * cells(dg) * 4, og * (cells(dg) + 1) * 4, samples * 4]
}

/// The loop turns of grad_input's scan (`bin_scan`: two runs of ⌈cells / 256⌉ and the
/// 8 steps of the workgroup's scan): an error where the budget cannot hold them. (The walks
/// fit by construction: a walk is at most half the budget, [`DeformBackParams::input_passes`].)
pub(crate) fn check_loops(dg: &DeformGeometry, loop_budget: u32) -> Result<()> {
    let scan = 2 * cells(dg).div_ceil(256) + 8;
    if scan > loop_budget as u64 {
        return Err(Error::Unsupported(format!(
            "deform_conv2d_backward's grad_input sorts the samples of a {}×{} image by cell: one workgroup scans \
             {} cells in {scan} loop turns per invocation, beyond the loop budget of {loop_budget} \
             (EngineConfig::loop_budget; some drivers stop longer loops early)",
            dg.conv.h,
            dg.conv.w,
            cells(dg)
        )));
    }
    Ok(())
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

    /// The blocks of grad_input's passes ([`InputPass::ALL`]) over `imgs` images from `img0`,
    /// `threads` counting invocations per sample (count, fill) and per element (finish), and
    /// workgroups per (image, offset group) (scan) and per block of walks and channels (the
    /// walks: `stage` in the shader). `loop_budget` bounds a walk's length.
    pub fn input_passes(dg: &DeformGeometry, img0: u32, imgs: u32, loop_budget: u32) -> [DeformBackParams; 6] {
        let g = dg.conv;
        let groups = imgs * dg.offset_groups;
        let room = g.kh * g.kw * g.h_out * g.w_out;
        let per_og = g.c_in / dg.offset_groups;
        // a workgroup: `spw` walks × `lanes` channels (as the shader's `stage`)
        let lanes = per_og.clamp(1, WALK_WG);
        let spw = WALK_WG / lanes;
        let seg_len = SEG_LEN.min(STAGED / spw).min(loop_budget / 2).max(1);
        let segs = room.div_ceil(seg_len);
        let workgroups = groups * segs.div_ceil(spw) * per_og.div_ceil(WALK_WG);
        let walk = DeformBackParams { seg_len, segs, ..DeformBackParams::new(dg, img0, workgroups) };
        let samples = DeformBackParams::new(dg, img0, groups * room);
        [
            samples,
            DeformBackParams::new(dg, img0, groups),
            samples,
            walk,
            walk,
            DeformBackParams::new(dg, img0, imgs * g.c_in * g.h * g.w),
        ]
    }
}

fn step(ctx: &GpuContext, shader: ShaderId, overrides: Overrides, threads: u64, note: String) -> Result<Step> {
    Ok(Step { shader, overrides, workgroups: fold_grid(threads.div_ceil(256), ctx.max_workgroups_per_dim())?, note })
}

/// The per-sample launch over one chunk: `p.threads` = images · G_off · kh·kw · Ho·Wo.
pub(crate) fn sample_step(ctx: &GpuContext, p: &DeformBackParams, grads: SampleGrads, note: String) -> Result<Step> {
    step(ctx, ShaderId::DeformBackwardSample, grads.overrides(), p.threads as u64, note)
}

/// One grad_input pass over one chunk, `p` its block from [`DeformBackParams::input_passes`]
/// (the scan and the walks: `p.threads` workgroups; the others 256 invocations each).
pub(crate) fn input_step(
    ctx: &GpuContext,
    pass: InputPass,
    p: &DeformBackParams,
    has_mask: bool,
    note: String,
) -> Result<Step> {
    let workgroups = match pass {
        InputPass::Scan | InputPass::Largest | InputPass::Sum => p.threads as u64,
        _ => (p.threads as u64).div_ceil(256),
    };
    let workgroups = fold_grid(workgroups, ctx.max_workgroups_per_dim())?;
    Ok(Step { shader: pass.shader(), overrides: pass.overrides(has_mask), workgroups, note })
}
