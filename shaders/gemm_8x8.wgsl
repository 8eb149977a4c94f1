// main_8x8: 64×64 tiles, 8×8 invocations, an 8×8 block each (see gemm.wgsl's header).

@compute @workgroup_size(8, 8, 1)
fn main_8x8(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let o = tile_origin(tile, BM, BN);
    let ks = k_slice(tile, BM, BN);
    if (o.w == 0u) {
        return;
    }
    let ph = phase_of(o.x, ks.z);
    let row0 = o.y;
    let col0 = o.z;

    // acc<r><h>: row 8·lid.y + r, columns 8·lid.x + 4h .. + 3.
    var acc00 = vec4<f32>(0.0);
    var acc01 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0);
    var acc21 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0);
    var acc31 = vec4<f32>(0.0);
    var acc40 = vec4<f32>(0.0);
    var acc41 = vec4<f32>(0.0);
    var acc50 = vec4<f32>(0.0);
    var acc51 = vec4<f32>(0.0);
    var acc60 = vec4<f32>(0.0);
    var acc61 = vec4<f32>(0.0);
    var acc70 = vec4<f32>(0.0);
    var acc71 = vec4<f32>(0.0);
    let m0 = row0 + 8u * lid.y;
    let n0 = col0 + 8u * lid.x;

    // Loader roles (64 invocations fill 256 slots of each tile, four each): for A, column
    // k = li % 16 of row groups li / 16 + 4e; for B, rows li / 16 + 4e and the four columns
    // 4·(li % 16) .. + 3, the same for every e (so one column precompute serves all four).
    let a_k = li % BK;
    let b_j = li % 16u;
    let cols = columns(ph, col0 + 4u * b_j);

    let k_end = ks.y;
    for (var kt = ks.x / BK; kt * BK < k_end; kt++) {
        let k0 = kt * BK;
        for (var e = 0u; e < 4u; e++) {
            let slot = li / 16u + 4u * e;
            a_tile[a_k * 16u + slot] = load_a4(ph, row0, slot, k0 + a_k);
            b_tile[slot * 16u + b_j] = load_b(ph, cols, k0 + slot, col0 + 4u * b_j);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let x0 = a_tile[kk * 16u + 2u * lid.y];
            let x1 = a_tile[kk * 16u + 2u * lid.y + 1u];
            let y0 = b_tile[kk * 16u + 2u * lid.x];
            let y1 = b_tile[kk * 16u + 2u * lid.x + 1u];
            acc00 += x0.x * y0;
            acc01 += x0.x * y1;
            acc10 += x0.y * y0;
            acc11 += x0.y * y1;
            acc20 += x0.z * y0;
            acc21 += x0.z * y1;
            acc30 += x0.w * y0;
            acc31 += x0.w * y1;
            acc40 += x1.x * y0;
            acc41 += x1.x * y1;
            acc50 += x1.y * y0;
            acc51 += x1.y * y1;
            acc60 += x1.z * y0;
            acc61 += x1.z * y1;
            acc70 += x1.w * y0;
            acc71 += x1.w * y1;
        }
        workgroupBarrier();
    }

    store_row(ph, m0, n0, acc00);
    store_row(ph, m0, n0 + 4u, acc01);
    store_row(ph, m0 + 1u, n0, acc10);
    store_row(ph, m0 + 1u, n0 + 4u, acc11);
    store_row(ph, m0 + 2u, n0, acc20);
    store_row(ph, m0 + 2u, n0 + 4u, acc21);
    store_row(ph, m0 + 3u, n0, acc30);
    store_row(ph, m0 + 3u, n0 + 4u, acc31);
    store_row(ph, m0 + 4u, n0, acc40);
    store_row(ph, m0 + 4u, n0 + 4u, acc41);
    store_row(ph, m0 + 5u, n0, acc50);
    store_row(ph, m0 + 5u, n0 + 4u, acc51);
    store_row(ph, m0 + 6u, n0, acc60);
    store_row(ph, m0 + 6u, n0 + 4u, acc61);
    store_row(ph, m0 + 7u, n0, acc70);
    store_row(ph, m0 + 7u, n0 + 4u, acc71);
}
