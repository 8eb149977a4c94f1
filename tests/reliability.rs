//! Reliability: invalid parameters from a generator, non-finite numbers, determinism of every
//! algorithm, 4 threads on one context, a destroyed device, tensors at the binding limit.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use wgconv::conformance::{conv2d_cases, Conv2dCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv2d, conv2d_backward, conv2d_into, conv_transpose2d, deform_conv2d, Activation, Algorithm, Conv2dParams,
    ConvTranspose2dParams, DeformConv2dParams, Error, GpuContext, Grads, HostTensor, Padding, Tensor,
};

type Check = fn(&Error) -> bool;

/// Each validation rule broken on purpose, from a valid case: the broken case and the
/// variant it must produce.
fn broken(c: &Conv2dCase) -> Vec<(&'static str, [Vec<usize>; 3], Conv2dParams, Check)> {
    let (x, w) = (c.input.to_vec(), c.weight.to_vec());
    let b = vec![c.weight[0]];
    let p = c.params;
    let mut out: Vec<(&'static str, [Vec<usize>; 3], Conv2dParams, Check)> = vec![
        ("input rank", [x[2..].to_vec(), w.clone(), b.clone()], p, |e| matches!(e, Error::Rank { what: "input", .. })),
        ("weight rank", [x.clone(), w[..3].to_vec(), b.clone()], p, |e| {
            matches!(e, Error::Rank { what: "weight", .. })
        }),
        ("zero dim", [vec![x[0], x[1], 0, x[3]], w.clone(), b.clone()], p, |e| matches!(e, Error::EmptyTensor { .. })),
        ("channels", [x.clone(), vec![w[0], w[1] + 1, w[2], w[3]], b.clone()], p, |e| {
            matches!(e, Error::ChannelMismatch(_))
        }),
        ("groups 0", [x.clone(), w.clone(), b.clone()], Conv2dParams { groups: 0, ..p }, |e| {
            matches!(e, Error::Groups(_))
        }),
        ("groups ∤ Cin", [x.clone(), w.clone(), b.clone()], Conv2dParams { groups: x[1] as u32 + 1, ..p }, |e| {
            matches!(e, Error::Groups(_))
        }),
        ("stride 0", [x.clone(), w.clone(), b.clone()], Conv2dParams { stride: [1, 0], ..p }, |e| {
            matches!(e, Error::InvalidParam { name: "stride", .. })
        }),
        ("dilation 0", [x.clone(), w.clone(), b.clone()], Conv2dParams { dilation: [0, 1], ..p }, |e| {
            matches!(e, Error::InvalidParam { name: "dilation", .. })
        }),
        (
            "same + stride",
            [x.clone(), w.clone(), b.clone()],
            Conv2dParams { padding: Padding::Same, stride: [1, 2], ..p },
            |e| matches!(e, Error::InvalidParam { name: "padding", .. }),
        ),
        ("bias length", [x.clone(), w.clone(), vec![b[0] + 1]], p, |e| matches!(e, Error::BiasShape { .. })),
        (
            "empty output",
            [x.clone(), vec![w[0], w[1], x[2] + 1, w[3]], b.clone()],
            Conv2dParams { padding: Padding::Valid, stride: [1, 1], ..p },
            |e| matches!(e, Error::EmptyOutput(_)),
        ),
        (
            "leaky slope",
            [x.clone(), w.clone(), b.clone()],
            Conv2dParams { activation: Activation::LeakyRelu(f32::NAN), ..p },
            |e| matches!(e, Error::InvalidParam { name: "activation", .. }),
        ),
    ];
    if w[2] > 1 {
        out.push(("forced gemm_1x1", [x, w, b], Conv2dParams { algorithm: Algorithm::Gemm1x1, ..p }, |e| {
            matches!(e, Error::InvalidParam { name: "algorithm", .. })
        }));
    }
    out
}

#[test]
fn every_broken_rule_is_its_error_with_no_gpu_work() {
    let Some(ctx) = common::fresh_gpu() else { return };
    let (mut checked, subs, pipes) = (0, ctx.submissions(), ctx.pipelines_compiled());
    for c in conv2d_cases(77, 60) {
        for (rule, [xs, ws, bs], params, check) in broken(&c) {
            // Host-side validation …
            let e = params.validate(&xs, &ws, Some(&bs)).expect_err(rule);
            assert!(check(&e) && e.is_invalid_input(), "{rule}: {e:?} for {c}");
            // … and through the GPU entry point.
            let t = |s: &[usize]| Tensor::empty(&ctx, s).unwrap();
            let e = conv2d(&ctx, &t(&xs), &t(&ws), Some(&t(&bs)), &params).expect_err(rule);
            assert!(check(&e), "{rule}: {e:?} for {c}");
            checked += 1;
        }
    }
    assert!(checked > 700, "{checked}");
    assert_eq!(ctx.submissions(), subs, "no GPU work was submitted for an invalid call");
    assert_eq!(ctx.pipelines_compiled(), pipes, "no pipeline was built for an invalid call");

    // Tensors of another context, and an output of the wrong shape.
    let Some(other) = common::fresh_gpu() else { return };
    let x = Tensor::empty(&ctx, &[1, 2, 5, 5]).unwrap();
    let w = Tensor::empty(&other, &[3, 2, 3, 3]).unwrap();
    let p = Conv2dParams::default();
    assert!(matches!(conv2d(&ctx, &x, &w, None, &p), Err(Error::DeviceMismatch("weight"))));
    let w = Tensor::empty(&ctx, &[3, 2, 3, 3]).unwrap();
    let y = Tensor::empty(&ctx, &[1, 3, 4, 3]).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    assert!(matches!(conv2d_into(&ctx, &mut enc, &x, &w, None, &p, &y), Err(Error::Buffer { what: "output", .. })));
    assert_eq!(ctx.submissions(), subs);
}

/// NaN and ±Inf in input and weight land where the reference puts them, for every
/// algorithm (padding contributes 0·w, so an infinite weight over padding gives NaN, as in
/// PyTorch).
#[test]
fn non_finite_values_propagate_like_the_reference() {
    let Some(ctx) = common::gpu() else { return };
    let cases = [
        (vec![1, 4, 7, 7], vec![4, 1, 3, 3], 4u32),
        (vec![2, 3, 6, 5], vec![5, 3, 3, 3], 1),
        (vec![1, 6, 4, 4], vec![3, 6, 1, 1], 1),
    ];
    for (xs, ws, groups) in cases {
        let mut x = HostTensor::random(&xs, 5);
        let mut w = HostTensor::random(&ws, 6);
        let (nx, nw) = (x.data.len(), w.data.len());
        x.data[3] = f32::NAN;
        x.data[nx / 2] = f32::INFINITY;
        x.data[nx - 2] = f32::NEG_INFINITY;
        x.data[1] = 3.0e38; // large finite values that overflow to ±Inf in a sum
        x.data[2] = 3.0e38;
        w.data[nw - 1] = f32::INFINITY;
        w.data[0] = 1e-38; // subnormal products
        for algo in std::iter::once(Algorithm::Auto).chain(Algorithm::ALL) {
            let params =
                Conv2dParams { padding: Padding::Symmetric([1, 1]), groups, algorithm: algo, ..Default::default() };
            if params.validate(&xs, &ws, None).is_err() {
                continue;
            }
            let (_, r) = wgconv::reference::conv2d(&x, &w, None, &params).unwrap();
            assert!(r.iter().any(|v| v.is_nan()) && r.iter().any(|v| v.is_infinite()));
            let xg = Tensor::from_host(ctx, &x).unwrap();
            let wg = Tensor::from_host(ctx, &w).unwrap();
            let y = conv2d(ctx, &xg, &wg, None, &params).unwrap().to_vec(ctx).unwrap();
            let mismatched: Vec<usize> = (0..y.len())
                .filter(|&i| r[i].is_nan() != y[i].is_nan() || (r[i].is_infinite() && r[i] != y[i] as f64))
                .collect();
            let show: Vec<(f64, f32)> = mismatched.iter().map(|&i| (r[i], y[i])).collect();
            assert!(mismatched.is_empty(), "{} {xs:?}: non-finite mismatch at {mismatched:?}: {show:?}", algo.name());
        }
    }
}

/// Bit-identical results run to run, for every algorithm (no float atomics anywhere).
#[test]
fn every_algorithm_is_deterministic() {
    let Some(ctx) = common::gpu() else { return };
    for (xs, ws, groups) in [(vec![2, 8, 13, 11], vec![8, 1, 3, 3], 8u32), (vec![1, 16, 9, 9], vec![12, 16, 1, 1], 1)] {
        let x = Tensor::from_host(ctx, &HostTensor::random(&xs, 1)).unwrap();
        let w = Tensor::from_host(ctx, &HostTensor::random(&ws, 2)).unwrap();
        for algo in Algorithm::ALL {
            let p = Conv2dParams { groups, algorithm: algo, ..Default::default() };
            if p.validate(&xs, &ws, None).is_err() {
                continue;
            }
            let first = conv2d(ctx, &x, &w, None, &p).unwrap().to_vec(ctx).unwrap();
            for _ in 0..3 {
                let again = conv2d(ctx, &x, &w, None, &p).unwrap().to_vec(ctx).unwrap();
                assert!(first.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", algo.name());
            }
        }
    }
}

/// Four threads, four different ops (conv2d, conv_transpose2d, deform_conv2d, conv2d
/// backward), one context, 300 calls in all: every result equals the single-threaded one bit
/// for bit, and the whole thing finishes (bounded wait).
#[test]
fn four_threads_share_one_context() {
    let Some(ctx) = common::fresh_gpu() else { return };
    let ctx = std::sync::Arc::new(ctx);
    type Job = fn(&GpuContext) -> Vec<u32>;
    let jobs: [Job; 4] = [
        |ctx| {
            let (x, w) = (
                Tensor::from_host(ctx, &HostTensor::random(&[1, 8, 12, 12], 1)).unwrap(),
                Tensor::from_host(ctx, &HostTensor::random(&[8, 8, 3, 3], 2)).unwrap(),
            );
            let p = Conv2dParams { padding: Padding::Same, activation: Activation::Relu, ..Default::default() };
            conv2d(ctx, &x, &w, None, &p).unwrap().to_vec(ctx).unwrap().iter().map(|v| v.to_bits()).collect()
        },
        |ctx| {
            let (x, w) = (
                Tensor::from_host(ctx, &HostTensor::random(&[1, 6, 7, 7], 3)).unwrap(),
                Tensor::from_host(ctx, &HostTensor::random(&[6, 2, 4, 4], 4)).unwrap(),
            );
            let p = ConvTranspose2dParams {
                stride: [2, 2],
                padding: Padding::Symmetric([1, 1]),
                groups: 2,
                ..Default::default()
            };
            conv_transpose2d(ctx, &x, &w, None, &p).unwrap().to_vec(ctx).unwrap().iter().map(|v| v.to_bits()).collect()
        },
        |ctx| {
            let t = |s: &[usize], seed| Tensor::from_host(ctx, &HostTensor::random(s, seed)).unwrap();
            let (x, w, o, m) = (t(&[1, 4, 8, 8], 5), t(&[4, 4, 3, 3], 6), t(&[1, 36, 8, 8], 7), t(&[1, 18, 8, 8], 8));
            let p = DeformConv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
            deform_conv2d(ctx, &x, &w, &o, Some(&m), None, &p)
                .unwrap()
                .to_vec(ctx)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        },
        |ctx| {
            let t = |s: &[usize], seed| Tensor::from_host(ctx, &HostTensor::random(s, seed)).unwrap();
            let (x, w, dy) = (t(&[2, 4, 9, 9], 9), t(&[6, 4, 3, 3], 10), t(&[2, 6, 4, 4], 11));
            let p = Conv2dParams { stride: [2, 2], ..Default::default() };
            let g = conv2d_backward(ctx, &x, &w, &dy, &p, Grads::ALL).unwrap();
            [g.grad_input, g.grad_weight, g.grad_bias]
                .into_iter()
                .flat_map(|t| t.unwrap().to_vec(ctx).unwrap())
                .map(|v| v.to_bits())
                .collect()
        },
    ];
    let expected: Vec<Vec<u32>> = jobs.iter().map(|j| j(&ctx)).collect();
    let (tx, rx) = mpsc::channel();
    const ITERS: usize = 75;
    for (t, job) in jobs.into_iter().enumerate() {
        let (ctx, tx, want) = (ctx.clone(), tx.clone(), expected[t].clone());
        std::thread::spawn(move || {
            let ok = (0..ITERS).all(|_| job(&ctx) == want);
            let _ = tx.send((t, ok));
        });
    }
    drop(tx);
    for _ in 0..4 {
        let (t, ok) = rx.recv_timeout(Duration::from_secs(240)).expect("a thread hung (no result within 240 s)");
        assert!(ok, "thread {t} got a result different from the single-threaded run");
    }
}

/// deform_conv2d (both algorithms) is bit-identical run to run too.
#[test]
fn deform_conv2d_is_deterministic() {
    let Some(ctx) = common::gpu() else { return };
    let t = |s: &[usize], seed| Tensor::from_host(ctx, &HostTensor::random(s, seed)).unwrap();
    let (x, w, o, m) = (t(&[2, 8, 10, 10], 1), t(&[8, 8, 3, 3], 2), t(&[2, 36, 10, 10], 3), t(&[2, 18, 10, 10], 4));
    for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        let p = DeformConv2dParams { padding: Padding::Symmetric([1, 1]), algorithm, ..Default::default() };
        let first = deform_conv2d(ctx, &x, &w, &o, Some(&m), None, &p).unwrap().to_vec(ctx).unwrap();
        for _ in 0..3 {
            let again = deform_conv2d(ctx, &x, &w, &o, Some(&m), None, &p).unwrap().to_vec(ctx).unwrap();
            assert!(first.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", algorithm.name());
        }
    }
}

/// A destroyed device is reported as an error by every later call; nothing hangs or panics.
#[test]
fn a_destroyed_device_is_an_error() {
    let Some(ctx) = common::fresh_gpu() else { return };
    let x = Tensor::from_host(&ctx, &HostTensor::random(&[1, 2, 6, 6], 1)).unwrap();
    let w = Tensor::from_host(&ctx, &HostTensor::random(&[2, 2, 3, 3], 2)).unwrap();
    let p = Conv2dParams::default();
    conv2d(&ctx, &x, &w, None, &p).unwrap().to_vec(&ctx).unwrap();
    ctx.device().destroy();
    let e = conv2d(&ctx, &x, &w, None, &p).and_then(|y| y.to_vec(&ctx)).unwrap_err();
    assert!(matches!(e, Error::DeviceLost(_) | Error::Validation(_)), "{e:?}");
    assert!(matches!(ctx.check_alive(), Err(Error::DeviceLost(_))), "the context says it must be recreated");
    assert!(matches!(x.to_vec(&ctx), Err(Error::DeviceLost(_))));
    assert!(matches!(Tensor::from_slice(&ctx, &[2], &[1.0, 2.0]), Err(Error::DeviceLost(_))));
}

/// The largest tensors one binding holds (128 MiB on lavapipe), through each kernel family:
/// every index the kernels form is below the element count of one binding (< 2^30 for any
/// binding ≤ 4 GiB), so u32 indexing cannot overflow; the last elements are checked here.
#[test]
fn tensors_at_the_binding_limit() {
    let Some(ctx) = common::fresh_gpu() else { return };
    let max = ctx.limits().max_storage_buffer_binding_size as usize / 4;
    // [1, 64, s, s] and [1, 1, S, S] with 64·s² and S² just under one binding.
    let s = ((max / 64) as f64).sqrt() as usize;
    let big = ((max as f64).sqrt() as usize) / 8 * 8;
    let cases: Vec<(Vec<usize>, Vec<usize>, Conv2dParams)> = vec![
        // 1x1 GEMM: input and output of 64·s² floats
        (vec![1, 64, s, s], vec![64, 64, 1, 1], Conv2dParams::default()),
        // implicit GEMM over a one-binding input, output 64·(S/8)² floats
        (
            vec![1, 1, big, big],
            vec![64, 1, 3, 3],
            Conv2dParams { stride: [8, 8], padding: Padding::Symmetric([1, 1]), ..Default::default() },
        ),
        // depthwise: input and output of S² floats
        (vec![1, 1, big, big], vec![1, 1, 3, 3], Conv2dParams { padding: Padding::Same, ..Default::default() }),
    ];
    for (xs, ws, mut params) in cases {
        params.algorithm = if ws[2] == 1 {
            Algorithm::Gemm1x1
        } else if ws[0] == 1 {
            Algorithm::Depthwise
        } else {
            Algorithm::ImplicitGemm
        };
        let x = HostTensor::random(&xs, 3);
        let w = HostTensor::random(&ws, 4);
        let g = params.validate(&x.shape, &w.shape, None).unwrap();
        let (xg, wg) = (Tensor::from_host(&ctx, &x).unwrap(), Tensor::from_host(&ctx, &w).unwrap());
        let y = conv2d(&ctx, &xg, &wg, None, &params).unwrap().to_vec(&ctx).unwrap();
        let n = y.len();
        assert!(n * 4 > ctx.limits().max_storage_buffer_binding_size as usize * 9 / 10, "{n}");
        let row = g.w_out as usize;
        for i in [0, 1, row - 1, row, n / 2, n - row - 1, n - row, n - 2, n - 1] {
            let r = wgconv::reference::conv2d_at(&x, &w, None, &g, i);
            assert!(
                compare(&y[i..=i], &[r]).passes(Tolerance::default()),
                "{} at {i}: {} vs {r}",
                params.algorithm.name(),
                y[i]
            );
        }
    }
    // One element more than a binding holds: a clear error.
    let too_big = Tensor::empty(&ctx, &[1, 1, 1, max + 1]).unwrap();
    let w = Tensor::empty(&ctx, &[1, 1, 1, 1]).unwrap();
    assert!(matches!(conv2d(&ctx, &too_big, &w, None, &Conv2dParams::default()), Err(Error::TooLarge(_))));
}

/// Waits are bounded: a GPU that has not finished within `wait_timeout` is an error, not a
/// hang, and the context keeps working once the work is done.
#[test]
fn waits_are_bounded() {
    let Some(ctx) = common::fresh_gpu() else { return };
    let x = Tensor::from_host(&ctx, &HostTensor::random(&[8, 64, 28, 28], 1)).unwrap();
    let w = Tensor::from_host(&ctx, &HostTensor::random(&[64, 64, 3, 3], 2)).unwrap();
    let p = Conv2dParams { padding: Padding::Same, ..Default::default() };
    conv2d(&ctx, &x, &w, None, &p).unwrap().to_vec(&ctx).unwrap(); // compile outside the timed part
    let cfg = ctx.config();
    ctx.set_config(wgconv::EngineConfig { wait_timeout: Duration::from_millis(1), ..cfg });
    // ~0.9 GFLOP: ~100 ms on lavapipe.
    let y = conv2d(&ctx, &x, &w, None, &p).unwrap();
    // (Waiting right after the submit: on lavapipe a second submit itself blocks until the
    // queue drains, so a readback's own copy would absorb the time before the wait starts.)
    let t0 = std::time::Instant::now();
    let waited = ctx.wait(None);
    // The conv takes ~100 ms on lavapipe: a wait that returns within 40 ms was bounded by
    // the timeout (a fast GPU may also have finished: Ok).
    assert!(t0.elapsed() < Duration::from_millis(40), "{:?}", t0.elapsed());
    assert!(matches!(waited, Err(Error::Timeout(_)) | Ok(())), "{waited:?}");
    ctx.set_config(cfg);
    let (_, r) = wgconv::reference::conv2d(
        &HostTensor::random(&[8, 64, 28, 28], 1),
        &HostTensor::random(&[64, 64, 3, 3], 2),
        None,
        &p,
    )
    .unwrap();
    assert!(compare(&y.to_vec(&ctx).unwrap(), &r).passes(Tolerance::default()));
}

/// The same for conv_transpose2d and deform_conv2d: each rule broken from random valid
/// cases, the matching variant from host-side validation and from the GPU entry point, and no
/// command buffer submitted.
#[test]
fn transposed_and_deformable_rules_are_their_errors() {
    use wgconv::conformance::{conv_transpose2d_cases, deform_conv2d_cases};
    let Some(ctx) = common::fresh_gpu() else { return };
    let subs = ctx.submissions();
    let t = |s: &[usize]| Tensor::empty(&ctx, s).unwrap();
    let mut checked = 0;
    for c in conv_transpose2d_cases(78, 40) {
        let (x, w) = (c.input.to_vec(), c.weight.to_vec());
        let p = c.params;
        let limit = |a: usize| p.stride[a].max(p.dilation[a]);
        type Rule = (&'static str, Vec<usize>, Vec<usize>, ConvTranspose2dParams, Check);
        let rules: Vec<Rule> = vec![
            ("rank", x[2..].to_vec(), w.clone(), p, |e| matches!(e, Error::Rank { what: "input", .. })),
            ("weight Cin", x.clone(), vec![w[0] + 1, w[1], w[2], w[3]], p, |e| matches!(e, Error::ChannelMismatch(_))),
            ("groups 0", x.clone(), w.clone(), ConvTranspose2dParams { groups: 0, ..p }, |e| {
                matches!(e, Error::Groups(_))
            }),
            ("groups ∤ Cin", x.clone(), w.clone(), ConvTranspose2dParams { groups: x[1] as u32 + 1, ..p }, |e| {
                matches!(e, Error::Groups(_))
            }),
            ("stride 0", x.clone(), w.clone(), ConvTranspose2dParams { stride: [0, 1], ..p }, |e| {
                matches!(e, Error::InvalidParam { name: "stride", .. })
            }),
            ("same", x.clone(), w.clone(), ConvTranspose2dParams { padding: Padding::Same, ..p }, |e| {
                matches!(e, Error::InvalidParam { name: "padding", .. })
            }),
            (
                "output_padding",
                x.clone(),
                w.clone(),
                ConvTranspose2dParams { output_padding: [limit(0), 0], ..p },
                |e| matches!(e, Error::InvalidParam { name: "output_padding", .. }),
            ),
            (
                "crop everything",
                x.clone(),
                w.clone(),
                ConvTranspose2dParams { padding: Padding::Symmetric([10_000, 0]), ..p },
                |e| matches!(e, Error::EmptyOutput(_)),
            ),
        ];
        for (rule, xs, ws, params, check) in rules {
            let e = params.validate(&xs, &ws, None).expect_err(rule);
            assert!(check(&e) && e.is_invalid_input(), "{rule}: {e:?} for {c}");
            let e = conv_transpose2d(&ctx, &t(&xs), &t(&ws), None, &params).expect_err(rule);
            assert!(check(&e), "{rule}: {e:?}");
            checked += 1;
        }
    }
    for c in deform_conv2d_cases(79, 40) {
        let (x, w) = (c.conv.input.to_vec(), c.conv.weight.to_vec());
        let p = c.params();
        let g = p.validate(&x, &w, None).unwrap();
        let (n, taps, ho, wo) = (x[0], w[2] * w[3], g.h_out as usize, g.w_out as usize);
        let og = c.offset_groups;
        let off = vec![n, 2 * og * taps, ho, wo];
        let mask = vec![n, og * taps, ho, wo];
        type Rule = (&'static str, Vec<usize>, Option<Vec<usize>>, Check);
        let rules: Vec<Rule> = vec![
            ("offset channels", vec![n, 2 * og * taps + 1, ho, wo], None, |e| matches!(e, Error::ChannelMismatch(_))),
            ("offset groups ∤ Cin", vec![n, 2 * (x[1] + 1) * taps, ho, wo], None, |e| matches!(e, Error::Groups(_))),
            ("offset size", vec![n, 2 * og * taps, ho + 1, wo], None, |e| {
                matches!(e, Error::ShapeMismatch { what: "offset", .. })
            }),
            ("offset batch", vec![n + 1, 2 * og * taps, ho, wo], None, |e| {
                matches!(e, Error::ShapeMismatch { what: "offset", .. })
            }),
            ("mask channels", off.clone(), Some(vec![n, og * taps + 1, ho, wo]), |e| {
                matches!(e, Error::ShapeMismatch { what: "mask", .. })
            }),
            ("mask rank", off.clone(), Some(mask[1..].to_vec()), |e| matches!(e, Error::Rank { what: "mask", .. })),
        ];
        for (rule, os, ms, check) in rules {
            let e = p.validate_deform(&x, &w, &os, ms.as_deref(), None).expect_err(rule);
            assert!(check(&e) && e.is_invalid_input(), "{rule}: {e:?} for {c}");
            let mg = ms.as_deref().map(t);
            let e = deform_conv2d(&ctx, &t(&x), &t(&w), &t(&os), mg.as_ref(), None, &p).expect_err(rule);
            assert!(check(&e), "{rule}: {e:?}");
            checked += 1;
        }
        assert!(p.validate_deform(&x, &w, &off, Some(&mask), None).is_ok());
    }
    assert!(checked >= 500, "{checked}");
    assert_eq!(ctx.submissions(), subs, "no GPU work was submitted for an invalid call");
}
