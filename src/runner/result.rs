//! What a run produced: one result per planned case, plus collected metrics. Reports
//! (`crate::report`) render this; nothing here does I/O.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::audit::ApiWrite;
pub use super::case::Status;
use super::case::{CaseSpec, MetricsData, Outcome, Phase};

/// Why a failed attempt failed: the case's own verdict, or how the runner saw it end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The case ran and judged the cluster wanting.
    Assertion,
    /// The case returned an error (an API call failed, bad input).
    Error,
    /// The case panicked.
    Panic,
    /// The case did not finish within its timeout.
    Timeout,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Assertion => "assertion",
            Failure::Error => "error",
            Failure::Panic => "panic",
            Failure::Timeout => "timeout",
        }
    }
}

/// One execution of a case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub status: Status,
    pub message: String,
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// Set when `status` is failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl Attempt {
    pub fn from_outcome(o: &Outcome, duration: Duration) -> Self {
        let (status, message) = match o {
            Outcome::Passed { message } => (Status::Passed, message.clone()),
            Outcome::Failed { message } => (Status::Failed, message.clone()),
            Outcome::Skipped { reason } => (Status::Skipped, reason.clone()),
        };
        Attempt {
            status,
            message,
            duration,
            failure: (status == Status::Failed).then_some(Failure::Assertion),
        }
    }

    /// A failed attempt of the given kind.
    pub fn failed(failure: Failure, message: impl Into<String>, duration: Duration) -> Self {
        Attempt {
            status: Status::Failed,
            message: message.into(),
            duration,
            failure: Some(failure),
        }
    }

    /// A skipped attempt.
    pub fn skipped(reason: impl Into<String>, duration: Duration) -> Self {
        Attempt {
            status: Status::Skipped,
            message: reason.into(),
            duration,
            failure: None,
        }
    }
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The result of one planned case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub spec: Arc<CaseSpec>,
    pub status: Status,
    /// Final message: pass detail, failure reason, skip reason.
    pub message: String,
    /// Every attempt in order; empty when the case never ran (skipped by phase gating,
    /// interrupted before it started).
    pub attempts: Vec<Attempt>,
    /// Total time over all attempts.
    pub duration: Duration,
    /// Writes the case sent to the API server over all attempts (what it created).
    pub writes: Vec<ApiWrite>,
    /// Writes beyond [`crate::runner::audit::MAX_WRITES`], counted only.
    pub writes_left_out: usize,
}

impl CaseResult {
    /// A case that did not run.
    pub fn not_run(spec: Arc<CaseSpec>, status: Status, message: impl Into<String>) -> Self {
        CaseResult {
            spec,
            status,
            message: message.into(),
            attempts: Vec::new(),
            duration: Duration::ZERO,
            writes: Vec::new(),
            writes_left_out: 0,
        }
    }

    /// Build the result from its attempts: the last attempt decides the status.
    pub fn from_attempts(spec: Arc<CaseSpec>, attempts: Vec<Attempt>) -> Self {
        let duration = attempts.iter().map(|a| a.duration).sum();
        let (status, mut message) = match attempts.last() {
            Some(a) => (a.status, a.message.clone()),
            None => (Status::Interrupted, "not run".to_string()),
        };
        if status == Status::Passed && attempts.len() > 1 {
            let note = format!("flaky: passed on attempt {}", attempts.len());
            message = if message.is_empty() {
                note
            } else {
                format!("{note}; {message}")
            };
        } else if status == Status::Failed && attempts.len() > 1 {
            message = format!("failed all {} attempts; last: {message}", attempts.len());
        }
        CaseResult {
            spec,
            status,
            message,
            attempts,
            duration,
            writes: Vec::new(),
            writes_left_out: 0,
        }
    }

    /// Passed only after one or more failed attempts.
    pub fn is_flaky(&self) -> bool {
        self.status == Status::Passed && self.attempts.len() > 1
    }

    /// Attempts after the first.
    pub fn retries(&self) -> u32 {
        self.attempts.len().saturating_sub(1) as u32
    }
}

/// How a case ended, as reporters tell it: the status with the kind of failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOutcome {
    Pass,
    /// The case judged the cluster wanting.
    Fail,
    /// The case returned an error (an API call failed, bad input).
    Error,
    Panic,
    Timeout,
    Skip {
        reason: String,
    },
    Interrupted,
}

impl CaseOutcome {
    /// A failed attempt's outcome by its failure kind (an assertion when unknown).
    pub fn of_failure(failure: Option<Failure>) -> Self {
        match failure {
            Some(Failure::Error) => CaseOutcome::Error,
            Some(Failure::Panic) => CaseOutcome::Panic,
            Some(Failure::Timeout) => CaseOutcome::Timeout,
            Some(Failure::Assertion) | None => CaseOutcome::Fail,
        }
    }
}

impl CaseResult {
    /// The typed outcome: the status, and for a failure how its last attempt ended.
    pub fn outcome(&self) -> CaseOutcome {
        match self.status {
            Status::Passed => CaseOutcome::Pass,
            Status::Skipped => CaseOutcome::Skip {
                reason: self.message.clone(),
            },
            Status::Interrupted => CaseOutcome::Interrupted,
            Status::Failed => CaseOutcome::of_failure(self.attempts.last().and_then(|a| a.failure)),
        }
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub interrupted: usize,
    pub flaky: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )?;
        if self.flaky > 0 {
            write!(f, " ({} flaky)", self.flaky)?;
        }
        if self.interrupted > 0 {
            write!(f, ", {} interrupted", self.interrupted)?;
        }
        Ok(())
    }
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    pub tool_version: String,
    pub recipe: String,
    /// The run's id (namespaces carry it as a label).
    pub run_id: String,
    /// The AI conformance checklist the cases reported against, if one was selected.
    pub conformance: Option<crate::conformance::ConformanceRun>,
    /// The cluster's Kubernetes version (`gitVersion`), when a cluster was targeted.
    pub cluster_version: Option<String>,
    /// Unix milliseconds; CTRF requires start and stop.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Cases in plan order.
    pub results: Vec<CaseResult>,
    pub metrics: MetricsData,
    pub interrupted: bool,
    /// Problems that did not fail a case (namespace cleanup, ...).
    pub warnings: Vec<String>,
}

impl RunReport {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.results {
            match r.status {
                Status::Passed => s.passed += 1,
                Status::Failed => s.failed += 1,
                Status::Skipped => s.skipped += 1,
                Status::Interrupted => s.interrupted += 1,
            }
            if r.is_flaky() {
                s.flaky += 1;
            }
        }
        s
    }

    /// 0 all good, 1 a case failed, 130 interrupted.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.results.iter().any(|r| r.status == Status::Failed) {
            1
        } else {
            0
        }
    }

    /// Suites in first-appearance order with their results.
    pub fn by_suite(&self) -> Vec<(&str, Phase, Vec<&CaseResult>)> {
        let mut out: Vec<(&str, Phase, Vec<&CaseResult>)> = Vec::new();
        for r in &self.results {
            match out.iter_mut().find(|(s, _, _)| *s == r.spec.suite) {
                Some((_, _, v)) => v.push(r),
                None => out.push((&r.spec.suite, r.spec.phase, vec![r])),
            }
        }
        out
    }
}
