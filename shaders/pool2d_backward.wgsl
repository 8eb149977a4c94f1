// max_pool2d / avg_pool2d backward (PyTorch autograd; ceil_mode false, dilation 1), two entry
// points. (dtype_f32.wgsl or dtype_f16.wgsl in front: input, grad_output and grad_input hold
// `elem`; sums in f32.)
//
// input, grad_input: [P, H, W] with P = N·C planes; grad_output, index: [P, Ho, Wo].
// Window of (oy, ox): rows oy·sh − pt .. + kh − 1, columns ox·sw − pl .. + kw − 1.
//
// `argmax` (max pooling), one invocation per output: the flat in-plane index y·W + x of the
//   window's maximum, as PyTorch picks it: walking the window row by row, a value replaces
//   the running maximum when it is greater or NaN (so ties keep the first, NaNs the last);
//   starting from −∞ at the window's first in-image position. Long windows run in passes
//   (as pool2d.wgsl: `Pass`), the running maximum kept in `part` and its index in `index`.
// `gather`, one invocation per input element (p, y, x): the sum over the windows that
//   contain it, in row-major order of (oy, ox), of
//   MODE_MAX: grad_output[p, oy, ox] where index[p, oy, ox] is this element;
//   MODE_AVG: grad_output[p, oy, ox] / divisor, the divisor as the forward's (kh·kw, or the
//             window's in-image positions without COUNT_PAD).
//   Each element is written once, by one fixed-order sum: bit-identical run to run.

const MODE_MAX: u32 = 0u;
const MODE_AVG: u32 = 1u;

override MODE: u32 = MODE_MAX;
override COUNT_PAD: bool = true;

struct PoolBackParams {
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
    // invocations: outputs (argmax) or input elements (grad_input)
    total: u32,
    // argmax walks the window in units of (row, chunk of col_chunk columns): chunks per row
    col_chunk: u32,
    chunks: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Pass {
    begin: u32,
    end: u32,
    last: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: PoolBackParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read> grad_output: array<elem>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<elem>;
@group(0) @binding(4) var<storage, read_write> index: array<u32>;
@group(0) @binding(5) var<uniform> range: Pass;
// argmax's running maximum between passes (unused with one pass)
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

const WG: u32 = 256u;

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + nwg.x * (wid.y + nwg.y * wid.z)) * WG + lid;
}

@compute @workgroup_size(256, 1, 1)
fn argmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_id(wid, nwg, lid);
    if (idx >= params.total) {
        return;
    }
    let ox = idx % params.w_out;
    let rest = idx / params.w_out;
    let oy = rest % params.h_out;
    let plane = (rest / params.h_out) * params.h * params.w;
    let y0 = i32(oy * params.stride_h) - i32(params.pad_top);
    let x0 = i32(ox * params.stride_w) - i32(params.pad_left);
    // −∞ made at run time (Dawn refuses non-finite constant expressions)
    var neg_inf_bits = 0xff800000u;
    var best = bitcast<f32>(neg_inf_bits);
    var at = u32(max(y0, 0)) * params.w + u32(max(x0, 0));
    if (range.begin > 0u) {
        best = part[idx];
        at = index[idx];
    }
    let u_end = min(range.end, params.kh * params.chunks);
    for (var u = range.begin; u < u_end; u++) {
        let i = u / params.chunks;
        let y = y0 + i32(i);
        if (y < 0 || y >= i32(params.h)) {
            continue;
        }
        let j0 = (u - i * params.chunks) * params.col_chunk;
        let j1 = min(params.kw, j0 + params.col_chunk);
        for (var j = j0; j < j1; j++) {
            let x = x0 + i32(j);
            if (x < 0 || x >= i32(params.w)) {
                continue;
            }
            let q = u32(y) * params.w + u32(x);
            let v = f32(input[plane + q]);
            // NaN tested on the bits: WGSL lets compilers assume `v != v` is false
            if (v > best || (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) {
                best = v;
                at = q;
            }
        }
    }
    index[idx] = at;
    if (range.last == 0u) {
        part[idx] = best;
    }
}

@compute @workgroup_size(256, 1, 1)
fn gather(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = linear_id(wid, nwg, lid);
    if (idx >= params.total) {
        return;
    }
    let x = idx % params.w;
    let rest = idx / params.w;
    let y = rest % params.h;
    let p = rest / params.h;
    let me = y * params.w + x;
    // the windows holding (y, x): oy·sh ≤ y + pt ≤ oy·sh + kh − 1, likewise ox
    let ay = y + params.pad_top;
    let ax = x + params.pad_left;
    var oy0 = 0u;
    if (ay + 1u > params.kh) {
        oy0 = (ay + 1u - params.kh + params.stride_h - 1u) / params.stride_h;
    }
    var ox0 = 0u;
    if (ax + 1u > params.kw) {
        ox0 = (ax + 1u - params.kw + params.stride_w - 1u) / params.stride_w;
    }
    let oy1 = min(ay / params.stride_h + 1u, params.h_out);
    let ox1 = min(ax / params.stride_w + 1u, params.w_out);
    let out_plane = p * params.h_out * params.w_out;
    var sum = 0.0;
    for (var oy = oy0; oy < oy1; oy++) {
        for (var ox = ox0; ox < ox1; ox++) {
            let o = out_plane + oy * params.w_out + ox;
            if (MODE == MODE_MAX) {
                if (index[o] == me) {
                    sum += f32(grad_output[o]);
                }
            } else {
                var divisor = f32(params.kh * params.kw);
                if (!COUNT_PAD) {
                    let wy = i32(oy * params.stride_h) - i32(params.pad_top);
                    let wx = i32(ox * params.stride_w) - i32(params.pad_left);
                    let rows = min(i32(params.h), wy + i32(params.kh)) - max(0, wy);
                    let cols = min(i32(params.w), wx + i32(params.kw)) - max(0, wx);
                    divisor = f32(rows * cols);
                }
                sum += f32(grad_output[o]) / divisor;
            }
        }
    }
    grad_input[idx] = elem(sum);
}
