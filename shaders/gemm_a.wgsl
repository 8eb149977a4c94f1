// The GEMM's A operand, by A_MODE (see gemm.wgsl's header): the tiled kernels' element
// and quad reads, and main_flat's row walk.

// A_OUTPUT_GRAD (and B_TAPS): the output gradient's pixels per image and channels.
struct OutputGrad {
    a_hw: u32,
    a_channels: u32,
    _pad0: u32,
    _pad1: u32,
}


fn load_a(ph: Phase, row: u32, k: u32) -> f32 {
    let g = ph.gc;
    if (row < params.dims.m) {
        if (A_MODE == A_PHASE_TAPS) {
            let t = phase_tap(ph, k);
            if (t.w == 0u) {
                return 0.0;
            }
            let i = ph.i0y + t.y * params.phases.step_y;
            let j = ph.i0x + t.z * params.phases.step_x;
            return f32(a[(((phase_channel0(g) + t.x) * params.dims.m + row) * params.conv.kh + i) * params.conv.kw + j]);
        }
        if (A_MODE == A_TRANSPOSED) {
            return f32(a[(g * params.dims.k + k) * params.dims.m + row]);
        }
        if (A_MODE == A_TAP_MAJOR) {
            // tap-major column k = t·Cin/G + cl of the weight row (cl, t)
            let taps = params.conv.kh * params.conv.kw;
            let cin_g = params.dims.k / taps;
            let t = k / cin_g;
            return f32(a[(g * params.dims.m + row) * params.dims.k + (k - t * cin_g) * taps + t]);
        }
        if (A_MODE == A_OUTPUT_GRAD) {
            let img = k / params.grad.a_hw;
            let q = k - img * params.grad.a_hw;
            return f32(a[(img * params.grad.a_channels + g * params.dims.m + row) * params.grad.a_hw + q]);
        }
        return f32(a[(g * params.dims.m + row) * params.dims.k + k]);
    }
    return 0.0;
}

// Rows 4·i4 .. 4·i4 + 3 of the tile at column k0 + kk of A.
fn load_a4(ph: Phase, row0: u32, i4: u32, k: u32) -> vec4<f32> {
    if (k >= params.dims.k) {
        return vec4<f32>(0.0);
    }
    let r = row0 + 4u * i4;
    return vec4<f32>(load_a(ph, r, k), load_a(ph, r + 1u, k), load_a(ph, r + 2u, k), load_a(ph, r + 3u, k));
}
