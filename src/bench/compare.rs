//! `wgconv compare`: the tables of BENCHMARKS.md from bench JSON, never copied by hand. Each
//! side is one or more runs (`wgconv bench --json`, or a peer's array of `{id, median_ms}` as
//! `../shared/peers/burn-wgpu` writes it); a case's time on a side is its fastest median over
//! that side's runs (the rounds of an interleaved measurement); the table gives each side's
//! time and its ratio to the first side's, and the geometric mean of the ratios over the cases
//! every side has.

use std::collections::BTreeMap;
use std::path::Path;

/// What goes wrong comparing: a file that cannot be read or parsed, too few sides (the
/// message names the file).
pub type Result<T> = std::result::Result<T, String>;

/// One side of a comparison: a name and each case's time (ms), cases in first-seen order.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    /// The side's column title (the first file's stem unless named).
    pub name: String,
    /// (case key, fastest median in ms), in the order the runs list them.
    pub times: Vec<(String, f64)>,
}

/// A row of a run: its key and its median (None when the case did not run).
fn rows_of(v: &serde_json::Value, file: &Path) -> Result<Vec<(String, Option<f64>)>> {
    let bad = |why: &str| format!("{}: {why}", file.display());
    // wgconv bench --json: {adapter, ..., results: [{id, op, algorithm, status, median_ms, dtype}]}
    if let Some(results) = v.get("results").and_then(|r| r.as_array()) {
        let rows: Vec<(String, String, &serde_json::Value)> = results
            .iter()
            .map(|r| {
                let s = |k: &str| r.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
                let mut key = s("id");
                if s("op").ends_with("_backward") {
                    key += " backward";
                }
                if s("dtype") == "f16" {
                    key += " f16";
                }
                (key, s("algorithm"), r)
            })
            .collect();
        // a run of several algorithms per case (--algo all) keys each by its algorithm
        let mut algorithms: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (key, algorithm, _) in &rows {
            algorithms.entry(key).or_default().push(algorithm);
        }
        return Ok(rows
            .iter()
            .map(|(key, algorithm, r)| {
                let key = if algorithms[key.as_str()].len() > 1 { format!("{key} {algorithm}") } else { key.clone() };
                let ok = r.get("status").and_then(|s| s.as_str()) == Some("ok");
                (key, r.get("median_ms").and_then(|m| m.as_f64()).filter(|_| ok))
            })
            .collect());
    }
    // a peer's [{id, median_ms, ...}]
    if let Some(rows) = v.as_array() {
        return rows
            .iter()
            .map(|r| {
                let id = r.get("id").and_then(|x| x.as_str()).ok_or_else(|| bad("a row without an id"))?;
                Ok((id.to_string(), r.get("median_ms").and_then(|m| m.as_f64())))
            })
            .collect();
    }
    Err(bad("neither a wgconv bench report (results) nor a peer's array of {id, median_ms}"))
}

impl Side {
    /// The side made of the runs in `files` (each a JSON file), named `name` or after the
    /// first file. Errors: a file that cannot be read or is neither format.
    pub fn load(files: &[&Path], name: Option<&str>) -> Result<Side> {
        let first = files.first().ok_or("a side without a file")?;
        let mut times: Vec<(String, f64)> = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            for (key, ms) in rows_of(&v, file)? {
                let Some(ms) = ms.filter(|m| m.is_finite()) else { continue };
                match times.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, t)) => *t = t.min(ms),
                    None => times.push((key, ms)),
                }
            }
        }
        let stem = first.file_stem().map_or_else(|| first.display().to_string(), |s| s.to_string_lossy().into());
        Ok(Side { name: name.map_or(stem, str::to_string), times })
    }

    fn time(&self, key: &str) -> Option<f64> {
        self.times.iter().find(|(k, _)| k == key).map(|(_, t)| *t)
    }
}

/// The table of `sides` (at least two): a row per case of the first side, each side's time in
/// ms and, for every side after the first, its time over the first side's (`×`); the last row
/// the geometric mean of each ratio over the cases all sides have. GitHub markdown when
/// `markdown`, else aligned text.
pub fn table(sides: &[Side], markdown: bool) -> Result<String> {
    let [base, others @ ..] = sides else { return Err("compare needs at least two sides".into()) };
    if others.is_empty() {
        return Err("compare needs at least two sides".into());
    }
    let mut header = vec!["case".to_string()];
    header.extend(sides.iter().map(|s| format!("{} ms", s.name)));
    header.extend(others.iter().map(|s| format!("{} / {}", s.name, base.name)));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut logs = vec![(0.0f64, 0usize); others.len()];
    for (key, t0) in &base.times {
        let times: Vec<Option<f64>> = others.iter().map(|s| s.time(key)).collect();
        let mut row = vec![key.clone(), format!("{t0:.3}")];
        row.extend(times.iter().map(|t| t.map_or("-".to_string(), |t| format!("{t:.3}"))));
        row.extend(times.iter().map(|t| t.map_or("-".to_string(), |t| format!("{:.2}×", t / t0))));
        if times.iter().all(Option::is_some) {
            for (l, t) in logs.iter_mut().zip(&times) {
                l.0 += (t.expect("all some") / t0).ln();
                l.1 += 1;
            }
        }
        rows.push(row);
    }
    let mut mean = vec![format!("geometric mean ({} cases)", logs.first().map_or(0, |l| l.1))];
    mean.extend(sides.iter().map(|_| String::new()));
    mean.extend(
        logs.iter().map(|&(sum, n)| if n == 0 { "-".into() } else { format!("{:.2}×", (sum / n as f64).exp()) }),
    );
    rows.push(mean);
    Ok(render(&header, &rows, markdown))
}

fn render(header: &[String], rows: &[Vec<String>], markdown: bool) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, s)| if c == 0 { format!("{s:<w$}", w = widths[c]) } else { format!("{s:>w$}", w = widths[c]) })
            .collect();
        if markdown {
            format!("| {} |\n", padded.join(" | "))
        } else {
            format!("{}\n", padded.join("  ").trim_end())
        }
    };
    let mut s = line(header);
    if markdown {
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(c, &w)| if c == 0 { "-".repeat(w) } else { format!("{}:", "-".repeat(w.saturating_sub(1))) })
            .collect();
        s += &format!("| {} |\n", rule.join(" | "));
    }
    for r in rows {
        s += &line(r);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(name: &str, times: &[(&str, f64)]) -> Side {
        Side { name: name.into(), times: times.iter().map(|(k, t)| (k.to_string(), *t)).collect() }
    }

    #[test]
    fn ratios_and_their_geometric_mean_over_the_cases_both_sides_have() {
        let a = side("wgconv", &[("r50_c3", 10.0), ("mbv2_dw", 2.0), ("dcgan_up", 4.0)]);
        let b = side("burn", &[("r50_c3", 40.0), ("mbv2_dw", 2.0)]);
        let t = table(&[a.clone(), b.clone()], true).unwrap();
        assert!(t.contains("| r50_c3 ") && t.contains("4.00×") && t.contains("1.00×"), "{t}");
        // dcgan_up has no burn time: a dash, and the mean is over the two shared cases, √4 = 2
        assert!(t.lines().any(|l| l.starts_with("| dcgan_up") && l.contains(" - ")), "{t}");
        assert!(t.lines().last().unwrap().contains("geometric mean (2 cases)") && t.contains("2.00×"), "{t}");
        assert!(table(&[a], false).is_err());
    }

    #[test]
    fn runs_of_a_side_keep_each_cases_fastest_median_and_read_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let run = |name: &str, ms: f64| {
            let p = dir.path().join(name);
            let v = serde_json::json!({"adapter": "x", "results": [
                {"id": "r50_c3", "op": "conv2d", "algorithm": "winograd", "status": "ok", "median_ms": ms, "dtype": "f32"},
                {"id": "r50_c3", "op": "conv2d_backward", "algorithm": "auto", "status": "ok", "median_ms": 3.0 * ms, "dtype": "f32"},
                {"id": "seg_hr", "op": "conv2d", "algorithm": "auto", "status": "n/a: no", "median_ms": null, "dtype": "f32"},
            ]});
            std::fs::write(&p, v.to_string()).unwrap();
            p
        };
        let (r1, r2) = (run("round1.json", 12.0), run("round2.json", 10.0));
        let s = Side::load(&[&r1, &r2], None).unwrap();
        assert_eq!(s.name, "round1");
        assert_eq!(s.times, vec![("r50_c3".into(), 10.0), ("r50_c3 backward".into(), 30.0)]);
        let peer = dir.path().join("burn.json");
        std::fs::write(&peer, r#"[{"id": "r50_c3", "median_ms": 25.0, "gflops": 1.0, "runs": 10}]"#).unwrap();
        let p = Side::load(&[&peer], Some("burn")).unwrap();
        assert_eq!(p.times, vec![("r50_c3".into(), 25.0)]);
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"what": 1}"#).unwrap();
        assert!(Side::load(&[&bad], None).unwrap_err().contains("neither"));
    }
}
