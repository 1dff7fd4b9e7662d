//! JUnit XML as Jenkins and GitLab read it, valid against the Jenkins xunit plugin's
//! `junit-10.xsd` (`ci/schemas/`): one `<testsuite>` per suite, one `<testcase>` per case
//! (classname = suite), failures with message and type, skips, and failed attempts of flaky
//! cases as `<flakyFailure>` (passed) or `<rerunFailure>` (still failing). The schema allows
//! `<properties>` only on suites: a suite carries its phase, recipe and checklist version
//! (`aiConformance`), and per case `<case>.requirement`, `<case>.requirementLevel` and
//! `<case>.flaky`. Cases that evaluate every node add one test case per node
//! (`xid[gpu-1]`).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::ReportError;
use crate::conformance::ConformanceRun;
use crate::runner::case::NodeResult;
use crate::runner::result::{Attempt, CaseResult, Failure, RunReport, Status};

/// A case's `<testcase name>`: its id without the `suite/` prefix (its suite is the
/// classname). Evidence links name cases by it (`file://results/junit.xml#gang-scheduling`).
pub fn case_name<'a>(id: &'a str, suite: &str) -> &'a str {
    id.strip_prefix(suite)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(id)
}

/// The JUnit `type` of a failed attempt: how it failed.
fn failure_type(a: &Attempt) -> &'static str {
    a.failure.unwrap_or(Failure::Assertion).as_str()
}

/// `time` as the schema's SUREFIRE_TIME: seconds with three decimals.
fn secs(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// One element with attributes and optional text content.
struct Element<'a> {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    text: Option<&'a str>,
}

impl<'a> Element<'a> {
    fn new(name: &'static str) -> Self {
        Element {
            name,
            attrs: Vec::new(),
            text: None,
        }
    }

    fn attr(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.attrs.push((key, value.into()));
        self
    }

    fn text(mut self, text: &'a str) -> Self {
        self.text = Some(text);
        self
    }

    fn write(self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        let mut start = BytesStart::new(self.name);
        for (k, v) in &self.attrs {
            start.push_attribute((*k, v.as_str()));
        }
        match self.text {
            None => w.write_event(Event::Empty(start)),
            Some(text) => {
                w.write_event(Event::Start(start))?;
                w.write_event(Event::Text(BytesText::new(text)))?;
                w.write_event(Event::End(BytesEnd::new(self.name)))
            }
        }
    }
}

/// A failed earlier attempt: `<flakyFailure>` when the case passed later, `<rerunFailure>`
/// when it kept failing. The schema gives these no `time`; the text says which attempt and
/// how long it took.
fn rerun<'a>(tag: &'static str, n: usize, total: usize, a: &'a Attempt) -> (Element<'a>, String) {
    let text = format!("attempt {n} of {total} took {}s", secs(a.duration));
    (
        Element::new(tag)
            .attr("message", a.message.as_str())
            .attr("type", failure_type(a)),
        text,
    )
}

/// Per-case properties. `<testcase>` has no `<properties>` in the Jenkins xunit schema, so
/// they go into the suite's, named `<case>.<key>`.
fn case_properties(r: &CaseResult, conformance: Option<&ConformanceRun>) -> Vec<(String, String)> {
    let name = case_name(&r.spec.id, &r.spec.suite);
    let mut props = Vec::new();
    if r.is_flaky() {
        props.push((format!("{name}.flaky"), "true".to_string()));
    }
    if let Some(req) = &r.spec.requirement {
        props.push((format!("{name}.requirement"), req.clone()));
        if let Some(c) = conformance {
            props.push((format!("{name}.requirementLevel"), c.level_label(req)));
        }
    }
    props
}

fn write_case(w: &mut Writer<Vec<u8>>, r: &CaseResult) -> std::io::Result<()> {
    let mut start = BytesStart::new("testcase");
    start.push_attribute(("name", case_name(&r.spec.id, &r.spec.suite)));
    start.push_attribute(("classname", r.spec.suite.as_str()));
    start.push_attribute(("time", secs(r.duration).as_str()));
    w.write_event(Event::Start(start))?;
    let total = r.attempts.len();
    let earlier = r.attempts.iter().take(total.saturating_sub(1)).enumerate();
    let earlier: Vec<(usize, &Attempt)> = earlier
        .filter(|(_, a)| a.status == Status::Failed)
        .map(|(i, a)| (i + 1, a))
        .collect();
    match r.status {
        Status::Passed => {
            for (n, a) in &earlier {
                let (el, text) = rerun("flakyFailure", *n, total, a);
                el.text(&text).write(w)?;
            }
        }
        Status::Failed => {
            let kind = r.attempts.last().map_or("assertion", failure_type);
            Element::new("failure")
                .attr("message", r.message.as_str())
                .attr("type", kind)
                .text(&r.message)
                .write(w)?;
            for (n, a) in &earlier {
                let (el, text) = rerun("rerunFailure", *n, total, a);
                el.text(&text).write(w)?;
            }
        }
        Status::Skipped => Element::new("skipped")
            .attr("message", r.message.as_str())
            .write(w)?,
        Status::Interrupted => Element::new("skipped")
            .attr("message", r.message.as_str())
            .attr("type", "interrupted")
            .write(w)?,
    }
    if !r.message.is_empty() {
        Element::new("system-out").text(&r.message).write(w)?;
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

/// One per-node result of a case that evaluates every node (`xid[gpu-1]`).
fn write_node_case(w: &mut Writer<Vec<u8>>, n: &NodeResult, suite: &str) -> std::io::Result<()> {
    let name = super::nodes::result_name(case_name(&n.case_id, suite), &n.node);
    let mut start = BytesStart::new("testcase");
    start.push_attribute(("name", name.as_str()));
    start.push_attribute(("classname", suite));
    w.write_event(Event::Start(start))?;
    match n.status {
        Status::Passed => {}
        Status::Failed => Element::new("failure")
            .attr("message", n.message.as_str())
            .attr("type", Failure::Assertion.as_str())
            .text(&n.message)
            .write(w)?,
        Status::Skipped | Status::Interrupted => Element::new("skipped")
            .attr("message", n.message.as_str())
            .write(w)?,
    }
    if !n.message.is_empty() {
        Element::new("system-out").text(&n.message).write(w)?;
    }
    w.write_event(Event::End(BytesEnd::new("testcase")))
}

/// Tests, failures and skips of a suite's cases and per-node results.
fn counts(results: &[&CaseResult], nodes: &[&NodeResult]) -> (usize, usize, usize) {
    let statuses = results
        .iter()
        .map(|r| r.status)
        .chain(nodes.iter().map(|n| n.status));
    statuses.fold((0, 0, 0), |(t, f, s), st| match st {
        Status::Passed => (t + 1, f, s),
        Status::Failed => (t + 1, f + 1, s),
        Status::Skipped | Status::Interrupted => (t + 1, f, s + 1),
    })
}

fn write_suite(
    w: &mut Writer<Vec<u8>>,
    report: &RunReport,
    (suite, phase, results): (&str, crate::runner::Phase, Vec<&CaseResult>),
) -> std::io::Result<()> {
    let nodes = super::nodes::of_suite(report, suite);
    let (tests, failures, skipped) = counts(&results, &nodes);
    let mut start = BytesStart::new("testsuite");
    start.push_attribute(("name", suite));
    start.push_attribute(("tests", tests.to_string().as_str()));
    start.push_attribute(("failures", failures.to_string().as_str()));
    start.push_attribute(("errors", "0"));
    start.push_attribute(("skipped", skipped.to_string().as_str()));
    let time: std::time::Duration = results.iter().map(|r| r.duration).sum();
    start.push_attribute(("time", secs(time).as_str()));
    w.write_event(Event::Start(start))?;

    let mut props = vec![
        ("phase".to_string(), phase.as_str().to_string()),
        ("recipe".to_string(), report.recipe.clone()),
    ];
    if let Some(c) = &report.conformance
        && results.iter().any(|r| r.spec.requirement.is_some())
    {
        props.push(("aiConformance".to_string(), c.version.to_string()));
    }
    for r in &results {
        props.extend(case_properties(r, report.conformance.as_ref()));
    }
    w.write_event(Event::Start(BytesStart::new("properties")))?;
    for (name, value) in &props {
        Element::new("property")
            .attr("name", name.as_str())
            .attr("value", value.as_str())
            .write(w)?;
    }
    w.write_event(Event::End(BytesEnd::new("properties")))?;
    for r in &results {
        write_case(w, r)?;
    }
    for n in nodes {
        write_node_case(w, n, suite)?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))
}

/// The JUnit XML document, valid against the Jenkins xunit plugin's `junit-10.xsd`.
pub fn render(report: &RunReport) -> Result<String, ReportError> {
    let render = || -> std::io::Result<Vec<u8>> {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 4);
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let all: Vec<&CaseResult> = report.results.iter().collect();
        let nodes: Vec<&NodeResult> = report.metrics.nodes.iter().collect();
        let (tests, failures, _) = counts(&all, &nodes);
        let mut start = BytesStart::new("testsuites");
        start.push_attribute(("name", "aiconform"));
        start.push_attribute(("tests", tests.to_string().as_str()));
        start.push_attribute(("failures", failures.to_string().as_str()));
        start.push_attribute(("errors", "0"));
        let time: std::time::Duration = all.iter().map(|r| r.duration).sum();
        start.push_attribute(("time", secs(time).as_str()));
        w.write_event(Event::Start(start))?;
        for suite in report.by_suite() {
            write_suite(&mut w, report, suite)?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuites")))?;
        Ok(w.into_inner())
    };
    let bytes = render().map_err(|e| ReportError::Render {
        what: "JUnit",
        message: e.to_string(),
    })?;
    let mut xml = String::from_utf8(bytes).map_err(|e| ReportError::Render {
        what: "JUnit",
        message: e.to_string(),
    })?;
    xml.push('\n');
    Ok(xml)
}
