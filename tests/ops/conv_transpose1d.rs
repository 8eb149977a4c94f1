//! conv_transpose1d and its backward pass against PyTorch (`F.conv_transpose1d` and its
//! autograd) and the f64 reference: generated cases, f16, a sequence beyond one storage
//! binding, unbatched and empty inputs, the refusals.

use crate::common::gpu;
use wgconv::conformance::{conv_transpose1d_cases, ConvTranspose1dBackwardCase, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv_transpose1d, conv_transpose1d_backward, ConvTranspose1dParams, EngineConfig, Error, GpuContext, Grads,
    HostTensor, Padding1d, Tensor,
};

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

fn forward(
    ctx: &GpuContext,
    x: &HostTensor,
    w: &HostTensor,
    b: Option<&HostTensor>,
    p: &ConvTranspose1dParams,
) -> Vec<f32> {
    let b = b.map(|b| up(ctx, b));
    conv_transpose1d(ctx, &up(ctx, x), &up(ctx, w), b.as_ref(), p).unwrap().to_vec(ctx).unwrap()
}

fn backward(
    ctx: &GpuContext,
    (x, w, dy): (&HostTensor, &HostTensor, &HostTensor),
    p: &ConvTranspose1dParams,
    which: Grads,
) -> [Option<Vec<f32>>; 3] {
    let g = conv_transpose1d_backward(ctx, &up(ctx, x), &up(ctx, w), &up(ctx, dy), p, which).unwrap();
    [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.map(|t| t.to_vec(ctx).unwrap()))
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// PyTorch's output and gradients (`tools/gen_golden.py conv_transpose1d`): stride,
/// padding, output_padding, dilation, groups, depthwise. Reference and GPU match each.
#[test]
fn matches_pytorch_goldens() {
    let cases = crate::common::goldens("conv_transpose1d");
    assert!(cases.len() >= 4);
    for c in cases {
        let one = |k: &str| c.case[k].as_array().unwrap()[0].as_u64().unwrap() as u32;
        let p = ConvTranspose1dParams {
            stride: one("stride"),
            padding: Padding1d::Symmetric(one("padding")),
            output_padding: one("output_padding"),
            dilation: one("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w, b, dy) = (c.load("input"), c.load("weight"), c.load("bias"), c.load("grad_output"));
        let shape: Vec<usize> =
            c.case["output_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(p.output_shape(&x.shape, &w.shape).unwrap().to_vec(), shape, "{}", c.name);
        let want_y = c.expected("output");
        let want: Vec<Vec<f64>> = ["grad_input", "grad_weight", "grad_bias"].iter().map(|f| c.expected(f)).collect();
        let tight = Tolerance { rel_l2: 1e-7, abs: 1e-6 };
        let r32 = |r: &[f64]| r.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let (_, ry) = wgconv::reference::conv_transpose1d(&x, &w, Some(&b), &p).unwrap();
        assert!(compare(&r32(&ry), &want_y).passes(tight), "{}: reference output vs torch", c.name);
        let (rdx, rdw, rdb) = wgconv::reference::conv_transpose1d_backward(&x, &w, &dy, &p).unwrap();
        for (r, t) in [rdx, rdw, rdb].iter().zip(&want) {
            assert!(compare(&r32(r), t).passes(tight), "{}: reference gradient vs torch", c.name);
        }
        let Some(ctx) = gpu() else { continue };
        let s = compare(&forward(ctx, &x, &w, Some(&b), &p), &want_y);
        assert!(s.passes(Tolerance::default()), "{}: GPU output vs torch: {s}", c.name);
        let got = backward(ctx, (&x, &w, &dy), &p, Grads::ALL);
        for (k, (g, t)) in got.iter().zip(&want).enumerate() {
            let s = compare(g.as_ref().unwrap(), t);
            assert!(s.passes(Tolerance::default()), "{} gradient {k}: GPU vs torch autograd: {s}", c.name);
        }
    }
}

/// 80 generated cases (both algorithms' params as generated): forward and, where the
/// backward applies, every gradient against the reference.
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    let mut backward_cases = 0;
    for case in conv_transpose1d_cases(2033, 80) {
        let t = case.inputs().unwrap();
        let want = case.expected(&t).unwrap();
        let s = compare(&forward(ctx, &t[0], &t[1], t.get(2), &case.params()), &want[0]);
        assert!(s.passes(Tolerance::default()), "{case}: {s}");
        let case = ConvTranspose1dBackwardCase(case, Grads::ALL);
        if !case.applies() {
            continue;
        }
        backward_cases += 1;
        let t = case.inputs().unwrap();
        let want = case.expected(&t).unwrap();
        let got = backward(ctx, (&t[0], &t[1], &t[2]), &case.0.params(), Grads::ALL);
        for k in 0..3 {
            let s = compare(got[k].as_ref().unwrap(), &want[k]);
            assert!(s.passes(Tolerance::default()), "{case} gradient {k}: {s}");
        }
    }
    assert!(backward_cases >= 50, "only {backward_cases} cases had a backward pass");
}

/// A sequence beyond one storage binding (a 2 KiB cap; 480 and 2856 bytes per sequence): the
/// sequence runs along conv_transpose2d's rows, cut into bands; forward and gradients match
/// the reference, grad_input and the output bit for bit as with no cap. Its own context.
#[test]
fn a_sequence_beyond_one_binding_runs_in_bands() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = ConvTranspose1dParams {
        stride: 4,
        padding: Padding1d::Explicit { left: 2, right: 1 },
        output_padding: 1,
        dilation: 1,
        groups: 2,
        ..Default::default()
    };
    let (x, w, b) =
        (HostTensor::random(&[2, 4, 30], 81), HostTensor::random(&[4, 3, 5], 82), HostTensor::random(&[6], 83));
    let out = p.output_shape(&x.shape, &w.shape).unwrap();
    let dy = HostTensor::random(&out, 84);
    let (_, want_y) = wgconv::reference::conv_transpose1d(&x, &w, Some(&b), &p).unwrap();
    let (rdx, rdw, rdb) = wgconv::reference::conv_transpose1d_backward(&x, &w, &dy, &p).unwrap();
    let (y0, g0) = (forward(ctx, &x, &w, Some(&b), &p), backward(ctx, (&x, &w, &dy), &p, Grads::ALL));
    let base = ctx.config();
    ctx.set_config(EngineConfig { max_binding_size: 2048, ..base });
    let (y, g) = (forward(ctx, &x, &w, Some(&b), &p), backward(ctx, (&x, &w, &dy), &p, Grads::ALL));
    ctx.set_config(base);
    assert!(compare(&y, &want_y).passes(Tolerance::default()));
    assert!(same_bits(&y, &y0), "the output in bands");
    for (k, r) in [&rdx, &rdw, &rdb].into_iter().enumerate() {
        let s = compare(g[k].as_ref().unwrap(), r);
        assert!(s.passes(Tolerance::default()), "gradient {k} in bands: {s}");
    }
    assert!(same_bits(g[0].as_ref().unwrap(), g0[0].as_ref().unwrap()), "grad_input in bands");
}

/// Unbatched `[C, L]` gives the batch of one's results bit for bit; an empty batch an empty
/// output and zero weight and bias gradients; f16 storage within the f16 tolerance; `same`
/// padding, a too large output_padding and an activation in the backward pass are errors
/// before any GPU work. Its own context (it counts submissions).
#[test]
fn unbatched_empty_f16_and_refusals() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p =
        ConvTranspose1dParams { stride: 2, padding: Padding1d::Symmetric(1), output_padding: 1, ..Default::default() };
    let (x, w, b) =
        (HostTensor::random(&[1, 3, 7], 91), HostTensor::random(&[3, 2, 4], 92), HostTensor::random(&[2], 93));
    let out = p.output_shape(&x.shape, &w.shape).unwrap();
    let dy = HostTensor::random(&out, 94);
    let drop_n = |t: &HostTensor| HostTensor::new(&t.shape[1..], t.data.clone()).unwrap();
    let y = forward(ctx, &x, &w, Some(&b), &p);
    let y1 = conv_transpose1d(ctx, &up(ctx, &drop_n(&x)), &up(ctx, &w), Some(&up(ctx, &b)), &p).unwrap();
    assert_eq!(y1.shape(), &out[1..]);
    assert!(same_bits(&y, &y1.to_vec(ctx).unwrap()));
    let all = backward(ctx, (&x, &w, &dy), &p, Grads::ALL);
    let g1 =
        conv_transpose1d_backward(ctx, &up(ctx, &drop_n(&x)), &up(ctx, &w), &up(ctx, &drop_n(&dy)), &p, Grads::ALL)
            .unwrap();
    for (a, t) in all.iter().zip([g1.grad_input, g1.grad_weight, g1.grad_bias]) {
        assert!(same_bits(a.as_ref().unwrap(), &t.unwrap().to_vec(ctx).unwrap()));
    }
    let empty = Tensor::empty(ctx, &[0, 3, 7]).unwrap();
    let ey = conv_transpose1d(ctx, &empty, &up(ctx, &w), None, &p).unwrap();
    assert_eq!(ey.shape(), &[0, 2, out[2]]);
    let eg =
        conv_transpose1d_backward(ctx, &empty, &up(ctx, &w), &Tensor::empty(ctx, ey.shape()).unwrap(), &p, Grads::ALL)
            .unwrap();
    assert!(eg.grad_weight.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    assert!(eg.grad_bias.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        let h = |t: &HostTensor| Tensor::from_slice_as_lossy(ctx, &t.shape, &t.data, wgconv::DType::F16).unwrap();
        let got = conv_transpose1d(ctx, &h(&x), &h(&w), Some(&h(&b)), &p).unwrap().to_vec(ctx).unwrap();
        let r = |t: &HostTensor| t.clone().rounded_to(wgconv::DType::F16);
        let (_, want) = wgconv::reference::conv_transpose1d(&r(&x), &r(&w), Some(&r(&b)), &p).unwrap();
        let s = compare(&got, &want);
        assert!(s.passes(Tolerance { rel_l2: 1e-3, abs: 1e-3 }), "f16: {s}");
    }

    let before = ctx.submissions();
    let (xt, wt, dyt) = (up(ctx, &x), up(ctx, &w), up(ctx, &dy));
    let e =
        conv_transpose1d(ctx, &xt, &wt, None, &ConvTranspose1dParams { padding: Padding1d::Same, ..p }).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let e = conv_transpose1d(ctx, &xt, &wt, None, &ConvTranspose1dParams { output_padding: 2, ..p }).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let act = ConvTranspose1dParams { activation: wgconv::Activation::Relu, ..p };
    let e = conv_transpose1d_backward(ctx, &xt, &wt, &dyt, &act, Grads::ALL).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    assert_eq!(ctx.submissions(), before);
}
