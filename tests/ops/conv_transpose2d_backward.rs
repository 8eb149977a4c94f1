//! conv_transpose2d_backward against its f64 reference on generated cases (every gradient
//! and subsets of them), against finite differences of the conv_transpose2d reference,
//! unbatched and with an empty batch, split under a small binding cap, run to run, in f16,
//! and its refusal of the output_padding it cannot crop.

use crate::common::gpu;
use wgconv::conformance::{conv_transpose2d_cases, ConvTranspose2dBackwardCase, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv_transpose2d_backward, ConvTranspose2dParams, EngineConfig, Error, GpuContext, Grads, HostTensor, Padding,
    Tensor,
};

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

/// (grad_input, grad_weight, grad_bias) read back, each `None` where not asked.
fn run(
    ctx: &GpuContext,
    (x, w, dy): (&HostTensor, &HostTensor, &HostTensor),
    p: &ConvTranspose2dParams,
    which: Grads,
) -> [Option<Vec<f32>>; 3] {
    let g = conv_transpose2d_backward(ctx, &up(ctx, x), &up(ctx, w), &up(ctx, dy), p, which).unwrap();
    [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.map(|t| t.to_vec(ctx).unwrap()))
}

/// 120 generated conv_transpose2d cases (groups, depthwise, strides, dilations, output
/// padding, symmetric and explicit padding): every gradient against the reference; on every
/// fourth case each gradient alone, bit for bit the same as with the others.
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    let mut ran = 0;
    for (i, case) in conv_transpose2d_cases(2026, 120).into_iter().enumerate() {
        let case = ConvTranspose2dBackwardCase(case, Grads::ALL);
        if !case.applies() {
            continue;
        }
        ran += 1;
        let inputs = case.inputs().unwrap();
        let want = case.expected(&inputs).unwrap();
        let p = ConvTranspose2dParams { algorithm: Default::default(), ..case.0.params };
        let all = run(ctx, (&inputs[0], &inputs[1], &inputs[2]), &p, Grads::ALL);
        for (k, (got, want)) in all.iter().zip(&want).enumerate() {
            let s = compare(got.as_ref().unwrap(), want);
            assert!(s.passes(Tolerance::default()), "{case} gradient {k}: {s}");
        }
        if i % 4 == 0 {
            let alone = [
                Grads { input: true, weight: false, bias: false },
                Grads { input: false, weight: true, bias: false },
                Grads { input: false, weight: false, bias: true },
            ];
            for (k, which) in alone.into_iter().enumerate() {
                let one = run(ctx, (&inputs[0], &inputs[1], &inputs[2]), &p, which);
                for (j, t) in one.iter().enumerate() {
                    assert_eq!(t.is_some(), j == k, "{case}: only gradient {k} asked");
                }
                let (a, b) = (one[k].as_ref().unwrap(), all[k].as_ref().unwrap());
                assert!(a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()), "{case}: gradient {k} alone differs");
            }
        }
    }
    assert!(ran >= 90, "only {ran} of 120 cases apply");
}

/// grad_input and grad_weight against central differences of the f64 conv_transpose2d
/// reference of `loss = Σ y·dy` (the reference backward checked independently).
#[test]
fn gradients_match_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let p = ConvTranspose2dParams {
        stride: [2, 3],
        padding: Padding::Explicit { top: 1, left: 0, bottom: 2, right: 1 },
        output_padding: [1, 2],
        dilation: [1, 2],
        groups: 2,
        ..Default::default()
    };
    let (x, w) = (HostTensor::random(&[2, 4, 5, 4], 31), HostTensor::random(&[4, 3, 3, 2], 32));
    let dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape).unwrap(), 33);
    let loss = |x: &HostTensor, w: &HostTensor| -> f64 {
        let (_, y) = wgconv::reference::conv_transpose2d(x, w, None, &p).unwrap();
        y.iter().zip(&dy.data).map(|(a, b)| a * *b as f64).sum()
    };
    let [dx, dw, _] = run(ctx, (&x, &w, &dy), &p, Grads::ALL).map(Option::unwrap);
    let h = 1e-2f32;
    let numeric = |t: &HostTensor, i: usize, is_x: bool| {
        let (mut plus, mut minus) = (t.clone(), t.clone());
        plus.data[i] += h;
        minus.data[i] -= h;
        let (lp, lm) = if is_x { (loss(&plus, &w), loss(&minus, &w)) } else { (loss(&x, &plus), loss(&x, &minus)) };
        (lp - lm) / (2.0 * h as f64)
    };
    for i in [0, 7, 19, 20, 63, 100, 159] {
        let n = numeric(&x, i, true);
        assert!((dx[i] as f64 - n).abs() <= 1e-3 * (1.0 + n.abs()), "grad_input[{i}] {} vs {n}", dx[i]);
    }
    for i in [0, 5, 17, 40, 71] {
        let n = numeric(&w, i, false);
        assert!((dw[i] as f64 - n).abs() <= 1e-3 * (1.0 + n.abs()), "grad_weight[{i}] {} vs {n}", dw[i]);
    }
}

/// Unbatched `[C, H, W]` gives the batch of one's gradients bit for bit; an empty batch gives
/// zero weight and bias gradients and an empty grad_input.
#[test]
fn unbatched_and_empty_batches() {
    let Some(ctx) = gpu() else { return };
    let p = ConvTranspose2dParams { stride: [2, 2], padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let (x, w) = (HostTensor::random(&[1, 3, 6, 5], 41), HostTensor::random(&[3, 4, 3, 3], 42));
    let dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape).unwrap(), 43);
    let one = run(ctx, (&x, &w, &dy), &p, Grads::ALL);
    let drop_n = |t: &HostTensor| HostTensor::new(&t.shape[1..], t.data.clone()).unwrap();
    let g = conv_transpose2d_backward(ctx, &up(ctx, &drop_n(&x)), &up(ctx, &w), &up(ctx, &drop_n(&dy)), &p, Grads::ALL)
        .unwrap();
    assert_eq!(g.grad_input.as_ref().unwrap().shape(), &[3, 6, 5]);
    let unbatched = [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.unwrap().to_vec(ctx).unwrap());
    for (a, b) in one.iter().zip(&unbatched) {
        assert!(a.as_ref().unwrap().iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    let empty_x = Tensor::empty(ctx, &[0, 3, 6, 5]).unwrap();
    let empty_dy = Tensor::empty(ctx, &[0, 4, 11, 9]).unwrap();
    let g = conv_transpose2d_backward(ctx, &empty_x, &up(ctx, &w), &empty_dy, &p, Grads::ALL).unwrap();
    assert_eq!(g.grad_input.unwrap().numel(), 0);
    assert!(g.grad_weight.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    assert!(g.grad_bias.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
}

/// Under a 64 KiB binding cap the pieces conv2d and its backward cut (batch pieces, row
/// bands) give the reference's gradients; two uncapped runs give the same bits. (Its own
/// context: the cap and the trace would reach the other tests' calls on the shared one.)
#[test]
fn split_under_a_small_binding_and_repeatable() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = ConvTranspose2dParams {
        stride: [2, 2],
        padding: Padding::Symmetric([1, 1]),
        output_padding: [1, 1],
        ..Default::default()
    };
    // dy: 3 × 8 × 64 × 64 × 4 bytes = 384 KiB, 128 KiB per image: over the cap
    let (x, w) = (HostTensor::random(&[3, 6, 32, 32], 51), HostTensor::random(&[6, 8, 3, 3], 52));
    let dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape).unwrap(), 53);
    let whole = run(ctx, (&x, &w, &dy), &p, Grads::ALL).map(Option::unwrap);
    let again = run(ctx, (&x, &w, &dy), &p, Grads::ALL).map(Option::unwrap);
    for (a, b) in whole.iter().zip(&again) {
        assert!(a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()), "not the same bits run to run");
    }
    let launches = |cap: bool| {
        let base = ctx.config();
        if cap {
            ctx.set_config(EngineConfig { max_binding_size: 64 << 10, ..base });
        }
        ctx.begin_trace();
        let grads = run(ctx, (&x, &w, &dy), &p, Grads::ALL);
        let trace = ctx.end_trace().unwrap();
        ctx.set_config(base);
        (grads, trace.dispatches.len())
    };
    let ((_, n_whole), (split, n_split)) = (launches(false), launches(true));
    assert!(n_split > n_whole, "the capped call split ({n_split} launches against {n_whole})");
    let (rdx, rdw, rdb) = wgconv::reference::conv_transpose2d_backward(&x, &w, &dy, &p).unwrap();
    for (k, want) in [rdx, rdw, rdb].iter().enumerate() {
        let s = compare(split[k].as_ref().unwrap(), want);
        assert!(s.passes(Tolerance::default()), "gradient {k} split: {s}");
    }
}

/// output_padding past the padding by a stride or more (stride 1, dilation 2) would need the
/// input gradient cropped: a clear error, and no GPU work (its own context: the shared one's
/// submissions count the other tests' too).
#[test]
fn uncroppable_output_padding_is_refused() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = ConvTranspose2dParams { dilation: [2, 2], output_padding: [1, 0], ..Default::default() };
    let (x, w) = (HostTensor::random(&[1, 2, 5, 5], 61), HostTensor::random(&[2, 2, 3, 3], 62));
    let dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape).unwrap(), 63);
    let before = ctx.submissions();
    let e = conv_transpose2d_backward(ctx, &up(ctx, &x), &up(ctx, &w), &up(ctx, &dy), &p, Grads::ALL).unwrap_err();
    assert!(matches!(&e, Error::Unsupported(m) if m.contains("output_padding")), "{e:?}");
    assert_eq!(ctx.submissions(), before);
}

/// f16 storage (every tensor f16, f32 accumulation): each gradient is f16 and within one f16
/// rounding of the reference of the rounded inputs.
#[test]
fn f16_storage_matches_reference() {
    use wgconv::DType;
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let p =
        ConvTranspose2dParams { stride: [2, 2], padding: Padding::Symmetric([1, 1]), groups: 2, ..Default::default() };
    let x = HostTensor::random(&[2, 4, 7, 6], 71).rounded_to(DType::F16);
    let w = HostTensor::random(&[4, 3, 4, 4], 72).rounded_to(DType::F16);
    let dy = HostTensor::random(&p.output_shape(&x.shape, &w.shape).unwrap(), 73).rounded_to(DType::F16);
    let (rdx, rdw, rdb) = wgconv::reference::conv_transpose2d_backward(&x, &w, &dy, &p).unwrap();
    let g = conv_transpose2d_backward(&ctx, &h(&x), &h(&w), &h(&dy), &p, Grads::ALL).unwrap();
    for (name, got, want) in [("dx", g.grad_input, rdx), ("dw", g.grad_weight, rdw), ("db", g.grad_bias, rdb)] {
        let got = got.unwrap();
        assert_eq!(got.dtype(), DType::F16, "{name}");
        let got = got.to_vec(&ctx).unwrap();
        assert!(crate::common::all_f16(&got), "{name}: not f16 values");
        let s = compare(&got, &want);
        assert!(s.passes(crate::common::F16_TOLERANCE), "{name}: {s}");
    }
}
