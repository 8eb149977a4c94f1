//! Padding of each op's spatial axes: 2-D (`Padding`, resolved to `Pads`), 1-D, 3-D, and what
//! the padding reads (`PaddingMode`).

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
    Explicit {
        /// Rows above the input.
        top: u32,
        /// Columns left of the input.
        left: u32,
        /// Rows below the input.
        bottom: u32,
        /// Columns right of the input.
        right: u32,
    },
    /// Output size = input size (PyTorch `padding='same'`, stride 1 only). The total
    /// `dilation·(k−1)` is split with the odd one at the bottom/right, as PyTorch does.
    Same,
}

/// Resolved padding of one conv: `[top, left, bottom, right]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pads {
    /// Rows above the input.
    pub top: u32,
    /// Columns left of the input.
    pub left: u32,
    /// Rows below the input.
    pub bottom: u32,
    /// Columns right of the input.
    pub right: u32,
}

impl Pads {
    /// No padding on any side.
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

/// Padding of a 1-D conv's one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding1d {
    /// No padding (PyTorch `padding='valid'`).
    #[default]
    Valid,
    /// `p` on both sides.
    Symmetric(u32),
    /// Each side on its own.
    Explicit {
        /// Elements before the input.
        left: u32,
        /// Elements after the input.
        right: u32,
    },
    /// Output length = input length (stride 1 only; the odd one on the right, as PyTorch).
    Same,
}

/// Padding of a 3-D conv (depth, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding3d {
    /// No padding (PyTorch `padding='valid'`).
    #[default]
    Valid,
    /// `[pd, ph, pw]` on both sides of each axis.
    Symmetric([u32; 3]),
    /// Output size = input size (stride 1 only; the odd one at the end, as PyTorch).
    Same,
    /// `begin` before and `end` after each axis (depth, height, width), as `F.pad` then a
    /// valid conv3d.
    Explicit {
        /// Padding before the input on each axis `[d, h, w]`.
        begin: [u32; 3],
        /// Padding after the input on each axis `[d, h, w]`.
        end: [u32; 3],
    },
}

/// What a convolution reads at positions in its padding: PyTorch's `padding_mode` of
/// `nn.Conv1d`/`nn.Conv2d`/`nn.Conv3d` (the mode's `F.pad` of the input, then a conv with
/// no padding). wgconv applies it in the gather that reads the input (no padded copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum PaddingMode {
    /// 0 (PyTorch's default).
    #[default]
    Zeros,
    /// The input mirrored about its edge element: position −1 reads 1, L reads L − 2. Each
    /// pad must be smaller than its axis.
    Reflect,
    /// The edge element repeated.
    Replicate,
    /// The input wrapped around: position −1 reads L − 1, L reads 0. Each pad must be at most
    /// its axis.
    Circular,
}

impl PaddingMode {
    /// Every mode, zeros first.
    pub const ALL: [PaddingMode; 4] =
        [PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular];

    /// PyTorch's name: `zeros`, `reflect`, `replicate`, `circular`.
    pub fn name(self) -> &'static str {
        match self {
            PaddingMode::Zeros => "zeros",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Circular => "circular",
        }
    }

    /// The mode PyTorch names `name` (`zeros`, `reflect`, `replicate`, `circular`), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        PaddingMode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The value of the `PAD_MODE` override of the gathers that apply it (`pad_mode.wgsl`).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The input position read at position `i` of an axis of length `len` (`i` may lie in the
    /// padding), or `None` where zeros are read. The pads must suit the axis (the validation of every conv with a mode checks them).
    pub fn source(self, i: isize, len: isize) -> Option<usize> {
        if (0..len).contains(&i) {
            return Some(i as usize);
        }
        let s = match self {
            PaddingMode::Zeros => return None,
            PaddingMode::Reflect if i < 0 => -i,
            PaddingMode::Reflect => 2 * (len - 1) - i,
            PaddingMode::Replicate => i.clamp(0, len - 1),
            PaddingMode::Circular => i.rem_euclid(len),
        };
        Some(s as usize)
    }

    /// Errors ([`Error::InvalidParam`]) unless pads `before` and `after` suit an axis of
    /// length `len` under this mode (PyTorch's rules: reflect's pads below the length,
    /// circular's at most the length).
    pub(crate) fn check(self, axis: &str, len: u32, before: u32, after: u32) -> Result<()> {
        let pad = before.max(after);
        let bad = match self {
            PaddingMode::Reflect => pad >= len,
            PaddingMode::Circular => pad > len,
            _ => false,
        };
        if bad {
            let rule = if self == PaddingMode::Reflect { "smaller than" } else { "at most" };
            return Err(Error::param(
                "padding_mode",
                format!(
                    "{}: the {axis} padding ({before}, {after}) must be {rule} the input's {axis} {len}",
                    self.name()
                ),
            ));
        }
        Ok(())
    }
}
