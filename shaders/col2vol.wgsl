// col2vol: a conv3d's input gradient from its column gradients, a gather (one invocation per
// input voxel of a chunk of images, each written once: bit-identical run to run). It is
// conv3d_backward's grad_input and conv_transpose3d's output (+ bias, activation), the
// transposed conv being the input gradient of the conv3d with its weight.
//
// col:  [images of the chunk, Cin·kd·kh·kw, Do·Ho·Wo], row ((ci·kd + a)·kh + i)·kw + j: the
//       column gradients Wᵀ·dY (vol2col.wgsl's rows).
// grad: [N, Cin, D, H, W]; this launch writes images img0 ...
// grad[n, ci, z, y, x] = act(bias[ci] + Σ over the padded positions qz that read z (z itself
// under zeros padding; PAD_MODE's fold otherwise) and the taps a with qz + pf − a·dd = oz·sd
// (0 ≤ oz < Do), likewise y and x, of col[n − img0, row(ci, a, i, j), (oz·Ho + oy)·Wo + ox]),
// in that order.
// Per axis and padded position, only the taps that land are visited (transposed_taps.wgsl:
// from the first, every step-th, the output position stepped down), no division per tap.
// (activation.wgsl, pad_mode.wgsl, vol_window.wgsl and transposed_taps.wgsl in front: ACT and
// activate(), PAD_MODE and the fold, the uniform block, tap_step() and first_tap(); col0 is
// img0 here, total the chunk's input voxels, alpha_bits the activation's parameter.)

override HAS_BIAS: bool = false;

@group(0) @binding(0) var<uniform> params: Vol2colParams;
@group(0) @binding(1) var<storage, read> col: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;

const WG: u32 = 256u;

// The output position of the first landing tap a0 (o·s = t − a0·d with t = the padded
// position + its leading pad ≥ 0), or −1 where none lands or it is before the output.
fn first_source(t: i32, a0: u32, s: u32, d: u32) -> i32 {
    let r = t - i32(a0 * d);
    // (divided unsigned: a signed / of a negative value is undefined in GLSL)
    return select(-1, i32(u32(max(r, 0)) / s), r >= 0);
}

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
    let x = idx % params.w;
    var rest = idx / params.w;
    let y = rest % params.h;
    rest = rest / params.h;
    let z = rest % params.d;
    rest = rest / params.d;
    let ci = rest % params.c_in;
    let n_local = rest / params.c_in;
    let taps = params.kd * params.kh * params.kw;
    let voxels = params.d_out * params.h_out * params.w_out;
    let row0 = (n_local * params.c_in + ci) * taps;
    // Each axis walks the padded positions that read this voxel (pad_mode.wgsl: the voxel
    // itself for zeros), and for each, the taps that reach it from an output.
    let iz = i32(z);
    let iy = i32(y);
    let ix = i32(x);
    let dd = i32(params.d);
    let hh = i32(params.h);
    let ww = i32(params.w);
    let pf = i32(params.pad_front);
    let pt = i32(params.pad_top);
    let pl = i32(params.pad_left);
    let pk = i32(params.pad_back);
    let pb = i32(params.pad_bottom);
    let pr = i32(params.pad_right);
    // per axis: the landing taps' period and the output step between two of them
    let step_d = tap_step(params.stride_d, params.dil_d);
    let step_h = tap_step(params.stride_h, params.dil_h);
    let step_w = tap_step(params.stride_w, params.dil_w);
    let down_d = i32(params.dil_d * step_d / params.stride_d);
    let down_h = i32(params.dil_h * step_h / params.stride_h);
    let down_w = i32(params.dil_w * step_w / params.stride_w);
    var acc = 0.0;
    for (var kz = 0; kz < preimage_count(iz, dd, pf, pk); kz++) {
        let tz = preimage(iz, dd, pf, pk, kz) + pf;
        let a0 = first_tap(u32(tz), params.stride_d, params.dil_d, step_d, params.kd);
        var oz = first_source(tz, a0, params.stride_d, params.dil_d);
        for (var a = a0; a < params.kd && oz >= 0; a += step_d) {
            if (u32(oz) < params.d_out) {
                for (var ky = 0; ky < preimage_count(iy, hh, pt, pb); ky++) {
                    let ty = preimage(iy, hh, pt, pb, ky) + pt;
                    let i0 = first_tap(u32(ty), params.stride_h, params.dil_h, step_h, params.kh);
                    var oy = first_source(ty, i0, params.stride_h, params.dil_h);
                    for (var i = i0; i < params.kh && oy >= 0; i += step_h) {
                        if (u32(oy) < params.h_out) {
                            for (var kx = 0; kx < preimage_count(ix, ww, pl, pr); kx++) {
                                let tx = preimage(ix, ww, pl, pr, kx) + pl;
                                let j0 = first_tap(u32(tx), params.stride_w, params.dil_w, step_w, params.kw);
                                var ox = first_source(tx, j0, params.stride_w, params.dil_w);
                                for (var j = j0; j < params.kw && ox >= 0; j += step_w) {
                                    if (u32(ox) < params.w_out) {
                                        let at = (u32(oz) * params.h_out + u32(oy)) * params.w_out + u32(ox);
                                        acc += col[(row0 + (a * params.kh + i) * params.kw + j) * voxels + at];
                                    }
                                    ox -= down_w;
                                }
                            }
                        }
                        oy -= down_h;
                    }
                }
            }
            oz -= down_d;
        }
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = bias[ci];
    }
    let value = activate(acc + add, bitcast<f32>(params.alpha_bits));
    grad[params.col0 * params.c_in * params.d * params.h * params.w + idx] = value;
}
