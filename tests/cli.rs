//! The `wgconv` binary: exit codes and one-line messages.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgconv"))
}

fn data(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv2d").join(case).join(file)
}

/// A scratch file of this test binary: under the target directory's `tmp` (cargo's
/// `CARGO_TARGET_TMPDIR`), each name written before it is read, so nothing is left in the
/// system's temporary directory.
fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&d).unwrap();
    // (no file of an earlier run stands in for one this run should write)
    let _ = std::fs::remove_file(d.join(name));
    d.join(name)
}

/// Runs and returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// stderr without the Vulkan loader's XDG_RUNTIME_DIR chatter.
fn ours(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.contains("XDG_RUNTIME_DIR")).collect()
}

fn assert_one_line_error(code: i32, stderr: &str, needle: &str) {
    assert_ne!(code, 0);
    let lines = ours(stderr);
    assert_eq!(lines.len(), 1, "expected one line, got {lines:?}");
    assert!(lines[0].starts_with("wgconv: error:") && lines[0].contains(needle), "{lines:?}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn run_conv2d_verify_on_a_golden_case() {
    if common::gpu().is_none() {
        return;
    }
    let out = tmp("y.npy");
    let case = "stride2_dil2_asym_pad";
    let (code, stdout, stderr) = run(&[
        "run",
        "conv2d",
        "--input",
        data(case, "input.npy").to_str().unwrap(),
        "--weight",
        data(case, "weight.npy").to_str().unwrap(),
        "--bias",
        data(case, "bias.npy").to_str().unwrap(),
        "--stride",
        "2",
        "--padding",
        "2,1,0,3",
        "--dilation",
        "2,2",
        "--out",
        out.to_str().unwrap(),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("PASS"), "{stdout}");
    let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
    let (golden, _) = wgconv::HostTensor::read_npy(data(case, "output.npy")).unwrap();
    assert_eq!(y.shape, golden.shape);
    let g64: Vec<f64> = golden.data.iter().map(|&v| v as f64).collect();
    assert!(wgconv::verify::compare(&y.data, &g64).passes(Default::default()));
}

/// `--f16`: f16 storage, verified at the f16 tolerance, the output holding f16 values and
/// close to PyTorch's f32 result (within f16 rounding of the inputs and the output).
#[test]
fn run_conv2d_f16_verify_on_a_golden_case() {
    let Some(ctx) = common::gpu() else { return };
    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        eprintln!("SKIP: adapter lacks SHADER_F16");
        return;
    }
    let out = tmp("y16.npy");
    let case = "resnet_block_small";
    let f = |n: &str| data(case, n).to_str().unwrap().to_string();
    let (x, w, b) = (f("input.npy"), f("weight.npy"), f("bias.npy"));
    let args = ["run", "conv2d", "--input", &x, "--weight", &w, "--bias", &b, "--padding", "1", "--f16", "--verify"];
    let (code, stdout, stderr) = run(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("PASS") && stdout.contains(" f16 via "), "{stdout}");
    let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
    assert!(y.data.iter().all(|&v| half::f16::from_f32(v).to_f32() == v));
    let (golden, _) = wgconv::HostTensor::read_npy(data(case, "output.npy")).unwrap();
    let g64: Vec<f64> = golden.data.iter().map(|&v| v as f64).collect();
    let s = wgconv::verify::compare(&y.data, &g64);
    assert!(s.passes(wgconv::verify::Tolerance { rel_l2: 5e-3, abs: 5e-3 }), "{s}");
    assert!(!s.passes(Default::default()), "f16 storage cannot match f32 to 1e-5: {s}");
}

#[test]
fn bad_inputs_exit_nonzero_with_one_line() {
    let x = data("basic_3x3_pad1", "input.npy");
    let w = data("basic_3x3_pad1", "weight.npy");
    let (x, w) = (x.to_str().unwrap(), w.to_str().unwrap());
    let out = tmp("never.npy");
    let out = out.to_str().unwrap();

    let (code, _, err) = run(&["run", "conv2d", "--input", "/nonexistent.npy", "--weight", w, "--out", out]);
    assert_one_line_error(code, &err, "/nonexistent.npy");

    let (code, _, err) = run(&["run", "conv2d", "--input", x, "--weight", w, "--padding", "1,2,3", "--out", out]);
    assert_one_line_error(code, &err, "--padding");

    let (code, _, err) = run(&["run", "conv2d", "--input", x, "--weight", w, "--stride", "0", "--out", out]);
    assert_one_line_error(code, &err, "stride");

    // A 16-channel input with a 3-channel weight.
    let x16 = data("pointwise_1x1", "input.npy");
    let (code, _, err) = run(&["run", "conv2d", "--input", x16.to_str().unwrap(), "--weight", w, "--out", out]);
    assert_one_line_error(code, &err, "channel");

    let (code, _, err) = run(&["run", "conv2d", "--input", x, "--weight", w, "--groups", "2", "--out", out]);
    assert_one_line_error(code, &err, "groups");

    // complex numbers have no float32 reading (integers and bools are converted, with a note)
    let complex = tmp("complex.npy");
    let mut bytes = wgconv::npy::to_bytes(&[1], &[1.0]);
    let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
    bytes[at + 1..at + 3].copy_from_slice(b"c8");
    std::fs::write(&complex, bytes).unwrap();
    let (code, _, err) = run(&["run", "conv2d", "--input", complex.to_str().unwrap(), "--weight", w, "--out", out]);
    assert_one_line_error(code, &err, "dtype '<c8'");

    let garbage = tmp("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY\x01\x00\xff\xffnot a header").unwrap();
    let (code, _, err) = run(&["run", "conv2d", "--input", garbage.to_str().unwrap(), "--weight", w, "--out", out]);
    assert_one_line_error(code, &err, "npy");

    assert!(!Path::new(out).exists());
}

#[test]
fn info_names_the_adapter() {
    if common::gpu().is_none() {
        return;
    }
    let (code, stdout, _) = run(&["info"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("adapter") && stdout.contains("max_storage_buffer_binding_size"), "{stdout}");
    // (the uniform limits bound UniformA's windows)
    assert!(stdout.contains("max_uniform_buffer_binding_size"), "{stdout}");
}

#[test]
fn run_conv_transpose2d_verify_on_a_golden_case() {
    if common::gpu().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv_transpose2d/s3_output_padding");
    let out = tmp("yt.npy");
    let (x, w, b) = (dir.join("input.npy"), dir.join("weight.npy"), dir.join("bias.npy"));
    let (x, w, b) = (x.to_str().unwrap(), w.to_str().unwrap(), b.to_str().unwrap());
    let args = ["run", "conv_transpose2d", "--input", x, "--weight", w, "--bias", b, "--stride", "3"];
    let (code, stdout, stderr) =
        run(&[&args[..], &["--output-padding", "2,1", "--out", out.to_str().unwrap(), "--verify"]].concat());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // Auto: the output phases or, on CPU adapters where its GEMM runs the flat kernel, col2im
    assert!(stdout.contains("PASS") && stdout.contains(" f32 via "), "{stdout}");
    assert!(stdout.contains("via implicit_gemm") || stdout.contains("via gemm_col2im"), "{stdout}");
    let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
    let (golden, _) = wgconv::HostTensor::read_npy(dir.join("output.npy")).unwrap();
    let g64: Vec<f64> = golden.data.iter().map(|&v| v as f64).collect();
    assert!(wgconv::verify::compare(&y.data, &g64).passes(Default::default()));
    // f16 storage (where the adapter has SHADER_F16): the output phases, verified at the f16
    // tolerance against the reference of the rounded inputs
    if common::gpu().unwrap().device().features().contains(wgpu::Features::SHADER_F16) {
        let (code, stdout, stderr) =
            run(&[&args[..], &["--output-padding", "2,1", "--f16", "--out", out.to_str().unwrap(), "--verify"]]
                .concat());
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stdout.contains("PASS") && stdout.contains(" f16 via implicit_gemm"), "{stdout}");
    }

    // output_padding ≥ stride is a one-line error.
    let (code, _, err) = run(&[&args[..], &["--output-padding", "3", "--out", out.to_str().unwrap()]].concat());
    assert_one_line_error(code, &err, "output_padding");
}

#[test]
fn run_conv2d_backward_verify_on_a_golden_case() {
    if common::gpu().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv2d_backward/stride3_dil2_asym");
    let f = |n: &str| dir.join(format!("{n}.npy")).to_str().unwrap().to_string();
    let (dx, db) = (tmp("dx.npy"), tmp("db.npy"));
    let (x, w, dy) = (f("input"), f("weight"), f("grad_output"));
    let (code, stdout, stderr) = run(&[
        "run",
        "conv2d_backward",
        "--input",
        &x,
        "--weight",
        &w,
        "--grad-output",
        &dy,
        "--stride",
        "3,2",
        "--padding",
        "2,0,1,1",
        "--dilation",
        "2",
        "--out-grad-input",
        dx.to_str().unwrap(),
        "--out-grad-bias",
        db.to_str().unwrap(),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 2, "{stdout}");
    for (out, golden) in [(&dx, "grad_input"), (&db, "grad_bias")] {
        let (y, _) = wgconv::HostTensor::read_npy(out).unwrap();
        let (g, _) = wgconv::HostTensor::read_npy(dir.join(format!("{golden}.npy"))).unwrap();
        let g64: Vec<f64> = g.data.iter().map(|&v| v as f64).collect();
        assert!(wgconv::verify::compare(&y.data, &g64).passes(Default::default()), "{golden}");
    }
    let (code, _, err) = run(&["run", "conv2d_backward", "--input", &x, "--weight", &w, "--grad-output", &dy]);
    assert_one_line_error(code, &err, "--out-grad");
}

/// `run conv1d_backward`: conv2d_backward's flags with one value per axis; the gradients
/// asked for are written and each verified; a 2-value stride is refused in one line.
#[test]
fn run_conv1d_backward_verifies_each_gradient() {
    if common::gpu().is_none() {
        return;
    }
    let p =
        wgconv::Conv1dParams { stride: 2, padding: wgconv::Padding1d::Symmetric(1), groups: 2, ..Default::default() };
    let (x, w) = (wgconv::HostTensor::random(&[2, 4, 17], 1), wgconv::HostTensor::random(&[6, 2, 3], 2));
    let dy = wgconv::HostTensor::random(&p.validate(&x.shape, &w.shape, None).unwrap(), 3);
    let files = [("c1b_x.npy", &x), ("c1b_w.npy", &w), ("c1b_dy.npy", &dy)].map(|(name, t)| {
        let path = tmp(name);
        t.write_npy(&path).unwrap();
        path.to_str().unwrap().to_string()
    });
    let (gi, gw) = (tmp("c1b_gi.npy"), tmp("c1b_gw.npy"));
    let mut args = vec!["run", "conv1d_backward", "--input", &files[0], "--weight", &files[1]];
    args.extend(["--grad-output", &files[2], "--stride", "2", "--padding", "1", "--groups", "2"]);
    let mut ok = args.clone();
    ok.extend(["--out-grad-input", gi.to_str().unwrap(), "--out-grad-weight", gw.to_str().unwrap(), "--verify"]);
    let (code, stdout, stderr) = run(&ok);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 2, "{stdout}");
    let (rdx, rdw, _) = wgconv::reference::conv1d_backward(&x, &w, &dy, &p).unwrap();
    for (out, want, shape) in [(&gi, &rdx, &x.shape), (&gw, &rdw, &w.shape)] {
        let (y, _) = wgconv::HostTensor::read_npy(out).unwrap();
        assert_eq!(&y.shape, shape);
        assert!(wgconv::verify::compare(&y.data, want).passes(Default::default()));
    }
    let mut bad = args.clone();
    bad[9] = "2,2"; // the stride's value
    bad.extend(["--out-grad-input", gi.to_str().unwrap()]);
    let (code, _, err) = run(&bad);
    assert_one_line_error(code, &err, "--stride");
}

/// `run conv_transpose2d_backward`: the issue's flags (--output-padding, the forward's --bias);
/// every gradient asked for is written and verified; a bias of the wrong length and an
/// output_padding the backward pass cannot crop are refused in one line.
#[test]
fn run_conv_transpose2d_backward_verifies_each_gradient() {
    if common::gpu().is_none() {
        return;
    }
    let p = wgconv::ConvTranspose2dParams {
        stride: [2, 2],
        padding: wgconv::Padding::Symmetric([1, 1]),
        output_padding: [1, 1],
        groups: 2,
        ..Default::default()
    };
    let (x, w) = (wgconv::HostTensor::random(&[2, 4, 5, 6], 1), wgconv::HostTensor::random(&[4, 3, 3, 3], 2));
    let dy = wgconv::HostTensor::random(&p.output_shape(&x.shape, &w.shape).unwrap(), 3);
    let (b, b_bad) = (wgconv::HostTensor::random(&[6], 4), wgconv::HostTensor::random(&[5], 5));
    let files = [("ctb_x.npy", &x), ("ctb_w.npy", &w), ("ctb_dy.npy", &dy), ("ctb_b.npy", &b), ("ctb_bb.npy", &b_bad)]
        .map(|(name, t)| {
            let path = tmp(name);
            t.write_npy(&path).unwrap();
            path.to_str().unwrap().to_string()
        });
    let (gi, gw, gb) = (tmp("ctb_gi.npy"), tmp("ctb_gw.npy"), tmp("ctb_gb.npy"));
    let mut args = vec!["run", "conv_transpose2d_backward", "--input", &files[0], "--weight", &files[1]];
    args.extend(["--grad-output", &files[2], "--stride", "2", "--padding", "1", "--output-padding", "1"]);
    args.extend(["--groups", "2", "--out-grad-input", gi.to_str().unwrap()]);
    let mut ok = args.clone();
    ok.extend([
        "--bias",
        &files[3],
        "--out-grad-weight",
        gw.to_str().unwrap(),
        "--out-grad-bias",
        gb.to_str().unwrap(),
    ]);
    ok.push("--verify");
    let (code, stdout, stderr) = run(&ok);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 3, "{stdout}");
    let (rdx, rdw, rdb) = wgconv::reference::conv_transpose2d_backward(&x, &w, &dy, &p).unwrap();
    for (out, want, shape) in [(&gi, &rdx, &x.shape), (&gw, &rdw, &w.shape), (&gb, &rdb, &vec![6])] {
        let (y, _) = wgconv::HostTensor::read_npy(out).unwrap();
        assert_eq!(&y.shape, shape);
        assert!(wgconv::verify::compare(&y.data, want).passes(Default::default()));
    }
    let mut bad = args.clone();
    bad.extend(["--bias", &files[4]]);
    let (code, _, err) = run(&bad);
    assert_one_line_error(code, &err, "bias");
    // stride 1, dilation 2, output_padding 1 past a padding of 0: refused, not cropped wrong
    let q = wgconv::ConvTranspose2dParams { dilation: [2, 2], output_padding: [1, 1], ..Default::default() };
    let w1 = wgconv::HostTensor::random(&[4, 6, 3, 3], 6);
    let dy1 = wgconv::HostTensor::random(&q.output_shape(&x.shape, &w1.shape).unwrap(), 7);
    let (w1f, dy1f) = (tmp("ctb_w1.npy"), tmp("ctb_dy1.npy"));
    w1.write_npy(&w1f).unwrap();
    dy1.write_npy(&dy1f).unwrap();
    let (code, _, err) = run(&[
        "run",
        "conv_transpose2d_backward",
        "--input",
        &files[0],
        "--weight",
        w1f.to_str().unwrap(),
        "--grad-output",
        dy1f.to_str().unwrap(),
        "--dilation",
        "2",
        "--output-padding",
        "1",
        "--out-grad-input",
        gi.to_str().unwrap(),
    ]);
    assert_one_line_error(code, &err, "output_padding");
}

/// `run deform_conv2d_backward`: the issue's flags (--offset, --mask, --out-grad-offset,
/// --out-grad-mask, the forward's --bias); every gradient asked for is written and verified;
/// --out-grad-mask without --mask and a grad_output of the wrong shape are one-line errors.
#[test]
fn run_deform_conv2d_backward_verifies_each_gradient() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::HostTensor;
    let p = wgconv::DeformConv2dParams {
        stride: [2, 1],
        padding: wgconv::Padding::Symmetric([1, 1]),
        ..Default::default()
    };
    let (x, w) = (HostTensor::random(&[2, 4, 6, 5], 11), HostTensor::random(&[3, 4, 3, 3], 12));
    let g = p.validate(&x.shape, &w.shape, None).unwrap();
    let (ho, wo) = (g.h_out as usize, g.w_out as usize);
    // two offset groups; offsets in [−1.5, 1.5]
    let mut o = HostTensor::random(&[2, 36, ho, wo], 13);
    o.data.iter_mut().for_each(|v| *v *= 1.5);
    let (m, dy) = (HostTensor::random(&[2, 18, ho, wo], 14), HostTensor::random(&[2, 3, ho, wo], 15));
    let (b, dy_bad) = (HostTensor::random(&[3], 16), HostTensor::random(&[2, 3, ho, wo + 1], 17));
    let files = [
        ("dcb_x", &x),
        ("dcb_w", &w),
        ("dcb_o", &o),
        ("dcb_m", &m),
        ("dcb_dy", &dy),
        ("dcb_b", &b),
        ("dcb_dyb", &dy_bad),
    ]
    .map(|(name, t)| {
        let path = tmp(&format!("{name}.npy"));
        t.write_npy(&path).unwrap();
        path.to_str().unwrap().to_string()
    });
    let outs = ["dcb_gi", "dcb_gw", "dcb_go", "dcb_gm", "dcb_gb"].map(|n| tmp(&format!("{n}.npy")));
    let out = |i: usize| outs[i].to_str().unwrap().to_string();
    let mut args: Vec<String> =
        ["run", "deform_conv2d_backward", "--input", &files[0], "--weight", &files[1]].map(String::from).to_vec();
    args.extend(["--offset", &files[2], "--stride", "2,1", "--padding", "1"].map(String::from));
    let with =
        |extra: &[&str]| -> Vec<String> { args.iter().cloned().chain(extra.iter().map(|s| s.to_string())).collect() };
    let ok = with(&[
        "--mask",
        &files[3],
        "--bias",
        &files[5],
        "--grad-output",
        &files[4],
        "--out-grad-input",
        &out(0),
        "--out-grad-weight",
        &out(1),
        "--out-grad-offset",
        &out(2),
        "--out-grad-mask",
        &out(3),
        "--out-grad-bias",
        &out(4),
        "--verify",
    ]);
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let (code, stdout, stderr) = run(&strs(&ok));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 5, "{stdout}");
    let r = wgconv::reference::deform_conv2d_backward(&x, &w, &o, Some(&m), &dy, &p).unwrap();
    let wants =
        [(&r.grad_input, &x.shape), (&r.grad_weight, &w.shape), (&r.grad_offset, &o.shape), (&r.grad_mask, &m.shape)];
    for (i, (want, shape)) in wants.into_iter().enumerate() {
        let (y, _) = HostTensor::read_npy(&outs[i]).unwrap();
        assert_eq!(&y.shape, shape);
        assert!(wgconv::verify::compare(&y.data, want).passes(Default::default()), "output {i}");
    }
    let (code, _, err) = run(&strs(&with(&["--grad-output", &files[4], "--out-grad-mask", &out(3)])));
    assert_one_line_error(code, &err, "--mask");
    let (code, _, err) =
        run(&strs(&with(&["--mask", &files[3], "--grad-output", &files[6], "--out-grad-input", &out(0)])));
    assert_one_line_error(code, &err, "grad_output");
}

/// `run max_pool2d_backward` and `run avg_pool2d_backward`: grad_input written and verified
/// (the reference's values); a grad_output of the wrong shape is a one-line error.
#[test]
fn run_pool2d_backward_verifies_grad_input() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::HostTensor;
    let p = wgconv::Pool2dParams {
        kernel: [3, 3],
        stride: Some([2, 2]),
        padding: [1, 1],
        count_include_pad: false,
        ..Default::default()
    };
    let x = HostTensor::random(&[2, 3, 9, 8], 21);
    let dy = HostTensor::random(&p.validate(&x.shape).unwrap(), 22);
    let bad = HostTensor::random(&[2, 3, 5, 5], 23);
    let [xf, dyf, badf, out] = ["pb_x", "pb_dy", "pb_bad", "pb_gi"].map(|n| tmp(&format!("{n}.npy")));
    for (f, t) in [(&xf, &x), (&dyf, &dy), (&badf, &bad)] {
        t.write_npy(f).unwrap();
    }
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    for (op, mode) in [("max_pool2d_backward", wgconv::PoolMode::Max), ("avg_pool2d_backward", wgconv::PoolMode::Avg)] {
        let args = |dy: &str| -> Vec<String> {
            ["run", op, "--input", &s(&xf), "--grad-output", dy, "--kernel", "3", "--stride", "2", "--padding", "1"]
                .into_iter()
                .chain(["--count-include-pad", "false", "--out-grad-input", &s(&out), "--verify"])
                .map(String::from)
                .collect()
        };
        let ok = args(&s(&dyf));
        let (code, stdout, stderr) = run(&ok.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        assert!(stdout.contains("PASS"), "{stdout}");
        let (g, _) = HostTensor::read_npy(&out).unwrap();
        let want = wgconv::reference::pool2d_backward(&x, &dy, &p, mode).unwrap();
        assert!(wgconv::verify::compare(&g.data, &want).passes(Default::default()), "{op}");
        let wrong = args(&s(&badf));
        let (code, _, err) = run(&wrong.iter().map(String::as_str).collect::<Vec<_>>());
        assert_one_line_error(code, &err, "grad_output");
    }
}

/// `run conv3d_backward`: D,H,W flags; every gradient asked for is written and verified.
#[test]
fn run_conv3d_backward_verifies_each_gradient() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::HostTensor;
    let p = wgconv::Conv3dParams {
        stride: [1, 2, 1],
        padding: wgconv::Padding3d::Symmetric([1, 0, 1]),
        ..Default::default()
    };
    let (x, w) = (HostTensor::random(&[2, 3, 4, 5, 4], 31), HostTensor::random(&[2, 3, 3, 2, 3], 32));
    let dy = HostTensor::random(&p.validate(&x.shape, &w.shape, None).unwrap().output_shape(), 33);
    let [xf, wf, dyf, gi, gw, gb] =
        ["c3b_x", "c3b_w", "c3b_dy", "c3b_gi", "c3b_gw", "c3b_gb"].map(|n| tmp(&format!("{n}.npy")));
    for (f, t) in [(&xf, &x), (&wf, &w), (&dyf, &dy)] {
        t.write_npy(f).unwrap();
    }
    let s = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    let args: Vec<String> =
        ["run", "conv3d_backward", "--input", &s(&xf), "--weight", &s(&wf), "--grad-output", &s(&dyf)]
            .into_iter()
            .chain([
                "--stride",
                "1,2,1",
                "--padding",
                "1,0,1",
                "--out-grad-input",
                &s(&gi),
                "--out-grad-weight",
                &s(&gw),
            ])
            .chain(["--out-grad-bias", &s(&gb), "--verify"])
            .map(String::from)
            .collect();
    let (code, stdout, stderr) = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 3, "{stdout}");
    let (rdx, rdw, rdb) = wgconv::reference::conv3d_backward(&x, &w, &dy, &p).unwrap();
    for (out, want) in [(&gi, &rdx), (&gw, &rdw), (&gb, &rdb)] {
        let (y, _) = HostTensor::read_npy(out).unwrap();
        assert!(wgconv::verify::compare(&y.data, want).passes(Default::default()));
    }
}

/// PyTorch's pooling options on `run`: `--ceil-mode` bare or with a value, `--dilation` (max),
/// `--divisor-override` and a bare `--count-include-pad` (avg), each output the reference's;
/// dilation on avg_pool2d is a one-line error, as in PyTorch (no such argument).
#[test]
fn run_pool2d_takes_pytorch_options() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::{HostTensor, Pool2dParams, PoolMode};
    let x = HostTensor::random(&[1, 2, 9, 8], 41);
    let [xf, yf] = ["po_x", "po_y"].map(|n| tmp(&format!("{n}.npy")));
    x.write_npy(&xf).unwrap();
    let (xs, ys) = (xf.to_str().unwrap(), yf.to_str().unwrap());
    let max =
        Pool2dParams { kernel: [3, 3], stride: Some([2, 2]), dilation: [2, 1], ceil_mode: true, ..Default::default() };
    let avg = Pool2dParams {
        kernel: [3, 3],
        stride: Some([2, 2]),
        padding: [1, 1],
        ceil_mode: true,
        divisor_override: Some(4),
        ..Default::default()
    };
    let runs: [(&str, Vec<&str>, Pool2dParams, PoolMode); 2] = [
        ("max_pool2d", vec!["--kernel", "3", "--stride", "2", "--dilation", "2,1", "--ceil-mode"], max, PoolMode::Max),
        (
            "avg_pool2d",
            vec![
                "--kernel",
                "3",
                "--stride",
                "2",
                "--padding",
                "1",
                "--ceil-mode",
                "true",
                "--count-include-pad",
                "--divisor-override",
                "4",
            ],
            avg,
            PoolMode::Avg,
        ),
    ];
    for (op, flags, p, mode) in runs {
        let mut args = vec!["run", op, "--input", xs, "--out", ys, "--verify"];
        args.extend(flags);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{op}: {stdout}\n{stderr}");
        assert!(stdout.contains("PASS"), "{stdout}");
        let (y, _) = HostTensor::read_npy(&yf).unwrap();
        let (shape, want) = wgconv::reference::pool2d(&x, &p, mode).unwrap();
        assert_eq!(y.shape, shape.to_vec(), "{op}");
        assert!(wgconv::verify::compare(&y.data, &want).passes(Default::default()), "{op}");
    }
    let (code, _, err) = run(&["run", "avg_pool2d", "--input", xs, "--kernel", "3", "--dilation", "2", "--out", ys]);
    assert_one_line_error(code, &err, "dilation");
}

/// `explain` on ResNet-18's stem (numbers worked out by hand: 3·64·7·7 + 64 parameters,
/// 64·112·112·3·49 MACs) and on a stack (the receptive field grows 7 → 11 → 19: rf +=
/// d·(k−1)·jump); a malformed line is named in one line; `--json` writes the same numbers.
#[test]
fn explain_gives_a_layers_and_a_stacks_numbers() {
    if common::gpu().is_none() {
        return;
    }
    let (code, out, err) = run(&[
        "explain",
        "conv2d",
        "--input-shape",
        "1,3,224,224",
        "--weight-shape",
        "64,3,7,7",
        "--stride",
        "2",
        "--padding",
        "3",
        "--bias",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    for want in [
        "output [1, 64, 112, 112]",
        "parameters 9472 ",
        "MACs 118013952 ",
        "FLOPs 236027904",
        "receptive field 7×7   jump 2×2",
        "algorithm ",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    let layers = tmp("explain_layers.txt");
    std::fs::write(&layers, "# stem\nconv2d 64 k=7 s=2 p=3 bias\nmax_pool2d k=3 s=2 p=1\nconv2d 64 k=3 p=1\n").unwrap();
    let json = tmp("explain.json");
    let (code, out, err) = run(&[
        "explain",
        "--input-shape",
        "2,3,224,224",
        "--layers",
        layers.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("receptive field 11×11   jump 4×4"), "{out}");
    assert!(out.contains("stack: 3 layers, [2, 3, 224, 224] → [2, 64, 56, 56]"), "{out}");
    assert!(out.contains("receptive field 19×19, jump 4×4"), "{out}");
    let facts: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(facts[2]["parameters"], 64 * 64 * 9);
    assert_eq!(facts[1]["output_shape"], serde_json::json!([2, 64, 56, 56]));
    std::fs::write(&layers, "conv2d 64 k=7 s=2\nconv2d k=3\n").unwrap();
    let (code, _, err) = run(&["explain", "--input-shape", "1,3,32,32", "--layers", layers.to_str().unwrap()]);
    assert_one_line_error(code, &err, "line 2");
}

/// `explain conv2d_backward`: the ResNet-18 stem's gradients (MACs twice the forward's,
/// 2·118013952; memory counted by hand: x and dy in, dx, dw and db out, grad_input's col2im
/// columns, which explain once reported as no workspace) through the GEMM paths, and
/// MobileNetV2's depthwise 3x3 at stride 2 through the depthwise kernels: grad_input in one
/// launch of blocks holding the stride's four phases, then grad_weight (with grad_bias when
/// the conv has a bias).
#[test]
fn explain_gives_a_backward_pass_its_numbers_and_launches() {
    if common::gpu().is_none() {
        return;
    }
    let args = |input: &'static str, weight: &'static str, extra: &[&'static str]| {
        let mut a = vec!["explain", "conv2d_backward", "--input-shape", input, "--weight-shape", weight];
        a.extend_from_slice(extra);
        a
    };
    let (code, out, err) = run(&args("1,3,224,224", "64,3,7,7", &["--stride", "2", "--padding", "3", "--bias"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let mib = |b: u64| format!("{:.2} MiB", b as f64 / (1 << 20) as f64);
    let (x, dy, w) = (3 * 224 * 224 * 4, 64 * 112 * 112 * 4, 64 * 3 * 49 * 4);
    for want in [
        "conv2d_backward 3→64".to_string(),
        "output [1, 64, 112, 112]".into(),
        "MACs 236027904 ".into(),
        format!("memory: input {}, weight {}, output {}", mib(x + dy), mib(w), mib(x + w + 64 * 4)),
        // grad_input 64 → 3 channels runs col2im: its columns, 3·7·7 rows of 112·112 floats
        format!("workspace {}", mib(3 * 49 * 112 * 112 * 4)),
        "col2im".into(),
        "algorithm gemm_bwd".into(),
    ] {
        assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    }
    let (code, out, err) =
        run(&args("1,144,56,56", "144,1,3,3", &["--stride", "2", "--padding", "1", "--groups", "144"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("algorithm depthwise_bwd"), "{out}");
    let blocks = out.lines().filter(|l| l.contains("grad_input, depthwise, blocks of every stride phase")).count();
    assert_eq!(blocks, 1, "{out}");
    // grad_input (the four phases in one launch) and grad_weight (no --bias: no grad_bias)
    assert!(out.contains("2 launch(es)"), "{out}");
    // with a bias, grad_bias comes from grad_weight's launch (no channel sums of their own)
    let (code, out, err) =
        run(&args("1,144,56,56", "144,1,3,3", &["--stride", "2", "--padding", "1", "--groups", "144", "--bias"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("grad_weight and grad_bias, depthwise") && out.contains("2 launch(es)"), "{out}");
    assert!(!out.contains("channel_sum"), "{out}");
    let (code, _, err) = run(&["explain", "conv2d_backward", "--input-shape", "1,3,8,8"]);
    assert_one_line_error(code, &err, "--weight-shape");
}

/// `explain` beyond conv2d (numbers worked out by hand): a transposed conv's MACs (every
/// input pixel times every tap) and its receptive field and fractional jump (an output of a
/// 4x4 stride-2 upsampling reads 2 inputs per axis, ½ an input apart), a deform_conv2d's
/// input bytes (its offset and mask counted), conv1d's one axis and conv3d's three, and a
/// decoder stack through `--layers`.
#[test]
fn explain_gives_transposed_deformable_1d_and_3d_layers_their_numbers() {
    if common::gpu().is_none() {
        return;
    }
    let explain = |args: &[&str]| {
        let (code, out, err) = run(&[&["explain"], args].concat());
        assert_eq!(code, 0, "{out}\n{err}");
        out
    };
    let has = |out: &str, want: &[String]| {
        for w in want {
            assert!(out.contains(w.as_str()), "missing `{w}` in:\n{out}");
        }
    };
    let mib = |b: u64| format!("{:.2} MiB", b as f64 / (1 << 20) as f64);
    let out = explain(&[
        "conv_transpose2d",
        "--input-shape",
        "1,64,32,32",
        "--weight-shape",
        "64,32,4,4",
        "--stride",
        "2",
        "--padding",
        "1",
        "--bias",
    ]);
    has(
        &out,
        &[
            "output [1, 32, 64, 64]".into(),
            format!("parameters {} ", 64 * 32 * 16 + 32),
            format!("MACs {} ", 64 * 32 * 32 * 32 * 16),
            "receptive field 2×2   jump 1/2×1/2".into(),
        ],
    );
    let out = explain(&[
        "deform_conv2d",
        "--input-shape",
        "1,64,56,56",
        "--weight-shape",
        "64,64,3,3",
        "--padding",
        "1",
        "--mask",
        "--offset-groups",
        "2",
    ]);
    let (x, offset, mask) = (64 * 56 * 56 * 4, 2 * 2 * 9 * 56 * 56 * 4, 2 * 9 * 56 * 56 * 4);
    has(
        &out,
        &[
            "offset_groups 2 +mask".into(),
            format!("MACs {} ", 64u64 * 56 * 56 * 64 * 9),
            format!("memory: input {}", mib(x + offset + mask)),
        ],
    );
    let out = explain(&["conv1d", "--input-shape", "2,80,3000", "--weight-shape", "384,80,3", "--padding", "1"]);
    has(
        &out,
        &[
            "output [2, 384, 3000]".into(),
            format!("MACs {} ", 2u64 * 384 * 3000 * 80 * 3),
            "receptive field 3   jump 1\n".into(),
        ],
    );
    let out = explain(&[
        "conv3d",
        "--input-shape",
        "1,3,16,112,112",
        "--weight-shape",
        "64,3,3,7,7",
        "--stride",
        "1,2,2",
        "--padding",
        "1,3,3",
    ]);
    has(
        &out,
        &[
            "output [1, 64, 16, 56, 56]".into(),
            format!("MACs {} ", 64u64 * 16 * 56 * 56 * 3 * 3 * 7 * 7),
            "receptive field 3×7×7   jump 1×2×2".into(),
            "vol2col_gemm".into(),
        ],
    );
    // down 2, up 2 (rf 3 → 5: each upsampled output reads 2 of the conv's outputs, 2 apart),
    // a 3x3 (rf 7), up 2 again with output_padding
    let layers = tmp("explain_decoder.txt");
    std::fs::write(&layers, "conv2d 64 k=3 s=2 p=1\nconv_transpose2d 32 k=4 s=2 p=1\nconv2d 16 k=3 p=1\nconv_transpose2d 8 k=3 s=2 p=1 op=1\n").unwrap();
    let out = explain(&["--input-shape", "1,3,64,64", "--layers", layers.to_str().unwrap()]);
    let fields: Vec<&str> = out.lines().filter(|l| l.starts_with("  receptive field")).collect();
    assert_eq!(
        fields,
        [
            "  receptive field 3×3   jump 2×2",
            "  receptive field 5×5   jump 1×1",
            "  receptive field 7×7   jump 1×1",
            "  receptive field 9×9   jump 1/2×1/2",
        ]
    );
    has(&out, &["stack: 4 layers, [1, 3, 64, 64] → [1, 8, 128, 128]".into()]);
}

#[test]
fn run_deform_conv2d_verify_on_a_golden_case() {
    if common::gpu().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/deform_conv2d/offset_groups2_groups2");
    let f = |n: &str| dir.join(format!("{n}.npy")).to_str().unwrap().to_string();
    let out = tmp("yd.npy");
    let (x, w, o, m, b) = (f("input"), f("weight"), f("offset"), f("mask"), f("bias"));
    let (code, stdout, stderr) = run(&[
        "run",
        "deform_conv2d",
        "--input",
        &x,
        "--weight",
        &w,
        "--offset",
        &o,
        "--mask",
        &m,
        "--bias",
        &b,
        "--padding",
        "1",
        "--groups",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("PASS") && stdout.contains("v2") && stdout.contains("2 offset group"), "{stdout}");
    let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
    let (g, _) = wgconv::HostTensor::read_npy(dir.join("output.npy")).unwrap();
    let g64: Vec<f64> = g.data.iter().map(|&v| v as f64).collect();
    assert!(wgconv::verify::compare(&y.data, &g64).passes(Default::default()));
    // The input as offset: its 4 channels are no multiple of 2·kh·kw.
    let (code, _, err) = run(&[
        "run",
        "deform_conv2d",
        "--input",
        &x,
        "--weight",
        &w,
        "--offset",
        &x,
        "--groups",
        "2",
        "--padding",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(code, &err, "offset");
}

/// The field case `f16_out_of_range` (inputs up to 3e5): `--f16` refuses to round them to ±inf
/// (one line naming the tensor, the count and the largest magnitude); with
/// `--allow-f16-overflow`, `--verify` fails because every output is non-finite where the f32
/// answer is finite (it used to print PASS).
#[test]
fn f16_out_of_range_is_refused_and_never_verified() {
    if common::gpu().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/field/f16_out_of_range");
    let (x, w) = (dir.join("x.npy"), dir.join("w.npy"));
    let out = tmp("f16_range.npy");
    let args = ["run", "conv2d", "--input", x.to_str().unwrap(), "--weight", w.to_str().unwrap()];
    let mut refused = args.to_vec();
    refused.extend(["--padding", "1", "--f16", "--verify", "--out", out.to_str().unwrap()]);
    let (code, _, stderr) = run(&refused);
    assert_eq!(code, 2, "{stderr}");
    assert_one_line_error(
        code,
        &stderr,
        "value(s) of the input exceed f16's range (±65504; largest magnitude 3.1141944e5)",
    );
    // The refusal comes before any device; the run past it needs SHADER_F16 (a GL adapter
    // has none).
    if !common::gpu().unwrap().device().features().contains(wgpu::Features::SHADER_F16) {
        eprintln!("SKIP: adapter lacks SHADER_F16");
        return;
    }
    let mut allowed = refused.clone();
    allowed.push("--allow-f16-overflow");
    let (code, stdout, stderr) = run(&allowed);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stdout.contains("where the f32 reference of the unrounded inputs is finite: FAIL"), "{stdout}");
}

/// The field cases `empty_batch` (`x` `[0, 3, 3, 3]`, once refused), `unbatched_chw` (`x`
/// `[3, 6, 6]`, once refused) and `npy_fortran_order` (`x` saved from a transposed array,
/// `fortran_order: True`, once refused): PyTorch's answers, verified.
#[test]
fn run_takes_empty_batches_unbatched_inputs_and_fortran_order_files() {
    if common::gpu().is_none() {
        return;
    }
    let field = |case: &str, f: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/field").join(case).join(f).to_str().unwrap().to_string()
    };
    let cases = [
        ("empty_batch", vec!["--bias", "b.npy"]),
        ("unbatched_chw", vec!["--padding", "1"]),
        ("npy_fortran_order", vec!["--padding", "1"]),
    ];
    for (case, extra) in cases {
        let out = tmp(&format!("{case}.npy"));
        let mut args = vec!["run".to_string(), "conv2d".into(), "--input".into(), field(case, "x.npy")];
        args.extend(["--weight".into(), field(case, "w.npy")]);
        for a in extra {
            args.push(if a.ends_with(".npy") { field(case, a) } else { a.to_string() });
        }
        args.extend(["--out".into(), out.to_str().unwrap().into(), "--verify".into()]);
        let (code, stdout, stderr) = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, 0, "{case}: {stdout}\n{stderr}");
        assert!(stdout.contains("PASS"), "{case}: {stdout}");
        let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
        let (want, _) = wgconv::HostTensor::read_npy(field(case, "y.npy")).unwrap();
        assert_eq!(y.shape, want.shape, "{case}");
        let want: Vec<f64> = want.data.iter().map(|&v| v as f64).collect();
        assert!(wgconv::verify::compare(&y.data, &want).passes(wgconv::verify::Tolerance { rel_l2: 1e-4, abs: 1e-3 }));
    }
}

/// `run conv_transpose1d|conv_transpose3d` and their `_backward` on PyTorch's goldens: one
/// value or D,H,W per flag, `--output-padding`; each output and gradient written is
/// PyTorch's, `--verify` passes; `same` padding is a one-line error (as in PyTorch).
#[test]
fn run_conv_transpose1d_and_3d_give_pytorch_results() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::HostTensor;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (op, case, flags) in [
        ("conv_transpose1d", "stride2_pad_outpad", ["2", "1", "1", "1"]),
        ("conv_transpose1d", "dilated_groups", ["3", "2", "0", "2"]),
        ("conv_transpose3d", "stride_outpad_nonsquare", ["2,1,2", "0,1,1", "1,0,1", "1"]),
        ("conv_transpose3d", "dilated_groups", ["1,2,3", "1,0,2", "0", "2,1,2"]),
    ] {
        let dir = root.join(op).join(case);
        let f = |n: &str| dir.join(format!("{n}.npy")).to_str().unwrap().to_string();
        let groups = if case == "dilated_groups" { "2" } else { "1" };
        let [stride, padding, output_padding, dilation] = flags;
        let params = [
            "--stride",
            stride,
            "--padding",
            padding,
            "--output-padding",
            output_padding,
            "--dilation",
            dilation,
            "--groups",
            groups,
        ];
        let [x, w, b, dy] = ["input", "weight", "bias", "grad_output"].map(f);
        let out = tmp(&format!("{op}_{case}_y.npy"));
        let mut args = vec!["run", op, "--input", &x, "--weight", &w, "--bias", &b];
        let out_s = out.to_str().unwrap().to_string();
        args.extend(params);
        args.extend(["--out", &out_s, "--verify"]);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{op} {case}: {stdout}\n{stderr}");
        let (y, _) = HostTensor::read_npy(&out).unwrap();
        let want = HostTensor::read_npy(dir.join("output.npy")).unwrap().0;
        let want: Vec<f64> = want.data.iter().map(|&v| v as f64).collect();
        assert!(wgconv::verify::compare(&y.data, &want).passes(Default::default()), "{op} {case}");

        let backward = format!("{op}_backward");
        let grads = ["grad_input", "grad_weight", "grad_bias"].map(|g| tmp(&format!("{op}_{case}_{g}.npy")));
        let gs = grads.each_ref().map(|p| p.to_str().unwrap().to_string());
        let mut args = vec!["run", &backward, "--input", &x, "--weight", &w, "--grad-output", &dy];
        args.extend(params);
        args.extend(["--out-grad-input", &gs[0], "--out-grad-weight", &gs[1], "--out-grad-bias", &gs[2], "--verify"]);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{backward} {case}: {stdout}\n{stderr}");
        assert_eq!(stdout.matches("PASS").count(), 3, "{stdout}");
        for (file, name) in grads.iter().zip(["grad_input", "grad_weight", "grad_bias"]) {
            let (g, _) = HostTensor::read_npy(file).unwrap();
            let want = HostTensor::read_npy(dir.join(format!("{name}.npy"))).unwrap().0;
            let want: Vec<f64> = want.data.iter().map(|&v| v as f64).collect();
            assert!(wgconv::verify::compare(&g.data, &want).passes(Default::default()), "{backward} {case} {name}");
        }
    }
    let dir = root.join("conv_transpose3d/basic");
    let f = |n: &str| dir.join(format!("{n}.npy")).to_str().unwrap().to_string();
    let out = tmp("ct3_same.npy");
    let (code, _, err) = run(&[
        "run",
        "conv_transpose3d",
        "--input",
        &f("input"),
        "--weight",
        &f("weight"),
        "--padding",
        "same",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_one_line_error(code, &err, "'same' is not defined for conv_transpose3d");
}

/// NumPy archives and dtypes as users save them (`tests/data/npz/conv2d_inputs.npz` from
/// `np.savez_compressed`: x float64 in Fortran order, w float32, b int8): `--input f.npz:x`
/// reads each array, converted with a note; `--out y.npz` writes an archive whose array is
/// named after the output, PyTorch's answer; two gradients given one archive land in it
/// together; a missing name is a one-line error that lists the archive's arrays.
#[test]
fn run_reads_and_writes_npz_archives() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::HostTensor;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/npz");
    let arr = |n: &str| format!("{}:{n}", dir.join("conv2d_inputs.npz").display());
    let (x, w, b) = (arr("x"), arr("w"), arr("b"));
    let out = tmp("npz_out.npz");
    let out_s = out.to_str().unwrap();
    let args = ["run", "conv2d", "--input", &x, "--weight", &w, "--bias", &b, "--padding", "1", "--out", out_s];
    let (code, stdout, stderr) = run(&[&args[..], &["--verify"]].concat());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("converted from float64") && stderr.contains("converted from int8"), "{stderr}");
    let (y, _) = HostTensor::read_npy(format!("{out_s}:output")).unwrap();
    let want = HostTensor::read_npy(dir.join("conv2d_output.npy")).unwrap().0;
    assert_eq!(y.shape, want.shape);
    let want: Vec<f64> = want.data.iter().map(|&v| v as f64).collect();
    assert!(wgconv::verify::compare(&y.data, &want).passes(Default::default()));

    let dy = tmp("npz_dy.npy");
    HostTensor::random(&y.shape, 5).write_npy(&dy).unwrap();
    let grads = tmp("npz_grads.npz");
    let g = grads.to_str().unwrap();
    let dy_s = dy.to_str().unwrap();
    let args = ["run", "conv2d_backward", "--input", &x, "--weight", &w, "--grad-output", dy_s, "--padding", "1"];
    let (code, stdout, stderr) =
        run(&[&args[..], &["--out-grad-input", g, "--out-grad-weight", g, "--verify"]].concat());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 2, "{stdout}");
    let shape = |n: &str| HostTensor::read_npy(format!("{g}:{n}")).unwrap().0.shape;
    assert_eq!((shape("grad_input"), shape("grad_weight")), (vec![1, 3, 6, 5], vec![4, 3, 3, 3]));

    let (code, _, err) = run(&["run", "conv2d", "--input", &arr("nope"), "--weight", &w, "--out", out_s]);
    assert_one_line_error(code, &err, "has no array 'nope' (it has: ");
}

/// `--padding-mode` on `run conv1d|conv2d|conv3d`: PyTorch's `nn.ConvNd(padding_mode=...)`
/// answers (goldens), `--verify` passes; a transposed conv or an unknown mode is a one-line
/// error.
#[test]
fn run_takes_padding_modes() {
    if common::gpu().is_none() {
        return;
    }
    use wgconv::HostTensor;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/padding_mode");
    for (op, case, mode, flags) in [
        ("conv2d", "conv2d_reflect", "reflect", vec!["--padding", "1"]),
        ("conv2d", "conv2d_replicate_stride2", "replicate", vec!["--padding", "2,1", "--stride", "2", "--groups", "2"]),
        ("conv1d", "conv1d_circular", "circular", vec!["--padding", "3", "--stride", "2"]),
        ("conv3d", "conv3d_reflect", "reflect", vec!["--padding", "1,2,1"]),
    ] {
        let dir = root.join(case);
        let f = |n: &str| dir.join(format!("{n}.npy")).to_str().unwrap().to_string();
        let [x, w, b] = ["input", "weight", "bias"].map(f);
        let out = tmp(&format!("{case}.npy"));
        let out_s = out.to_str().unwrap().to_string();
        let mut args = vec!["run", op, "--input", &x, "--weight", &w, "--bias", &b, "--padding-mode", mode];
        args.extend(flags.iter().copied());
        args.extend(["--out", &out_s, "--verify"]);
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, 0, "{case}: {stdout}\n{stderr}");
        let (y, _) = HostTensor::read_npy(&out).unwrap();
        let want = HostTensor::read_npy(dir.join("output.npy")).unwrap().0;
        let want: Vec<f64> = want.data.iter().map(|&v| v as f64).collect();
        assert!(wgconv::verify::compare(&y.data, &want).passes(Default::default()), "{case}");
    }
    // f16 storage with a mode (im2col_gemm on f32 copies) and the backward pass with a mode
    let dir = root.join("conv2d_reflect");
    let f = |n: &str| dir.join(format!("{n}.npy")).to_str().unwrap().to_string();
    let [x, w, dy] = ["input", "weight", "grad_output"].map(f);
    let y16 = tmp("reflect_f16.npy");
    let y16 = y16.to_str().unwrap();
    let args = ["run", "conv2d", "--input", &x, "--weight", &w, "--padding", "1", "--padding-mode", "reflect"];
    let (code, stdout, stderr) = run(&[&args[..], &["--f16", "--out", y16, "--verify"]].concat());
    assert_eq!(code, 0, "f16: {stdout}\n{stderr}");
    assert!(stdout.contains("PASS") && stdout.contains("f16"), "{stdout}");
    let gw = tmp("reflect_gw.npy");
    let gw = gw.to_str().unwrap();
    let args = ["run", "conv2d_backward", "--input", &x, "--weight", &w, "--grad-output", &dy, "--padding", "1"];
    let (code, stdout, stderr) =
        run(&[&args[..], &["--padding-mode", "reflect", "--out-grad-weight", gw, "--verify"]].concat());
    assert_eq!(code, 0, "backward: {stdout}\n{stderr}");
    let (g, _) = HostTensor::read_npy(gw).unwrap();
    let want = HostTensor::read_npy(dir.join("grad_weight.npy")).unwrap().0;
    let want: Vec<f64> = want.data.iter().map(|&v| v as f64).collect();
    assert!(wgconv::verify::compare(&g.data, &want).passes(Default::default()), "grad_weight vs torch autograd");

    let x = data("basic_3x3_pad1", "input.npy");
    let w = data("basic_3x3_pad1", "weight.npy");
    let (x, w) = (x.to_str().unwrap(), w.to_str().unwrap());
    let out = tmp("never_mode.npy");
    let out = out.to_str().unwrap();
    let (code, _, err) =
        run(&["run", "conv_transpose2d", "--input", x, "--weight", w, "--padding-mode", "reflect", "--out", out]);
    assert_one_line_error(code, &err, "takes zeros only");
    let (code, _, err) = run(&["run", "conv2d", "--input", x, "--weight", w, "--padding-mode", "mirror", "--out", out]);
    assert_one_line_error(code, &err, "unknown 'mirror'");
}

/// `run max_pool2d --out-indices`: PyTorch's `return_indices` as int64, equal to torch's on
/// a golden case (dilation, ceil_mode, ties); on avg_pool2d a one-line error.
#[test]
fn run_max_pool2d_writes_pytorch_indices() {
    if common::gpu().is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pool2d_backward/max_ceil_dilated_ties");
    let x = dir.join("input.npy");
    let (out, idx) = (tmp("mp_values.npy"), tmp("mp_indices.npy"));
    let [x, out, idx] = [&x, &out, &idx].map(|p| p.to_str().unwrap().to_string());
    let flags = ["--kernel", "2,3", "--stride", "2,2", "--padding", "1,1", "--dilation", "3,2", "--ceil-mode"];
    let mut args = vec!["run", "max_pool2d", "--input", &x, "--out", &out, "--out-indices", &idx];
    args.extend(flags);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let bytes = std::fs::read(&idx).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'<i8'"), "int64 on disk");
    let (got, _) = wgconv::HostTensor::read_npy(&idx).unwrap();
    let (want, _) = wgconv::HostTensor::read_npy(dir.join("indices.npy")).unwrap();
    assert_eq!((&got.shape, &got.data), (&want.shape, &want.data));
    // a bare archive names the array `indices`; one archive for both outputs is refused
    let npz = tmp("mp_indices.npz");
    let npz = npz.to_str().unwrap().to_string();
    let mut args = vec!["run", "max_pool2d", "--input", &x, "--out", &out, "--out-indices", &npz];
    args.extend(flags);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(wgconv::HostTensor::read_npy(format!("{npz}:indices")).unwrap().0.data, want.data);
    let mut args = vec!["run", "max_pool2d", "--input", &x, "--out", &npz, "--out-indices", &npz];
    args.extend(flags);
    let (code, _, err) = run(&args);
    assert_one_line_error(code, &err, "give each its own file");
    let args = ["run", "avg_pool2d", "--input", &x, "--kernel", "2", "--out", &out, "--out-indices", &idx];
    let (code, _, err) = run(&args);
    assert_one_line_error(code, &err, "--out-indices is for max_pool2d");
}

/// `run conv2d --input-layout nhwc --output-layout nhwc`: an `[N, H, W, C]` input file read
/// as stored, the output written `[N, Ho, Wo, Cout]`; both PyTorch's values (a golden case),
/// `--verify` passing; each mix; conv_transpose2d likewise; a bad layout name is a one-line
/// error.
#[test]
fn run_conv2d_reads_and_writes_channels_last_files() {
    if common::gpu().is_none() {
        return;
    }
    let case = "stride2_dil2_asym_pad";
    let (x, _) = wgconv::HostTensor::read_npy(data(case, "input.npy")).unwrap();
    let (golden, _) = wgconv::HostTensor::read_npy(data(case, "output.npy")).unwrap();
    let s = &x.shape;
    let nhwc = wgconv::HostTensor::new(&[s[0], s[2], s[3], s[1]], x.to_channels_last().unwrap()).unwrap();
    let xin = tmp("x_nhwc.npy");
    nhwc.write_npy(&xin).unwrap();
    let (w, b) = (data(case, "weight.npy"), data(case, "bias.npy"));
    for (input, output) in [("nhwc", "nhwc"), ("nhwc", "nchw"), ("nchw", "nhwc")] {
        let out = tmp(&format!("y_{input}_{output}.npy"));
        let file = if input == "nhwc" { xin.clone() } else { data(case, "input.npy") };
        let (code, stdout, stderr) = run(&[
            "run",
            "conv2d",
            "--input",
            file.to_str().unwrap(),
            "--weight",
            w.to_str().unwrap(),
            "--bias",
            b.to_str().unwrap(),
            "--stride",
            "2",
            "--padding",
            "2,1,0,3",
            "--dilation",
            "2,2",
            "--input-layout",
            input,
            "--output-layout",
            output,
            "--out",
            out.to_str().unwrap(),
            "--verify",
        ]);
        assert_eq!(code, 0, "{input} → {output}: {stdout}\n{stderr}");
        assert!(stdout.contains("PASS"), "{stdout}");
        let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
        let g = &golden.shape;
        let y = if output == "nhwc" {
            assert_eq!(y.shape, [g[0], g[2], g[3], g[1]]);
            wgconv::HostTensor::from_channels_last(g, &y.data).unwrap()
        } else {
            y
        };
        assert_eq!(y.shape, golden.shape);
        let g64: Vec<f64> = golden.data.iter().map(|&v| v as f64).collect();
        assert!(wgconv::verify::compare(&y.data, &g64).passes(Default::default()), "{input} → {output}");
    }
    // conv_transpose2d takes the same flags: PyTorch's values from an [N, H, W, C] file
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conv_transpose2d/s3_output_padding");
    let (xt, _) = wgconv::HostTensor::read_npy(dir.join("input.npy")).unwrap();
    let (golden, _) = wgconv::HostTensor::read_npy(dir.join("output.npy")).unwrap();
    let s = &xt.shape;
    let xt_in = tmp("xt_nhwc.npy");
    wgconv::HostTensor::new(&[s[0], s[2], s[3], s[1]], xt.to_channels_last().unwrap())
        .unwrap()
        .write_npy(&xt_in)
        .unwrap();
    let out = tmp("yt_nhwc.npy");
    let (wt, bt) = (dir.join("weight.npy"), dir.join("bias.npy"));
    let args = ["run", "conv_transpose2d", "--input", xt_in.to_str().unwrap(), "--weight", wt.to_str().unwrap()];
    let flags = ["--bias", bt.to_str().unwrap(), "--stride", "3", "--output-padding", "2,1", "--input-layout", "nhwc"];
    let (code, stdout, stderr) = run(&[
        &args[..],
        &flags[..],
        &["--output-layout", "nhwc", "--out", out.to_str().unwrap(), "--verify"],
    ]
    .concat());
    assert_eq!(
        code, 0,
        "{stdout}
{stderr}"
    );
    assert!(stdout.contains("PASS") && stdout.contains("channels_last in, channels_last out"), "{stdout}");
    let (y, _) = wgconv::HostTensor::read_npy(&out).unwrap();
    let g = &golden.shape;
    assert_eq!(y.shape, [g[0], g[2], g[3], g[1]]);
    let y = wgconv::HostTensor::from_channels_last(g, &y.data).unwrap();
    let g64: Vec<f64> = golden.data.iter().map(|&v| v as f64).collect();
    assert!(wgconv::verify::compare(&y.data, &g64).passes(Default::default()));

    let out = tmp("y_bad_layout.npy");
    let (x, w) = (xin.to_str().unwrap(), w.to_str().unwrap());
    let (code, _, err) =
        run(&["run", "conv2d", "--input", x, "--weight", w, "--input-layout", "nwhc", "--out", out.to_str().unwrap()]);
    assert_one_line_error(code, &err, "--input-layout");
}

/// `wgconv compare`: two rounds of one side (each case's fastest median) against a peer's
/// array, as a markdown table with the ratio and its geometric mean; bad input is one line.
#[test]
fn compare_tabulates_bench_json_against_a_peer() {
    let report = |ms: [f64; 2]| {
        let row = |id: &str, op: &str, ms: f64| {
            format!(
                r#"{{"id": "{id}", "op": "{op}", "algorithm": "auto", "status": "ok", "median_ms": {ms}, "dtype": "f32"}}"#
            )
        };
        format!(
            r#"{{"adapter": "a", "results": [{}, {}]}}"#,
            row("r50_c3", "conv2d", ms[0]),
            row("mbv2_dw", "conv2d", ms[1])
        )
    };
    let (r1, r2, peer) = (tmp("cmp_round1.json"), tmp("cmp_round2.json"), tmp("cmp_burn.json"));
    std::fs::write(&r1, report([12.0, 2.0])).unwrap();
    std::fs::write(&r2, report([10.0, 3.0])).unwrap();
    std::fs::write(&peer, r#"[{"id": "r50_c3", "median_ms": 30.0}, {"id": "mbv2_dw", "median_ms": 8.0}]"#).unwrap();
    let ours = format!("{},{}", r1.display(), r2.display());
    let (code, out, err) = run(&["compare", &ours, peer.to_str().unwrap(), "--names", "wgconv,burn", "--markdown"]);
    assert_eq!(code, 0, "{err}");
    // r50_c3: min(12, 10) = 10 against 30 → 3.00×; mbv2_dw: 2 against 8 → 4.00×; √12 = 3.46×
    assert!(out.contains("| case ") && out.contains("burn / wgconv"), "{out}");
    assert!(out.contains("3.00×") && out.contains("4.00×") && out.contains("3.46×"), "{out}");
    let (code, _, err) = run(&["compare", r1.to_str().unwrap(), "/nonexistent.json"]);
    assert_one_line_error(code, &err, "/nonexistent.json");
}
