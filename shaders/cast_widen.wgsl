// Widens an f16 tensor into an f32 one, element for element (exact: every f16 is an f32):
// how the ops whose kernels are f32 only take f16 storage (`ops::widen`).
enable f16;

struct CastParams {
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: CastParams;
@group(0) @binding(1) var<storage, read> src: array<f16>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * 256u + lid;
    if (idx < params.count) {
        dst[idx] = f32(src[idx]);
    }
}
