//! The conformance overview of the HTML report: one row per requirement of the run's
//! checklist (id, level, verdict, evidence summary), so the whole run reads on one page.

use std::fmt::Write as _;

use super::markup::escape;
use super::results::RunRecord;
use crate::report::verdict::verdicts;
use crate::runner::result::RunReport;

/// The `<section>`; empty when the run selected no checklist.
pub fn render_section(report: &RunReport) -> String {
    let record = RunRecord::from_report(report);
    let Some(conf) = &record.ai_conformance else {
        return String::new();
    };
    let checklist = conf.checklist();
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<section id=\"conformance\">\n<h2>CNCF AI conformance {}</h2>\n<p>Checklist selected by {}.</p>\n<table class=\"conformance\">\n<tr><th>Requirement</th><th>Level</th><th>Verdict</th><th>Evidence</th></tr>",
        escape(&checklist.version.to_string()),
        escape(&conf.source)
    );
    for v in verdicts(checklist, &record) {
        let _ = writeln!(
            h,
            "<tr data-requirement=\"{id}\"><td>{id}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&v.requirement.level_label()),
            v.verdict.class(),
            v.verdict.label(),
            escape(&v.summary()),
            id = escape(&v.requirement.id),
        );
    }
    h.push_str("</table>\n</section>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{ConformanceRun, Version};

    #[test]
    fn no_checklist_no_section() {
        assert_eq!(render_section(&RunReport::default()), "");
        let report = RunReport {
            conformance: Some(ConformanceRun::new(Version::new(1, 36), "--ai-conformance")),
            ..Default::default()
        };
        let h = render_section(&report);
        assert_eq!(h.matches("<tr data-requirement=").count(), 14, "{h}");
        assert!(!h.contains("dra_support"));
    }
}
