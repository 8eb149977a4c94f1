//! GPU timing of recorded work: timestamp queries around the recorded passes when the
//! device has them, host wall time otherwise. Used by the autotuner (library) and by
//! `wgconv bench`.

use std::time::Duration;

// `std::time::Instant` panics on wasm32-unknown-unknown; web-time is std's natively and
// `performance.now()` in a browser.
use web_time::Instant;

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// How many runs, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimingOptions {
    /// Untimed runs first (pipeline compilation happens in the first); at least one is made.
    pub warmup: u32,
    /// Timed runs, at least.
    pub runs: u32,
    /// Keep running (up to 1000 runs) until this much time has been timed.
    pub min_time: Duration,
    /// Force GPU timestamps off.
    pub wall_clock: bool,
}

impl Default for TimingOptions {
    fn default() -> Self {
        TimingOptions { warmup: 2, runs: 10, min_time: Duration::from_millis(500), wall_clock: false }
    }
}

/// How the times were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize), serde(rename_all = "snake_case"))]
pub enum TimingMethod {
    /// GPU timestamp queries written before and after the op's passes.
    GpuTimestamps,
    /// Host wall time of encode + submit + wait.
    WallClock,
}

/// Times `record` (which encodes one run of the op) `runs`+ times.
/// Returns per-run milliseconds and the method used.
pub fn time_op(
    ctx: &GpuContext,
    opts: &TimingOptions,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<(Vec<f64>, TimingMethod)> {
    let run_once = |record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
                    ts: Option<(&wgpu::QuerySet, u32)>|
     -> Result<f64> {
        let t0 = Instant::now();
        let mut encoder = ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench") });
        // Empty passes carry the timestamps: one at the beginning of the first, one at the
        // end of the second, so the interval covers exactly the op's own passes.
        if let Some((qs, i)) = ts {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("t0"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: qs,
                    beginning_of_pass_write_index: Some(2 * i),
                    end_of_pass_write_index: None,
                }),
            });
        }
        record(&mut encoder)?;
        if let Some((qs, i)) = ts {
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("t1"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: qs,
                    beginning_of_pass_write_index: None,
                    end_of_pass_write_index: Some(2 * i + 1),
                }),
            });
        }
        ctx.submit_and_wait(encoder)?;
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    // At least one untimed run: pipeline compilation (and autotuning) happen in the first.
    for _ in 0..opts.warmup.max(1) {
        run_once(&mut record, None)?;
    }
    const MAX_RUNS: u32 = 1000;
    let use_ts = !opts.wall_clock && ctx.device().features().contains(wgpu::Features::TIMESTAMP_QUERY);
    let query_set = use_ts.then(|| {
        ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("bench"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * MAX_RUNS,
        })
    });
    let mut wall = Vec::new();
    let started = Instant::now();
    while (wall.len() as u32) < opts.runs.max(1)
        || (started.elapsed() < opts.min_time && (wall.len() as u32) < MAX_RUNS)
    {
        let i = wall.len() as u32;
        wall.push(run_once(&mut record, query_set.as_ref().map(|q| (q, i)))?);
    }
    let Some(qs) = query_set else {
        return Ok((wall, TimingMethod::WallClock));
    };
    let ticks = read_timestamps(ctx, &qs, 2 * wall.len() as u32)?;
    let period_ns = ctx.queue().get_timestamp_period() as f64;
    let gpu: Vec<f64> = ticks.chunks_exact(2).map(|p| p[1].wrapping_sub(p[0]) as f64 * period_ns / 1e6).collect();
    // A backend that writes zeros or wraps is not trusted: fall back to wall time.
    if gpu.iter().all(|&ms| ms > 0.0 && ms.is_finite() && ms < 1e7) {
        Ok((gpu, TimingMethod::GpuTimestamps))
    } else {
        Ok((wall, TimingMethod::WallClock))
    }
}

fn read_timestamps(ctx: &GpuContext, qs: &wgpu::QuerySet, count: u32) -> Result<Vec<u64>> {
    let bytes = count as u64 * 8;
    let resolve =
        ctx.create_buffer("bench.resolve", bytes, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)?;
    let staging = ctx.create_buffer("bench.ts", bytes, wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ)?;
    let mut encoder = ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ts") });
    encoder.resolve_query_set(qs, 0..count, &resolve, 0);
    encoder.copy_buffer_to_buffer(&resolve, 0, &staging, 0, bytes);
    ctx.submit_and_wait(encoder)?;
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait(None)?;
    rx.recv().map_err(|e| Error::Map(e.to_string()))?.map_err(|e| Error::Map(e.to_string()))?;
    let view = staging.slice(..).get_mapped_range().map_err(|e| Error::Map(e.to_string()))?;
    Ok(bytemuck::cast_slice::<u8, u64>(&view).to_vec())
}

/// One launch of a profiled call ([`profile_op`], `wgconv bench --profile`): the kernel, its
/// override constants and grid, and its median GPU time over the profiled runs.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct LaunchTime {
    /// The WGSL kernel (as `explain` names it).
    pub kernel: String,
    /// Its override constants (`NAME=value,…`, or `(none)`).
    pub overrides: String,
    /// The dispatched workgroups `[x, y, z]`.
    pub workgroups: [u32; 3],
    /// Median GPU time of the launch, in ms (from its own compute pass's timestamps).
    pub median_ms: f64,
}

/// What [`profile_op`] measured: every launch of one call in recording order.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "cli", derive(serde::Serialize))]
pub struct Profile {
    /// The launches that were timed, in recording order.
    pub launches: Vec<LaunchTime>,
    /// Launches past the query set's capacity ([`PROFILE_MAX_LAUNCHES`]), run but not timed.
    pub untimed: usize,
    /// Runs the medians are taken over.
    pub runs: u32,
}

/// Launches one profiled call can time (two timestamps each; WebGPU's query set holds 4096).
pub const PROFILE_MAX_LAUNCHES: u32 = 2048;

/// A profiled launch before it is timed: its kernel, overrides and grid.
type Launch = (String, String, [u32; 3]);

/// The open profile of a context: its query set, what each pair of queries timed, and the
/// thread recording the profiled call (launches other threads record on the context
/// meanwhile are theirs, not the profile's).
pub(crate) struct Profiler {
    query_set: wgpu::QuerySet,
    launches: Vec<Launch>,
    untimed: usize,
    thread: std::thread::ThreadId,
}

impl GpuContext {
    fn profiler(&self) -> std::sync::MutexGuard<'_, Option<Profiler>> {
        self.profiler.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Records `dispatches` each in a compute pass of its own between two timestamp writes when
/// a profile is open on `ctx` (true), else nothing (false: the caller records them).
pub(crate) fn record_profiled(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    label: &str,
    dispatches: &[crate::kernels::Dispatch],
) -> bool {
    let mut slot = ctx.profiler();
    let Some(p) = slot.as_mut().filter(|p| p.thread == std::thread::current().id()) else { return false };
    for d in dispatches.iter().filter(|d| d.grid[0] != 0) {
        let k = p.launches.len() as u32;
        let timestamp_writes = (k < PROFILE_MAX_LAUNCHES).then(|| wgpu::ComputePassTimestampWrites {
            query_set: &p.query_set,
            beginning_of_pass_write_index: Some(2 * k),
            end_of_pass_write_index: Some(2 * k + 1),
        });
        if timestamp_writes.is_some() {
            let (kernel, overrides) = match ctx.pipeline_key(&d.pipeline) {
                Some((shader, o)) => (shader.name().to_string(), o.to_string()),
                None => (label.to_string(), String::new()),
            };
            p.launches.push((kernel, overrides, d.grid));
        } else {
            p.untimed += 1;
        }
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes });
        d.record(&mut pass);
    }
    true
}

/// Times every launch of one call: `record` (which encodes one call, as for [`time_op`]) runs
/// `runs` times with each of its dispatches in a compute pass of its own between two GPU
/// timestamps; the medians per launch are returned in recording order. `None` where the
/// device has no timestamp queries. Run it after the call has run once (pipelines compile in
/// the first call, and would be timed). Separate passes cost what a pass boundary costs, so
/// the launches' sum can exceed [`time_op`]'s time of the same call; the shares are what to
/// read. Only what `record` records on this thread is profiled: other threads' calls on the
/// same context meanwhile run unprofiled.
///
/// # Errors
/// `record`'s errors; [`Error::Internal`] when the runs record different launches; device
/// and readback errors.
pub fn profile_op(
    ctx: &GpuContext,
    runs: u32,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<Option<Profile>> {
    if !ctx.device().features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        return Ok(None);
    }
    let query_set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("profile"),
        ty: wgpu::QueryType::Timestamp,
        count: 2 * PROFILE_MAX_LAUNCHES,
    });
    let period_ns = ctx.queue().get_timestamp_period() as f64;
    let mut first: Option<(Vec<Launch>, usize)> = None;
    let mut times: Vec<Vec<f64>> = Vec::new();
    for _ in 0..runs.max(1) {
        *ctx.profiler() = Some(Profiler {
            query_set: query_set.clone(),
            launches: Vec::new(),
            untimed: 0,
            thread: std::thread::current().id(),
        });
        let mut encoder =
            ctx.device().create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("profile") });
        let recorded = record(&mut encoder);
        let p = ctx.profiler().take().ok_or_else(|| Error::Internal("profile: closed while recording".into()))?;
        recorded?;
        ctx.submit_and_wait(encoder)?;
        let n = p.launches.len();
        if n > 0 {
            let ticks = read_timestamps(ctx, &query_set, 2 * n as u32)?;
            let ms = ticks.chunks_exact(2).map(|t| t[1].wrapping_sub(t[0]) as f64 * period_ns / 1e6);
            times.resize(n, Vec::new());
            times.iter_mut().zip(ms).for_each(|(v, ms)| v.push(ms));
        }
        match &first {
            None => first = Some((p.launches, p.untimed)),
            Some((l, u)) if *l != p.launches || *u != p.untimed => {
                return Err(Error::Internal("profile: the runs recorded different launches".into()));
            }
            Some(_) => {}
        }
    }
    let (launches, untimed) = first.unwrap_or_default();
    let launches = launches
        .into_iter()
        .zip(&times)
        .map(|((kernel, overrides, workgroups), t)| LaunchTime {
            kernel,
            overrides,
            workgroups,
            median_ms: summarize(t).0,
        })
        .collect();
    Ok(Some(Profile { launches, untimed, runs: runs.max(1) }))
}

/// Median, min, max of `v` (not empty).
pub fn summarize(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let median = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (median, s[0], s[n - 1])
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn summarize_gives_median_min_max() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }
}
