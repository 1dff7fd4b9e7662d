//! The hydrated, version-locked recipe: the output of composition and the input of bundles,
//! readiness checks and suites.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ComponentType {
    Helm,
    Kustomize,
    /// Plain manifests applied with server-side apply.
    Manifest,
}

/// A resource whose health proves a component is up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Deployment, DaemonSet, StatefulSet or CustomResourceDefinition.
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// File name inside the component folder of a bundle.
    pub name: String,
    #[serde(default)]
    pub content: String,
    /// Where a recipe file takes `content` from instead: a YAML file, or a folder whose
    /// `*.yaml` files (recursively, in path order) are joined into one multi-document
    /// manifest; relative to the recipe file. [`crate::recipe::load_recipe_file`] reads it
    /// into `content` and clears it, so a loaded recipe is self-contained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    #[serde(rename = "type")]
    pub component_type: ComponentType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    pub version: String,
    pub namespace: String,
    #[serde(default)]
    pub dependency_refs: Vec<String>,
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    /// Overlays that contributed to this component, in application order.
    #[serde(default)]
    pub overlays: Vec<String>,
    #[serde(default)]
    pub values: serde_json::Value,
    #[serde(default)]
    pub manifests: Vec<Manifest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    pub name: String,
    pub value: String,
    /// Overlay that set the value that won.
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipeMetadata {
    pub name: String,
    pub tool_version: String,
    /// Overlays applied, least to most specific.
    pub applied_overlays: Vec<String>,
    /// Number of leaf configuration values over all components.
    pub value_count: usize,
    /// `--set` overrides applied after the overlays, in the order they took effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ValueOverride>,
    /// Overlays left out because their constraints fail against the snapshot the recipe
    /// was composed for (`recipe --snapshot`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_overlays: Vec<ExcludedOverlay>,
    /// Overlay constraints the snapshot could not evaluate (no such measurement); their
    /// overlays were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraint_warnings: Vec<String>,
}

/// One `--set COMPONENT:path=VALUE` as applied (component name resolved from any alias).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueOverride {
    pub component: String,
    /// Dotted path into the component's values; `enabled` removes or restores it.
    pub path: String,
    pub value: serde_json::Value,
    /// For `enabled: false`: components that depended on it and now deploy without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependents: Vec<String>,
}

/// An overlay left out of a snapshot-based recipe, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExcludedOverlay {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipe {
    pub api_version: String,
    pub kind: String,
    pub metadata: RecipeMetadata,
    pub criteria: BTreeMap<String, String>,
    pub constraints: Vec<Constraint>,
    pub deployment_order: Vec<String>,
    /// Components in deployment order.
    pub components: Vec<Component>,
    #[serde(default)]
    pub validation: serde_json::Value,
}

impl Recipe {
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// Count leaf values (scalars and arrays count once each; maps recurse).
pub fn count_values(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(m) => m.values().map(count_values).sum(),
        serde_json::Value::Null => 0,
        _ => 1,
    }
}
