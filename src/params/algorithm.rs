//! The algorithms a conv may run, and the `Auto` rules shared by the ops.

use super::*;

/// Which kernel family computes a conv2d.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// Let the engine choose per shape (see [`Algorithm::choose`]).
    #[default]
    Auto,
    /// Unfold the input into a column workspace (chunked to the budget), then a tiled GEMM.
    Im2colGemm,
    /// Tiled GEMM whose B loader gathers the im2col values straight from the input: no
    /// workspace.
    ImplicitGemm,
    /// 1x1, stride 1, unpadded: the input already is the B matrix; a plain GEMM.
    Gemm1x1,
    /// Depthwise (groups = Cin, any channel multiplier): a direct kernel, four outputs per
    /// invocation.
    Depthwise,
    /// A direct kernel: 4 output pixels × 16 output channels per invocation, the weights
    /// read at workgroup-uniform addresses; no workspace, no workgroup memory.
    Direct,
    /// Winograd F(2×2, 3×3) (3×3 kernels, stride 1, dilation 1, zero padding, any groups):
    /// the weights and 4×4 input patches transformed, 16·G batched GEMMs over the transform
    /// points (2.25× fewer multiplies than the direct sum), the 2×2 output tiles transformed
    /// back; workspace chunked by tiles. A tile whose transformed values are not all finite is
    /// summed directly, so NaN and ±∞ land where the reference puts them.
    Winograd,
    /// conv_transpose2d only: the GEMM `Wᵀ·X` into a column workspace, then a col2im gather.
    /// (`ImplicitGemm` is conv_transpose2d's other algorithm: its sh·sw output phases as
    /// implicit GEMMs, no workspace.)
    GemmCol2im,
}

/// Where Winograd F(2×2, 3×3) beats the implicit GEMM: its GEMMs have K = Cin/G (against
/// the implicit GEMM's 9·Cin/G) and N = 2×2 tiles, and run well only with K ≥ 128 and enough
/// tiles (lavapipe, BENCHMARKS.md: r50_c3 1.3×, r50_c4 1.4×, r50_c3_b8 1.3× faster; r50_c2
/// with K = 64 0.9×, r50_c5 with 16 tiles 0.5×).
fn winograd_pays(g: &Conv2dGeometry) -> bool {
    let tiles = g.n as u64 * g.h_out.div_ceil(2) as u64 * g.w_out.div_ceil(2) as u64;
    g.c_in_per_group() >= 128 && tiles >= 32
}

impl Algorithm {
    /// Every concrete algorithm, in the order `--algo all` runs them.
    pub const ALL: [Algorithm; 6] = [
        Algorithm::Im2colGemm,
        Algorithm::ImplicitGemm,
        Algorithm::Gemm1x1,
        Algorithm::Depthwise,
        Algorithm::Direct,
        Algorithm::Winograd,
    ];

    /// conv_transpose2d's algorithms, in the order `--algo all` runs them.
    pub const TRANSPOSED: [Algorithm; 2] = [Algorithm::ImplicitGemm, Algorithm::GemmCol2im];

    /// The name the CLI and reports use (`implicit_gemm`, `gemm_1x1`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Auto => "auto",
            Algorithm::Im2colGemm => "im2col_gemm",
            Algorithm::ImplicitGemm => "implicit_gemm",
            Algorithm::Gemm1x1 => "gemm_1x1",
            Algorithm::Depthwise => "depthwise",
            Algorithm::Direct => "direct",
            Algorithm::Winograd => "winograd",
            Algorithm::GemmCol2im => "gemm_col2im",
        }
    }

    /// The algorithm of a [`name`](Self::name), if any.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        std::iter::once(Algorithm::Auto).chain(Algorithm::ALL).chain(Algorithm::TRANSPOSED).find(|a| a.name() == name)
    }

    /// Why this algorithm cannot compute `g`, if it cannot.
    pub fn unsupported_reason(self, g: &Conv2dGeometry) -> Option<String> {
        match self {
            Algorithm::Gemm1x1 if (g.kh, g.kw) != (1, 1) || g.stride != [1, 1] || g.pads != Pads::ZERO => {
                Some(format!(
                    "gemm_1x1 needs a 1x1 kernel, stride 1 and no padding (got {}x{}, stride {:?}, pads {:?})",
                    g.kh, g.kw, g.stride, g.pads
                ))
            }
            Algorithm::Depthwise if g.c_in_per_group() != 1 => {
                Some(format!("depthwise needs groups = Cin (got groups {} for Cin {})", g.groups, g.c_in))
            }
            Algorithm::GemmCol2im => Some("gemm_col2im computes conv_transpose2d, not conv2d".into()),
            Algorithm::Winograd if (g.kh, g.kw) != (3, 3) || g.stride != [1, 1] || g.dilation != [1, 1] => {
                Some(format!(
                    "winograd (F(2x2, 3x3)) needs a 3x3 kernel, stride 1 and dilation 1 (got {}x{}, stride {:?}, \
                     dilation {:?})",
                    g.kh, g.kw, g.stride, g.dilation
                ))
            }
            Algorithm::ImplicitGemm
            | Algorithm::Gemm1x1
            | Algorithm::Depthwise
            | Algorithm::Direct
            | Algorithm::Winograd
                if g.pads_by_mode() =>
            {
                Some(format!(
                    "{} reads zeros in the padding; padding_mode {} runs im2col_gemm (or auto)",
                    self.name(),
                    g.padding_mode.name()
                ))
            }
            _ => None,
        }
    }

    /// The algorithm `Auto` runs for `g` (every dtype: the four it picks have f16 kernels):
    /// depthwise kernels for depthwise convs, a plain GEMM for pointwise ones, Winograd for
    /// 3×3 stride-1 convs of many input channels and tiles, the implicit GEMM for everything
    /// else (it needs no workspace and skips the im2col pass; `wgconv bench --algo all`
    /// measures the alternatives). conv2d falls back to the implicit GEMM where Winograd's
    /// workspace does not fit or its direct fallback would loop past the loop budget.
    pub fn choose(g: &Conv2dGeometry) -> Algorithm {
        Algorithm::choose_why(g).0
    }

    /// [`Algorithm::choose`] with the rule that decided, in words.
    pub fn choose_why(g: &Conv2dGeometry) -> (Algorithm, &'static str) {
        if g.pads_by_mode() {
            (Algorithm::Im2colGemm, "padding_mode other than zeros: im2col_gemm's gather applies it")
        } else if Algorithm::Depthwise.unsupported_reason(g).is_none() && g.groups > 1 {
            (Algorithm::Depthwise, "depthwise conv (groups = Cin > 1)")
        } else if Algorithm::Gemm1x1.unsupported_reason(g).is_none() {
            (Algorithm::Gemm1x1, "pointwise conv (1x1, stride 1, no padding)")
        } else if Algorithm::Winograd.unsupported_reason(g).is_none() && winograd_pays(g) {
            (
                Algorithm::Winograd,
                "3x3 stride-1 conv with ≥ 128 input channels per group and ≥ 32 output tiles: winograd",
            )
        } else {
            (Algorithm::ImplicitGemm, "general conv: implicit GEMM, no workspace")
        }
    }
}
