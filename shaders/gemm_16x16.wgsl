// main_16x16: 128×128, 64×256 or 256×64 tiles (TILE_SHAPE), 8×8 invocations of 16×16
// blocks, K through workgroup memory (see gemm.wgsl's header).

// a_tile16[k·BM/4 + i] = A[row0 + 4i .. row0 + 4i + 3][k0 + k]
var<workgroup> a_tile16: array<vec4<f32>, 512>;
// b_tile16[k·BN/4 + j] = B[k0 + k][col0 + 4j .. col0 + 4j + 3]
var<workgroup> b_tile16: array<vec4<f32>, 512>;


@compute @workgroup_size(64, 1, 1)
fn main_16x16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let nx = wg_x();
    let lx = li % nx;
    let ly = li / nx;
    let bm = 16u * (64u / nx);
    let bn = 16u * nx;
    let bk = bk16();
    // vec4 slots per row of k in each tile
    let aq = bm / 4u;
    let bq = bn / 4u;
    let tile = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let o = tile_origin(tile, bm, bn);
    let ks = k_slice(tile, bm, bn);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x, ks.z);
    let row0 = o.y;
    let col0 = o.z;

    // acc<t><u>: rows 16·ly + 4t .. + 3 (one per matrix column), columns 16·lx + 4u .. + 3
    // (the four components).
    var acc00 = mat4x4<f32>();
    var acc01 = mat4x4<f32>();
    var acc02 = mat4x4<f32>();
    var acc03 = mat4x4<f32>();
    var acc10 = mat4x4<f32>();
    var acc11 = mat4x4<f32>();
    var acc12 = mat4x4<f32>();
    var acc13 = mat4x4<f32>();
    var acc20 = mat4x4<f32>();
    var acc21 = mat4x4<f32>();
    var acc22 = mat4x4<f32>();
    var acc23 = mat4x4<f32>();
    var acc30 = mat4x4<f32>();
    var acc31 = mat4x4<f32>();
    var acc32 = mat4x4<f32>();
    var acc33 = mat4x4<f32>();
    let m0 = row0 + 16u * ly;
    let n0 = col0 + 16u * lx;

    // Loader roles (64 invocations fill the bk·aq and bk·bq slots of the tiles): for A,
    // column k = li % bk of row quads li / bk + (64 / bk)·e; for B, rows li / bq + (64 / bq)·e
    // and the four columns 4·(li % bq) .. + 3, the same for every e (one column precompute
    // serves them all).
    let a_k = li % bk;
    let b_j = li % bq;
    let cols = columns(ph, col0 + 4u * b_j);
    let a_loads = bk * aq / 64u;
    let b_loads = bk * bq / 64u;

    let k_end = ks.y;
    for (var kt = ks.x / bk; kt * bk < k_end; kt++) {
        let k0 = kt * bk;
        for (var e = 0u; e < a_loads; e++) {
            let a_slot = li / bk + (64u / bk) * e;
            a_tile16[a_k * aq + a_slot] = load_a4(ph, row0, a_slot, k0 + a_k);
        }
        for (var e = 0u; e < b_loads; e++) {
            let b_row = li / bq + (64u / bq) * e;
            b_tile16[b_row * bq + b_j] = load_b(ph, cols, k0 + b_row, col0 + 4u * b_j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < bk; kk++) {
            let a = kk * aq + 4u * ly;
            let b = kk * bq + 4u * lx;
            let x0 = a_tile16[a];
            let x1 = a_tile16[a + 1u];
            let x2 = a_tile16[a + 2u];
            let x3 = a_tile16[a + 3u];
            let y0 = b_tile16[b];
            let y1 = b_tile16[b + 1u];
            let y2 = b_tile16[b + 2u];
            let y3 = b_tile16[b + 3u];
            acc00 += outer4(x0, y0);
            acc01 += outer4(x0, y1);
            acc02 += outer4(x0, y2);
            acc03 += outer4(x0, y3);
            acc10 += outer4(x1, y0);
            acc11 += outer4(x1, y1);
            acc12 += outer4(x1, y2);
            acc13 += outer4(x1, y3);
            acc20 += outer4(x2, y0);
            acc21 += outer4(x2, y1);
            acc22 += outer4(x2, y2);
            acc23 += outer4(x2, y3);
            acc30 += outer4(x3, y0);
            acc31 += outer4(x3, y1);
            acc32 += outer4(x3, y2);
            acc33 += outer4(x3, y3);
        }
        workgroupBarrier();
    }

    store16(ph, m0, n0, array<mat4x4<f32>, 16>(acc00, acc01, acc02, acc03, acc10, acc11, acc12, acc13,
                                                acc20, acc21, acc22, acc23, acc30, acc31, acc32, acc33));
}
