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

#[test]
fn conv_transpose2d_matches_reference_on_random_parameters() {
    use wgconv::conformance::conv_transpose2d_cases;
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed);
    let cases = conv_transpose2d_cases(seed, n);
    // The generator only makes valid cases, across the space.
    for c in &cases {
        let b = [c.weight[1] * c.params.groups as usize];
        c.params.validate(&c.input, &c.weight, c.bias.then_some(&b[..])).unwrap_or_else(|e| panic!("{c}: {e}"));
    }
    assert!(cases.iter().any(|c| c.params.output_padding != [0, 0] && c.params.stride[0] == 3));
    assert!(cases.iter().any(|c| c.params.groups > 1 && c.weight[0] == c.params.groups as usize));
    let Some(ctx) = common::gpu() else { return };
    let s = wgconv::conformance::run_conv_transpose2d(ctx, &cases, Tolerance::default());
    assert!(s.ok(), "{} of {} failed:\n{}", s.cases - s.passed, s.cases, s.failures.join("\n"));
    eprintln!("{n} random conv_transpose2d cases passed (worst rel-L2 {:.2e})", s.worst_rel_l2);
}

#[test]
fn conv2d_backward_matches_reference_on_random_parameters() {
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed) ^ 0xbac;
    let Some(ctx) = common::gpu() else { return };
    let cases = conv2d_cases(seed, n);
    let s = wgconv::conformance::run_conv2d_backward(ctx, &cases, Tolerance::default());
    assert!(s.ok(), "{} of {} failed:\n{}", s.cases - s.passed, s.cases, s.failures.join("\n"));
    eprintln!("{n} random conv2d_backward cases passed (worst rel-L2 {:.2e})", s.worst_rel_l2);
}

#[test]
fn deform_conv2d_matches_reference_on_random_parameters() {
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed);
    let cases = wgconv::conformance::deform_conv2d_cases(seed, n);
    assert!(cases.iter().any(|c| c.offset_groups > 1 && c.mask) && cases.iter().any(|c| !c.mask && c.scale == 4.0));
    let Some(ctx) = common::gpu() else { return };
    for algo in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        let s = wgconv::conformance::run_deform_conv2d(ctx, &cases, algo, Tolerance::default());
        assert!(s.ok(), "{}: {} of {} failed:\n{}", algo.name(), s.cases - s.passed, s.cases, s.failures.join("\n"));
        eprintln!("{n} random deform_conv2d cases passed with {} (worst rel-L2 {:.2e})", algo.name(), s.worst_rel_l2);
    }
}
