//! Encoding of `shaders/winograd.wgsl`: the three transforms of Winograd F(2×2, 3×3) around
//! the GEMM core's 16·G batched GEMMs (the layouts of U, V and M are in the shader); f32 or
//! f16 storage of the tensors, the transformed operands always f32.

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{fold_grid, optional, uniform_block, whole, Dispatch, Step};
use crate::params::{Activation, Conv2dGeometry};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::{DType, Layout, Tensor};

uniform_block! {
    /// Twin of `WinogradParams` in `shaders/winograd.wgsl`.
    WinogradParams {
        c_in, h, w, c_out, groups, pad_top, pad_left, h_out, w_out, tiles_w, tiles_per_image,
        tile0, tiles, total, alpha_bits, stride,
    }
}

/// Invocations per workgroup of every entry point.
const WG: u64 = 64;

/// Multiply-adds of the element-wise product per 2×2 tile and channel pair: 16 points against
/// the direct conv's 4 outputs × 9 taps (36), the 2.25× of F(2×2, 3×3).
pub const POINTS: u32 = 16;

/// The three launches of the algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `w` → U (once per call).
    Weights,
    /// One chunk of tiles of `x` → V.
    Inputs,
    /// M of one chunk of tiles → `y` (+ bias, activation; the direct sum where M is not finite).
    Outputs,
}

impl WinogradParams {
    /// The conv `g` (3×3, stride 1, dilation 1) with the activation slope `alpha`; no tiles yet
    /// ([`WinogradParams::stage`]).
    pub fn new(g: &Conv2dGeometry, alpha: f32) -> Self {
        let (th, tw) = tiles(g);
        WinogradParams {
            c_in: g.c_in,
            h: g.h,
            w: g.w,
            c_out: g.c_out,
            groups: g.groups,
            pad_top: g.pads.top,
            pad_left: g.pads.left,
            h_out: g.h_out,
            w_out: g.w_out,
            tiles_w: tw,
            tiles_per_image: th * tw,
            alpha_bits: alpha.to_bits(),
            ..Default::default()
        }
    }

    /// The block of `stage` over tiles `tile0 .. tile0 + tiles` (ignored by `Weights`).
    pub fn stage(self, stage: Stage, tile0: u32, tiles: u32) -> Self {
        let stride = row_length(tiles);
        let total = match stage {
            Stage::Weights => self.c_out * (self.c_in / self.groups),
            Stage::Inputs => self.c_in * (stride / 4),
            Stage::Outputs => self.c_out * (stride / 4),
        };
        WinogradParams { tile0, tiles, total, stride, ..self }
    }
}

/// The row length of V and M for `tiles` tiles: rounded up to a multiple of 4, so that the
/// GEMM reads V's rows as vec4 (the extra columns are zeros in V, never read from M).
pub fn row_length(tiles: u32) -> u32 {
    tiles.next_multiple_of(4)
}

/// Rows and columns of 2×2 output tiles per image: ⌈Ho/2⌉, ⌈Wo/2⌉.
pub fn tiles(g: &Conv2dGeometry) -> (u32, u32) {
    (g.h_out.div_ceil(2), g.w_out.div_ceil(2))
}

/// The kernel of `stage` for f32 or f16 (`half`) storage.
pub fn shader(stage: Stage, half: bool) -> ShaderId {
    match (stage, half) {
        (Stage::Weights, false) => ShaderId::WinogradWeights,
        (Stage::Inputs, false) => ShaderId::WinogradInputs,
        (Stage::Outputs, false) => ShaderId::WinogradOutputs,
        (Stage::Weights, true) => ShaderId::WinogradWeightsHalf,
        (Stage::Inputs, true) => ShaderId::WinogradInputsHalf,
        (Stage::Outputs, true) => ShaderId::WinogradOutputsHalf,
    }
}

/// How a call's tensors are read and its result written: the epilogue (activation, bias), the
/// storage type, the input's and output's layouts, and whether the weight is a stride-1
/// conv_transpose2d's (`FLIP`: the conv it equals reads it flipped, its channel axes swapped).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Variant {
    /// The fused activation.
    pub activation: Activation,
    /// Whether a bias is added.
    pub has_bias: bool,
    /// The tensors' storage type.
    pub dtype: DType,
    /// The input's and the output's layouts.
    pub layouts: (Layout, Layout),
    /// A conv_transpose2d's weight `[Cin, Cout/G, 3, 3]`.
    pub flip: bool,
}

/// The override constants of `stage`: the input's layout (`X_NHWC`) where it reads x, `FLIP`
/// where it reads the weight, and for `Outputs` the epilogue's and the output's layout
/// (`Y_NHWC`). Flags that are off are left out (their defaults).
pub fn overrides(stage: Stage, v: &Variant) -> Overrides {
    let (input, output) = v.layouts;
    let flip = |ov: Overrides| if v.flip { ov.flag("FLIP", true) } else { ov };
    match stage {
        Stage::Weights => flip(Overrides::none()),
        Stage::Inputs => Overrides::none().layouts(input, Layout::Contiguous),
        Stage::Outputs => flip(
            Overrides::none()
                .flag("HAS_BIAS", v.has_bias)
                .with("ACT", v.activation.code() as f64)
                .layouts(input, output),
        ),
    }
}

/// The launch of `stage` over the block `p` (made by [`WinogradParams::stage`]) of the call
/// variant `v`.
pub(crate) fn step(ctx: &GpuContext, p: &WinogradParams, stage: Stage, v: &Variant) -> Result<Step> {
    Ok(Step {
        shader: shader(stage, v.dtype == DType::F16),
        overrides: overrides(stage, v),
        workgroups: fold_grid((p.total as u64).div_ceil(WG), ctx.max_workgroups_per_dim())?,
        note: String::new(),
    })
}

/// The dispatch of a planned `step` of `stage`: `ws` is U (weights), V (inputs) or M
/// (outputs); the tensors a stage does not use are bound to the context's dummies.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    step: &Step,
    stage: Stage,
    (input, weight, bias, output): (&Tensor, &Tensor, Option<&Tensor>, &Tensor),
    ws: wgpu::BindingResource<'_>,
) -> Result<Dispatch> {
    let uniform = crate::kernels::range(uniforms, block);
    // (U has its own binding: f32 elements, where V and M are read as vec4)
    let none = || optional(ctx, None);
    let bindings = match stage {
        Stage::Weights => [uniform, none(), whole(weight), none(), ctx.unused_rw(0), ctx.unused_rw(1), ws],
        Stage::Inputs => [uniform, whole(input), none(), none(), ctx.unused_rw(0), ws, ctx.unused_rw(1)],
        Stage::Outputs => {
            [uniform, whole(input), whole(weight), optional(ctx, bias), whole(output), ws, ctx.unused_rw(1)]
        }
    };
    step.dispatch(ctx, &bindings)
}
