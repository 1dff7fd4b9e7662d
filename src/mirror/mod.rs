//! Image and chart inventory of a recipe or bundle, for mirroring into an air-gapped
//! registry.
//!
//! - [`images`]: image references in objects and Helm values (pure).
//! - [`render`]: `helm template` of each chart (the only I/O besides reading a bundle).
//! - [`format`]: the inventory as YAML/JSON, a Hauler manifest or a Zarf package config.
//!
//! Per component: a Helm chart's images come from its rendered manifests, plus pinned
//! references in its values that the render did not show (operands an operator starts
//! later, e.g. the GPU Operator's driver); a chart that could not be rendered falls back to
//! every reference in its values, with a warning naming what was not rendered. Manifests
//! of the component (recipe `manifests`, bundle files) are scanned as they are.

pub mod format;
pub mod images;
pub mod render;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A chart to mirror.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartRef {
    pub name: String,
    /// Chart repository URL or `oci://` location (the chart is `<location>/<name>`).
    pub repo: String,
    pub version: String,
}

impl ChartRef {
    pub fn is_oci(&self) -> bool {
        self.repo.starts_with("oci://")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentImages {
    pub name: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartRef>,
    /// Whether the chart was rendered (absent for components without a chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<bool>,
    pub images: Vec<String>,
}

/// Everything a recipe or bundle deploys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Recipe name.
    pub name: String,
    /// The recipe file or bundle directory read.
    pub source: String,
    pub components: Vec<ComponentImages>,
    /// Every image, sorted and unique.
    pub images: Vec<String>,
    pub charts: Vec<ChartRef>,
    /// What could not be rendered or read, per component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What is known about one component before its images are collected.
#[derive(Debug, Clone)]
pub struct ComponentInput {
    pub name: String,
    pub namespace: String,
    pub chart: Option<ChartRef>,
    /// Helm values (`null` when none).
    pub values: Value,
    /// Manifest texts with a label for warnings (`file.yaml`).
    pub manifests: Vec<(String, String)>,
    /// The chart rendered by `helm template`, or why it was not.
    pub rendered: Option<Result<String, String>>,
}

/// Images of one component (see the module docs); warnings are appended to `warnings`.
pub fn component_images(c: &ComponentInput, warnings: &mut Vec<String>) -> ComponentImages {
    let mut found = BTreeSet::new();
    let mut from_values = BTreeSet::new();
    images::collect(&c.values, &mut from_values);
    let rendered = match &c.rendered {
        Some(Ok(text)) => match crate::bundle::manifests::parse(text) {
            Ok(objects) => {
                for o in &objects {
                    images::collect(&o.object, &mut found);
                }
                found.extend(from_values.into_iter().filter(|i| images::is_pinned(i)));
                Some(true)
            }
            Err(e) => {
                warnings.push(format!(
                    "{}: the rendered chart cannot be read ({e}); images are from its values only",
                    c.name
                ));
                found.extend(from_values);
                Some(false)
            }
        },
        Some(Err(why)) => {
            let chart = c
                .chart
                .as_ref()
                .map(|ch| format!("chart {} {}", ch.name, ch.version))
                .unwrap_or_else(|| "chart".into());
            warnings.push(format!(
                "{}: {chart} not rendered ({why}); images are from its values and manifests only, \
                 images the chart sets by default are missing",
                c.name
            ));
            found.extend(from_values);
            Some(false)
        }
        None => {
            found.extend(from_values);
            None
        }
    };
    for (label, text) in &c.manifests {
        match crate::bundle::manifests::parse(text) {
            Ok(objects) => {
                for o in &objects {
                    images::collect(&o.object, &mut found);
                }
            }
            Err(e) => warnings.push(format!(
                "{}: manifest {label} not read ({e}); its images are missing",
                c.name
            )),
        }
    }
    ComponentImages {
        name: c.name.clone(),
        namespace: c.namespace.clone(),
        chart: c.chart.clone(),
        rendered,
        images: found.into_iter().collect(),
    }
}

/// The inventory of `components` (in deployment order).
pub fn inventory(name: &str, source: &str, components: &[ComponentInput]) -> Inventory {
    let mut warnings = Vec::new();
    let components: Vec<ComponentImages> = components
        .iter()
        .map(|c| component_images(c, &mut warnings))
        .collect();
    let images: BTreeSet<String> = components
        .iter()
        .flat_map(|c| c.images.iter().cloned())
        .collect();
    let charts: BTreeSet<ChartRef> = components.iter().filter_map(|c| c.chart.clone()).collect();
    Inventory {
        name: name.to_string(),
        source: source.to_string(),
        components,
        images: images.into_iter().collect(),
        charts: charts.into_iter().collect(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chart() -> ChartRef {
        ChartRef {
            name: "op".into(),
            repo: "https://charts.example.com".into(),
            version: "1.0.0".into(),
        }
    }

    #[test]
    fn rendered_chart_and_pinned_values() {
        let c = ComponentInput {
            name: "op".into(),
            namespace: "op".into(),
            chart: Some(chart()),
            values: json!({"driver": {"repository": "r", "image": "d", "version": "1"},
                           "operator": {"repository": "r/op"}}),
            manifests: vec![(
                "extra.yaml".into(),
                "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: busybox:1.36}]\n".into(),
            )],
            rendered: Some(Ok("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: op}\nspec:\n  template:\n    spec:\n      containers: [{name: op, image: r/op:1.0.0}]\n".into())),
        };
        let mut w = Vec::new();
        let got = component_images(&c, &mut w);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(got.images, ["busybox:1.36", "r/d:1", "r/op:1.0.0"]);
        assert_eq!(got.rendered, Some(true));
    }

    #[test]
    fn render_failure_is_a_warning_naming_the_chart() {
        let c = ComponentInput {
            name: "op".into(),
            namespace: "op".into(),
            chart: Some(chart()),
            values: json!({"operator": {"repository": "r/op"}}),
            manifests: vec![],
            rendered: Some(Err("repository unreachable".into())),
        };
        let inv = inventory("r", "recipe.yaml", &[c]);
        assert_eq!(inv.images, ["r/op"]);
        assert_eq!(inv.warnings.len(), 1);
        assert!(
            inv.warnings[0].contains("op: chart op 1.0.0 not rendered (repository unreachable)")
        );
        assert_eq!(inv.charts, [chart()]);
    }
}
