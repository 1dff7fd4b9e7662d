//! Criteria: the five dimensions a recipe is selected by, the node count, and how overlays
//! match them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::expr::{Clause, Expr};

/// One selection dimension. The declaration order is the specificity order: an overlay that
/// pins a later dimension is more specific and is applied later (so it wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Service,
    Accelerator,
    Os,
    Intent,
    Platform,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Service,
        Dimension::Accelerator,
        Dimension::Os,
        Dimension::Intent,
        Dimension::Platform,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Dimension::Service => "service",
            Dimension::Accelerator => "accelerator",
            Dimension::Os => "os",
            Dimension::Intent => "intent",
            Dimension::Platform => "platform",
        }
    }

    /// Accepted values, `any` excluded.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            Dimension::Service => &[
                "eks", "gke", "aks", "oke", "ocp", "kind", "lke", "bcm", "metal3", "rke2",
                "generic", "k0s",
            ],
            Dimension::Accelerator => &[
                "h100",
                "h200",
                "gb200",
                "gb300",
                "b200",
                "a100",
                "l40",
                "l40s",
                "rtx-pro-6000",
                "vr200",
            ],
            Dimension::Os => &["ubuntu", "rhel", "cos", "amazonlinux", "ol", "talos"],
            Dimension::Intent => &["training", "inference"],
            Dimension::Platform => &["dynamo", "kubeflow", "nim", "runai", "slurm"],
        }
    }

    pub fn from_key(key: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.key() == key)
    }

    /// Other spellings accepted on the command line and in criteria files, with the value
    /// each stands for. The API takes canonical values only (what its schema lists).
    pub fn aliases(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Dimension::Service => &[
                ("self-managed", "generic"),
                ("self", "generic"),
                ("vanilla", "generic"),
            ],
            Dimension::Os => &[("al2", "amazonlinux"), ("al2023", "amazonlinux")],
            _ => &[],
        }
    }

    /// The canonical value for `value` (lowercased, trimmed): an alias's target, else itself.
    pub fn canonical(self, value: &str) -> String {
        let v = value.trim().to_ascii_lowercase();
        self.aliases()
            .iter()
            .find(|(alias, _)| *alias == v)
            .map_or(v, |(_, target)| target.to_string())
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

pub const ANY: &str = "any";

/// A value outside a dimension's allowed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {dimension} `{value}`; expected one of: {}", allowed_list(*.dimension))]
pub struct UnknownCriterion {
    pub dimension: Dimension,
    pub value: String,
}

fn allowed_list(d: Dimension) -> String {
    let mut v: Vec<&str> = d.allowed().to_vec();
    v.push(ANY);
    v.join(", ")
}

/// Criteria that cannot be parsed: an unknown dimension value or a bad node count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriteriaError {
    #[error(transparent)]
    Unknown(#[from] UnknownCriterion),
    #[error(
        "invalid nodes `{value}`: {message}; use a count (`8`) or a comparison (`>= 8`, `>= 2, < 16`)"
    )]
    Nodes { value: String, message: String },
}

/// Criteria, as requested by a user or declared by an overlay. `None` means `any`.
///
/// `nodes` is the node count: in a query the cluster's count (`8`), in an overlay a
/// requirement on it, an [`Expr`] over whole numbers (`>= 8`, `>= 2, < 16`, or `8` for
/// exactly eight). Like the other dimensions, an overlay that pins it matches only queries
/// that give a count satisfying it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Criteria {
    values: BTreeMap<Dimension, String>,
    nodes: Option<String>,
}

impl Criteria {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set one dimension; `any` (or empty) clears it.
    pub fn set(&mut self, dimension: Dimension, value: &str) -> Result<(), UnknownCriterion> {
        let value = value.trim().to_ascii_lowercase();
        if value.is_empty() || value == ANY {
            self.values.remove(&dimension);
            return Ok(());
        }
        if !dimension.allowed().contains(&value.as_str()) {
            return Err(UnknownCriterion { dimension, value });
        }
        self.values.insert(dimension, value);
        Ok(())
    }

    /// Set one dimension accepting its aliases (`vanilla` → generic, `al2` → amazonlinux).
    pub fn set_alias(&mut self, dimension: Dimension, value: &str) -> Result<(), UnknownCriterion> {
        self.set(dimension, &dimension.canonical(value))
    }

    pub fn with(mut self, dimension: Dimension, value: &str) -> Result<Self, UnknownCriterion> {
        self.set(dimension, value)?;
        Ok(self)
    }

    pub fn get(&self, dimension: Dimension) -> Option<&str> {
        self.values.get(&dimension).map(String::as_str)
    }

    /// A query's node count; 0 means any.
    pub fn set_node_count(&mut self, count: u32) {
        self.nodes = (count > 0).then(|| count.to_string());
    }

    /// An overlay's node requirement: a count or a comparison over whole numbers.
    pub fn set_node_requirement(&mut self, requirement: &str) -> Result<(), CriteriaError> {
        let bad = |message: String| CriteriaError::Nodes {
            value: requirement.to_string(),
            message,
        };
        let text = requirement.trim();
        if text.is_empty() || text == ANY {
            self.nodes = None;
            return Ok(());
        }
        let expr = Expr::parse(text).map_err(|e| bad(e.message))?;
        for clause in &expr.clauses {
            let operand = match clause {
                Clause::Exact(v) | Clause::Compare(_, v) => v,
            };
            if operand.parse::<u32>().is_err() {
                return Err(bad(format!("`{operand}` is not a whole number")));
            }
        }
        self.nodes = Some(expr.to_string());
        Ok(())
    }

    /// The node count (query) or requirement (overlay), if pinned.
    pub fn nodes(&self) -> Option<&str> {
        self.nodes.as_deref()
    }

    /// True when every dimension this (overlay) criteria pins equals the query's value and
    /// the query's node count satisfies the overlay's requirement. An overlay pinning `eks`
    /// (or `nodes: ">= 8"`) does not match a query that leaves it as `any`: a generic query
    /// gets only generic layers.
    pub fn matches(&self, query: &Criteria) -> bool {
        let nodes_ok = match (&self.nodes, &query.nodes) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(req), Some(count)) => Expr::parse(req).is_ok_and(|e| e.check(count).is_ok()),
        };
        nodes_ok
            && self
                .values
                .iter()
                .all(|(d, v)| query.get(*d) == Some(v.as_str()))
    }

    /// Specificity key: more pinned dimensions (a node requirement counts as one) first,
    /// then the most specific pinned dimension (the node count is the most specific of
    /// all), then the whole pinned set. Sorting ascending gives application order.
    pub fn specificity(&self) -> (usize, bool, Option<Dimension>, Vec<Dimension>) {
        let dims: Vec<Dimension> = self.values.keys().copied().collect();
        let nodes = self.nodes.is_some();
        (
            dims.len() + usize::from(nodes),
            nodes,
            dims.last().copied(),
            dims,
        )
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.nodes.is_none()
    }

    /// A name like `eks-h100-ubuntu-training-kubeflow` (`-8-nodes` appended when a node
    /// count is given); `generic` when nothing is pinned.
    pub fn slug(&self) -> String {
        let mut parts: Vec<String> = self.values.values().cloned().collect();
        if let Some(n) = &self.nodes {
            parts.push(format!("{n}-nodes"));
        }
        if parts.is_empty() {
            return "generic".into();
        }
        parts.join("-")
    }

    /// All five dimensions, `any` where unpinned, plus `nodes` when given, as written into
    /// recipes.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = Dimension::ALL
            .iter()
            .map(|d| (d.key().to_string(), self.get(*d).unwrap_or(ANY).to_string()))
            .collect();
        if let Some(n) = &self.nodes {
            map.insert(NODES_KEY.into(), n.clone());
        }
        map
    }
}

/// The criteria key of the node count.
pub const NODES_KEY: &str = "nodes";

impl fmt::Display for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Dimension::ALL
            .iter()
            .map(|d| format!("{}={}", d.key(), self.get(*d).unwrap_or(ANY)))
            .collect();
        f.write_str(&parts.join(" "))?;
        match &self.nodes {
            Some(n) => write!(f, " nodes={n}"),
            None => Ok(()),
        }
    }
}

/// The wire form of criteria in overlays, criteria files and recipes: plain strings so that
/// validation can name the file and entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriteriaSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Node count (criteria files) or requirement (overlays): `8`, `">= 8"`, `">= 2, < 16"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodesSpec>,
}

/// `nodes` as written in YAML: a number or a comparison string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NodesSpec {
    Count(u32),
    Requirement(String),
}

impl NodesSpec {
    fn text(&self) -> String {
        match self {
            NodesSpec::Count(n) => n.to_string(),
            NodesSpec::Requirement(s) => s.clone(),
        }
    }
}

impl CriteriaSpec {
    pub fn get(&self, d: Dimension) -> Option<&str> {
        match d {
            Dimension::Service => self.service.as_deref(),
            Dimension::Accelerator => self.accelerator.as_deref(),
            Dimension::Os => self.os.as_deref(),
            Dimension::Intent => self.intent.as_deref(),
            Dimension::Platform => self.platform.as_deref(),
        }
    }

    /// Parse the wire form; dimension aliases are accepted and `nodes` may be a count or a
    /// requirement (see [`Criteria`]).
    pub fn to_criteria(&self) -> Result<Criteria, CriteriaError> {
        let mut c = Criteria::new();
        for d in Dimension::ALL {
            if let Some(v) = self.get(d) {
                c.set_alias(d, v)?;
            }
        }
        if let Some(n) = &self.nodes {
            c.set_node_requirement(&n.text())?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(Dimension, &str)]) -> Criteria {
        let mut c = Criteria::new();
        for (d, v) in pairs {
            c.set(*d, v).unwrap();
        }
        c
    }

    #[test]
    fn any_and_empty_clear_a_dimension() {
        let c = q(&[(Dimension::Service, "eks")])
            .with(Dimension::Service, "any")
            .unwrap();
        assert!(c.is_empty());
        assert_eq!(c.slug(), "generic");
    }

    #[test]
    fn values_are_case_insensitive() {
        let c = q(&[(Dimension::Accelerator, "H100")]);
        assert_eq!(c.get(Dimension::Accelerator), Some("h100"));
    }

    #[test]
    fn unknown_value_lists_allowed() {
        let err = Criteria::new().with(Dimension::Os, "windows").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown os `windows`"), "{msg}");
        assert!(
            msg.contains("ubuntu, rhel, cos, amazonlinux, ol, talos, any"),
            "{msg}"
        );
    }

    #[test]
    fn matching_requires_every_pinned_dimension() {
        let overlay = q(&[(Dimension::Service, "eks"), (Dimension::Intent, "training")]);
        assert!(overlay.matches(&q(&[
            (Dimension::Service, "eks"),
            (Dimension::Intent, "training"),
            (Dimension::Accelerator, "h100"),
        ])));
        assert!(!overlay.matches(&q(&[(Dimension::Service, "eks")])));
        assert!(!overlay.matches(&q(&[
            (Dimension::Service, "gke"),
            (Dimension::Intent, "training")
        ])));
        assert!(Criteria::new().matches(&q(&[(Dimension::Service, "gke")])));
    }

    #[test]
    fn specificity_orders_by_count_then_dimension() {
        let base = Criteria::new();
        let svc = q(&[(Dimension::Service, "eks")]);
        let acc = q(&[(Dimension::Accelerator, "h100")]);
        let platform = q(&[(Dimension::Platform, "kubeflow")]);
        let pair = q(&[
            (Dimension::Service, "eks"),
            (Dimension::Accelerator, "h100"),
        ]);
        let mut v = [&pair, &platform, &acc, &base, &svc];
        v.sort_by_key(|c| c.specificity());
        assert_eq!(v, [&base, &svc, &acc, &platform, &pair]);
    }

    #[test]
    fn slug_follows_dimension_order() {
        let c = q(&[
            (Dimension::Platform, "kubeflow"),
            (Dimension::Service, "eks"),
            (Dimension::Os, "ubuntu"),
        ]);
        assert_eq!(c.slug(), "eks-ubuntu-kubeflow");
        assert_eq!(
            c.to_string(),
            "service=eks accelerator=any os=ubuntu intent=any platform=kubeflow"
        );
    }

    #[test]
    fn node_requirements_match_counts() {
        let mut large = Criteria::new();
        large.set_node_requirement(">=8").unwrap();
        assert_eq!(large.nodes(), Some(">= 8"), "normalized");
        let mut range = Criteria::new();
        range.set_node_requirement(">= 2, < 16").unwrap();
        let mut exact = Criteria::new();
        exact.set_node_requirement("8").unwrap();
        let count = |n: u32| {
            let mut c = Criteria::new();
            c.set_node_count(n);
            c
        };
        assert!(large.matches(&count(8)) && large.matches(&count(64)));
        assert!(!large.matches(&count(7)));
        assert!(
            !large.matches(&Criteria::new()),
            "no count: node overlays do not apply"
        );
        assert!(range.matches(&count(2)) && !range.matches(&count(16)));
        assert!(exact.matches(&count(8)) && !exact.matches(&count(80)));
        assert!(Criteria::new().matches(&count(3)));
        for bad in [">= 1.5", "lots", ">= -1", ">="] {
            let e = Criteria::new().set_node_requirement(bad).unwrap_err();
            assert!(e.to_string().contains("invalid nodes"), "{bad}: {e}");
        }
        let mut pinned = count(8);
        pinned.set(Dimension::Service, "eks").unwrap();
        assert_eq!(
            pinned.to_string(),
            "service=eks accelerator=any os=any intent=any platform=any nodes=8"
        );
        assert_eq!(pinned.to_map()["nodes"], "8");
        assert_eq!(pinned.slug(), "eks-8-nodes");
        // A node overlay is applied after single-dimension overlays with the same count.
        let svc = q(&[(Dimension::Service, "eks")]);
        assert!(svc.specificity() < large.specificity());
    }
}
