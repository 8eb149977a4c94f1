//! Static checks of every WGSL kernel with naga: parse, validate, specialise with each
//! override set the engine uses, translate to SPIR-V, MSL, HLSL and GLSL; bindings and
//! uniform layouts against their Rust twins. No GPU needed.

use wgconv::kernels::cast::CastParams;
use wgconv::kernels::channel_sum::SumParams;
use wgconv::kernels::col2im::Col2imParams;
use wgconv::kernels::deform_backward::DeformBackParams;
use wgconv::kernels::deform_im2col::DeformIm2colParams;
use wgconv::kernels::depthwise::DepthwiseParams;
use wgconv::kernels::depthwise_backward::DwBackParams;
use wgconv::kernels::direct::DirectParams;
use wgconv::kernels::gemm::{
    AMode, BMode, ColumnChunk, ConvWindow, DeformSampling, DepthwiseStage, GemmDims, GemmParams, GemmProblem,
    OutputGrad, OutputPhases,
};
use wgconv::kernels::im2col::Im2colParams;
use wgconv::kernels::pack_a::PackAParams;
use wgconv::kernels::pool2d::PoolParams;
use wgconv::kernels::slot_sum::SlotParams;
use wgconv::kernels::transposed_border::BorderParams;
use wgconv::kernels::vol2col::Vol2colParams;
use wgconv::kernels::winograd::WinogradParams;
use wgconv::kernels::PassRange;
use wgconv::ops::pool2d::PoolMode;
use wgconv::shaders::{
    check_all_shaders, reflect_bindings, reflect_struct, reflect_u32_constants, reflect_uniform, signed_remainders,
    translate, Overrides, ShaderId, Target,
};
use wgconv::{Activation, TileShape};

#[test]
fn every_shader_translates_to_every_target() {
    let (checked, failures) = check_all_shaders();
    assert!(failures.is_empty(), "{}", failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"));
    assert!(checked > ShaderId::all().len() * 3, "{checked} translations");
    // Only the f16 kernels skip a target (GLSL).
    for id in ShaderId::all() {
        assert_eq!(id.targets().len(), if id.is_f16() { 3 } else { 4 }, "{}", id.name());
    }
}

#[test]
fn the_check_can_fail() {
    // A broken kernel is reported with the stage that broke.
    let bad = "@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }";
    let (stage, _) = translate(bad, "main", &Overrides::none(), Target::SpirV).unwrap_err();
    assert_eq!(stage, "parse");
    let unset = "override N: u32; @group(0) @binding(0) var<storage, read_write> o: array<u32>;
                 @compute @workgroup_size(1) fn main() { o[0] = N; }";
    let (stage, _) = translate(unset, "main", &Overrides::none(), Target::Msl).unwrap_err();
    assert_eq!(stage, "overrides");
    assert!(translate(unset, "main", &Overrides::none().with("N", 3.0), Target::Msl).is_ok());
}

#[test]
fn bind_group_layouts_match_the_wgsl() {
    for id in ShaderId::all() {
        let reflected = reflect_bindings(id.source()).unwrap();
        let declared: Vec<_> = id.bindings().iter().enumerate().map(|(i, &k)| (i as u32, k)).collect();
        assert_eq!(reflected, declared, "{}", id.file());
    }
}

fn assert_twin(id: ShaderId, fields: &[(&str, usize)], size: usize) {
    assert_twin_at(id, 0, fields, size);
}

fn assert_twin_at(id: ShaderId, binding: u32, fields: &[(&str, usize)], size: usize) {
    let (members, span) = reflect_uniform(id.source(), binding).unwrap();
    let ours: Vec<(String, u32)> = fields.iter().map(|&(n, o)| (n.to_string(), o as u32)).collect();
    assert_eq!(members, ours, "{}: uniform members/offsets", id.file());
    assert_eq!(span as usize, size, "{}: uniform size", id.file());
}

/// Every kernel's uniform block (binding 0) against its Rust twin, and the pass ranges of
/// the kernels that run in passes; the test fails when a kernel has no twin checked here.
#[test]
fn uniform_structs_match_their_rust_twins() {
    let mut seen = std::collections::BTreeSet::new();
    let mut twin = |ids: &[ShaderId], fields: &[(&str, usize)], size: usize| {
        for &id in ids {
            assert_twin(id, fields, size);
            seen.insert(id);
        }
    };
    use ShaderId as S;
    twin(&[S::Im2col], Im2colParams::FIELDS, std::mem::size_of::<Im2colParams>());
    twin(&gemm_kernels(), GemmParams::FIELDS, std::mem::size_of::<GemmParams>());
    for gemm in gemm_kernels() {
        assert_twin_at(gemm, 9, PassRange::FIELDS, std::mem::size_of::<PassRange>());
        // each part of the GEMM's block, declared by its loader's file
        type Part<'a> = (&'a str, &'a [(&'a str, usize)], usize);
        let parts: [Part; 7] = [
            ("GemmDims", GemmDims::FIELDS, std::mem::size_of::<GemmDims>()),
            ("ConvWindow", ConvWindow::FIELDS, std::mem::size_of::<ConvWindow>()),
            ("OutputGrad", OutputGrad::FIELDS, std::mem::size_of::<OutputGrad>()),
            ("DeformSampling", DeformSampling::FIELDS, std::mem::size_of::<DeformSampling>()),
            ("DepthwiseStage", DepthwiseStage::FIELDS, std::mem::size_of::<DepthwiseStage>()),
            ("OutputPhases", OutputPhases::FIELDS, std::mem::size_of::<OutputPhases>()),
            ("ColumnChunk", ColumnChunk::FIELDS, std::mem::size_of::<ColumnChunk>()),
        ];
        for (name, fields, size) in parts {
            let (members, span) = reflect_struct(gemm.source(), name).unwrap();
            let ours: Vec<(String, u32)> = fields.iter().map(|&(n, o)| (n.to_string(), o as u32)).collect();
            assert_eq!(members, ours, "{} {name}: members/offsets", gemm.name());
            assert_eq!(span as usize, size, "{} {name}: size", gemm.name());
        }
    }
    twin(&[S::Depthwise, S::DepthwiseHalf], DepthwiseParams::FIELDS, std::mem::size_of::<DepthwiseParams>());
    twin(&[S::Col2im], Col2imParams::FIELDS, std::mem::size_of::<Col2imParams>());
    twin(&[S::ChannelSum, S::ChannelSumHalf], SumParams::FIELDS, std::mem::size_of::<SumParams>());
    twin(&[S::SlotSum, S::SlotSumHalf], SlotParams::FIELDS, std::mem::size_of::<SlotParams>());
    twin(&[S::PackA], PackAParams::FIELDS, std::mem::size_of::<PackAParams>());
    for id in [S::ChannelSum, S::ChannelSumHalf] {
        assert_twin_at(id, 3, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    }
    twin(&[S::DeformIm2col], DeformIm2colParams::FIELDS, std::mem::size_of::<DeformIm2colParams>());
    let deform_backward = [
        S::DeformBackwardSample,
        S::DeformGradInputCount,
        S::DeformGradInputScan,
        S::DeformGradInputFill,
        S::DeformGradInputLargest,
        S::DeformGradInputSum,
        S::DeformGradInputFinish,
    ];
    twin(&deform_backward, DeformBackParams::FIELDS, std::mem::size_of::<DeformBackParams>());
    twin(&[S::Pool2d, S::Pool2dHalf], PoolParams::FIELDS, std::mem::size_of::<PoolParams>());
    for id in [S::Pool2d, S::Pool2dHalf] {
        assert_twin_at(id, 3, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    }
    let pool_backward = [S::Pool2dArgmax, S::Pool2dGather, S::Pool2dArgmaxHalf, S::Pool2dGatherHalf];
    twin(&pool_backward, PoolParams::FIELDS, std::mem::size_of::<PoolParams>());
    for id in pool_backward {
        assert_twin_at(id, 5, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    }
    twin(&[S::Vol2col, S::Col2vol], Vol2colParams::FIELDS, std::mem::size_of::<Vol2colParams>());
    let dw_backward =
        [S::DepthwiseGradInput, S::DepthwiseGradWeight, S::DepthwiseGradInputHalf, S::DepthwiseGradWeightHalf];
    twin(&dw_backward, DwBackParams::FIELDS, std::mem::size_of::<DwBackParams>());
    twin(&[S::Direct], DirectParams::FIELDS, std::mem::size_of::<DirectParams>());
    let winograd = [
        S::WinogradWeights,
        S::WinogradInputs,
        S::WinogradOutputs,
        S::WinogradWeightsHalf,
        S::WinogradInputsHalf,
        S::WinogradOutputsHalf,
    ];
    twin(&winograd, WinogradParams::FIELDS, std::mem::size_of::<WinogradParams>());
    let border = [S::TransposedBorder, S::TransposedBorderHalf];
    twin(&border, BorderParams::FIELDS, std::mem::size_of::<BorderParams>());
    for id in border {
        assert_twin_at(id, 5, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    }
    twin(&[S::CastWiden, S::CastNarrow], CastParams::FIELDS, std::mem::size_of::<CastParams>());
    let missing: Vec<&str> = ShaderId::all().into_iter().filter(|id| !seen.contains(id)).map(|id| id.name()).collect();
    assert!(missing.is_empty(), "kernels whose uniform block has no twin checked: {missing:?}");
}

#[test]
fn every_shader_file_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let mut known: Vec<String> = ShaderId::all().iter().flat_map(|s| s.files()).map(|f| f.to_string()).collect();
    known.sort();
    known.dedup();
    assert_eq!(files, known);
}

/// Every number WGSL and Rust must agree on is a named constant on both sides: each Rust
/// variant has its WGSL constant, with the same value, and no WGSL constant of those families
/// lacks a Rust variant.
#[test]
fn wgsl_constants_agree_with_their_rust_twins() {
    fn b_name(m: BMode) -> &'static str {
        match m {
            BMode::Dense => "B_DENSE",
            BMode::Implicit => "B_IMPLICIT",
            BMode::Pointwise => "B_POINTWISE",
            BMode::Taps => "B_TAPS",
            BMode::Deform => "B_DEFORM",
            BMode::Depthwise => "B_DEPTHWISE",
            BMode::Transposed => "B_TRANSPOSED",
            BMode::ColumnsT => "B_COLUMNS_T",
        }
    }
    fn a_name(m: AMode) -> &'static str {
        match m {
            AMode::RowMajor => "A_ROW_MAJOR",
            AMode::Transposed => "A_TRANSPOSED",
            AMode::OutputGrad => "A_OUTPUT_GRAD",
            AMode::PhaseTaps => "A_PHASE_TAPS",
            AMode::TapMajor => "A_TAP_MAJOR",
        }
    }
    fn tile_name(t: TileShape) -> &'static str {
        match t {
            TileShape::Square => "TILE_SQUARE",
            TileShape::Wide => "TILE_WIDE",
            TileShape::Tall => "TILE_TALL",
        }
    }
    fn act_name(a: Activation) -> &'static str {
        match a {
            Activation::None => "ACT_NONE",
            Activation::Relu => "ACT_RELU",
            Activation::Relu6 => "ACT_RELU6",
            Activation::LeakyRelu(_) => "ACT_LEAKY_RELU",
            Activation::Sigmoid => "ACT_SIGMOID",
            Activation::Tanh => "ACT_TANH",
            Activation::Gelu => "ACT_GELU",
        }
    }
    fn pool_name(m: PoolMode) -> &'static str {
        match m {
            PoolMode::Max => "MODE_MAX",
            PoolMode::Avg => "MODE_AVG",
        }
    }
    let check = |id: ShaderId, prefix: &str, rust: Vec<(&'static str, u32)>| {
        let wgsl: Vec<(String, u32)> =
            reflect_u32_constants(id.source()).unwrap().into_iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        let mut ours: Vec<(String, u32)> = rust.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        let mut theirs = wgsl;
        ours.sort();
        theirs.sort();
        assert_eq!(theirs, ours, "{} constants {prefix}*", id.name());
    };
    for id in gemm_kernels() {
        check(id, "B_", BMode::ALL.iter().map(|&m| (b_name(m), m as u32)).collect());
        check(id, "A_", AMode::ALL.iter().map(|&m| (a_name(m), m as u32)).collect());
        check(id, "TILE_", TileShape::ALL.iter().map(|&t| (tile_name(t), t as u32)).collect());
    }
    for id in ShaderId::all().into_iter().filter(|id| id.files().contains(&"activation.wgsl")) {
        check(id, "ACT_", Activation::ALL.iter().map(|&a| (act_name(a), a.code())).collect());
    }
    check(ShaderId::Pool2d, "MODE_", PoolMode::ALL.iter().map(|&m| (pool_name(m), m as u32)).collect());
    // the host sizes grad_input's walking workgroups (deform_conv2d_backward) with these
    use wgconv::kernels::deform_backward::{STAGED, WALK_WG};
    check(ShaderId::DeformGradInputLargest, "WALK_WG", vec![("WALK_WG", WALK_WG)]);
    check(ShaderId::DeformGradInputSum, "STAGED", vec![("STAGED", STAGED)]);
}

#[test]
fn the_constant_check_can_fail() {
    let consts = reflect_u32_constants("const B_DENSE: u32 = 1u; const X: f32 = 2.0;").unwrap();
    assert_eq!(consts, vec![("B_DENSE".to_string(), 1)]);
}

fn gemm_kernels() -> Vec<ShaderId> {
    ShaderId::all().into_iter().filter(|id| matches!(id, ShaderId::Gemm(_))).collect()
}

/// The A and B modes are specialised only in the pairings `GemmProblem` names, every GEMM
/// kernel is checked with every problem it computes, and the f32 scalar-B kernels compute
/// every problem.
#[test]
fn gemm_override_sets_are_the_legal_problems() {
    let modes = |p: &GemmProblem| {
        let (a, b) = p.modes();
        (a as u32, b as u32)
    };
    let legal: Vec<(u32, u32)> = GemmProblem::ALL.iter().map(modes).collect();
    let pair = |ov: &Overrides| {
        let get = |n: &str| ov.entries().iter().find(|(k, _)| *k == n).map(|&(_, v)| v as u32);
        (get("A_MODE").expect("A_MODE set"), get("B_MODE").expect("B_MODE set"))
    };
    let kernels = gemm_kernels();
    assert_eq!(
        kernels.len(),
        13,
        "4x4; 8x8 f32 and f16; 16x16 and flat × scalar/vec4 B × f32/f16; flat f32 × scalar/vec4 B with A in windows"
    );
    for id in kernels {
        let ShaderId::Gemm(key) = id else { unreachable!() };
        let pairs: Vec<(u32, u32)> = id.override_sets().iter().map(pair).collect();
        for p in &pairs {
            assert!(legal.contains(p), "{}: {p:?} is no GemmProblem", id.name());
        }
        for p in key.problems() {
            assert!(pairs.contains(&modes(&p)), "{}: {p:?} is never checked", id.name());
        }
        if !key.quad() && !key.half() && !key.window() {
            assert_eq!(key.problems(), GemmProblem::ALL.to_vec(), "{}", id.name());
        }
        // A in windows: the problems whose A is stored row-major or transposed, all of them
        if key.window() {
            use wgconv::kernels::gemm::AMode;
            let packed: Vec<GemmProblem> = GemmProblem::ALL
                .into_iter()
                .filter(|p| matches!(p.modes().0, AMode::RowMajor | AMode::Transposed))
                .filter(|p| !key.quad() || p.reads_b_as_vec4())
                .collect();
            assert_eq!(key.problems(), packed, "{}", id.name());
        }
        assert_eq!(id.is_f16(), key.half(), "{}", id.name());
        assert_eq!(id.files().contains(&"gemm_b_quad.wgsl"), key.quad(), "{}", id.name());
        assert_eq!(id.files().contains(&"gemm_a_window.wgsl"), key.window(), "{}", id.name());
        assert_eq!(id.files().contains(&"gemm_a_rows.wgsl"), !key.window(), "{}", id.name());
    }
}

/// Only the legal GEMM keys have a kernel: no vec4 B on the 64×64 tiles, no f16 4×4, no
/// `Auto` (it resolves before a key is formed).
#[test]
fn illegal_gemm_keys_have_no_kernel() {
    use wgconv::shaders::GemmKey;
    use wgconv::GemmKernel::{Auto, Block4x4, Block8x8, Flat16x16};
    for (core, quad, half) in
        [(Block4x4, true, false), (Block8x8, true, false), (Block4x4, false, true), (Auto, false, false)]
    {
        assert_eq!(GemmKey::new(core, quad, half), None, "{core:?} quad={quad} f16={half}");
    }
    assert!(GemmKey::new(Flat16x16, true, true).is_some());
    // f16 vec4 B: the pointwise problem alone
    let key = GemmKey::new(Flat16x16, true, true).unwrap();
    assert_eq!(key.problems(), vec![GemmProblem::Pointwise]);
}

/// `bitcast<f32>(LITERAL)` (or f16, or a vector of either) whose bits are an infinity or a
/// NaN: a constant expression with a non-finite value, which WGSL makes a shader-creation
/// error. naga accepts it; Tint (Chrome, Dawn) refuses the whole module.
fn nonfinite_constant_bitcasts(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in src.match_indices("bitcast<") {
        let rest = &src[at + "bitcast<".len()..];
        let Some(close) = rest.find(">(") else { continue };
        let ty = &rest[..close];
        let arg_start = &rest[close + 2..];
        let Some(end) = arg_start.find(')') else { continue };
        let arg = arg_start[..end].trim().trim_end_matches(['u', 'i']);
        let bits = match arg.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => arg.parse::<u64>().ok(),
        };
        let Some(bits) = bits else { continue }; // not a literal: evaluated at run time
        let nonfinite = if ty.contains("f16") {
            (bits as u16 & 0x7c00) == 0x7c00
        } else if ty.contains("f32") {
            !f32::from_bits(bits as u32).is_finite()
        } else {
            false
        };
        if nonfinite {
            found.push(format!("bitcast<{ty}>({})", &arg_start[..end]));
        }
    }
    found
}

#[test]
fn no_constant_expression_is_an_infinity_or_nan() {
    // the kind of fault: pool2d's max started from `bitcast<f32>(0xff800000u)`, which Dawn
    // refused to compile while every naga target passed
    assert_eq!(nonfinite_constant_bitcasts("var best = bitcast<f32>(0xff800000u);").len(), 1);
    assert_eq!(nonfinite_constant_bitcasts("let n = bitcast<f16>(0x7e00u);").len(), 1);
    assert!(nonfinite_constant_bitcasts("var b = 0xff800000u; var best = bitcast<f32>(b);").is_empty());
    assert!(nonfinite_constant_bitcasts("let one = bitcast<f32>(0x3f800000u);").is_empty());
    for id in ShaderId::all() {
        let found = nonfinite_constant_bitcasts(id.source());
        assert!(found.is_empty(), "{}: non-finite constant expressions {found:?}", id.name());
    }
}

/// No kernel takes the remainder of signed integers: GLSL (naga's GL back end) leaves a
/// negative operand undefined, and Mesa's GL took `-1 % 3` as 0, so a depthwise backward
/// kernel whose tap test was `cx % 3 == 0` summed taps that do not exist, on GL only (the
/// cross-implementation matrix found it; `conv2d_backward::gradients_match_reference` case
/// 29 reproduces it with `WGPU_BACKEND=gl`).
#[test]
fn no_kernel_takes_a_signed_remainder() {
    let bad = "@group(0) @binding(0) var<storage, read_write> o: array<i32>;\n\
               @compute @workgroup_size(1) fn main() { o[0] = o[1] % 3; o[2] = o[3] / 2; o[4] = i32(u32(o[5]) % 3u); }";
    assert_eq!(signed_remainders(bad).unwrap().len(), 1, "the check finds i32 %, not u32 % or /");
    let mut failures = Vec::new();
    for id in ShaderId::all() {
        let found = signed_remainders(id.source()).unwrap();
        if !found.is_empty() {
            failures.push(format!("{}: {found:?}", id.name()));
        }
    }
    assert!(
        failures.is_empty(),
        "signed integer % (undefined in GLSL for negative operands):\n{}",
        failures.join("\n")
    );
}
