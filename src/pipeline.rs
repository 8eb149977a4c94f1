//! Pipeline, layout and shader-module cache. Everything here is created once per context
//! and keyed by (shader, override constants); nothing is compiled on the hot path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use crate::context::GpuContext;
use crate::error::Result;
use crate::shaders::{BindingKind, Overrides, ShaderId};

type Key = (ShaderId, Vec<(&'static str, u64)>);

/// The per-context cache (see [`GpuContext::pipeline`]).
#[derive(Default)]
pub struct PipelineCache {
    layouts: RwLock<HashMap<ShaderId, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    modules: RwLock<HashMap<ShaderId, wgpu::ShaderModule>>,
    pipelines: RwLock<HashMap<Key, wgpu::ComputePipeline>>,
    compiled: AtomicUsize,
}

impl std::fmt::Debug for PipelineCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineCache").field("compiled", &self.compiled.load(Ordering::Relaxed)).finish()
    }
}

fn layout_entry(binding: u32, kind: BindingKind) -> wgpu::BindGroupLayoutEntry {
    let ty = match kind {
        BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
        BindingKind::StorageRead => wgpu::BufferBindingType::Storage { read_only: true },
        BindingKind::StorageReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
        count: None,
    }
}

impl PipelineCache {
    /// Drops every cached layout, module and pipeline (the next use makes them again).
    pub(crate) fn clear(&self) {
        self.layouts.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.modules.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.pipelines.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl GpuContext {
    /// Number of compute pipelines this context has compiled (stays flat on the hot path).
    pub fn pipelines_compiled(&self) -> usize {
        self.pipelines.compiled.load(Ordering::Relaxed)
    }

    fn layout(&self, id: ShaderId) -> Result<(wgpu::BindGroupLayout, wgpu::PipelineLayout)> {
        if let Some(l) = self.pipelines.layouts.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(l.clone());
        }
        let made = self.scoped(|| {
            let entries: Vec<_> = id.bindings().iter().enumerate().map(|(i, &k)| layout_entry(i as u32, k)).collect();
            let bgl = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(id.name()),
                entries: &entries,
            });
            let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(id.name()),
                bind_group_layouts: &[Some(&bgl)],
                immediate_size: 0,
            });
            (bgl, pl)
        })?;
        let mut map = self.pipelines.layouts.write().unwrap_or_else(|p| p.into_inner());
        Ok(map.entry(id).or_insert(made).clone())
    }

    fn module(&self, id: ShaderId) -> Result<wgpu::ShaderModule> {
        if let Some(m) = self.pipelines.modules.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
            return Ok(m.clone());
        }
        let made = self.scoped(|| {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(id.name()),
                source: wgpu::ShaderSource::Wgsl(id.source().into()),
            })
        })?;
        let mut map = self.pipelines.modules.write().unwrap_or_else(|p| p.into_inner());
        Ok(map.entry(id).or_insert(made).clone())
    }

    /// The pipeline for `id` specialised with `overrides`, and its bind group layout.
    /// Compiled on first use, then served from the cache.
    pub fn pipeline(
        &self,
        id: ShaderId,
        overrides: &Overrides,
    ) -> Result<(wgpu::ComputePipeline, wgpu::BindGroupLayout)> {
        let key: Key = (id, overrides.key());
        let (bgl, pl) = self.layout(id)?;
        if let Some(p) = self.pipelines.pipelines.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok((p.clone(), bgl));
        }
        let module = self.module(id)?;
        let made = self.scoped(|| {
            self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(id.name()),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(id.entry_point()),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: overrides.entries(),
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        })?;
        let mut map = self.pipelines.pipelines.write().unwrap_or_else(|p| p.into_inner());
        let p = map
            .entry(key)
            .or_insert_with(|| {
                self.pipelines.compiled.fetch_add(1, Ordering::Relaxed);
                made
            })
            .clone();
        Ok((p, bgl))
    }

    /// A bind group for `id` from whole buffers or buffer ranges, in binding order.
    pub(crate) fn bind_group(
        &self,
        id: ShaderId,
        bgl: &wgpu::BindGroupLayout,
        resources: &[wgpu::BindingResource<'_>],
    ) -> wgpu::BindGroup {
        debug_assert_eq!(resources.len(), id.bindings().len());
        let entries: Vec<_> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry { binding: i as u32, resource: r.clone() })
            .collect();
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(id.name()),
            layout: bgl,
            entries: &entries,
        });
        if let Some(tracer) = self.tracer.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            tracer.bind_group_made(&group, resources);
        }
        if let Some(what) = writable_aliasing(id, resources) {
            ALIASING.with(|a| {
                a.borrow_mut().get_or_insert((self.id, what));
            });
        }
        group
    }

    /// The (shader, override constants) a cached pipeline was compiled from.
    pub(crate) fn pipeline_key(&self, pipeline: &wgpu::ComputePipeline) -> Option<(ShaderId, Overrides)> {
        let map = self.pipelines.pipelines.read().unwrap_or_else(|p| p.into_inner());
        let ((id, constants), _) = map.iter().find(|(_, p)| *p == pipeline)?;
        let overrides = constants.iter().fold(Overrides::none(), |o, &(name, bits)| o.with(name, f64::from_bits(bits)));
        Some((*id, overrides))
    }
}

thread_local! {
    /// A bind group this thread made with two read-write bindings over overlapping ranges of
    /// one buffer (the context's id, what): WebGPU refuses it while wgpu's native back ends
    /// accept it, so the engine reports it itself from the same thread's next
    /// [`GpuContext::scoped`] on that context (every op records inside one), on every back end.
    static ALIASING: std::cell::RefCell<Option<(u64, String)>> = const { std::cell::RefCell::new(None) };
}

/// The aliasing this thread found in a bind group of context `id`, once.
pub(crate) fn take_aliasing(id: u64) -> Option<String> {
    ALIASING.with(|a| {
        let mut a = a.borrow_mut();
        if a.as_ref().is_some_and(|(ctx, _)| *ctx == id) {
            a.take().map(|(_, what)| what)
        } else {
            None
        }
    })
}

/// Two read-write bindings of `id` over overlapping ranges of one buffer, described; `None`
/// when there are none.
fn writable_aliasing(id: ShaderId, resources: &[wgpu::BindingResource<'_>]) -> Option<String> {
    let writable: Vec<(usize, &wgpu::BufferBinding<'_>)> = resources
        .iter()
        .enumerate()
        .filter(|(i, _)| id.bindings().get(*i) == Some(&crate::shaders::BindingKind::StorageReadWrite))
        .filter_map(|(i, r)| match r {
            wgpu::BindingResource::Buffer(b) => Some((i, b)),
            _ => None,
        })
        .collect();
    let span =
        |b: &wgpu::BufferBinding<'_>| (b.offset, b.offset + b.size.map_or(b.buffer.size() - b.offset, |s| s.get()));
    for (k, (i, a)) in writable.iter().enumerate() {
        for (j, b) in &writable[k + 1..] {
            let ((a0, a1), (b0, b1)) = (span(a), span(b));
            if a.buffer == b.buffer && a0 < b1 && b0 < a1 {
                return Some(format!(
                    "{} binds bytes {a0}..{a1} and {b0}..{b1} of one buffer at bindings {i} and {j}",
                    id.name()
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::kernels::range;
    use crate::shaders::ShaderId;

    /// The kind of fault: avg pooling's gather bound the unused read-write buffer twice over
    /// the same 16 bytes; wgpu's Vulkan back end ran it, Dawn refused it. The engine now
    /// reports it on every back end, and separate slots pass.
    #[test]
    fn aliasing_writable_bindings_are_an_error_on_every_back_end() {
        let Ok(ctx) = crate::GpuContext::new() else { return };
        let align = ctx.limits().min_storage_buffer_offset_alignment as u64;
        let buf = ctx.create_buffer("wgconv.test", 3 * align, wgpu::BufferUsages::STORAGE).unwrap();
        let id = ShaderId::Pool2dGather;
        let (_, bgl) = ctx.pipeline(id, &id.override_sets()[0]).unwrap();
        let (pass, blocks) = crate::kernels::pass_blocks(&ctx, &[(0, u32::MAX)]).unwrap();
        let bind = |part_at: u64| {
            ctx.scoped(|| {
                ctx.bind_group(
                    id,
                    &bgl,
                    &[
                        range(&pass, blocks[0]),
                        range(&ctx.dummy, (0, 16)),
                        range(&ctx.dummy, (0, 16)),
                        range(&buf, (align, 16)),
                        range(&buf, (0, 16)),
                        range(&pass, blocks[0]),
                        range(&buf, (part_at, 16)),
                    ],
                )
            })
        };
        let e = bind(0).unwrap_err();
        assert!(matches!(&e, crate::Error::Internal(m) if m.contains("alias")), "{e:?}");
        // bindings 3 and 6 overlap too
        assert!(bind(align).is_err());
        assert!(bind(2 * align).is_ok());
    }
}
