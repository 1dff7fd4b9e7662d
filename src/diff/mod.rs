//! Drift: what changed between two snapshots, and where a cluster no longer matches its
//! recipe. Pure: callers load the snapshots, recipe and release records.
//!
//! - [`facts`]: a snapshot as a tree of facts addressed by path
//!   (`nodes[gpu-a].agent.report.kernelRelease`), lists keyed by their natural key.
//! - [`compare`]: every added, removed and changed fact between two trees, sorted by path.
//! - [`recipe`]: recipe constraints that no longer hold and components whose deployed
//!   version differs from the recipe.

pub mod compare;
pub mod facts;
pub mod recipe;

pub use compare::{Change, ChangeKind, SnapshotDiff, diff_snapshots};
pub use recipe::{ComponentDrift, DeployedComponent, DriftStatus, RecipeDrift};
