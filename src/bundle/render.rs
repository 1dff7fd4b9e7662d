//! Rendering: recipe + options → bundle files, in memory. Pure: no I/O, no clock, no
//! environment, so the same inputs always give the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::error::BundleError;
use super::manifests::ManifestObject;
use super::model::{
    BUNDLE_API_VERSION, BUNDLE_FILE, BUNDLE_KIND, BundleComponent, BundleManifest, FileEntry,
    Placement, RecipeRef, recipe_digest, sha256_hex,
};
use super::placement;
use super::planned::{CHECKSUMS_FILE, Planned, README_FILE, RECIPE_FILE, VALUES_FILE, rollout};
use super::scripts::{self, ScriptContext};
use super::vendor::{self, VendoredCharts};
use super::{
    Bundle, BundleFile, BundleOptions, Deployer, argocd, argocd_helm, flux, helmfile, manifests,
    readme,
};
use crate::name::is_dns_label;
use crate::recipe::model::{Component, ComponentType, HealthCheck, Recipe};

pub const HEALTH_KINDS: &[&str] = &[
    "Deployment",
    "DaemonSet",
    "StatefulSet",
    "CustomResourceDefinition",
];

/// Render `recipe` into bundle files.
pub fn render(recipe: &Recipe, opts: &BundleOptions) -> Result<Bundle, BundleError> {
    render_with_charts(recipe, opts, &VendoredCharts::new())
}

/// Render `recipe` with the vendored `charts` (by component, from
/// [`vendor::pull_charts`]): each in `charts/`, installed from there, and
/// `charts/provenance.yaml`. Without charts this is [`render`].
pub fn render_with_charts(
    recipe: &Recipe,
    opts: &BundleOptions,
    charts: &VendoredCharts,
) -> Result<Bundle, BundleError> {
    if !charts.is_empty() {
        vendor::check_deployer(opts.deployer)?;
    }
    check_recipe(recipe)?;
    let digest = recipe_digest(recipe)?;
    let tool_version = env!("CARGO_PKG_VERSION");
    let width = recipe.components.len().to_string().len().max(2);

    let mut files: BTreeMap<String, BundleFile> = BTreeMap::new();
    let mut planned = Vec::with_capacity(recipe.components.len());
    let mut seen = BTreeSet::new();
    for (i, c) in recipe.components.iter().enumerate() {
        check_component(c)?;
        if !seen.insert(c.name.as_str()) {
            return Err(BundleError::DuplicateComponent {
                name: c.name.clone(),
            });
        }
        let folder = format!("{:0width$}-{}", i + 1, c.name);
        let mut p = plan_component(c, i + 1, &folder, opts, &recipe.metadata.name, &mut files)?;
        if let Some(v) = charts.get(&c.name) {
            p.bc.chart_archive = Some(place_chart(&c.name, v, &planned, &mut files)?);
        }
        planned.push(p);
    }
    if let Some(name) = charts.keys().find(|n| {
        !planned
            .iter()
            .any(|p| &p.bc.name == *n && p.bc.chart_archive.is_some())
    }) {
        return Err(BundleError::InvalidOption {
            flag: "--vendor-charts",
            value: name.clone(),
            reason:
                "a chart was vendored for a component that is not a Helm component of the recipe"
                    .into(),
        });
    }
    if !charts.is_empty() {
        files.insert(
            vendor::PROVENANCE_FILE.into(),
            text_file(vendor::provenance(charts)?),
        );
    }

    let component_files: Vec<(String, BundleFile)> = planned
        .iter()
        .map(|p| {
            let text = readme::component(p, planned.len(), &recipe.metadata.name, opts);
            (format!("{}/{README_FILE}", p.bc.folder), text_file(text))
        })
        .collect();
    files.extend(component_files);
    for p in &planned {
        let prefix = format!("{}/", p.bc.folder);
        let sums = checksums(
            files
                .iter()
                .filter_map(|(path, f)| path.strip_prefix(&prefix).map(|rel| (rel, f))),
        );
        files.insert(format!("{prefix}{CHECKSUMS_FILE}"), text_file(sums));
    }

    let ctx = ScriptContext {
        recipe_name: &recipe.metadata.name,
        digest: &digest,
        tool_version,
    };
    match opts.deployer {
        Deployer::Helm => {
            files.insert(
                "deploy.sh".into(),
                script_file(scripts::deploy_sh(&ctx, &planned)),
            );
            files.insert(
                "undeploy.sh".into(),
                script_file(scripts::undeploy_sh(&ctx, &planned)),
            );
        }
        Deployer::ArgoCd | Deployer::ArgoCdHelm | Deployer::Flux | Deployer::Helmfile => {
            let rollout = rollout(&planned, opts.serial)?;
            let rendered = match opts.deployer {
                Deployer::ArgoCd => argocd::render(recipe, opts, &planned, &rollout)?,
                Deployer::ArgoCdHelm => argocd_helm::render(recipe, opts, &planned, &rollout)?,
                Deployer::Flux => flux::render(opts, &planned, &rollout)?,
                _ => vec![helmfile::render(&planned, &rollout)?],
            };
            for (path, text) in rendered {
                files.insert(path, text_file(text));
            }
        }
    }
    files.insert(
        RECIPE_FILE.into(),
        text_file(crate::yaml::to_string(recipe)?),
    );
    files.insert(
        README_FILE.into(),
        text_file(readme::top(recipe, &digest, opts, &planned)),
    );
    let top_sums = checksums(files.iter().map(|(p, f)| (p.as_str(), f)));
    files.insert(CHECKSUMS_FILE.into(), text_file(top_sums));

    let manifest = BundleManifest {
        api_version: BUNDLE_API_VERSION.into(),
        kind: BUNDLE_KIND.into(),
        tool_version: tool_version.into(),
        deployer: opts.deployer,
        serial: opts.serial,
        recipe: RecipeRef {
            name: recipe.metadata.name.clone(),
            digest,
            criteria: recipe.criteria.clone(),
        },
        placement: Placement {
            system_node_selector: opts.system_node_selector.clone(),
            accelerated_node_selector: opts.accelerated_node_selector.clone(),
            accelerated_tolerations: opts.accelerated_tolerations.clone(),
        },
        components: planned.into_iter().map(|p| p.bc).collect(),
        files: files
            .iter()
            .map(|(path, f)| FileEntry {
                path: path.clone(),
                sha256: sha256_hex(&f.content),
                executable: f.executable,
            })
            .collect(),
    };
    let text = format!(
        "# aiconform bundle manifest: every other file of this bundle with its SHA-256.\n\
         # Check the bundle with `aiconform bundle verify <dir>`.\n{}",
        crate::yaml::to_string(&manifest)?
    );
    files.insert(BUNDLE_FILE.into(), text_file(text));
    Ok(Bundle { files })
}

/// Put a vendored archive at its path; a component vendoring the same path with other bytes
/// is an error naming both.
fn place_chart(
    component: &str,
    v: &vendor::VendoredChart,
    planned: &[Planned],
    files: &mut BTreeMap<String, BundleFile>,
) -> Result<String, BundleError> {
    if let Some(existing) = files.get(&v.file) {
        if existing.content != v.content {
            let first = planned
                .iter()
                .find(|p| p.bc.chart_archive.as_deref() == Some(v.file.as_str()))
                .map_or_else(String::new, |p| p.bc.name.clone());
            return Err(BundleError::VendorConflict {
                first,
                second: component.to_string(),
                file: v.file.clone(),
            });
        }
    } else {
        files.insert(
            v.file.clone(),
            BundleFile {
                content: v.content.clone(),
                executable: false,
            },
        );
    }
    Ok(v.file.clone())
}

fn text_file(text: String) -> BundleFile {
    BundleFile {
        content: text.into_bytes(),
        executable: false,
    }
}

fn script_file(text: String) -> BundleFile {
    BundleFile {
        content: text.into_bytes(),
        executable: true,
    }
}

/// `sha256sum -c` format: `<hex>  <path>`, one line per file, in the given (sorted) order.
fn checksums<'a>(files: impl Iterator<Item = (&'a str, &'a BundleFile)>) -> String {
    let mut out = String::new();
    for (path, f) in files {
        if path == CHECKSUMS_FILE || path == BUNDLE_FILE {
            continue;
        }
        out.push_str(&sha256_hex(&f.content));
        out.push_str("  ");
        out.push_str(path);
        out.push('\n');
    }
    out
}

/// Namespaces every cluster has, where components put what the platform reads from there
/// (e.g. a RoleBinding to `extension-apiserver-authentication-reader` in kube-system).
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Why an object of a manifest would land in a namespace the deploy does not make: objects
/// go to the component's namespace, a namespace the same manifest creates, or a system one.
fn foreign_namespace(objects: &[ManifestObject], component_ns: &str) -> Option<String> {
    let created: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind == "Namespace" && o.api_version == "v1")
        .map(|o| o.name.as_str())
        .collect();
    objects.iter().find_map(|o| {
        let ns = o.namespace.as_deref()?;
        let known =
            ns == component_ns || created.contains(ns) || SYSTEM_NAMESPACES.contains(&ns);
        (!known).then(|| {
            format!(
                "{} is in namespace `{ns}`, which neither this component (namespace `{component_ns}`) nor its manifest creates; omit metadata.namespace, set it to `{component_ns}`, or add the Namespace to the manifest",
                o.describe()
            )
        })
    })
}

fn plan_component(
    c: &Component,
    index: usize,
    folder: &str,
    opts: &BundleOptions,
    recipe_name: &str,
    files: &mut BTreeMap<String, BundleFile>,
) -> Result<Planned, BundleError> {
    let has_values = c.values.as_object().is_some_and(|m| !m.is_empty());
    let mut injections = Vec::new();
    let mut values_path = None;
    let mut kustomization = None;
    match c.component_type {
        ComponentType::Helm => {
            let mut values = if c.values.is_null() {
                Value::Object(Default::default())
            } else {
                c.values.clone()
            };
            let chart = c.chart.as_deref().unwrap_or(&c.name);
            injections = placement::inject(&c.name, chart, &mut values, opts)?;
            let body = crate::yaml::to_string(&values)?;
            let text = format!(
                "# Helm values for {} {} (chart {chart}), rendered by aiconform from recipe {recipe_name}.\n\
                 # Change the recipe and re-render rather than editing: `aiconform bundle verify` flags edits.\n{body}",
                c.name, c.version
            );
            let path = format!("{folder}/{VALUES_FILE}");
            files.insert(path.clone(), text_file(text));
            values_path = Some(path);
        }
        ComponentType::Kustomize => {
            let source = c
                .source
                .as_deref()
                .ok_or_else(|| BundleError::InvalidField {
                    component: c.name.clone(),
                    field: "source",
                    value: String::new(),
                    reason: "a Kustomize component needs a source (a kustomization path or URL)"
                        .into(),
                })?;
            let k = serde_json::json!({
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": c.namespace,
                "resources": [source],
            });
            let dir = format!("{folder}/kustomize");
            files.insert(
                format!("{dir}/kustomization.yaml"),
                text_file(crate::yaml::to_string(&k)?),
            );
            kustomization = Some(dir);
        }
        ComponentType::Manifest => {}
    }

    let mut manifest_paths = Vec::new();
    let mut manifest_crds = Vec::new();
    let mut names = BTreeSet::new();
    for m in &c.manifests {
        check_file_name(&c.name, &m.name)?;
        if !names.insert(m.name.as_str()) {
            return Err(BundleError::DuplicateManifest {
                component: c.name.clone(),
                name: m.name.clone(),
            });
        }
        let objects =
            manifests::parse(&m.content).map_err(|message| BundleError::InvalidManifest {
                component: c.name.clone(),
                manifest: m.name.clone(),
                message,
            })?;
        if let Some(message) = foreign_namespace(&objects, &c.namespace) {
            return Err(BundleError::InvalidManifest {
                component: c.name.clone(),
                manifest: m.name.clone(),
                message,
            });
        }
        let path = format!("{folder}/manifests/{}", m.name);
        files.insert(path.clone(), text_file(m.content.clone()));
        manifest_paths.push(path);
        manifest_crds.push(
            objects
                .iter()
                .filter(|o| o.is_crd())
                .map(|o| o.name.clone())
                .collect(),
        );
    }

    let health_checks = c
        .health_checks
        .iter()
        .map(|h| {
            let namespace = if h.kind == "CustomResourceDefinition" {
                None
            } else {
                Some(h.namespace.clone().unwrap_or_else(|| c.namespace.clone()))
            };
            HealthCheck {
                kind: h.kind.clone(),
                name: h.name.clone(),
                namespace,
            }
        })
        .collect();

    Ok(Planned {
        bc: BundleComponent {
            name: c.name.clone(),
            folder: folder.to_string(),
            component_type: c.component_type,
            source: c.source.clone(),
            chart: c.chart.clone(),
            chart_archive: None,
            version: c.version.clone(),
            namespace: c.namespace.clone(),
            dependency_refs: c.dependency_refs.clone(),
            values: values_path,
            kustomization,
            manifests: manifest_paths,
            health_checks,
        },
        index,
        manifest_crds,
        injections,
        overlays: c.overlays.clone(),
        ignored_values: c.component_type != ComponentType::Helm && has_values,
    })
}

fn check_recipe(recipe: &Recipe) -> Result<(), BundleError> {
    let name = &recipe.metadata.name;
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(BundleError::InvalidRecipe {
            field: "metadata.name",
            value: name.clone(),
            reason: "use 1-253 letters, digits, `-`, `_` or `.`".into(),
        });
    }
    Ok(())
}

/// A component name becomes a folder name, a Helm release and an Argo CD Application name.
fn check_component(c: &Component) -> Result<(), BundleError> {
    if !is_dns_label(&c.name) {
        let reason = if c.name.contains('/') || c.name.contains('\\') || c.name.contains("..") {
            "it would name a path outside its folder"
        } else {
            "it must be a DNS label (lowercase letters, digits and `-`, at most 63)"
        };
        return Err(BundleError::UnsafeName {
            component: c.name.clone(),
            what: "name",
            name: c.name.clone(),
            reason: reason.into(),
        });
    }
    let field_err = |field: &'static str, value: &str, reason: &str| BundleError::InvalidField {
        component: c.name.clone(),
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    if !is_dns_label(&c.namespace) {
        return Err(field_err(
            "namespace",
            &c.namespace,
            "it must be a DNS label (lowercase letters, digits and `-`, at most 63)",
        ));
    }
    let version_ok = !c.version.is_empty()
        && c.version.len() <= 128
        && !c.version.starts_with('-')
        && c.version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
    if !version_ok {
        return Err(field_err(
            "version",
            &c.version,
            "use letters, digits, `.`, `-`, `_` or `+`, not starting with `-`",
        ));
    }
    for (field, value) in [("chart", &c.chart), ("source", &c.source)] {
        if let Some(v) = value
            && !is_safe_reference(v)
        {
            return Err(field_err(
                field,
                v,
                "it must be non-empty printable ASCII without spaces, quotes, backslashes or `$`, not starting with `-`",
            ));
        }
    }
    for dep in &c.dependency_refs {
        if !is_dns_label(dep) {
            return Err(field_err(
                "dependencyRefs entry",
                dep,
                "it must be a DNS label",
            ));
        }
    }
    for h in &c.health_checks {
        if !HEALTH_KINDS.contains(&h.kind.as_str()) {
            return Err(BundleError::UnsupportedHealthCheck {
                component: c.name.clone(),
                kind: h.kind.clone(),
            });
        }
        let name_ok = !h.name.is_empty()
            && h.name.len() <= 253
            && h.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
        if !name_ok {
            return Err(field_err(
                "health check name",
                &h.name,
                "it must be a Kubernetes object name (lowercase letters, digits, `-`, `.`)",
            ));
        }
        if let Some(ns) = &h.namespace
            && !is_dns_label(ns)
        {
            return Err(field_err(
                "health check namespace",
                ns,
                "it must be a DNS label",
            ));
        }
    }
    Ok(())
}

/// Chart names, repository URLs and kustomization sources end up in shell scripts and YAML:
/// printable ASCII, no whitespace or shell metacharacters that quoting would have to carry.
fn is_safe_reference(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 2048
        && !v.starts_with('-')
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'\\' | b'`' | b'$'))
}

/// A manifest file name: one plain path segment.
fn check_file_name(component: &str, name: &str) -> Result<(), BundleError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') || name.contains('\\') || name == ".." || name == "." {
        Some("it would name a path outside the component's manifests folder")
    } else if name.starts_with('.') {
        Some("hidden files are not allowed")
    } else if name.len() > 200
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("use at most 200 letters, digits, `-`, `_` or `.`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(BundleError::UnsafeName {
            component: component.to_string(),
            what: "manifest file name",
            name: name.to_string(),
            reason: reason.into(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::recipe::model::{Manifest, RecipeMetadata};
    use serde_json::json;

    pub(crate) fn component(name: &str, t: ComponentType) -> Component {
        Component {
            name: name.into(),
            component_type: t,
            source: (t == ComponentType::Helm).then(|| "https://charts.example.com".into()),
            chart: (t == ComponentType::Helm).then(|| name.into()),
            version: "v1.0.0".into(),
            namespace: name.into(),
            dependency_refs: vec![],
            health_checks: vec![],
            overlays: vec!["base".into()],
            values: json!({}),
            manifests: vec![],
        }
    }

    pub(crate) fn recipe(components: Vec<Component>) -> Recipe {
        Recipe {
            api_version: "aiconform.dev/v1alpha1".into(),
            kind: "Recipe".into(),
            metadata: RecipeMetadata {
                name: "test".into(),
                tool_version: "0.0.0".into(),
                applied_overlays: vec!["base".into()],
                value_count: 0,
                ..Default::default()
            },
            criteria: BTreeMap::new(),
            constraints: vec![],
            deployment_order: components.iter().map(|c| c.name.clone()).collect(),
            components,
            validation: json!({}),
        }
    }

    #[test]
    fn folders_follow_deployment_order() {
        let r = recipe(vec![
            component("zeta", ComponentType::Helm),
            component("alpha", ComponentType::Helm),
        ]);
        let b = render(&r, &BundleOptions::default()).unwrap();
        assert!(b.files.contains_key("01-zeta/values.yaml"));
        assert!(b.files.contains_key("02-alpha/values.yaml"));
        assert!(b.files["deploy.sh"].executable);
        let deploy = String::from_utf8(b.files["deploy.sh"].content.clone()).unwrap();
        let z = deploy.find("upgrade --install zeta").unwrap();
        let a = deploy.find("upgrade --install alpha").unwrap();
        assert!(z < a, "{deploy}");
        let undeploy = String::from_utf8(b.files["undeploy.sh"].content.clone()).unwrap();
        let z = undeploy.find("uninstall zeta").unwrap();
        let a = undeploy.find("uninstall alpha").unwrap();
        assert!(a < z, "{undeploy}");
    }

    #[test]
    fn wide_numbering_for_many_components() {
        let comps = (0..120)
            .map(|i| component(&format!("c{i}"), ComponentType::Manifest))
            .collect();
        let b = render(&recipe(comps), &BundleOptions::default()).unwrap();
        assert!(b.files.contains_key("001-c0/README.md"));
        assert!(b.files.contains_key("120-c119/README.md"));
    }

    #[test]
    fn rejects_traversal_in_names() {
        for bad in ["../x", "a/b", "..", "UPPER", ""] {
            let r = recipe(vec![component(bad, ComponentType::Helm)]);
            let err = render(&r, &BundleOptions::default()).unwrap_err();
            assert!(
                matches!(err, BundleError::UnsafeName { .. }),
                "{bad}: {err}"
            );
        }
        for bad in ["../x.yaml", "a/b.yaml", ".hidden", "..", "sp ace.yaml"] {
            let mut c = component("ok", ComponentType::Manifest);
            c.manifests.push(Manifest {
                name: bad.into(),
                content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n".into(),
                file: None,
            });
            let err = render(&recipe(vec![c]), &BundleOptions::default()).unwrap_err();
            assert!(
                matches!(err, BundleError::UnsafeName { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("manifest file name"), "{err}");
        }
    }

    #[test]
    fn rejects_shell_injection_in_fields() {
        let mut c = component("ok", ComponentType::Helm);
        c.version = "--post-renderer=x".into();
        assert!(render(&recipe(vec![c]), &BundleOptions::default()).is_err());
        let mut c = component("ok", ComponentType::Helm);
        c.source = Some("https://x/$(reboot)".into());
        let err = render(&recipe(vec![c]), &BundleOptions::default()).unwrap_err();
        assert!(err.to_string().contains("source"), "{err}");
        let mut r = recipe(vec![component("ok", ComponentType::Helm)]);
        r.metadata.name = "x\nrm -rf /".into();
        assert!(matches!(
            render(&r, &BundleOptions::default()),
            Err(BundleError::InvalidRecipe { .. })
        ));
    }

    #[test]
    fn rejects_duplicates_and_bad_health_checks() {
        let r = recipe(vec![
            component("a", ComponentType::Helm),
            component("a", ComponentType::Helm),
        ]);
        assert!(matches!(
            render(&r, &BundleOptions::default()),
            Err(BundleError::DuplicateComponent { .. })
        ));
        let mut c = component("a", ComponentType::Helm);
        c.health_checks.push(HealthCheck {
            kind: "Pod".into(),
            name: "x".into(),
            namespace: None,
        });
        let err = render(&recipe(vec![c]), &BundleOptions::default()).unwrap_err();
        assert!(err.to_string().contains("`Pod`"), "{err}");
    }

    #[test]
    fn manifest_namespace_must_match_component() {
        let mut c = component("a", ComponentType::Manifest);
        c.manifests.push(Manifest {
            name: "cm.yaml".into(),
            content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: other}\n"
                .into(),
            file: None,
        });
        let err = render(&recipe(vec![c]), &BundleOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("cm.yaml") && err.contains("`other`"), "{err}");
    }

    #[test]
    fn manifests_may_use_system_namespaces_and_namespaces_they_create() {
        let mut c = component("a", ComponentType::Manifest);
        c.manifests.push(Manifest {
            name: "m.yaml".into(),
            content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: extra}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: other-cm, namespace: extra}\n".into(),
            file: None,
        });
        render(&recipe(vec![c]), &BundleOptions::default()).unwrap();
    }

    #[test]
    fn health_check_namespace_defaults_to_component() {
        let mut c = component("a", ComponentType::Manifest);
        c.namespace = "team".into();
        c.health_checks = vec![
            HealthCheck {
                kind: "Deployment".into(),
                name: "d".into(),
                namespace: None,
            },
            HealthCheck {
                kind: "CustomResourceDefinition".into(),
                name: "xs.example.com".into(),
                namespace: Some("ignored".into()),
            },
        ];
        let b = render(&recipe(vec![c]), &BundleOptions::default()).unwrap();
        let m = b.manifest().unwrap();
        assert_eq!(
            m.components[0].health_checks[0].namespace.as_deref(),
            Some("team")
        );
        assert_eq!(m.components[0].health_checks[1].namespace, None);
    }

    #[test]
    fn checksums_cover_component_files() {
        let mut c = component("a", ComponentType::Helm);
        c.manifests.push(Manifest {
            name: "cm.yaml".into(),
            content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n".into(),
            file: None,
        });
        let b = render(&recipe(vec![c]), &BundleOptions::default()).unwrap();
        let sums = String::from_utf8(b.files["01-a/checksums.sha256"].content.clone()).unwrap();
        let listed: Vec<&str> = sums
            .lines()
            .map(|l| l.split_once("  ").unwrap().1)
            .collect();
        assert_eq!(listed, ["README.md", "manifests/cm.yaml", "values.yaml"]);
        let top = String::from_utf8(b.files["checksums.sha256"].content.clone()).unwrap();
        assert!(top.contains("  01-a/checksums.sha256\n"));
        assert!(!top.contains("bundle.yaml"));
        let manifest = b.manifest().unwrap();
        assert_eq!(manifest.files.len(), b.files.len() - 1);
        for f in &manifest.files {
            assert_eq!(
                f.sha256,
                sha256_hex(&b.files[&f.path].content),
                "{}",
                f.path
            );
        }
    }
}
