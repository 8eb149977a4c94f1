//! A small MobileNetV2-like network's forward pass, end to end on wgconv: a stride-2 stem, an
//! inverted-residual block without expansion, one with expansion 6 and stride 2, one with a
//! residual, a 1×1 head, global average pooling and a 1×1 classifier; every conv with its
//! batch norm folded into weight and bias and its ReLU6 fused (PyTorch's modules, seeded,
//! `tools/gen_golden.py cnn_forward`). The logits are checked against PyTorch's (float64 on
//! the same float32 input and weights, `tests/data/cnn_forward/`), and the time of each layer
//! is printed (wall clock, the layer submitted and waited for, on a second pass: the first
//! compiles the pipelines).
//!
//!     cargo run --release --example cnn_forward
//!
//! Exits 1 if the logits differ from PyTorch's beyond the f32 tolerance.

use std::time::Instant;

use wgconv::verify::{compare, Tolerance};
use wgconv::{adaptive_avg_pool2d, conv2d, Activation, Conv2dParams, GpuContext, HostTensor, Padding, Tensor};

/// One conv layer: its name in model.npz, stride, whether depthwise, whether ReLU6 follows.
struct Layer {
    name: &'static str,
    stride: u32,
    depthwise: bool,
    relu6: bool,
}

const fn layer(name: &'static str, stride: u32, depthwise: bool, relu6: bool) -> Layer {
    Layer { name, stride, depthwise, relu6 }
}

const LAYERS: [Layer; 10] = [
    layer("stem", 2, false, true),
    layer("b1_dw", 1, true, true),
    layer("b1_pw", 1, false, false),
    layer("b2_expand", 1, false, true),
    layer("b2_dw", 2, true, true),
    layer("b2_pw", 1, false, false),
    layer("b3_expand", 1, false, true),
    layer("b3_dw", 1, true, true),
    layer("b3_pw", 1, false, false),
    layer("head", 1, false, true),
];

/// One forward pass: the logits, and per layer (name, input shape, output shape, algorithm,
/// milliseconds).
type Timing = (String, Vec<usize>, Vec<usize>, String, f64);

fn forward(
    ctx: &GpuContext,
    x: &HostTensor,
    model: &std::path::Path,
) -> Result<(Vec<f32>, Vec<Timing>), Box<dyn std::error::Error>> {
    let array = |name: &str| -> Result<HostTensor, wgconv::Error> {
        Ok(HostTensor::read_npy(format!("{}:{name}", model.display()))?.0)
    };
    let mut h = Tensor::from_host(ctx, x)?;
    let mut block_input: Option<Tensor> = None;
    let mut times = Vec::new();
    for l in &LAYERS {
        let (w, b) = (array(&format!("{}.weight", l.name))?, array(&format!("{}.bias", l.name))?);
        let k = w.shape[2] as u32;
        let p = Conv2dParams {
            stride: [l.stride; 2],
            padding: Padding::Symmetric([k / 2; 2]),
            groups: if l.depthwise { w.shape[0] as u32 } else { 1 },
            activation: if l.relu6 { Activation::Relu6 } else { Activation::None },
            ..Default::default()
        };
        let (wt, bt) = (Tensor::from_host(ctx, &w)?, Tensor::from_host(ctx, &b)?);
        if l.name == "b3_expand" {
            block_input = Some(h.clone());
        }
        let t0 = Instant::now();
        let (y, info) = wgconv::conv2d_with_info(ctx, &h, &wt, Some(&bt), &p)?;
        ctx.wait(None)?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        times.push((l.name.to_string(), h.shape().to_vec(), y.shape().to_vec(), info.algorithm.name().to_string(), ms));
        h = y;
        if l.name == "b3_pw" {
            // the inverted residual (an add, on the host: wgconv runs the convolutions)
            let skip = block_input.take().expect("b3_expand came first").to_vec(ctx)?;
            let sum: Vec<f32> = h.to_vec(ctx)?.iter().zip(&skip).map(|(a, b)| a + b).collect();
            h = Tensor::from_slice(ctx, h.shape(), &sum)?;
        }
    }
    let t0 = Instant::now();
    let pooled = adaptive_avg_pool2d(ctx, &h, [1, 1])?;
    let (w, b) = (array("classifier.weight")?, array("classifier.bias")?);
    let (wt, bt) = (Tensor::from_host(ctx, &w)?, Tensor::from_host(ctx, &b)?);
    let logits = conv2d(ctx, &pooled, &wt, Some(&bt), &Default::default())?;
    ctx.wait(None)?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    times.push(("pool+fc".into(), h.shape().to_vec(), logits.shape().to_vec(), "pool, gemm_1x1".into(), ms));
    Ok((logits.to_vec(ctx)?, times))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cnn_forward");
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.adapter_info().name);
    let x = HostTensor::read_npy(data.join("input.npy"))?.0;
    // a first pass compiles every pipeline; the second is timed
    let (first, warmup) = forward(&ctx, &x, &data.join("model.npz"))?;
    let (got, times) = forward(&ctx, &x, &data.join("model.npz"))?;
    println!("{:<10} {:>18} {:>18} {:>16} {:>10}", "layer", "input", "output", "algorithm", "ms");
    for (name, i, o, algo, ms) in &times {
        println!("{name:<10} {:>18} {:>18} {algo:>16} {ms:>10.2}", format!("{i:?}"), format!("{o:?}"));
    }
    let total: f64 = times.iter().map(|t| t.4).sum();
    let compile: f64 = warmup.iter().map(|t| t.4).sum::<f64>() - total;
    println!("total {total:.2} ms (the first pass took {compile:.0} ms more: pipeline compilation)");
    let want: Vec<f64> = HostTensor::read_npy(data.join("logits.npy"))?.0.data.iter().map(|&v| v as f64).collect();
    let s = compare(&got, &want);
    println!("logits {got:?}");
    println!("against PyTorch: {s}");
    if !s.passes(Tolerance::default()) || got != first {
        return Err("the logits differ from PyTorch's (or between two runs)".into());
    }
    Ok(())
}
