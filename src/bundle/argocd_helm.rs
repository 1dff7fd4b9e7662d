//! The argocd-helm deployer: the Argo CD app-of-apps as a Helm chart. `argocd-helm/` is a
//! chart whose templates are the child Applications of the argocd deployer (same sources,
//! same sync waves), with the repository URL and revision as chart values, so one bundle
//! serves several repositories or branches (`helm template`, or Argo CD's Helm source).

use serde_json::json;

use super::argocd::{self, GitRef};
use super::error::BundleError;
use super::planned::{Planned, Rollout};
use super::{BundleOptions, RenderedText};
use crate::recipe::model::Recipe;

pub const CHART_DIR: &str = "argocd-helm";
const REPO_TOKEN: &str = "AICONFORM_REPO_URL_VALUE";
const REVISION_TOKEN: &str = "AICONFORM_TARGET_REVISION_VALUE";

/// The Application of `p` as a Helm template: the rendered YAML with the repository URL and
/// revision replaced by template expressions. Anything else that Helm would read as a
/// template action is refused rather than escaped.
fn template(p: &Planned, wave: usize) -> Result<String, BundleError> {
    let git = GitRef {
        url: REPO_TOKEN,
        revision: REVISION_TOKEN,
    };
    let text = crate::yaml::to_string(&argocd::application(p, &git, wave))?;
    if text.contains("{{") || text.contains("}}") {
        return Err(BundleError::InvalidField {
            component: p.bc.name.clone(),
            field: "source",
            value: text
                .lines()
                .find(|l| l.contains("{{") || l.contains("}}"))
                .unwrap_or_default()
                .trim()
                .to_string(),
            reason: "`{{` and `}}` would be read as Helm template actions by the argocd-helm chart"
                .into(),
        });
    }
    Ok(text
        .replace(REPO_TOKEN, "{{ .Values.repoURL | quote }}")
        .replace(REVISION_TOKEN, "{{ .Values.targetRevision | quote }}"))
}

pub(crate) fn render(
    recipe: &Recipe,
    opts: &BundleOptions,
    planned: &[Planned],
    rollout: &Rollout,
) -> Result<Vec<RenderedText>, BundleError> {
    let repo = argocd::checked_repo_url(opts)?;
    let parent = argocd::app_of_apps(recipe, repo, CHART_DIR);
    let chart = json!({
        "apiVersion": "v2",
        "name": parent["metadata"]["name"],
        "description": format!(
            "Argo CD Applications of the components of recipe {}, rendered by aiconform",
            recipe.metadata.name
        ),
        "type": "application",
        "version": env!("CARGO_PKG_VERSION"),
    });
    let values = format!(
        "# Where the Applications read this bundle from.\n{}",
        crate::yaml::to_string(&json!({"repoURL": repo, "targetRevision": "HEAD"}))?
    );
    let mut out = vec![
        (
            format!("{CHART_DIR}/app-of-apps.yaml"),
            crate::yaml::to_string(&parent)?,
        ),
        (
            format!("{CHART_DIR}/Chart.yaml"),
            crate::yaml::to_string(&chart)?,
        ),
        (format!("{CHART_DIR}/values.yaml"), values),
    ];
    for (p, wave) in planned.iter().zip(&rollout.waves) {
        out.push((
            format!("{CHART_DIR}/templates/{}.yaml", p.bc.folder),
            template(p, *wave)?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Deployer;
    use crate::bundle::render::tests::{component, recipe};
    use crate::recipe::model::ComponentType;

    #[test]
    fn templates_take_repository_and_revision_from_values() {
        let opts = BundleOptions {
            deployer: Deployer::ArgoCdHelm,
            ..BundleOptions::default()
        };
        let b = crate::bundle::render(&recipe(vec![component("a", ComponentType::Helm)]), &opts)
            .unwrap();
        let t =
            String::from_utf8(b.files["argocd-helm/templates/01-a.yaml"].content.clone()).unwrap();
        assert!(t.contains("repoURL: {{ .Values.repoURL | quote }}"), "{t}");
        assert!(
            t.contains("targetRevision: {{ .Values.targetRevision | quote }}"),
            "{t}"
        );
        assert!(
            !t.contains(REPO_TOKEN) && !t.contains(REVISION_TOKEN),
            "{t}"
        );
    }

    #[test]
    fn template_actions_in_fields_are_refused() {
        let mut c = component("a", ComponentType::Helm);
        c.chart = Some("{{.Release}}".into());
        let opts = BundleOptions {
            deployer: Deployer::ArgoCdHelm,
            ..BundleOptions::default()
        };
        let err = crate::bundle::render(&recipe(vec![c]), &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Helm template"), "{err}");
    }
}
