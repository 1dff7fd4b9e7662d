//! The test runner: phases, filters, timeouts, retries, per-case namespaces and cleanup.
//!
//! - [`suite`]: suite definitions (`suites/*.yaml`), built in or from `--suites-dir`.
//! - [`plan`]: which cases run, in which order (pure).
//! - [`policy`]: retries, phase gating, namespace names (pure).
//! - [`exec`]: running a plan against a cluster (I/O), telling an [`EventSink`] what happens.
//! - [`event`]: the typed events of a run, consumed by the reporters in [`crate::report`].
//! - [`result`]: what a run produced, rendered by [`crate::report`].
//! - [`audit`]: the writes each case sends to the API server, kept as evidence.

pub mod audit;
pub mod builtin;
pub mod case;
pub mod event;
pub mod exec;
pub mod namespace;
pub mod plan;
pub mod policy;
pub mod result;
pub mod suite;

pub use case::{CaseContext, CaseFn, CaseSpec, Outcome, ParamError, Phase};
pub use event::{EventSink, RunEvent};
pub use exec::{Interrupter, Resolver, RunEnv, RunOptions, Runner};
pub use plan::{Plan, Selection, plan};
pub use result::{CaseOutcome, CaseResult, RunReport, Status};
pub use suite::SuiteSet;
