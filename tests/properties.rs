//! Property tests: random valid parameter sets (the conformance generator) against the f64
//! reference, with shrinking to a minimal failing case. 500 cases per op per run;
//! `WGCONV_PROPTEST_CASES=N` for longer runs, `WGCONV_PROPTEST_SEED=S` to replay.

mod common;

use wgconv::conformance::{conv2d_cases, shrink_conv2d, Conv2dCase};
use wgconv::verify::{compare, Tolerance};
use wgconv::{conv2d, Algorithm, Conv2dParams, GpuContext, Tensor};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// None if the GPU result with `algo` matches the reference (or `algo` does not apply),
/// else why not.
fn check(ctx: &GpuContext, c: &Conv2dCase, algo: Algorithm) -> Option<String> {
    let params = Conv2dParams { algorithm: algo, ..c.params };
    let c = &Conv2dCase { params, ..c.clone() };
    let (x, w, b) = c.data();
    let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).ok()?;
    let run = || -> wgconv::Result<Vec<f32>> {
        let xg = Tensor::from_host(ctx, &x)?;
        let wg = Tensor::from_host(ctx, &w)?;
        let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b)).transpose()?;
        conv2d(ctx, &xg, &wg, bg.as_ref(), &c.params)?.to_vec(ctx)
    };
    match run() {
        Ok(y) => {
            let s = compare(&y, &r);
            (!s.passes(Tolerance::default())).then(|| s.to_string())
        }
        Err(e) => Some(format!("error: {e}")),
    }
}

#[test]
fn conv2d_matches_reference_on_random_parameters() {
    let Some(ctx) = common::gpu() else { return };
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed);
    let mut runs = 0;
    for (i, case) in conv2d_cases(seed, n).iter().enumerate() {
        for algo in std::iter::once(Algorithm::Auto).chain(Algorithm::ALL) {
            runs += 1;
            if let Some(why) = check(ctx, case, algo) {
                let minimal = shrink_conv2d(case, |c| check(ctx, c, algo).is_some());
                panic!(
                    "case {i} of seed {seed} ({}) failed: {why}\n  case:    {case}\n  minimal: {minimal}\n  minimal fails with: {}",
                    algo.name(),
                    check(ctx, &minimal, algo).unwrap_or_default()
                );
            }
        }
    }
    eprintln!("{n} random conv2d cases × every applicable algorithm ({runs} checks) passed");
}

/// The shrinker itself: a predicate standing in for a bug that needs dilation 2 on the
/// height axis and more than 3 input rows must shrink to exactly those.
#[test]
fn shrinking_finds_a_minimal_case() {
    let start = conv2d_cases(99, 400)
        .into_iter()
        .find(|c| c.params.dilation[0] >= 2 && c.input[0] > 1 && c.input[2] > 6 && c.params.groups > 1)
        .expect("generator covers it");
    let bug = |c: &Conv2dCase| c.params.dilation[0] >= 2 && c.input[2] > 3;
    let m = shrink_conv2d(&start, bug);
    assert!(bug(&m));
    assert_eq!((m.input[0], m.params.groups, m.bias), (1, 1, false), "{m}");
    assert_eq!(m.input[2], 4, "{m}");
    assert_eq!((m.weight[2], m.weight[3], m.input[3]), (1, 1, 1), "{m}");
}

/// Finds the first failing case, shrinks it, and panics with both.
fn report_minimal<C: Clone + std::fmt::Display>(
    op: &str,
    cases: &[C],
    check: impl Fn(&C) -> Option<String>,
    shrink: impl Fn(&C, &dyn Fn(&C) -> bool) -> C,
) {
    for (i, case) in cases.iter().enumerate() {
        if let Some(why) = check(case) {
            let minimal = shrink(case, &|c| check(c).is_some());
            panic!(
                "{op}: case {i} failed: {why}\n  minimal: {minimal}\n  minimal fails with: {}",
                check(&minimal).unwrap_or_default()
            );
        }
    }
}

#[test]
fn conv_transpose2d_matches_reference_on_random_parameters() {
    use wgconv::conformance::{check_conv_transpose2d, conv_transpose2d_cases, shrink_conv_transpose2d};
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed);
    // Half the cases with each algorithm (Auto is the output-phase implicit GEMM).
    let mut cases = conv_transpose2d_cases(seed, n);
    for c in cases.iter_mut().skip(1).step_by(2) {
        c.params.algorithm = wgconv::Algorithm::GemmCol2im;
    }
    // The generator only makes valid cases, across the space.
    for c in &cases {
        let b = [c.weight[1] * c.params.groups as usize];
        c.params.validate(&c.input, &c.weight, c.bias.then_some(&b[..])).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    assert!(cases.iter().any(|c| c.params.output_padding != [0, 0] && c.params.stride[0] == 3));
    assert!(cases.iter().any(|c| c.params.groups > 1 && c.weight[0] == c.params.groups as usize));
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    report_minimal(
        "conv_transpose2d",
        &cases,
        |c| check_conv_transpose2d(ctx, c, tol),
        |c, f| shrink_conv_transpose2d(c, f),
    );
    eprintln!("{n} random conv_transpose2d cases passed");
}

#[test]
fn conv2d_backward_matches_reference_on_random_parameters() {
    use wgconv::conformance::check_conv2d_backward;
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed) ^ 0xbac;
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    report_minimal(
        "conv2d_backward",
        &conv2d_cases(seed, n),
        |c| check_conv2d_backward(ctx, c, tol),
        |c, f| shrink_conv2d(c, f),
    );
    eprintln!("{n} random conv2d_backward cases passed");
}

#[test]
fn deform_conv2d_matches_reference_on_random_parameters() {
    use wgconv::conformance::{check_deform_conv2d, deform_conv2d_cases, shrink_deform_conv2d};
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed);
    let cases = deform_conv2d_cases(seed, n);
    assert!(cases.iter().any(|c| c.offset_groups > 1 && c.mask) && cases.iter().any(|c| !c.mask && c.scale == 4.0));
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    for algo in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        report_minimal(
            algo.name(),
            &cases,
            |c| check_deform_conv2d(ctx, c, algo, tol),
            |c, f| shrink_deform_conv2d(c, f),
        );
    }
    eprintln!("{n} random deform_conv2d cases passed with both algorithms");
}

/// The transposed and deformable shrinkers also reach a minimal case.
#[test]
fn other_shrinkers_find_minimal_cases() {
    use wgconv::conformance::{
        conv_transpose2d_cases, deform_conv2d_cases, shrink_conv_transpose2d, shrink_deform_conv2d,
    };
    let t = conv_transpose2d_cases(3, 300).into_iter().find(|c| c.params.stride[0] == 3 && c.input[0] > 1).unwrap();
    let bug = |c: &wgconv::conformance::ConvTranspose2dCase| c.params.stride[0] == 3;
    let m = shrink_conv_transpose2d(&t, bug);
    assert!(bug(&m) && m.input[0] == 1 && m.params.groups == 1 && !m.bias && m.weight[2] == 1, "{m}");
    let d = deform_conv2d_cases(4, 300).into_iter().find(|c| c.mask && c.offset_groups > 1).unwrap();
    let bug = |c: &wgconv::conformance::DeformConv2dCase| c.mask;
    let m = shrink_deform_conv2d(&d, bug);
    assert!(m.mask && m.offset_groups == 1 && m.conv.input[0] == 1 && m.scale == 0.5, "{m}");
}
