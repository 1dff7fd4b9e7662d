//! The stored runs as Prometheus metrics (text exposition format 0.0.4), one `member` label
//! per cluster. Series are bounded by the stored runs: one per case that ran, a few per
//! member.
//!
//! - `aiconform_case_passed{member,phase,case}`: 1 passed, 0 failed or interrupted (skipped
//!   cases have no series)
//! - `aiconform_cases{member,status}`: cases per status
//! - `aiconform_run_timestamp_seconds{member}`: when the run finished (Unix seconds)
//! - `aiconform_run_duration_seconds{member}`
//! - `aiconform_run_error{member}`: 1 when the last run produced no reports
//! - `aiconform_drift_facts{member}`: facts added, removed or changed since the previous
//!   run's snapshot (no series before a second run)

use std::fmt::Write as _;

use super::Stored;
use crate::runner::case::Status;

/// Escape a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// The metrics of every stored run, members in the given order. Runs whose `results.json`
/// does not parse count as errors.
pub fn render(runs: &[Stored]) -> String {
    let records: Vec<_> = runs
        .iter()
        .map(|s| (s, s.record().ok().flatten()))
        .collect();
    let mut out = String::new();
    header(
        &mut out,
        "aiconform_case_passed",
        "Whether the case passed in the member's last run (1) or failed (0).",
    );
    for (s, rec) in &records {
        for c in rec.iter().flat_map(|r| &r.cases) {
            if c.status == Status::Skipped {
                continue;
            }
            let _ = writeln!(
                out,
                "aiconform_case_passed{{member=\"{}\",phase=\"{}\",case=\"{}\"}} {}",
                label(&s.member),
                c.phase.as_str(),
                label(&c.id),
                u8::from(c.status == Status::Passed)
            );
        }
    }
    header(
        &mut out,
        "aiconform_cases",
        "Cases of the member's last run by status.",
    );
    for (s, rec) in &records {
        let Some(r) = rec else { continue };
        for status in [
            Status::Passed,
            Status::Failed,
            Status::Skipped,
            Status::Interrupted,
        ] {
            let n = r.cases.iter().filter(|c| c.status == status).count();
            let _ = writeln!(
                out,
                "aiconform_cases{{member=\"{}\",status=\"{}\"}} {n}",
                label(&s.member),
                status.as_str()
            );
        }
    }
    header(
        &mut out,
        "aiconform_run_timestamp_seconds",
        "When the member's last run finished, in Unix seconds.",
    );
    for (s, rec) in &records {
        if let Some(r) = rec {
            let _ = writeln!(
                out,
                "aiconform_run_timestamp_seconds{{member=\"{}\"}} {}",
                label(&s.member),
                seconds(r.finished_ms)
            );
        }
    }
    header(
        &mut out,
        "aiconform_run_duration_seconds",
        "How long the member's last run took.",
    );
    for (s, rec) in &records {
        if let Some(r) = rec {
            let _ = writeln!(
                out,
                "aiconform_run_duration_seconds{{member=\"{}\"}} {}",
                label(&s.member),
                seconds(r.finished_ms.saturating_sub(r.started_ms))
            );
        }
    }
    header(
        &mut out,
        "aiconform_run_error",
        "Whether the member's last run ended in an error without reports (1) or not (0).",
    );
    for (s, rec) in &records {
        let error = s.contents.error.is_some() || rec.is_none();
        let _ = writeln!(
            out,
            "aiconform_run_error{{member=\"{}\"}} {}",
            label(&s.member),
            u8::from(error)
        );
    }
    header(
        &mut out,
        "aiconform_drift_facts",
        "Facts added, removed or changed between the member's last two snapshots.",
    );
    for (s, _) in &records {
        if let Some(d) = &s.contents.drift {
            let _ = writeln!(
                out,
                "aiconform_drift_facts{{member=\"{}\"}} {}",
                label(&s.member),
                d.summary.total
            );
        }
    }
    out
}

/// Milliseconds as seconds with millisecond precision, trailing zeros dropped.
fn seconds(ms: u64) -> String {
    let s = format!("{}.{:03}", ms / 1000, ms % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{RESULTS, stored};
    use super::*;

    #[test]
    fn seconds_keep_milliseconds() {
        assert_eq!(seconds(1_767_323_045_250), "1767323045.25");
        assert_eq!(seconds(2000), "2");
        assert_eq!(seconds(0), "0");
    }

    /// The whole exposition, pinned: series names, labels, escaping and order.
    #[test]
    fn renders_runs_errors_and_drift() {
        let mut with_drift = stored("east", RESULTS);
        with_drift.contents.drift = Some(
            serde_json::from_value(serde_json::json!({
                "base": "cm://fleet/results-east", "target": "this run",
                "summary": {"added": 1, "removed": 0, "changed": 2, "total": 3},
                "changes": []
            }))
            .unwrap(),
        );
        let mut failed = stored("west", "");
        failed.contents.reports.clear();
        failed.contents.error = Some("nodes is forbidden".into());
        let text = render(&[with_drift, failed]);
        let want = r#"# HELP aiconform_case_passed Whether the case passed in the member's last run (1) or failed (0).
# TYPE aiconform_case_passed gauge
aiconform_case_passed{member="east",phase="readiness",case="readiness/k8s-version"} 1
aiconform_case_passed{member="east",phase="readiness",case="readiness/gpu \"model\""} 0
# HELP aiconform_cases Cases of the member's last run by status.
# TYPE aiconform_cases gauge
aiconform_cases{member="east",status="passed"} 1
aiconform_cases{member="east",status="failed"} 1
aiconform_cases{member="east",status="skipped"} 1
aiconform_cases{member="east",status="interrupted"} 0
# HELP aiconform_run_timestamp_seconds When the member's last run finished, in Unix seconds.
# TYPE aiconform_run_timestamp_seconds gauge
aiconform_run_timestamp_seconds{member="east"} 1767323045.25
# HELP aiconform_run_duration_seconds How long the member's last run took.
# TYPE aiconform_run_duration_seconds gauge
aiconform_run_duration_seconds{member="east"} 45.25
# HELP aiconform_run_error Whether the member's last run ended in an error without reports (1) or not (0).
# TYPE aiconform_run_error gauge
aiconform_run_error{member="east"} 0
aiconform_run_error{member="west"} 1
# HELP aiconform_drift_facts Facts added, removed or changed between the member's last two snapshots.
# TYPE aiconform_drift_facts gauge
aiconform_drift_facts{member="east"} 3
"#;
        assert_eq!(text, want);
    }
}
