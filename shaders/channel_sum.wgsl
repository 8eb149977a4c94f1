// Per-channel sum of an NCHW tensor (conv2d grad_bias: db[c] = Σ_{n, y, x} dY[n, c, y, x]).
//
// x:   [N, C, hw]
// out: [C]
// (dtype_f32.wgsl or dtype_f16.wgsl in front: x and out hold `elem`; the sums run in f32.)
// One workgroup per channel (grid folded into y/z): each of its 64 invocations sums a
// strided share of the N·hw values in a fixed order, then one invocation adds the 64 partial
// sums pairwise in a fixed order too, so the result is bit-identical run to run.
// 64 rather than 256: on llvmpipe each barrier switches between all of a workgroup's SIMD
// groups, and the reduction's barriers cost more than the sums themselves (see BENCHMARKS.md).

struct SumParams {
    channels: u32,
    hw: u32,
    n: u32,
    _pad0: u32,
}

// The elements begin .. min(end, N·hw) of each channel this dispatch sums. Some drivers stop
// every loop of an invocation after 65535 iterations in total (Mesa ≤ 22's llvmpipe), so the
// host splits channels of many elements into passes of bounded loop turns: each adds its sum
// onto the running sum in `part`, and the last writes `out`.
struct Pass {
    begin: u32,
    end: u32,
    last: u32,
    // gemm.wgsl's A window width (unused here)
    a_width: u32,
}

@group(0) @binding(0) var<uniform> params: SumParams;
@group(0) @binding(1) var<storage, read> x: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;
@group(0) @binding(3) var<uniform> range: Pass;
// the running sum of each channel between passes (f32; unused with one pass)
@group(0) @binding(4) var<storage, read_write> part: array<f32>;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (c >= params.channels) {
        return;
    }
    var acc = 0.0;
    let e_end = min(range.end, params.n * params.hw);
    // element e = (img, q) in mixed radix (N, hw); each turn adds WG = (img_step, q_step)
    // with a carry (no division per element)
    let start = range.begin + lid;
    var img = start / params.hw;
    var q = start - img * params.hw;
    let q_step = WG % params.hw;
    let img_step = WG / params.hw;
    for (var e = start; e < e_end; e += WG) {
        acc += f32(x[(img * params.channels + c) * params.hw + q]);
        q += q_step;
        let wrap = q >= params.hw;
        q = select(q, q - params.hw, wrap);
        img += img_step + select(0u, 1u, wrap);
    }
    partial[lid] = acc;
    workgroupBarrier();
    if (lid == 0u) {
        // the 64 partial sums pairwise, as a tree (halves folded onto halves, in place), by
        // one invocation: one barrier where a tree across the invocations takes seven (see
        // the header)
        for (var half = WG / 2u; half > 0u; half = half / 2u) {
            for (var i = 0u; i < half; i++) {
                partial[i] += partial[i + half];
            }
        }
        var sum = partial[0];
        if (range.begin > 0u) {
            sum = part[c] + sum;
        }
        if (range.last != 0u) {
            out[c] = elem(sum);
        } else {
            part[c] = sum;
        }
    }
}
