//! # wgconv
//!
//! Convolutions as WGSL compute shaders on [wgpu], each proven against an f64 CPU reference.
//!
//! ## Semantics
//! PyTorch is the oracle: [`conv2d`], [`conv_transpose2d`] and [`deform_conv2d`] compute
//! `torch.nn.functional.conv2d`, `conv_transpose2d` and `torchvision.ops.deform_conv2d`, and
//! [`conv2d_backward`], [`conv1d_backward`], [`conv3d_backward`], [`conv_transpose1d_backward`],
//! [`conv_transpose2d_backward`], [`conv_transpose3d_backward`], [`deform_conv2d_backward`],
//! [`max_pool2d_backward`] and [`avg_pool2d_backward`] the gradients PyTorch autograd gives;
//! [`conv1d`], [`conv3d`], [`conv_transpose1d`], [`conv_transpose3d`],
//! [`max_pool2d`], [`avg_pool2d`], [`adaptive_max_pool2d`], [`adaptive_avg_pool2d`] follow their
//! `torch.nn.functional` namesakes, and
//! [`separable_conv2d`] is a depthwise conv followed by a pointwise one in one call. [`conv2d`] computes
//! `torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)` with
//! the same argument order and output shape,
//! `Ho = ⌊(H + pad_top + pad_bottom − dilation·(kh−1) − 1) / stride⌋ + 1` (likewise W).
//! [`Padding::Same`] (stride 1 only) splits the total `dilation·(k−1)` with the odd pixel at
//! the bottom/right, as PyTorch does.
//!
//! ## Layouts
//! Tensors are dense f32, row-major: input `[N, Cin, H, W]`, weight `[Cout, Cin/groups, kh,
//! kw]`, bias `[Cout]`, output `[N, Cout, Ho, Wo]`. A [`Tensor`] is a shape and a
//! `wgpu::Buffer`; the buffer may be the caller's own ([`Tensor::from_buffer`], no copy).
//! [`conv2d`]'s and [`conv_transpose2d`]'s input and output may also be channels-last
//! ([`Layout::ChannelsLast`]: the logical shape `[N, C, H, W]` stored as `[N, H, W, C]`,
//! PyTorch's `torch.channels_last`), read and written natively by every algorithm; every other
//! op refuses channels-last tensors with [`Error::Unsupported`].
//!
//! ## f16 storage
//! On a device with `SHADER_F16` (a [`GpuContext::new`] context asks for it when the adapter
//! has it), tensors may store f16 ([`DType::F16`]: [`Tensor::from_slice_as`],
//! [`Tensor::empty_as`], [`Tensor::from_buffer_as`]); [`Tensor::to_vec`] widens to f32.
//! [`conv2d`] and [`conv1d`] run f16 tensors through `implicit_gemm`, `gemm_1x1` or
//! `depthwise` (what `Auto` picks for them), [`conv_transpose2d`], [`conv_transpose1d`] and [`deform_conv2d`]
//! through `implicit_gemm`, [`conv2d_backward`], [`conv1d_backward`], [`conv_transpose2d_backward`],
//! [`conv_transpose1d_backward`], the poolings and their backward passes through their f32 kernels'
//! f16 variants: loading f16, accumulating in f32 and storing f16. The ops whose kernels are
//! f32 only ([`conv3d`], [`conv3d_backward`], [`conv_transpose3d`], [`separable_conv2d`],
//! [`deform_conv2d_backward`], a conv2d with a padding mode) take f16 tensors through f32
//! copies: each input widened (exact), each result rounded to f16 once. Without the feature,
//! making an f16 tensor is [`Error::Unsupported`], never a silent f32; the tensors of one call
//! must share a dtype ([`Error::DTypeMismatch`]); a forced algorithm without an f16 kernel is
//! [`Error::InvalidParam`]; [`matmul`] returns [`Error::Unsupported`] for f16 tensors. Tolerance: one f16 rounding of each output
//! (relative 2⁻¹¹) on top of the f32 bounds; tests use relative L2 ≤ 1e-3.
//!
//! ## Two ways to run
//! - [`conv2d`] encodes, submits on the context's queue and returns the output tensor.
//! - [`conv2d_into`] records into the caller's `wgpu::CommandEncoder` and submits nothing.
//!
//! ```no_run
//! use wgconv::{conv2d, Conv2dParams, GpuContext, Padding, Tensor};
//! let ctx = GpuContext::new()?;
//! let x = Tensor::from_slice(&ctx, &[1, 3, 8, 8], &vec![0.5; 3 * 64])?;
//! let w = Tensor::from_slice(&ctx, &[4, 3, 3, 3], &vec![0.1; 4 * 27])?;
//! let p = Conv2dParams { padding: Padding::Symmetric([1, 1]), ..Default::default() };
//! let y = conv2d(&ctx, &x, &w, None, &p)?;
//! assert_eq!(y.shape(), &[1, 4, 8, 8]);
//! let values: Vec<f32> = y.to_vec(&ctx)?;
//! # Ok::<(), wgconv::Error>(())
//! ```
//!
//! ## Errors
//! Every failure is an [`Error`]; nothing panics on bad input and no wgpu error reaches wgpu's
//! (panicking) default handler: each op validates its arguments before it creates any GPU
//! object, and pipeline creation, encoding and submission run inside error scopes
//! ([`GpuContext::scoped`]). Validation rules of conv2d and the variant each returns; each
//! rule is broken on purpose, from 60 random valid cases, by
//! `tests/reliability.rs::every_broken_rule_is_its_error_with_no_gpu_work` (which also checks
//! that no command buffer was submitted and no pipeline built) and, one by one, by
//! `tests/ops/conv2d.rs::invalid_parameters_are_clear_errors`:
//!
//! | rule | variant |
//! |---|---|
//! | input rank 4 (or 3: PyTorch's unbatched `[C, H, W]`), weight rank 4 | [`Error::Rank`] |
//! | no dimension is 0 but the batch (N = 0 gives an empty output and runs nothing) | [`Error::EmptyTensor`] |
//! | stride ≥ 1, dilation ≥ 1; `Same` only with stride 1 | [`Error::InvalidParam`] |
//! | groups ≥ 1, divides Cin and Cout | [`Error::Groups`] |
//! | weight's `Cin/groups` × groups = input channels | [`Error::ChannelMismatch`] |
//! | bias shape `[Cout]` | [`Error::BiasShape`] |
//! | output size ≥ 1 on both axes | [`Error::EmptyOutput`] |
//! | a forced algorithm supports the shape (and the dtype); a leaky-ReLU slope is finite | [`Error::InvalidParam`] |
//! | every tensor of the call has the input's dtype | [`Error::DTypeMismatch`] |
//! | all tensors made on this context | [`Error::DeviceMismatch`] |
//! | output tensor of the output shape; caller buffers large enough, with STORAGE usage | [`Error::Buffer`] |
//! | each tensor fits one buffer (`max_buffer_size`); one output row of an image (conv2d, conv_transpose2d, pools, deform_conv2d), one output position's channels (conv1d), one depth plane (conv3d), one input channel plane (deform_conv2d) and one output channel's weights fit one storage binding; a weight and one image do not both exceed one binding; f16 bands and chunks need even plane widths, f16 deform_conv2d images fit one binding; one im2col column fits the workspace budget; grids fit 3 dimensions | [`Error::TooLarge`] |
//!
//! At run time: wgpu validation, out-of-memory and internal errors become
//! [`Error::Validation`], [`Error::OutOfMemory`], [`Error::Internal`]; a lost or destroyed
//! device becomes [`Error::DeviceLost`] on every later call (the context must be recreated);
//! every wait for the GPU is bounded by [`EngineConfig::wait_timeout`] ([`Error::Timeout`]).
//!
//! The im2col workspace is split over output pixels (batch and rows) so that no chunk
//! exceeds [`EngineConfig::workspace_budget`] or the device's storage binding size; grids
//! above the per-dimension workgroup limit fold into y and z.
//!
//! ## The batch axis
//! - **Beyond one binding.** A storage binding holds at most
//!   `max_storage_buffer_binding_size` bytes (128 MiB on lavapipe and on WebGPU's defaults),
//!   a buffer up to `max_buffer_size`. When an op's input or output (or deform_conv2d's offset
//!   and mask) exceeds one binding, the op runs over consecutive pieces of the batch, each
//!   bound in place at an aligned offset (or, where no aligned piece length fits, through a
//!   scratch copy); every piece runs the algorithm chosen for the whole batch, so results are
//!   bit-identical to one call ([`ops::batch`]). conv2d_backward runs each piece's backward
//!   pass (grad_input bit-identical) and sums the pieces' grad_weight and grad_bias in a fixed
//!   order (equal to one call within rounding: the batch sum is regrouped at the pieces).
//! - **Beyond one binding per image.** conv2d, conv_transpose2d and the pools run an image
//!   larger than one binding in bands of output rows (conv1d a sequence, laid along the rows),
//!   conv3d a volume in slabs of output depth ([`ops::bands`]: each band's
//!   input rows with their halo copied into a scratch tensor, its output copied back; the
//!   image edge becomes the band's padding), bit-identical too; separable_conv2d runs such an
//!   image as its two passes, each banded; conv2d_backward sums its weight and bias gradients
//!   over the bands. deform_conv2d, whose samples may reach any input row, runs such an
//!   image with `Im2colGemm` in bands of output rows, the input image bound whole (in chunks
//!   of input channels, one unfold launch each, where it exceeds a binding), bit-identical
//!   to one `Im2colGemm` call.
//! - **Weights beyond one binding.** conv2d, conv3d, conv_transpose2d, deform_conv2d and
//!   conv2d_backward run a weight larger than one binding in chunks of output channels (whole
//!   groups, or part of one; [`ops::channels`]), one image at a time (conv2d_backward: the
//!   whole batch's channels of a chunk), bit-identical to one call; separable_conv2d runs
//!   its two passes, each chunked. A weight and one image may not both exceed a binding.
//! - **Empty batches.** N = 0 gives an output with N = 0 and records no GPU work
//!   (conv2d_backward's grad_weight and grad_bias are zero-filled), as in PyTorch.
//! - **Unbatched inputs.** Every op takes PyTorch's unbatched form (`[C, L]`, `[C, H, W]`,
//!   `[C, D, H, W]`, with offset and mask `[2·G·kh·kw, Ho, Wo]`, `[G·kh·kw, Ho, Wo]`) as a
//!   batch of one and returns its output without the batch axis; the `_into` forms take an
//!   unbatched output. [`params::as_batched`] gives the shape validation takes.
//!
//! ## Threads
//! [`GpuContext`] is `Send + Sync`. Pipelines are compiled once per (shader, override
//! constants) and cached; error scopes are thread-local in wgpu, so concurrent calls do not
//! see each other's errors. The context serialises its own submits and polls (wgpu-core
//! 30.0.1 can panic when one thread polls while another submits); an app that also submits
//! on the same queue from other threads should do the same.
//!
//! ## Numerics
//! Kernels accumulate in f32; the reference in f64. Zero padding is a value (0·w is added),
//! so NaN and ±Inf propagate exactly as in PyTorch. Results are bit-identical run to run (no
//! atomics; every output element is written by one invocation). See [`verify`] for the
//! tolerance used by tests and `--verify`.

#![warn(missing_docs)]
pub mod autotune;
#[cfg(feature = "cli")]
pub mod bench;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod context;
pub mod error;
pub mod explain;
pub mod kernels;
#[cfg(feature = "npy")]
pub mod npy;
pub mod ops;
pub mod params;
pub mod pipeline;
#[cfg(feature = "conformance")]
pub mod probes;
pub mod reference;
#[cfg(feature = "cli")]
pub mod replay;
pub mod shaders;
pub mod tensor;
pub mod timing;
pub mod verify;
#[cfg(target_arch = "wasm32")]
mod web;

pub use context::{BLoads, ContextOptions, EngineConfig, GemmKernel, GpuContext, TileShape, UniformA, LOOP_BUDGET};
pub use error::{Error, Result};
pub use kernels::Step;
pub use ops::conv1d::{conv1d, conv1d_into};
pub use ops::conv1d_backward::{conv1d_backward, conv1d_backward_into};
pub use ops::conv2d::{
    conv2d, conv2d_into, conv2d_with_info, plan_conv2d, plan_conv2d_with_layouts, Conv2dInfo, Conv2dLayouts, Conv2dPlan,
};
pub use ops::conv2d_backward::{
    conv2d_backward, conv2d_backward_into, plan_conv2d_backward, Conv2dBackwardPlan, Conv2dGrads, Grads,
};
pub use ops::conv3d::{conv3d, conv3d_into, plan_conv3d, Conv3dPlan};
pub use ops::conv3d_backward::{conv3d_backward, conv3d_backward_into, plan_conv3d_backward, Conv3dBackwardPlan};
pub use ops::conv_transpose1d::{conv_transpose1d, conv_transpose1d_into};
pub use ops::conv_transpose1d_backward::{conv_transpose1d_backward, conv_transpose1d_backward_into};
pub use ops::conv_transpose2d::{
    conv_transpose2d, conv_transpose2d_into, conv_transpose2d_with_info, plan_conv_transpose2d,
    plan_conv_transpose2d_with_layouts, ConvTranspose2dInfo, ConvTranspose2dPlan,
};
pub use ops::conv_transpose2d_backward::{conv_transpose2d_backward, conv_transpose2d_backward_into};
pub use ops::conv_transpose3d::{conv_transpose3d, conv_transpose3d_into, plan_conv_transpose3d, ConvTranspose3dPlan};
pub use ops::conv_transpose3d_backward::{conv_transpose3d_backward, conv_transpose3d_backward_into};
pub use ops::deform_conv2d::{
    deform_conv2d, deform_conv2d_into, plan_deform_conv2d, DeformConv2dInfo, DeformConv2dPlan,
};
pub use ops::deform_conv2d_backward::{
    deform_conv2d_backward, deform_conv2d_backward_into, plan_deform_conv2d_backward, DeformConv2dBackwardPlan,
    DeformConv2dGrads, DeformGrads,
};
pub use ops::matmul::{matmul, matmul_into, plan_matmul};
pub use ops::pool2d::{
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d, max_pool2d_with_indices, plan_pool2d, pool2d,
    pool2d_into, Pool2dPlan, PoolIndices, PoolMode,
};
pub use ops::pool2d_backward::{
    avg_pool2d_backward, max_pool2d_backward, plan_pool2d_backward, pool2d_backward, pool2d_backward_into,
    Pool2dBackwardPlan,
};
pub use ops::separable_conv2d::{
    plan_separable_conv2d, separable_conv2d, separable_conv2d_into, SeparableParams, SeparablePlan,
};
pub use params::{
    Activation, Algorithm, Conv1dParams, Conv2dGeometry, Conv2dParams, Conv3dGeometry, Conv3dParams,
    ConvTranspose1dParams, ConvTranspose2dGeometry, ConvTranspose2dParams, ConvTranspose3dGeometry,
    ConvTranspose3dParams, DeformConv2dParams, DeformGeometry, Padding, Padding1d, Padding3d, PaddingMode, Pads,
    Pool2dParams,
};
pub use tensor::{DType, HostTensor, Layout, Tensor};
