// main_flat's A reads from a uniform window (instead of gemm_a_rows.wgsl's storage reads):
// on llvmpipe a storage load inside a loop runs lane by lane with a bounds test and a branch
// per lane, while a uniform load is one unrolled gather, ~3× cheaper per element (measured:
// BENCHMARKS.md). Uniform bindings hold at most 64 KiB, so A comes packed (pack_a.wgsl) into
// one window per K pass: window = [groups·M rows][a_width steps] f32, element
// (g·M + m)·a_width + (k − begin) is A's row g·M + m at the pass's step k (the column the walk
// reads at that step), whether A is stored A_ROW_MAJOR or A_TRANSPOSED.
@group(0) @binding(10) var<uniform> a_win: array<vec4<f32>, 4096>;

// Where rows r .. r + 3 start in the window. Rows past M read row M − 1 (never stored).
fn a_rows(ph: Phase, r: u32) -> vec4<u32> {
    let rows = min(vec4<u32>(r, r + 1u, r + 2u, r + 3u), vec4<u32>(params.dims.m - 1u));
    return (vec4<u32>(ph.gc * params.dims.m) + rows) * kpass.a_width;
}

// Step k of the pass (k − begin, a_at) of the four rows starting at `rows` (a_rows).
fn a_col(rows: vec4<u32>, s: u32) -> vec4<f32> {
    let i = rows + vec4<u32>(s);
    return vec4<f32>(a_win[i.x >> 2u][i.x & 3u], a_win[i.y >> 2u][i.y & 3u], a_win[i.z >> 2u][i.z & 3u],
                     a_win[i.w >> 2u][i.w & 3u]);
}

// Whether A comes from uniform windows.
const A_WINDOWED: bool = true;

// Where main_flat reads A at its step k: the window is packed in step order.
fn a_at(ka: u32, k: u32) -> u32 {
    return k - kpass.begin;
}
