//! `shaders/col2vol.wgsl`: the gather that turns a conv3d's column gradients into its input
//! gradient, one invocation per input voxel (+ bias, activation): conv3d_backward's grad_input
//! and conv_transpose3d's output.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::vol2col::Vol2colParams;
use crate::kernels::{fold_grid, gcd, Step};
use crate::params::{Activation, Conv3dGeometry, PaddingMode};
use crate::shaders::{Overrides, ShaderId};

/// The gather of images `img0 .. img0 + images` of `g`'s input gradient: the window's block
/// with `col0` the first image, `total` the chunk's input voxels and the activation's `alpha`.
pub fn params(g: &Conv3dGeometry, img0: u32, images: u32, alpha: f32) -> Vol2colParams {
    Vol2colParams {
        col0: img0,
        cols: images,
        total: images * g.c_in * g.size.iter().product::<u32>(),
        alpha_bits: alpha.to_bits(),
        ..Vol2colParams::new(g, 0, 0)
    }
}

/// The loop turns of one invocation: per axis, Euclid's loop for the landing taps' period
/// step = s / gcd(s, d) (at most 2·log2(s) + 2 turns), then a loop over the padded positions
/// it folds, each seeking its first landing tap (at most step turns) around the loop over the
/// ⌈k / step⌉ landing taps; every loop's own turns counted.
pub(crate) fn turns(g: &Conv3dGeometry) -> u64 {
    let folds = |a: usize| -> u64 {
        match g.padding_mode {
            PaddingMode::Zeros => 1,
            PaddingMode::Reflect | PaddingMode::Circular => 3,
            PaddingMode::Replicate => {
                1 + g.pad_begin[a].max(g.pad_end[a]) as u64
                    + (g.size[a] == 1) as u64 * g.pad_begin[a].min(g.pad_end[a]) as u64
            }
        }
    };
    let step = |a: usize| (g.stride[a] / gcd(g.stride[a], g.dilation[a])) as u64;
    let level = |a: usize, inner: u64| folds(a) * (1 + step(a) + (g.kernel[a] as u64).div_ceil(step(a)) * (1 + inner));
    let euclid: u64 = g.stride.iter().map(|&s| 2 * (32 - s.leading_zeros()) as u64 + 2).sum();
    euclid + level(0, level(1, level(2, 0)))
}

/// The launch of the gather `p` (bindings: uniforms, col, bias, output), folding the padding
/// back as `mode` reads it.
pub(crate) fn step(
    ctx: &GpuContext,
    p: &Vol2colParams,
    activation: Activation,
    has_bias: bool,
    mode: PaddingMode,
) -> Result<Step> {
    Ok(Step {
        shader: ShaderId::Col2vol,
        overrides: Overrides::none()
            .flag("HAS_BIAS", has_bias)
            .with("ACT", activation.code() as f64)
            .with("PAD_MODE", mode.code() as f64),
        workgroups: fold_grid((p.total as u64).div_ceil(256), ctx.max_workgroups_per_dim())?,
        note: format!("gather of images {}..{}", p.col0, p.col0 + p.cols),
    })
}
