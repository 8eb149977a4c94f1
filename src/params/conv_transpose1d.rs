//! conv_transpose1d's parameters (run as a conv_transpose2d of height 1).

use super::*;

/// Parameters of `conv_transpose1d` (as `torch.nn.functional.conv_transpose1d`) on
/// `[N, Cin, L]` with weight `[Cin, Cout/groups, k]`: output length
/// `(L − 1)·stride − (left + right) + dilation·(k − 1) + output_padding + 1`.
///
/// `padding` crops the full transposed output (`Symmetric(p)` is PyTorch's `padding=p`;
/// `Explicit` crops each end; `Same` is an error, as in PyTorch); `output_padding` adds
/// positions at the end and must be < max(stride, dilation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTranspose1dParams {
    /// Step between input positions on the output, ≥ 1 (PyTorch `stride`).
    pub stride: u32,
    /// Removed from both ends of the output (PyTorch `padding`).
    pub padding: Padding1d,
    /// Extra output at the end, < stride or < dilation (PyTorch `output_padding`).
    pub output_padding: u32,
    /// Spacing between kernel taps, ≥ 1 (PyTorch `dilation`).
    pub dilation: u32,
    /// Divides Cin and Cout.
    pub groups: u32,
    /// Applied to every output after the bias.
    pub activation: Activation,
    /// As [`ConvTranspose2dParams::algorithm`].
    pub algorithm: Algorithm,
}

impl Default for ConvTranspose1dParams {
    fn default() -> Self {
        ConvTranspose1dParams {
            stride: 1,
            padding: Padding1d::Valid,
            output_padding: 0,
            dilation: 1,
            groups: 1,
            activation: Activation::None,
            algorithm: Algorithm::Auto,
        }
    }
}

impl ConvTranspose1dParams {
    /// The conv_transpose2d over `[N, Cin, 1, L]` with a `[Cin, Cout/G, 1, k]` kernel that
    /// computes this conv_transpose1d exactly (one row: no padding, stride and dilation 1).
    pub fn as_conv_transpose2d(&self) -> ConvTranspose2dParams {
        let padding = match self.padding {
            Padding1d::Valid => Padding::Valid,
            Padding1d::Symmetric(p) => Padding::Explicit { top: 0, left: p, bottom: 0, right: p },
            Padding1d::Explicit { left, right } => Padding::Explicit { top: 0, left, bottom: 0, right },
            Padding1d::Same => Padding::Same,
        };
        ConvTranspose2dParams {
            stride: [1, self.stride],
            padding,
            output_padding: [0, self.output_padding],
            dilation: [1, self.dilation],
            groups: self.groups,
            activation: self.activation,
            algorithm: self.algorithm,
        }
    }

    /// Validates input `[N, Cin, L]`, weight `[Cin, Cout/groups, k]`, bias `[Cout]`; returns
    /// the output shape `[N, Cout, Lo]`. Errors as [`ConvTranspose2dParams::validate`].
    pub fn validate(&self, input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<[usize; 3]> {
        check_batched_rank("input", input, 3, "N, Cin, L")?;
        check_rank("weight", weight, 3, "Cin, Cout/groups, k")?;
        if self.padding == Padding1d::Same {
            return Err(Error::param("padding", "'same' is not defined for conv_transpose1d (as in PyTorch)"));
        }
        let g = self.as_conv_transpose2d().validate(
            &[input[0], input[1], 1, input[2]],
            &[weight[0], weight[1], 1, weight[2]],
            bias,
        )?;
        Ok([g.n as usize, g.c_out as usize, g.w_out as usize])
    }

    /// Output shape `[N, Cout, Lo]`.
    pub fn output_shape(&self, input: &[usize], weight: &[usize]) -> Result<[usize; 3]> {
        self.validate(input, weight, None)
    }
}
