//! Reference max/avg pooling backward from PyTorch's definition: max sends each window's
//! gradient to its maximum (walking the window's (dilated) positions row by row from −∞ at
//! its first in-image one, a value takes over when greater or NaN: ties keep the first, NaNs
//! the last, as `max_pool2d_with_indices`); avg spreads it over the window's in-image
//! positions, each getting grad / divisor (the forward's, [`super::pool2d()`]).

use crate::error::{Error, Result};
use crate::ops::pool2d::PoolMode;
use crate::params::Pool2dParams;
use crate::tensor::HostTensor;

use super::pool2d::Window;

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
    let (h, w) = (input.shape[2], input.shape[3]);
    let mut grad = vec![0.0; input.data.len()];
    for plane in 0..n * c {
        let x = &input.data[plane * h * w..][..h * w];
        let g = &mut grad[plane * h * w..][..h * w];
        for oy in 0..ho {
            for ox in 0..wo {
                let dy = grad_output.data[(plane * ho + oy) * wo + ox] as f64;
                let win = Window::of(params, (oy, ox), (h, w), (ho, wo));
                let inside = win.inside((h, w));
                match mode {
                    PoolMode::Max => {
                        // the first in-image position on the window's (dilated) grid
                        let first = |start: isize, d: isize| if start >= 0 { start } else { start.rem_euclid(d) };
                        let mut at = (first(win.y0, win.dh) * w as isize + first(win.x0, win.dw)) as usize;
                        let mut best = f32::NEG_INFINITY;
                        for &q in &inside {
                            if x[q] > best || x[q].is_nan() {
                                (best, at) = (x[q], q);
                            }
                        }
                        g[at] += dy;
                    }
                    PoolMode::Avg => {
                        let divisor = win.avg_divisor(params, (h, w)) as f64;
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
