//! conv1d against its own f64 reference loops and PyTorch goldens.

use crate::common::gpu;
use wgconv::verify::{compare, Tolerance};
use wgconv::{conv1d, Algorithm, Conv1dParams, Error, HostTensor, Padding1d, Tensor};

fn p(stride: u32, padding: Padding1d, dilation: u32, groups: u32) -> Conv1dParams {
    Conv1dParams { stride, padding, dilation, groups, ..Default::default() }
}

/// (N, Cin, L, Cout, k, params)
fn cases() -> Vec<(usize, usize, usize, usize, usize, Conv1dParams)> {
    use Padding1d::*;
    vec![
        (1, 3, 16, 4, 3, p(1, Valid, 1, 1)),
        (1, 3, 16, 4, 3, p(1, Symmetric(1), 1, 1)),
        (2, 5, 31, 3, 5, p(2, Symmetric(2), 1, 1)),
        (1, 4, 29, 6, 3, p(3, Explicit { left: 2, right: 0 }, 1, 1)),
        (1, 2, 40, 3, 3, p(1, Valid, 3, 1)),
        (3, 2, 13, 2, 2, p(1, Same, 1, 1)),
        (1, 3, 12, 2, 4, p(1, Same, 2, 1)),
        (1, 4, 19, 6, 3, p(1, Symmetric(1), 1, 2)),
        (2, 8, 17, 8, 3, p(2, Valid, 1, 4)),
        (1, 6, 23, 6, 5, p(1, Symmetric(2), 1, 6)),
        (1, 6, 23, 12, 3, p(2, Symmetric(1), 2, 6)),
        (1, 16, 9, 8, 1, p(1, Valid, 1, 1)),
        (1, 3, 1, 2, 3, p(1, Symmetric(1), 1, 1)),
        (1, 3, 7, 2, 7, p(1, Valid, 1, 1)),
        (2, 37, 11, 13, 3, p(1, Explicit { left: 0, right: 3 }, 1, 1)),
        (1, 2, 64, 3, 9, p(4, Symmetric(4), 1, 1)),
    ]
}

#[test]
fn cases_match_reference_for_every_algorithm() {
    let Some(ctx) = gpu() else { return };
    let mut failures = Vec::new();
    for (i, &(n, cin, l, cout, k, params)) in cases().iter().enumerate() {
        let x = HostTensor::random(&[n, cin, l], 10 + i as u64);
        let w = HostTensor::random(&[cout, cin / params.groups as usize, k], 20 + i as u64);
        let b = HostTensor::random(&[cout], 30 + i as u64);
        let (shape, r) = wgconv::reference::conv1d(&x, &w, Some(&b), &params).unwrap();
        for algo in
            [Algorithm::Auto, Algorithm::ImplicitGemm, Algorithm::Im2colGemm, Algorithm::Depthwise, Algorithm::Gemm1x1]
        {
            let pa = Conv1dParams { algorithm: algo, ..params };
            if pa.validate(&x.shape, &w.shape, None).is_err() {
                continue;
            }
            let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
            let y = conv1d(ctx, &t(&x), &t(&w), Some(&t(&b)), &pa).unwrap();
            assert_eq!(y.shape(), &shape);
            let s = compare(&y.to_vec(ctx).unwrap(), &r);
            if !s.passes(Tolerance::default()) {
                failures.push(format!("case {i} {}: {s}", algo.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bad_input() {
    let d = Conv1dParams::default();
    assert!(matches!(d.validate(&[1, 3, 4, 4], &[2, 3, 3], None), Err(Error::Rank { what: "input", .. })));
    assert!(matches!(d.validate(&[1, 3, 8], &[2, 2, 3], None), Err(Error::ChannelMismatch(_))));
    assert!(matches!(d.validate(&[1, 3, 2], &[2, 3, 3], None), Err(Error::EmptyOutput(_))));
    let same = Conv1dParams { padding: Padding1d::Same, stride: 2, ..d };
    assert!(matches!(same.validate(&[1, 3, 8], &[2, 3, 3], None), Err(Error::InvalidParam { name: "padding", .. })));
}

#[test]
fn pytorch_golden_cases() {
    let cases = crate::common::goldens("conv1d");
    assert!(cases.len() >= 5);
    for c in cases {
        let padding = match &c.case["padding"] {
            serde_json::Value::String(s) if s == "same" => Padding1d::Same,
            v => Padding1d::Symmetric(v.as_u64().unwrap() as u32),
        };
        let u = |k: &str| c.case[k].as_u64().unwrap() as u32;
        let params = Conv1dParams {
            stride: u("stride"),
            padding,
            dilation: u("dilation"),
            groups: u("groups"),
            ..Default::default()
        };
        let (x, w) = (c.load("input"), c.load("weight"));
        let b = c.flag("bias").then(|| c.load("bias"));
        let want = c.expected("output");
        let (_, r) = wgconv::reference::conv1d(&x, &w, b.as_ref(), &params).unwrap();
        let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        assert!(compare(&r32, &want).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{}: reference vs torch", c.name);
        let Some(ctx) = gpu() else { continue };
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let bg = b.as_ref().map(t);
        let y = conv1d(ctx, &t(&x), &t(&w), bg.as_ref(), &params).unwrap().to_vec(ctx).unwrap();
        let s = compare(&y, &want);
        assert!(s.passes(Tolerance::default()), "{}: GPU vs torch: {s}", c.name);
    }
}
