//! Which cases a run executes, in which order: pure selection over suites and a recipe.
//!
//! Suites: `--suite NAME` (repeatable), else the recipe's `validation.suites` list, else every
//! suite. Phases: `--phase` (repeatable), else all. Cases are ordered by phase
//! (readiness → deployment → conformance → performance), then suite name, then file order.
//! `--include`/`--exclude` globs match the case id (`conformance/dra-support`) or the suite
//! name (`--include fabric`).

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::case::{CaseSpec, Phase};
use super::suite::{Expand, SuiteError, SuiteSet};
use crate::recipe::Recipe;
use crate::recipe::merge::deep_merge;

/// What the user asked to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Empty: every phase.
    pub phases: Vec<Phase>,
    /// Empty: the recipe's `validation.suites`, else every suite.
    pub suites: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error(
        "invalid {flag} pattern `{pattern}`: {message}; use globs like `conformance/*` or `*gang*`"
    )]
    Pattern {
        flag: &'static str,
        pattern: String,
        message: String,
    },
    #[error(
        "recipe `{recipe}`: validation.suites must be a list of suite names (e.g. [deployment, conformance]); found {found}"
    )]
    RecipeSuites { recipe: String, found: String },
}

/// The ordered cases of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub cases: Vec<Arc<CaseSpec>>,
}

impl Plan {
    /// Phases present, in run order.
    pub fn phases(&self) -> Vec<Phase> {
        let mut p: Vec<Phase> = self.cases.iter().map(|c| c.phase).collect();
        p.dedup();
        p
    }

    pub fn ids(&self) -> Vec<&str> {
        self.cases.iter().map(|c| c.id.as_str()).collect()
    }
}

fn globset(flag: &'static str, patterns: &[String]) -> Result<GlobSet, PlanError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = Glob::new(p).map_err(|e| PlanError::Pattern {
            flag,
            pattern: p.clone(),
            message: e.kind().to_string(),
        })?;
        b.add(g);
    }
    b.build().map_err(|e| PlanError::Pattern {
        flag,
        pattern: patterns.join(" "),
        message: e.to_string(),
    })
}

/// The suite names a run uses before phase filtering.
pub fn suite_names(
    suites: &SuiteSet,
    recipe: &Recipe,
    sel: &Selection,
) -> Result<Vec<String>, PlanError> {
    if !sel.suites.is_empty() {
        for s in &sel.suites {
            suites.get(s)?;
        }
        let mut v = sel.suites.clone();
        v.sort();
        v.dedup();
        return Ok(v);
    }
    match recipe.validation.get("suites") {
        None | Some(serde_json::Value::Null) => Ok(suites.suites.keys().cloned().collect()),
        Some(serde_json::Value::Array(items)) => {
            let mut v = Vec::new();
            for item in items {
                let Some(name) = item.as_str() else {
                    return Err(PlanError::RecipeSuites {
                        recipe: recipe.metadata.name.clone(),
                        found: item.to_string(),
                    });
                };
                suites.get(name)?;
                v.push(name.to_string());
            }
            v.sort();
            v.dedup();
            Ok(v)
        }
        Some(other) => Err(PlanError::RecipeSuites {
            recipe: recipe.metadata.name.clone(),
            found: other.to_string(),
        }),
    }
}

/// A dot path into a JSON value (`nccl.allReduce`).
fn lookup_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(v, |cur, key| cur.get(key))
}

/// One case instance of a suite entry: id leaf, description, extra `(param, value)`.
type Instance<'a> = (String, String, Option<(&'a str, &'a str)>);

/// Build the plan. Pure: no I/O.
pub fn plan(suites: &SuiteSet, recipe: &Recipe, sel: &Selection) -> Result<Plan, PlanError> {
    let include = globset("--include", &sel.include)?;
    let exclude = globset("--exclude", &sel.exclude)?;
    let names = suite_names(suites, recipe, sel)?;
    let mut cases: Vec<CaseSpec> = Vec::new();
    for name in &names {
        let suite = suites.get(name)?;
        if !sel.phases.is_empty() && !sel.phases.contains(&suite.phase) {
            continue;
        }
        for def in &suite.cases {
            let mut params = def.params.clone();
            if let Some(path) = &def.validation
                && let Some(overlay) = lookup_path(&recipe.validation, path)
                && overlay.is_object()
            {
                deep_merge(&mut params, overlay);
            }
            let instances: Vec<Instance> = match def.expand {
                None => vec![(def.name.clone(), def.description.clone(), None)],
                Some(Expand::PerComponent) => recipe
                    .components
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            format!("{} ({} {})", def.description, c.name, c.version),
                            Some(("component", c.name.as_str())),
                        )
                    })
                    .collect(),
                Some(Expand::PerConstraint) => recipe
                    .constraints
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            format!("{}: {} {}", def.description, c.name, c.value),
                            Some(("constraint", c.name.as_str())),
                        )
                    })
                    .collect(),
            };
            for (leaf, description, extra) in instances {
                let mut p = params.clone();
                if let (Some((k, v)), Some(obj)) = (extra, p.as_object_mut()) {
                    obj.insert(k.to_string(), serde_json::Value::String(v.to_string()));
                }
                cases.push(CaseSpec {
                    id: format!("{}/{}", suite.name, leaf),
                    suite: suite.name.clone(),
                    name: def.implementation.clone(),
                    phase: suite.phase,
                    description,
                    params: p,
                    timeout: def.timeout,
                    retries: def.retries,
                    flaky: def.flaky,
                    needs_namespace: def.needs_namespace,
                    requirement: def.requirement.clone(),
                });
            }
        }
    }
    cases.retain(|c| {
        let hit = |set: &GlobSet| set.is_match(&c.id) || set.is_match(&c.suite);
        (sel.include.is_empty() || hit(&include)) && !hit(&exclude)
    });
    // Stable sort: phase, then suite; file order within a suite is kept.
    cases.sort_by(|a, b| a.phase.cmp(&b.phase).then_with(|| a.suite.cmp(&b.suite)));
    Ok(Plan {
        cases: cases.into_iter().map(Arc::new).collect(),
    })
}

/// `--list` output: one line per case (id, phase, description), aligned. A case proving an
/// AI conformance requirement ends with its id, and its level when a checklist is chosen.
pub fn render_list(
    plan: &Plan,
    conformance: Option<&crate::conformance::ConformanceRun>,
) -> String {
    let w = plan.cases.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &plan.cases {
        let req = match (&c.requirement, conformance) {
            (None, _) => String::new(),
            (Some(r), None) => format!(" [{r}]"),
            (Some(r), Some(conf)) => match conf.checklist().get(r) {
                Some(req) => format!(" [{r}: {} in {}]", req.level_label(), conf.version),
                None => format!(" [{r}: not in the {} checklist]", conf.version),
            },
        };
        out.push_str(&format!(
            "{:<w$}  {:<11}  {}{req}\n",
            c.id,
            c.phase.as_str(),
            c.description
        ));
    }
    out.push_str(&format!("{} cases\n", plan.cases.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::model::{Component, ComponentType, Constraint, RecipeMetadata};
    use serde_json::json;

    pub(crate) fn recipe() -> Recipe {
        let comp = |name: &str| Component {
            name: name.into(),
            component_type: ComponentType::Helm,
            source: None,
            chart: None,
            version: "v1.0.0".into(),
            namespace: name.into(),
            dependency_refs: vec![],
            health_checks: vec![],
            overlays: vec![],
            values: json!({"password": "hunter2"}),
            manifests: vec![],
        };
        Recipe {
            api_version: "aiconform.dev/v1alpha1".into(),
            kind: "Recipe".into(),
            metadata: RecipeMetadata {
                name: "test".into(),
                tool_version: "0.1.0".into(),
                applied_overlays: vec![],
                value_count: 0,
                ..Default::default()
            },
            criteria: Default::default(),
            constraints: vec![Constraint {
                name: "K8s.server.version".into(),
                value: ">= 1.32".into(),
                source: "base".into(),
            }],
            deployment_order: vec!["cert-manager".into(), "gpu-operator".into()],
            components: vec![comp("cert-manager"), comp("gpu-operator")],
            validation: json!({"nccl": {"allReduce": {"minAvgBusBandwidthGBps": 300}}}),
        }
    }

    fn ids(sel: &Selection) -> Vec<String> {
        let suites = SuiteSet::builtin().unwrap();
        plan(&suites, &recipe(), sel)
            .unwrap()
            .cases
            .iter()
            .map(|c| c.id.clone())
            .collect()
    }

    #[test]
    fn default_plan_is_ordered_by_phase() {
        let suites = SuiteSet::builtin().unwrap();
        let p = plan(&suites, &recipe(), &Selection::default()).unwrap();
        assert_eq!(
            p.phases(),
            [
                Phase::Readiness,
                Phase::NodeHealth,
                Phase::Deployment,
                Phase::Conformance,
                Phase::Performance
            ]
        );
        let ids = p.ids();
        assert_eq!(ids[0], "readiness/K8s.server.version");
        assert_eq!(ids[1], "node-health/gpu-count");
        assert_eq!(ids[9], "deployment/cert-manager");
        assert_eq!(ids[10], "deployment/gpu-operator");
        assert_eq!(ids[11], "conformance/dra-support");
        assert_eq!(ids.last().copied(), Some("fabric/gdr-enabled"));
        assert_eq!(ids.len(), 1 + 8 + 2 + 16 + 2);
    }

    #[test]
    fn expansion_sets_params_and_implementation() {
        let suites = SuiteSet::builtin().unwrap();
        let p = plan(&suites, &recipe(), &Selection::default()).unwrap();
        let dep = &p.cases[10];
        assert_eq!(dep.name, "component-health");
        assert_eq!(dep.params["component"], "gpu-operator");
        assert!(
            !dep.params.to_string().contains("hunter2"),
            "component values never reach case params"
        );
        let r = &p.cases[0];
        assert_eq!(r.params["constraint"], "K8s.server.version");
    }

    #[test]
    fn recipe_validation_overlays_params() {
        let suites = SuiteSet::from_texts(&[(
            "suites/perf.yaml".into(),
            "name: perf\nphase: performance\ncases:\n  - name: bw\n    validation: nccl.allReduce\n    params:\n      minAvgBusBandwidthGBps: 40\n      minLargeMessageBusBandwidthGBps: 80\n  - name: other\n    validation: nope.missing\n    params: {x: 1}\n"
                .into(),
        )])
        .unwrap();
        let p = plan(&suites, &recipe(), &Selection::default()).unwrap();
        let bw = &p.cases[0];
        assert_eq!(bw.params["minAvgBusBandwidthGBps"], 300, "recipe wins");
        assert_eq!(
            bw.params["minLargeMessageBusBandwidthGBps"], 80,
            "suite default kept"
        );
        assert_eq!(
            p.cases[1].params,
            json!({"x": 1}),
            "absent path changes nothing"
        );
        let builtin = SuiteSet::builtin().unwrap();
        let p = plan(&builtin, &recipe(), &Selection::default()).unwrap();
        let nccl = p
            .cases
            .iter()
            .find(|c| c.id == "fabric/nccl-all-reduce-bw")
            .unwrap();
        assert_eq!(nccl.params["minAvgBusBandwidthGBps"], 300);
        assert!(nccl.needs_namespace);
    }

    #[test]
    fn phase_filter() {
        let got = ids(&Selection {
            phases: vec![Phase::Performance, Phase::Readiness],
            ..Default::default()
        });
        assert_eq!(
            got,
            [
                "readiness/K8s.server.version",
                "fabric/nccl-all-reduce-bw",
                "fabric/gdr-enabled"
            ]
        );
    }

    #[test]
    fn include_and_exclude_globs() {
        let got = ids(&Selection {
            include: vec!["conformance/*".into(), "fabric".into()],
            exclude: vec!["*gang*".into(), "fabric/gdr-*".into()],
            ..Default::default()
        });
        assert_eq!(got.len(), 15 + 1);
        assert!(!got.iter().any(|i| i.contains("gang")));
        assert!(got.contains(&"fabric/nccl-all-reduce-bw".to_string()));
        assert!(!got.iter().any(|i| i.starts_with("deployment/")));

        let got = ids(&Selection {
            include: vec!["deployment/gpu-*".into()],
            ..Default::default()
        });
        assert_eq!(got, ["deployment/gpu-operator"]);

        let suites = SuiteSet::builtin().unwrap();
        let e = plan(
            &suites,
            &recipe(),
            &Selection {
                include: vec!["a[".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("--include pattern `a[`"), "{e}");
    }

    #[test]
    fn suites_from_flag_and_recipe() {
        let got = ids(&Selection {
            suites: vec!["fabric".into()],
            ..Default::default()
        });
        assert_eq!(got.len(), 2);
        let suites = SuiteSet::builtin().unwrap();
        let mut r = recipe();
        r.validation["suites"] = json!(["deployment"]);
        let p = plan(&suites, &r, &Selection::default()).unwrap();
        assert_eq!(
            p.ids(),
            ["deployment/cert-manager", "deployment/gpu-operator"]
        );
        r.validation["suites"] = json!(["nope"]);
        let e = plan(&suites, &r, &Selection::default()).unwrap_err();
        assert!(e.to_string().contains("unknown suite `nope`"), "{e}");
        r.validation["suites"] = json!("deployment");
        let e = plan(&suites, &r, &Selection::default()).unwrap_err();
        assert!(e.to_string().contains("must be a list"), "{e}");
        let e = plan(
            &suites,
            &recipe(),
            &Selection {
                suites: vec!["x".into()],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown suite `x`"), "{e}");
    }

    #[test]
    fn list_rendering() {
        let suites = SuiteSet::builtin().unwrap();
        let p = plan(
            &suites,
            &recipe(),
            &Selection {
                suites: vec!["fabric".into()],
                ..Default::default()
            },
        )
        .unwrap();
        let out = render_list(&p, None);
        assert!(out.starts_with("fabric/nccl-all-reduce-bw  performance  all_reduce_perf"));
        assert!(out.ends_with("2 cases\n"));
    }
}
