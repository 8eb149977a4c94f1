//! conv3d_backward against PyTorch autograd's gradients and the f64 reference (generated
//! cases, each gradient alone), cut into chunks under small budgets, with every GEMM kernel,
//! unbatched and with an empty batch, and its refusals.

use crate::common::gpu;
use wgconv::conformance::{conv3d_cases, Conv3dBackwardCase, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv3d_backward, Conv3dParams, EngineConfig, Error, GemmKernel, GpuContext, Grads, HostTensor, Padding3d,
    PaddingMode, Tensor,
};

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

/// (grad_input, grad_weight, grad_bias) read back, `None` where not asked.
fn run(
    ctx: &GpuContext,
    (x, w, dy): (&HostTensor, &HostTensor, &HostTensor),
    p: &Conv3dParams,
    which: Grads,
) -> [Option<Vec<f32>>; 3] {
    let g = conv3d_backward(ctx, &up(ctx, x), &up(ctx, w), &up(ctx, dy), p, which).unwrap();
    [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.map(|t| t.to_vec(ctx).unwrap()))
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// PyTorch's gradients (`F.conv3d` under autograd in float64 on the stored float32 inputs,
/// `tools/gen_golden.py`): padding, non-cubic kernels, strides that leave voxels unreached,
/// dilation, groups, 1×1×1. The reference and the GPU match every one.
#[test]
fn matches_pytorch_autograd_goldens() {
    let cases = crate::common::goldens("conv3d_backward");
    assert!(cases.len() >= 4);
    for c in cases {
        let triple = |k: &str| {
            let v = c.case[k].as_array().unwrap();
            [0, 1, 2].map(|i| v[i].as_u64().unwrap() as u32)
        };
        let p = Conv3dParams {
            stride: triple("stride"),
            padding: Padding3d::Symmetric(triple("padding")),
            dilation: triple("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w, dy) = (c.load("input"), c.load("weight"), c.load("grad_output"));
        let want: Vec<Vec<f64>> = ["grad_input", "grad_weight", "grad_bias"].iter().map(|f| c.expected(f)).collect();
        let (rdx, rdw, rdb) = wgconv::reference::conv3d_backward(&x, &w, &dy, &p).unwrap();
        for (r, t) in [rdx, rdw, rdb].iter().zip(&want) {
            let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
            assert!(compare(&r32, t).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{}: reference vs torch", c.name);
        }
        let Some(ctx) = gpu() else { continue };
        let got = run(ctx, (&x, &w, &dy), &p, Grads::ALL);
        for (k, (g, t)) in got.iter().zip(&want).enumerate() {
            let s = compare(g.as_ref().unwrap(), t);
            assert!(s.passes(Tolerance::default()), "{} gradient {k}: GPU vs torch autograd: {s}", c.name);
        }
    }
}

/// 80 generated cases: every gradient against the reference; on every fourth each gradient
/// alone, bit for bit the same as with the others.
#[test]
fn generated_cases_match_the_reference() {
    let Some(ctx) = gpu() else { return };
    for (i, case) in conv3d_cases(2029, 80).into_iter().enumerate() {
        let case = Conv3dBackwardCase(case, Grads::ALL);
        let t = case.inputs().unwrap();
        let want = case.expected(&t).unwrap();
        let all = run(ctx, (&t[0], &t[1], &t[2]), &case.0.params, Grads::ALL);
        for k in 0..3 {
            let s = compare(all[k].as_ref().unwrap(), &want[k]);
            assert!(s.passes(Tolerance::default()), "{case} gradient {k}: {s}");
        }
        if i % 4 == 0 {
            for k in 0..3 {
                let which = Grads { input: k == 0, weight: k == 1, bias: k == 2 };
                let one = run(ctx, (&t[0], &t[1], &t[2]), &case.0.params, which);
                assert!(one.iter().enumerate().all(|(j, g)| g.is_some() == (j == k)), "{case}");
                assert!(same_bits(one[k].as_ref().unwrap(), all[k].as_ref().unwrap()), "{case}: gradient {k} alone");
            }
        }
    }
}

/// A small workspace budget (two images per chunk of column gradients, 16-voxel chunks of the
/// unfold) and loop budget (K in passes) with each GEMM kernel: the reference's gradients,
/// grad_input bit for bit as in one chunk (its gathers sum the same taps in the same order).
/// Its own context: the configuration would reach the other tests.
#[test]
fn chunked_and_every_gemm_kernel_give_the_reference() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = Conv3dParams {
        stride: [1, 2, 1],
        padding: Padding3d::Symmetric([1, 1, 0]),
        dilation: [1, 1, 2],
        groups: 2,
        ..Default::default()
    };
    let (x, w) = (HostTensor::random(&[5, 4, 6, 7, 6], 31), HostTensor::random(&[6, 2, 3, 3, 2], 32));
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let dy = HostTensor::random(&g.output_shape(), 33);
    let t = (&x, &w, &dy);
    let (rdx, rdw, rdb) = wgconv::reference::conv3d_backward(&x, &w, &dy, &p).unwrap();
    let whole = run(ctx, t, &p, Grads::ALL);
    let base = ctx.config();
    let per_image = 4 * 18 * g.out.iter().product::<u32>() as u64 * 4;
    for kernel in [GemmKernel::Block4x4, GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, workspace_budget: 2 * per_image, loop_budget: 400, ..base });
        let plan = wgconv::plan_conv3d_backward(ctx, &x.shape, &w.shape, &p, Grads::ALL).unwrap();
        let got = run(ctx, t, &p, Grads::ALL);
        ctx.set_config(base);
        assert_eq!(plan.images_per_chunk, 2, "{plan}");
        assert!(plan.voxel_chunks > 1, "{plan}");
        assert!(same_bits(got[0].as_ref().unwrap(), whole[0].as_ref().unwrap()), "{kernel:?}: grad_input chunked");
        for (k, want) in [&rdx, &rdw, &rdb].into_iter().enumerate() {
            let s = compare(got[k].as_ref().unwrap(), want);
            assert!(s.passes(Tolerance::default()), "{kernel:?} gradient {k}: {s}");
        }
    }
}

/// Unbatched `[C, D, H, W]` gives the batch of one's gradients bit for bit; an empty batch
/// zero weight and bias gradients; an activation and a kernel beyond the loop budget are
/// errors before any GPU work (its own context: it counts submissions).
#[test]
fn unbatched_empty_and_refusals() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let p = Conv3dParams { padding: Padding3d::Same, ..Default::default() };
    let (x, w) = (HostTensor::random(&[1, 3, 4, 5, 4], 41), HostTensor::random(&[2, 3, 3, 3, 3], 42));
    let dy = HostTensor::random(&[1, 2, 4, 5, 4], 43);
    let one = run(ctx, (&x, &w, &dy), &p, Grads::ALL);
    let drop_n = |t: &HostTensor| HostTensor::new(&t.shape[1..], t.data.clone()).unwrap();
    let g = conv3d_backward(ctx, &up(ctx, &drop_n(&x)), &up(ctx, &w), &up(ctx, &drop_n(&dy)), &p, Grads::ALL).unwrap();
    assert_eq!(g.grad_input.as_ref().unwrap().shape(), &x.shape[1..]);
    let unbatched = [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.unwrap().to_vec(ctx).unwrap());
    for (a, b) in one.iter().zip(&unbatched) {
        assert!(same_bits(a.as_ref().unwrap(), b));
    }
    let (ex, edy) = (Tensor::empty(ctx, &[0, 3, 4, 5, 4]).unwrap(), Tensor::empty(ctx, &[0, 2, 4, 5, 4]).unwrap());
    let g = conv3d_backward(ctx, &ex, &up(ctx, &w), &edy, &p, Grads::ALL).unwrap();
    assert_eq!(g.grad_input.unwrap().numel(), 0);
    assert!(g.grad_weight.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));
    assert!(g.grad_bias.unwrap().to_vec(ctx).unwrap().iter().all(|&v| v == 0.0));

    let before = ctx.submissions();
    let (xt, wt, dyt) = (up(ctx, &x), up(ctx, &w), up(ctx, &dy));
    let act = Conv3dParams { activation: wgconv::Activation::Relu, ..p };
    let e = conv3d_backward(ctx, &xt, &wt, &dyt, &act, Grads::ALL).unwrap_err();
    assert!(matches!(&e, Error::InvalidParam { .. }), "{e:?}");
    let base = ctx.config();
    ctx.set_config(EngineConfig { loop_budget: 20, ..base });
    let e = conv3d_backward(ctx, &xt, &wt, &dyt, &p, Grads::ALL).unwrap_err();
    ctx.set_config(base);
    assert!(matches!(&e, Error::Unsupported(m) if m.contains("loop budget")), "{e:?}");
    assert_eq!(ctx.submissions(), before);
}

/// An input and grad_output beyond one storage binding (a 2 KiB and an 8 KiB cap here) run
/// in batch pieces: grad_input bit for bit as one call, grad_weight and grad_bias (summed over
/// the pieces) the reference's; the plan lists the pieces. Zeros and reflect padding, whose
/// gradient folds back. A weight beyond one binding is refused before any GPU work. Its own
/// context: the cap would reach the other tests.
#[test]
fn beyond_one_binding_runs_in_batch_pieces() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let ctx = &ctx;
    let reflect = Conv3dParams {
        padding: Padding3d::Symmetric([1, 1, 1]),
        padding_mode: PaddingMode::Reflect,
        ..Default::default()
    };
    let base = ctx.config();
    for (n, p, cap, pieces) in [(5, Conv3dParams::default(), 2 << 10, 2), (17, reflect, 8 << 10, 4)] {
        let (x, w) = (HostTensor::random(&[n, 2, 4, 4, 4], 51), HostTensor::random(&[3, 2, 2, 2, 2], 52));
        let dy = HostTensor::random(&p.validate(&x.shape, &w.shape, None).unwrap().output_shape(), 53);
        let t = (&x, &w, &dy);
        let (rdx, rdw, rdb) = wgconv::reference::conv3d_backward(&x, &w, &dy, &p).unwrap();
        let whole = run(ctx, t, &p, Grads::ALL);
        ctx.set_config(EngineConfig { max_binding_size: cap, ..base });
        let plan = wgconv::plan_conv3d_backward(ctx, &x.shape, &w.shape, &p, Grads::ALL);
        let got = run(ctx, t, &p, Grads::ALL);
        ctx.set_config(base);
        let plan = plan.unwrap();
        assert_eq!(plan.batch_pieces, pieces, "{plan}");
        assert!(same_bits(got[0].as_ref().unwrap(), whole[0].as_ref().unwrap()), "n = {n}: grad_input in pieces");
        for (k, want) in [&rdx, &rdw, &rdb].into_iter().enumerate() {
            let s = compare(got[k].as_ref().unwrap(), want);
            assert!(s.passes(Tolerance::default()), "n = {n}, gradient {k}: {s}");
        }
    }
    let (x, w) = (HostTensor::random(&[2, 8, 4, 4, 4], 54), HostTensor::random(&[8, 8, 3, 3, 3], 55));
    let dy = HostTensor::random(&[2, 8, 2, 2, 2], 56);
    let (xt, wt, dyt) = (up(ctx, &x), up(ctx, &w), up(ctx, &dy));
    ctx.set_config(EngineConfig { max_binding_size: 4 << 10, ..base });
    let before = ctx.submissions();
    let e = conv3d_backward(ctx, &xt, &wt, &dyt, &Conv3dParams::default(), Grads::ALL).unwrap_err();
    let after = ctx.submissions();
    ctx.set_config(base);
    assert!(matches!(&e, Error::TooLarge(m) if m.contains("weight") && m.contains("storage binding")), "{e:?}");
    assert_eq!(after, before);
}
