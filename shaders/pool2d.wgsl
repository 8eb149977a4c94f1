// max_pool2d / avg_pool2d (PyTorch semantics, ceil_mode false, dilation 1), one invocation
// per output element.
// (concatenated in front: dtype_f32.wgsl or dtype_f16.wgsl, the storage type `elem` of input
// and out; the reduction runs in f32: max is exact either way, avg rounds once on the store.)
//
// input: [P, H, W] with P = N·C planes; out: [P, Ho, Wo].
// Window of (oy, ox): rows oy·sh − pt .. + kh − 1, columns ox·sw − pl .. + kw − 1.
// MODE 0 (max): maximum over the in-image positions (padding is −∞, never 0); a NaN in the
//               window gives NaN, as PyTorch.
// MODE 1 (avg): sum over the in-image positions divided by kh·kw (COUNT_PAD: the window
//               never leaves the padded input, so that is its size) or by the number of
//               in-image positions.

override MODE: u32 = 0u;
override COUNT_PAD: bool = true;

struct PoolParams {
    h: u32,
    w: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    h_out: u32,
    w_out: u32,
    total: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read_write> out: array<elem>;

const WG: u32 = 256u;

@compute @workgroup_size(256, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (idx >= params.total) {
        return;
    }
    let ox = idx % params.w_out;
    let rest = idx / params.w_out;
    let oy = rest % params.h_out;
    let plane = (rest / params.h_out) * params.h * params.w;
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
    var best = bitcast<f32>(0xff800000u); // −∞
    var sum = 0.0;
    var count = 0u;
    for (var i = 0u; i < params.kh; i++) {
        let y = y0 + i32(i);
        if (y < 0 || y >= i32(params.h)) {
            continue;
        }
        for (var j = 0u; j < params.kw; j++) {
            let x = x0 + i32(j);
            if (x < 0 || x >= i32(params.w)) {
                continue;
            }
            let v = f32(input[plane + u32(y) * params.w + u32(x)]);
            if (MODE == 0u) {
                // NaN is tested on the bits: WGSL lets compilers assume `v != v` is false.
                // Once NaN, best stays NaN (no comparison with it is true).
                if (v > best || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
                    best = v;
                }
            } else {
                sum += v;
                count += 1u;
            }
        }
    }
    if (MODE == 0u) {
        out[idx] = elem(best);
    } else {
        var divisor = f32(count);
        if (COUNT_PAD) {
            divisor = f32(params.kh * params.kw);
        }
        out[idx] = elem(sum / divisor);
    }
}
