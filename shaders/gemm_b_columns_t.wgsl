// B_COLUMNS_T: a column matrix read transposed, one chunk of pixels at a time (see gemm.wgsl's
// header): deform_conv2d_backward's grad_weight over deform_im2col.wgsl's workspace.

struct ColumnChunk {
    chunk_cols: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Row bk (a pixel) of B at the kernel columns b_c .. b_c + 3 (0 past N).
fn load_b_columns_t(g: u32, c: Cols, bk: u32, b_c: u32) -> vec4<f32> {
    let k0 = bk - bk % params.cols.chunk_cols;
    let len = min(params.cols.chunk_cols, params.dims.k - k0);
    let row = g * params.dims.n + b_c;
    let at = (vec4<u32>(row) + vec4<u32>(0u, 1u, 2u, 3u)) * len + (bk - k0);
    var bv = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        if (c.ok[e]) {
            bv[e] = b_at(at[e]);
        }
    }
    return bv;
}
