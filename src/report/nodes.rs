//! Per-node results of cases that evaluate every node (node-health): their names in JUnit
//! and CTRF (`xid[gpu-1]`, `node-health/xid[gpu-1]`) and the HTML report's node × check grid.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::markup::escape;
use crate::runner::case::NodeResult;
use crate::runner::result::RunReport;

/// `<case id>[<node>]`.
pub fn result_name(case_id: &str, node: &str) -> String {
    format!("{case_id}[{node}]")
}

/// The per-node results of the cases of `suite`.
pub fn of_suite<'a>(report: &'a RunReport, suite: &str) -> Vec<&'a NodeResult> {
    let prefix = format!("{suite}/");
    report
        .metrics
        .nodes
        .iter()
        .filter(|n| n.case_id.starts_with(&prefix))
        .collect()
}

/// The `<section>` with one row per node and one column per check; empty without
/// per-node results. A cell shows the status; its title the reading.
pub fn render_grid(report: &RunReport) -> String {
    let results = &report.metrics.nodes;
    if results.is_empty() {
        return String::new();
    }
    let mut checks: Vec<&str> = Vec::new();
    for r in results {
        if !checks.contains(&r.case_id.as_str()) {
            checks.push(&r.case_id);
        }
    }
    let mut rows: BTreeMap<&str, BTreeMap<&str, &NodeResult>> = BTreeMap::new();
    for r in results {
        rows.entry(&r.node).or_default().insert(&r.case_id, r);
    }
    let mut h = String::from(
        "<section id=\"nodes\">\n<h2>Node health</h2>\n<table class=\"nodes\">\n<tr><th>Node</th>",
    );
    for c in &checks {
        let short = c.rsplit('/').next().unwrap_or(c);
        let _ = write!(h, "<th>{}</th>", escape(short));
    }
    h.push_str("</tr>\n");
    for (node, cells) in &rows {
        let _ = write!(h, "<tr data-node=\"{n}\"><td>{n}</td>", n = escape(node));
        for c in &checks {
            match cells.get(c) {
                Some(r) => {
                    let _ = write!(
                        h,
                        "<td class=\"{s}\" title=\"{}\">{s}</td>",
                        escape(&r.message),
                        s = r.status.as_str()
                    );
                }
                None => h.push_str("<td class=\"skipped\">not evaluated</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n</section>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::result::Status;

    fn node(case: &str, node: &str, status: Status) -> NodeResult {
        NodeResult {
            case_id: case.into(),
            node: node.into(),
            status,
            message: format!("{node} <reading>"),
        }
    }

    #[test]
    fn grid_rows_and_columns() {
        assert_eq!(render_grid(&RunReport::default()), "");
        let mut report = RunReport::default();
        report.metrics.nodes = vec![
            node("node-health/xid", "gpu-1", Status::Failed),
            node("node-health/xid", "gpu-0", Status::Passed),
            node("node-health/ecc", "gpu-0", Status::Skipped),
        ];
        let h = render_grid(&report);
        assert!(h.contains("<th>Node</th><th>xid</th><th>ecc</th>"), "{h}");
        let gpu0 = h.find("data-node=\"gpu-0\"").unwrap();
        let gpu1 = h.find("data-node=\"gpu-1\"").unwrap();
        assert!(gpu0 < gpu1, "{h}");
        assert!(h.contains("<td class=\"failed\" title=\"gpu-1 &lt;reading&gt;\">failed</td><td class=\"skipped\">not evaluated</td>"), "{h}");
        assert_eq!(of_suite(&report, "node-health").len(), 3);
        assert!(of_suite(&report, "node").is_empty());
        assert_eq!(
            result_name("node-health/xid", "gpu-1"),
            "node-health/xid[gpu-1]"
        );
    }

    #[test]
    fn junit_and_ctrf_list_every_node() {
        use crate::runner::case::{CaseSpec, Phase};
        use crate::runner::result::CaseResult;
        let spec = CaseSpec {
            id: "node-health/xid".into(),
            suite: "node-health".into(),
            name: "xid".into(),
            phase: Phase::NodeHealth,
            description: String::new(),
            params: serde_json::json!({}),
            timeout: std::time::Duration::from_secs(60),
            retries: 0,
            flaky: false,
            needs_namespace: false,
            requirement: None,
        };
        let mut report = RunReport {
            results: vec![CaseResult::not_run(
                std::sync::Arc::new(spec),
                Status::Failed,
                "1 of 2 node(s) unhealthy",
            )],
            ..RunReport::default()
        };
        report.metrics.nodes = vec![
            node("node-health/xid", "gpu-0", Status::Passed),
            node("node-health/xid", "gpu-1", Status::Failed),
        ];
        let junit = crate::report::junit::render(&report).unwrap();
        assert!(
            junit.contains("<testcase name=\"xid[gpu-1]\" classname=\"node-health\">"),
            "{junit}"
        );
        assert_eq!(junit.matches("<testcase ").count(), 3, "{junit}");
        let ctrf = crate::report::ctrf::to_value(&report);
        assert_eq!(ctrf["results"]["summary"]["tests"], 3);
        assert_eq!(ctrf["results"]["summary"]["failed"], 2);
        let t = &ctrf["results"]["tests"][2];
        assert_eq!(t["name"], "node-health/xid[gpu-1]");
        assert_eq!(t["extra"]["node"], "gpu-1");
        assert_eq!(t["extra"]["phase"], "node-health");
    }
}
