//! `shaders/col2im.wgsl`: the gather that finishes conv_transpose2d's `GemmCol2im`, each
//! output element summing the column entries of the taps that land on it (+ bias, activation).

use crate::kernels::uniform_block;

uniform_block! {
    /// Twin of `Col2imParams` in `shaders/col2im.wgsl`.
    Col2imParams {
        c_out, h, w, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, h_out, w_out,
        img0, total, alpha_bits,
    }
}
