//! NaN and ±Inf through every fused activation, as PyTorch: NaN in, NaN out (relu, relu6 and
//! tanh used to turn it into 0, 0 and −1, and the reference dropped it for relu). The field
//! case `relu_keeps_nan` (tests/data/field) is one NaN pixel under a 3x3 conv.

use crate::common::{case, gpu, CaseExt};
use wgconv::{conv2d, Activation, Algorithm, HostTensor, Padding, Tensor};

#[test]
fn nan_and_inf_pass_every_activation_on_every_algorithm() {
    let Some(ctx) = gpu() else { return };
    let base = case(1, 3, [6, 6], 4, [3, 3]).pad(Padding::Symmetric([1, 1]));
    let (mut x, w, b) = base.seeded(9);
    x.data[14] = f32::NAN; // channel 0, row 2, column 2
    x.data[36 + 30] = f32::INFINITY; // channel 1, row 5, column 0
    let (xg, wg, bg) = (
        Tensor::from_host(ctx, &x).unwrap(),
        Tensor::from_host(ctx, &w).unwrap(),
        b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap()),
    );
    for act in Activation::ALL {
        // every activation on Auto, relu on every algorithm (each pair compiles a pipeline)
        let algos = if act == Activation::Relu { base.algorithms() } else { vec![Algorithm::Auto] };
        for algo in algos {
            let p = wgconv::Conv2dParams { algorithm: algo, activation: act, ..base.params };
            let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &p).unwrap();
            assert!(r.iter().any(|v| v.is_nan()), "the reference keeps NaN through {act:?}");
            let y = conv2d(ctx, &xg, &wg, bg.as_ref(), &p).unwrap().to_vec(ctx).unwrap();
            for (i, (g, r)) in y.iter().zip(&r).enumerate() {
                assert_eq!(g.is_nan(), r.is_nan(), "{act:?} {algo:?} output {i}: {g} vs {r}");
            }
            let stats = wgconv::verify::compare(&y, &r);
            assert!(stats.passes(wgconv::verify::Tolerance::default()), "{act:?} {algo:?}: {stats}");
        }
    }
}

#[test]
fn relu_keeps_nan_field_case() {
    let Some(ctx) = gpu() else { return };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/field/relu_keeps_nan");
    let load = |n: &str| HostTensor::read_npy(dir.join(n)).unwrap().0;
    let (x, w, b, y) = (load("x.npy"), load("w.npy"), load("b.npy"), load("y.npy"));
    for act in [Activation::Relu, Activation::Relu6, Activation::Tanh] {
        let p = wgconv::Conv2dParams {
            padding: Padding::Symmetric([1, 1]),
            activation: act,
            algorithm: Algorithm::Auto,
            ..Default::default()
        };
        let out = conv2d(
            ctx,
            &Tensor::from_host(ctx, &x).unwrap(),
            &Tensor::from_host(ctx, &w).unwrap(),
            Some(&Tensor::from_host(ctx, &b).unwrap()),
            &p,
        )
        .unwrap()
        .to_vec(ctx)
        .unwrap();
        let nan_out = out.iter().filter(|v| v.is_nan()).count();
        assert_eq!(nan_out, y.data.iter().filter(|v| v.is_nan()).count(), "{act:?}");
        for (o, e) in out.iter().zip(&y.data) {
            assert_eq!(o.is_nan(), e.is_nan(), "{act:?}");
        }
        if act == Activation::Relu {
            let expected: Vec<f64> = y.data.iter().map(|&v| v as f64).collect();
            let stats = wgconv::verify::compare(&out, &expected);
            assert!(stats.passes(wgconv::verify::Tolerance { rel_l2: 1e-4, abs: 1e-3 }), "{stats}");
        }
    }
}
