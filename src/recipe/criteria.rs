//! Criteria: the five dimensions a recipe is selected by, and how overlays match them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

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
            Dimension::Service => &["eks", "gke", "aks", "oke", "kind"],
            Dimension::Accelerator => &["h100", "gb200", "b200", "a100", "l40", "rtx-pro-6000"],
            Dimension::Os => &["ubuntu", "rhel", "cos", "amazonlinux"],
            Dimension::Intent => &["training", "inference"],
            Dimension::Platform => &["kubeflow", "dynamo"],
        }
    }

    pub fn from_key(key: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.key() == key)
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

/// Criteria, as requested by a user or declared by an overlay. `None` means `any`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Criteria {
    values: BTreeMap<Dimension, String>,
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

    pub fn with(mut self, dimension: Dimension, value: &str) -> Result<Self, UnknownCriterion> {
        self.set(dimension, value)?;
        Ok(self)
    }

    pub fn get(&self, dimension: Dimension) -> Option<&str> {
        self.values.get(&dimension).map(String::as_str)
    }

    /// True when every dimension this (overlay) criteria pins equals the query's value.
    /// An overlay pinning `eks` does not match a query that leaves service as `any`: a
    /// generic query gets only generic layers.
    pub fn matches(&self, query: &Criteria) -> bool {
        self.values
            .iter()
            .all(|(d, v)| query.get(*d) == Some(v.as_str()))
    }

    /// Specificity key: more pinned dimensions first, then the most specific pinned
    /// dimension, then the whole pinned set. Sorting ascending gives application order.
    pub fn specificity(&self) -> (usize, Option<Dimension>, Vec<Dimension>) {
        let dims: Vec<Dimension> = self.values.keys().copied().collect();
        (dims.len(), dims.last().copied(), dims)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A name like `eks-h100-ubuntu-training-kubeflow`; `generic` when nothing is pinned.
    pub fn slug(&self) -> String {
        if self.values.is_empty() {
            return "generic".into();
        }
        self.values.values().cloned().collect::<Vec<_>>().join("-")
    }

    /// All five dimensions, `any` where unpinned, as written into recipes.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        Dimension::ALL
            .iter()
            .map(|d| (d.key().to_string(), self.get(*d).unwrap_or(ANY).to_string()))
            .collect()
    }
}

impl fmt::Display for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Dimension::ALL
            .iter()
            .map(|d| format!("{}={}", d.key(), self.get(*d).unwrap_or(ANY)))
            .collect();
        f.write_str(&parts.join(" "))
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

    pub fn to_criteria(&self) -> Result<Criteria, UnknownCriterion> {
        let mut c = Criteria::new();
        for d in Dimension::ALL {
            if let Some(v) = self.get(d) {
                c.set(d, v)?;
            }
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
        assert!(msg.contains("ubuntu, rhel, cos, amazonlinux, any"), "{msg}");
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
}
