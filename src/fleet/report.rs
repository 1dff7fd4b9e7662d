//! The stored runs of many clusters as one table and one JUnit document.
//!
//! JUnit: one `<testsuite>` per member (name = member), one `<testcase>` per case
//! (classname `<member>.<suite>`, name the case id), failures and skips as in a run's own
//! `junit.xml`; a member whose last run produced no reports is one `<testcase name="run">`
//! with an `<error>` carrying the recorded error.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{FleetError, Stored};
use crate::report::results::RunRecord;
use crate::runner::case::Status;

/// One member's line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub member: String,
    pub configmap: String,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// When the run finished (RFC 3339), else when the ConfigMap was written.
    pub when: String,
    /// Drifted facts since the previous run, `-` before a second run.
    pub drift: String,
    /// `ok`, `failed`, or `error: …` (no reports).
    pub state: String,
}

/// Unix milliseconds as RFC 3339 (seconds precision, UTC).
fn rfc3339(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| k8s_openapi::jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn count(r: &RunRecord, status: Status) -> usize {
    r.cases.iter().filter(|c| c.status == status).count()
}

/// The member's record, or why there is none.
fn record_of(s: &Stored) -> Result<RunRecord, String> {
    if let Some(e) = &s.contents.error {
        return Err(e.clone());
    }
    match s.record() {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(format!(
            "ConfigMap {}/{} has no {}",
            s.namespace,
            s.name,
            crate::report::RESULTS_FILE
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// One row per stored run, in the given order.
pub fn rows(runs: &[Stored]) -> Vec<Row> {
    runs.iter()
        .map(|s| {
            let drift = s
                .contents
                .drift
                .as_ref()
                .map_or("-".to_string(), |d| d.summary.total.to_string());
            let configmap = format!("{}/{}", s.namespace, s.name);
            match record_of(s) {
                Ok(r) => {
                    let failed = count(&r, Status::Failed) + count(&r, Status::Interrupted);
                    Row {
                        member: s.member.clone(),
                        configmap,
                        passed: count(&r, Status::Passed),
                        failed,
                        skipped: count(&r, Status::Skipped),
                        when: rfc3339(r.finished_ms),
                        drift,
                        state: if failed == 0 { "ok" } else { "failed" }.into(),
                    }
                }
                Err(e) => Row {
                    member: s.member.clone(),
                    configmap,
                    passed: 0,
                    failed: 0,
                    skipped: 0,
                    when: s.updated_at.clone(),
                    drift,
                    state: format!("error: {}", e.lines().next().unwrap_or_default()),
                },
            }
        })
        .collect()
}

/// The rows as an aligned table, with a total line.
pub fn render_table(rows: &[Row]) -> String {
    let head = [
        "MEMBER",
        "PASSED",
        "FAILED",
        "SKIPPED",
        "WHEN",
        "DRIFT",
        "CONFIGMAP",
        "STATE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.member.clone(),
                r.passed.to_string(),
                r.failed.to_string(),
                r.skipped.to_string(),
                r.when.clone(),
                r.drift.clone(),
                r.configmap.clone(),
                r.state.clone(),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.to_vec());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    let errors = rows.iter().filter(|r| r.state.starts_with("error")).count();
    out.push_str(&format!(
        "{} members: {} passed, {} failed, {} skipped cases; {} members without reports\n",
        rows.len(),
        rows.iter().map(|r| r.passed).sum::<usize>(),
        rows.iter().map(|r| r.failed).sum::<usize>(),
        rows.iter().map(|r| r.skipped).sum::<usize>(),
        errors,
    ));
    out
}

fn start<'a>(name: &'a str, attrs: &[(&str, &str)]) -> BytesStart<'a> {
    let mut s = BytesStart::new(name);
    for a in attrs {
        s.push_attribute(*a);
    }
    s
}

/// The merged JUnit document: a testsuite per member.
pub fn render_junit(runs: &[Stored]) -> Result<String, FleetError> {
    let members: Vec<(&Stored, Result<RunRecord, String>)> =
        runs.iter().map(|s| (s, record_of(s))).collect();
    let render = || -> std::io::Result<Vec<u8>> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 4);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut tests = 0;
        let mut failures = 0;
        let mut errors = 0;
        for (_, r) in &members {
            match r {
                Ok(r) => {
                    tests += r.cases.len();
                    failures += count(r, Status::Failed) + count(r, Status::Interrupted);
                }
                Err(_) => {
                    tests += 1;
                    errors += 1;
                }
            }
        }
        w.write_event(Event::Start(start(
            "testsuites",
            &[
                ("name", "aiconform fleet"),
                ("tests", &tests.to_string()),
                ("failures", &failures.to_string()),
                ("errors", &errors.to_string()),
            ],
        )))?;
        for (s, r) in &members {
            match r {
                Ok(r) => write_member(&mut w, s, r)?,
                Err(e) => {
                    w.write_event(Event::Start(start(
                        "testsuite",
                        &[
                            ("name", &s.member),
                            ("tests", "1"),
                            ("failures", "0"),
                            ("errors", "1"),
                            ("skipped", "0"),
                            ("timestamp", &s.updated_at),
                        ],
                    )))?;
                    w.write_event(Event::Start(start(
                        "testcase",
                        &[("name", "run"), ("classname", &s.member), ("time", "0.000")],
                    )))?;
                    let first = e.lines().next().unwrap_or_default();
                    w.write_event(Event::Start(start(
                        "error",
                        &[("message", first), ("type", "error")],
                    )))?;
                    w.write_event(Event::Text(BytesText::new(e)))?;
                    w.write_event(Event::End(BytesEnd::new("error")))?;
                    w.write_event(Event::End(BytesEnd::new("testcase")))?;
                    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
                }
            }
        }
        w.write_event(Event::End(BytesEnd::new("testsuites")))?;
        Ok(w.into_inner())
    };
    let bytes = render().map_err(|e| FleetError::Internal(format!("rendering JUnit: {e}")))?;
    let mut xml =
        String::from_utf8(bytes).map_err(|e| FleetError::Internal(format!("JUnit: {e}")))?;
    xml.push('\n');
    Ok(xml)
}

fn write_member(w: &mut Writer<Vec<u8>>, s: &Stored, r: &RunRecord) -> std::io::Result<()> {
    let time: f64 = r.cases.iter().map(|c| c.duration_seconds).sum();
    w.write_event(Event::Start(start(
        "testsuite",
        &[
            ("name", &s.member),
            ("tests", &r.cases.len().to_string()),
            (
                "failures",
                &(count(r, Status::Failed) + count(r, Status::Interrupted)).to_string(),
            ),
            ("errors", "0"),
            ("skipped", &count(r, Status::Skipped).to_string()),
            ("time", &format!("{time:.3}")),
            ("timestamp", &rfc3339(r.started_ms)),
        ],
    )))?;
    for c in &r.cases {
        let classname = format!("{}.{}", s.member, c.suite);
        let attrs = [
            ("name", c.id.as_str()),
            ("classname", classname.as_str()),
            ("time", &format!("{:.3}", c.duration_seconds)),
        ];
        let child = match c.status {
            Status::Passed => None,
            Status::Failed => Some(("failure", "assertion")),
            Status::Interrupted => Some(("failure", "interrupted")),
            Status::Skipped => Some(("skipped", "")),
        };
        match child {
            None => w.write_event(Event::Empty(start("testcase", &attrs)))?,
            Some((tag, kind)) => {
                w.write_event(Event::Start(start("testcase", &attrs)))?;
                let first = c.message.lines().next().unwrap_or_default();
                if tag == "skipped" {
                    w.write_event(Event::Empty(start(tag, &[("message", first)])))?;
                } else {
                    w.write_event(Event::Start(start(
                        tag,
                        &[("message", first), ("type", kind)],
                    )))?;
                    w.write_event(Event::Text(BytesText::new(&c.message)))?;
                    w.write_event(Event::End(BytesEnd::new(tag)))?;
                }
                w.write_event(Event::End(BytesEnd::new("testcase")))?;
            }
        }
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{RESULTS, stored};
    use super::*;

    fn runs() -> Vec<Stored> {
        let mut west = stored("west", "");
        west.contents.reports.clear();
        west.contents.error =
            Some("Kubernetes API error while nodes: nodes is forbidden\nsecond line".into());
        vec![stored("east", RESULTS), west]
    }

    #[test]
    fn table_has_a_row_per_member_and_a_total() {
        let text = render_table(&rows(&runs()));
        let want = "\
MEMBER  PASSED  FAILED  SKIPPED  WHEN                  DRIFT  CONFIGMAP           STATE
east    1       1       1        2026-01-02T03:04:05Z  -      fleet/results-east  failed
west    0       0       0        2026-01-02T03:04:05Z  -      fleet/results-west  error: Kubernetes API error while nodes: nodes is forbidden
2 members: 1 passed, 1 failed, 1 skipped cases; 1 members without reports
";
        assert_eq!(text, want);
    }

    #[test]
    fn junit_has_a_suite_per_member() {
        let xml = render_junit(&runs()).unwrap();
        let want = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="aiconform fleet" tests="4" failures="1" errors="1">
    <testsuite name="east" tests="3" failures="1" errors="0" skipped="1" time="0.350" timestamp="2026-01-02T03:03:20Z">
        <testcase name="readiness/k8s-version" classname="east.readiness" time="0.100"/>
        <testcase name="readiness/gpu &quot;model&quot;" classname="east.readiness" time="0.250">
            <failure message="no &lt;H100&gt;" type="assertion">no &lt;H100&gt;</failure>
        </testcase>
        <testcase name="conformance/gpu-sharing" classname="east.conformance" time="0.000">
            <skipped message="not in 1.34"/>
        </testcase>
    </testsuite>
    <testsuite name="west" tests="1" failures="0" errors="1" skipped="0" timestamp="2026-01-02T03:04:05Z">
        <testcase name="run" classname="west" time="0.000">
            <error message="Kubernetes API error while nodes: nodes is forbidden" type="error">Kubernetes API error while nodes: nodes is forbidden
second line</error>
        </testcase>
    </testsuite>
</testsuites>
"#;
        assert_eq!(xml, want);
    }
}
