// Shared by vol2col.wgsl and col2vol.wgsl (joined in front of each): a conv3d's window, and
// the range a launch covers: vol2col's output voxels col0 .. col0 + cols (total = rows·cols
// column entries), or col2vol's images col0 .. col0 + cols (total = their input voxels), and
// col2vol's activation parameter (alpha_bits; vol2col ignores it).
// (The Rust twin: `kernels::vol2col::Vol2colParams`.)

struct Vol2colParams {
    c_in: u32,
    d: u32,
    h: u32,
    w: u32,
    kd: u32,
    kh: u32,
    kw: u32,
    stride_d: u32,
    stride_h: u32,
    stride_w: u32,
    dil_d: u32,
    dil_h: u32,
    dil_w: u32,
    pad_front: u32,
    pad_top: u32,
    pad_left: u32,
    d_out: u32,
    h_out: u32,
    w_out: u32,
    col0: u32,
    cols: u32,
    total: u32,
    alpha_bits: u32,
    // the pads after each axis (col2vol's fold)
    pad_back: u32,
    pad_bottom: u32,
    pad_right: u32,
    _pad0: u32,
}
