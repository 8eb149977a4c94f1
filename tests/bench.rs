//! The benchmark runner: a quick run over real suite rows produces checked, timed results
//! and well-formed JSON/CSV/SVG.

mod common;

use std::process::Command;

use wgconv::bench::{parse_suite, run_case, BenchOptions, Report, DEFAULT_SUITE};
use wgconv::Algorithm;

#[test]
fn runner_times_and_checks_a_small_suite() {
    let Some(ctx) = common::gpu() else { return };
    let suite = "| id | op | N | Cin | H x W | Cout | kernel | stride | pad | dil | groups | extra |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|---|\n\
                 | tiny | conv2d | 2 | 8 | 12x10 | 16 | 3x3 | 1 | 1 | 1 | 1 | |\n\
                 | tiny_dw | conv2d | 1 | 8 | 9x9 | 8 | 3 | 2 | 1 | 1 | 8 | depthwise |\n\
                 | dcn | deform_conv2d | 1 | 4 | 8x8 | 4 | 3x3 | 1 | 1 | 1 | 1 | |\n";
    let cases = parse_suite(suite).unwrap();
    let opts = BenchOptions {
        warmup: 1,
        runs: 3,
        min_time: std::time::Duration::ZERO,
        check_points: 64,
        wall_clock: false,
        ..Default::default()
    };
    let results: Vec<_> = cases.iter().map(|c| run_case(ctx, c, Algorithm::Auto, &opts)).collect();
    for r in &results {
        assert!(r.ok(), "{r:?}");
        assert!(r.runs >= 3 && r.median_ms > 0.0 && r.min_ms <= r.median_ms && r.median_ms <= r.max_ms);
        assert_ne!(r.algorithm, "auto");
        assert!(r.check_max_err.unwrap() < 1e-5);
        assert!(r.gflops > 0.0);
    }
    // tiny: 2·16·12·10·8·9·2 FLOPs
    assert_eq!(results[0].flops, 2.0 * 2.0 * 16.0 * 12.0 * 10.0 * 8.0 * 9.0);
    // deform: what Auto picks on this adapter (im2col where its GEMM runs flat: CPU adapters)
    let p = wgconv::Conv2dParams { padding: wgconv::Padding::Symmetric([1, 1]), ..Default::default() };
    let g = p.validate(&[1, 4, 8, 8], &[4, 4, 3, 3], None).unwrap();
    assert_eq!(results[2].algorithm, wgconv::ops::deform_conv2d::auto_algorithm(ctx, &g).name());
    let report = Report::new(ctx, None, results);
    let table = report.table();
    assert!(table.contains("tiny_dw") && table.contains("geometric mean"), "{table}");
    assert_eq!(report.csv().lines().count(), 4);
    let svg = report.svg().unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("tiny_dw") && svg.trim_end().ends_with("</svg>"));
    let roofline = report.roofline_svg().unwrap();
    let mut algos: Vec<&str> = report.results.iter().map(|r| r.algorithm.as_str()).collect();
    algos.sort();
    algos.dedup();
    assert_eq!(
        roofline.matches("<circle").count(),
        3 + algos.len(),
        "a point per case, one per algorithm in the legend"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["results"][0]["id"], "tiny");
}

/// `--channels-last`: conv2d and conv_transpose2d rows run with NHWC input and output,
/// spot-checked in that layout against the NCHW reference (a wrong layout fails the check);
/// the other ops' rows are n/a.
#[test]
fn channels_last_rows_are_timed_and_checked() {
    let Some(ctx) = common::gpu() else { return };
    let suite = "| id | op | N | Cin | H x W | Cout | kernel | stride | pad | dil | groups | extra |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|---|\n\
                 | tiny | conv2d | 2 | 8 | 12x10 | 16 | 3x3 | 1 | 1 | 1 | 1 | |\n\
                 | tiny_dw | conv2d | 1 | 8 | 9x9 | 8 | 3 | 2 | 1 | 1 | 8 | depthwise |\n\
                 | tiny_up | conv_transpose2d | 1 | 8 | 7x7 | 4 | 4x4 | 2 | 1 | 1 | 1 | |\n\
                 | dcn | deform_conv2d | 1 | 4 | 8x8 | 4 | 3x3 | 1 | 1 | 1 | 1 | |\n";
    let cases = parse_suite(suite).unwrap();
    let opts = BenchOptions {
        warmup: 1,
        runs: 3,
        min_time: std::time::Duration::ZERO,
        check_points: 64,
        channels_last: true,
        ..Default::default()
    };
    let results: Vec<_> = cases.iter().map(|c| run_case(ctx, c, Algorithm::Auto, &opts)).collect();
    for r in &results[..3] {
        assert!(r.ok() && r.check_max_err.unwrap() < 1e-5, "{r:?}");
        assert!(r.algorithm.contains("channels_last → channels_last"), "{}", r.algorithm);
    }
    assert!(results[3].status.starts_with("n/a"), "{:?}", results[3]);
}

#[test]
fn every_default_suite_row_is_known() {
    let cases = parse_suite(DEFAULT_SUITE).unwrap();
    for c in cases.iter().filter(|c| c.op == wgconv::bench::BenchOp::Conv2d) {
        let p = c.conv2d_params(Algorithm::Auto);
        let w = [c.c_out as usize, (c.c_in / c.groups) as usize, c.kh as usize, c.kw as usize];
        p.validate(&[c.n as usize, c.c_in as usize, c.h as usize, c.w as usize], &w, None).unwrap();
    }
}

#[test]
fn cli_bench_rejects_unknown_ids_and_algorithms() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_wgconv")).args(args).output().unwrap();
    let out = run(&["bench", "--only", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case 'nope'"));
    let out = run(&["bench", "--algo", "fft"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn cli_bench_quick_on_one_case() {
    let Some(ctx) = common::gpu() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let csv = scratch.path().join("bench.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_wgconv"))
        .args(["bench", "--quick", "--no-ceilings", "--only", "r50_c5", "--batch", "1", "--csv", csv.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("r50_c5") && stdout.contains("ok"), "{stdout}");
    let text = std::fs::read_to_string(&csv).unwrap();
    // what Auto picks for r50_c5 on this adapter (a fresh process, the same default config)
    let p = wgconv::Conv2dParams { padding: wgconv::Padding::Symmetric([1, 1]), ..Default::default() };
    let g = p.validate(&[1, 512, 7, 7], &[512, 512, 3, 3], None).unwrap();
    let algo = wgconv::ops::conv2d::auto_algorithm(ctx, &g).name();
    assert!(text.lines().nth(1).unwrap().starts_with(&format!("r50_c5,conv2d,{algo},\"ok\"")), "{text}");
}

/// `--profile`: every launch of a call is timed on its own, in the order and with the
/// kernels and grids its plan lists (what `explain` prints), forward and backward; the
/// report prints them per case, and a run without it carries no profile.
#[test]
fn profile_times_every_launch_its_plan_lists() {
    let Some(ctx) = common::gpu() else { return };
    if !ctx.device().features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        return;
    }
    let suite = "| id | op | N | Cin | H x W | Cout | kernel | stride | pad | dil | groups | extra |\n\
                 |---|---|---|---|---|---|---|---|---|---|---|---|\n\
                 | tiny | conv2d | 2 | 8 | 12x10 | 16 | 3x3 | 1 | 1 | 1 | 1 | |\n";
    let case = &parse_suite(suite).unwrap()[0];
    let opts = BenchOptions {
        warmup: 1,
        runs: 2,
        min_time: std::time::Duration::ZERO,
        check_points: 16,
        profile: true,
        ..Default::default()
    };
    let fwd = run_case(ctx, case, Algorithm::Auto, &opts);
    let bwd = wgconv::bench::run_backward_case(ctx, case, &opts);
    let (x, w) = ([2, 8, 12, 10], [16, 8, 3, 3]);
    let p = case.conv2d_params(Algorithm::Auto);
    let f32 = wgconv::DType::F32;
    let fwd_plan = wgconv::ops::conv2d::plan_conv2d(ctx, &x, &w, Some(&[16]), f32, &p).unwrap();
    let all = wgconv::ops::conv2d_backward::Grads::ALL;
    let bwd_plan = wgconv::ops::conv2d_backward::plan_conv2d_backward(ctx, &x, &w, &p, f32, all).unwrap();
    assert!(bwd_plan.steps.len() > 1, "{bwd_plan}");
    for (r, steps) in [(&fwd, &fwd_plan.steps), (&bwd, &bwd_plan.steps)] {
        assert!(r.ok(), "{r:?}");
        let prof = r.profile.as_ref().expect("a profile");
        assert_eq!((prof.runs, prof.untimed), (3, 0));
        let got: Vec<(&str, [u32; 3])> = prof.launches.iter().map(|l| (l.kernel.as_str(), l.workgroups)).collect();
        let planned: Vec<(&str, [u32; 3])> = steps.iter().map(|s| (s.shader.name(), s.workgroups)).collect();
        assert_eq!(got, planned, "{}", r.op.name());
        assert!(prof.launches.iter().all(|l| l.median_ms.is_finite() && l.median_ms >= 0.0), "{prof:?}");
        assert!(prof.launches.iter().map(|l| l.median_ms).sum::<f64>() > 0.0, "{prof:?}");
    }
    let report = Report::new(ctx, None, vec![fwd, bwd]);
    let table = report.table();
    assert!(table.contains("tiny conv2d_backward") && table.contains("launches, each in a pass of its own"), "{table}");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["results"][1]["profile"]["launches"].as_array().is_some_and(|l| l.len() == bwd_plan.steps.len()));
    let plain = run_case(ctx, case, Algorithm::Auto, &BenchOptions { profile: false, ..opts });
    assert!(plain.profile.is_none());
    assert!(serde_json::to_value(Report::new(ctx, None, vec![plain])).unwrap()["results"][0].get("profile").is_none());
}

/// A profile times what its own thread records: the same call recorded by another thread on
/// the same context meanwhile runs unprofiled. (It used to land in the profile: tests sharing
/// a context failed `--profile` with "the runs recorded different launches".)
#[test]
fn a_profile_times_only_what_its_own_thread_records() {
    use wgconv::{Conv2dParams, DType, HostTensor, Tensor};
    let Some(ctx) = common::fresh_gpu() else { return };
    if !ctx.device().features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        return;
    }
    let (xs, ws) = ([1, 4, 8, 8], [4, 4, 3, 3]);
    let x = Tensor::from_host(&ctx, &HostTensor::random(&xs, 1)).unwrap();
    let w = Tensor::from_host(&ctx, &HostTensor::random(&ws, 2)).unwrap();
    let p = Conv2dParams::default();
    let (y, other) = (Tensor::empty(&ctx, &[1, 4, 6, 6]).unwrap(), Tensor::empty(&ctx, &[1, 4, 6, 6]).unwrap());
    let mut recorded_elsewhere = 0;
    let prof = wgconv::timing::profile_op(&ctx, 2, |encoder| {
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut e = ctx.device().create_command_encoder(&Default::default());
                wgconv::conv2d_into(&ctx, &mut e, &x, &w, None, &p, &other).unwrap();
                ctx.submit(e).unwrap();
            });
        });
        recorded_elsewhere += 1;
        wgconv::conv2d_into(&ctx, encoder, &x, &w, None, &p, &y).map(|_| ())
    })
    .unwrap()
    .expect("timestamps");
    let plan = wgconv::plan_conv2d(&ctx, &xs, &ws, None, DType::F32, &p).unwrap();
    assert_eq!(recorded_elsewhere, 2);
    let got: Vec<&str> = prof.launches.iter().map(|l| l.kernel.as_str()).collect();
    let planned: Vec<&str> = plan.steps.iter().map(|s| s.shader.name()).collect();
    assert_eq!(got, planned);
}
