// The GEMM's B operand as `elem` elements, read as f32 (any length, any alignment).

@group(0) @binding(2) var<storage, read> b: array<elem>;

// (see gemm_b_quad.wgsl)
const B_VEC4: bool = false;

fn b_at(i: u32) -> f32 {
    return f32(b[i]);
}

// Elements i .. i + 3.
fn b_quad(i: u32) -> vec4<f32> {
    return vec4<f32>(f32(b[i]), f32(b[i + 1u]), f32(b[i + 2u]), f32(b[i + 3u]));
}

fn b_len() -> u32 {
    return arrayLength(&b);
}
