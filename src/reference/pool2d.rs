//! Reference max/avg pooling from the definition (PyTorch: dilation for max, ceil_mode,
//! count_include_pad and divisor_override for avg).

use crate::error::Result;
use crate::ops::pool2d::PoolMode;
use crate::params::Pool2dParams;
use crate::tensor::HostTensor;

/// Returns the output shape and values (f64).
pub fn pool2d(input: &HostTensor, params: &Pool2dParams, mode: PoolMode) -> Result<([usize; 4], Vec<f64>)> {
    let input = &input.batched(4);
    let shape = params.validate(&input.shape)?;
    let [n, c, ho, wo] = shape;
    let (h, w) = (input.shape[2], input.shape[3]);
    let [kh, kw] = params.kernel.map(|v| v as isize);
    let [sh, sw] = params.stride().map(|v| v as isize);
    let [ph, pw] = params.padding.map(|v| v as isize);
    let [dh, dw] = params.dilation.map(|v| v as isize);
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        let x = &input.data[plane * h * w..][..h * w];
        for oy in 0..ho as isize {
            for ox in 0..wo as isize {
                let mut vals = Vec::new();
                for i in 0..kh {
                    for j in 0..kw {
                        let (y, xx) = (oy * sh - ph + i * dh, ox * sw - pw + j * dw);
                        if y >= 0 && y < h as isize && xx >= 0 && xx < w as isize {
                            vals.push(x[y as usize * w + xx as usize] as f64);
                        }
                    }
                }
                out.push(match mode {
                    PoolMode::Max if vals.iter().any(|v| v.is_nan()) => f64::NAN,
                    PoolMode::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    PoolMode::Avg => {
                        vals.iter().sum::<f64>() / avg_divisor(params, (oy * sh - ph, ox * sw - pw), (h, w)) as f64
                    }
                });
            }
        }
    }
    Ok((shape, out))
}

/// avg_pool2d's divisor of the window starting at `(y0, x0)` of an `(h, w)` input: PyTorch's
/// divisor_override, else the window clipped to the padded input (count_include_pad), else
/// its in-image positions.
pub(crate) fn avg_divisor(params: &Pool2dParams, (y0, x0): (isize, isize), (h, w): (usize, usize)) -> isize {
    if let Some(d) = params.divisor_override {
        return d as isize;
    }
    let [kh, kw] = params.kernel.map(|v| v as isize);
    let [ph, pw] = params.padding.map(|v| v as isize);
    let (h, w) = (h as isize, w as isize);
    if params.count_include_pad {
        return ((y0 + kh).min(h + ph) - y0) * ((x0 + kw).min(w + pw) - x0);
    }
    ((y0 + kh).min(h) - y0.max(0)).max(0) * ((x0 + kw).min(w) - x0.max(0)).max(0)
}
