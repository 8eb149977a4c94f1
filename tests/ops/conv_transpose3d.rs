//! conv_transpose3d and its backward pass against PyTorch (`F.conv_transpose3d` and its
//! autograd) and the f64 reference: generated cases (bias, activation, every gradient
//! alone), chunked under a small workspace budget with every GEMM kernel, unbatched, empty,
//! and the refusals.

use crate::common::gpu;
use wgconv::conformance::{conv_transpose3d_cases, ConvTranspose3dBackwardCase, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv_transpose3d, conv_transpose3d_backward, ConvTranspose3dParams, EngineConfig, Error, GemmKernel, GpuContext,
    Grads, HostTensor, Padding3d, Tensor,
};

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

fn forward(
    ctx: &GpuContext,
    x: &HostTensor,
    w: &HostTensor,
    b: Option<&HostTensor>,
    p: &ConvTranspose3dParams,
) -> Vec<f32> {
    let b = b.map(|b| up(ctx, b));
    conv_transpose3d(ctx, &up(ctx, x), &up(ctx, w), b.as_ref(), p).unwrap().to_vec(ctx).unwrap()
}

/// (grad_input, grad_weight, grad_bias) read back, `None` where not asked.
fn backward(
    ctx: &GpuContext,
    (x, w, dy): (&HostTensor, &HostTensor, &HostTensor),
    p: &ConvTranspose3dParams,
    which: Grads,
) -> [Option<Vec<f32>>; 3] {
    let g = conv_transpose3d_backward(ctx, &up(ctx, x), &up(ctx, w), &up(ctx, dy), p, which).unwrap();
    [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.map(|t| t.to_vec(ctx).unwrap()))
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

fn params_of(c: &crate::common::Golden) -> ConvTranspose3dParams {
    let triple = |k: &str| {
        let v = c.case[k].as_array().unwrap();
        [0, 1, 2].map(|i| v[i].as_u64().unwrap() as u32)
    };
    ConvTranspose3dParams {
        stride: triple("stride"),
        padding: Padding3d::Symmetric(triple("padding")),
        output_padding: triple("output_padding"),
        dilation: triple("dilation"),
        groups: c.groups(),
        ..Default::default()
    }
}

/// PyTorch's output and gradients (`tools/gen_golden.py conv_transpose3d`: float64 on the
/// stored float32 inputs): padding, output_padding, non-cubic kernels, strides, dilation,
/// groups, 1×1×1. The reference and the GPU match every one, and the output shape is
/// PyTorch's.
#[test]
fn matches_pytorch_goldens() {
    let cases = crate::common::goldens("conv_transpose3d");
    assert!(cases.len() >= 4);
    for c in cases {
        let p = params_of(&c);
        let (x, w, b, dy) = (c.load("input"), c.load("weight"), c.load("bias"), c.load("grad_output"));
        let shape: Vec<usize> =
            c.case["output_shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(p.output_shape(&x.shape, &w.shape).unwrap().to_vec(), shape, "{}", c.name);
        let want_y = c.expected("output");
        let want: Vec<Vec<f64>> = ["grad_input", "grad_weight", "grad_bias"].iter().map(|f| c.expected(f)).collect();
        let tight = Tolerance { rel_l2: 1e-7, abs: 1e-6 };
        let (_, ry) = wgconv::reference::conv_transpose3d(&x, &w, Some(&b), &p).unwrap();
        let r32 = |r: &[f64]| r.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        assert!(compare(&r32(&ry), &want_y).passes(tight), "{}: reference output vs torch", c.name);
        let (rdx, rdw, rdb) = wgconv::reference::conv_transpose3d_backward(&x, &w, &dy, &p).unwrap();
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

/// 60 generated cases (crops, output_padding, groups, bias, relu): the forward against the
/// reference, bit for bit the same on a second run; where the backward applies, every
/// gradient, and on every third each gradient alone bit for bit as with the others.
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    let mut backward_cases = 0;
    for (i, case) in conv_transpose3d_cases(2031, 60).into_iter().enumerate() {
        let t = case.inputs().unwrap();
        let want = case.expected(&t).unwrap();
        let y = forward(ctx, &t[0], &t[1], t.get(2), &case.params);
        let s = compare(&y, &want[0]);
        assert!(s.passes(Tolerance::default()), "{case}: {s}");
        assert!(same_bits(&y, &forward(ctx, &t[0], &t[1], t.get(2), &case.params)), "{case}: a second run");
        let case = ConvTranspose3dBackwardCase(case, Grads::ALL);
        if !case.applies() {
            continue;
        }
        backward_cases += 1;
        let t = case.inputs().unwrap();
        let want = case.expected(&t).unwrap();
        let p = ConvTranspose3dParams { activation: wgconv::Activation::None, ..case.0.params };
        let all = backward(ctx, (&t[0], &t[1], &t[2]), &p, Grads::ALL);
        for k in 0..3 {
            let s = compare(all[k].as_ref().unwrap(), &want[k]);
            assert!(s.passes(Tolerance::default()), "{case} gradient {k}: {s}");
        }
        if i % 3 == 0 {
            for k in 0..3 {
                let which = Grads { input: k == 0, weight: k == 1, bias: k == 2 };
                let one = backward(ctx, (&t[0], &t[1], &t[2]), &p, which);
                assert!(one.iter().enumerate().all(|(j, g)| g.is_some() == (j == k)), "{case}");
                assert!(same_bits(one[k].as_ref().unwrap(), all[k].as_ref().unwrap()), "{case}: gradient {k} alone");
            }
        }
    }
    assert!(backward_cases >= 40, "only {backward_cases} cases had a backward pass");
}

/// A workspace budget of two images per chunk with each GEMM kernel: more launches, the
/// same bits as one chunk (each output voxel gathers the same taps in the same order) and
/// the reference's values; bias and a leaky relu in the gather. Its own context.
#[test]
fn chunked_and_every_gemm_kernel_give_the_same_bits() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = ConvTranspose3dParams {
        stride: [2, 1, 2],
        padding: Padding3d::Explicit { begin: [1, 0, 1], end: [0, 1, 0] },
        output_padding: [1, 0, 0],
        dilation: [1, 2, 1],
        groups: 2,
        activation: wgconv::Activation::LeakyRelu(0.25),
    };
    let (x, w, b) = (
        HostTensor::random(&[5, 4, 3, 4, 3], 61),
        HostTensor::random(&[4, 3, 2, 3, 3], 62),
        HostTensor::random(&[6], 63),
    );
    let (_, want) = wgconv::reference::conv_transpose3d(&x, &w, Some(&b), &p).unwrap();
    let whole = forward(ctx, &x, &w, Some(&b), &p);
    let one = wgconv::plan_conv_transpose3d(ctx, &x.shape, &w.shape, Some(&[6]), &p).unwrap();
    assert_eq!(one.images_per_chunk, 5, "{one}");
    let base = ctx.config();
    let per_image = 6 * 18 * 3 * 4 * 3 * 4;
    for kernel in [GemmKernel::Block4x4, GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, workspace_budget: 2 * per_image, ..base });
        let plan = wgconv::plan_conv_transpose3d(ctx, &x.shape, &w.shape, Some(&[6]), &p).unwrap();
        let got = forward(ctx, &x, &w, Some(&b), &p);
        ctx.set_config(base);
        assert_eq!(plan.images_per_chunk, 2, "{plan}");
        assert!(plan.steps.len() > one.steps.len(), "{plan}");
        let s = compare(&got, &want);
        assert!(s.passes(Tolerance::default()), "{kernel:?}: {s}");
        assert!(same_bits(&got, &whole), "{kernel:?}: chunked");
    }
}

/// Unbatched `[C, D, H, W]` gives the batch of one's output and gradients bit for bit; an
/// empty batch an empty output and zero weight and bias gradients; `same` padding, a too
/// large output_padding, an activation in the backward pass, a tensor beyond one
/// storage binding and a kernel beyond the loop budget are errors before any GPU work. Its
/// own context (it sets limits and counts submissions).
#[test]
fn unbatched_empty_and_refusals() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = ConvTranspose3dParams { stride: [2, 2, 1], padding: Padding3d::Symmetric([1, 0, 1]), ..Default::default() };
    let (x, w, b) = (
        HostTensor::random(&[1, 3, 3, 2, 4], 71),
        HostTensor::random(&[3, 2, 3, 2, 3], 72),
        HostTensor::random(&[2], 73),
    );
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let dy = HostTensor::random(&g.output_shape(), 74);
    let drop_n = |t: &HostTensor| HostTensor::new(&t.shape[1..], t.data.clone()).unwrap();
    let y = forward(ctx, &x, &w, Some(&b), &p);
    let y1 = conv_transpose3d(ctx, &up(ctx, &drop_n(&x)), &up(ctx, &w), Some(&up(ctx, &b)), &p).unwrap();
    assert_eq!(y1.shape(), &g.output_shape()[1..]);
    assert!(same_bits(&y, &y1.to_vec(ctx).unwrap()));
    let all = backward(ctx, (&x, &w, &dy), &p, Grads::ALL);
    let g1 =
        conv_transpose3d_backward(ctx, &up(ctx, &drop_n(&x)), &up(ctx, &w), &up(ctx, &drop_n(&dy)), &p, Grads::ALL)
            .unwrap();
    assert_eq!(g1.grad_input.as_ref().unwrap().shape(), &x.shape[1..]);
    for (a, t) in all.iter().zip([g1.grad_input, g1.grad_weight, g1.grad_bias]) {
        assert!(same_bits(a.as_ref().unwrap(), &t.unwrap().to_vec(ctx).unwrap()));
    }
    let empty = Tensor::empty(ctx, &[0, 3, 3, 2, 4]).unwrap();
    let ey = conv_transpose3d(ctx, &empty, &up(ctx, &w), None, &p).unwrap();
    assert_eq!(ey.shape(), &[0, 2, g.out[0] as usize, g.out[1] as usize, g.out[2] as usize]);
    let edy = Tensor::empty(ctx, ey.shape()).unwrap();
    let eg = conv_transpose3d_backward(ctx, &empty, &up(ctx, &w), &edy, &p, Grads::ALL).unwrap();
    assert!(eg.grad_weight.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    assert!(eg.grad_bias.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));

    let before = ctx.submissions();
    let (xt, wt, dyt) = (up(ctx, &x), up(ctx, &w), up(ctx, &dy));
    let e =
        conv_transpose3d(ctx, &xt, &wt, None, &ConvTranspose3dParams { padding: Padding3d::Same, ..p }).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let e =
        conv_transpose3d(ctx, &xt, &wt, None, &ConvTranspose3dParams { output_padding: [2, 0, 0], ..p }).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let act = ConvTranspose3dParams { activation: wgconv::Activation::Relu, ..p };
    let e = conv_transpose3d_backward(ctx, &xt, &wt, &dyt, &act, Grads::ALL).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let base = ctx.config();
    ctx.set_config(EngineConfig { loop_budget: 20, ..base });
    let e = conv_transpose3d(ctx, &xt, &wt, None, &p).unwrap_err();
    ctx.set_config(EngineConfig { max_binding_size: 256, ..base });
    let e2 = conv_transpose3d(ctx, &xt, &wt, None, &p).unwrap_err();
    ctx.set_config(base);
    assert!(matches!(&e, Error::Unsupported(m) if m.contains("loop budget")), "{e:?}");
    assert!(matches!(&e2, Error::TooLarge(m) if m.contains("storage binding")), "{e2:?}");
    assert_eq!(ctx.submissions(), before);
}

/// An input and output beyond one storage binding (an 8 KiB cap; 16 images of 576 and 1408
/// bytes, unaligned: the pieces go through scratch copies; one image's column matrix, 6912
/// bytes, within it) run in batch pieces: more pieces than one, the same bits as one call.
/// The backward pass too: grad_input bit for bit, grad_weight and grad_bias (summed over the
/// pieces) the reference's. Its own context.
#[test]
fn beyond_one_binding_runs_in_batch_pieces_bit_identically() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = ConvTranspose3dParams { stride: [2, 1, 2], padding: Padding3d::Symmetric([0, 1, 1]), ..Default::default() };
    let (x, w, b) = (
        HostTensor::random(&[16, 3, 2, 4, 6], 101),
        HostTensor::random(&[3, 2, 2, 3, 3], 102),
        HostTensor::random(&[2], 103),
    );
    let whole = forward(ctx, &x, &w, Some(&b), &p);
    let dy = HostTensor::random(&p.validate(&x.shape, &w.shape, None).unwrap().output_shape(), 104);
    let whole_grads = backward(ctx, (&x, &w, &dy), &p, Grads::ALL);
    let base = ctx.config();
    ctx.set_config(EngineConfig { max_binding_size: 8192, ..base });
    let plan = wgconv::plan_conv_transpose3d(ctx, &x.shape, &w.shape, Some(&[2]), &p).unwrap();
    let split = forward(ctx, &x, &w, Some(&b), &p);
    let split_grads = backward(ctx, (&x, &w, &dy), &p, Grads::ALL);
    ctx.set_config(base);
    assert!(plan.batch_pieces > 1, "{plan}");
    assert!(same_bits(&split, &whole), "batch pieces");
    let (_, want) = wgconv::reference::conv_transpose3d(&x, &w, Some(&b), &p).unwrap();
    assert!(compare(&split, &want).passes(Tolerance::default()));
    let [dx, dw, db] = split_grads.map(Option::unwrap);
    assert!(same_bits(&dx, whole_grads[0].as_ref().unwrap()), "grad_input in batch pieces");
    let (rdx, rdw, rdb) = wgconv::reference::conv_transpose3d_backward(&x, &w, &dy, &p).unwrap();
    for (k, (got, want)) in [(&dx, &rdx), (&dw, &rdw), (&db, &rdb)].into_iter().enumerate() {
        let s = compare(got, want);
        assert!(s.passes(Tolerance::default()), "gradient {k} in batch pieces: {s}");
    }
}
