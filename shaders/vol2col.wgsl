// vol2col: im2col for conv3d. Unfolds a chunk of output voxels of an NCDHW input.
//
// input: [N, Cin, D, H, W]
// col:   [Cin·kd·kh·kw, cols], row ((ci·kd + a)·kh + i)·kw + j, column = output voxel
//        p = col0 + c of the flattened (n, oz, oy, ox).
// col[r, c] = input[n, ci, oz·sd − pf + a·dd, oy·sh − pt + i·dh, ox·sw − pl + j·dw]; in the
// padding, what PAD_MODE reads there (pad_mode.wgsl: 0, or the input reflected, replicated or
// wrapped). The dense tiled GEMM then multiplies the weight [Cout, Cin/G·kd·kh·kw] with it,
// exactly as for conv2d (the depth and height axes flattened into one).
// (pad_mode.wgsl and vol_window.wgsl in front: PAD_MODE, the uniform block.)


@group(0) @binding(0) var<uniform> params: Vol2colParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> col: array<f32>;

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
    let row = idx / params.cols;
    let c = idx - row * params.cols;
    let taps = params.kd * params.kh * params.kw;
    let ci = row / taps;
    var tap = row - ci * taps;
    let a = tap / (params.kh * params.kw);
    tap = tap - a * params.kh * params.kw;
    let i = tap / params.kw;
    let j = tap - i * params.kw;

    let p = params.col0 + c;
    let vox = params.d_out * params.h_out * params.w_out;
    let n = p / vox;
    var q = p - n * vox;
    let oz = q / (params.h_out * params.w_out);
    q = q - oz * params.h_out * params.w_out;
    let oy = q / params.w_out;
    let ox = q - oy * params.w_out;

    let iz = i32(oz * params.stride_d + a * params.dil_d) - i32(params.pad_front);
    let iy = i32(oy * params.stride_h + i * params.dil_h) - i32(params.pad_top);
    let ix = i32(ox * params.stride_w + j * params.dil_w) - i32(params.pad_left);
    let sz = pad_source(iz, i32(params.d));
    let sy = pad_source(iy, i32(params.h));
    let sx = pad_source(ix, i32(params.w));
    var v = 0.0;
    if (sz >= 0 && sy >= 0 && sx >= 0) {
        v = input[(((n * params.c_in + ci) * params.d + u32(sz)) * params.h + u32(sy)) * params.w + u32(sx)];
    }
    col[idx] = v;
}
