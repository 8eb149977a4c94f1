//! A photograph through three classic filters, each a wgconv call, written back as PNGs you
//! can look at:
//! - `blur.png`: a 5×5 Gaussian blur, one depthwise conv2d (groups = 3) with reflect padding
//!   (`padding_mode`, as `nn.Conv2d(..., padding_mode='reflect')`: no dark border);
//! - `edges.png`: Sobel edges, the luminance (a 1×1 conv) then the x and y gradients (one
//!   3×3 conv with two output channels, replicate padding), magnitude on the host;
//! - `sharpen_sepia.png`: a depthwise-separable block (`separable_conv2d`): a 3×3 sharpen per
//!   channel, then a 1×1 sepia colour mix, clamped by relu6 and scaled back.
//!
//!     cargo run --release --example image_filter [INPUT.png] [OUTPUT_DIR]
//!
//! Defaults: `examples/data/chelsea.png` (Chelsea the cat, CC0 by Stefan van der Walt, from
//! scikit-image's sample data, resized) and `target/image_filter/`. Each result is checked
//! against wgconv's f64 reference; the example exits 1 on a mismatch.

use std::path::PathBuf;

use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv2d, separable_conv2d, Activation, Conv2dParams, GpuContext, HostTensor, Padding, PaddingMode, SeparableParams,
    Tensor,
};

/// The PNG as `[1, 3, H, W]` in [0, 1].
fn load(path: &PathBuf) -> Result<HostTensor, Box<dyn std::error::Error>> {
    let rgb = image::open(path)?.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut data = vec![0f32; 3 * h * w];
    for (x, y, p) in rgb.enumerate_pixels() {
        for c in 0..3 {
            data[(c * h + y as usize) * w + x as usize] = p[c] as f32 / 255.0;
        }
    }
    Ok(HostTensor::new(&[1, 3, h, w], data)?)
}

/// `[1, C, H, W]` (C = 1 or 3) in [0, 1] as a PNG.
fn save(t: &[f32], shape: &[usize], path: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let (c, h, w) = (shape[1], shape[2], shape[3]);
    let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let at = |ch: usize| t[(ch.min(c - 1) * h + y as usize) * w + x as usize];
        image::Rgb([0, 1, 2].map(|ch| (at(ch).clamp(0.0, 1.0) * 255.0).round() as u8))
    });
    img.save(path)?;
    println!("wrote {} ({w}×{h})", path.display());
    Ok(())
}

/// Fails unless `got` matches the f64 reference `want`.
fn check(what: &str, got: &[f32], want: &[f64]) -> Result<(), Box<dyn std::error::Error>> {
    let s = compare(got, want);
    println!("{what}: {s}");
    if !s.passes(Tolerance::default()) {
        return Err(format!("{what} differs from the reference").into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let input = args.next().map(PathBuf::from).unwrap_or_else(|| "examples/data/chelsea.png".into());
    let out = args.next().map(PathBuf::from).unwrap_or_else(|| "target/image_filter".into());
    std::fs::create_dir_all(&out)?;
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.adapter_info().name);
    let x = load(&input)?;
    let [_, _, h, w] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    println!("{}: 3×{h}×{w}", input.display());
    let xt = Tensor::from_host(&ctx, &x)?;

    // 1. Gaussian blur: σ = 1.2, 5×5, the same kernel on each channel (depthwise).
    let g: Vec<f32> = (-2..=2).map(|i: i32| (-(i * i) as f32 / (2.0 * 1.2 * 1.2)).exp()).collect();
    let norm: f32 = g.iter().sum::<f32>().powi(2);
    let gauss: Vec<f32> = (0..3).flat_map(|_| g.iter().flat_map(|a| g.iter().map(move |b| a * b / norm))).collect();
    let gauss = HostTensor::new(&[3, 1, 5, 5], gauss)?;
    let p = Conv2dParams {
        padding: Padding::Symmetric([2, 2]),
        groups: 3,
        padding_mode: PaddingMode::Reflect,
        ..Default::default()
    };
    let blur = conv2d(&ctx, &xt, &Tensor::from_host(&ctx, &gauss)?, None, &p)?.to_vec(&ctx)?;
    check("blur", &blur, &wgconv::reference::conv2d(&x, &gauss, None, &p)?.1)?;
    save(&blur, &x.shape, &out.join("blur.png"))?;

    // 2. Sobel: luminance (ITU-R BT.601), then Gx and Gy as two output channels.
    let luma = HostTensor::new(&[1, 3, 1, 1], vec![0.299, 0.587, 0.114])?;
    let y = conv2d(&ctx, &xt, &Tensor::from_host(&ctx, &luma)?, None, &Conv2dParams::default())?;
    let sobel = HostTensor::new(
        &[2, 1, 3, 3],
        vec![-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0, -1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0],
    )?;
    let p = Conv2dParams {
        padding: Padding::Symmetric([1, 1]),
        padding_mode: PaddingMode::Replicate,
        ..Default::default()
    };
    let grad = conv2d(&ctx, &y, &Tensor::from_host(&ctx, &sobel)?, None, &p)?.to_vec(&ctx)?;
    let y_host = HostTensor::new(&[1, 1, h, w], y.to_vec(&ctx)?)?;
    check("sobel", &grad, &wgconv::reference::conv2d(&y_host, &sobel, None, &p)?.1)?;
    let edges: Vec<f32> = (0..h * w).map(|i| (grad[i].powi(2) + grad[h * w + i].powi(2)).sqrt() / 2.0).collect();
    save(&edges, &[1, 1, h, w], &out.join("edges.png"))?;

    // 3. Depthwise-separable: sharpen each channel, then mix to sepia; relu6 clamps at 6,
    // so the values are scaled by 6 going in and 1/6 coming out.
    let sharpen: Vec<f32> = (0..3).flat_map(|_| [0.0, -1.0, 0.0, -1.0, 5.0, -1.0, 0.0, -1.0, 0.0]).collect();
    let sharpen = HostTensor::new(&[3, 1, 3, 3], sharpen.iter().map(|v| v * 6.0).collect())?;
    let sepia = HostTensor::new(&[3, 3, 1, 1], vec![0.393, 0.769, 0.189, 0.349, 0.686, 0.168, 0.272, 0.534, 0.131])?;
    let sp = SeparableParams {
        padding: Padding::Symmetric([1, 1]),
        pointwise_activation: Activation::Relu6,
        ..Default::default()
    };
    let (dw, pw) = (Tensor::from_host(&ctx, &sharpen)?, Tensor::from_host(&ctx, &sepia)?);
    let z = separable_conv2d(&ctx, &xt, &dw, None, &pw, None, &sp)?.to_vec(&ctx)?;
    let dwp = Conv2dParams { padding: Padding::Symmetric([1, 1]), groups: 3, ..Default::default() };
    let (shape, mid) = wgconv::reference::conv2d(&x, &sharpen, None, &dwp)?;
    let mid = HostTensor::new(&shape, mid.iter().map(|&v| v as f32).collect())?;
    let pwp = Conv2dParams { activation: Activation::Relu6, ..Default::default() };
    check("separable", &z, &wgconv::reference::conv2d(&mid, &sepia, None, &pwp)?.1)?;
    let z: Vec<f32> = z.iter().map(|v| v / 6.0).collect();
    save(&z, &x.shape, &out.join("sharpen_sepia.png"))?;
    Ok(())
}
