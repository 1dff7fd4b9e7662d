//! The bundle's layout shared by its renderers: a component as placed in the bundle
//! ([`Planned`]) and the names of the files every component folder holds. `render` plans;
//! the scripts, README and deployer renderers read the plan and its [`Rollout`].

use std::collections::{BTreeMap, BTreeSet};

use super::error::BundleError;
use super::model::BundleComponent;
use super::placement::Injection;

pub const CHECKSUMS_FILE: &str = "checksums.sha256";
pub const RECIPE_FILE: &str = "recipe.yaml";
pub const VALUES_FILE: &str = "values.yaml";
pub const README_FILE: &str = "README.md";

/// A component as laid out in the bundle, with what the README and scripts need to know.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub bc: BundleComponent,
    /// 1-based position in deployment order.
    pub index: usize,
    /// CRDs defined by each manifest, parallel to `bc.manifests`.
    pub manifest_crds: Vec<Vec<String>>,
    pub injections: Vec<Injection>,
    pub overlays: Vec<String>,
    /// Values given for a component type that takes none.
    pub ignored_values: bool,
}

/// What each component waits for, and the wave it rolls out in: parallel where the recipe's
/// dependency graph allows, or one at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollout {
    /// Per component (parallel to the plan): the components it waits for, sorted.
    pub needs: Vec<Vec<String>>,
    /// Per component: 0 without dependencies, else one more than its latest dependency.
    pub waves: Vec<usize>,
}

/// The rollout of `planned` (in deployment order). Parallel: each component waits for its
/// `dependencyRefs`, its wave is its depth in the graph, so independent components share a
/// wave. Serial: each waits for the one before it, waves 0, 1, 2, ... A dependency that is
/// not an earlier component of the plan is an error naming it.
pub(crate) fn rollout(planned: &[Planned], serial: bool) -> Result<Rollout, BundleError> {
    let mut needs = Vec::with_capacity(planned.len());
    let mut waves: Vec<usize> = Vec::with_capacity(planned.len());
    let mut wave_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in planned.iter().enumerate() {
        let (deps, wave) = if serial {
            let prev: Vec<String> = i
                .checked_sub(1)
                .map(|j| planned[j].bc.name.clone())
                .into_iter()
                .collect();
            (prev, i)
        } else {
            let deps: BTreeSet<&str> = p.bc.dependency_refs.iter().map(String::as_str).collect();
            let mut wave = 0;
            for d in &deps {
                let w = wave_of
                    .get(d)
                    .ok_or_else(|| BundleError::UnknownDependency {
                        component: p.bc.name.clone(),
                        dependency: d.to_string(),
                    })?;
                wave = wave.max(w + 1);
            }
            (deps.into_iter().map(str::to_string).collect(), wave)
        };
        wave_of.insert(p.bc.name.as_str(), wave);
        needs.push(deps);
        waves.push(wave);
    }
    Ok(Rollout { needs, waves })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::model::ComponentType;

    fn plan(deps: &[(&str, &[&str])]) -> Vec<Planned> {
        deps.iter()
            .enumerate()
            .map(|(i, (name, ds))| Planned {
                bc: BundleComponent {
                    name: name.to_string(),
                    folder: format!("{:02}-{name}", i + 1),
                    component_type: ComponentType::Manifest,
                    source: None,
                    chart: None,
                    chart_archive: None,
                    version: "1".into(),
                    namespace: "ns".into(),
                    dependency_refs: ds.iter().map(|d| d.to_string()).collect(),
                    values: None,
                    kustomization: None,
                    manifests: vec![],
                    health_checks: vec![],
                },
                index: i + 1,
                manifest_crds: vec![],
                injections: vec![],
                overlays: vec![],
                ignored_values: false,
            })
            .collect()
    }

    #[test]
    fn parallel_waves_are_dependency_depth() {
        let p = plan(&[
            ("a", &[]),
            ("b", &[]),
            ("c", &["a"]),
            ("d", &["c", "b", "c"]),
            ("e", &[]),
        ]);
        let r = rollout(&p, false).unwrap();
        assert_eq!(r.waves, [0, 0, 1, 2, 0]);
        assert_eq!(r.needs[3], ["b", "c"], "sorted, deduplicated");
        assert!(r.needs[4].is_empty());
    }

    #[test]
    fn serial_chains_in_order() {
        let p = plan(&[("a", &[]), ("b", &[]), ("c", &["a"])]);
        let r = rollout(&p, true).unwrap();
        assert_eq!(r.waves, [0, 1, 2]);
        assert_eq!(
            r.needs,
            [vec![], vec!["a".to_string()], vec!["b".to_string()]]
        );
    }

    #[test]
    fn unknown_or_later_dependency_is_named() {
        for p in [
            plan(&[("a", &["ghost"])]),
            plan(&[("a", &["b"]), ("b", &[])]),
        ] {
            let err = rollout(&p, false).unwrap_err().to_string();
            assert!(err.contains("component `a` depends on"), "{err}");
        }
    }
}
