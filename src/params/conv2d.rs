//! conv2d's parameters and geometry, and the rules and output-length formula every conv shares.

use super::*;

/// Parameters of `conv2d` (the same as `torch.nn.functional.conv2d` minus the tensors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dParams {
    /// `[sh, sw]`, each ≥ 1.
    pub stride: [u32; 2],
    /// Zero padding of both spatial axes (PyTorch `padding`: numbers, `'valid'` or `'same'`; or each side on its own).
    pub padding: Padding,
    /// `[dh, dw]`, each ≥ 1.
    pub dilation: [u32; 2],
    /// Divides both Cin and Cout; `groups == Cin` is depthwise.
    pub groups: u32,
    /// Kernel family; `Auto` lets the engine choose.
    pub algorithm: Algorithm,
    /// Applied to every output after the bias, in the kernel's write-out.
    pub activation: Activation,
    /// What the padding reads (`nn.Conv2d`'s `padding_mode`): zeros (the default), or the
    /// input reflected, replicated or wrapped, which `im2col_gemm` applies in its gather
    /// (`Auto` picks it; the other algorithms read zeros and refuse another mode).
    pub padding_mode: PaddingMode,
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
            padding_mode: PaddingMode::Zeros,
        }
    }
}

/// Every size of one validated conv2d; what the kernels and the reference index with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Batch size N.
    pub n: u32,
    /// Input channels Cin.
    pub c_in: u32,
    /// Input height H.
    pub h: u32,
    /// Input width W.
    pub w: u32,
    /// Output channels Cout.
    pub c_out: u32,
    /// Kernel height kh.
    pub kh: u32,
    /// Kernel width kw.
    pub kw: u32,
    /// `[sh, sw]`.
    pub stride: [u32; 2],
    /// `[dh, dw]`.
    pub dilation: [u32; 2],
    /// Each side's padding, resolved (`same` worked out).
    pub pads: Pads,
    /// Groups G: Cin/G input channels per group, Cout/G output channels.
    pub groups: u32,
    /// Output height Ho = ⌊(H + top + bottom − dh·(kh − 1) − 1)/sh⌋ + 1.
    pub h_out: u32,
    /// Output width Wo = ⌊(W + left + right − dw·(kw − 1) − 1)/sw⌋ + 1.
    pub w_out: u32,
    /// What the padding reads.
    pub padding_mode: PaddingMode,
}

impl Conv2dGeometry {
    /// Whether the padding mode changes what is read: a mode other than zeros and some
    /// padding (with no padding every mode is the same conv).
    pub fn pads_by_mode(&self) -> bool {
        let p = self.pads;
        self.padding_mode != PaddingMode::Zeros && (p.top | p.left | p.bottom | p.right) != 0
    }

    /// Elements of the output: N·Cout·Ho·Wo.
    pub fn output_numel(&self) -> usize {
        self.output_shape().iter().product()
    }

    /// `[N, Cout, Ho, Wo]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n as usize, self.c_out as usize, self.h_out as usize, self.w_out as usize]
    }
    /// The dense GEMM of this conv's im2col.
    pub fn unfolded(&self) -> super::Unfolded {
        super::Unfolded {
            n: self.n,
            rows: self.c_in * self.kh * self.kw,
            c_out: self.c_out,
            groups: self.groups,
            pixels_per_image: self.h_out * self.w_out,
        }
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

pub(crate) fn to_u32(what: &'static str, v: usize) -> Result<u32> {
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

/// [`check_rank`] for a tensor whose first axis is the batch, which may be empty (N = 0, as
/// in PyTorch: the op's output is empty too); every other axis must be non-empty.
pub(crate) fn check_batched_rank(what: &'static str, shape: &[usize], rank: usize, layout: &'static str) -> Result<()> {
    if shape.len() != rank {
        return Err(Error::Rank { what, expected: rank, layout, got: shape.to_vec() });
    }
    if shape[1..].contains(&0) {
        return Err(Error::EmptyTensor { what, shape: shape.to_vec() });
    }
    Ok(())
}

/// The rules every conv's scalar parameters follow.
pub(crate) fn check_scalars(stride: &[u32], dilation: &[u32], groups: u32, activation: Activation) -> Result<()> {
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
        check_batched_rank("input", input, 4, "N, Cin, H, W")?;
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
        self.padding_mode.check("height", h, pads.top, pads.bottom)?;
        self.padding_mode.check("width", w, pads.left, pads.right)?;
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
            padding_mode: self.padding_mode,
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
