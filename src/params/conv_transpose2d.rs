//! conv_transpose2d's parameters and geometry.

use super::*;

/// Parameters of `conv_transpose2d` (as `torch.nn.functional.conv_transpose2d`).
///
/// `padding` crops the full transposed output (`Symmetric`, `Explicit` per side, `Valid` =
/// none; `Same` is not defined for transposed convs and is an error, as in PyTorch);
/// `output_padding` adds rows/columns at the bottom/right and must be < max(stride, dilation)
/// on each axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTranspose2dParams {
    /// `[sh, sw]`, each ≥ 1 (PyTorch `stride`).
    pub stride: [u32; 2],
    /// Removed from each side of the output (PyTorch `padding`).
    pub padding: Padding,
    /// Extra output rows/columns at the end, each < stride or < dilation (PyTorch `output_padding`).
    pub output_padding: [u32; 2],
    /// `[dh, dw]`, each ≥ 1 (PyTorch `dilation`).
    pub dilation: [u32; 2],
    /// Divides Cin and Cout; the weight is `[Cin, Cout/groups, kh, kw]`.
    pub groups: u32,
    /// Applied to every output after the bias.
    pub activation: Activation,
    /// `ImplicitGemm`: the sh·sw output phases as implicit GEMMs (no workspace, no col2im);
    /// `GemmCol2im`: `Wᵀ·X` into a workspace, then a col2im gather; `Auto` (the default):
    /// by shape, see `ops::conv_transpose2d::auto_algorithm` (the phases but for Winograd's
    /// 3×3 and col2im's few output channels).
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
    /// Each side's padding (removed from the output).
    pub pads: Pads,
    /// `[oph, opw]`.
    pub output_padding: [u32; 2],
    /// Groups G.
    pub groups: u32,
    /// Output height Ho = (H − 1)·sh − top − bottom + dh·(kh − 1) + oph + 1.
    pub h_out: u32,
    /// Output width Wo = (W − 1)·sw − left − right + dw·(kw − 1) + opw + 1.
    pub w_out: u32,
}

impl ConvTranspose2dGeometry {
    /// The conv2d this transposed conv equals where it has stride 1, dilation 1, no
    /// output_padding and at most kh − 1 (kw − 1) padding per side: the same input, the weight
    /// `[Cin, Cout/G, kh, kw]` read as `[Cout, Cin/G, kh, kw]` with the taps flipped, padding
    /// kh − 1 − p per side. `None` for every other transposed conv.
    pub fn as_conv(&self) -> Option<Conv2dGeometry> {
        let p = self.pads;
        let (kh, kw) = (self.kh, self.kw);
        let simple = self.stride == [1, 1] && self.dilation == [1, 1] && self.output_padding == [0, 0];
        if !simple || p.top.max(p.bottom) >= kh || p.left.max(p.right) >= kw {
            return None;
        }
        Some(Conv2dGeometry {
            n: self.n,
            c_in: self.c_in,
            h: self.h,
            w: self.w,
            c_out: self.c_out,
            kh,
            kw,
            stride: [1, 1],
            dilation: [1, 1],
            pads: Pads {
                top: kh - 1 - p.top,
                left: kw - 1 - p.left,
                bottom: kh - 1 - p.bottom,
                right: kw - 1 - p.right,
            },
            groups: self.groups,
            h_out: self.h_out,
            w_out: self.w_out,
            padding_mode: PaddingMode::Zeros,
        })
    }

    /// Elements of the output: N·Cout·Ho·Wo.
    pub fn output_numel(&self) -> usize {
        self.output_shape().iter().product()
    }

    /// `[N, Cout, Ho, Wo]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.n as usize, self.c_out as usize, self.h_out as usize, self.w_out as usize]
    }
    /// Cin / G.
    pub fn c_in_per_group(&self) -> u32 {
        self.c_in / self.groups
    }
    /// Cout / G.
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
        check_batched_rank("input", input, 4, "N, Cin, H, W")?;
        check_rank("weight", weight, 4, "Cin, Cout/groups, kh, kw")?;
        check_scalars(&self.stride, &self.dilation, self.groups, self.activation)?;
        if self.padding == Padding::Same {
            return Err(Error::param("padding", "'same' is not defined for conv_transpose2d (as in PyTorch)"));
        }
        if !matches!(
            self.algorithm,
            Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::GemmCol2im | Algorithm::Winograd
        ) {
            return Err(Error::param(
                "algorithm",
                format!("conv_transpose2d runs implicit_gemm, gemm_col2im or winograd, not {}", self.algorithm.name()),
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
        let geometry = ConvTranspose2dGeometry {
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
        };
        if self.algorithm == Algorithm::Winograd {
            let conv = geometry.as_conv();
            if let Some(why) = conv.map_or(Some(String::new()), |c| Algorithm::Winograd.unsupported_reason(&c)) {
                return Err(Error::param(
                    "algorithm",
                    format!(
                        "winograd runs a conv_transpose2d with a 3x3 kernel, stride 1, dilation 1 and padding at most \
                         2 (the conv it equals){}",
                        if why.is_empty() { String::new() } else { format!(": {why}") }
                    ),
                ));
            }
        }
        Ok(geometry)
    }

    /// Output shape `[N, Cout, Ho, Wo]`.
    pub fn output_shape(&self, input: &[usize], weight: &[usize]) -> Result<[usize; 4]> {
        Ok(self.validate(input, weight, None)?.output_shape())
    }
}
