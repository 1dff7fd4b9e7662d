//! The catalog's leaf matrix (`aiconform recipe list`): every combination of criteria the
//! overlays single out, and which stages of a certification each has data for. Pure: no I/O.
//!
//! A **leaf** is the criteria of an overlay that no other overlay refines, where overlay B
//! refines overlay A when B pins every dimension A pins to the same value and pins at least
//! one more. Leaves are where the catalog stops specialising: `eks-training-kubeflow` is a
//! leaf and `eks` is not, `b200` is a leaf as long as no overlay pins b200 together with
//! another dimension. An overlay that pins nothing (`base`) is never a leaf unless it is the
//! only overlay, and a node requirement does not count as a dimension (it sizes a recipe, it
//! does not name a combination). Each leaf is composed as a query of exactly its pinned
//! values, every other dimension `any`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::catalog::Catalog;
use super::criteria::{ANY, Criteria, Dimension};
use super::model::{ComponentType, Recipe};
use super::resolve::{applicable_overlays, compose};

/// Conformance sections (`validation.<section>`) every recipe should name a prover for, and
/// those an inference recipe needs besides.
pub const CONFORMANCE_ALWAYS: [&str; 3] =
    ["aiServiceMetrics", "gangScheduling", "robustController"];
pub const CONFORMANCE_INFERENCE: [&str; 2] = ["inferenceGateway", "inferenceIngress"];

/// Which stages a leaf has what it needs for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stages {
    /// The leaf composes into a recipe.
    pub recipe: bool,
    /// Every component has a source a deployer can install from.
    pub deploy: bool,
    /// NCCL floors for the leaf's scope come from an overlay that pins a criterion, not
    /// only the catch-all of an overlay that applies to everything.
    pub performance: bool,
    /// Every conformance section the leaf's intent needs names a proving component.
    pub conformance: bool,
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leaf {
    /// The recipe name of the leaf's criteria (`eks-training-kubeflow`).
    pub name: String,
    /// The overlay(s) whose criteria these are.
    pub overlays: Vec<String>,
    /// All five dimensions, `any` where the leaf leaves them open.
    pub criteria: BTreeMap<String, String>,
    pub stages: Stages,
    /// Components in the composed recipe (0 when it does not compose).
    pub components: usize,
    /// Why a stage is missing: the composition error, components without a source, the
    /// floor scopes or conformance sections with no data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// The whole matrix with per-stage counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub leaves: Vec<Leaf>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub leaves: usize,
    pub recipe: usize,
    pub deploy: usize,
    pub performance: usize,
    pub conformance: usize,
}

/// True when `b` pins everything `a` pins, with the same values, and more besides.
pub fn refines(b: &Criteria, a: &Criteria) -> bool {
    let pinned = |c: &Criteria| {
        Dimension::ALL
            .iter()
            .filter(|d| c.get(**d).is_some())
            .count()
    };
    Dimension::ALL
        .iter()
        .all(|d| a.get(*d).is_none() || a.get(*d) == b.get(*d))
        && pinned(b) > pinned(a)
}

/// `c` without its node requirement: the combination it names.
fn dimensions_of(c: &Criteria) -> Criteria {
    let mut out = Criteria::new();
    for d in Dimension::ALL {
        if let Some(v) = c.get(d) {
            out.set(d, v).expect("catalog criteria are valid");
        }
    }
    out
}

/// The leaf criteria of `catalog`, each with the overlays that carry exactly them, in a
/// stable order (by criteria).
pub fn leaf_criteria(catalog: &Catalog) -> BTreeMap<Criteria, Vec<String>> {
    let all: Vec<(Criteria, &str)> = catalog
        .overlays
        .values()
        .map(|o| (dimensions_of(&o.criteria), o.file.name.as_str()))
        .collect();
    let mut leaves: BTreeMap<Criteria, Vec<String>> = BTreeMap::new();
    for (c, name) in &all {
        let refined = all.iter().any(|(other, _)| refines(other, c));
        let alone = all.len() == 1;
        if !refined && (!c.is_empty() || alone) {
            leaves
                .entry(c.clone())
                .or_default()
                .push((*name).to_string());
        }
    }
    leaves
}

/// Components a deployer cannot install: a Helm chart without repository, chart name or
/// version, Kustomize without a source, plain manifests without content.
pub fn undeployable(recipe: &Recipe) -> Vec<String> {
    recipe
        .components
        .iter()
        .filter(|c| {
            let filled = |s: &Option<String>| s.as_deref().is_some_and(|v| !v.trim().is_empty());
            match c.component_type {
                ComponentType::Helm => {
                    !(filled(&c.source) && filled(&c.chart) && !c.version.trim().is_empty())
                }
                ComponentType::Kustomize => !filled(&c.source),
                ComponentType::Manifest => {
                    c.manifests.is_empty()
                        || c.manifests.iter().any(|m| m.content.trim().is_empty())
                }
            }
        })
        .map(|c| c.name.clone())
        .collect()
}

/// The NCCL floor scopes a leaf is judged on: one node always, across nodes for training.
fn floor_scopes(query: &Criteria) -> Vec<&'static str> {
    match query.get(Dimension::Intent) {
        Some("training") => vec!["singleNode", "multiNode"],
        _ => vec!["singleNode"],
    }
}

/// Floor scopes whose figures come only from overlays that pin nothing (the catch-all), or
/// from nowhere: the last applied overlay that sets `validation.nccl.allReduce.floors.<scope>`
/// decides, as in composition.
pub fn floors_missing(catalog: &Catalog, query: &Criteria, applied: &[String]) -> Vec<String> {
    floor_scopes(query)
        .into_iter()
        .filter(|scope| {
            let last = applied.iter().rev().find_map(|name| {
                let o = catalog.overlays.get(name)?;
                let floors = o
                    .file
                    .validation
                    .as_ref()?
                    .pointer(&format!("/nccl/allReduce/floors/{scope}"))?;
                floors.is_object().then_some(o)
            });
            last.is_none_or(|o| dimensions_of(&o.criteria).is_empty())
        })
        .map(|scope| format!("nccl floors.{scope}"))
        .collect()
}

/// Conformance sections the leaf's intent needs and no component of `recipe` proves.
pub fn conformance_missing(recipe: &Recipe, query: &Criteria) -> Vec<String> {
    let inference = query.get(Dimension::Intent) == Some("inference");
    CONFORMANCE_ALWAYS
        .iter()
        .chain(CONFORMANCE_INFERENCE.iter().filter(|_| inference))
        .filter(|section| {
            recipe
                .validation
                .get(**section)
                .and_then(|v| v.get("component"))
                .and_then(Value::as_str)
                .is_none()
        })
        .map(|section| format!("conformance {section}"))
        .collect()
}

/// Compose one leaf and judge its stages.
pub fn evaluate(catalog: &Catalog, query: &Criteria, overlays: Vec<String>) -> Leaf {
    let mut leaf = Leaf {
        name: query.slug(),
        overlays,
        criteria: query.to_map(),
        stages: Stages::default(),
        components: 0,
        missing: Vec::new(),
    };
    let recipe = match compose(catalog, query) {
        Ok(r) => r,
        Err(e) => {
            leaf.missing.push(format!("recipe: {e}"));
            return leaf;
        }
    };
    let applied = applicable_overlays(catalog, query).unwrap_or_default();
    let undeployable = undeployable(&recipe);
    let floors = floors_missing(catalog, query, &applied);
    let conformance = conformance_missing(&recipe, query);
    leaf.components = recipe.components.len();
    leaf.stages = Stages {
        recipe: true,
        deploy: undeployable.is_empty(),
        performance: floors.is_empty(),
        conformance: conformance.is_empty(),
    };
    leaf.missing.extend(
        undeployable
            .into_iter()
            .map(|c| format!("deployable source for {c}")),
    );
    leaf.missing.extend(floors);
    leaf.missing.extend(conformance);
    leaf
}

/// The matrix of every leaf of `catalog`, ordered by criteria.
pub fn matrix(catalog: &Catalog) -> Matrix {
    let mut leaves: Vec<Leaf> = leaf_criteria(catalog)
        .into_iter()
        .map(|(query, overlays)| evaluate(catalog, &query, overlays))
        .collect();
    leaves.sort_by_key(row_key);
    let count = |f: fn(&Stages) -> bool| leaves.iter().filter(|l| f(&l.stages)).count();
    let summary = Summary {
        leaves: leaves.len(),
        recipe: count(|s| s.recipe),
        deploy: count(|s| s.deploy),
        performance: count(|s| s.performance),
        conformance: count(|s| s.conformance),
    };
    Matrix { leaves, summary }
}

/// Rows sort by the five dimensions in specificity order, `any` after every value.
fn row_key(leaf: &Leaf) -> Vec<(bool, String)> {
    Dimension::ALL
        .iter()
        .map(|d| {
            let v = leaf.criteria.get(d.key()).cloned().unwrap_or_default();
            (v == ANY, v)
        })
        .collect()
}

/// The matrix as an aligned text table, one row per leaf, then the per-stage counts and
/// the reasons behind each missing stage.
pub fn render_table(m: &Matrix) -> String {
    let mark = |b: bool| (if b { "yes" } else { "-" }).to_string();
    let header: Vec<String> = [
        "SERVICE",
        "ACCELERATOR",
        "OS",
        "INTENT",
        "PLATFORM",
        "RECIPE",
        "DEPLOY",
        "PERF",
        "CONFORMANCE",
        "OVERLAY",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = m
        .leaves
        .iter()
        .map(|l| {
            let mut row: Vec<String> = Dimension::ALL
                .iter()
                .map(|d| l.criteria.get(d.key()).cloned().unwrap_or_default())
                .collect();
            row.extend([
                mark(l.stages.recipe),
                mark(l.stages.deploy),
                mark(l.stages.performance),
                mark(l.stages.conformance),
                l.overlays.join(","),
            ]);
            row
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(cell);
            if i < last {
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header);
    for row in &rows {
        out.push_str(&line(row));
    }
    let s = m.summary;
    out.push_str(&format!(
        "\n{} leaves: recipe {}, deploy {}, performance floors {}, conformance {}\n",
        s.leaves, s.recipe, s.deploy, s.performance, s.conformance
    ));
    let gaps: BTreeSet<String> = m
        .leaves
        .iter()
        .filter(|l| !l.missing.is_empty())
        .map(|l| format!("  {}: {}", l.name, l.missing.join("; ")))
        .collect();
    if !gaps.is_empty() {
        out.push_str("\nmissing:\n");
        for g in gaps {
            out.push_str(&g);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(Dimension, &str)]) -> Criteria {
        let mut out = Criteria::new();
        for (d, v) in pairs {
            out.set(*d, v).unwrap();
        }
        out
    }

    #[test]
    fn refinement_needs_every_pin_and_one_more() {
        let eks = c(&[(Dimension::Service, "eks")]);
        let eks_training = c(&[(Dimension::Service, "eks"), (Dimension::Intent, "training")]);
        let gke_training = c(&[(Dimension::Service, "gke"), (Dimension::Intent, "training")]);
        assert!(refines(&eks_training, &eks));
        assert!(!refines(&eks, &eks_training));
        assert!(!refines(&eks, &eks), "not strict");
        assert!(!refines(&gke_training, &eks), "different value");
        assert!(
            refines(&eks, &Criteria::new()),
            "anything refines the catch-all"
        );
    }

    #[test]
    fn floor_scopes_follow_intent() {
        assert_eq!(floor_scopes(&Criteria::new()), ["singleNode"]);
        let training = c(&[(Dimension::Intent, "training")]);
        assert_eq!(floor_scopes(&training), ["singleNode", "multiNode"]);
    }
}
