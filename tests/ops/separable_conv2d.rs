//! The depthwise-separable block against the composition of the two conv2d references.

use crate::common::gpu;
use wgconv::verify::{compare, Tolerance};
use wgconv::{separable_conv2d, Activation, Conv2dParams, Error, HostTensor, Padding, SeparableParams, Tensor};

#[test]
fn matches_the_composed_reference() {
    let Some(ctx) = gpu() else { return };
    let cases = [
        ([1, 8, 9, 9], 1, [3, 3], 12, SeparableParams { padding: Padding::Symmetric([1, 1]), ..Default::default() }),
        (
            [2, 6, 11, 10],
            2,
            [3, 3],
            5,
            SeparableParams {
                stride: [2, 2],
                padding: Padding::Symmetric([1, 1]),
                depthwise_activation: Activation::Relu6,
                pointwise_activation: Activation::Relu,
                ..Default::default()
            },
        ),
        (
            [1, 4, 7, 8],
            1,
            [5, 3],
            70,
            SeparableParams { padding: Padding::Same, dilation: [1, 2], ..Default::default() },
        ),
    ];
    for (i, (xs, mult, k, cout, p)) in cases.into_iter().enumerate() {
        let c = xs[1];
        let x = HostTensor::random(&xs, i as u64);
        let dw = HostTensor::random(&[c * mult, 1, k[0], k[1]], 10 + i as u64);
        let db = HostTensor::random(&[c * mult], 20 + i as u64);
        let pw = HostTensor::random(&[cout, c * mult, 1, 1], 30 + i as u64);
        let pb = HostTensor::random(&[cout], 40 + i as u64);
        // Reference: the two stages, the intermediate rounded to f32 as the GPU stores it.
        let dwp = Conv2dParams {
            stride: p.stride,
            padding: p.padding,
            dilation: p.dilation,
            groups: c as u32,
            activation: p.depthwise_activation,
            ..Default::default()
        };
        let (mid_shape, mid) = wgconv::reference::conv2d(&x, &dw, Some(&db), &dwp).unwrap();
        let mid = HostTensor::new(&mid_shape, mid.iter().map(|&v| v as f32).collect()).unwrap();
        let pwp = Conv2dParams { activation: p.pointwise_activation, ..Default::default() };
        let (_, r) = wgconv::reference::conv2d(&mid, &pw, Some(&pb), &pwp).unwrap();
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        for fused in [false, true] {
            for with_bias in [true, false] {
                let p = SeparableParams { fused, ..p };
                let (db_t, pb_t) = (with_bias.then(|| t(&db)), with_bias.then(|| t(&pb)));
                let y = separable_conv2d(ctx, &t(&x), &t(&dw), db_t.as_ref(), &t(&pw), pb_t.as_ref(), &p).unwrap();
                let want = if with_bias {
                    r.clone()
                } else {
                    let (ms, m) = wgconv::reference::conv2d(&x, &dw, None, &dwp).unwrap();
                    let m = HostTensor::new(&ms, m.iter().map(|&v| v as f32).collect()).unwrap();
                    wgconv::reference::conv2d(&m, &pw, None, &pwp).unwrap().1
                };
                let s = compare(&y.to_vec(ctx).unwrap(), &want);
                assert!(s.passes(Tolerance::default()), "case {i} fused={fused} bias={with_bias}: {s}");
            }
        }
    }
}

#[test]
fn bad_weights() {
    let p = SeparableParams::default();
    let fused_gelu = SeparableParams { fused: true, depthwise_activation: Activation::Gelu, ..p };
    assert!(matches!(
        fused_gelu.validate(&[1, 4, 8, 8], &[4, 1, 3, 3], None, &[6, 4, 1, 1], None),
        Err(Error::InvalidParam { name: "depthwise_activation", .. })
    ));
    assert!(matches!(
        p.validate(&[1, 4, 8, 8], &[4, 2, 3, 3], None, &[6, 4, 1, 1], None),
        Err(Error::ChannelMismatch(_))
    ));
    assert!(matches!(
        p.validate(&[1, 4, 8, 8], &[4, 1, 3, 3], None, &[6, 4, 3, 3], None),
        Err(Error::ShapeMismatch { what: "pointwise weight", .. })
    ));
    assert!(matches!(
        p.validate(&[1, 4, 8, 8], &[8, 1, 3, 3], None, &[6, 4, 1, 1], None),
        Err(Error::ChannelMismatch(_))
    ));
    assert_eq!(
        p.validate(&[1, 4, 8, 8], &[8, 1, 3, 3], None, &[6, 8, 1, 1], Some(&[6])).unwrap(),
        ([1, 8, 6, 6], [1, 6, 6, 6])
    );
}
