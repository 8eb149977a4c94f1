//! Comparing a GPU result with the f64 CPU reference, and the seeded generator tests use.
//!
//! Tolerance story: the GPU accumulates in f32 in an order of its own, the reference in f64.
//! For a dot product of length K the f32 rounding error grows roughly like √K·2⁻²⁴·Σ|terms|,
//! so the default bounds — relative L2 ≤ 1e-5 and max-abs ≤ 1e-4·(1 + max|ref|) — hold with
//! a wide margin for K up to ~10⁵ with inputs of unit scale, and fail on any indexing error.

/// Error statistics of `actual` against `reference`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorStats {
    /// max |actual − reference| (∞ if NaN/∞ appear where the reference has a finite value,
    /// or a finite value where the reference has NaN/∞).
    pub max_abs: f64,
    /// ‖actual − reference‖₂ / max(‖reference‖₂, tiny).
    pub rel_l2: f64,
    /// max |reference| over finite reference values.
    pub max_ref: f64,
    /// Values compared.
    pub count: usize,
}

/// Pass/fail bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Largest relative L2 error passed (as [`ErrorStats::rel_l2`]).
    pub rel_l2: f64,
    /// Max-abs bound is `abs · (1 + max|ref|)`.
    pub abs: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { rel_l2: 1e-5, abs: 1e-4 }
    }
}

impl ErrorStats {
    /// Whether both errors are within `tol` (a non-finite value where the reference's kind
    /// differs makes `max_abs` infinite, so it fails).
    pub fn passes(&self, tol: Tolerance) -> bool {
        self.rel_l2 <= tol.rel_l2 && self.max_abs <= tol.abs * (1.0 + self.max_ref)
    }
}

impl std::fmt::Display for ErrorStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max-abs {:.3e}, rel-L2 {:.3e} over {} values (max |ref| {:.3e})",
            self.max_abs, self.rel_l2, self.count, self.max_ref
        )
    }
}

/// Compares element by element. Lengths must match (a mismatch is an infinite error).
/// Non-finite reference values must be matched exactly in kind (NaN with NaN, +∞ with +∞).
pub fn compare(actual: &[f32], reference: &[f64]) -> ErrorStats {
    if actual.len() != reference.len() {
        return ErrorStats { max_abs: f64::INFINITY, rel_l2: f64::INFINITY, max_ref: 0.0, count: actual.len() };
    }
    let (mut max_abs, mut diff2, mut ref2, mut max_ref) = (0f64, 0f64, 0f64, 0f64);
    for (&a, &r) in actual.iter().zip(reference) {
        let a = a as f64;
        if !r.is_finite() {
            let same = (r.is_nan() && a.is_nan()) || r == a;
            if !same {
                max_abs = f64::INFINITY;
                diff2 = f64::INFINITY;
            }
            continue;
        }
        let d = (a - r).abs();
        let d = if d.is_nan() { f64::INFINITY } else { d };
        max_abs = max_abs.max(d);
        diff2 += d * d;
        ref2 += r * r;
        max_ref = max_ref.max(r.abs());
    }
    let rel_l2 = diff2.sqrt() / ref2.sqrt().max(1e-30);
    ErrorStats { max_abs, rel_l2, max_ref, count: actual.len() }
}

/// splitmix64: a tiny seeded generator, identical on every platform.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed` (the same sequence on every platform).
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_catches_errors() {
        let r = [1.0f64, -2.0, 3.0];
        assert!(compare(&[1.0, -2.0, 3.0], &r).passes(Tolerance::default()));
        assert!(!compare(&[1.0, -2.0, 3.001], &r).passes(Tolerance::default()));
        assert!(!compare(&[1.0, f32::NAN, 3.0], &r).passes(Tolerance::default()));
        assert!(!compare(&[1.0, -2.0], &r).passes(Tolerance::default()));
        assert!(compare(&[f32::NAN, f32::INFINITY], &[f64::NAN, f64::INFINITY]).passes(Tolerance::default()));
        assert!(!compare(&[f32::INFINITY], &[f64::NEG_INFINITY]).passes(Tolerance::default()));
    }
}
