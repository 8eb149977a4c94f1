// What main_16x16 and main_flat share: the tile shape and the 16×16 block's write-out.

// main_16x16's tile shape (the Rust twin is `TileShape`): TILE_SQUARE 128×128 (8×8
// invocations, K slices of 16), TILE_WIDE 64×256 (4×16 invocations, K slices of 8), TILE_TALL
// 256×64 (16×4 invocations, K slices of 8). The host picks the one that wastes the fewest padded rows and
// columns for the GEMM's M and N; all three use at most 16 KiB of workgroup memory.
override TILE_SHAPE: u32 = TILE_SQUARE;

// Invocations along N; along M there are 64 / that.
fn wg_x() -> u32 {
    return select(select(8u, 16u, TILE_SHAPE == TILE_WIDE), 4u, TILE_SHAPE == TILE_TALL);
}

fn bk16() -> u32 {
    return select(8u, 16u, TILE_SHAPE == TILE_SQUARE);
}

// Stores a 16×16 block, sub-block 4t + u (acc<t><u>) at rows m0 + 4t, columns n0 + 4u, in a
// loop: one inlined copy of the write-out instead of sixteen (llvmpipe compiles each copy
// with its own masks; sixteen made the first dispatch of a kernel ~3× slower).
fn store16(ph: Phase, m0: u32, n0: u32, blocks: array<mat4x4<f32>, 16>) {
    var b = blocks;
    for (var i = 0u; i < 16u; i++) {
        store4(ph, m0 + 4u * (i / 4u), n0 + 4u * (i % 4u), b[i]);
    }
}

// x·yᵀ for four rows x and four columns y: column c of the result is row c's four values.
fn outer4(x: vec4<f32>, y: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(x.x * y, x.y * y, x.z * y, x.w * y);
}

// Stores the 4×4 sub-block `acc` whose first row is m and first column n.
fn store4(ph: Phase, m: u32, n: u32, acc: mat4x4<f32>) {
    store_row(ph, m, n, acc[0]);
    store_row(ph, m + 1u, n, acc[1]);
    store_row(ph, m + 2u, n, acc[2]);
    store_row(ph, m + 3u, n, acc[3]);
}
