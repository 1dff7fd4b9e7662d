//! The test runner: phases, filters, timeouts, retries, per-case namespaces and cleanup.

pub mod case;

pub use case::{CaseContext, CaseFn, CaseSpec, Outcome, Phase};
