//! Using wgconv inside an app that owns the wgpu device: the app's buffers as tensors (no
//! copy), the conv recorded into the app's encoder, the app submitting.

use wgconv::verify::{compare, Tolerance};
use wgconv::{conv2d_into, Conv2dParams, Error, GpuContext, HostTensor, Padding, Tensor};
use wgpu::util::DeviceExt;

/// The app's own device, opened with wgpu's *default* limits (what a typical app asks for).
fn app_device() -> Option<(wgpu::Device, wgpu::Queue)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = match pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())) {
        Ok(a) => a,
        Err(e) if std::env::var("WGCONV_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("no adapter: {e}")
        }
        Err(e) => {
            eprintln!("SKIP: no adapter ({e})");
            return None;
        }
    };
    Some(pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).expect("device"))
}

fn app_buffer(device: &wgpu::Device, data: &[f32]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("app"),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
    })
}

#[test]
fn conv_recorded_into_the_apps_encoder_on_the_apps_buffers() {
    let Some((device, queue)) = app_device() else {
        return;
    };
    let ctx = GpuContext::from_device(device.clone(), queue.clone());
    assert!(!ctx.owns_device());

    let params = Conv2dParams { stride: [2, 1], padding: Padding::Symmetric([1, 2]), groups: 2, ..Default::default() };
    let x = HostTensor::random(&[2, 6, 11, 9], 1);
    let w = HostTensor::random(&[4, 3, 3, 3], 2);
    let b = HostTensor::random(&[4], 3);
    let out_shape = params.output_shape(&x.shape, &w.shape).unwrap();
    let out_len: usize = out_shape.iter().product();

    // The app's buffers; the output buffer is larger than needed, as pooled buffers are.
    let xb = app_buffer(&device, &x.data);
    let wb = app_buffer(&device, &w.data);
    let bb = app_buffer(&device, &b.data);
    let yb = app_buffer(&device, &vec![f32::NAN; out_len + 7]);
    let read = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("app readback"),
        size: (out_len * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    let xt = Tensor::from_buffer(&ctx, xb, &x.shape).unwrap();
    let wt = Tensor::from_buffer(&ctx, wb, &w.shape).unwrap();
    let bt = Tensor::from_buffer(&ctx, bb, &b.shape).unwrap();
    let yt = Tensor::from_buffer(&ctx, yb.clone(), &out_shape).unwrap();

    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("app frame") });
    let info = conv2d_into(&ctx, &mut encoder, &xt, &wt, Some(&bt), &params, &yt).unwrap();
    assert!(info.chunks >= 1);
    // Nothing ran yet: the app adds its own commands and submits when it wants.
    encoder.copy_buffer_to_buffer(&yb, 0, &read, 0, (out_len * 4) as u64);
    queue.submit(Some(encoder.finish()));

    let (tx, rx) = std::sync::mpsc::channel();
    read.slice(..).map_async(wgpu::MapMode::Read, move |r| tx.send(r).unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    rx.recv().unwrap().unwrap();
    let got: Vec<f32> = bytemuck::cast_slice(&read.slice(..).get_mapped_range().unwrap()).to_vec();

    let (_, reference) = wgconv::reference::conv2d(&x, &w, Some(&b), &params).unwrap();
    let stats = compare(&got, &reference);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    // The elements past the output were not touched.
    let tail = Tensor::from_buffer(&ctx, yb, &[out_len + 7]).unwrap().to_vec(&ctx).unwrap();
    assert!(tail[out_len..].iter().all(|v| v.is_nan()));
}

#[test]
fn unusable_app_buffers_are_errors() {
    let Some((device, queue)) = app_device() else {
        return;
    };
    let ctx = GpuContext::from_device(device.clone(), queue);
    let uniform_only = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::UNIFORM,
        mapped_at_creation: false,
    });
    assert!(matches!(Tensor::from_buffer(&ctx, uniform_only, &[4]), Err(Error::Buffer { .. })));
    let small = app_buffer(&device, &[1.0; 4]);
    assert!(matches!(Tensor::from_buffer(&ctx, small, &[5]), Err(Error::Buffer { .. })));
}

/// A buffer of a different device slipped in through `from_buffer` is caught by the error
/// scopes and returned as an error: no panic in the app's process.
#[test]
fn a_foreign_buffer_is_an_error_not_a_panic() {
    let (Some((dev_a, queue_a)), Some((dev_b, _))) = (app_device(), app_device()) else {
        return;
    };
    let ctx = GpuContext::from_device(dev_a.clone(), queue_a);
    let x = Tensor::from_buffer(&ctx, app_buffer(&dev_b, &[1.0; 16]), &[1, 1, 4, 4]).unwrap();
    let w = Tensor::from_buffer(&ctx, app_buffer(&dev_a, &[1.0; 9]), &[1, 1, 3, 3]).unwrap();
    let e = wgconv::conv2d(&ctx, &x, &w, None, &Conv2dParams::default()).unwrap_err();
    assert!(matches!(e, Error::Validation(_)), "{e}");
    // The context still works afterwards.
    let x = Tensor::from_slice(&ctx, &[1, 1, 4, 4], &[1.0; 16]).unwrap();
    let y = wgconv::conv2d(&ctx, &x, &w, None, &Conv2dParams::default()).unwrap().to_vec(&ctx).unwrap();
    assert_eq!(y, vec![9.0; 4]);
}

/// The async path a web page takes (issue #22): context creation and readback as futures,
/// driven here by `pollster`; the values equal the blocking readback's, f32 and f16.
#[test]
fn async_context_and_readback_give_the_blocking_values() {
    let Some(_) = crate::common::gpu() else { return };
    let ctx = pollster::block_on(GpuContext::new_async()).expect("context");
    let x = HostTensor::random(&[2, 3, 5, 7], 11);
    let w = HostTensor::random(&[4, 3, 3, 3], 12);
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let y =
        wgconv::conv2d(&ctx, &Tensor::from_host(&ctx, &x).unwrap(), &Tensor::from_host(&ctx, &w).unwrap(), None, &p)
            .unwrap();
    let blocking = y.to_vec(&ctx).unwrap();
    let awaited = pollster::block_on(y.to_host_async(&ctx)).unwrap();
    assert_eq!(awaited.shape, y.shape());
    assert_eq!(awaited.data, blocking);
    let (_, want) = wgconv::reference::conv2d(&x, &w, None, &p).unwrap();
    assert!(compare(&awaited.data, &want).passes(Tolerance::default()));
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        let h = Tensor::from_slice_as(&ctx, &x.shape, &x.data, wgconv::DType::F16).unwrap();
        let back = pollster::block_on(h.to_vec_async(&ctx)).unwrap();
        assert_eq!(back, x.rounded_to(wgconv::DType::F16).data);
    }
}
