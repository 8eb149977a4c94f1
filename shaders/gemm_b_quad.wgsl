// The GEMM's B operand read as vec4: for bindings whose size is a multiple of 16 bytes and
// B modes whose four columns of a row start at a multiple of 4 (the host checks both). One
// vec4 load instead of four scalar ones: on llvmpipe, where a load inside a loop runs lane by
// lane, that is a quarter of the B loader's cost.

@group(0) @binding(2) var<storage, read> b: array<vec4<elem>>;

// The host reads B as vec4 only where no four columns of a quad straddle a row or an image
// (`kernels::gemm::quad_b`): a quad's columns are then adjacent in B, or past N.
const B_VEC4: bool = true;

fn b_at(i: u32) -> f32 {
    return f32(b[i >> 2u][i & 3u]);
}

// Elements i .. i + 3; i must be a multiple of 4.
fn b_quad(i: u32) -> vec4<f32> {
    return vec4<f32>(b[i >> 2u]);
}

fn b_len() -> u32 {
    return 4u * arrayLength(&b);
}
