//! max_pool2d and avg_pool2d parameters.

use super::*;

/// Parameters of `max_pool2d` / `avg_pool2d` (PyTorch semantics and names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// `[kh, kw]`: the window, each ≥ 1 (PyTorch `kernel_size`).
    pub kernel: [u32; 2],
    /// `None`: the kernel size, as PyTorch's default.
    pub stride: Option<[u32; 2]>,
    /// Symmetric, each ≤ half the kernel (PyTorch's rule, dilated or not).
    pub padding: [u32; 2],
    /// max_pool2d only (avg_pool2d has none): the window's taps `dilation` apart.
    pub dilation: [u32; 2],
    /// The output size rounded up instead of down; the last window must still start inside
    /// the input or its leading padding (PyTorch's rule).
    pub ceil_mode: bool,
    /// avg_pool2d only: divide by the window clipped to the padded input (true, PyTorch's
    /// default) or by its in-image positions.
    pub count_include_pad: bool,
    /// avg_pool2d only: divide by this instead (≥ 1).
    pub divisor_override: Option<u32>,
    /// Adaptive pooling (`adaptive_avg_pool2d` / `adaptive_max_pool2d`) to this output size:
    /// output row `oy` pools input rows `⌊oy·H/Ho⌋ .. ⌈(oy+1)·H/Ho⌉` (columns likewise);
    /// kernel, stride, padding, dilation and ceil_mode are then unused.
    pub adaptive: Option<[u32; 2]>,
}

impl Default for Pool2dParams {
    /// A 1×1 window: set `kernel` (or use [`Pool2dParams::new`]).
    fn default() -> Self {
        Pool2dParams::new([1, 1])
    }
}

impl Pool2dParams {
    /// A pooling with this window and PyTorch's defaults (stride = the window, no padding).
    pub fn new(kernel: [u32; 2]) -> Self {
        Pool2dParams {
            kernel,
            stride: None,
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: None,
            adaptive: None,
        }
    }

    /// Adaptive pooling to `output_size` (PyTorch's `adaptive_*_pool2d(input, output_size)`).
    pub fn adaptive(output_size: [u32; 2]) -> Self {
        Pool2dParams { adaptive: Some(output_size), ..Pool2dParams::new([1, 1]) }
    }

    /// The most input rows and columns one window covers (the adaptive windows' longest).
    pub fn window_extent(&self, input: &[usize]) -> [u32; 2] {
        match self.adaptive {
            Some(out) => [0, 1].map(|a| {
                let len = input[2 + a] as u32;
                (len.div_ceil(out[a].max(1)) + 1).min(len.max(1))
            }),
            None => [0, 1].map(|a| self.dilation[a] * (self.kernel[a] - 1) + 1),
        }
    }

    /// The stride in effect: the one given, else the window (PyTorch's default).
    pub fn stride(&self) -> [u32; 2] {
        self.stride.unwrap_or(self.kernel)
    }

    /// Validates an input `[N, C, H, W]`; returns the output shape `[N, C, Ho, Wo]`.
    pub fn validate(&self, input: &[usize]) -> Result<[usize; 4]> {
        check_batched_rank("input", input, 4, "N, C, H, W")?;
        if let Some(out) = self.adaptive {
            if out.contains(&0) {
                return Err(Error::param("output_size", format!("{out:?}: each must be ≥ 1")));
            }
            if self.divisor_override.is_some() {
                return Err(Error::param("divisor_override", "adaptive pooling has none (as in PyTorch)"));
            }
            if input[2] == 0 || input[3] == 0 {
                return Err(Error::EmptyOutput(format!("adaptive pooling of an empty plane {:?}", &input[2..])));
            }
            to_u32("H", input[2])?;
            to_u32("W", input[3])?;
            return Ok([input[0], input[1], out[0] as usize, out[1] as usize]);
        }
        if self.kernel.contains(&0) {
            return Err(Error::param("kernel", format!("{:?}: each must be ≥ 1", self.kernel)));
        }
        let stride = self.stride();
        if stride.contains(&0) {
            return Err(Error::param("stride", format!("{stride:?}: each must be ≥ 1")));
        }
        if self.dilation.contains(&0) {
            return Err(Error::param("dilation", format!("{:?}: each must be ≥ 1", self.dilation)));
        }
        if self.divisor_override == Some(0) {
            return Err(Error::param("divisor_override", "must be ≥ 1 (PyTorch: 'divisor must be not zero')"));
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
        let ho = self.out_len("height", h, 0)?;
        let wo = self.out_len("width", w, 1)?;
        Ok([input[0], input[1], ho as usize, wo as usize])
    }

    /// The output length along `axis` (0: height, 1: width) of an input of `len`: PyTorch's
    /// `pooling_output_shape`, ceil_mode's last window kept only where it starts inside the
    /// input or its leading padding.
    fn out_len(&self, name: &str, len: u32, axis: usize) -> Result<u32> {
        let (k, s, p, d) = (self.kernel[axis], self.stride()[axis], self.padding[axis], self.dilation[axis]);
        let floor = conv_out_len(name, len, p, p, k, s, d)?;
        if !self.ceil_mode {
            return Ok(floor);
        }
        let span = (d as u64) * (k as u64 - 1) + 1;
        let room = len as u64 + 2 * p as u64 - span;
        let mut out = room.div_ceil(s as u64) + 1;
        if (out - 1) * s as u64 >= len as u64 + p as u64 {
            out -= 1;
        }
        u32::try_from(out).map_err(|_| Error::TooLarge(format!("{name} output {out}")))
    }
}
