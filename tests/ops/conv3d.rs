//! conv3d against its own f64 reference loops and PyTorch goldens.

use crate::common::gpu;
use wgconv::verify::{compare, Tolerance};
use wgconv::{conv3d, Conv3dParams, EngineConfig, Error, HostTensor, Padding3d, Tensor};

fn p(stride: [u32; 3], padding: Padding3d, dilation: [u32; 3], groups: u32) -> Conv3dParams {
    Conv3dParams { stride, padding, dilation, groups, ..Default::default() }
}

/// (N, Cin, [D, H, W], Cout, [kd, kh, kw], params)
type Case = (usize, usize, [usize; 3], usize, [usize; 3], Conv3dParams);

fn cases() -> Vec<Case> {
    use Padding3d::*;
    vec![
        (1, 2, [5, 5, 5], 3, [3, 3, 3], p([1; 3], Valid, [1; 3], 1)),
        (1, 2, [5, 5, 5], 3, [3, 3, 3], p([1; 3], Symmetric([1, 1, 1]), [1; 3], 1)),
        (2, 3, [6, 7, 5], 2, [3, 3, 3], p([2, 2, 2], Symmetric([1, 1, 1]), [1; 3], 1)),
        (1, 2, [7, 6, 8], 2, [3, 2, 3], p([2, 1, 2], Symmetric([1, 0, 1]), [1, 2, 1], 1)),
        (1, 4, [4, 5, 5], 4, [3, 3, 2], p([1; 3], Same, [1; 3], 2)),
        (1, 3, [5, 6, 7], 3, [2, 2, 2], p([1; 3], Same, [2, 1, 1], 1)),
        (1, 4, [4, 4, 4], 8, [3, 3, 3], p([1; 3], Symmetric([1, 1, 1]), [1; 3], 4)),
        (1, 3, [6, 6, 6], 3, [3, 3, 3], p([1; 3], Symmetric([1, 1, 1]), [1; 3], 3)),
        (3, 2, [3, 4, 5], 2, [1, 1, 1], p([1; 3], Valid, [1; 3], 1)),
        (1, 5, [9, 4, 4], 2, [5, 1, 1], p([3, 1, 1], Valid, [1; 3], 1)),
        (1, 2, [1, 8, 8], 3, [1, 3, 3], p([1; 3], Symmetric([0, 1, 1]), [1; 3], 1)),
        (1, 2, [3, 3, 3], 2, [5, 5, 5], p([1; 3], Symmetric([2, 2, 2]), [1; 3], 1)),
        (2, 6, [4, 5, 6], 3, [2, 3, 2], p([1, 2, 1], Valid, [1; 3], 3)),
        (1, 17, [3, 4, 4], 9, [3, 3, 3], p([1; 3], Symmetric([1, 1, 1]), [1; 3], 1)),
        (1, 2, [8, 8, 8], 2, [3, 3, 3], p([1; 3], Symmetric([2, 2, 2]), [2, 2, 2], 1)),
    ]
}

#[test]
fn cases_match_reference() {
    let Some(ctx) = gpu() else { return };
    let mut failures = Vec::new();
    for (i, &(n, cin, dhw, cout, k, params)) in cases().iter().enumerate() {
        let x = HostTensor::random(&[n, cin, dhw[0], dhw[1], dhw[2]], 10 + i as u64);
        let w = HostTensor::random(&[cout, cin / params.groups as usize, k[0], k[1], k[2]], 20 + i as u64);
        let b = HostTensor::random(&[cout], 30 + i as u64);
        let (shape, r) = wgconv::reference::conv3d(&x, &w, Some(&b), &params).unwrap();
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let y = conv3d(ctx, &t(&x), &t(&w), Some(&t(&b)), &params).unwrap();
        assert_eq!(y.shape(), &shape);
        let s = compare(&y.to_vec(ctx).unwrap(), &r);
        if !s.passes(Tolerance::default()) {
            failures.push(format!("case {i}: {s}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A small workspace budget splits the voxels into many chunks; the result is unchanged.
#[test]
fn chunked_unfold() {
    let Some(ctx) = crate::common::fresh_gpu() else { return };
    let params = p([1; 3], Padding3d::Symmetric([1, 1, 1]), [1; 3], 1);
    let x = HostTensor::random(&[2, 3, 5, 6, 4], 1);
    let w = HostTensor::random(&[4, 3, 3, 3, 3], 2);
    let rows = 3 * 27 * 4;
    ctx.set_config(EngineConfig { workspace_budget: rows * 17, ..ctx.config() });
    let (_, r) = wgconv::reference::conv3d(&x, &w, None, &params).unwrap();
    let t = |h: &HostTensor| Tensor::from_host(&ctx, h).unwrap();
    let y = conv3d(&ctx, &t(&x), &t(&w), None, &params).unwrap().to_vec(&ctx).unwrap();
    assert!(compare(&y, &r).passes(Tolerance::default()));
}

#[test]
fn bad_input() {
    let d = Conv3dParams::default();
    assert!(matches!(d.validate(&[1, 2, 4, 4], &[2, 2, 3, 3, 3], None), Err(Error::Rank { what: "input", .. })));
    assert!(matches!(d.validate(&[1, 2, 4, 4, 4], &[2, 3, 3, 3, 3], None), Err(Error::ChannelMismatch(_))));
    assert!(matches!(d.validate(&[1, 2, 2, 4, 4], &[2, 2, 3, 3, 3], None), Err(Error::EmptyOutput(_))));
    let g = Conv3dParams { groups: 3, ..d };
    assert!(matches!(g.validate(&[1, 2, 4, 4, 4], &[2, 1, 3, 3, 3], None), Err(Error::Groups(_))));
    let same = Conv3dParams { padding: Padding3d::Same, stride: [1, 2, 1], ..d };
    assert!(matches!(
        same.validate(&[1, 2, 4, 4, 4], &[2, 2, 3, 3, 3], None),
        Err(Error::InvalidParam { name: "padding", .. })
    ));
    assert!(matches!(d.validate(&[1, 2, 4, 4, 4], &[2, 2, 3, 3, 3], Some(&[3])), Err(Error::BiasShape { .. })));
}

#[test]
fn pytorch_golden_cases() {
    let cases = crate::common::goldens("conv3d");
    assert!(cases.len() >= 3);
    for c in cases {
        let triple = |k: &str| {
            let v = c.case[k].as_array().unwrap();
            [0, 1, 2].map(|i| v[i].as_u64().unwrap() as u32)
        };
        let padding = match &c.case["padding"] {
            serde_json::Value::String(s) if s == "same" => Padding3d::Same,
            _ => Padding3d::Symmetric(triple("padding")),
        };
        let params = Conv3dParams {
            stride: triple("stride"),
            padding,
            dilation: triple("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let (x, w) = (c.load("input"), c.load("weight"));
        let b = c.flag("bias").then(|| c.load("bias"));
        let want = c.expected("output");
        let (_, r) = wgconv::reference::conv3d(&x, &w, b.as_ref(), &params).unwrap();
        let r32: Vec<f32> = r.iter().map(|&v| v as f32).collect();
        assert!(compare(&r32, &want).passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{}: reference vs torch", c.name);
        let Some(ctx) = gpu() else { continue };
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let bg = b.as_ref().map(t);
        let y = conv3d(ctx, &t(&x), &t(&w), bg.as_ref(), &params).unwrap().to_vec(ctx).unwrap();
        let s = compare(&y, &want);
        assert!(s.passes(Tolerance::default()), "{}: GPU vs torch: {s}", c.name);
    }
}
