// main_flat's A reads from the storage binding `a` (the kernels without uniform windows;
// gemm_a_window.wgsl is the other way).

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

// Whether A comes from uniform windows.
const A_WINDOWED: bool = false;

// Where main_flat reads A at its step k: column `ka` of A (the walks' order, see there).
fn a_at(ka: u32, k: u32) -> u32 {
    return ka;
}
