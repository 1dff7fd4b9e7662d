//! A run's case results folded into one verdict per requirement of its checklist. A
//! requirement is implemented only when every case proving it ran and passed; absence of a
//! case or a skip proves nothing.

use std::fmt::Write as _;

use super::results::{CaseRecord, RunRecord};
use crate::conformance::catalog::{Checklist, Requirement};
use crate::conformance::mapping::not_applicable_message;
use crate::runner::result::Status;

/// What a run shows about one requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every case of the requirement passed.
    Implemented,
    /// A case failed; the text names it and what it observed.
    NotImplemented(String),
    /// The user declared it not applicable, with this reason.
    NotApplicable(String),
    /// Nothing was proven: no case ran, or its cases were skipped or interrupted.
    NotRun(String),
}

impl Verdict {
    /// The PRODUCT.yaml `status` value; empty for requirements that were not run.
    pub fn status(&self) -> &'static str {
        match self {
            Verdict::Implemented => "Implemented",
            Verdict::NotImplemented(_) => "Not Implemented",
            Verdict::NotApplicable(_) => "N/A",
            Verdict::NotRun(_) => "",
        }
    }

    /// Short label for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Implemented => "implemented",
            Verdict::NotImplemented(_) => "not implemented",
            Verdict::NotApplicable(_) => "not applicable",
            Verdict::NotRun(_) => "not run",
        }
    }

    /// CSS class of the label in HTML.
    pub fn class(&self) -> &'static str {
        match self {
            Verdict::Implemented => "passed",
            Verdict::NotImplemented(_) => "failed",
            Verdict::NotApplicable(_) | Verdict::NotRun(_) => "skipped",
        }
    }
}

/// One requirement with its verdict and the cases behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequirementVerdict<'a> {
    pub requirement: &'a Requirement,
    pub verdict: Verdict,
    pub cases: Vec<&'a CaseRecord>,
}

impl RequirementVerdict<'_> {
    /// One line on what was observed: the cases' messages, or why nothing was.
    pub fn summary(&self) -> String {
        match &self.verdict {
            Verdict::NotApplicable(reason) => not_applicable_message(reason),
            Verdict::NotRun(why) | Verdict::NotImplemented(why) => why.clone(),
            Verdict::Implemented => self
                .cases
                .iter()
                .map(|c| format!("{}: {}", c.id, c.message))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

fn describe(cases: &[&CaseRecord], status: Status) -> String {
    cases
        .iter()
        .filter(|c| c.status == status)
        .map(|c| format!("{} {}: {}", c.id, c.status.as_str(), c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every requirement of `checklist` in template order, judged from `run`.
pub fn verdicts<'a>(checklist: &'a Checklist, run: &'a RunRecord) -> Vec<RequirementVerdict<'a>> {
    let declared = run.ai_conformance.as_ref().map(|c| &c.not_applicable);
    checklist
        .requirements()
        .map(|requirement| {
            let cases: Vec<&CaseRecord> = run
                .cases
                .iter()
                .filter(|c| c.requirement.as_deref() == Some(requirement.id.as_str()))
                .collect();
            let verdict = if let Some(reason) = declared.and_then(|d| d.get(&requirement.id)) {
                Verdict::NotApplicable(reason.clone())
            } else if cases.is_empty() {
                Verdict::NotRun("not run: no case of this run proves it".into())
            } else if cases.iter().any(|c| c.status == Status::Failed) {
                Verdict::NotImplemented(describe(&cases, Status::Failed))
            } else if cases.iter().all(|c| c.status == Status::Passed) {
                Verdict::Implemented
            } else {
                let mut why = String::from("not proven: ");
                let skipped = describe(&cases, Status::Skipped);
                let interrupted = describe(&cases, Status::Interrupted);
                why.push_str(
                    &[skipped, interrupted]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                Verdict::NotRun(why)
            };
            RequirementVerdict {
                requirement,
                verdict,
                cases,
            }
        })
        .collect()
}

/// The console table printed after a run: requirement, level, verdict, cases.
pub fn render_table(checklist: &Checklist, run: &RunRecord) -> String {
    let rows = verdicts(checklist, run);
    let w = rows
        .iter()
        .map(|r| r.requirement.id.len())
        .max()
        .unwrap_or(0);
    let lw = rows
        .iter()
        .map(|r| r.requirement.level_label().len())
        .max()
        .unwrap_or(0);
    let source = run
        .ai_conformance
        .as_ref()
        .map(|c| format!(" (checklist from {})", c.source))
        .unwrap_or_default();
    let mut out = format!("\nCNCF AI conformance {}{source}:\n", checklist.version);
    for r in &rows {
        let cases: Vec<&str> = r.cases.iter().map(|c| c.id.as_str()).collect();
        let detail = match &r.verdict {
            Verdict::Implemented => cases.join(", "),
            _ => r.summary(),
        };
        let _ = writeln!(
            out,
            "  {:<w$}  {:<lw$}  {:<15}  {}",
            r.requirement.id,
            r.requirement.level_label(),
            r.verdict.label(),
            detail
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{ConformanceRun, Version, checklist};
    use crate::runner::case::Phase;

    fn case(id: &str, req: &str, status: Status, message: &str) -> CaseRecord {
        CaseRecord {
            id: id.into(),
            suite: "conformance".into(),
            phase: Phase::Conformance,
            description: String::new(),
            requirement: Some(req.into()),
            level: None,
            status,
            message: message.into(),
            duration_seconds: 1.0,
            timeout_seconds: 60.0,
            attempts: vec![],
            api_writes: vec![],
            api_writes_left_out: 0,
        }
    }

    fn run(cases: Vec<CaseRecord>) -> RunRecord {
        let mut c = ConformanceRun::new(Version::new(1, 34), "test");
        c.not_applicable
            .insert("cluster_autoscaling".into(), "on-prem".into());
        RunRecord {
            api_version: String::new(),
            kind: String::new(),
            tool_version: "0".into(),
            recipe: "r".into(),
            run_id: "id".into(),
            started_ms: 0,
            finished_ms: 0,
            interrupted: false,
            cluster_version: None,
            ai_conformance: Some(c),
            cases,
            warnings: vec![],
        }
    }

    #[test]
    fn every_rule() {
        let r = run(vec![
            case(
                "conformance/gang-scheduling",
                "gang_scheduling",
                Status::Passed,
                "4 pods together",
            ),
            case(
                "conformance/dra-support",
                "dra_support",
                Status::Failed,
                "claim never allocated",
            ),
            case(
                "conformance/robust-controller",
                "robust_controller",
                Status::Skipped,
                "no cluster",
            ),
            case(
                "conformance/cluster-autoscaling",
                "cluster_autoscaling",
                Status::Skipped,
                "declared not applicable: on-prem",
            ),
        ]);
        let c = checklist(Version::new(1, 34)).unwrap();
        let v = verdicts(c, &r);
        let get = |id: &str| v.iter().find(|x| x.requirement.id == id).unwrap();
        assert_eq!(get("gang_scheduling").verdict, Verdict::Implemented);
        assert_eq!(
            get("gang_scheduling").summary(),
            "conformance/gang-scheduling: 4 pods together"
        );
        assert_eq!(
            get("dra_support").verdict,
            Verdict::NotImplemented("conformance/dra-support failed: claim never allocated".into())
        );
        assert_eq!(get("robust_controller").verdict.status(), "");
        assert!(
            get("robust_controller")
                .summary()
                .contains("not proven: conformance/robust-controller skipped: no cluster")
        );
        assert_eq!(
            get("cluster_autoscaling").verdict,
            Verdict::NotApplicable("on-prem".into())
        );
        assert_eq!(get("ai_inference").verdict.label(), "not run");
        assert_eq!(v.len(), 9);
        let t = render_table(c, &r);
        assert!(
            t.contains("CNCF AI conformance 1.34 (checklist from test):"),
            "{t}"
        );
        assert!(
            t.contains("gang_scheduling            MUST                "),
            "{t}"
        );
    }

    #[test]
    fn one_failed_case_among_passes_fails_the_requirement() {
        let r = run(vec![
            case("a/x", "gang_scheduling", Status::Passed, "ok"),
            case("a/y", "gang_scheduling", Status::Failed, "partial"),
        ]);
        let c = checklist(Version::new(1, 34)).unwrap();
        let v = verdicts(c, &r);
        assert_eq!(v[2].requirement.id, "gang_scheduling");
        assert_eq!(
            v[2].verdict,
            Verdict::NotImplemented("a/y failed: partial".into())
        );
    }
}
