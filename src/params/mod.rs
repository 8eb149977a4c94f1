//! Convolution parameters, their validation and the output-size formulas (PyTorch's), one
//! module per concern: padding, algorithm, activation, and each op's parameters and geometry.

use crate::error::{Error, Result};

mod activation;
mod algorithm;
mod conv1d;
mod conv2d;
mod conv3d;
mod conv_transpose1d;
mod conv_transpose2d;
mod conv_transpose3d;
mod deform_conv2d;
mod padding;
mod pool2d;

pub use activation::*;
pub use algorithm::*;
pub use conv1d::*;
pub use conv2d::*;
pub use conv3d::*;
pub use conv_transpose1d::*;
pub use conv_transpose2d::*;
pub use conv_transpose3d::*;
pub use deform_conv2d::*;
pub use padding::*;
pub use pool2d::*;

/// A convolution as the dense GEMM over its unfolded input (im2col, vol2col, the deformable
/// unfold): the column matrix has `rows` = Cin·(taps per channel) rows (every group's) and
/// one column per output pixel of every image; each group's `Cout/groups` weight rows
/// multiply its `rows/groups` rows. Any spatial rank: only these sizes reach the GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unfolded {
    /// Batch size N.
    pub n: u32,
    /// Rows of the column matrix: Cin·(taps per channel), every group's.
    pub rows: u32,
    /// Output channels Cout.
    pub c_out: u32,
    /// Groups G.
    pub groups: u32,
    /// Output pixels (voxels) per image.
    pub pixels_per_image: u32,
}

impl Unfolded {
    /// Output pixels of the whole batch: the GEMM's columns.
    pub fn pixels(&self) -> u64 {
        self.n as u64 * self.pixels_per_image as u64
    }
    /// Elements of the output `[N, Cout, pixels]`.
    pub fn output_numel(&self) -> usize {
        self.n as usize * self.c_out as usize * self.pixels_per_image as usize
    }
}

/// A shape as the ops' validation takes it: PyTorch's unbatched form (rank `rank − 1`, e.g.
/// `[C, H, W]` for a rank-4 op) gets a batch of one in front; any other shape is returned
/// as is. Every op accepts unbatched tensors and returns its output without the batch axis.
pub fn as_batched(shape: &[usize], rank: usize) -> Vec<usize> {
    if shape.len() + 1 == rank {
        std::iter::once(1).chain(shape.iter().copied()).collect()
    } else {
        shape.to_vec()
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
