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
    /// conv_transpose2d only: the GEMM `Wᵀ·X` into a column workspace, then a col2im gather.
    /// (`ImplicitGemm` is conv_transpose2d's other algorithm: its sh·sw output phases as
    /// implicit GEMMs, no workspace.)
    GemmCol2im,
}

impl Algorithm {
    /// Every concrete algorithm, in the order `--algo all` runs them.
    pub const ALL: [Algorithm; 5] =
        [Algorithm::Im2colGemm, Algorithm::ImplicitGemm, Algorithm::Gemm1x1, Algorithm::Depthwise, Algorithm::Direct];

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
            Algorithm::ImplicitGemm | Algorithm::Gemm1x1 | Algorithm::Depthwise | Algorithm::Direct
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

    /// The algorithm `Auto` runs for `g` (every dtype: the three it picks have f16 kernels):
    /// depthwise kernels for depthwise convs, a plain GEMM for pointwise ones, the implicit
    /// GEMM for everything else (it needs no workspace and skips the im2col pass; `wgconv
    /// bench --algo all` measures the alternatives).
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
        } else {
            (Algorithm::ImplicitGemm, "general conv: implicit GEMM, no workspace")
        }
    }
}
