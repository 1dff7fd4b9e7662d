//! CNCF Kubernetes AI conformance: the published checklists, below the runner and the
//! reports that use them. A run's verdicts per requirement are in [`crate::report::verdict`];
//! submissions built from a run in [`crate::submission`].
//!
//! - [`version`]: which checklist applies (Kubernetes 1.33–1.37).
//! - [`catalog`]: the checklists themselves, built in from `conformance/*.yaml`.
//! - [`run_config`]: the user's declarations (`notApplicable`) for a run.
//! - [`mapping`]: cases to requirements for the selected version (runner side).

pub mod catalog;
pub mod mapping;
pub mod run_config;
pub mod version;

pub use catalog::{Checklist, Level, Requirement, checklist};
pub use mapping::{ConformanceRun, Gate};
pub use version::Version;
