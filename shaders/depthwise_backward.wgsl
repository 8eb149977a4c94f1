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
//              (0 outside the image). One workgroup per output channel co: 64 invocations
//              sum strided shares of the pixels for every tap in a fixed order, then a tree
//              reduction per tap in workgroup memory.

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
    // Along each axis, tap i reaches output row oy when iy + pt − i·dh = oy·sh. Write
    // ty = iy + pt − i·dh as q·sh + r (0 ≤ r < sh): the tap counts when r = 0 and
    // 0 ≤ q < Ho. Stepping i subtracts dh = dq·sh + dr from ty, so (q, r) follow with no
    // division per tap (a division per tap per element made this kernel ~10× the forward).
    let dqy = i32(params.dil_h / params.stride_h);
    let dry = i32(params.dil_h % params.stride_h);
    let dqx = i32(params.dil_w / params.stride_w);
    let drx = i32(params.dil_w % params.stride_w);
    let qy0 = i32((iy + params.pad_top) / params.stride_h);
    let ry0 = i32((iy + params.pad_top) % params.stride_h);
    let qx0 = i32((ix + params.pad_left) / params.stride_w);
    let rx0 = i32((ix + params.pad_left) % params.stride_w);
    var acc = 0.0;
    for (var m = 0u; m < params.mult; m++) {
        let co = ci * params.mult + m;
        let plane = (n * params.c_out + co) * params.h_out * params.w_out;
        var qy = qy0;
        var ry = ry0;
        for (var i = 0u; i < params.kh; i++) {
            let row_ok = ry == 0 && qy >= 0 && qy < i32(params.h_out);
            var qx = qx0;
            var rx = rx0;
            for (var j = 0u; j < params.kw; j++) {
                if (row_ok && rx == 0 && qx >= 0 && qx < i32(params.w_out)) {
                    let o = plane + u32(qy) * params.w_out + u32(qx);
                    acc += f32(w[co * taps + i * params.kw + j]) * f32(dy[o]);
                }
                qx -= dqx;
                rx -= drx;
                if (rx < 0) {
                    rx += i32(params.stride_w);
                    qx -= 1;
                }
            }
            qy -= dqy;
            ry -= dry;
            if (ry < 0) {
                ry += i32(params.stride_h);
                qy -= 1;
            }
        }
    }
    grad[idx] = elem(acc);
}

// grad_weight's workgroup: 64 invocations (on llvmpipe every barrier switches between the
// workgroup's SIMD groups, so fewer invocations mean cheaper barriers); taps in chunks of
// TAPS_MAX, each invocation holding one partial sum per tap of the chunk.
const WGW: u32 = 64u;
const TAPS_MAX: u32 = 25u;
// wpart[t·64 + lid]: invocation lid's partial sum of tap t0 + t
var<workgroup> wpart: array<f32, 1600>;

@compute @workgroup_size(64, 1, 1)
fn grad_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One workgroup per output channel co (total = Cout): each pixel's dy is read once for
    // all the channel's taps, each tap's input once.
    let co = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    if (co >= params.total) {
        return;
    }
    let taps = params.kh * params.kw;
    let ci = co / params.mult;
    let hw_out = params.h_out * params.w_out;
    let count = params.n * hw_out;
    for (var t0 = 0u; t0 < taps; t0 += TAPS_MAX) {
        let nt = min(TAPS_MAX, taps - t0);
        var acc: array<f32, TAPS_MAX>;
        for (var p = lid; p < count; p += WGW) {
            let n = p / hw_out;
            let q = p - n * hw_out;
            let oy = q / params.w_out;
            let ox = q - oy * params.w_out;
            let d = f32(dy[(n * params.c_out + co) * hw_out + q]);
            let plane = (n * params.c_in + ci) * params.h;
            let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
            let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
            // tap t0 + t = (i, j), stepped without a division per tap
            var i = t0 / params.kw;
            var j = t0 - i * params.kw;
            for (var t = 0u; t < nt; t++) {
                let iy = y0 + i32(i * params.dil_h);
                let ix = x0 + i32(j * params.dil_w);
                if (iy >= 0 && iy < i32(params.h) && ix >= 0 && ix < i32(params.w)) {
                    acc[t] += d * f32(x[(plane + u32(iy)) * params.w + u32(ix)]);
                }
                j += 1u;
                if (j == params.kw) {
                    j = 0u;
                    i += 1u;
                }
            }
        }
        for (var t = 0u; t < nt; t++) {
            wpart[t * WGW + lid] = acc[t];
        }
        workgroupBarrier();
        for (var stride = WGW / 2u; stride > 0u; stride = stride / 2u) {
            if (lid < stride) {
                for (var t = 0u; t < nt; t++) {
                    wpart[t * WGW + lid] += wpart[t * WGW + lid + stride];
                }
            }
            workgroupBarrier();
        }
        if (lid == 0u) {
            for (var t = 0u; t < nt; t++) {
                grad[co * taps + t0 + t] = elem(wpart[t * WGW]);
            }
        }
        // the next chunk reuses wpart
        workgroupBarrier();
    }
}
