//! Reference max/avg pooling from the definition (PyTorch, ceil_mode false).

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
    let mut out = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        let x = &input.data[plane * h * w..][..h * w];
        for oy in 0..ho as isize {
            for ox in 0..wo as isize {
                let mut vals = Vec::new();
                for i in 0..kh {
                    for j in 0..kw {
                        let (y, xx) = (oy * sh - ph + i, ox * sw - pw + j);
                        if y >= 0 && y < h as isize && xx >= 0 && xx < w as isize {
                            vals.push(x[y as usize * w + xx as usize] as f64);
                        }
                    }
                }
                out.push(match mode {
                    PoolMode::Max if vals.iter().any(|v| v.is_nan()) => f64::NAN,
                    PoolMode::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    PoolMode::Avg => {
                        let divisor = if params.count_include_pad { (kh * kw) as f64 } else { vals.len() as f64 };
                        vals.iter().sum::<f64>() / divisor
                    }
                });
            }
        }
    }
    Ok((shape, out))
}
