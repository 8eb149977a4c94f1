//! max_pool2d_backward and avg_pool2d_backward against PyTorch's own gradients and the f64
//! reference (generated cases with ties), where the maximum's gradient goes on ties, NaN and
//! −∞ windows, long windows in passes, batch pieces, unbatched and empty inputs, f16, and the
//! refusal of a gather beyond the loop budget.

use crate::common::gpu;
use wgconv::conformance::{pool2d_cases, OpCase, Pool2dBackwardCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{pool2d_backward, DType, EngineConfig, Error, GpuContext, HostTensor, Pool2dParams, PoolMode, Tensor};

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

fn grad(ctx: &GpuContext, x: &HostTensor, dy: &HostTensor, p: &Pool2dParams, mode: PoolMode) -> Vec<f32> {
    pool2d_backward(ctx, &up(ctx, x), &up(ctx, dy), p, mode).unwrap().to_vec(ctx).unwrap()
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// PyTorch's CPU autograd (`tools/gen_golden.py`): max with overlapping windows, ties, NaNs,
/// non-square windows, dilation and ceil_mode; avg with and without the padding in the
/// divisor, global, ceil_mode (windows past the padded input) and divisor_override; adaptive
/// pooling of both kinds to sizes below and above the input's. The forward's output matches
/// too, and so do max pooling's `return_indices` (`max_pool2d_with_indices`), exactly.
/// The reference matches it and so does the GPU, which sums in PyTorch's order: bit for bit
/// for these float32 cases.
#[test]
fn matches_pytorch_autograd_goldens() {
    let cases = crate::common::goldens("pool2d_backward");
    assert!(cases.len() >= 17);
    for c in cases {
        let name = &c.name;
        let mode = if c.case["mode"] == "max" { PoolMode::Max } else { PoolMode::Avg };
        let p = Pool2dParams {
            kernel: c.pair("kernel"),
            stride: Some(c.pair("stride")),
            padding: c.pair("padding"),
            dilation: c.pair("dilation"),
            ceil_mode: c.flag("ceil_mode"),
            count_include_pad: c.flag("count_include_pad"),
            divisor_override: c.case["divisor_override"].as_u64().map(|v| v as u32),
            adaptive: c.case["adaptive"].as_array().map(|_| c.pair("adaptive")),
        };
        let (x, dy) = (c.load("input"), c.load("grad_output"));
        // the forward too: these options' output shapes and values
        let (shape, y) = wgconv::reference::pool2d(&x, &p, mode).unwrap();
        assert_eq!(shape.to_vec(), dy.shape, "{name}: output shape");
        let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        // (torch pooled in float32 here)
        assert!(compare(&y32, &c.expected("output")).passes(Tolerance { rel_l2: 1e-6, abs: 1e-6 }), "{name}: forward");
        let want = c.expected("grad_input");
        let r = wgconv::reference::pool2d_backward(&x, &dy, &p, mode).unwrap();
        let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        assert!(compare(&r32, &want).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{name}: reference vs torch");
        let Some(ctx) = gpu() else { continue };
        let fwd = wgconv::pool2d(ctx, &up(ctx, &x), &p, mode).unwrap().to_vec(ctx).unwrap();
        assert!(compare(&fwd, &c.expected("output")).passes(Tolerance::default()), "{name}: GPU forward vs torch");
        if mode == PoolMode::Max {
            // return_indices: PyTorch's int64 indices, exactly (first on ties, last NaN)
            let (values, idx) = wgconv::max_pool2d_with_indices(ctx, &up(ctx, &x), &p).unwrap();
            assert!(same_bits(&values.to_vec(ctx).unwrap(), &fwd), "{name}: the values are max_pool2d's");
            assert_eq!(idx.shape(), &dy.shape[..], "{name}: indices shape");
            let torch_idx: Vec<u32> = c.load("indices").data.iter().map(|&v| v as u32).collect();
            assert_eq!(idx.to_vec(ctx).unwrap(), torch_idx, "{name}: indices vs torch");
        }
        let got = grad(ctx, &x, &dy, &p, mode);
        let torch: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        assert!(same_bits(&got, &torch), "{name}: GPU vs torch autograd: {}", compare(&got, &want));
    }
}

/// 200 generated cases (kernels 1–4, strides, padding, both divisors; every third input
/// rounded to halves, so windows tie): the reference's gradients, the same bits on a rerun.
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    for case in pool2d_cases(2028, 200).into_iter().map(Pool2dBackwardCase) {
        let inputs = case.inputs().unwrap();
        let want = &case.expected(&inputs).unwrap()[0];
        let (p, mode) = (case.0.params, case.0.mode);
        let got = grad(ctx, &inputs[0], &inputs[1], &p, mode);
        let s = compare(&got, want);
        assert!(s.passes(Tolerance::default()), "{case}: {s}");
        assert!(same_bits(&got, &grad(ctx, &inputs[0], &inputs[1], &p, mode)), "{case}: not the same bits");
    }
}

/// Where max pooling's gradient goes: the first of equal maxima, the last NaN, and for a
/// window of −∞ alone its first in-image position (PyTorch's `max_pool2d_with_indices`).
#[test]
fn the_maximum_on_ties_nan_and_negative_infinity() {
    let Some(ctx) = gpu() else { return };
    let p = Pool2dParams {
        kernel: [2, 2],
        stride: Some([2, 2]),
        padding: [0, 0],
        count_include_pad: true,
        ..Default::default()
    };
    let inf = f32::INFINITY;
    // three 2×2 windows side by side: a tie at 5, two NaNs, all −∞
    #[rustfmt::skip]
    let x = HostTensor::new(&[1, 1, 2, 6], vec![
        1.0, 5.0, f32::NAN, 2.0, -inf, -inf,
        5.0, 3.0, 7.0, f32::NAN, -inf, -inf,
    ]).unwrap();
    let dy = HostTensor::new(&[1, 1, 1, 3], vec![10.0, 20.0, 30.0]).unwrap();
    let got = grad(ctx, &x, &dy, &p, PoolMode::Max);
    #[rustfmt::skip]
    let want = [
        0.0, 10.0, 0.0, 0.0, 30.0, 0.0,
        0.0, 0.0, 0.0, 20.0, 0.0, 0.0,
    ];
    assert_eq!(got, want);
    let r = wgconv::reference::pool2d_backward(&x, &dy, &p, PoolMode::Max).unwrap();
    assert_eq!(r.iter().map(|&v| v as f32).collect::<Vec<_>>(), want);
}

/// Global max pooling of a 40×40 plane with a loop budget of 64: the window's maximum found
/// in passes (the running maximum and its index kept between them), the same gradient as in
/// one pass; a gather over more windows than the budget allows is refused before any GPU
/// work. Its own context: the budget would reach the other tests.
#[test]
fn long_windows_run_in_passes_and_too_many_windows_are_refused() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = Pool2dParams::new([40, 40]);
    let x = HostTensor::random(&[2, 3, 40, 40], 5);
    let dy = HostTensor::random(&[2, 3, 1, 1], 6);
    let one = grad(ctx, &x, &dy, &p, PoolMode::Max);
    let base = ctx.config();
    ctx.set_config(EngineConfig { loop_budget: 64, ..base });
    let plan = wgconv::plan_pool2d_backward(ctx, &x.shape, DType::F32, &p, PoolMode::Max).unwrap();
    let passes = grad(ctx, &x, &dy, &p, PoolMode::Max);
    // stride 1 with an 8×8 kernel: an element lies in up to 64 windows
    let dense = Pool2dParams {
        kernel: [8, 8],
        stride: Some([1, 1]),
        padding: [0, 0],
        count_include_pad: true,
        ..Default::default()
    };
    let before = ctx.submissions();
    let e = wgconv::plan_pool2d_backward(ctx, &x.shape, DType::F32, &dense, PoolMode::Avg).unwrap_err();
    let e2 =
        pool2d_backward(ctx, &up(ctx, &x), &up(ctx, &HostTensor::random(&[2, 3, 33, 33], 7)), &dense, PoolMode::Avg)
            .unwrap_err();
    ctx.set_config(base);
    assert!(plan.steps.len() > 10, "{plan}");
    assert!(same_bits(&one, &passes), "passes changed the gradient");
    let r = wgconv::reference::pool2d_backward(&x, &dy, &p, PoolMode::Max).unwrap();
    assert!(compare(&passes, &r).passes(Tolerance::default()));
    for e in [e, e2] {
        assert!(matches!(&e, Error::Unsupported(m) if m.contains("loop budget")), "{e:?}");
    }
    assert_eq!(ctx.submissions(), before);
}

/// Under a 16 KiB binding cap the batch runs in pieces with the same bits as one call;
/// unbatched `[C, H, W]` gives the batch of one's gradient; an empty batch gives an empty one.
/// Its own context: the cap would reach the other tests.
#[test]
fn batch_pieces_unbatched_and_empty() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = Pool2dParams {
        kernel: [3, 3],
        stride: Some([2, 2]),
        padding: [1, 1],
        count_include_pad: false,
        ..Default::default()
    };
    let x = HostTensor::random(&[6, 4, 16, 16], 8);
    let dy = HostTensor::random(&[6, 4, 8, 8], 9);
    for mode in PoolMode::ALL {
        let whole = grad(ctx, &x, &dy, &p, mode);
        let base = ctx.config();
        ctx.set_config(EngineConfig { max_binding_size: 16 << 10, ..base });
        let plan = wgconv::plan_pool2d_backward(ctx, &x.shape, DType::F32, &p, mode).unwrap();
        let pieces = grad(ctx, &x, &dy, &p, mode);
        ctx.set_config(base);
        assert!(plan.batch_pieces > 1, "{plan}");
        assert!(same_bits(&whole, &pieces), "{mode:?}: pieces differ");
        let first =
            |t: &HostTensor| HostTensor::new(&t.shape[1..], t.data[..t.data.len() / t.shape[0]].to_vec()).unwrap();
        let g = pool2d_backward(ctx, &up(ctx, &first(&x)), &up(ctx, &first(&dy)), &p, mode).unwrap();
        assert_eq!(g.shape(), &x.shape[1..]);
        assert!(same_bits(&g.to_vec(ctx).unwrap(), &whole[..whole.len() / 6]), "{mode:?}: unbatched differs");
        let (ex, edy) = (Tensor::empty(ctx, &[0, 4, 16, 16]).unwrap(), Tensor::empty(ctx, &[0, 4, 8, 8]).unwrap());
        assert_eq!(pool2d_backward(ctx, &ex, &edy, &p, mode).unwrap().numel(), 0);
    }
}

/// f16 storage (every tensor f16, f32 sums): within one f16 rounding of the reference of
/// the rounded inputs; a mixed dtype is an error.
#[test]
fn f16_storage_matches_reference() {
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let p = Pool2dParams {
        kernel: [3, 2],
        stride: Some([1, 2]),
        padding: [1, 1],
        count_include_pad: true,
        ..Default::default()
    };
    let x = HostTensor::random(&[2, 3, 9, 8], 10).rounded_to(DType::F16);
    let dy = HostTensor::random(&p.validate(&x.shape).unwrap(), 11).rounded_to(DType::F16);
    for mode in PoolMode::ALL {
        let g = pool2d_backward(&ctx, &h(&x), &h(&dy), &p, mode).unwrap();
        assert_eq!(g.dtype(), DType::F16);
        let got = g.to_vec(&ctx).unwrap();
        assert!(crate::common::all_f16(&got));
        let r = wgconv::reference::pool2d_backward(&x, &dy, &p, mode).unwrap();
        let s = compare(&got, &r);
        assert!(s.passes(crate::common::F16_TOLERANCE), "{mode:?}: {s}");
    }
    let e = pool2d_backward(&ctx, &h(&x), &up(&ctx, &dy), &p, PoolMode::Max).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch(_)), "{e:?}");
}

/// `adaptive_avg_pool2d` / `adaptive_max_pool2d` give the adaptive windows' mean and maximum
/// (a 5-wide row to 3: windows 0..2, 1..4, 3..5); a zero output size and a divisor_override
/// are errors (PyTorch has neither).
#[test]
fn adaptive_pools_and_their_errors() {
    let Some(ctx) = gpu() else { return };
    let x = HostTensor::new(&[1, 1, 1, 5], vec![1.0, 5.0, 2.0, 8.0, 3.0]).unwrap();
    let avg = wgconv::adaptive_avg_pool2d(ctx, &up(ctx, &x), [1, 3]).unwrap().to_vec(ctx).unwrap();
    assert_eq!(avg, [3.0, 5.0, 5.5]);
    let max = wgconv::adaptive_max_pool2d(ctx, &up(ctx, &x), [1, 3]).unwrap().to_vec(ctx).unwrap();
    assert_eq!(max, [5.0, 8.0, 8.0]);
    let e = wgconv::adaptive_avg_pool2d(ctx, &up(ctx, &x), [0, 3]).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let p = Pool2dParams { divisor_override: Some(2), ..Pool2dParams::adaptive([1, 2]) };
    let e = wgconv::avg_pool2d(ctx, &up(ctx, &x), &p).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
}

/// `max_pool2d_with_indices` beyond one storage binding (a 256-byte cap here) is `TooLarge`
/// before any GPU work (the indices are not split into batch pieces). Its own context.
#[test]
fn indices_beyond_one_binding_are_refused_before_gpu_work() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let x = up(&ctx, &HostTensor::random(&[2, 3, 8, 8], 5));
    let p = Pool2dParams { kernel: [2, 2], ..Default::default() };
    let base = ctx.config();
    ctx.set_config(wgconv::EngineConfig { max_binding_size: 256, ..base });
    let before = ctx.submissions();
    let e = wgconv::max_pool2d_with_indices(&ctx, &x, &p).unwrap_err();
    let after = ctx.submissions();
    ctx.set_config(base);
    assert!(matches!(&e, wgconv::Error::TooLarge(m) if m.contains("indices")), "{e:?}");
    assert_eq!(after, before);
}
