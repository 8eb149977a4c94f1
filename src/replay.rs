//! Replay export: conformance cases written as self-contained WebGPU workloads that any
//! implementation can run and check (`conformance/webgpu/`: Dawn in Node, a browser page).
//!
//! Each case is a [`Trace`] of the call as it ran on wgpu: the WGSL modules the engine built,
//! entry points, override constants, explicit bind group layouts, the buffers with their
//! contents before the first dispatch (outputs poisoned with NaN, so an element no kernel
//! writes fails), the dispatches in order, and the expected outputs (the f64 reference) with
//! the tolerance. Nothing here describes an op a second time.
//!
//! # Format (version 1)
//! All numbers little-endian. `DIR/replay.json`:
//! ```text
//! { "format": "wgconv-replay", "version": 1, "generator": "wgconv 0.1.0",
//!   "adapter": { "name", "backend", "driver", "driver_info" },   // where it was recorded
//!   "limits": { "minUniformBufferOffsetAlignment": 256, ... },  // the device's, under which
//!                 // the buffers and offsets were laid out: a runner requests these
//!   "shaders": { NAME: { "file": "shaders/NAME.wgsl", "entry": "main",
//!                        "bindings": ["uniform" | "read-only-storage" | "storage", ...],
//!                        "f16": bool } },
//!   "cases": ["cases/0000.json", ...],
//!   "static": "static.json" }
//! ```
//! `cases/NNNN.json`:
//! ```text
//! { "op": "conv2d/auto", "case": "conv2d x[..] w[..] ...", "f16": bool,
//!   "tolerance": { "rel_l2": 1e-5, "abs": 1e-4 },   // pass: rel-L2 ≤ rel_l2 and
//!                                                    // max-abs ≤ abs·(1 + max|expected|)
//!   "buffers": [ { "size": BYTES,   // up to the end of its furthest binding
//!                  "init": "cases/NNNN/bK.bin" | null (zeros) } ],
//!   "dispatches": [ { "shader": NAME, "constants": { NAME: NUMBER }, "pass": "conv2d",
//!                     "bindings": [ { "buffer": K, "offset": BYTES, "size": BYTES } ],
//!                     "workgroups": [X, Y, Z] } ],
//!   "outputs": [ { "buffer": K, "dtype": "f32" | "f16", "count": N,
//!                  "expected": "cases/NNNN/eJ.f64" } ] }
//! ```
//! Dispatches run in order; consecutive ones with the same `pass` label share one compute
//! pass (wgconv records one pass per call). `static.json` lists every shader × override set
//! (`[{ "shader": NAME, "constants": {..} }]`) for compile-only checks (Tint, on Dawn's null
//! backend).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::kernels::trace::Trace;
use crate::shaders::{BindingKind, Overrides, ShaderId};
use crate::tensor::{DType, Tensor};
use crate::verify::Tolerance;

/// The format's name in `replay.json`.
pub const FORMAT: &str = "wgconv-replay";
/// The format's version in `replay.json`.
pub const VERSION: u32 = 1;

/// Writes a replay folder case by case; [`ReplayWriter::finish`] writes the index.
#[derive(Debug)]
pub struct ReplayWriter {
    dir: PathBuf,
    adapter: Value,
    limits: Value,
    cases: Vec<String>,
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

/// An override set as a JSON object (bools as 0/1, as WebGPU's `constants` take them).
pub fn constants_json(o: &Overrides) -> Value {
    Value::Object(o.entries().iter().map(|&(n, v)| (n.to_string(), json!(v))).collect::<Map<_, _>>())
}

/// The adapter a report or replay came from: backend, name, driver and its version.
pub fn adapter_json(ctx: &GpuContext) -> Value {
    let i = ctx.adapter_info();
    json!({
        "name": i.name,
        "backend": format!("{:?}", i.backend),
        "driver": i.driver,
        "driver_info": i.driver_info,
    })
}

impl ReplayWriter {
    /// Starts a replay folder at `dir` (created; files of an earlier export are replaced).
    pub fn new(ctx: &GpuContext, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let cases = dir.join("cases");
        if cases.exists() {
            std::fs::remove_dir_all(&cases).map_err(|e| io(&cases, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let l = ctx.limits();
        // WebGPU's names; the limits wgconv's layouts and kernels depend on
        let limits = json!({
            "minUniformBufferOffsetAlignment": l.min_uniform_buffer_offset_alignment,
            "minStorageBufferOffsetAlignment": l.min_storage_buffer_offset_alignment,
            "maxStorageBufferBindingSize": l.max_storage_buffer_binding_size,
            "maxUniformBufferBindingSize": l.max_uniform_buffer_binding_size,
            "maxBufferSize": l.max_buffer_size,
            "maxStorageBuffersPerShaderStage": l.max_storage_buffers_per_shader_stage,
            "maxUniformBuffersPerShaderStage": l.max_uniform_buffers_per_shader_stage,
            "maxComputeWorkgroupStorageSize": l.max_compute_workgroup_storage_size,
            "maxComputeInvocationsPerWorkgroup": l.max_compute_invocations_per_workgroup,
            "maxComputeWorkgroupSizeX": l.max_compute_workgroup_size_x,
            "maxComputeWorkgroupSizeY": l.max_compute_workgroup_size_y,
            "maxComputeWorkgroupSizeZ": l.max_compute_workgroup_size_z,
            "maxComputeWorkgroupsPerDimension": l.max_compute_workgroups_per_dimension,
        });
        Ok(ReplayWriter { dir, adapter: adapter_json(ctx), limits, cases: Vec::new() })
    }

    /// Cases written so far.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether no case has been written yet.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// Writes one case: `trace` of the call, and each output tensor with its expected
    /// values. An output must be a buffer the trace binds.
    pub fn write_case(
        &mut self,
        op: &str,
        case: &str,
        trace: &Trace,
        outputs: &[(&Tensor, &[f64])],
        tol: Tolerance,
    ) -> Result<()> {
        let n = self.cases.len();
        let stem = format!("cases/{n:04}");
        let mut poisoned = vec![None; trace.buffers.len()];
        let mut outs = Vec::new();
        for (j, (t, expected)) in outputs.iter().enumerate() {
            let k = trace
                .buffer_index(t.buffer())
                .ok_or_else(|| Error::Internal(format!("replay: output {j} of {op} is not bound by its dispatches")))?;
            if expected.len() != t.numel() {
                return Err(Error::Internal(format!(
                    "replay: {op} output {j}: {} expected values for {} elements",
                    expected.len(),
                    t.numel()
                )));
            }
            poisoned[k] = Some((t.dtype(), t.byte_len() as usize));
            let file = format!("{stem}/e{j}.f64");
            let bytes: Vec<u8> = expected.iter().flat_map(|v| v.to_le_bytes()).collect();
            write(&self.dir.join(&file), &bytes)?;
            outs.push(json!({ "buffer": k, "dtype": t.dtype().name(), "count": t.numel(), "expected": file }));
        }
        // A buffer is written up to the end of its furthest binding: no kernel can read or
        // write past it (a cached workspace is often much larger than one call binds).
        let mut extent = vec![0u64; trace.buffers.len()];
        for b in trace.dispatches.iter().flat_map(|d| &d.bindings) {
            extent[b.buffer] = extent[b.buffer].max((b.offset + b.size).next_multiple_of(4));
        }
        let mut buffers = Vec::new();
        for (k, b) in trace.buffers.iter().enumerate() {
            let mut bytes = b.initial[..(extent[k] as usize).min(b.initial.len())].to_vec();
            if let Some((dtype, len)) = poisoned[k] {
                let nan: &[u8] = match dtype {
                    DType::F32 => &f32::NAN.to_le_bytes(),
                    DType::F16 => &half::f16::NAN.to_le_bytes(),
                };
                let len = len.min(bytes.len());
                for chunk in bytes[..len].chunks_exact_mut(nan.len()) {
                    chunk.copy_from_slice(nan);
                }
            }
            let init = if bytes.iter().all(|&x| x == 0) {
                Value::Null
            } else {
                let file = format!("{stem}/b{k}.bin");
                write(&self.dir.join(&file), &bytes)?;
                json!(file)
            };
            buffers.push(json!({ "size": bytes.len(), "init": init }));
        }
        let mut dispatches = Vec::new();
        for d in &trace.dispatches {
            let bindings: Vec<Value> =
                d.bindings.iter().map(|b| json!({ "buffer": b.buffer, "offset": b.offset, "size": b.size })).collect();
            dispatches.push(json!({
                "shader": d.shader.name(),
                "constants": constants_json(&d.overrides),
                "pass": d.pass,
                "bindings": bindings,
                "workgroups": d.workgroups,
            }));
        }
        let f16 = trace.dispatches.iter().any(|d| d.shader.is_f16());
        let doc = json!({
            "op": op,
            "case": case,
            "f16": f16,
            "tolerance": { "rel_l2": tol.rel_l2, "abs": tol.abs },
            "buffers": buffers,
            "dispatches": dispatches,
            "outputs": outs,
        });
        let file = format!("{stem}.json");
        write(&self.dir.join(&file), serde_json::to_string_pretty(&doc).expect("json").as_bytes())?;
        self.cases.push(file);
        Ok(())
    }

    /// Writes the shaders, `static.json` (every shader × override set) and `replay.json`;
    /// returns the folder.
    pub fn finish(self) -> Result<PathBuf> {
        let mut shaders = Map::new();
        // every kernel, so that the static list and the cases share one table
        for id in ShaderId::all() {
            let file = format!("shaders/{}.wgsl", id.name());
            write(&self.dir.join(&file), id.source().as_bytes())?;
            let bindings: Vec<&str> = id
                .bindings()
                .iter()
                .map(|k| match k {
                    BindingKind::Uniform => "uniform",
                    BindingKind::StorageRead => "read-only-storage",
                    BindingKind::StorageReadWrite => "storage",
                })
                .collect();
            shaders.insert(
                id.name().into(),
                json!({ "file": file, "entry": id.entry_point(), "bindings": bindings, "f16": id.is_f16() }),
            );
        }
        let static_sets: Vec<Value> = ShaderId::all()
            .into_iter()
            .flat_map(|id| {
                id.override_sets()
                    .into_iter()
                    .map(move |o| json!({ "shader": id.name(), "constants": constants_json(&o) }))
            })
            .collect();
        write(&self.dir.join("static.json"), serde_json::to_string(&static_sets).expect("json").as_bytes())?;
        let index = json!({
            "format": FORMAT,
            "version": VERSION,
            "generator": format!("wgconv {}", env!("CARGO_PKG_VERSION")),
            "adapter": self.adapter,
            "limits": self.limits,
            "shaders": shaders,
            "cases": self.cases,
            "static": "static.json",
        });
        write(&self.dir.join("replay.json"), serde_json::to_string_pretty(&index).expect("json").as_bytes())?;
        Ok(self.dir)
    }
}
