//! Upgrade safety: moving a deployed stack (a recipe, a bundle, or the Helm releases in a
//! cluster) to a new recipe, component by component.
//!
//! - [`record`]: the upgrade records kept as data beside the recipes
//!   (`recipes/upgrades/<component>.yaml`), each step with its release-note source.
//! - [`check`]: the verdict per component (`safe`, `manual`, `blocked`, `unknown`).

pub mod check;
pub mod record;

pub use check::{Deployed, UpgradeReport, Verdict, check};
pub use record::{RecordError, UpgradeRecord};

use crate::bundle::BundleComponent;
use crate::deploy::release::ReleaseRecord;
use crate::recipe::model::{Component, ComponentType};

fn type_name(t: ComponentType) -> String {
    match t {
        ComponentType::Helm => "Helm",
        ComponentType::Kustomize => "Kustomize",
        ComponentType::Manifest => "Manifest",
    }
    .to_string()
}

/// The chart a Helm component installs (its name when the recipe names none).
fn chart_of(t: ComponentType, chart: &Option<String>, name: &str) -> Option<String> {
    match t {
        ComponentType::Helm => Some(chart.clone().unwrap_or_else(|| name.to_string())),
        _ => None,
    }
}

pub fn from_recipe(components: &[Component]) -> Vec<Deployed> {
    components
        .iter()
        .map(|c| Deployed {
            name: c.name.clone(),
            version: c.version.clone(),
            namespace: c.namespace.clone(),
            chart: chart_of(c.component_type, &c.chart, &c.name),
            source: c.source.clone(),
            kind: Some(type_name(c.component_type)),
        })
        .collect()
}

pub fn from_bundle(components: &[BundleComponent]) -> Vec<Deployed> {
    components
        .iter()
        .map(|c| Deployed {
            name: c.name.clone(),
            version: c.version.clone(),
            namespace: c.namespace.clone(),
            chart: chart_of(c.component_type, &c.chart, &c.name),
            source: c.source.clone(),
            kind: Some(type_name(c.component_type)),
        })
        .collect()
}

/// Helm releases as deployed components: release name as component name (as `deploy`
/// installs them), chart version as version. Source and type are not recorded.
pub fn from_releases(releases: &[ReleaseRecord]) -> Vec<Deployed> {
    releases
        .iter()
        .map(|r| Deployed {
            name: r.name.clone(),
            version: r.chart_version.clone(),
            namespace: r.namespace.clone(),
            chart: Some(r.chart.clone()).filter(|c| !c.is_empty()),
            source: None,
            kind: None,
        })
        .collect()
}
