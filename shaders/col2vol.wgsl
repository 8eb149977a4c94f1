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
// (activation.wgsl, pad_mode.wgsl and vol_window.wgsl in front: ACT and activate(),
// PAD_MODE and the fold, the uniform block; col0 is img0 here, total the chunk's input
// voxels, alpha_bits the activation's parameter.)

override HAS_BIAS: bool = false;

@group(0) @binding(0) var<uniform> params: Vol2colParams;
@group(0) @binding(1) var<storage, read> col: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;

const WG: u32 = 256u;

// The output position o with o·s = t (t = the input position + its leading pad − the tap's
// reach), or −1 where there is none.
fn source(t: i32, s: u32, len: u32) -> i32 {
    if (t < 0 || u32(t) % s != 0u) {
        return -1;
    }
    let o = u32(t) / s;
    return select(-1, i32(o), o < len);
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
    var acc = 0.0;
    for (var kz = 0; kz < preimage_count(iz, dd, pf, pk); kz++) {
        let qz = preimage(iz, dd, pf, pk, kz);
        for (var a = 0u; a < params.kd; a++) {
            let oz = source(qz + pf - i32(a * params.dil_d), params.stride_d, params.d_out);
            if (oz < 0) {
                continue;
            }
            for (var ky = 0; ky < preimage_count(iy, hh, pt, pb); ky++) {
                let qy = preimage(iy, hh, pt, pb, ky);
                for (var i = 0u; i < params.kh; i++) {
                    let oy = source(qy + pt - i32(i * params.dil_h), params.stride_h, params.h_out);
                    if (oy < 0) {
                        continue;
                    }
                    for (var kx = 0; kx < preimage_count(ix, ww, pl, pr); kx++) {
                        let qx = preimage(ix, ww, pl, pr, kx);
                        for (var j = 0u; j < params.kw; j++) {
                            let ox = source(qx + pl - i32(j * params.dil_w), params.stride_w, params.w_out);
                            if (ox < 0) {
                                continue;
                            }
                            let at = (u32(oz) * params.h_out + u32(oy)) * params.w_out + u32(ox);
                            acc += col[(row0 + (a * params.kh + i) * params.kw + j) * voxels + at];
                        }
                    }
                }
            }
        }
    }
    var add = 0.0;
    if (HAS_BIAS) {
        add = bias[ci];
    }
    let value = activate(acc + add, bitcast<f32>(params.alpha_bits));
    grad[params.col0 * params.c_in * params.d * params.h * params.w + idx] = value;
}
