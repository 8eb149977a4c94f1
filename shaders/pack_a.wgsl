// A GEMM's A operand (A_ROW_MAJOR [groups·M, K] or A_TRANSPOSED [groups, K, M], f32) packed into uniform windows, one
// per K pass, for the flat GEMM's A reads (gemm_a_window.wgsl): window w is 16384 f32 (64 KiB,
// the most a uniform binding holds) at w·16384, its element row·width + s the row's A column
// at step w·width + s of the GEMM's K walk (0 past K). The implicit conv
// walks K tap-major (gemm_flat.wgsl: step t·channels + cl reads column cl·taps + t); the
// other loaders step through A's columns in order.
//
// a:       [rows, k] f32 (order 0 and 1), or [rows / m, k, m] (order 2: A_TRANSPOSED)
// windows: [windows, 16384] f32

struct PackAParams {
    rows: u32,
    k: u32,
    width: u32,
    windows: u32,
    // 0: A's columns in order; 1: the tap-major walk of the implicit conv (channels, taps:
    // Cin/G and kh·kw); 2: A stored transposed, M rows per group
    order: u32,
    channels: u32,
    taps: u32,
    m: u32,
}

@group(0) @binding(0) var<uniform> params: PackAParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> windows: array<f32>;

const WINDOW: u32 = 16384u;

// Each invocation packs every (groups of workgroups · 64)-th element of the windows' used
// parts (rows × width each; the rest of a window is never read), so the grid stays small.
@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let used = params.rows * params.width;
    let total = params.windows * used;
    let stride = nwg.x * nwg.y * nwg.z * 64u;
    for (var i = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid; i < total; i += stride) {
        let w = i / used;
        let e = i - w * used;
        let row = e / params.width;
        let step = w * params.width + (e - row * params.width);
        var v = 0.0;
        if (step < params.k) {
            if (params.order == 2u) {
                let g = row / params.m;
                v = a[(g * params.k + step) * params.m + row - g * params.m];
            } else {
                var col = step;
                if (params.order == 1u) {
                    let t = step / params.channels;
                    col = (step - t * params.channels) * params.taps + t;
                }
                v = a[row * params.k + col];
            }
        }
        windows[w * WINDOW + e] = v;
    }
}
