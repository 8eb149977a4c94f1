//! The library on wasm32 through wgpu's WebGPU back end: every op's seeded conformance cases
//! against the f64 reference, the deferred error scopes and the refusal to block, run in
//! headless Chromium and in Node on Dawn by `tools/web_check.sh` (wasm-bindgen-test-runner).
//! Natively this file is empty: the same cases run in `tests/ops` and `wgconv conformance`.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test;
use wgconv::conformance::{
    conv2d_cases, conv3d_cases, conv_transpose2d_cases, deform_conv2d_cases, pool2d_cases, run_op_async,
    separable_cases, Conv1dBackwardCase, Conv1dCase, Conv2dBackwardCase, Conv2dCase, Conv3dBackwardCase,
    ConvTranspose2dBackwardCase, ConvTranspose2dCase, DeformConv2dBackwardCase, OpCase, OpSummary, Pool2dBackwardCase,
};
use wgconv::ops::conv2d_backward::Grads;
use wgconv::params::{Algorithm, Conv2dParams, ConvTranspose2dParams};
use wgconv::tensor::DType;
use wgconv::verify::Tolerance;
use wgconv::{ContextOptions, Error, GpuContext};

/// Cases per op and algorithm: a browser on a software adapter runs them in seconds.
const CASES: usize = 6;
const SEED: u64 = 0x3eb;

/// A context at WebGPU's default limits, the device any page gets without asking.
async fn context() -> GpuContext {
    let opts = ContextOptions { limits: Some(wgpu::Limits::default()), ..Default::default() };
    let ctx = GpuContext::with_options_async(opts).await.expect("a WebGPU adapter");
    static NAMED: std::sync::Once = std::sync::Once::new();
    NAMED.call_once(|| {
        let info = ctx.adapter_info();
        // (browsers may leave the name empty: their adapter info is vendor and architecture)
        let name = if info.name.is_empty() { "an adapter the browser does not name" } else { &info.name };
        wasm_bindgen_test::console_log!("wgconv web tests on: {name}, {:?}", info.device_type);
    });
    assert!(ctx.limits().max_storage_buffer_binding_size <= 128 << 20);
    ctx
}

async fn passes<C: OpCase>(ctx: &GpuContext, op: &str, cases: &[C], dtype: DType, tol: Tolerance) {
    let s: OpSummary = run_op_async(ctx, op, cases, dtype, tol).await;
    assert!(s.cases > 0, "{op}: no case applies");
    assert!(s.ok(), "{op} on {}: {}/{} passed\n{}", ctx.adapter_info().name, s.passed, s.cases, s.failures.join("\n"));
}

fn conv2d_with(algorithm: Algorithm) -> Vec<Conv2dCase> {
    conv2d_cases(SEED, CASES)
        .into_iter()
        .map(|c| Conv2dCase { params: Conv2dParams { algorithm, ..c.params }, ..c })
        .collect()
}

#[wasm_bindgen_test]
async fn conv2d_every_algorithm_matches_the_reference() {
    let ctx = context().await;
    for a in std::iter::once(Algorithm::Auto).chain(Algorithm::ALL) {
        passes(&ctx, &format!("conv2d/{}", a.name()), &conv2d_with(a), DType::F32, Tolerance::default()).await;
    }
}

#[wasm_bindgen_test]
async fn conv2d_f16_matches_the_reference_where_the_adapter_has_shader_f16() {
    let ctx = context().await;
    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        wasm_bindgen_test::console_log!("skipped: {} has no shader-f16", ctx.adapter_info().name);
        return;
    }
    let tol = Tolerance { rel_l2: 1e-3, abs: 1e-3 };
    passes(&ctx, "conv2d/f16", &conv2d_cases(SEED, CASES), DType::F16, tol).await;
}

#[wasm_bindgen_test]
async fn conv2d_backward_matches_the_reference() {
    let ctx = context().await;
    let cases: Vec<_> = conv2d_cases(SEED, CASES).into_iter().map(|c| Conv2dBackwardCase(c, Grads::ALL)).collect();
    passes(&ctx, "conv2d_backward", &cases, DType::F32, Tolerance::default()).await;
}

#[wasm_bindgen_test]
async fn conv1d_and_its_backward_match_the_reference() {
    let ctx = context().await;
    let cases: Vec<_> = conv2d_cases(SEED, CASES).into_iter().map(Conv1dCase).collect();
    passes(&ctx, "conv1d", &cases, DType::F32, Tolerance::default()).await;
    let backward: Vec<_> = cases.into_iter().map(|c| Conv1dBackwardCase(c, Grads::ALL)).collect();
    passes(&ctx, "conv1d_backward", &backward, DType::F32, Tolerance::default()).await;
}

#[wasm_bindgen_test]
async fn conv_transpose2d_every_algorithm_and_its_backward_match_the_reference() {
    let ctx = context().await;
    for a in Algorithm::TRANSPOSED {
        let cases: Vec<_> = conv_transpose2d_cases(SEED, CASES)
            .into_iter()
            .map(|c| ConvTranspose2dCase { params: ConvTranspose2dParams { algorithm: a, ..c.params }, ..c })
            .collect();
        passes(&ctx, &format!("conv_transpose2d/{}", a.name()), &cases, DType::F32, Tolerance::default()).await;
    }
    let backward: Vec<_> =
        conv_transpose2d_cases(SEED, CASES).into_iter().map(|c| ConvTranspose2dBackwardCase(c, Grads::ALL)).collect();
    passes(&ctx, "conv_transpose2d_backward", &backward, DType::F32, Tolerance::default()).await;
}

#[wasm_bindgen_test]
async fn pool2d_and_its_backward_match_the_reference() {
    let ctx = context().await;
    passes(&ctx, "pool2d", &pool2d_cases(SEED, CASES), DType::F32, Tolerance::default()).await;
    let backward: Vec<_> = pool2d_cases(SEED, CASES).into_iter().map(Pool2dBackwardCase).collect();
    passes(&ctx, "pool2d_backward", &backward, DType::F32, Tolerance::default()).await;
}

#[wasm_bindgen_test]
async fn conv3d_and_its_backward_match_the_reference() {
    let ctx = context().await;
    passes(&ctx, "conv3d", &conv3d_cases(SEED, CASES), DType::F32, Tolerance::default()).await;
    let backward: Vec<_> = conv3d_cases(SEED, CASES).into_iter().map(|c| Conv3dBackwardCase(c, Grads::ALL)).collect();
    passes(&ctx, "conv3d_backward", &backward, DType::F32, Tolerance::default()).await;
}

#[wasm_bindgen_test]
async fn separable_conv2d_fused_and_two_pass_match_the_reference() {
    let ctx = context().await;
    for fused in [false, true] {
        passes(
            &ctx,
            &format!("separable_conv2d/fused={fused}"),
            &separable_cases(SEED, CASES, fused),
            DType::F32,
            Tolerance::default(),
        )
        .await;
    }
}

#[wasm_bindgen_test]
async fn deform_conv2d_both_algorithms_and_its_backward_match_the_reference() {
    let ctx = context().await;
    for a in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        let cases: Vec<_> = deform_conv2d_cases(SEED, CASES).iter().map(|c| c.with_algorithm(a)).collect();
        passes(&ctx, &format!("deform_conv2d/{}", a.name()), &cases, DType::F32, Tolerance::default()).await;
    }
    // its backward: the fixed-point grad_input's integer atomics on every implementation
    let backward: Vec<_> = deform_conv2d_cases(SEED, CASES)
        .into_iter()
        .map(|c| DeformConv2dBackwardCase(c, wgconv::ops::deform_conv2d_backward::DeformGrads::ALL))
        .collect();
    passes(&ctx, "deform_conv2d_backward", &backward, DType::F32, Tolerance::default()).await;
}

/// On the web a scope's verdict is a promise: the call that caused the error returns; every
/// readback after it rejects with the error (no output of the failed call reads back as
/// valid) while unrelated calls still run, until the next wait returns it, once; never out of
/// wgpu's panicking default handler.
#[wasm_bindgen_test]
async fn a_wgpu_error_rejects_readbacks_until_the_next_wait_reports_it() {
    let ctx = context().await;
    let x = wgconv::Tensor::from_slice(&ctx, &[1, 1, 3, 3], &[1.0; 9]).unwrap();
    let w = wgconv::Tensor::from_slice(&ctx, &[1, 1, 2, 2], &[1.0; 4]).unwrap();
    let invalid = ctx.scoped(|| {
        // MAP_READ may be combined with COPY_DST only: a validation error.
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("invalid on purpose"),
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    assert!(invalid.is_ok(), "the web cannot know at once: {invalid:?}");
    let y = wgconv::conv2d(&ctx, &x, &w, None, &Conv2dParams::default());
    assert!(y.is_ok(), "an unrelated call is not refused for an earlier error: {y:?}");
    for _ in 0..2 {
        let read = x.to_vec_async(&ctx).await;
        assert!(matches!(read, Err(Error::Validation(_))), "a readback after the error: {read:?}");
    }
    let reported = ctx.wait_async().await;
    assert!(matches!(reported, Err(Error::Validation(_))), "{reported:?}");
    assert!(ctx.wait_async().await.is_ok(), "reported twice");
    assert_eq!(y.unwrap().to_vec_async(&ctx).await.unwrap(), vec![4.0; 4], "usable again once reported");
    // the caches went with the error (an object made invalid is never handed out again): the
    // same conv compiles its pipeline anew
    let compiled = ctx.pipelines_compiled();
    let again = wgconv::conv2d(&ctx, &x, &w, None, &Conv2dParams::default()).unwrap();
    assert_eq!(again.to_vec_async(&ctx).await.unwrap(), vec![4.0; 4]);
    assert!(ctx.pipelines_compiled() > compiled, "the pipeline cache was kept after a device error");
}

/// Every blocking call is an error on the web (pollster would spin forever there: the page's
/// thread may not park), naming the future to await instead.
#[wasm_bindgen_test]
async fn blocking_calls_are_errors_on_the_web() {
    let ctx = context().await;
    assert!(matches!(ctx.wait(None), Err(Error::Unsupported(m)) if m.contains("wait_async")));
    let x = wgconv::Tensor::from_slice(&ctx, &[2], &[1.0, 2.0]).unwrap();
    assert!(matches!(x.to_vec(&ctx), Err(Error::Unsupported(m)) if m.contains("to_vec_async")));
    assert!(matches!(x.to_host(&ctx), Err(Error::Unsupported(_))));
    assert!(matches!(GpuContext::new(), Err(Error::Unsupported(m)) if m.contains("new_async")));
    assert!(matches!(GpuContext::with_options(ContextOptions::default()), Err(Error::Unsupported(_))));
    assert!(GpuContext::enumerate_adapters(None).is_empty());
    assert_eq!(x.to_vec_async(&ctx).await.unwrap(), vec![1.0, 2.0]);
}

/// A destroyed device: the page's next readback rejects with the loss (the device's `lost`
/// promise reports it), later calls fail at once, and nothing hangs or panics.
#[wasm_bindgen_test]
async fn a_destroyed_device_is_an_error() {
    let ctx = context().await;
    let x = wgconv::Tensor::from_slice(&ctx, &[1, 1, 3, 3], &[1.0; 9]).unwrap();
    let w = wgconv::Tensor::from_slice(&ctx, &[1, 1, 2, 2], &[1.0; 4]).unwrap();
    let p = Conv2dParams::default();
    let y = wgconv::conv2d(&ctx, &x, &w, None, &p).unwrap();
    assert_eq!(y.to_vec_async(&ctx).await.unwrap(), vec![4.0; 4]);
    ctx.device().destroy();
    let after = match wgconv::conv2d(&ctx, &x, &w, None, &p) {
        Ok(y) => y.to_vec_async(&ctx).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(matches!(after, Err(Error::DeviceLost(_) | Error::Validation(_) | Error::Map(_))), "{after:?}");
    assert!(matches!(ctx.check_alive(), Err(Error::DeviceLost(_))), "the context says it must be recreated");
    assert!(matches!(wgconv::Tensor::from_slice(&ctx, &[2], &[1.0, 2.0]), Err(Error::DeviceLost(_))));
}
