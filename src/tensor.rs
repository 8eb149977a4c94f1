//! Tensors: [`Tensor`] (a shape and a `wgpu::Buffer` of f32 or f16, C order or
//! channels-last, [`Layout`]) and
//! [`HostTensor`] (f32 on the CPU, with `.npy` I/O).

use crate::context::GpuContext;
use crate::error::{Error, Result};

fn numel_of(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::TooLarge(format!("shape {shape:?} overflows usize")))
}

/// Usage of buffers the engine allocates for tensors.
pub const TENSOR_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// How a [`Tensor`] stores its elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DType {
    /// IEEE binary32.
    #[default]
    F32,
    /// IEEE binary16 storage (kernels accumulate in f32). Needs the device feature
    /// `SHADER_F16`; conv2d and conv1d (`implicit_gemm`, `gemm_1x1`, `depthwise`),
    /// conv_transpose2d and deform_conv2d (`implicit_gemm`), conv2d_backward, conv1d_backward,
    /// conv_transpose2d_backward and the poolings read and write it (see the crate docs); every other op returns an
    /// error for it.
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }
    /// `f32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
        }
    }
}

/// How a [`Tensor`]'s elements lie in its buffer (PyTorch's `memory_format`). The shape is
/// always the logical one (`[N, C, H, W]` for an image batch); the layout says where each
/// element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// Row-major in the shape's order (NCHW for images; `torch.contiguous_format`).
    #[default]
    Contiguous,
    /// A rank-4 tensor of shape `[N, C, H, W]` stored as `[N, H, W, C]` row-major: element
    /// `(n, c, y, x)` at `((n·H + y)·W + x)·C + c` (`torch.channels_last`; an app's HWC
    /// images). conv2d and conv_transpose2d read and write it natively on every algorithm;
    /// every other op refuses it ([`crate::Error::Unsupported`]).
    ChannelsLast,
}

impl Layout {
    /// `contiguous` (NCHW) or `channels_last` (NHWC).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Contiguous => "contiguous",
            Layout::ChannelsLast => "channels_last",
        }
    }
}

/// A dense tensor in a wgpu buffer, row-major (NCHW for images) unless its [`Layout`] is
/// channels-last, f32 unless made with [`DType::F16`].
///
/// The buffer may be larger than the shape needs; elements start at byte 0. An f16 tensor's
/// buffer is rounded up to whole 4-byte words (storage bindings are sized in words).
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Vec<usize>,
    buffer: wgpu::Buffer,
    dtype: DType,
    /// Byte offset of the first element in `buffer` (0 but for the batch pieces an op binds
    /// when a tensor exceeds one storage binding; always a multiple of the device's
    /// `min_storage_buffer_offset_alignment` there).
    offset: u64,
    /// Id of the [`GpuContext`] the tensor was made on.
    ctx: u64,
    layout: Layout,
}

/// The finite values of `data` that f16 rounds to ±∞: how many, and the largest magnitude.
pub fn f16_overflow(data: &[f32]) -> Option<(usize, f32)> {
    let over = data.iter().filter(|v| v.is_finite() && half::f16::from_f32(**v).is_infinite());
    over.fold(None, |acc, v| match acc {
        None => Some((1, v.abs())),
        Some((n, m)) => Some((n + 1, m.max(v.abs()))),
    })
}

/// `Error::F16Range` for `data` (named `what`) when f16 cannot hold one of its finite values.
fn check_f16_range(data: &[f32], what: &str) -> Result<()> {
    match f16_overflow(data) {
        Some((count, largest)) => Err(Error::F16Range { what: what.to_string(), count, largest }),
        None => Ok(()),
    }
}

/// `Error::TooLarge` naming the tensor and both limits unless `bytes` fit one buffer.
fn check_buffer_size(ctx: &GpuContext, shape: &[usize], bytes: u64) -> Result<()> {
    let max = ctx.limits().max_buffer_size;
    if bytes > max {
        return Err(Error::TooLarge(format!(
            "tensor {shape:?} is {bytes} bytes; one buffer holds at most {max} on this device (max_buffer_size). \
             Ops split their work past one storage binding ({} bytes), but each tensor must fit one buffer",
            ctx.max_binding()
        )));
    }
    Ok(())
}

/// Errors unless `ctx`'s device can store f16.
fn check_f16(ctx: &GpuContext) -> Result<()> {
    if ctx.device.features().contains(wgpu::Features::SHADER_F16) {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "f16 storage needs the SHADER_F16 feature, which this device ('{}') was not created with",
            ctx.adapter_info().name
        )))
    }
}

impl Tensor {
    /// Uploads `data` (length = product of `shape`).
    pub fn from_slice(ctx: &GpuContext, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        let n = numel_of(shape)?;
        if n != data.len() {
            return Err(Error::DataLength { shape: shape.to_vec(), expected: n, got: data.len() });
        }
        check_buffer_size(ctx, shape, (n as u64) * 4)?;
        let buffer = ctx.create_buffer_with_data("wgconv.tensor", bytemuck::cast_slice(data), TENSOR_USAGE)?;
        Ok(Tensor {
            shape: shape.to_vec(),
            buffer,
            dtype: DType::F32,
            offset: 0,
            ctx: ctx.id,
            layout: Layout::Contiguous,
        })
    }

    /// Uploads `data` stored as `dtype` (f16: rounded to nearest even).
    ///
    /// Errors: [`Error::F16Range`] when a finite value would become ±∞ as f16 (|x| ≥ 65520),
    /// naming how many and the largest magnitude (NaN and ±∞ themselves are kept);
    /// [`Tensor::from_slice_as_lossy`] stores them as ±∞ instead.
    pub fn from_slice_as(ctx: &GpuContext, shape: &[usize], data: &[f32], dtype: DType) -> Result<Tensor> {
        if dtype == DType::F16 {
            check_f16_range(data, "the data")?;
        }
        Self::from_slice_as_lossy(ctx, shape, data, dtype)
    }

    /// [`Tensor::from_slice_as`] with IEEE rounding and no range check: f16 values beyond
    /// ±65504 become ±∞.
    pub fn from_slice_as_lossy(ctx: &GpuContext, shape: &[usize], data: &[f32], dtype: DType) -> Result<Tensor> {
        if dtype == DType::F32 {
            return Self::from_slice(ctx, shape, data);
        }
        check_f16(ctx)?;
        let n = numel_of(shape)?;
        if n != data.len() {
            return Err(Error::DataLength { shape: shape.to_vec(), expected: n, got: data.len() });
        }
        let mut halves: Vec<u16> = data.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
        halves.resize(n.next_multiple_of(2), 0);
        check_buffer_size(ctx, shape, halves.len() as u64 * 2)?;
        let buffer = ctx.create_buffer_with_data("wgconv.tensor", bytemuck::cast_slice(&halves), TENSOR_USAGE)?;
        Ok(Tensor { shape: shape.to_vec(), buffer, dtype, offset: 0, ctx: ctx.id, layout: Layout::Contiguous })
    }

    /// Uploads a host tensor.
    pub fn from_host(ctx: &GpuContext, host: &HostTensor) -> Result<Tensor> {
        Self::from_slice(ctx, &host.shape, &host.data)
    }

    /// An uninitialised f32 tensor (contents unspecified until written).
    pub fn empty(ctx: &GpuContext, shape: &[usize]) -> Result<Tensor> {
        Self::empty_as(ctx, shape, DType::F32)
    }

    /// An uninitialised tensor of `dtype`.
    pub fn empty_as(ctx: &GpuContext, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if dtype == DType::F16 {
            check_f16(ctx)?;
        }
        let bytes = (numel_of(shape)? as u64 * dtype.size()).next_multiple_of(4);
        check_buffer_size(ctx, shape, bytes)?;
        let buffer = ctx.create_buffer("wgconv.tensor", bytes, TENSOR_USAGE)?;
        Ok(Tensor { shape: shape.to_vec(), buffer, dtype, offset: 0, ctx: ctx.id, layout: Layout::Contiguous })
    }

    /// Wraps a caller's buffer of f32 without copying. It must be on the context's device,
    /// have `STORAGE` usage (plus `COPY_SRC` to be read back with [`Tensor::to_vec`]) and hold
    /// at least 4·numel bytes.
    pub fn from_buffer(ctx: &GpuContext, buffer: wgpu::Buffer, shape: &[usize]) -> Result<Tensor> {
        Self::from_buffer_as(ctx, buffer, shape, DType::F32)
    }

    /// [`Tensor::from_buffer`] for a buffer of `dtype` elements (f16: at least 2·numel bytes
    /// rounded up to a multiple of 4).
    pub fn from_buffer_as(ctx: &GpuContext, buffer: wgpu::Buffer, shape: &[usize], dtype: DType) -> Result<Tensor> {
        if dtype == DType::F16 {
            check_f16(ctx)?;
        }
        let bytes = (numel_of(shape)? as u64 * dtype.size()).next_multiple_of(4);
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::Buffer { what: "tensor", reason: format!("usage {:?} lacks STORAGE", buffer.usage()) });
        }
        if buffer.size() < bytes {
            return Err(Error::Buffer {
                what: "tensor",
                reason: format!("{} bytes, shape {shape:?} needs {bytes}", buffer.size()),
            });
        }
        Ok(Tensor { shape: shape.to_vec(), buffer, dtype, offset: 0, ctx: ctx.id, layout: Layout::Contiguous })
    }

    /// The logical shape (`[N, C, H, W]` whatever the layout).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Elements: the product of the shape.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// How the elements are stored.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The order of the elements in the buffer.
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// The same buffer read with another layout (no copy: the elements are not moved). A
    /// caller whose buffer holds `[N, H, W, C]` images wraps it with the logical shape
    /// `[N, C, H, W]` ([`Tensor::from_buffer`]) and declares [`Layout::ChannelsLast`];
    /// [`Tensor::to_vec`] reads the elements in buffer order.
    ///
    /// Errors: [`Error::Buffer`] for a channels-last tensor not of rank 4.
    pub fn with_layout(self, layout: Layout) -> Result<Tensor> {
        if layout == Layout::ChannelsLast {
            rank4(&self.shape)?;
        }
        Ok(Tensor { layout, ..self })
    }
    /// Errors ([`Error::Unsupported`]) unless the tensor is contiguous: for the ops that
    /// read and write NCHW only.
    pub(crate) fn require_contiguous(&self, op: &str, what: &str) -> Result<()> {
        match self.layout {
            Layout::Contiguous => Ok(()),
            l => Err(Error::Unsupported(format!(
                "{op} takes contiguous (NCHW) tensors, but {what} is {}: only conv2d and conv_transpose2d read and write channels-last",
                l.name()
            ))),
        }
    }
    /// Bytes the shape covers, rounded up to whole 4-byte words (≤ the buffer's size): what
    /// the kernels bind.
    pub fn byte_len(&self) -> u64 {
        (self.numel() as u64 * self.dtype.size()).next_multiple_of(4)
    }
    /// Errors unless the tensor holds f32 (for the ops that have no f16 kernels).
    pub(crate) fn require_f32(&self, op: &str, what: &str) -> Result<()> {
        match self.dtype {
            DType::F32 => Ok(()),
            d => Err(Error::Unsupported(format!(
                "{op} takes f32 tensors, but {what} is {}: f16 storage is for the conv and pooling ops",
                d.name()
            ))),
        }
    }
    /// The storage buffer, for binding the tensor in an app's own passes: the elements start
    /// at [`Tensor::offset`] and lie in [`Tensor::layout`]'s order.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// Byte offset of the first element in [`Tensor::buffer`] (0 for every tensor made
    /// through the public constructors).
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The same tensor `bytes` further into its buffer (which must hold it there).
    pub(crate) fn with_offset(self, bytes: u64) -> Tensor {
        Tensor { offset: self.offset + bytes, ..self }
    }
    /// Images `start .. start + len` of the first axis: the same buffer from a later offset
    /// (no copy). The caller binds it only where the offset meets the device's alignment.
    pub(crate) fn narrow_batch(&self, start: usize, len: usize) -> Result<Tensor> {
        let n = *self.shape.first().ok_or_else(|| Error::Internal("narrow_batch of a scalar".into()))?;
        if start + len > n {
            return Err(Error::Internal(format!("images {start}..{} of {n}", start + len)));
        }
        let per_image = (self.numel() / n.max(1)) as u64 * self.dtype.size();
        let mut shape = self.shape.clone();
        shape[0] = len;
        Ok(Tensor { shape, offset: self.offset + start as u64 * per_image, ..self.clone() })
    }
    /// Same data, another shape of the same element count (no copy).
    ///
    /// Errors: [`Error::DataLength`] for another element count; [`Error::Unsupported`] for a
    /// channels-last tensor (its elements are not in the shape's order).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        self.require_contiguous("reshape", "the tensor")?;
        let n = numel_of(shape)?;
        if n != self.numel() {
            return Err(Error::DataLength { shape: shape.to_vec(), expected: n, got: self.numel() });
        }
        Ok(Tensor { shape: shape.to_vec(), ..self.clone() })
    }

    /// Errors unless this tensor was made on `ctx`. (A buffer of the same device can be
    /// wrapped again for another context with [`Tensor::from_buffer`].)
    pub(crate) fn check_device(&self, ctx: &GpuContext, what: &'static str) -> Result<()> {
        if self.ctx != ctx.id {
            return Err(Error::DeviceMismatch(what));
        }
        Ok(())
    }

    /// Records a copy of this tensor into a new mappable buffer.
    fn stage(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) -> Result<wgpu::Buffer> {
        self.check_device(ctx, "tensor")?;
        let staging = ctx.create_buffer(
            "wgconv.readback",
            self.byte_len(),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        if self.byte_len() > 0 {
            encoder.copy_buffer_to_buffer(&self.buffer, self.offset, &staging, 0, self.byte_len());
        }
        Ok(staging)
    }

    /// Downloads the tensor as f32 (f16 values widened exactly; blocks until every earlier
    /// submission that writes it is done; bounded by the context's `wait_timeout`). Native
    /// only in effect: on the web nothing may block, so pages await [`Tensor::to_vec_async`].
    pub fn to_vec(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        crate::context::no_blocking_on_the_web("Tensor::to_vec", "Tensor::to_vec_async")?;
        pollster::block_on(self.to_vec_async(ctx))
    }

    /// [`Tensor::to_vec`] as a future: the copy is recorded and submitted at once, and the
    /// future resolves when it is mapped. On the web the browser's event loop gets there
    /// (nothing blocks), and a wgpu error caught since the last [`GpuContext::wait_async`]
    /// rejects it (see [`GpuContext::scoped`]); natively the call first waits for the queue
    /// (the context's bounded poll loop: wgpu runs map callbacks only when polled), so
    /// awaiting it blocks the thread.
    pub async fn to_vec_async(&self, ctx: &GpuContext) -> Result<Vec<f32>> {
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let staging = self.stage(ctx, &mut encoder)?;
        ctx.submit(encoder)?;
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        let slice = staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        // Bounded; and on the web, where scopes report late, an error caught since the last
        // wait_async rejects the readback (GpuContext::scoped).
        ctx.settle().await?;
        ctx.peek_deferred()?;
        match rx.receive().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Map(e.to_string())),
            None => return Err(Error::Map("the map callback was dropped".into())),
        }
        let view = slice.get_mapped_range().map_err(|e| Error::Map(e.to_string()))?;
        let out = match self.dtype {
            DType::F32 => bytemuck::cast_slice::<u8, f32>(&view[..self.byte_len() as usize]).to_vec(),
            DType::F16 => bytemuck::cast_slice::<u8, u16>(&view[..self.byte_len() as usize])[..self.numel()]
                .iter()
                .map(|&h| half::f16::from_bits(h).to_f32())
                .collect(),
        };
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// An f32 tensor of `shape` holding a JavaScript `Float32Array`, written by the queue's
    /// `writeBuffer` straight from the array (web only): the values never pass through the
    /// wasm heap, which grows by each copy and never shrinks. Errors: the array's length is
    /// not the shape's element count ([`Error::DataLength`]); those of [`Tensor::empty`].
    #[cfg(target_arch = "wasm32")]
    pub fn from_float32_array(ctx: &GpuContext, shape: &[usize], data: &js_sys::Float32Array) -> Result<Tensor> {
        let numel = numel_of(shape)?;
        if data.length() as usize != numel {
            return Err(Error::DataLength { shape: shape.to_vec(), expected: numel, got: data.length() as usize });
        }
        let t = Tensor::empty(ctx, shape)?;
        if numel > 0 {
            let (queue, buffer) = web_handles(ctx, &t)?;
            queue
                .write_buffer_with_f64_and_buffer_source(buffer, t.offset as f64, data)
                .map_err(|e| Error::Validation(format!("writeBuffer: {e:?}")))?;
        }
        Ok(t)
    }

    /// [`Tensor::to_vec_async`] into a new JavaScript `Float32Array` (web only, f32 tensors):
    /// the staging buffer is mapped and copied out by the browser, never through the wasm
    /// heap. Bounded and error-checked as [`Tensor::to_vec_async`].
    #[cfg(target_arch = "wasm32")]
    pub async fn to_float32_array_async(&self, ctx: &GpuContext) -> Result<js_sys::Float32Array> {
        if self.dtype != DType::F32 {
            return Err(Error::Unsupported(format!(
                "to_float32_array_async reads f32 tensors, this one is {}: use to_vec_async",
                self.dtype.name()
            )));
        }
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        let staging = self.stage(ctx, &mut encoder)?;
        ctx.submit(encoder)?;
        ctx.settle().await?;
        ctx.peek_deferred()?;
        let raw = staging.as_webgpu().ok_or_else(|| Error::Unsupported("not a WebGPU buffer".into()))?;
        const GPU_MAP_MODE_READ: u32 = 0x1; // GPUMapMode.READ
        let mapped = raw.map_async(GPU_MAP_MODE_READ);
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(wasm_bindgen::JsValue::from(mapped)))
            .await
            .map_err(|e| Error::Map(format!("{e:?}")))?;
        let range = raw.get_mapped_range().map_err(|e| Error::Map(format!("{e:?}")))?;
        let bytes = (self.numel() * 4) as u32;
        let out = js_sys::Float32Array::new(&range.slice_with_end(0, bytes));
        raw.unmap();
        Ok(out)
    }

    /// Downloads into a [`HostTensor`], in the shape's (NCHW) order whatever the layout (a
    /// channels-last tensor's values are put in NCHW order; [`Tensor::to_vec`] gives them in
    /// buffer order).
    pub fn to_host(&self, ctx: &GpuContext) -> Result<HostTensor> {
        self.host_of(self.to_vec(ctx)?)
    }

    /// [`Tensor::to_host`] as a future (see [`Tensor::to_vec_async`]).
    pub async fn to_host_async(&self, ctx: &GpuContext) -> Result<HostTensor> {
        self.host_of(self.to_vec_async(ctx).await?)
    }

    /// The host tensor of this tensor's values `data` (in buffer order).
    fn host_of(&self, data: Vec<f32>) -> Result<HostTensor> {
        match self.layout {
            Layout::Contiguous => Ok(HostTensor { shape: self.shape.clone(), data }),
            Layout::ChannelsLast => HostTensor::from_channels_last(&self.shape, &data),
        }
    }
}

/// The raw WebGPU queue and `t`'s buffer (web only).
#[cfg(target_arch = "wasm32")]
fn web_handles<'a>(
    ctx: &'a GpuContext,
    t: &'a Tensor,
) -> Result<(&'a wgpu::webgpu::GpuQueue, &'a wgpu::webgpu::GpuBuffer)> {
    let queue = ctx.queue.as_webgpu().ok_or_else(|| Error::Unsupported("not a WebGPU queue".into()))?;
    let buffer = t.buffer.as_webgpu().ok_or_else(|| Error::Unsupported("not a WebGPU buffer".into()))?;
    Ok((queue, buffer))
}

/// A dense f32 tensor on the CPU, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Row-major sizes.
    pub shape: Vec<usize>,
    /// The elements, row-major (C order).
    pub data: Vec<f32>,
}

/// The four sides of a rank-4 shape, or `Error::Buffer`.
fn rank4(shape: &[usize]) -> Result<[usize; 4]> {
    shape.try_into().map_err(|_| Error::Buffer {
        what: "tensor",
        reason: format!("shape {shape:?}: channels-last is a layout of rank-4 tensors [N, C, H, W]"),
    })
}

impl HostTensor {
    /// A tensor of `shape` holding `data`; [`Error::DataLength`]
    /// when their element counts differ.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let n = numel_of(shape)?;
        if n != data.len() {
            return Err(Error::DataLength { shape: shape.to_vec(), expected: n, got: data.len() });
        }
        Ok(HostTensor { shape: shape.to_vec(), data })
    }

    /// PyTorch's unbatched form as a batch of one: a tensor of rank `rank − 1` gets a leading
    /// axis of 1 (same data); any other is returned as is.
    pub fn batched(&self, rank: usize) -> std::borrow::Cow<'_, HostTensor> {
        if self.shape.len() + 1 == rank {
            std::borrow::Cow::Owned(HostTensor {
                shape: crate::params::as_batched(&self.shape, rank),
                data: self.data.clone(),
            })
        } else {
            std::borrow::Cow::Borrowed(self)
        }
    }

    /// The values of this `[N, C, H, W]` tensor in channels-last order (`[N, H, W, C]`
    /// row-major): what a [`Layout::ChannelsLast`] tensor's buffer holds.
    ///
    /// Errors: [`Error::Buffer`] unless the tensor has rank 4.
    pub fn to_channels_last(&self) -> Result<Vec<f32>> {
        let [_, c, h, w] = rank4(&self.shape)?;
        let mut out = vec![0.0; self.data.len()];
        for (i, v) in self.data.iter().enumerate() {
            let (x, y, ch, img) = (i % w, i / w % h, i / (w * h) % c, i / (w * h * c));
            out[((img * h + y) * w + x) * c + ch] = *v;
        }
        Ok(out)
    }

    /// The `[N, C, H, W]` tensor whose channels-last values (`[N, H, W, C]` row-major, as a
    /// [`Layout::ChannelsLast`] tensor's buffer holds them) are `data`.
    ///
    /// Errors: [`Error::Buffer`] unless `shape` has rank 4; [`Error::DataLength`].
    pub fn from_channels_last(shape: &[usize], data: &[f32]) -> Result<Self> {
        let [_, c, h, w] = rank4(shape)?;
        let mut t = HostTensor::new(shape, vec![0.0; data.len()])?;
        for (i, v) in data.iter().enumerate() {
            let (ch, x, y, img) = (i % c, i / c % w, i / (c * w) % h, i / (c * w * h));
            t.data[((img * c + ch) * h + y) * w + x] = *v;
        }
        Ok(t)
    }

    /// [`HostTensor::rounded_to`], refusing values that f16 cannot hold: errors with
    /// [`Error::F16Range`] (naming `what`) when a finite value would become ±∞.
    pub fn checked_to(self, dtype: DType, what: &str) -> Result<Self> {
        if dtype == DType::F16 {
            check_f16_range(&self.data, what)?;
        }
        Ok(self.rounded_to(dtype))
    }

    /// The values a tensor of `dtype` holds after upload: f16 rounds each to nearest even
    /// (what [`Tensor::from_slice_as_lossy`] stores: values beyond ±65504 become ±∞), f32
    /// keeps them. References for f16 runs are computed from these.
    pub fn rounded_to(self, dtype: DType) -> Self {
        match dtype {
            DType::F32 => self,
            DType::F16 => {
                HostTensor { data: self.data.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(), ..self }
            }
        }
    }

    /// Seeded uniform values in [-1, 1), never all zero (splitmix64; the same on every platform).
    pub fn random(shape: &[usize], seed: u64) -> Self {
        let n: usize = shape.iter().product();
        let mut rng = crate::verify::SplitMix64::new(seed);
        HostTensor { shape: shape.to_vec(), data: (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect() }
    }

    /// Reads a `.npy` file or an array of a `.npz` archive (`path.npz:name`; see
    /// [`crate::npy`]); the second value names the dtype converted from, if any.
    #[cfg(feature = "npy")]
    pub fn read_npy(path: impl AsRef<std::path::Path>) -> Result<(Self, Option<&'static str>)> {
        let (shape, data, info) = crate::npy::read(path.as_ref())?;
        Ok((HostTensor { shape, data }, info.converted_from))
    }

    /// Writes a `.npy` file (little-endian f32, C order), or a `.npz` archive of this one
    /// array when the path ends in `.npz` (`path.npz:name` names it).
    #[cfg(feature = "npy")]
    pub fn write_npy(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::npy::write(path.as_ref(), &self.shape, &self.data)
    }
}
