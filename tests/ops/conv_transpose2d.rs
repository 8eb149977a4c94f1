//! conv_transpose2d on the GPU against the f64 scatter reference and PyTorch goldens; bad
//! input; chunking; determinism.

use crate::common::{fresh_gpu, gpu};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv_transpose2d, conv_transpose2d_with_info, Activation, Algorithm, ConvTranspose2dParams, EngineConfig, Error,
    HostTensor, Padding, Tensor,
};

#[derive(Clone, Debug)]
struct T {
    x: [usize; 4],
    cout: usize,
    k: [usize; 2],
    p: ConvTranspose2dParams,
    bias: bool,
}

fn t(n: usize, cin: usize, hw: [usize; 2], cout: usize, k: [usize; 2]) -> T {
    T { x: [n, cin, hw[0], hw[1]], cout, k, p: ConvTranspose2dParams::default(), bias: true }
}

impl T {
    fn s(mut self, s: [u32; 2]) -> Self {
        self.p.stride = s;
        self
    }
    fn pad(mut self, p: Padding) -> Self {
        self.p.padding = p;
        self
    }
    fn op(mut self, o: [u32; 2]) -> Self {
        self.p.output_padding = o;
        self
    }
    fn d(mut self, d: [u32; 2]) -> Self {
        self.p.dilation = d;
        self
    }
    fn g(mut self, g: u32) -> Self {
        self.p.groups = g;
        self
    }
    fn nb(mut self) -> Self {
        self.bias = false;
        self
    }
    fn data(&self, seed: u64) -> (HostTensor, HostTensor, Option<HostTensor>) {
        let g = self.p.groups as usize;
        let x = HostTensor::random(&self.x, seed);
        let w = HostTensor::random(&[self.x[1], self.cout / g, self.k[0], self.k[1]], seed + 1);
        let b = self.bias.then(|| HostTensor::random(&[self.cout], seed + 2));
        (x, w, b)
    }
}

fn run(ctx: &wgconv::GpuContext, c: &T, seed: u64) -> (wgconv::verify::ErrorStats, wgconv::ConvTranspose2dInfo) {
    let (x, w, b) = c.data(seed);
    let (shape, r) = wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &c.p).unwrap();
    let xg = Tensor::from_host(ctx, &x).unwrap();
    let wg = Tensor::from_host(ctx, &w).unwrap();
    let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap());
    let (y, info) = conv_transpose2d_with_info(ctx, &xg, &wg, bg.as_ref(), &c.p).unwrap();
    assert_eq!(y.shape(), &shape);
    (compare(&y.to_vec(ctx).unwrap(), &r), info)
}

fn sym(h: u32, w: u32) -> Padding {
    Padding::Symmetric([h, w])
}

/// Strides 1–3 (3 with output_padding), dilation, groups, depthwise, non-square, N = 3,
/// explicit asymmetric padding, 1x1, kernels smaller than the stride.
fn cases() -> Vec<T> {
    vec![
        t(1, 3, [5, 5], 4, [3, 3]),
        t(1, 3, [5, 5], 4, [3, 3]).pad(sym(1, 1)),
        t(1, 4, [7, 7], 2, [4, 4]).s([2, 2]).pad(sym(1, 1)),
        t(2, 5, [6, 4], 3, [3, 3]).s([2, 2]).pad(sym(1, 1)).op([1, 1]),
        t(1, 3, [4, 5], 2, [3, 3]).s([3, 3]).op([2, 1]),
        t(3, 2, [3, 3], 3, [5, 5]).s([3, 3]).pad(sym(2, 2)).op([1, 2]),
        t(1, 2, [6, 6], 3, [3, 3]).d([2, 2]),
        t(1, 2, [6, 5], 3, [3, 2]).d([2, 3]).pad(sym(1, 1)).op([1, 2]),
        t(1, 4, [5, 5], 6, [3, 3]).g(2).pad(sym(1, 1)),
        t(2, 8, [4, 6], 4, [3, 3]).g(4).s([2, 2]),
        t(1, 6, [7, 7], 6, [3, 3]).g(6).pad(sym(1, 1)),
        t(1, 5, [5, 6], 10, [4, 4]).g(5).s([2, 2]).pad(sym(1, 1)),
        t(1, 3, [5, 7], 2, [2, 5]).s([1, 2]),
        t(1, 3, [7, 5], 2, [5, 2]).s([3, 1]).pad(sym(2, 0)),
        t(3, 3, [4, 4], 5, [3, 3]).s([2, 2]),
        t(1, 4, [6, 6], 4, [1, 1]),
        t(1, 4, [6, 6], 4, [1, 1]).s([2, 2]).op([1, 0]),
        t(1, 3, [5, 5], 4, [3, 3]).pad(Padding::Explicit { top: 2, left: 0, bottom: 0, right: 1 }),
        t(1, 3, [5, 5], 4, [2, 2]).s([3, 3]),
        t(1, 3, [1, 1], 4, [3, 3]),
        t(1, 3, [1, 1], 4, [3, 3]).s([2, 2]).pad(sym(1, 1)),
        t(2, 7, [9, 8], 5, [3, 3]).s([2, 2]).pad(sym(1, 1)).op([1, 1]).nb(),
        t(1, 17, [6, 5], 13, [3, 3]).s([2, 1]).pad(sym(1, 1)),
        t(1, 64, [4, 4], 70, [2, 2]).s([2, 2]),
        t(1, 3, [8, 3], 2, [3, 3])
            .s([2, 3])
            .d([2, 1])
            .pad(Padding::Explicit { top: 1, left: 2, bottom: 3, right: 0 })
            .op([1, 2]),
        t(2, 6, [5, 5], 9, [3, 3]).g(3).s([2, 2]).d([2, 2]).pad(sym(2, 2)).op([1, 1]),
    ]
}

/// Every case × both algorithms and Auto (which picks one per adapter and shape).
#[test]
fn random_cases_match_reference() {
    let Some(ctx) = gpu() else { return };
    let all = cases();
    assert!(all.len() >= 25);
    let mut failures = Vec::new();
    for algo in [Algorithm::Auto, Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
        for (i, c) in all.iter().enumerate() {
            let mut c = c.clone();
            c.p.algorithm = algo;
            let (s, info) = run(ctx, &c, 300 + i as u64);
            let expected = match algo {
                Algorithm::Auto => {
                    wgconv::ops::conv_transpose2d::auto_algorithm(ctx, &info.geometry, wgconv::DType::F32)
                }
                a => a,
            };
            assert_eq!(info.algorithm, expected);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("{} case {i} {c:?}: {s}", algo.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Winograd on the conv2d a stride-1 3×3 transposed conv equals (its weight read flipped, the
/// channel axes swapped, padding 2 − p): every applicable case of `cases()` and padding 0–2
/// (asymmetric too), groups, depthwise, a 1×1 input, many channels; the other shapes are
/// `InvalidParam` errors; `Auto` takes it for a large stride-1 3×3 one.
#[test]
fn winograd_runs_stride_1_3x3_transposed_convs() {
    let Some(ctx) = gpu() else { return };
    let mut all: Vec<T> = cases()
        .into_iter()
        .filter(|c| {
            c.p.validate(&c.x, &[c.x[1], c.cout / c.p.groups as usize, c.k[0], c.k[1]], None)
                .ok()
                .and_then(|g| g.as_conv())
                .is_some_and(|c| c.kh == 3 && c.kw == 3)
        })
        .collect();
    assert!(all.len() >= 5, "{}", all.len());
    all.push(t(2, 5, [7, 6], 3, [3, 3]).pad(sym(2, 2)));
    all.push(t(1, 6, [5, 9], 4, [3, 3]).pad(Padding::Explicit { top: 0, left: 2, bottom: 1, right: 0 }).nb());
    all.push(t(1, 130, [5, 6], 9, [3, 3]).pad(sym(1, 1)));
    let mut failures = Vec::new();
    for (i, c) in all.iter().enumerate() {
        let mut c = c.clone();
        c.p.algorithm = Algorithm::Winograd;
        let (s, info) = run(ctx, &c, 500 + i as u64);
        assert_eq!(info.algorithm, Algorithm::Winograd);
        if !s.passes(Tolerance::default()) {
            failures.push(format!("case {i} {c:?}: {s}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // stride 2, dilation 2, padding 3, a 4×4 kernel: the error names the algorithm
    for c in [
        t(1, 3, [5, 5], 4, [3, 3]).s([2, 2]),
        t(1, 3, [6, 6], 4, [3, 3]).d([2, 2]),
        t(1, 3, [9, 9], 4, [3, 3]).pad(sym(3, 3)),
        t(1, 3, [5, 5], 4, [4, 4]),
    ] {
        let p = ConvTranspose2dParams { algorithm: Algorithm::Winograd, ..c.p };
        let e = p.validate(&c.x, &[c.x[1], c.cout, c.k[0], c.k[1]], None).unwrap_err();
        assert!(matches!(e, Error::InvalidParam { name: "algorithm", .. }), "{e}");
    }
    // Auto: 128 input channels, 7×7 tiles
    let big = t(1, 128, [14, 14], 64, [3, 3]).pad(sym(1, 1));
    let (s, info) = run(ctx, &big, 9);
    assert!(s.passes(Tolerance::default()), "{s}");
    assert_eq!(info.algorithm, Algorithm::Winograd);
}

/// The output phases through every register blocking of the tiled GEMM (Auto runs the flat
/// kernel on CPU adapters and the 8×8 one on GPUs: each must stay right on every case).
#[test]
fn every_gemm_kernel_runs_the_phases() {
    let Some(ctx) = fresh_gpu() else { return };
    let mut failures = Vec::new();
    use wgconv::GemmKernel::*;
    for kernel in [Block4x4, Block8x8, Block16x16, Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            let mut c = c.clone();
            c.p.algorithm = Algorithm::ImplicitGemm;
            let (s, _) = run(&ctx, &c, 1300 + i as u64);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("{kernel:?} case {i} {c:?}: {s}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// f16 storage (f32 accumulation) on every case with the 8×8, shared 16×16 and flat GEMM kernels,
/// against the f64 reference of the f16-rounded inputs: outputs exactly f16-representable,
/// within one f16 rounding. gemm_col2im has no f16 path: an error before any GPU work.
#[test]
fn f16_storage_matches_reference() {
    use wgconv::DType;
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let tol = crate::common::F16_TOLERANCE;
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let mut failures = Vec::new();
    for kernel in [wgconv::GemmKernel::Block8x8, wgconv::GemmKernel::Block16x16, wgconv::GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            let (x, w, b) = c.data(700 + i as u64);
            let (x, w, b) = (x.rounded_to(DType::F16), w.rounded_to(DType::F16), b.map(|b| b.rounded_to(DType::F16)));
            let (shape, r) = wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &c.p).unwrap();
            let (y, info) = conv_transpose2d_with_info(&ctx, &h(&x), &h(&w), b.as_ref().map(h).as_ref(), &c.p)
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!((y.shape(), y.dtype(), info.algorithm), (&shape[..], DType::F16, Algorithm::ImplicitGemm));
            let out = y.to_vec(&ctx).unwrap();
            assert!(crate::common::all_f16(&out), "case {i}: not f16 values");
            let s = compare(&out, &r);
            if !s.passes(tol) {
                failures.push(format!("{kernel:?} case {i} {c:?}: {s}"));
            }
        }
    }
    // Winograd (f32 transforms, f16 loads and stores) on the stride-1 3x3 cases
    let mut winograd_runs = 0;
    for (i, c) in cases().iter().enumerate().filter(|(_, c)| c.p.stride == [1, 1] && c.k == [3, 3]) {
        let p = ConvTranspose2dParams { algorithm: Algorithm::Winograd, ..c.p };
        let (x, w, b) = c.data(800 + i as u64);
        let (x, w, b) = (x.rounded_to(DType::F16), w.rounded_to(DType::F16), b.map(|b| b.rounded_to(DType::F16)));
        let Ok((_, r)) = wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &p) else { continue };
        let Ok((y, info)) = conv_transpose2d_with_info(&ctx, &h(&x), &h(&w), b.as_ref().map(h).as_ref(), &p) else {
            continue; // not Winograd's (dilation, padding above 2)
        };
        assert_eq!((y.dtype(), info.algorithm), (DType::F16, Algorithm::Winograd));
        winograd_runs += 1;
        let out = y.to_vec(&ctx).unwrap();
        assert!(crate::common::all_f16(&out), "case {i}: not f16 values");
        let s = compare(&out, &r);
        if !s.passes(tol) {
            failures.push(format!("winograd case {i} {c:?}: {s}"));
        }
    }
    assert!(winograd_runs >= 4, "{winograd_runs} winograd cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let c = &cases()[2];
    let (x, w, _) = c.data(1);
    let p = ConvTranspose2dParams { algorithm: Algorithm::GemmCol2im, ..c.p };
    let subs = ctx.submissions();
    let e = conv_transpose2d(&ctx, &h(&x), &h(&w), None, &p).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { name: "algorithm", .. }), "{e}");
    let e = conv_transpose2d(&ctx, &h(&x), &Tensor::from_host(&ctx, &w).unwrap(), None, &c.p).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch(_)), "{e}");
    assert_eq!(ctx.submissions(), subs);
}

/// The phase decomposition's corners: strides larger than the kernel (phases with no tap:
/// bias only), dilation sharing a factor with the stride (gcd > 1: taps step by sh/gcd, some
/// phases empty), kernels not a multiple of the step (phantom taps), outputs smaller than the
/// stride (phases with no pixel), and the same with groups and a batch.
#[test]
fn output_phases_cover_every_tap_exactly_once() {
    let Some(ctx) = gpu() else { return };
    let corner = [
        t(1, 3, [4, 4], 2, [2, 2]).s([4, 4]),
        t(1, 3, [4, 5], 2, [3, 3]).s([5, 3]).op([3, 1]),
        t(1, 2, [5, 5], 3, [3, 3]).s([2, 2]).d([2, 2]),
        t(1, 2, [5, 6], 3, [4, 3]).s([4, 6]).d([2, 3]).pad(sym(1, 2)).op([1, 2]),
        t(1, 2, [5, 5], 3, [3, 3]).s([3, 3]).d([2, 2]).op([2, 1]),
        t(2, 4, [3, 4], 6, [5, 3]).g(2).s([2, 3]).d([3, 2]).pad(Padding::Explicit {
            top: 3,
            left: 0,
            bottom: 1,
            right: 2,
        }),
        t(1, 3, [1, 1], 2, [1, 1]).s([3, 3]),
        t(3, 6, [2, 3], 6, [2, 2]).g(6).s([3, 2]).d([1, 2]).op([2, 1]),
    ];
    for (i, c) in corner.iter().enumerate() {
        for algo in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
            let mut c = c.clone();
            c.p.algorithm = algo;
            let (s, _) = run(ctx, &c, 900 + i as u64);
            assert!(s.passes(Tolerance::default()), "{} case {i} {c:?}: {s}", algo.name());
        }
    }
}

/// Auto: the output phases on every adapter and dtype, but col2im for few output channels
/// from many input channels (the grad_input of a conv from an RGB image: r50_stem's backward
/// ran its phases at 24× the forward), f32 only, and only where col2im can run: within the
/// loop budget, its columns within the workspace in one call or (NCHW) in bands of rows.
#[test]
fn auto_picks_col2im_for_few_output_channels_and_else_the_output_phases() {
    use wgconv::ops::conv_transpose2d::{auto_algorithm, col2im_pays};
    use wgconv::DType;
    let Some(ctx) = fresh_gpu() else { return };
    let dcgan = ConvTranspose2dParams { stride: [2, 2], padding: sym(1, 1), ..Default::default() };
    let g = dcgan.validate(&[1, 256, 14, 14], &[256, 128, 4, 4], None).unwrap();
    let odd = dcgan.validate(&[1, 8, 15, 15], &[8, 64, 4, 4], None).unwrap();
    for (g, dtype) in [(&g, DType::F32), (&g, DType::F16), (&odd, DType::F32)] {
        assert_eq!(auto_algorithm(&ctx, g, dtype), Algorithm::ImplicitGemm);
    }
    let c = t(1, 8, [15, 15], 64, [4, 4]).s([2, 2]).pad(sym(1, 1));
    let (s, info) = run(&ctx, &c, 77);
    assert!(s.passes(Tolerance::default()), "{s}");
    assert_eq!(info.algorithm, Algorithm::ImplicitGemm);
    // r50_stem's grad_input: dY [1, 64, 112, 112] into 3 channels, 7×7, stride 2
    let stem =
        ConvTranspose2dParams { stride: [2, 2], padding: sym(3, 3), output_padding: [1, 1], ..Default::default() };
    let gi = stem.validate(&[1, 64, 112, 112], &[64, 3, 7, 7], None).unwrap();
    assert_eq!(auto_algorithm(&ctx, &gi, DType::F32), Algorithm::GemmCol2im);
    assert_eq!(auto_algorithm(&ctx, &gi, DType::F16), Algorithm::ImplicitGemm, "col2im has no f16 kernels");
    for (ci, co, groups, want) in [
        (32, 16, 1, Algorithm::GemmCol2im),
        (31, 16, 1, Algorithm::ImplicitGemm),
        (64, 17, 1, Algorithm::ImplicitGemm),
        (4, 4, 1, Algorithm::GemmCol2im),
        (8, 5, 1, Algorithm::ImplicitGemm),
        (10, 5, 1, Algorithm::GemmCol2im),
        (64, 64, 64, Algorithm::GemmCol2im),
        (128, 64, 4, Algorithm::GemmCol2im),
        (128, 68, 4, Algorithm::ImplicitGemm),
    ] {
        let g = ConvTranspose2dParams { groups, ..stem }
            .validate(&[1, ci, 20, 20], &[ci, co / groups as usize, 7, 7], None)
            .unwrap();
        assert_eq!(auto_algorithm(&ctx, &g, DType::F32), want, "{ci} → {co} channels, {groups} groups");
        assert_eq!(col2im_pays(ci as u32 / groups, co as u32 / groups), want == Algorithm::GemmCol2im);
    }
    // col2im's gather seeks the first landing tap per axis (step = 2 turns each), then loops
    // over the landing taps, ⌈7/2⌉·(⌈7/2⌉ + 1): 24 turns; past the loop budget, the phases
    ctx.set_config(EngineConfig { loop_budget: 2 + 2 + 4 * 5 - 1, ..ctx.config() });
    assert_eq!(auto_algorithm(&ctx, &gi, DType::F32), Algorithm::ImplicitGemm);
    ctx.set_config(EngineConfig { loop_budget: 2 + 2 + 4 * 5, ..ctx.config() });
    assert_eq!(auto_algorithm(&ctx, &gi, DType::F32), Algorithm::GemmCol2im);
}

/// A 1×1 stride-1 unpadded transposed conv (conv2d_backward's grad_input of every 1×1 conv):
/// `Auto` runs gemm_col2im, whose column matrix is then the output itself: one GEMM launch
/// into the output, no workspace, no col2im pass, the bias and activation in the GEMM's
/// epilogue; groups, several images, no bias, relu6. A padded or strided 1×1 keeps its
/// col2im pass.
#[test]
fn pointwise_transposed_convs_are_one_gemm_into_the_output() {
    let Some(ctx) = gpu() else { return };
    let mut relu6 = t(2, 5, [6, 3], 7, [1, 1]);
    relu6.p.activation = Activation::Relu6;
    for c in [t(2, 8, [5, 7], 12, [1, 1]), t(1, 6, [4, 4], 9, [1, 1]).g(3), t(3, 16, [3, 5], 4, [1, 1]).nb(), relu6] {
        let (s, info) = run(ctx, &c, 5);
        assert!(s.passes(Tolerance::default()), "{c:?}: {s}");
        assert_eq!(info.algorithm, Algorithm::GemmCol2im, "{c:?}");
        assert_eq!((info.launches, info.workspace_bytes), (1, 0), "{c:?}");
    }
    for c in [t(1, 4, [6, 6], 4, [1, 1]).pad(sym(1, 0)), t(1, 4, [6, 6], 4, [1, 1]).s([2, 2]).op([1, 0])] {
        let mut c = c;
        c.p.algorithm = Algorithm::GemmCol2im;
        let (s, info) = run(ctx, &c, 6);
        assert!(s.passes(Tolerance::default()), "{c:?}: {s}");
        assert_eq!(info.launches, 2, "{c:?}: GEMM then col2im");
        assert!(info.workspace_bytes > 0);
    }
    // a sum of 65536 terms (K past Mesa 22's loop limit: K in passes), and NaN / ∞ where the
    // reference has them (a NaN pixel, an infinite weight; bias and relu after)
    let (s, info) = run(ctx, &t(1, 65536, [2, 2], 2, [1, 1]), 8);
    assert!(s.passes(Tolerance::default()) && info.launches >= 1, "65536 terms: {s}");
    let mut c = t(2, 3, [4, 5], 4, [1, 1]);
    c.p.activation = Activation::Relu;
    let (mut x, mut w, b) = c.data(9);
    x.data[7] = f32::NAN;
    w.data[5] = f32::INFINITY;
    let (_, want) = wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &c.p).unwrap();
    let up = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    let (y, info) = conv_transpose2d_with_info(ctx, &up(&x), &up(&w), b.as_ref().map(up).as_ref(), &c.p).unwrap();
    assert_eq!((info.algorithm, info.launches), (Algorithm::GemmCol2im, 1));
    let specials = want.iter().filter(|v| !v.is_finite()).count();
    assert!(specials > 0 && specials < want.len(), "{specials} special values");
    let s = compare(&y.to_vec(ctx).unwrap(), &want);
    assert!(s.passes(Tolerance::default()), "NaN and ∞ as the reference: {s}");
    // beyond one binding: batch pieces (6 images of 1 KiB) and chunks of output channels (a
    // 48 × 40 weight of 7.5 KiB), each part one GEMM into its part of the output
    let Some(small) = fresh_gpu() else { return };
    small.set_config(EngineConfig { max_binding_size: 2 << 10, ..small.config() });
    for c in [t(6, 4, [8, 8], 4, [1, 1]), t(1, 48, [3, 3], 40, [1, 1])] {
        let (s, info) = run(&small, &c, 7);
        assert!(s.passes(Tolerance::default()), "{c:?}: {s}");
        assert_eq!(info.algorithm, Algorithm::GemmCol2im, "{c:?}");
        assert!(info.launches > 1, "{c:?}: split into parts");
    }
}

/// gemm_col2im with one image's columns beyond the workspace budget runs in bands of output
/// rows (as an image beyond one binding does), each band's columns within the budget,
/// bit-identical to one call; a channels-last call, which cannot band, runs the output
/// phases under Auto and is refused with the columns' sizes when col2im is forced.
#[test]
fn col2im_columns_beyond_the_workspace_run_in_row_bands_bit_identically() {
    let Some(ctx) = fresh_gpu() else { return };
    let base = ctx.config();
    let mut c = t(2, 32, [20, 18], 3, [7, 7]).s([2, 2]).pad(sym(3, 3)).op([1, 1]);
    let (x, w, b) = c.data(5);
    let (xg, wg) = (Tensor::from_host(&ctx, &x).unwrap(), Tensor::from_host(&ctx, &w).unwrap());
    let bg = Tensor::from_host(&ctx, b.as_ref().unwrap()).unwrap();
    let (_, want) = wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &c.p).unwrap();
    // one input row's columns: Cout·kh·kw·W floats; a band of stride-2 7×7 rows needs 7
    let row = (3 * 7 * 7 * 18 * 4) as u64;
    let columns = 20 * row;
    let mut whole = None;
    for budget in [base.workspace_budget, columns, 10 * row, 7 * row, 7 * row - 4] {
        ctx.set_config(EngineConfig { workspace_budget: budget, ..base });
        let plan =
            wgconv::plan_conv_transpose2d(&ctx, &x.shape, &w.shape, Some(&[3]), wgconv::DType::F32, &c.p).unwrap();
        if budget < 7 * row {
            // no band's columns fit: Auto runs the phases, forced col2im is refused
            assert_eq!(plan.algorithm, Algorithm::ImplicitGemm, "{plan}");
            let forced = ConvTranspose2dParams { algorithm: Algorithm::GemmCol2im, ..c.p };
            let e = wgconv::plan_conv_transpose2d(&ctx, &x.shape, &w.shape, None, wgconv::DType::F32, &forced);
            assert!(matches!(&e, Err(Error::TooLarge(m)) if m.contains("workspace")), "{e:?}");
            continue;
        }
        assert_eq!(plan.algorithm, Algorithm::GemmCol2im, "{plan}");
        assert_eq!(plan.row_bands > 1, budget < columns, "budget {budget}: {plan}");
        let (y, info) = conv_transpose2d_with_info(&ctx, &xg, &wg, Some(&bg), &c.p).unwrap();
        assert_eq!(info, plan.info());
        let y = y.to_vec(&ctx).unwrap();
        let s = compare(&y, &want);
        assert!(s.passes(Tolerance::default()), "budget {budget}: {s}");
        let whole = whole.get_or_insert_with(|| y.clone());
        let differ = whole.iter().zip(&y).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(differ, 0, "budget {budget}: {differ} outputs differ from one call");
    }
    // channels-last cannot be cut into bands: Auto runs the phases, forced col2im is refused
    let layouts = wgconv::ops::conv2d::Conv2dLayouts {
        input: wgconv::Layout::ChannelsLast,
        output: wgconv::Layout::ChannelsLast,
    };
    let plan_nhwc = |p: &ConvTranspose2dParams| {
        wgconv::plan_conv_transpose2d_with_layouts(&ctx, &x.shape, &w.shape, None, wgconv::DType::F32, layouts, p)
    };
    assert_eq!(plan_nhwc(&c.p).unwrap().algorithm, Algorithm::ImplicitGemm);
    c.p.algorithm = Algorithm::GemmCol2im;
    let e = plan_nhwc(&c.p).unwrap_err();
    assert!(matches!(&e, Error::TooLarge(m) if m.contains("column matrix")), "{e}");
    ctx.set_config(base);
}

#[test]
fn fused_activation_and_bias() {
    let Some(ctx) = gpu() else { return };
    for act in [Activation::Relu, Activation::LeakyRelu(0.3), Activation::Gelu, Activation::Tanh] {
        for algo in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
            let mut c = t(1, 4, [5, 5], 3, [4, 4]).s([2, 2]).pad(sym(1, 1));
            c.p.activation = act;
            c.p.algorithm = algo;
            let (s, _) = run(ctx, &c, 9);
            assert!(s.passes(Tolerance::default()), "{act:?} {}: {s}", algo.name());
        }
    }
}

/// gemm_col2im chunks its workspace over images; the phase GEMM needs none, so a budget too
/// small for one image's columns is no obstacle to it.
#[test]
fn small_budget_splits_over_images() {
    let Some(ctx) = fresh_gpu() else { return };
    let mut c = t(5, 3, [4, 4], 2, [3, 3]).s([2, 2]);
    c.p.algorithm = Algorithm::GemmCol2im;
    let per_image = 2 * 9 * 16 * 4;
    ctx.set_config(EngineConfig { workspace_budget: 2 * per_image, ..ctx.config() });
    let (s, info) = run(&ctx, &c, 3);
    assert!(s.passes(Tolerance::default()), "{s}");
    assert_eq!((info.chunks, info.images_per_chunk), (3, 2));
    ctx.set_config(EngineConfig { workspace_budget: per_image - 4, ..ctx.config() });
    let (x, w, _) = c.data(1);
    let e = conv_transpose2d(
        &ctx,
        &Tensor::from_host(&ctx, &x).unwrap(),
        &Tensor::from_host(&ctx, &w).unwrap(),
        None,
        &c.p,
    )
    .unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    c.p.algorithm = Algorithm::Auto;
    let (s, info) = run(&ctx, &c, 3);
    assert!(s.passes(Tolerance::default()), "{s}");
    assert_eq!((info.algorithm, info.chunks, info.workspace_bytes), (Algorithm::ImplicitGemm, 1, 0));
}

#[test]
fn deterministic() {
    let Some(ctx) = gpu() else { return };
    for algo in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
        let mut c = t(2, 16, [7, 7], 8, [4, 4]).s([2, 2]).pad(sym(1, 1));
        c.p.algorithm = algo;
        let (x, w, b) = c.data(4);
        let (xg, wg) = (Tensor::from_host(ctx, &x).unwrap(), Tensor::from_host(ctx, &w).unwrap());
        let bg = Tensor::from_host(ctx, b.as_ref().unwrap()).unwrap();
        let first = conv_transpose2d(ctx, &xg, &wg, Some(&bg), &c.p).unwrap().to_vec(ctx).unwrap();
        for _ in 0..3 {
            let again = conv_transpose2d(ctx, &xg, &wg, Some(&bg), &c.p).unwrap().to_vec(ctx).unwrap();
            assert!(first.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", algo.name());
        }
    }
}

#[test]
fn invalid_parameters() {
    let d = ConvTranspose2dParams::default();
    let x = [1, 4, 5, 5];
    let w = [4, 3, 3, 3];
    assert!(d.validate(&x, &w, Some(&[3])).is_ok());
    let v = |p: ConvTranspose2dParams, x: &[usize], w: &[usize], b: Option<&[usize]>| p.validate(x, w, b).unwrap_err();
    assert!(matches!(v(d, &x[1..], &w, None), Error::Rank { what: "input", .. }));
    assert!(matches!(v(d, &x, &[5, 3, 3, 3], None), Error::ChannelMismatch(_)));
    assert!(matches!(v(ConvTranspose2dParams { groups: 3, ..d }, &x, &w, None), Error::Groups(_)));
    assert!(matches!(v(ConvTranspose2dParams { groups: 0, ..d }, &x, &w, None), Error::Groups(_)));
    assert!(matches!(v(d, &x, &w, Some(&[6])), Error::BiasShape { expected: 3, .. }));
    assert!(matches!(
        v(ConvTranspose2dParams { stride: [0, 1], ..d }, &x, &w, None),
        Error::InvalidParam { name: "stride", .. }
    ));
    assert!(matches!(
        v(ConvTranspose2dParams { dilation: [1, 0], ..d }, &x, &w, None),
        Error::InvalidParam { name: "dilation", .. }
    ));
    assert!(matches!(
        v(ConvTranspose2dParams { padding: Padding::Same, ..d }, &x, &w, None),
        Error::InvalidParam { name: "padding", .. }
    ));
    // output_padding must be < max(stride, dilation): 1 with stride 1, dilation 1 is not.
    assert!(matches!(
        v(ConvTranspose2dParams { output_padding: [1, 0], ..d }, &x, &w, None),
        Error::InvalidParam { name: "output_padding", .. }
    ));
    assert!(ConvTranspose2dParams { output_padding: [1, 0], dilation: [2, 1], ..d }.validate(&x, &w, None).is_ok());
    for algo in [Algorithm::Im2colGemm, Algorithm::Gemm1x1, Algorithm::Depthwise] {
        assert!(matches!(
            v(ConvTranspose2dParams { algorithm: algo, ..d }, &x, &w, None),
            Error::InvalidParam { name: "algorithm", .. }
        ));
    }
    // Padding that crops everything.
    assert!(matches!(
        v(ConvTranspose2dParams { padding: Padding::Symmetric([4, 0]), ..d }, &x, &w, None),
        Error::EmptyOutput(_)
    ));
}

#[test]
fn pytorch_golden_cases() {
    let cases = crate::common::goldens("conv_transpose2d");
    assert!(cases.len() >= 6);
    for c in cases {
        let name = &c.name;
        let p = ConvTranspose2dParams {
            stride: c.pair("stride"),
            padding: c.padding(),
            output_padding: c.pair("output_padding"),
            dilation: c.pair("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w) = (c.load("input"), c.load("weight"));
        let b = c.flag("bias").then(|| c.load("bias"));
        let e64 = c.expected("output");
        let (shape, r) = wgconv::reference::conv_transpose2d(&x, &w, b.as_ref(), &p).unwrap();
        assert_eq!(shape.to_vec(), c.load("output").shape, "{name}");
        let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        assert!(compare(&r32, &e64).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{name}: reference vs torch");
        let Some(ctx) = gpu() else { continue };
        let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap());
        let (xg, wg) = (Tensor::from_host(ctx, &x).unwrap(), Tensor::from_host(ctx, &w).unwrap());
        for algorithm in [Algorithm::ImplicitGemm, Algorithm::GemmCol2im] {
            let p = ConvTranspose2dParams { algorithm, ..p };
            let y = conv_transpose2d(ctx, &xg, &wg, bg.as_ref(), &p).unwrap().to_vec(ctx).unwrap();
            let s = compare(&y, &e64);
            assert!(s.passes(Tolerance::default()), "{name} {}: GPU vs torch: {s}", algorithm.name());
        }
    }
}

/// The plan of a call is made before any GPU object, lists exactly the launches the call
/// records (a mismatch is an error of the call), and reports what the call reports: the
/// output phases as one GEMM, `GemmCol2im` as a GEMM and a gather per chunk of images.
#[test]
fn plan_lists_the_launches_before_any_gpu_object() {
    let Some(ctx) = fresh_gpu() else { return };
    let per_image = 2 * 9 * 16 * 4;
    ctx.set_config(EngineConfig { workspace_budget: 2 * per_image, ..ctx.config() });
    let mut col = t(5, 3, [4, 4], 2, [3, 3]).s([2, 2]);
    col.p.algorithm = Algorithm::GemmCol2im;
    let phases = t(2, 4, [5, 6], 6, [3, 3]).s([2, 2]).pad(sym(1, 1)).g(2);
    // col2im: 3 chunks of a GEMM and a gather; the phases: their GEMM and the border pass
    for (i, (c, launches)) in [(col, 3 * 2), (phases, 2)].iter().enumerate() {
        let (x, w, b) = c.data(i as u64);
        let (pipes, subs) = (ctx.pipelines_compiled(), ctx.submissions());
        let plan = wgconv::plan_conv_transpose2d(
            &ctx,
            &x.shape,
            &w.shape,
            b.as_ref().map(|b| b.shape.as_slice()),
            wgconv::DType::F32,
            &c.p,
        )
        .unwrap();
        assert_eq!((ctx.pipelines_compiled(), ctx.submissions()), (pipes, subs), "planning built or ran nothing");
        assert_eq!(plan.steps.len(), *launches, "{c:?}\n{plan}");
        let (s, info) = run(&ctx, c, i as u64);
        assert!(s.passes(Tolerance::default()), "{s}");
        assert_eq!(info, plan.info(), "{c:?}");
    }
}
