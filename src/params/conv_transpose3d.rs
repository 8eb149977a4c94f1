//! conv_transpose3d's parameters and geometry.

use super::*;

/// Parameters of `conv_transpose3d` (as `torch.nn.functional.conv_transpose3d`) on
/// `[N, Cin, D, H, W]` with weight `[Cin, Cout/groups, kd, kh, kw]`: each output axis is
/// `(in − 1)·stride − (begin + end) + dilation·(k − 1) + output_padding + 1` long.
///
/// `padding` crops the full transposed output (`Symmetric` is PyTorch's `padding`,
/// `Explicit` crops each end; `Same` is an error, as in PyTorch); `output_padding` adds
/// positions at the end of each axis and must be < max(stride, dilation) on it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTranspose3dParams {
    /// `[sd, sh, sw]`, each ≥ 1 (PyTorch `stride`).
    pub stride: [u32; 3],
    /// Removed from both ends of each axis of the output (PyTorch `padding`).
    pub padding: Padding3d,
    /// Extra output at the end of each axis, each < its stride or dilation (PyTorch `output_padding`).
    pub output_padding: [u32; 3],
    /// `[dd, dh, dw]`, each ≥ 1 (PyTorch `dilation`).
    pub dilation: [u32; 3],
    /// Divides Cin and Cout.
    pub groups: u32,
    /// Applied to every output after the bias.
    pub activation: Activation,
}

impl Default for ConvTranspose3dParams {
    fn default() -> Self {
        ConvTranspose3dParams {
            stride: [1; 3],
            padding: Padding3d::Valid,
            output_padding: [0; 3],
            dilation: [1; 3],
            groups: 1,
            activation: Activation::None,
        }
    }
}

/// Every size of one validated conv_transpose3d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose3dGeometry {
    /// Batch size N.
    pub n: u32,
    /// Input channels Cin.
    pub c_in: u32,
    /// Output channels Cout.
    pub c_out: u32,
    /// Input `[D, H, W]`.
    pub size: [u32; 3],
    /// Kernel `[kd, kh, kw]`.
    pub kernel: [u32; 3],
    /// `[sd, sh, sw]`.
    pub stride: [u32; 3],
    /// `[dd, dh, dw]`.
    pub dilation: [u32; 3],
    /// Crop before each axis (front, top, left).
    pub pad_begin: [u32; 3],
    /// Crop after each axis.
    pub pad_end: [u32; 3],
    /// `[opd, oph, opw]`.
    pub output_padding: [u32; 3],
    /// Groups G.
    pub groups: u32,
    /// Output `[Do, Ho, Wo]`.
    pub out: [u32; 3],
}

impl ConvTranspose3dGeometry {
    /// `[N, Cout, Do, Ho, Wo]`.
    pub fn output_shape(&self) -> [usize; 5] {
        [self.n as usize, self.c_out as usize, self.out[0] as usize, self.out[1] as usize, self.out[2] as usize]
    }

    /// 2·N·Cin·D·H·W·(Cout/groups)·kd·kh·kw: each input voxel meets each tap once.
    pub fn flops(&self) -> f64 {
        let voxels: f64 = self.size.iter().map(|&v| v as f64).product();
        let taps: f64 = self.kernel.iter().map(|&v| v as f64).product();
        2.0 * self.n as f64 * self.c_in as f64 * voxels * (self.c_out / self.groups) as f64 * taps
    }

    /// The conv3d whose input gradient this transposed conv is: input `[N, Cout, Do, Ho, Wo]`
    /// (this output), weight `[Cin, Cout/groups, kd, kh, kw]` (this weight read as conv3d's
    /// `[Cout', Cin'/groups, …]`), output `[N, Cin, D, H, W]` (this input), the same stride,
    /// dilation, groups and leading pads. Its `pad_end` is this crop at the end less the
    /// output_padding, which can be negative; it is clamped at 0 (the gathers that use this
    /// geometry read only `pad_begin`).
    pub fn as_conv3d(&self) -> Conv3dGeometry {
        Conv3dGeometry {
            n: self.n,
            c_in: self.c_out,
            c_out: self.c_in,
            size: self.out,
            kernel: self.kernel,
            stride: self.stride,
            dilation: self.dilation,
            pad_begin: self.pad_begin,
            pad_end: [0, 1, 2].map(|a| self.pad_end[a].saturating_sub(self.output_padding[a])),
            groups: self.groups,
            out: self.size,
            padding_mode: PaddingMode::Zeros,
        }
    }
}

impl ConvTranspose3dParams {
    /// Validates input `[N, Cin, D, H, W]`, weight `[Cin, Cout/groups, kd, kh, kw]` and bias
    /// `[Cout]`.
    ///
    /// Errors: [`Error::Rank`], [`Error::ChannelMismatch`], [`Error::Groups`],
    /// [`Error::BiasShape`]; [`Error::InvalidParam`] for a zero stride/dilation/groups, `same`
    /// padding, or an output_padding not below max(stride, dilation); [`Error::EmptyOutput`]
    /// when the crop leaves nothing.
    pub fn validate(
        &self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
    ) -> Result<ConvTranspose3dGeometry> {
        check_batched_rank("input", input, 5, "N, Cin, D, H, W")?;
        check_rank("weight", weight, 5, "Cin, Cout/groups, kd, kh, kw")?;
        check_scalars(&self.stride, &self.dilation, self.groups, self.activation)?;
        if self.padding == Padding3d::Same {
            return Err(Error::param("padding", "'same' is not defined for conv_transpose3d (as in PyTorch)"));
        }
        for a in 0..3 {
            let limit = self.stride[a].max(self.dilation[a]);
            if self.output_padding[a] >= limit {
                return Err(Error::param(
                    "output_padding",
                    format!(
                        "{:?}: each must be smaller than max(stride, dilation) = {limit} on its axis",
                        self.output_padding
                    ),
                ));
            }
        }
        // Channels, groups and bias follow conv_transpose2d's rules exactly: a 2-D view.
        let flat = ConvTranspose2dParams { groups: self.groups, activation: self.activation, ..Default::default() };
        flat.validate(&[input[0], input[1], 1, 1], &[weight[0], weight[1], 1, 1], bias)?;
        let mut out = [0u32; 3];
        let mut pad_begin = [0u32; 3];
        let mut pad_end = [0u32; 3];
        for a in 0..3 {
            let (len, k) = (to_u32("size", input[2 + a])?, to_u32("kernel", weight[2 + a])?);
            let (b, e) = match self.padding {
                Padding3d::Valid | Padding3d::Same => (0, 0),
                Padding3d::Symmetric(p) => (p[a], p[a]),
                Padding3d::Explicit { begin, end } => (begin[a], end[a]),
            };
            pad_begin[a] = b;
            pad_end[a] = e;
            out[a] = conv_transpose_out_len(
                ["depth", "height", "width"][a],
                len,
                b + e,
                k,
                self.stride[a],
                self.dilation[a],
                self.output_padding[a],
            )?;
        }
        Ok(ConvTranspose3dGeometry {
            n: to_u32("N", input[0])?,
            c_in: to_u32("Cin", input[1])?,
            c_out: to_u32("Cout", weight[1] * self.groups as usize)?,
            size: [input[2], input[3], input[4]].map(|v| v as u32),
            kernel: [weight[2], weight[3], weight[4]].map(|v| v as u32),
            stride: self.stride,
            dilation: self.dilation,
            pad_begin,
            pad_end,
            output_padding: self.output_padding,
            groups: self.groups,
            out,
        })
    }

    /// Output shape `[N, Cout, Do, Ho, Wo]`.
    pub fn output_shape(&self, input: &[usize], weight: &[usize]) -> Result<[usize; 5]> {
        Ok(self.validate(input, weight, None)?.output_shape())
    }
}
