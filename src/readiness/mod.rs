//! Readiness: recipe constraints evaluated against a snapshot.
//!
//! A constraint names a measurement path (`K8s.server.version`, `OS.kernel.release`, …; see
//! [`crate::snapshot::measure`]) and an expression ([`crate::expr`]). Node-level measurements carry
//! one value per node: a constraint passes only when **every** value satisfies it, so one
//! node on an old kernel fails the whole constraint. A node expected to report a path but
//! lacking it (its agent failed, so no `OS.sysctl.*`) makes the constraint `missing`;
//! CPU-only nodes are not expected to report `GPU.*`. A path with no value at all is
//! `missing` too, which fails readiness like a mismatch does. See
//! [`crate::snapshot::measure`] for the paths.

pub mod fit;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::expr;
use crate::recipe::model::Constraint;
use crate::snapshot::Snapshot;
use crate::snapshot::measure::{self, Measured, Measurements};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Missing,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Missing => "missing",
        }
    }
}

/// The outcome of one constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub constraint: String,
    pub expected: String,
    pub actual: Vec<Measured>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Overlay that set the constraint.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub missing: usize,
}

/// All constraint outcomes of one readiness run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessReport {
    pub phase: String,
    pub summary: Summary,
    pub results: Vec<CheckResult>,
}

impl ReadinessReport {
    /// True when every constraint passed (also when there are none).
    pub fn passed(&self) -> bool {
        self.summary.failed == 0 && self.summary.missing == 0
    }
}

/// Evaluate one constraint against its measured values.
pub fn check(constraint: &Constraint, measurements: &Measurements) -> CheckResult {
    let actual = measurements
        .get(&constraint.name)
        .cloned()
        .unwrap_or_default();
    let mut result = CheckResult {
        constraint: constraint.name.clone(),
        expected: constraint.value.clone(),
        actual,
        status: Status::Pass,
        detail: None,
        source: constraint.source.clone(),
    };
    let expr = match expr::Expr::parse(&constraint.value) {
        Ok(e) => e,
        Err(e) => {
            result.status = Status::Fail;
            result.detail = Some(format!(
                "{e}; fix the constraint in overlay `{}`",
                constraint.source
            ));
            return result;
        }
    };
    if result.actual.is_empty() {
        result.status = Status::Missing;
        result.detail = Some(format!(
            "the snapshot has no `{}` measurement{}",
            constraint.name,
            hint_for(&constraint.name)
        ));
        return result;
    }
    let failures: Vec<(&str, String)> = result
        .actual
        .iter()
        .filter_map(|m| {
            expr.check(&m.value)
                .err()
                .map(|why| (m.source.as_str(), why))
        })
        .collect();
    if !failures.is_empty() {
        let detail = failure_detail(&failures);
        result.status = Status::Fail;
        result.detail = Some(detail);
    }
    result
}

/// Why a constraint failed: each failing source with its reason, or, past a few, each
/// distinct reason with the first sources naming it and a count of the rest (on a cluster
/// of thousands of nodes the same reason repeats for every node).
fn failure_detail(failures: &[(&str, String)]) -> String {
    if failures.len() <= SOURCES_NAMED {
        return failures
            .iter()
            .map(|(source, why)| format!("{source}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
    }
    group_sources(failures.iter().map(|(source, why)| (why.as_str(), *source)))
        .iter()
        .map(|(why, sources)| format!("{why} ({})", named_sources(sources)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `(key, source)` pairs grouped by key, keys in order of first appearance, in time linear
/// in the pairs (a cluster has a source per node).
fn group_sources<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, source) in pairs {
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(source);
    }
    groups
}

/// The first few sources, then how many more.
fn named_sources(sources: &[&str]) -> String {
    let named = sources[..sources.len().min(SOURCES_NAMED)].join(", ");
    match sources.len().saturating_sub(SOURCES_NAMED) {
        0 => named,
        more => format!("{named} and {more} more"),
    }
}

fn hint_for(path: &str) -> &'static str {
    if path.starts_with("OS.sysctl.") || path.starts_with("OS.module.") {
        " (node agent facts; was the snapshot taken with --no-agent or did the agent fail?)"
    } else if path.starts_with("GPU.") {
        " (no GPU facts: no GPU labels, agent or NVML on the selected nodes)"
    } else {
        ""
    }
}

/// Evaluate every constraint, in recipe order.
pub fn evaluate(constraints: &[Constraint], measurements: &Measurements) -> ReadinessReport {
    let results: Vec<CheckResult> = constraints.iter().map(|c| check(c, measurements)).collect();
    let mut summary = Summary::default();
    for r in &results {
        match r.status {
            Status::Pass => summary.passed += 1,
            Status::Fail => summary.failed += 1,
            Status::Missing => summary.missing += 1,
        }
    }
    ReadinessReport {
        phase: "readiness".into(),
        summary,
        results,
    }
}

/// Evaluate a recipe's constraints against a snapshot, requiring node-level paths from every
/// node expected to report them.
pub fn evaluate_snapshot(constraints: &[Constraint], snapshot: &Snapshot) -> ReadinessReport {
    let measurements = measure::flatten(snapshot);
    let mut report = evaluate(constraints, &measurements);
    for r in &mut report.results {
        if r.status == Status::Missing || r.actual.is_empty() {
            continue;
        }
        let Some(expected) = measure::expected_nodes(snapshot, &r.constraint) else {
            continue;
        };
        let reported = reporting_nodes(&r.actual);
        let lacking: Vec<String> = expected
            .iter()
            .filter(|n| !reported.contains(**n))
            .map(|n| format!("node/{n}"))
            .collect();
        if lacking.is_empty() {
            continue;
        }
        let note = format!(
            "no value from {} (agent unavailable or fact not reported)",
            lacking.join(", ")
        );
        r.detail = Some(match r.detail.take() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        });
        if r.status == Status::Pass {
            r.status = Status::Missing;
        }
    }
    report.summary = Summary::default();
    for r in &report.results {
        match r.status {
            Status::Pass => report.summary.passed += 1,
            Status::Fail => report.summary.failed += 1,
            Status::Missing => report.summary.missing += 1,
        }
    }
    report
}

/// Every node name a value's source can stand for (see [`measure::source_is_node`]): the
/// whole name after `node/`, and each prefix of it that ends before a space. A set, so
/// finding the nodes without a value is linear in the node count.
fn reporting_nodes(actual: &[Measured]) -> HashSet<&str> {
    let mut nodes = HashSet::with_capacity(actual.len());
    for m in actual {
        let Some(rest) = m.source.strip_prefix("node/") else {
            continue;
        };
        nodes.insert(rest);
        for (i, _) in rest.match_indices(' ') {
            nodes.insert(&rest[..i]);
        }
    }
    nodes
}

/// Sources named per value in a table cell; the rest are counted.
const SOURCES_NAMED: usize = 3;

/// The measured values as one table cell: a single value when all nodes agree, else each
/// distinct value with its sources (the first few named, the rest counted, so a cell stays
/// short on a cluster of thousands of nodes).
pub fn actual_cell(actual: &[Measured]) -> String {
    if actual.is_empty() {
        return "-".into();
    }
    let first = &actual[0].value;
    if actual.iter().all(|m| &m.value == first) {
        if actual.len() > 1 {
            return format!("{first} ({} sources)", actual.len());
        }
        return first.clone();
    }
    group_sources(actual.iter().map(|m| (m.value.as_str(), m.source.as_str())))
        .iter()
        .map(|(value, sources)| format!("{value} ({})", named_sources(sources)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A plain-text table: constraint, expected, actual, status; details follow the table.
pub fn render_table(report: &ReadinessReport) -> String {
    let header = ["CONSTRAINT", "EXPECTED", "ACTUAL", "STATUS"];
    let rows: Vec<[String; 4]> = report
        .results
        .iter()
        .map(|r| {
            [
                r.constraint.clone(),
                r.expected.clone(),
                actual_cell(&r.actual),
                r.status.as_str().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            if i == 3 {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header);
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    let details: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status != Status::Pass)
        .filter_map(|r| {
            r.detail
                .as_ref()
                .map(|d| format!("  {} [{}]: {d}", r.constraint, r.status.as_str()))
        })
        .collect();
    if !details.is_empty() {
        out.push('\n');
        for d in details {
            out.push_str(&d);
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\nreadiness: {} passed, {} failed, {} missing — {}\n",
        report.summary.passed,
        report.summary.failed,
        report.summary.missing,
        if report.passed() { "PASS" } else { "FAIL" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, value: &str) -> Constraint {
        Constraint {
            name: name.into(),
            value: value.into(),
            source: "base".into(),
        }
    }

    fn m(pairs: &[(&str, &str, &str)]) -> Measurements {
        let mut out = Measurements::new();
        for (path, value, source) in pairs {
            out.entry(path.to_string()).or_default().push(Measured {
                value: value.to_string(),
                source: source.to_string(),
            });
        }
        out
    }

    proptest::proptest! {
        /// The set lookup finds exactly the nodes `source_is_node` matches, names with
        /// spaces and `(…)` suffixes included.
        #[test]
        fn reporting_nodes_agrees_with_source_is_node(
            sources in proptest::collection::vec("(node/)?[ab ]{0,4}( \\(labels\\))?", 0..6),
            node in "[ab ]{0,4}",
        ) {
            let actual: Vec<Measured> = sources
                .iter()
                .map(|s| Measured { value: "1".into(), source: s.clone() })
                .collect();
            let slow = actual.iter().any(|m| measure::source_is_node(&m.source, &node));
            proptest::prop_assert_eq!(reporting_nodes(&actual).contains(node.as_str()), slow);
        }
    }

    #[test]
    fn a_cell_groups_values_and_counts_sources_past_a_few() {
        let mut pairs: Vec<(String, String)> = (0..1000)
            .map(|i| ("ubuntu".to_string(), format!("node/gpu-{i:04}")))
            .collect();
        pairs.push(("rhel".into(), "node/cpu-0".into()));
        let actual: Vec<Measured> = pairs
            .iter()
            .map(|(v, src)| Measured {
                value: v.clone(),
                source: src.clone(),
            })
            .collect();
        assert_eq!(
            actual_cell(&actual),
            "ubuntu (node/gpu-0000, node/gpu-0001, node/gpu-0002 and 997 more); rhel (node/cpu-0)"
        );
    }

    #[test]
    fn many_failing_nodes_are_grouped_by_reason() {
        let failures: Vec<(String, String)> = (0..20)
            .map(|i| {
                (
                    format!("node/gpu-{i:02} (labels)"),
                    "`550` is not >= 570".to_string(),
                )
            })
            .collect();
        let borrowed: Vec<(&str, String)> = failures
            .iter()
            .map(|(s, w)| (s.as_str(), w.clone()))
            .collect();
        assert_eq!(
            failure_detail(&borrowed),
            "`550` is not >= 570 (node/gpu-00 (labels), node/gpu-01 (labels), node/gpu-02 (labels) and 17 more)"
        );
        assert_eq!(
            failure_detail(&borrowed[..2]),
            "node/gpu-00 (labels): `550` is not >= 570; node/gpu-01 (labels): `550` is not >= 570"
        );
    }

    #[test]
    fn every_node_must_satisfy() {
        let ms = m(&[
            ("OS.kernel.release", "6.8.0-1015-aws", "node/a"),
            ("OS.kernel.release", "5.15.0-1063-aws", "node/b"),
        ]);
        let r = check(&c("OS.kernel.release", ">= 6.8"), &ms);
        assert_eq!(r.status, Status::Fail);
        let detail = r.detail.unwrap();
        assert!(
            detail.contains("node/b") && !detail.contains("node/a"),
            "{detail}"
        );
        assert!(actual_cell(&r.actual).contains("(node/b)"));
    }

    #[test]
    fn missing_and_invalid() {
        let ms = m(&[("K8s.server.version", "v1.34.4", "cluster")]);
        let r = check(&c("OS.sysctl.vm.max_map_count", ">= 262144"), &ms);
        assert_eq!(r.status, Status::Missing);
        assert!(r.detail.unwrap().contains("--no-agent"));
        let r = check(&c("K8s.server.version", ">= latest"), &ms);
        assert_eq!(r.status, Status::Fail);
        assert!(r.detail.unwrap().contains("overlay `base`"));
    }

    #[test]
    fn summary_and_table() {
        let ms = m(&[
            ("K8s.server.version", "v1.34.4", "cluster"),
            ("OS.release.ID", "ubuntu", "node/a"),
            ("OS.release.ID", "ubuntu", "node/b"),
        ]);
        let report = evaluate(
            &[
                c("K8s.server.version", ">= 1.32, < 1.36"),
                c("OS.release.ID", "ubuntu"),
                c("GPU.driver.version", ">= 580"),
                c("K8s.server.version", "< 1.30"),
            ],
            &ms,
        );
        assert_eq!(
            report.summary,
            Summary {
                passed: 2,
                failed: 1,
                missing: 1
            }
        );
        assert!(!report.passed());
        let table = render_table(&report);
        assert!(table.starts_with("CONSTRAINT"), "{table}");
        assert!(table.contains("ubuntu (2 sources)"), "{table}");
        assert!(table.contains("1 failed, 1 missing"), "{table}");
        // Columns line up: STATUS column starts at the same offset on every row.
        let offsets: Vec<usize> = table
            .lines()
            .take(5)
            .map(|l| l.rfind(' ').unwrap_or(0))
            .collect();
        assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{table}");
    }

    #[test]
    fn no_constraints_passes() {
        let report = evaluate(&[], &Measurements::new());
        assert!(report.passed());
    }
}
