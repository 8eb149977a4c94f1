// Depthwise conv2d (groups = Cin) with channel multiplier `mult` = Cout / Cin.
// (concatenated in front: dtype_f32.wgsl or dtype_f16.wgsl, the storage type `elem` of
// input, weight, bias and out, arithmetic in f32; and activation.wgsl: ACT and activate().)
//
// input:  [N, Cin, H, W] (X_NHWC: stored [N, H, W, Cin], channels-last)
// weight: [Cin·mult, 1, kh, kw]; output channel co reads input channel co / mult
// bias:   [Cin·mult] (read only when HAS_BIAS)
// out:    [N, Cin·mult, Ho, Wo] (Y_NHWC: stored [N, Ho, Wo, Cin·mult])
//
// One workgroup works on one output plane (n, co): workgroup w of the folded grid is plane
// w / tiles and tile w % tiles of that plane. Each invocation computes four horizontally
// adjacent outputs (oy, 4q .. 4q + 3) in one vec4; the 64 invocations of a tile take the
// items (oy, q) = t·64 + lid in row-major order.
//
// KH, KW, SW and DW specialise the kernel size, the horizontal stride and dilation (0 = read
// them from `params` at run time). Specialised, the tap loops have constant trip counts and
// unroll, and then:
// - each input row is read once into `win` (the 4·sw + (kw − 1)·dw window the four outputs
//   share) and every tap reuses it: for 3x3, stride 1, six loads instead of twelve a row;
// - the weights, whose index depends only on the workgroup (the plane), load once per
//   workgroup SIMD group instead of lane by lane on software rasterisers such as llvmpipe,
//   where any load inside a loop or a branch runs lane by lane.
// No early return and no branch around the loads: out-of-range items read a clamped index
// and only the stores are masked. Padding contributes 0·w (not skipped), so non-finite
// weights propagate exactly as in the reference.

override HAS_BIAS: bool = false;
override KH: u32 = 0u;
override KW: u32 = 0u;
override SW: u32 = 0u;
override DW: u32 = 0u;
override X_NHWC: bool = false;
override Y_NHWC: bool = false;

struct DepthwiseParams {
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
    quads: u32,
    planes: u32,
    tiles: u32,
    alpha_bits: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: DepthwiseParams;
@group(0) @binding(1) var<storage, read> input: array<elem>;
@group(0) @binding(2) var<storage, read> weight: array<elem>;
@group(0) @binding(3) var<storage, read> bias: array<elem>;
@group(0) @binding(4) var<storage, read_write> out: array<elem>;

const WG: u32 = 64u;
// Longest window `win` holds: 4 outputs at stride sw with a kw-tap kernel dilated by dw
// spans 3·sw + (kw − 1)·dw + 1 inputs. Longer windows run unspecialised.
const WIN_MAX: u32 = 32u;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let kh = select(params.kh, KH, KH != 0u);
    let kw = select(params.kw, KW, KW != 0u);
    let sw = select(params.stride_w, SW, SW != 0u);
    let dw = select(params.dil_w, DW, DW != 0u);

    let wg = wid.x + nwg.x * (wid.y + nwg.y * wid.z);
    let live_plane = wg < params.planes * params.tiles;
    let plane = min(wg / params.tiles, params.planes - 1u);
    let tile = wg - (wg / params.tiles) * params.tiles;
    let co = plane % params.c_out;
    let n = plane / params.c_out;
    let ci = co / params.mult;

    let item = tile * WG + lid;
    let live = live_plane && item < params.h_out * params.quads;
    let q = item % params.quads;
    let oy = min(item / params.quads, params.h_out - 1u);

    // the plane's first element, and the steps between its pixels (along x) and rows
    let hw = params.h * params.w;
    let px = select(1u, params.c_in, X_NHWC);
    let src = n * params.c_in * hw + ci * select(hw, 1u, X_NHWC);
    let last = src + (hw - 1u) * px;
    let row_step = params.w * px;
    let x0 = i32(4u * q * sw) - i32(params.pad_left);
    let wbase = co * kh * kw;
    let win_len = 3u * sw + (kw - 1u) * dw + 1u;
    var acc = vec4<f32>(0.0);
    for (var i = 0u; i < kh; i++) {
        let iy = i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top);
        let row_ok = iy >= 0 && iy < i32(params.h);
        let row = src + u32(clamp(iy, 0, i32(params.h) - 1)) * row_step;
        if (KW != 0u && SW != 0u && DW != 0u && win_len <= WIN_MAX) {
            // The row's window, each input read once.
            var win: array<f32, WIN_MAX>;
            for (var t = 0u; t < win_len; t++) {
                let ix = x0 + i32(t);
                let ok = row_ok && ix >= 0 && ix < i32(params.w);
                win[t] = select(0.0, f32(input[min(row + u32(max(ix, 0)) * px, last)]), ok);
            }
            for (var j = 0u; j < kw; j++) {
                let wv = f32(weight[wbase + i * kw + j]);
                let t = j * dw;
                acc += wv * vec4<f32>(win[t], win[t + sw], win[t + 2u * sw], win[t + 3u * sw]);
            }
        } else {
            for (var j = 0u; j < kw; j++) {
                let wv = f32(weight[wbase + i * kw + j]);
                var xv = vec4<f32>(0.0);
                for (var e = 0u; e < 4u; e++) {
                    let ix = x0 + i32(j * dw + e * sw);
                    let ok = row_ok && ix >= 0 && ix < i32(params.w);
                    xv[e] = select(0.0, f32(input[min(row + u32(max(ix, 0)) * px, last)]), ok);
                }
                acc += wv * xv;
            }
        }
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = f32(bias[co]);
    }
    let alpha = bitcast<f32>(params.alpha_bits);
    let hw_out = params.h_out * params.w_out;
    let out_px = select(1u, params.c_out, Y_NHWC);
    let dst = n * params.c_out * hw_out + co * select(hw_out, 1u, Y_NHWC) + oy * params.w_out * out_px;
    for (var e = 0u; e < 4u; e++) {
        if (live && 4u * q + e < params.w_out) {
            out[dst + (4u * q + e) * out_px] = elem(activate(acc[e] + add, alpha));
        }
    }
}
