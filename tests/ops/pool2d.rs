//! max_pool2d / avg_pool2d against the reference and PyTorch goldens; padding rules; NaN.

use crate::common::gpu;
use wgconv::verify::{compare, Tolerance};
use wgconv::{avg_pool2d, max_pool2d, Error, HostTensor, Pool2dParams, PoolMode, Tensor};

fn pp(k: [u32; 2], s: Option<[u32; 2]>, p: [u32; 2], cip: bool) -> Pool2dParams {
    Pool2dParams { kernel: k, stride: s, padding: p, count_include_pad: cip, ..Default::default() }
}

#[test]
fn cases_match_reference() {
    let Some(ctx) = gpu() else { return };
    let cases = [
        ([1, 3, 8, 8], pp([2, 2], None, [0, 0], true)),
        ([2, 2, 9, 7], pp([3, 3], Some([2, 2]), [1, 1], true)),
        ([2, 2, 9, 7], pp([3, 3], Some([2, 2]), [1, 1], false)),
        ([1, 4, 10, 9], pp([2, 3], Some([1, 2]), [1, 1], true)),
        ([1, 1, 5, 5], pp([5, 5], None, [2, 2], false)),
        ([3, 5, 13, 11], pp([3, 2], Some([3, 1]), [1, 0], false)),
        ([1, 2, 1, 1], pp([1, 1], None, [0, 0], true)),
        ([1, 2, 7, 7], pp([7, 7], Some([1, 1]), [3, 3], true)),
    ];
    for (i, (shape, p)) in cases.iter().enumerate() {
        let x = HostTensor::random(shape, i as u64);
        let xg = Tensor::from_host(ctx, &x).unwrap();
        for mode in [PoolMode::Max, PoolMode::Avg] {
            let (oshape, r) = wgconv::reference::pool2d(&x, p, mode).unwrap();
            let y = match mode {
                PoolMode::Max => max_pool2d(ctx, &xg, p),
                PoolMode::Avg => avg_pool2d(ctx, &xg, p),
            }
            .unwrap();
            assert_eq!(y.shape(), &oshape);
            let s = compare(&y.to_vec(ctx).unwrap(), &r);
            assert!(s.passes(Tolerance::default()), "case {i} {mode:?}: {s}");
        }
    }
}

/// Max pooling pads with −∞: an all-negative input's border outputs stay negative (a zero
/// pad would give 0), and a NaN in a window gives NaN.
#[test]
fn max_ignores_padding_and_propagates_nan() {
    let Some(ctx) = gpu() else { return };
    let mut x = HostTensor::new(&[1, 1, 4, 4], (0..16).map(|i| -1.0 - i as f32).collect()).unwrap();
    let p = pp([3, 3], Some([2, 2]), [1, 1], true);
    let y = max_pool2d(ctx, &Tensor::from_host(ctx, &x).unwrap(), &p).unwrap().to_vec(ctx).unwrap();
    assert!(y.iter().all(|&v| v < 0.0), "{y:?}");
    assert_eq!(y[0], -1.0);
    x.data[5] = f32::NAN;
    let y = max_pool2d(ctx, &Tensor::from_host(ctx, &x).unwrap(), &p).unwrap().to_vec(ctx).unwrap();
    let (_, r) = wgconv::reference::pool2d(&x, &p, PoolMode::Max).unwrap();
    assert!(y.iter().zip(&r).all(|(a, b)| a.is_nan() == b.is_nan()) && y[0].is_nan(), "{y:?}");
}

#[test]
fn bad_parameters() {
    let x = [1, 2, 6, 6];
    assert!(matches!(pp([3, 3], None, [2, 0], true).validate(&x), Err(Error::InvalidParam { name: "padding", .. })));
    assert!(matches!(pp([0, 3], None, [0, 0], true).validate(&x), Err(Error::InvalidParam { name: "kernel", .. })));
    assert!(matches!(
        pp([3, 3], Some([0, 1]), [0, 0], true).validate(&x),
        Err(Error::InvalidParam { name: "stride", .. })
    ));
    assert!(matches!(pp([7, 3], None, [0, 0], true).validate(&x), Err(Error::EmptyOutput(_))));
    assert!(matches!(pp([2, 2], None, [0, 0], true).validate(&[2, 6, 6]), Err(Error::Rank { .. })));
    assert_eq!(pp([2, 2], None, [0, 0], true).validate(&x).unwrap(), [1, 2, 3, 3]);
}

#[test]
fn pytorch_golden_cases() {
    let cases = crate::common::goldens("pool2d");
    assert!(cases.len() >= 4);
    for c in cases {
        let stride = (!c.case["stride"].is_null()).then(|| c.pair("stride"));
        let p = Pool2dParams {
            kernel: c.pair("kernel"),
            stride,
            padding: c.pair("padding"),
            count_include_pad: c.flag("count_include_pad"),
            ..Default::default()
        };
        let x = c.load("input");
        for (mode, file) in [(PoolMode::Max, "max"), (PoolMode::Avg, "avg")] {
            let want = c.expected(file);
            let (_, r) = wgconv::reference::pool2d(&x, &p, mode).unwrap();
            let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
            assert!(compare(&r32, &want).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{} {file}: reference", c.name);
            let Some(ctx) = gpu() else { continue };
            let xg = Tensor::from_host(ctx, &x).unwrap();
            let y = if mode == PoolMode::Max { max_pool2d(ctx, &xg, &p) } else { avg_pool2d(ctx, &xg, &p) };
            let s = compare(&y.unwrap().to_vec(ctx).unwrap(), &want);
            assert!(s.passes(Tolerance::default()), "{} {file}: GPU vs torch: {s}", c.name);
        }
    }
}

/// f16 storage on every case: max is exactly the reference's maximum of the f16 inputs (an
/// f16 value), avg within one f16 rounding of the f64 mean; the output takes the input's
/// dtype, and an f32 output for an f16 input is an error.
#[test]
fn f16_storage_matches_reference() {
    use wgconv::DType;
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let cases = [
        ([2, 2, 9, 7], pp([3, 3], Some([2, 2]), [1, 1], true)),
        ([2, 2, 9, 7], pp([3, 3], Some([2, 2]), [1, 1], false)),
        ([3, 5, 13, 11], pp([3, 2], Some([3, 1]), [1, 0], false)),
        ([1, 2, 7, 7], pp([7, 7], Some([1, 1]), [3, 3], true)),
    ];
    for (i, (shape, p)) in cases.iter().enumerate() {
        let x = HostTensor::random(shape, 40 + i as u64).rounded_to(DType::F16);
        let xg = Tensor::from_slice_as(&ctx, &x.shape, &x.data, DType::F16).unwrap();
        for mode in [PoolMode::Max, PoolMode::Avg] {
            let (oshape, r) = wgconv::reference::pool2d(&x, p, mode).unwrap();
            let y = wgconv::ops::pool2d::pool2d(&ctx, &xg, p, mode).unwrap();
            assert_eq!((y.shape(), y.dtype()), (&oshape[..], DType::F16));
            let out = y.to_vec(&ctx).unwrap();
            assert!(crate::common::all_f16(&out), "case {i}: not f16 values");
            if mode == PoolMode::Max {
                let exact: Vec<f32> = r.iter().map(|&v| v as f32).collect();
                assert_eq!(out, exact, "case {i} max");
            } else {
                let s = compare(&out, &r);
                assert!(s.passes(crate::common::F16_TOLERANCE), "case {i} avg: {s}");
            }
        }
    }
    let (shape, p) = &cases[0];
    let x = Tensor::from_slice_as(&ctx, shape, &vec![0.5; shape.iter().product()], DType::F16).unwrap();
    let out32 = Tensor::empty(&ctx, &p.validate(shape).unwrap()).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let e = wgconv::ops::pool2d::pool2d_into(&ctx, &mut enc, &x, p, PoolMode::Max, &out32).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch(_)), "{e}");
}
