//! Recipe drift: the recipe's constraints that no longer hold on a cluster, and each
//! component whose deployed version differs from the recipe's.
//!
//! Deployed versions come, best first, from Helm release records (the chart version of the
//! release `deploy` installed: release name = component name) and else from the operator
//! facts of a snapshot (`app.kubernetes.io/version` or `helm.sh/chart` labels, or an image
//! tag, of the component's workloads). Versions compare tolerantly (`v25.10.1` == `25.10.1`).

use serde::{Deserialize, Serialize};

use crate::deploy::release::ReleaseRecord;
use crate::readiness::{CheckResult, Status};
use crate::recipe::model::{ComponentType, Recipe};
use crate::snapshot::Snapshot;
use crate::version::Version;

/// A component as found in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployedComponent {
    pub namespace: String,
    /// Empty when the evidence carries no version.
    pub version: String,
    /// How it was found: `helm release gpu-operator/gpu-operator (revision 3, deployed)`,
    /// `workload labels`.
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftStatus {
    /// Deployed at the recipe's version.
    Match,
    /// Deployed at another version.
    Differs,
    /// Deployed in another namespace than the recipe's.
    Moved,
    /// Found, but nothing says which version.
    Unversioned,
    /// No Helm release or workload of it was found.
    Missing,
}

impl DriftStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftStatus::Match => "match",
            DriftStatus::Differs => "differs",
            DriftStatus::Moved => "moved",
            DriftStatus::Unversioned => "unversioned",
            DriftStatus::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDrift {
    pub component: String,
    pub namespace: String,
    /// The recipe's version.
    pub expected: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<DeployedComponent>,
    pub status: DriftStatus,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipeDriftSummary {
    pub constraints_checked: usize,
    pub constraints_failing: usize,
    pub components_checked: usize,
    pub components_drifted: usize,
}

/// Where a cluster no longer matches its recipe: only what drifted is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipeDrift {
    pub recipe: String,
    /// The snapshot (file or `cm://`) or the live cluster that was compared.
    pub target: String,
    pub summary: RecipeDriftSummary,
    /// Constraints that fail or cannot be measured any more.
    pub constraints: Vec<CheckResult>,
    /// Components not deployed at the recipe's version, sorted by name.
    pub components: Vec<ComponentDrift>,
}

impl RecipeDrift {
    pub fn has_drift(&self) -> bool {
        !self.constraints.is_empty() || !self.components.is_empty()
    }
}

/// Same version, ignoring a leading `v` and comparing numerically where both parse.
pub fn same_version(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.trim().trim_start_matches(['v', 'V']).to_string();
    if strip(a) == strip(b) {
        return true;
    }
    match (Version::parse(a), Version::parse(b)) {
        // Numeric parts only match when neither carries a suffix the other lacks.
        (Some(x), Some(y)) => x == y && strip(a).len() == strip(b).len(),
        _ => false,
    }
}

/// What a snapshot or the release records say is deployed for the recipe component `name`.
pub fn deployed_component(
    name: &str,
    namespace: &str,
    releases: &[ReleaseRecord],
    snapshot: &Snapshot,
) -> Option<DeployedComponent> {
    let of_name: Vec<&ReleaseRecord> = releases.iter().filter(|r| r.name == name).collect();
    if let Some(r) = of_name
        .iter()
        .find(|r| r.namespace == namespace)
        .or_else(|| of_name.first())
    {
        return Some(DeployedComponent {
            namespace: r.namespace.clone(),
            version: r.chart_version.clone(),
            source: format!(
                "helm release {}/{} (revision {}, {})",
                r.namespace, r.name, r.revision, r.status
            ),
        });
    }
    if let Some(op) = snapshot.cluster.operators.get(name) {
        let ns = op
            .evidence
            .iter()
            .filter_map(|e| e.split_once(':'))
            .filter(|(kind, _)| !kind.starts_with("crd"))
            .find_map(|(_, rest)| rest.split_once('/').map(|(ns, _)| ns.to_string()))
            .unwrap_or_else(|| namespace.to_string());
        return Some(DeployedComponent {
            namespace: ns,
            version: op.version.clone().unwrap_or_default(),
            source: format!("workload labels ({})", op.evidence.join(", ")),
        });
    }
    let helm = snapshot
        .cluster
        .helm_releases
        .iter()
        .find(|r| r.name == name)?;
    Some(DeployedComponent {
        namespace: helm.namespace.clone(),
        version: String::new(),
        source: format!(
            "helm release {}/{} (revision {}, {}; the snapshot holds no chart version)",
            helm.namespace, helm.name, helm.revision, helm.status
        ),
    })
}

/// Compare every recipe component with what is deployed.
pub fn component_drift(
    recipe: &Recipe,
    releases: &[ReleaseRecord],
    snapshot: &Snapshot,
) -> Vec<ComponentDrift> {
    let mut out: Vec<ComponentDrift> = recipe
        .components
        .iter()
        .map(|c| {
            let deployed = deployed_component(&c.name, &c.namespace, releases, snapshot);
            let status = match &deployed {
                None => DriftStatus::Missing,
                Some(d) if d.namespace != c.namespace => DriftStatus::Moved,
                Some(d) if d.version.is_empty() => DriftStatus::Unversioned,
                Some(d) if same_version(&d.version, &c.version) => DriftStatus::Match,
                Some(_) => DriftStatus::Differs,
            };
            // A manifest component has no version of its own to read back.
            let status =
                if c.component_type != ComponentType::Helm && status == DriftStatus::Unversioned {
                    DriftStatus::Match
                } else {
                    status
                };
            ComponentDrift {
                component: c.name.clone(),
                namespace: c.namespace.clone(),
                expected: c.version.clone(),
                deployed,
                status,
            }
        })
        .collect();
    out.sort_by(|a, b| a.component.cmp(&b.component));
    out
}

/// The recipe drift of a cluster: failing constraints (from a readiness evaluation) and
/// components not at the recipe's version. `target` names the snapshot or cluster.
pub fn recipe_drift(
    recipe: &Recipe,
    target: &str,
    snapshot: &Snapshot,
    releases: &[ReleaseRecord],
) -> RecipeDrift {
    let readiness = crate::readiness::evaluate_snapshot(&recipe.constraints, snapshot);
    let components = component_drift(recipe, releases, snapshot);
    let constraints: Vec<CheckResult> = readiness
        .results
        .into_iter()
        .filter(|r| r.status != Status::Pass)
        .collect();
    let drifted: Vec<ComponentDrift> = components
        .iter()
        .filter(|c| c.status != DriftStatus::Match)
        .cloned()
        .collect();
    RecipeDrift {
        recipe: recipe.metadata.name.clone(),
        target: target.to_string(),
        summary: RecipeDriftSummary {
            constraints_checked: recipe.constraints.len(),
            constraints_failing: constraints.len(),
            components_checked: components.len(),
            components_drifted: drifted.len(),
        },
        constraints,
        components: drifted,
    }
}

/// Recipe drift as two tables (constraints, components) and a summary line.
pub fn render_table(d: &RecipeDrift) -> String {
    let mut out = format!("recipe: {}\ntarget: {}\n\n", d.recipe, d.target);
    if d.constraints.is_empty() {
        out.push_str("constraints: every constraint holds\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .constraints
            .iter()
            .map(|r| {
                vec![
                    r.constraint.clone(),
                    r.expected.clone(),
                    crate::readiness::actual_cell(&r.actual),
                    r.status.as_str().to_string(),
                ]
            })
            .collect();
        out.push_str(&crate::output::table(
            &["CONSTRAINT", "EXPECTED", "ACTUAL", "STATUS"],
            &rows,
        ));
        for r in &d.constraints {
            if let Some(detail) = &r.detail {
                out.push_str(&format!(
                    "  {} [{}]: {detail}\n",
                    r.constraint,
                    r.status.as_str()
                ));
            }
        }
    }
    out.push('\n');
    if d.components.is_empty() {
        out.push_str("components: every component is at the recipe's version\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .components
            .iter()
            .map(|c| {
                let (deployed, source) = match &c.deployed {
                    Some(x) => (
                        format!(
                            "{} in {}",
                            if x.version.is_empty() {
                                "-"
                            } else {
                                &x.version
                            },
                            x.namespace
                        ),
                        x.source.clone(),
                    ),
                    None => ("-".into(), "no Helm release or workload found".into()),
                };
                vec![
                    c.component.clone(),
                    format!("{} in {}", c.expected, c.namespace),
                    deployed,
                    c.status.as_str().to_string(),
                    source,
                ]
            })
            .collect();
        out.push_str(&crate::output::table(
            &["COMPONENT", "RECIPE", "DEPLOYED", "STATUS", "SOURCE"],
            &rows,
        ));
    }
    out.push_str(&format!(
        "\ndrift: {} of {} constraints failing, {} of {} components drifted\n",
        d.summary.constraints_failing,
        d.summary.constraints_checked,
        d.summary.components_drifted,
        d.summary.components_checked
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_tolerantly() {
        assert!(same_version("v25.10.1", "25.10.1"));
        assert!(same_version("82.8.0", "82.8.0"));
        assert!(!same_version("v25.10.1", "v25.10.0"));
        assert!(!same_version("1.0.0", "1.0.0-rc1"));
        assert!(same_version("v1.34", "v1.34"));
    }
}
