//! NaN and ±Inf through every fused activation, as PyTorch: NaN in, NaN out (relu, relu6 and
//! tanh used to turn it into 0, 0 and −1, and the reference dropped it for relu). The field
//! case `relu_keeps_nan` (tests/data/field) is one NaN pixel under a 3x3 conv.

use crate::common::{case, gpu, CaseExt};
use wgconv::{conv2d, Activation, Algorithm, HostTensor, Padding, Tensor};

#[test]
fn nan_and_inf_pass_every_activation_on_every_algorithm() {
    let Some(ctx) = gpu() else { return };
    let base = case(1, 3, [6, 6], 4, [3, 3]).pad(Padding::Symmetric([1, 1]));
    let (mut x, w, b) = base.seeded(9);
    x.data[14] = f32::NAN; // channel 0, row 2, column 2
    x.data[36 + 30] = f32::INFINITY; // channel 1, row 5, column 0
    let (xg, wg, bg) = (
        Tensor::from_host(ctx, &x).unwrap(),
        Tensor::from_host(ctx, &w).unwrap(),
        b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap()),
    );
    for act in Activation::ALL {
        // every activation on Auto, relu on every algorithm (each pair compiles a pipeline)
        let algos = if act == Activation::Relu { base.algorithms() } else { vec![Algorithm::Auto] };
        for algo in algos {
            let p = wgconv::Conv2dParams { algorithm: algo, activation: act, ..base.params };
            let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &p).unwrap();
            assert!(r.iter().any(|v| v.is_nan()), "the reference keeps NaN through {act:?}");
            let y = conv2d(ctx, &xg, &wg, bg.as_ref(), &p).unwrap().to_vec(ctx).unwrap();
            for (i, (g, r)) in y.iter().zip(&r).enumerate() {
                assert_eq!(g.is_nan(), r.is_nan(), "{act:?} {algo:?} output {i}: {g} vs {r}");
            }
            let stats = wgconv::verify::compare(&y, &r);
            assert!(stats.passes(wgconv::verify::Tolerance::default()), "{act:?} {algo:?}: {stats}");
        }
    }
}

/// Winograd's transforms add values of different positions (an ∞ in one input would give
/// ∞ − ∞ = NaN on outputs the direct sum makes ±∞ or finite): tiles whose transformed values
/// are not all finite are summed directly, so every NaN and ±∞ lands where the reference
/// puts it: an input +∞, −∞ and NaN in different tiles and channels, an ∞ in one weight.
#[test]
fn winograd_puts_nan_and_infinity_where_the_reference_does() {
    let Some(ctx) = gpu() else { return };
    let base = case(2, 3, [9, 8], 5, [3, 3]).pad(Padding::Symmetric([1, 1])).algo(Algorithm::Winograd);
    let (mut x, mut w, b) = base.seeded(21);
    let plane = 9 * 8;
    x.data[8 + 3] = f32::INFINITY; // image 0, channel 0, row 1, column 3
    x.data[plane + 5 * 8 + 7] = f32::NEG_INFINITY; // image 0, channel 1, row 5, column 7 (the edge)
    x.data[3 * plane + 2 * plane + 8 * 8] = f32::NAN; // image 1, channel 2, the last row
    let clean = w.clone();
    w.data[3 * 27 + 4] = f32::INFINITY; // output channel 3, the centre tap of channel 0
    let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    for (what, weight) in [("finite weight", &clean), ("an infinite weight", &w)] {
        let (_, r) = wgconv::reference::conv2d(&x, weight, b.as_ref(), &base.params).unwrap();
        let y = conv2d(ctx, &t(&x), &t(weight), b.as_ref().map(t).as_ref(), &base.params).unwrap().to_vec(ctx).unwrap();
        assert!(r.iter().any(|v| v.is_infinite()) && r.iter().any(|v| v.is_nan()), "{what}: the case has both");
        crate::special_values::assert_same_specials(&format!("winograd, {what}"), &y, &r);
        let finite: Vec<(f32, f64)> = y.iter().zip(&r).filter(|(_, r)| r.is_finite()).map(|(g, r)| (*g, *r)).collect();
        let (g, r): (Vec<f32>, Vec<f64>) = finite.into_iter().unzip();
        let stats = wgconv::verify::compare(&g, &r);
        assert!(stats.passes(wgconv::verify::Tolerance::default()), "{what}: {stats}");
    }
}

#[test]
fn relu_keeps_nan_field_case() {
    let Some(ctx) = gpu() else { return };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/field/relu_keeps_nan");
    let load = |n: &str| HostTensor::read_npy(dir.join(n)).unwrap().0;
    let (x, w, b, y) = (load("x.npy"), load("w.npy"), load("b.npy"), load("y.npy"));
    for act in [Activation::Relu, Activation::Relu6, Activation::Tanh] {
        let p = wgconv::Conv2dParams {
            padding: Padding::Symmetric([1, 1]),
            activation: act,
            algorithm: Algorithm::Auto,
            ..Default::default()
        };
        let out = conv2d(
            ctx,
            &Tensor::from_host(ctx, &x).unwrap(),
            &Tensor::from_host(ctx, &w).unwrap(),
            Some(&Tensor::from_host(ctx, &b).unwrap()),
            &p,
        )
        .unwrap()
        .to_vec(ctx)
        .unwrap();
        let nan_out = out.iter().filter(|v| v.is_nan()).count();
        assert_eq!(nan_out, y.data.iter().filter(|v| v.is_nan()).count(), "{act:?}");
        for (o, e) in out.iter().zip(&y.data) {
            assert_eq!(o.is_nan(), e.is_nan(), "{act:?}");
        }
        if act == Activation::Relu {
            let expected: Vec<f64> = y.data.iter().map(|&v| v as f64).collect();
            let stats = wgconv::verify::compare(&out, &expected);
            assert!(stats.passes(wgconv::verify::Tolerance { rel_l2: 1e-4, abs: 1e-3 }), "{stats}");
        }
    }
}

/// NaN where the reference has NaN, +∞ where +∞, −∞ where −∞, finite and close elsewhere.
pub(crate) fn assert_same_specials(what: &str, got: &[f32], want: &[f64]) {
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
    assert_eq!(got.len(), want.len(), "{what}");
    let mut specials = 0;
    for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
        assert_eq!(class(g as f64), class(r), "{what}[{i}]: {g} vs the reference's {r}");
        if class(r) == 3 {
            assert!((g as f64 - r).abs() <= 1e-4 * (1.0 + r.abs()), "{what}[{i}]: {g} vs {r}");
        } else {
            specials += 1;
        }
    }
    assert!(specials > 0, "{what}: no special value");
}

/// x, w and dy random with NaN and ±∞ planted at their ends (next to the padding and the
/// cropped border), for a conv with these shapes.
fn special_operands(x: &[usize], w: &[usize], dy: &[usize], seed: u64) -> [HostTensor; 3] {
    let mut t = [x, w, dy].map(|s| HostTensor::random(s, seed));
    for (k, t) in t.iter_mut().enumerate() {
        let n = t.data.len();
        let at = [0, n - 1, n / 2 + k];
        for (i, v) in at.into_iter().zip([f32::NAN, f32::INFINITY, f32::NEG_INFINITY]) {
            t.data[i] = v;
        }
    }
    t
}

/// Every backward pass with NaN and ±∞ in the input, the weight and grad_output: the same
/// special values in the same places as the reference (autograd through the zero padding:
/// grad_weight sums dy·0 where a tap reads the padding, grad_input has no term there; a
/// transposed conv's cropped border is an explicit zero of dy). conv1d and conv3d with zeros
/// and reflect padding (im2col/vol2col gathers, col2im/col2vol scatters), the transposed
/// ones with padding, output_padding and groups.
#[test]
fn backward_passes_put_nan_and_infinity_where_the_reference_does() {
    use wgconv::*;
    let Some(ctx) = gpu() else { return };
    let up = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    let check = |name: &str, g: Conv2dGrads, want: (Vec<f64>, Vec<f64>, Vec<f64>)| {
        let got = [g.grad_input, g.grad_weight, g.grad_bias].map(|t| t.unwrap().to_vec(ctx).unwrap());
        for ((what, got), want) in
            ["grad_input", "grad_weight", "grad_bias"].iter().zip(&got).zip([want.0, want.1, want.2])
        {
            assert_same_specials(&format!("{name} {what}"), got, &want);
        }
    };
    for mode in [PaddingMode::Zeros, PaddingMode::Reflect] {
        let p = Conv1dParams { padding: Padding1d::Symmetric(2), stride: 2, padding_mode: mode, ..Default::default() };
        let (xs, ws) = ([2, 3, 11], [4, 3, 3]);
        let (ys, _) = reference::conv1d(&HostTensor::random(&xs, 1), &HostTensor::random(&ws, 1), None, &p).unwrap();
        let [x, w, dy] = special_operands(&xs, &ws, &ys, 3);
        let g = conv1d_backward(ctx, &up(&x), &up(&w), &up(&dy), &p, Grads::ALL).unwrap();
        check(&format!("conv1d {mode:?}"), g, reference::conv1d_backward(&x, &w, &dy, &p).unwrap());

        let p = Conv3dParams { padding: Padding3d::Symmetric([1, 1, 1]), padding_mode: mode, ..Default::default() };
        let (xs, ws) = ([1, 2, 4, 5, 4], [3, 2, 3, 3, 2]);
        let (ys, _) = reference::conv3d(&HostTensor::random(&xs, 1), &HostTensor::random(&ws, 1), None, &p).unwrap();
        let [x, w, dy] = special_operands(&xs, &ws, &ys, 4);
        let g = conv3d_backward(ctx, &up(&x), &up(&w), &up(&dy), &p, Grads::ALL).unwrap();
        check(&format!("conv3d {mode:?}"), g, reference::conv3d_backward(&x, &w, &dy, &p).unwrap());
    }
    let p =
        ConvTranspose1dParams { stride: 2, padding: Padding1d::Symmetric(1), output_padding: 1, ..Default::default() };
    let (xs, ws) = ([2, 4, 7], [4, 3, 3]);
    let (ys, _) =
        reference::conv_transpose1d(&HostTensor::random(&xs, 1), &HostTensor::random(&ws, 1), None, &p).unwrap();
    let [x, w, dy] = special_operands(&xs, &ws, &ys, 5);
    let g = conv_transpose1d_backward(ctx, &up(&x), &up(&w), &up(&dy), &p, Grads::ALL).unwrap();
    check("conv_transpose1d", g, reference::conv_transpose1d_backward(&x, &w, &dy, &p).unwrap());

    let p = ConvTranspose2dParams {
        stride: [2, 2],
        padding: Padding::Symmetric([1, 2]),
        output_padding: [1, 0],
        groups: 2,
        ..Default::default()
    };
    let (xs, ws) = ([1, 4, 5, 6], [4, 3, 3, 3]);
    let (ys, _) =
        reference::conv_transpose2d(&HostTensor::random(&xs, 1), &HostTensor::random(&ws, 1), None, &p).unwrap();
    let [x, w, dy] = special_operands(&xs, &ws, &ys, 6);
    let g = conv_transpose2d_backward(ctx, &up(&x), &up(&w), &up(&dy), &p, Grads::ALL).unwrap();
    check("conv_transpose2d", g, reference::conv_transpose2d_backward(&x, &w, &dy, &p).unwrap());

    let p = ConvTranspose3dParams { stride: [1, 2, 2], padding: Padding3d::Symmetric([1, 1, 1]), ..Default::default() };
    let (xs, ws) = ([1, 2, 3, 4, 3], [2, 3, 2, 3, 3]);
    let (ys, _) =
        reference::conv_transpose3d(&HostTensor::random(&xs, 1), &HostTensor::random(&ws, 1), None, &p).unwrap();
    let [x, w, dy] = special_operands(&xs, &ws, &ys, 7);
    let g = conv_transpose3d_backward(ctx, &up(&x), &up(&w), &up(&dy), &p, Grads::ALL).unwrap();
    check("conv_transpose3d", g, reference::conv_transpose3d_backward(&x, &w, &dy, &p).unwrap());
}

/// conv_transpose2d with ±∞ and NaN in the weight and the input: the scatter sums only the
/// (input, tap) pairs that land inside the output, so a cropped border adds no 0·∞; every
/// algorithm (Winograd at stride 1: its direct fallback skips the conv's padding taps) gives
/// the reference's special values in its places.
#[test]
fn transposed_conv_weights_meet_no_padding_zeros() {
    use wgconv::*;
    let Some(ctx) = gpu() else { return };
    let mut x = HostTensor::random(&[1, 3, 5, 6], 71);
    let mut w = HostTensor::random(&[3, 4, 3, 3], 72);
    w.data[0] = f32::INFINITY;
    w.data[9 * 5 + 8] = f32::NEG_INFINITY;
    x.data[7] = f32::NAN;
    let last = x.data.len() - 1;
    x.data[last] = f32::INFINITY;
    let runs = [
        (Algorithm::ImplicitGemm, [2, 2]),
        (Algorithm::ImplicitGemm, [1, 1]),
        (Algorithm::GemmCol2im, [2, 2]),
        (Algorithm::GemmCol2im, [1, 1]),
        (Algorithm::Winograd, [1, 1]),
    ];
    for (algorithm, stride) in runs {
        let p = ConvTranspose2dParams { stride, padding: Padding::Symmetric([1, 1]), algorithm, ..Default::default() };
        let (_, want) = reference::conv_transpose2d(&x, &w, None, &p).unwrap();
        let up = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let got = conv_transpose2d(ctx, &up(&x), &up(&w), None, &p).unwrap().to_vec(ctx).unwrap();
        assert_same_specials(&format!("conv_transpose2d {}", algorithm.name()), &got, &want);
    }
}

/// conv_transpose2d's output phases (`ImplicitGemm`) read a tap whose input row or column lies
/// outside the input as 0 and multiplied it by the tap's weight: with an infinite weight, NaN
/// on the output's border where the scatter adds nothing (`implicit_gemm[5]: NaN vs the
/// reference's 0.188`). The border pass recomputes them: NaN and ±∞ where the reference has
/// them on strides 1–3, dilation, asymmetric padding, output_padding (rows no tap reaches),
/// groups, a 1×1 kernel, a 1×40 one, bias and relu; with the flat and 8×8 GEMM kernels,
/// channels-last tensors, the sum in passes of a small loop budget (taps and channels), and
/// f16 storage.
#[test]
fn transposed_phases_put_no_nan_where_a_tap_falls_outside_the_input() {
    use wgconv::*;
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let base = ctx.config();
    // (input, weight, stride, padding, dilation, output_padding, groups)
    type Geometry = ([usize; 4], [usize; 4], [u32; 2], Padding, [u32; 2], [u32; 2], u32);
    let geometries: [Geometry; 6] = [
        ([1, 3, 5, 6], [3, 4, 3, 3], [1, 1], Padding::Symmetric([1, 1]), [1, 1], [0, 0], 1),
        // a kernel longer than the small loop budget below: the sum in passes of taps too
        ([1, 2, 1, 80], [2, 4, 1, 40], [1, 1], Padding::Symmetric([0, 20]), [1, 1], [0, 0], 1),
        ([2, 4, 4, 5], [4, 2, 4, 3], [2, 2], Padding::Symmetric([0, 1]), [1, 1], [1, 0], 2),
        (
            [1, 3, 4, 4],
            [3, 3, 3, 2],
            [3, 2],
            Padding::Explicit { top: 2, left: 0, bottom: 1, right: 1 },
            [2, 1],
            [0, 1],
            1,
        ),
        ([1, 2, 3, 4], [2, 3, 1, 1], [2, 2], Padding::Symmetric([0, 0]), [1, 1], [1, 1], 1),
        ([1, 8, 3, 3], [8, 2, 2, 2], [1, 1], Padding::Symmetric([0, 0]), [1, 1], [0, 0], 2),
    ];
    let nhwc = Conv2dLayouts { input: Layout::ChannelsLast, output: Layout::ChannelsLast };
    let mut runs = 0;
    for (i, (xs, ws, stride, padding, dilation, output_padding, groups)) in geometries.into_iter().enumerate() {
        let mut x = HostTensor::random(&xs, 80 + i as u64);
        let mut w = HostTensor::random(&ws, 90 + i as u64);
        let b = HostTensor::random(&[ws[1] * groups as usize], 99);
        // ∞ on a first tap and on a last one, −∞ in between, NaN and ∞ in the input
        let taps = ws[2] * ws[3];
        w.data[0] = f32::INFINITY;
        w.data[taps - 1 + taps * ws[1]] = f32::INFINITY;
        let wl = w.data.len();
        w.data[wl - taps / 2 - 1] = f32::NEG_INFINITY;
        x.data[xs[2] * xs[3] + 1] = f32::NAN;
        let last = x.data.len() - 1;
        x.data[last] = f32::INFINITY;
        for (act, bias) in [(Activation::None, None), (Activation::Relu, Some(&b))] {
            let p = ConvTranspose2dParams {
                stride,
                padding,
                dilation,
                output_padding,
                groups,
                activation: act,
                algorithm: Algorithm::ImplicitGemm,
            };
            let (shape, want) = reference::conv_transpose2d(&x, &w, bias, &p).unwrap();
            assert!(want.iter().any(|v| v.is_finite()), "geometry {i}: all special");
            // (kernel, layouts, loop budget)
            let variants = [
                (GemmKernel::Auto, Conv2dLayouts::default(), base.loop_budget),
                (GemmKernel::Block8x8, Conv2dLayouts::default(), base.loop_budget),
                (GemmKernel::Auto, nhwc, base.loop_budget),
                (GemmKernel::Auto, Conv2dLayouts::default(), 24),
            ];
            for (kernel, layouts, loop_budget) in variants {
                ctx.set_config(EngineConfig { gemm_kernel: kernel, loop_budget, ..base });
                let what = format!("geometry {i} {act:?} {kernel:?} {layouts:?} budget {loop_budget}");
                let up = |h: &HostTensor, l: Layout| {
                    let data = if l == Layout::ChannelsLast { h.to_channels_last().unwrap() } else { h.data.clone() };
                    Tensor::from_slice(&ctx, &h.shape, &data).unwrap().with_layout(l).unwrap()
                };
                let y = Tensor::empty(&ctx, &shape).unwrap().with_layout(layouts.output).unwrap();
                let bt = bias.map(|b| up(b, Layout::Contiguous));
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                let (xt, wt) = (up(&x, layouts.input), up(&w, Layout::Contiguous));
                conv_transpose2d_into(&ctx, &mut encoder, &xt, &wt, bt.as_ref(), &p, &y).unwrap();
                ctx.submit(encoder).unwrap();
                let mut got = y.to_vec(&ctx).unwrap();
                if layouts.output == Layout::ChannelsLast {
                    got = HostTensor::from_channels_last(&shape, &got).unwrap().data;
                }
                assert_same_specials(&what, &got, &want);
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 48);
    ctx.set_config(base);
    // f16 storage: the same recomputation over f16 loads and stores
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let (xs, ws) = ([1, 3, 5, 6], [3, 4, 3, 3]);
    let x = HostTensor::random(&xs, 7).rounded_to(DType::F16);
    let mut w = HostTensor::random(&ws, 8).rounded_to(DType::F16);
    w.data[0] = f32::INFINITY;
    w.data[9 * 5 + 8] = f32::NEG_INFINITY;
    let p = ConvTranspose2dParams {
        padding: Padding::Symmetric([1, 1]),
        algorithm: Algorithm::ImplicitGemm,
        ..Default::default()
    };
    let (_, want) = reference::conv_transpose2d(&x, &w, None, &p).unwrap();
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let got = conv_transpose2d(&ctx, &h(&x), &h(&w), None, &p).unwrap().to_vec(&ctx).unwrap();
    let class = |v: f64| (v.is_nan(), v.is_infinite() && v > 0.0, v.is_infinite() && v < 0.0);
    for (k, (&g, &r)) in got.iter().zip(&want).enumerate() {
        assert_eq!(class(g as f64), class(r), "f16[{k}]: {g} vs the reference's {r}");
        assert!(!r.is_finite() || (g as f64 - r).abs() <= 1e-2 * (1.0 + r.abs()), "f16[{k}]: {g} vs {r}");
    }
}
