//! The conformance runner itself: its generator covers the space, it passes on a correct
//! engine, and a case that must fail does fail.

mod common;

use std::process::Command;

use wgconv::conformance::{conv2d_cases, reference_conv2d, run_conv2d, run_static, Conv2dCase};
use wgconv::verify::Tolerance;
use wgconv::{Algorithm, Conv2dParams, HostTensor, Padding};

#[test]
fn generator_covers_the_parameter_space_with_valid_cases() {
    let cases = conv2d_cases(7, 2000);
    let valid = |c: &Conv2dCase| c.params.validate(&c.input, &c.weight, c.bias.then_some(&[c.weight[0]][..])).is_ok();
    assert!(cases.iter().all(valid));
    let any = |f: &dyn Fn(&Conv2dCase) -> bool| cases.iter().any(f);
    assert!(any(&|c| c.params.padding == Padding::Same));
    assert!(any(&|c| c.params.padding == Padding::Valid));
    assert!(any(&|c| matches!(c.params.padding, Padding::Explicit { top, bottom, .. } if top != bottom)));
    assert!(any(&|c| c.params.groups > 1 && c.params.groups == c.input[1] as u32 && c.weight[0] == 2 * c.input[1]));
    assert!(any(&|c| c.params.stride[0] != c.params.stride[1]));
    assert!(any(&|c| c.params.dilation == [3, 3]));
    assert!(any(&|c| c.weight[2] != c.weight[3]));
    assert!(any(&|c| c.input[0] == 3));
    assert!(any(&|c| c.input[2] == 1 || c.input[3] == 1));
    // Same seed, same cases.
    assert_eq!(conv2d_cases(7, 50), cases[..50].to_vec());
}

#[test]
fn runner_passes_a_correct_engine() {
    let Some(ctx) = common::gpu() else { return };
    let cases = conv2d_cases(11, 100);
    let s = run_conv2d(ctx, &cases, Algorithm::Auto, Tolerance::default(), reference_conv2d);
    assert!(s.ok(), "{:?}", s.failures);
    assert_eq!((s.cases, s.passed), (100, 100));
    for algo in Algorithm::ALL {
        let s = run_conv2d(ctx, &cases, algo, Tolerance::default(), reference_conv2d);
        assert!(s.ok(), "{}: {:?}", algo.name(), s.failures);
        assert!(s.cases >= 10, "{}: only {} applicable cases", algo.name(), s.cases);
    }
    assert!(s.worst_rel_l2 < 1e-5 && s.worst_rel_l2 > 0.0, "{}", s.worst_rel_l2);
}

/// An oracle that forgets the bias: every case with a bias must be reported as failing.
fn oracle_without_bias(
    x: &HostTensor,
    w: &HostTensor,
    _b: Option<&HostTensor>,
    p: &Conv2dParams,
) -> wgconv::Result<Vec<f64>> {
    reference_conv2d(x, w, None, p)
}

#[test]
fn a_case_that_must_fail_does_fail() {
    let Some(ctx) = common::gpu() else { return };
    let cases = conv2d_cases(12, 30);
    let with_bias = cases.iter().filter(|c| c.bias).count();
    assert!(with_bias > 0);
    let s = run_conv2d(ctx, &cases, Algorithm::Auto, Tolerance::default(), oracle_without_bias);
    assert!(!s.ok());
    assert_eq!(s.passed, cases.len() - with_bias);
    assert_eq!(s.failures.len(), with_bias.min(20));
    assert!(s.failures[0].contains("bias=true"), "{}", s.failures[0]);
}

#[test]
fn static_check_covers_every_shader_and_target() {
    let s = run_static();
    assert!(s.failures.is_empty(), "{:?}", s.failures);
    let expected: usize =
        wgconv::shaders::ShaderId::ALL.iter().map(|id| id.override_sets().len() * id.targets().len()).sum();
    assert_eq!(s.checked, expected);
    // Only the f16 kernels skip a target (GLSL).
    for id in wgconv::shaders::ShaderId::ALL {
        assert_eq!(id.targets().len(), if id.is_f16() { 3 } else { 4 }, "{}", id.name());
    }
}

#[test]
fn cli_conformance_prints_a_table_and_json() {
    if common::gpu().is_none() {
        return;
    }
    let json = std::env::temp_dir().join(format!("wgconv-conf-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_wgconv"))
        .args(["conformance", "--cases", "25", "--probes", "none", "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("conv2d") && stdout.contains("result: PASS"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v[0]["ops"][0]["op"], "conv2d/auto");
    assert_eq!(v[0]["ops"][0]["cases"], 25);
    assert_eq!(v[0]["ops"][0]["passed"], 25);

    let bad = Command::new(env!("CARGO_BIN_EXE_wgconv")).args(["conformance", "--backend", "glide"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
