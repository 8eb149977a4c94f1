//! Tracing: what a context records between [`GpuContext::begin_trace`] and
//! [`GpuContext::end_trace`], dispatch by dispatch (kernel, override constants, bound buffer
//! ranges, workgroups), with the contents every bound buffer had before the first dispatch
//! that used it. A trace is what `wgconv conformance --export` writes as a replay, so a replay
//! comes from the very code path that runs on wgpu, never from a second description of an op.
//!
//! Tracing is for checking, not for speed: each recorded call first copies its buffers not
//! seen before to the host (one submit and wait).

use std::collections::HashMap;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::shaders::{Overrides, ShaderId};

/// A buffer a traced dispatch binds.
#[derive(Debug)]
pub struct TracedBuffer {
    /// The buffer itself (a handle to it, not a copy).
    pub buffer: wgpu::Buffer,
    /// The contents before the first traced dispatch that bound it (the whole buffer).
    pub initial: Vec<u8>,
}

/// One binding of a traced dispatch: `size` bytes of buffer `buffer` (an index into
/// [`Trace::buffers`]) from `offset`, at the binding number of its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracedBinding {
    /// Index of the bound buffer in `Trace::buffers`.
    pub buffer: usize,
    /// Start of the bound range, in bytes.
    pub offset: u64,
    /// Length of the bound range, in bytes.
    pub size: u64,
}

/// One traced kernel launch.
#[derive(Clone, Debug)]
pub struct TracedDispatch {
    /// The WGSL kernel launched.
    pub shader: ShaderId,
    /// The values of its `override` constants the pipeline was built with.
    pub overrides: Overrides,
    /// Group 0's bindings in binding order.
    pub bindings: Vec<TracedBinding>,
    /// Workgroup counts in x, y, z.
    pub workgroups: [u32; 3],
    /// The compute pass's label (the op that recorded it).
    pub pass: String,
}

/// Everything traced, in recording order.
#[derive(Debug, Default)]
pub struct Trace {
    /// Every buffer the dispatches bind, in order of first use.
    pub buffers: Vec<TracedBuffer>,
    /// The kernel launches, in recording order (empty dispatches, with no workgroups, left out).
    pub dispatches: Vec<TracedDispatch>,
}

impl Trace {
    /// The index of `buffer` in [`Trace::buffers`], if a traced dispatch bound it.
    pub fn buffer_index(&self, buffer: &wgpu::Buffer) -> Option<usize> {
        self.buffers.iter().position(|b| b.buffer == *buffer)
    }
}

/// The context's tracing state while a trace is open.
#[derive(Default)]
pub(crate) struct Tracer {
    trace: Trace,
    /// Bind groups made while tracing, and what they bind (wgpu cannot be asked afterwards).
    bind_groups: HashMap<wgpu::BindGroup, Vec<(wgpu::Buffer, u64, u64)>>,
    error: Option<Error>,
    /// Which trace this is ([`GpuContext::begin_trace`] numbers them): dispatches read under
    /// one trace are not added to the next, should another thread end it and begin another
    /// while their buffers are copied.
    generation: u64,
}

impl Tracer {
    pub(crate) fn bind_group_made(&mut self, group: &wgpu::BindGroup, resources: &[wgpu::BindingResource<'_>]) {
        let bound = resources
            .iter()
            .map(|r| match r {
                wgpu::BindingResource::Buffer(b) => {
                    let size = b.size.map_or(b.buffer.size() - b.offset, |s| s.get());
                    (b.buffer.clone(), b.offset, size)
                }
                _ => unreachable!("wgconv binds buffers only"),
            })
            .collect();
        self.bind_groups.insert(group.clone(), bound);
    }
}

impl GpuContext {
    /// Starts tracing every dispatch this context records, from any thread, until
    /// [`GpuContext::end_trace`] (see the module docs); a trace already open is discarded.
    /// Bind groups made before this call cannot be traced: trace whole calls.
    pub fn begin_trace(&self) {
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.tracer.lock().unwrap_or_else(|p| p.into_inner()) = Some(Tracer { generation, ..Tracer::default() });
    }

    /// Ends tracing and returns what was recorded since [`GpuContext::begin_trace`].
    ///
    /// # Errors
    /// `Error::InvalidParam` without an open trace; the first error met while copying a
    /// buffer's contents (a bound buffer without `COPY_SRC` usage, a lost device).
    pub fn end_trace(&self) -> Result<Trace> {
        let tracer = self
            .tracer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| Error::param("trace", "end_trace without begin_trace"))?;
        match tracer.error {
            Some(e) => Err(e),
            None => Ok(tracer.trace),
        }
    }

    pub(crate) fn tracing(&self) -> bool {
        self.tracer.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Adds recorded dispatches to the open trace (a no-op without one).
    pub(crate) fn trace_dispatches(&self, pass: &str, dispatches: &[super::Dispatch]) {
        if !self.tracing() {
            return;
        }
        let result = self.trace_dispatches_inner(pass, dispatches);
        if let Err(e) = result {
            let mut slot = self.tracer.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = slot.as_mut() {
                t.error.get_or_insert(e);
            }
        }
    }

    fn trace_dispatches_inner(&self, pass: &str, dispatches: &[super::Dispatch]) -> Result<()> {
        let mut traced = Vec::new();
        let mut new_buffers: Vec<wgpu::Buffer> = Vec::new();
        let generation;
        {
            let slot = self.tracer.lock().unwrap_or_else(|p| p.into_inner());
            let Some(tracer) = slot.as_ref() else { return Ok(()) };
            generation = tracer.generation;
            for d in dispatches.iter().filter(|d| d.grid[0] != 0) {
                let (shader, overrides) = self.pipeline_key(&d.pipeline).ok_or_else(|| {
                    Error::Internal(format!("trace: a {pass} pipeline is not in the context's cache"))
                })?;
                let bound = tracer.bind_groups.get(&d.bind_group).ok_or_else(|| {
                    Error::Internal(format!("trace: a {pass} bind group was made before the trace began"))
                })?;
                for (b, _, _) in bound {
                    if tracer.trace.buffer_index(b).is_none() && !new_buffers.contains(b) {
                        new_buffers.push(b.clone());
                    }
                }
                traced.push((shader, overrides, bound.clone(), d.grid));
            }
        }
        let contents = self.read_buffers(&new_buffers)?;
        let mut slot = self.tracer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tracer) = slot.as_mut().filter(|t| t.generation == generation) else { return Ok(()) };
        for (buffer, initial) in new_buffers.into_iter().zip(contents) {
            tracer.trace.buffers.push(TracedBuffer { buffer, initial });
        }
        for (shader, overrides, bound, workgroups) in traced {
            let bindings: Option<Vec<TracedBinding>> = bound
                .iter()
                .map(|(b, offset, size)| {
                    Some(TracedBinding { buffer: tracer.trace.buffer_index(b)?, offset: *offset, size: *size })
                })
                .collect();
            let Some(bindings) = bindings else {
                return Err(Error::Internal(format!("trace: a buffer bound by a {pass} dispatch was not copied")));
            };
            tracer.trace.dispatches.push(TracedDispatch { shader, overrides, bindings, workgroups, pass: pass.into() });
        }
        Ok(())
    }

    /// The whole contents of `buffers`, copied in one submission (before any work recorded
    /// but not yet submitted).
    fn read_buffers(&self, buffers: &[wgpu::Buffer]) -> Result<Vec<Vec<u8>>> {
        if buffers.is_empty() {
            return Ok(Vec::new());
        }
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("trace") });
        let mut staging = Vec::new();
        for b in buffers {
            if !b.usage().contains(wgpu::BufferUsages::COPY_SRC) {
                return Err(Error::param(
                    "trace",
                    format!("a bound buffer of {} bytes lacks COPY_SRC usage", b.size()),
                ));
            }
            let s = self.create_buffer(
                "wgconv.trace",
                b.size(),
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )?;
            encoder.copy_buffer_to_buffer(b, 0, &s, 0, b.size());
            staging.push(s);
        }
        let index = self.submit(encoder)?;
        let receivers: Vec<_> = staging
            .iter()
            .map(|s| {
                let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
                s.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        self.wait(Some(index))?;
        staging
            .iter()
            .zip(receivers)
            .map(|(s, rx)| {
                match pollster::block_on(rx.receive()) {
                    Some(Ok(())) => {}
                    Some(Err(e)) => return Err(Error::Map(e.to_string())),
                    None => return Err(Error::Map("the map callback was dropped".into())),
                }
                let bytes = s.slice(..).get_mapped_range().map_err(|e| Error::Map(e.to_string()))?.to_vec();
                s.unmap();
                Ok(bytes)
            })
            .collect()
    }
}
