//! `report.html`: the whole run on one self-contained page (inline CSS and SVG, no scripts,
//! no network): the verdict, each phase's counts, the CNCF AI conformance checklist, the
//! node × check grid of node-health runs, the readiness table, deployment health per component, the performance data with its plots,
//! and every case with its outcome, duration, message and evidence (attempts and the API
//! writes it made, collapsed).

use std::fmt::Write as _;

use super::markup::{STYLE, escape};
use crate::runner::case::Phase;
use crate::runner::result::{CaseResult, RunReport, Status};

/// The page.
pub fn render(report: &RunReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>aiconform report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.recipe)
    );
    let performance = report
        .results
        .iter()
        .any(|r| r.spec.phase == Phase::Performance)
        || !report.metrics.series.is_empty();
    let sections = [
        ("phases", "Phases", phases(report)),
        (
            "conformance",
            "Conformance",
            super::overview::render_section(report),
        ),
        ("nodes", "Node health", super::nodes::render_grid(report)),
        (
            "readiness",
            "Readiness",
            phase_table(
                report,
                Phase::Readiness,
                "readiness",
                "Readiness",
                "Constraint",
            ),
        ),
        (
            "deployment",
            "Deployment",
            phase_table(
                report,
                Phase::Deployment,
                "deployment",
                "Deployment health",
                "Component",
            ),
        ),
        (
            "performance",
            "Performance",
            if performance {
                super::perf::render_section(report)
            } else {
                String::new()
            },
        ),
        ("cases", "Every case", cases(report)),
        ("warnings", "Warnings", warnings(report)),
    ];
    h.push_str(&header(report));
    h.push_str("<nav>");
    for (id, title, body) in &sections {
        if !body.is_empty() {
            let _ = write!(h, "<a href=\"#{id}\">{title}</a>");
        }
    }
    h.push_str("</nav>\n");
    for (_, _, body) in sections {
        h.push_str(&body);
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Title, what was run against what, and the verdict in one line.
fn header(report: &RunReport) -> String {
    let s = report.summary();
    let verdict = if report.interrupted {
        "interrupted"
    } else if s.failed > 0 {
        "failed"
    } else {
        "passed"
    };
    let mut facts = vec![
        format!("recipe <code>{}</code>", escape(&report.recipe)),
        format!("aiconform {}", escape(&report.tool_version)),
    ];
    if let Some(v) = &report.cluster_version {
        facts.push(format!("Kubernetes {}", escape(v)));
    }
    if !report.run_id.is_empty() {
        facts.push(format!("run <code>{}</code>", escape(&report.run_id)));
    }
    if report.started_ms > 0 {
        facts.push(format!(
            "started {}, {}",
            escape(&crate::clock::timestamp(report.started_ms)),
            crate::duration::format(std::time::Duration::from_millis(
                report.finished_ms.saturating_sub(report.started_ms)
            ))
        ));
    }
    format!(
        "<h1>aiconform report</h1>\n<p>{}</p>\n<p class=\"verdict {verdict}\">Run {verdict}: {}</p>\n",
        facts.join(" · "),
        escape(&s.to_string())
    )
}

fn count(results: &[&CaseResult], status: Status) -> usize {
    results.iter().filter(|r| r.status == status).count()
}

/// Cases, outcomes and time per phase, in run order.
fn phases(report: &RunReport) -> String {
    let mut h = String::from(
        "<section id=\"phases\">\n<h2>Phases</h2>\n<table>\n<tr><th>Phase</th><th>Cases</th><th>Passed</th><th>Failed</th><th>Skipped</th><th>Time</th></tr>\n",
    );
    for phase in Phase::ALL {
        let rs: Vec<&CaseResult> = report
            .results
            .iter()
            .filter(|r| r.spec.phase == phase)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let time: std::time::Duration = rs.iter().map(|r| r.duration).sum();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num passed\">{}</td><td class=\"num failed\">{}</td><td class=\"num skipped\">{}</td><td class=\"num\">{}</td></tr>",
            phase.as_str(),
            rs.len(),
            count(&rs, Status::Passed),
            count(&rs, Status::Failed),
            count(&rs, Status::Skipped) + count(&rs, Status::Interrupted),
            seconds(time)
        );
    }
    h.push_str("</table>\n</section>\n");
    h
}

/// One row per case of `phase`: its name within the suite, outcome and message.
fn phase_table(report: &RunReport, phase: Phase, id: &str, title: &str, what: &str) -> String {
    let rs: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| r.spec.phase == phase)
        .collect();
    if rs.is_empty() {
        return String::new();
    }
    let mut h = format!(
        "<section id=\"{id}\">\n<h2>{title}</h2>\n<table>\n<tr><th>{what}</th><th>Outcome</th><th>Detail</th></tr>\n"
    );
    for r in rs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"{s}\">{s}</td><td class=\"message\">{}</td></tr>",
            escape(super::junit::case_name(&r.spec.id, &r.spec.suite)),
            escape(&r.message),
            s = r.status.as_str(),
        );
    }
    h.push_str("</table>\n</section>\n");
    h
}

fn seconds(d: std::time::Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Attempts and API writes of a case, collapsed; empty when there is nothing beyond the
/// message.
fn evidence(r: &CaseResult) -> String {
    let mut items = Vec::new();
    if r.attempts.len() > 1 {
        for (i, a) in r.attempts.iter().enumerate() {
            items.push(format!(
                "<li>attempt {} {} after {}: {}</li>",
                i + 1,
                a.status.as_str(),
                seconds(a.duration),
                escape(&a.message)
            ));
        }
    }
    for w in &r.writes {
        items.push(format!("<li><code>{}</code></li>", escape(&w.to_string())));
    }
    if r.writes_left_out > 0 {
        items.push(format!("<li>… {} more API writes</li>", r.writes_left_out));
    }
    if items.is_empty() {
        return String::new();
    }
    let what = match (r.attempts.len(), r.writes.len() + r.writes_left_out) {
        (a, 0) => format!("{a} attempts"),
        (a, w) if a > 1 => format!("{a} attempts, {w} API writes"),
        (_, w) => format!("{w} API writes"),
    };
    format!(
        "<details><summary>{what}</summary><ul>{}</ul></details>",
        items.concat()
    )
}

/// Every case in run order.
fn cases(report: &RunReport) -> String {
    let mut h = String::from(
        "<section id=\"cases\">\n<h2>Every case</h2>\n<table>\n<tr><th>Case</th><th>Outcome</th><th>Time</th><th>Message and evidence</th></tr>\n",
    );
    for r in &report.results {
        let outcome = if r.is_flaky() {
            "passed (flaky)".to_string()
        } else {
            r.status.as_str().to_string()
        };
        let _ = writeln!(
            h,
            "<tr id=\"case-{id}\"><td>{id}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"message\">{}{}</td></tr>",
            r.status.as_str(),
            escape(&outcome),
            seconds(r.duration),
            escape(&r.message),
            evidence(r),
            id = escape(&r.spec.id),
        );
    }
    h.push_str("</table>\n</section>\n");
    h
}

fn warnings(report: &RunReport) -> String {
    if report.warnings.is_empty() {
        return String::new();
    }
    let items: String = report
        .warnings
        .iter()
        .map(|w| format!("<li>{}</li>", escape(w)))
        .collect();
    format!("<section id=\"warnings\">\n<h2>Warnings</h2>\n<ul>{items}</ul>\n</section>\n")
}

/// `performance.html`, kept for links to it: a pointer to the performance section.
pub fn performance_redirect() -> String {
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"0; url=report.html#performance\">\n<title>aiconform performance report</title>\n</head>\n<body>\n<p>The performance report is part of the whole-run report: <a href=\"report.html#performance\">report.html#performance</a>.</p>\n</body>\n</html>\n".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::case::Series;

    fn series() -> Series {
        Series {
            case_id: "fabric/nccl-all-reduce-bw".into(),
            name: "all_reduce bus bandwidth <8 GPUs>".into(),
            x_label: "message size".into(),
            y_label: "bus bandwidth (GB/s)".into(),
            points: vec![(8.0, 0.1), (8589934592.0, 450.0)],
            threshold: Some(420.0),
        }
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
        let h = render(&report);
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
}
