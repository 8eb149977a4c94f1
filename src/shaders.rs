//! The WGSL kernels: their sources, binding layouts, the override sets the engine uses, and
//! static checks with naga (parse, validate, specialise, translate to SPIR-V/MSL/HLSL/GLSL).

use crate::context::TileShape;
use crate::kernels::gemm::GemmProblem;

/// One WGSL kernel of `shaders/`. Sources are compiled into the crate (`include_str!`), so
/// it works as a dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShaderId {
    /// `shaders/im2col.wgsl`: input NCHW → column matrix `[Cin·kh·kw, pixels]`.
    Im2col,
    /// A GEMM kernel: the batched tiled GEMM with the conv write-out (`shaders/gemm.wgsl`
    /// and its loader files; the problem, `A_MODE` and `B_MODE`, is an override), for one
    /// register blocking, B read width and storage type ([`GemmKey`]).
    Gemm(GemmKey),
    /// `shaders/depthwise.wgsl` (after `activation.wgsl`): direct depthwise conv.
    Depthwise,
    /// `depthwise.wgsl` over f16 storage (f32 arithmetic).
    DepthwiseHalf,
    /// `shaders/col2im.wgsl` (after `activation.wgsl`, `transposed_taps.wgsl`): the gather that finishes
    /// conv_transpose2d.
    Col2im,
    /// `shaders/channel_sum.wgsl`: per-channel sums (conv2d grad_bias).
    ChannelSum,
    /// `channel_sum.wgsl` over f16 storage.
    ChannelSumHalf,
    /// `shaders/slot_sum.wgsl`: a split K's slices of a GEMM summed in order.
    SlotSum,
    /// `slot_sum.wgsl` over f16 storage (f32 slices).
    SlotSumHalf,
    /// `shaders/pack_a.wgsl`: a GEMM's A packed into uniform windows, one per K pass.
    PackA,
    /// `shaders/deform_im2col.wgsl`: bilinear-sampled im2col of deform_conv2d.
    DeformIm2col,
    /// `shaders/deform_backward.wgsl`, entry `sample`: deform_conv2d_backward's grad_offset
    /// and grad_mask, one invocation per sample.
    DeformBackwardSample,
    /// `shaders/deform_grad_input.wgsl`, entry `bin_count`: deform_conv2d_backward's samples
    /// per cell.
    DeformGradInputCount,
    /// `shaders/deform_grad_input.wgsl`, entry `bin_scan`: where each cell's samples begin.
    DeformGradInputScan,
    /// `shaders/deform_grad_input.wgsl`, entry `bin_fill`: the samples sorted by cell.
    DeformGradInputFill,
    /// `shaders/deform_grad_input.wgsl`, entry `largest`: the largest input-gradient term per
    /// element.
    DeformGradInputLargest,
    /// `shaders/deform_grad_input.wgsl`, entry `sum`: the exact fixed-point sums.
    DeformGradInputSum,
    /// `shaders/deform_grad_input.wgsl`, entry `finish`: grad_input from the fixed-point sums.
    DeformGradInputFinish,
    /// `shaders/pool2d.wgsl`: max and average pooling (`MODE`).
    Pool2d,
    /// `pool2d.wgsl` over f16 storage (f32 arithmetic).
    Pool2dHalf,
    /// `shaders/pool2d_backward.wgsl`, entry `argmax`: the index of each window's maximum.
    Pool2dArgmax,
    /// `shaders/pool2d_backward.wgsl`, entry `gather`: max and avg pooling's grad_input.
    Pool2dGather,
    /// `pool2d_backward.wgsl`, entry `argmax`, over f16 storage.
    Pool2dArgmaxHalf,
    /// `pool2d_backward.wgsl`, entry `gather`, over f16 storage.
    Pool2dGatherHalf,
    /// `shaders/vol2col.wgsl`: the 3-D unfold of conv3d.
    Vol2col,
    /// `shaders/col2vol.wgsl`: conv3d_backward's grad_input from its column gradients.
    Col2vol,
    /// `shaders/depthwise_backward.wgsl`, entry `grad_input`.
    DepthwiseGradInput,
    /// `shaders/depthwise_backward.wgsl`, entry `grad_weight`.
    DepthwiseGradWeight,
    /// `depthwise_backward.wgsl`, entry `grad_input`, over f16 storage.
    DepthwiseGradInputHalf,
    /// `depthwise_backward.wgsl`, entry `grad_weight`, over f16 storage.
    DepthwiseGradWeightHalf,
    /// `shaders/direct.wgsl` (after `activation.wgsl`): direct conv2d, 4 pixels × 16
    /// channels per invocation, weights read at workgroup-uniform addresses.
    Direct,
    /// `shaders/winograd.wgsl`, entry `weights`: Winograd F(2×2, 3×3)'s weight transform.
    WinogradWeights,
    /// `shaders/winograd.wgsl`, entry `inputs`: the input transform of one chunk of tiles.
    WinogradInputs,
    /// `shaders/winograd.wgsl`, entry `outputs`: the output transform and the epilogue.
    WinogradOutputs,
    /// `winograd.wgsl`, entry `weights`, over f16 storage (f32 transforms).
    WinogradWeightsHalf,
    /// `winograd.wgsl`, entry `inputs`, over f16 storage (f32 transforms).
    WinogradInputsHalf,
    /// `winograd.wgsl`, entry `outputs`, over f16 storage (f32 transforms).
    WinogradOutputsHalf,
    /// `shaders/transposed_border.wgsl` (after `activation.wgsl`, `transposed_taps.wgsl`): conv_transpose2d's output
    /// phases, the NaN of their border band recomputed by the scatter's terms.
    TransposedBorder,
    /// `transposed_border.wgsl` over f16 storage (f32 arithmetic).
    TransposedBorderHalf,
    /// `shaders/cast_widen.wgsl`: f16 → f32 (the f32-only ops' f16 storage).
    CastWiden,
    /// `shaders/cast_narrow.wgsl`: f32 → f16.
    CastNarrow,
}

/// `shaders/activation.wgsl`, concatenated in front of the kernels with a fused epilogue.
pub const ACTIVATION_WGSL: &str = include_str!("../shaders/activation.wgsl");

/// What a binding of group 0 is; the bind group layout is built from this list, and a
/// test checks it against what naga reflects from the WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// A uniform buffer (`var<uniform>`).
    Uniform,
    /// A read-only storage buffer (`var<storage, read>`).
    StorageRead,
    /// A read-write storage buffer (`var<storage, read_write>`).
    StorageReadWrite,
}

/// One kernel's registration: its WGSL files joined in order (shared helpers first, the
/// kernel's own file last), its entry point, the bindings of group 0 and whether it stores f16.
#[derive(Debug)]
pub struct KernelSpec {
    /// The kernel's name (`gemm_16x16_f16`): its pipelines' label, and what plans and replays call it.
    pub name: &'static str,
    /// The files of `shaders/` its source joins, in order.
    pub files: &'static [&'static str],
    /// Those files' text, joined.
    pub source: &'static str,
    /// The entry point's name.
    pub entry: &'static str,
    /// The bindings of group 0, in order.
    pub bindings: &'static [BindingKind],
    /// Whether the kernel stores f16 (needs `SHADER_F16` on the device).
    pub f16: bool,
}

/// `wgsl!("a.wgsl", "b.wgsl")`: the file list and the files' text joined (compiled in with
/// `include_str!`, so the crate works as a dependency).
macro_rules! wgsl {
    ($($f:literal),+) => {
        (&[$($f),+], concat!($(include_str!(concat!("../shaders/", $f))),+))
    };
}

type Source = (&'static [&'static str], &'static str);

/// A GEMM kernel's files: the storage type, the shared helpers, the B reader (scalar or
/// quad), the core with every loader, main_flat's A reader (storage or uniform windows), and
/// the register blocking's own files (the entry point last).
macro_rules! gemm {
    ($dtype:literal, $b:literal, $a:literal, $($core:literal),+) => {
        wgsl!(
            $dtype,
            "activation.wgsl",
            "bilinear.wgsl",
            "gemm_modes.wgsl",
            $b,
            "gemm.wgsl",
            "gemm_a.wgsl",
            $a,
            "gemm_b.wgsl",
            "gemm_b_dense.wgsl",
            "gemm_b_pointwise.wgsl",
            "gemm_b_implicit.wgsl",
            "gemm_b_transposed.wgsl",
            "gemm_b_taps.wgsl",
            "gemm_b_deform.wgsl",
            "gemm_b_depthwise.wgsl",
            "gemm_b_columns_t.wgsl",
            $($core),+
        )
    };
}

/// Every GEMM kernel, one registration each: its key, name, source and entry point (the
/// core's). The keys are the legal ones: vec4 B only for the 16×16 blockings (whose B tile
/// rows are 16-byte aligned reads), f16 for all but 4×4.
#[rustfmt::skip]
const GEMM_KERNELS: &[(GemmKey, KernelSpec)] = {
    use crate::context::GemmKernel::{Block16x16 as B16, Block4x4 as B4, Block8x8 as B8, Flat16x16 as Flat};
    macro_rules! gemm_kernel {
        ($core:ident, $quad:literal, $half:literal, $name:literal, $entry:literal, $dtype:literal, $b:literal, $($files:literal),+) => {
            (
                GemmKey { core: $core, quad: $quad, half: $half, window: false },
                KernelSpec { name: $name, files: gemm!($dtype, $b, "gemm_a_rows.wgsl", $($files),+).0, source: gemm!($dtype, $b, "gemm_a_rows.wgsl", $($files),+).1, entry: $entry, bindings: GEMM_BINDINGS, f16: $half },
            )
        };
    }
    // A read from uniform windows (gemm_a_window.wgsl): the flat core, f32
    macro_rules! gemm_window_kernel {
        ($quad:literal, $name:literal, $b:literal) => {
            (
                GemmKey { core: Flat, quad: $quad, half: false, window: true },
                KernelSpec { name: $name, files: gemm!("dtype_f32.wgsl", $b, "gemm_a_window.wgsl", "gemm_block16.wgsl", "gemm_flat.wgsl").0, source: gemm!("dtype_f32.wgsl", $b, "gemm_a_window.wgsl", "gemm_block16.wgsl", "gemm_flat.wgsl").1, entry: "main_flat", bindings: GEMM_WINDOW_BINDINGS, f16: false },
            )
        };
    }
    &[
        gemm_kernel!(B4, false, false, "gemm", "main", "dtype_f32.wgsl", "gemm_b_scalar.wgsl", "gemm_tile64.wgsl", "gemm_4x4.wgsl"),
        gemm_kernel!(B8, false, false, "gemm_8x8", "main_8x8", "dtype_f32.wgsl", "gemm_b_scalar.wgsl", "gemm_tile64.wgsl", "gemm_8x8.wgsl"),
        gemm_kernel!(B16, false, false, "gemm_16x16", "main_16x16", "dtype_f32.wgsl", "gemm_b_scalar.wgsl", "gemm_block16.wgsl", "gemm_16x16.wgsl"),
        gemm_kernel!(B16, true, false, "gemm_16x16_quad", "main_16x16", "dtype_f32.wgsl", "gemm_b_quad.wgsl", "gemm_block16.wgsl", "gemm_16x16.wgsl"),
        gemm_kernel!(Flat, false, false, "gemm_flat", "main_flat", "dtype_f32.wgsl", "gemm_b_scalar.wgsl", "gemm_block16.wgsl", "gemm_flat.wgsl"),
        gemm_kernel!(Flat, true, false, "gemm_flat_quad", "main_flat", "dtype_f32.wgsl", "gemm_b_quad.wgsl", "gemm_block16.wgsl", "gemm_flat.wgsl"),
        gemm_kernel!(B8, false, true, "gemm_8x8_f16", "main_8x8", "dtype_f16.wgsl", "gemm_b_scalar.wgsl", "gemm_tile64.wgsl", "gemm_8x8.wgsl"),
        gemm_kernel!(B16, false, true, "gemm_16x16_f16", "main_16x16", "dtype_f16.wgsl", "gemm_b_scalar.wgsl", "gemm_block16.wgsl", "gemm_16x16.wgsl"),
        gemm_kernel!(B16, true, true, "gemm_16x16_quad_f16", "main_16x16", "dtype_f16.wgsl", "gemm_b_quad.wgsl", "gemm_block16.wgsl", "gemm_16x16.wgsl"),
        gemm_kernel!(Flat, false, true, "gemm_flat_f16", "main_flat", "dtype_f16.wgsl", "gemm_b_scalar.wgsl", "gemm_block16.wgsl", "gemm_flat.wgsl"),
        gemm_kernel!(Flat, true, true, "gemm_flat_quad_f16", "main_flat", "dtype_f16.wgsl", "gemm_b_quad.wgsl", "gemm_block16.wgsl", "gemm_flat.wgsl"),
        gemm_window_kernel!(false, "gemm_flat_window", "gemm_b_scalar.wgsl"),
        gemm_window_kernel!(true, "gemm_flat_quad_window", "gemm_b_quad.wgsl"),
    ]
};

/// Which GEMM kernel runs: the register blocking (a resolved [`GemmKernel`], never `Auto`),
/// whether B is read as vec4 (`gemm_b_quad.wgsl`, else `gemm_b_scalar.wgsl`), whether
/// tensors are stored as f16 (`dtype_f16.wgsl`) and whether the flat core reads A from
/// uniform windows (`gemm_a_window.wgsl`, f32, `A_ROW_MAJOR` and `A_TRANSPOSED`). The problem it computes is an override
/// (`A_MODE`, `B_MODE`: [`GemmProblem`]), so it is part of the pipeline's key too.
///
/// Only registered (legal) keys exist: [`GemmKey::new`] is the one way to make one.
///
/// [`GemmKernel`]: crate::GemmKernel
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GemmKey {
    core: crate::context::GemmKernel,
    quad: bool,
    half: bool,
    window: bool,
}

impl GemmKey {
    /// The key of a registered kernel; `None` for an illegal combination (vec4 B on a 64×64
    /// tile, f16 on 4×4, or `Auto`).
    pub fn new(core: crate::context::GemmKernel, quad: bool, half: bool) -> Option<GemmKey> {
        let key = GemmKey { core, quad, half, window: false };
        GEMM_KERNELS.iter().any(|(k, _)| *k == key).then_some(key)
    }

    /// This key's kernel with A read from uniform windows, where one is registered (the flat
    /// core, f32).
    pub fn windowed(self) -> Option<GemmKey> {
        let key = GemmKey { window: true, ..self };
        GEMM_KERNELS.iter().any(|(k, _)| *k == key).then_some(key)
    }

    /// Whether A is read from uniform windows (`gemm_a_window.wgsl`).
    pub fn window(self) -> bool {
        self.window
    }

    /// The register blocking.
    pub fn core(self) -> crate::context::GemmKernel {
        self.core
    }

    /// Whether B is read as vec4.
    pub fn quad(self) -> bool {
        self.quad
    }

    /// Whether tensors are stored as f16.
    pub fn half(self) -> bool {
        self.half
    }

    fn spec(self) -> &'static KernelSpec {
        // Keys come from `new` (or the table itself): every one is registered.
        GEMM_KERNELS.iter().find(|(k, _)| *k == self).map_or(&GEMM_KERNELS[0].1, |(_, s)| s)
    }

    /// The problems this kernel computes: vec4 B reads need a dense or pointwise B (whole
    /// rows in memory); f16 storage exists for the problems the f16 ops run.
    pub fn problems(self) -> Vec<GemmProblem> {
        GemmProblem::ALL
            .into_iter()
            .filter(|p| (!self.quad || p.reads_b_as_vec4()) && (!self.half || p.has_f16()))
            .filter(|p| {
                !self.window
                    || matches!(
                        p.modes().0,
                        crate::kernels::gemm::AMode::RowMajor | crate::kernels::gemm::AMode::Transposed
                    )
            })
            .collect()
    }

    /// Every override set the engine specialises this kernel with: each of its problems with
    /// the epilogues and extras that problem takes, and the tile shape where the core picks
    /// one per GEMM.
    fn override_sets(self) -> Vec<Overrides> {
        use crate::context::GemmKernel;
        let shapes = matches!(self.core, GemmKernel::Block16x16 | GemmKernel::Flat16x16);
        let mut sets = Vec::new();
        for problem in self.problems() {
            for ov in problem_sets(problem) {
                if shapes {
                    sets.extend(TileShape::ALL.iter().map(|&t| ov.clone().with("TILE_SHAPE", t as u32 as f64)));
                } else {
                    sets.push(ov);
                }
            }
        }
        sets
    }
}

/// The override sets of one GEMM problem: its `A_MODE` and `B_MODE` with every epilogue
/// (bias × activation) it is run with, and its own flags (deform_conv2d's mask, the fused
/// separable block's depthwise bias and activation).
fn problem_sets(problem: GemmProblem) -> Vec<Overrides> {
    let (a, b) = problem.modes();
    let modes = |ov: Overrides| ov.with("A_MODE", a as u32 as f64).with("B_MODE", b as u32 as f64);
    match problem {
        // the grad_weights: no epilogue
        GemmProblem::GradWeight | GemmProblem::GradWeightColumns => {
            vec![modes(Overrides::none().flag("HAS_BIAS", false).with("ACT", 0.0))]
        }
        // conv_transpose2d's gemm_col2im (bias and activation come later, in col2im): no
        // epilogue, from either layout of the input; deform_conv2d_backward's column
        // gradients pixel-major (each pixel's rows together)
        GemmProblem::TransposedCols => {
            use crate::Layout::{ChannelsLast, Contiguous};
            let ov = modes(Overrides::none().flag("HAS_BIAS", false).with("ACT", 0.0));
            vec![ov.clone(), ov.clone().layouts(ChannelsLast, Contiguous), ov.layouts(Contiguous, ChannelsLast)]
        }
        GemmProblem::Deform => epilogue_sets()
            .into_iter()
            .flat_map(|ov| [false, true].map(|mask| modes(ov.clone()).flag("HAS_MASK", mask)))
            .collect(),
        GemmProblem::Separable => {
            let mut sets = Vec::new();
            for ov in epilogue_sets() {
                for dw_bias in [false, true] {
                    for dw_act in 0..3 {
                        sets.push(modes(ov.clone()).flag("HAS_DW_BIAS", dw_bias).with("DW_ACT", dw_act as f64));
                    }
                }
            }
            sets
        }
        // conv2d's and conv_transpose2d's: NCHW with every epilogue, and their channels-last
        // layouts (im2col's dense GEMM writes them only)
        GemmProblem::Dense => {
            let mut sets: Vec<Overrides> = epilogue_sets().into_iter().map(modes).collect();
            sets.extend(layout_sets(false).into_iter().map(modes));
            sets
        }
        GemmProblem::Implicit | GemmProblem::Pointwise | GemmProblem::TransposedPhases => {
            let mut sets: Vec<Overrides> = epilogue_sets().into_iter().map(modes).collect();
            sets.extend(layout_sets(true).into_iter().map(modes));
            sets
        }
    }
}

/// The channels-last layouts of conv2d's kernels (`X_NHWC` where `reads` the input, and
/// `Y_NHWC`), each with every epilogue.
fn layout_sets(reads: bool) -> Vec<Overrides> {
    let layouts = [(false, true), (true, false), (true, true)];
    let mut sets = Vec::new();
    for (x, y) in layouts.into_iter().filter(|&(x, _)| reads || !x) {
        for ov in epilogue_sets() {
            let layout = |cl: bool| if cl { crate::Layout::ChannelsLast } else { crate::Layout::Contiguous };
            sets.push(ov.layouts(layout(x), layout(y)));
        }
    }
    sets
}

const DEPTHWISE_F32: Source = wgsl!("dtype_f32.wgsl", "activation.wgsl", "depthwise.wgsl");
const DEPTHWISE_F16: Source = wgsl!("dtype_f16.wgsl", "activation.wgsl", "depthwise.wgsl");
const CHANNEL_SUM_F32: Source = wgsl!("dtype_f32.wgsl", "channel_sum.wgsl");
const CHANNEL_SUM_F16: Source = wgsl!("dtype_f16.wgsl", "channel_sum.wgsl");
const SLOT_SUM_F32: Source = wgsl!("dtype_f32.wgsl", "slot_sum.wgsl");
const SLOT_SUM_F16: Source = wgsl!("dtype_f16.wgsl", "slot_sum.wgsl");
const POOL2D_F32: Source = wgsl!("dtype_f32.wgsl", "pool_window.wgsl", "pool2d.wgsl");
const POOL2D_F16: Source = wgsl!("dtype_f16.wgsl", "pool_window.wgsl", "pool2d.wgsl");
const DEFORM_BACKWARD: Source = wgsl!("deform_backward_common.wgsl", "deform_backward.wgsl");
const DEFORM_GRAD_INPUT: Source = wgsl!("deform_backward_common.wgsl", "deform_grad_input.wgsl");
const POOL2D_BACKWARD_F32: Source = wgsl!("dtype_f32.wgsl", "pool_window.wgsl", "pool2d_backward.wgsl");
const POOL2D_BACKWARD_F16: Source = wgsl!("dtype_f16.wgsl", "pool_window.wgsl", "pool2d_backward.wgsl");
const DEPTHWISE_BACKWARD_F32: Source = wgsl!("dtype_f32.wgsl", "depthwise_backward.wgsl");
const DEPTHWISE_BACKWARD_F16: Source = wgsl!("dtype_f16.wgsl", "depthwise_backward.wgsl");
const WINOGRAD_F32: Source = wgsl!("dtype_f32.wgsl", "activation.wgsl", "winograd.wgsl");
const WINOGRAD_F16: Source = wgsl!("dtype_f16.wgsl", "activation.wgsl", "winograd.wgsl");
const TRANSPOSED_BORDER_F32: Source =
    wgsl!("dtype_f32.wgsl", "activation.wgsl", "transposed_taps.wgsl", "transposed_border.wgsl");
const TRANSPOSED_BORDER_F16: Source =
    wgsl!("dtype_f16.wgsl", "activation.wgsl", "transposed_taps.wgsl", "transposed_border.wgsl");

use BindingKind::{StorageRead as R, StorageReadWrite as Rw, Uniform as U};

/// params, a, b, bias, c, offset, mask, dw_weight, aux (dw_bias or the f16 partial sums), kpass
const GEMM_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw, R, R, R, Rw, U];
/// GEMM_BINDINGS and the pass's A window (gemm_a_window.wgsl)
const GEMM_WINDOW_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw, R, R, R, Rw, U, U];
/// params, input, offset, mask, cols, grad_offset, grad_mask
const DEFORM_BACKWARD_BINDINGS: &[BindingKind] = &[U, R, R, R, R, Rw, Rw];
/// params, offset, mask, cols, acc, bins, starts, entries, grad_input
const DEFORM_GRAD_INPUT_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw, Rw, Rw, Rw, Rw];
/// params, input, grad_output, grad_input, index, pass range, running part
const POOL_BACKWARD_BINDINGS: &[BindingKind] = &[U, R, R, Rw, Rw, U, Rw];
/// params, input, weight, bias, out
const CONV_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw];
/// params, x, w, dy, grad (grad_input or grad_weight), grad_bias (grad_weight's)
const DW_BACKWARD_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw, Rw];
/// params, input, weight, bias, out, V or M (as vec4), U
const WINOGRAD_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw, Rw, Rw];
/// params, input, weight, bias, out, pass range, running part
const BORDER_BINDINGS: &[BindingKind] = &[U, R, R, R, Rw, U, Rw];
/// params, input, col
const UNFOLD_BINDINGS: &[BindingKind] = &[U, R, Rw];
/// params, input, out, pass range, running part
const PASSES_BINDINGS: &[BindingKind] = &[U, R, Rw, U, Rw];

/// `kernel!(name, source, entry, bindings, f16)`: one registration.
macro_rules! kernel {
    ($name:literal, $src:expr, $entry:literal, $bindings:expr, $f16:literal) => {
        &KernelSpec { name: $name, files: $src.0, source: $src.1, entry: $entry, bindings: $bindings, f16: $f16 }
    };
}

impl ShaderId {
    /// Every kernel: each GEMM key registered, and the others.
    pub fn all() -> Vec<ShaderId> {
        let mut all = vec![ShaderId::Im2col];
        all.extend(GEMM_KERNELS.iter().map(|(k, _)| ShaderId::Gemm(*k)));
        all.extend([
            ShaderId::Depthwise,
            ShaderId::DepthwiseHalf,
            ShaderId::Col2im,
            ShaderId::ChannelSum,
            ShaderId::ChannelSumHalf,
            ShaderId::SlotSum,
            ShaderId::SlotSumHalf,
            ShaderId::PackA,
            ShaderId::DeformIm2col,
            ShaderId::DeformBackwardSample,
            ShaderId::DeformGradInputCount,
            ShaderId::DeformGradInputScan,
            ShaderId::DeformGradInputFill,
            ShaderId::DeformGradInputLargest,
            ShaderId::DeformGradInputSum,
            ShaderId::DeformGradInputFinish,
            ShaderId::Pool2d,
            ShaderId::Pool2dHalf,
            ShaderId::Pool2dArgmax,
            ShaderId::Pool2dGather,
            ShaderId::Pool2dArgmaxHalf,
            ShaderId::Pool2dGatherHalf,
            ShaderId::Vol2col,
            ShaderId::Col2vol,
            ShaderId::DepthwiseGradInput,
            ShaderId::DepthwiseGradWeight,
            ShaderId::DepthwiseGradInputHalf,
            ShaderId::DepthwiseGradWeightHalf,
            ShaderId::Direct,
            ShaderId::WinogradWeights,
            ShaderId::WinogradInputs,
            ShaderId::WinogradOutputs,
            ShaderId::WinogradWeightsHalf,
            ShaderId::WinogradInputsHalf,
            ShaderId::WinogradOutputsHalf,
            ShaderId::TransposedBorder,
            ShaderId::TransposedBorderHalf,
            ShaderId::CastWiden,
            ShaderId::CastNarrow,
        ]);
        all
    }

    /// The kernel's registration: every kernel is one line here.
    pub fn spec(self) -> &'static KernelSpec {
        match self {
            ShaderId::Im2col => {
                kernel!("im2col", wgsl!("pad_mode.wgsl", "im2col.wgsl"), "main", UNFOLD_BINDINGS, false)
            }
            ShaderId::Gemm(key) => key.spec(),
            ShaderId::Depthwise => kernel!("depthwise", DEPTHWISE_F32, "main", CONV_BINDINGS, false),
            ShaderId::DepthwiseHalf => kernel!("depthwise_f16", DEPTHWISE_F16, "main", CONV_BINDINGS, true),
            // params, col, bias, out
            ShaderId::Col2im => {
                kernel!(
                    "col2im",
                    wgsl!("activation.wgsl", "transposed_taps.wgsl", "col2im.wgsl"),
                    "main",
                    &[U, R, R, Rw],
                    false
                )
            }
            ShaderId::ChannelSum => kernel!("channel_sum", CHANNEL_SUM_F32, "main", PASSES_BINDINGS, false),
            ShaderId::ChannelSumHalf => kernel!("channel_sum_f16", CHANNEL_SUM_F16, "main", PASSES_BINDINGS, true),
            // params, parts, out
            ShaderId::SlotSum => kernel!("slot_sum", SLOT_SUM_F32, "main", &[U, R, Rw], false),
            ShaderId::SlotSumHalf => kernel!("slot_sum_f16", SLOT_SUM_F16, "main", &[U, R, Rw], true),
            // params, a, windows
            ShaderId::PackA => kernel!("pack_a", wgsl!("pack_a.wgsl"), "main", &[U, R, Rw], false),
            // params, input, offset, mask, col
            ShaderId::DeformIm2col => {
                kernel!("deform_im2col", wgsl!("bilinear.wgsl", "deform_im2col.wgsl"), "main", &[U, R, R, R, Rw], false)
            }
            // params, input, offset, mask, cols, grad_offset, grad_mask
            ShaderId::DeformBackwardSample => {
                kernel!("deform_backward_sample", DEFORM_BACKWARD, "sample", DEFORM_BACKWARD_BINDINGS, false)
            }
            // params, offset, mask, cols, acc, bins, starts, entries, grad_input
            ShaderId::DeformGradInputCount => {
                kernel!("deform_grad_input_count", DEFORM_GRAD_INPUT, "bin_count", DEFORM_GRAD_INPUT_BINDINGS, false)
            }
            ShaderId::DeformGradInputScan => {
                kernel!("deform_grad_input_scan", DEFORM_GRAD_INPUT, "bin_scan", DEFORM_GRAD_INPUT_BINDINGS, false)
            }
            ShaderId::DeformGradInputFill => {
                kernel!("deform_grad_input_fill", DEFORM_GRAD_INPUT, "bin_fill", DEFORM_GRAD_INPUT_BINDINGS, false)
            }
            ShaderId::DeformGradInputLargest => {
                kernel!("deform_grad_input_largest", DEFORM_GRAD_INPUT, "largest", DEFORM_GRAD_INPUT_BINDINGS, false)
            }
            ShaderId::DeformGradInputSum => {
                kernel!("deform_grad_input_sum", DEFORM_GRAD_INPUT, "sum", DEFORM_GRAD_INPUT_BINDINGS, false)
            }
            ShaderId::DeformGradInputFinish => {
                kernel!("deform_grad_input_finish", DEFORM_GRAD_INPUT, "finish", DEFORM_GRAD_INPUT_BINDINGS, false)
            }
            ShaderId::Pool2d => kernel!("pool2d", POOL2D_F32, "main", PASSES_BINDINGS, false),
            ShaderId::Pool2dHalf => kernel!("pool2d_f16", POOL2D_F16, "main", PASSES_BINDINGS, true),
            // params, input, grad_output, grad_input, index, pass range, running part
            ShaderId::Pool2dArgmax => {
                kernel!("pool2d_argmax", POOL2D_BACKWARD_F32, "argmax", POOL_BACKWARD_BINDINGS, false)
            }
            ShaderId::Pool2dGather => {
                kernel!("pool2d_gather", POOL2D_BACKWARD_F32, "gather", POOL_BACKWARD_BINDINGS, false)
            }
            ShaderId::Pool2dArgmaxHalf => {
                kernel!("pool2d_argmax_f16", POOL2D_BACKWARD_F16, "argmax", POOL_BACKWARD_BINDINGS, true)
            }
            ShaderId::Pool2dGatherHalf => {
                kernel!("pool2d_gather_f16", POOL2D_BACKWARD_F16, "gather", POOL_BACKWARD_BINDINGS, true)
            }
            ShaderId::Vol2col => {
                kernel!(
                    "vol2col",
                    wgsl!("pad_mode.wgsl", "vol_window.wgsl", "vol2col.wgsl"),
                    "main",
                    UNFOLD_BINDINGS,
                    false
                )
            }
            // params, col, bias, grad
            ShaderId::Col2vol => kernel!(
                "col2vol",
                wgsl!("activation.wgsl", "pad_mode.wgsl", "vol_window.wgsl", "transposed_taps.wgsl", "col2vol.wgsl"),
                "main",
                &[U, R, R, Rw],
                false
            ),
            // params, x, w, dy, grad (grad_weight: then grad_bias)
            ShaderId::DepthwiseGradInput => {
                kernel!("depthwise_grad_input", DEPTHWISE_BACKWARD_F32, "grad_input", DW_BACKWARD_BINDINGS, false)
            }
            ShaderId::DepthwiseGradWeight => {
                kernel!("depthwise_grad_weight", DEPTHWISE_BACKWARD_F32, "grad_weight", DW_BACKWARD_BINDINGS, false)
            }
            ShaderId::DepthwiseGradInputHalf => {
                kernel!("depthwise_grad_input_f16", DEPTHWISE_BACKWARD_F16, "grad_input", DW_BACKWARD_BINDINGS, true)
            }
            ShaderId::DepthwiseGradWeightHalf => {
                kernel!("depthwise_grad_weight_f16", DEPTHWISE_BACKWARD_F16, "grad_weight", DW_BACKWARD_BINDINGS, true)
            }
            ShaderId::Direct => {
                kernel!("direct", wgsl!("activation.wgsl", "direct.wgsl"), "main", CONV_BINDINGS, false)
            }
            ShaderId::WinogradWeights => kernel!("winograd_weights", WINOGRAD_F32, "weights", WINOGRAD_BINDINGS, false),
            ShaderId::WinogradInputs => kernel!("winograd_inputs", WINOGRAD_F32, "inputs", WINOGRAD_BINDINGS, false),
            ShaderId::WinogradOutputs => kernel!("winograd_outputs", WINOGRAD_F32, "outputs", WINOGRAD_BINDINGS, false),
            ShaderId::WinogradWeightsHalf => {
                kernel!("winograd_weights_f16", WINOGRAD_F16, "weights", WINOGRAD_BINDINGS, true)
            }
            ShaderId::WinogradInputsHalf => {
                kernel!("winograd_inputs_f16", WINOGRAD_F16, "inputs", WINOGRAD_BINDINGS, true)
            }
            ShaderId::WinogradOutputsHalf => {
                kernel!("winograd_outputs_f16", WINOGRAD_F16, "outputs", WINOGRAD_BINDINGS, true)
            }
            ShaderId::TransposedBorder => {
                kernel!("transposed_border", TRANSPOSED_BORDER_F32, "main", BORDER_BINDINGS, false)
            }
            ShaderId::TransposedBorderHalf => {
                kernel!("transposed_border_f16", TRANSPOSED_BORDER_F16, "main", BORDER_BINDINGS, true)
            }
            // params, source, destination
            ShaderId::CastWiden => kernel!("cast_widen", wgsl!("cast_widen.wgsl"), "main", UNFOLD_BINDINGS, true),
            ShaderId::CastNarrow => kernel!("cast_narrow", wgsl!("cast_narrow.wgsl"), "main", UNFOLD_BINDINGS, true),
        }
    }

    /// The kernel's name (`KernelSpec::name`): its pipelines' label, and what plans and replays call it.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The kernel's own file (the last of [`files`](Self::files)).
    pub fn file(self) -> &'static str {
        self.spec().files.last().copied().unwrap_or_default()
    }

    /// The files this kernel's source is made of, in order (shared helpers first).
    pub fn files(self) -> &'static [&'static str] {
        self.spec().files
    }

    /// The kernel's WGSL source: its files joined in order.
    pub fn source(self) -> &'static str {
        self.spec().source
    }

    /// The name of the kernel's entry point.
    pub fn entry_point(self) -> &'static str {
        self.spec().entry
    }

    /// Bindings 0.. of group 0, in order.
    pub fn bindings(self) -> &'static [BindingKind] {
        self.spec().bindings
    }

    /// Whether the kernel stores f16 (needs `SHADER_F16` on the device).
    pub fn is_f16(self) -> bool {
        self.spec().f16
    }

    /// The targets the static check translates this kernel to: all four, but GLSL for the f16
    /// kernels (naga 30's GLSL writer has no f16; no GL adapter offers `SHADER_F16` either).
    pub fn targets(self) -> &'static [Target] {
        if self.is_f16() {
            &[Target::SpirV, Target::Msl, Target::Hlsl]
        } else {
            &Target::ALL
        }
    }

    /// Every override set the engine specialises this shader with (checked by naga in tests
    /// and by `wgconv conformance`).
    pub fn override_sets(self) -> Vec<Overrides> {
        match self {
            // the padding modes
            ShaderId::Vol2col => crate::params::PaddingMode::ALL
                .into_iter()
                .map(|m| Overrides::none().with("PAD_MODE", m.code() as f64))
                .collect(),
            // the padding modes, from either layout
            ShaderId::Im2col => crate::params::PaddingMode::ALL
                .into_iter()
                .flat_map(|m| {
                    let ov = Overrides::none().with("PAD_MODE", m.code() as f64);
                    [ov.clone(), ov.layouts(crate::Layout::ChannelsLast, crate::Layout::Contiguous)]
                })
                .collect(),
            ShaderId::ChannelSum
            | ShaderId::ChannelSumHalf
            | ShaderId::SlotSum
            | ShaderId::SlotSumHalf
            | ShaderId::PackA
            | ShaderId::CastWiden
            | ShaderId::CastNarrow => vec![Overrides::none()],
            // unspecialised and the common specialisations (grad_input's at every phase of
            // a square stride, multiplier 1)
            ShaderId::DepthwiseGradWeight | ShaderId::DepthwiseGradWeightHalf => DEPTHWISE_SPECIALISATIONS
                .into_iter()
                .flat_map(|k @ [kh, _, s, dw]| {
                    // specialised: the walk down columns (SH and DH set; grad_bias with it or
                    // not) and the path without
                    let vertical = if kh == 0 { vec![[0; 5]] } else { vec![[0; 5], [s, dw, 0, 0, 0]] };
                    let full = if kh == 0 { vec![false] } else { vec![false, true] };
                    vertical.into_iter().flat_map(move |v| {
                        let ov = crate::kernels::depthwise_backward::overrides(k, v);
                        let bias = if v[0] == 0 { vec![false] } else { vec![false, true] };
                        full.clone().into_iter().flat_map(move |f| {
                            let ov = ov.clone().flag("QUADS_FULL", f);
                            bias.clone().into_iter().map(move |b| ov.clone().flag("BIAS_GRAD", b))
                        })
                    })
                })
                .collect(),
            ShaderId::DepthwiseGradInput | ShaderId::DepthwiseGradInputHalf => DEPTHWISE_SPECIALISATIONS
                .into_iter()
                .flat_map(|k @ [kh, _, s, dw]| {
                    let phases = if kh == 0 {
                        vec![[0; 5]]
                    } else {
                        (0..s).flat_map(|ry| (0..s).map(move |rx| [s, dw, ry, rx, 1])).collect()
                    };
                    phases.into_iter().map(move |p| crate::kernels::depthwise_backward::overrides(k, p))
                })
                .collect(),
            ShaderId::DeformIm2col => {
                vec![Overrides::none().flag("HAS_MASK", false), Overrides::none().flag("HAS_MASK", true)]
            }
            ShaderId::DeformBackwardSample => {
                crate::kernels::deform_backward::SampleGrads::all().into_iter().map(|g| g.overrides()).collect()
            }
            ShaderId::DeformGradInputCount
            | ShaderId::DeformGradInputScan
            | ShaderId::DeformGradInputFill
            | ShaderId::DeformGradInputLargest
            | ShaderId::DeformGradInputSum
            | ShaderId::DeformGradInputFinish => {
                use crate::kernels::deform_backward::InputPass;
                let pass = InputPass::ALL.into_iter().find(|p| p.shader() == self).expect("a grad_input pass");
                pass.override_sets()
            }
            // max; avg counting the padding; avg counting in-image positions only
            ShaderId::Pool2d | ShaderId::Pool2dHalf | ShaderId::Pool2dGather | ShaderId::Pool2dGatherHalf => {
                [(0.0, true), (1.0, true), (1.0, false)]
                    .into_iter()
                    .map(|(mode, pad)| Overrides::none().with("MODE", mode).flag("COUNT_PAD", pad))
                    .collect()
            }
            ShaderId::Pool2dArgmax | ShaderId::Pool2dArgmaxHalf => vec![Overrides::none()],
            ShaderId::Gemm(key) => key.override_sets(),
            ShaderId::Col2im => epilogue_sets().into_iter().chain(layout_sets(false)).collect(),
            ShaderId::Direct | ShaderId::TransposedBorder | ShaderId::TransposedBorderHalf => {
                epilogue_sets().into_iter().chain(layout_sets(true)).collect()
            }
            // conv2d's weight, and conv_transpose2d's (FLIP)
            ShaderId::WinogradWeights | ShaderId::WinogradWeightsHalf => {
                vec![Overrides::none(), Overrides::none().flag("FLIP", true)]
            }
            ShaderId::WinogradInputs | ShaderId::WinogradInputsHalf => {
                vec![Overrides::none(), Overrides::none().flag("X_NHWC", true)]
            }
            ShaderId::WinogradOutputs | ShaderId::WinogradOutputsHalf => {
                let sets: Vec<Overrides> = epilogue_sets().into_iter().chain(layout_sets(true)).collect();
                let flipped: Vec<Overrides> = sets.iter().map(|ov| ov.clone().flag("FLIP", true)).collect();
                sets.into_iter().chain(flipped).collect()
            }
            // conv_transpose3d's epilogues (zeros padding); conv3d_backward's folds of each
            // padding mode (no epilogue)
            ShaderId::Col2vol => {
                let mut sets: Vec<Overrides> = epilogue_sets().into_iter().map(|o| o.with("PAD_MODE", 0.0)).collect();
                for m in &crate::params::PaddingMode::ALL[1..] {
                    sets.push(
                        Overrides::none().flag("HAS_BIAS", false).with("ACT", 0.0).with("PAD_MODE", m.code() as f64),
                    );
                }
                sets
            }
            // Unspecialised (every epilogue), and the common specialisations.
            ShaderId::Depthwise | ShaderId::DepthwiseHalf => {
                let mut sets = Vec::new();
                for [kh, kw, sw, dw] in DEPTHWISE_SPECIALISATIONS {
                    let spec = |ov: Overrides| {
                        ov.with("KH", kh as f64).with("KW", kw as f64).with("SW", sw as f64).with("DW", dw as f64)
                    };
                    if kh == 0 {
                        sets.extend(epilogue_sets().into_iter().map(spec));
                    } else {
                        sets.push(spec(Overrides::none().flag("HAS_BIAS", true).with("ACT", 1.0)));
                    }
                }
                // channels-last, unspecialised and the common specialisations
                for [kh, kw, sw, dw] in DEPTHWISE_SPECIALISATIONS {
                    for ov in layout_sets(true) {
                        let ov = ov.with("KH", kh as f64).with("KW", kw as f64).with("SW", sw as f64);
                        sets.push(ov.with("DW", dw as f64));
                    }
                }
                sets
            }
        }
    }
}

/// The depthwise kernels' `[KH, KW, SW, DW]` the static check covers: unspecialised, and the
/// common specialisations (3x3 at stride 1 and 2, 5x5, a dilated 3x3, a 1x7). At run time a
/// kernel is specialised to any conv whose window fits it.
const DEPTHWISE_SPECIALISATIONS: [[u32; 4]; 6] =
    [[0, 0, 0, 0], [3, 3, 1, 1], [3, 3, 2, 1], [5, 5, 1, 1], [3, 3, 1, 2], [1, 7, 1, 1]];

/// HAS_BIAS × every activation.
fn epilogue_sets() -> Vec<Overrides> {
    let mut sets = Vec::new();
    for bias in [false, true] {
        for act in 0..=6 {
            sets.push(Overrides::none().flag("HAS_BIAS", bias).with("ACT", act as f64));
        }
    }
    sets
}

/// Values for a shader's `override` constants, kept sorted by name so that equal sets
/// compare (and hash) equal.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides(Vec<(&'static str, f64)>);

impl Overrides {
    /// The empty set: every `override` keeps its WGSL default.
    pub fn none() -> Self {
        Overrides(Vec::new())
    }
    /// The set with `name` = `value` (replacing an earlier value of `name`).
    pub fn with(mut self, name: &'static str, value: f64) -> Self {
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value));
        self.0.sort_by(|a, b| a.0.cmp(b.0));
        self
    }
    /// The set with the boolean `name`: 1 when `on`, else 0.
    pub fn flag(self, name: &'static str, on: bool) -> Self {
        self.with(name, if on { 1.0 } else { 0.0 })
    }
    /// The channels-last flags of the kernels that read (`X_NHWC`) or write (`Y_NHWC`) a
    /// conv2d's tensors in either layout: each only when channels-last, so that NCHW keeps
    /// its override sets.
    pub(crate) fn layouts(self, input: crate::Layout, output: crate::Layout) -> Self {
        let mut ov = self;
        if input == crate::Layout::ChannelsLast {
            ov = ov.flag("X_NHWC", true);
        }
        if output == crate::Layout::ChannelsLast {
            ov = ov.flag("Y_NHWC", true);
        }
        ov
    }
    /// The `(name, value)` pairs, sorted by name.
    pub fn entries(&self) -> &[(&'static str, f64)] {
        &self.0
    }
    /// Hashable form (f64 bit patterns).
    pub(crate) fn key(&self) -> Vec<(&'static str, u64)> {
        self.0.iter().map(|&(n, v)| (n, v.to_bits())).collect()
    }
}

impl std::fmt::Display for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return write!(f, "(none)");
        }
        let parts: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// A translation target of the static check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// SPIR-V (Vulkan's).
    SpirV,
    /// MSL (Metal's).
    Msl,
    /// HLSL (Direct3D 12's).
    Hlsl,
    /// GLSL ES 3.10 (OpenGL ES's).
    Glsl,
}

impl Target {
    /// Every target, in the order the static check translates to them.
    pub const ALL: [Target; 4] = [Target::SpirV, Target::Msl, Target::Hlsl, Target::Glsl];
}

/// A failure of the static check, naming the shader, the override set and the stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShaderCheckError {
    /// The kernel's own file (`ShaderId::file`).
    pub shader: &'static str,
    /// The override set, as `Overrides` displays it.
    pub overrides: String,
    /// "parse", "validate", "overrides", or the target that failed.
    pub stage: String,
    /// naga's error message.
    pub message: String,
}

impl std::fmt::Display for ShaderCheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [{}] {}: {}", self.shader, self.overrides, self.stage, self.message)
    }
}

/// A failed stage of the static check: (stage, message).
pub type StageError = (String, String);

#[cfg(feature = "shader-check")]
/// Parses and validates WGSL with naga (all capabilities the engine may use).
pub fn parse_and_validate(source: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), StageError> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| ("parse".to_string(), e.emit_to_string(source)))?;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
        .validate(&module)
        .map_err(|e| ("validate".to_string(), e.emit_to_string(source)))?;
    Ok((module, info))
}

#[cfg(feature = "shader-check")]
/// Every signed integer remainder (`%` on i32 or vectors of it) in the functions of
/// `source`, as `function: expression`: GLSL leaves it undefined for a negative operand, and
/// Mesa's GL computed `-1 % 3` as 0 (a depthwise backward kernel was wrong on GL only), so
/// the kernels take remainders of unsigned values. (Signed division is defined in GLSL,
/// truncating as WGSL does.)
pub fn signed_remainders(source: &str) -> Result<Vec<String>, StageError> {
    let (module, info) = parse_and_validate(source)?;
    let mut found = Vec::new();
    let functions = module.functions.iter().map(|(h, f)| (f, &info[h]));
    let entries = module.entry_points.iter().enumerate().map(|(i, e)| (&e.function, info.get_entry_point(i)));
    for (function, finfo) in functions.chain(entries) {
        for (handle, expr) in function.expressions.iter() {
            let naga::Expression::Binary { op: op @ naga::BinaryOperator::Modulo, .. } = expr else {
                continue;
            };
            let signed = finfo[handle].ty.inner_with(&module.types).scalar_kind() == Some(naga::ScalarKind::Sint);
            if signed {
                let name = function.name.clone().unwrap_or_default();
                found.push(format!("{name}: {op:?} {:?}", function.expressions[handle]));
            }
        }
    }
    Ok(found)
}

#[cfg(feature = "shader-check")]
/// Specialises `source` with `overrides` and translates it to `target`; returns the
/// generated code's length in bytes (words ×4 for SPIR-V).
pub fn translate(source: &str, entry: &str, overrides: &Overrides, target: Target) -> Result<usize, StageError> {
    let (module, info) = parse_and_validate(source)?;
    let (module, info) = specialise(&module, &info, entry, overrides)?;
    write_target(&module, &info, entry, target)
}

#[cfg(feature = "shader-check")]
/// The module with `overrides` substituted for its `override` constants, revalidated.
fn specialise(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    entry: &str,
    overrides: &Overrides,
) -> Result<(naga::Module, naga::valid::ModuleInfo), StageError> {
    let constants: naga::back::PipelineConstants =
        overrides.entries().iter().map(|&(n, v)| (n.to_string(), v)).collect();
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        module,
        info,
        Some((naga::ShaderStage::Compute, entry)),
        &constants,
    )
    .map_err(|e| ("overrides".to_string(), e.to_string()))?;
    Ok((module.into_owned(), info.into_owned()))
}

#[cfg(feature = "shader-check")]
/// A specialised module written for `target`: the output's length (bytes, or SPIR-V words × 4).
fn write_target(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    entry: &str,
    target: Target,
) -> Result<usize, StageError> {
    let stage = naga::ShaderStage::Compute;
    let fail = |e: &dyn std::fmt::Display| (format!("{target:?}"), e.to_string());
    match target {
        Target::SpirV => {
            let opts = naga::back::spv::Options::default();
            let pipe = naga::back::spv::PipelineOptions { shader_stage: stage, entry_point: entry.to_string() };
            naga::back::spv::write_vec(module, info, &opts, Some(&pipe)).map(|w| w.len() * 4).map_err(|e| fail(&e))
        }
        Target::Msl => {
            let opts = naga::back::msl::Options::default();
            let pipe = naga::back::msl::PipelineOptions::default();
            naga::back::msl::write_string(module, info, &opts, &pipe).map(|(s, _)| s.len()).map_err(|e| fail(&e))
        }
        Target::Hlsl => {
            let opts = naga::back::hlsl::Options::default();
            let pipe = naga::back::hlsl::PipelineOptions::default();
            let mut out = String::new();
            naga::back::hlsl::Writer::new(&mut out, &opts, &pipe).write(module, info, None).map_err(|e| fail(&e))?;
            Ok(out.len())
        }
        Target::Glsl => {
            let opts = naga::back::glsl::Options {
                version: naga::back::glsl::Version::Embedded { version: 310, is_webgl: false },
                ..Default::default()
            };
            let pipe = naga::back::glsl::PipelineOptions {
                shader_stage: stage,
                entry_point: entry.to_string(),
                multiview: None,
            };
            let mut out = String::new();
            let mut w = naga::back::glsl::Writer::new(
                &mut out,
                module,
                info,
                &opts,
                &pipe,
                naga::proc::BoundsCheckPolicies::default(),
            )
            .map_err(|e| fail(&e))?;
            w.write().map_err(|e| fail(&e))?;
            Ok(out.len())
        }
    }
}

#[cfg(feature = "shader-check")]
/// Checks one shader with every override set the engine uses against every target.
pub fn check_shader(id: ShaderId) -> Vec<ShaderCheckError> {
    let error = |ov: &Overrides, (stage, message): StageError| ShaderCheckError {
        shader: id.file(),
        overrides: ov.to_string(),
        stage,
        message,
    };
    let sets = id.override_sets();
    // (parsed and validated once, specialised once per set, then written for each target)
    let (module, info) = match parse_and_validate(id.source()) {
        Ok(m) => m,
        Err(e) => return sets.iter().flat_map(|ov| id.targets().iter().map(|_| error(ov, e.clone()))).collect(),
    };
    let mut errors = Vec::new();
    for ov in &sets {
        match specialise(&module, &info, id.entry_point(), ov) {
            Ok((m, i)) => {
                for &target in id.targets() {
                    if let Err(e) = write_target(&m, &i, id.entry_point(), target) {
                        errors.push(error(ov, e));
                    }
                }
            }
            Err(e) => errors.extend(id.targets().iter().map(|_| error(ov, e.clone()))),
        }
    }
    errors
}

#[cfg(feature = "shader-check")]
/// [`check_shader`] for every shader, on as many threads as the machine has: the shader
/// check's errors and the number of (shader, override set, target) translations checked.
pub fn check_all_shaders() -> (usize, Vec<ShaderCheckError>) {
    let ids = ShaderId::all();
    let checked = ids.iter().map(|id| id.override_sets().len() * id.targets().len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(ids.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut found: Vec<(usize, Vec<ShaderCheckError>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&id) = ids.get(i) else { break mine };
                        mine.push((i, check_shader(id)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("shader check thread")).collect()
    });
    // (in the shaders' order whatever thread checked them)
    found.sort_by_key(|(i, _)| *i);
    (checked, found.into_iter().flat_map(|(_, e)| e).collect())
}

#[cfg(feature = "shader-check")]
/// Bindings of group 0 as naga reflects them from the WGSL: (binding, kind).
pub fn reflect_bindings(source: &str) -> Result<Vec<(u32, BindingKind)>, StageError> {
    let (module, _) = parse_and_validate(source)?;
    let mut out = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(rb) = &var.binding else { continue };
        if rb.group != 0 {
            return Err(("bindings".into(), format!("binding in group {} (only group 0 is used)", rb.group)));
        }
        let kind = match var.space {
            naga::AddressSpace::Uniform => BindingKind::Uniform,
            naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                BindingKind::StorageReadWrite
            }
            naga::AddressSpace::Storage { .. } => BindingKind::StorageRead,
            other => return Err(("bindings".into(), format!("unexpected address space {other:?}"))),
        };
        out.push((rb.binding, kind));
    }
    out.sort_by_key(|b| b.0);
    Ok(out)
}

#[cfg(feature = "shader-check")]
/// Member names and byte offsets of the uniform struct at binding 0, and its size, as naga
/// lays it out (checked against the `#[repr(C)]` Rust twins in tests).
pub fn reflect_uniform(source: &str, binding: u32) -> Result<(Vec<(String, u32)>, u32), StageError> {
    let (module, _) = parse_and_validate(source)?;
    for (_, var) in module.global_variables.iter() {
        if var.space != naga::AddressSpace::Uniform || var.binding.as_ref().map(|b| b.binding) != Some(binding) {
            continue;
        }
        if let naga::TypeInner::Struct { members, span } = &module.types[var.ty].inner {
            let fields = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
            return Ok((fields, *span));
        }
    }
    Err(("uniform".into(), "no uniform struct".into()))
}

/// Member names and byte offsets of the struct type `name` the source declares, and its size
/// (the parts of a uniform block made of structs).
#[cfg(feature = "shader-check")]
pub fn reflect_struct(source: &str, name: &str) -> Result<(Vec<(String, u32)>, u32), StageError> {
    let (module, _) = parse_and_validate(source)?;
    for (_, ty) in module.types.iter() {
        if let (Some(n), naga::TypeInner::Struct { members, span }) = (&ty.name, &ty.inner) {
            if n == name {
                let fields = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
                return Ok((fields, *span));
            }
        }
    }
    Err(("struct".into(), format!("no struct {name}")))
}

/// The `u32` constants a WGSL source declares (`const NAME: u32 = …u;`), by name, as naga
/// evaluates them: the WGSL side of the values Rust must agree with.
#[cfg(feature = "shader-check")]
pub fn reflect_u32_constants(source: &str) -> Result<Vec<(String, u32)>, StageError> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| ("parse".to_string(), e.emit_to_string(source)))?;
    let mut out = Vec::new();
    for (_, c) in module.constants.iter() {
        if let (Some(name), naga::Expression::Literal(naga::Literal::U32(v))) =
            (&c.name, &module.global_expressions[c.init])
        {
            out.push((name.clone(), *v));
        }
    }
    Ok(out)
}
