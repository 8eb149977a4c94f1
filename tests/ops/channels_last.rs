//! conv2d with channels-last tensors (`Layout::ChannelsLast`: `[N, C, H, W]` stored as
//! `[N, H, W, C]`): every algorithm, every GEMM kernel, each mix of input and output layouts,
//! K in passes, f16, a padding mode and batch pieces, each the NCHW call's values bit for bit
//! (the same sums in the same order, only indexed otherwise); and the refusals of the ops and
//! splits that read NCHW only.

use crate::common::{case, fresh_f16_gpu, fresh_gpu, gpu, Case, CaseExt};
use wgconv::conformance::{conv_transpose2d_cases, ConvTranspose2dCase, OpCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv2d, conv2d_into, max_pool2d, Algorithm, Conv2dLayouts, Conv2dParams, DType, EngineConfig, Error, GemmKernel,
    GpuContext, HostTensor, Layout, Padding, PaddingMode, Pool2dParams, Tensor,
};

fn from_nhwc(v: &[f32], s: &[usize]) -> Vec<f32> {
    HostTensor::from_channels_last(s, v).unwrap().data
}

/// Uploads `h` (NCHW values) stored in `layout` as `dtype`.
fn upload(ctx: &GpuContext, h: &HostTensor, layout: Layout, dtype: DType) -> Tensor {
    let data = if layout == Layout::ChannelsLast { h.to_channels_last().unwrap() } else { h.data.clone() };
    Tensor::from_slice_as(ctx, &h.shape, &data, dtype).unwrap().with_layout(layout).unwrap()
}

/// The conv of `case` with its tensors in `layouts`, as `dtype`; the output in NCHW order.
fn run(ctx: &GpuContext, case: &Case, layouts: Conv2dLayouts, dtype: DType) -> wgconv::Result<Vec<f32>> {
    let (x, w, b) = case.seeded(7);
    let round = |t: HostTensor| if dtype == DType::F16 { t.rounded_to(DType::F16) } else { t };
    let (x, w, b) = (round(x), round(w), b.map(round));
    let xt = upload(ctx, &x, layouts.input, dtype);
    let wt = upload(ctx, &w, Layout::Contiguous, dtype);
    let bt = b.as_ref().map(|b| Tensor::from_slice_as(ctx, &b.shape, &b.data, dtype).unwrap());
    let shape = case.params.output_shape(&x.shape, &w.shape)?;
    let y = Tensor::empty_as(ctx, &shape, dtype)?.with_layout(layouts.output)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    conv2d_into(ctx, &mut encoder, &xt, &wt, bt.as_ref(), &case.params, &y)?;
    ctx.submit(encoder)?;
    let v = y.to_vec(ctx)?;
    Ok(if layouts.output == Layout::ChannelsLast { from_nhwc(&v, &shape) } else { v })
}

const MIXES: [Conv2dLayouts; 3] = [
    Conv2dLayouts { input: Layout::ChannelsLast, output: Layout::Contiguous },
    Conv2dLayouts { input: Layout::Contiguous, output: Layout::ChannelsLast },
    Conv2dLayouts { input: Layout::ChannelsLast, output: Layout::ChannelsLast },
];

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits())
}

fn cases() -> Vec<Case> {
    vec![
        case(2, 5, [7, 11], 6, [3, 3]).pad(Padding::Symmetric([1, 1])),
        case(2, 16, [9, 9], 8, [1, 1]),
        case(1, 5, [9, 8], 10, [3, 3]).groups(5).stride([2, 2]).pad(Padding::Symmetric([1, 1])),
        case(2, 8, [19, 17], 6, [3, 2])
            .groups(2)
            .act(wgconv::Activation::Relu)
            .dil([2, 1])
            .stride([2, 3])
            .pad(Padding::Explicit { top: 1, left: 2, bottom: 3, right: 0 }),
    ]
}

/// Every case × every algorithm that takes it × each layout mix × a tiled GEMM kernel (which
/// gathers through `load_b`) and the flat one (its own tap-major walk): the NCHW call's values
/// bit for bit, and those the f64 reference's.
#[test]
fn every_algorithm_and_kernel_reads_and_writes_channels_last() {
    let Some(ctx) = fresh_gpu() else { return };
    let base = ctx.config();
    let kernels = [GemmKernel::Block8x8, GemmKernel::Flat16x16];
    let mut runs = 0;
    for c in cases() {
        let (x, w, b) = c.seeded(7);
        let (_, want) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
        for algorithm in c.algorithms().into_iter().filter(|&a| a != Algorithm::Auto) {
            let c = c.clone().algo(algorithm);
            let gemm = matches!(algorithm, Algorithm::ImplicitGemm | Algorithm::Gemm1x1 | Algorithm::Im2colGemm);
            for &kernel in if gemm { &kernels[..] } else { &kernels[..1] } {
                ctx.set_config(EngineConfig { gemm_kernel: kernel, ..base });
                let nchw = run(&ctx, &c, Conv2dLayouts::default(), DType::F32).unwrap();
                let s = compare(&nchw, &want);
                assert!(s.passes(Tolerance::default()), "{c:?} {kernel:?}: {s}");
                for layouts in MIXES {
                    let got = run(&ctx, &c, layouts, DType::F32).unwrap();
                    assert!(same_bits(&got, &nchw), "{c:?} {kernel:?} {layouts:?}: not the NCHW call's values");
                    runs += 1;
                }
            }
        }
    }
    ctx.set_config(base);
    assert!(runs > 40, "{runs} channels-last runs");
}

/// K in passes (a loop budget of 40 turns), where earlier passes leave partial sums at the
/// output's indices; im2col in several chunks of pixels (a small workspace budget); a batch
/// cut into pieces (a 2 KiB binding cap: pieces of images, staged where unaligned); and
/// reflect padding (im2col's gather): each the NCHW call's values.
#[test]
fn passes_chunks_pieces_and_padding_modes() {
    let Some(ctx) = fresh_gpu() else { return };
    let base = ctx.config();
    let deep = case(3, 24, [6, 7], 5, [3, 3]).pad(Padding::Symmetric([1, 1]));
    let reflect = Conv2dParams { padding_mode: PaddingMode::Reflect, ..deep.params };
    let configs = [
        ("K passes", EngineConfig { loop_budget: 40, ..base }, deep.clone().algo(Algorithm::ImplicitGemm)),
        ("K passes, im2col", EngineConfig { loop_budget: 40, ..base }, deep.clone().algo(Algorithm::Im2colGemm)),
        (
            "pixel chunks",
            EngineConfig { workspace_budget: 24 * 9 * 4 * 20, ..base },
            deep.clone().algo(Algorithm::Im2colGemm),
        ),
        ("batch pieces", EngineConfig { max_binding_size: 2 << 10, ..base }, case(9, 3, [6, 7], 4, [3, 3])),
        ("reflect padding", base, Case { params: reflect, ..deep.clone() }),
    ];
    for (what, config, c) in configs {
        // K passes regroup the sums: the NCHW call under the same config
        let whole_config = if what.starts_with("K passes") { config } else { base };
        ctx.set_config(whole_config);
        let whole = run(&ctx, &c, Conv2dLayouts::default(), DType::F32).unwrap();
        ctx.set_config(config);
        let plan = wgconv::plan_conv2d_with_layouts(
            &ctx,
            &c.input,
            &c.weight,
            Some(&[c.weight[0]]),
            DType::F32,
            MIXES[2],
            &c.params,
        );
        let got: Vec<_> = MIXES.iter().map(|&l| run(&ctx, &c, l, DType::F32)).collect();
        ctx.set_config(base);
        let plan = plan.unwrap();
        match what {
            "batch pieces" => assert!(plan.batch_pieces > 1, "{plan}"),
            "pixel chunks" => assert!(plan.chunks > 1, "{plan}"),
            "reflect padding" => assert_eq!(plan.algorithm, Algorithm::Im2colGemm),
            _ => assert!(plan.steps.len() > 1, "{what}: {plan}"),
        }
        for (layouts, got) in MIXES.iter().zip(got) {
            assert!(same_bits(&got.unwrap(), &whole), "{what} {layouts:?}: not the NCHW call's values");
        }
    }
}

/// f16 storage (implicit, 1x1 and depthwise kernels; and a padding mode, through f32 copies
/// that keep the layout): the NCHW f16 call's values bit for bit.
#[test]
fn f16_reads_and_writes_channels_last() {
    let Some(ctx) = fresh_f16_gpu() else { return };
    let mut cs = cases();
    let reflect = Conv2dParams { padding_mode: PaddingMode::Reflect, ..cs[0].params };
    cs.push(Case { params: reflect, ..cs[0].clone() });
    let mut runs = 0;
    for c in cs {
        for algorithm in c.algorithms() {
            if !matches!(
                algorithm,
                Algorithm::Auto | Algorithm::ImplicitGemm | Algorithm::Gemm1x1 | Algorithm::Depthwise
            ) {
                continue;
            }
            let c = c.clone().algo(algorithm);
            let Ok(nchw) = run(&ctx, &c, Conv2dLayouts::default(), DType::F16) else { continue };
            for layouts in MIXES {
                let got = run(&ctx, &c, layouts, DType::F16).unwrap();
                assert!(same_bits(&got, &nchw), "{c:?} {layouts:?} f16: not the NCHW call's values");
                runs += 1;
            }
        }
    }
    assert!(runs >= 30, "{runs} f16 channels-last runs");
}

/// conv2d returns its output in the input's layout (PyTorch's memory-format propagation);
/// `to_host` reads it back in NCHW order.
#[test]
fn the_output_takes_the_input_layout() {
    let Some(ctx) = gpu() else { return };
    let c = case(1, 3, [5, 6], 4, [3, 3]);
    let (x, w, b) = c.seeded(3);
    let xt = upload(ctx, &x, Layout::ChannelsLast, DType::F32);
    let (wt, bt) = (Tensor::from_host(ctx, &w).unwrap(), Tensor::from_host(ctx, b.as_ref().unwrap()).unwrap());
    let y = conv2d(ctx, &xt, &wt, Some(&bt), &c.params).unwrap();
    assert_eq!(y.layout(), Layout::ChannelsLast);
    assert_eq!(y.shape(), &[1, 4, 3, 4]);
    let (_, want) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
    let s = compare(&from_nhwc(&y.to_vec(ctx).unwrap(), y.shape()), &want);
    assert!(s.passes(Tolerance::default()), "{s}");
    // to_host: NCHW order (to_vec: the buffer's)
    let host = y.to_host(ctx).unwrap();
    assert_eq!(host.shape, y.shape());
    assert_eq!(host.data, from_nhwc(&y.to_vec(ctx).unwrap(), y.shape()));
}

/// What reads NCHW only refuses channels-last tensors, before any GPU work: a channels-last
/// weight, the other ops (pooling, the backward passes), a reshape, a layout
/// on a tensor not of rank 4, and the splits into row bands and channel chunks.
#[test]
fn what_reads_nchw_only_refuses_channels_last() {
    let Some(ctx) = fresh_gpu() else { return };
    let c = case(2, 4, [8, 8], 4, [3, 3]);
    let (x, w, _) = c.seeded(5);
    let xt = upload(&ctx, &x, Layout::ChannelsLast, DType::F32);
    let wt = Tensor::from_host(&ctx, &w).unwrap();
    let before = ctx.submissions();
    let unsupported = |e: Error, what: &str| {
        assert!(matches!(&e, Error::Unsupported(m) if m.contains("channels_last")), "{what}: {e:?}");
    };
    let wl = wt.clone().with_layout(Layout::ChannelsLast).unwrap();
    unsupported(conv2d(&ctx, &xt, &wl, None, &c.params).unwrap_err(), "weight");
    let pool = Pool2dParams { kernel: [2, 2], ..Default::default() };
    unsupported(max_pool2d(&ctx, &xt, &pool).unwrap_err(), "max_pool2d");
    unsupported(wgconv::max_pool2d_with_indices(&ctx, &xt, &pool).unwrap_err(), "max_pool2d_with_indices");
    let dy = upload(&ctx, &HostTensor::random(&[2, 4, 6, 6], 6), Layout::Contiguous, DType::F32);
    let grads = wgconv::conv2d_backward(&ctx, &xt, &wt, &dy, &c.params, wgconv::Grads::ALL);
    unsupported(grads.unwrap_err(), "conv2d_backward");
    let tp = wgconv::ConvTranspose2dParams::default();
    let dy = upload(&ctx, &HostTensor::random(&[2, 4, 10, 10], 6), Layout::Contiguous, DType::F32);
    let grads = wgconv::conv_transpose2d_backward(&ctx, &xt, &wt, &dy, &tp, wgconv::Grads::ALL);
    unsupported(grads.unwrap_err(), "conv_transpose2d_backward");
    unsupported(xt.reshape(&[2, 4, 64]).unwrap_err(), "reshape");
    let flat = Tensor::from_slice(&ctx, &[4], &[0.0; 4]).unwrap();
    assert!(matches!(flat.with_layout(Layout::ChannelsLast), Err(Error::Buffer { .. })));
    let base = ctx.config();
    ctx.set_config(EngineConfig { max_binding_size: 600, ..base });
    let bands = conv2d(&ctx, &xt, &wt, None, &c.params).unwrap_err();
    ctx.set_config(EngineConfig { max_binding_size: 256, ..base });
    let big = Tensor::from_slice(&ctx, &[16, 4, 3, 3], &[0.5; 576]).unwrap();
    let chunks = conv2d(&ctx, &xt, &big, None, &c.params).unwrap_err();
    ctx.set_config(base);
    for (e, what) in [(bands, "bands of rows"), (chunks, "chunks of channels")] {
        assert!(matches!(&e, Error::TooLarge(m) if m.contains(what) && m.contains("channels-last")), "{e:?}");
    }
    assert_eq!(ctx.submissions(), before);
}

/// The host conversions on a known tensor: `[1, 2, 2, 3]` (C = 2) in NCHW order 0..12 is, in
/// NHWC order, channel 0 and channel 1 interleaved pixel by pixel; and back.
#[test]
fn host_conversions_interleave_channels_per_pixel() {
    let t = HostTensor::new(&[1, 2, 2, 3], (0..12).map(|v| v as f32).collect()).unwrap();
    let nhwc = t.to_channels_last().unwrap();
    assert_eq!(nhwc, [0., 6., 1., 7., 2., 8., 3., 9., 4., 10., 5., 11.]);
    assert_eq!(HostTensor::from_channels_last(&t.shape, &nhwc).unwrap().data, t.data);
    assert!(HostTensor::new(&[2, 3], vec![0.0; 6]).unwrap().to_channels_last().is_err());
}

/// The conv_transpose2d of `c` with its tensors in `layouts`, as `dtype`; the output in NCHW
/// order.
fn run_transposed(
    ctx: &GpuContext,
    c: &ConvTranspose2dCase,
    layouts: Conv2dLayouts,
    dtype: DType,
) -> wgconv::Result<Vec<f32>> {
    let i = c.inputs()?;
    let round = |t: &HostTensor| if dtype == DType::F16 { t.clone().rounded_to(DType::F16) } else { t.clone() };
    let xt = upload(ctx, &round(&i[0]), layouts.input, dtype);
    let wt = upload(ctx, &round(&i[1]), Layout::Contiguous, dtype);
    let bt = i.get(2).map(|b| upload_flat(ctx, &round(b), dtype));
    let shape = c.output_shapes(&[&i[0].shape, &i[1].shape])?.remove(0);
    let y = Tensor::empty_as(ctx, &shape, dtype)?.with_layout(layouts.output)?;
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    wgconv::conv_transpose2d_into(ctx, &mut encoder, &xt, &wt, bt.as_ref(), &c.params, &y)?;
    ctx.submit(encoder)?;
    let v = y.to_vec(ctx)?;
    Ok(if layouts.output == Layout::ChannelsLast { from_nhwc(&v, &shape) } else { v })
}

fn upload_flat(ctx: &GpuContext, h: &HostTensor, dtype: DType) -> Tensor {
    Tensor::from_slice_as(ctx, &h.shape, &h.data, dtype).unwrap()
}

/// conv_transpose2d reads and writes channels-last too: 8 generated cases (strides,
/// dilations, groups, output_padding) and one with stride 2 and dilation 2 × both algorithms
/// (the output phases' gather and write-out; the pointwise GEMM and col2im) × each layout
/// mix: the NCHW call's values bit for bit; f16 (implicit_gemm) likewise; and a batch beyond
/// one binding in pieces. The output of `conv_transpose2d` takes the input's layout.
#[test]
fn conv_transpose2d_reads_and_writes_channels_last() {
    let Some(ctx) = gpu() else { return };
    let mut cases = conv_transpose2d_cases(41, 8);
    let mut strided = cases[0].clone();
    strided.input = [2, 4, 5, 6];
    strided.weight = [4, 3, 3, 3];
    strided.params = wgconv::ConvTranspose2dParams {
        stride: [2, 2],
        dilation: [2, 1],
        padding: Padding::Symmetric([1, 1]),
        output_padding: [1, 1],
        ..Default::default()
    };
    cases.push(strided);
    let mut runs = 0;
    for c in &cases {
        for algorithm in Algorithm::TRANSPOSED {
            let c =
                ConvTranspose2dCase { params: wgconv::ConvTranspose2dParams { algorithm, ..c.params }, ..c.clone() };
            let Ok(nchw) = run_transposed(ctx, &c, Conv2dLayouts::default(), DType::F32) else { continue };
            let (_, want) = {
                let i = c.inputs().unwrap();
                wgconv::reference::conv_transpose2d(&i[0], &i[1], i.get(2), &c.params).unwrap()
            };
            assert!(compare(&nchw, &want).passes(Tolerance::default()), "{c}");
            for layouts in MIXES {
                let got = run_transposed(ctx, &c, layouts, DType::F32).unwrap();
                assert!(same_bits(&got, &nchw), "{c} {layouts:?}: not the NCHW call's values");
                runs += 1;
            }
        }
    }
    assert!(runs >= 40, "{runs} runs");
    let i = cases[0].inputs().unwrap();
    let x = upload(ctx, &i[0], Layout::ChannelsLast, DType::F32);
    let y = wgconv::conv_transpose2d(ctx, &x, &upload_flat(ctx, &i[1], DType::F32), None, &cases[0].params).unwrap();
    assert_eq!(y.layout(), Layout::ChannelsLast);
    if ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        for c in &cases {
            let Ok(nchw) = run_transposed(ctx, c, Conv2dLayouts::default(), DType::F16) else { continue };
            for layouts in MIXES {
                let got = run_transposed(ctx, c, layouts, DType::F16).unwrap();
                assert!(same_bits(&got, &nchw), "{c} {layouts:?} f16: not the NCHW call's values");
            }
        }
    }
    // a batch beyond one binding (2 KiB): pieces, the whole call's values (its own context)
    let Some(ctx) = fresh_gpu() else { return };
    let c = ConvTranspose2dCase { input: [9, 3, 5, 6], ..cases[cases.len() - 1].clone() };
    // Forced: Auto would take col2im (3 → 3 channels), whose 3240-byte columns per image fit
    // no 2 KiB binding; NCHW would then run it in bands of rows, channels-last the phases.
    let params = wgconv::ConvTranspose2dParams { algorithm: Algorithm::ImplicitGemm, ..c.params };
    let c = ConvTranspose2dCase { weight: [3, 3, 3, 3], params, ..c };
    let whole = run_transposed(&ctx, &c, Conv2dLayouts::default(), DType::F32).unwrap();
    let base = ctx.config();
    ctx.set_config(EngineConfig { max_binding_size: 2 << 10, ..base });
    let plan = wgconv::plan_conv_transpose2d_with_layouts(
        &ctx,
        &c.input,
        &c.weight,
        Some(&[3]),
        DType::F32,
        MIXES[2],
        &c.params,
    );
    let split: Vec<_> = MIXES.iter().map(|&l| run_transposed(&ctx, &c, l, DType::F32)).collect();
    ctx.set_config(base);
    assert!(plan.unwrap().batch_pieces > 1);
    for (l, got) in MIXES.iter().zip(split) {
        assert!(same_bits(&got.unwrap(), &whole), "{l:?}: pieces");
    }
}

/// NaN and ±∞ in the input, and a sum of 70,000 terms per output (past Mesa ≤ 22's 65535-turn
/// loop limit: K in passes) through channels-last tensors: the NCHW call's values (NaN where
/// it has NaN), and the long sums the reference's.
#[test]
fn special_values_and_long_sums_through_channels_last() {
    let Some(ctx) = gpu() else { return };
    let same =
        |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
    let special = case(2, 6, [7, 6], 4, [3, 3]).pad(Padding::Symmetric([1, 1]));
    let long = case(1, 70_000, [2, 2], 2, [1, 1]);
    let mut runs = 0;
    for (c, planted) in [(special, true), (long, false)] {
        let (mut x, w, b) = c.seeded(9);
        if planted {
            for (i, v) in [(3, f32::NAN), (40, f32::INFINITY), (77, f32::NEG_INFINITY), (150, f32::NAN)] {
                x.data[i] = v;
            }
        }
        for algorithm in c.algorithms() {
            let c = c.clone().algo(algorithm);
            let go = |layouts: Conv2dLayouts| -> wgconv::Result<Vec<f32>> {
                let xt = upload(ctx, &x, layouts.input, DType::F32);
                let wt = Tensor::from_host(ctx, &w)?;
                let bt = b.as_ref().map(|b| Tensor::from_host(ctx, b)).transpose()?;
                let shape = c.params.output_shape(&x.shape, &w.shape)?;
                let y = Tensor::empty(ctx, &shape)?.with_layout(layouts.output)?;
                let mut encoder = ctx.device().create_command_encoder(&Default::default());
                conv2d_into(ctx, &mut encoder, &xt, &wt, bt.as_ref(), &c.params, &y)?;
                ctx.submit(encoder)?;
                let v = y.to_vec(ctx)?;
                Ok(if layouts.output == Layout::ChannelsLast { from_nhwc(&v, &shape) } else { v })
            };
            // (direct and depthwise refuse sums past the loop budget: the implicit GEMM splits them)
            let Ok(nchw) = go(Conv2dLayouts::default()) else { continue };
            let (_, want) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
            if planted {
                let nans = nchw.iter().filter(|v| v.is_nan()).count();
                assert!(nans > 0 && nans == want.iter().filter(|v| v.is_nan()).count(), "{algorithm:?}: {nans} NaN");
            } else {
                assert!(compare(&nchw, &want).passes(Tolerance::default()), "{algorithm:?}");
            }
            for layouts in MIXES {
                assert!(same(&go(layouts).unwrap(), &nchw), "{algorithm:?} {layouts:?}: not the NCHW call's values");
            }
            runs += 1;
        }
    }
    assert!(runs >= 6, "{runs} algorithms ran");
}
