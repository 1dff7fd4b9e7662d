//! Recipes for an observed cluster (`recipe --snapshot`): criteria derived from a snapshot,
//! and the overlays whose constraints the snapshot contradicts. Pure: constraints are
//! evaluated by [`crate::readiness`], the same evaluator `validate` uses.

use std::collections::BTreeSet;

use crate::readiness::{self, Status};
use crate::recipe::catalog::Catalog;
use crate::recipe::criteria::{Criteria, Dimension};
use crate::recipe::error::Result;
use crate::recipe::model::{Constraint, ExcludedOverlay};
use crate::recipe::resolve::{Adjustments, applicable_overlays};
use crate::snapshot::measure::{self, Measurements};
use crate::snapshot::model::Snapshot;

/// One criterion read from a snapshot and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub dimension: Dimension,
    pub value: String,
    pub evidence: String,
}

/// Criteria a snapshot shows: service from the server version, node provider IDs or
/// provider labels; accelerator from the GPU model; OS from os-release `ID`. A dimension is
/// left open when the snapshot shows nothing known or the nodes disagree.
pub fn derive_criteria(snapshot: &Snapshot) -> Vec<Derived> {
    let m = measure::flatten(snapshot);
    [
        service(snapshot),
        unanimous(&m, "GPU.device.model", accelerator_of).map(|(v, e)| Derived {
            dimension: Dimension::Accelerator,
            value: v,
            evidence: format!("GPU model {e}"),
        }),
        unanimous(&m, "OS.release.ID", os_of).map(|(v, e)| Derived {
            dimension: Dimension::Os,
            value: v,
            evidence: format!("os-release ID {e}"),
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The derived criteria as a query.
pub fn criteria_of(derived: &[Derived]) -> Criteria {
    let mut c = Criteria::new();
    for d in derived {
        // Derived values come from the allowed sets below.
        let _ = c.set(d.dimension, &d.value);
    }
    c
}

/// The one value `classify` gives every measured value at `path`, with the first raw value
/// as evidence; `None` when there is none or they disagree.
fn unanimous(
    m: &Measurements,
    path: &str,
    classify: fn(&str) -> Option<&'static str>,
) -> Option<(String, String)> {
    let values = m.get(path)?;
    let kinds: BTreeSet<&str> = values.iter().filter_map(|v| classify(&v.value)).collect();
    let [kind] = kinds.into_iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let raw = values.iter().find(|v| classify(&v.value) == Some(kind))?;
    Some((kind.to_string(), format!("`{}`", raw.value)))
}

fn service(snapshot: &Snapshot) -> Option<Derived> {
    let derived = |value: &str, evidence: String| Derived {
        dimension: Dimension::Service,
        value: value.to_string(),
        evidence,
    };
    let version = &snapshot.cluster.server_version.git_version;
    if let Some(s) = service_of_version(version) {
        return Some(derived(s, format!("server version `{version}`")));
    }
    let mut found: BTreeSet<(&'static str, String)> = BTreeSet::new();
    for node in &snapshot.cluster.nodes {
        if let Some(s) = service_of_provider_id(&node.provider_id) {
            found.insert((s, format!("provider ID `{}`", node.provider_id)));
        } else if let Some((s, label)) = service_of_labels(node.labels.keys()) {
            found.insert((s, format!("node label `{label}`")));
        }
    }
    let services: BTreeSet<&str> = found.iter().map(|(s, _)| *s).collect();
    if services.len() != 1 {
        return None;
    }
    found.into_iter().next().map(|(s, e)| derived(s, e))
}

/// Managed services put their name in the server version: `v1.34.2-eks-a737599`,
/// `v1.33.2-gke.1000`.
fn service_of_version(version: &str) -> Option<&'static str> {
    let v = version.to_ascii_lowercase();
    [
        ("-eks-", "eks"),
        ("-gke", "gke"),
        ("-aks", "aks"),
        ("-oke", "oke"),
    ]
    .into_iter()
    .find(|(needle, _)| v.contains(needle))
    .map(|(_, s)| s)
}

fn service_of_provider_id(id: &str) -> Option<&'static str> {
    let scheme = id.split_once("://")?.0;
    match scheme {
        "aws" => Some("eks"),
        "gce" => Some("gke"),
        "azure" => Some("aks"),
        "oci" => Some("oke"),
        "linode" => Some("lke"),
        "kind" => Some("kind"),
        _ => None,
    }
}

fn service_of_labels<'a>(
    mut keys: impl Iterator<Item = &'a String>,
) -> Option<(&'static str, &'a str)> {
    const PREFIXES: &[(&str, &str)] = &[
        ("eks.amazonaws.com/", "eks"),
        ("cloud.google.com/gke-", "gke"),
        ("kubernetes.azure.com/", "aks"),
        ("oci.oraclecloud.com/", "oke"),
        ("lke.linode.com/", "lke"),
    ];
    keys.find_map(|k| {
        PREFIXES
            .iter()
            .find(|(p, _)| k.starts_with(p))
            .map(|(_, s)| (*s, k.as_str()))
    })
}

/// `NVIDIA GB200`, `NVIDIA-H100-80GB-HBM3`, `NVIDIA RTX PRO 6000 Blackwell` → accelerator.
/// GB200 is checked before B200, which it contains, and L40S before L40.
fn accelerator_of(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase().replace(['-', '_'], " ");
    let words: Vec<&str> = m.split_whitespace().collect();
    let has = |w: &str| words.iter().any(|x| x.starts_with(w));
    if has("gb300") {
        Some("gb300")
    } else if has("gb200") {
        Some("gb200")
    } else if has("b200") {
        Some("b200")
    } else if has("h200") {
        Some("h200")
    } else if has("h100") {
        Some("h100")
    } else if has("a100") {
        Some("a100")
    } else if has("l40s") {
        Some("l40s")
    } else if has("l40") {
        Some("l40")
    } else if m.contains("rtx pro 6000") {
        Some("rtx-pro-6000")
    } else {
        None
    }
}

fn os_of(id: &str) -> Option<&'static str> {
    match id.trim().to_ascii_lowercase().as_str() {
        "ubuntu" => Some("ubuntu"),
        "rhel" => Some("rhel"),
        "cos" => Some("cos"),
        "amzn" | "amazonlinux" => Some("amazonlinux"),
        "ol" => Some("ol"),
        "talos" => Some("talos"),
        _ => None,
    }
}

/// Evaluate the constraints of every overlay `query` selects against `snapshot`. An overlay
/// with a failing constraint is excluded, and so is every selected overlay built on it
/// (`base`); a constraint the snapshot has no measurement for is a warning and its overlay
/// stays.
pub fn adjustments(
    catalog: &Catalog,
    query: &Criteria,
    snapshot: &Snapshot,
) -> Result<Adjustments> {
    let selected = applicable_overlays(catalog, query)?;
    let mut adj = Adjustments::default();
    for name in &selected {
        let overlay = &catalog.overlays[name];
        let constraints: Vec<Constraint> = overlay
            .file
            .constraints
            .iter()
            .map(|c| Constraint {
                name: c.name.clone(),
                value: c.value.clone(),
                source: name.clone(),
            })
            .collect();
        let report = readiness::evaluate_snapshot(&constraints, snapshot);
        let mut failures = Vec::new();
        for r in &report.results {
            let detail = r.detail.clone().unwrap_or_default();
            match r.status {
                Status::Pass => {}
                Status::Fail => failures.push(format!("{} {}: {detail}", r.constraint, r.expected)),
                Status::Missing => adj.constraint_warnings.push(format!(
                    "overlay `{name}`: {} {} not checked: {detail}",
                    r.constraint, r.expected
                )),
            }
        }
        let parent_out = catalog
            .ancestry(name)?
            .into_iter()
            .find(|a| a != name && adj.excluded.iter().any(|e| &e.name == a));
        if !failures.is_empty() {
            adj.excluded.push(ExcludedOverlay {
                name: name.clone(),
                reason: failures.join("; "),
            });
        } else if let Some(parent) = parent_out {
            adj.excluded.push(ExcludedOverlay {
                name: name.clone(),
                reason: format!("its base `{parent}` is excluded"),
            });
        }
    }
    Ok(adj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerators_from_models() {
        for (model, want) in [
            ("NVIDIA H100 80GB HBM3", Some("h100")),
            ("NVIDIA-H100-80GB-HBM3", Some("h100")),
            ("NVIDIA GB200", Some("gb200")),
            ("NVIDIA B200", Some("b200")),
            ("NVIDIA A100-SXM4-80GB", Some("a100")),
            ("NVIDIA L40S", Some("l40s")),
            ("NVIDIA L40", Some("l40")),
            ("NVIDIA H200", Some("h200")),
            ("NVIDIA GB300", Some("gb300")),
            (
                "NVIDIA RTX PRO 6000 Blackwell Server Edition",
                Some("rtx-pro-6000"),
            ),
            ("Tesla T4", None),
        ] {
            assert_eq!(accelerator_of(model), want, "{model}");
        }
    }

    #[test]
    fn services_from_versions_and_provider_ids() {
        assert_eq!(service_of_version("v1.34.2-eks-a737599"), Some("eks"));
        assert_eq!(service_of_version("v1.33.2-gke.1000"), Some("gke"));
        assert_eq!(service_of_version("v1.34.1"), None);
        assert_eq!(
            service_of_provider_id("azure:///subscriptions/x"),
            Some("aks")
        );
        assert_eq!(
            service_of_provider_id("kind://docker/kind/kind-worker"),
            Some("kind")
        );
        assert_eq!(service_of_provider_id("linode://12345678"), Some("lke"));
        assert_eq!(service_of_provider_id(""), None);
        let labels = ["kubernetes.azure.com/cluster".to_string()];
        assert_eq!(
            service_of_labels(labels.iter()),
            Some(("aks", "kubernetes.azure.com/cluster"))
        );
    }

    #[test]
    fn os_ids() {
        assert_eq!(os_of("amzn"), Some("amazonlinux"));
        assert_eq!(os_of("Ubuntu"), Some("ubuntu"));
        assert_eq!(os_of("ol"), Some("ol"));
        assert_eq!(os_of("talos"), Some("talos"));
        assert_eq!(os_of("debian"), None);
    }
}
