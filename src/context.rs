//! [`GpuContext`]: the device, the queue, the caches and the engine's configuration.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pipeline::PipelineCache;

pub use crate::kernels::tiling::{BLoads, GemmKernel, TileShape, UniformA};

/// How the engine may use the device. Tests shrink these to force the split paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Upper bound on the bytes of one im2col workspace chunk. The work is split so that no
    /// chunk exceeds this nor the device's `max_storage_buffer_binding_size`.
    pub workspace_budget: u64,
    /// Use at most this many workgroups per dispatch dimension (clamped to the device's
    /// `max_compute_workgroups_per_dimension`); larger grids fold into y and z.
    pub max_workgroups_per_dim: u32,
    /// Treat bindings larger than this as too large (clamped to the device's
    /// `max_storage_buffer_binding_size`).
    pub max_binding_size: u64,
    /// Longest blocking wait for the GPU (readback, `submit_and_wait`).
    pub wait_timeout: Duration,
    /// Register blocking of the tiled GEMM behind every GEMM-based algorithm.
    pub gemm_kernel: GemmKernel,
    /// Whether the flat GEMM reads A (the weights) from uniform windows ([`UniformA`]).
    pub uniform_a: UniformA,
    /// The most loop iterations (all loops of the kernel together, nested ones counted at
    /// every turn) one invocation may run in one dispatch. Longer reductions run as several
    /// dispatches over consecutive ranges, each adding its sum onto the partial sums of the
    /// ones before, in a fixed order (the same bits run to run). Some drivers stop every loop of an invocation after 65535
    /// iterations in total and silently return partial results (Mesa ≤ 22's llvmpipe); the
    /// default, [`LOOP_BUDGET`], stays well inside that on any driver. Tests shrink it to
    /// reach the split paths on small tensors.
    pub loop_budget: u32,
}

/// The cached workspaces: 0 and 1 for the ops (im2col columns, Winograd's transforms, ...),
/// [`SPLIT_K_SLOT`] for a split K's slices, which a GEMM writes and its slot sum reads while
/// its operands may sit in 0 or 1.
const WORKSPACE_SLOTS: usize = 3;
/// The workspace slot of a split K's f32 slices ([`crate::kernels::gemm`]).
pub(crate) const SPLIT_K_SLOT: usize = 2;

/// Slots of the unused read-write binding ([`GpuContext::unused_rw`]).
pub(crate) const UNUSED_RW_SLOTS: u64 = 4;

/// Default [`EngineConfig::loop_budget`]: a quarter of the 65535 loop iterations per
/// invocation after which Mesa 22's llvmpipe breaks out of every loop, which leaves room for
/// the loops a kernel runs outside its reduction (its write-out, its setup).
pub const LOOP_BUDGET: u32 = 16384;

impl EngineConfig {
    fn for_limits(limits: &wgpu::Limits) -> Self {
        EngineConfig {
            workspace_budget: 256 << 20,
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            max_binding_size: limits.max_storage_buffer_binding_size,
            wait_timeout: Duration::from_secs(600),
            gemm_kernel: GemmKernel::default(),
            uniform_a: UniformA::default(),
            loop_budget: LOOP_BUDGET,
        }
    }
}

/// Which adapter [`GpuContext::with_options`] opens.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Backends to consider; `None` reads `WGPU_BACKEND` (e.g. `vulkan`, `gl`), else all.
    pub backends: Option<wgpu::Backends>,
    /// Case-insensitive substring of the adapter name; `None` reads `WGPU_ADAPTER_NAME`.
    pub adapter_name: Option<String>,
    /// The limits to request. `None`: everything the adapter offers. `Some(wgpu::Limits::default())`
    /// opens the device a browser grants without asking (WebGPU's defaults: 128 MiB storage
    /// bindings, 256-byte offset alignment, 8 storage buffers per stage), which is how work
    /// meant to run on every WebGPU implementation is recorded (`conformance --export`).
    pub limits: Option<wgpu::Limits>,
}

/// The engine's handle on one wgpu device.
///
/// `Send + Sync`: one context may be shared by threads; pipelines are compiled once and
/// cached by (shader, entry point, override constants).
pub struct GpuContext {
    /// Unique per context: tensors remember the context that made them. (wgpu's `Device`
    /// equality compares ids, and ids of devices from different `Instance`s coincide.)
    pub(crate) id: u64,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pub(crate) pipelines: PipelineCache,
    config: RwLock<EngineConfig>,
    /// Set by the device-lost callback (own devices only).
    lost: Arc<Mutex<Option<String>>>,
    /// The first error an error scope caught after its call had returned: on the web a
    /// scope's result is a promise, and nothing may wait for it, so it lands here; every
    /// readback rejects with it until [`GpuContext::wait_async`] reports and clears it.
    /// Natively scopes are awaited in place and this stays empty.
    deferred: Arc<Mutex<Option<Error>>>,
    /// Scope verdicts still awaited (web only): a wait resolves only once they are in, so an
    /// error never misses the readback it should reject (WebGPU does not order
    /// `popErrorScope`'s promises before `onSubmittedWorkDone`'s).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pending_scopes: Arc<std::sync::atomic::AtomicUsize>,
    /// The open trace, if any ([`GpuContext::begin_trace`]).
    pub(crate) tracer: Mutex<Option<crate::kernels::trace::Tracer>>,
    /// The open profile, if any ([`crate::timing::profile_op`]).
    pub(crate) profiler: Mutex<Option<crate::timing::Profiler>>,
    /// True when the context created the device (then it installed its own error handlers).
    owns_device: bool,
    /// The workspaces, shared by all calls (queue order serialises their uses): slot 0 the
    /// im2col-style one every workspace algorithm uses, slot 1 a second one where a dispatch
    /// reads one workspace and writes another (Winograd's GEMM: U and V in, M out).
    workspace: Mutex<[Option<wgpu::Buffer>; WORKSPACE_SLOTS]>,
    /// A 16-byte storage buffer bound where a kernel's optional input is absent (never read:
    /// the kernel's `HAS_*` override is false).
    pub(crate) dummy: wgpu::Buffer,
    /// A second one for unused read-write bindings, in [`UNUSED_RW_SLOTS`] slots
    /// ([`GpuContext::unused_rw`]): a buffer bound read-write may not be bound read-only in
    /// the same dispatch, nor (WebGPU) read-write twice over overlapping ranges.
    pub(crate) dummy_rw: wgpu::Buffer,
    /// The `PassRange` block of a reduction that runs in one pass (0 .. u32::MAX, last), made
    /// on first use and bound by every such dispatch.
    pub(crate) single_pass: std::sync::Mutex<Option<wgpu::Buffer>>,
    uncaptured: Arc<AtomicBool>,
    pub(crate) tuner: crate::autotune::Autotuner,
    /// Serialises this context's submits and polls (see [`GpuContext::submit`]).
    queue_lock: Mutex<()>,
    submissions: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

fn backends_from(opts: &ContextOptions) -> wgpu::Backends {
    opts.backends.or_else(wgpu::Backends::from_env).unwrap_or(wgpu::Backends::all())
}

impl GpuContext {
    /// Opens the default adapter headlessly (honours `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`).
    /// Blocks: on the web it is [`Error::Unsupported`] (await [`GpuContext::new_async`]).
    pub fn new() -> Result<Self> {
        no_blocking_on_the_web("GpuContext::new", "GpuContext::new_async")?;
        pollster::block_on(Self::new_async())
    }

    /// Async twin of [`GpuContext::new`].
    pub async fn new_async() -> Result<Self> {
        Self::with_options_async(ContextOptions::default()).await
    }

    /// Opens the adapter chosen by `opts` (blocking; on the web [`Error::Unsupported`]: await
    /// [`GpuContext::with_options_async`]).
    pub fn with_options(opts: ContextOptions) -> Result<Self> {
        no_blocking_on_the_web("GpuContext::with_options", "GpuContext::with_options_async")?;
        pollster::block_on(Self::with_options_async(opts))
    }

    /// Every adapter wgpu can see for these backends (for `wgconv info` and conformance).
    /// Blocks; on the web, where a page sees one adapter through `requestAdapter`, it is empty.
    pub fn enumerate_adapters(backends: Option<wgpu::Backends>) -> Vec<wgpu::AdapterInfo> {
        if cfg!(target_arch = "wasm32") {
            return Vec::new();
        }
        let backends = backends_from(&ContextOptions { backends, ..Default::default() });
        let instance = new_instance(backends);
        pollster::block_on(instance.enumerate_adapters(backends)).iter().map(|a| a.get_info()).collect()
    }

    /// Async twin of [`GpuContext::with_options`].
    pub async fn with_options_async(opts: ContextOptions) -> Result<Self> {
        let backends = backends_from(&opts);
        let instance = new_instance(backends);
        let name = opts.adapter_name.clone().or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok());
        let adapter = match name {
            Some(name) => {
                let want = name.to_lowercase();
                let all = instance.enumerate_adapters(backends).await;
                let names: Vec<String> =
                    all.iter().map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend)).collect();
                all.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&want)).ok_or_else(|| {
                    Error::NoAdapter(format!("no adapter name contains '{name}'; found: [{}]", names.join(", ")))
                })?
            }
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env()
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::NoAdapter(format!("{e} (backends {backends:?})")))?,
        };
        let info = adapter.get_info();
        // The adapter's own limits unless told otherwise: wgpu's defaults cap storage
        // bindings at 128 MiB, the workgroup at 256 invocations and workgroup storage at 16 KiB.
        let required_limits = opts.limits.clone().unwrap_or_else(|| adapter.limits());
        let wanted = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgconv"),
                required_features: adapter.features() & wanted,
                required_limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice { adapter: info.name.clone(), reason: e.to_string() })?;
        let ctx = Self::build(device, queue, info, true);
        // wgpu's default handler panics; errors the engine causes are caught by scopes, and
        // anything else is recorded here instead of taking the process down.
        let flag = ctx.uncaptured.clone();
        ctx.device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            flag.store(true, Ordering::SeqCst);
            eprintln!("wgconv: uncaptured wgpu error: {e}");
        }));
        let lost = ctx.lost.clone();
        ctx.device.set_device_lost_callback(move |reason, msg| {
            *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{reason:?}: {msg}"));
        });
        Ok(ctx)
    }

    /// Wraps a device the caller already has. Tensors may then be built on the caller's
    /// buffers ([`crate::Tensor::from_buffer`]) and work recorded into the caller's encoders.
    /// The caller's uncaptured-error and device-lost handlers are left as they are.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let info = device.adapter_info();
        Self::build(device, queue, info, false)
    }

    fn build(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, owns_device: bool) -> Self {
        let limits = device.limits();
        let dummy_of = |label, size| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let rw_size = UNUSED_RW_SLOTS * limits.min_storage_buffer_offset_alignment as u64;
        let (dummy, dummy_rw) = (dummy_of("wgconv.dummy", 16), dummy_of("wgconv.dummy_rw", rw_size));
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        GpuContext {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            pipelines: PipelineCache::default(),
            config: RwLock::new(EngineConfig::for_limits(&limits)),
            lost: Arc::new(Mutex::new(None)),
            deferred: Arc::new(Mutex::new(None)),
            pending_scopes: Default::default(),
            tracer: Mutex::new(None),
            profiler: Mutex::new(None),
            workspace: Mutex::new([None, None, None]),
            uncaptured: Arc::new(AtomicBool::new(false)),
            tuner: Default::default(),
            queue_lock: Mutex::new(()),
            submissions: Default::default(),
            owns_device,
            dummy,
            dummy_rw,
            single_pass: std::sync::Mutex::new(None),
            device,
            queue,
            info,
            limits,
        }
    }

    /// The wgpu device work is recorded and submitted on (the caller's, after `from_device`).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    /// The queue of that device.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    /// The adapter's name, backend, vendor and driver, as wgpu reports them.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// The device's limits (what was granted, not the engine's configured caps).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// True if this context created its device (and so installed its own error handlers).
    pub fn owns_device(&self) -> bool {
        self.owns_device
    }

    /// A copy of the engine configuration in force now (the defaults follow the device's limits).
    pub fn config(&self) -> EngineConfig {
        *self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the configuration; device limits still cap every field.
    pub fn set_config(&self, cfg: EngineConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = cfg;
    }

    /// Workgroups per dispatch dimension the engine uses now.
    pub(crate) fn max_workgroups_per_dim(&self) -> u32 {
        self.config().max_workgroups_per_dim.clamp(1, self.limits.max_compute_workgroups_per_dimension)
    }

    /// Largest storage binding the engine uses now, in bytes.
    pub(crate) fn max_binding(&self) -> u64 {
        self.config().max_binding_size.min(self.limits.max_storage_buffer_binding_size).min(self.limits.max_buffer_size)
    }

    /// Errors if the device was lost or destroyed.
    pub fn check_alive(&self) -> Result<()> {
        match &*self.lost.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(Error::DeviceLost(why.clone())),
            None => Ok(()),
        }
    }

    /// A destroyed or lost device makes every call fail validation, and its lost callback
    /// runs only at the next poll: poll once (unless a submit/wait holds the queue lock) so
    /// that the failure is reported as [`Error::DeviceLost`].
    fn poll_for_loss(&self) {
        if let Ok(_guard) = self.queue_lock.try_lock() {
            let _ = self.device.poll(wgpu::PollType::Poll);
        }
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes, and turns what
    /// they caught into an [`Error`]. Scopes are thread-local in wgpu, so threads sharing the
    /// context do not see each other's errors.
    ///
    /// On the web (wasm32) a scope's result is a promise and nothing may block for it: `f`'s
    /// value is returned at once, and an error the scopes catch rejects every readback after
    /// it ([`crate::Tensor::to_vec_async`]: no output of a failed call reads back as if
    /// valid) until [`GpuContext::wait_async`] returns it, once, and clears it. Calls in
    /// between are not refused for it: they did not cause it.
    pub fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let (v, o, i) = (validation.pop(), oom.pop(), internal.pop());
        #[cfg(not(target_arch = "wasm32"))]
        {
            let caught = scope_error(pollster::block_on(v), pollster::block_on(o), pollster::block_on(i));
            if caught.is_some() {
                self.poll_for_loss();
            }
            // (a loss during `f` is the error to report, whatever the scopes caught)
            self.check_alive()?;
            if let Some(e) = caught {
                return Err(e);
            }
        }
        #[cfg(target_arch = "wasm32")]
        {
            let (slot, pending) = (self.deferred.clone(), self.pending_scopes.clone());
            pending.fetch_add(1, Ordering::SeqCst);
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(e) = scope_error(v.await, o.await, i.await) {
                    slot.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                }
                pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
        if let Some(what) = crate::pipeline::take_aliasing(self.id) {
            return Err(Error::Internal(format!("writable storage bindings alias (WebGPU refuses this): {what}")));
        }
        Ok(value)
    }

    /// Returns, and clears, the error a scope caught after its call returned (web only; see
    /// [`GpuContext::scoped`]). The cached pipelines, layouts, modules and buffers go too:
    /// natively a failed creation is an error and nothing is cached, but on the web the call
    /// went on with an invalid object, which the cache would otherwise hand out until the
    /// page reloads (after a transient out-of-memory, say).
    fn take_deferred(&self) -> Result<()> {
        let taken = self.deferred.lock().unwrap_or_else(|p| p.into_inner()).take();
        match taken {
            Some(e) => {
                self.pipelines.clear();
                self.release_workspace();
                *self.single_pass.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Returns a copy of that error, leaving it in place (readbacks; see
    /// [`GpuContext::scoped`]). Only scope errors are deferred, and their variants carry a
    /// message alone.
    pub(crate) fn peek_deferred(&self) -> Result<()> {
        match self.deferred.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            None => Ok(()),
            Some(Error::Validation(m)) => Err(Error::Validation(m.clone())),
            Some(Error::OutOfMemory(m)) => Err(Error::OutOfMemory(m.clone())),
            Some(other) => Err(Error::Internal(other.to_string())),
        }
    }

    /// Finishes and submits `encoder` on the context's queue, inside error scopes.
    ///
    /// Submissions and polls of one context are serialised by a lock: wgpu-core 30.0.1 can
    /// panic in `Device::maintain` when one thread polls while another submits (see
    /// PLATFORM notes and gfx-rs/wgpu#5978), and an engine inside someone's app must not.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<wgpu::SubmissionIndex> {
        let guard = self.queue_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.submissions.fetch_add(1, Ordering::Relaxed);
        let result = self.scoped(|| self.queue.submit(Some(encoder.finish())));
        if result.is_err() {
            let _ = self.device.poll(wgpu::PollType::Poll); // lets a lost callback run
            drop(guard);
            self.check_alive()?;
        }
        result
    }

    /// Number of command buffers the engine has submitted on this context.
    pub fn submissions(&self) -> usize {
        self.submissions.load(Ordering::Relaxed)
    }

    /// Submits `encoder` and blocks until the GPU has finished it (bounded by the
    /// configured `wait_timeout`).
    pub fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        let index = self.submit(encoder)?;
        self.wait(Some(index))
    }

    /// Blocks until everything submitted so far (which includes `index`, if given) is done,
    /// or errors after the configured `wait_timeout`.
    ///
    /// The wait is a loop of non-blocking polls with a growing nap (10 µs to 1 ms) rather
    /// than one blocking `PollType::Wait`: lavapipe ignores that wait's timeout (measured:
    /// a 1 ms timeout returned after the whole 51 ms conv), so only polling keeps the bound
    /// on every driver. The queue lock is taken per poll, so other threads submit meanwhile.
    pub fn wait(&self, index: Option<wgpu::SubmissionIndex>) -> Result<()> {
        let _ = index; // everything up to now is waited for, which includes `index`
        #[cfg(target_arch = "wasm32")]
        return no_blocking_on_the_web("GpuContext::wait", "GpuContext::wait_async");
        #[cfg(not(target_arch = "wasm32"))]
        self.poll_until_done()
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn poll_until_done(&self) -> Result<()> {
        let timeout = self.config().wait_timeout;
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        self.queue.on_submitted_work_done(move || flag.store(true, Ordering::Release));
        let start = web_time::Instant::now();
        let mut nap = Duration::from_micros(10);
        loop {
            let polled = {
                let _guard = self.queue_lock.lock().unwrap_or_else(|p| p.into_inner());
                self.device.poll(wgpu::PollType::Poll)
            };
            if let Err(e) = polled {
                self.check_alive()?;
                return Err(Error::DeviceLost(e.to_string()));
            }
            self.check_alive()?;
            if done.load(Ordering::Acquire) {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::Timeout(timeout));
            }
            std::thread::sleep(nap.min(timeout.saturating_sub(start.elapsed())));
            // Back off to at most 200 µs: a poll costs a few µs, and a longer nap adds its
            // half on average to every wait (measured: with a 1 ms cap, 5.7 ms wall clock
            // for a 4.0 ms GPU time on mbv2_dw).
            nap = (nap * 2).min(Duration::from_micros(200));
        }
    }

    /// [`GpuContext::wait`] as a future: resolves when everything submitted so far is done,
    /// then returns, and clears, the first error caught since (see [`GpuContext::scoped`]);
    /// errors with [`Error::Timeout`] after the configured `wait_timeout`. On the web the wait
    /// is the queue's `onSubmittedWorkDone` promise raced against a `setTimeout` timer, so
    /// the page's event loop keeps running; natively it is [`GpuContext::wait`] (and so
    /// blocks).
    pub async fn wait_async(&self) -> Result<()> {
        self.settle().await?;
        self.take_deferred()
    }

    /// The wait of [`GpuContext::wait_async`], leaving a caught error in place.
    pub(crate) async fn settle(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.wait(None)?;
        #[cfg(target_arch = "wasm32")]
        {
            let timeout = self.config().wait_timeout;
            let outcome = Arc::new(futures_intrusive::channel::OneshotChannel::<bool>::new());
            let done = outcome.clone();
            self.queue.on_submitted_work_done(move || {
                let _ = done.send(true);
            });
            let timer = outcome.clone();
            let _timer = crate::web::Timeout::new(timeout, move || {
                let _ = timer.send(false);
            });
            if outcome.receive().await != Some(true) {
                self.check_alive()?;
                return Err(Error::Timeout(timeout));
            }
            let start = web_time::Instant::now();
            while self.pending_scopes.load(Ordering::SeqCst) > 0 {
                if start.elapsed() >= timeout {
                    return Err(Error::Timeout(timeout));
                }
                crate::web::tick().await;
            }
        }
        self.check_alive()
    }

    /// Slot `slot` (< [`UNUSED_RW_SLOTS`]) of the unused read-write binding: 16 bytes at its own
    /// aligned offset, so that the unused read-write bindings of one dispatch never overlap
    /// (WebGPU refuses writable bindings that alias; wgpu's native back ends allow them).
    pub(crate) fn unused_rw(&self, slot: u64) -> wgpu::BindingResource<'_> {
        debug_assert!(slot < UNUSED_RW_SLOTS);
        let at = slot.min(UNUSED_RW_SLOTS - 1) * self.limits.min_storage_buffer_offset_alignment as u64;
        crate::kernels::range(&self.dummy_rw, (at, 16))
    }

    /// A storage buffer of at least `bytes` for im2col-style workspaces. Grows in size
    /// classes (2^k and 1.5·2^k) and is reused by every call: work on one queue runs in
    /// submission order and wgpu orders the write-after-read between dispatches.
    pub(crate) fn workspace(&self, bytes: u64) -> Result<wgpu::Buffer> {
        self.workspace_in(0, bytes)
    }

    /// [`GpuContext::workspace`] of slot 0, 1 (two buffers, for a dispatch that reads one
    /// workspace and writes the other) or [`SPLIT_K_SLOT`].
    pub(crate) fn workspace_in(&self, slot: usize, bytes: u64) -> Result<wgpu::Buffer> {
        let mut slots = self.workspace.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[slot.min(WORKSPACE_SLOTS - 1)];
        if let Some(buf) = slot.as_ref() {
            if buf.size() >= bytes {
                return Ok(buf.clone());
            }
        }
        let cap = self.max_binding().max(bytes);
        let size = size_class(bytes).min(cap).max(16);
        let buf = self.create_buffer("wgconv.workspace", size, wgpu::BufferUsages::STORAGE)?;
        *slot = Some(buf.clone());
        Ok(buf)
    }

    /// Bytes held by the cached workspaces.
    pub fn workspace_bytes(&self) -> u64 {
        self.workspace.lock().unwrap_or_else(|p| p.into_inner()).iter().flatten().map(|b| b.size()).sum()
    }

    /// Drops the cached workspaces (they are freed once no pending GPU work uses them).
    pub fn release_workspace(&self) {
        *self.workspace.lock().unwrap_or_else(|p| p.into_inner()) = [None, None, None];
    }

    /// Creates a buffer holding `contents` (padded to 4 bytes). Unlike wgpu's
    /// `create_buffer_init`, which panics when the device is gone, every failure is an error.
    pub(crate) fn create_buffer_with_data(
        &self,
        label: &str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let size = (contents.len() as u64).max(4).next_multiple_of(4);
        if size > self.limits.max_buffer_size {
            return Err(Error::TooLarge(format!(
                "{label}: {size} bytes exceeds max_buffer_size {}",
                self.limits.max_buffer_size
            )));
        }
        let buffer = self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: copyable(usage),
                mapped_at_creation: true,
            })
        })?;
        {
            let mut view = buffer.slice(..).get_mapped_range_mut().map_err(|e| {
                self.poll_for_loss();
                self.check_alive().err().unwrap_or_else(|| Error::Validation(format!("{label}: {e}")))
            })?;
            view.slice(..contents.len()).copy_from_slice(contents);
        }
        buffer.unmap();
        Ok(buffer)
    }

    /// Creates a buffer, checking the size against the device first and catching wgpu errors.
    pub(crate) fn create_buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        if size > self.limits.max_buffer_size {
            return Err(Error::TooLarge(format!(
                "{label}: {size} bytes exceeds max_buffer_size {}",
                self.limits.max_buffer_size
            )));
        }
        self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4).next_multiple_of(4),
                usage: copyable(usage),
                mapped_at_creation: false,
            })
        })
    }
}

/// [`Error::Unsupported`] on the web for a blocking call (`what`; the page's thread may not
/// block, and `pollster::block_on` would spin there forever), naming the future to await.
pub(crate) fn no_blocking_on_the_web(what: &str, instead: &str) -> Result<()> {
    if cfg!(target_arch = "wasm32") {
        return Err(Error::Unsupported(format!(
            "{what} blocks, and a page's thread may not: await {instead} on the web"
        )));
    }
    Ok(())
}

/// The error to report from what one call's three scopes caught: out-of-memory first, then
/// validation, then internal.
fn scope_error(
    validation: Option<wgpu::Error>,
    oom: Option<wgpu::Error>,
    internal: Option<wgpu::Error>,
) -> Option<Error> {
    if let Some(e) = oom {
        return Some(Error::OutOfMemory(e.to_string()));
    }
    if let Some(e) = validation {
        return Some(Error::Validation(e.to_string()));
    }
    internal.map(|e| Error::Internal(e.to_string()))
}

/// `usage` plus `COPY_SRC` where wgpu allows it (not beside `MAP_READ`): the engine's buffers
/// can all be copied out, which tracing needs ([`GpuContext::begin_trace`]).
fn copyable(usage: wgpu::BufferUsages) -> wgpu::BufferUsages {
    if usage.contains(wgpu::BufferUsages::MAP_READ) {
        usage
    } else {
        usage | wgpu::BufferUsages::COPY_SRC
    }
}

fn new_instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc)
}

/// Smallest of 2^k or 1.5·2^k that is ≥ `bytes` (vello's buffer size classes).
fn size_class(bytes: u64) -> u64 {
    if bytes <= 16 {
        return 16;
    }
    let p = bytes.next_power_of_two();
    let mid = p / 4 * 3;
    if mid >= bytes {
        mid
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn size_classes() {
        assert_eq!(super::size_class(1), 16);
        assert_eq!(super::size_class(100), 128);
        assert_eq!(super::size_class(96), 96);
        assert_eq!(super::size_class(97), 128);
        assert_eq!(super::size_class(129), 192);
    }

    // (on wasm32 wgpu's WebGPU objects are JS handles, neither Send nor Sync)
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn context_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::GpuContext>();
    }
}
