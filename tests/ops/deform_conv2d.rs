//! deform_conv2d against the f64 reference written from torchvision's definition, torchvision
//! goldens, and its two anchors: zero offsets with mask 1 equal conv2d, integer offsets equal a
//! shifted conv2d.

use crate::common::{fresh_gpu, gpu};
use wgconv::verify::{compare, SplitMix64, Tolerance};
use wgconv::{
    conv2d, deform_conv2d, Algorithm, Conv2dParams, DeformConv2dParams, EngineConfig, Error, GemmKernel, GpuContext,
    HostTensor, Padding, Tensor,
};

#[derive(Clone, Debug)]
struct D {
    x: [usize; 4],
    cout: usize,
    k: [usize; 2],
    og: usize,
    p: DeformConv2dParams,
    mask: bool,
    bias: bool,
    /// Offsets uniform in [−scale, scale]; `integer` rounds them.
    scale: f32,
    integer: bool,
}

fn d(n: usize, cin: usize, hw: [usize; 2], cout: usize, k: [usize; 2]) -> D {
    D {
        x: [n, cin, hw[0], hw[1]],
        cout,
        k,
        og: 1,
        p: DeformConv2dParams::default(),
        mask: true,
        bias: true,
        scale: 1.5,
        integer: false,
    }
}

impl D {
    fn pad(mut self, p: Padding) -> Self {
        self.p.padding = p;
        self
    }
    fn s(mut self, s: [u32; 2]) -> Self {
        self.p.stride = s;
        self
    }
    fn dil(mut self, dl: [u32; 2]) -> Self {
        self.p.dilation = dl;
        self
    }
    fn g(mut self, g: u32) -> Self {
        self.p.groups = g;
        self
    }
    fn og(mut self, og: usize) -> Self {
        self.og = og;
        self
    }
    fn v1(mut self) -> Self {
        self.mask = false;
        self
    }
    fn scale(mut self, s: f32) -> Self {
        self.scale = s;
        self
    }
    fn int(mut self) -> Self {
        self.integer = true;
        self
    }
    fn data(&self, seed: u64) -> (HostTensor, HostTensor, HostTensor, Option<HostTensor>, Option<HostTensor>) {
        let x = HostTensor::random(&self.x, seed);
        let w = HostTensor::random(&[self.cout, self.x[1] / self.p.groups as usize, self.k[0], self.k[1]], seed + 1);
        let g = self.p.validate(&x.shape, &w.shape, None).unwrap();
        let (ho, wo, taps) = (g.h_out as usize, g.w_out as usize, self.k[0] * self.k[1]);
        let mut rng = SplitMix64::new(seed + 2);
        let n_off = self.x[0] * 2 * self.og * taps * ho * wo;
        let off: Vec<f32> = (0..n_off)
            .map(|_| {
                let v = (rng.next_f32() * 2.0 - 1.0) * self.scale;
                if self.integer {
                    v.round()
                } else {
                    v
                }
            })
            .collect();
        let offset = HostTensor::new(&[self.x[0], 2 * self.og * taps, ho, wo], off).unwrap();
        let mask = self.mask.then(|| {
            let m: Vec<f32> = (0..self.x[0] * self.og * taps * ho * wo).map(|_| rng.next_f32()).collect();
            HostTensor::new(&[self.x[0], self.og * taps, ho, wo], m).unwrap()
        });
        let b = self.bias.then(|| HostTensor::random(&[self.cout], seed + 3));
        (x, w, offset, mask, b)
    }
}

fn gpu_run(
    ctx: &GpuContext,
    x: &HostTensor,
    w: &HostTensor,
    o: &HostTensor,
    m: Option<&HostTensor>,
    b: Option<&HostTensor>,
    p: &DeformConv2dParams,
) -> Vec<f32> {
    let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
    let (mg, bg) = (m.map(t), b.map(t));
    deform_conv2d(ctx, &t(x), &t(w), &t(o), mg.as_ref(), bg.as_ref(), p).unwrap().to_vec(ctx).unwrap()
}

/// v1 and v2, G_off 1/2/4, groups 1/2, stride 2, dilation 2, padding, non-square kernels,
/// N = 2, offsets far enough to leave the image, small ones around borders, integers.
fn cases() -> Vec<D> {
    let sym = |h, w| Padding::Symmetric([h, w]);
    vec![
        d(1, 3, [6, 6], 4, [3, 3]).pad(sym(1, 1)),
        d(1, 3, [6, 6], 4, [3, 3]).pad(sym(1, 1)).v1(),
        d(2, 4, [7, 5], 3, [3, 3]).pad(sym(1, 1)).og(2),
        d(1, 4, [8, 8], 4, [3, 3]).og(4).scale(0.5),
        d(1, 4, [6, 7], 6, [3, 3]).g(2).pad(sym(1, 1)),
        d(1, 8, [6, 6], 4, [3, 3]).g(2).og(4).pad(sym(1, 1)).v1(),
        d(1, 3, [11, 11], 2, [3, 3]).s([2, 2]).pad(sym(1, 1)),
        d(2, 3, [11, 9], 2, [3, 3]).dil([2, 2]).pad(sym(2, 2)),
        d(1, 2, [9, 10], 3, [2, 3]).pad(sym(1, 0)),
        d(1, 2, [9, 10], 3, [3, 1]).s([2, 1]),
        d(1, 3, [6, 6], 2, [3, 3]).pad(sym(1, 1)).scale(8.0),
        d(1, 3, [6, 6], 2, [3, 3]).pad(sym(1, 1)).scale(8.0).v1(),
        d(1, 3, [5, 5], 2, [3, 3]).scale(1.0).int(),
        d(2, 2, [6, 5], 3, [2, 2]).pad(sym(1, 1)).scale(2.0).int(),
        d(1, 5, [4, 4], 3, [3, 3]).pad(sym(1, 1)).scale(0.25),
        d(1, 1, [3, 3], 1, [3, 3]).pad(sym(1, 1)).scale(3.0),
        d(1, 3, [1, 1], 2, [3, 3]).pad(sym(1, 1)),
        d(1, 6, [7, 7], 6, [3, 3]).g(6).og(6).pad(sym(1, 1)),
        d(1, 6, [7, 7], 12, [3, 3]).g(3).og(2).pad(sym(1, 1)).s([2, 2]),
        d(2, 4, [8, 6], 4, [3, 3]).pad(Padding::Explicit { top: 2, left: 0, bottom: 1, right: 1 }).og(2),
        d(1, 16, [9, 9], 33, [3, 3]).pad(sym(1, 1)),
        d(1, 3, [10, 7], 2, [5, 3]).pad(sym(2, 1)).dil([1, 2]).s([1, 2]),
        d(1, 3, [6, 6], 2, [1, 1]).scale(1.5),
        d(1, 4, [6, 6], 4, [3, 3]).og(2).s([3, 3]).pad(sym(1, 1)).scale(4.0),
        d(2, 2, [5, 5], 2, [3, 3]).pad(sym(1, 1)).v1().int().scale(5.0),
        d(1, 2, [7, 7], 2, [3, 3]).pad(sym(3, 3)).dil([3, 3]).scale(2.0),
    ]
}

#[test]
fn random_cases_match_reference() {
    let Some(ctx) = gpu() else { return };
    let all = cases();
    assert!(all.len() >= 25);
    let mut failures = Vec::new();
    for (i, c) in all.iter().enumerate() {
        let (x, w, o, m, b) = c.data(500 + i as u64);
        let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &c.p).unwrap();
        for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
            let p = DeformConv2dParams { algorithm, ..c.p };
            let y = gpu_run(ctx, &x, &w, &o, m.as_ref(), b.as_ref(), &p);
            let s = compare(&y, &r);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("case {i} {} {c:?}: {s}", algorithm.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The implicit kernel under every register blocking of the tiled GEMM: each entry point
/// walks K in its own slices, so the B loader's cached per-tap sampling (refreshed when a
/// row's tap or offset group changes) is hit and missed in a different pattern by each.
#[test]
fn every_gemm_kernel_matches_reference() {
    let Some(ctx) = fresh_gpu() else { return };
    let mut failures = Vec::new();
    for kernel in [GemmKernel::Block4x4, GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            let (x, w, o, m, b) = c.data(900 + i as u64);
            let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &c.p).unwrap();
            let p = DeformConv2dParams { algorithm: Algorithm::ImplicitGemm, ..c.p };
            let s = compare(&gpu_run(&ctx, &x, &w, &o, m.as_ref(), b.as_ref(), &p), &r);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("{kernel:?} case {i} {c:?}: {s}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Auto per adapter: on a CPU adapter the im2col path (its dense GEMM runs the flat kernel),
/// the implicit kernel when the engine's GEMM kernel is forced to another or on GPUs; and the
/// info of a run reports what Auto ran.
#[test]
fn auto_picks_per_adapter_and_shape() {
    use wgconv::ops::deform_conv2d::auto_algorithm;
    let Some(ctx) = fresh_gpu() else { return };
    let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let p = DeformConv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let dg =
        p.validate_deform(&[1, 64, 56, 56], &[64, 64, 3, 3], &[1, 18, 56, 56], Some(&[1, 9, 56, 56]), None).unwrap();
    let expected = if cpu { Algorithm::Im2colGemm } else { Algorithm::ImplicitGemm };
    assert_eq!(auto_algorithm(&ctx, &dg.conv), expected);
    let c = &cases()[2];
    let (x, w, o, m, b) = c.data(77);
    let t = |h: &HostTensor| Tensor::from_host(&ctx, h).unwrap();
    let (mg, bg) = (m.as_ref().map(t), b.as_ref().map(t));
    let g = c.p.validate_deform(&x.shape, &w.shape, &o.shape, m.as_ref().map(|m| &m.shape[..]), None).unwrap();
    let y = Tensor::empty(&ctx, &g.conv.output_shape()).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let info =
        wgconv::deform_conv2d_into(&ctx, &mut enc, &t(&x), &t(&w), &t(&o), mg.as_ref(), bg.as_ref(), &c.p, &y).unwrap();
    ctx.submit(enc).unwrap();
    assert_eq!(info.algorithm, auto_algorithm(&ctx, &g.conv));
    let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &c.p).unwrap();
    let s = compare(&y.to_vec(&ctx).unwrap(), &r);
    assert!(s.passes(Tolerance::default()), "{s}");
    ctx.set_config(EngineConfig { gemm_kernel: GemmKernel::Block16x16, ..ctx.config() });
    assert_eq!(auto_algorithm(&ctx, &dg.conv), Algorithm::ImplicitGemm);

    // The im2col path over several chunks of output pixels (a budget of 5 columns), with
    // offset groups and a batch: every chunk samples its own pixels.
    let c = &cases()[19];
    let (x, w, o, m, b) = c.data(78);
    let (mg, bg) = (m.as_ref().map(t), b.as_ref().map(t));
    let g = c.p.validate_deform(&x.shape, &w.shape, &o.shape, m.as_ref().map(|m| &m.shape[..]), None).unwrap();
    let rows = (g.conv.c_in * g.conv.kh * g.conv.kw) as u64;
    ctx.set_config(EngineConfig { workspace_budget: rows * 4 * 5, ..ctx.config() });
    let y = Tensor::empty(&ctx, &g.conv.output_shape()).unwrap();
    let p = DeformConv2dParams { algorithm: Algorithm::Im2colGemm, ..c.p };
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let info =
        wgconv::deform_conv2d_into(&ctx, &mut enc, &t(&x), &t(&w), &t(&o), mg.as_ref(), bg.as_ref(), &p, &y).unwrap();
    ctx.submit(enc).unwrap();
    assert!(info.chunks > 4, "{info:?}");
    let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &c.p).unwrap();
    let s = compare(&y.to_vec(&ctx).unwrap(), &r);
    assert!(s.passes(Tolerance::default()), "{s}");
}

/// Zero offsets with mask 1 sample the regular grid: exactly conv2d (to 1e-6).
#[test]
fn zero_offsets_equal_conv2d() {
    let Some(ctx) = gpu() else { return };
    for c in
        [d(2, 4, [7, 6], 5, [3, 3]).pad(Padding::Symmetric([1, 1])).og(2), d(1, 6, [9, 9], 4, [3, 2]).g(2).s([2, 2])]
    {
        let (x, w, o, m, b) = c.data(1);
        let zeros = HostTensor::new(&o.shape, vec![0.0; o.data.len()]).unwrap();
        let ones = m.map(|m| HostTensor::new(&m.shape, vec![1.0; m.data.len()]).unwrap());
        let y = gpu_run(ctx, &x, &w, &zeros, ones.as_ref(), b.as_ref(), &c.p);
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let bg = b.as_ref().map(t);
        let yc = conv2d(ctx, &t(&x), &t(&w), bg.as_ref(), &Conv2dParams { algorithm: Algorithm::Auto, ..c.p })
            .unwrap()
            .to_vec(ctx)
            .unwrap();
        let max = y.iter().zip(&yc).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-6, "max |deform − conv2d| = {max}");
    }
}

/// One integer offset (dy, dx) everywhere shifts the sampling grid: conv2d with the padding
/// moved by (dy, dx), computed by the reference.
#[test]
fn integer_offsets_equal_a_shifted_conv2d() {
    let Some(ctx) = gpu() else { return };
    let c = d(1, 3, [8, 9], 4, [3, 3]).pad(Padding::Symmetric([2, 2]));
    let (x, w, o, _, b) = c.data(2);
    for (dy, dx) in [(1i32, -2i32), (-1, 0), (2, 2)] {
        let taps = 9;
        let hw = o.shape[2] * o.shape[3];
        let mut off = vec![0f32; o.data.len()];
        for t in 0..taps {
            off[2 * t * hw..(2 * t + 1) * hw].fill(dy as f32);
            off[(2 * t + 1) * hw..(2 * t + 2) * hw].fill(dx as f32);
        }
        let o = HostTensor::new(&o.shape, off).unwrap();
        let y = gpu_run(ctx, &x, &w, &o, None, b.as_ref(), &c.p);
        let shifted = Conv2dParams {
            padding: Padding::Explicit {
                top: (2 - dy) as u32,
                left: (2 - dx) as u32,
                bottom: (2 + dy) as u32,
                right: (2 + dx) as u32,
            },
            ..Default::default()
        };
        let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &shifted).unwrap();
        let s = compare(&y, &r);
        assert!(s.passes(Tolerance::default()), "shift ({dy}, {dx}): {s}");
    }
}

#[test]
fn bad_shapes_are_clear_errors() {
    let p = DeformConv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
    let (x, w) = ([1, 4, 6, 6], [3, 4, 3, 3]);
    assert!(p.validate_deform(&x, &w, &[1, 18, 6, 6], Some(&[1, 9, 6, 6]), Some(&[3])).is_ok());
    let e = |o: &[usize], m: Option<&[usize]>| p.validate_deform(&x, &w, o, m, None).unwrap_err();
    assert!(matches!(e(&[1, 17, 6, 6], None), Error::ChannelMismatch(_)));
    assert!(matches!(e(&[1, 54, 6, 6], None), Error::Groups(_)), "3 offset groups do not divide 4 channels");
    assert!(matches!(e(&[1, 18, 5, 6], None), Error::ShapeMismatch { what: "offset", .. }));
    assert!(matches!(e(&[2, 18, 6, 6], None), Error::ShapeMismatch { what: "offset", .. }));
    assert!(matches!(e(&[1, 18, 6, 6], Some(&[1, 18, 6, 6])), Error::ShapeMismatch { what: "mask", .. }));
    assert!(matches!(e(&[1, 18, 6, 6], Some(&[1, 9, 6])), Error::Rank { what: "mask", .. }));
    assert!(matches!(e(&[18, 6, 6], None), Error::Rank { what: "offset", .. }));
    let same = DeformConv2dParams { padding: Padding::Same, ..p };
    assert!(matches!(
        same.validate_deform(&x, &w, &[1, 18, 6, 6], None, None),
        Err(Error::InvalidParam { name: "padding", .. })
    ));
}

#[test]
fn torchvision_golden_cases() {
    let cases = crate::common::goldens("deform_conv2d");
    assert!(cases.len() >= 6);
    for c in cases {
        let name = &c.name;
        let p = DeformConv2dParams {
            stride: c.pair("stride"),
            padding: c.padding(),
            dilation: c.pair("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w, o) = (c.load("input"), c.load("weight"), c.load("offset"));
        let m = c.flag("mask").then(|| c.load("mask"));
        let b = c.flag("bias").then(|| c.load("bias"));
        let want = c.expected("output");
        let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &p).unwrap();
        let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        let s = compare(&r32, &want);
        assert!(s.passes(Tolerance { rel_l2: 1e-6, abs: 1e-5 }), "{name}: reference vs torchvision: {s}");
        let Some(ctx) = gpu() else { continue };
        for algorithm in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
            let y = gpu_run(ctx, &x, &w, &o, m.as_ref(), b.as_ref(), &DeformConv2dParams { algorithm, ..p });
            let s = compare(&y, &want);
            assert!(s.passes(Tolerance::default()), "{name} {}: GPU vs torchvision: {s}", algorithm.name());
        }
    }
}

/// f16 storage (every operand, offsets and mask included; f32 sampling and accumulation) on
/// every case through the implicit GEMM with the GPU-default 8×8, the shared 16×16 and the
/// flat kernels, against the f64 reference of the f16-rounded inputs: outputs exactly
/// f16-representable, within one f16 rounding. Auto runs the implicit GEMM for f16; a forced
/// im2col_gemm and mixed dtypes are errors before any GPU work.
#[test]
fn f16_storage_matches_reference() {
    use wgconv::DType;
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
    let r16 = |t: HostTensor| t.rounded_to(DType::F16);
    let mut failures = Vec::new();
    for kernel in [GemmKernel::Block8x8, GemmKernel::Block16x16, GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            let (x, w, o, m, b) = c.data(1700 + i as u64);
            let (x, w, o, m, b) = (r16(x), r16(w), r16(o), m.map(r16), b.map(r16));
            let (_, r) = wgconv::reference::deform_conv2d(&x, &w, &o, m.as_ref(), b.as_ref(), &c.p).unwrap();
            let (mg, bg) = (m.as_ref().map(h), b.as_ref().map(h));
            let y = deform_conv2d(&ctx, &h(&x), &h(&w), &h(&o), mg.as_ref(), bg.as_ref(), &c.p)
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(y.dtype(), DType::F16);
            let out = y.to_vec(&ctx).unwrap();
            assert!(crate::common::all_f16(&out), "case {i}: not f16 values");
            let s = compare(&out, &r);
            if !s.passes(crate::common::F16_TOLERANCE) {
                failures.push(format!("{kernel:?} case {i} {c:?}: {s}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let c = &cases()[1];
    let (x, w, o, _, _) = c.data(5);
    let subs = ctx.submissions();
    let p = DeformConv2dParams { algorithm: Algorithm::Im2colGemm, ..c.p };
    let e = deform_conv2d(&ctx, &h(&x), &h(&w), &h(&o), None, None, &p).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { name: "algorithm", .. }), "{e}");
    let o32 = Tensor::from_host(&ctx, &o).unwrap();
    let e = deform_conv2d(&ctx, &h(&x), &h(&w), &o32, None, None, &c.p).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch(_)), "{e}");
    assert_eq!(ctx.submissions(), subs);
    let info = wgconv::deform_conv2d_into(
        &ctx,
        &mut ctx.device().create_command_encoder(&Default::default()),
        &h(&x),
        &h(&w),
        &h(&o),
        None,
        None,
        &c.p,
        &Tensor::empty_as(&ctx, &c.p.validate(&x.shape, &w.shape, None).unwrap().output_shape(), DType::F16).unwrap(),
    )
    .unwrap();
    assert_eq!(info.algorithm, Algorithm::ImplicitGemm);
}
