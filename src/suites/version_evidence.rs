//! Version evidence of a deployed component: its chart label, else its images' tags.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::recipe::Component;
use crate::snapshot::cluster::{image_name, image_tag};

/// What the cluster shows about a component's version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionEvidence {
    Matches(String),
    Mismatch(String),
    NotObservable,
}

fn strip_v(v: &str) -> &str {
    v.strip_prefix('v').unwrap_or(v)
}

/// `actual` is the recipe version, allowing a `v` prefix difference and image-tag suffixes
/// such as `-ubi9` / `-ubuntu22.04`.
pub fn version_matches(expected: &str, actual: &str) -> bool {
    let (e, a) = (strip_v(expected.trim()), strip_v(actual.trim()));
    !e.is_empty()
        && (a == e
            || a.strip_prefix(e).is_some_and(|rest| {
                rest.starts_with('-') && !rest[1..].starts_with(|c: char| c.is_ascii_digit())
            }))
}

/// Version evidence for `component` from an object's labels and container images:
/// the `helm.sh/chart` label of its chart (`<chart>-<version>`), else an image whose
/// repository is named like the chart or component.
pub fn version_evidence(
    component: &Component,
    object: &str,
    meta: &ObjectMeta,
    images: &[String],
) -> VersionEvidence {
    let chart = component.chart.as_deref().unwrap_or(&component.name);
    let expected = &component.version;
    if let Some(label) = meta.labels.as_ref().and_then(|l| l.get("helm.sh/chart"))
        && let Some(v) = label.strip_prefix(chart).and_then(|r| r.strip_prefix('-'))
        && strip_v(v).starts_with(|c: char| c.is_ascii_digit())
    {
        return if version_matches(expected, v) {
            VersionEvidence::Matches(format!("{object}: chart {label}"))
        } else {
            VersionEvidence::Mismatch(format!(
                "{object} is from chart {label} (label helm.sh/chart), recipe pins {chart} {expected}"
            ))
        };
    }
    for image in images {
        let name = image_name(image);
        if name != chart && name != component.name {
            continue;
        }
        if let Some(tag) = image_tag(image) {
            return if version_matches(expected, tag) {
                VersionEvidence::Matches(format!("{object}: image {image}"))
            } else {
                VersionEvidence::Mismatch(format!(
                    "{object} runs image {image} (tag {tag}), recipe pins {chart} {expected}"
                ))
            };
        }
    }
    VersionEvidence::NotObservable
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("valid object")
    }

    fn component(version: &str) -> Component {
        from(
            json!({"name": "gpu-operator", "type": "Helm", "chart": "gpu-operator",
            "version": version, "namespace": "gpu-operator"}),
        )
    }

    #[test]
    fn versions_from_chart_label_then_image() {
        let meta: ObjectMeta = from(json!({"labels": {"helm.sh/chart": "gpu-operator-v25.10.1"}}));
        assert!(matches!(
            version_evidence(
                &component("v25.10.1"),
                "Deployment gpu-operator/gpu-operator",
                &meta,
                &[]
            ),
            VersionEvidence::Matches(_)
        ));
        match version_evidence(
            &component("v25.3.0"),
            "Deployment gpu-operator/gpu-operator",
            &meta,
            &[],
        ) {
            VersionEvidence::Mismatch(m) => assert!(
                m.contains("gpu-operator-v25.10.1") && m.contains("v25.3.0"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // A subchart whose name extends the chart's is not evidence either way.
        let sub: ObjectMeta =
            from(json!({"labels": {"helm.sh/chart": "gpu-operator-extras-1.0.0"}}));
        assert_eq!(
            version_evidence(&component("v25.10.1"), "x", &sub, &[]),
            VersionEvidence::NotObservable
        );
        let none = ObjectMeta::default();
        let images = vec![
            "busybox:1.36".to_string(),
            "nvcr.io/nvidia/gpu-operator:v25.10.1".to_string(),
        ];
        assert!(matches!(
            version_evidence(&component("25.10.1"), "x", &none, &images),
            VersionEvidence::Matches(_)
        ));
        let images = vec!["nvcr.io/nvidia/gpu-operator:v24.9.2".to_string()];
        assert!(
            matches!(version_evidence(&component("v25.10.1"), "x", &none, &images), VersionEvidence::Mismatch(m) if m.contains("v24.9.2"))
        );
        let images = vec!["nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3".to_string()];
        assert_eq!(
            version_evidence(&component("v25.10.1"), "x", &none, &images),
            VersionEvidence::NotObservable
        );
    }

    #[test]
    fn version_matching_rules() {
        assert!(version_matches("v1.17.2", "1.17.2"));
        assert!(version_matches("25.12.0", "v25.12.0-ubi9"));
        assert!(!version_matches("25.12.0", "25.12.01"));
        assert!(!version_matches("1.1", "1.10"));
        assert!(!version_matches("1.1", "1.1-2"));
        assert!(!version_matches("", ""));
    }
}
