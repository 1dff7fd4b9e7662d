//! `bundle.yaml`: what a bundle holds (components in deployment order, every file with its
//! SHA-256) and where it came from (recipe digest, tool version, options). `bundle verify`
//! checks a directory against it; `deploy` reads the components from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::BundleError;
use super::options::{Deployer, Toleration};
use crate::recipe::model::{ComponentType, HealthCheck, Recipe};

pub const BUNDLE_API_VERSION: &str = "aiconform.dev/v1alpha1";
pub const BUNDLE_KIND: &str = "Bundle";
/// The bundle manifest, at the top of every bundle. It lists every other file.
pub const BUNDLE_FILE: &str = "bundle.yaml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleManifest {
    pub api_version: String,
    pub kind: String,
    /// aiconform version that rendered the bundle.
    pub tool_version: String,
    pub deployer: Deployer,
    /// Rendered with `--serial`: one component at a time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serial: bool,
    pub recipe: RecipeRef,
    pub placement: Placement,
    /// In deployment order.
    pub components: Vec<BundleComponent>,
    /// Every file of the bundle except `bundle.yaml`, sorted by path.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipeRef {
    pub name: String,
    /// `sha256:<hex>` of the recipe's canonical JSON (see [`recipe_digest`]).
    pub digest: String,
    #[serde(default)]
    pub criteria: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accelerated_node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accelerated_tolerations: Vec<Toleration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleComponent {
    pub name: String,
    /// Folder inside the bundle, e.g. `01-cert-manager`.
    pub folder: String,
    #[serde(rename = "type")]
    pub component_type: ComponentType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Bundle path of the vendored chart archive (`charts/<chart>-<version>.tgz`, from
    /// `bundle --vendor-charts`): the chart is installed from there, never from `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_archive: Option<String>,
    pub version: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependency_refs: Vec<String>,
    /// Bundle path of the Helm values file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<String>,
    /// Bundle path of the kustomization directory (Kustomize components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomization: Option<String>,
    /// Bundle paths of extra manifests, applied in this order after the chart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// What `deploy` waits for; namespaces filled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<HealthCheck>,
}

/// Where `helm upgrade --install` takes a component's chart from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartLocation {
    /// A vendored archive: its bundle path. No repository, no version, no network.
    Archive(String),
    /// The chart source: a chart reference and, for classic repositories, `--repo`.
    Remote { chart: String, repo: Option<String> },
}

impl BundleComponent {
    /// The vendored archive when there is one, else the chart source
    /// ([`BundleComponent::helm_chart_ref`]).
    pub fn chart_location(&self) -> ChartLocation {
        match &self.chart_archive {
            Some(path) => ChartLocation::Archive(path.clone()),
            None => {
                let (chart, repo) = self.helm_chart_ref();
                ChartLocation::Remote { chart, repo }
            }
        }
    }

    /// The chart reference and `--repo` for `helm upgrade --install`: `oci://` sources name
    /// the chart by URL, classic repositories go through `--repo`.
    pub fn helm_chart_ref(&self) -> (String, Option<String>) {
        let chart = self.chart.clone().unwrap_or_else(|| self.name.clone());
        match &self.source {
            Some(src) if src.starts_with("oci://") => {
                (format!("{}/{}", src.trim_end_matches('/'), chart), None)
            }
            Some(src) => (chart, Some(src.clone())),
            None => (chart, None),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Key-sorted JSON: the same recipe always gives the same bytes, whatever map type the
/// model uses.
fn canonical(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// `sha256:<hex>` of the recipe as compact JSON with sorted keys.
pub fn recipe_digest(recipe: &Recipe) -> Result<String, BundleError> {
    let encode = |e: serde_json::Error| BundleError::Encode {
        what: "recipe".into(),
        message: e.to_string(),
    };
    let value = serde_json::to_value(recipe).map_err(encode)?;
    let bytes = serde_json::to_vec(&canonical(&value)).map_err(encode)?;
    Ok(format!("sha256:{}", sha256_hex(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_nested_keys() {
        let v = serde_json::json!({"b": {"y": 1, "x": [ {"d": 1, "c": 2} ]}, "a": null});
        assert_eq!(
            serde_json::to_string(&canonical(&v)).unwrap(),
            r#"{"a":null,"b":{"x":[{"c":2,"d":1}],"y":1}}"#
        );
    }

    #[test]
    fn chart_refs() {
        let mut c = BundleComponent {
            name: "kai".into(),
            folder: "01-kai".into(),
            component_type: ComponentType::Helm,
            source: Some("oci://ghcr.io/nvidia/kai-scheduler/".into()),
            chart: Some("kai-scheduler".into()),
            chart_archive: None,
            version: "v1".into(),
            namespace: "kai".into(),
            dependency_refs: vec![],
            values: None,
            kustomization: None,
            manifests: vec![],
            health_checks: vec![],
        };
        assert_eq!(
            c.helm_chart_ref(),
            (
                "oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler".into(),
                None
            )
        );
        c.source = Some("https://charts.jetstack.io".into());
        assert_eq!(
            c.helm_chart_ref(),
            (
                "kai-scheduler".into(),
                Some("https://charts.jetstack.io".into())
            )
        );
        assert_eq!(
            c.chart_location(),
            ChartLocation::Remote {
                chart: "kai-scheduler".into(),
                repo: Some("https://charts.jetstack.io".into())
            }
        );
        c.chart_archive = Some("charts/kai-scheduler-v1.tgz".into());
        assert_eq!(
            c.chart_location(),
            ChartLocation::Archive("charts/kai-scheduler-v1.tgz".into())
        );
    }
}
