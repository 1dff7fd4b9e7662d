//! The inventory for mirroring tools. Pure.
//!
//! - Hauler (`content.hauler.cattle.io/v1`): an `Images` and a `Charts` document, for
//!   `hauler store sync -f FILE`.
//! - Zarf (`zarf.yaml`, `kind: ZarfPackageConfig`): one required component holding every
//!   chart (with its namespace) and image, for `zarf package create`.
//!
//! Both hold what was found; warnings go to stderr, never into these files.

use serde::Serialize;
use serde_json::{Value, json};

use super::{ChartRef, Inventory};

pub const HAULER_API_VERSION: &str = "content.hauler.cattle.io/v1";

/// A DNS-label form of `name` for metadata names (`eks-h100-training` stays as is).
fn label(name: &str) -> String {
    let mut s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(63);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "aiconform".into() } else { s }
}

fn hauler_chart(c: &ChartRef) -> Value {
    json!({"name": c.name, "repoURL": c.repo, "version": c.version})
}

/// Two YAML documents: the images and the charts.
pub fn hauler(inv: &Inventory) -> Result<String, String> {
    let name = label(&inv.name);
    let images = json!({
        "apiVersion": HAULER_API_VERSION,
        "kind": "Images",
        "metadata": {"name": format!("{name}-images")},
        "spec": {"images": inv.images.iter().map(|i| json!({"name": i})).collect::<Vec<_>>()},
    });
    let charts = json!({
        "apiVersion": HAULER_API_VERSION,
        "kind": "Charts",
        "metadata": {"name": format!("{name}-charts")},
        "spec": {"charts": inv.charts.iter().map(hauler_chart).collect::<Vec<_>>()},
    });
    let doc = |v: &Value| crate::yaml::to_string(v).map_err(|e| e.to_string());
    Ok(format!("---\n{}---\n{}", doc(&images)?, doc(&charts)?))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ZarfChart {
    name: String,
    version: String,
    namespace: String,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    repo_name: Option<String>,
    release_name: String,
}

/// A Zarf package config: one required component with every chart and image.
pub fn zarf(inv: &Inventory) -> Result<String, String> {
    let name = label(&inv.name);
    let charts: Vec<ZarfChart> = inv
        .components
        .iter()
        .filter_map(|c| {
            let chart = c.chart.as_ref()?;
            let (url, repo_name) = if chart.is_oci() {
                (
                    format!("{}/{}", chart.repo.trim_end_matches('/'), chart.name),
                    None,
                )
            } else {
                (chart.repo.clone(), Some(chart.name.clone()))
            };
            Some(ZarfChart {
                name: c.name.clone(),
                version: chart.version.clone(),
                namespace: c.namespace.clone(),
                url,
                repo_name,
                release_name: c.name.clone(),
            })
        })
        .collect();
    let config = json!({
        "kind": "ZarfPackageConfig",
        "metadata": {
            "name": name,
            "description": format!("Charts and images of recipe {} ({})", inv.name, inv.source),
        },
        "components": [{
            "name": name,
            "required": true,
            "charts": charts,
            "images": inv.images,
        }],
    });
    crate::yaml::to_string(&config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::ComponentImages;

    fn inv() -> Inventory {
        let chart = ChartRef {
            name: "kai-scheduler".into(),
            repo: "oci://ghcr.io/nvidia/kai-scheduler".into(),
            version: "v0.13.0".into(),
        };
        let repo_chart = ChartRef {
            name: "gpu-operator".into(),
            repo: "https://helm.ngc.nvidia.com/nvidia".into(),
            version: "v25.10.1".into(),
        };
        Inventory {
            name: "eks-h100".into(),
            source: "recipe.yaml".into(),
            components: vec![
                ComponentImages {
                    name: "gpu-operator".into(),
                    namespace: "gpu-operator".into(),
                    chart: Some(repo_chart.clone()),
                    rendered: Some(true),
                    images: vec!["nvcr.io/nvidia/gpu-operator:v25.10.1".into()],
                },
                ComponentImages {
                    name: "kai-scheduler".into(),
                    namespace: "kai-scheduler".into(),
                    chart: Some(chart.clone()),
                    rendered: Some(true),
                    images: vec![],
                },
            ],
            images: vec!["nvcr.io/nvidia/gpu-operator:v25.10.1".into()],
            charts: vec![repo_chart, chart],
            warnings: vec!["x: not rendered".into()],
        }
    }

    #[test]
    fn hauler_documents() {
        let text = hauler(&inv()).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "Images");
        assert_eq!(docs[0]["apiVersion"], HAULER_API_VERSION);
        assert_eq!(
            docs[0]["spec"]["images"][0]["name"],
            "nvcr.io/nvidia/gpu-operator:v25.10.1"
        );
        assert_eq!(docs[1]["kind"], "Charts");
        assert_eq!(
            docs[1]["spec"]["charts"][1]["repoURL"],
            "oci://ghcr.io/nvidia/kai-scheduler"
        );
        assert!(!text.contains("not rendered"));
    }

    #[test]
    fn zarf_package() {
        let v: Value = serde_saphyr::from_str(&zarf(&inv()).unwrap()).unwrap();
        assert_eq!(v["kind"], "ZarfPackageConfig");
        assert_eq!(v["metadata"]["name"], "eks-h100");
        let c = &v["components"][0];
        assert_eq!(c["required"], true);
        assert_eq!(c["charts"][0]["url"], "https://helm.ngc.nvidia.com/nvidia");
        assert_eq!(c["charts"][0]["repoName"], "gpu-operator");
        assert_eq!(
            c["charts"][1]["url"],
            "oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler"
        );
        assert_eq!(c["images"][0], "nvcr.io/nvidia/gpu-operator:v25.10.1");
    }
}
