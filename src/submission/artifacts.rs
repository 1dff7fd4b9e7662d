//! Test artifacts as evidence (hybrid verification, from 1.37): a PRODUCT.yaml evidence entry
//! `file://<path>#<TestName>` points at a machine-readable test report inside the product
//! directory, and the program's CI (`scripts/validate.go`) parses it and refuses the
//! submission when the named test failed or is not there.
//!
//! As the CI does: the path is relative to the product directory (a leading
//! `vX.Y/<product>/` is stripped, `..` is refused); only files named `junit.xml` (JUnit XML
//! as gotestsum, go-junit-report and aiconform write it), `results.json` (`go test -json`
//! events) and `e2e.log` (`go test -v` output) are parsed; other files only have to exist.
//! A test matches the fragment by name, its subtests (`Name/...`) with it.

use std::path::Path;

use serde::Deserialize;

/// The artifact names the CI parses.
pub const JUNIT: &str = "junit.xml";
pub const GO_TEST_JSON: &str = "results.json";
pub const GO_TEST_LOG: &str = "e2e.log";

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One test of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
}

/// A `file://` evidence link, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLink {
    /// `/`-separated, relative to the product directory.
    pub path: String,
    /// The `#TestName` fragment.
    pub test: Option<String>,
}

impl FileLink {
    /// The file name, which decides how the CI parses it.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// A link or artifact the CI would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactError {
    #[error("`{link}` has no path after file://")]
    EmptyPath { link: String },
    #[error(
        "`{link}` is absolute; give the path relative to the product directory (file://results/junit.xml#Case)"
    )]
    Absolute { link: String },
    #[error("`{link}` leaves the product directory (`..`); the CI refuses it")]
    Escapes { link: String },
    #[error("{file} is not JUnit XML: {reason}")]
    Junit { file: String, reason: String },
    #[error(
        "{file} is not `go test -json` output (line {line}: {reason}); the program's CI reads every results.json that way (aiconform's run record is not: link its junit.xml instead)"
    )]
    GoTestJson {
        file: String,
        line: usize,
        reason: String,
    },
}

/// Parse `file://<path>[#Test]`. `product` is `(vX.Y, <product>)` of the submission: a
/// path starting with both is taken relative to the repository root, as the CI does.
pub fn parse_file_link(
    link: &str,
    product: Option<(&str, &str)>,
) -> Result<FileLink, ArtifactError> {
    let rest = link.strip_prefix("file://").unwrap_or(link);
    let (path, test) = match rest.split_once('#') {
        Some((p, t)) => (p, (!t.is_empty()).then(|| t.to_string())),
        None => (rest, None),
    };
    if path.starts_with('/') {
        return Err(ArtifactError::Absolute { link: link.into() });
    }
    let mut segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segs.contains(&"..") {
        return Err(ArtifactError::Escapes { link: link.into() });
    }
    if let Some((version, name)) = product
        && segs.len() > 2
        && segs[0] == version
        && segs[1] == name
    {
        segs.drain(..2);
    }
    if segs.is_empty() {
        return Err(ArtifactError::EmptyPath { link: link.into() });
    }
    Ok(FileLink {
        path: segs.join("/"),
        test,
    })
}

/// Whether the CI parses a file of this name.
pub fn is_parsed(file_name: &str) -> bool {
    [JUNIT, GO_TEST_JSON, GO_TEST_LOG].contains(&file_name)
}

/// The tests of an artifact the CI parses; `None` for other file names. `file` names it in
/// errors.
pub fn parse(
    file_name: &str,
    text: &str,
    file: &str,
) -> Option<Result<Vec<TestResult>, ArtifactError>> {
    match file_name {
        JUNIT => Some(parse_junit(text).map_err(|reason| ArtifactError::Junit {
            file: file.into(),
            reason,
        })),
        GO_TEST_JSON => {
            Some(
                parse_go_test_json(text).map_err(|(line, reason)| ArtifactError::GoTestJson {
                    file: file.into(),
                    line,
                    reason,
                }),
            )
        }
        GO_TEST_LOG => Some(Ok(parse_go_test_log(text))),
        _ => None,
    }
}

/// Read and parse `dir/<link path>`; `None` when the CI does not parse that name.
pub fn read(dir: &Path, link: &FileLink) -> Option<Result<Vec<TestResult>, String>> {
    if !is_parsed(link.file_name()) {
        return None;
    }
    let path = dir.join(&link.path);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", path.display()))),
    };
    parse(link.file_name(), &text, &link.path).map(|r| r.map_err(|e| e.to_string()))
}

/// `<testcase name=...>` elements; a `<failure>` or `<error>` child fails one, `<skipped>`
/// skips it.
pub fn parse_junit(text: &str) -> Result<Vec<TestResult>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut out = Vec::new();
    let mut current: Option<TestResult> = None;
    let mut saw_root = false;
    let name_of = |e: &quick_xml::events::BytesStart<'_>| -> Result<String, String> {
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            if a.key.as_ref() == b"name" {
                return a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map(|v| v.into_owned())
                    .map_err(|e| e.to_string());
            }
        }
        Err("a <testcase> has no name".into())
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) | Event::Empty(e)
                if matches!(e.name().as_ref(), b"testsuites" | b"testsuite") =>
            {
                saw_root = true;
            }
            Event::Start(e) if e.name().as_ref() == b"testcase" => {
                current = Some(TestResult {
                    name: name_of(&e)?,
                    outcome: Outcome::Passed,
                });
            }
            Event::Empty(e) if e.name().as_ref() == b"testcase" => out.push(TestResult {
                name: name_of(&e)?,
                outcome: Outcome::Passed,
            }),
            Event::Start(e) | Event::Empty(e) => {
                if let Some(c) = current.as_mut() {
                    match e.name().as_ref() {
                        b"failure" | b"error" => c.outcome = Outcome::Failed,
                        b"skipped" if c.outcome == Outcome::Passed => c.outcome = Outcome::Skipped,
                        _ => {}
                    }
                }
            }
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                out.extend(current.take());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err("no <testsuites> or <testsuite> element".into());
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GoTestEvent {
    action: String,
    #[serde(default)]
    test: Option<String>,
}

/// `go test -json`: one event per line; a test's last `pass`, `fail` or `skip` decides it.
pub fn parse_go_test_json(text: &str) -> Result<Vec<TestResult>, (usize, String)> {
    let mut out: Vec<TestResult> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let ev: GoTestEvent = serde_json::from_str(line).map_err(|e| (i + 1, e.to_string()))?;
        let Some(name) = ev.test else { continue };
        let outcome = match ev.action.as_str() {
            "pass" => Outcome::Passed,
            "fail" => Outcome::Failed,
            "skip" => Outcome::Skipped,
            _ => continue,
        };
        match out.iter_mut().find(|t| t.name == name) {
            Some(t) => t.outcome = outcome,
            None => out.push(TestResult { name, outcome }),
        }
    }
    Ok(out)
}

/// `go test -v`: `--- PASS: Name (0.01s)`, `--- FAIL: ...`, `--- SKIP: ...`, indented for
/// subtests.
pub fn parse_go_test_log(text: &str) -> Vec<TestResult> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix("--- ")?;
            let (word, rest) = l.split_once(": ")?;
            let outcome = match word {
                "PASS" => Outcome::Passed,
                "FAIL" => Outcome::Failed,
                "SKIP" => Outcome::Skipped,
                _ => return None,
            };
            let name = rest.split(" (").next()?.trim().to_string();
            Some(TestResult { name, outcome })
        })
        .collect()
}

/// The tests a fragment names: the test itself and its subtests.
pub fn matching<'a>(tests: &'a [TestResult], name: &str) -> Vec<&'a TestResult> {
    tests
        .iter()
        .filter(|t| {
            t.name == name
                || t.name
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_links_resolve_like_the_ci() {
        let p = Some(("v1.37", "acme"));
        assert_eq!(
            parse_file_link("file://results/junit.xml#gang-scheduling", p).unwrap(),
            FileLink {
                path: "results/junit.xml".into(),
                test: Some("gang-scheduling".into())
            }
        );
        assert_eq!(
            parse_file_link("file://v1.37/acme/results/e2e.log", p)
                .unwrap()
                .path,
            "results/e2e.log"
        );
        assert_eq!(
            parse_file_link("file://./results/junit.xml#", p).unwrap(),
            FileLink {
                path: "results/junit.xml".into(),
                test: None
            }
        );
        assert!(matches!(
            parse_file_link("file://../other/junit.xml", p),
            Err(ArtifactError::Escapes { .. })
        ));
        assert!(matches!(
            parse_file_link("file:///etc/junit.xml", p),
            Err(ArtifactError::Absolute { .. })
        ));
        assert!(matches!(
            parse_file_link("file://#x", p),
            Err(ArtifactError::EmptyPath { .. })
        ));
        assert_eq!(
            parse_file_link("file://results/junit.xml", p)
                .unwrap()
                .file_name(),
            "junit.xml"
        );
    }

    const JUNIT_TEXT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="aiconform" tests="4">
  <testsuite name="conformance" tests="4">
    <testcase name="gang-scheduling" classname="conformance" time="1.5"><system-out>ok</system-out></testcase>
    <testcase name="inference-gateway" classname="conformance"><failure message="no route" type="assertion">no route</failure></testcase>
    <testcase name="dra-support" classname="conformance"><skipped message="not in 1.37"/></testcase>
    <testcase name="TestX/Sub" classname="pkg"/>
  </testsuite>
</testsuites>"#;

    #[test]
    fn junit_outcomes_and_fragments() {
        let t = parse_junit(JUNIT_TEXT).unwrap();
        let outcome = |n: &str| {
            matching(&t, n)
                .iter()
                .map(|t| t.outcome)
                .collect::<Vec<_>>()
        };
        assert_eq!(outcome("gang-scheduling"), [Outcome::Passed]);
        assert_eq!(outcome("inference-gateway"), [Outcome::Failed]);
        assert_eq!(outcome("dra-support"), [Outcome::Skipped]);
        assert_eq!(outcome("TestX"), [Outcome::Passed], "subtests count");
        assert!(outcome("gang").is_empty(), "no prefix matches");
        assert!(parse_junit("{}").is_err());
        assert!(parse_junit("<testsuites><testcase></testsuites>").is_err());
    }

    #[test]
    fn go_test_json_and_log() {
        let json = "{\"Action\":\"run\",\"Test\":\"TestGang\"}\n{\"Action\":\"output\",\"Test\":\"TestGang\",\"Output\":\"x\"}\n{\"Action\":\"fail\",\"Test\":\"TestGang/Negative\"}\n{\"Action\":\"fail\",\"Test\":\"TestGang\"}\n{\"Action\":\"pass\",\"Test\":\"TestSecure\"}\n{\"Action\":\"fail\"}\n";
        let t = parse_go_test_json(json).unwrap();
        assert_eq!(
            t,
            [
                TestResult {
                    name: "TestGang/Negative".into(),
                    outcome: Outcome::Failed
                },
                TestResult {
                    name: "TestGang".into(),
                    outcome: Outcome::Failed
                },
                TestResult {
                    name: "TestSecure".into(),
                    outcome: Outcome::Passed
                },
            ]
        );
        let e = parse(
            "results.json",
            "{\n  \"kind\": \"RunResults\"\n}\n",
            "results/results.json",
        )
        .unwrap()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("results/results.json is not `go test -json` output (line 1"),
            "{e}"
        );
        let log = "=== RUN   TestSecure\n    --- PASS: TestSecure/Positive (0.50s)\n--- FAIL: TestSecure (1.00s)\n--- SKIP: TestSandbox (0.00s)\nok\n";
        let t = parse_go_test_log(log);
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].name, "TestSecure");
        assert_eq!(t[1].outcome, Outcome::Failed);
        assert_eq!(t[2].outcome, Outcome::Skipped);
        assert!(parse("evidence.md", "", "x").is_none());
    }
}
