// deform_conv2d_backward (torchvision.ops.deform_conv2d's autograd): grad_offset and grad_mask
// over one chunk of images, from the column gradients cols = weightᵀ · grad_output (a GEMM
// run before, per weight group). grad_input is deform_grad_input.wgsl's.
//
// input:       [N, Cin, H, W]
// cols:        [images of the chunk, Ho·Wo, Cin·kh·kw]: pixel-major (each pixel's rows
//              ci·kh·kw + t together), the chunk's image img − img0
// grad_offset, grad_mask: shaped as offset and mask (deform_backward_common.wgsl).
//
// `sample`: one invocation per (image, offset group og, tap t, output pixel), which computes
// the sample position, the corners and their weights once and loops over the group's
// channels in order:
// - grad_offset (GRAD_OFFSET) = Σ_c m · ∂sample_c/∂(dy or dx) · cols[c, t, pixel], the
//   derivative of the bilinear sum taken over the four corners that lie in the image, as
//   torchvision's get_coordinate_weight (no sampling-box test there);
// - grad_mask (GRAD_MASK) = Σ_c cols[c, t, pixel] · sample_c(y, x) (0 outside the open box
//   (−1, H) × (−1, W), as the forward).
// Each result is one invocation's fixed-order sum: deterministic.

override GRAD_OFFSET: bool = false;
override GRAD_MASK: bool = false;

@group(0) @binding(0) var<uniform> params: DeformBackParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> offset: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> cols: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_offset: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_mask: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn sample(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = linear_id(wid, nwg, lid);
    if (id >= params.threads) {
        return;
    }
    let s = site_at(id);
    let y = s.y;
    let x = s.x;
    let yf = floor(y);
    let xf = floor(x);
    let ly = y - yf;
    let lx = x - xf;
    // the corners (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1): in the image, their
    // offset within a plane (valid where ok); false for non-finite positions (tested on the
    // bits first: drivers may assume finite floats)
    let fh = f32(params.h) - 1.0;
    let fw = f32(params.w) - 1.0;
    let real = finite(y) && finite(x);
    let in_y = vec2<bool>(real && yf >= 0.0 && yf <= fh, real && yf + 1.0 >= 0.0 && yf + 1.0 <= fh);
    let in_x = vec2<bool>(real && xf >= 0.0 && xf <= fw, real && xf + 1.0 >= 0.0 && xf + 1.0 <= fw);
    let ok = vec4<bool>(in_y.x && in_x.x, in_y.x && in_x.y, in_y.y && in_x.x, in_y.y && in_x.y);
    let y0 = select(0, i32(yf), in_y.x || in_y.y);
    let x0 = select(0, i32(xf), in_x.x || in_x.y);
    let a00 = y0 * i32(params.w) + x0;
    let at = vec4<i32>(a00, a00 + 1, a00 + i32(params.w), a00 + i32(params.w) + 1);
    // the open-box test and the bilinear weights of grad_mask's sample
    let inside = real && y > -1.0 && y < f32(params.h) && x > -1.0 && x < f32(params.w);
    let bil = vec4<f32>((1.0 - ly) * (1.0 - lx), (1.0 - ly) * lx, ly * (1.0 - lx), ly * lx);
    let taps = params.kh * params.kw;
    let hw_out = params.h_out * params.w_out;
    let per_og = params.c_in / params.offset_groups;
    let hw = params.h * params.w;
    var gy = 0.0;
    var gx = 0.0;
    var gm = 0.0;
    for (var cl = 0u; cl < per_og; cl++) {
        let ci = s.og * per_og + cl;
        let col = cols[((s.img_l * hw_out + s.q) * params.c_in + ci) * taps + s.t];
        let plane = (s.img * params.c_in + ci) * hw;
        let p = vec4<u32>(select(vec4<i32>(0), at, ok)) + plane;
        let v = select(vec4<f32>(0.0), vec4<f32>(input[p.x], input[p.y], input[p.z], input[p.w]), ok);
        if (GRAD_OFFSET) {
            let wy = lx * (v.w - v.y) + (1.0 - lx) * (v.z - v.x);
            let wx = ly * (v.w - v.z) + (1.0 - ly) * (v.y - v.x);
            gy += s.m * wy * col;
            gx += s.m * wx * col;
        }
        if (GRAD_MASK) {
            var val = 0.0;
            if (inside) {
                val = bil.x * v.x + bil.y * v.y + bil.z * v.z + bil.w * v.w;
            }
            gm += col * val;
        }
    }
    if (GRAD_OFFSET) {
        grad_offset[s.off] = gy;
        grad_offset[s.off + hw_out] = gx;
    }
    if (GRAD_MASK) {
        grad_mask[s.mi] = gm;
    }
}
