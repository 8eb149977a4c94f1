// Shared by pool2d.wgsl and pool2d_backward.wgsl (joined in front of each, after the dtype
// file): the reduction's override constants, the uniform block of a pooling's window, the
// pass range of long windows, avg's divisor.
//
// Window of (oy, ox): rows oy·sh − pt + i·dh (i < kh), columns ox·sw − pl + j·dw (j < kw);
// with ceil_mode the last window may reach past the padded input. Adaptive pooling: rows
// ⌊oy·H/Ho⌋ .. ⌈(oy+1)·H/Ho⌉ (columns likewise), no padding, no dilation.
// (The Rust twins: `PoolMode`, `kernels::pool2d::PoolParams`, `PassRange`; tests/shaders.rs
// checks that both sides agree.)

const MODE_MAX: u32 = 0u;
const MODE_AVG: u32 = 1u;

override MODE: u32 = MODE_MAX;
override COUNT_PAD: bool = true;

struct PoolParams {
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    h_out: u32,
    w_out: u32,
    // the launch's invocations: outputs (pool2d, argmax) or input elements (gather)
    total: u32,
    // The window is walked in units of (row, chunk of col_chunk columns): chunks per row.
    col_chunk: u32,
    chunks: u32,
    dil_h: u32,
    dil_w: u32,
    // divisor_override, 0: none
    divisor: u32,
    // the padded input's end (H + bottom padding, W + right padding) in this launch's rows
    h_end: u32,
    w_end: u32,
    // 1: adaptive pooling (window_of); kh, kw then bound every window's size
    adaptive: u32,
    _pad0: u32,
}

// The units begin .. min(end, kh·chunks) of the window this dispatch covers. Some drivers stop
// every loop of an invocation after 65535 iterations in total (Mesa ≤ 22's llvmpipe), so the
// host splits long windows (global pooling) into passes of bounded loop turns: each continues
// the running max / sum the previous one left in `part`, and the last writes the output.
struct Pass {
    begin: u32,
    end: u32,
    last: u32,
    // gemm.wgsl's A window width (unused here)
    a_width: u32,
}

const WG: u32 = 256u;

// The window of output (oy, ox): its first row and column (may lie in the padding) and its
// rows and columns.
struct Window {
    y0: i32,
    x0: i32,
    kh: u32,
    kw: u32,
}

fn window_of(oy: u32, ox: u32) -> Window {
    if (params.adaptive != 0u) {
        let y0 = (oy * params.h) / params.h_out;
        let y1 = ((oy + 1u) * params.h + params.h_out - 1u) / params.h_out;
        let x0 = (ox * params.w) / params.w_out;
        let x1 = ((ox + 1u) * params.w + params.w_out - 1u) / params.w_out;
        return Window(i32(y0), i32(x0), y1 - y0, x1 - x0);
    }
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
    return Window(y0, x0, params.kh, params.kw);
}

// avg's divisor for window `win` (see pool2d.wgsl's header).
fn avg_divisor(win: Window) -> f32 {
    if (params.divisor != 0u) {
        return f32(params.divisor);
    }
    if (COUNT_PAD) {
        let rows = min(i32(params.h_end), win.y0 + i32(win.kh)) - win.y0;
        let cols = min(i32(params.w_end), win.x0 + i32(win.kw)) - win.x0;
        return f32(rows * cols);
    }
    // the in-image rows times the in-image columns of the window
    let rows = min(i32(params.h), win.y0 + i32(win.kh)) - max(0, win.y0);
    let cols = min(i32(params.w), win.x0 + i32(win.kw)) - max(0, win.x0);
    return f32(max(rows, 0) * max(cols, 0));
}
