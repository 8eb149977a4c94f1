//! f16 storage for the ops whose kernels are f32 only (`ops::widen`: f32 copies in, one f16
//! rounding out): conv3d and its backward, conv_transpose3d and its backward,
//! separable_conv2d, deform_conv2d_backward, conv2d and its backward with a padding mode,
//! each on the conformance cases at the f16 tolerance (the reference of the f16-rounded
//! inputs), results stored as f16, the plan listing the conversions.

use crate::common::gpu;
use wgconv::conformance::f16_through_f32_copies_async;
use wgconv::{DType, DeformGrads, HostTensor, Padding, PaddingMode, Tensor};

#[test]
fn f16_runs_through_f32_copies_within_the_f16_tolerance() {
    let Some(ctx) = gpu() else { return };
    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        eprintln!("SKIP: no SHADER_F16");
        return;
    }
    let ops = pollster::block_on(f16_through_f32_copies_async(ctx, 2039, 12));
    assert_eq!(ops.len(), 9);
    for o in &ops {
        assert!(o.cases >= 3, "{}: {} cases", o.op, o.cases);
        assert!(o.ok(), "{}: {:?}", o.op, o.failures);
        // f16 storage is coarser than f32 but no worse than one rounding of the results
        assert!(o.worst_rel_l2 < 1e-3, "{}: {}", o.op, o.worst_rel_l2);
    }
}

/// The result tensors are f16 (two bytes an element), a plan of an f16 call lists a widen
/// per input and a narrow per gradient around the f32 launches, and an f16 tensor whose f32
/// copy exceeds one binding is a clear `TooLarge`.
#[test]
fn results_are_f16_and_plans_list_the_conversions() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        return;
    }
    let h = |t: &HostTensor| Tensor::from_slice_as(ctx, &t.shape, &t.data, DType::F16).unwrap();
    let (x, w) = (HostTensor::random(&[1, 2, 3, 4, 4], 1), HostTensor::random(&[3, 2, 2, 2, 2], 2));
    let y = wgconv::conv3d(ctx, &h(&x), &h(&w), None, &Default::default()).unwrap();
    assert_eq!((y.dtype(), y.shape()), (DType::F16, &[1, 3, 2, 3, 3][..]));
    let p = wgconv::Conv2dParams {
        padding: Padding::Symmetric([1, 1]),
        padding_mode: PaddingMode::Reflect,
        ..Default::default()
    };
    let (x2, w2) = (HostTensor::random(&[1, 2, 5, 5], 3), HostTensor::random(&[2, 2, 3, 3], 4));
    let y2 = wgconv::conv2d(ctx, &h(&x2), &h(&w2), None, &p).unwrap();
    assert_eq!(y2.dtype(), DType::F16);
    let r = |t: &HostTensor| t.clone().rounded_to(DType::F16);
    let want = wgconv::reference::conv2d(&r(&x2), &r(&w2), None, &p).unwrap().1;
    assert!(wgconv::verify::compare(&y2.to_vec(ctx).unwrap(), &want)
        .passes(wgconv::verify::Tolerance { rel_l2: 1e-3, abs: 1e-3 }));

    let dp = wgconv::DeformConv2dParams::default();
    let (xs, ws, os) = ([1, 2, 5, 5], [2, 2, 3, 3], [1, 18, 3, 3]);
    let f32_plan =
        wgconv::plan_deform_conv2d_backward(ctx, &xs, &ws, &os, None, DType::F32, &dp, DeformGrads::ALL).unwrap();
    let f16_plan =
        wgconv::plan_deform_conv2d_backward(ctx, &xs, &ws, &os, None, DType::F16, &dp, DeformGrads::ALL).unwrap();
    let names = |p: &wgconv::DeformConv2dBackwardPlan| p.steps.iter().map(|s| s.shader.name()).collect::<Vec<_>>();
    let (a, b) = (names(&f32_plan), names(&f16_plan));
    // input, weight, offset, grad_output in; grad_input, grad_weight, grad_offset, grad_bias out
    assert_eq!(b.iter().filter(|n| **n == "cast_widen").count(), 4, "{f16_plan}");
    assert_eq!(b.iter().filter(|n| **n == "cast_narrow").count(), 4, "{f16_plan}");
    assert_eq!(b[4..b.len() - 4], a[..], "{f16_plan}");

    let base = ctx.config();
    ctx.set_config(wgconv::EngineConfig { max_binding_size: 256, ..base });
    let big = HostTensor::random(&[1, 2, 4, 4, 4], 5);
    let e = wgconv::conv3d(ctx, &h(&big), &h(&w), None, &Default::default()).unwrap_err();
    ctx.set_config(base);
    assert!(matches!(&e, wgconv::Error::TooLarge(m) if m.contains("f32 copies")), "{e}");
}
