//! max_pool2d and avg_pool2d parameters.

use super::*;

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
        check_batched_rank("input", input, 4, "N, C, H, W")?;
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
