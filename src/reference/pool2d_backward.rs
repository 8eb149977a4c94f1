//! Reference max/avg pooling backward from PyTorch's definition: max sends each window's
//! gradient to its maximum (walking the window's (dilated) positions row by row from −∞ at
//! its first in-image one, a value takes over when greater or NaN: ties keep the first, NaNs
//! the last, as `max_pool2d_with_indices`); avg spreads it over the window's in-image
//! positions, each getting grad / divisor (the forward's, [`super::pool2d`]).

use crate::error::{Error, Result};
use crate::ops::pool2d::PoolMode;
use crate::params::Pool2dParams;
use crate::tensor::HostTensor;

/// grad_input (f64) of `input`'s shape.
pub fn pool2d_backward(
    input: &HostTensor,
    grad_output: &HostTensor,
    params: &Pool2dParams,
    mode: PoolMode,
) -> Result<Vec<f64>> {
    let (input, grad_output) = (&input.batched(4), &grad_output.batched(4));
    let shape = params.validate(&input.shape)?;
    if grad_output.shape != shape {
        return Err(Error::Buffer {
            what: "grad_output",
            reason: format!("shape {:?}, expected {shape:?}", grad_output.shape),
        });
    }
    let [n, c, ho, wo] = shape;
    let (h, w) = (input.shape[2] as isize, input.shape[3] as isize);
    let [kh, kw] = params.kernel.map(|v| v as isize);
    let [sh, sw] = params.stride().map(|v| v as isize);
    let [ph, pw] = params.padding.map(|v| v as isize);
    let [dh, dw] = params.dilation.map(|v| v as isize);
    let mut grad = vec![0.0; input.data.len()];
    for plane in 0..n * c {
        let x = &input.data[plane * (h * w) as usize..][..(h * w) as usize];
        let g = &mut grad[plane * (h * w) as usize..][..(h * w) as usize];
        for oy in 0..ho as isize {
            for ox in 0..wo as isize {
                let dy = grad_output.data[(plane * ho + oy as usize) * wo + ox as usize] as f64;
                let (y0, x0) = (oy * sh - ph, ox * sw - pw);
                let inside: Vec<usize> = (0..kh)
                    .flat_map(|i| (0..kw).map(move |j| (y0 + i * dh, x0 + j * dw)))
                    .filter(|&(y, xx)| y >= 0 && y < h && xx >= 0 && xx < w)
                    .map(|(y, xx)| (y * w + xx) as usize)
                    .collect();
                match mode {
                    PoolMode::Max => {
                        // the first in-image position on the window's dilated grid
                        let first = |start: isize, d: isize| if start >= 0 { start } else { start.rem_euclid(d) };
                        let mut at = (first(y0, dh) * w + first(x0, dw)) as usize;
                        let mut best = f32::NEG_INFINITY;
                        for &q in &inside {
                            if x[q] > best || x[q].is_nan() {
                                (best, at) = (x[q], q);
                            }
                        }
                        g[at] += dy;
                    }
                    PoolMode::Avg => {
                        let divisor = super::pool2d::avg_divisor(params, (y0, x0), (h as usize, w as usize)) as f64;
                        for &q in &inside {
                            g[q] += dy / divisor;
                        }
                    }
                }
            }
        }
    }
    Ok(grad)
}
