//! What a run tells its readers while it goes: typed events handed to an [`EventSink`].
//!
//! The runner never prints or exits; the console, the report files and anything else that
//! wants to follow a run consume these events (`crate::report::console`,
//! `crate::report::ReportFiles`). Events borrow from the runner and arrive in order on the
//! thread that called [`crate::runner::Runner::execute`].

use std::time::Duration;

use super::case::{CaseSpec, Phase};
use super::result::{Attempt, CaseResult, RunReport};

/// One thing that happened in a run.
#[derive(Debug, Clone, Copy)]
pub enum RunEvent<'a> {
    /// Before anything runs: the run's id and the number of planned cases.
    RunStarted { run_id: &'a str, cases: usize },
    /// A phase starts running these cases.
    PhaseStarted {
        phase: Phase,
        cases: &'a [std::sync::Arc<CaseSpec>],
    },
    /// A phase does not run: an earlier phase failed (or the run was interrupted). Its
    /// cases follow as [`RunEvent::CaseFinished`], skipped or interrupted.
    PhaseSkipped {
        phase: Phase,
        cases: usize,
        reason: &'a str,
    },
    /// A case's first attempt starts.
    CaseStarted { spec: &'a CaseSpec },
    /// An attempt has been running for `elapsed` and is still going.
    CaseSlow {
        spec: &'a CaseSpec,
        elapsed: Duration,
    },
    /// Attempt `attempt` of `of` failed (`last`); the case runs again.
    CaseRetrying {
        spec: &'a CaseSpec,
        attempt: u32,
        of: u32,
        last: &'a Attempt,
    },
    /// A case's result, final ([`CaseResult::outcome`] tells how it ended).
    CaseFinished { result: &'a CaseResult },
    /// Every case of a phase has a result.
    PhaseFinished {
        phase: Phase,
        results: &'a [CaseResult],
        elapsed: Duration,
    },
    /// A problem that did not fail a case (namespace cleanup, ...).
    Warning { message: &'a str },
    /// The whole run, as the report files record it.
    RunFinished { report: &'a RunReport },
}

/// Consumes a run's events.
pub trait EventSink {
    fn event(&self, event: &RunEvent<'_>);
}

/// Drops every event (runs whose caller reads only the final report).
impl EventSink for () {
    fn event(&self, _: &RunEvent<'_>) {}
}

/// Hands every event to each sink in turn.
impl<S: EventSink + ?Sized> EventSink for [&S] {
    fn event(&self, event: &RunEvent<'_>) {
        for sink in self {
            sink.event(event);
        }
    }
}

impl<S: EventSink + ?Sized, const N: usize> EventSink for [&S; N] {
    fn event(&self, event: &RunEvent<'_>) {
        self.as_slice().event(event);
    }
}
