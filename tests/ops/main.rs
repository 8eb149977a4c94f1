//! The GPU tests of the library's ops: one module per op (and the splits past one binding,
//! long reductions, special values, an embedder's own device, the .npy reader), in one test
//! binary so that they link once and share one process and one device (`common::gpu`).
//! Tests that drive the tool (CLI, bench, conformance, properties, the static shader check)
//! are the other binaries in `tests/`.

#[path = "../common/mod.rs"]
mod common;

mod batch;
mod channels_last;
mod conv1d;
mod conv1d_backward;
mod conv2d;
mod conv2d_backward;
mod conv3d;
mod conv3d_backward;
mod conv_transpose1d;
mod conv_transpose2d;
mod conv_transpose2d_backward;
mod conv_transpose3d;
mod deform_conv2d;
mod deform_conv2d_backward;
mod embedding;
mod long_reductions;
mod npy_fuzz;
mod padding_mode;
mod pool2d;
mod pool2d_backward;
mod separable_conv2d;
mod special_values;
mod widen;
