//! The conformance runner itself: its generator covers the space, it passes on a correct
//! engine, and a case that must fail does fail.

mod common;

use std::process::Command;

use wgconv::conformance::{conv2d_cases, reference_conv2d, run_conv2d, Conv2dCase};
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
fn cli_conformance_prints_a_table_and_json() {
    if common::gpu().is_none() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let json = scratch.path().join("conformance.json");
    let out = Command::new(env!("CARGO_BIN_EXE_wgconv"))
        // (few cases, no static check: what is tested here is the table and the JSON; the cases
        // run in `runner_passes_a_correct_engine` and the CI matrix, the static check in
        // tests/shaders.rs)
        .args(["conformance", "--cases", "2", "--no-static", "--probes", "none", "--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("conv2d") && stdout.contains("result: PASS"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v[0]["ops"][0]["op"], "conv2d/auto");
    assert_eq!(v[0]["ops"][0]["cases"], 2);
    assert_eq!(v[0]["ops"][0]["passed"], 2);
    assert!(v[0]["static_check"].is_null(), "--no-static ran the static check");

    let bad = Command::new(env!("CARGO_BIN_EXE_wgconv")).args(["conformance", "--backend", "glide"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// A trace lists what the plan lists (same kernels, constants and grids, in order): a replay
/// records the launches the engine makes, never a second description of them.
#[test]
fn a_trace_is_the_plan_as_recorded() {
    // its own context: a trace takes every call recorded on the context, from any thread
    let Some(ctx) = common::fresh_gpu() else { return };
    let p = Conv2dParams::default();
    // K = 2048·9 = 18432 terms: more than one pass under the loop budget
    let (x_shape, w_shape) = ([1usize, 2048, 3, 3], [2usize, 2048, 3, 3]);
    let plan = wgconv::plan_conv2d(&ctx, &x_shape, &w_shape, None, wgconv::DType::F32, &p).unwrap();
    assert!(plan.steps.len() > 1, "{plan}");
    let x = wgconv::Tensor::from_host(&ctx, &HostTensor::random(&x_shape, 1)).unwrap();
    let w = wgconv::Tensor::from_host(&ctx, &HostTensor::random(&w_shape, 2)).unwrap();
    ctx.begin_trace();
    let y = wgconv::conv2d(&ctx, &x, &w, None, &p).unwrap();
    let trace = ctx.end_trace().unwrap();
    let traced: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
    let planned: Vec<_> = plan.steps.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
    assert_eq!(traced, planned);
    // the input's contents were taken before the call ran; the output is bound
    let xi = trace.buffer_index(x.buffer()).expect("input bound");
    assert_eq!(trace.buffers[xi].initial.len() as u64, x.buffer().size());
    assert_eq!(&trace.buffers[xi].initial[..4], &HostTensor::random(&x_shape, 1).data[0].to_le_bytes());
    assert!(trace.buffer_index(y.buffer()).is_some());
    // nothing is traced once the trace is closed
    assert!(ctx.end_trace().is_err());
}

/// `conformance --export`: every case is written, its bindings lie inside its buffers at the
/// device's offset alignment, and outputs start as NaN (an element no kernel writes fails).
#[test]
fn export_writes_every_case_with_poisoned_outputs() {
    let Some(_) = common::gpu() else { return };
    let ctx = wgconv::GpuContext::with_options(wgconv::ContextOptions {
        limits: Some(wgpu::Limits::default()),
        ..Default::default()
    })
    .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("export");
    let (report, written) = wgconv::conformance::export_all(&ctx, 5, 2, None, &dir).unwrap();
    assert!(report.ok(), "{}", report.table());
    let ran: usize = report.ops.iter().map(|o| o.cases).sum();
    assert_eq!(written, ran);
    let read_json =
        |p: &str| -> serde_json::Value { serde_json::from_slice(&std::fs::read(dir.join(p)).unwrap()).unwrap() };
    let index = read_json("replay.json");
    assert_eq!(index["format"], "wgconv-replay");
    assert_eq!(index["limits"]["minUniformBufferOffsetAlignment"], 256);
    let cases = index["cases"].as_array().unwrap();
    assert_eq!(cases.len(), written);
    // Every specialisation a case runs is one the static check translates. The depthwise
    // kernels are specialised to each conv's kernel size, stride and dilation (`KH`, `KW`, `SW`,
    // `DW`: any values within its window; the backward's grad_input also to `SH`, `DH`, the
    // phase `RY`, `RX` and `MULT`, grad_weight to `QUADS_FULL`): the static list samples those,
    // so they are left out of the comparison.
    let set = |shader: &serde_json::Value, constants: &serde_json::Value| {
        let mut constants = constants.as_object().unwrap().clone();
        if shader.as_str().unwrap().starts_with("depthwise") {
            for k in ["KH", "KW", "SW", "DW", "SH", "DH", "RY", "RX", "MULT", "QUADS_FULL"] {
                constants.remove(k);
            }
        }
        serde_json::json!({ "shader": shader, "constants": constants }).to_string()
    };
    let checked: std::collections::HashSet<String> =
        read_json("static.json").as_array().unwrap().iter().map(|s| set(&s["shader"], &s["constants"])).collect();
    for c in cases {
        let c = read_json(c.as_str().unwrap());
        let buffers = c["buffers"].as_array().unwrap();
        let dispatches = c["dispatches"].as_array().unwrap();
        assert!(!dispatches.is_empty(), "{}", c["case"]);
        for d in dispatches {
            assert!(index["shaders"][d["shader"].as_str().unwrap()].is_object());
            let set = set(&d["shader"], &d["constants"]);
            assert!(checked.contains(&set), "{}: {set} is not in static.json", c["case"]);
            for b in d["bindings"].as_array().unwrap() {
                let (k, off, size) =
                    (b["buffer"].as_u64().unwrap(), b["offset"].as_u64().unwrap(), b["size"].as_u64().unwrap());
                assert!(off + size <= buffers[k as usize]["size"].as_u64().unwrap(), "{}", c["case"]);
                assert_eq!(off % 256, 0, "{}", c["case"]);
            }
        }
        for o in c["outputs"].as_array().unwrap() {
            let init = buffers[o["buffer"].as_u64().unwrap() as usize]["init"].as_str().expect("poisoned");
            let bytes = std::fs::read(dir.join(init)).unwrap();
            let count = o["count"].as_u64().unwrap() as usize;
            let poisoned = match o["dtype"].as_str().unwrap() {
                "f32" => bytes.chunks_exact(4).take(count).all(|b| f32::from_le_bytes(b.try_into().unwrap()).is_nan()),
                _ => {
                    bytes.chunks_exact(2).take(count).all(|b| half::f16::from_le_bytes(b.try_into().unwrap()).is_nan())
                }
            };
            assert!(poisoned, "{}", c["case"]);
            let expected = std::fs::read(dir.join(o["expected"].as_str().unwrap())).unwrap();
            assert_eq!(expected.len(), count * 8);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// NaN and ±∞ planted in the inputs, weights and grad_outputs of every op's and algorithm's
/// generated cases: each output's kind (NaN, +∞, −∞, finite) and value as the reference's.
/// (Found: conv_transpose2d's output phases gave NaN where a tap falls outside the input, and
/// so conv2d_backward's grad_input: 9 and 7 of 12 cases failed before the border pass.)
#[test]
fn special_values_meet_every_generated_geometry() {
    let Some(ctx) = common::gpu() else { return };
    let ops = pollster::block_on(wgconv::conformance::special_cases_async(ctx, 7, 8));
    let failures: Vec<String> =
        ops.iter().flat_map(|o| o.failures.iter().map(move |f| format!("{}: {f}", o.op))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let cases: usize = ops.iter().map(|o| o.cases).sum();
    assert!(ops.len() >= 27 && cases >= 150, "{} rows, {cases} cases", ops.len());
    for op in ["conv_transpose2d/implicit_gemm", "conv2d_backward", "deform_conv2d_backward", "pool2d_backward"] {
        let row = ops.iter().find(|o| o.op == format!("special/{op}")).unwrap();
        assert!(row.cases >= 6, "{op}: {} cases", row.cases);
    }
}
