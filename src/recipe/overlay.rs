//! The on-disk schema of an overlay file in `recipes/overlays/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::criteria::CriteriaSpec;
use super::model::{ComponentType, HealthCheck};

pub const API_VERSION: &str = "aiconform.dev/v1alpha1";

/// One layer of configuration, selected when its criteria match the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverlayFile {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parent overlay applied before this one, even if its own criteria do not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default)]
    pub criteria: CriteriaSpec,
    #[serde(default)]
    pub constraints: Vec<ConstraintSpec>,
    #[serde(default)]
    pub component_refs: Vec<ComponentRef>,
    /// Validation parameters (e.g. fabric bandwidth thresholds), deep-merged like values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintSpec {
    /// Measurement path `Type.subtype.key`, e.g. `K8s.server.version`.
    pub name: String,
    /// Exact value or comparison, e.g. `>= 1.32.4`.
    pub value: String,
}

/// A component as declared (or amended) by one overlay. Every field but `name` is optional
/// so a later overlay can change just the version, add values, or disable the component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentRef {
    pub name: String,
    #[serde(default, rename = "type")]
    pub component_type: Option<ComponentType>,
    /// Helm repository URL (or Git/OCI source for Kustomize).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub chart: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Path relative to the recipes root, deep-merged into the component's values.
    #[serde(default)]
    pub values_file: Option<String>,
    /// Inline values, merged after `valuesFile`.
    #[serde(default)]
    pub values: Option<serde_json::Value>,
    /// Paths relative to the recipes root of extra Kubernetes manifests.
    #[serde(default)]
    pub manifest_files: Vec<String>,
    #[serde(default)]
    pub dependency_refs: Vec<String>,
    #[serde(default)]
    pub health_checks: Option<Vec<HealthCheck>>,
    /// `false` removes a component an earlier layer added.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Conformance requirements this component proves, keyed by the suite's validation
    /// section (`robustController`, `gangScheduling`, ...): the case parameters that name it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conformance: BTreeMap<String, ConformanceSpec>,
}

/// The parameters with which a component proves one conformance requirement, and where the
/// facts in them (CRD, namespace, labels, Service names) come from upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConformanceSpec {
    /// Upstream file(s) the parameters are taken from, e.g. a chart template at a version.
    pub source: String,
    /// Case parameters, as the case reads them from `validation.<requirement>`.
    pub params: serde_json::Value,
}
