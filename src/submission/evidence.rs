//! `evidence/<requirement>.md`: what a run did and observed for one requirement, written
//! next to PRODUCT.yaml so reviewers read the proof, not a claim.

use std::fmt::Write as _;

use crate::clock::timestamp;
use crate::duration::format as format_duration;
use crate::report::results::{CaseRecord, RunRecord};
use crate::report::verdict::{RequirementVerdict, Verdict};

fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.1}s")
    } else {
        format!("{:.0}ms", s * 1000.0)
    }
}

/// Text inside a Markdown table cell or heading: one line, no pipes.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The run facts every evidence file and the README repeat.
pub fn run_table(run: &RunRecord) -> String {
    let mut t = String::from("| | |\n|---|---|\n");
    let checklist = run
        .ai_conformance
        .as_ref()
        .map(|c| format!("{} (selected by {})", c.version, c.source))
        .unwrap_or_else(|| "none selected".into());
    let rows = [
        ("aiconform version", run.tool_version.clone()),
        ("run id", run.run_id.clone()),
        ("recipe", run.recipe.clone()),
        (
            "cluster Kubernetes version",
            run.cluster_version
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("AI conformance checklist", checklist),
        ("run started", timestamp(run.started_ms)),
        ("run finished", timestamp(run.finished_ms)),
    ];
    for (k, v) in rows {
        let _ = writeln!(t, "| {k} | {} |", cell(&v));
    }
    t
}

fn case_section(out: &mut String, c: &CaseRecord) {
    let _ = writeln!(
        out,
        "\n### `{}`: {} in {} (timeout {})\n",
        c.id,
        c.status.as_str(),
        seconds(c.duration_seconds),
        format_duration(std::time::Duration::from_secs_f64(
            c.timeout_seconds.max(0.001)
        ))
    );
    if !c.description.is_empty() {
        let _ = writeln!(out, "- **What ran:** {}", cell(&c.description));
    }
    let _ = writeln!(out, "- **Observed:** {}", cell(&c.message));
    if !c.api_writes.is_empty() {
        out.push_str("- **Objects created and changed** (API requests the case sent, with the server's status):\n");
        for w in &c.api_writes {
            let _ = writeln!(out, "  - `{}`", cell(&w.to_string()));
        }
        if c.api_writes_left_out > 0 {
            let _ = writeln!(out, "  - and {} more", c.api_writes_left_out);
        }
    } else if !c.attempts.is_empty() {
        out.push_str("- **Objects created and changed:** none (the case only read the cluster)\n");
    }
    if c.attempts.len() > 1 {
        out.push_str("- **Attempts:**\n");
        for (i, a) in c.attempts.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}. {} after {}: {}",
                i + 1,
                a.status.as_str(),
                seconds(a.duration_seconds),
                cell(&a.message)
            );
        }
    }
}

/// The evidence file of one requirement.
pub fn render(v: &RequirementVerdict<'_>, run: &RunRecord) -> String {
    let r = v.requirement;
    let version = run
        .ai_conformance
        .as_ref()
        .map(|c| c.version.to_string())
        .unwrap_or_default();
    let mut out = format!("# {}: Kubernetes AI conformance {version}\n\n", r.id);
    let _ = writeln!(
        out,
        "**Requirement** ({}, category `{}`): {}\n",
        r.level_label(),
        r.category,
        r.description
    );
    let verdict = match &v.verdict {
        Verdict::Implemented => "Implemented: every case proving it passed.".to_string(),
        Verdict::NotImplemented(why) => format!("Not Implemented: {why}"),
        Verdict::NotApplicable(reason) => {
            format!("N/A, declared by the platform owner in the run configuration: {reason}")
        }
        Verdict::NotRun(why) => format!("Not proven by this run: {why}"),
    };
    let _ = writeln!(out, "**Verdict:** {}\n", cell(&verdict));
    out.push_str("## Run\n\n");
    out.push_str(&run_table(run));
    out.push_str("\n## Cases\n");
    if v.cases.is_empty() {
        out.push_str("\nNo aiconform case ran for this requirement.\n");
    }
    for c in &v.cases {
        case_section(&mut out, c);
    }
    out
}
