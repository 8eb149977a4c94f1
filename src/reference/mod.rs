//! CPU twins of the GPU ops: straightforward loops accumulating in f64, written from the
//! definitions (PyTorch semantics), used by tests, `wgconv run --verify` and conformance.
//! Index loops are deliberate here: they read like the formulas they implement.
#![allow(clippy::needless_range_loop)]

pub mod conv1d;
pub mod conv1d_backward;
pub mod conv2d;
pub mod conv2d_backward;
pub mod conv3d;
pub mod conv3d_backward;
pub mod conv_transpose1d;
pub mod conv_transpose1d_backward;
pub mod conv_transpose2d;
pub mod conv_transpose2d_backward;
pub mod conv_transpose3d;
pub mod conv_transpose3d_backward;
pub mod deform_conv2d;
pub mod deform_conv2d_backward;
pub mod pool2d;
pub mod pool2d_backward;

pub use conv1d::conv1d;
pub use conv1d_backward::conv1d_backward;
pub use conv2d::{conv2d, conv2d_at};
pub use conv2d_backward::conv2d_backward;
pub use conv3d::conv3d;
pub use conv3d_backward::conv3d_backward;
pub use conv_transpose1d::conv_transpose1d;
pub use conv_transpose1d_backward::conv_transpose1d_backward;
pub use conv_transpose2d::conv_transpose2d;
pub use conv_transpose2d_backward::conv_transpose2d_backward;
pub use conv_transpose3d::conv_transpose3d;
pub use conv_transpose3d_backward::conv_transpose3d_backward;
pub use deform_conv2d::{deform_conv2d, deform_conv2d_at};
pub use deform_conv2d_backward::{deform_conv2d_backward, DeformGradsF64};
pub use pool2d::pool2d;
pub use pool2d_backward::pool2d_backward;
