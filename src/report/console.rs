//! The console reporter: a run's events as libtest-style lines, written as they happen.
//!
//! ```text
//! == conformance: 3 cases ==
//! test conformance/dra-support     ... ok
//! test conformance/gang-scheduling ... FAILED (timed out)
//! test conformance/gpu-sharing     ... ignored (not part of the 1.34 checklist)
//!
//! failures:
//!
//! ---- conformance/gang-scheduling ----
//! timed out after 5m
//!
//! test result: FAILED. 1 passed; 1 failed; 1 ignored; finished in 300.02s
//!
//! aiconform: 1 passed, 1 failed, 1 skipped
//! ```
//!
//! Each line is a pure function of one event ([`line`]); [`Console`] only keeps the state
//! between events (the width of the phase's case names, its failures) and writes.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::runner::{CaseOutcome, CaseResult, EventSink, RunEvent, RunReport, Status};

use super::results::RunRecord;
use super::verdict;

/// Writes a run's progress to `out` and its warnings to `err`.
pub struct Console<O: Write, E: Write> {
    state: Mutex<State<O, E>>,
}

struct State<O, E> {
    out: O,
    err: E,
    /// Width of the current phase's case ids, so their outcomes line up.
    width: usize,
    /// In a phase that does not run: its cases get no line of their own.
    skipping: bool,
    /// The current phase's failures, told at its end.
    failures: Vec<(String, String)>,
}

impl<O: Write, E: Write> Console<O, E> {
    pub fn new(out: O, err: E) -> Self {
        Console {
            state: Mutex::new(State {
                out,
                err,
                width: 0,
                skipping: false,
                failures: Vec::new(),
            }),
        }
    }

    /// The writers back (tests read what was written).
    pub fn into_inner(self) -> (O, E) {
        let s = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        (s.out, s.err)
    }
}

impl<O: Write, E: Write> EventSink for Console<O, E> {
    fn event(&self, event: &RunEvent<'_>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            RunEvent::PhaseStarted { cases, .. } => {
                s.width = cases.iter().map(|c| c.id.len()).max().unwrap_or(0);
                s.skipping = false;
                s.failures.clear();
            }
            RunEvent::PhaseSkipped { .. } => s.skipping = true,
            RunEvent::CaseFinished { result } if result.status == Status::Failed => {
                s.failures
                    .push((result.spec.id.clone(), result.message.clone()));
            }
            _ => {}
        }
        let text = match event {
            RunEvent::CaseFinished { .. } if s.skipping => None,
            RunEvent::PhaseFinished { .. } => {
                let failures = std::mem::take(&mut s.failures);
                line(event, 0).map(|l| format!("{}{l}", failures_block(&failures)))
            }
            _ => line(event, s.width),
        };
        // A console that cannot be written to (closed pipe) must not stop the run.
        let _ = match (event, text) {
            (RunEvent::Warning { .. }, Some(t)) => s.err.write_all(t.as_bytes()),
            (_, Some(t)) => s.out.write_all(t.as_bytes()).and_then(|()| s.out.flush()),
            (_, None) => Ok(()),
        };
    }
}

/// What the console prints for one event, with case ids padded to `width`; `None` for
/// events it does not show.
pub fn line(event: &RunEvent<'_>, width: usize) -> Option<String> {
    match *event {
        RunEvent::RunStarted { .. } | RunEvent::CaseStarted { .. } => None,
        RunEvent::PhaseStarted { phase, cases } => {
            Some(format!("\n== {phase}: {} cases ==\n", cases.len()))
        }
        RunEvent::PhaseSkipped {
            phase,
            cases,
            reason,
        } => Some(format!("\nskipping {phase} ({cases} cases): {reason}\n")),
        RunEvent::CaseSlow { spec, elapsed } => Some(format!(
            "test {} has been running for over {}\n",
            spec.id,
            crate::duration::format(Duration::from_secs(elapsed.as_secs()))
        )),
        RunEvent::CaseRetrying {
            spec,
            attempt,
            of,
            last,
        } => Some(format!(
            "test {:width$} ... FAILED, retrying (attempt {attempt} of {of}): {}\n",
            spec.id,
            first_line(&last.message)
        )),
        RunEvent::CaseFinished { result } => Some(format!(
            "test {:width$} ... {}\n",
            result.spec.id,
            outcome_text(result)
        )),
        RunEvent::PhaseFinished {
            results, elapsed, ..
        } => Some(phase_summary(results, elapsed)),
        RunEvent::Warning { message } => Some(format!("warning: {message}\n")),
        RunEvent::RunFinished { report } => Some(run_summary(report)),
    }
}

/// `ok`, `FAILED` with how it failed, `ignored (reason)` or `interrupted`.
fn outcome_text(r: &CaseResult) -> String {
    match r.outcome() {
        CaseOutcome::Pass if r.is_flaky() => format!("ok ({})", r.message),
        CaseOutcome::Pass => "ok".to_string(),
        CaseOutcome::Fail => "FAILED".to_string(),
        CaseOutcome::Error => "FAILED (error)".to_string(),
        CaseOutcome::Panic => "FAILED (panicked)".to_string(),
        CaseOutcome::Timeout => "FAILED (timed out)".to_string(),
        CaseOutcome::Skip { reason } => format!("ignored ({reason})"),
        CaseOutcome::Interrupted => "interrupted".to_string(),
    }
}

/// libtest's failure block: each failed case's message under its id.
fn failures_block(failures: &[(String, String)]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nfailures:\n");
    for (id, message) in failures {
        out.push_str(&format!("\n---- {id} ----\n{message}\n"));
    }
    out
}

/// `test result: ok. 3 passed; 0 failed; 1 ignored; finished in 1.20s`
fn phase_summary(results: &[CaseResult], elapsed: Duration) -> String {
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let failed = count(Status::Failed);
    let interrupted = count(Status::Interrupted);
    let mut text = format!(
        "\ntest result: {}. {} passed; {failed} failed; {} ignored",
        if failed > 0 { "FAILED" } else { "ok" },
        count(Status::Passed),
        count(Status::Skipped),
    );
    if interrupted > 0 {
        text.push_str(&format!("; {interrupted} interrupted"));
    }
    text.push_str(&format!("; finished in {:.2}s\n", elapsed.as_secs_f64()));
    text
}

/// The run's summary line, then the conformance checklist when the run had one.
fn run_summary(report: &RunReport) -> String {
    let mut text = format!("\naiconform: {}\n", report.summary());
    if let Some(c) = &report.conformance {
        text.push_str(&verdict::render_table(
            c.checklist(),
            &RunRecord::from_report(report),
        ));
    }
    text
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::runner::result::{Attempt, Failure};
    use crate::runner::{CaseSpec, Phase};

    fn spec(id: &str) -> Arc<CaseSpec> {
        Arc::new(CaseSpec {
            id: id.into(),
            suite: "conformance".into(),
            name: id.rsplit('/').next().unwrap_or(id).into(),
            phase: Phase::Conformance,
            description: String::new(),
            params: serde_json::Value::Null,
            timeout: Duration::from_secs(300),
            retries: 0,
            flaky: false,
            needs_namespace: false,
            requirement: None,
        })
    }

    fn finished(id: &str, attempts: Vec<Attempt>) -> CaseResult {
        CaseResult::from_attempts(spec(id), attempts)
    }

    fn failed(failure: Failure, message: &str) -> Attempt {
        Attempt::failed(failure, message, Duration::from_secs(1))
    }

    fn passed() -> Attempt {
        Attempt::from_outcome(
            &crate::runner::Outcome::passed("fine"),
            Duration::from_secs(1),
        )
    }

    /// The line of a finished case padded to 30.
    fn case_line(r: &CaseResult) -> String {
        line(&RunEvent::CaseFinished { result: r }, 30).unwrap()
    }

    #[test]
    fn phase_lines() {
        let cases = [spec("conformance/a"), spec("conformance/b")];
        insta::assert_snapshot!(
            "phase_started",
            line(
                &RunEvent::PhaseStarted {
                    phase: Phase::Conformance,
                    cases: &cases
                },
                0
            )
            .unwrap()
        );
        insta::assert_snapshot!(
            "phase_skipped",
            line(
                &RunEvent::PhaseSkipped {
                    phase: Phase::Performance,
                    cases: 4,
                    reason: "deployment phase failed: deployment/gpu-operator"
                },
                0
            )
            .unwrap()
        );
        let results = [
            finished("conformance/a", vec![passed()]),
            finished("conformance/b", vec![failed(Failure::Assertion, "no")]),
            CaseResult::not_run(spec("conformance/c"), Status::Skipped, "not applicable"),
            CaseResult::not_run(spec("conformance/d"), Status::Interrupted, "Ctrl-C"),
        ];
        insta::assert_snapshot!(
            "phase_finished",
            line(
                &RunEvent::PhaseFinished {
                    phase: Phase::Conformance,
                    results: &results,
                    elapsed: Duration::from_millis(12_345),
                },
                0
            )
            .unwrap()
        );
    }

    #[test]
    fn case_lines_name_how_each_case_ended() {
        let lines: String = [
            finished("conformance/pass", vec![passed()]),
            finished(
                "conformance/flaky",
                vec![failed(Failure::Assertion, "first"), passed()],
            ),
            finished(
                "conformance/assertion",
                vec![failed(Failure::Assertion, "3 of 4 pods")],
            ),
            finished(
                "conformance/error",
                vec![failed(Failure::Error, "forbidden")],
            ),
            finished("conformance/panic", vec![failed(Failure::Panic, "bug")]),
            finished(
                "conformance/timeout",
                vec![failed(Failure::Timeout, "timed out after 5m")],
            ),
            CaseResult::not_run(
                spec("conformance/skip"),
                Status::Skipped,
                "not part of the 1.34 checklist",
            ),
            CaseResult::not_run(
                spec("conformance/interrupted"),
                Status::Interrupted,
                "interrupted while running (Ctrl-C)",
            ),
        ]
        .iter()
        .map(case_line)
        .collect();
        insta::assert_snapshot!("case_finished", lines);
    }

    #[test]
    fn progress_lines() {
        let s = spec("conformance/gang-scheduling");
        insta::assert_snapshot!(
            "case_slow",
            line(
                &RunEvent::CaseSlow {
                    spec: &s,
                    elapsed: Duration::from_millis(90_400)
                },
                30
            )
            .unwrap()
        );
        let last = failed(Failure::Assertion, "2 of 4 pods running\nmore detail");
        insta::assert_snapshot!(
            "case_retrying",
            line(
                &RunEvent::CaseRetrying {
                    spec: &s,
                    attempt: 1,
                    of: 3,
                    last: &last
                },
                30
            )
            .unwrap()
        );
        insta::assert_snapshot!(
            "warning",
            line(
                &RunEvent::Warning {
                    message: "could not delete namespace x"
                },
                0
            )
            .unwrap()
        );
        assert_eq!(line(&RunEvent::CaseStarted { spec: &s }, 30), None);
    }

    #[test]
    fn run_finished_line_is_the_summary() {
        let report = RunReport {
            results: vec![
                finished("conformance/a", vec![passed()]),
                finished("conformance/b", vec![failed(Failure::Timeout, "late")]),
            ],
            ..RunReport::default()
        };
        insta::assert_snapshot!(
            "run_finished",
            line(&RunEvent::RunFinished { report: &report }, 0).unwrap()
        );
    }

    #[test]
    fn console_pads_a_phase_and_tells_its_failures_at_its_end() {
        let console = Console::new(Vec::new(), Vec::new());
        let cases = [spec("conformance/a"), spec("conformance/longer-name")];
        let results = [
            finished("conformance/a", vec![passed()]),
            finished(
                "conformance/longer-name",
                vec![failed(Failure::Assertion, "3 of 4 pods")],
            ),
        ];
        console.event(&RunEvent::PhaseStarted {
            phase: Phase::Conformance,
            cases: &cases,
        });
        for r in &results {
            console.event(&RunEvent::CaseFinished { result: r });
        }
        console.event(&RunEvent::PhaseFinished {
            phase: Phase::Conformance,
            results: &results,
            elapsed: Duration::from_secs(2),
        });
        console.event(&RunEvent::PhaseSkipped {
            phase: Phase::Performance,
            cases: 1,
            reason: "conformance failed",
        });
        let skipped = CaseResult::not_run(spec("performance/x"), Status::Skipped, "skip");
        console.event(&RunEvent::CaseFinished { result: &skipped });
        console.event(&RunEvent::Warning { message: "left" });
        let (out, err) = console.into_inner();
        insta::assert_snapshot!("console_phase", String::from_utf8(out).unwrap());
        assert_eq!(String::from_utf8(err).unwrap(), "warning: left\n");
    }
}
