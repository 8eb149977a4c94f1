// The sums of a GEMM whose K ran in slices side by side (gemm.wgsl's GemmDims.slices, a
// split K): slice s left its partial sum of C's element i at parts[s·len + i]; this adds the
// slices in order s = 0, 1, … (so the result is the same run to run) into out[i].
// (dtype_f32.wgsl or dtype_f16.wgsl in front: out holds `elem`; the sums run in f32.)
//
// parts: [slots, len] f32
// out:   [len]

struct SlotParams {
    len: u32,
    slots: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: SlotParams;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 64u + lid;
    if (i >= params.len) {
        return;
    }
    var acc = 0.0;
    for (var s = 0u; s < params.slots; s++) {
        acc += parts[s * params.len + i];
    }
    out[i] = elem(acc);
}
