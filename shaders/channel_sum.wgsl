// Per-channel sum of an NCHW tensor (conv2d grad_bias: db[c] = Σ_{n, y, x} dY[n, c, y, x]).
//
// x:   [N, C, hw]
// out: [C]
// (dtype_f32.wgsl or dtype_f16.wgsl in front: x and out hold `elem`; the sums run in f32.)
// One workgroup per channel (grid folded into y/z): each of its 256 invocations sums a
// strided share of the N·hw values in a fixed order, then a tree reduction in workgroup
// memory combines them in a fixed order too, so the result is bit-identical run to run.

struct SumParams {
    channels: u32,
    hw: u32,
    n: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: SumParams;
@group(0) @binding(1) var<storage, read> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (c >= params.channels) {
        return;
    }
    let count = params.n * params.hw;
    var acc = 0.0;
    for (var e = lid; e < count; e += WG) {
        let img = e / params.hw;
        let q = e - img * params.hw;
        acc += f32(x[(img * params.channels + c) * params.hw + q]);
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] += partial[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[c] = elem(partial[0]);
    }
}
