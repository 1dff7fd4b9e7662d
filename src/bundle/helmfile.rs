//! The helmfile deployer: one `helmfile.yaml` with a repository and a release per chart and
//! `needs` (`namespace/name`) from the [`Rollout`], so `helmfile apply` installs independent
//! releases in parallel and each after what it needs. A vendored chart is its archive in the
//! bundle (`./charts/<chart>-<version>.tgz`), with no repository. Manifest and kustomize folders are
//! releases whose `chart` is the folder: helmfile documents that a directory of plain
//! manifests or a kustomization is turned into a chart (chartify), so they are installed,
//! ordered and removed like every other release, with no hook scripts.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::RenderedText;
use super::error::BundleError;
use super::planned::{Planned, Rollout};
use crate::recipe::model::ComponentType;

pub const HELMFILE: &str = "helmfile.yaml";

/// The releases of one component, as `namespace/name`: its chart or folder, then its extra
/// manifests.
fn release_ids(p: &Planned) -> Vec<String> {
    let c = &p.bc;
    let mut out = Vec::new();
    if c.component_type != ComponentType::Manifest {
        out.push(format!("{}/{}", c.namespace, c.name));
    }
    if !c.manifests.is_empty() {
        out.push(format!("{}/{}", c.namespace, manifests_release(p)));
    }
    out
}

/// The release of a component's extra manifests: the component itself when it is only
/// manifests.
fn manifests_release(p: &Planned) -> String {
    if p.bc.component_type == ComponentType::Manifest {
        p.bc.name.clone()
    } else {
        format!("{}-manifests", p.bc.name)
    }
}

fn release(name: &str, namespace: &str, chart: String, needs: &[String]) -> Value {
    let mut r = json!({
        "name": name,
        "namespace": namespace,
        "createNamespace": true,
        "chart": chart,
    });
    if !needs.is_empty() {
        r["needs"] = json!(needs);
    }
    r
}

pub(crate) fn render(planned: &[Planned], rollout: &Rollout) -> Result<RenderedText, BundleError> {
    let ids: BTreeMap<&str, Vec<String>> = planned
        .iter()
        .map(|p| (p.bc.name.as_str(), release_ids(p)))
        .collect();
    let mut repositories = Vec::new();
    let mut releases = Vec::new();
    for (p, needs) in planned.iter().zip(&rollout.needs) {
        let c = &p.bc;
        let mut wanted: Vec<String> = needs
            .iter()
            .flat_map(|n| ids.get(n.as_str()).cloned().unwrap_or_default())
            .collect();
        wanted.sort();
        wanted.dedup();
        match c.component_type {
            ComponentType::Helm if c.chart_archive.is_some() => {
                let archive = c.chart_archive.clone().unwrap_or_default();
                let mut r = release(&c.name, &c.namespace, format!("./{archive}"), &wanted);
                if let Some(values) = &c.values {
                    r["values"] = json!([values]);
                }
                releases.push(r);
            }
            ComponentType::Helm => {
                let chart = c.chart.clone().unwrap_or_else(|| c.name.clone());
                let source = c.source.clone().unwrap_or_default();
                let mut repo = json!({"name": c.name});
                if let Some(oci) = source.strip_prefix("oci://") {
                    repo["url"] = json!(oci.trim_end_matches('/'));
                    repo["oci"] = json!(true);
                } else {
                    repo["url"] = json!(source);
                }
                repositories.push(repo);
                let mut r = release(
                    &c.name,
                    &c.namespace,
                    format!("{}/{chart}", c.name),
                    &wanted,
                );
                r["version"] = json!(c.version);
                if let Some(values) = &c.values {
                    r["values"] = json!([values]);
                }
                releases.push(r);
            }
            ComponentType::Kustomize => {
                if let Some(k) = &c.kustomization {
                    releases.push(release(&c.name, &c.namespace, format!("./{k}"), &wanted));
                }
            }
            ComponentType::Manifest => {}
        }
        if !c.manifests.is_empty() {
            let name = manifests_release(p);
            let mut after = wanted.clone();
            if c.component_type != ComponentType::Manifest {
                after.push(format!("{}/{}", c.namespace, c.name));
            }
            releases.push(release(
                &name,
                &c.namespace,
                format!("./{}/manifests", c.folder),
                &after,
            ));
        }
    }
    let doc = json!({
        "helmDefaults": {"wait": true, "timeout": 600, "createNamespace": true},
        "repositories": repositories,
        "releases": releases,
    });
    Ok((
        HELMFILE.to_string(),
        format!(
            "# helmfile for this bundle: `helmfile apply` installs every release, independent ones in parallel.\n{}",
            crate::yaml::to_string(&doc)?
        ),
    ))
}

#[cfg(test)]
mod tests {
    use crate::bundle::render::tests::{component, recipe};
    use crate::bundle::{BundleOptions, Deployer};
    use crate::recipe::model::{ComponentType, Manifest};

    #[test]
    fn manifest_folders_are_releases_after_their_chart() {
        let mut chart = component("a", ComponentType::Helm);
        chart.manifests.push(Manifest {
            name: "cm.yaml".into(),
            content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".into(),
            file: None,
        });
        let mut plain = component("b", ComponentType::Manifest);
        plain.manifests = chart.manifests.clone();
        plain.dependency_refs = vec!["a".into()];
        let opts = BundleOptions {
            deployer: Deployer::Helmfile,
            ..BundleOptions::default()
        };
        let b = crate::bundle::render(&recipe(vec![chart, plain]), &opts).unwrap();
        let doc: serde_json::Value =
            crate::yaml::from_slice(&b.files["helmfile.yaml"].content, "helmfile.yaml").unwrap();
        let releases = doc["releases"].as_array().unwrap();
        let ids: Vec<(&str, &str)> = releases
            .iter()
            .map(|r| (r["name"].as_str().unwrap(), r["chart"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [
                ("a", "a/a"),
                ("a-manifests", "./01-a/manifests"),
                ("b", "./02-b/manifests")
            ]
        );
        assert_eq!(releases[1]["needs"], serde_json::json!(["a/a"]));
        assert_eq!(
            releases[2]["needs"],
            serde_json::json!(["a/a", "a/a-manifests"])
        );
        assert_eq!(doc["repositories"][0]["url"], "https://charts.example.com");
    }
}
