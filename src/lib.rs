//! aiconform: make GPU Kubernetes clusters reproducible and prove it.
//!
//! Data flows one way. Inputs: [`recipe`] (overlays composed into a recipe) and [`snapshot`]
//! (cluster and node facts). Outputs: [`bundle`] (deployable artifacts) and [`report`]
//! (test results). In between: [`readiness`] (constraints vs snapshot), [`deploy`],
//! [`runner`] and [`suites`] (test cases against a [`cluster`] target), and [`server`]
//! (the same capabilities over HTTP). [`conformance`] holds the CNCF AI conformance
//! checklists, [`submission`] turns a run into a submission; [`attest`] signs a run's
//! evidence. Below the stages: [`expr`], [`version`], [`name`], [`health`], [`wait`],
//! [`pod`], [`duration`], [`clock`].
//! Day-N: [`diff`] (drift between snapshots, and from a recipe), [`upgrade`] (upgrade
//! safety per component) and [`mirror`] (images and charts to mirror); [`fleet`] keeps runs'
//! results in ConfigMaps and gathers those of many clusters.

pub mod attest;
pub mod bundle;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conformance;
pub mod deploy;
pub mod diff;
pub mod duration;
pub mod expr;
pub mod fleet;
pub mod health;
pub mod mirror;
pub mod name;
pub mod output;
pub mod pod;
pub mod probe;
pub mod readiness;
pub mod recipe;
pub mod report;
pub mod runner;
pub mod server;
pub mod snapshot;
pub mod submission;
pub mod suites;
pub mod upgrade;
pub mod version;
pub mod wait;
pub mod yaml;
