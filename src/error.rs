//! The one error type of the crate.
//!
//! Everything that depends on caller input or on the device comes back as an [`Error`];
//! the engine never panics on bad input and never lets wgpu's default uncaptured-error
//! handler (which panics) see an error it caused.

use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in wgconv.
///
/// Variants are grouped: adapter/device set-up, argument validation (no GPU work is
/// submitted when one of these is returned), limits, and errors reported by wgpu or the
/// device while work runs.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched the request (backend, name), or none exists.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The adapter refused to open a device.
    #[error("could not open a device on adapter '{adapter}': {reason}")]
    RequestDevice {
        /// Name of the adapter, as wgpu reports it.
        adapter: String,
        /// wgpu's message for the refusal.
        reason: String,
    },

    /// A tensor has the wrong number of dimensions.
    #[error("{what} must have rank {expected} ({layout}), got shape {got:?}")]
    Rank {
        /// Which argument (`"input"`, `"weight"`, ...).
        what: &'static str,
        /// The rank the argument must have.
        expected: usize,
        /// The axes the rank stands for, e.g. `"N, C, H, W"`.
        layout: &'static str,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// A tensor has a dimension of size zero.
    #[error("{what} has a zero-sized dimension: shape {shape:?}")]
    EmptyTensor {
        /// Which argument.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// Input channels and weight channels disagree.
    #[error("channel mismatch: {0}")]
    ChannelMismatch(String),
    /// `groups` is zero or does not divide the channel counts.
    #[error("invalid groups: {0}")]
    Groups(String),
    /// A scalar parameter is out of range (zero stride or dilation, `Same` padding with stride > 1, ...).
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam {
        /// The parameter's name (`"stride"`, `"dilation"`, ...).
        name: &'static str,
        /// Why its value is rejected.
        reason: String,
    },
    /// The parameters give an output with zero or negative size.
    #[error("output would be empty: {0}")]
    EmptyOutput(String),
    /// A tensor's shape disagrees with the one the other arguments imply.
    #[error("{what} must have shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which argument (`"offset"`, `"mask"`, ...).
        what: &'static str,
        /// The shape the other arguments imply.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// The bias is not a vector of length Cout.
    #[error("bias must have shape [{expected}], got {got:?}")]
    BiasShape {
        /// Cout, the length the bias must have.
        expected: usize,
        /// The bias shape that was passed.
        got: Vec<usize>,
    },
    /// Host data does not have as many elements as the shape says.
    #[error("data has {got} elements but shape {shape:?} needs {expected}")]
    DataLength {
        /// The requested shape.
        shape: Vec<usize>,
        /// Its element count (product of `shape`).
        expected: usize,
        /// The number of elements supplied.
        got: usize,
    },
    /// A tensor was made on another context (possibly another device).
    #[error("{0} was made on another GpuContext (wrap its buffer with Tensor::from_buffer to use it here)")]
    DeviceMismatch(&'static str),
    /// A caller-provided buffer cannot back the tensor (too small, missing usage flags).
    #[error("buffer for {what}: {reason}")]
    Buffer {
        /// Which tensor the buffer was meant to back (`"output"`, ...).
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The work does not fit the device's limits even after splitting it.
    #[error("too large for this device: {0}")]
    TooLarge(String),
    /// The device lacks something the request needs.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// Values that storing as f16 would turn from finite into ±∞ (|x| ≥ 65520 rounds past
    /// f16's largest finite value, 65504).
    #[error(
        "{count} value(s) of {what} exceed f16's range (±65504; largest magnitude {largest:e}): stored as f16 they would become ±inf"
    )]
    F16Range {
        /// Which data (`"the data"`, or the tensor's name).
        what: String,
        /// How many finite values would overflow.
        count: usize,
        /// The largest magnitude among them.
        largest: f32,
    },
    /// Tensors of one call with different element types (f32 and f16).
    #[error("dtype mismatch: {0}")]
    DTypeMismatch(String),

    /// wgpu reported a validation error (caught by an error scope).
    #[error("wgpu validation error: {0}")]
    Validation(String),
    /// wgpu reported an out-of-memory error.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// wgpu reported an internal error (e.g. a backend shader compiler failure).
    #[error("wgpu internal error: {0}")]
    Internal(String),
    /// The device was lost or destroyed; the context cannot be used again.
    #[error("device lost ({0}); create a new GpuContext")]
    DeviceLost(String),
    /// The GPU did not finish within the context's wait timeout.
    #[error("timed out after {0:?} waiting for the GPU")]
    Timeout(Duration),
    /// Mapping a buffer for readback failed.
    #[error("buffer mapping failed: {0}")]
    Map(String),

    /// A malformed or unsupported `.npy` file.
    #[error("npy: {0}")]
    Npy(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file's path, as displayed.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParam { name, reason: reason.into() }
    }

    /// True for errors that come from the caller's arguments (nothing was submitted).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::Rank { .. }
                | Error::EmptyTensor { .. }
                | Error::ChannelMismatch(_)
                | Error::Groups(_)
                | Error::InvalidParam { .. }
                | Error::EmptyOutput(_)
                | Error::BiasShape { .. }
                | Error::ShapeMismatch { .. }
                | Error::DataLength { .. }
                | Error::DeviceMismatch(_)
                | Error::Buffer { .. }
        )
    }
}
