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

// A_ROW_MAJOR, A_OUTPUT_GRAD, A_PHASE_TAPS and A_TRANSPOSED in main_flat: where rows r .. r + 3
// of A start (A_TRANSPOSED: the rows themselves, adjacent within one column of A, whose start
// main_flat adds per k). Rows past M read row M − 1 instead of a bounds check per load: their
// products land in accumulator rows that are never stored.
fn a_rows(ph: Phase, r: u32) -> vec4<u32> {
    let rows = min(vec4<u32>(r, r + 1u, r + 2u, r + 3u), vec4<u32>(params.dims.m - 1u));
    if (A_MODE == A_TRANSPOSED) {
        return rows;
    }
    if (A_MODE == A_PHASE_TAPS) {
        // rows of the transposed-conv weight [Cin, M, kh, kw]; the channel is in the tap's offset
        return rows * (params.conv.kh * params.conv.kw);
    }
    if (A_MODE == A_OUTPUT_GRAD) {
        // channels g·M + row of dY [N, a_channels, a_hw]; the image and pixel are in Pix.a
        return (vec4<u32>(ph.gc * params.dims.m) + rows) * params.grad.a_hw;
    }
    return (vec4<u32>(ph.gc * params.dims.m) + rows) * params.dims.k;
}

// Column k of the four rows starting at `rows` (a_rows).
fn a_col(rows: vec4<u32>, k: u32) -> vec4<f32> {
    return vec4<f32>(f32(a[rows.x + k]), f32(a[rows.y + k]), f32(a[rows.z + k]), f32(a[rows.w + k]));
}
