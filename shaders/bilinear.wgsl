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

// The same for four positions at once (component e: position e), for loaders that sample
// four columns: `inside` is the open-box test; y0/x0 are the top-left corners, clamped to
// [−1, H − 1] × [−1, W − 1] so that positions outside the box (whose weights are 0 here)
// still convert to integers in range; w00 .. w11 the corners' weights, 0 outside the box.
struct Bilinear4 {
    inside: vec4<bool>,
    y0: vec4<i32>,
    x0: vec4<i32>,
    w00: vec4<f32>,
    w01: vec4<f32>,
    w10: vec4<f32>,
    w11: vec4<f32>,
}

fn bilinear_at4(y: vec4<f32>, x: vec4<f32>, h: u32, w: u32) -> Bilinear4 {
    let fh = f32(h);
    let fw = f32(w);
    var s: Bilinear4;
    // false for NaN
    s.inside = (y > vec4<f32>(-1.0)) & (y < vec4<f32>(fh)) & (x > vec4<f32>(-1.0)) & (x < vec4<f32>(fw));
    let yf = floor(clamp(y, vec4<f32>(-1.0), vec4<f32>(fh - 1.0)));
    let xf = floor(clamp(x, vec4<f32>(-1.0), vec4<f32>(fw - 1.0)));
    let ly = y - yf;
    let lx = x - xf;
    let hy = 1.0 - ly;
    let hx = 1.0 - lx;
    s.y0 = vec4<i32>(yf);
    s.x0 = vec4<i32>(xf);
    let zero = vec4<f32>(0.0);
    s.w00 = select(zero, hy * hx, s.inside);
    s.w01 = select(zero, hy * lx, s.inside);
    s.w10 = select(zero, ly * hx, s.inside);
    s.w11 = select(zero, ly * lx, s.inside);
    return s;
}
