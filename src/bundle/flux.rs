//! The Flux deployer: per chart a HelmRepository (an OCIRepository for `oci://` sources) and
//! a HelmRelease whose values come from the component's `values.yaml` through a ConfigMap;
//! per manifest or kustomize folder a Flux Kustomization over that path; `dependsOn` from the
//! [`Rollout`], so Flux reconciles independent components in parallel and each one after what
//! it needs. Flux's `dependsOn` names objects of the same kind: HelmReleases wait for
//! HelmReleases, Kustomizations for Kustomizations (a Kustomization needing a chart's CRDs
//! retries until they exist). Manifest Kustomizations apply objects as written, without
//! `targetNamespace` (kustomize would also set it on cluster-scoped custom resources), so a
//! namespaced object without `metadata.namespace` lands in `default` rather than in the
//! component's namespace as with `deploy.sh`. A root `kustomization.yaml` lists the objects and generates
//! the values ConfigMaps from the bundle's own values files, so nothing is copied.

use serde_json::{Value, json};

use super::RenderedText;
use super::error::BundleError;
use super::planned::{Planned, Rollout};
use super::{BundleOptions, argocd};
use crate::recipe::model::ComponentType;

pub const FLUX_NAMESPACE: &str = "flux-system";
pub const SOURCE_NAME: &str = "aiconform-bundle";
pub const ROOT_KUSTOMIZATION: &str = "kustomization.yaml";
const HELM_RELEASE_API: &str = "helm.toolkit.fluxcd.io/v2";
const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";
const KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";
const VALUES_KEY: &str = "values.yaml";
const INTERVAL: &str = "10m";

/// The Flux objects of one component.
struct Objects {
    /// Name of its HelmRelease, if it has a chart.
    release: Option<String>,
    /// Names of its Kustomizations: its kustomize folder and/or its manifests folder.
    kustomizations: Vec<(String, String)>,
}

fn objects_of(p: &Planned) -> Objects {
    let c = &p.bc;
    let mut kustomizations = Vec::new();
    if let Some(k) = &c.kustomization {
        kustomizations.push((c.name.clone(), k.clone()));
    }
    if !c.manifests.is_empty() {
        let name = if c.component_type == ComponentType::Manifest {
            c.name.clone()
        } else {
            format!("{}-manifests", c.name)
        };
        kustomizations.push((name, format!("{}/manifests", c.folder)));
    }
    Objects {
        release: (c.component_type == ComponentType::Helm).then(|| c.name.clone()),
        kustomizations,
    }
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": FLUX_NAMESPACE})
}

fn values_config_map(name: &str) -> String {
    format!("{name}-values")
}

fn depends_on(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| json!({"name": n})).collect())
}

/// The source and HelmRelease of a chart component.
fn helm_objects(p: &Planned, depends: &[String]) -> Vec<Value> {
    let c = &p.bc;
    let chart = c.chart.clone().unwrap_or_else(|| c.name.clone());
    let source = c.source.clone().unwrap_or_default();
    let mut spec = json!({
        "interval": INTERVAL,
        "releaseName": c.name,
        "targetNamespace": c.namespace,
        "install": {"createNamespace": true, "crds": "CreateReplace", "remediation": {"retries": 3}},
        "upgrade": {"crds": "CreateReplace", "remediation": {"retries": 3}},
    });
    let repo = if let Some(oci) = source.strip_prefix("oci://") {
        spec["chartRef"] =
            json!({"kind": "OCIRepository", "name": c.name, "namespace": FLUX_NAMESPACE});
        json!({
            "apiVersion": SOURCE_API,
            "kind": "OCIRepository",
            "metadata": meta(&c.name),
            "spec": {
                "interval": "1h",
                "url": format!("oci://{}/{chart}", oci.trim_end_matches('/')),
                "ref": {"tag": c.version},
                "layerSelector": {
                    "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "operation": "copy",
                },
            },
        })
    } else {
        spec["chart"] = json!({
            "spec": {
                "chart": chart,
                "version": c.version,
                "sourceRef": {"kind": "HelmRepository", "name": c.name, "namespace": FLUX_NAMESPACE},
                "interval": "1h",
            },
        });
        json!({
            "apiVersion": SOURCE_API,
            "kind": "HelmRepository",
            "metadata": meta(&c.name),
            "spec": {"interval": "1h", "url": source},
        })
    };
    if c.values.is_some() {
        spec["valuesFrom"] = json!([{
            "kind": "ConfigMap",
            "name": values_config_map(&c.name),
            "valuesKey": VALUES_KEY,
        }]);
    }
    if !depends.is_empty() {
        spec["dependsOn"] = depends_on(depends);
    }
    let release = json!({
        "apiVersion": HELM_RELEASE_API,
        "kind": "HelmRelease",
        "metadata": meta(&c.name),
        "spec": spec,
    });
    vec![repo, release]
}

fn kustomization(name: &str, path: &str, depends: &[String]) -> Value {
    let mut spec = json!({
        "interval": INTERVAL,
        "retryInterval": "1m",
        "path": format!("./{path}"),
        "prune": true,
        "wait": true,
        "timeout": "10m",
        "sourceRef": {"kind": "GitRepository", "name": SOURCE_NAME},
    });
    if !depends.is_empty() {
        spec["dependsOn"] = depends_on(depends);
    }
    json!({
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": meta(name),
        "spec": spec,
    })
}

fn multi_doc(docs: &[Value]) -> Result<String, BundleError> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&crate::yaml::to_string(d)?);
    }
    Ok(out)
}

pub(crate) fn render(
    opts: &BundleOptions,
    planned: &[Planned],
    rollout: &Rollout,
) -> Result<Vec<RenderedText>, BundleError> {
    let repo = argocd::checked_repo_url(opts)?;
    let objects: Vec<Objects> = planned.iter().map(objects_of).collect();
    let by_name = |name: &str| {
        planned
            .iter()
            .position(|p| p.bc.name == name)
            .map(|i| &objects[i])
    };
    let mut out = Vec::new();
    let mut resources = vec!["flux/source.yaml".to_string()];
    let mut generators = Vec::new();
    for ((p, o), needs) in planned.iter().zip(&objects).zip(&rollout.needs) {
        let deps: Vec<&Objects> = needs.iter().filter_map(|n| by_name(n)).collect();
        let release_deps: Vec<String> = deps.iter().filter_map(|d| d.release.clone()).collect();
        let kustomization_deps: Vec<String> = deps
            .iter()
            .flat_map(|d| d.kustomizations.iter().map(|(n, _)| n.clone()))
            .collect();
        let mut docs = Vec::new();
        if o.release.is_some() {
            docs.extend(helm_objects(p, &release_deps));
            if let Some(values) = &p.bc.values {
                generators.push(json!({
                    "name": values_config_map(&p.bc.name),
                    "namespace": FLUX_NAMESPACE,
                    "files": [format!("{VALUES_KEY}={values}")],
                }));
            }
        }
        for (name, path) in &o.kustomizations {
            docs.push(kustomization(name, path, &kustomization_deps));
        }
        if docs.is_empty() {
            continue;
        }
        let path = format!("flux/{}.yaml", p.bc.folder);
        out.push((path.clone(), multi_doc(&docs)?));
        resources.push(path);
    }
    let source = json!({
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": meta(SOURCE_NAME),
        "spec": {"interval": "5m", "url": repo, "ref": {"branch": "main"}},
    });
    out.push(("flux/source.yaml".into(), multi_doc(&[source])?));
    let root = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
        "configMapGenerator": generators,
        "generatorOptions": {"disableNameSuffixHash": true},
    });
    out.push((ROOT_KUSTOMIZATION.into(), crate::yaml::to_string(&root)?));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::bundle::render::tests::{component, recipe};
    use crate::bundle::{BundleOptions, Deployer};
    use crate::recipe::model::{ComponentType, Manifest};

    fn docs(text: &str) -> Vec<serde_json::Value> {
        text.split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| crate::yaml::from_str(d, "flux").unwrap())
            .collect()
    }

    #[test]
    fn oci_charts_use_an_oci_repository_and_kustomizations_depend_on_kustomizations() {
        let mut oci = component("a", ComponentType::Helm);
        oci.source = Some("oci://ghcr.io/example/charts/".into());
        let mut plain = component("b", ComponentType::Manifest);
        plain.manifests.push(Manifest {
            name: "cm.yaml".into(),
            content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".into(),
            file: None,
        });
        let mut later = plain.clone();
        later.name = "c".into();
        later.namespace = "c".into();
        later.dependency_refs = vec!["a".into(), "b".into()];
        let opts = BundleOptions {
            deployer: Deployer::Flux,
            ..BundleOptions::default()
        };
        let b = crate::bundle::render(&recipe(vec![oci, plain, later]), &opts).unwrap();
        let a = docs(std::str::from_utf8(&b.files["flux/01-a.yaml"].content).unwrap());
        assert_eq!(a[0]["kind"], "OCIRepository");
        assert_eq!(a[0]["spec"]["url"], "oci://ghcr.io/example/charts/a");
        assert_eq!(a[0]["spec"]["ref"]["tag"], "v1.0.0");
        assert_eq!(a[1]["spec"]["chartRef"]["kind"], "OCIRepository");
        let c = docs(std::str::from_utf8(&b.files["flux/03-c.yaml"].content).unwrap());
        assert_eq!(c.len(), 1);
        assert_eq!(c[0]["kind"], "Kustomization");
        assert_eq!(c[0]["spec"]["path"], "./03-c/manifests");
        assert_eq!(
            c[0]["spec"]["dependsOn"],
            serde_json::json!([{"name": "b"}])
        );
        let root: serde_json::Value =
            crate::yaml::from_slice(&b.files["kustomization.yaml"].content, "k").unwrap();
        assert_eq!(
            root["resources"],
            serde_json::json!([
                "flux/source.yaml",
                "flux/01-a.yaml",
                "flux/02-b.yaml",
                "flux/03-c.yaml"
            ])
        );
        assert_eq!(
            root["configMapGenerator"][0]["files"],
            serde_json::json!(["values.yaml=01-a/values.yaml"])
        );
    }
}
