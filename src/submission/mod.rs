//! CNCF AI conformance submissions built from a run: the product file, the submission
//! directory with its evidence, and the checks the program's CI runs on it.
//!
//! - [`product`]: the product metadata file of a submission.
//! - [`write`]: writing `vX.Y/<product>/PRODUCT.yaml`, evidence and README.
//! - [`evidence`]: each requirement's evidence text from a run's record.
//! - [`check`]: validating a submission the way the program's CI does.
//! - [`artifacts`]: test reports linked as evidence (`file://…#Test`), parsed as the CI does.
//! - [`members`]: the CNCF members list `vendorName` must match.
//! - [`online`]: following a submission's URLs (`check --online`).

pub mod artifacts;
pub mod check;
pub mod evidence;
pub mod members;
pub mod online;
pub mod product;
pub mod write;
