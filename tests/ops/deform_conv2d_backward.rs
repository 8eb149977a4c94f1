//! deform_conv2d_backward against its f64 reference on generated cases (every gradient and
//! each alone), against finite differences of the forward reference, unbatched and with an
//! empty batch, cut into chunks under small budgets, run to run with many samples landing on
//! the same pixels, with NaN and ±∞ and with magnitudes 10⁶⁰ apart, its refusals, and
//! torchvision autograd's own gradients.

use crate::common::gpu;
use wgconv::conformance::{deform_conv2d_cases, DeformConv2dBackwardCase, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    deform_conv2d_backward, DType, DeformConv2dGrads, DeformConv2dParams, DeformGrads, EngineConfig, Error, GpuContext,
    HostTensor, Padding, Tensor,
};

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

/// (input, weight, offset, mask, grad_output)
type Inputs<'a> = (&'a HostTensor, &'a HostTensor, &'a HostTensor, Option<&'a HostTensor>, &'a HostTensor);

/// (grad_input, grad_weight, grad_offset, grad_mask, grad_bias) read back, `None` where not asked.
fn run(
    ctx: &GpuContext,
    (x, w, o, m, dy): Inputs,
    p: &DeformConv2dParams,
    which: DeformGrads,
) -> [Option<Vec<f32>>; 5] {
    let mt = m.map(|m| up(ctx, m));
    let g = deform_conv2d_backward(ctx, &up(ctx, x), &up(ctx, w), &up(ctx, o), mt.as_ref(), &up(ctx, dy), p, which)
        .unwrap();
    let DeformConv2dGrads { grad_input, grad_weight, grad_offset, grad_mask, grad_bias } = g;
    [grad_input, grad_weight, grad_offset, grad_mask, grad_bias].map(|t| t.map(|t| t.to_vec(ctx).unwrap()))
}

fn reference((x, w, o, m, dy): Inputs, p: &DeformConv2dParams) -> [Vec<f64>; 5] {
    let r = wgconv::reference::deform_conv2d_backward(x, w, o, m, dy, p).unwrap();
    [r.grad_input, r.grad_weight, r.grad_offset, r.grad_mask, r.grad_bias]
}

const NAMES: [&str; 5] = ["grad_input", "grad_weight", "grad_offset", "grad_mask", "grad_bias"];

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// 100 generated cases (weight and offset groups, strides, dilations, padding, v1 and v2,
/// offsets sending samples off the image): every gradient against the reference; on every
/// fifth case each gradient alone, bit for bit the same as with the others.
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    for (i, case) in deform_conv2d_cases(2027, 100).into_iter().enumerate() {
        let case = DeformConv2dBackwardCase(case, DeformGrads::ALL);
        let inputs = case.inputs().unwrap();
        let mask = case.0.mask.then(|| &inputs[3]);
        let dy = &inputs[inputs.len() - 1];
        let t = (&inputs[0], &inputs[1], &inputs[2], mask, dy);
        let p = DeformConv2dParams { algorithm: Default::default(), activation: Default::default(), ..case.0.params() };
        let all = run(ctx, t, &p, DeformGrads::ALL);
        let want = reference(t, &p);
        for k in 0..5 {
            match &all[k] {
                Some(got) => {
                    let s = compare(got, &want[k]);
                    assert!(s.passes(Tolerance::default()), "{case} {}: {s}", NAMES[k]);
                }
                None => assert!(k == 3 && mask.is_none(), "{case}: {} missing", NAMES[k]),
            }
        }
        if i % 5 == 0 {
            for k in (0..5).filter(|&k| all[k].is_some()) {
                let on = |j: usize| j == k;
                let which = DeformGrads { input: on(0), weight: on(1), offset: on(2), mask: on(3), bias: on(4) };
                let one = run(ctx, t, &p, which);
                for (j, g) in one.iter().enumerate() {
                    assert_eq!(g.is_some(), j == k, "{case}: only {} asked", NAMES[k]);
                }
                let (a, b) = (one[k].as_ref().unwrap(), all[k].as_ref().unwrap());
                assert!(same_bits(a, b), "{case}: {} alone differs", NAMES[k]);
            }
        }
    }
}

/// The inputs of a v2 case with offsets away from integer positions (finite differences of
/// the bilinear sample hold within one cell).
fn fd_case() -> (DeformConv2dParams, [HostTensor; 5]) {
    let p = DeformConv2dParams {
        stride: [2, 1],
        padding: Padding::Explicit { top: 1, left: 2, bottom: 0, right: 1 },
        dilation: [1, 2],
        groups: 2,
        ..Default::default()
    };
    let (x, w) = (HostTensor::random(&[2, 4, 7, 6], 81), HostTensor::random(&[6, 2, 3, 2], 82));
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let (ho, wo) = (g.h_out as usize, g.w_out as usize);
    // two offset groups; offsets k + 0.25 .. k + 0.75 for whole k in −2 ..= 1
    let mut o = HostTensor::random(&[2, 2 * 2 * 6, ho, wo], 83);
    for (i, v) in o.data.iter_mut().enumerate() {
        *v = ((i % 4) as f32 - 2.0) + 0.25 + 0.5 * (*v * 0.5 + 0.5);
    }
    let m = HostTensor::random(&[2, 2 * 6, ho, wo], 84);
    let dy = HostTensor::random(&[2, 6, ho, wo], 85);
    (p, [x, w, o, m, dy])
}

/// Every gradient against central differences of the f64 forward reference of
/// `loss = Σ y·dy` (the reference backward checked independently).
#[test]
fn gradients_match_finite_differences() {
    let Some(ctx) = gpu() else { return };
    let (p, [x, w, o, m, dy]) = fd_case();
    let got = run(ctx, (&x, &w, &o, Some(&m), &dy), &p, DeformGrads::ALL).map(Option::unwrap);
    let loss = |t: &[&HostTensor; 4]| -> f64 {
        let (_, y) = wgconv::reference::deform_conv2d(t[0], t[1], t[2], Some(t[3]), None, &p).unwrap();
        y.iter().zip(&dy.data).map(|(a, b)| a * *b as f64).sum()
    };
    let h = 1e-2f32;
    let numeric = |which: usize, i: usize| {
        let mut ts = [x.clone(), w.clone(), o.clone(), m.clone()];
        ts[which].data[i] += h;
        let lp = loss(&[&ts[0], &ts[1], &ts[2], &ts[3]]);
        ts[which].data[i] -= 2.0 * h;
        let lm = loss(&[&ts[0], &ts[1], &ts[2], &ts[3]]);
        (lp - lm) / (2.0 * h as f64)
    };
    // (tensor, its gradient's index in `got`)
    for (which, k) in [(0, 0), (1, 1), (2, 2), (3, 3)] {
        let len = [&x, &w, &o, &m][which].data.len();
        for i in (0..len).step_by(len / 9 + 1) {
            let n = numeric(which, i);
            let v = got[k][i] as f64;
            assert!((v - n).abs() <= 2e-3 * (1.0 + n.abs()), "{}[{i}] {v} vs finite difference {n}", NAMES[k]);
        }
    }
    let bias: Vec<f64> = (0..6)
        .map(|c| {
            (0..2)
                .flat_map(|b| dy.data[(b * 6 + c) * dy.shape[2] * dy.shape[3]..][..dy.shape[2] * dy.shape[3]].to_vec())
                .map(f64::from)
                .sum()
        })
        .collect();
    assert!(compare(&got[4], &bias).passes(Tolerance::default()));
}

/// Unbatched tensors give the batch of one's gradients bit for bit; an empty batch gives
/// zero weight and bias gradients and empty others.
#[test]
fn unbatched_and_empty_batches() {
    let Some(ctx) = gpu() else { return };
    let (p, [x, w, o, m, dy]) = fd_case();
    let first = |t: &HostTensor| HostTensor::new(&t.shape[1..], t.data[..t.data.len() / t.shape[0]].to_vec()).unwrap();
    let batch1 = |t: &HostTensor| {
        let mut s = t.shape.clone();
        s[0] = 1;
        HostTensor::new(&s, t.data[..t.data.len() / t.shape[0]].to_vec()).unwrap()
    };
    let one = run(ctx, (&batch1(&x), &w, &batch1(&o), Some(&batch1(&m)), &batch1(&dy)), &p, DeformGrads::ALL);
    let mt = up(ctx, &first(&m));
    let g = deform_conv2d_backward(
        ctx,
        &up(ctx, &first(&x)),
        &up(ctx, &w),
        &up(ctx, &first(&o)),
        Some(&mt),
        &up(ctx, &first(&dy)),
        &p,
        DeformGrads::ALL,
    )
    .unwrap();
    assert_eq!(g.grad_input.as_ref().unwrap().shape(), &x.shape[1..]);
    assert_eq!(g.grad_offset.as_ref().unwrap().shape(), &o.shape[1..]);
    assert_eq!(g.grad_mask.as_ref().unwrap().shape(), &m.shape[1..]);
    let unbatched =
        [g.grad_input, g.grad_weight, g.grad_offset, g.grad_mask, g.grad_bias].map(|t| t.unwrap().to_vec(ctx).unwrap());
    for k in 0..5 {
        assert!(same_bits(one[k].as_ref().unwrap(), &unbatched[k]), "{} unbatched differs", NAMES[k]);
    }
    let empty = |t: &HostTensor| {
        let mut s = t.shape.clone();
        s[0] = 0;
        Tensor::empty(ctx, &s).unwrap()
    };
    let em = empty(&m);
    let g =
        deform_conv2d_backward(ctx, &empty(&x), &up(ctx, &w), &empty(&o), Some(&em), &empty(&dy), &p, DeformGrads::ALL)
            .unwrap();
    for t in [&g.grad_input, &g.grad_offset, &g.grad_mask] {
        assert_eq!(t.as_ref().unwrap().numel(), 0);
    }
    assert!(g.grad_weight.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    assert!(g.grad_bias.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
}

/// Offsets pulling every sample of every pixel onto a few input pixels (thousands of
/// atomic additions racing on each): the same bits on every run, the reference's values, and
/// grad_input bit for bit the same when a small workspace budget and loop budget cut the call
/// into chunks of images, of pixels and of K (its sums are exact integers: no regrouping
/// changes them). Its own context: the budgets would reach the other tests' calls.
#[test]
fn colliding_samples_give_the_same_bits_in_any_order_and_any_chunking() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = DeformConv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let (x, w) = (HostTensor::random(&[3, 4, 12, 12], 91), HostTensor::random(&[5, 4, 3, 3], 92));
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let (ho, wo) = (g.h_out as usize, g.w_out as usize);
    // offset[dy or dx of tap t at (oy, ox)] = target − where the tap would sample: every
    // sample lands near (5.3, 6.6) or (2.5, 2.5)
    let mut o = HostTensor::random(&[3, 18, ho, wo], 93);
    for (idx, v) in o.data.iter_mut().enumerate() {
        let (q, c) = (idx % (ho * wo), idx / (ho * wo) % 18);
        let (oy, ox, t, is_x) = (q / wo, q % wo, c / 2, c % 2 == 1);
        let (i, j) = (t / 3, t % 3);
        let base = if is_x { ox + j } else { oy + i } as f32 - 1.0;
        let target = if q % 2 == 0 {
            if is_x {
                6.6
            } else {
                5.3
            }
        } else {
            2.5
        };
        *v = target - base + 0.01 * *v;
    }
    let m = HostTensor::random(&[3, 9, ho, wo], 94);
    let dy = HostTensor::random(&[3, 5, ho, wo], 95);
    let t = (&x, &w, &o, Some(&m), &dy);
    let first = run(ctx, t, &p, DeformGrads::ALL).map(Option::unwrap);
    for _ in 0..3 {
        let again = run(ctx, t, &p, DeformGrads::ALL).map(Option::unwrap);
        for k in 0..5 {
            assert!(same_bits(&first[k], &again[k]), "{} differs run to run", NAMES[k]);
        }
    }
    let want = reference(t, &p);
    for k in 0..5 {
        let s = compare(&first[k], &want[k]);
        assert!(s.passes(Tolerance::default()), "{}: {s}", NAMES[k]);
    }
    let base = ctx.config();
    // one image's column gradients are 4·9·144·4 = 20 KiB: one image per chunk; the unfold
    // (36 rows of 432 pixels) in several chunks of a multiple of 16 pixels; K in passes
    ctx.set_config(EngineConfig { workspace_budget: 24 << 10, loop_budget: 200, ..base });
    let plan = wgconv::plan_deform_conv2d_backward(
        ctx,
        &x.shape,
        &w.shape,
        &o.shape,
        Some(&m.shape),
        DType::F32,
        &p,
        DeformGrads::ALL,
    )
    .unwrap();
    let chunked = run(ctx, t, &p, DeformGrads::ALL).map(Option::unwrap);
    // grad_input's walks over the sorted samples cut 25 at a time (32 by default): other
    // runs of a cell cut elsewhere, the same integer sums
    ctx.set_config(EngineConfig { loop_budget: 50, ..base });
    let input_only = DeformGrads { input: true, weight: false, offset: false, mask: false, bias: false };
    let recut = run(ctx, t, &p, input_only);
    ctx.set_config(base);
    assert_eq!(plan.images_per_chunk, 1, "{plan}");
    assert!(plan.pixel_chunks > 1, "{plan}");
    for k in [0, 2, 3, 4] {
        assert!(same_bits(&first[k], &chunked[k]), "{} differs when chunked", NAMES[k]);
    }
    assert!(same_bits(&first[0], recut[0].as_ref().unwrap()), "grad_input differs with other walk lengths");
    let s = compare(&chunked[1], &want[1]);
    assert!(s.passes(Tolerance::default()), "grad_weight chunked: {s}");
}

/// A NaN, +∞ and −∞ in grad_output reach the input gradient where the reference's IEEE sums
/// put them (+∞ and −∞ meeting: NaN), every other element finite and right.
#[test]
fn nan_and_infinity_propagate_as_ieee_sums() {
    let Some(ctx) = gpu() else { return };
    let (p, [x, w, o, m, mut dy]) = fd_case();
    let plane = dy.shape[2] * dy.shape[3];
    dy.data[3] = f32::NAN;
    dy.data[plane + 7] = f32::INFINITY;
    dy.data[4 * plane + 2] = f32::NEG_INFINITY;
    let t = (&x, &w, &o, Some(&m), &dy);
    let got = run(ctx, t, &p, DeformGrads::ALL).map(Option::unwrap);
    let want = reference(t, &p);
    for k in [0, 2, 3] {
        let class = |v: f64| {
            if v.is_nan() {
                0
            } else if v == f64::INFINITY {
                1
            } else if v == f64::NEG_INFINITY {
                2
            } else {
                3
            }
        };
        let mut specials = 0;
        for (i, (&g, &r)) in got[k].iter().zip(&want[k]).enumerate() {
            assert_eq!(class(g as f64), class(r), "{}[{i}]: {g} vs the reference's {r}", NAMES[k]);
            if class(r) == 3 {
                assert!((g as f64 - r).abs() <= 1e-4 * (1.0 + r.abs()), "{}[{i}]: {g} vs {r}", NAMES[k]);
            } else {
                specials += 1;
            }
        }
        assert!(specials > 0 && specials < got[k].len(), "{}: {specials} special values", NAMES[k]);
    }
}

/// grad_output values 10³⁰ and 10⁻³⁰ in different images: each input-gradient element keeps
/// its own precision (the fixed-point scale is the element's, not the call's).
#[test]
fn magnitudes_far_apart_keep_their_precision() {
    let Some(ctx) = gpu() else { return };
    let (p, [x, w, o, m, mut dy]) = fd_case();
    let half = dy.data.len() / 2;
    for (i, v) in dy.data.iter_mut().enumerate() {
        *v *= if i < half { 1e30 } else { 1e-30 };
    }
    let t = (&x, &w, &o, Some(&m), &dy);
    let got = run(ctx, t, &p, DeformGrads::ALL).map(Option::unwrap);
    let want = reference(t, &p);
    let per_image = got[0].len() / 2;
    for (img, range) in [(0, 0..per_image), (1, per_image..2 * per_image)] {
        let s = compare(&got[0][range.clone()], &want[0][range]);
        assert!(s.passes(Tolerance::default()), "grad_input of image {img}: {s}");
    }
}

/// What it cannot do is a clear error before any GPU work: a fused activation,
/// grad_mask without a mask, an offset group beyond the loop budget, grad_input's sort of
/// a larger image's samples beyond it (the other gradients still planned) (its own context).
#[test]
fn refusals_are_errors() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let (p, [x, w, o, m, dy]) = fd_case();
    let (xt, wt, ot, mt, dyt) = (up(ctx, &x), up(ctx, &w), up(ctx, &o), up(ctx, &m), up(ctx, &dy));
    let before = ctx.submissions();
    let act = DeformConv2dParams { activation: wgconv::Activation::Relu, ..p };
    let e = deform_conv2d_backward(ctx, &xt, &wt, &ot, Some(&mt), &dyt, &act, DeformGrads::ALL).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let e = deform_conv2d_backward(ctx, &xt, &wt, &ot, None, &dyt, &p, DeformGrads { mask: true, ..DeformGrads::ALL });
    // v1: the mask gradient is not formed (there is none); asked through `_into` it is an error
    assert!(e.unwrap().grad_mask.is_none());
    let base = ctx.config();
    ctx.set_config(EngineConfig { loop_budget: 8, ..base });
    let e = deform_conv2d_backward(ctx, &xt, &wt, &ot, Some(&mt), &dyt, &p, DeformGrads::ALL).unwrap_err();
    // 64×64: 65·65 cells, 17 per invocation of the scan, twice, and its 8 steps: 42 turns;
    // the offset group's 2 channels take 12
    ctx.set_config(EngineConfig { loop_budget: 30, ..base });
    let big = [1, 4, 64, 64];
    let g = p.validate(&big, &w.shape, None).unwrap();
    let (ho, wo) = (g.h_out as usize, g.w_out as usize);
    let (off, msk) = ([1, 24, ho, wo], [1, 12, ho, wo]);
    let plan =
        |which| wgconv::plan_deform_conv2d_backward(ctx, &big, &w.shape, &off, Some(&msk), DType::F32, &p, which);
    let scan = plan(DeformGrads::ALL).unwrap_err();
    let others = plan(DeformGrads { input: false, ..DeformGrads::ALL });
    ctx.set_config(base);
    assert!(matches!(&e, Error::Unsupported(s) if s.contains("loop budget")), "{e:?}");
    assert!(matches!(&scan, Error::Unsupported(s) if s.contains("sorts the samples")), "{scan:?}");
    assert!(others.is_ok(), "{others:?}");
    assert_eq!(ctx.submissions(), before + 1, "only the v1 call ran");
}

/// PyTorch's own gradients (torchvision.ops.deform_conv2d under autograd, float64 on the
/// stored float32 inputs, `tools/gen_golden.py`): the f64 reference and the GPU both match
/// every one of them, v1 and v2, groups, offset groups, dilation, stride, far offsets.
#[test]
fn matches_torchvision_autograd_goldens() {
    let cases = crate::common::goldens("deform_conv2d_backward");
    assert!(cases.len() >= 4);
    for c in cases {
        let name = &c.name;
        let p = DeformConv2dParams {
            stride: c.pair("stride"),
            padding: c.padding(),
            dilation: c.pair("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w, o, dy) = (c.load("input"), c.load("weight"), c.load("offset"), c.load("grad_output"));
        let m = c.flag("mask").then(|| c.load("mask"));
        let files = ["grad_input", "grad_weight", "grad_offset", "grad_mask", "grad_bias"];
        let want: Vec<Option<Vec<f64>>> =
            files.iter().map(|f| (*f != "grad_mask" || m.is_some()).then(|| c.expected(f))).collect();
        let t = (&x, &w, &o, m.as_ref(), &dy);
        let r = reference(t, &p);
        for k in 0..5 {
            let Some(want) = &want[k] else { continue };
            let r32: Vec<f32> = r[k].iter().map(|&v| v as f32).collect();
            let s = compare(&r32, want);
            assert!(s.passes(Tolerance { rel_l2: 1e-6, abs: 1e-5 }), "{name} {}: reference vs torch: {s}", NAMES[k]);
        }
        let Some(ctx) = gpu() else { continue };
        let got = run(ctx, t, &p, DeformGrads::ALL);
        for k in 0..5 {
            let Some(want) = &want[k] else { continue };
            let s = compare(got[k].as_ref().unwrap(), want);
            assert!(s.passes(Tolerance::default()), "{name} {}: GPU vs torch autograd: {s}", NAMES[k]);
        }
    }
}

/// Every register blocking of the GEMM core (the GPUs' 8×8 and 4×4 ones too, not just what
/// lavapipe picks) computes the column gradients and grad_weight's transposed-unfold GEMM
/// (`GradWeightColumns`) right, with a loop budget that splits K into passes inside each
/// chunk of the unfold. Its own context: the configuration would reach the other tests.
#[test]
fn every_gemm_kernel_gives_the_reference() {
    use wgconv::GemmKernel;
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let (p, [x, w, o, m, dy]) = fd_case();
    let t = (&x, &w, &o, Some(&m), &dy);
    let want = reference(t, &p);
    let base = ctx.config();
    for kernel in [GemmKernel::Block4x4, GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        for (budget, loops) in [(base.workspace_budget, base.loop_budget), (2 << 10, 300)] {
            ctx.set_config(EngineConfig { gemm_kernel: kernel, workspace_budget: budget, loop_budget: loops, ..base });
            let got = run(ctx, t, &p, DeformGrads::ALL).map(Option::unwrap);
            for k in 0..5 {
                let s = compare(&got[k], &want[k]);
                assert!(s.passes(Tolerance::default()), "{kernel:?} (budgets {budget}, {loops}) {}: {s}", NAMES[k]);
            }
        }
    }
    ctx.set_config(base);
}

/// Batched tensors beyond one storage binding run in batch pieces: 6 pieces of one image
/// each (a 2 KiB cap, offsets of 1800 bytes an image: staged through scratch buffers) with a
/// mask, and 3 aligned pieces of up to 4 images without (a 4800-byte cap). grad_input,
/// grad_offset and grad_mask bit for bit as one call, grad_weight and grad_bias (summed over
/// the pieces) the reference's; the plan lists the pieces. A weight beyond one binding is
/// refused before any GPU work. Its own context: the cap would reach the other tests.
#[test]
fn beyond_one_binding_runs_in_batch_pieces() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = DeformConv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let base = ctx.config();
    for (n, size, masked, cap, pieces) in [(6, 5, true, 2 << 10, 6), (10, 4, false, 4800, 3)] {
        let (x, w) = (HostTensor::random(&[n, 2, size, size], 91), HostTensor::random(&[4, 2, 3, 3], 92));
        let mut o = HostTensor::random(&[n, 18, size, size], 93);
        o.data.iter_mut().for_each(|v| *v *= 1.7);
        let m = HostTensor::random(&[n, 9, size, size], 94);
        let dy = HostTensor::random(&[n, 4, size, size], 95);
        let t = (&x, &w, &o, masked.then_some(&m), &dy);
        let whole = run(ctx, t, &p, DeformGrads::ALL);
        let want = reference(t, &p);
        ctx.set_config(EngineConfig { max_binding_size: cap, ..base });
        let plan = wgconv::plan_deform_conv2d_backward(
            ctx,
            &x.shape,
            &w.shape,
            &o.shape,
            masked.then_some(&m.shape[..]),
            DType::F32,
            &p,
            DeformGrads::ALL,
        );
        let got = run(ctx, t, &p, DeformGrads::ALL);
        ctx.set_config(base);
        let plan = plan.unwrap();
        assert_eq!(plan.batch_pieces, pieces, "{plan}");
        for k in 0..5 {
            let (Some(g), Some(one)) = (&got[k], &whole[k]) else {
                assert!(k == 3 && !masked, "n = {n}: {} missing", NAMES[k]);
                continue;
            };
            if [0, 2, 3].contains(&k) {
                assert!(same_bits(g, one), "n = {n}: {} in pieces differs from one call", NAMES[k]);
            }
            let s = compare(g, &want[k]);
            assert!(s.passes(Tolerance::default()), "n = {n}, {}: {s}", NAMES[k]);
        }
    }
    // the weight [8, 8, 3, 3] is 2304 bytes
    let (x, w) = (HostTensor::random(&[1, 8, 3, 3], 96), HostTensor::random(&[8, 8, 3, 3], 97));
    let (o, m, dy) = (
        HostTensor::random(&[1, 18, 3, 3], 98),
        HostTensor::random(&[1, 9, 3, 3], 99),
        HostTensor::random(&[1, 8, 3, 3], 100),
    );
    let (xt, wt, dyt) = (up(ctx, &x), up(ctx, &w), up(ctx, &dy));
    ctx.set_config(EngineConfig { max_binding_size: 2 << 10, ..base });
    let before = ctx.submissions();
    let e = deform_conv2d_backward(ctx, &xt, &wt, &up(ctx, &o), Some(&up(ctx, &m)), &dyt, &p, DeformGrads::ALL);
    let after = ctx.submissions();
    ctx.set_config(base);
    let e = e.unwrap_err();
    assert!(matches!(&e, Error::TooLarge(m) if m.contains("weight") && m.contains("storage binding")), "{e:?}");
    assert_eq!(after, before);
}
