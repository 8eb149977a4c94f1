//! Convolution parameters, their validation and the output-size formulas (PyTorch's).

use crate::error::{Error, Result};

/// Padding of the two spatial axes.
///
/// `Explicit` sides are in ONNX order on the command line (top, left, bottom, right).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding (PyTorch `padding='valid'`).
    #[default]
    Valid,
    /// `[ph, pw]` on both sides of each axis (PyTorch `padding=(ph, pw)`).
    Symmetric([u32; 2]),
    /// Each side on its own.
    Explicit { top: u32, left: u32, bottom: u32, right: u32 },
    /// Output size = input size (PyTorch `padding='same'`, stride 1 only). The total
    /// `dilation·(k−1)` is split with the odd one at the bottom/right, as PyTorch does.
    Same,
}

/// Resolved padding of one conv: `[top, left, bottom, right]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pads {
    pub top: u32,
    pub left: u32,
    pub bottom: u32,
    pub right: u32,
}

impl Pads {
    pub const ZERO: Pads = Pads { top: 0, left: 0, bottom: 0, right: 0 };
}

impl Padding {
    /// Resolve to explicit sides for a kernel of `kernel` taps and `dilation`.
    pub fn resolve(&self, kernel: [u32; 2], dilation: [u32; 2]) -> Pads {
        match *self {
            Padding::Valid => Pads { top: 0, left: 0, bottom: 0, right: 0 },
            Padding::Symmetric([ph, pw]) => Pads { top: ph, left: pw, bottom: ph, right: pw },
            Padding::Explicit { top, left, bottom, right } => Pads { top, left, bottom, right },
            Padding::Same => {
                let th = dilation[0] * kernel[0].saturating_sub(1);
                let tw = dilation[1] * kernel[1].saturating_sub(1);
                Pads { top: th / 2, left: tw / 2, bottom: th - th / 2, right: tw - tw / 2 }
            }
        }
    }
}

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
            _ => None,
        }
    }

    /// The algorithm `Auto` runs for `g` on f16 tensors: as [`Algorithm::choose`] among the
    /// three with f16 kernels (depthwise, the plain GEMM for pointwise convs, else the
    /// implicit GEMM).
    pub fn choose_f16(g: &Conv2dGeometry) -> Algorithm {
        if Algorithm::Depthwise.unsupported_reason(g).is_none() && g.groups > 1 {
            Algorithm::Depthwise
        } else if Algorithm::Gemm1x1.unsupported_reason(g).is_none() {
            Algorithm::Gemm1x1
        } else {
            Algorithm::ImplicitGemm
        }
    }

    /// The algorithm `Auto` runs for `g`: depthwise kernels for depthwise convs, a plain GEMM
    /// for pointwise ones, the implicit GEMM for everything else (it needs no workspace and
    /// skips the im2col pass; `wgconv bench --algo all` measures the alternatives).
    pub fn choose(g: &Conv2dGeometry) -> Algorithm {
        if Algorithm::Depthwise.unsupported_reason(g).is_none() && g.groups > 1 {
            Algorithm::Depthwise
        } else if Algorithm::Gemm1x1.unsupported_reason(g).is_none() {
            Algorithm::Gemm1x1
        } else {
            Algorithm::ImplicitGemm
        }
    }
}

/// An elementwise function applied to each output in the kernel's write-out (after the bias).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// min(max(x, 0), 6)
    Relu6,
    /// x for x ≥ 0, α·x below.
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    /// x·Φ(x) with the exact (erf) Φ, PyTorch's default `gelu`.
    Gelu,
}

impl Activation {
    /// One of each (leaky_relu with α = 0.1).
    pub const ALL: [Activation; 7] = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu(0.1),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];

    /// The kernels' `ACT` override value (see shaders/activation.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Relu6 => 2,
            Activation::LeakyRelu(_) => 3,
            Activation::Sigmoid => 4,
            Activation::Tanh => 5,
            Activation::Gelu => 6,
        }
    }

    /// α of `LeakyRelu`, else 0.
    pub fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    /// The function in f64 (the reference's).
    /// NaN passes every function unchanged, as in PyTorch (`f64::max` alone would drop it).
    pub fn apply(self, x: f64) -> f64 {
        if x.is_nan() {
            return x;
        }
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu(a) => {
                if x < 0.0 {
                    a as f64 * x
                } else {
                    x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
        }
    }

    /// `none`, `relu`, `relu6`, `leaky_relu` (α = 0.01) or `leaky_relu:α`, `sigmoid`, `tanh`, `gelu`.
    pub fn parse(text: &str) -> Option<Activation> {
        let (name, arg) = match text.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (text, None),
        };
        Some(match (name.to_ascii_lowercase().as_str(), arg) {
            ("none", None) => Activation::None,
            ("relu", None) => Activation::Relu,
            ("relu6", None) => Activation::Relu6,
            ("leaky_relu", None) => Activation::LeakyRelu(0.01),
            ("leaky_relu", Some(a)) => Activation::LeakyRelu(a.trim().parse().ok()?),
            ("sigmoid", None) => Activation::Sigmoid,
            ("tanh", None) => Activation::Tanh,
            ("gelu", None) => Activation::Gelu,
            _ => return None,
        })
    }
}

/// Parameters of `conv2d` (the same as `torch.nn.functional.conv2d` minus the tensors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dParams {
    /// `[sh, sw]`, each ≥ 1.
    pub stride: [u32; 2],
    pub padding: Padding,
    /// `[dh, dw]`, each ≥ 1.
    pub dilation: [u32; 2],
    /// Divides both Cin and Cout; `groups == Cin` is depthwise.
    pub groups: u32,
    /// Kernel family; `Auto` lets the engine choose.
    pub algorithm: Algorithm,
    /// Applied to every output after the bias, in the kernel's write-out.
    pub activation: Activation,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            groups: 1,
            algorithm: Algorithm::Auto,
            activation: Activation::None,
        }
    }
}

/// Every size of one validated conv2d; what the kernels and the reference index with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub n: u32,
    pub c_in: u32,
    pub h: u32,
    pub w: u32,
    pub c_out: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride: [u32; 2],
    pub dilation: [u32; 2],
    pub pads: Pads,
    pub groups: u32,
    pub h_out: u32,
    pub w_out: u32,
}

impl Conv2dGeometry {
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n as usize, self.c_out as usize, self.h_out as usize, self.w_out as usize]
    }
    /// Input channels per group.
    pub fn c_in_per_group(&self) -> u32 {
        self.c_in / self.groups
    }
    /// Output channels per group.
    pub fn c_out_per_group(&self) -> u32 {
        self.c_out / self.groups
    }
    /// 2·N·Cout·Ho·Wo·(Cin/groups)·kh·kw: multiplies and adds counted separately.
    pub fn flops(&self) -> f64 {
        2.0 * self.n as f64
            * self.c_out as f64
            * self.h_out as f64
            * self.w_out as f64
            * self.c_in_per_group() as f64
            * self.kh as f64
            * self.kw as f64
    }
}

fn to_u32(what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge(format!("{what} = {v} does not fit in 32 bits")))
}

pub(crate) fn check_rank(what: &'static str, shape: &[usize], rank: usize, layout: &'static str) -> Result<()> {
    if shape.len() != rank {
        return Err(Error::Rank { what, expected: rank, layout, got: shape.to_vec() });
    }
    if shape.contains(&0) {
        return Err(Error::EmptyTensor { what, shape: shape.to_vec() });
    }
    Ok(())
}

/// The rules every conv's scalar parameters follow.
fn check_scalars(stride: &[u32], dilation: &[u32], groups: u32, activation: Activation) -> Result<()> {
    if stride.contains(&0) {
        return Err(Error::param("stride", format!("{stride:?}: each must be ≥ 1")));
    }
    if dilation.contains(&0) {
        return Err(Error::param("dilation", format!("{dilation:?}: each must be ≥ 1")));
    }
    if groups == 0 {
        return Err(Error::Groups("groups must be ≥ 1".into()));
    }
    if let Activation::LeakyRelu(a) = activation {
        if !a.is_finite() {
            return Err(Error::param("activation", format!("leaky_relu slope must be finite, got {a}")));
        }
    }
    Ok(())
}

/// Output length of one axis: floor((in + pads − dilation·(k−1) − 1) / stride) + 1, or an
/// error when the padded input is shorter than the dilated kernel.
pub fn conv_out_len(
    axis: &str,
    len: u32,
    pad_begin: u32,
    pad_end: u32,
    k: u32,
    stride: u32,
    dilation: u32,
) -> Result<u32> {
    let padded = len as u64 + pad_begin as u64 + pad_end as u64;
    let span = dilation as u64 * (k as u64 - 1) + 1;
    if padded < span {
        return Err(Error::EmptyOutput(format!(
            "{axis}: padded input {padded} is smaller than the dilated kernel {span}"
        )));
    }
    let out = (padded - span) / stride as u64 + 1;
    u32::try_from(out).map_err(|_| Error::TooLarge(format!("{axis} output {out}")))
}

impl Conv2dParams {
    /// Checks the scalar parameters alone (no shapes).
    pub fn validate_scalars(&self) -> Result<()> {
        check_scalars(&self.stride, &self.dilation, self.groups, self.activation)?;
        if self.padding == Padding::Same && self.stride != [1, 1] {
            return Err(Error::param(
                "padding",
                format!("'same' needs stride 1 (as in PyTorch), got stride {:?}", self.stride),
            ));
        }
        Ok(())
    }

    /// Validates against the shapes of input `[N, Cin, H, W]`, weight `[Cout, Cin/groups, kh, kw]`
    /// and bias `[Cout]`, and returns every size of the conv.
    pub fn validate(&self, input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<Conv2dGeometry> {
        check_rank("input", input, 4, "N, Cin, H, W")?;
        check_rank("weight", weight, 4, "Cout, Cin/groups, kh, kw")?;
        self.validate_scalars()?;
        let g = self.groups as usize;
        let (n, c_in, h, w) = (input[0], input[1], input[2], input[3]);
        let (c_out, cpg, kh, kw) = (weight[0], weight[1], weight[2], weight[3]);
        if c_in % g != 0 {
            return Err(Error::Groups(format!("groups = {g} does not divide input channels {c_in}")));
        }
        if c_out % g != 0 {
            return Err(Error::Groups(format!("groups = {g} does not divide output channels {c_out}")));
        }
        if cpg * g != c_in {
            return Err(Error::ChannelMismatch(format!(
                "input has {c_in} channels but weight expects {cpg} per group × {g} groups = {}",
                cpg * g
            )));
        }
        if let Some(b) = bias {
            if b.len() != 1 || b[0] != c_out {
                return Err(Error::BiasShape { expected: c_out, got: b.to_vec() });
            }
        }
        let (kh, kw) = (to_u32("kh", kh)?, to_u32("kw", kw)?);
        let pads = self.padding.resolve([kh, kw], self.dilation);
        let (h, w) = (to_u32("H", h)?, to_u32("W", w)?);
        let h_out = conv_out_len("height", h, pads.top, pads.bottom, kh, self.stride[0], self.dilation[0])?;
        let w_out = conv_out_len("width", w, pads.left, pads.right, kw, self.stride[1], self.dilation[1])?;
        let geometry = Conv2dGeometry {
            n: to_u32("N", n)?,
            c_in: to_u32("Cin", c_in)?,
            h,
            w,
            c_out: to_u32("Cout", c_out)?,
            kh,
            kw,
            stride: self.stride,
            dilation: self.dilation,
            pads,
            groups: self.groups,
            h_out,
            w_out,
        };
        if let Some(why) = self.algorithm.unsupported_reason(&geometry) {
            return Err(Error::param("algorithm", why));
        }
        Ok(geometry)
    }

    /// Output shape `[N, Cout, Ho, Wo]` for these input and weight shapes.
    pub fn output_shape(&self, input: &[usize], weight: &[usize]) -> Result<[usize; 4]> {
        Ok(self.validate(input, weight, None)?.output_shape())
    }
}

/// Parameters of `conv_transpose2d` (as `torch.nn.functional.conv_transpose2d`).
///
/// `padding` crops the full transposed output (`Symmetric`, `Explicit` per side, `Valid` =
/// none; `Same` is not defined for transposed convs and is an error, as in PyTorch);
/// `output_padding` adds rows/columns at the bottom/right and must be < max(stride, dilation)
/// on each axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTranspose2dParams {
    pub stride: [u32; 2],
    pub padding: Padding,
    pub output_padding: [u32; 2],
    pub dilation: [u32; 2],
    /// Divides Cin and Cout; the weight is `[Cin, Cout/groups, kh, kw]`.
    pub groups: u32,
    /// Applied to every output after the bias.
    pub activation: Activation,
    /// `ImplicitGemm`: the sh·sw output phases as implicit GEMMs (no workspace, no col2im);
    /// `GemmCol2im`: `Wᵀ·X` into a workspace, then a col2im gather; `Auto` (the default):
    /// per adapter, see `ops::conv_transpose2d::auto_algorithm` (the phases on GPUs).
    pub algorithm: Algorithm,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        ConvTranspose2dParams {
            stride: [1, 1],
            padding: Padding::Valid,
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            activation: Activation::None,
            algorithm: Algorithm::Auto,
        }
    }
}

/// Every size of one validated conv_transpose2d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dGeometry {
    pub n: u32,
    pub c_in: u32,
    pub h: u32,
    pub w: u32,
    pub c_out: u32,
    pub kh: u32,
    pub kw: u32,
    pub stride: [u32; 2],
    pub dilation: [u32; 2],
    pub pads: Pads,
    pub output_padding: [u32; 2],
    pub groups: u32,
    pub h_out: u32,
    pub w_out: u32,
}

impl ConvTranspose2dGeometry {
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n as usize, self.c_out as usize, self.h_out as usize, self.w_out as usize]
    }
    pub fn c_in_per_group(&self) -> u32 {
        self.c_in / self.groups
    }
    pub fn c_out_per_group(&self) -> u32 {
        self.c_out / self.groups
    }
    /// 2·N·Cin·H·W·(Cout/groups)·kh·kw: each input pixel meets each tap once.
    pub fn flops(&self) -> f64 {
        2.0 * self.n as f64
            * self.c_in as f64
            * self.h as f64
            * self.w as f64
            * self.c_out_per_group() as f64
            * self.kh as f64
            * self.kw as f64
    }
}

/// Output length of one transposed axis: (in − 1)·stride − pads + dilation·(k − 1) + output_padding + 1.
pub fn conv_transpose_out_len(
    axis: &str,
    len: u32,
    pads: u32,
    k: u32,
    stride: u32,
    dilation: u32,
    out_pad: u32,
) -> Result<u32> {
    let full = (len as i64 - 1) * stride as i64 + dilation as i64 * (k as i64 - 1) + out_pad as i64 + 1;
    let out = full - pads as i64;
    if out < 1 {
        return Err(Error::EmptyOutput(format!("{axis}: padding {pads} crops the whole transposed output of {full}")));
    }
    u32::try_from(out).map_err(|_| Error::TooLarge(format!("{axis} output {out}")))
}

impl ConvTranspose2dParams {
    /// Validates against input `[N, Cin, H, W]`, weight `[Cin, Cout/groups, kh, kw]` and bias
    /// `[Cout]`.
    pub fn validate(
        &self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
    ) -> Result<ConvTranspose2dGeometry> {
        check_rank("input", input, 4, "N, Cin, H, W")?;
        check_rank("weight", weight, 4, "Cin, Cout/groups, kh, kw")?;
        check_scalars(&self.stride, &self.dilation, self.groups, self.activation)?;
        if self.padding == Padding::Same {
            return Err(Error::param("padding", "'same' is not defined for conv_transpose2d (as in PyTorch)"));
        }
        if !matches!(self.algorithm, Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::GemmCol2im) {
            return Err(Error::param(
                "algorithm",
                format!("conv_transpose2d runs implicit_gemm or gemm_col2im, not {}", self.algorithm.name()),
            ));
        }
        for axis in 0..2 {
            let limit = self.stride[axis].max(self.dilation[axis]);
            if self.output_padding[axis] >= limit {
                return Err(Error::param(
                    "output_padding",
                    format!(
                        "{:?}: each must be smaller than max(stride, dilation) = {limit} on its axis",
                        self.output_padding
                    ),
                ));
            }
        }
        let g = self.groups as usize;
        let (n, c_in, h, w) = (input[0], input[1], input[2], input[3]);
        let (wc_in, cog, kh, kw) = (weight[0], weight[1], weight[2], weight[3]);
        if wc_in != c_in {
            return Err(Error::ChannelMismatch(format!(
                "input has {c_in} channels but the weight's first dimension (Cin) is {wc_in}"
            )));
        }
        if c_in % g != 0 {
            return Err(Error::Groups(format!("groups = {g} does not divide input channels {c_in}")));
        }
        let c_out = cog * g;
        if let Some(b) = bias {
            if b.len() != 1 || b[0] != c_out {
                return Err(Error::BiasShape { expected: c_out, got: b.to_vec() });
            }
        }
        let (kh, kw) = (to_u32("kh", kh)?, to_u32("kw", kw)?);
        let pads = self.padding.resolve([kh, kw], self.dilation);
        let (h, w) = (to_u32("H", h)?, to_u32("W", w)?);
        let h_out = conv_transpose_out_len(
            "height",
            h,
            pads.top + pads.bottom,
            kh,
            self.stride[0],
            self.dilation[0],
            self.output_padding[0],
        )?;
        let w_out = conv_transpose_out_len(
            "width",
            w,
            pads.left + pads.right,
            kw,
            self.stride[1],
            self.dilation[1],
            self.output_padding[1],
        )?;
        Ok(ConvTranspose2dGeometry {
            n: to_u32("N", n)?,
            c_in: to_u32("Cin", c_in)?,
            h,
            w,
            c_out: to_u32("Cout", c_out)?,
            kh,
            kw,
            stride: self.stride,
            dilation: self.dilation,
            pads,
            output_padding: self.output_padding,
            groups: self.groups,
            h_out,
            w_out,
        })
    }

    /// Output shape `[N, Cout, Ho, Wo]`.
    pub fn output_shape(&self, input: &[usize], weight: &[usize]) -> Result<[usize; 4]> {
        Ok(self.validate(input, weight, None)?.output_shape())
    }
}

/// Parameters of `deform_conv2d` (as `torchvision.ops.deform_conv2d`): the same fields as
/// conv2d's (`groups` are the weight groups; the offset groups come from the offset's
/// channels), validated by [`Conv2dParams::validate_deform`]. Padding may be explicit per side;
/// `Same` is an error, as torchvision has no such mode. `algorithm` is `Auto` /
/// `ImplicitGemm` (bilinear samples gathered by the GEMM's B loader, no workspace) or
/// `Im2colGemm` (a deformable im2col workspace, then the GEMM).
pub type DeformConv2dParams = Conv2dParams;

/// A validated deform_conv2d: the conv's sizes and the number of offset groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeformGeometry {
    pub conv: Conv2dGeometry,
    pub offset_groups: u32,
}

impl Conv2dParams {
    /// Validates input `[N, Cin, H, W]`, weight `[Cout, Cin/groups, kh, kw]`, offset
    /// `[N, 2·G_off·kh·kw, Ho, Wo]`, mask `[N, G_off·kh·kw, Ho, Wo]` and bias `[Cout]`.
    pub fn validate_deform(
        &self,
        input: &[usize],
        weight: &[usize],
        offset: &[usize],
        mask: Option<&[usize]>,
        bias: Option<&[usize]>,
    ) -> Result<DeformGeometry> {
        if self.padding == Padding::Same {
            return Err(Error::param("padding", "'same' is not supported by deform_conv2d (as in torchvision)"));
        }
        if !matches!(self.algorithm, Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::Im2colGemm) {
            return Err(Error::param(
                "algorithm",
                format!("deform_conv2d runs implicit_gemm or im2col_gemm, not {}", self.algorithm.name()),
            ));
        }
        let conv = self.validate(input, weight, bias)?;
        check_rank("offset", offset, 4, "N, 2·offset_groups·kh·kw, Ho, Wo")?;
        let taps = (conv.kh * conv.kw) as usize;
        if offset[1] % (2 * taps) != 0 {
            return Err(Error::ChannelMismatch(format!(
                "offset has {} channels: not a multiple of 2·kh·kw = {}",
                offset[1],
                2 * taps
            )));
        }
        let og = offset[1] / (2 * taps);
        if input[1] % og != 0 {
            return Err(Error::Groups(format!(
                "{og} offset groups (from {} offset channels) do not divide input channels {}",
                offset[1], input[1]
            )));
        }
        let (n, ho, wo) = (input[0], conv.h_out as usize, conv.w_out as usize);
        let expected = vec![n, 2 * og * taps, ho, wo];
        if offset != expected.as_slice() {
            return Err(Error::ShapeMismatch { what: "offset", expected, got: offset.to_vec() });
        }
        if let Some(m) = mask {
            check_rank("mask", m, 4, "N, offset_groups·kh·kw, Ho, Wo")?;
            let expected = vec![n, og * taps, ho, wo];
            if m != expected.as_slice() {
                return Err(Error::ShapeMismatch { what: "mask", expected, got: m.to_vec() });
            }
        }
        Ok(DeformGeometry { conv, offset_groups: og as u32 })
    }
}

/// Padding of a 1-D conv's one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding1d {
    #[default]
    Valid,
    /// `p` on both sides.
    Symmetric(u32),
    Explicit {
        left: u32,
        right: u32,
    },
    /// Output length = input length (stride 1 only; the odd one on the right, as PyTorch).
    Same,
}

/// Parameters of `conv1d` (as `torch.nn.functional.conv1d`) on `[N, C, L]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv1dParams {
    pub stride: u32,
    pub padding: Padding1d,
    pub dilation: u32,
    pub groups: u32,
    pub activation: Activation,
    pub algorithm: Algorithm,
}

impl Default for Conv1dParams {
    fn default() -> Self {
        Conv1dParams {
            stride: 1,
            padding: Padding1d::Valid,
            dilation: 1,
            groups: 1,
            activation: Activation::None,
            algorithm: Algorithm::Auto,
        }
    }
}

impl Conv1dParams {
    /// The conv2d over `[N, C, 1, L]` with a `[Cout, Cin/G, 1, k]` kernel that computes this
    /// conv1d exactly (the height axis has one row, no padding, stride and dilation 1).
    pub fn as_conv2d(&self) -> Conv2dParams {
        let padding = match self.padding {
            Padding1d::Valid => Padding::Valid,
            Padding1d::Symmetric(p) => Padding::Explicit { top: 0, left: p, bottom: 0, right: p },
            Padding1d::Explicit { left, right } => Padding::Explicit { top: 0, left, bottom: 0, right },
            Padding1d::Same => Padding::Same,
        };
        Conv2dParams {
            stride: [1, self.stride],
            padding,
            dilation: [1, self.dilation],
            groups: self.groups,
            algorithm: self.algorithm,
            activation: self.activation,
        }
    }

    /// Validates input `[N, Cin, L]`, weight `[Cout, Cin/groups, k]`, bias `[Cout]`; returns
    /// the output shape `[N, Cout, Lo]`.
    pub fn validate(&self, input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<[usize; 3]> {
        check_rank("input", input, 3, "N, Cin, L")?;
        check_rank("weight", weight, 3, "Cout, Cin/groups, k")?;
        if self.padding == Padding1d::Same && self.stride != 1 {
            return Err(Error::param(
                "padding",
                format!("'same' needs stride 1 (as in PyTorch), got stride {}", self.stride),
            ));
        }
        let g = self.as_conv2d().validate(
            &[input[0], input[1], 1, input[2]],
            &[weight[0], weight[1], 1, weight[2]],
            bias,
        )?;
        Ok([g.n as usize, g.c_out as usize, g.w_out as usize])
    }
}

/// Parameters of `max_pool2d` / `avg_pool2d` (PyTorch semantics; ceil_mode false,
/// dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    pub kernel: [u32; 2],
    /// `None`: the kernel size, as PyTorch's default.
    pub stride: Option<[u32; 2]>,
    /// Symmetric, each ≤ kernel / 2 (PyTorch's rule).
    pub padding: [u32; 2],
    /// avg_pool2d only: divide by the whole window (true, PyTorch's default) or by the
    /// in-image positions.
    pub count_include_pad: bool,
}

impl Pool2dParams {
    pub fn new(kernel: [u32; 2]) -> Self {
        Pool2dParams { kernel, stride: None, padding: [0, 0], count_include_pad: true }
    }

    pub fn stride(&self) -> [u32; 2] {
        self.stride.unwrap_or(self.kernel)
    }

    /// Validates an input `[N, C, H, W]`; returns the output shape `[N, C, Ho, Wo]`.
    pub fn validate(&self, input: &[usize]) -> Result<[usize; 4]> {
        check_rank("input", input, 4, "N, C, H, W")?;
        if self.kernel.contains(&0) {
            return Err(Error::param("kernel", format!("{:?}: each must be ≥ 1", self.kernel)));
        }
        let stride = self.stride();
        if stride.contains(&0) {
            return Err(Error::param("stride", format!("{stride:?}: each must be ≥ 1")));
        }
        for a in 0..2 {
            if self.padding[a] > self.kernel[a] / 2 {
                return Err(Error::param(
                    "padding",
                    format!("{:?} must be at most half the kernel {:?} (as in PyTorch)", self.padding, self.kernel),
                ));
            }
        }
        let (h, w) = (to_u32("H", input[2])?, to_u32("W", input[3])?);
        let ho = conv_out_len("height", h, self.padding[0], self.padding[0], self.kernel[0], stride[0], 1)?;
        let wo = conv_out_len("width", w, self.padding[1], self.padding[1], self.kernel[1], stride[1], 1)?;
        Ok([input[0], input[1], ho as usize, wo as usize])
    }
}

/// Padding of a 3-D conv (depth, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding3d {
    #[default]
    Valid,
    /// `[pd, ph, pw]` on both sides of each axis.
    Symmetric([u32; 3]),
    /// Output size = input size (stride 1 only; the odd one at the end, as PyTorch).
    Same,
}

/// Parameters of `conv3d` (as `torch.nn.functional.conv3d`) on `[N, C, D, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv3dParams {
    pub stride: [u32; 3],
    pub padding: Padding3d,
    pub dilation: [u32; 3],
    pub groups: u32,
    pub activation: Activation,
}

impl Default for Conv3dParams {
    fn default() -> Self {
        Conv3dParams {
            stride: [1; 3],
            padding: Padding3d::Valid,
            dilation: [1; 3],
            groups: 1,
            activation: Activation::None,
        }
    }
}

/// Every size of one validated conv3d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3dGeometry {
    pub n: u32,
    pub c_in: u32,
    pub c_out: u32,
    /// Input `[D, H, W]`.
    pub size: [u32; 3],
    /// Kernel `[kd, kh, kw]`.
    pub kernel: [u32; 3],
    pub stride: [u32; 3],
    pub dilation: [u32; 3],
    /// Leading pads `[front, top, left]` (the trailing ones only shape the output size).
    pub pad_begin: [u32; 3],
    pub groups: u32,
    /// Output `[Do, Ho, Wo]`.
    pub out: [u32; 3],
}

impl Conv3dGeometry {
    pub fn output_shape(&self) -> [usize; 5] {
        [self.n as usize, self.c_out as usize, self.out[0] as usize, self.out[1] as usize, self.out[2] as usize]
    }
    /// The same GEMM seen as a conv2d whose height axis is depth × height: what the dense
    /// GEMM and the chunk planner need (rows Cin·kd·kh·kw, pixels N·Do·Ho·Wo).
    pub fn as_gemm_geometry(&self) -> Conv2dGeometry {
        Conv2dGeometry {
            n: self.n,
            c_in: self.c_in,
            h: self.size[0] * self.size[1],
            w: self.size[2],
            c_out: self.c_out,
            kh: self.kernel[0] * self.kernel[1],
            kw: self.kernel[2],
            stride: [1, 1],
            dilation: [1, 1],
            pads: Pads::ZERO,
            groups: self.groups,
            h_out: self.out[0] * self.out[1],
            w_out: self.out[2],
        }
    }
}

impl Conv3dParams {
    /// Validates input `[N, Cin, D, H, W]`, weight `[Cout, Cin/groups, kd, kh, kw]`, bias `[Cout]`.
    pub fn validate(&self, input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<Conv3dGeometry> {
        check_rank("input", input, 5, "N, Cin, D, H, W")?;
        check_rank("weight", weight, 5, "Cout, Cin/groups, kd, kh, kw")?;
        check_scalars(&self.stride, &self.dilation, self.groups, self.activation)?;
        if self.padding == Padding3d::Same && self.stride != [1, 1, 1] {
            return Err(Error::param(
                "padding",
                format!("'same' needs stride 1 (as in PyTorch), got {:?}", self.stride),
            ));
        }
        // Groups, channels and bias follow conv2d's rules exactly: check them on a 2-D view.
        let flat = Conv2dParams { groups: self.groups, activation: self.activation, ..Default::default() };
        flat.validate(&[input[0], input[1], 1, 1], &[weight[0], weight[1], 1, 1], bias)?;
        let mut out = [0u32; 3];
        let mut pad_begin = [0u32; 3];
        for a in 0..3 {
            let (len, k) = (to_u32("size", input[2 + a])?, to_u32("kernel", weight[2 + a])?);
            let (b, e) = match self.padding {
                Padding3d::Valid => (0, 0),
                Padding3d::Symmetric(p) => (p[a], p[a]),
                Padding3d::Same => {
                    let t = self.dilation[a] * (k - 1);
                    (t / 2, t - t / 2)
                }
            };
            pad_begin[a] = b;
            out[a] = conv_out_len(["depth", "height", "width"][a], len, b, e, k, self.stride[a], self.dilation[a])?;
        }
        Ok(Conv3dGeometry {
            n: to_u32("N", input[0])?,
            c_in: to_u32("Cin", input[1])?,
            c_out: to_u32("Cout", weight[0])?,
            size: [input[2], input[3], input[4]].map(|v| v as u32),
            kernel: [weight[2], weight[3], weight[4]].map(|v| v as u32),
            stride: self.stride,
            dilation: self.dilation,
            pad_begin,
            groups: self.groups,
            out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_at_the_end() {
        let p = Padding::Same.resolve([4, 3], [1, 2]);
        assert_eq!(p, Pads { top: 1, left: 2, bottom: 2, right: 2 });
    }

    #[test]
    fn transposed_output_formula_matches_pytorch() {
        // torch: conv_transpose2d(1x4x14x14, w 4x2x4x4, stride 2, padding 1) -> 28x28 (dcgan_up)
        let p = ConvTranspose2dParams { stride: [2, 2], padding: Padding::Symmetric([1, 1]), ..Default::default() };
        assert_eq!(p.output_shape(&[1, 4, 14, 14], &[4, 2, 4, 4]).unwrap(), [1, 2, 28, 28]);
        // stride 3, dilation 2, output_padding (2, 1), groups 2: (5-1)*3 - 2 + 2*2 + 2 + 1 = 17; (6-1)*3 - 0 + 2*1 + 1 + 1 = 19
        let p = ConvTranspose2dParams {
            stride: [3, 3],
            padding: Padding::Explicit { top: 1, left: 0, bottom: 1, right: 0 },
            output_padding: [2, 1],
            dilation: [2, 2],
            groups: 2,
            ..Default::default()
        };
        assert_eq!(p.output_shape(&[1, 4, 5, 6], &[4, 3, 3, 2]).unwrap(), [1, 6, 17, 19]);
        let bad = ConvTranspose2dParams { stride: [2, 2], output_padding: [2, 0], ..Default::default() };
        assert!(matches!(
            bad.output_shape(&[1, 1, 3, 3], &[1, 1, 3, 3]),
            Err(Error::InvalidParam { name: "output_padding", .. })
        ));
    }

    #[test]
    fn output_formula_matches_pytorch() {
        // torch: conv2d(1x1x7x9, k=3x2, stride=(2,3), padding=(1,0), dilation=(2,1)) -> 3x3... computed by hand:
        // H: (7+2-2*2-1)/2+1 = 3; W: (9+0-1*1-1)/3+1 = 3
        let p = Conv2dParams {
            stride: [2, 3],
            padding: Padding::Symmetric([1, 0]),
            dilation: [2, 1],
            ..Default::default()
        };
        assert_eq!(p.output_shape(&[1, 1, 7, 9], &[1, 1, 3, 2]).unwrap(), [1, 1, 3, 3]);
    }
}
