//! conv2d on the GPU against the f64 CPU reference and PyTorch goldens; bad input; limits.

use crate::common::{case, fresh_gpu, gpu, run_case, Case, CaseExt};
use wgconv::verify::{compare, Tolerance};
use wgconv::{
    conv2d, Activation, Algorithm, Conv2dParams, DType, EngineConfig, Error, GpuContext, HostTensor, Padding, Tensor,
};

fn sym(h: u32, w: u32) -> Padding {
    Padding::Symmetric([h, w])
}
fn explicit(top: u32, left: u32, bottom: u32, right: u32) -> Padding {
    Padding::Explicit { top, left, bottom, right }
}

/// The parameter space of the issue: odd and prime sizes, 1x1, non-square kernels, kernel
/// larger than the input, output 1x1, every padding kind, strides 1–3 and asymmetric,
/// dilations 1–3 and asymmetric, groups 2/4, depthwise, channel multiplier 2, N = 1..3,
/// Cin not a multiple of 4.
fn cases() -> Vec<Case> {
    vec![
        case(1, 3, [8, 8], 4, [3, 3]),
        case(1, 3, [8, 8], 4, [3, 3]).pad(sym(1, 1)),
        case(2, 5, [7, 11], 6, [3, 3]).pad(sym(1, 1)),
        case(3, 7, [13, 13], 5, [3, 3]).pad(sym(1, 1)).stride([2, 2]),
        case(1, 1, [17, 19], 1, [1, 1]),
        case(2, 16, [9, 9], 8, [1, 1]),
        case(1, 6, [10, 10], 3, [1, 1]).stride([2, 2]),
        case(1, 3, [11, 7], 2, [1, 5]).pad(sym(0, 2)),
        case(1, 4, [9, 12], 5, [5, 1]).pad(sym(2, 0)),
        case(1, 2, [6, 9], 3, [2, 4]),
        case(1, 3, [23, 23], 8, [7, 7]).stride([2, 2]).pad(sym(3, 3)),
        case(1, 2, [3, 3], 3, [5, 5]).pad(sym(2, 2)),
        case(1, 2, [2, 4], 2, [4, 6]).pad(sym(1, 1)),
        case(1, 5, [5, 5], 7, [5, 5]),
        case(2, 3, [3, 7], 4, [3, 7]),
        case(1, 3, [9, 9], 4, [3, 3]).pad(Padding::Valid),
        case(1, 3, [9, 10], 4, [3, 3]).pad(Padding::Same),
        case(1, 3, [7, 6], 2, [4, 2]).pad(Padding::Same),
        case(1, 3, [9, 9], 2, [3, 4]).pad(Padding::Same).dil([2, 3]),
        case(1, 3, [10, 9], 4, [3, 3]).pad(explicit(2, 0, 1, 3)),
        case(2, 4, [8, 8], 3, [2, 2]).pad(explicit(0, 1, 1, 0)).stride([2, 2]),
        case(1, 3, [11, 11], 4, [3, 3]).stride([3, 3]).pad(sym(1, 1)),
        case(1, 3, [12, 13], 4, [3, 3]).stride([1, 2]),
        case(1, 3, [12, 13], 4, [3, 2]).stride([3, 1]).pad(sym(1, 0)),
        case(1, 3, [15, 15], 4, [3, 3]).dil([2, 2]),
        case(1, 3, [17, 16], 4, [3, 3]).dil([3, 3]).pad(sym(3, 3)),
        case(1, 3, [12, 14], 4, [3, 3]).dil([1, 3]).pad(sym(1, 3)),
        case(2, 5, [19, 17], 3, [3, 2]).dil([2, 1]).stride([2, 3]).pad(explicit(1, 2, 3, 0)),
        case(1, 4, [8, 8], 6, [3, 3]).groups(2).pad(sym(1, 1)),
        case(2, 8, [7, 9], 8, [3, 3]).groups(4),
        case(1, 12, [6, 6], 4, [1, 1]).groups(4),
        case(1, 6, [9, 9], 6, [3, 3]).groups(6).pad(sym(1, 1)),
        case(2, 7, [8, 11], 7, [3, 3]).groups(7).stride([2, 2]).pad(sym(1, 1)),
        case(1, 5, [9, 8], 10, [3, 3]).groups(5).pad(sym(1, 1)),
        case(3, 3, [7, 7], 6, [5, 5]).groups(3).pad(sym(2, 2)).no_bias(),
        case(3, 2, [5, 5], 3, [3, 3]).pad(sym(1, 1)),
        case(1, 37, [7, 7], 67, [3, 3]).pad(sym(1, 1)),
        case(1, 64, [9, 9], 65, [3, 3]).pad(sym(1, 1)),
        case(1, 130, [5, 5], 3, [1, 1]).no_bias(),
        case(1, 3, [1, 1], 2, [1, 1]),
        case(1, 3, [1, 1], 2, [3, 3]).pad(sym(1, 1)),
        case(1, 3, [1, 31], 2, [1, 3]),
        case(2, 2, [29, 3], 2, [3, 1]).stride([2, 1]),
        case(1, 3, [5, 5], 4, [3, 3]).no_bias().pad(sym(1, 1)),
        case(1, 3, [13, 13], 4, [13, 13]),
        case(1, 2, [41, 43], 3, [3, 3]).pad(sym(1, 1)).stride([1, 1]),
        case(1, 11, [6, 6], 13, [2, 2]).stride([2, 2]).dil([2, 2]).pad(sym(1, 1)),
        // Depthwise specialisations: a window wider than the shader's WIN_MAX (unspecialised
        // path), stride 3, and planes of many tiles with a channel multiplier.
        case(1, 3, [5, 40], 3, [1, 17]).groups(3).dil([1, 2]).pad(sym(0, 16)),
        case(1, 4, [9, 23], 4, [3, 5]).groups(4).stride([2, 3]).pad(sym(1, 2)),
        case(2, 4, [37, 70], 8, [3, 3]).groups(4).pad(sym(1, 1)),
    ]
}

/// Every case with every algorithm that supports it (and Auto).
#[test]
fn random_cases_match_reference_for_every_algorithm() {
    let Some(ctx) = gpu() else { return };
    let all = cases();
    assert!(all.len() >= 40);
    let mut failures = Vec::new();
    let mut runs = std::collections::HashMap::new();
    for (i, c) in all.iter().enumerate() {
        for algo in c.algorithms() {
            let (stats, info) = run_case(ctx, &c.clone().algo(algo), 1000 + i as u64);
            if algo != Algorithm::Auto {
                assert_eq!(info.algorithm, algo, "a forced algorithm runs as asked");
            }
            *runs.entry(info.algorithm).or_insert(0) += 1;
            if !stats.passes(Tolerance::default()) {
                failures.push(format!("case {i} {} {c:?}: {stats}", algo.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{} runs failed:\n{}", failures.len(), failures.join("\n"));
    // Each algorithm ran on a meaningful share of the cases.
    assert_eq!(runs[&Algorithm::Im2colGemm], all.len());
    assert!(runs[&Algorithm::ImplicitGemm] > all.len());
    assert!(runs[&Algorithm::Gemm1x1] >= 5 && runs[&Algorithm::Depthwise] >= 6, "{runs:?}");
}

#[test]
fn auto_picks_the_specialised_kernels() {
    let Some(ctx) = gpu() else { return };
    let pick = |c: Case| run_case(ctx, &c, 1).1.algorithm;
    assert_eq!(pick(case(1, 8, [5, 5], 4, [1, 1])), Algorithm::Gemm1x1);
    assert_eq!(pick(case(1, 8, [5, 5], 4, [1, 1]).stride([2, 2])), Algorithm::ImplicitGemm);
    assert_eq!(pick(case(1, 8, [5, 5], 16, [3, 3]).groups(8)), Algorithm::Depthwise);
    assert_eq!(pick(case(1, 8, [5, 5], 4, [3, 3]).groups(2)), Algorithm::ImplicitGemm);
    assert_eq!(pick(case(1, 1, [5, 5], 4, [3, 3])), Algorithm::ImplicitGemm);
    // 256 output channels: the implicit GEMM too, on every adapter (CPU adapters used to
    // take the im2col path there, before the flat kernel walked the implicit gather tap-major)
    assert_eq!(pick(case(1, 8, [6, 6], 256, [3, 3])), Algorithm::ImplicitGemm);
    assert_eq!(pick(case(1, 8, [7, 7], 256, [3, 3])), Algorithm::ImplicitGemm);
    assert_eq!(pick(case(1, 8, [17, 17], 256, [3, 3])), Algorithm::ImplicitGemm);
}

#[test]
fn impossible_forced_algorithms_are_errors() {
    let d = Conv2dParams::default();
    let e =
        Conv2dParams { algorithm: Algorithm::Gemm1x1, ..d }.validate(&[1, 4, 5, 5], &[2, 4, 3, 3], None).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { name: "algorithm", .. }), "{e}");
    let e = Conv2dParams { algorithm: Algorithm::Depthwise, groups: 2, ..d }
        .validate(&[1, 4, 5, 5], &[2, 2, 3, 3], None)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidParam { name: "algorithm", .. }), "{e}");
}

/// Every activation, fused into every algorithm's write-out, against the reference.
#[test]
fn fused_activations_match_reference() {
    let Some(ctx) = gpu() else { return };
    let acts = [
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu(0.2),
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];
    // Larger weights so that values reach relu6's clamp and the tails of sigmoid/tanh.
    let bases = [case(1, 6, [7, 9], 6, [3, 3]).pad(sym(1, 1)).groups(6), case(2, 5, [6, 6], 7, [1, 1])];
    for base in bases {
        for act in acts {
            for algo in base.algorithms() {
                let c = base.clone().act(act).algo(algo);
                let (x, w, b) = c.seeded(3);
                let w = HostTensor::new(&w.shape, w.data.iter().map(|v| v * 4.0).collect()).unwrap();
                let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
                let xg = Tensor::from_host(ctx, &x).unwrap();
                let wg = Tensor::from_host(ctx, &w).unwrap();
                let bg = Tensor::from_host(ctx, b.as_ref().unwrap()).unwrap();
                let y = conv2d(ctx, &xg, &wg, Some(&bg), &c.params).unwrap().to_vec(ctx).unwrap();
                let s = compare(&y, &r);
                assert!(s.passes(Tolerance::default()), "{act:?} {}: {s}", algo.name());
            }
        }
    }
}

/// Compares with outputs PyTorch computed (tools/gen_golden.py), and checks that the CPU
/// reference agrees with PyTorch too.
#[test]
fn pytorch_golden_cases() {
    let cases = crate::common::goldens("conv2d");
    assert!(cases.len() >= 10);
    let ctx = gpu();
    for c in cases {
        let name = &c.name;
        let (x, w) = (c.load("input"), c.load("weight"));
        let b = c.flag("bias").then(|| c.load("bias"));
        let params = Conv2dParams {
            stride: c.pair("stride"),
            padding: c.padding(),
            dilation: c.pair("dilation"),
            groups: c.groups(),
            ..Default::default()
        };
        let expected64 = c.expected("output");
        let (shape, reference) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &params).unwrap();
        assert_eq!(shape.to_vec(), c.load("output").shape, "{name}: output shape");
        let ref32: Vec<f32> = reference.iter().map(|&v| v as f32).collect();
        let s = compare(&ref32, &expected64);
        assert!(s.passes(Tolerance { rel_l2: 1e-7, abs: 1e-6 }), "{name}: CPU reference vs torch: {s}");

        let Some(ctx) = ctx else { continue };
        let xg = Tensor::from_host(ctx, &x).unwrap();
        let wg = Tensor::from_host(ctx, &w).unwrap();
        let bg = b.as_ref().map(|b| Tensor::from_host(ctx, b).unwrap());
        let y = conv2d(ctx, &xg, &wg, bg.as_ref(), &params).unwrap().to_vec(ctx).unwrap();
        let s = compare(&y, &expected64);
        assert!(s.passes(Tolerance::default()), "{name}: GPU vs torch: {s}");
    }
}

/// A workspace budget far below one image's column matrix forces many chunks, including
/// chunks that start and end inside an output row and span two images.
#[test]
fn small_workspace_budget_splits_into_chunks() {
    let Some(ctx) = fresh_gpu() else { return };
    let c = case(3, 5, [9, 10], 6, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Im2colGemm);
    let rows = 5 * 9;
    // 37 pixels per chunk: not a divisor of a row (10) nor of an image (90).
    ctx.set_config(EngineConfig { workspace_budget: rows * 4 * 37, ..ctx.config() });
    let (stats, info) = run_case(&ctx, &c, 7);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert_eq!(info.chunks, 8, "{info:?}"); // 270 pixels / 37 per chunk → 8 balanced chunks
    assert!(info.workspace_bytes <= rows * 4 * 37);
    assert!(ctx.workspace_bytes() <= rows * 4 * 64);

    // One pixel per chunk still works.
    ctx.set_config(EngineConfig { workspace_budget: rows * 4, ..ctx.config() });
    let (stats, info) = run_case(&ctx, &case(1, 5, [4, 3], 2, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Im2colGemm), 8);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert_eq!(info.chunks, 12);

    // Less than one column: a clear error, nothing submitted.
    ctx.set_config(EngineConfig { workspace_budget: rows * 4 - 4, ..ctx.config() });
    let (x, w, b) = c.seeded(1);
    let xg = Tensor::from_host(&ctx, &x).unwrap();
    let wg = Tensor::from_host(&ctx, &w).unwrap();
    let bg = Tensor::from_host(&ctx, b.as_ref().unwrap()).unwrap();
    let e = conv2d(&ctx, &xg, &wg, Some(&bg), &c.params).unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
}

/// Winograd cuts the 2×2 output tiles into chunks under the workspace budget (U + V + M): a
/// chunk boundary inside an image row and across images changes no bit of the output, and a
/// budget below one tile is a clear error.
#[test]
fn winograd_chunks_of_tiles_are_bit_identical_to_one_chunk() {
    let Some(ctx) = fresh_gpu() else { return };
    // 3 images of 5×5 tiles (9×10 outputs: the last tile row clipped)
    let c = case(3, 5, [9, 10], 6, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Winograd);
    let (stats, whole) = run_case(&ctx, &c, 7);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert_eq!((whole.algorithm, whole.chunks, whole.chunk_cols), (Algorithm::Winograd, 1, 75));
    let run = |ctx: &wgconv::GpuContext| {
        let (x, w, b) = c.seeded(7);
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let (y, info) = wgconv::conv2d_with_info(ctx, &t(&x), &t(&w), b.as_ref().map(t).as_ref(), &c.params).unwrap();
        (y.to_vec(ctx).unwrap(), info)
    };
    let (one, _) = run(&ctx);
    // U = 16·6·5 f32 = 1920 bytes (V from 1920 rounded up to the offset alignment, at most
    // 2048); one tile of V and M = 64·(5 + 6) bytes: room for 10, chunks of a multiple of 4
    // tiles (the rows' length) → 10 balanced chunks of 8 (75 tiles)
    ctx.set_config(EngineConfig { workspace_budget: 2048 + 704 * 10, ..ctx.config() });
    let (chunked, info) = run(&ctx);
    assert_eq!((info.chunks, info.chunk_cols), (10, 8), "{info:?}");
    assert!(info.workspace_bytes <= 2048 + 704 * 10);
    assert!(one.iter().zip(&chunked).all(|(a, b)| a.to_bits() == b.to_bits()), "chunks changed the output");
    // less than U and four tiles: an error, not a wrong answer
    ctx.set_config(EngineConfig { workspace_budget: 1920 + 4 * 704 - 1, ..ctx.config() });
    let (x, w, _) = c.seeded(1);
    let e = conv2d(&ctx, &Tensor::from_host(&ctx, &x).unwrap(), &Tensor::from_host(&ctx, &w).unwrap(), None, &c.params)
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
}

/// Winograd in batch pieces and in bands of rows (an image beyond one binding) gives the
/// bits of one call: the bands start at even output rows, so each 2×2 tile is the unsplit
/// call's (a band from an odd row would tile, and round, differently).
#[test]
fn winograd_pieces_and_bands_are_bit_identical_to_one_call() {
    let Some(ctx) = fresh_gpu() else { return };
    // 13 output rows, balanced bands of an odd count without the even rule
    let c = case(2, 4, [13, 12], 3, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Winograd);
    let run = |ctx: &wgconv::GpuContext| {
        let (x, w, b) = c.seeded(5);
        let t = |h: &HostTensor| Tensor::from_host(ctx, h).unwrap();
        let (y, info) = wgconv::conv2d_with_info(ctx, &t(&x), &t(&w), b.as_ref().map(t).as_ref(), &c.params).unwrap();
        assert_eq!(info.algorithm, Algorithm::Winograd);
        (y.to_vec(ctx).unwrap(), info)
    };
    let (one, _) = run(&ctx);
    let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
    // an image is 4·13·12·4 = 2496 bytes, the input 4992
    ctx.set_config(EngineConfig { max_binding_size: 4000, ..ctx.config() });
    let (pieces, info) = run(&ctx);
    assert_eq!(info.batch_pieces, 2, "{info:?}");
    assert!(same(&one, &pieces), "batch pieces changed the output");
    ctx.set_config(EngineConfig { max_binding_size: 2000, ..ctx.config() });
    let (banded, info) = run(&ctx);
    assert!(info.row_bands > 1, "{info:?}");
    assert!(same(&one, &banded), "bands changed the output");
}

/// The storage-binding limit also caps chunks (a budget above it is clamped).
#[test]
fn binding_limit_caps_chunks_splits_batches_and_bands_images() {
    let Some(ctx) = fresh_gpu() else { return };
    let c = case(2, 4, [12, 12], 3, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Im2colGemm);
    // input is 2·4·144·4 = 4608 bytes; allow 5000 per binding: im2col must split.
    ctx.set_config(EngineConfig { max_binding_size: 5000, workspace_budget: 1 << 30, ..ctx.config() });
    let (stats, info) = run_case(&ctx, &c, 9);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert!(info.workspace_bytes <= 5000 && info.chunks > 1, "{info:?}");

    // 4000: the input exceeds one binding; one image (2304 bytes) does not: two batch pieces.
    ctx.set_config(EngineConfig { max_binding_size: 4000, ..ctx.config() });
    let (stats, info) = run_case(&ctx, &c, 9);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert_eq!(info.batch_pieces, 2, "{info:?}");

    // 2000: one image (2304 bytes) exceeds a binding: bands of output rows.
    ctx.set_config(EngineConfig { max_binding_size: 2000, ..ctx.config() });
    let (stats, info) = run_case(&ctx, &c, 9);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert!(info.row_bands > 1, "{info:?}");

    // 440: the weight (432 bytes) fits, one output row's 3 input rows (3 · 192 bytes) do not.
    ctx.set_config(EngineConfig { max_binding_size: 440, ..ctx.config() });
    let (x, w, _) = c.seeded(1);
    let xg = Tensor::from_host(&ctx, &x).unwrap();
    let wg = Tensor::from_host(&ctx, &w).unwrap();
    let e = conv2d(&ctx, &xg, &wg, None, &c.params).unwrap_err();
    assert!(matches!(&e, Error::TooLarge(m) if m.contains("one output row")), "{e}");
}

/// Forcing a few workgroups per dimension folds every kernel's grid into y and z.
#[test]
fn grids_fold_into_y_and_z_under_a_small_workgroup_limit() {
    let Some(ctx) = fresh_gpu() else { return };
    ctx.set_config(EngineConfig { max_workgroups_per_dim: 3, ..ctx.config() });
    // im2col: 6·9·80 = 4320 elements → 17 workgroups → 3×3×2; GEMM tiles: 2 groups · 2 → 3×2.
    let grouped = case(1, 6, [8, 10], 4, [3, 3]).pad(sym(1, 1)).groups(2);
    // depthwise: 1·12·9·3 quads = 324 → 6 workgroups of 64 → 3×2.
    let dw = case(1, 6, [9, 10], 12, [3, 3]).pad(sym(1, 1)).groups(6);
    let pw = case(2, 16, [12, 12], 70, [1, 1]); // GEMM tiles: 2 · 5 = 10 → 3×3×2
                                                // winograd: 16 points · 1 group = 16 GEMM tiles → 3×3×2; 6 channels · 20 tiles → 2
    let plain = case(1, 6, [8, 10], 4, [3, 3]).pad(sym(1, 1));
    for c in [grouped.clone(), dw, pw, plain] {
        for algo in c.algorithms() {
            if algo == Algorithm::Winograd && c.params.groups > 1 {
                continue; // 16 points · 2 (or 6) groups > 3³ GEMM tiles: below
            }
            let (stats, _) = run_case(&ctx, &c.clone().algo(algo), 10);
            assert!(stats.passes(Tolerance::default()), "{} {c:?}: {stats}", algo.name());
        }
    }
    // 8·9·(24·24)/256 = 162 im2col workgroups > 3³: an error, not a wrong answer.
    let big = case(1, 8, [24, 24], 4, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Im2colGemm);
    let (x, w, _) = big.seeded(1);
    let xg = Tensor::from_host(&ctx, &x).unwrap();
    let wg = Tensor::from_host(&ctx, &w).unwrap();
    let e = conv2d(&ctx, &xg, &wg, None, &big.params).unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    let winograd = grouped.algo(Algorithm::Winograd);
    let (x, w, _) = winograd.seeded(1);
    let (xg, wg) = (Tensor::from_host(&ctx, &x).unwrap(), Tensor::from_host(&ctx, &w).unwrap());
    let e = conv2d(&ctx, &xg, &wg, None, &winograd.params).unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    // With 6 per dimension the same conv folds into 6×6×5 and is right.
    ctx.set_config(EngineConfig { max_workgroups_per_dim: 6, ..ctx.config() });
    let (stats, _) = run_case(&ctx, &big, 11);
    assert!(stats.passes(Tolerance::default()), "{stats}");
}

#[test]
fn results_are_bit_identical_run_to_run() {
    let Some(ctx) = gpu() else { return };
    let c = case(2, 9, [15, 13], 11, [3, 3]).pad(sym(1, 1)).stride([2, 1]);
    let (x, w, b) = c.seeded(3);
    let xg = Tensor::from_host(ctx, &x).unwrap();
    let wg = Tensor::from_host(ctx, &w).unwrap();
    let bg = Tensor::from_host(ctx, b.as_ref().unwrap()).unwrap();
    let first = conv2d(ctx, &xg, &wg, Some(&bg), &c.params).unwrap().to_vec(ctx).unwrap();
    for _ in 0..3 {
        let again = conv2d(ctx, &xg, &wg, Some(&bg), &c.params).unwrap().to_vec(ctx).unwrap();
        assert!(first.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn pipelines_compile_once() {
    let Some(ctx) = fresh_gpu() else { return };
    let c = case(1, 3, [6, 6], 2, [3, 3]).algo(Algorithm::Im2colGemm);
    run_case(&ctx, &c, 1);
    let compiled = ctx.pipelines_compiled();
    assert_eq!(compiled, 2, "im2col + gemm(dense, bias)");
    for s in 0..3 {
        run_case(&ctx, &case(2, 4, [7, 5], 3, [2, 2]).stride([2, 1]).algo(Algorithm::Im2colGemm), s);
    }
    assert_eq!(ctx.pipelines_compiled(), compiled, "same override set: no new pipeline");
    run_case(&ctx, &c.clone().no_bias(), 2);
    assert_eq!(ctx.pipelines_compiled(), compiled + 1, "HAS_BIAS=false is one more specialisation");
    run_case(&ctx, &c.clone().algo(Algorithm::ImplicitGemm).act(Activation::Relu), 2);
    run_case(&ctx, &c.clone().algo(Algorithm::ImplicitGemm).act(Activation::Relu), 3);
    assert_eq!(ctx.pipelines_compiled(), compiled + 2, "B_MODE/ACT: one more, once");
}

/// Every validation rule, each with the variant it must return. Runs without a GPU too
/// (validation comes before any GPU object).
#[test]
fn invalid_parameters_are_clear_errors() {
    let ok = |p: Conv2dParams, x: &[usize], w: &[usize], b: Option<&[usize]>| p.validate(x, w, b);
    let d = Conv2dParams::default();
    let x = [1, 4, 8, 8];
    let w = [6, 4, 3, 3];
    assert!(ok(d, &x, &w, Some(&[6])).is_ok());
    type Rule<T> = (&'static str, Result<T, Error>, fn(&Error) -> bool);
    let cases: Vec<Rule<_>> = vec![
        ("input rank", ok(d, &[4, 8, 8], &w, None), |e| matches!(e, Error::Rank { what: "input", .. })),
        ("weight rank", ok(d, &x, &[6, 4, 3], None), |e| matches!(e, Error::Rank { what: "weight", .. })),
        ("zero dim", ok(d, &[1, 4, 0, 8], &w, None), |e| matches!(e, Error::EmptyTensor { .. })),
        ("zero kernel", ok(d, &x, &[6, 4, 0, 3], None), |e| matches!(e, Error::EmptyTensor { .. })),
        ("channel mismatch", ok(d, &x, &[6, 3, 3, 3], None), |e| matches!(e, Error::ChannelMismatch(_))),
        ("groups 0", ok(Conv2dParams { groups: 0, ..d }, &x, &w, None), |e| matches!(e, Error::Groups(_))),
        ("groups ∤ Cin", ok(Conv2dParams { groups: 3, ..d }, &x, &[6, 1, 3, 3], None), |e| {
            matches!(e, Error::Groups(_))
        }),
        ("groups ∤ Cout", ok(Conv2dParams { groups: 4, ..d }, &x, &[6, 1, 3, 3], None), |e| {
            matches!(e, Error::Groups(_))
        }),
        ("grouped weight channels", ok(Conv2dParams { groups: 2, ..d }, &x, &w, None), |e| {
            matches!(e, Error::ChannelMismatch(_))
        }),
        ("stride 0", ok(Conv2dParams { stride: [0, 1], ..d }, &x, &w, None), |e| {
            matches!(e, Error::InvalidParam { name: "stride", .. })
        }),
        ("dilation 0", ok(Conv2dParams { dilation: [1, 0], ..d }, &x, &w, None), |e| {
            matches!(e, Error::InvalidParam { name: "dilation", .. })
        }),
        ("same + stride", ok(Conv2dParams { padding: Padding::Same, stride: [2, 1], ..d }, &x, &w, None), |e| {
            matches!(e, Error::InvalidParam { name: "padding", .. })
        }),
        ("bias length", ok(d, &x, &w, Some(&[5])), |e| matches!(e, Error::BiasShape { expected: 6, .. })),
        ("bias rank", ok(d, &x, &w, Some(&[6, 1])), |e| matches!(e, Error::BiasShape { .. })),
        ("kernel > input", ok(d, &[1, 4, 2, 8], &w, None), |e| matches!(e, Error::EmptyOutput(_))),
        (
            "dilated kernel > padded input",
            ok(Conv2dParams { dilation: [5, 1], padding: Padding::Symmetric([1, 1]), ..d }, &x, &w, None),
            |e| matches!(e, Error::EmptyOutput(_)),
        ),
    ];
    for (what, r, check) in cases {
        let e = r.expect_err(what);
        assert!(check(&e), "{what}: got {e:?}");
        assert!(e.is_invalid_input(), "{what}");
        assert!(!e.to_string().is_empty());
    }
}

/// The same rules through the GPU entry points: an error, and no GPU work.
#[test]
fn invalid_calls_return_errors_before_gpu_work() {
    let Some(ctx) = fresh_gpu() else { return };
    let x = Tensor::from_slice(&ctx, &[1, 4, 5, 5], &[0.5; 100]).unwrap();
    let w = Tensor::from_slice(&ctx, &[2, 3, 3, 3], &[0.5; 54]).unwrap();
    let b = Tensor::from_slice(&ctx, &[3], &[0.0; 3]).unwrap();
    let before = ctx.pipelines_compiled();
    assert!(matches!(conv2d(&ctx, &x, &w, None, &Conv2dParams::default()), Err(Error::ChannelMismatch(_))));
    let w4 = Tensor::from_slice(&ctx, &[2, 4, 3, 3], &[0.5; 72]).unwrap();
    assert!(matches!(conv2d(&ctx, &x, &w4, Some(&b), &Conv2dParams::default()), Err(Error::BiasShape { .. })));
    assert!(matches!(
        conv2d(&ctx, &x, &w4, None, &Conv2dParams { stride: [0, 0], ..Default::default() }),
        Err(Error::InvalidParam { .. })
    ));
    assert_eq!(ctx.pipelines_compiled(), before, "no pipeline was built for an invalid call");
    assert!(matches!(Tensor::from_slice(&ctx, &[2, 2], &[1.0; 3]), Err(Error::DataLength { .. })));
}

#[test]
fn tensors_on_another_device_are_rejected() {
    let (Some(a), Some(b)) = (fresh_gpu(), fresh_gpu()) else {
        return;
    };
    let x = Tensor::from_slice(&a, &[1, 1, 4, 4], &[1.0; 16]).unwrap();
    let w = Tensor::from_slice(&b, &[1, 1, 3, 3], &[1.0; 9]).unwrap();
    let e = conv2d(&a, &x, &w, None, &Conv2dParams::default()).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch("weight")), "{e}");
    let e = x.to_vec(&b).unwrap_err();
    assert!(matches!(e, Error::DeviceMismatch(_)), "{e}");
}

#[test]
fn reference_detects_a_wrong_answer() {
    // The comparison used by every test above must fail on a perturbed result.
    let c = case(1, 3, [5, 5], 2, [3, 3]).pad(sym(1, 1));
    let (x, w, b) = c.seeded(5);
    let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
    let mut out: Vec<f32> = r.iter().map(|&v| v as f32).collect();
    assert!(compare(&out, &r).passes(Tolerance::default()));
    out[17] += 1e-3;
    assert!(!compare(&out, &r).passes(Tolerance::default()));
}

#[test]
fn context_reports_adapter_limits() {
    let Some(ctx) = gpu() else { return };
    let l = ctx.limits();
    // The context asks for the adapter's limits rather than wgpu's defaults.
    let defaults = wgpu::Limits::default();
    assert!(l.max_storage_buffer_binding_size >= defaults.max_storage_buffer_binding_size);
    assert!(l.max_compute_invocations_per_workgroup >= 256);
    let _: &GpuContext = ctx;
}

#[test]
fn autotuner_measures_once_per_bucket_and_persists() {
    let Some(ctx) = fresh_gpu() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("tune.tsv");
    let _ = std::fs::remove_file(&file);
    assert_eq!(ctx.set_autotune_cache(&file).unwrap(), 0);
    ctx.autotune(true);
    let c = case(1, 8, [12, 12], 8, [3, 3]).pad(sym(1, 1));
    let (stats, info) = run_case(&ctx, &c, 1);
    assert!(stats.passes(Tolerance::default()), "{stats}");
    assert!(matches!(info.algorithm, Algorithm::Im2colGemm | Algorithm::ImplicitGemm | Algorithm::Direct), "{info:?}");
    assert_eq!(ctx.autotune_measurements(), 1);
    // Same bucket (13x11 rounds up to 16x16 like 12x12): no new measurement, same choice.
    let (stats, again) = run_case(&ctx, &case(1, 8, [13, 11], 8, [3, 3]).pad(sym(1, 1)), 2);
    assert!(stats.passes(Tolerance::default()));
    assert_eq!((again.algorithm, ctx.autotune_measurements()), (info.algorithm, 1));
    // A depthwise shape is another bucket: its candidates are timed once.
    run_case(&ctx, &case(1, 4, [9, 9], 4, [3, 3]).groups(4), 3);
    assert_eq!(ctx.autotune_measurements(), 2);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");

    // A new context loads the file and measures nothing.
    let Some(fresh) = fresh_gpu() else { return };
    assert_eq!(fresh.set_autotune_cache(&file).unwrap(), 2);
    fresh.autotune(true);
    let (_, info2) = run_case(&fresh, &c, 1);
    assert_eq!((info2.algorithm, fresh.autotune_measurements()), (info.algorithm, 0));
    let _ = std::fs::remove_file(&file);
}

/// Every register blocking of the tiled GEMM on every case and every GEMM-based algorithm,
/// so each entry point of gemm.wgsl stays correct whichever one `Auto` picks here.
#[test]
fn every_gemm_kernel_matches_reference() {
    let Some(ctx) = fresh_gpu() else { return };
    let mut failures = Vec::new();
    use wgconv::GemmKernel::*;
    for kernel in [Block4x4, Block8x8, Block16x16, Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        for (i, c) in cases().iter().enumerate() {
            for algo in [Algorithm::Im2colGemm, Algorithm::ImplicitGemm, Algorithm::Gemm1x1] {
                if !c.algorithms().contains(&algo) {
                    continue;
                }
                let (stats, _) = run_case(&ctx, &c.clone().algo(algo), 2000 + i as u64);
                if !stats.passes(Tolerance::default()) {
                    failures.push(format!("{kernel:?} case {i} {}: {stats}", algo.name()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The 16×16 kernels' three tile shapes, each picked by the GEMM's M and N, on plain
/// matmuls with ragged edges (M, N, K not multiples of the tile or of 4) against the CPU,
/// with and without workgroup memory; each matmul's plan is what its trace shows.
#[test]
fn every_tile_shape_of_the_16x16_kernels_matches_the_cpu() {
    use wgconv::TileShape;
    let Some(ctx) = fresh_gpu() else { return };
    for (m, n, k, shape, kernel) in [
        (120, 250, 37, TileShape::Square),
        (250, 120, 16, TileShape::Square),
        (130, 131, 9, TileShape::Wide),
        (61, 517, 23, TileShape::Wide),
        (3, 300, 5, TileShape::Wide),
        (509, 62, 33, TileShape::Tall),
        (300, 7, 1, TileShape::Tall),
    ]
    .into_iter()
    .flat_map(|(m, n, k, s)| {
        [wgconv::GemmKernel::Block16x16, wgconv::GemmKernel::Flat16x16].map(|kernel| (m, n, k, s, kernel))
    }) {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        assert_eq!(TileShape::pick(m, n), shape, "{m}x{n}");
        let a = HostTensor::random(&[m as usize, k as usize], m as u64);
        let b = HostTensor::random(&[k as usize, n as usize], n as u64);
        let plan = wgconv::plan_matmul(&ctx, &a.shape, &b.shape).unwrap();
        ctx.begin_trace();
        let c = wgconv::ops::matmul::matmul(
            &ctx,
            &Tensor::from_host(&ctx, &a).unwrap(),
            &Tensor::from_host(&ctx, &b).unwrap(),
        )
        .unwrap()
        .to_vec(&ctx)
        .unwrap();
        // the plan is what ran
        let trace = ctx.end_trace().unwrap();
        let ran: Vec<_> = trace.dispatches.iter().map(|d| (d.shader, d.overrides.clone(), d.workgroups)).collect();
        let planned: Vec<_> = plan.iter().map(|s| (s.shader, s.overrides.clone(), s.workgroups)).collect();
        assert_eq!(ran, planned, "{kernel:?} {m}x{n}x{k}");
        let (m, n, k) = (m as usize, n as usize, k as usize);
        let r: Vec<f64> = (0..m * n)
            .map(|i| (0..k).map(|l| a.data[i / n * k + l] as f64 * b.data[l * n + i % n] as f64).sum())
            .collect();
        let s = compare(&c, &r);
        assert!(s.passes(Tolerance::default()), "{kernel:?} {shape:?} {m}x{n}x{k}: {s}");
    }
}

/// f16 storage, f32 accumulation: every case × Auto / implicit_gemm / gemm_1x1 / depthwise × the
/// GPU- and CPU-default GEMM kernels and the shared 16×16, against the f64 reference of the f16-rounded inputs. The
/// output must really be f16 (every value exactly representable), and within the rounding of
/// one f16 store (2⁻¹¹ relative) plus f32 accumulation.
#[test]
fn f16_storage_matches_reference() {
    let Some(ctx) = crate::common::fresh_f16_gpu() else { return };
    let tol = crate::common::F16_TOLERANCE;
    let mut failures = Vec::new();
    let mut runs = 0;
    for kernel in [wgconv::GemmKernel::Block8x8, wgconv::GemmKernel::Block16x16, wgconv::GemmKernel::Flat16x16] {
        ctx.set_config(EngineConfig { gemm_kernel: kernel, ..ctx.config() });
        // The 8x8 kernel (the GPU default) and the shared 16x16 on every third case, to keep
        // compile time down; the flat kernel (the CPU default) on every case.
        let step = if kernel == wgconv::GemmKernel::Flat16x16 { 1 } else { 3 };
        for (i, c) in cases().iter().enumerate().step_by(step) {
            let algos = [
                Algorithm::Auto,
                Algorithm::ImplicitGemm,
                Algorithm::Gemm1x1,
                Algorithm::Depthwise,
                Algorithm::Winograd,
            ];
            for algo in algos {
                if !c.algorithms().contains(&algo) {
                    continue;
                }
                let c = c.clone().algo(algo);
                let (x, w, b) = c.seeded(4000 + i as u64);
                let (x, w, b) =
                    (x.rounded_to(DType::F16), w.rounded_to(DType::F16), b.map(|b| b.rounded_to(DType::F16)));
                let (_, r) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &c.params).unwrap();
                let h = |t: &HostTensor| Tensor::from_slice_as(&ctx, &t.shape, &t.data, DType::F16).unwrap();
                let (y, info) = wgconv::conv2d_with_info(&ctx, &h(&x), &h(&w), b.as_ref().map(h).as_ref(), &c.params)
                    .unwrap_or_else(|e| panic!("case {i} {}: {e}", algo.name()));
                assert_eq!(y.dtype(), DType::F16);
                let expected = if algo == Algorithm::Auto { Algorithm::choose(&info.geometry) } else { algo };
                assert_eq!(info.algorithm, expected);
                let out = y.to_vec(&ctx).unwrap();
                assert!(crate::common::all_f16(&out), "case {i}: not f16 values");
                let s = compare(&out, &r);
                runs += 1;
                if !s.passes(tol) {
                    failures.push(format!("{kernel:?} case {i} {}: {s}", algo.name()));
                }
            }
        }
    }
    assert!(runs > 80, "{runs}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What f16 cannot do is an error, before any GPU work: other algorithms, mixed dtypes,
/// other ops; and f16 tensors on a device created without SHADER_F16.
#[test]
fn f16_limits_are_clear_errors() {
    let Some(ctx) = fresh_gpu() else { return };
    // A device opened without SHADER_F16 (as an app might): a clear error, not silent f32.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let plain = GpuContext::from_device(device, queue);
    let e = Tensor::from_slice_as(&plain, &[2, 2], &[1.0; 4], DType::F16).unwrap_err();
    assert!(matches!(e, Error::Unsupported(ref m) if m.contains("SHADER_F16")), "{e}");
    assert!(matches!(Tensor::empty_as(&plain, &[3], DType::F16), Err(Error::Unsupported(_))));

    if !ctx.device().features().contains(wgpu::Features::SHADER_F16) {
        eprintln!("SKIP: adapter lacks SHADER_F16");
        return;
    }
    let x = Tensor::from_slice_as(&ctx, &[1, 4, 5, 5], &[0.5; 100], DType::F16).unwrap();
    let w = Tensor::from_slice_as(&ctx, &[4, 1, 3, 3], &[0.25; 36], DType::F16).unwrap();
    let w32 = Tensor::from_slice(&ctx, &[4, 1, 3, 3], &[0.25; 36]).unwrap();
    let subs = ctx.submissions();
    for algo in [Algorithm::Im2colGemm, Algorithm::Direct] {
        let p = Conv2dParams { groups: 4, algorithm: algo, ..Default::default() };
        let e = conv2d(&ctx, &x, &w, None, &p).unwrap_err();
        assert!(matches!(e, Error::InvalidParam { name: "algorithm", .. }), "{e}");
    }
    let p = Conv2dParams { groups: 4, ..Default::default() };
    assert!(matches!(conv2d(&ctx, &x, &w32, None, &p).unwrap_err(), Error::DTypeMismatch(_)));
    // The one op without f16 storage: matmul (the benchmark's ceiling GEMM).
    let a = Tensor::from_slice_as(&ctx, &[2, 2], &[0.5; 4], DType::F16).unwrap();
    let e = wgconv::matmul(&ctx, &a, &a).unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    assert_eq!(ctx.submissions(), subs);
    // Auto on a depthwise shape runs the f16 depthwise kernel: 0.5 · 0.25 over the 3x3
    // window (4 taps in the corners, 6 on the edges, 9 inside), exact in f16.
    let (y, info) = wgconv::conv2d_with_info(&ctx, &x, &w, None, &p).unwrap();
    assert_eq!((info.algorithm, y.dtype()), (Algorithm::Depthwise, DType::F16));
    let y = y.to_vec(&ctx).unwrap();
    assert_eq!(y.len(), 4 * 3 * 3);
    assert!(y.iter().all(|&v| v == 9.0 * 0.125), "{y:?}");
}

/// The plan of a call is made before any GPU object (no pipeline, no submission), lists
/// exactly the launches the call records (the call errors if they differ), and reports what
/// the call reports.
#[test]
fn plan_lists_the_launches_before_any_gpu_object() {
    let Some(ctx) = fresh_gpu() else { return };
    let rows = 5 * 9;
    ctx.set_config(EngineConfig { workspace_budget: rows * 4 * 37, ..ctx.config() });
    let cases = [
        (case(3, 5, [9, 10], 6, [3, 3]).pad(sym(1, 1)).algo(Algorithm::Im2colGemm), 8 * 2),
        (case(2, 5, [9, 10], 6, [3, 3]).pad(sym(1, 1)), 1),
        (case(2, 8, [9, 10], 6, [1, 1]), 1),
        (case(2, 8, [9, 10], 8, [3, 3]).pad(sym(1, 1)).groups(8), 1),
        (case(1, 4, [9, 10], 6, [3, 3]).algo(Algorithm::Direct), 1),
    ];
    for (i, (c, launches)) in cases.iter().enumerate() {
        let (x, w, b) = c.seeded(i as u64);
        let (pipes, subs) = (ctx.pipelines_compiled(), ctx.submissions());
        let plan = wgconv::plan_conv2d(
            &ctx,
            &x.shape,
            &w.shape,
            b.as_ref().map(|b| b.shape.as_slice()),
            DType::F32,
            &c.params,
        )
        .unwrap();
        assert_eq!((ctx.pipelines_compiled(), ctx.submissions()), (pipes, subs), "planning built or ran nothing");
        assert_eq!(plan.steps.len(), *launches, "{c:?}\n{plan}");
        assert!(!plan.reason.is_empty());
        let (stats, info) = run_case(&ctx, c, i as u64);
        assert!(stats.passes(Tolerance::default()), "{stats}");
        assert_eq!(info, plan.info(), "{c:?}");
        assert_ne!(info.algorithm, Algorithm::Auto);
    }
}

/// A reduction past the loop budget is planned as several K passes over consecutive ranges;
/// one that fits is one launch. The printed plan names them.
#[test]
fn plan_splits_long_reductions_into_k_passes() {
    let Some(ctx) = gpu() else { return };
    let p = Conv2dParams::default();
    // K = Cin·kh·kw = 8192·9 = 73728 terms
    let long = wgconv::plan_conv2d(ctx, &[1, 8192, 3, 3], &[2, 8192, 3, 3], None, DType::F32, &p).unwrap();
    assert!(long.steps.len() > 1, "{long}");
    assert!(long.steps.iter().all(|s| s.shader == long.steps[0].shader && s.note.contains("passes")), "{long}");
    let text = long.to_string();
    assert!(text.contains("K 0..") && text.contains("..73728 of"), "{text}");
    let short = wgconv::plan_conv2d(ctx, &[1, 64, 3, 3], &[2, 64, 3, 3], None, DType::F32, &p).unwrap();
    assert_eq!(short.steps.len(), 1, "{short}");
    // Invalid parameters are the validation errors, before any planning.
    let e = wgconv::plan_conv2d(ctx, &[1, 64, 3, 3], &[2, 63, 3, 3], None, DType::F32, &p).unwrap_err();
    assert!(matches!(e, Error::ChannelMismatch(_)), "{e}");
}

/// The flat GEMM's A read from uniform windows (`UniformA`, shaders/gemm_a_window.wgsl) on
/// every case and GEMM algorithm: off (no pack_a launch), Auto (windows where K fits one
/// and the GEMM is large enough: on a CPU adapter, as this suite's lavapipe),
/// on (K in passes of 16384 / (groups·M) steps, each adding onto the partial sums), and on
/// under a loop budget that cuts K shorter than a window. A weight of 300 rows makes a
/// window 48 steps wide: its K of 16·9 runs in three, its 1×1 K of 64 in two. NaN and ±∞ in
/// the weights land where the reference puts them. A stored transposed (grad_input of the
/// 1×1 conv2d_backward, A = weightᵀ: 64 rows, K = 300 in two windows of 256; a grouped
/// conv_transpose2d's gemm_col2im: 2 × 180 rows, K = 20) packs from the other order.
#[test]
fn uniform_a_windows_match_the_reference_in_one_pass_and_in_several() {
    use wgconv::shaders::ShaderId;
    use wgconv::{GemmKernel, Grads, UniformA};
    let Some(ctx) = fresh_gpu() else { return };
    let base = ctx.config();
    let cpu = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let mut all = cases();
    // big enough for Auto (64 × 1600 × 144 multiply-adds, K in one window)
    let big = all.len();
    all.push(case(1, 16, [40, 40], 64, [3, 3]).pad(sym(1, 1)));
    all.push(case(1, 16, [6, 7], 300, [3, 3]).pad(sym(1, 1)));
    all.push(case(2, 64, [5, 6], 300, [1, 1]));
    let packs = |f: &mut dyn FnMut()| {
        ctx.begin_trace();
        f();
        ctx.end_trace().unwrap().dispatches.iter().filter(|d| d.shader == ShaderId::PackA).count()
    };
    let mut failures = Vec::new();
    for (uniform_a, loop_budget) in [
        (UniformA::Off, base.loop_budget),
        (UniformA::Auto, base.loop_budget),
        (UniformA::On, base.loop_budget),
        (UniformA::On, 200),
    ] {
        ctx.set_config(EngineConfig { gemm_kernel: GemmKernel::Flat16x16, uniform_a, loop_budget, ..base });
        let what = format!("{uniform_a:?} budget {loop_budget}");
        for (i, c) in all.iter().enumerate() {
            for algo in [Algorithm::Im2colGemm, Algorithm::ImplicitGemm, Algorithm::Gemm1x1] {
                if !c.algorithms().contains(&algo) {
                    continue;
                }
                let mut stats = None;
                let n = packs(&mut || stats = Some(run_case(&ctx, &c.clone().algo(algo), 3000 + i as u64).0));
                let stats = stats.unwrap();
                // every one of these GEMMs is windowed when on; none when off
                match uniform_a {
                    UniformA::Off => assert_eq!(n, 0, "{what} case {i} {}", algo.name()),
                    UniformA::On => assert!(n > 0, "{what} case {i} {}: no pack_a", algo.name()),
                    UniformA::Auto if i == big && cpu => assert!(n > 0, "{what} case {i} {}: no pack_a", algo.name()),
                    UniformA::Auto => {}
                }
                if !stats.passes(Tolerance::default()) {
                    failures.push(format!("{what} case {i} {}: {stats}", algo.name()));
                }
            }
        }
        // special values in the weight of the three-pass case
        let c = &all[all.len() - 2];
        let (x, mut w, b) = c.seeded(77);
        w.data[5] = f32::NAN;
        w.data[16 * 9 * 7 + 100] = f32::INFINITY;
        w.data[16 * 9 * 250 + 3] = f32::NEG_INFINITY;
        let p = Conv2dParams { algorithm: Algorithm::ImplicitGemm, ..c.params };
        let (_, want) = wgconv::reference::conv2d(&x, &w, b.as_ref(), &p).unwrap();
        let (xg, wg) = (Tensor::from_host(&ctx, &x).unwrap(), Tensor::from_host(&ctx, &w).unwrap());
        let bg = b.as_ref().map(|b| Tensor::from_host(&ctx, b).unwrap());
        let got = conv2d(&ctx, &xg, &wg, bg.as_ref(), &p).unwrap().to_vec(&ctx).unwrap();
        crate::special_values::assert_same_specials(&format!("{what} specials"), &got, &want);
        // A transposed: grad_input of the 1×1 case
        let c = &all[all.len() - 1];
        let (x, w, _) = c.seeded(78);
        let (ys, _) = wgconv::reference::conv2d(&x, &w, None, &c.params).unwrap();
        let dy = HostTensor::random(&ys, 79);
        let (want, _, _) = wgconv::reference::conv2d_backward(&x, &w, &dy, &c.params).unwrap();
        let up = |h: &HostTensor| Tensor::from_host(&ctx, h).unwrap();
        let mut g = None;
        let n = packs(&mut || {
            g = Some(
                wgconv::conv2d_backward(
                    &ctx,
                    &up(&x),
                    &up(&w),
                    &up(&dy),
                    &c.params,
                    Grads { input: true, weight: false, bias: false },
                )
                .unwrap(),
            )
        });
        // (64 rows: windows of 256 steps, K = 300: two passes, so not under Auto)
        assert_eq!(n > 0, uniform_a == UniformA::On, "{what}: grad_input's packs {n}");
        let got = g.unwrap().grad_input.unwrap().to_vec(&ctx).unwrap();
        let stats = compare(&got, &want);
        if !stats.passes(Tolerance::default()) {
            failures.push(format!("{what} grad_input (A transposed): {stats}"));
        }
        // A transposed with groups: conv_transpose2d's gemm_col2im (weight [Cin, Cout/G, kh, kw])
        let p = wgconv::ConvTranspose2dParams {
            stride: [2, 2],
            padding: sym(1, 1),
            groups: 2,
            algorithm: Algorithm::GemmCol2im,
            ..Default::default()
        };
        let (x, w) = (HostTensor::random(&[2, 40, 5, 6], 80), HostTensor::random(&[40, 20, 3, 3], 81));
        let (_, want) = wgconv::reference::conv_transpose2d(&x, &w, None, &p).unwrap();
        let mut got = None;
        let n = packs(&mut || {
            let y = wgconv::conv_transpose2d(&ctx, &up(&x), &up(&w), None, &p).unwrap();
            got = Some(y.to_vec(&ctx).unwrap());
        });
        assert_eq!(n > 0, uniform_a == UniformA::On, "{what}: gemm_col2im's packs {n}");
        let stats = compare(&got.unwrap(), &want);
        if !stats.passes(Tolerance::default()) {
            failures.push(format!("{what} conv_transpose2d gemm_col2im (A transposed, 2 groups): {stats}"));
        }
    }
    ctx.set_config(base);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
