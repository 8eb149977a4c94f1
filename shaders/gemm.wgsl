// Batched tiled GEMM with the convolution write-out: C[g] = A[g] · B[g] (+ bias).
//
// a: [groups, M, K] row-major. The conv weight [Cout, Cin/G, kh, kw] is exactly this with
//    M = Cout/G, K = (Cin/G)·kh·kw.
// b: [groups, K, N] row-major (the im2col workspace of one chunk: N = its pixel count).
// bias: [groups·M] (read only when HAS_BIAS).
// c: column n of the chunk is output pixel p = col0 + n, image img = p / hw and pixel
//    q = p % hw; row m of group g is channel co = g·M + m; the value goes to
//    c[img·c_image_stride + co·hw + q]. An NCHW conv output has hw = Ho·Wo and
//    c_image_stride = Cout·Ho·Wo; a plain GEMM sets hw = N and col0 = 0.
//
// Each workgroup computes one 64×64 tile of C for one group; each of its 16×16 invocations
// a 4×4 block held in four named vec4 accumulators (llvmpipe and most drivers keep those in
// registers, where a private array would spill). K advances in slices of 16 through
// workgroup memory. Tiles are numbered (g, tile_m, tile_n) and the grid may be folded into
// y and z: linear id = x + nx·(y + ny·z).

override HAS_BIAS: bool = false;

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    groups: u32,
    tiles_m: u32,
    tiles_n: u32,
    total_tiles: u32,
    hw: u32,
    col0: u32,
    c_image_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// a_tile[k·16 + i] = A[row0 + 4i .. row0 + 4i + 3][k0 + k]  (four rows of one column of A)
var<workgroup> a_tile: array<vec4<f32>, 256>;
// b_tile[k·16 + j] = B[k0 + k][col0 + 4j .. col0 + 4j + 3]  (four columns of one row of B)
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn load_a(base: u32, row: u32, k: u32) -> f32 {
    if (row < params.m) {
        return a[base + row * params.k + k];
    }
    return 0.0;
}

fn store_row(g: u32, m: u32, n0: u32, v: vec4<f32>) {
    if (m >= params.m) {
        return;
    }
    let co = g * params.m + m;
    var add = 0.0;
    if (HAS_BIAS) {
        add = bias[co];
    }
    for (var e = 0u; e < 4u; e++) {
        let n = n0 + e;
        if (n < params.n) {
            let p = params.col0 + n;
            let img = p / params.hw;
            let q = p - img * params.hw;
            c[img * params.c_image_stride + co * params.hw + q] = v[e] + add;
        }
    }
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (tile >= params.total_tiles) {
        return;
    }
    let per_group = params.tiles_m * params.tiles_n;
    let g = tile / per_group;
    let t = tile - g * per_group;
    let row0 = (t / params.tiles_n) * BM;
    let col0 = (t % params.tiles_n) * BN;
    let a_base = g * params.m * params.k;
    let b_base = g * params.k * params.n;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    // Loader roles: for A, invocation li fetches column k = li % 16 of rows 4·(li / 16)..+3;
    // for B, row k = li / 16, columns 4·(li % 16)..+3 (contiguous in memory).
    let a_k = li % BK;
    let a_r = row0 + 4u * (li / BK);
    let b_k = li / 16u;
    let b_c = col0 + 4u * (li % 16u);

    let k_tiles = (params.k + BK - 1u) / BK;
    for (var kt = 0u; kt < k_tiles; kt++) {
        let k0 = kt * BK;

        var av = vec4<f32>(0.0);
        let ak = k0 + a_k;
        if (ak < params.k) {
            av = vec4<f32>(load_a(a_base, a_r, ak), load_a(a_base, a_r + 1u, ak),
                           load_a(a_base, a_r + 2u, ak), load_a(a_base, a_r + 3u, ak));
        }
        a_tile[a_k * 16u + li / BK] = av;

        var bv = vec4<f32>(0.0);
        let bk = k0 + b_k;
        if (bk < params.k) {
            let base = b_base + bk * params.n;
            if (b_c + 3u < params.n) {
                bv = vec4<f32>(b[base + b_c], b[base + b_c + 1u], b[base + b_c + 2u], b[base + b_c + 3u]);
            } else {
                for (var e = 0u; e < 4u; e++) {
                    if (b_c + e < params.n) {
                        bv[e] = b[base + b_c + e];
                    }
                }
            }
        }
        b_tile[b_k * 16u + li % 16u] = bv;

        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let x = a_tile[kk * 16u + lid.y];
            let y = b_tile[kk * 16u + lid.x];
            acc0 += x.x * y;
            acc1 += x.y * y;
            acc2 += x.z * y;
            acc3 += x.w * y;
        }
        workgroupBarrier();
    }

    let m0 = row0 + 4u * lid.y;
    let n0 = col0 + 4u * lid.x;
    store_row(g, m0, n0, acc0);
    store_row(g, m0 + 1u, n0, acc1);
    store_row(g, m0 + 2u, n0, acc2);
    store_row(g, m0 + 3u, n0, acc3);
}
