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
