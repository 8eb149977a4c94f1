//! Padding of each op's spatial axes: 2-D (`Padding`, resolved to `Pads`), 1-D, 3-D.

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

/// Padding of a 3-D conv (depth, height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Padding3d {
    #[default]
    Valid,
    /// `[pd, ph, pw]` on both sides of each axis.
    Symmetric([u32; 3]),
    /// Output size = input size (stride 1 only; the odd one at the end, as PyTorch).
    Same,
    /// `begin` before and `end` after each axis (depth, height, width), as `F.pad` then a
    /// valid conv3d.
    Explicit { begin: [u32; 3], end: [u32; 3] },
}
