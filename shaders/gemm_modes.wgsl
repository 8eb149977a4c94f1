// The GEMM's operand modes: the values of its B_MODE and A_MODE overrides. Their Rust twins
// are `ops::gemm::BMode` and `AMode`; tests/shaders.rs checks that both sides agree.

// B_MODE: where the [groups, K, N] operand B comes from (gemm.wgsl's header explains each).
const B_DENSE: u32 = 0u;
const B_IMPLICIT: u32 = 1u;
const B_POINTWISE: u32 = 2u;
const B_TAPS: u32 = 3u;
const B_DEFORM: u32 = 4u;
const B_DEPTHWISE: u32 = 5u;
const B_TRANSPOSED: u32 = 6u;
const B_COLUMNS_T: u32 = 7u;

// A_MODE: how the operand A is read.
const A_ROW_MAJOR: u32 = 0u;
const A_TRANSPOSED: u32 = 1u;
const A_OUTPUT_GRAD: u32 = 2u;
const A_PHASE_TAPS: u32 = 3u;
const A_TAP_MAJOR: u32 = 4u;

// TILE_SHAPE of the 16x16 entry points (Rust: `context::TileShape`).
const TILE_SQUARE: u32 = 0u;
const TILE_WIDE: u32 = 1u;
const TILE_TALL: u32 = 2u;
