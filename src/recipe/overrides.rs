//! Applying `--set`, `--set-json` and `--set-file` overrides to a composed recipe: component
//! names resolved (aliases allowed), the last expression for a path wins (documents given as
//! objects merge into what came before), `enabled=false` removes a component and reports
//! its dependents, values are set after every overlay. Pure: no I/O.

use std::collections::BTreeSet;

use super::aliases::ComponentAliases;
use super::error::{RecipeError, Result};
use super::model::{Recipe, ValueOverride, count_values};
use super::set::{self, SetExpr};

fn set_error(expr: &SetExpr, message: String) -> RecipeError {
    RecipeError::Set {
        expr: expr.text.clone(),
        message,
    }
}

/// Resolve each expression's component to a name in `known` (directly or through an
/// alias) and keep only the last expression per component and path, in the order the kept
/// ones were given.
pub fn resolve(
    exprs: &[SetExpr],
    known: &BTreeSet<String>,
    aliases: &ComponentAliases,
) -> Result<Vec<SetExpr>> {
    let mut resolved: Vec<SetExpr> = Vec::with_capacity(exprs.len());
    for e in exprs {
        let Some(name) = aliases.resolve(&e.component, known) else {
            let list: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(set_error(
                e,
                format!(
                    "unknown component `{}`; use one of: {} (or an alias such as {})",
                    e.component,
                    list.join(", "),
                    example_aliases(aliases, known)
                ),
            ));
        };
        let mut e = e.clone();
        e.component = name.to_string();
        // A later value for the same path replaces earlier ones, unless it is an object
        // merged into them.
        if !(e.merge && e.value.is_object()) {
            resolved.retain(|r| !(r.component == e.component && r.path == e.path));
        }
        resolved.push(e);
    }
    Ok(resolved)
}

fn example_aliases(aliases: &ComponentAliases, known: &BTreeSet<String>) -> String {
    let mut shown: Vec<String> = ["gpu-operator", "nvidia-dra-driver-gpu"]
        .iter()
        .filter(|c| known.contains(**c))
        .filter_map(|c| aliases.of(c).last().map(|a| format!("`{a}`")))
        .collect();
    if shown.is_empty() {
        shown.push("those in components/aliases.yaml".into());
    }
    shown.join(", ")
}

/// Components the (resolved) expressions turn on with `enabled=true`.
pub fn restored(exprs: &[SetExpr]) -> BTreeSet<String> {
    exprs
        .iter()
        .filter(|e| e.enabled() == Some(true))
        .map(|e| e.component.clone())
        .collect()
}

/// Apply resolved expressions to `recipe` and record them in its metadata. A component
/// `enabled=true` turns on must already be in the recipe (composition restores components
/// an overlay removed; a recipe file cannot, as it does not carry their definition).
pub fn apply(recipe: &mut Recipe, exprs: &[SetExpr]) -> Result<()> {
    let disabled: BTreeSet<&str> = exprs
        .iter()
        .filter(|e| e.enabled() == Some(false))
        .map(|e| e.component.as_str())
        .collect();
    let mut records = Vec::with_capacity(exprs.len());
    for e in exprs {
        let mut record = ValueOverride {
            component: e.component.clone(),
            path: e.path_text(),
            value: e.value.clone(),
            dependents: Vec::new(),
        };
        match e.enabled() {
            Some(false) => record.dependents = remove_component(recipe, &e.component),
            Some(true) => {
                if recipe.component(&e.component).is_none() {
                    return Err(set_error(
                        e,
                        format!(
                            "component `{}` is not in this recipe and no applied overlay removed it, so there is nothing to restore",
                            e.component
                        ),
                    ));
                }
            }
            None if disabled.contains(e.component.as_str()) => {
                return Err(set_error(
                    e,
                    format!(
                        "component `{0}` is removed by `{0}:enabled=false`; drop one of the two",
                        e.component
                    ),
                ));
            }
            None => {
                let names = component_names(recipe);
                let Some(c) = recipe.components.iter_mut().find(|c| c.name == e.component) else {
                    return Err(set_error(
                        e,
                        format!(
                            "component `{}` is not part of this recipe; its components are: {names}",
                            e.component
                        ),
                    ));
                };
                let applied = if e.merge {
                    set::merge_path(&mut c.values, &e.path, &e.value)
                } else {
                    set::set_path(&mut c.values, &e.path, e.value.clone())
                };
                applied.map_err(|m| set_error(e, format!("in component `{}`: {m}", c.name)))?;
            }
        }
        records.push(record);
    }
    recipe.metadata.value_count = recipe
        .components
        .iter()
        .map(|c| count_values(&c.values))
        .sum();
    recipe.metadata.overrides.extend(records);
    Ok(())
}

fn component_names(recipe: &Recipe) -> String {
    let mut names: Vec<&str> = recipe.components.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

/// Remove a component (a no-op when absent), the validation parameters that name it, and the
/// dependency edges to it; returns the components that depended on it.
fn remove_component(recipe: &mut Recipe, name: &str) -> Vec<String> {
    recipe.components.retain(|c| c.name != name);
    super::conformance::forget_component(&mut recipe.validation, name);
    recipe.deployment_order.retain(|n| n != name);
    let mut dependents = Vec::new();
    for c in &mut recipe.components {
        let before = c.dependency_refs.len();
        c.dependency_refs.retain(|d| d != name);
        if c.dependency_refs.len() != before {
            dependents.push(c.name.clone());
        }
    }
    dependents.sort();
    dependents
}

/// Parse `--set` texts and apply them to a recipe that was not composed here (a recipe
/// file or a posted recipe): names resolve against its components and the aliases.
pub fn apply_texts(
    recipe: &mut Recipe,
    texts: &[String],
    aliases: &ComponentAliases,
) -> Result<()> {
    apply_exprs(recipe, &parse_all(texts)?, aliases)
}

/// [`apply_texts`] for expressions already parsed (`--set`, `--set-json`, `--set-file`).
pub fn apply_exprs(
    recipe: &mut Recipe,
    exprs: &[SetExpr],
    aliases: &ComponentAliases,
) -> Result<()> {
    if exprs.is_empty() {
        return Ok(());
    }
    let mut known: BTreeSet<String> = recipe.components.iter().map(|c| c.name.clone()).collect();
    known.extend(aliases.aliases.values().cloned());
    let resolved = resolve(exprs, &known, aliases)?;
    apply(recipe, &resolved)
}

/// Parse every `--set` text; the first malformed one is the error.
pub fn parse_all(texts: &[String]) -> Result<Vec<SetExpr>> {
    texts
        .iter()
        .map(|t| SetExpr::parse(t).map_err(RecipeError::from))
        .collect()
}

/// Parse every `--set-json` text; the first malformed one is the error.
pub fn parse_all_json(texts: &[String]) -> Result<Vec<SetExpr>> {
    texts
        .iter()
        .map(|t| SetExpr::parse_json(t).map_err(RecipeError::from))
        .collect()
}
