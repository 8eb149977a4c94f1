//! wgconv inside an app that owns its wgpu device: the app's buffers are the tensors (no
//! copy), wgconv records a 3×3 Gaussian blur and an edge filter into the app's own encoder
//! next to the app's commands, and the app submits when it wants.
//!
//!     cargo run --release --example embed_app
//!
//! Prints the outputs' shapes, how they compare with wgconv's f64 reference, and exits 1 if
//! they do not match.

use wgconv::verify::{compare, Tolerance};
use wgconv::{conv2d_into, Conv2dParams, GpuContext, HostTensor, Padding, Tensor};
use wgpu::util::DeviceExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The app's device, opened as a typical app opens it: wgpu's default limits.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
    println!("adapter: {}", adapter.get_info().name);

    // An RGB image of 3 × 64 × 96 in the app's buffer: a gradient with a bright square.
    let (h, w) = (64usize, 96usize);
    let image: Vec<f32> = (0..3 * h * w)
        .map(|i| {
            let (c, y, x) = (i / (h * w), (i / w) % h, i % w);
            let square = (20..44).contains(&y) && (30..60).contains(&x);
            if square {
                1.0
            } else {
                (x as f32 / w as f32) * (c as f32 + 1.0) / 3.0
            }
        })
        .collect();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let app_buffer = |label: &str, data: &[f32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage,
        })
    };
    let image_buf = app_buffer("app image", &image);

    // The filters: a 3×3 Gaussian per channel (depthwise: groups = 3), then Sobel x on the
    // blurred luminance (3 → 1 channel).
    let g = [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0].map(|v: f32| v / 16.0);
    let gauss: Vec<f32> = g.iter().copied().cycle().take(27).collect();
    let sobel: Vec<f32> = [0.299f32, 0.587, 0.114]
        .iter()
        .flat_map(|l| [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0].map(|v: f32| v * l))
        .collect();

    // wgconv on the app's device; tensors over the app's buffers (no copy).
    let ctx = GpuContext::from_device(device.clone(), queue.clone());
    let x = Tensor::from_buffer(&ctx, image_buf, &[1, 3, h, w])?;
    let gauss_t = Tensor::from_buffer(&ctx, app_buffer("gauss", &gauss), &[3, 1, 3, 3])?;
    let sobel_t = Tensor::from_buffer(&ctx, app_buffer("sobel", &sobel), &[1, 3, 3, 3])?;
    let same = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let blur_p = Conv2dParams { groups: 3, ..same };
    let blurred = Tensor::from_buffer(&ctx, app_buffer("blurred", &vec![0.0; 3 * h * w]), &[1, 3, h, w])?;
    let edges = Tensor::from_buffer(&ctx, app_buffer("edges", &vec![0.0; h * w]), &[1, 1, h, w])?;

    // One encoder, the app's: wgconv records two convs, the app adds its readback copy.
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("app frame") });
    let a = conv2d_into(&ctx, &mut encoder, &x, &gauss_t, None, &blur_p, &blurred)?;
    let b = conv2d_into(&ctx, &mut encoder, &blurred, &sobel_t, None, &same, &edges)?;
    println!("recorded: blur by {}, edges by {} (nothing submitted yet)", a.algorithm.name(), b.algorithm.name());
    let read = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: (h * w * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_buffer_to_buffer(edges.buffer(), 0, &read, 0, (h * w * 4) as u64);
    queue.submit(Some(encoder.finish()));

    // The app's own readback.
    let (tx, rx) = std::sync::mpsc::channel();
    read.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    rx.recv()??;
    let got: Vec<f32> = bytemuck::cast_slice(&read.slice(..).get_mapped_range()?).to_vec();

    // The same two convs in f64 on the CPU.
    let host = |shape: &[usize], data: &[f32]| HostTensor::new(shape, data.to_vec());
    let (_, blur_ref) =
        wgconv::reference::conv2d(&host(&[1, 3, h, w], &image)?, &host(&[3, 1, 3, 3], &gauss)?, None, &blur_p)?;
    let blur_f32: Vec<f32> = blur_ref.iter().map(|&v| v as f32).collect();
    let (_, edge_ref) =
        wgconv::reference::conv2d(&host(&[1, 3, h, w], &blur_f32)?, &host(&[1, 3, 3, 3], &sobel)?, None, &same)?;
    let stats = compare(&got, &edge_ref);
    let strongest = got.iter().fold(0f32, |m, v| m.max(v.abs()));
    println!("edges [1, 1, {h}, {w}]: strongest response {strongest:.3}; against the f64 reference: {stats}");
    if !stats.passes(Tolerance::default()) {
        eprintln!("embed_app: the edges differ from the reference");
        std::process::exit(1);
    }
    println!("embed_app: PASS");
    Ok(())
}
