//! The kernels, one module per WGSL file of `shaders/` (its uniform block's Rust twin, its
//! override constants and the dispatches it records), and the dispatch plumbing they share:
//! grids folded to the device's limits, uniform blocks packed into one buffer, reductions
//! split into passes under the loop budget. The public ops (`crate::ops`) validate, plan and
//! record through these.

pub mod cast;
pub mod channel_sum;
pub mod col2im;
pub mod col2vol;
pub mod deform_backward;
pub mod deform_im2col;
pub mod depthwise;
pub mod depthwise_backward;
pub mod direct;
pub mod gemm;
pub mod im2col;
pub mod pack_a;
pub mod pool2d;
pub mod pool2d_backward;
pub mod slot_sum;
pub mod tiling;
pub mod trace;
pub mod transposed_border;
pub mod vol2col;
pub mod winograd;

use std::num::NonZeroU64;

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::shaders::{Overrides, ShaderId};
use crate::tensor::Tensor;

/// Splits `total` workgroups into an `[x, y, z]` grid with each dimension ≤ `limit`.
/// The grid may hold a few more than `total`; kernels recompute the linear id
/// `x + nx·(y + ny·z)` and return when it is ≥ `total`.
pub fn fold_grid(total: u64, limit: u32) -> Result<[u32; 3]> {
    let limit = limit.max(1) as u64;
    if total == 0 {
        return Ok([0, 1, 1]);
    }
    let x = total.min(limit);
    let rest = total.div_ceil(x);
    let y = rest.min(limit);
    let z = rest.div_ceil(y);
    if z > limit {
        return Err(Error::TooLarge(format!("{total} workgroups exceed {limit}³")));
    }
    Ok([x as u32, y as u32, z as u32])
}

/// One recorded kernel launch.
pub(crate) struct Dispatch {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub grid: [u32; 3],
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        if self.grid[0] == 0 {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.grid[0], self.grid[1], self.grid[2]);
    }
}

/// One planned kernel launch: what a recorded dispatch will be, before any GPU object exists.
/// A call's plan lists its steps in recording order (what `explain` prints and a replay
/// records).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The kernel launched.
    pub shader: ShaderId,
    /// The override constants its pipeline is specialised with.
    pub overrides: Overrides,
    /// The folded grid (`x · y · z` ≥ the workgroups the kernel needs; see [`fold_grid`]).
    pub workgroups: [u32; 3],
    /// What the step computes (a chunk, a range of K).
    pub note: String,
}

impl Step {
    /// The step with `what` in front of its note (`what: note`, or `what` alone): the part of
    /// a split call (a batch piece, a band, a chunk) it belongs to.
    pub(crate) fn noted(mut self, what: &str) -> Step {
        self.note = if self.note.is_empty() { what.to_string() } else { format!("{what}: {}", self.note) };
        self
    }

    /// The step's dispatch over `bindings` (group 0, in order).
    pub(crate) fn dispatch(&self, ctx: &GpuContext, bindings: &[wgpu::BindingResource<'_>]) -> Result<Dispatch> {
        let (pipeline, bgl) = ctx.pipeline(self.shader, &self.overrides)?;
        let bind_group = ctx.bind_group(self.shader, &bgl, bindings);
        Ok(Dispatch { pipeline, bind_group, grid: self.workgroups })
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [x, y, z] = self.workgroups;
        write!(f, "{} [{}] grid {x}x{y}x{z}", self.shader.name(), self.overrides)?;
        if !self.note.is_empty() {
            write!(f, ": {}", self.note)?;
        }
        Ok(())
    }
}

/// Writes a plan's lines: the op on `input` with its output shape, the algorithm and why,
/// the workspace (`chunking` says how it is split) and each step, numbered.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_plan(
    f: &mut std::fmt::Formatter<'_>,
    op: &str,
    input: &[usize],
    output: &[usize],
    (algorithm, reason): (&str, &str),
    workspace_bytes: u64,
    chunking: std::fmt::Arguments<'_>,
    steps: &[Step],
) -> std::fmt::Result {
    let input: Vec<String> = input.iter().map(usize::to_string).collect();
    writeln!(f, "{op} {} -> {output:?}, {algorithm} ({reason})", input.join("x"))?;
    if workspace_bytes > 0 {
        writeln!(f, "  workspace {workspace_bytes} bytes, {chunking}")?;
    }
    for (i, s) in steps.iter().enumerate() {
        writeln!(f, "  {}. {s}", i + 1)?;
    }
    Ok(())
}

/// `Error::Internal` unless a call recorded as many launches as its plan lists (the plan is
/// what `explain` shows and a replay records: it must not drift from what runs).
pub(crate) fn check_recorded(op: &str, recorded: usize, planned: &[Step]) -> Result<()> {
    if recorded != planned.len() {
        return Err(Error::Internal(format!("{op} recorded {recorded} launches but its plan lists {}", planned.len())));
    }
    Ok(())
}

/// Records `dispatches` in order in one compute pass (wgpu orders their buffer hazards), and
/// adds them to the context's trace when one is open.
pub(crate) fn record(ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, label: &str, dispatches: &[Dispatch]) {
    ctx.trace_dispatches(label, dispatches);
    if crate::timing::record_profiled(ctx, encoder, label, dispatches) {
        return;
    }
    let mut pass =
        encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
    for d in dispatches {
        d.record(&mut pass);
    }
}

/// Uniform blocks of one call, packed into one buffer at the device's offset alignment so
/// that every dispatch of the call reads its own block (queue writes before a submit would
/// all land before the first dispatch, so one buffer rewritten per chunk would be wrong).
pub(crate) struct UniformArena {
    bytes: Vec<u8>,
    align: usize,
}

impl UniformArena {
    pub fn new(ctx: &GpuContext) -> Self {
        UniformArena { bytes: Vec::new(), align: ctx.limits().min_uniform_buffer_offset_alignment.max(16) as usize }
    }
    /// Appends a block; returns its (offset, size).
    pub fn push<T: bytemuck::Pod>(&mut self, value: &T) -> (u64, u64) {
        let off = self.bytes.len().next_multiple_of(self.align);
        self.bytes.resize(off, 0);
        self.bytes.extend_from_slice(bytemuck::bytes_of(value));
        (off as u64, std::mem::size_of::<T>() as u64)
    }
    pub fn finish(self, ctx: &GpuContext) -> Result<wgpu::Buffer> {
        ctx.create_buffer_with_data("wgconv.uniforms", &self.bytes, wgpu::BufferUsages::UNIFORM)
    }
}

/// A binding of `size` bytes of `buffer` from `offset`.
pub(crate) fn range(buffer: &wgpu::Buffer, (offset, size): (u64, u64)) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset, size: NonZeroU64::new(size.max(4)) })
}

/// The bytes of `t` that its shape covers, as a binding.
pub(crate) fn whole(t: &Tensor) -> wgpu::BindingResource<'_> {
    range(t.buffer(), (t.offset(), t.byte_len()))
}

/// An optional input: the tensor, or the context's dummy buffer where the kernel's `HAS_*`
/// override is false and the binding is never read.
pub(crate) fn optional<'a>(ctx: &'a GpuContext, t: Option<&'a Tensor>) -> wgpu::BindingResource<'a> {
    match t {
        Some(t) => whole(t),
        None => range(&ctx.dummy, (0, 16)),
    }
}

/// Declares a `#[repr(C)]` uniform block of u32 fields and a table of its field offsets,
/// which tests compare with naga's layout of the WGSL struct of the same name.
macro_rules! uniform_block {
    ($(#[$m:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $(
                #[doc = concat!("`", stringify!($field), "` of the WGSL struct this block mirrors.")]
                pub $field: u32
            ),*
        }
        impl $name {
            /// `(field, byte offset)` in declaration order.
            pub const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field))),*];
        }
    };
}
pub(crate) use uniform_block;

uniform_block! {
    /// Twin of `KPass` in `shaders/gemm.wgsl` and `Pass` in the other kernels that reduce
    /// over a long range: the range `begin .. end` one dispatch covers, and whether it is the
    /// last one (which finishes the output; earlier ones leave partial results); `a_width`:
    /// the width of the GEMM's A window for this pass (`shaders/gemm_a_window.wgsl`), 0 elsewhere.
    PassRange { begin, end, last, a_width }
}

/// Greatest common divisor (the period of a transposed conv's landing taps: s / gcd(s, d)).
pub(crate) fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Consecutive ranges covering `0 .. len` for a kernel whose loops turn `cost` times per
/// `unit` of the range (an upper bound, inner loops included): each range starts at a
/// multiple of `unit` and costs at most `budget` turns (at least one unit per range). One
/// range `0 .. len` where everything fits. See `EngineConfig::loop_budget`.
pub(crate) fn loop_passes(len: u32, unit: u32, cost: u64, budget: u32) -> Vec<(u32, u32)> {
    let unit = unit.max(1);
    let units = (budget as u64 / cost.max(1)).max(1);
    let step = (units * unit as u64).min(u32::MAX as u64) as u32;
    let mut passes = Vec::new();
    let mut begin = 0u32;
    loop {
        let end = begin.saturating_add(step).min(len);
        passes.push((begin, end));
        if end >= len {
            return passes;
        }
        begin = end;
    }
}

/// One dispatch of kernel `id` per range of `passes`, for the kernels whose last two bindings
/// are a [`PassRange`] uniform and an f32 buffer of `part_len` partial results kept between
/// passes (allocated only with more than one pass; slot 0 of the unused read-write binding
/// otherwise): `fixed` are the bindings before them.
pub(crate) fn pass_dispatches(
    ctx: &GpuContext,
    (id, pipeline, bgl): (crate::shaders::ShaderId, &wgpu::ComputePipeline, &wgpu::BindGroupLayout),
    fixed: &[wgpu::BindingResource<'_>],
    passes: &[(u32, u32)],
    part_len: u64,
    grid: [u32; 3],
) -> Result<Vec<Dispatch>> {
    let part = match passes.len() {
        1 => None,
        _ => Some(ctx.create_buffer("wgconv.partial", part_len * 4, wgpu::BufferUsages::STORAGE)?),
    };
    let part = match &part {
        Some(buf) => range(buf, (0, buf.size())),
        None => ctx.unused_rw(0),
    };
    let (pass_uniforms, blocks) = pass_blocks(ctx, passes)?;
    Ok(blocks
        .into_iter()
        .map(|block| {
            let mut bindings = fixed.to_vec();
            bindings.extend([range(&pass_uniforms, block), part.clone()]);
            let bind_group = ctx.bind_group(id, bgl, &bindings);
            Dispatch { pipeline: pipeline.clone(), bind_group, grid }
        })
        .collect())
}

/// One uniform buffer holding a [`PassRange`] block per range (at the device's offset
/// alignment), and the (offset, size) of each block. One range starting at 0 binds the
/// context's constant block `0 .. u32::MAX` instead: kernels read `min(end, their length)`.
pub(crate) fn pass_blocks(ctx: &GpuContext, passes: &[(u32, u32)]) -> Result<(wgpu::Buffer, Vec<(u64, u64)>)> {
    pass_blocks_windowed(ctx, passes, 0)
}

/// [`pass_blocks`] whose blocks carry the GEMM's A window width `a_width` (0: none).
pub(crate) fn pass_blocks_windowed(
    ctx: &GpuContext,
    passes: &[(u32, u32)],
    a_width: u32,
) -> Result<(wgpu::Buffer, Vec<(u64, u64)>)> {
    // one pass (the common case): the context's constant block, no buffer per call; the
    // kernels clamp `end` to their range
    if let ([(0, _)], 0) = (passes, a_width) {
        let mut slot = ctx.single_pass.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let whole = PassRange { begin: 0, end: u32::MAX, last: 1, a_width: 0 };
            *slot = Some(ctx.create_buffer_with_data(
                "wgconv.single_pass",
                bytemuck::bytes_of(&whole),
                wgpu::BufferUsages::UNIFORM,
            )?);
        }
        let buffer = slot.clone().expect("set above");
        return Ok((buffer, vec![(0, std::mem::size_of::<PassRange>() as u64)]));
    }
    let mut arena = UniformArena::new(ctx);
    let last = passes.len() - 1;
    let blocks = passes
        .iter()
        .enumerate()
        .map(|(i, &(begin, end))| arena.push(&PassRange { begin, end, last: (i == last) as u32, a_width }))
        .collect();
    Ok((arena.finish(ctx)?, blocks))
}

#[cfg(test)]
mod tests {
    use super::fold_grid;

    #[test]
    fn fold_covers_total_within_limits() {
        for (total, limit) in
            [(1u64, 65535u32), (65535, 65535), (65536, 65535), (10, 3), (27, 3), (28, 4), (300, 7), (343, 7)]
        {
            let [x, y, z] = fold_grid(total, limit).unwrap();
            assert!(x <= limit && y <= limit && z <= limit);
            let n = x as u64 * y as u64 * z as u64;
            assert!(n >= total && n - total < (x as u64) * (y as u64), "{total} {limit} -> {x},{y},{z}");
        }
        assert!(fold_grid(28, 3).is_err());
        assert!(fold_grid(344, 7).is_err());
    }

    #[test]
    fn loop_passes_cover_the_range_within_the_budget() {
        use super::loop_passes;
        assert_eq!(loop_passes(100, 16, 1, 16384), vec![(0, 100)]);
        assert_eq!(loop_passes(65536, 1, 1, 16384), vec![(0, 16384), (16384, 32768), (32768, 49152), (49152, 65536)]);
        // 37 turns per 16 of K: 442 units of 16 per pass
        let p = loop_passes(65536, 16, 37, 16384);
        assert_eq!(p[0], (0, 7072));
        for (len, unit, cost, budget) in
            [(1_000_003u32, 16u32, 37u64, 16384u32), (17, 16, 5, 3), (5, 1, 100, 10), (0, 16, 1, 8)]
        {
            let p = loop_passes(len, unit, cost, budget);
            assert_eq!(p.first().unwrap().0, 0);
            assert_eq!(p.last().unwrap().1, len);
            for w in p.windows(2) {
                assert_eq!(w[0].1, w[1].0);
            }
            for &(b, e) in &p {
                assert_eq!(b % unit, 0);
                assert!(e > b || len == 0);
                let units = (e - b).div_ceil(unit) as u64;
                assert!(units == 1 || units * cost <= budget as u64, "{len} {unit} {cost} {budget}: {b}..{e}");
            }
        }
    }
}
