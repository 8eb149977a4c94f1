//! Reductions longer than a driver lets one invocation loop (Mesa 22's llvmpipe stops every
//! loop of an invocation after 65535 iterations in total): every op splits them into passes
//! (`EngineConfig::loop_budget`). Small tensors with a tiny budget reach every split path and
//! must match the f64 reference and repeat bit for bit (pooling: bit-identical to one pass);
//! real-size cases at 65535, 65536, ~100k and ~1M terms per output against the reference.

use crate::common::{case, fresh_gpu, Case, CaseExt};
use wgconv::{conv2d, Algorithm, EngineConfig, GemmKernel, GpuContext, Padding, Tensor};

/// The output, or `None` where the algorithm refuses a loop past the budget (direct,
/// depthwise, Winograd's direct fallback: they do not split).
fn run(ctx: &GpuContext, c: &Case, algo: Algorithm) -> Option<Vec<f32>> {
    let (x, w, b) = c.seeded(7);
    let xg = Tensor::from_host(ctx, &x).unwrap();
    let wg = Tensor::from_host(ctx, &w).unwrap();
    let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap());
    let p = wgconv::Conv2dParams { algorithm: algo, ..c.params };
    match conv2d(ctx, &xg, &wg, bg.as_ref(), &p) {
        Err(wgconv::Error::Unsupported(_))
            if matches!(algo, Algorithm::Direct | Algorithm::Depthwise | Algorithm::Winograd) =>
        {
            None
        }
        y => Some(y.unwrap().to_vec(ctx).unwrap()),
    }
}

#[test]
fn conv2d_split_passes_are_right_and_repeat_bit_for_bit() {
    let Some(ctx) = fresh_gpu() else { return };
    let cases = [
        case(2, 7, [7, 9], 5, [3, 3]).pad(Padding::Symmetric([1, 1])),
        case(1, 40, [6, 6], 5, [1, 1]),
        case(2, 6, [9, 8], 6, [3, 3]).groups(3).stride([2, 2]),
    ];
    let defaults = ctx.config();
    for kernel in [GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        for c in &cases {
            let (x, w, b) = c.seeded(7);
            for algo in c.algorithms() {
                let p = wgconv::Conv2dParams { algorithm: algo, ..c.params };
                let (_, reference) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &p).unwrap();
                // a few K slices of 16 per pass
                ctx.set_config(EngineConfig { gemm_kernel: kernel, loop_budget: 100, ..defaults });
                let Some(split) = run(&ctx, c, algo) else { continue };
                let stats = wgconv::verify::compare(&split, &reference);
                assert!(stats.passes(wgconv::verify::Tolerance::default()), "{kernel:?} {algo:?} {c:?}: {stats}");
                let again = run(&ctx, c, algo).unwrap();
                assert!(split.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "{kernel:?} {algo:?}");
            }
        }
    }
    ctx.set_config(defaults);
}

#[test]
fn pool2d_split_passes_match_the_unsplit_run_bit_for_bit() {
    let Some(ctx) = fresh_gpu() else { return };
    let defaults = ctx.config();
    let x = wgconv::HostTensor::random(&[2, 3, 9, 11], 5);
    let mut data = x.data.clone();
    data[7] = f32::NAN; // a NaN in the first plane's window survives the passes
    let xg = Tensor::from_slice(&ctx, &x.shape, &data).unwrap();
    for (kernel, padding, count_include_pad) in
        [([9, 11], [0, 0], true), ([5, 7], [2, 3], false), ([4, 3], [1, 1], true)]
    {
        let p = wgconv::Pool2dParams { kernel, stride: None, padding, count_include_pad, ..Default::default() };
        for mode in [wgconv::PoolMode::Max, wgconv::PoolMode::Avg] {
            ctx.set_config(defaults);
            let whole = wgconv::ops::pool2d::pool2d(&ctx, &xg, &p, mode).unwrap().to_vec(&ctx).unwrap();
            // budget 3: two columns per unit, one unit per pass
            ctx.set_config(EngineConfig { loop_budget: 3, ..defaults });
            let split = wgconv::ops::pool2d::pool2d(&ctx, &xg, &p, mode).unwrap().to_vec(&ctx).unwrap();
            assert!(
                whole.iter().zip(&split).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{mode:?} {p:?}: {whole:?} vs {split:?}"
            );
            let (_, r) =
                wgconv::reference::pool2d(&wgconv::HostTensor { shape: x.shape.clone(), data: data.clone() }, &p, mode)
                    .unwrap();
            let stats = wgconv::verify::compare(&split, &r);
            assert!(stats.passes(wgconv::verify::Tolerance::default()), "{mode:?} {p:?}: {stats}");
        }
    }
    ctx.set_config(defaults);
}

fn up(ctx: &GpuContext, h: &wgconv::HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

fn check(what: &str, gpu: &[f32], reference: &[f64]) {
    let stats = wgconv::verify::compare(gpu, reference);
    assert!(stats.passes(wgconv::verify::Tolerance { rel_l2: 1e-4, abs: 1e-3 }), "{what}: {stats}");
}

/// Sums of 65535, 65536, ~100k and ~1M terms per output through conv2d's algorithms: right
/// on every driver (Mesa 22's llvmpipe cut them at 65535 loop turns before passes existed).
#[test]
fn conv2d_sums_of_65536_terms_and_more_are_right() {
    let Some(ctx) = fresh_gpu() else { return };
    // (Cin, kernel, spatial): terms per output = Cin·k·k
    for (c_in, k, hw, all) in [(65535, 1, 2, true), (65536, 1, 2, true), (11_112, 3, 3, true), (1 << 20, 1, 2, false)] {
        let c = case(1, c_in, [hw, hw], 2, [k, k]);
        let (x, w, b) = c.seeded(3);
        let (_, reference) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
        let algos = if all { c.algorithms() } else { vec![Algorithm::Auto] };
        for algo in algos {
            let p = wgconv::Conv2dParams { algorithm: algo, ..c.params };
            let y = conv2d(&ctx, &up(&ctx, &x), &up(&ctx, &w), b.as_ref().map(|b| up(&ctx, b)).as_ref(), &p);
            match (algo, y) {
                // the direct kernel does not split its loop, nor winograd's direct sum of a
                // non-finite tile: refused past the budget
                (Algorithm::Direct | Algorithm::Winograd, Err(wgconv::Error::Unsupported(_))) => {}
                (_, y) => check(&format!("{algo:?} Cin {c_in} k {k}"), &y.unwrap().to_vec(&ctx).unwrap(), &reference),
            }
        }
    }
}

/// grad_weight sums over N·Ho·Wo output pixels (a batch of 64 at 32×32 is 65536), for the
/// general path and the depthwise kernels.
#[test]
fn conv2d_backward_sums_over_65536_pixels_and_more_are_right() {
    let Some(ctx) = fresh_gpu() else { return };
    let dense = |n, hw| case(n, 2, [hw, hw], 3, [3, 3]).pad(Padding::Symmetric([1, 1]));
    let depthwise = |n, hw| case(n, 2, [hw, hw], 2, [3, 3]).pad(Padding::Symmetric([1, 1])).groups(2);
    for c in [dense(64, 32), dense(1, 320), depthwise(64, 32), depthwise(1, 1024)] {
        let (x, w, _) = c.seeded(11);
        let dy = wgconv::HostTensor::random(&c.params.output_shape(&x.shape, &w.shape).unwrap(), 12);
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let grads =
            wgconv::conv2d_backward(&ctx, &up(&ctx, &x), &up(&ctx, &w), &up(&ctx, &dy), &c.params, wgconv::Grads::ALL)
                .unwrap();
        let what = format!("n {} {}x{} groups {}", c.input[0], c.input[2], c.input[3], c.params.groups);
        check(&format!("grad_input {what}"), &grads.grad_input.unwrap().to_vec(&ctx).unwrap(), &rdx);
        check(&format!("grad_weight {what}"), &grads.grad_weight.unwrap().to_vec(&ctx).unwrap(), &rdw);
        check(&format!("grad_bias {what}"), &grads.grad_bias.unwrap().to_vec(&ctx).unwrap(), &rdb);
    }
}

/// Global pooling of 256×256 (65536 terms) and 1024×1024 (~1M) maps, the maximum in the
/// last row (a loop cut short misses it).
#[test]
fn global_pooling_of_65536_positions_and_more_is_right() {
    let Some(ctx) = fresh_gpu() else { return };
    for side in [255usize, 256, 1024] {
        let mut x = wgconv::HostTensor::random(&[1, 2, side, side], 21);
        let last = side * side - 1;
        x.data[last] = 7.5; // plane 0's maximum, its very last position
        let p = wgconv::Pool2dParams::new([side as u32, side as u32]);
        for mode in [wgconv::PoolMode::Max, wgconv::PoolMode::Avg] {
            let (_, r) = wgconv::reference::pool2d(&x, &p, mode).unwrap();
            let y = wgconv::ops::pool2d::pool2d(&ctx, &up(&ctx, &x), &p, mode).unwrap().to_vec(&ctx).unwrap();
            check(&format!("{mode:?} {side}x{side}"), &y, &r);
            if mode == wgconv::PoolMode::Max {
                assert_eq!(y[0], 7.5);
            }
        }
    }
}

/// conv_transpose2d's phases with K = Cin = 65536, and the gemm_col2im path.
#[test]
fn conv_transpose2d_sums_of_65536_terms_are_right() {
    let Some(ctx) = fresh_gpu() else { return };
    let x = wgconv::HostTensor::random(&[1, 65536, 2, 2], 31);
    let w = wgconv::HostTensor::random(&[65536, 2, 1, 1], 32);
    for algorithm in [Algorithm::Auto, Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
        let p = wgconv::ConvTranspose2dParams { algorithm, ..Default::default() };
        let (_, r) = wgconv::reference::conv_transpose2d(&x, &w, None, &p).unwrap();
        let y = wgconv::conv_transpose2d(&ctx, &up(&ctx, &x), &up(&ctx, &w), None, &p).unwrap();
        check(&format!("{algorithm:?}"), &y.to_vec(&ctx).unwrap(), &r);
    }
}

/// conv2d_backward under a tiny loop budget: the grad_weight GEMM in passes, grad_bias's
/// channel sums in passes, the depthwise kernels giving way to the general path; against the
/// reference and repeated bit for bit.
#[test]
fn conv2d_backward_split_passes_are_right_and_repeat_bit_for_bit() {
    let Some(ctx) = fresh_gpu() else { return };
    let defaults = ctx.config();
    ctx.set_config(EngineConfig { loop_budget: 20, ..defaults });
    let dense = case(2, 3, [9, 10], 4, [3, 3]).pad(Padding::Symmetric([1, 1]));
    let depthwise = case(2, 3, [9, 10], 6, [3, 3]).pad(Padding::Symmetric([1, 1])).groups(3);
    for c in [dense, depthwise] {
        let (x, w, _) = c.seeded(41);
        let dy = wgconv::HostTensor::random(&c.params.output_shape(&x.shape, &w.shape).unwrap(), 42);
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let grads = || {
            let g = wgconv::conv2d_backward(
                &ctx,
                &up(&ctx, &x),
                &up(&ctx, &w),
                &up(&ctx, &dy),
                &c.params,
                wgconv::Grads::ALL,
            )
            .unwrap();
            [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.unwrap().to_vec(&ctx).unwrap())
        };
        let (first, again) = (grads(), grads());
        for ((name, reference), (a, b)) in
            [("grad_input", &rdx), ("grad_weight", &rdw), ("grad_bias", &rdb)].iter().zip(first.iter().zip(&again))
        {
            let stats = wgconv::verify::compare(a, reference);
            assert!(stats.passes(wgconv::verify::Tolerance::default()), "{name} groups {}: {stats}", c.params.groups);
            assert!(a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()), "{name}");
        }
    }
    ctx.set_config(defaults);
}

/// The kernels that loop without splitting refuse a forced run past the loop budget with an
/// error naming the budget (never a wrong answer), and Auto takes a kernel that splits.
#[test]
fn kernels_that_cannot_split_refuse_past_the_budget() {
    let Some(ctx) = fresh_gpu() else { return };
    let defaults = ctx.config();
    ctx.set_config(EngineConfig { loop_budget: 8, ..defaults });
    let unsupported = |r: wgconv::Result<Tensor>| match r {
        Err(wgconv::Error::Unsupported(m)) => assert!(m.contains("loop budget of 8"), "{m}"),
        other => panic!("expected Unsupported, got {:?}", other.map(|t| t.shape().to_vec())),
    };
    // direct (8 channels × 3x3) and depthwise (3x3 taps) forced; Auto runs
    let x = wgconv::HostTensor::random(&[1, 8, 6, 6], 51);
    let w = wgconv::HostTensor::random(&[8, 8, 3, 3], 52);
    let wd = wgconv::HostTensor::random(&[8, 1, 3, 3], 53);
    for (w, groups, algo) in [(&w, 1, Algorithm::Direct), (&wd, 8, Algorithm::Depthwise)] {
        let p = wgconv::Conv2dParams { groups, algorithm: algo, ..Default::default() };
        unsupported(conv2d(&ctx, &up(&ctx, &x), &up(&ctx, w), None, &p));
        let auto = wgconv::Conv2dParams { algorithm: Algorithm::Auto, ..p };
        let (_, r) = wgconv::reference::conv2d(&x, w, None, &auto).unwrap();
        check(
            &format!("Auto groups {groups}"),
            &conv2d(&ctx, &up(&ctx, &x), &up(&ctx, w), None, &auto).unwrap().to_vec(&ctx).unwrap(),
            &r,
        );
    }
    // gemm_col2im over 3x3 taps
    let wt = wgconv::HostTensor::random(&[8, 2, 3, 3], 54);
    let p = wgconv::ConvTranspose2dParams { algorithm: Algorithm::GemmCol2im, ..Default::default() };
    unsupported(wgconv::conv_transpose2d(&ctx, &up(&ctx, &x), &up(&ctx, &wt), None, &p));
    // deform im2col over 8 channels of one offset group; Auto takes the implicit GEMM
    let off = wgconv::HostTensor::random(&[1, 18, 4, 4], 55);
    let p = wgconv::Conv2dParams { algorithm: Algorithm::Im2colGemm, ..Default::default() };
    unsupported(wgconv::deform_conv2d(&ctx, &up(&ctx, &x), &up(&ctx, &w), &up(&ctx, &off), None, None, &p));
    let auto = wgconv::Conv2dParams { algorithm: Algorithm::Auto, ..p };
    let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &off, None, None, &auto).unwrap();
    let y = wgconv::deform_conv2d(&ctx, &up(&ctx, &x), &up(&ctx, &w), &up(&ctx, &off), None, None, &auto).unwrap();
    check("deform Auto", &y.to_vec(&ctx).unwrap(), &r);
    ctx.set_config(defaults);
}
