//! conv1d's parameters (run as a conv2d of height 1).

use super::*;

/// Parameters of `conv1d` (as `torch.nn.functional.conv1d`) on `[N, C, L]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv1dParams {
    /// Step along the sequence, ≥ 1 (PyTorch `stride`).
    pub stride: u32,
    /// Zero padding of the sequence (PyTorch `padding`: a number, `'valid'` or `'same'`).
    pub padding: Padding1d,
    /// Spacing between kernel taps, ≥ 1 (PyTorch `dilation`).
    pub dilation: u32,
    /// Divides Cin and Cout; `groups == Cin` is depthwise (PyTorch `groups`).
    pub groups: u32,
    /// Applied to every output after the bias, in the kernel's write-out.
    pub activation: Activation,
    /// Kernel family (those of conv2d, which runs the `[N, C, 1, L]` view); `Auto` lets the engine choose.
    pub algorithm: Algorithm,
    /// What the padding reads (`nn.Conv1d`'s `padding_mode`; see [`Conv2dParams::padding_mode`]).
    pub padding_mode: PaddingMode,
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
            padding_mode: PaddingMode::Zeros,
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
            padding_mode: self.padding_mode,
        }
    }

    /// Validates input `[N, Cin, L]`, weight `[Cout, Cin/groups, k]`, bias `[Cout]`; returns
    /// the output shape `[N, Cout, Lo]`.
    pub fn validate(&self, input: &[usize], weight: &[usize], bias: Option<&[usize]>) -> Result<[usize; 3]> {
        check_batched_rank("input", input, 3, "N, Cin, L")?;
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
