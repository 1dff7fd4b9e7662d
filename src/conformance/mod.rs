//! CNCF Kubernetes AI conformance: the published checklists and what aiconform does with them.
//!
//! - [`version`]: which checklist applies (Kubernetes 1.33–1.37).
//! - [`catalog`]: the checklists themselves, built in from `conformance/*.yaml`.
//! - [`run_config`]: the user's declarations (`notApplicable`) for a run.
//! - [`mapping`]: cases to requirements for the selected version (runner side).
//! - [`verdict`]: a run's case results folded into one verdict per requirement.
//! - [`product`]: the product metadata file of a submission.
//! - [`submission`]: writing `vX.Y/<product>/PRODUCT.yaml`, evidence and README.
//! - [`check`]: validating a submission the way the program's CI does.
//! - [`artifacts`]: test reports linked as evidence (`file://…#Test`), parsed as the CI does.
//! - [`members`]: the CNCF members list `vendorName` must match.
//! - [`online`]: following a submission's URLs (`check --online`).

pub mod artifacts;
pub mod catalog;
pub mod check;
pub mod evidence;
pub mod mapping;
pub mod members;
pub mod online;
pub mod product;
pub mod run_config;
pub mod submission;
pub mod verdict;
pub mod version;

pub use catalog::{Checklist, Level, Requirement, checklist};
pub use mapping::{ConformanceRun, Gate};
pub use version::Version;
