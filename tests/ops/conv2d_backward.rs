//! conv2d backward on the GPU against the naive f64 loops, PyTorch autograd goldens and
//! finite differences; determinism; bad input.

use crate::common::{case, gpu, Case, CaseExt};
use wgconv::verify::{compare, Tolerance};
use wgconv::{conv2d_backward, Activation, Conv2dParams, Error, Grads, HostTensor, Padding, Tensor};

fn sym(h: u32, w: u32) -> Padding {
    Padding::Symmetric([h, w])
}

fn cases() -> Vec<Case> {
    vec![
        case(1, 3, [6, 6], 4, [3, 3]).pad(sym(1, 1)),
        case(2, 5, [7, 9], 3, [3, 3]),
        case(2, 3, [8, 7], 2, [3, 3]).stride([2, 2]),
        case(1, 3, [9, 10], 2, [3, 3]).stride([3, 2]).pad(sym(1, 0)),
        case(1, 2, [11, 9], 3, [3, 2]).dil([2, 2]).pad(Padding::Explicit { top: 2, left: 0, bottom: 1, right: 1 }),
        case(1, 4, [6, 6], 6, [3, 3]).groups(2).pad(sym(1, 1)),
        case(2, 8, [5, 7], 4, [3, 3]).groups(4).stride([2, 1]),
        case(1, 6, [7, 7], 6, [3, 3]).groups(6).pad(sym(1, 1)),
        case(2, 3, [7, 7], 6, [3, 3]).groups(3).stride([2, 2]).pad(sym(1, 1)),
        case(1, 8, [5, 5], 4, [1, 1]),
        case(3, 2, [4, 5], 3, [1, 1]).stride([2, 2]),
        case(1, 3, [7, 6], 2, [4, 2]).pad(Padding::Same),
        case(1, 2, [3, 3], 2, [5, 5]).pad(sym(2, 2)),
        case(1, 3, [13, 13], 4, [7, 7]).stride([2, 2]).pad(sym(3, 3)),
        case(1, 37, [6, 6], 19, [3, 3]).pad(sym(1, 1)),
        case(2, 16, [9, 9], 70, [3, 3]).pad(sym(1, 1)),
        case(1, 3, [1, 1], 2, [3, 3]).pad(sym(1, 1)),
        case(1, 5, [12, 5], 3, [2, 3]).stride([3, 1]).dil([1, 2]),
        case(2, 4, [10, 10], 4, [3, 3]).dil([3, 3]).pad(sym(3, 3)),
        case(1, 9, [8, 8], 9, [5, 5]).groups(9).stride([2, 2]).pad(sym(2, 2)),
        // depthwise 7x7 (49 taps: grad_weight's tap chunks), channel multiplier 2
        case(1, 4, [9, 9], 8, [7, 7]).groups(4).pad(sym(3, 3)),
        // depthwise with dilation above the stride and not a multiple of it (grad_input's
        // division-free stepping of (q, r))
        case(2, 3, [11, 10], 3, [3, 3]).groups(3).stride([2, 3]).dil([3, 2]).pad(sym(2, 1)),
        // depthwise: stride 2 on an odd width and a width below the stride (grad_input's
        // column phases), stride 4 with multiplier 3, a 1x7, windows too long for the
        // specialised paths (dilation 20 and 30, stride 1 and 2: both gradients unspecialised)
        case(2, 3, [9, 9], 3, [3, 3]).groups(3).stride([2, 2]).pad(sym(1, 1)),
        case(1, 2, [5, 1], 2, [3, 3]).groups(2).stride([2, 2]).pad(sym(1, 1)),
        case(1, 2, [9, 17], 6, [2, 3]).groups(2).stride([1, 4]).pad(sym(0, 1)),
        case(1, 3, [6, 12], 3, [1, 7]).groups(3).pad(sym(0, 3)),
        case(1, 2, [5, 44], 2, [3, 3]).groups(2).dil([1, 20]).pad(sym(1, 2)),
        case(1, 2, [4, 64], 4, [1, 3]).groups(2).stride([1, 2]).dil([1, 30]).pad(sym(0, 1)),
        // depthwise grad_weight's walk down columns: strips of a tall image in two images
        // (more strips than invocations, the last strip short), and a vertical stride
        // other than the horizontal one (rows kept between dy rows: 1 of 3)
        case(2, 3, [61, 30], 3, [3, 3]).groups(3).pad(sym(1, 1)),
        case(1, 2, [23, 13], 4, [3, 3]).groups(2).stride([2, 1]).pad(sym(1, 0)),
        // a stride wider than the image (one column phase of nine holds columns)
        case(1, 2, [40, 5], 2, [1, 3]).groups(2).stride([1, 9]).pad(sym(0, 1)),
        // conv1d's view: one row, three column phases (failed on GL only, seventh session's
        // cross matrix)
        case(3, 8, [1, 7], 8, [1, 2]).groups(8).stride([1, 3]),
    ]
}

fn tensors(c: &Case, seed: u64) -> (HostTensor, HostTensor, HostTensor) {
    let (x, w, _) = c.seeded(seed);
    let shape = c.params.output_shape(&x.shape, &w.shape).unwrap();
    (x, w, HostTensor::random(&shape, seed ^ 0xd1))
}

fn gpu_grads(
    ctx: &wgconv::GpuContext,
    x: &HostTensor,
    w: &HostTensor,
    dy: &HostTensor,
    p: &Conv2dParams,
) -> [Vec<f32>; 3] {
    let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    let g = conv2d_backward(ctx, &t(x), &t(w), &t(dy), p, Grads::ALL).unwrap();
    [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.unwrap().to_vec(ctx).unwrap())
}

#[test]
fn gradients_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut failures = Vec::new();
    for (i, c) in cases().iter().enumerate() {
        let (x, w, dy) = tensors(c, 40 + i as u64);
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let [dx, dw, db] = gpu_grads(ctx, &x, &w, &dy, &c.params);
        for (name, got, want) in [("grad_input", &dx, &rdx), ("grad_weight", &dw, &rdw), ("grad_bias", &db, &rdb)] {
            let s = compare(got, want);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("case {i} {name} {c:?}: {s}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// grad_weight (the gathering GEMM) and grad_input (the transposed phases) through every
/// register blocking of the tiled GEMM: Auto runs the flat kernel's pixel walk on CPU adapters
/// and the shared-memory 8×8 one on GPUs, and each must stay right on every case.
#[test]
fn every_gemm_kernel_matches_reference() {
    use wgconv::{EngineConfig, GemmKernel};
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let mut failures = Vec::new();
    for kernel in [GemmKernel::Block4x4, GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            let (x, w, dy) = tensors(c, 140 + i as u64);
            let (rdx, rdw, _) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
            let [dx, dw, _] = gpu_grads(&ctx, &x, &w, &dy, &c.params);
            for (name, got, want) in [("grad_input", &dx, &rdx), ("grad_weight", &dw, &rdw)] {
                let s = compare(got, want);
                if !s.passes(Tolerance::default()) {
                    failures.push(format!("{kernel:?} case {i} {name} {c:?}: {s}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn only_the_requested_gradients() {
    let Some(ctx) = gpu() else { return };
    let c = case(1, 4, [5, 5], 2, [3, 3]);
    let (x, w, dy) = tensors(&c, 1);
    let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    let g = conv2d_backward(ctx, &t(&x), &t(&w), &t(&dy), &c.params, Grads { input: false, weight: true, bias: false })
        .unwrap();
    assert!(g.grad_input.is_none() && g.grad_bias.is_none());
    assert_eq!(g.grad_weight.unwrap().shape(), w.shape.as_slice());
}

/// L = Σ dy ⊙ conv(x, w, b) is linear in each argument, so a central difference is exact up
/// to rounding: it checks the analytic GPU gradients against the forward reference alone.
#[test]
#[allow(clippy::needless_range_loop)] // index loops: each perturbs element i
fn finite_differences() {
    let Some(ctx) = gpu() else { return };
    let c = case(1, 2, [5, 4], 3, [3, 2]).stride([2, 1]).pad(sym(1, 1));
    let (x, w, dy) = tensors(&c, 7);
    let b = HostTensor::random(&[3], 8);
    let loss = |x: &HostTensor, w: &HostTensor, b: &HostTensor| -> f64 {
        let (_, y) = wgconv::reference::conv2d(x, w, Some(b), &c.params).unwrap();
        y.iter().zip(&dy.data).map(|(y, d)| y * *d as f64).sum()
    };
    let [dx, dw, db] = gpu_grads(ctx, &x, &w, &dy, &c.params);
    let eps = 0.5f32;
    let fd = |f: &dyn Fn(f32) -> f64| (f(eps) - f(-eps)) / (2.0 * eps as f64);
    for i in 0..x.data.len() {
        let f = |e: f32| {
            let mut x2 = x.clone();
            x2.data[i] += e;
            loss(&x2, &w, &b)
        };
        assert!((fd(&f) - dx[i] as f64).abs() < 1e-4, "dx[{i}]: fd {} vs {}", fd(&f), dx[i]);
    }
    for i in 0..w.data.len() {
        let f = |e: f32| {
            let mut w2 = w.clone();
            w2.data[i] += e;
            loss(&x, &w2, &b)
        };
        assert!((fd(&f) - dw[i] as f64).abs() < 1e-4, "dw[{i}]: fd {} vs {}", fd(&f), dw[i]);
    }
    for i in 0..3 {
        let f = |e: f32| {
            let mut b2 = b.clone();
            b2.data[i] += e;
            loss(&x, &w, &b2)
        };
        assert!((fd(&f) - db[i] as f64).abs() < 1e-4, "db[{i}]");
    }
    // Rows a stride-2 conv never reads get zero input gradient: here none (pad 1, k 3), but
    // with padding 0 the last row of a 6-row input is never read.
    let c2 = case(1, 1, [6, 3], 1, [3, 3]).stride([2, 1]);
    let (x, w, dy) = tensors(&c2, 9);
    let [dx, _, _] = gpu_grads(ctx, &x, &w, &dy, &c2.params);
    assert!(dx[5 * 3..].iter().all(|&v| v == 0.0), "{:?}", &dx[15..]);
    assert!(dx[..15].iter().any(|&v| v != 0.0));
}

#[test]
fn deterministic() {
    let Some(ctx) = gpu() else { return };
    // A dense conv (GEMM paths) and a depthwise one (its own kernels).
    for c in [
        case(2, 16, [12, 12], 32, [3, 3]).pad(sym(1, 1)).stride([2, 2]),
        case(2, 8, [13, 11], 16, [3, 3]).pad(sym(1, 1)).groups(8).stride([2, 1]),
    ] {
        let (x, w, dy) = tensors(&c, 3);
        let first = gpu_grads(ctx, &x, &w, &dy, &c.params);
        for _ in 0..3 {
            let again = gpu_grads(ctx, &x, &w, &dy, &c.params);
            for (a, b) in first.iter().zip(&again) {
                assert!(a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let Some(ctx) = gpu() else { return };
    let c = case(1, 2, [5, 5], 3, [3, 3]);
    let (x, w, dy) = tensors(&c, 1);
    let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    let wrong = Tensor::empty(ctx, &[1, 3, 4, 3]).unwrap();
    let e = conv2d_backward(ctx, &t(&x), &t(&w), &wrong, &c.params, Grads::ALL).unwrap_err();
    assert!(matches!(e, Error::Buffer { what: "grad_output", .. }), "{e}");
    let p = Conv2dParams { activation: Activation::Relu, ..c.params };
    let e = conv2d_backward(ctx, &t(&x), &t(&w), &t(&dy), &p, Grads::ALL).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { name: "activation", .. }), "{e}");
    let p = Conv2dParams { groups: 2, ..c.params };
    // groups 2 does not divide Cout = 3
    assert!(matches!(conv2d_backward(ctx, &t(&x), &t(&w), &t(&dy), &p, Grads::ALL), Err(Error::Groups(_))));
}

#[test]
fn pytorch_autograd_golden_cases() {
    let cases = crate::common::goldens("conv2d_backward");
    assert!(cases.len() >= 6);
    for c in cases {
        let name = &c.name;
        let p = Conv2dParams {
            stride: c.pair("stride"),
            padding: c.padding(),
            dilation: c.pair("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w, dy) = (c.load("input"), c.load("weight"), c.load("grad_output"));
        let want: Vec<Vec<f64>> = ["grad_input", "grad_weight", "grad_bias"].iter().map(|f| c.expected(f)).collect();
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &p).unwrap();
        for (r, t) in [rdx, rdw, rdb].iter().zip(&want) {
            let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
            assert!(compare(&r32, t).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{name}: reference vs torch");
        }
        let Some(ctx) = gpu() else { continue };
        let got = gpu_grads(ctx, &x, &w, &dy, &p);
        for (k, (g, t)) in got.iter().zip(&want).enumerate() {
            let s = compare(g, t);
            assert!(s.passes(Tolerance::default()), "{name} grad {k}: GPU vs torch autograd: {s}");
        }
    }
}

/// f16 storage (every tensor; f32 accumulation in every kernel) on every case, depthwise ones
/// included, with the GPU-default 8×8 and the flat GEMM kernels: each gradient exactly
/// f16-representable and within one f16 rounding of the f64 reference of the f16-rounded
/// inputs; mixed dtypes are an error before any GPU work.
#[test]
fn f16_storage_matches_reference() {
    use wgconv::{DType, EngineConfig, GemmKernel};
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let mut failures = Vec::new();
    for kernel in [GemmKernel::Block8x8, GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            let (x, w, dy) = tensors(c, 60 + i as u64);
            let (x, w, dy) = (x.rounded_to(DType::F16), w.rounded_to(DType::F16), dy.rounded_to(DType::F16));
            let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
            let g = conv2d_backward(&ctx, &h(&x), &h(&w), &h(&dy), &c.params, Grads::ALL)
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            let grads = [
                ("grad_input", g.grad_input, rdx),
                ("grad_weight", g.grad_weight, rdw),
                ("grad_bias", g.grad_bias, rdb),
            ];
            for (name, got, want) in grads {
                let got = got.unwrap();
                assert_eq!(got.dtype(), DType::F16, "case {i} {name}");
                let got = got.to_vec(&ctx).unwrap();
                assert!(crate::common::all_f16(&got), "case {i} {name}: not f16 values");
                let s = compare(&got, &want);
                if !s.passes(crate::common::F16_TOLERANCE) {
                    failures.push(format!("{kernel:?} case {i} {name} {c:?}: {s}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let c = &cases()[0];
    let (x, w, dy) = tensors(c, 3);
    let subs = ctx.submissions();
    let e = conv2d_backward(&ctx, &h(&x), &h(&w), &Tensor::from_host(&ctx, &dy).unwrap(), &c.params, Grads::ALL)
        .unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch(_)), "{e}");
    assert_eq!(ctx.submissions(), subs);
}

/// NaN and ±∞ in the input, the weight and grad_output, next to the padding: every gradient
/// is NaN, +∞ or −∞ exactly where the reference's sums are (autograd through the zero
/// padding: grad_weight sums dy·0 where a tap reads it, grad_input has no term there),
/// finite elsewhere and close. On a
/// dense conv (the GEMM paths) and on depthwise ones: 3x3 at stride 1 and 2 (the specialised
/// kernels) and a dilation whose window is too long for them (the unspecialised loops).
#[test]
fn nan_and_infinity_reach_exactly_the_reference_gradients() {
    let Some(ctx) = gpu() else { return };
    let dense = case(1, 2, [7, 8], 3, [3, 3]).pad(sym(1, 1));
    let dw = |s: u32| case(2, 3, [7, 9], 3, [3, 3]).groups(3).stride([s, s]).pad(sym(1, 1));
    let long = case(1, 2, [5, 44], 4, [3, 3]).groups(2).dil([1, 20]).pad(sym(1, 2));
    for (k, c) in [dense, dw(1), dw(2), long].into_iter().enumerate() {
        let (mut x, mut w, mut dy) = tensors(&c, 90 + k as u64);
        // the input's first and last elements (corners: taps there meet the padding)
        x.data[0] = f32::INFINITY;
        let last = x.data.len() - 1;
        x.data[last] = f32::NAN;
        // one tap of the second output channel, a corner of grad_output's first plane and
        // the middle of its last
        let tap = w.data.len() / w.shape[0] + 4;
        w.data[tap] = f32::NEG_INFINITY;
        let plane = dy.shape[2] * dy.shape[3];
        dy.data[plane - 1] = f32::NAN;
        let lastp = dy.data.len() - plane / 2 - 1;
        dy.data[lastp] = f32::INFINITY;
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let got = gpu_grads(ctx, &x, &w, &dy, &c.params);
        for ((name, got), want) in ["grad_input", "grad_weight", "grad_bias"].iter().zip(&got).zip([rdx, rdw, rdb]) {
            crate::special_values::assert_same_specials(&format!("case {k} {c:?} {name}"), got, &want);
        }
    }
}

/// grad_weight of few tiles over a long K runs its K in slices side by side, summed in order
/// by `slot_sum.wgsl` (ResNet's stem: one 64×147 tile over K = 12544 ran in one workgroup,
/// one core of lavapipe's two, one multiprocessor of a GPU's hundreds): the plan lists the
/// slices and their sum, every GEMM kernel and f16 give the reference's values, the bits are
/// the same run to run, grouped convs and batches too; a loop budget no slice fits below 64
/// slices falls back to K in passes.
#[test]
fn grad_weight_of_few_tiles_sums_its_k_in_slices_side_by_side() {
    use wgconv::{DType, EngineConfig, GemmKernel};
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let base = ctx.config();
    let only_weight = Grads { input: false, weight: true, bias: false };
    // (case, slices): K = N·Ho·Wo = 3200, 4608, 900 over N = 27, 18 and 147 columns (one or
    // two tiles of 128); 32 workgroups wanted, at least 256 k a slice
    let split = [
        (case(2, 3, [40, 40], 8, [3, 3]).pad(sym(1, 1)), 12),
        (case(2, 4, [48, 48], 8, [3, 3]).groups(2).pad(sym(1, 1)), 18),
        (case(1, 3, [60, 60], 16, [7, 7]).stride([2, 2]).pad(sym(3, 3)), 3),
    ];
    let t = |h: &HostTensor| Tensor::from_host(&ctx, h).unwrap();
    let mut failures = Vec::new();
    for (i, (c, slices)) in split.iter().enumerate() {
        let (x, w, dy) = tensors(c, 500 + i as u64);
        let (_, rdw, _) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let plan = wgconv::plan_conv2d_backward(&ctx, &x.shape, &w.shape, &c.params, DType::F32, only_weight).unwrap();
        let summed = plan.steps.iter().filter(|s| s.shader == wgconv::shaders::ShaderId::SlotSum).count();
        assert_eq!(summed, 1, "case {i}:\n{plan}");
        assert!(plan.steps[0].note.contains(&format!("in {slices} slices")), "case {i}:\n{plan}");
        for kernel in [GemmKernel::Auto, GemmKernel::Block4x4, GemmKernel::Block8x8, GemmKernel::Block16x16] {
            ctx.set_config(EngineConfig { gemm_kernel: kernel, ..base });
            let run = || {
                let g = conv2d_backward(&ctx, &t(&x), &t(&w), &t(&dy), &c.params, only_weight).unwrap();
                g.grad_weight.unwrap().to_vec(&ctx).unwrap()
            };
            let dw = run();
            let s = compare(&dw, &rdw);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("case {i} {kernel:?}: {s}"));
            }
            let again = run();
            assert!(
                dw.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()),
                "case {i} {kernel:?}: not repeatable"
            );
        }
    }
    ctx.set_config(base);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // f16 storage: f32 slices, one f16 rounding at the end
    if let Some(hctx) = crate::common::fresh_f16_gpu() {
        let (c, _) = &split[0];
        let (x, w, dy) = tensors(c, 77);
        let (x, w, dy) = (x.rounded_to(DType::F16), w.rounded_to(DType::F16), dy.rounded_to(DType::F16));
        let (_, rdw, _) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let h = |t: &HostTensor| Tensor::from_slice_as(&hctx, &t.shape, &t.data, DType::F16).unwrap();
        let plan = wgconv::plan_conv2d_backward(&hctx, &x.shape, &w.shape, &c.params, DType::F16, only_weight).unwrap();
        assert!(plan.steps.iter().any(|s| s.shader == wgconv::shaders::ShaderId::SlotSumHalf), "{plan}");
        let g = conv2d_backward(&hctx, &h(&x), &h(&w), &h(&dy), &c.params, only_weight).unwrap();
        let s = compare(&g.grad_weight.unwrap().to_vec(&hctx).unwrap(), &rdw);
        assert!(s.passes(crate::common::F16_TOLERANCE), "f16: {s}");
    }
    // a loop budget of 40 turns: 64 slices of 48 k cannot cover K = 3200, so K runs in passes
    ctx.set_config(EngineConfig { loop_budget: 40, ..base });
    let (c, _) = &split[0];
    let (x, w, dy) = tensors(c, 9);
    let plan = wgconv::plan_conv2d_backward(&ctx, &x.shape, &w.shape, &c.params, DType::F32, only_weight).unwrap();
    assert!(plan.steps.iter().all(|s| s.shader != wgconv::shaders::ShaderId::SlotSum), "{plan}");
    assert!(plan.steps.len() > 1, "{plan}");
    let (_, rdw, _) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
    let g = conv2d_backward(&ctx, &t(&x), &t(&w), &t(&dy), &c.params, only_weight).unwrap();
    let s = compare(&g.grad_weight.unwrap().to_vec(&ctx).unwrap(), &rdw);
    ctx.set_config(base);
    assert!(s.passes(Tolerance::default()), "passes: {s}");
}
