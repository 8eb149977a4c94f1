//! Reference max/avg pooling from the definition (PyTorch: dilation for max, ceil_mode,
//! count_include_pad and divisor_override for avg; adaptive pooling).

use crate::error::Result;
use crate::ops::pool2d::PoolMode;
use crate::params::Pool2dParams;
use crate::tensor::HostTensor;

/// Output (oy, ox)'s window: its first row and column (may lie in the padding), its rows and
/// columns, and the step between taps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub y0: isize,
    pub x0: isize,
    pub kh: isize,
    pub kw: isize,
    pub dh: isize,
    pub dw: isize,
}

impl Window {
    /// The window of output (oy, ox) of an `(h, w)` input pooled to `(ho, wo)`.
    pub fn of(
        params: &Pool2dParams,
        (oy, ox): (usize, usize),
        (h, w): (usize, usize),
        (ho, wo): (usize, usize),
    ) -> Self {
        if params.adaptive.is_some() {
            let (y0, y1) = (oy * h / ho, ((oy + 1) * h).div_ceil(ho));
            let (x0, x1) = (ox * w / wo, ((ox + 1) * w).div_ceil(wo));
            return Window {
                y0: y0 as isize,
                x0: x0 as isize,
                kh: (y1 - y0) as isize,
                kw: (x1 - x0) as isize,
                dh: 1,
                dw: 1,
            };
        }
        let [sh, sw] = params.stride().map(|v| v as isize);
        let [ph, pw] = params.padding.map(|v| v as isize);
        Window {
            y0: oy as isize * sh - ph,
            x0: ox as isize * sw - pw,
            kh: params.kernel[0] as isize,
            kw: params.kernel[1] as isize,
            dh: params.dilation[0] as isize,
            dw: params.dilation[1] as isize,
        }
    }

    /// The in-image positions `y·w + x`, row by row.
    pub fn inside(&self, (h, w): (usize, usize)) -> Vec<usize> {
        let (h, w) = (h as isize, w as isize);
        (0..self.kh)
            .flat_map(|i| (0..self.kw).map(move |j| (self.y0 + i * self.dh, self.x0 + j * self.dw)))
            .filter(|&(y, x)| y >= 0 && y < h && x >= 0 && x < w)
            .map(|(y, x)| (y * w + x) as usize)
            .collect()
    }

    /// avg_pool2d's divisor: PyTorch's divisor_override, else the window clipped to the
    /// padded input (count_include_pad), else its in-image positions.
    pub fn avg_divisor(&self, params: &Pool2dParams, (h, w): (usize, usize)) -> isize {
        if let Some(d) = params.divisor_override {
            return d as isize;
        }
        let (kh, kw, y0, x0) = (self.kh, self.kw, self.y0, self.x0);
        let (h, w) = (h as isize, w as isize);
        if params.count_include_pad {
            let [ph, pw] = params.padding.map(|v| v as isize);
            return ((y0 + kh).min(h + ph) - y0) * ((x0 + kw).min(w + pw) - x0);
        }
        ((y0 + kh).min(h) - y0.max(0)).max(0) * ((x0 + kw).min(w) - x0.max(0)).max(0)
    }
}

/// Returns the output shape and values (f64).
pub fn pool2d(input: &HostTensor, params: &Pool2dParams, mode: PoolMode) -> Result<([usize; 4], Vec<f64>)> {
    let input = &input.batched(4);
    let shape = params.validate(&input.shape)?;
    let [n, c, ho, wo] = shape;
    let (h, w) = (input.shape[2], input.shape[3]);
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        let x = &input.data[plane * h * w..][..h * w];
        for oy in 0..ho {
            for ox in 0..wo {
                let win = Window::of(params, (oy, ox), (h, w), (ho, wo));
                let vals: Vec<f64> = win.inside((h, w)).into_iter().map(|q| x[q] as f64).collect();
                out.push(match mode {
                    PoolMode::Max if vals.iter().any(|v| v.is_nan()) => f64::NAN,
                    PoolMode::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    PoolMode::Avg => vals.iter().sum::<f64>() / win.avg_divisor(params, (h, w)) as f64,
                });
            }
        }
    }
    Ok((shape, out))
}
