//! `shaders/gemm.wgsl` (with `gemm_modes.wgsl` and the B readers): its uniform block, its
//! operand modes, the choice of entry point and tile, and the dispatches of one GEMM (K in
//! passes under the loop budget).

use crate::context::{BLoads, GemmKernel, GpuContext, TileShape};
use crate::error::{Error, Result};
use crate::kernels::pack_a::{self, PackAParams};
use crate::kernels::slot_sum::{self, SlotParams};
use crate::kernels::{
    fold_grid, loop_passes, optional, pass_blocks_windowed, range, uniform_block, whole, Dispatch, Step,
};
use crate::params::{Activation, Conv2dGeometry};
use crate::shaders::{GemmKey, Overrides, ShaderId};
use crate::tensor::{DType, Layout, Tensor};

uniform_block! {
    /// Twin of `GemmDims` in `shaders/gemm.wgsl`: `groups` GEMMs of `m×k · k×n`, the conv
    /// write-out, and a split K (`slices` of `slice_k`, each summing into its slot of
    /// `slot_len` f32; set by `split_k`) (see the shader).
    GemmDims { m, n, k, groups, hw, col0, c_image_stride, alpha_bits, img0, slices, slice_k, slot_len }
}

uniform_block! {
    /// Twin of `ConvWindow` in `shaders/gemm_b.wgsl`: the input and window the gathering
    /// loaders read, and the width of the grid the columns walk.
    ConvWindow { c_in, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, w_out }
}

uniform_block! {
    /// Twin of `OutputGrad` in `shaders/gemm_a.wgsl` (`AMode::OutputGrad`, `BMode::Taps`).
    OutputGrad { a_hw, a_channels, _pad0, _pad1 }
}

uniform_block! {
    /// Twin of `DeformSampling` in `shaders/gemm_b_deform.wgsl`.
    DeformSampling { offset_groups, _pad0, _pad1, _pad2 }
}

uniform_block! {
    /// Twin of `DepthwiseStage` in `shaders/gemm_b_depthwise.wgsl`.
    DepthwiseStage { dw_mult, _pad0, _pad1, _pad2 }
}

uniform_block! {
    /// Twin of `OutputPhases` in `shaders/gemm_b_transposed.wgsl`.
    OutputPhases { out_h, out_w, taps_y, taps_x, step_y, step_x, dq_y, dq_x }
}

uniform_block! {
    /// Twin of `ColumnChunk` in `shaders/gemm_b_columns_t.wgsl`: pixels per chunk of the
    /// column workspace `BMode::ColumnsT` reads.
    ColumnChunk { chunk_cols, _pad0, _pad1, _pad2 }
}

/// Twin of `GemmParams` in `shaders/gemm.wgsl`: the GEMM's sizes and each loader's fields
/// (every part a multiple of 16 bytes, as a uniform struct member of struct type must start).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemmParams {
    /// The GEMM's sizes and its conv write-out.
    pub dims: GemmDims,
    /// The input and window the gathering B loaders read.
    pub conv: ConvWindow,
    /// The output gradient's sizes (`AMode::OutputGrad`, `BMode::Taps`).
    pub grad: OutputGrad,
    /// The offset groups (`BMode::Deform`).
    pub deform: DeformSampling,
    /// The depthwise stage's channel multiplier (`BMode::Depthwise`).
    pub dw: DepthwiseStage,
    /// conv_transpose2d's output phases (`AMode::PhaseTaps`, `BMode::Transposed`).
    pub phases: OutputPhases,
    /// The chunk of the column workspace (`BMode::ColumnsT`).
    pub cols: ColumnChunk,
}

impl GemmParams {
    /// `(part, byte offset)` in declaration order.
    pub const FIELDS: &'static [(&'static str, usize)] = &[
        ("dims", std::mem::offset_of!(GemmParams, dims)),
        ("conv", std::mem::offset_of!(GemmParams, conv)),
        ("grad", std::mem::offset_of!(GemmParams, grad)),
        ("deform", std::mem::offset_of!(GemmParams, deform)),
        ("dw", std::mem::offset_of!(GemmParams, dw)),
        ("phases", std::mem::offset_of!(GemmParams, phases)),
        ("cols", std::mem::offset_of!(GemmParams, cols)),
    ];
}

/// Where the GEMM's B operand comes from (the shader's `B_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BMode {
    /// A dense `[groups, K, N]` matrix (the im2col workspace, or a plain GEMM's B).
    Dense = 0,
    /// Gathered from the NCHW input on the fly (implicit GEMM).
    Implicit = 1,
    /// The NCHW input of a 1x1, stride-1, unpadded conv.
    Pointwise = 2,
    /// The im2col matrix transposed, gathered from the input: rows are output pixels,
    /// columns kernel taps (grad_weight).
    Taps = 3,
    /// Deformable: bilinear samples at offsets (times a mask) gathered from the input; rows
    /// tap-major, so it pairs with `AMode::TapMajor`.
    Deform = 4,
    /// A depthwise conv's output computed on the fly (the fused separable block).
    Depthwise = 5,
    /// conv_transpose2d by output phases: each phase's taps gathered from the input.
    Transposed = 6,
    /// A column workspace `[groups, N, pixels of one chunk]` read transposed (rows are
    /// pixels), chunk by chunk (deform_conv2d_backward's grad_weight).
    ColumnsT = 7,
}

impl BMode {
    /// Every mode, in `B_MODE` order.
    pub const ALL: [BMode; 8] = [
        BMode::Dense,
        BMode::Implicit,
        BMode::Pointwise,
        BMode::Taps,
        BMode::Deform,
        BMode::Depthwise,
        BMode::Transposed,
        BMode::ColumnsT,
    ];
}

impl GemmParams {
    /// `groups` GEMMs of `m×k · k×n`, written through the conv layout (see the shader).
    pub fn new(m: u32, n: u32, k: u32, groups: u32, hw: u32, col0: u32, c_image_stride: u32) -> Self {
        let dims = GemmDims { m, n, k, groups, hw, col0, c_image_stride, ..Default::default() };
        GemmParams { dims, ..Default::default() }
    }

    /// These dimensions with the activation slope `alpha` (leaky_relu).
    pub fn with_alpha(mut self, alpha: f32) -> Self {
        self.dims.alpha_bits = alpha.to_bits();
        self
    }

    /// Conv GEMM over output pixels `col0 .. col0 + cols` of `g`, with its activation slope
    /// and the geometry the implicit modes gather with.
    pub fn conv(g: &Conv2dGeometry, col0: u32, cols: u32, alpha: f32) -> Self {
        let hw = g.h_out * g.w_out;
        let k = g.c_in_per_group() * g.kh * g.kw;
        GemmParams::new(g.c_out_per_group(), cols, k, g.groups, hw, col0, g.c_out * hw).gathering(g).with_alpha(alpha)
    }

    /// The dense GEMM of an unfolded conv over output pixels `col0 .. col0 + cols` (B the
    /// column matrix of those pixels), with its activation slope: the conv write-out of
    /// `[N, Cout, pixels per image]`.
    pub fn unfolded(u: &crate::params::Unfolded, col0: u32, cols: u32, alpha: f32) -> Self {
        let hw = u.pixels_per_image;
        GemmParams::new(u.c_out / u.groups, cols, u.rows / u.groups, u.groups, hw, col0, u.c_out * hw).with_alpha(alpha)
    }

    /// The column gradients of images `img0 .. img0 + imgs` of the unfolded conv `u`
    /// (`GemmProblem::TransposedCols`): per group, the weight `[Cout, rows/G]` read transposed
    /// times grad_output's channels, written as `[imgs, rows, pixels per image]` (row
    /// ci·taps + t): what col2im/col2vol gathers into grad_input, and what deform_conv2d's
    /// backward samples.
    pub fn column_gradients(u: &crate::params::Unfolded, img0: u32, imgs: u32) -> Self {
        let hw = u.pixels_per_image;
        let mut p =
            GemmParams::new(u.rows / u.groups, imgs * hw, u.c_out / u.groups, u.groups, hw, img0 * hw, u.rows * hw);
        p.dims.img0 = img0;
        // the pointwise B reads grad_output's channels
        p.conv.c_in = u.c_out;
        p
    }

    /// grad_weight of the unfolded conv `u` (`GemmProblem::GradWeightColumns`):
    /// `dW[g] = dY[g] · unfold[g]ᵀ`, K over every output pixel of the batch, the unfold held
    /// `chunk_cols` pixels at a time; written as the weight `[Cout, rows/G]`.
    pub fn unfold_weight_gradient(u: &crate::params::Unfolded, chunk_cols: u32) -> Self {
        let cols = u.rows / u.groups;
        let hw = u.pixels_per_image;
        let mut p = GemmParams::new(u.c_out / u.groups, cols, u.n * hw, u.groups, cols, 0, 0);
        p.grad = OutputGrad { a_hw: hw, a_channels: u.c_out, ..Default::default() };
        p.cols = ColumnChunk { chunk_cols, ..Default::default() };
        p
    }

    /// These dimensions, with the conv geometry the gathering modes (`BMode::Implicit`,
    /// `BMode::Taps`) read the input with.
    pub fn gathering(self, g: &Conv2dGeometry) -> Self {
        let conv = ConvWindow {
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
            w_out: g.w_out,
        };
        GemmParams { conv, ..self }
    }
}

/// How the GEMM reads its A operand (the shader's `A_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AMode {
    /// `[groups, M, K]` row-major (conv weights).
    RowMajor = 0,
    /// `[groups, K, M]` row-major, read transposed (conv_transpose2d weights).
    Transposed = 1,
    /// An NCHW output gradient read as `[groups, Cout/G, N·Ho·Wo]` (grad_weight).
    OutputGrad = 2,
    /// The conv_transpose2d weight `[Cin, Cout/G, kh, kw]`, one output phase's taps.
    PhaseTaps = 3,
    /// `[groups, M, K]` conv weights with the columns taken tap-major (`k = t·Cin/G + cl`),
    /// the row order of `BMode::Deform`.
    TapMajor = 4,
}

/// The GEMMs the kernel computes, each a legal pairing of how A and B are read (the shader's
/// `A_MODE` and `B_MODE`); no other pairing is ever specialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmProblem {
    /// A plain GEMM, or a conv over its im2col workspace: weight row-major × dense B.
    Dense,
    /// conv2d's implicit GEMM: weight × B gathered from the input.
    Implicit,
    /// A 1x1, stride-1, unpadded conv: weight × the input's channels.
    Pointwise,
    /// conv2d's grad_weight: dY × the input's taps (the im2col matrix transposed).
    GradWeight,
    /// deform_conv2d's implicit GEMM: the weight tap-major × bilinear samples.
    Deform,
    /// The fused depthwise-separable block: pointwise weight × the depthwise stage.
    Separable,
    /// conv_transpose2d by output phases: each phase's taps of the weight × its gathered input.
    TransposedPhases,
    /// conv_transpose2d's `GemmCol2im`: the weight transposed × the input's channels.
    TransposedCols,
    /// deform_conv2d's grad_weight: dY × its deformable unfold transposed, the unfold in
    /// chunks of pixels (`BMode::ColumnsT`).
    GradWeightColumns,
}

impl GemmProblem {
    /// Every problem.
    pub const ALL: [GemmProblem; 9] = [
        GemmProblem::Dense,
        GemmProblem::Implicit,
        GemmProblem::Pointwise,
        GemmProblem::GradWeight,
        GemmProblem::Deform,
        GemmProblem::Separable,
        GemmProblem::TransposedPhases,
        GemmProblem::TransposedCols,
        GemmProblem::GradWeightColumns,
    ];

    /// How this problem reads A and B.
    pub fn modes(self) -> (AMode, BMode) {
        match self {
            GemmProblem::Dense => (AMode::RowMajor, BMode::Dense),
            GemmProblem::Implicit => (AMode::RowMajor, BMode::Implicit),
            GemmProblem::Pointwise => (AMode::RowMajor, BMode::Pointwise),
            GemmProblem::GradWeight => (AMode::OutputGrad, BMode::Taps),
            GemmProblem::Deform => (AMode::TapMajor, BMode::Deform),
            GemmProblem::Separable => (AMode::RowMajor, BMode::Depthwise),
            GemmProblem::TransposedPhases => (AMode::PhaseTaps, BMode::Transposed),
            GemmProblem::TransposedCols => (AMode::Transposed, BMode::Pointwise),
            GemmProblem::GradWeightColumns => (AMode::OutputGrad, BMode::ColumnsT),
        }
    }
}

impl GemmProblem {
    /// Whether B may be read as vec4 (`gemm_b_quad.wgsl`): B is a matrix in memory whose
    /// rows a column tile reads contiguously (dense, or the input's channels).
    pub fn reads_b_as_vec4(self) -> bool {
        matches!(self.modes().1, BMode::Dense | BMode::Pointwise)
    }

    /// Whether an f16 kernel computes it: conv2d's implicit and 1x1 GEMMs and grad_weight,
    /// deform_conv2d's implicit GEMM and conv_transpose2d's output phases (the ops with
    /// f16 storage).
    pub fn has_f16(self) -> bool {
        matches!(
            self,
            GemmProblem::Implicit
                | GemmProblem::Pointwise
                | GemmProblem::GradWeight
                | GemmProblem::Deform
                | GemmProblem::TransposedPhases
        )
    }
}

impl AMode {
    /// Every mode, in `A_MODE` order.
    pub const ALL: [AMode; 5] =
        [AMode::RowMajor, AMode::Transposed, AMode::OutputGrad, AMode::PhaseTaps, AMode::TapMajor];
}

/// Prepares one GEMM dispatch. `bias` of `None` binds the context's dummy buffer and
/// specialises the kernel with `HAS_BIAS = false`, so it is never read.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &GemmParams,
    problem: GemmProblem,
    activation: Activation,
    a: &Tensor,
    b: wgpu::BindingResource<'_>,
    bias: Option<&Tensor>,
    c: &Tensor,
) -> Result<Vec<Dispatch>> {
    prepare_sampling(ctx, uniforms, block, p, problem, activation, a, b, bias, c, Aux::None)
}

/// [`prepare`] whose B is the conv input `b` (a whole tensor): its layout sets `X_NHWC` (the
/// implicit, pointwise and transposed loaders read channels-last), C's `Y_NHWC`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_reading(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &GemmParams,
    problem: GemmProblem,
    activation: Activation,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    c: &Tensor,
) -> Result<Vec<Dispatch>> {
    let aux = Aux::None;
    prepare_laid_out(ctx, uniforms, block, p, problem, activation, a, (whole(b), b.layout()), bias, c, aux)
}

/// The extra operands of the sampling B modes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Aux<'a> {
    None,
    /// `BMode::Deform`: offsets and an optional mask.
    Deform {
        offset: &'a Tensor,
        mask: Option<&'a Tensor>,
    },
    /// `BMode::Depthwise`: the depthwise weight, its optional bias, and its activation code
    /// (0 none, 1 relu, 2 relu6).
    Depthwise {
        weight: &'a Tensor,
        bias: Option<&'a Tensor>,
        act: u32,
    },
}

/// What one GEMM records, decided before any GPU object exists: the kernel (entry point,
/// B reader, dtype), its override constants, the grid of tiles, and the ranges of K its
/// passes cover (`loop_passes` under `EngineConfig::loop_budget`; see `KPass` in the shader).
#[derive(Clone, Debug, PartialEq)]
pub struct GemmPlan {
    /// The register blocking that runs (resolved, never `Auto`; f16 runs 8×8 for 4×4).
    pub kernel: GemmKernel,
    /// The kernel: `ShaderId::Gemm` of the blocking, the B reader (vec4 or scalar) and the storage type.
    pub shader: ShaderId,
    /// Every override, `TILE_SHAPE` included for the 16×16 entry points.
    pub overrides: Overrides,
    /// Rows × columns of C one workgroup computes.
    pub tile: (u32, u32),
    /// The folded grid: one workgroup per tile of C, for every group.
    pub grid: [u32; 3],
    /// `begin .. end` of K per dispatch, in recording order.
    pub k_passes: Vec<(u32, u32)>,
    /// Bytes of the f32 partial sums an f16 output needs when K runs in several passes.
    pub partial_bytes: u64,
    /// A split K (`split_k`): its slices of C's elements, and the launch of
    /// `slot_sum.wgsl` that sums them after the GEMM.
    pub slots: Option<(SlotParams, Step)>,
    /// A in uniform windows ([`crate::UniformA`]): the windows, one per range of K, and the
    /// launch of `pack_a.wgsl` that fills them before the GEMM.
    pub a_windows: Option<(PackAParams, Step)>,
}

impl GemmPlan {
    /// One step per range of K, `what` naming the GEMM.
    pub fn steps(&self, what: &str) -> Vec<Step> {
        let n = self.k_passes.len();
        let mut steps: Vec<Step> = self
            .a_windows
            .iter()
            .map(|(_, step)| Step { note: format!("{what}, {}", step.note), ..step.clone() })
            .collect();
        steps.extend(self.k_passes.iter().map(|&(b, e)| Step {
            shader: self.shader,
            overrides: self.overrides.clone(),
            workgroups: self.grid,
            note: match (n, &self.slots) {
                (_, Some((p, _))) => format!("{what}, K {e} in {} slices", p.slots),
                (1, None) => format!("{what}, K {e}"),
                _ => format!("{what}, K {b}..{e} of {n} passes"),
            },
        }));
        if let Some((p, step)) = &self.slots {
            steps.push(Step { note: format!("{what}, {} slices of K summed", p.slots), ..step.clone() });
        }
        steps
    }
}

/// The override constants of a GEMM with these modes, epilogue and extra operands.
pub(crate) fn overrides(problem: GemmProblem, activation: Activation, has_bias: bool, aux: &Aux<'_>) -> Overrides {
    let (a_mode, mode) = problem.modes();
    let overrides = Overrides::none()
        .flag("HAS_BIAS", has_bias)
        .with("B_MODE", mode as u32 as f64)
        .with("A_MODE", a_mode as u32 as f64)
        .with("ACT", activation.code() as f64);
    match *aux {
        Aux::Deform { mask, .. } => overrides.flag("HAS_MASK", mask.is_some()),
        Aux::Depthwise { bias, act, .. } => overrides.flag("HAS_DW_BIAS", bias.is_some()).with("DW_ACT", act as f64),
        Aux::None => overrides,
    }
}

/// Plans the GEMM `p` of `problem` with `overrides` (see [`overrides`]) whose C has `c_numel`
/// elements; `half`: f16 storage; `b_span`: (offset, size) in bytes of B's binding where B
/// is a buffer range (dense and pointwise B may then be read as vec4).
pub(crate) fn plan(
    ctx: &GpuContext,
    p: &GemmParams,
    problem: GemmProblem,
    overrides: Overrides,
    half: bool,
    b_span: Option<(u64, u64)>,
    c_numel: usize,
) -> Result<GemmPlan> {
    let mode = problem.modes().1;
    let dtype = if half { DType::F16 } else { DType::F32 };
    let kernel = |quad: bool| {
        let loads = match mode {
            _ if quad => BLoads::Vec4,
            BMode::Deform => BLoads::Sample,
            BMode::Implicit | BMode::Transposed | BMode::Taps => BLoads::Implicit,
            BMode::ColumnsT => BLoads::Strided,
            _ => BLoads::Gather,
        };
        match ctx.config().gemm_kernel.resolve(ctx.adapter_info().device_type, p.dims.m, p.dims.n, p.dims.groups, loads)
        {
            // f16 has no 4x4 variant: it runs the 8x8 one.
            GemmKernel::Block4x4 if half => GemmKernel::Block8x8,
            GemmKernel::Auto => GemmKernel::Block8x8,
            k => k,
        }
    };
    // a channels-last pointwise B reads a pixel's channels, C apart: no vec4 along a row
    let channels_last = overrides.entries().iter().any(|&(n, v)| n == "X_NHWC" && v != 0.0);
    let aligned =
        quad_b(p, mode, b_span, dtype) && !channels_last && problem.reads_b_as_vec4() && (!half || problem.has_f16());
    let core = kernel(aligned);
    // vec4 B where the core has such a variant (the 16x16 blockings), else scalar.
    let Some(key) = GemmKey::new(core, aligned, half).or_else(|| GemmKey::new(core, false, half)) else {
        return Err(Error::Internal(format!("no GEMM kernel {core:?} (f16: {half}) for {problem:?}")));
    };
    // A from uniform windows (UniformA): the flat core's f32 row-major A, K unsplit
    let a_rows = p.dims.groups as u64 * p.dims.m as u64;
    let window = match (core, half, problem.modes().0, p.dims.slices <= 1, key.windowed()) {
        (GemmKernel::Flat16x16, false, AMode::RowMajor | AMode::Transposed, true, Some(windowed)) => {
            let macs = a_rows * p.dims.n as u64 * p.dims.k as u64;
            ctx.config().uniform_a.width(ctx.adapter_info().device_type, a_rows, p.dims.k, macs).map(|w| (windowed, w))
        }
        _ => None,
    };
    let key = window.map_or(key, |(k, _)| k);
    let shader = ShaderId::Gemm(key);
    if !key.problems().contains(&problem) {
        return Err(Error::Internal(format!("the GEMM kernel {} does not compute {problem:?}", shader.name())));
    }
    let kernel = core;
    let (tile, overrides) = match kernel {
        GemmKernel::Block16x16 | GemmKernel::Flat16x16 => {
            let shape = TileShape::pick(p.dims.m, p.dims.n);
            (shape.dims(), overrides.with("TILE_SHAPE", shape as u32 as f64))
        }
        _ => ((64, 64), overrides),
    };
    // One workgroup per tile of each group (the shader derives the same numbering).
    let (bm, bn) = tile;
    let tiles = (p.dims.m as u64).div_ceil(bm as u64) * (p.dims.n as u64).div_ceil(bn as u64) * p.dims.groups as u64;
    // A split K ([`split_k`]) runs every slice's tiles side by side: one pass (each slice
    // within the loop budget), then slot_sum.wgsl.
    let slices = p.dims.slices.max(1);
    let grid = fold_grid(tiles * slices as u64, ctx.max_workgroups_per_dim())?;
    let slots = if slices > 1 {
        let sp = SlotParams { len: p.dims.slot_len, slots: slices, ..Default::default() };
        Some((sp, slot_sum::step(ctx, &sp, half, "")?))
    } else {
        None
    };
    // K in ranges that keep every invocation's loop turns within the budget (KPass).
    let (step, cost) = loop_cost(kernel, tile, mode, p);
    let mut k_passes = if slices > 1 {
        vec![(0, p.dims.k)]
    } else {
        loop_passes(p.dims.k, 16, cost * (16 / step) as u64, ctx.config().loop_budget)
    };
    // A in windows: one pass per window, no longer than the loop budget allows
    let a_windows = match window {
        Some((_, mut width)) => {
            // the loop budget's passes (begin a multiple of 16) cap the window, if K needs several
            if k_passes.len() > 1 {
                let longest = k_passes.iter().map(|&(b, e)| e - b).max().unwrap_or(16);
                width = width.min((longest / 16 * 16).max(16));
            }
            k_passes = (0..p.dims.k.max(1)).step_by(width as usize).map(|b| (b, (b + width).min(p.dims.k))).collect();
            let pp = PackAParams {
                rows: a_rows as u32,
                k: p.dims.k,
                width,
                windows: k_passes.len() as u32,
                order: match (problem.modes().0, mode) {
                    (AMode::Transposed, _) => 2,
                    (_, BMode::Implicit) => 1,
                    _ => 0,
                },
                channels: p.conv.c_in / p.dims.groups.max(1),
                taps: p.conv.kh * p.conv.kw,
                m: p.dims.m,
            };
            Some((pp, pack_a::step(ctx, &pp)?))
        }
        None => None,
    };
    // f16 keeps the partial sums of a split K in an f32 twin of c (f32 keeps them in c).
    let partial_bytes = if half && k_passes.len() > 1 { c_numel as u64 * 4 } else { 0 };
    if partial_bytes > ctx.max_binding() {
        return Err(Error::TooLarge(format!(
            "the f32 partial sums of an f16 output of {c_numel} elements over K = {} in {} passes need \
             {partial_bytes} bytes; one storage binding holds at most {} on this device",
            p.dims.k,
            k_passes.len(),
            ctx.max_binding()
        )));
    }
    Ok(GemmPlan { kernel, shader, overrides, tile, grid, k_passes, partial_bytes, slots, a_windows })
}

/// Workgroups a split K aims at ([`split_k`]).
const SPLIT_K_WORKGROUPS: u32 = 32;
/// The columns of C one workgroup is taken to compute when [`split_k`] counts tiles.
const SPLIT_K_TILE_COLUMNS: u32 = 128;
/// The fewest k a slice of a split K sums.
const SPLIT_K_MIN_K: u32 = 256;
/// The most slices of a split K.
const SPLIT_K_MAX_SLICES: u32 = 64;

/// `p` (of `problem`, f16 storage when `half`, C of `c_numel` elements) with its K split into
/// slices that run side by side (`GemmDims::slices`; see the shader) where its columns are
/// too few to keep [`SPLIT_K_WORKGROUPS`] workgroups busy and K is long: conv2d's grad_weight
/// (N = Cin/G·kh·kw columns over K = every output pixel; ResNet's stem: one 64×147 tile over
/// K = 12544, one workgroup). The slices are counted from N and K alone (tiles of
/// [`SPLIT_K_TILE_COLUMNS`] columns), not from M or the groups, so that a chunk of output
/// channels splits its K as its whole call does and sums the same terms in the same order.
/// Each slice sums at least [`SPLIT_K_MIN_K`] k and stays within the loop budget; the
/// slices' f32 sums are added in order afterwards (`slot_sum.wgsl`): the same bits run to
/// run (not an unsplit K's bits: the sum is regrouped). Other problems (a bias or an
/// activation in their epilogue), and GEMMs whose slices would not fit one binding (only
/// under a binding cap far below WebGPU's 128 MiB: a chunk of channels split under such a
/// cap then sums unsplit), are returned unchanged.
pub(crate) fn split_k(
    ctx: &GpuContext,
    mut p: GemmParams,
    problem: GemmProblem,
    half: bool,
    c_numel: usize,
) -> Result<GemmParams> {
    p.dims.slices = 0;
    if problem != GemmProblem::GradWeight {
        return Ok(p);
    }
    let columns = p.dims.n.div_ceil(SPLIT_K_TILE_COLUMNS).max(1);
    let want = SPLIT_K_WORKGROUPS.div_ceil(columns).min(SPLIT_K_MAX_SLICES);
    let slices = want.min(p.dims.k / SPLIT_K_MIN_K);
    if slices < 2 {
        return Ok(p);
    }
    // every slice within the loop budget: no longer than the first pass an unsplit K takes
    let ov = overrides(problem, Activation::None, false, &Aux::None);
    let whole = plan(ctx, &p, problem, ov, half, None, c_numel)?;
    let mut slice_k = p.dims.k.div_ceil(slices).next_multiple_of(16);
    if let Some(&(_, longest)) = whole.k_passes.first().filter(|_| whole.k_passes.len() > 1) {
        slice_k = slice_k.min(longest - longest % 16).max(16);
    }
    let slices = p.dims.k.div_ceil(slice_k);
    let slot_bytes = slices as u64 * c_numel as u64 * 4;
    if !(2..=SPLIT_K_MAX_SLICES).contains(&slices) || slot_bytes > ctx.max_binding() || c_numel > u32::MAX as usize {
        return Ok(p);
    }
    (p.dims.slices, p.dims.slice_k, p.dims.slot_len) = (slices, slice_k, c_numel as u32);
    Ok(p)
}

/// [`plan`] for a B binding that holds one chunk of `p.cols.chunk_cols` pixels of K at a time
/// (`BMode::ColumnsT`, f32): K's passes split at every chunk boundary, so that the caller
/// refills the chunk between them. Returns the plan and each chunk's number of passes.
pub(crate) fn plan_column_chunks(
    ctx: &GpuContext,
    p: &GemmParams,
    problem: GemmProblem,
    overrides: Overrides,
    c_numel: usize,
) -> Result<(GemmPlan, Vec<usize>)> {
    let mut gplan = plan(ctx, p, problem, overrides, false, None, c_numel)?;
    let (step, cost) = loop_cost(gplan.kernel, gplan.tile, problem.modes().1, p);
    let chunk = p.cols.chunk_cols.max(1);
    let (mut passes, mut per_chunk) = (Vec::new(), Vec::new());
    for k0 in (0..p.dims.k).step_by(chunk as usize) {
        let len = chunk.min(p.dims.k - k0);
        let these = loop_passes(len, 16, cost * (16 / step) as u64, ctx.config().loop_budget);
        per_chunk.push(these.len());
        passes.extend(these.into_iter().map(|(b, e)| (k0 + b, k0 + e)));
    }
    gplan.k_passes = passes;
    Ok((gplan, per_chunk))
}

/// The (offset, size) in bytes of a buffer binding; `None` for other resources.
pub(crate) fn span(b: &wgpu::BindingResource<'_>) -> Option<(u64, u64)> {
    let wgpu::BindingResource::Buffer(bb) = b else { return None };
    Some((bb.offset, bb.size.map_or(bb.buffer.size().saturating_sub(bb.offset), |s| s.get())))
}

/// [`prepare`] with the extra operands of `BMode::Deform` or `BMode::Depthwise`: plans the
/// GEMM ([`plan`]) and builds its dispatches ([`prepare_planned`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_sampling(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &GemmParams,
    problem: GemmProblem,
    activation: Activation,
    a: &Tensor,
    b: wgpu::BindingResource<'_>,
    bias: Option<&Tensor>,
    c: &Tensor,
    aux: Aux<'_>,
) -> Result<Vec<Dispatch>> {
    prepare_laid_out(ctx, uniforms, block, p, problem, activation, a, (b, Layout::Contiguous), bias, c, aux)
}

/// [`prepare_sampling`] for a B stored in `b.1`'s layout (`X_NHWC`), C in its own (`Y_NHWC`).
#[allow(clippy::too_many_arguments)]
fn prepare_laid_out(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    p: &GemmParams,
    problem: GemmProblem,
    activation: Activation,
    a: &Tensor,
    (b, b_layout): (wgpu::BindingResource<'_>, Layout),
    bias: Option<&Tensor>,
    c: &Tensor,
    aux: Aux<'_>,
) -> Result<Vec<Dispatch>> {
    // f16 storage (conv2d's implicit and 1x1 GEMMs, conv_transpose2d's output phases,
    // deform_conv2d's implicit GEMM, conv2d_backward's grad_weight: the op checked every
    // operand's dtype and the mode before getting here).
    let half = c.dtype() == DType::F16;
    let mode = problem.modes().1;
    debug_assert!(
        !half
            || (matches!(mode, BMode::Implicit | BMode::Pointwise | BMode::Transposed | BMode::Deform | BMode::Taps)
                && a.dtype() == DType::F16)
    );
    let ov = overrides(problem, activation, bias.is_some(), &aux).layouts(b_layout, c.layout());
    let plan = plan(ctx, p, problem, ov, half, span(&b), c.numel())?;
    prepare_planned(ctx, uniforms, block, &plan, a, b, bias, c, aux)
}

/// The dispatches of a planned GEMM: one per range of K, to be recorded in order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_planned(
    ctx: &GpuContext,
    uniforms: &wgpu::Buffer,
    block: (u64, u64),
    plan: &GemmPlan,
    a: &Tensor,
    b: wgpu::BindingResource<'_>,
    bias: Option<&Tensor>,
    c: &Tensor,
    aux: Aux<'_>,
) -> Result<Vec<Dispatch>> {
    let (mut offset, mut mask, mut dw_w, mut dw_b) = (None, None, None, None);
    match aux {
        Aux::None => {}
        Aux::Deform { offset: o, mask: m } => (offset, mask) = (Some(o), m),
        Aux::Depthwise { weight, bias, .. } => (dw_w, dw_b) = (Some(weight), bias),
    }
    let id = plan.shader;
    let (pipeline, bgl) = ctx.pipeline(id, &plan.overrides)?;
    let partial = if plan.partial_bytes > 0 {
        Some(ctx.create_buffer("wgconv.partial_sums", plan.partial_bytes, wgpu::BufferUsages::STORAGE)?)
    } else {
        None
    };
    // a split K's slices: f32 sums of C's elements, slice after slice, in the context's
    // workspace slot of its own (reused call after call; it may be larger than asked)
    let slots = match &plan.slots {
        Some((sp, _)) => {
            let bytes = sp.slots as u64 * sp.len as u64 * 4;
            Some((sp, ctx.workspace_in(crate::context::SPLIT_K_SLOT, bytes)?, bytes))
        }
        None => None,
    };
    // A in uniform windows: packed by one launch before the GEMM's
    let mut dispatches = Vec::new();
    let windows = match &plan.a_windows {
        Some((pp, _)) => {
            let bytes = pp.windows as u64 * pack_a::WINDOW_BYTES;
            let buf = ctx.create_buffer(
                "wgconv.a_windows",
                bytes,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
            )?;
            let uniforms =
                ctx.create_buffer_with_data("wgconv.pack_a", bytemuck::bytes_of(pp), wgpu::BufferUsages::UNIFORM)?;
            let block = (0, std::mem::size_of::<PackAParams>() as u64);
            dispatches.push(pack_a::prepare(ctx, &uniforms, block, pp, a, &buf)?);
            Some((buf, pp.width))
        }
        None => None,
    };
    let (pass_uniforms, blocks) = pass_blocks_windowed(ctx, &plan.k_passes, windows.as_ref().map_or(0, |&(_, w)| w))?;
    let bias = optional(ctx, bias);
    let aux_binding = match (&partial, &slots, dw_b) {
        (Some(buf), _, _) => range(buf, (0, buf.size())),
        (None, Some((_, buf, bytes)), _) => range(buf, (0, *bytes)),
        (None, None, Some(b)) => whole(b),
        (None, None, None) => ctx.unused_rw(0),
    };
    let grid = plan.grid;
    dispatches.extend(blocks.into_iter().enumerate().map(|(i, block_k)| {
        let window =
            windows.as_ref().map(|(buf, _)| range(buf, (i as u64 * pack_a::WINDOW_BYTES, pack_a::WINDOW_BYTES)));
        let bindings = [
            range(uniforms, block),
            whole(a),
            b.clone(),
            bias.clone(),
            whole(c),
            optional(ctx, offset),
            optional(ctx, mask),
            optional(ctx, dw_w),
            aux_binding.clone(),
            range(&pass_uniforms, block_k),
        ];
        let bind_group = match window {
            Some(w) => ctx.bind_group(id, &bgl, &[&bindings[..], &[w]].concat()),
            None => ctx.bind_group(id, &bgl, &bindings),
        };
        Dispatch { pipeline: pipeline.clone(), bind_group, grid }
    }));
    if let Some((sp, buf, _)) = &slots {
        let uniforms =
            ctx.create_buffer_with_data("wgconv.slot_sum", bytemuck::bytes_of(*sp), wgpu::BufferUsages::UNIFORM)?;
        let block = (0, std::mem::size_of::<SlotParams>() as u64);
        dispatches.push(slot_sum::prepare(ctx, &uniforms, block, sp, buf, c)?);
    }
    Ok(dispatches)
}

/// The GEMM kernel's K loop: (K per turn of its outer loop, an upper bound on the loop turns
/// per outer turn, inner loops included; see the entry points in gemm.wgsl).
fn loop_cost(kernel: GemmKernel, (bm, bn): (u32, u32), mode: BMode, p: &GemmParams) -> (u32, u64) {
    // Turns of the loops inside one load_b call.
    let per_load_b = match mode {
        // the scalar reads of a ragged last column quad; ColumnsT's four scalar reads
        BMode::Dense | BMode::ColumnsT => 4,
        // depthwise_row: kh rows of kw taps
        BMode::Depthwise => (p.conv.kh as u64) * (p.conv.kw as u64 + 1),
        _ => 0,
    };
    match kernel {
        // one k per turn, four load_b calls (none for the tap-major walks, counted anyway)
        GemmKernel::Flat16x16 => (1, 1 + 4 * per_load_b),
        GemmKernel::Block16x16 => {
            let bk = if bm == bn { 16 } else { 8 };
            let a_loads = (bk * bm / 4 / 64) as u64;
            let b_loads = (bk * bn / 4 / 64) as u64;
            (bk, 1 + bk as u64 + a_loads + b_loads + b_loads * per_load_b)
        }
        // main_8x8: four A and B loads per invocation and slice of 16
        GemmKernel::Block8x8 | GemmKernel::Auto => (16, 1 + 16 + 4 + 4 * per_load_b),
        GemmKernel::Block4x4 => (16, 1 + 16 + per_load_b),
    }
}

/// Whether B can be read as vec4 (`gemm_b_quad.wgsl`): a dense or pointwise B whose binding
/// is aligned and sized in whole vec4s, and whose four columns of a row always start at a multiple
/// of 4 elements (dense: N % 4 = 0; pointwise: H·W % 4 = 0 and the first column too).
fn quad_b(p: &GemmParams, mode: BMode, b_span: Option<(u64, u64)>, dtype: DType) -> bool {
    let Some((offset, size)) = b_span else { return false };
    let quad = 4 * dtype.size();
    let aligned = offset % quad == 0 && size % quad == 0;
    aligned
        && match mode {
            BMode::Dense => p.dims.n % 4 == 0,
            BMode::Pointwise => p.dims.hw % 4 == 0 && p.dims.col0 % 4 == 0,
            _ => false,
        }
}
