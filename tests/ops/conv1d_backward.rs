//! conv1d_backward against its f64 reference, against finite differences of the conv1d
//! reference, with subsets of the gradients, unbatched, and with one sequence beyond one
//! storage binding (the `[N, C, L, 1]` view conv2d_backward cuts into row bands).

use crate::common::gpu;
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv1d_backward, ContextOptions, Conv1dParams, EngineConfig, GpuContext, Grads, HostTensor, Padding1d, Tensor,
};

fn p(stride: u32, padding: Padding1d, dilation: u32, groups: u32) -> Conv1dParams {
    Conv1dParams { stride, padding, dilation, groups, ..Default::default() }
}

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

/// (input, weight, params) with their seeded grad_output: every gradient asked for equals
/// the reference's.
fn check(ctx: &GpuContext, x: &[usize], w: &[usize], params: Conv1dParams, which: Grads, seed: u64) {
    let (xh, wh) = (HostTensor::random(x, seed), HostTensor::random(w, seed + 1));
    let out = params.validate(&wgconv::params::as_batched(x, 3), w, None).unwrap();
    let out: Vec<usize> = if x.len() == 2 { out[1..].to_vec() } else { out.to_vec() };
    let dy = HostTensor::random(&out, seed + 2);
    let g = conv1d_backward(ctx, &up(ctx, &xh), &up(ctx, &wh), &up(ctx, &dy), &params, which).unwrap();
    let (rdx, rdw, rdb) = wgconv::reference::conv1d_backward(&xh, &wh, &dy, &params).unwrap();
    let outs = [(&g.grad_input, rdx, which.input, x), (&g.grad_weight, rdw, which.weight, w)];
    for (got, want, asked, shape) in outs {
        assert_eq!(got.is_some(), asked, "{x:?} {params:?}");
        if let Some(t) = got {
            assert_eq!(t.shape(), shape);
            let s = compare(&t.to_vec(ctx).unwrap(), &want);
            assert!(s.passes(Tolerance::default()), "{x:?} {w:?} {params:?}: {s}");
        }
    }
    assert_eq!(g.grad_bias.is_some(), which.bias);
    if let Some(db) = g.grad_bias {
        let s = compare(&db.to_vec(ctx).unwrap(), &rdb);
        assert!(s.passes(Tolerance::default()), "grad_bias {x:?} {params:?}: {s}");
    }
}

#[test]
fn gradients_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    use Padding1d::*;
    let all = Grads::ALL;
    let cases = [
        ([2, 3, 16], [4, 3, 3], p(1, Valid, 1, 1)),
        ([2, 5, 31], [3, 5, 5], p(2, Symmetric(2), 1, 1)),
        ([1, 4, 29], [6, 4, 3], p(3, Explicit { left: 2, right: 0 }, 1, 1)),
        ([1, 2, 40], [3, 2, 3], p(1, Valid, 3, 1)),
        ([3, 2, 13], [2, 2, 2], p(1, Same, 1, 1)),
        ([2, 8, 17], [8, 2, 3], p(2, Valid, 1, 4)),
        ([1, 6, 23], [6, 1, 5], p(1, Symmetric(2), 1, 6)),
        ([1, 6, 23], [12, 1, 3], p(2, Symmetric(1), 2, 6)),
        ([1, 2, 64], [3, 2, 9], p(4, Symmetric(4), 1, 1)),
    ];
    for (i, (x, w, params)) in cases.into_iter().enumerate() {
        check(ctx, &x, &w, params, all, 100 + 10 * i as u64);
    }
    // subsets of the gradients, and the unbatched form [C, L]
    check(ctx, &[2, 4, 21], &[5, 4, 3], p(2, Symmetric(1), 1, 1), Grads { input: false, weight: true, bias: false }, 7);
    check(ctx, &[2, 4, 21], &[5, 4, 3], p(1, Same, 2, 1), Grads { input: true, weight: false, bias: true }, 8);
    check(ctx, &[4, 21], &[5, 4, 3], p(1, Symmetric(1), 1, 1), all, 9);
}

/// grad_input and grad_weight against central differences of the f64 conv1d reference of
/// `loss = Σ y·dy` at a few points (the reference backward checked independently).
#[test]
fn gradients_match_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let params = p(2, Padding1d::Explicit { left: 1, right: 2 }, 2, 2);
    let (x, w) = (HostTensor::random(&[2, 4, 19], 31), HostTensor::random(&[6, 2, 3], 32));
    let out = params.validate(&x.shape, &w.shape, None).unwrap();
    let dy = HostTensor::random(&out, 33);
    let loss = |x: &HostTensor, w: &HostTensor| -> f64 {
        let (_, y) = wgconv::reference::conv1d(x, w, None, &params).unwrap();
        y.iter().zip(&dy.data).map(|(a, b)| a * *b as f64).sum()
    };
    let g = conv1d_backward(ctx, &up(ctx, &x), &up(ctx, &w), &up(ctx, &dy), &params, Grads::ALL).unwrap();
    let (dx, dw) = (g.grad_input.unwrap().to_vec(ctx).unwrap(), g.grad_weight.unwrap().to_vec(ctx).unwrap());
    let h = 1e-2f32;
    let numeric = |t: &HostTensor, i: usize, is_x: bool| {
        let (mut plus, mut minus) = (t.clone(), t.clone());
        plus.data[i] += h;
        minus.data[i] -= h;
        let (lp, lm) = if is_x { (loss(&plus, &w), loss(&minus, &w)) } else { (loss(&x, &plus), loss(&x, &minus)) };
        (lp - lm) / (2.0 * h as f64)
    };
    for i in [0, 5, 18, 19, 40, 75] {
        let n = numeric(&x, i, true);
        assert!((dx[i] as f64 - n).abs() <= 1e-3 * (1.0 + n.abs()), "grad_input[{i}] {} vs {n}", dx[i]);
    }
    for i in [0, 7, 17, 35] {
        let n = numeric(&w, i, false);
        assert!((dw[i] as f64 - n).abs() <= 1e-3 * (1.0 + n.abs()), "grad_weight[{i}] {} vs {n}", dw[i]);
    }
}

/// One sequence beyond a 64 KiB binding cap: the `[N, C, L, 1]` view in row bands gives the
/// gradients of the reference and of the uncapped call (within rounding: the weight and bias
/// sums are regrouped at band boundaries, and grad_input runs on the other view).
#[test]
fn a_sequence_beyond_one_binding_runs_in_bands() {
    if gpu().is_none() {
        return;
    }
    let opts = ContextOptions { limits: Some(wgpu::Limits::default()), ..Default::default() };
    let ctx = GpuContext::with_options(opts).unwrap();
    let params = p(1, Padding1d::Symmetric(2), 1, 1);
    // 8 channels × 4096 samples × 4 bytes = 128 KiB per sequence: over the cap
    let (x, w) = (HostTensor::random(&[1, 8, 4096], 41), HostTensor::random(&[8, 8, 5], 42));
    let dy = HostTensor::random(&params.validate(&x.shape, &w.shape, None).unwrap(), 43);
    let run = |cap: bool| {
        let base = ctx.config();
        if cap {
            ctx.set_config(EngineConfig { max_binding_size: 64 << 10, ..base });
        }
        ctx.begin_trace();
        let g = conv1d_backward(&ctx, &up(&ctx, &x), &up(&ctx, &w), &up(&ctx, &dy), &params, Grads::ALL).unwrap();
        let trace = ctx.end_trace().unwrap();
        ctx.set_config(base);
        let v = [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.unwrap().to_vec(&ctx).unwrap());
        (v, trace.dispatches.len())
    };
    let ((whole, n1), (banded, n2)) = (run(false), run(true));
    assert!(n2 > n1, "the capped call split ({n2} launches against {n1})");
    let (rdx, rdw, rdb) = wgconv::reference::conv1d_backward(&x, &w, &dy, &params).unwrap();
    for (k, (want, what)) in [(&rdx, "dx"), (&rdw, "dw"), (&rdb, "db")].into_iter().enumerate() {
        for (got, run) in [(&banded[k], "banded"), (&whole[k], "whole")] {
            let s = compare(got, want);
            assert!(s.passes(Tolerance::default()), "{what} {run}: {s}");
        }
    }
}

/// f16 storage (every tensor f16, f32 accumulation), as conv2d_backward: each gradient is f16
/// and within one f16 rounding of the reference of the rounded inputs.
#[test]
fn f16_storage_matches_reference() {
    use wgconv::DType;
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let cases = [
        ([2, 4, 22], [6, 4, 3], p(1, Padding1d::Symmetric(1), 1, 1)),
        ([1, 6, 30], [6, 1, 5], p(2, Padding1d::Symmetric(2), 1, 6)),
        ([2, 4, 18], [4, 2, 3], p(1, Padding1d::Same, 2, 2)),
    ];
    for (i, (xs, ws, params)) in cases.into_iter().enumerate() {
        let x = HostTensor::random(&xs, 70 + i as u64).rounded_to(DType::F16);
        let w = HostTensor::random(&ws, 80 + i as u64).rounded_to(DType::F16);
        let out = params.validate(&xs, &ws, None).unwrap();
        let dy = HostTensor::random(&out, 90 + i as u64).rounded_to(DType::F16);
        let (rdx, rdw, rdb) = wgconv::reference::conv1d_backward(&x, &w, &dy, &params).unwrap();
        let g = conv1d_backward(&ctx, &h(&x), &h(&w), &h(&dy), &params, Grads::ALL).unwrap();
        for (name, got, want) in [("dx", g.grad_input, rdx), ("dw", g.grad_weight, rdw), ("db", g.grad_bias, rdb)] {
            let got = got.unwrap();
            assert_eq!(got.dtype(), DType::F16, "case {i} {name}");
            let got = got.to_vec(&ctx).unwrap();
            assert!(crate::common::all_f16(&got), "case {i} {name}: not f16 values");
            let s = compare(&got, &want);
            assert!(s.passes(crate::common::F16_TOLERANCE), "case {i} {name}: {s}");
        }
    }
}
