//! The performance report: `performance.json` (the collected [`MetricsData`]) and
//! `performance.html`, a self-contained page (inline CSS and SVG, no scripts) with the
//! measured bus bandwidth against its floor and anchor, one plot per series — e.g. NCCL bus
//! bandwidth against message size with the floor and anchor lines — and a table of scalar
//! metrics.

use std::fmt::Write as _;

use super::ReportError;
use crate::runner::case::{MetricsData, Phase, Series};
use crate::runner::result::RunReport;

pub fn render_json(metrics: &MetricsData) -> Result<String, ReportError> {
    serde_json::to_string_pretty(metrics)
        .map(|s| s + "\n")
        .map_err(|e| ReportError::Render {
            what: "performance JSON",
            message: e.to_string(),
        })
}

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for display: integers without decimals, else up to 2 decimals.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Bytes with binary units: 8 B, 4 KiB, 1 MiB, 8 GiB.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{} {}", num(v), UNITS[i])
}

const W: f64 = 720.0;
const H: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 50.0;

/// "Nice" tick step for a linear axis up to `max`.
fn nice_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// One series as an inline SVG with its floor line.
pub fn svg_plot(s: &Series) -> String {
    svg_plot_with(s, None)
}

/// A dashed horizontal reference line with a label at the right end.
fn hline(svg: &mut String, class: &str, y: f64, color: &str, label: &str) {
    let _ = write!(
        svg,
        r##"<line class="{class}" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{color}" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" font-size="11" fill="{color}" text-anchor="end">{}</text>"##,
        W - RIGHT,
        W - RIGHT - 4.0,
        y - 4.0,
        escape(label)
    );
}

/// One series as an inline SVG, with the floor (`threshold`) and an optional anchor line.
/// X is log2 when every x is positive and the range spans more than 16x (message sizes),
/// linear otherwise; Y is linear from 0.
pub fn svg_plot_with(s: &Series, anchor: Option<f64>) -> String {
    let mut pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(&s.name)
    );
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>"##
    );
    if pts.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">no data</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    let (xmin, xmax) = (pts[0].0, pts[pts.len() - 1].0);
    let log = xmin > 0.0 && xmax / xmin > 16.0;
    let fx = |x: f64| -> f64 {
        let (a, b, v) = if log {
            (xmin.log2(), xmax.log2(), x.log2())
        } else {
            (xmin, xmax, x)
        };
        if b > a {
            LEFT + (v - a) / (b - a) * pw
        } else {
            LEFT + pw / 2.0
        }
    };
    let ymax_data = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let anchor = anchor.filter(|a| a.is_finite());
    let ymax_raw = ymax_data
        .max(s.threshold.filter(|t| t.is_finite()).unwrap_or(0.0))
        .max(anchor.unwrap_or(0.0))
        .max(1e-9)
        * 1.1;
    let step = nice_step(ymax_raw, 5.0);
    let ymax = (ymax_raw / step).ceil() * step;
    let fy = |y: f64| -> f64 { TOP + ph - (y.max(0.0) / ymax) * ph };
    // Y grid and labels.
    let mut y = 0.0;
    while y <= ymax + step / 2.0 {
        let py = fy(y);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            py + 4.0,
            num(y)
        );
        y += step;
    }
    // X labels: powers of two (thinned to at most 10, ending at the largest) on log axes,
    // else 5 ticks.
    let xticks: Vec<f64> = if log {
        let (a, b) = (xmin.log2().ceil() as i64, xmax.log2().floor() as i64);
        let every = (((b - a) / 10) + 1).max(1);
        (a..=b)
            .filter(|e| (b - e) % every == 0)
            .map(|e| 2f64.powi(e as i32))
            .collect()
    } else {
        (0..=4)
            .map(|i| xmin + (xmax - xmin) * f64::from(i) / 4.0)
            .collect()
    };
    for x in xticks {
        let px = fx(x);
        let label = if log { bytes(x) } else { num(x) };
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="#999"/><text x="{px:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 4.0,
            TOP + ph + 16.0,
            escape(&label)
        );
    }
    // Axis titles.
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 10.0,
        escape(&s.x_label)
    );
    let _ = write!(
        svg,
        r#"<text x="14" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        escape(&s.y_label)
    );
    // Floor and anchor.
    if let Some(t) = s.threshold.filter(|t| t.is_finite()) {
        hline(
            &mut svg,
            "threshold",
            fy(t),
            "#c0392b",
            &format!("floor {}", num(t)),
        );
    }
    if let Some(a) = anchor {
        hline(
            &mut svg,
            "anchor",
            fy(a),
            "#1e7e34",
            &format!("anchor {}", num(a)),
        );
    }
    // Data.
    let line: Vec<String> = pts
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", fx(*x), fy(*y)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline class="data" fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        line.join(" ")
    );
    for (x, y) in &pts {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f77b4"><title>{}: {}</title></circle>"##,
            fx(*x),
            fy(*y),
            escape(&if log { bytes(*x) } else { num(*x) }),
            num(*y)
        );
    }
    svg.push_str("</svg>");
    svg
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}\
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.passed{color:#1e7e34}.failed{color:#c0392b}.skipped,.interrupted{color:#777}figure{margin:1.5rem 0}";

/// A case's large-message bus bandwidth with the floor and anchor it was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRow {
    pub case_id: String,
    pub nodes: Option<f64>,
    pub measured: Option<f64>,
    pub floor: Option<(f64, bool)>,
    pub anchor: Option<(f64, bool)>,
}

/// Cases that recorded a floor or a large-message figure, in case order.
pub fn floor_rows(m: &MetricsData) -> Vec<FloorRow> {
    m.values
        .iter()
        .filter(|(_, v)| {
            v.contains_key("floorBusBandwidthGBps")
                || v.contains_key("largeMessageBusBandwidthGBps")
        })
        .map(|(case, v)| {
            let fig = |k: &str| {
                v.get(&format!("{k}BusBandwidthGBps")).map(|x| {
                    (
                        *x,
                        v.get(&format!("{k}IsEstimate")).is_some_and(|e| *e != 0.0),
                    )
                })
            };
            FloorRow {
                case_id: case.clone(),
                nodes: v.get("nodes").copied(),
                measured: v.get("largeMessageBusBandwidthGBps").copied(),
                floor: fig("floor"),
                anchor: fig("anchor"),
            }
        })
        .collect()
}

fn figure_cell(f: Option<(f64, bool)>) -> String {
    match f {
        Some((v, true)) => format!("{} (estimate)", num(v)),
        Some((v, false)) => num(v),
        None => "—".to_string(),
    }
}

/// The "measured against floor and anchor" table.
fn floors_table(rows: &[FloorRow]) -> String {
    let mut h = String::from(
        "<h2>Bus bandwidth against floor and anchor</h2>\n<p>Lowest out-of-place busbw at or above the large-message size, against the recipe's floor and the published (or derived) anchor for this accelerator and fabric; sources are in the case messages.</p>\n<table class=\"floors\">\n<tr><th>Case</th><th>Nodes</th><th>Measured (GB/s)</th><th>Floor (GB/s)</th><th>Anchor (GB/s)</th><th>Of anchor</th></tr>\n",
    );
    for r in rows {
        let class = match (r.measured, r.floor) {
            (Some(m), Some((f, _))) if m >= f => "passed",
            (_, Some(_)) => "failed",
            _ => "skipped",
        };
        let of_anchor = match (r.measured, r.anchor) {
            (Some(m), Some((a, _))) if a > 0.0 => format!("{}%", num((100.0 * m / a).round())),
            _ => "—".to_string(),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num {class}\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&r.case_id),
            r.nodes.map(num).unwrap_or_else(|| "—".to_string()),
            r.measured.map(num).unwrap_or_else(|| "—".to_string()),
            figure_cell(r.floor),
            figure_cell(r.anchor),
            of_anchor
        );
    }
    h.push_str("</table>\n");
    h
}

/// The self-contained HTML page.
pub fn render_html(report: &RunReport) -> String {
    let m = &report.metrics;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>aiconform performance report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.recipe)
    );
    let _ = writeln!(
        h,
        "<h1>Performance report</h1>\n<p>Recipe <code>{}</code>, aiconform {}. Run summary: {}.</p>",
        escape(&report.recipe),
        escape(&report.tool_version),
        escape(&report.summary().to_string())
    );
    h.push_str(&super::overview::render_section(report));
    h.push_str(&super::nodes::render_grid(report));
    let perf: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.spec.phase == Phase::Performance)
        .collect();
    if !perf.is_empty() {
        h.push_str("<h2>Performance cases</h2>\n<table>\n<tr><th>Case</th><th>Status</th><th>Message</th></tr>\n");
        for r in perf {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&r.spec.id),
                r.status.as_str(),
                r.status.as_str(),
                escape(&r.message)
            );
        }
        h.push_str("</table>\n");
    }
    let floors = floor_rows(m);
    if !floors.is_empty() {
        h.push_str(&floors_table(&floors));
    }
    if m.series.is_empty() && m.values.is_empty() {
        h.push_str("<p>No performance data was collected in this run.</p>\n");
    }
    for s in &m.series {
        let anchor = m
            .values
            .get(&s.case_id)
            .and_then(|v| v.get("anchorBusBandwidthGBps"))
            .copied();
        let _ = writeln!(
            h,
            "<figure>\n<figcaption><strong>{}</strong> ({})</figcaption>\n{}\n</figure>",
            escape(&s.name),
            escape(&s.case_id),
            svg_plot_with(s, anchor)
        );
    }
    if !m.values.is_empty() {
        h.push_str(
            "<h2>Measurements</h2>\n<table>\n<tr><th>Case</th><th>Metric</th><th>Value</th></tr>\n",
        );
        for (case, values) in &m.values {
            for (name, v) in values {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                    escape(case),
                    escape(name),
                    num(*v)
                );
            }
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series {
            case_id: "fabric/nccl-all-reduce-bw".into(),
            name: "all_reduce bus bandwidth <8 GPUs>".into(),
            x_label: "message size".into(),
            y_label: "bus bandwidth (GB/s)".into(),
            points: vec![
                (8.0, 0.1),
                (1024.0, 10.0),
                (1048576.0, 200.0),
                (8589934592.0, 450.0),
            ],
            threshold: Some(420.0),
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(1.23456), "1.23");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(bytes(8.0), "8 B");
        assert_eq!(bytes(8589934592.0), "8 GiB");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn plot_has_threshold_data_and_escaped_labels() {
        let svg = svg_plot(&series());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("aria-label=\"all_reduce bus bandwidth &lt;8 GPUs&gt;\""));
        assert!(svg.contains("class=\"threshold\""));
        assert!(svg.contains("floor 420"));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">8 GiB<"), "log axis labels in bytes");
        // Points are inside the plot area.
        let poly = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for p in poly.split(' ') {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((LEFT..=W - RIGHT).contains(&x), "{x}");
            assert!((TOP..=H - BOTTOM).contains(&y), "{y}");
        }
        // The highest point is above the threshold line (smaller y).
        let ty: f64 = svg
            .split("class=\"threshold\" x1=\"70\" y1=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let last_y: f64 = poly.rsplit(',').next().unwrap().parse().unwrap();
        assert!(last_y < ty);
    }

    #[test]
    fn empty_and_degenerate_series_do_not_panic() {
        let mut s = series();
        s.points = vec![];
        assert!(svg_plot(&s).contains("no data"));
        s.points = vec![(1.0, f64::NAN), (2.0, 5.0)];
        s.threshold = None;
        let svg = svg_plot(&s);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("NaN"));
        s.points = vec![(4.0, 0.0), (4.0, 0.0)];
        assert!(!svg_plot(&s).contains("NaN"));
    }

    #[test]
    fn html_is_self_contained() {
        let mut report = RunReport {
            recipe: "<r>".into(),
            ..Default::default()
        };
        report.metrics.series.push(series());
        report
            .metrics
            .values
            .entry("fabric/nccl-all-reduce-bw".into())
            .or_default()
            .insert("avgBusBandwidthGBps".into(), 312.456);
        let h = render_html(&report);
        assert!(h.contains("<svg"));
        assert!(h.contains("312.46"));
        assert!(h.contains("&lt;r&gt;"));
        for forbidden in ["<script", "http://", "https://", "<link"] {
            let count = h.matches(forbidden).count();
            let allowed = if forbidden == "http://" {
                h.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
            } else {
                0
            };
            assert_eq!(count, allowed, "{forbidden}");
        }
    }

    #[test]
    fn anchor_line_sits_above_the_floor() {
        let svg = svg_plot_with(&series(), Some(478.87));
        assert!(svg.contains("class=\"anchor\"") && svg.contains("anchor 478.87"));
        let y = |class: &str| -> f64 {
            svg.split(&format!("class=\"{class}\" x1=\"70\" y1=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{class} line"))
        };
        assert!(y("anchor") < y("threshold"));
        assert!(!svg_plot_with(&series(), Some(f64::NAN)).contains("class=\"anchor\""));
    }

    #[test]
    fn floors_table_shows_measured_floor_anchor_and_estimates() {
        let mut report = RunReport::default();
        let v = report
            .metrics
            .values
            .entry("performance/nccl-all-reduce-bw".into())
            .or_default();
        for (k, x) in [
            ("largeMessageBusBandwidthGBps", 182.4),
            ("floorBusBandwidthGBps", 160.0),
            ("floorIsEstimate", 1.0),
            ("anchorBusBandwidthGBps", 200.0),
            ("anchorIsEstimate", 1.0),
            ("nodes", 2.0),
        ] {
            v.insert(k.into(), x);
        }
        report
            .metrics
            .values
            .entry("other/case".into())
            .or_default()
            .insert("latencyMs".into(), 3.0);
        let rows = floor_rows(&report.metrics);
        assert_eq!(
            rows,
            [FloorRow {
                case_id: "performance/nccl-all-reduce-bw".into(),
                nodes: Some(2.0),
                measured: Some(182.4),
                floor: Some((160.0, true)),
                anchor: Some((200.0, true)),
            }]
        );
        let h = render_html(&report);
        assert!(h.contains("Bus bandwidth against floor and anchor"));
        assert!(h.contains("<td class=\"num passed\">182.4</td><td class=\"num\">160 (estimate)</td><td class=\"num\">200 (estimate)</td><td class=\"num\">91%</td>"), "{h}");
        // Below the floor the measured cell is marked failed.
        let v = report
            .metrics
            .values
            .get_mut("performance/nccl-all-reduce-bw")
            .expect("case");
        v.insert("largeMessageBusBandwidthGBps".into(), 4.1);
        assert!(render_html(&report).contains("<td class=\"num failed\">4.1</td>"));
        // No floor data: no table.
        assert!(!render_html(&RunReport::default()).contains("against floor"));
    }
}
