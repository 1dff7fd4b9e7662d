//! Composition: select the overlays that match a query, apply them from least to most
//! specific, and produce one version-locked [`Recipe`]. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::aliases::ComponentAliases;
use super::catalog::{Catalog, LoadedOverlay};
use super::conformance::{self, Claim};
use super::criteria::{Criteria, Dimension};
use super::error::{RecipeError, Result};
use super::merge::deep_merge;
use super::model::{
    Component, ComponentType, Constraint, ExcludedOverlay, HealthCheck, Manifest, Recipe,
    RecipeMetadata, count_values,
};
use super::overlay::{API_VERSION, ComponentRef, ConformanceSpec};
use super::overrides;
use super::set::SetExpr;

pub const RECIPE_KIND: &str = "Recipe";

/// Overlays to apply for `query`, least specific first, each preceded by its parents.
pub fn applicable_overlays(catalog: &Catalog, query: &Criteria) -> Result<Vec<String>> {
    let mut matched: Vec<&LoadedOverlay> = catalog
        .overlays
        .values()
        .filter(|o| o.criteria.matches(query))
        .collect();
    matched.sort_by(|a, b| {
        (a.criteria.specificity(), &a.file.name).cmp(&(b.criteria.specificity(), &b.file.name))
    });
    let mut applied: Vec<String> = Vec::new();
    for o in matched {
        for name in catalog.ancestry(&o.file.name)? {
            if !applied.contains(&name) {
                applied.push(name);
            }
        }
    }
    Ok(applied)
}

/// The first criterion `query` states that none of the overlays in `applied` pins to the
/// same value. Composing anyway would hand back a broader recipe (say, base only for an
/// accelerator without an overlay) under the stated criteria's name.
pub fn uncovered_criterion(
    catalog: &Catalog,
    query: &Criteria,
    applied: &[String],
) -> Option<(Dimension, String)> {
    Dimension::ALL.into_iter().find_map(|d| {
        let value = query.get(d)?;
        let carried = applied
            .iter()
            .filter_map(|name| catalog.overlays.get(name))
            .any(|o| o.criteria.get(d) == Some(value));
        (!carried).then(|| (d, value.to_string()))
    })
}

#[derive(Default)]
struct Draft {
    component_type: Option<ComponentType>,
    source: Option<String>,
    chart: Option<String>,
    version: Option<String>,
    namespace: Option<String>,
    values: Value,
    manifests: Vec<Manifest>,
    /// dependency -> origin of the overlay that declared it
    dependencies: BTreeMap<String, String>,
    health_checks: Vec<HealthCheck>,
    overlays: Vec<String>,
    /// requirement -> (position of the declaring overlay, its parameters)
    conformance: BTreeMap<String, (usize, ConformanceSpec)>,
}

/// What composition changes beyond the overlays: `--set` overrides, and for a recipe
/// composed for a snapshot, the overlays to leave out and the constraints it could not check.
#[derive(Debug, Clone, Default)]
pub struct Adjustments {
    pub sets: Vec<SetExpr>,
    pub excluded: Vec<ExcludedOverlay>,
    pub constraint_warnings: Vec<String>,
}

/// Compose the recipe for `query`.
pub fn compose(catalog: &Catalog, query: &Criteria) -> Result<Recipe> {
    compose_with(catalog, query, &Adjustments::default())
}

/// Every component some overlay declares: the names `--set` may refer to.
pub fn declared_components(catalog: &Catalog) -> BTreeSet<String> {
    catalog
        .overlays
        .values()
        .flat_map(|o| o.file.component_refs.iter().map(|c| c.name.clone()))
        .collect()
}

/// Compose the recipe for `query`, leaving out excluded overlays and applying overrides
/// last. `enabled=true` brings back a component an applied overlay removed, as that overlay
/// found it.
pub fn compose_with(catalog: &Catalog, query: &Criteria, adj: &Adjustments) -> Result<Recipe> {
    let sets = if adj.sets.is_empty() {
        Vec::new()
    } else {
        let aliases = ComponentAliases::load(&catalog.files)?;
        overrides::resolve(&adj.sets, &declared_components(catalog), &aliases)?
    };
    let restore = overrides::restored(&sets);
    let matching = applicable_overlays(catalog, query)?;
    if let Some((dimension, value)) = uncovered_criterion(catalog, query, &matching) {
        return Err(RecipeError::UncoveredCriterion {
            dimension,
            value,
            applied: matching,
        });
    }
    let applied: Vec<String> = matching
        .into_iter()
        .filter(|name| !adj.excluded.iter().any(|e| &e.name == name))
        .collect();
    let mut drafts: BTreeMap<String, Draft> = BTreeMap::new();
    let mut removed: BTreeMap<String, Draft> = BTreeMap::new();
    let mut constraints: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut validation = Value::Object(Default::default());

    for (seq, name) in applied.iter().enumerate() {
        let overlay = &catalog.overlays[name];
        for c in &overlay.file.constraints {
            constraints.insert(c.name.clone(), (c.value.clone(), name.clone()));
        }
        if let Some(v) = &overlay.file.validation {
            deep_merge(&mut validation, v);
        }
        for cref in &overlay.file.component_refs {
            if cref.enabled == Some(false) {
                if let Some(d) = drafts.remove(&cref.name) {
                    removed.insert(cref.name.clone(), d);
                }
                continue;
            }
            let draft = drafts.entry(cref.name.clone()).or_default();
            apply_ref(catalog, overlay, cref, draft)?;
            for (req, spec) in &cref.conformance {
                draft.conformance.insert(req.clone(), (seq, spec.clone()));
            }
        }
    }
    for name in &restore {
        if !drafts.contains_key(name)
            && let Some(d) = removed.remove(name)
        {
            drafts.insert(name.clone(), d);
        }
    }

    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, d) in &drafts {
        for (dep, origin) in &d.dependencies {
            if !drafts.contains_key(dep) {
                if restore.contains(name) {
                    return Err(RecipeError::Set {
                        expr: format!("{name}:enabled=true"),
                        message: format!(
                            "restored component `{name}` depends on `{dep}`, which is not in this recipe"
                        ),
                    });
                }
                return Err(RecipeError::UnknownDependency {
                    origin: origin.clone(),
                    component: name.clone(),
                    dependency: dep.clone(),
                });
            }
        }
        deps.insert(name.clone(), d.dependencies.keys().cloned().collect());
    }
    let order = super::order::deployment_order(&deps)?;

    let mut components = Vec::with_capacity(order.len());
    let mut claims: Vec<Claim> = Vec::new();
    for name in &order {
        let mut d = drafts.remove(name).expect("ordered names come from drafts");
        claims.extend(conformance::claims(
            name,
            std::mem::take(&mut d.conformance),
        ));
        components.push(finish(name, d)?);
    }
    let value_count = components.iter().map(|c| count_values(&c.values)).sum();

    let mut recipe = Recipe {
        api_version: API_VERSION.into(),
        kind: RECIPE_KIND.into(),
        metadata: RecipeMetadata {
            name: query.slug(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            applied_overlays: applied,
            value_count,
            overrides: Vec::new(),
            excluded_overlays: adj.excluded.clone(),
            constraint_warnings: adj.constraint_warnings.clone(),
        },
        criteria: query.to_map(),
        constraints: constraints
            .into_iter()
            .map(|(name, (value, source))| Constraint {
                name,
                value,
                source,
            })
            .collect(),
        deployment_order: order,
        components,
        validation,
    };
    if !sets.is_empty() {
        overrides::apply(&mut recipe, &sets)?;
    }
    recipe.validation = proven_validation(&recipe, &claims);
    Ok(recipe)
}

/// The validation of the finished recipe: what its remaining components prove (after
/// `--set` removals), under the overlays' hand-written settings.
fn proven_validation(recipe: &Recipe, claims: &[Claim]) -> Value {
    let present: BTreeSet<&str> = recipe.components.iter().map(|c| c.name.as_str()).collect();
    conformance::compose_validation(claims, &present, &recipe.validation)
}

fn apply_ref(
    catalog: &Catalog,
    overlay: &LoadedOverlay,
    cref: &ComponentRef,
    d: &mut Draft,
) -> Result<()> {
    let set = |slot: &mut Option<String>, v: &Option<String>| {
        if v.is_some() {
            slot.clone_from(v);
        }
    };
    if cref.component_type.is_some() {
        d.component_type = cref.component_type;
    }
    set(&mut d.source, &cref.source);
    set(&mut d.chart, &cref.chart);
    set(&mut d.version, &cref.version);
    set(&mut d.namespace, &cref.namespace);
    if let Some(file) = &cref.values_file {
        // Presence and shape were checked, and the file parsed, when the catalog loaded.
        let v = catalog
            .values
            .get(file)
            .ok_or_else(|| RecipeError::MissingFile {
                origin: overlay.origin.clone(),
                component: cref.name.clone(),
                what: "values file",
                file: file.clone(),
            })?;
        deep_merge(&mut d.values, v);
    }
    if let Some(v) = &cref.values {
        if !v.is_object() {
            return Err(RecipeError::Invalid {
                origin: overlay.origin.clone(),
                message: format!("component `{}`: values must be a mapping", cref.name),
            });
        }
        deep_merge(&mut d.values, v);
    }
    for file in &cref.manifest_files {
        let src = catalog
            .files
            .get(file)
            .ok_or_else(|| RecipeError::MissingFile {
                origin: overlay.origin.clone(),
                component: cref.name.clone(),
                what: "manifest file",
                file: file.clone(),
            })?;
        let content = String::from_utf8(src.content.clone()).map_err(|_| RecipeError::Invalid {
            origin: src.origin.clone(),
            message: "manifest is not valid UTF-8".into(),
        })?;
        let name = file.rsplit('/').next().unwrap_or(file).to_string();
        match d.manifests.iter_mut().find(|m| m.name == name) {
            Some(m) => m.content = content,
            None => d.manifests.push(Manifest {
                name,
                content,
                file: None,
            }),
        }
    }
    for dep in &cref.dependency_refs {
        d.dependencies.insert(dep.clone(), overlay.origin.clone());
    }
    if let Some(checks) = &cref.health_checks {
        d.health_checks = checks.clone();
        d.health_checks.sort();
        d.health_checks.dedup();
    }
    d.overlays.push(overlay.file.name.clone());
    Ok(())
}

fn finish(name: &str, d: Draft) -> Result<Component> {
    let missing = |field| RecipeError::IncompleteComponent {
        component: name.to_string(),
        field,
        overlays: d.overlays.clone(),
    };
    let component_type = d.component_type.ok_or_else(|| missing("type"))?;
    let version = d.version.clone().ok_or_else(|| missing("version"))?;
    if component_type == ComponentType::Helm && d.source.is_none() {
        return Err(missing("source (Helm repository)"));
    }
    let mut values = d.values;
    if values.is_null() {
        values = Value::Object(Default::default());
    }
    let dependency_refs: BTreeSet<String> = d.dependencies.into_keys().collect();
    Ok(Component {
        name: name.to_string(),
        component_type,
        chart: d
            .chart
            .or_else(|| (component_type == ComponentType::Helm).then(|| name.to_string())),
        source: d.source,
        version,
        namespace: d.namespace.unwrap_or_else(|| name.to_string()),
        dependency_refs: dependency_refs.into_iter().collect(),
        health_checks: d.health_checks,
        overlays: d.overlays,
        values,
        manifests: d.manifests,
    })
}
