//! conv3d's parameters and geometry.

use super::*;

/// Parameters of `conv3d` (as `torch.nn.functional.conv3d`) on `[N, C, D, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv3dParams {
    /// `[sd, sh, sw]`, each ≥ 1 (PyTorch `stride`).
    pub stride: [u32; 3],
    /// Zero padding of the three spatial axes (PyTorch `padding`).
    pub padding: Padding3d,
    /// `[dd, dh, dw]`, each ≥ 1 (PyTorch `dilation`).
    pub dilation: [u32; 3],
    /// Divides Cin and Cout (PyTorch `groups`).
    pub groups: u32,
    /// Applied to every output after the bias.
    pub activation: Activation,
    /// What the padding reads (`nn.Conv3d`'s `padding_mode`), applied by vol2col's gather.
    pub padding_mode: PaddingMode,
}

impl Default for Conv3dParams {
    fn default() -> Self {
        Conv3dParams {
            stride: [1; 3],
            padding: Padding3d::Valid,
            dilation: [1; 3],
            groups: 1,
            activation: Activation::None,
            padding_mode: PaddingMode::Zeros,
        }
    }
}

/// Every size of one validated conv3d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3dGeometry {
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
    /// Leading pads `[front, top, left]`.
    pub pad_begin: [u32; 3],
    /// Padding after each axis (depth, height, width).
    pub pad_end: [u32; 3],
    /// Groups G.
    pub groups: u32,
    /// Output `[Do, Ho, Wo]`.
    pub out: [u32; 3],
    /// What the padding reads.
    pub padding_mode: PaddingMode,
}

impl Conv3dGeometry {
    /// Whether the padding mode changes what is read (a mode other than zeros and some
    /// padding).
    pub fn pads_by_mode(&self) -> bool {
        self.padding_mode != PaddingMode::Zeros && (self.pad_begin.iter().chain(&self.pad_end).any(|&p| p > 0))
    }

    /// `[N, Cout, Do, Ho, Wo]`.
    pub fn output_shape(&self) -> [usize; 5] {
        [self.n as usize, self.c_out as usize, self.out[0] as usize, self.out[1] as usize, self.out[2] as usize]
    }
    /// The dense GEMM of this conv's vol2col (rows Cin·kd·kh·kw, pixels N·Do·Ho·Wo).
    pub fn unfolded(&self) -> super::Unfolded {
        super::Unfolded {
            n: self.n,
            rows: self.c_in * self.kernel.iter().product::<u32>(),
            c_out: self.c_out,
            groups: self.groups,
            pixels_per_image: self.out.iter().product(),
        }
    }
}

impl Conv3dParams {
    /// Validates input `[N, Cin, D, H, W]`, weight `[Cout, Cin/groups, kd, kh, kw]`, bias `[Cout]`.
    pub fn validate(&self, input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<Conv3dGeometry> {
        check_batched_rank("input", input, 5, "N, Cin, D, H, W")?;
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
        let mut pad_end = [0u32; 3];
        for a in 0..3 {
            let (len, k) = (to_u32("size", input[2 + a])?, to_u32("kernel", weight[2 + a])?);
            let (b, e) = match self.padding {
                Padding3d::Valid => (0, 0),
                Padding3d::Symmetric(p) => (p[a], p[a]),
                Padding3d::Explicit { begin, end } => (begin[a], end[a]),
                Padding3d::Same => {
                    let t = self.dilation[a] * (k - 1);
                    (t / 2, t - t / 2)
                }
            };
            pad_begin[a] = b;
            pad_end[a] = e;
            let axis = ["depth", "height", "width"][a];
            out[a] = conv_out_len(axis, len, b, e, k, self.stride[a], self.dilation[a])?;
            self.padding_mode.check(axis, len, b, e)?;
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
            pad_end,
            groups: self.groups,
            out,
            padding_mode: self.padding_mode,
        })
    }
}
