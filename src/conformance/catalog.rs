//! The CNCF Kubernetes AI conformance checklists, one per Kubernetes version, built into the
//! binary from `conformance/AIConformance-1.3x.yaml`. Those files are the program's published
//! templates (`cncf/k8s-ai-conformance:docs/`), byte for byte: the runner's requirement
//! mapping and the submission commands read ids, categories, descriptions and levels from
//! them and nowhere else.

use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use include_dir::{Dir, include_dir};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::version::{SUPPORTED, Version};

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/conformance");

/// How binding a requirement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "SHOULD")]
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requirement of a checklist, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub id: String,
    /// The `spec.<category>` key it sits under.
    pub category: String,
    pub description: String,
    pub level: Level,
    /// The published text makes it depend on the platform ("If the platform provides ...");
    /// only such requirements may be declared not applicable.
    pub conditional: bool,
}

impl Requirement {
    /// `MUST`, `MUST (conditional)`, `SHOULD`.
    pub fn level_label(&self) -> String {
        if self.conditional && self.level == Level::Must {
            format!("{} (conditional)", self.level)
        } else {
            self.level.to_string()
        }
    }

    /// Whether a user may declare it not applicable: conditional MUSTs and every SHOULD.
    pub fn may_be_not_applicable(&self) -> bool {
        self.conditional || self.level == Level::Should
    }
}

/// A `spec.<name>` section of a checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub requirements: Vec<Requirement>,
}

/// The checklist of one Kubernetes version, in the template's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checklist {
    pub version: Version,
    /// `metadata` keys of the template with their placeholder values, in order.
    pub metadata: Vec<(String, String)>,
    pub categories: Vec<Category>,
}

impl Checklist {
    pub fn requirements(&self) -> impl Iterator<Item = &Requirement> {
        self.categories.iter().flat_map(|c| c.requirements.iter())
    }

    pub fn get(&self, id: &str) -> Option<&Requirement> {
        self.requirements().find(|r| r.id == id)
    }

    /// From 1.37 the program accepts test artifacts as evidence (`file://…/junit.xml#Test`),
    /// checked by its CI ("hybrid verification").
    pub fn hybrid_verification(&self) -> bool {
        self.version >= Version::new(1, 37)
    }

    /// Whether the template has a metadata field (of the templates only 1.35 has
    /// `k8sConformanceUrl`, which the CI requires for every version).
    pub fn template_has(&self, field: &str) -> bool {
        self.metadata.iter().any(|(k, _)| k == field)
    }
}

/// The built-in checklist of a supported version.
pub fn checklist(version: Version) -> Option<&'static Checklist> {
    static ALL: OnceLock<Vec<Checklist>> = OnceLock::new();
    ALL.get_or_init(|| {
        SUPPORTED
            .iter()
            .map(|v| {
                let text = template_text(*v).unwrap_or_default();
                parse_template(text, *v).unwrap_or_else(|e| {
                    panic!("built-in conformance/AIConformance-{v}.yaml is invalid: {e}")
                })
            })
            .collect()
    })
    .iter()
    .find(|c| c.version == version)
}

/// The program's template for `version`, verbatim.
pub fn template_text(version: Version) -> Option<&'static str> {
    TEMPLATES
        .get_file(format!("AIConformance-{version}.yaml"))
        .and_then(|f| f.contents_utf8())
}

/// Every requirement id of any built-in checklist, sorted.
pub fn known_ids() -> BTreeSet<&'static str> {
    SUPPORTED
        .iter()
        .filter_map(|v| checklist(*v))
        .flat_map(|c| c.requirements().map(|r| r.id.as_str()))
        .collect()
}

/// The versions whose checklist lists `id`.
pub fn versions_with(id: &str) -> Vec<Version> {
    SUPPORTED
        .iter()
        .copied()
        .filter(|v| checklist(*v).is_some_and(|c| c.get(id).is_some()))
        .collect()
}

/// A mapping that keeps the document's key order.
#[derive(Debug)]
pub(crate) struct Ordered<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(OrderedVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
struct RawTemplate {
    metadata: Ordered<String>,
    spec: Ordered<Vec<RawRequirement>>,
}

#[derive(Debug, Deserialize)]
struct RawRequirement {
    id: String,
    description: String,
    level: Level,
}

/// Parse a template (the program's format). A description starting with "If " makes the
/// requirement conditional.
pub fn parse_template(text: &str, version: Version) -> Result<Checklist, crate::yaml::YamlError> {
    let raw: RawTemplate =
        crate::yaml::from_str(text, &format!("conformance/AIConformance-{version}.yaml"))?;
    let categories = raw
        .spec
        .0
        .into_iter()
        .map(|(name, reqs)| Category {
            requirements: reqs
                .into_iter()
                .map(|r| Requirement {
                    conditional: r.description.trim_start().starts_with("If "),
                    id: r.id,
                    category: name.clone(),
                    description: r.description,
                    level: r.level,
                })
                .collect(),
            name,
        })
        .collect();
    Ok(Checklist {
        version,
        metadata: raw.metadata.0,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: Version, level: Level) -> Vec<String> {
        checklist(v)
            .unwrap()
            .requirements()
            .filter(|r| r.level == level)
            .map(|r| r.id.clone())
            .collect()
    }

    /// The matrix the program publishes (reference: cncf-ai-conformance.md §2).
    #[test]
    fn levels_per_version_match_the_published_matrix() {
        let musts = [
            "ai_inference",
            "gang_scheduling",
            "cluster_autoscaling",
            "pod_autoscaling",
            "accelerator_metrics",
            "ai_service_metrics",
            "secure_accelerator_access",
            "robust_controller",
        ];
        let v = |m| Version::new(1, m);
        assert_eq!(ids(v(33), Level::Must), musts);
        assert_eq!(ids(v(33), Level::Should), ["dra_support"]);
        let mut with_dra = vec!["dra_support"];
        with_dra.extend(musts);
        assert_eq!(ids(v(34), Level::Must), with_dra);
        assert!(ids(v(34), Level::Should).is_empty());
        assert_eq!(ids(v(35), Level::Must), with_dra);
        assert_eq!(
            ids(v(35), Level::Should),
            [
                "driver_runtime_management",
                "gpu_sharing",
                "virtualized_accelerator"
            ]
        );
        assert_eq!(ids(v(36), Level::Must), musts);
        assert_eq!(
            ids(v(36), Level::Should),
            [
                "driver_runtime_management",
                "gpu_sharing",
                "virtualized_accelerator",
                "advanced_inference_ingress",
                "high_performance_networking",
                "disaggregated_inference"
            ]
        );
        assert_eq!(ids(v(37), Level::Must), musts);
        assert_eq!(
            ids(v(37), Level::Should),
            [
                "driver_runtime_management",
                "gpu_sharing",
                "virtualized_accelerator",
                "advanced_inference_ingress",
                "high_performance_networking",
                "disaggregated_inference",
                "workload_sandboxing"
            ]
        );
        assert_eq!(versions_with("dra_support"), [v(33), v(34), v(35)]);
        assert_eq!(versions_with("workload_sandboxing"), [v(37)]);
        assert_eq!(known_ids().len(), 16);
    }

    #[test]
    fn only_the_autoscalers_are_conditional_musts() {
        for v in SUPPORTED {
            let c = checklist(v).unwrap();
            let cond: Vec<&str> = c
                .requirements()
                .filter(|r| r.conditional && r.level == Level::Must)
                .map(|r| r.id.as_str())
                .collect();
            assert_eq!(cond, ["cluster_autoscaling", "pod_autoscaling"], "{v}");
            let r = c.get("gang_scheduling").unwrap();
            assert_eq!(r.category, "schedulingOrchestration");
            assert!(!r.may_be_not_applicable());
            assert_eq!(
                c.get("pod_autoscaling").unwrap().level_label(),
                "MUST (conditional)"
            );
        }
    }

    #[test]
    fn categories_and_metadata_keep_template_order() {
        let c = checklist(Version::new(1, 35)).unwrap();
        let cats: Vec<&str> = c.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            cats,
            [
                "accelerators",
                "networking",
                "schedulingOrchestration",
                "observability",
                "security",
                "operator"
            ]
        );
        assert_eq!(c.metadata[0], ("kubernetesVersion".into(), "v1.35".into()));
        assert!(c.metadata.iter().any(|(k, _)| k == "k8sConformanceUrl"));
        assert!(
            !checklist(Version::new(1, 36))
                .unwrap()
                .metadata
                .iter()
                .any(|(k, _)| k == "k8sConformanceUrl"),
            "the 1.36 template dropped the placeholder"
        );
    }
}
