//! The batch axis: empty batches (N = 0), PyTorch's unbatched inputs, and batches whose
//! tensors exceed one storage binding (run in pieces; bit-identical to one call).
//!
//! The split tests open the device with WebGPU's default limits (256-byte offset alignment)
//! and cap the binding size at 64 KiB so that small tensors reach every splitting path.

use crate::common::{fresh_gpu, gpu};
use wgconv::ops::batch;
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    Activation, Algorithm, ContextOptions, Conv1dParams, Conv2dParams, Conv3dParams, ConvTranspose2dParams,
    EngineConfig, GpuContext, Grads, HostTensor, Padding, Padding1d, Padding3d, Pool2dParams, PoolMode,
    SeparableParams, Tensor,
};

/// One op on seeded data: the shapes of its batched tensors without the batch axis.
#[derive(Clone, Copy, Debug)]
enum Op {
    Conv2d(Algorithm),
    /// An image of an odd number of words: pieces start misaligned and go through scratch buffers.
    Conv2dOddImage,
    Depthwise,
    Conv1d,
    Conv3d,
    ConvTranspose2d(Algorithm),
    Deform(Algorithm),
    Pool(PoolMode),
    Separable {
        fused: bool,
    },
    /// conv2d_backward's grad_input (the gradient that splits over the batch).
    GradInput,
}

const OPS: [Op; 15] = [
    Op::Conv2d(Algorithm::ImplicitGemm),
    Op::Conv2d(Algorithm::Im2colGemm),
    Op::Conv2d(Algorithm::Direct),
    Op::Conv2dOddImage,
    Op::Depthwise,
    Op::Conv1d,
    Op::Conv3d,
    Op::ConvTranspose2d(Algorithm::ImplicitGemm),
    Op::ConvTranspose2d(Algorithm::GemmCol2im),
    Op::Deform(Algorithm::ImplicitGemm),
    Op::Deform(Algorithm::Im2colGemm),
    Op::Pool(PoolMode::Max),
    Op::Pool(PoolMode::Avg),
    Op::Separable { fused: true },
    Op::Separable { fused: false },
];

/// `[n, rest..]`, or `rest` alone for the unbatched form (`n = None`).
fn shape(n: Option<usize>, rest: &[usize]) -> Vec<usize> {
    n.into_iter().chain(rest.iter().copied()).collect()
}

fn up(ctx: &GpuContext, h: &HostTensor) -> Tensor {
    Tensor::from_host(ctx, h).unwrap()
}

/// Runs `op` on a batch of `n` images (`None`: unbatched) and returns the output's shape
/// and values; seeded, so the same images give the same data in every form.
fn run(ctx: &GpuContext, op: Op, n: Option<usize>) -> wgconv::Result<(Vec<usize>, Vec<f32>)> {
    run_with(ctx, op, n, false)
}

/// [`run`], with NaN, +∞ and −∞ in the first channel of every image of the input (of
/// grad_output for `GradInput`) when `specials` is set.
fn run_with(ctx: &GpuContext, op: Op, n: Option<usize>, specials: bool) -> wgconv::Result<(Vec<usize>, Vec<f32>)> {
    let rnd = |rest: &[usize], seed| HostTensor::random(&shape(n, rest), seed);
    let input = |rest: &[usize], seed| {
        let h = rnd(rest, seed);
        if specials {
            poison(h, n.unwrap_or(1), rest[1..].iter().product(), 83)
        } else {
            h
        }
    };
    let fixed = |s: &[usize], seed| HostTensor::random(s, seed);
    let out = match op {
        Op::Conv2d(algorithm) => {
            let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), algorithm, ..Default::default() };
            let (x, w, b) = (input(&[4, 32, 32], 1), fixed(&[8, 4, 3, 3], 2), fixed(&[8], 3));
            wgconv::conv2d(ctx, &up(ctx, &x), &up(ctx, &w), Some(&up(ctx, &b)), &p)?
        }
        Op::Conv2dOddImage => {
            let p = Conv2dParams { algorithm: Algorithm::ImplicitGemm, ..Default::default() };
            let (x, w) = (input(&[3, 45, 45], 4), fixed(&[5, 3, 2, 2], 5));
            wgconv::conv2d(ctx, &up(ctx, &x), &up(ctx, &w), None, &p)?
        }
        Op::Depthwise => {
            let p = Conv2dParams {
                padding: Padding::Symmetric([1, 1]),
                groups: 8,
                algorithm: Algorithm::Depthwise,
                activation: Activation::Relu,
                ..Default::default()
            };
            let (x, w) = (input(&[8, 32, 32], 6), fixed(&[8, 1, 3, 3], 7));
            wgconv::conv2d(ctx, &up(ctx, &x), &up(ctx, &w), None, &p)?
        }
        Op::Conv1d => {
            let p = Conv1dParams { padding: Padding1d::Symmetric(1), ..Default::default() };
            let (x, w) = (input(&[4, 1000], 8), fixed(&[8, 4, 3], 9));
            wgconv::conv1d(ctx, &up(ctx, &x), &up(ctx, &w), None, &p)?
        }
        Op::Conv3d => {
            let p = Conv3dParams { padding: Padding3d::Symmetric([1, 1, 1]), ..Default::default() };
            let (x, w) = (input(&[2, 8, 16, 16], 10), fixed(&[4, 2, 3, 3, 3], 11));
            wgconv::conv3d(ctx, &up(ctx, &x), &up(ctx, &w), None, &p)?
        }
        Op::ConvTranspose2d(algorithm) => {
            let p = ConvTranspose2dParams {
                stride: [2, 2],
                padding: Padding::Symmetric([1, 1]),
                algorithm,
                ..Default::default()
            };
            let (x, w) = (input(&[8, 16, 16], 12), fixed(&[8, 4, 4, 4], 13));
            wgconv::conv_transpose2d(ctx, &up(ctx, &x), &up(ctx, &w), None, &p)?
        }
        Op::Deform(algorithm) => {
            let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), algorithm, ..Default::default() };
            let (x, w) = (input(&[4, 24, 24], 14), fixed(&[8, 4, 3, 3], 15));
            let mut off = rnd(&[18, 24, 24], 16);
            off.data.iter_mut().for_each(|v| *v *= 2.5);
            let mask = rnd(&[9, 24, 24], 17);
            let (x, w, off, mask) = (up(ctx, &x), up(ctx, &w), up(ctx, &off), up(ctx, &mask));
            wgconv::deform_conv2d(ctx, &x, &w, &off, Some(&mask), None, &p)?
        }
        Op::Pool(mode) => {
            let p = Pool2dParams { stride: Some([1, 1]), padding: [1, 1], ..Pool2dParams::new([3, 3]) };
            let x = up(ctx, &input(&[8, 32, 32], 18));
            match mode {
                PoolMode::Max => wgconv::max_pool2d(ctx, &x, &p)?,
                PoolMode::Avg => wgconv::avg_pool2d(ctx, &x, &p)?,
            }
        }
        Op::Separable { fused } => {
            let p = SeparableParams {
                padding: Padding::Symmetric([1, 1]),
                depthwise_activation: Activation::Relu,
                fused,
                ..Default::default()
            };
            let (x, dw, pw) = (input(&[8, 32, 32], 19), fixed(&[8, 1, 3, 3], 20), fixed(&[16, 8, 1, 1], 21));
            let (x, dw, pw) = (up(ctx, &x), up(ctx, &dw), up(ctx, &pw));
            wgconv::separable_conv2d(ctx, &x, &dw, None, &pw, None, &p)?
        }
        Op::GradInput => {
            let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), stride: [2, 2], ..Default::default() };
            let (x, w, dy) = (rnd(&[4, 32, 32], 22), fixed(&[8, 4, 3, 3], 23), input(&[8, 16, 16], 24));
            let grads = wgconv::conv2d_backward(
                ctx,
                &up(ctx, &x),
                &up(ctx, &w),
                &up(ctx, &dy),
                &p,
                Grads { input: true, weight: false, bias: false },
            )?;
            grads.grad_input.unwrap()
        }
    };
    Ok((out.shape().to_vec(), out.to_vec(ctx)?))
}

#[test]
fn every_op_returns_an_empty_output_for_an_empty_batch() {
    let Some(ctx) = gpu() else { return };
    for op in OPS.into_iter().chain([Op::GradInput]) {
        let (s, v) = run(ctx, op, Some(0)).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        let (one, _) = run(ctx, op, Some(1)).unwrap();
        assert_eq!(s[0], 0, "{op:?}: {s:?}");
        assert_eq!(s[1..], one[1..], "{op:?}");
        assert!(v.is_empty(), "{op:?}");
    }
}

#[test]
fn empty_batch_gives_zero_weight_and_bias_gradients() {
    let Some(ctx) = gpu() else { return };
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    for groups in [1, 4] {
        let p = Conv2dParams { groups, ..p };
        let x = Tensor::from_slice(ctx, &[0, 4, 6, 6], &[]).unwrap();
        let dy = Tensor::from_slice(ctx, &[0, 4, 6, 6], &[]).unwrap();
        let w = up(ctx, &HostTensor::random(&[4, 4 / groups as usize, 3, 3], 1));
        // Gradient buffers start as NaN: an op that writes nothing leaves them NaN.
        let nan = |s: &[usize]| Tensor::from_slice(ctx, s, &vec![f32::NAN; s.iter().product()]).unwrap();
        let grads = wgconv::Conv2dGrads {
            grad_input: Some(Tensor::from_slice(ctx, &[0, 4, 6, 6], &[]).unwrap()),
            grad_weight: Some(nan(w.shape())),
            grad_bias: Some(nan(&[4])),
        };
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        wgconv::conv2d_backward_into(ctx, &mut encoder, &x, &w, &dy, &p, &grads).unwrap();
        ctx.submit(encoder).unwrap();
        for t in [&grads.grad_weight, &grads.grad_bias].into_iter().flatten() {
            assert!(t.to_vec(ctx).unwrap().iter().all(|&v| v == 0.0), "groups {groups}: {:?}", t.shape());
        }
    }
}

#[test]
fn every_op_takes_an_unbatched_input_as_a_batch_of_one() {
    let Some(ctx) = gpu() else { return };
    for op in OPS.into_iter().chain([Op::GradInput]) {
        let (s1, v1) = run(ctx, op, None).unwrap_or_else(|e| panic!("{op:?} unbatched: {e}"));
        let (s, v) = run(ctx, op, Some(1)).unwrap();
        assert_eq!(s1, s[1..], "{op:?}: the output drops the batch axis");
        assert_eq!(v1.len(), v.len(), "{op:?}");
        assert_eq!(bits_differ(&v1, &v), 0, "{op:?}: unbatched and batch-of-one outputs differ");
    }
}

#[test]
fn an_unbatched_input_with_batched_companions_is_an_error() {
    let Some(ctx) = gpu() else { return };
    let x = up(ctx, &HostTensor::random(&[4, 8, 8], 1));
    let w = up(ctx, &HostTensor::random(&[8, 4, 3, 3], 2));
    let y = Tensor::empty(ctx, &[1, 8, 6, 6]).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    let e = wgconv::conv2d_into(ctx, &mut encoder, &x, &w, None, &Conv2dParams::default(), &y).unwrap_err();
    assert!(e.to_string().contains("unbatched"), "{e}");
}

fn field_case(name: &str) -> impl Fn(&str) -> HostTensor {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/field").join(name);
    move |f| HostTensor::read_npy(dir.join(f)).unwrap().0
}

#[test]
fn empty_batch_field_case() {
    let Some(ctx) = gpu() else { return };
    let load = field_case("empty_batch");
    let (x, w, b, y) = (load("x.npy"), load("w.npy"), load("b.npy"), load("y.npy"));
    let out = wgconv::conv2d(ctx, &up(ctx, &x), &up(ctx, &w), Some(&up(ctx, &b)), &Conv2dParams::default()).unwrap();
    assert_eq!(out.shape(), y.shape);
    assert!(out.to_vec(ctx).unwrap().is_empty());
}

#[test]
fn unbatched_chw_field_case() {
    let Some(ctx) = gpu() else { return };
    let load = field_case("unbatched_chw");
    let (x, w, y) = (load("x.npy"), load("w.npy"), load("y.npy"));
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let out = wgconv::conv2d(ctx, &up(ctx, &x), &up(ctx, &w), None, &p).unwrap();
    assert_eq!(out.shape(), y.shape);
    let want: Vec<f64> = y.data.iter().map(|&v| v as f64).collect();
    let stats = compare(&out.to_vec(ctx).unwrap(), &want);
    assert!(stats.passes(Tolerance { rel_l2: 1e-4, abs: 1e-3 }), "{stats}");
}

/// A context with WebGPU's default limits (what a browser grants).
fn webgpu_default_context() -> Option<GpuContext> {
    fresh_gpu()?;
    let opts = ContextOptions { limits: Some(wgpu::Limits::default()), ..Default::default() };
    Some(GpuContext::with_options(opts).expect("WebGPU's default limits"))
}

const CAP: u64 = 64 << 10;

/// The largest binding, in bytes, any launch of `trace` made.
fn largest_binding(trace: &wgconv::kernels::trace::Trace) -> u64 {
    trace.dispatches.iter().flat_map(|d| &d.bindings).map(|b| b.size).max().unwrap_or(0)
}

/// How many elements of `a` and `b` differ in their bits (any NaN equals any NaN: PyTorch
/// does not define NaN payloads).
fn bits_differ(a: &[f32], b: &[f32]) -> usize {
    a.iter().zip(b).filter(|(a, b)| a.to_bits() != b.to_bits() && !(a.is_nan() && b.is_nan())).count()
}

/// `h` (of `images` images) with NaN, +∞ and −∞ in turn every `every` elements of the
/// first `plane` elements of each image (the first channel when `plane` is one channel's size).
fn poison(mut h: HostTensor, images: usize, plane: usize, every: usize) -> HostTensor {
    let image = h.data.len() / images.max(1);
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    for (i, image) in h.data.chunks_mut(image.max(1)).enumerate() {
        for (k, j) in (i * 7 % every..plane.min(image.len())).step_by(every).enumerate() {
            image[j] = specials[k % 3];
        }
    }
    h
}

/// How many outputs are NaN, how many ±∞ and how many finite: a special-value test that
/// finds none of the first two (or none of the last) probed nothing.
fn kinds(v: &[f32]) -> (usize, usize, usize) {
    let nan = v.iter().filter(|v| v.is_nan()).count();
    let inf = v.iter().filter(|v| v.is_infinite()).count();
    (nan, inf, v.len() - nan - inf)
}

fn capped(ctx: &GpuContext, base: EngineConfig, on: bool) {
    ctx.set_config(EngineConfig { max_binding_size: if on { CAP } else { base.max_binding_size }, ..base });
}

/// Runs `f` (one op call, returning its output values) in one call and then under the 64
/// KiB cap, each traced; asserts that the capped run bound nothing over the cap, made more
/// launches than one call (it split) and gave one call's outputs bit for bit. Returns the
/// split run's outputs.
fn split_matches_whole(ctx: &GpuContext, what: &str, f: &dyn Fn() -> Vec<f32>) -> Vec<f32> {
    let base = ctx.config();
    let run = |cap: bool| {
        capped(ctx, base, cap);
        ctx.begin_trace();
        let v = f();
        let trace = ctx.end_trace().unwrap();
        (v, largest_binding(&trace), trace.dispatches.len())
    };
    let (whole, _, n_whole) = run(false);
    let (split, largest, n_split) = run(true);
    capped(ctx, base, false);
    assert!(largest <= CAP, "{what}: a {largest}-byte binding under a {CAP}-byte cap");
    assert!(n_split > n_whole, "{what}: {n_split} launches split, {n_whole} in one call");
    let differ = bits_differ(&whole, &split);
    assert_eq!(differ, 0, "{what}: {differ} of {} outputs differ from one call", whole.len());
    split
}

#[test]
fn every_op_splits_a_batch_beyond_one_binding_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    assert_eq!(ctx.limits().min_storage_buffer_offset_alignment, 256);
    let base = ctx.config();
    for op in OPS.into_iter().chain([Op::GradInput]) {
        let n = 7;
        capped(&ctx, base, false);
        ctx.begin_trace();
        let (s, whole) = run(&ctx, op, Some(n)).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        let unsplit = ctx.end_trace().unwrap().dispatches.len();
        let bytes = whole.len() as u64 * 4;
        assert!(bytes > CAP, "{op:?}: the output ({bytes} bytes) must exceed the cap to test a split");
        capped(&ctx, base, true);
        let per_image = bytes / n as u64;
        let pieces = batch::plan(&ctx, "test", n, &[("output", &s, per_image)]).unwrap();
        assert!(pieces.pieces > 1, "{op:?}: {pieces:?}");
        ctx.begin_trace();
        let (s2, split) = run(&ctx, op, Some(n)).unwrap_or_else(|e| panic!("{op:?} split: {e}"));
        // What the kernels bound: no binding over the cap, more launches than one call.
        let trace = ctx.end_trace().unwrap();
        let largest = largest_binding(&trace);
        assert!(largest <= CAP, "{op:?}: a {largest}-byte binding under a {CAP}-byte cap");
        assert!(trace.dispatches.len() > unsplit, "{op:?}: {} launches split, {unsplit} whole", trace.dispatches.len());
        assert_eq!(s, s2);
        let differ = bits_differ(&whole, &split);
        assert_eq!(differ, 0, "{op:?}: {differ} of {} outputs differ from the unsplit run", whole.len());
    }
    capped(&ctx, base, false);
}

#[test]
fn misaligned_pieces_go_through_scratch_buffers() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    capped(&ctx, base, true);
    // 3·45·45 floats = 24300 bytes an image: pieces of 2 images start at 48600·k, never a
    // multiple of 256, so every piece but the first is staged.
    let pieces = batch::plan(&ctx, "test", 7, &[("input", &[7, 3, 45, 45], 24300)]).unwrap();
    assert!(pieces.staged && pieces.pieces == 4, "{pieces:?}");
    let (_, split) = run(&ctx, Op::Conv2dOddImage, Some(7)).unwrap();
    capped(&ctx, base, false);
    // Against the f64 reference too (the bit-identity test compares with the unsplit run).
    let x = HostTensor::random(&[7, 3, 45, 45], 4);
    let w = HostTensor::random(&[5, 3, 2, 2], 5);
    let (_, want) = wgconv::reference::conv2d(&x, &w, None, &Conv2dParams::default()).unwrap();
    let stats = compare(&split, &want);
    assert!(stats.passes(Tolerance::default()), "{stats}");
}

#[test]
fn one_image_beyond_one_binding_is_a_clear_error() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    capped(&ctx, base, true);
    // deform_conv2d runs such images with im2col_gemm in bands; a forced implicit_gemm binds
    // whole images.
    let x = up(&ctx, &HostTensor::random(&[2, 4, 96, 96], 1)); // 147456 bytes an image
    let w = up(&ctx, &HostTensor::random(&[4, 4, 3, 3], 2));
    let off = up(&ctx, &HostTensor::random(&[2, 18, 94, 94], 3));
    let p = Conv2dParams { algorithm: Algorithm::ImplicitGemm, ..Default::default() };
    let e = wgconv::deform_conv2d(&ctx, &x, &w, &off, None, None, &p).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, wgconv::Error::TooLarge(_)), "{e:?}");
    assert!(text.contains("implicit_gemm binds whole images") && text.contains("65536"), "{text}");
    // conv2d cuts an image into row bands, but not one output row: 64·300·4 bytes.
    let x = up(&ctx, &HostTensor::random(&[1, 4, 3, 302], 3));
    let w = up(&ctx, &HostTensor::random(&[64, 4, 3, 3], 4));
    let e = wgconv::conv2d(&ctx, &x, &w, None, &Conv2dParams::default()).unwrap_err();
    assert!(e.to_string().contains("one output row"), "{e}");
}

/// One image of `[N, C, H, W]` over the binding cap: conv2d runs each image in bands of
/// output rows (halo rows copied in, band outputs copied out), bit-identical to one call.
#[test]
fn an_image_beyond_one_binding_runs_in_row_bands_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let half = ctx.device().features().contains(wgpu::Features::SHADER_F16);
    let sym = |p| Padding::Symmetric([p, p]);
    let explicit = Padding::Explicit { top: 3, left: 1, bottom: 0, right: 2 };
    // (input, weight, params): 160 KiB an image (80 KiB as f16), 64 KiB per binding.
    let cases: Vec<([usize; 4], [usize; 4], Conv2dParams)> = vec![
        ([2, 8, 64, 80], [8, 8, 3, 3], Conv2dParams { padding: sym(1), ..Default::default() }),
        (
            [2, 8, 64, 80],
            [8, 8, 3, 3],
            Conv2dParams { padding: sym(1), algorithm: Algorithm::Im2colGemm, ..Default::default() },
        ),
        (
            [2, 8, 64, 80],
            [8, 8, 3, 3],
            Conv2dParams { padding: sym(1), algorithm: Algorithm::Direct, ..Default::default() },
        ),
        (
            [1, 8, 64, 80],
            [6, 8, 5, 3],
            Conv2dParams { stride: [2, 3], padding: sym(2), dilation: [2, 1], ..Default::default() },
        ),
        (
            [1, 8, 64, 80],
            [6, 8, 4, 4],
            Conv2dParams { padding: explicit, activation: Activation::Relu, ..Default::default() },
        ),
        ([1, 8, 64, 80], [8, 8, 3, 3], Conv2dParams { padding: Padding::Same, dilation: [3, 2], ..Default::default() }),
        (
            [1, 8, 64, 72],
            [8, 1, 3, 3],
            Conv2dParams { padding: sym(1), groups: 8, algorithm: Algorithm::Depthwise, ..Default::default() },
        ),
        ([1, 8, 64, 72], [16, 8, 1, 1], Conv2dParams { algorithm: Algorithm::Gemm1x1, ..Default::default() }),
    ];
    for (xs, ws, p) in cases {
        let dtypes: &[wgconv::DType] =
            if half { &[wgconv::DType::F32, wgconv::DType::F16] } else { &[wgconv::DType::F32] };
        for &dtype in dtypes {
            if dtype == wgconv::DType::F16 && matches!(p.algorithm, Algorithm::Im2colGemm | Algorithm::Direct) {
                continue;
            }
            let x = HostTensor::random(&xs, 7).rounded_to(dtype);
            let w = HostTensor::random(&ws, 8).rounded_to(dtype);
            let b = HostTensor::random(&[ws[0]], 9).rounded_to(dtype);
            let t = |h: &HostTensor| Tensor::from_slice_as(&ctx, &h.shape, &h.data, dtype).unwrap();
            let (xg, wg, bg) = (t(&x), t(&w), t(&b));
            let wo = p.output_shape(&xs, &ws).unwrap()[3];
            if dtype == wgconv::DType::F16 && (wo % 2 == 1 || xs[3] % 2 == 1) {
                capped(&ctx, base, true);
                let e = wgconv::conv2d(&ctx, &xg, &wg, Some(&bg), &p).unwrap_err();
                assert!(e.to_string().contains("f16 rows of odd width"), "{e}");
                continue;
            }
            let go = |cap: bool| {
                capped(&ctx, base, cap);
                ctx.begin_trace();
                let (y, info) = wgconv::conv2d_with_info(&ctx, &xg, &wg, Some(&bg), &p).unwrap();
                let trace = ctx.end_trace().unwrap();
                let largest = largest_binding(&trace);
                (y.to_vec(&ctx).unwrap(), info, largest)
            };
            let (whole, _, _) = go(false);
            let (bands, info, largest) = go(true);
            let what = format!("{xs:?} {ws:?} {p:?} {}", dtype.name());
            assert!(info.row_bands > 1, "{what}: {info:?}");
            assert!(largest <= CAP, "{what}: a {largest}-byte binding");
            let differ = bits_differ(&whole, &bands);
            assert_eq!(differ, 0, "{what}: {differ} of {} outputs differ", whole.len());
            if dtype == wgconv::DType::F32 {
                let (_, want) = wgconv::reference::conv2d(&x, &w, Some(&b), &p).unwrap();
                let stats = compare(&bands, &want);
                assert!(stats.passes(Tolerance::default()), "{what}: {stats}");
            }
        }
    }
    capped(&ctx, base, false);
}

/// conv2d_backward with input and grad_output beyond one binding: grad_input splits like
/// conv_transpose2d (bit-identical), grad_weight and grad_bias sum per batch piece (or per
/// row band of each image) and then over those (equal within rounding: the sum is regrouped).
#[test]
fn backward_sums_weight_and_bias_gradients_over_batch_pieces() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    // (input, groups, stride): 16 KiB images (batch pieces), then 160 KiB ones (row bands).
    for (xs, groups, stride) in
        [([7, 4, 32, 32], 1, 1), ([7, 4, 32, 32], 4, 1), ([2, 8, 64, 80], 1, 2), ([1, 8, 64, 80], 8, 1)]
    {
        let p = Conv2dParams {
            padding: Padding::Symmetric([1, 1]),
            groups,
            stride: [stride, stride],
            ..Default::default()
        };
        let c = xs[1];
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&[8, c / groups as usize, 3, 3], 2);
        let dy = HostTensor::random(&p.output_shape(&xs, &w.shape).unwrap(), 3);
        let (xg, wg, dyg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &dy));
        let go = |cap: bool| {
            capped(&ctx, base, cap);
            ctx.begin_trace();
            let g = wgconv::conv2d_backward(&ctx, &xg, &wg, &dyg, &p, Grads::ALL).unwrap();
            let trace = ctx.end_trace().unwrap();
            let largest = largest_binding(&trace);
            let read = |t: Option<Tensor>| t.unwrap().to_vec(&ctx).unwrap();
            ([read(g.grad_input), read(g.grad_weight), read(g.grad_bias)], largest)
        };
        let (whole, _) = go(false);
        let (split, largest) = go(true);
        assert!(largest <= CAP, "groups {groups}: a {largest}-byte binding");
        let differ = bits_differ(&whole[0], &split[0]);
        assert_eq!(differ, 0, "groups {groups}: {differ} grad_input elements differ from one call");
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &p).unwrap();
        for (i, want) in [rdx, rdw, rdb].iter().enumerate() {
            let stats = compare(&split[i], want);
            assert!(stats.passes(Tolerance::default()), "groups {groups}, gradient {i}: {stats}");
            let near = compare(&split[i], &whole[i].iter().map(|&v| v as f64).collect::<Vec<_>>());
            assert!(near.passes(Tolerance::default()), "groups {groups}, gradient {i} against one call: {near}");
        }
    }
    capped(&ctx, base, false);
}

/// conv2d_backward with a weight over the binding cap: grad_input through conv_transpose2d's
/// channel chunks, grad_weight and grad_bias per chunk of output channels over the whole
/// batch: all three bit-identical to one call.
#[test]
fn backward_with_a_weight_beyond_one_binding_runs_in_channel_chunks_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let sym = Padding::Symmetric([1, 1]);
    for (xs, ws, groups, stride) in [
        ([2, 32, 8, 8], [64, 32, 3, 3], 1, 1),
        ([2, 32, 8, 8], [128, 16, 3, 3], 2, 2),
        ([1, 1024, 2, 4], [2048, 1, 3, 3], 1024, 1),
        // K = N·Ho·Wo = 512: grad_weight's K in slices (gemm::split_k), in the chunks as in
        // one call (their slices counted from N and K, which chunks of output channels keep);
        // 5×5: at 3×3 grad_input's Auto would take Winograd in one call, which a weight
        // beyond the cap cannot run
        ([8, 8, 8, 8], [240, 8, 5, 5], 1, 1),
    ] {
        let sym = if ws[2] == 5 { Padding::Symmetric([2, 2]) } else { sym };
        let p = Conv2dParams { padding: sym, groups, stride: [stride, stride], ..Default::default() };
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&ws, 2);
        let dy = HostTensor::random(&p.output_shape(&xs, &ws).unwrap(), 3);
        let (xg, wg, dyg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &dy));
        let go = |cap: bool| {
            capped(&ctx, base, cap);
            ctx.begin_trace();
            let g = wgconv::conv2d_backward(&ctx, &xg, &wg, &dyg, &p, Grads::ALL).unwrap();
            let largest = largest_binding(&ctx.end_trace().unwrap());
            let read = |t: Option<Tensor>| t.unwrap().to_vec(&ctx).unwrap();
            ([read(g.grad_input), read(g.grad_weight), read(g.grad_bias)], largest)
        };
        let (whole, _) = go(false);
        let (split, largest) = go(true);
        assert!(largest <= CAP, "{ws:?}: a {largest}-byte binding");
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &p).unwrap();
        for (i, want) in [rdx, rdw, rdb].iter().enumerate() {
            let differ = bits_differ(&whole[i], &split[i]);
            assert_eq!(differ, 0, "{ws:?}: gradient {i}: {differ} of {} elements differ from one call", whole[i].len());
            let stats = compare(&split[i], want);
            assert!(stats.passes(Tolerance::default()), "{ws:?}, gradient {i}: {stats}");
        }
    }
    capped(&ctx, base, false);
}

/// The field report: `[12, 64, 240, 240]` (177 MB) was refused on lavapipe, whose storage
/// bindings hold 128 MiB (as WebGPU's defaults). Checked at sampled outputs.
#[test]
fn input_of_177_mb_runs_past_a_128_mib_binding() {
    let Some(ctx) = gpu() else { return };
    let x = HostTensor::random(&[12, 64, 240, 240], 1);
    let w = HostTensor::random(&[8, 64, 3, 3], 2);
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let (xt, wt) = (up(ctx, &x), up(ctx, &w));
    let (y, info) = wgconv::conv2d_with_info(ctx, &xt, &wt, None, &p).unwrap();
    drop(xt);
    let bytes = x.data.len() as u64 * 4;
    if bytes > ctx.limits().max_storage_buffer_binding_size {
        assert!(info.batch_pieces > 1, "{info:?}");
    } else {
        eprintln!("note: this adapter binds {bytes} bytes at once; nothing to split");
    }
    let y = y.to_vec(ctx).unwrap();
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let mut rng = wgconv::verify::SplitMix64::new(3);
    let (mut got, mut want) = (Vec::new(), Vec::new());
    // 250 outputs of every image (so every piece, the last included).
    let per_image = y.len() / 12;
    for b in 0..12 {
        for _ in 0..250 {
            let i = b * per_image + rng.range(0, per_image as u32 - 1) as usize;
            got.push(y[i]);
            want.push(wgconv::reference::conv2d_at(&x, &w, None, &g, i));
        }
    }
    let stats = compare(&got, &want);
    assert!(stats.passes(Tolerance::default()), "{stats}");
}

/// The field report's `[1, 3, 4096, 4096]` (201 MB, one image past lavapipe's 128 MiB
/// binding): conv2d in row bands, checked at 2,000 sampled outputs.
#[test]
fn image_of_201_mb_runs_in_row_bands() {
    let Some(ctx) = gpu() else { return };
    let x = HostTensor::random(&[1, 3, 4096, 4096], 1);
    let w = HostTensor::random(&[4, 3, 3, 3], 2);
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), algorithm: Algorithm::Direct, ..Default::default() };
    // Direct: the fastest here on lavapipe (0.3 GFLOP/s: four output channels fill few lanes).
    let (y, info) = wgconv::conv2d_with_info(ctx, &up(ctx, &x), &up(ctx, &w), None, &p).unwrap();
    if x.data.len() as u64 * 4 > ctx.limits().max_storage_buffer_binding_size {
        assert!(info.row_bands > 1, "{info:?}");
    }
    let y = y.to_vec(ctx).unwrap();
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let mut rng = wgconv::verify::SplitMix64::new(4);
    // The rows next to every band boundary and random ones.
    let band_rows = 4096 / info.row_bands.max(1) as usize;
    let mut rows: Vec<usize> = (1..info.row_bands as usize).flat_map(|b| [b * band_rows - 1, b * band_rows]).collect();
    rows.extend((0..50).map(|_| rng.range(0, 4095) as usize));
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for oy in rows {
        for _ in 0..20 {
            let (co, ox) = (rng.range(0, 3) as usize, rng.range(0, 4095) as usize);
            let i = (co * 4096 + oy) * 4096 + ox;
            got.push(y[i]);
            want.push(wgconv::reference::conv2d_at(&x, &w, None, &g, i));
        }
    }
    let stats = compare(&got, &want);
    assert!(stats.passes(Tolerance::default()), "{stats}");
}

/// deform_conv2d with offsets of 151 MB for one image (past lavapipe's 128 MiB binding):
/// im2col_gemm in row bands, checked at sampled outputs on both sides of every band boundary.
#[test]
fn deformable_offsets_of_151_mb_run_in_row_bands() {
    let Some(ctx) = gpu() else { return };
    let (h, w) = (2048, 1024);
    let x = HostTensor::random(&[1, 8, h, w], 1);
    let wt = HostTensor::random(&[8, 8, 3, 3], 2);
    let mut off = HostTensor::random(&[1, 18, h, w], 3); // 150994944 bytes
    off.data.iter_mut().for_each(|v| *v *= 6.0);
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let y = Tensor::empty(ctx, &[1, 8, h, w]).unwrap();
    let (xg, wg, og) = (up(ctx, &x), up(ctx, &wt), up(ctx, &off));
    let info =
        wgconv::ops::deform_conv2d::deform_conv2d_into(ctx, &mut enc, &xg, &wg, &og, None, None, &p, &y).unwrap();
    ctx.submit(enc).unwrap();
    if off.data.len() as u64 * 4 > ctx.limits().max_storage_buffer_binding_size {
        assert!(info.row_bands > 1, "{info:?}");
    }
    let y = y.to_vec(ctx).unwrap();
    let dg = p.validate_deform(&x.shape, &wt.shape, &off.shape, None, None).unwrap();
    let mut rng = wgconv::verify::SplitMix64::new(4);
    let band_rows = h.div_ceil(info.row_bands.max(1) as usize);
    let mut rows: Vec<usize> = (1..info.row_bands as usize).flat_map(|b| [b * band_rows - 1, b * band_rows]).collect();
    rows.extend((0..40).map(|_| rng.range(0, h as u32 - 1) as usize));
    let (mut got, mut want) = (Vec::new(), Vec::new());
    for oy in rows {
        for _ in 0..25 {
            let (co, ox) = (rng.range(0, 7) as usize, rng.range(0, w as u32 - 1) as usize);
            let i = (co * h + oy) * w + ox;
            got.push(y[i]);
            want.push(wgconv::reference::deform_conv2d_at(&x, &wt, &off, None, None, &dg, i));
        }
    }
    let stats = compare(&got, &want);
    assert!(stats.passes(Tolerance::default()), "{stats}");
}

/// conv_transpose2d with one image over the binding cap: bands of output rows, each from the
/// input rows that reach it (strides above the kernel, output padding, dilation, groups,
/// both algorithms), bit-identical to one call.
#[test]
fn a_transposed_image_beyond_one_binding_runs_in_row_bands_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let t = |stride, padding, output_padding, dilation, groups, algorithm| ConvTranspose2dParams {
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        algorithm,
        ..Default::default()
    };
    let sym = |p| Padding::Symmetric([p, p]);
    let auto = Algorithm::Auto;
    // (input, Cout/groups, kernel, params); outputs over 64 KiB an image.
    let cases = [
        ([1, 8, 40, 40], 4, [4, 4], t([2, 2], sym(1), [0, 0], [1, 1], 1, auto)),
        ([2, 8, 40, 40], 4, [4, 4], t([2, 2], sym(1), [0, 0], [1, 1], 1, Algorithm::GemmCol2im)),
        (
            [1, 8, 24, 30],
            4,
            [2, 3],
            t([3, 2], Padding::Explicit { top: 2, left: 1, bottom: 0, right: 0 }, [2, 1], [1, 1], 1, auto),
        ),
        ([1, 8, 40, 40], 2, [3, 3], t([2, 2], sym(2), [1, 1], [2, 2], 2, auto)),
        // (forced: Auto's col2im (2 → 2 channels a group) has no band whose columns fit 64 KiB,
        // so under the cap Auto runs the phases, and one call col2im)
        ([1, 8, 80, 80], 2, [3, 3], t([1, 1], sym(1), [0, 0], [1, 1], 4, Algorithm::ImplicitGemm)),
        // Auto: col2im (32 → 3 channels), its columns banded under the cap too
        ([1, 32, 40, 40], 3, [4, 4], t([2, 2], sym(1), [0, 0], [1, 1], 1, auto)),
    ];
    for (xs, cpg, k, p) in cases {
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&[xs[1], cpg, k[0], k[1]], 2);
        let b = HostTensor::random(&[cpg * p.groups as usize], 3);
        let (xg, wg, bg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &b));
        // the same algorithm in one call and under the cap (Auto's col2im where it pays)
        let algorithm = |cap| {
            capped(&ctx, base, cap);
            let f32 = wgconv::DType::F32;
            wgconv::plan_conv_transpose2d(&ctx, &xs, &w.shape, Some(&b.shape), f32, &p).unwrap().algorithm
        };
        let (whole, split) = (algorithm(false), algorithm(true));
        capped(&ctx, base, false);
        assert_eq!(split, whole, "{xs:?} {p:?}");
        let pays = wgconv::ops::conv_transpose2d::col2im_pays(xs[1] as u32 / p.groups, cpg as u32);
        let col2im = p.algorithm == Algorithm::GemmCol2im || (p.algorithm == auto && pays);
        assert_eq!(whole == Algorithm::GemmCol2im, col2im, "{xs:?}");
        let bands = split_matches_whole(&ctx, &format!("{xs:?} {p:?}"), &|| {
            wgconv::conv_transpose2d(&ctx, &xg, &wg, Some(&bg), &p).unwrap().to_vec(&ctx).unwrap()
        });
        let (_, want) = wgconv::reference::conv_transpose2d(&x, &w, Some(&b), &p).unwrap();
        let stats = compare(&bands, &want);
        assert!(stats.passes(Tolerance::default()), "{p:?}: {stats}");
    }
    capped(&ctx, base, false);
}

/// max_pool2d and avg_pool2d with one image over the binding cap: row bands, bit-identical.
#[test]
fn pools_beyond_one_binding_run_in_row_bands_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let x = up(&ctx, &HostTensor::random(&[2, 8, 64, 80], 1)); // 160 KiB an image
    for (k, stride, pad, count_include_pad) in [(3, 1, 1, true), (3, 2, 1, false), (5, 3, 2, true), (2, 2, 0, true)] {
        let p = Pool2dParams {
            stride: Some([stride, stride]),
            padding: [pad, pad],
            count_include_pad,
            ..Pool2dParams::new([k, k])
        };
        for mode in [PoolMode::Max, PoolMode::Avg] {
            let run = |cap: bool| {
                capped(&ctx, base, cap);
                ctx.begin_trace();
                let y = wgconv::ops::pool2d::pool2d(&ctx, &x, &p, mode).unwrap().to_vec(&ctx).unwrap();
                let trace = ctx.end_trace().unwrap();
                (y, largest_binding(&trace))
            };
            let (whole, _) = run(false);
            let (bands, largest) = run(true);
            assert!(largest <= CAP, "{p:?} {mode:?}: a {largest}-byte binding");
            let differ = bits_differ(&whole, &bands);
            assert_eq!(differ, 0, "{p:?} {mode:?}: {differ} outputs differ");
        }
    }
    capped(&ctx, base, false);
}

/// separable_conv2d with one image over the binding cap: the two passes, each conv2d in row
/// bands (bit-identical to the unfused block in one call; the fused block within rounding).
#[test]
fn separable_blocks_beyond_one_binding_run_as_two_banded_passes() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let x = up(&ctx, &HostTensor::random(&[2, 8, 64, 80], 1)); // 160 KiB an image
    let dw = up(&ctx, &HostTensor::random(&[8, 1, 3, 3], 2));
    let pw = up(&ctx, &HostTensor::random(&[8, 8, 1, 1], 3));
    let run = |fused: bool, cap: bool| {
        capped(&ctx, base, cap);
        let p = SeparableParams { padding: Padding::Symmetric([1, 1]), fused, ..Default::default() };
        wgconv::separable_conv2d(&ctx, &x, &dw, None, &pw, None, &p).unwrap().to_vec(&ctx).unwrap()
    };
    let two_passes = run(false, false);
    let banded = run(false, true);
    let differ = bits_differ(&two_passes, &banded);
    assert_eq!(differ, 0, "{differ} outputs differ");
    let fused = run(true, false);
    let fused_banded = run(true, true);
    let stats = compare(&fused_banded, &fused.iter().map(|&v| v as f64).collect::<Vec<_>>());
    assert!(stats.passes(Tolerance::default()), "{stats}");
    capped(&ctx, base, false);
}

/// separable_conv2d with a pointwise weight over the binding cap: the two passes, the
/// pointwise one in channel chunks (bit-identical to the unfused block in one call).
#[test]
fn separable_weights_beyond_one_binding_run_as_two_passes_in_chunks() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let x = up(&ctx, &HostTensor::random(&[2, 192, 4, 4], 1));
    let dw = up(&ctx, &HostTensor::random(&[192, 1, 3, 3], 2));
    let pw = up(&ctx, &HostTensor::random(&[96, 192, 1, 1], 3)); // 73728 bytes
    let run = |fused: bool, cap: bool| {
        capped(&ctx, base, cap);
        let p = SeparableParams { padding: Padding::Symmetric([1, 1]), fused, ..Default::default() };
        ctx.begin_trace();
        let y = wgconv::separable_conv2d(&ctx, &x, &dw, None, &pw, None, &p).unwrap().to_vec(&ctx).unwrap();
        (y, largest_binding(&ctx.end_trace().unwrap()))
    };
    let (two_passes, _) = run(false, false);
    for fused in [false, true] {
        let (chunked, largest) = run(fused, true);
        assert!(largest <= CAP, "fused {fused}: a {largest}-byte binding");
        let differ = bits_differ(&two_passes, &chunked);
        assert_eq!(differ, 0, "fused {fused}: {differ} outputs differ");
    }
    capped(&ctx, base, false);
}

/// One volume over the binding cap: conv3d runs it in slabs of output depth, bit-identical.
#[test]
fn a_volume_beyond_one_binding_runs_in_depth_slabs_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let explicit = Padding3d::Explicit { begin: [2, 0, 1], end: [0, 1, 2] };
    // 4·12·24·24·4 = 110592 bytes a volume, 64 KiB per binding.
    let cases = [
        (
            [2, 4, 12, 24, 24],
            [4, 4, 3, 3, 3],
            Conv3dParams { padding: Padding3d::Symmetric([1, 1, 1]), ..Default::default() },
        ),
        (
            [1, 4, 12, 24, 24],
            [6, 4, 3, 2, 3],
            Conv3dParams { stride: [2, 1, 2], dilation: [2, 1, 1], padding: explicit, ..Default::default() },
        ),
        (
            [1, 4, 12, 24, 24],
            [4, 2, 3, 3, 3],
            Conv3dParams { padding: Padding3d::Same, groups: 2, activation: Activation::Relu, ..Default::default() },
        ),
    ];
    for (xs, ws, p) in cases {
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&ws, 2);
        let b = HostTensor::random(&[ws[0]], 3);
        let (xg, wg, bg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &b));
        let slabs = split_matches_whole(&ctx, &format!("{p:?}"), &|| {
            wgconv::conv3d(&ctx, &xg, &wg, Some(&bg), &p).unwrap().to_vec(&ctx).unwrap()
        });
        let (_, want) = wgconv::reference::conv3d(&x, &w, Some(&b), &p).unwrap();
        let stats = compare(&slabs, &want);
        assert!(stats.passes(Tolerance::default()), "{p:?}: {stats}");
    }
    capped(&ctx, base, false);
}

/// plan_conv2d of a split call lists every piece's and every band's launches, exactly what
/// the call records (the trace), each note naming its piece or band.
#[test]
fn a_split_plan_is_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    capped(&ctx, base, true);
    let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    // Batch pieces (16 KiB images), row bands (160 KiB images), then channel chunks (a
    // 73728-byte weight).
    for (xs, ws, pieces, bands, chunks, note) in [
        ([7, 4, 32, 32], [8, 4, 3, 3], 4, 1, 1, "images 6..7"),
        ([2, 8, 64, 80], [8, 8, 3, 3], 2, 3, 1, "image 1, rows"),
        ([2, 32, 8, 8], [64, 32, 3, 3], 2, 1, 2, "channels 56..64, image 1"),
    ] {
        let plan = wgconv::plan_conv2d(&ctx, &xs, &ws, None, wgconv::DType::F32, &p).unwrap();
        let split = (plan.batch_pieces, plan.row_bands, plan.channel_chunks);
        assert_eq!(split, (pieces, bands, chunks), "{xs:?}");
        assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{plan}");
        let x = up(&ctx, &HostTensor::random(&xs, 1));
        let w = up(&ctx, &HostTensor::random(&ws, 2));
        ctx.begin_trace();
        let (_, info) = wgconv::conv2d_with_info(&ctx, &x, &w, None, &p).unwrap();
        let trace = ctx.end_trace().unwrap();
        assert_eq!(info, plan.info());
        let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
        let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
        assert_eq!(ran, planned, "{xs:?}");
    }
    capped(&ctx, base, false);
}

/// plan_pool2d lists what pool2d_into records: one call, batch pieces, row bands, and the
/// passes of a window past the loop budget, each note naming its piece, band or pass.
#[test]
fn pool_plans_are_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let p = Pool2dParams { stride: Some([1, 1]), padding: [1, 1], ..Pool2dParams::new([3, 3]) };
    let wide = Pool2dParams { stride: Some([1, 1]), ..Pool2dParams::new([2, 40]) };
    // (input, params, cap, loop budget, batch pieces, row bands, a note)
    let cases = [
        ([2, 4, 16, 16], p, false, base.loop_budget, 1, 1, ""),
        ([7, 4, 32, 32], p, true, base.loop_budget, 2, 1, "images 4..7"),
        ([2, 8, 64, 80], p, true, base.loop_budget, 2, 3, "image 1, rows"),
        ([1, 2, 8, 48], wide, false, 16, 1, 1, "window units 5..6"),
    ];
    for (xs, params, cap, loop_budget, pieces, bands, note) in cases {
        for mode in [PoolMode::Max, PoolMode::Avg] {
            capped(&ctx, EngineConfig { loop_budget, ..base }, cap);
            let plan = wgconv::plan_pool2d(&ctx, &xs, wgconv::DType::F32, &params, mode).unwrap();
            assert_eq!((plan.batch_pieces, plan.row_bands), (pieces, bands), "{xs:?}\n{plan}");
            assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{plan}");
            let x = up(&ctx, &HostTensor::random(&xs, 1));
            ctx.begin_trace();
            let y = wgconv::ops::pool2d::pool2d(&ctx, &x, &params, mode).unwrap();
            let trace = ctx.end_trace().unwrap();
            let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
            let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
            assert_eq!(ran, planned, "{xs:?} {mode:?}");
            // And the values: the reference.
            let (_, want) = wgconv::reference::pool2d(&HostTensor::random(&xs, 1), &params, mode).unwrap();
            let stats = compare(&y.to_vec(&ctx).unwrap(), &want);
            assert!(stats.passes(Tolerance::default()), "{xs:?} {mode:?}: {stats}");
        }
    }
    ctx.set_config(base);
}

/// plan_conv3d lists what conv3d_into records: one call, batch pieces, depth slabs and
/// chunks of output channels, each note naming its part.
#[test]
fn conv3d_plans_are_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let p = Conv3dParams { padding: Padding3d::Symmetric([1, 1, 1]), ..Default::default() };
    // (input, weight, cap, (pieces, slabs, channel chunks), a note)
    let cases = [
        ([2, 2, 4, 6, 6], [3, 2, 3, 3, 3], false, (1, 1, 1), "chunk 1/1"),
        ([7, 2, 8, 16, 16], [2, 2, 3, 3, 3], true, (2, 1, 1), "volumes 4..7"),
        ([2, 4, 12, 24, 24], [4, 4, 3, 3, 3], true, (2, 3, 1), "volume 1, depth"),
        ([2, 16, 4, 6, 6], [48, 16, 3, 3, 3], true, (2, 1, 2), "channels 0..37, volume 1"),
    ];
    for (xs, ws, cap, split, note) in cases {
        capped(&ctx, base, cap);
        let plan = wgconv::plan_conv3d(&ctx, &xs, &ws, Some(&[ws[0]]), &p).unwrap();
        assert_eq!((plan.batch_pieces, plan.depth_slabs, plan.channel_chunks), split, "{xs:?}\n{plan}");
        assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{plan}");
        let (x, w, b) = (HostTensor::random(&xs, 1), HostTensor::random(&ws, 2), HostTensor::random(&[ws[0]], 3));
        ctx.begin_trace();
        let y = wgconv::conv3d(&ctx, &up(&ctx, &x), &up(&ctx, &w), Some(&up(&ctx, &b)), &p).unwrap();
        let trace = ctx.end_trace().unwrap();
        let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
        let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
        assert_eq!(ran, planned, "{xs:?}");
        let (_, want) = wgconv::reference::conv3d(&x, &w, Some(&b), &p).unwrap();
        let stats = compare(&y.to_vec(&ctx).unwrap(), &want);
        assert!(stats.passes(Tolerance::default()), "{xs:?}: {stats}");
    }
    capped(&ctx, base, false);
}

/// plan_deform_conv2d lists what deform_conv2d_into records: one call (both algorithms),
/// batch pieces, row bands (with input channel chunks) and chunks of output channels.
#[test]
fn deform_plans_are_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let sym = Padding::Symmetric([1, 1]);
    let p = |algorithm| Conv2dParams { padding: sym, algorithm, ..Default::default() };
    let (implicit, im2col, auto) = (Algorithm::ImplicitGemm, Algorithm::Im2colGemm, Algorithm::Auto);
    // (input, Cout, params, cap, (pieces, bands, channel chunks), a note)
    let cases = [
        ([2, 4, 10, 10], 4, p(implicit), false, (1, 1, 1), "implicit_gemm"),
        ([2, 4, 10, 10], 4, p(im2col), false, (1, 1, 1), "columns 0.."),
        ([7, 4, 16, 16], 4, p(implicit), true, (3, 1, 1), "images 6..7"),
        ([2, 8, 50, 70], 8, p(auto), true, (2, 4, 1), "image 1, rows"),
        ([2, 32, 10, 10], 64, p(implicit), true, (2, 1, 2), "channels 56..64, image 1"),
    ];
    for (xs, c_out, p, cap, split, note) in cases {
        capped(&ctx, base, cap);
        let ws = [c_out, xs[1], 3, 3];
        let (os, ms) = ([xs[0], 18, xs[2], xs[3]], [xs[0], 9, xs[2], xs[3]]);
        let f32 = wgconv::DType::F32;
        let plan = wgconv::plan_deform_conv2d(&ctx, &xs, &ws, &os, Some(&ms), Some(&[c_out]), f32, &p).unwrap();
        let got = (plan.batch_pieces, plan.row_bands, plan.channel_chunks);
        assert_eq!(got, split, "{xs:?}\n{plan}");
        assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{plan}");
        let h = |s: &[usize], seed| HostTensor::random(s, seed);
        let (x, w, o, m, b) = (h(&xs, 1), h(&ws, 2), h(&os, 3), h(&ms, 4), h(&[c_out], 5));
        let t = |h: &HostTensor| up(&ctx, h);
        ctx.begin_trace();
        let y = wgconv::deform_conv2d(&ctx, &t(&x), &t(&w), &t(&o), Some(&t(&m)), Some(&t(&b)), &p).unwrap();
        let trace = ctx.end_trace().unwrap();
        let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
        let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
        assert_eq!(ran, planned, "{xs:?}");
        let (_, want) = wgconv::reference::deform_conv2d(&x, &w, &o, Some(&m), Some(&b), &p).unwrap();
        let stats = compare(&y.to_vec(&ctx).unwrap(), &want);
        assert!(stats.passes(Tolerance::default()), "{xs:?}: {stats}");
    }
    capped(&ctx, base, false);
}

/// plan_separable_conv2d lists what separable_conv2d_into records: fused and two passes,
/// in one call and in batch pieces, and the two passes an image beyond one binding takes.
#[test]
fn separable_plans_are_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    // (input, fused, cap, fused in the plan, pieces, a note)
    let cases = [
        ([2, 8, 16, 16], true, false, true, 1, "fused"),
        ([2, 8, 16, 16], false, false, false, 1, "pointwise"),
        ([7, 8, 32, 32], true, true, true, 7, "images 6..7"),
        ([7, 8, 32, 32], false, true, false, 7, "images 6..7: depthwise"),
        ([2, 8, 64, 80], true, true, false, 1, "depthwise: image 1, rows"),
    ];
    for (xs, fused, cap, runs_fused, pieces, note) in cases {
        capped(&ctx, base, cap);
        let p = SeparableParams { padding: Padding::Symmetric([1, 1]), fused, ..Default::default() };
        let (dws, pws) = ([xs[1], 1, 3, 3], [16, xs[1], 1, 1]);
        let plan = wgconv::plan_separable_conv2d(&ctx, &xs, &dws, Some(&[xs[1]]), &pws, Some(&[16]), &p).unwrap();
        assert_eq!((plan.fused, plan.batch_pieces), (runs_fused, pieces), "{xs:?}\n{plan}");
        assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{plan}");
        let h = |s: &[usize], seed| up(&ctx, &HostTensor::random(s, seed));
        let (x, dw, db, pw, pb) = (h(&xs, 1), h(&dws, 2), h(&[xs[1]], 3), h(&pws, 4), h(&[16], 5));
        ctx.begin_trace();
        wgconv::separable_conv2d(&ctx, &x, &dw, Some(&db), &pw, Some(&pb), &p).unwrap();
        let trace = ctx.end_trace().unwrap();
        let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
        let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
        assert_eq!(ran, planned, "{xs:?} fused {fused}");
    }
    capped(&ctx, base, false);
}

/// plan_conv_transpose2d lists what conv_transpose2d_into records: one call, batch pieces,
/// row bands and chunks of output channels, with both algorithms.
#[test]
fn transposed_plans_are_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    // (input, weight, cap, (pieces, bands, channel chunks), a note)
    let cases = [
        ([2, 8, 12, 12], [8, 4, 4, 4], false, (1, 1, 1), ""),
        ([7, 8, 16, 16], [8, 4, 4, 4], true, (2, 1, 1), "images 4..7"),
        ([1, 8, 40, 40], [8, 4, 4, 4], true, (1, 2, 1), "image 0, rows"),
        ([2, 64, 6, 6], [64, 32, 3, 3], true, (2, 1, 2), "channels 0..28, image 1"),
    ];
    for algorithm in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
        for (xs, ws, cap, split, note) in cases {
            capped(&ctx, base, cap);
            let p = ConvTranspose2dParams {
                stride: [2, 2],
                padding: Padding::Symmetric([1, 1]),
                algorithm,
                ..Default::default()
            };
            let f32 = wgconv::DType::F32;
            let plan = wgconv::plan_conv_transpose2d(&ctx, &xs, &ws, Some(&[ws[1]]), f32, &p).unwrap();
            // Bands: as many as each algorithm's workspace asks (gemm_col2im's more).
            let got = (plan.batch_pieces, plan.row_bands > 1, plan.channel_chunks);
            assert_eq!(got, (split.0, split.1 > 1, split.2), "{xs:?} {algorithm:?}\n{plan}");
            assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{plan}");
            let (x, w, b) = (HostTensor::random(&xs, 1), HostTensor::random(&ws, 2), HostTensor::random(&[ws[1]], 3));
            ctx.begin_trace();
            let (y, info) =
                wgconv::conv_transpose2d_with_info(&ctx, &up(&ctx, &x), &up(&ctx, &w), Some(&up(&ctx, &b)), &p)
                    .unwrap();
            let trace = ctx.end_trace().unwrap();
            assert_eq!(info, plan.info());
            let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
            let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
            assert_eq!(ran, planned, "{xs:?} {algorithm:?}");
            let (_, want) = wgconv::reference::conv_transpose2d(&x, &w, Some(&b), &p).unwrap();
            let stats = compare(&y.to_vec(&ctx).unwrap(), &want);
            assert!(stats.passes(Tolerance::default()), "{xs:?} {algorithm:?}: {stats}");
        }
    }
    capped(&ctx, base, false);
}

/// plan_conv2d_backward lists what conv2d_backward_into records: one call, the depthwise
/// kernels, batch pieces, row bands, chunks of output channels, and a subset of the
/// gradients; the gradients equal the reference's.
#[test]
fn backward_plans_are_what_runs() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let all = Grads::ALL;
    let weight_only = Grads { input: false, weight: true, bias: false };
    // (input, weight, groups, grads, cap, (pieces, bands, channel chunks), a note)
    let cases = [
        ([2, 8, 12, 12], [16, 8, 3, 3], 1, all, false, (1, 1, 1), "grad_input"),
        ([2, 16, 12, 12], [16, 1, 3, 3], 16, all, false, (1, 1, 1), "grad_input, depthwise"),
        ([6, 8, 16, 16], [16, 8, 3, 3], 1, all, true, (2, 1, 1), "images 4..6"),
        ([1, 8, 48, 48], [8, 8, 3, 3], 1, all, true, (1, 2, 1), "image 0, rows"),
        ([1, 8, 48, 48], [8, 8, 3, 3], 1, weight_only, true, (1, 2, 1), "grad_weight: Σ over"),
        ([2, 32, 8, 8], [64, 32, 3, 3], 1, all, true, (1, 1, 2), "channels 0.."),
        ([2, 32, 8, 8], [128, 16, 3, 3], 2, all, true, (1, 1, 2), "channels 64..128"),
    ];
    for (xs, ws, groups, which, cap, split, note) in cases {
        capped(&ctx, base, cap);
        let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), groups, ..Default::default() };
        let plan = wgconv::plan_conv2d_backward(&ctx, &xs, &ws, &p, wgconv::DType::F32, which).unwrap();
        let got = (plan.batch_pieces, plan.row_bands > 1, plan.channel_chunks);
        assert_eq!(got, (split.0, split.1 > 1, split.2), "{xs:?} {ws:?}\n{plan}");
        assert!(plan.steps.iter().any(|s| s.note.starts_with(note)), "{note}:\n{plan}");
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&ws, 2);
        let g = p.validate(&xs, &ws, None).unwrap();
        let dy = HostTensor::random(&g.output_shape(), 3);
        ctx.begin_trace();
        let grads = wgconv::conv2d_backward(&ctx, &up(&ctx, &x), &up(&ctx, &w), &up(&ctx, &dy), &p, which).unwrap();
        let trace = ctx.end_trace().unwrap();
        let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
        let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
        assert_eq!(ran, planned, "{xs:?} {ws:?}\n{plan}");
        let (rdx, rdw, rdb) = wgconv::reference::conv2d_backward(&x, &w, &dy, &p).unwrap();
        let outs = [
            (&grads.grad_input, &rdx, which.input, "grad_input"),
            (&grads.grad_weight, &rdw, which.weight, "grad_weight"),
            (&grads.grad_bias, &rdb, which.bias, "grad_bias"),
        ];
        for (got, want, asked, what) in outs {
            assert_eq!(got.is_some(), asked, "{what}");
            if let Some(t) = got {
                let stats = compare(&t.to_vec(&ctx).unwrap(), want);
                assert!(stats.passes(Tolerance::default()), "{xs:?} {ws:?} {what}: {stats}");
            }
        }
    }
    capped(&ctx, base, false);
}

/// A tensor past one buffer (WebGPU's default max_buffer_size is 256 MiB) is refused before
/// anything is allocated, naming the tensor and both limits.
#[test]
fn a_tensor_beyond_one_buffer_is_a_clear_error() {
    let Some(ctx) = webgpu_default_context() else { return };
    let e = Tensor::empty(&ctx, &[1, 64, 1024, 1025]).unwrap_err(); // 268697600 bytes
    let text = e.to_string();
    assert!(matches!(e, wgconv::Error::TooLarge(_)), "{e:?}");
    for needle in ["[1, 64, 1024, 1025]", "268697600", "268435456", "134217728"] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

/// A weight over the binding cap: conv2d runs chunks of output channels (whole groups, or
/// part of one group), one image at a time, bit-identical to one call.
#[test]
fn a_weight_beyond_one_binding_runs_in_channel_chunks_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let sym = Padding::Symmetric([1, 1]);
    // (input, weight, params): every weight 73728 bytes, over 64 KiB.
    let cases = [
        ([2, 32, 8, 8], [64, 32, 3, 3], Conv2dParams { padding: sym, ..Default::default() }),
        (
            [2, 32, 8, 8],
            [64, 32, 3, 3],
            Conv2dParams { padding: sym, algorithm: Algorithm::Im2colGemm, ..Default::default() },
        ),
        (
            [2, 32, 8, 8],
            [128, 16, 3, 3],
            Conv2dParams { padding: sym, groups: 2, activation: Activation::Relu, ..Default::default() },
        ),
        (
            [1, 1024, 2, 4],
            [2048, 1, 3, 3],
            Conv2dParams { padding: sym, groups: 1024, algorithm: Algorithm::Depthwise, ..Default::default() },
        ),
    ];
    for (xs, ws, p) in cases {
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&ws, 2);
        let b = HostTensor::random(&[ws[0]], 3);
        let (xg, wg, bg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &b));
        let chunks = split_matches_whole(&ctx, &format!("{ws:?} {p:?}"), &|| {
            wgconv::conv2d(&ctx, &xg, &wg, Some(&bg), &p).unwrap().to_vec(&ctx).unwrap()
        });
        let (_, want) = wgconv::reference::conv2d(&x, &w, Some(&b), &p).unwrap();
        let stats = compare(&chunks, &want);
        assert!(stats.passes(Tolerance::default()), "{ws:?} {p:?}: {stats}");
    }
    capped(&ctx, base, false);
}

/// conv3d with a weight over the binding cap: the same output-channel chunks as conv2d.
#[test]
fn a_conv3d_weight_beyond_one_binding_runs_in_channel_chunks_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let sym = Padding3d::Symmetric([1, 1, 1]);
    // Weights of 82944 bytes, over 64 KiB: whole groups, then parts of one group.
    for (xs, ws, p) in [
        ([2, 16, 4, 6, 6], [48, 16, 3, 3, 3], Conv3dParams { padding: sym, ..Default::default() }),
        (
            [2, 16, 4, 6, 6],
            [96, 8, 3, 3, 3],
            Conv3dParams { padding: sym, groups: 2, activation: Activation::Relu, ..Default::default() },
        ),
    ] {
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&ws, 2);
        let b = HostTensor::random(&[ws[0]], 3);
        let (xg, wg, bg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &b));
        let chunks = split_matches_whole(&ctx, &format!("{ws:?} {p:?}"), &|| {
            wgconv::conv3d(&ctx, &xg, &wg, Some(&bg), &p).unwrap().to_vec(&ctx).unwrap()
        });
        let (_, want) = wgconv::reference::conv3d(&x, &w, Some(&b), &p).unwrap();
        let stats = compare(&chunks, &want);
        assert!(stats.passes(Tolerance::default()), "{ws:?} {p:?}: {stats}");
    }
    capped(&ctx, base, false);
}

/// conv_transpose2d with a weight `[Cin, Cout/G, kh, kw]` over the binding cap: chunks of
/// output channels, whole groups copied as one run, part of one group per input channel.
#[test]
fn a_transposed_weight_beyond_one_binding_runs_in_channel_chunks_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let t = |stride, groups, algorithm| ConvTranspose2dParams {
        stride,
        padding: Padding::Symmetric([1, 1]),
        groups,
        algorithm,
        ..Default::default()
    };
    // (input, weight, params): weights of 73728 and 81920 bytes, over 64 KiB.
    for algorithm in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
        for (xs, ws, p) in [
            ([2, 64, 6, 6], [64, 32, 3, 3], t([1, 1], 1, algorithm)), // parts of one group
            ([2, 64, 6, 6], [64, 32, 3, 3], t([2, 2], 2, algorithm)), // one group a chunk
            ([1, 64, 5, 7], [64, 20, 4, 4], t([2, 2], 4, algorithm)), // three groups, then one
        ] {
            let x = HostTensor::random(&xs, 1);
            let w = HostTensor::random(&ws, 2);
            let b = HostTensor::random(&[ws[1] * p.groups as usize], 3);
            let (xg, wg, bg) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &b));
            let what = format!("{ws:?} {p:?}");
            let chunks = split_matches_whole(&ctx, &what, &|| {
                wgconv::conv_transpose2d(&ctx, &xg, &wg, Some(&bg), &p).unwrap().to_vec(&ctx).unwrap()
            });
            let (_, want) = wgconv::reference::conv_transpose2d(&x, &w, Some(&b), &p).unwrap();
            let stats = compare(&chunks, &want);
            assert!(stats.passes(Tolerance::default()), "{what}: {stats}");
        }
    }
    capped(&ctx, base, false);
}

/// deform_conv2d with a weight over the binding cap: output-channel chunks, each with its
/// offset groups' offsets and mask, bit-identical to one call (both algorithms).
#[test]
fn a_deformable_weight_beyond_one_binding_runs_in_channel_chunks_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    // (input channels, weight, groups, offset groups): weights over 64 KiB.
    let cases = [
        (32, [64, 32, 3, 3], 1, 1),
        (32, [128, 16, 3, 3], 2, 2),
        (32, [64, 32, 3, 3], 1, 4),
        (64, [128, 16, 3, 3], 4, 2), // chunks of two groups, one offset group
        (48, [96, 24, 3, 3], 2, 3),  // 82944 bytes; groups of 24 channels, offset groups of 16
    ];
    for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        for (c, ws, groups, og) in cases {
            let xs = [2, c, 10, 10];
            let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), groups, algorithm, ..Default::default() };
            let x = HostTensor::random(&xs, 1);
            let w = HostTensor::random(&ws, 2);
            let b = HostTensor::random(&[ws[0]], 3);
            let mut off = HostTensor::random(&[2, 18 * og, 10, 10], 4);
            off.data.iter_mut().for_each(|v| *v *= 3.0);
            let m = HostTensor::random(&[2, 9 * og, 10, 10], 5);
            let t = |h: &HostTensor| up(&ctx, h);
            let (xg, wg, bg, offg, mg) = (t(&x), t(&w), t(&b), t(&off), t(&m));
            let call = || wgconv::deform_conv2d(&ctx, &xg, &wg, &offg, Some(&mg), Some(&bg), &p);
            let what = format!("{ws:?} groups {groups} offset groups {og} {algorithm:?}");
            if (groups, og) == (2, 3) {
                // A group of 24 channels cuts the offset groups of 16 channels.
                capped(&ctx, base, true);
                let e = call().err().unwrap();
                capped(&ctx, base, false);
                assert!(e.to_string().contains("across offset groups of 16 channels"), "{what}: {e}");
                continue;
            }
            let chunks = split_matches_whole(&ctx, &what, &|| call().unwrap().to_vec(&ctx).unwrap());
            let (_, want) = wgconv::reference::deform_conv2d(&x, &w, &off, Some(&m), Some(&b), &p).unwrap();
            let stats = compare(&chunks, &want);
            assert!(stats.passes(Tolerance::default()), "{what}: {stats}");
        }
    }
    capped(&ctx, base, false);
}

/// conv1d with one sequence over the binding cap: the sequence along conv2d's rows, in
/// bands, bit-identical to one call.
#[test]
fn a_sequence_beyond_one_binding_runs_in_bands_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let p = |stride, padding, dilation, algorithm| Conv1dParams {
        stride,
        padding,
        dilation,
        algorithm,
        ..Default::default()
    };
    // 8·3000·4 = 96000 bytes a sequence.
    for p in [
        p(1, Padding1d::Symmetric(1), 1, Algorithm::Auto),
        p(2, Padding1d::Explicit { left: 3, right: 0 }, 2, Algorithm::ImplicitGemm),
        p(1, Padding1d::Same, 3, Algorithm::Direct),
        p(3, Padding1d::Valid, 1, Algorithm::Im2colGemm),
    ] {
        let x = up(&ctx, &HostTensor::random(&[2, 8, 3000], 1));
        let w = up(&ctx, &HostTensor::random(&[6, 8, 5], 2));
        let go = |cap: bool| {
            capped(&ctx, base, cap);
            ctx.begin_trace();
            let y = wgconv::conv1d(&ctx, &x, &w, None, &p).unwrap().to_vec(&ctx).unwrap();
            (y, largest_binding(&ctx.end_trace().unwrap()))
        };
        let (whole, _) = go(false);
        let (bands, largest) = go(true);
        assert!(largest <= CAP, "{p:?}: a {largest}-byte binding");
        assert_eq!(bits_differ(&whole, &bands), 0, "{p:?}");
    }
    capped(&ctx, base, false);
}

/// NaN, +∞ and −∞ in the inputs (and a weight) of every split path: batch pieces for every
/// op, then row bands, depth slabs and channel chunks with specials on the rows each band's
/// halo copies. The split run gives the unsplit run's outputs, specials included.
#[test]
fn special_values_cross_every_split_unchanged() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let check = |what: &str, f: &dyn Fn() -> Vec<f32>| {
        let split = split_matches_whole(&ctx, what, f);
        let (nan, inf, finite) = kinds(&split);
        assert!(nan > 0 && inf > 0 && finite > 0, "{what}: {nan} NaN, {inf} ±∞, {finite} finite outputs");
    };
    for op in OPS.into_iter().chain([Op::GradInput]) {
        check(&format!("{op:?} in batch pieces"), &|| run_with(&ctx, op, Some(7), true).unwrap().1);
    }
    // One image over the cap. Specials every 83 elements of the first channel: about one a row.
    let poisoned = |s: &[usize], seed| {
        let plane = s[2..].iter().product();
        up(&ctx, &poison(HostTensor::random(s, seed), s[0], plane, 83))
    };
    let fixed = |s: &[usize], seed| up(&ctx, &HostTensor::random(s, seed));
    let read = |t: wgconv::Result<Tensor>| t.unwrap().to_vec(&ctx).unwrap();
    let sym = Padding::Symmetric([1, 1]);
    let image = poisoned(&[1, 8, 64, 80], 1); // 160 KiB
    let w = fixed(&[8, 8, 3, 3], 2);
    for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm, Algorithm::Direct] {
        let p = Conv2dParams { padding: sym, algorithm, ..Default::default() };
        check(&format!("conv2d {algorithm:?} in row bands"), &|| read(wgconv::conv2d(&ctx, &image, &w, None, &p)));
    }
    let dw = fixed(&[8, 1, 3, 3], 3);
    let p = Conv2dParams { padding: sym, groups: 8, algorithm: Algorithm::Depthwise, ..Default::default() };
    check("depthwise in row bands", &|| read(wgconv::conv2d(&ctx, &image, &dw, None, &p)));
    let pool = Pool2dParams { stride: Some([1, 1]), padding: [1, 1], ..Pool2dParams::new([3, 3]) };
    for mode in [PoolMode::Max, PoolMode::Avg] {
        check(&format!("{mode:?} pool in row bands"), &|| read(wgconv::ops::pool2d::pool2d(&ctx, &image, &pool, mode)));
    }
    let pw = fixed(&[8, 8, 1, 1], 4);
    let p = SeparableParams { padding: sym, ..Default::default() };
    check("separable in row bands", &|| read(wgconv::separable_conv2d(&ctx, &image, &dw, None, &pw, None, &p)));
    let (xt, wt) = (poisoned(&[1, 8, 40, 40], 5), fixed(&[8, 4, 4, 4], 6));
    for algorithm in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
        let p = ConvTranspose2dParams { stride: [2, 2], padding: sym, algorithm, ..Default::default() };
        check(&format!("conv_transpose2d {algorithm:?} in row bands"), &|| {
            read(wgconv::conv_transpose2d(&ctx, &xt, &wt, None, &p))
        });
    }
    // An infinite corner weight meets taps outside the input on each band's edge rows: every
    // band's border pass recomputes them, and the bands give the whole call's values, which
    // are the reference's.
    let mut wi = HostTensor::random(&[8, 4, 3, 3], 16);
    wi.data[0] = f32::INFINITY;
    let p = ConvTranspose2dParams { padding: sym, algorithm: Algorithm::ImplicitGemm, ..Default::default() };
    let banded = split_matches_whole(&ctx, "conv_transpose2d phases, an infinite weight, in row bands", &|| {
        read(wgconv::conv_transpose2d(&ctx, &image, &up(&ctx, &wi), None, &p))
    });
    let xh = poison(HostTensor::random(&[1, 8, 64, 80], 1), 1, 64 * 80, 83);
    let (_, want) = wgconv::reference::conv_transpose2d(&xh, &wi, None, &p).unwrap();
    crate::special_values::assert_same_specials("conv_transpose2d phases in row bands", &banded, &want);
    let (xv, wv) = (poisoned(&[1, 4, 12, 24, 24], 7), fixed(&[4, 4, 3, 3, 3], 8));
    let p = Conv3dParams { padding: Padding3d::Symmetric([1, 1, 1]), ..Default::default() };
    check("conv3d in depth slabs", &|| read(wgconv::conv3d(&ctx, &xv, &wv, None, &p)));
    let (xd, wd) = (poisoned(&[1, 8, 50, 70], 13), fixed(&[8, 8, 3, 3], 14));
    let off = up(&ctx, &HostTensor::random(&[1, 18, 50, 70], 15));
    let p = Conv2dParams { padding: sym, algorithm: Algorithm::Im2colGemm, ..Default::default() };
    check("deform_conv2d in row bands", &|| read(wgconv::deform_conv2d(&ctx, &xd, &wd, &off, None, None, &p)));
    let (xs, ws) = (poisoned(&[1, 8, 3000], 9), fixed(&[6, 8, 5], 10));
    let p = Conv1dParams { padding: Padding1d::Symmetric(2), ..Default::default() };
    check("conv1d in bands", &|| read(wgconv::conv1d(&ctx, &xs, &ws, None, &p)));
    // Channel chunks: a NaN, a +∞ and a −∞ weight, each in another chunk of output channels.
    let mut wc = HostTensor::random(&[64, 32, 3, 3], 11);
    for (channel, v) in [(0, f32::NAN), (30, f32::INFINITY), (63, f32::NEG_INFINITY)] {
        wc.data[channel * 288 + 4] = v;
    }
    let (xc, wc) = (poisoned(&[2, 32, 8, 8], 12), up(&ctx, &wc));
    let p = Conv2dParams { padding: sym, ..Default::default() };
    check("conv2d in channel chunks", &|| read(wgconv::conv2d(&ctx, &xc, &wc, None, &p)));
    capped(&ctx, base, false);
}

/// deform_conv2d with one image over the binding cap: im2col_gemm in bands of output rows,
/// offsets and mask copied band by band, the input bound whole or in chunks of channels
/// (aligned in place, misaligned ones staged); bit-identical to one im2col_gemm call.
#[test]
fn a_deformable_image_beyond_one_binding_runs_in_row_bands_bit_identically() {
    let Some(ctx) = webgpu_default_context() else { return };
    let base = ctx.config();
    let im2col = |stride, padding, dilation, groups| Conv2dParams {
        stride,
        padding,
        dilation,
        groups,
        algorithm: Algorithm::Im2colGemm,
        ..Default::default()
    };
    let sym = |p| Padding::Symmetric([p, p]);
    // (input, Cout, offset groups, mask, params, input chunks)
    let cases = [
        // 36864-byte planes: one channel a chunk, every chunk aligned; two images.
        ([2, 4, 96, 96], 4, 1, false, im2col([1, 1], sym(0), [1, 1], 1), 4),
        // The input fits (28800 bytes); offsets, mask and output do not.
        ([1, 2, 60, 60], 8, 1, true, im2col([1, 1], sym(1), [1, 1], 1), 1),
        // 14000-byte planes: chunks of 4 channels, the second at 56000 (staged).
        ([1, 8, 50, 70], 8, 2, true, im2col([2, 2], sym(2), [2, 2], 2), 2),
    ];
    for (xs, c_out, og, with_mask, p, chunks) in cases {
        let ws = [c_out, xs[1] / p.groups as usize, 3, 3];
        let [ho, wo] = {
            let s = p.output_shape(&xs, &ws).unwrap();
            [s[2], s[3]]
        };
        let x = HostTensor::random(&xs, 1);
        let w = HostTensor::random(&ws, 2);
        let b = HostTensor::random(&[c_out], 3);
        // Offsets up to ±15 pixels: samples far outside each band's own rows.
        let mut off = HostTensor::random(&[xs[0], 2 * og * 9, ho, wo], 4);
        off.data.iter_mut().for_each(|v| *v *= 15.0);
        let m = HostTensor::random(&[xs[0], og * 9, ho, wo], 5);
        let mask = with_mask.then_some(&m);
        let (xg, wg, bg, og_t) = (up(&ctx, &x), up(&ctx, &w), up(&ctx, &b), up(&ctx, &off));
        let mg = mask.map(|m| up(&ctx, m));
        let what = format!("{xs:?} og {og} mask {with_mask} {p:?}");
        let go = |cap: bool| {
            capped(&ctx, base, cap);
            ctx.begin_trace();
            let y = Tensor::empty(&ctx, &[xs[0], c_out, ho, wo]).unwrap();
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            let info = wgconv::ops::deform_conv2d::deform_conv2d_into(
                &ctx,
                &mut enc,
                &xg,
                &wg,
                &og_t,
                mg.as_ref(),
                Some(&bg),
                &p,
                &y,
            )
            .unwrap();
            ctx.submit(enc).unwrap();
            let trace = ctx.end_trace().unwrap();
            let unfolds =
                trace.dispatches.iter().filter(|d| d.shader == wgconv::shaders::ShaderId::DeformIm2col).count();
            (y.to_vec(&ctx).unwrap(), info, largest_binding(&trace), unfolds)
        };
        let (whole, one, _, _) = go(false);
        let (bands, info, largest, unfolds) = go(true);
        assert_eq!(one.row_bands, 1, "{what}");
        assert!(info.row_bands > 1 && info.algorithm == Algorithm::Im2colGemm, "{what}: {info:?}");
        assert!(largest <= CAP, "{what}: a {largest}-byte binding");
        // One unfold per (image, band, column chunk, input chunk).
        assert_eq!(unfolds % chunks, 0, "{what}: {unfolds} unfolds, {chunks} input chunks");
        assert!(unfolds >= xs[0] * info.row_bands as usize * chunks, "{what}: {unfolds} unfolds, {info:?}");
        let differ = bits_differ(&whole, &bands);
        assert_eq!(differ, 0, "{what}: {differ} of {} outputs differ from one call", whole.len());
        let (_, want) = wgconv::reference::deform_conv2d(&x, &w, &off, mask, Some(&b), &p).unwrap();
        let stats = compare(&bands, &want);
        assert!(stats.passes(Tolerance::default()), "{what}: {stats}");
    }
    capped(&ctx, base, false);
}
