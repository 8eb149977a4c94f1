// main: 64×64 tiles, 16×16 invocations, a 4×4 block each in four named vec4 accumulators
// (see gemm.wgsl's header).

@compute @workgroup_size(16, 16, 1)
fn main(
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

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let m0 = row0 + 4u * lid.y;
    let n0 = col0 + 4u * lid.x;

    // Loader roles: for A, column k = li % 16 of rows 4·(li / 16)..+3; for B, row li / 16
    // and the four columns 4·(li % 16)..+3.
    let a_k = li % BK;
    let a_i = li / BK;
    let b_k = li / 16u;
    let b_j = li % 16u;
    let cols = columns(ph, col0 + 4u * b_j);

    let k_end = ks.y;
    for (var kt = ks.x / BK; kt * BK < k_end; kt++) {
        let k0 = kt * BK;
        a_tile[a_k * 16u + a_i] = load_a4(ph, row0, a_i, k0 + a_k);
        b_tile[b_k * 16u + b_j] = load_b(ph, cols, k0 + b_k, col0 + 4u * b_j);
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

    store_row(ph, m0, n0, acc0);
    store_row(ph, m0 + 1u, n0, acc1);
    store_row(ph, m0 + 2u, n0, acc2);
    store_row(ph, m0 + 3u, n0, acc3);
}
