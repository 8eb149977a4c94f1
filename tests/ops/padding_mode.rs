//! `padding_mode` (reflect, replicate, circular) on conv1d, conv2d and conv3d and their
//! backward passes against PyTorch's `nn.Conv1d/2d/3d` and its autograd (goldens) and the f64
//! reference (generated cases), and what it refuses: the algorithms whose gathers read zeros,
//! pads PyTorch refuses, an image split into row bands.

use crate::common::gpu;
use wgconv::conformance::{conv2d_cases, conv3d_padding_mode_cases, with_padding_modes, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv1d, conv1d_backward, conv2d, conv2d_backward, conv3d, conv3d_backward, Algorithm, Conv1dParams, Conv2dGrads,
    Conv2dParams, Conv3dParams, EngineConfig, Error, GpuContext, Grads, HostTensor, Padding, Padding1d, Padding3d,
    PaddingMode, Tensor,
};

/// The gradients read back, in the order input, weight, bias.
fn read(ctx: &GpuContext, g: Conv2dGrads) -> Vec<Vec<f32>> {
    [g.grad_input, g.grad_weight, g.grad_bias].into_iter().map(|t| t.unwrap().to_vec(ctx).unwrap()).collect()
}

type Run = Box<dyn Fn(&GpuContext) -> (Vec<f32>, Vec<Vec<f32>>)>;
/// The reference's output and gradients (input, weight, bias), and the GPU run of both.
type Case = (Vec<f64>, (Vec<f64>, Vec<f64>, Vec<f64>), Run);

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

/// PyTorch's `nn.ConvNd(..., padding_mode=...)` forward and autograd (`tools/gen_golden.py
/// padding_mode`): reflect, replicate and circular, symmetric and `same` padding, stride,
/// dilation, groups, on each of conv1d, conv2d and conv3d. The reference and the GPU match
/// every output and gradient.
#[test]
fn matches_pytorch_goldens() {
    let cases = crate::common::goldens("padding_mode");
    assert!(cases.len() >= 9);
    for c in cases {
        let mode = PaddingMode::from_name(c.case["padding_mode"].as_str().unwrap()).unwrap();
        let (x, w, b) = (c.load("input"), c.load("weight"), c.load("bias"));
        let want = c.expected("output");
        let each = |k: &str| -> Vec<u32> {
            c.case[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
        };
        let same = c.case["padding"].as_str() == Some("same");
        let tight = Tolerance { rel_l2: 1e-7, abs: 1e-6 };
        let r32 = |r: &[f64]| r.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let dy = c.load("grad_output");
        let (reference, reference_grads, run): Case = match c.case["op"].as_str().unwrap() {
            "conv2d" => {
                let padding = if same {
                    Padding::Same
                } else {
                    let p = each("padding");
                    Padding::Symmetric([p[0], p[1]])
                };
                let (s, d) = (each("stride"), each("dilation"));
                let p = Conv2dParams {
                    stride: [s[0], s[1]],
                    padding,
                    dilation: [d[0], d[1]],
                    groups: c.groups(),
                    padding_mode: mode,
                    ..Default::default()
                };
                let r = wgconv::reference::conv2d(&x, &w, Some(&b), &p).unwrap().1;
                let rg = wgconv::reference::conv2d_backward(&x, &w, &dy, &p).unwrap();
                let (x, w, b, dy) = (x.clone(), w.clone(), b.clone(), dy.clone());
                (
                    r,
                    rg,
                    Box::new(move |ctx| {
                        let (xt, wt) = (up(ctx, &x), up(ctx, &w));
                        let y = conv2d(ctx, &xt, &wt, Some(&up(ctx, &b)), &p).unwrap().to_vec(ctx).unwrap();
                        (y, read(ctx, conv2d_backward(ctx, &xt, &wt, &up(ctx, &dy), &p, Grads::ALL).unwrap()))
                    }),
                )
            }
            "conv1d" => {
                let p = Conv1dParams {
                    stride: each("stride")[0],
                    padding: Padding1d::Symmetric(each("padding")[0]),
                    dilation: each("dilation")[0],
                    groups: c.groups(),
                    padding_mode: mode,
                    ..Default::default()
                };
                let r = wgconv::reference::conv1d(&x, &w, Some(&b), &p).unwrap().1;
                let rg = wgconv::reference::conv1d_backward(&x, &w, &dy, &p).unwrap();
                let (x, w, b, dy) = (x.clone(), w.clone(), b.clone(), dy.clone());
                (
                    r,
                    rg,
                    Box::new(move |ctx| {
                        let (xt, wt) = (up(ctx, &x), up(ctx, &w));
                        let y = conv1d(ctx, &xt, &wt, Some(&up(ctx, &b)), &p).unwrap().to_vec(ctx).unwrap();
                        (y, read(ctx, conv1d_backward(ctx, &xt, &wt, &up(ctx, &dy), &p, Grads::ALL).unwrap()))
                    }),
                )
            }
            _ => {
                let t = |v: Vec<u32>| [v[0], v[1], v[2]];
                let p = Conv3dParams {
                    stride: t(each("stride")),
                    padding: Padding3d::Symmetric(t(each("padding"))),
                    dilation: t(each("dilation")),
                    groups: c.groups(),
                    padding_mode: mode,
                    ..Default::default()
                };
                let r = wgconv::reference::conv3d(&x, &w, Some(&b), &p).unwrap().1;
                let rg = wgconv::reference::conv3d_backward(&x, &w, &dy, &p).unwrap();
                let (x, w, b, dy) = (x.clone(), w.clone(), b.clone(), dy.clone());
                (
                    r,
                    rg,
                    Box::new(move |ctx| {
                        let (xt, wt) = (up(ctx, &x), up(ctx, &w));
                        let y = conv3d(ctx, &xt, &wt, Some(&up(ctx, &b)), &p).unwrap().to_vec(ctx).unwrap();
                        (y, read(ctx, conv3d_backward(ctx, &xt, &wt, &up(ctx, &dy), &p, Grads::ALL).unwrap()))
                    }),
                )
            }
        };
        assert!(compare(&r32(&reference), &want).passes(tight), "{}: reference vs torch", c.name);
        let want_grads: Vec<Vec<f64>> =
            ["grad_input", "grad_weight", "grad_bias"].iter().map(|f| c.expected(f)).collect();
        let (rdx, rdw, rdb) = reference_grads;
        for (k, (r, t)) in [rdx, rdw, rdb].iter().zip(&want_grads).enumerate() {
            assert!(compare(&r32(r), t).passes(tight), "{}: reference gradient {k} vs torch autograd", c.name);
        }
        let Some(ctx) = gpu() else { continue };
        let (y, grads) = run(ctx);
        let s = compare(&y, &want);
        assert!(s.passes(Tolerance::default()), "{}: GPU vs torch: {s}", c.name);
        for (k, (g, t)) in grads.iter().zip(&want_grads).enumerate() {
            let s = compare(g, t);
            assert!(s.passes(Tolerance::default()), "{} gradient {k}: GPU vs torch autograd: {s}", c.name);
        }
    }
}

/// Generated conv2d and conv3d cases with a padding mode (reflect, replicate, circular in
/// turn): `Auto` takes im2col_gemm and matches the reference, and so do the three gradients;
/// the zeros reference differs on most outputs (the mode is applied, not ignored).
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    let cases = with_padding_modes(&conv2d_cases(2035, 120));
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut differs = 0;
    for c in &cases {
        let t = c.inputs().unwrap();
        let want = c.expected(&t).unwrap();
        let got = conv2d(ctx, &up(ctx, &t[0]), &up(ctx, &t[1]), t.get(2).map(|b| up(ctx, b)).as_ref(), &c.params)
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        let s = compare(&got, &want[0]);
        assert!(s.passes(Tolerance::default()), "{c}: {s}");
        let zeros = Conv2dParams { padding_mode: PaddingMode::Zeros, ..c.params };
        let z = wgconv::reference::conv2d(&t[0], &t[1], t.get(2), &zeros).unwrap().1;
        differs += !compare(&got, &z).passes(Tolerance::default()) as usize;
        // the backward pass (conv3d_backward's fold of the padding) against the reference's
        let p = Conv2dParams { activation: wgconv::Activation::None, ..c.params };
        let dy = HostTensor::random(&p.output_shape(&t[0].shape, &t[1].shape).unwrap(), c.seed ^ 0xd1);
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&t[0], &t[1], &dy, &p).unwrap();
        let g = conv2d_backward(ctx, &up(ctx, &t[0]), &up(ctx, &t[1]), &up(ctx, &dy), &p, Grads::ALL).unwrap();
        for (k, (got, want)) in read(ctx, g).iter().zip([&rdx, &rdw, &rdb]).enumerate() {
            let s = compare(got, want);
            assert!(s.passes(Tolerance::default()), "{c}: gradient {k}: {s}");
        }
    }
    assert!(differs * 2 > cases.len(), "only {differs} of {} differ from zero padding", cases.len());
    let cases = conv3d_padding_mode_cases(2037, 40);
    assert!(cases.len() >= 15, "{} conv3d cases", cases.len());
    for c in &cases {
        let t = c.inputs().unwrap();
        let want = c.expected(&t).unwrap();
        let got = conv3d(ctx, &up(ctx, &t[0]), &up(ctx, &t[1]), None, &c.params).unwrap().to_vec(ctx).unwrap();
        let s = compare(&got, &want[0]);
        assert!(s.passes(Tolerance::default()), "{c}: {s}");
        let dy = HostTensor::random(&c.params.validate(&c.input, &c.weight, None).unwrap().output_shape(), 77);
        let (rdx, rdw, rdb) = wgconv::reference::conv3d_backward(&t[0], &t[1], &dy, &c.params).unwrap();
        let g = conv3d_backward(ctx, &up(ctx, &t[0]), &up(ctx, &t[1]), &up(ctx, &dy), &c.params, Grads::ALL).unwrap();
        for (k, (got, want)) in read(ctx, g).iter().zip([&rdx, &rdw, &rdb]).enumerate() {
            let s = compare(got, want);
            assert!(s.passes(Tolerance::default()), "{c}: gradient {k}: {s}");
        }
    }
}

/// What the modes refuse, each an error before any GPU work: the algorithms that read zeros
/// in the padding (named), reflect pads not below the axis and circular pads beyond it (as
/// PyTorch), an image beyond one binding (row bands); with no padding every mode is the
/// plain conv, on every algorithm. Its own context.
#[test]
fn refusals_name_what_cannot() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let (x, w) = (HostTensor::random(&[1, 4, 6, 6], 91), HostTensor::random(&[4, 1, 3, 3], 92));
    let (xt, wt) = (up(ctx, &x), up(ctx, &w));
    let p = Conv2dParams {
        padding: Padding::Symmetric([1, 1]),
        groups: 4,
        padding_mode: PaddingMode::Reflect,
        ..Default::default()
    };
    let before = ctx.submissions();
    for a in [Algorithm::ImplicitGemm, Algorithm::Depthwise, Algorithm::Direct] {
        let e = conv2d(ctx, &xt, &wt, None, &Conv2dParams { algorithm: a, ..p }).unwrap_err();
        assert!(matches!(&e, Error::InvalidParam { .. } if e.to_string().contains(a.name())), "{a:?}: {e}");
    }
    let e = conv2d(ctx, &xt, &wt, None, &Conv2dParams { padding: Padding::Symmetric([6, 1]), ..p }).unwrap_err();
    assert!(e.to_string().contains("must be smaller than"), "{e}");
    let circ = Conv2dParams { padding: Padding::Symmetric([7, 1]), padding_mode: PaddingMode::Circular, ..p };
    assert!(conv2d(ctx, &xt, &wt, None, &circ).unwrap_err().to_string().contains("at most"));
    let base = ctx.config();
    ctx.set_config(EngineConfig { max_binding_size: 256, ..base });
    let e = conv2d(ctx, &xt, &wt, None, &p).unwrap_err();
    ctx.set_config(base);
    assert!(matches!(&e, Error::TooLarge(m) if m.contains("padding_mode")), "{e}");
    assert_eq!(ctx.submissions(), before);

    // No padding: the mode changes nothing, so every algorithm takes it.
    let valid = Conv2dParams { padding: Padding::Valid, ..p };
    let want = wgconv::reference::conv2d(&x, &w, None, &valid).unwrap().1;
    for a in [Algorithm::Auto, Algorithm::ImplicitGemm, Algorithm::Depthwise, Algorithm::Direct] {
        let got = conv2d(ctx, &xt, &wt, None, &Conv2dParams { algorithm: a, ..valid }).unwrap().to_vec(ctx).unwrap();
        assert!(compare(&got, &want).passes(Tolerance::default()), "{a:?}");
    }
}
