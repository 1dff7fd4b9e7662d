//! The Argo CD deployer: an app-of-apps whose child Applications carry
//! `argocd.argoproj.io/sync-wave` = the component's wave in the [`Rollout`]: its depth in the
//! dependency graph (independent components sync together), or its position with `--serial`.

use serde_json::{Value, json};

use super::error::BundleError;
use super::planned::{Planned, Rollout};
use super::{BundleOptions, RenderedText};
use crate::recipe::model::{ComponentType, Recipe};

/// Repository URL used when no `argocd_repo_url` is given.
pub const REPO_PLACEHOLDER: &str = "https://git.example.com/REPLACE-ME/aiconform-bundle.git";
pub const ARGOCD_NAMESPACE: &str = "argocd";
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
const IN_CLUSTER: &str = "https://kubernetes.default.svc";

pub fn repo_url(opts: &BundleOptions) -> &str {
    opts.argocd_repo_url.as_deref().unwrap_or(REPO_PLACEHOLDER)
}

/// `aiconform-<recipe name>` as a DNS label.
fn app_of_apps_name(recipe: &Recipe) -> String {
    let mut s: String = recipe
        .metadata
        .name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(53);
    let s = s.trim_matches('-');
    if s.is_empty() {
        "aiconform-bundle".into()
    } else {
        format!("aiconform-{s}")
    }
}

fn sync_policy() -> Value {
    json!({
        "automated": {"prune": true, "selfHeal": true},
        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
    })
}

/// The Git repository URL, checked: it lands in YAML and in the README's shell lines.
pub(crate) fn checked_repo_url(opts: &BundleOptions) -> Result<&str, BundleError> {
    let repo = repo_url(opts);
    let repo_ok = !repo.is_empty()
        && !repo.starts_with('-')
        && repo
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'"');
    if !repo_ok {
        return Err(BundleError::InvalidOption {
            flag: "--argocd-repo-url",
            value: repo.to_string(),
            reason: "expected a Git repository URL".into(),
        });
    }
    Ok(repo)
}

/// Where Applications read the bundle from: repository URL and revision (literal values,
/// or Helm template expressions in the argocd-helm chart).
pub(crate) struct GitRef<'a> {
    pub url: &'a str,
    pub revision: &'a str,
}

/// The child Application of one component, in sync wave `wave`.
pub(crate) fn application(p: &Planned, git: &GitRef<'_>, wave: usize) -> Value {
    let c = &p.bc;
    let mut sources = Vec::new();
    match c.component_type {
        ComponentType::Helm => {
            let chart = c.chart.clone().unwrap_or_else(|| c.name.clone());
            let mut helm = json!({"releaseName": c.name});
            if let Some(values) = &c.values {
                helm["valueFiles"] = json!([format!("$values/{values}")]);
            }
            // Argo CD names OCI Helm repositories without the scheme (and needs a
            // repository entry with `enableOCI: true`).
            let source = c.source.clone().unwrap_or_default();
            let repo_url = source.strip_prefix("oci://").unwrap_or(&source);
            sources.push(json!({
                "repoURL": repo_url,
                "chart": chart,
                "targetRevision": c.version,
                "helm": helm,
            }));
            sources
                .push(json!({"repoURL": git.url, "targetRevision": git.revision, "ref": "values"}));
        }
        ComponentType::Kustomize => {
            if let Some(k) = &c.kustomization {
                sources
                    .push(json!({"repoURL": git.url, "targetRevision": git.revision, "path": k}));
            }
        }
        ComponentType::Manifest => {}
    }
    if !c.manifests.is_empty() {
        sources.push(json!({
            "repoURL": git.url,
            "targetRevision": git.revision,
            "path": format!("{}/manifests", c.folder),
        }));
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": c.name,
            "namespace": ARGOCD_NAMESPACE,
            "annotations": {SYNC_WAVE: wave.to_string()},
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": "default",
            "sources": sources,
            "destination": {"server": IN_CLUSTER, "namespace": c.namespace},
            "syncPolicy": sync_policy(),
        },
    })
}

/// The parent Application: syncs the child Applications found at `path` of the repository.
pub(crate) fn app_of_apps(recipe: &Recipe, repo: &str, path: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": app_of_apps_name(recipe),
            "namespace": ARGOCD_NAMESPACE,
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "targetRevision": "HEAD", "path": path},
            "destination": {"server": IN_CLUSTER, "namespace": ARGOCD_NAMESPACE},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}},
        },
    })
}

pub(crate) fn render(
    recipe: &Recipe,
    opts: &BundleOptions,
    planned: &[Planned],
    rollout: &Rollout,
) -> Result<Vec<RenderedText>, BundleError> {
    let repo = checked_repo_url(opts)?;
    let mut out = vec![(
        "argocd/app-of-apps.yaml".to_string(),
        crate::yaml::to_string(&app_of_apps(recipe, repo, "argocd/applications"))?,
    )];
    let git = GitRef {
        url: repo,
        revision: "HEAD",
    };
    for (p, wave) in planned.iter().zip(&rollout.waves) {
        out.push((
            format!("argocd/applications/{}.yaml", p.bc.folder),
            crate::yaml::to_string(&application(p, &git, *wave))?,
        ));
    }
    Ok(out)
}
