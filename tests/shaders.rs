//! Static checks of every WGSL kernel with naga: parse, validate, specialise with each
//! override set the engine uses, translate to SPIR-V, MSL, HLSL and GLSL; bindings and
//! uniform layouts against their Rust twins. No GPU needed.

use wgconv::ops::conv2d_backward::{DwBackParams, SumParams};
use wgconv::ops::conv3d::Vol2colParams;
use wgconv::ops::deform_conv2d::DeformIm2colParams;
use wgconv::ops::direct::DirectParams;
use wgconv::ops::pool2d::PoolParams;
use wgconv::ops::PassRange;
use wgconv::ops::{conv_transpose2d::Col2imParams, depthwise::DepthwiseParams, gemm::GemmParams, im2col::Im2colParams};
use wgconv::shaders::{check_shader, reflect_bindings, reflect_uniform, translate, Overrides, ShaderId, Target};

#[test]
fn every_shader_translates_to_every_target() {
    let mut failures = Vec::new();
    for &id in ShaderId::ALL {
        failures.extend(check_shader(id));
    }
    assert!(failures.is_empty(), "{}", failures.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"));
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
    for &id in ShaderId::ALL {
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

#[test]
fn uniform_structs_match_their_rust_twins() {
    assert_twin(ShaderId::Im2col, Im2colParams::FIELDS, std::mem::size_of::<Im2colParams>());
    assert_twin(ShaderId::Gemm, GemmParams::FIELDS, std::mem::size_of::<GemmParams>());
    assert_twin_at(ShaderId::Gemm, 9, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    assert_twin(ShaderId::Depthwise, DepthwiseParams::FIELDS, std::mem::size_of::<DepthwiseParams>());
    assert_twin(ShaderId::Col2im, Col2imParams::FIELDS, std::mem::size_of::<Col2imParams>());
    assert_twin(ShaderId::ChannelSum, SumParams::FIELDS, std::mem::size_of::<SumParams>());
    assert_twin_at(ShaderId::ChannelSum, 3, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    assert_twin(ShaderId::DeformIm2col, DeformIm2colParams::FIELDS, std::mem::size_of::<DeformIm2colParams>());
    assert_twin(ShaderId::Pool2d, PoolParams::FIELDS, std::mem::size_of::<PoolParams>());
    assert_twin_at(ShaderId::Pool2d, 3, PassRange::FIELDS, std::mem::size_of::<PassRange>());
    assert_twin(ShaderId::Vol2col, Vol2colParams::FIELDS, std::mem::size_of::<Vol2colParams>());
    assert_twin(ShaderId::DepthwiseGradInput, DwBackParams::FIELDS, std::mem::size_of::<DwBackParams>());
    assert_twin(ShaderId::Direct, DirectParams::FIELDS, std::mem::size_of::<DirectParams>());
}

#[test]
fn every_shader_file_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let mut known: Vec<String> = ShaderId::ALL.iter().flat_map(|s| s.files()).map(|f| f.to_string()).collect();
    known.sort();
    known.dedup();
    assert_eq!(files, known);
}
