//! JUnit XML as Jenkins and GitLab read it: one `<testsuite>` per suite, one `<testcase>`
//! per case (classname = suite), failures with message and type, skips, and failed attempts
//! of flaky cases as `<flakyFailure>` (passed) or `<rerunFailure>` (still failing). Cases
//! proving an AI conformance requirement carry `requirement` and `requirementLevel`
//! properties; their suite carries the checklist version as `aiConformance`.

use quick_junit::{
    FlakyOrRerun, NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::ReportError;
use crate::conformance::ConformanceRun;
use crate::runner::result::{CaseResult, RunReport, Status};

/// A case's `<testcase name>`: its id without the `suite/` prefix (its suite is the
/// classname). Evidence links name cases by it (`file://results/junit.xml#gang-scheduling`).
pub fn case_name<'a>(id: &'a str, suite: &str) -> &'a str {
    id.strip_prefix(suite)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(id)
}

fn failure_type(message: &str) -> &'static str {
    if message.starts_with("timed out after") {
        "timeout"
    } else if message.starts_with("error:") || message.starts_with("the case panicked") {
        "error"
    } else {
        "assertion"
    }
}

fn rerun(a: &crate::runner::result::Attempt) -> TestRerun {
    let mut r = TestRerun::new(NonSuccessKind::Failure);
    r.set_time(a.duration)
        .set_message(a.message.as_str())
        .set_type(failure_type(&a.message));
    r
}

fn test_case(r: &CaseResult, conformance: Option<&ConformanceRun>) -> TestCase {
    let earlier: Vec<TestRerun> = r
        .attempts
        .iter()
        .take(r.attempts.len().saturating_sub(1))
        .filter(|a| a.status == Status::Failed)
        .map(rerun)
        .collect();
    let status = match r.status {
        Status::Passed => TestCaseStatus::Success {
            flaky_runs: earlier,
        },
        Status::Failed => {
            let last = r.attempts.last().map(|a| a.message.as_str()).unwrap_or("");
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(r.message.as_str())
                .set_type(failure_type(last))
                .set_description(r.message.as_str())
                .add_reruns(earlier)
                .set_rerun_kind(FlakyOrRerun::Rerun);
            s
        }
        Status::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(r.message.as_str());
            s
        }
        Status::Interrupted => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(r.message.as_str()).set_type("interrupted");
            s
        }
    };
    let mut tc = TestCase::new(case_name(&r.spec.id, &r.spec.suite), status);
    tc.set_classname(r.spec.suite.as_str()).set_time(r.duration);
    if !r.message.is_empty() {
        tc.set_system_out(r.message.as_str());
    }
    if r.is_flaky() {
        tc.add_property(("flaky", "true"));
    }
    if let Some(req) = &r.spec.requirement {
        tc.add_property(("requirement", req.as_str()));
        if let Some(c) = conformance {
            tc.add_property(("requirementLevel", c.level_label(req).as_str()));
        }
    }
    tc
}

/// A node's verdict within a case: `<testcase name="xid[gpu-1]">` with a `node` property.
fn node_case(n: &crate::runner::case::NodeResult, suite: &str) -> TestCase {
    let status = match n.status {
        Status::Passed => TestCaseStatus::success(),
        Status::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(n.message.as_str())
                .set_type("assertion")
                .set_description(n.message.as_str());
            s
        }
        Status::Skipped | Status::Interrupted => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(n.message.as_str());
            s
        }
    };
    let name = super::nodes::result_name(case_name(&n.case_id, suite), &n.node);
    let mut tc = TestCase::new(name, status);
    tc.set_classname(suite);
    tc.add_property(("node", n.node.as_str()));
    if !n.message.is_empty() {
        tc.set_system_out(n.message.as_str());
    }
    tc
}

/// The JUnit XML document.
pub fn render(report: &RunReport) -> Result<String, ReportError> {
    let mut out = Report::new("aiconform");
    out.set_time(
        report
            .results
            .iter()
            .map(|r| r.duration)
            .sum::<std::time::Duration>(),
    );
    for (suite, phase, results) in report.by_suite() {
        let mut ts = TestSuite::new(suite);
        ts.add_property(("phase", phase.as_str()));
        ts.add_property(("recipe", report.recipe.as_str()));
        if let Some(c) = &report.conformance
            && results.iter().any(|r| r.spec.requirement.is_some())
        {
            ts.add_property(("aiConformance", c.version.to_string().as_str()));
        }
        ts.set_time(results.iter().map(|r| r.duration).sum());
        ts.add_test_cases(
            results
                .iter()
                .map(|r| test_case(r, report.conformance.as_ref())),
        );
        ts.add_test_cases(
            super::nodes::of_suite(report, suite)
                .into_iter()
                .map(|n| node_case(n, suite)),
        );
        out.add_test_suite(ts);
    }
    out.to_string().map_err(|e| ReportError::Render {
        what: "JUnit",
        message: e.to_string(),
    })
}
