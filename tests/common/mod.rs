//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgconv::verify::{compare, ErrorStats};
use wgconv::{conv2d_with_info, Conv2dInfo, Conv2dParams, GpuContext, HostTensor, Padding, Tensor};

fn require_gpu() -> bool {
    std::env::var("WGCONV_REQUIRE_GPU").as_deref() == Ok("1")
}

/// A new context, or `None` (printing SKIP) when no adapter exists. With
/// `WGCONV_REQUIRE_GPU=1` a missing adapter fails the test instead.
pub fn fresh_gpu() -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(c) => Some(c),
        Err(e) if require_gpu() => panic!("WGCONV_REQUIRE_GPU=1 but no GPU context: {e}"),
        Err(e) => {
            eprintln!("SKIP: no GPU adapter ({e})");
            None
        }
    }
}

/// A new context whose device has `SHADER_F16`, or `None` (printing SKIP) without one; with
/// `WGCONV_REQUIRE_F16=1` a missing feature fails the test instead.
pub fn fresh_f16_gpu() -> Option<GpuContext> {
    let ctx = fresh_gpu()?;
    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        assert!(std::env::var("WGCONV_REQUIRE_F16").as_deref() != Ok("1"), "adapter lacks SHADER_F16");
        eprintln!("SKIP: adapter lacks SHADER_F16");
        return None;
    }
    Some(ctx)
}

/// The f16-storage tolerance: one f16 rounding of the output (2⁻¹¹ relative) plus f32
/// accumulation.
pub const F16_TOLERANCE: wgconv::verify::Tolerance = wgconv::verify::Tolerance { rel_l2: 1e-3, abs: 1e-3 };

/// Whether every value is exactly an f16 (what an f16 tensor widened to f32 must hold).
pub fn all_f16(values: &[f32]) -> bool {
    values.iter().all(|&v| half::f16::from_f32(v).to_f32() == v)
}

/// One context shared by the tests of a binary (pipelines compile once).
pub fn gpu() -> Option<&'static GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(fresh_gpu).as_ref()
}

/// A conv2d test case: conformance's own description of the op (`Conv2dCase`: its
/// reference, its call, its shrinker), built here by shape, then parameter by parameter.
pub use wgconv::conformance::Conv2dCase as Case;

/// `n` images of `c_in` × `hw`, `c_out` filters of `k`, with a bias, default parameters.
pub fn case(n: usize, c_in: usize, hw: [usize; 2], c_out: usize, k: [usize; 2]) -> Case {
    Case {
        input: [n, c_in, hw[0], hw[1]],
        weight: [c_out, c_in, k[0], k[1]],
        bias: true,
        params: Conv2dParams::default(),
        seed: 0,
    }
}

/// The builder steps of a test's conv2d case.
pub trait CaseExt: Sized {
    fn stride(self, s: [u32; 2]) -> Self;
    fn pad(self, p: Padding) -> Self;
    fn dil(self, d: [u32; 2]) -> Self;
    /// `g` groups (the weight's input channels become `Cin / g`).
    fn groups(self, g: u32) -> Self;
    fn algo(self, a: wgconv::Algorithm) -> Self;
    fn act(self, a: wgconv::Activation) -> Self;
    fn no_bias(self) -> Self;
    /// The algorithms that can run this case (Auto first).
    fn algorithms(&self) -> Vec<wgconv::Algorithm>;
    /// (input, weight, bias) seeded with `seed`.
    fn seeded(&self, seed: u64) -> (HostTensor, HostTensor, Option<HostTensor>);
}

impl CaseExt for Case {
    fn stride(mut self, s: [u32; 2]) -> Self {
        self.params.stride = s;
        self
    }
    fn pad(mut self, p: Padding) -> Self {
        self.params.padding = p;
        self
    }
    fn dil(mut self, d: [u32; 2]) -> Self {
        self.params.dilation = d;
        self
    }
    fn groups(mut self, g: u32) -> Self {
        self.params.groups = g;
        self.weight[1] = self.input[1] / g as usize;
        self
    }
    fn algo(mut self, a: wgconv::Algorithm) -> Self {
        self.params.algorithm = a;
        self
    }
    fn act(mut self, a: wgconv::Activation) -> Self {
        self.params.activation = a;
        self
    }
    fn no_bias(mut self) -> Self {
        self.bias = false;
        self
    }
    fn algorithms(&self) -> Vec<wgconv::Algorithm> {
        let g = self.params.validate(&self.input, &self.weight, None).unwrap();
        std::iter::once(wgconv::Algorithm::Auto)
            .chain(wgconv::Algorithm::ALL.into_iter().filter(|a| a.unsupported_reason(&g).is_none()))
            .collect()
    }
    fn seeded(&self, seed: u64) -> (HostTensor, HostTensor, Option<HostTensor>) {
        Case { seed, ..self.clone() }.data()
    }
}

/// Runs `case` on the GPU and the reference; returns the error statistics and what ran.
pub fn run_case(ctx: &GpuContext, case: &Case, seed: u64) -> (ErrorStats, Conv2dInfo) {
    let (x, w, b) = case.seeded(seed);
    let (shape, reference) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &case.params).expect("reference");
    let xg = Tensor::from_host(ctx, &x).unwrap();
    let wg = Tensor::from_host(ctx, &w).unwrap();
    let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap());
    let (y, info) = conv2d_with_info(ctx, &xg, &wg, bg.as_ref(), &case.params).expect("gpu conv2d");
    assert_eq!(y.shape(), &shape, "{case:?}");
    let out = y.to_vec(ctx).unwrap();
    (compare(&out, &reference), info)
}

/// One golden case of `tests/data/<op>/cases.json` (written by tools/gen_golden.py).
pub struct Golden {
    pub name: String,
    pub dir: std::path::PathBuf,
    pub case: serde_json::Value,
}

impl Golden {
    /// A `[a, b]` field.
    pub fn pair(&self, key: &str) -> [u32; 2] {
        let v = self.case[key].as_array().unwrap();
        [v[0].as_u64().unwrap() as u32, v[1].as_u64().unwrap() as u32]
    }
    /// The padding: `"same"`, `"valid"` or `[top, left, bottom, right]`.
    pub fn padding(&self) -> Padding {
        match &self.case["padding"] {
            serde_json::Value::String(s) if s == "same" => Padding::Same,
            serde_json::Value::String(s) if s == "valid" => Padding::Valid,
            serde_json::Value::Array(v) => {
                let v: Vec<u32> = v.iter().map(|x| x.as_u64().unwrap() as u32).collect();
                Padding::Explicit { top: v[0], left: v[1], bottom: v[2], right: v[3] }
            }
            other => panic!("bad padding {other}"),
        }
    }
    pub fn groups(&self) -> u32 {
        self.case["groups"].as_u64().unwrap() as u32
    }
    pub fn flag(&self, key: &str) -> bool {
        self.case[key].as_bool().unwrap()
    }
    /// `<name>.npy` of this case.
    pub fn load(&self, name: &str) -> HostTensor {
        HostTensor::read_npy(self.dir.join(format!("{name}.npy"))).unwrap().0
    }
    /// `<name>.npy` widened to f64 (the expected outputs).
    pub fn expected(&self, name: &str) -> Vec<f64> {
        self.load(name).data.iter().map(|&v| v as f64).collect()
    }
}

/// Every golden case of `op`.
pub fn goldens(op: &str) -> Vec<Golden> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(op);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            Golden { dir: dir.join(&name), name, case: c.clone() }
        })
        .collect()
}
