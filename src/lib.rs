//! aiconform: make GPU Kubernetes clusters reproducible and prove it.
//!
//! Stages, each a module: [`recipe`] (compose overlays) → bundle → deploy → runner/suites →
//! report. Snapshot and recipe go in; bundles and reports come out.

pub mod output;
pub mod recipe;
pub mod yaml;
