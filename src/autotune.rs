//! Opt-in autotuner for `Algorithm::Auto`: times every applicable algorithm once per
//! (adapter, bucketed shape) on scratch tensors and remembers the fastest, in memory and,
//! if the caller gives a path, in a small text file reused by later processes.
//!
//! File format, one entry per line, tab-separated:
//! `adapter name \t backend \t key \t algorithm`, where key is the [`TuneKey`]'s `Display`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::params::{Algorithm, Conv2dGeometry, Conv2dParams};
use crate::tensor::Tensor;

/// A conv shape bucket: exact in everything that changes a kernel's structure, spatial
/// sizes and batch rounded up to powers of two.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TuneKey(String);

impl TuneKey {
    /// The bucket of a conv2d geometry: batch `N` and input `H`, `W` rounded up to powers of
    /// two; channels, groups, kernel, stride, dilation and padding kept exact.
    pub fn conv2d(g: &Conv2dGeometry) -> Self {
        let b = |v: u32| v.next_power_of_two();
        let p = g.pads;
        TuneKey(format!(
            "conv2d n{} c{}>{} g{} k{}x{} s{}x{} d{}x{} p{},{},{},{} hw{}x{}",
            b(g.n),
            g.c_in,
            g.c_out,
            g.groups,
            g.kh,
            g.kw,
            g.stride[0],
            g.stride[1],
            g.dilation[0],
            g.dilation[1],
            p.top,
            p.left,
            p.bottom,
            p.right,
            b(g.h),
            b(g.w)
        ))
    }
}

impl std::fmt::Display for TuneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The per-context tuner state.
#[derive(Debug, Default)]
pub(crate) struct Autotuner {
    enabled: AtomicBool,
    table: RwLock<HashMap<TuneKey, Algorithm>>,
    path: Mutex<Option<PathBuf>>,
    /// Shapes measured by this context (not loaded from a file).
    measured: AtomicUsize,
}

impl GpuContext {
    /// Turns the autotuner on or off for `Algorithm::Auto` (off by default: `Auto` then
    /// uses the heuristic [`Algorithm::choose`]). The first call per bucketed shape then
    /// times each applicable algorithm (a few runs each) before it runs.
    pub fn autotune(&self, on: bool) {
        self.tuner.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether the autotuner is on (see `autotune`).
    pub fn autotune_enabled(&self) -> bool {
        self.tuner.enabled.load(Ordering::Relaxed)
    }

    /// Keeps tuning results in `path`: loads the entries for this adapter now and appends
    /// each new one. A missing file is created on the first entry.
    pub fn set_autotune_cache(&self, path: impl AsRef<Path>) -> Result<usize> {
        let path = path.as_ref().to_path_buf();
        let mut loaded = 0;
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
            let (name, backend) = self.tune_identity();
            let mut table = self.tuner.table.write().unwrap_or_else(|p| p.into_inner());
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if let [n, b, key, algo] = f[..] {
                    if n == name && b == backend {
                        if let Some(a) = Algorithm::from_name(algo).filter(|a| *a != Algorithm::Auto) {
                            table.insert(TuneKey(key.to_string()), a);
                            loaded += 1;
                        }
                    }
                }
            }
        }
        *self.tuner.path.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
        Ok(loaded)
    }

    /// Number of shapes this context has timed (cache hits and file entries not counted).
    pub fn autotune_measurements(&self) -> usize {
        self.tuner.measured.load(Ordering::Relaxed)
    }

    /// The remembered choice for `g`, if any.
    pub fn tuned_algorithm(&self, g: &Conv2dGeometry) -> Option<Algorithm> {
        self.tuner.table.read().unwrap_or_else(|p| p.into_inner()).get(&TuneKey::conv2d(g)).copied()
    }

    fn tune_identity(&self) -> (String, String) {
        let i = self.adapter_info();
        (i.name.replace('\t', " "), format!("{:?}", i.backend))
    }

    /// The fastest applicable algorithm for `g` (measured on first use of its bucket).
    pub(crate) fn tune_conv2d(&self, g: &Conv2dGeometry, params: &Conv2dParams, with_bias: bool) -> Result<Algorithm> {
        if let Some(a) = self.tuned_algorithm(g) {
            return Ok(a);
        }
        let candidates: Vec<Algorithm> =
            Algorithm::ALL.into_iter().filter(|a| a.unsupported_reason(g).is_none()).collect();
        let best = if candidates.len() == 1 {
            candidates[0]
        } else {
            // Scratch tensors (zero-filled by wgpu): timing does not depend on the values,
            // and the caller's buffers stay untouched.
            let x = Tensor::empty(self, &[g.n as usize, g.c_in as usize, g.h as usize, g.w as usize])?;
            let w =
                Tensor::empty(self, &[g.c_out as usize, g.c_in_per_group() as usize, g.kh as usize, g.kw as usize])?;
            let b = if with_bias { Some(Tensor::empty(self, &[g.c_out as usize])?) } else { None };
            let y = Tensor::empty(self, &g.output_shape())?;
            let opts = crate::timing::TimingOptions {
                warmup: 1,
                runs: 3,
                min_time: std::time::Duration::ZERO,
                wall_clock: false,
            };
            let mut best = (f64::INFINITY, candidates[0]);
            for a in candidates {
                let p = Conv2dParams { algorithm: a, ..*params };
                let timed = crate::timing::time_op(self, &opts, |enc| {
                    crate::ops::conv2d::conv2d_into(self, enc, &x, &w, b.as_ref(), &p, &y).map(|_| ())
                });
                // A candidate that cannot run here (e.g. its workspace is too large) is not chosen.
                if let Ok((times, _)) = timed {
                    let median = crate::timing::summarize(&times).0;
                    if median < best.0 {
                        best = (median, a);
                    }
                }
            }
            self.tuner.measured.fetch_add(1, Ordering::Relaxed);
            best.1
        };
        let key = TuneKey::conv2d(g);
        self.tuner.table.write().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), best);
        if let Some(path) = self.tuner.path.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            use std::io::Write;
            let (name, backend) = self.tune_identity();
            let line = format!("{name}\t{backend}\t{key}\t{}\n", best.name());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        }
        Ok(best)
    }
}
