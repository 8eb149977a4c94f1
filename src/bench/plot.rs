//! The bench report's charts, drawn by plotters into SVG: GFLOP/s per case (a bar per
//! algorithm, the GEMM ceiling as a line) and a roofline (GFLOP/s against arithmetic
//! intensity, under the adapter's measured GEMM and copy ceilings).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{CaseResult, Report};
use crate::error::{Error, Result};

/// Bar and point colours, one per algorithm (Paul Tol's bright scheme: told apart in
/// grey and by most colour-blind readers).
const COLORS: [RGBColor; 6] = [
    RGBColor(0x44, 0x77, 0xaa),
    RGBColor(0xee, 0x66, 0x77),
    RGBColor(0x22, 0x88, 0x33),
    RGBColor(0xcc, 0xbb, 0x44),
    RGBColor(0x66, 0xcc, 0xee),
    RGBColor(0xaa, 0x33, 0x77),
];
const CEILING: RGBColor = RGBColor(0xbb, 0x00, 0x00);

fn plot_error<E: std::fmt::Display>(e: E) -> Error {
    Error::Internal(format!("drawing the chart: {e}"))
}

/// The cases that ran, their ids in suite order and the algorithms (sorted).
fn ran(report: &Report) -> (Vec<&CaseResult>, Vec<&str>, Vec<&str>) {
    let rows: Vec<&CaseResult> = report.results.iter().filter(|r| r.ok() && r.gflops.is_finite()).collect();
    let mut ids: Vec<&str> = Vec::new();
    for r in &rows {
        if !ids.contains(&r.id.as_str()) {
            ids.push(&r.id);
        }
    }
    let mut algos: Vec<&str> = rows.iter().map(|r| r.algorithm.as_str()).collect();
    algos.sort();
    algos.dedup();
    (rows, ids, algos)
}

fn title(report: &Report, what: &str) -> String {
    format!("wgconv {what} on {} ({})", report.adapter, report.backend)
}

/// Horizontal bars of median GFLOP/s: a row per case (suite order, top to bottom), a bar
/// per algorithm in it, the GEMM ceiling as a dashed vertical line.
pub(super) fn throughput_svg(report: &Report) -> Result<String> {
    let (rows, ids, algos) = ran(report);
    let ceiling = report.ceilings.as_ref().map(|c| (c.gemm_size, c.gemm_gflops));
    let peak = rows.iter().map(|r| r.gflops).chain(ceiling.map(|c| c.1)).fold(0.0f64, f64::max).max(1e-9);
    let row_h = 12 * algos.len().max(1) as u32 + 10;
    // the legend below the bars, in rows of its own (an entry per algorithm and the ceiling)
    let legend_rows = (16 * (algos.len() + 1) as u32 + 24).div_ceil(row_h);
    let (w, h) = (960u32, 90 + row_h * (ids.len().max(1) as u32 + legend_rows));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let label_w = ids.iter().map(|s| s.chars().count() as u32 * 7 + 16).max().unwrap_or(40).max(40);
        let n = ids.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title(report, "conv throughput"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0.0..peak * 1.1, -(legend_rows as f64)..n)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(0)
            .x_desc("GFLOP/s (median)")
            .x_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(plot_error)?;
        // row i spans y ∈ [n−i−1, n−i]; its bars (the algorithms that ran it, in order)
        // share 0.8 of it, each as tall as in the row with the most
        let per_row = ids.iter().map(|id| rows.iter().filter(|r| r.id == *id).count()).max().unwrap_or(1);
        let bar = 0.8 / per_row.max(1) as f64;
        let place = |r: &CaseResult| {
            let i = ids.iter().position(|id| *id == r.id).unwrap_or(0);
            let in_row: Vec<&&CaseResult> = rows.iter().filter(|o| o.id == r.id).collect();
            let k = in_row.iter().position(|o| o.algorithm == r.algorithm).unwrap_or(0);
            let top = n - i as f64 - 0.5 + bar * in_row.len() as f64 / 2.0;
            top - bar * k as f64
        };
        for (k, a) in algos.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let mine = || rows.iter().filter(|r| r.algorithm == *a);
            let bars = mine().map(|r| Rectangle::new([(0.0, place(r) - bar), (r.gflops, place(r))], color.filled()));
            chart
                .draw_series(bars)
                .map_err(plot_error)?
                .label(*a)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
            let values = mine().map(|r| {
                EmptyElement::at((r.gflops, place(r) - bar / 2.0))
                    + Text::new(
                        tick(r.gflops),
                        (4, 0),
                        TextStyle::from(("sans-serif", 10).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
                    )
            });
            chart.draw_series(values).map_err(plot_error)?;
        }
        if let Some((size, gflops)) = ceiling {
            chart
                .draw_series(DashedLineSeries::new([(gflops, 0.0), (gflops, n)], 6, 4, CEILING.stroke_width(1)))
                .map_err(plot_error)?
                .label(format!("GEMM {size}³ ceiling {gflops:.2} GFLOP/s"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], CEILING));
        }
        // case ids left of their rows (pixel positions from the chart's coordinates)
        let font = TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, id) in ids.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, n - i as f64 - 0.5));
            root.draw(&Text::new(id.to_string(), (x - 6, y), font.clone())).map_err(plot_error)?;
        }
        legend(&mut chart)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// A roofline: each case that ran as a point (GFLOP/s against FLOPs per byte of its
/// inputs, weights and outputs, log–log), under min(GEMM ceiling, intensity × copy
/// bandwidth) when the report has ceilings.
pub(super) fn roofline_svg(report: &Report) -> Result<String> {
    let (rows, _, algos) = ran(report);
    let points: Vec<(&CaseResult, f64)> =
        rows.iter().filter(|r| r.bytes > 0.0 && r.gflops > 0.0).map(|r| (*r, r.flops / r.bytes)).collect();
    // (GEMM GFLOP/s, copy GB/s, GEMM size) where both were measured to something positive
    let roof = report
        .ceilings
        .as_ref()
        .map(|c| (c.gemm_gflops, c.copy_gbps, c.gemm_size))
        .filter(|(g, b, _)| g.is_finite() && b.is_finite() && *g > 0.0 && *b > 0.0);
    let ai = points.iter().map(|p| p.1).chain(roof.map(|(g, b, _)| g / b));
    let (ai_lo, ai_hi) = ai.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (ai_lo, ai_hi) = decades(ai_lo, ai_hi);
    let gf = points.iter().map(|p| p.0.gflops).chain(roof.map(|r| r.0));
    let (g_lo, g_hi) = gf.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (g_lo, g_hi) = decades(g_lo, g_hi);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title(report, "roofline"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((ai_lo..ai_hi).log_scale(), (g_lo..g_hi).log_scale())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .light_line_style(BLACK.mix(0.04))
            .x_desc("arithmetic intensity (FLOP per byte of input, weight and output)")
            .y_desc("GFLOP/s (median)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(plot_error)?;
        if let Some((gemm, copy, size)) = roof {
            // memory-bound left of the ridge (intensity × bandwidth), compute-bound right of it;
            // the slope starts where it enters the plot (plotters moves points outside the
            // area onto its edge rather than clipping the line)
            let x0 = ai_lo.max(g_lo / copy);
            let ridge = gemm / copy;
            let line = [x0, ridge.clamp(x0, ai_hi), ai_hi].map(|x| (x, (x * copy).min(gemm)));
            chart
                .draw_series(LineSeries::new(line, CEILING.stroke_width(2)))
                .map_err(plot_error)?
                .label(format!("roof: measured {size}³ GEMM {gemm:.2} GFLOP/s, copy {copy:.2} GB/s"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], CEILING.stroke_width(2)));
        }
        for (k, a) in algos.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let series = points.iter().filter(|(r, _)| r.algorithm == *a).map(|(r, ai)| {
                EmptyElement::at((*ai, r.gflops))
                    + Circle::new((0, 0), 4, color.filled())
                    + Text::new(r.id.clone(), (6, -6), ("sans-serif", 10))
            });
            chart
                .draw_series(series)
                .map_err(plot_error)?
                .label(*a)
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, color.filled()));
        }
        legend(&mut chart)?;
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn legend<'a, X, Y>(chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(plot_error)
}

/// The powers of ten around `lo ..= hi` with room for a point's label (0.1 .. 100 when
/// empty): a log axis that shows whole decades.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    if lo > hi || lo <= 0.0 {
        return (0.1, 100.0);
    }
    (10f64.powf((lo / 1.5).log10().floor()), 10f64.powf((hi * 1.5).log10().ceil()))
}

/// Axis and value labels: 3 significant figures at most, no trailing noise.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{BenchOp, Ceilings};
    use crate::tensor::DType;

    fn case(id: &str, algorithm: &str, flops: f64, bytes: f64, ms: f64) -> CaseResult {
        CaseResult {
            id: id.into(),
            op: BenchOp::Conv2d,
            algorithm: algorithm.into(),
            status: "ok".into(),
            runs: 3,
            median_ms: ms,
            min_ms: ms,
            max_ms: ms,
            timing: None,
            flops,
            gflops: flops / (ms * 1e6),
            bytes,
            gbps: bytes / (ms * 1e6),
            workspace_bytes: 0,
            check_max_err: None,
            dtype: DType::F32,
            profile: None,
        }
    }

    fn report(results: Vec<CaseResult>) -> Report {
        Report {
            adapter: "test adapter".into(),
            backend: "Vulkan".into(),
            device_type: "Cpu".into(),
            driver: String::new(),
            date_unix: 0,
            // ridge at 20 / 5 = 4 FLOP per byte
            ceilings: Some(Ceilings { gemm_size: 1024, gemm_gflops: 20.0, copy_bytes: 1 << 26, copy_gbps: 5.0 }),
            results,
        }
    }

    /// (cx, cy) of each `<circle>` in document order.
    fn circles(svg: &str) -> Vec<(f64, f64)> {
        let attr = |el: &str, name: &str| -> f64 {
            let at = el.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            el[at..at + el[at..].find('"').unwrap()].parse().unwrap()
        };
        svg.split("<circle").skip(1).map(|el| (attr(el, "cx"), attr(el, "cy"))).collect()
    }

    /// Points on the roofline land where their numbers put them: right of each other by
    /// intensity, above each other by GFLOP/s, under the roof (which bends at the ridge);
    /// failed cases are left out.
    #[test]
    fn the_roofline_puts_each_case_under_the_roof_at_its_intensity() {
        let mut failed = case("broken", "implicit_gemm", 1e9, 1e6, 1.0);
        failed.status = "error: out of memory".into();
        // memory-bound (1 FLOP/B at 4 GB/s: under the 5 GB/s slope) and compute-bound (100 FLOP/B at 10 GFLOP/s)
        let r = report(vec![
            case("thin", "implicit_gemm", 4e8, 4e8, 100.0),
            case("fat", "implicit_gemm", 1e9, 1e7, 100.0),
            failed,
        ]);
        let svg = r.roofline_svg().unwrap();
        assert!(svg.contains("thin") && svg.contains("fat") && !svg.contains("broken"), "{svg}");
        assert!(svg.contains("roof: measured 1024³ GEMM 20.00 GFLOP/s, copy 5.00 GB/s"), "{svg}");
        let c = circles(&svg);
        assert_eq!(c.len(), 3, "two cases and the legend's marker: {c:?}");
        let (thin, fat) = (c[0], c[1]);
        assert!(fat.0 > thin.0 && fat.1 < thin.1, "fat is right of and above thin: {c:?}");
        // the roof: a polyline of three points, its bend at the ridge, flat right of it
        let roof = svg.split("<polyline").find(|el| el.contains("stroke=\"#BB0000\"")).expect("the roof");
        let at = roof.find("points=\"").unwrap() + 8;
        let pts: Vec<(f64, f64)> = roof[at..at + roof[at..].find('"').unwrap()]
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(pts.len(), 3, "{pts:?}");
        assert!(pts[1].1 == pts[2].1 && pts[0].1 > pts[1].1, "rises, then flat: {pts:?}");
        assert!(pts[0].0 < thin.0 && thin.0 < pts[1].0 && pts[1].0 < fat.0, "ridge between the cases: {pts:?}");
        assert!(fat.1 > pts[2].1, "fat (10 of 20 GFLOP/s) under the flat roof: {fat:?} {pts:?}");
        // pixels from the two points (log axes: px = a + b·log10(value)): the slope starts
        // where it enters the plot (1 GFLOP/s, the axis' bottom, at 0.2 FLOP/B; not the axis'
        // left end at 0.1, which would sit below it) and bends at (4 FLOP/B, 20 GFLOP/s)
        let bx = (fat.0 - thin.0) / 2.0;
        let by = (fat.1 - thin.1) / (10f64.log10() - 4f64.log10());
        let px = |x: f64| thin.0 + bx * x.log10();
        let py = |y: f64| thin.1 + by * (y.log10() - 4f64.log10());
        for ((x, y), (want_x, want_y)) in pts.iter().zip([(0.2, 1.0), (4.0, 20.0), (1000.0, 20.0)]) {
            assert!((x - px(want_x)).abs() < 1.5 && (y - py(want_y)).abs() < 1.5, "{pts:?} at ({want_x}, {want_y})");
        }
        // thin under the slope: interpolate the roof's y at thin's x (linear in log–log)
        let roof_y = pts[0].1 + (pts[1].1 - pts[0].1) * (thin.0 - pts[0].0) / (pts[1].0 - pts[0].0);
        assert!(thin.1 > roof_y, "thin (4 of 5 GB/s) under the slope: {thin:?} {roof_y}");
    }

    /// The bars: one per case and algorithm, longer for more GFLOP/s, every id written.
    #[test]
    fn the_bars_are_as_long_as_their_gflops() {
        let r = report(vec![
            case("a", "implicit_gemm", 1e9, 1e7, 100.0),
            case("a", "winograd", 2e9, 1e7, 100.0),
            case("b", "implicit_gemm", 5e8, 1e7, 100.0),
        ]);
        let svg = r.svg().unwrap();
        for id in ["a", "b", "implicit_gemm", "winograd", "GEMM 1024³ ceiling 20.00 GFLOP/s"] {
            assert!(svg.contains(&format!("\n{id}\n</text>")), "{id}: {svg}");
        }
        // widths of the filled bars in the two algorithms' colours
        let widths = |color: &RGBColor| -> Vec<f64> {
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
            svg.split("<rect")
                .filter(|el| el.split('>').next().unwrap().contains(&fill))
                .map(|el| {
                    let at = el.find(" width=\"").unwrap() + 8;
                    el[at..at + el[at..].find('"').unwrap()].parse().unwrap()
                })
                .collect()
        };
        let (gemm, wino) = (widths(&COLORS[0]), widths(&COLORS[1]));
        // the bars (a, b) and the legend's 10-pixel box
        assert_eq!((gemm.len(), wino.len()), (3, 2), "{svg}");
        assert!((gemm[0] / gemm[1] - 2.0).abs() < 0.05, "a is 10 GFLOP/s, b 5: {gemm:?}");
        assert!((wino[0] / gemm[0] - 2.0).abs() < 0.05, "a's winograd bar twice its gemm bar: {wino:?} {gemm:?}");
    }
}
