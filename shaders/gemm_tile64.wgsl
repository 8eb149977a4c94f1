// The 64×64 tiles of main and main_8x8: K in slices of BK through workgroup memory.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// a_tile[k·16 + i] = A[row0 + 4i .. row0 + 4i + 3][k0 + k]  (four rows of one column of A)
var<workgroup> a_tile: array<vec4<f32>, 256>;
// b_tile[k·16 + j] = B[k0 + k][col0 + 4j .. col0 + 4j + 3]  (four columns of one row of B)
var<workgroup> b_tile: array<vec4<f32>, 256>;
