// Bilinear sampling as torchvision's deform_conv2d does it, shared by the kernels that
// sample (concatenated in front of them). For a position (y, x) strictly inside
// (−1, H) × (−1, W), bilinear_at gives the top-left corner (y0, x0) and the weights of the
// corners (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1); the caller reads each
// corner that lies in the image and uses 0 for the others (no renormalisation). Outside that
// open box the sample is 0: inside_sampling_box says which.

struct Bilinear {
    y0: i32,
    x0: i32,
    w: vec4<f32>,
}

fn inside_sampling_box(y: f32, x: f32, h: u32, w: u32) -> bool {
    return y > -1.0 && y < f32(h) && x > -1.0 && x < f32(w);
}

fn bilinear_at(y: f32, x: f32) -> Bilinear {
    let yf = floor(y);
    let xf = floor(x);
    let ly = y - yf;
    let lx = x - xf;
    let hy = 1.0 - ly;
    let hx = 1.0 - lx;
    return Bilinear(i32(yf), i32(xf), vec4<f32>(hy * hx, hy * lx, ly * hx, ly * lx));
}
