// Backward of a depthwise conv2d (groups = Cin, channel multiplier `mult`), two entry points.
// (dtype_f32.wgsl or dtype_f16.wgsl in front: x, w, dy and grad hold `elem`; sums in f32.)
// Both are gathers or fixed-order reductions: every result is written by one invocation or
// one workgroup, so it is bit-identical run to run.
//
// x:  [N, Cin, H, W]            the conv's input
// w:  [Cin·mult, 1, kh, kw]     the conv's weight; output channel co reads input channel co / mult
// dy: [N, Cin·mult, Ho, Wo]     gradient with respect to the conv's output
//
// grad_input:  dx[n, ci, iy, ix] = Σ_{m, i, j} w[ci·mult + m, i, j] · dy[n, ci·mult + m, oy, ox]
//              over the taps with iy = oy·sh − pt + i·dh and ix = ox·sw − pl + j·dw.
//              One invocation per element of dx.
// grad_weight: dw[co, i, j] = Σ_{n, oy, ox} dy[n, co, oy, ox] · x[n, co / mult, oy·sh − pt + i·dh, ...]
//              (0 outside the image). One workgroup per (co, tap): 256 invocations sum strided
//              shares in a fixed order, then a tree reduction in workgroup memory.

struct DwBackParams {
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    dil_h: u32,
    dil_w: u32,
    pad_top: u32,
    pad_left: u32,
    h_out: u32,
    w_out: u32,
    mult: u32,
    n: u32,
    total: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: DwBackParams;
@group(0) @binding(1) var<storage, read> x: array<elem>;
@group(0) @binding(2) var<storage, read> w: array<elem>;
@group(0) @binding(3) var<storage, read> dy: array<elem>;
@group(0) @binding(4) var<storage, read_write> grad: array<elem>;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn grad_input(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
    if (idx >= params.total) {
        return;
    }
    let ix = idx % params.w;
    var rest = idx / params.w;
    let iy = rest % params.h;
    rest = rest / params.h;
    let ci = rest % params.c_in;
    let n = rest / params.c_in;
    let taps = params.kh * params.kw;
    var acc = 0.0;
    for (var m = 0u; m < params.mult; m++) {
        let co = ci * params.mult + m;
        let plane = (n * params.c_out + co) * params.h_out * params.w_out;
        for (var i = 0u; i < params.kh; i++) {
            let ty = i32(iy + params.pad_top) - i32(i * params.dil_h);
            if (ty < 0 || ty % i32(params.stride_h) != 0) {
                continue;
            }
            let oy = u32(ty) / params.stride_h;
            if (oy >= params.h_out) {
                continue;
            }
            for (var j = 0u; j < params.kw; j++) {
                let tx = i32(ix + params.pad_left) - i32(j * params.dil_w);
                if (tx < 0 || tx % i32(params.stride_w) != 0) {
                    continue;
                }
                let ox = u32(tx) / params.stride_w;
                if (ox >= params.w_out) {
                    continue;
                }
                acc += f32(w[co * taps + i * params.kw + j]) * f32(dy[plane + oy * params.w_out + ox]);
            }
        }
    }
    grad[idx] = elem(acc);
}

@compute @workgroup_size(256, 1, 1)
fn grad_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup per weight element (co, i, j); total = Cout·kh·kw.
    let e = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (e >= params.total) {
        return;
    }
    let taps = params.kh * params.kw;
    let co = e / taps;
    let tap = e - co * taps;
    let i = tap / params.kw;
    let j = tap - i * params.kw;
    let ci = co / params.mult;
    let hw_out = params.h_out * params.w_out;
    let count = params.n * hw_out;
    var acc = 0.0;
    for (var p = lid; p < count; p += WG) {
        let n = p / hw_out;
        let q = p - n * hw_out;
        let oy = q / params.w_out;
        let ox = q - oy * params.w_out;
        let iy = i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top);
        let ix = i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left);
        if (iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w)) {
            let xv = f32(x[((n * params.c_in + ci) * params.h + u32(iy)) * params.w + u32(ix)]);
            acc += f32(dy[(n * params.c_out + co) * hw_out + q]) * xv;
        }
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
        grad[e] = elem(partial[0]);
    }
}
