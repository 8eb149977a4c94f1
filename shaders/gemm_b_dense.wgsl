// B_DENSE: B is a dense [groups, K, N] matrix (a plain GEMM's B, or the im2col workspace).

// Row bk of a dense B [groups, K, N] (the im2col workspace) at columns b_c .. b_c + 3.
fn load_b_dense(g: u32, c: Cols, bk: u32, b_c: u32) -> vec4<f32> {
    var bv = vec4<f32>(0.0);
    let row = g * params.dims.k * params.dims.n + bk * params.dims.n;
    if (B_VEC4) {
        // Read as vec4 (N a multiple of 4): a quad is wholly inside N or past it (zeros, the
        // load clamped into the binding). No other branch: on llvmpipe the code of a branch
        // no lane takes still runs, masked.
        bv = select(vec4<f32>(0.0), b_quad(min(row + b_c, b_len() - 4u)), c.ok);
    } else if (c.ok.w) {
        bv = b_quad(row + b_c);
    } else {
        for (var e = 0u; e < 4u; e++) {
            if (b_c + e < params.dims.n) {
                bv[e] = b_at(row + b_c + e);
            }
        }
    }
    return bv;
}
