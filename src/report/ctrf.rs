//! CTRF JSON (https://ctrf.io): `{results: {tool, summary, tests}}`. A case proving an AI
//! conformance requirement has `extra.requirement` and `extra.requirementLevel`.

use serde_json::{Value, json};

use super::ReportError;
use crate::runner::result::{RunReport, Status};

fn status(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
        Status::Interrupted => "other",
    }
}

/// The CTRF report as a JSON value.
pub fn to_value(report: &RunReport) -> Value {
    let mut summary = json!({
        "tests": report.results.len(),
        "passed": 0, "failed": 0, "skipped": 0, "pending": 0, "other": 0,
        "start": report.started_ms,
        "stop": report.finished_ms,
    });
    for r in &report.results {
        let key = status(r.status);
        summary[key] = json!(summary[key].as_u64().unwrap_or(0) + 1);
    }
    for n in &report.metrics.nodes {
        let key = status(n.status);
        summary[key] = json!(summary[key].as_u64().unwrap_or(0) + 1);
    }
    summary["tests"] = json!(report.results.len() + report.metrics.nodes.len());
    let mut tests: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let mut t = json!({
                "name": r.spec.id,
                "status": status(r.status),
                "duration": r.duration.as_millis() as u64,
                "suite": r.spec.suite,
                "flaky": r.is_flaky(),
                "retries": r.retries(),
                "extra": {"phase": r.spec.phase.as_str()},
            });
            if !r.message.is_empty() {
                t["message"] = json!(r.message);
            }
            if let Some(req) = &r.spec.requirement {
                t["extra"]["requirement"] = json!(req);
                if let Some(c) = &report.conformance {
                    t["extra"]["requirementLevel"] = json!(c.level_label(req));
                }
            }
            if r.status == Status::Interrupted {
                t["rawStatus"] = json!("interrupted");
            }
            t
        })
        .collect();
    tests.extend(report.metrics.nodes.iter().map(|n| {
        let phase = report
            .results
            .iter()
            .find(|r| r.spec.id == n.case_id)
            .map(|r| r.spec.phase.as_str())
            .unwrap_or_default();
        json!({
            "name": super::nodes::result_name(&n.case_id, &n.node),
            "status": status(n.status),
            "duration": 0,
            "suite": n.case_id.split('/').next().unwrap_or_default(),
            "message": n.message,
            "extra": {"phase": phase, "case": n.case_id, "node": n.node},
        })
    }));
    let mut results = json!({
        "tool": {"name": "aiconform", "version": report.tool_version},
        "summary": summary,
        "tests": tests,
        "environment": {"extra": {"recipe": report.recipe, "interrupted": report.interrupted}},
    });
    if let Some(c) = &report.conformance {
        results["environment"]["extra"]["aiConformance"] = json!({
            "version": c.version.to_string(),
            "source": c.source,
            "notApplicable": c.not_applicable,
        });
    }
    if let Some(v) = &report.cluster_version {
        results["environment"]["extra"]["clusterVersion"] = json!(v);
    }
    if !report.warnings.is_empty() {
        results["extra"] = json!({"warnings": report.warnings});
    }
    json!({
        "reportFormat": "CTRF",
        "specVersion": "0.0.0",
        "results": results,
    })
}

/// The CTRF document, pretty-printed.
pub fn render(report: &RunReport) -> Result<String, ReportError> {
    serde_json::to_string_pretty(&to_value(report))
        .map(|s| s + "\n")
        .map_err(|e| ReportError::Render {
            what: "CTRF",
            message: e.to_string(),
        })
}
