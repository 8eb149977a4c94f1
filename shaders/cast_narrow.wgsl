// Narrows an f32 tensor into an f16 one, element for element (rounded as every f16 store of
// the engine is): the results of the ops whose kernels are f32 only, stored as f16
// (`ops::widen`). One rounding of each result, as the f16 kernels' own stores.
enable f16;

struct CastParams {
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: CastParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + lid;
    if (idx < params.count) {
        dst[idx] = f16(src[idx]);
    }
}
