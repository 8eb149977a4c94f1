//! Property tests: random valid parameter sets (the conformance generator) against the f64
//! reference, with shrinking to a minimal failing case. 500 cases per op per run;
//! `WGCONV_PROPTEST_CASES=N` for longer runs, `WGCONV_PROPTEST_SEED=S` to replay.

mod common;

use wgconv::conformance::{check, conv2d_cases, shrink_case, Conv2dCase};
use wgconv::verify::Tolerance;
use wgconv::{Algorithm, Conv2dParams};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The case with `algo` forced.
fn forced(c: &Conv2dCase, algo: Algorithm) -> Conv2dCase {
    Conv2dCase { params: Conv2dParams { algorithm: algo, ..c.params }, ..c.clone() }
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
            let case = forced(case, algo);
            let tol = Tolerance::default();
            if let Some(why) = check(ctx, &case, tol) {
                let minimal = shrink_case(&case, |c| check(ctx, c, tol).is_some());
                panic!(
                    "case {i} of seed {seed} ({}) failed: {why}\n  case:    {case}\n  minimal: {minimal}\n  minimal fails with: {}",
                    algo.name(),
                    check(ctx, &minimal, tol).unwrap_or_default()
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
    let m = shrink_case(&start, bug);
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
    use wgconv::conformance::{check, conv_transpose2d_cases, shrink_case};
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
    report_minimal("conv_transpose2d", &cases, |c| check(ctx, c, tol), |c, f| shrink_case(c, f));
    eprintln!("{n} random conv_transpose2d cases passed");
}

#[test]
fn conv2d_backward_matches_reference_on_random_parameters() {
    use wgconv::conformance::{check, shrink_case, Conv2dBackwardCase};
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed) ^ 0xbac;
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    let cases: Vec<_> = conv2d_cases(seed, n).into_iter().map(|c| Conv2dBackwardCase(c, wgconv::Grads::ALL)).collect();
    report_minimal("conv2d_backward", &cases, |c| check(ctx, c, tol), |c, f| shrink_case(c, f));
    eprintln!("{n} random conv2d_backward cases passed");
}

#[test]
fn conv_transpose2d_backward_matches_reference_on_random_parameters() {
    use wgconv::conformance::{check, conv_transpose2d_cases, shrink_case, ConvTranspose2dBackwardCase, OpCase};
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed) ^ 0x7bac;
    let cases: Vec<_> = conv_transpose2d_cases(seed, n)
        .into_iter()
        .map(|c| ConvTranspose2dBackwardCase(c, wgconv::Grads::ALL))
        .collect();
    // most of the space applies (not: output_padding past the padding by a stride or more)
    let applying = cases.iter().filter(|c| c.applies()).count();
    assert!(applying * 10 >= n * 7, "{applying} of {n} cases apply");
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    report_minimal("conv_transpose2d_backward", &cases, |c| check(ctx, c, tol), |c, f| shrink_case(c, f));
    eprintln!("{n} random conv_transpose2d_backward cases passed ({applying} apply)");
}

#[test]
fn deform_conv2d_matches_reference_on_random_parameters() {
    use wgconv::conformance::{check, deform_conv2d_cases, shrink_case};
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed);
    let cases = deform_conv2d_cases(seed, n);
    assert!(cases.iter().any(|c| c.offset_groups > 1 && c.mask) && cases.iter().any(|c| !c.mask && c.scale == 4.0));
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    for algo in [Algorithm::ImplicitGemm, Algorithm::Im2colGemm] {
        let forced: Vec<_> = cases.iter().map(|c| c.with_algorithm(algo)).collect();
        report_minimal(algo.name(), &forced, |c| check(ctx, c, tol), |c, f| shrink_case(c, f));
    }
    eprintln!("{n} random deform_conv2d cases passed with both algorithms");
}

#[test]
fn deform_conv2d_backward_matches_reference_on_random_parameters() {
    use wgconv::conformance::{check, deform_conv2d_cases, shrink_case, DeformConv2dBackwardCase};
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed) ^ 0xdcb;
    let cases: Vec<_> = deform_conv2d_cases(seed, n)
        .into_iter()
        .map(|c| DeformConv2dBackwardCase(c, wgconv::DeformGrads::ALL))
        .collect();
    assert!(cases.iter().any(|c| c.0.offset_groups > 1 && c.0.mask) && cases.iter().any(|c| !c.0.mask));
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    report_minimal("deform_conv2d_backward", &cases, |c| check(ctx, c, tol), |c, f| shrink_case(c, f));
    eprintln!("{n} random deform_conv2d_backward cases passed");
}

/// The transposed and deformable shrinkers also reach a minimal case.
#[test]
fn other_shrinkers_find_minimal_cases() {
    use wgconv::conformance::{conv_transpose2d_cases, deform_conv2d_cases, shrink_case};
    let t = conv_transpose2d_cases(3, 300).into_iter().find(|c| c.params.stride[0] == 3 && c.input[0] > 1).unwrap();
    let bug = |c: &wgconv::conformance::ConvTranspose2dCase| c.params.stride[0] == 3;
    let m = shrink_case(&t, bug);
    assert!(bug(&m) && m.input[0] == 1 && m.params.groups == 1 && !m.bias && m.weight[2] == 1, "{m}");
    let d = deform_conv2d_cases(4, 300).into_iter().find(|c| c.mask && c.offset_groups > 1).unwrap();
    let bug = |c: &wgconv::conformance::DeformConv2dCase| c.mask;
    let m = shrink_case(&d, bug);
    assert!(m.mask && m.offset_groups == 1 && m.conv.input[0] == 1 && m.scale == 0.5, "{m}");
}

/// The backward passes of conv1d, conv3d, conv_transpose1d, conv_transpose3d and the
/// poolings on random valid parameters (the conformance generators; every gradient), each
/// failure shrunk to a minimal case. The 3-D ops run a fifth of the cases (each is a
/// volume).
#[test]
fn other_backward_passes_match_reference_on_random_parameters() {
    use wgconv::conformance::{
        conv3d_cases, conv3d_padding_mode_cases, conv_transpose1d_cases, conv_transpose3d_cases, pool2d_cases,
        Conv1dBackwardCase, Conv1dCase, Conv3dBackwardCase, ConvTranspose1dBackwardCase, ConvTranspose3dBackwardCase,
        OpCase, Pool2dBackwardCase,
    };
    let n = env_or("WGCONV_PROPTEST_CASES", 500) as usize;
    let seed = env_or("WGCONV_PROPTEST_SEED", 0x5eed) ^ 0x1d3d;
    let all = wgconv::Grads::ALL;
    let conv1d: Vec<_> = conv2d_cases(seed, n).into_iter().map(|c| Conv1dBackwardCase(Conv1dCase(c), all)).collect();
    let mut conv3d: Vec<_> = conv3d_cases(seed, n / 5).into_iter().map(|c| Conv3dBackwardCase(c, all)).collect();
    conv3d.extend(conv3d_padding_mode_cases(seed, n / 5).into_iter().map(|c| Conv3dBackwardCase(c, all)));
    let t1: Vec<_> = conv_transpose1d_cases(seed, n).into_iter().map(|c| ConvTranspose1dBackwardCase(c, all)).collect();
    let t3: Vec<_> =
        conv_transpose3d_cases(seed, n / 5).into_iter().map(|c| ConvTranspose3dBackwardCase(c, all)).collect();
    let pools: Vec<_> = pool2d_cases(seed, n).into_iter().map(Pool2dBackwardCase).collect();
    assert!(conv3d.iter().any(|c| c.0.params.padding_mode != wgconv::PaddingMode::Zeros));
    let Some(ctx) = common::gpu() else { return };
    let tol = Tolerance::default();
    fn run<C: OpCase>(ctx: &wgconv::GpuContext, op: &str, cases: &[C], tol: Tolerance) -> usize {
        let applying: Vec<C> = cases.iter().filter(|c| c.applies()).cloned().collect();
        report_minimal(op, &applying, |c| check(ctx, c, tol), |c, f| shrink_case(c, f));
        applying.len()
    }
    let counts = [
        run(ctx, "conv1d_backward", &conv1d, tol),
        run(ctx, "conv3d_backward", &conv3d, tol),
        run(ctx, "conv_transpose1d_backward", &t1, tol),
        run(ctx, "conv_transpose3d_backward", &t3, tol),
        run(ctx, "pool2d_backward", &pools, tol),
    ];
    assert!(counts.iter().all(|&k| k * 10 >= n / 5 * 7), "cases that apply: {counts:?}");
    eprintln!("random backward cases passed: conv1d, conv3d, conv_transpose1d, conv_transpose3d, pool2d: {counts:?}");
}

/// The conv3d shrinker reaches a minimal case (one image, one group, 1-wide kernel axes).
#[test]
fn the_conv3d_shrinker_finds_a_minimal_case() {
    use wgconv::conformance::{conv3d_cases, shrink_case, Conv3dCase};
    let c = conv3d_cases(5, 300).into_iter().find(|c| c.params.groups == 2 && c.input[0] == 2).unwrap();
    // a fault every case shows: the shrinker must take every simplification
    let m = shrink_case(&c, |_: &Conv3dCase| true);
    assert!(m.input[0] == 1 && m.params.groups == 1 && m.weight[2..] == [1, 1, 1] && m.params.stride == [1; 3], "{m}");
}
