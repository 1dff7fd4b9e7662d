//! Node placement: where each chart takes node selectors and tolerations in its values.
//!
//! Components are either *system* workloads (controllers, operators: pinned to system nodes
//! with `--system-node-selector`) or *accelerated* workloads (per-GPU-node daemons: pinned
//! with `--accelerated-node-selector` and allowed onto tainted GPU nodes with
//! `--accelerated-node-toleration`). Known charts mix both; [`KNOWN_CHARTS`] lists their
//! values paths. Any other chart gets the generic fallback [`GENERIC`]: the system selector
//! at top-level `nodeSelector` and the accelerated tolerations at top-level `tolerations`
//! (tolerations only permit scheduling, so they are harmless on a system workload).
//!
//! Injection merges into what the recipe already set: selector maps gain the keys (the
//! option wins on a clash), toleration lists gain the tolerations they do not already hold.

use serde_json::{Map, Value};

use super::BundleOptions;
use super::error::BundleError;

/// Values paths (dot-separated) of one chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartPlacement {
    pub chart: &'static str,
    pub system_node_selector: &'static [&'static str],
    pub accelerated_node_selector: &'static [&'static str],
    pub accelerated_tolerations: &'static [&'static str],
}

/// Charts whose values layout aiconform knows.
pub const KNOWN_CHARTS: &[ChartPlacement] = &[
    ChartPlacement {
        chart: "aws-ebs-csi-driver",
        system_node_selector: &["controller.nodeSelector"],
        accelerated_node_selector: &[],
        accelerated_tolerations: &["node.tolerations"],
    },
    ChartPlacement {
        chart: "cert-manager",
        system_node_selector: &[
            "nodeSelector",
            "webhook.nodeSelector",
            "cainjector.nodeSelector",
            "startupapicheck.nodeSelector",
        ],
        accelerated_node_selector: &[],
        accelerated_tolerations: &[],
    },
    ChartPlacement {
        chart: "gpu-operator",
        system_node_selector: &[
            "operator.nodeSelector",
            "node-feature-discovery.master.nodeSelector",
            "node-feature-discovery.gc.nodeSelector",
        ],
        accelerated_node_selector: &["daemonsets.nodeSelector"],
        accelerated_tolerations: &[
            "daemonsets.tolerations",
            "node-feature-discovery.worker.tolerations",
        ],
    },
    ChartPlacement {
        chart: "kube-prometheus-stack",
        system_node_selector: &[
            "prometheusOperator.nodeSelector",
            "prometheus.prometheusSpec.nodeSelector",
            "alertmanager.alertmanagerSpec.nodeSelector",
            "grafana.nodeSelector",
            "kube-state-metrics.nodeSelector",
        ],
        accelerated_node_selector: &[],
        accelerated_tolerations: &["prometheus-node-exporter.tolerations"],
    },
    ChartPlacement {
        chart: "node-feature-discovery",
        system_node_selector: &["master.nodeSelector", "gc.nodeSelector"],
        accelerated_node_selector: &[],
        accelerated_tolerations: &["worker.tolerations"],
    },
    ChartPlacement {
        chart: "nvidia-dra-driver-gpu",
        system_node_selector: &["controller.nodeSelector"],
        accelerated_node_selector: &["kubeletPlugin.nodeSelector"],
        accelerated_tolerations: &["kubeletPlugin.tolerations"],
    },
];

/// Any chart not in [`KNOWN_CHARTS`].
pub const GENERIC: ChartPlacement = ChartPlacement {
    chart: "*",
    system_node_selector: &["nodeSelector"],
    accelerated_node_selector: &[],
    accelerated_tolerations: &["tolerations"],
};

pub fn placement_for(chart: &str) -> &'static ChartPlacement {
    KNOWN_CHARTS
        .iter()
        .find(|p| p.chart == chart)
        .unwrap_or(&GENERIC)
}

/// One injection made, for the component README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    pub path: String,
    pub what: &'static str,
}

/// Inject `opts` into `values` at the paths of `chart`. Returns what was injected where; an
/// empty option injects nothing, so default options leave values untouched.
pub fn inject(
    component: &str,
    chart: &str,
    values: &mut Value,
    opts: &BundleOptions,
) -> Result<Vec<Injection>, BundleError> {
    let p = placement_for(chart);
    let mut done = Vec::new();
    let selector_value = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>()
    };
    if !opts.system_node_selector.is_empty() {
        let sel = selector_value(&opts.system_node_selector);
        for path in p.system_node_selector {
            merge_map_at(component, values, path, &sel)?;
            done.push(Injection {
                path: path.to_string(),
                what: "system node selector",
            });
        }
    }
    if !opts.accelerated_node_selector.is_empty() {
        let sel = selector_value(&opts.accelerated_node_selector);
        for path in p.accelerated_node_selector {
            merge_map_at(component, values, path, &sel)?;
            done.push(Injection {
                path: path.to_string(),
                what: "accelerated node selector",
            });
        }
    }
    if !opts.accelerated_tolerations.is_empty() {
        let tols: Vec<Value> = opts
            .accelerated_tolerations
            .iter()
            .map(|t| {
                serde_json::to_value(t).map_err(|e| BundleError::Encode {
                    what: format!("toleration {t}"),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        for path in p.accelerated_tolerations {
            append_list_at(component, values, path, &tols)?;
            done.push(Injection {
                path: path.to_string(),
                what: "accelerated node tolerations",
            });
        }
    }
    Ok(done)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The slot at `path`, creating mappings along the way (a `null` counts as absent).
fn slot<'a>(
    component: &str,
    values: &'a mut Value,
    path: &str,
) -> Result<&'a mut Value, BundleError> {
    let mut cur = values;
    let mut walked = String::new();
    for key in path.split('.') {
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let found = kind_of(cur);
        let Value::Object(map) = cur else {
            return Err(BundleError::ValuesConflict {
                component: component.to_string(),
                path: if walked.is_empty() {
                    "(top level)".into()
                } else {
                    walked
                },
                found,
                expected: "a mapping",
            });
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(key);
        cur = map.entry(key.to_string()).or_insert(Value::Null);
    }
    Ok(cur)
}

fn merge_map_at(
    component: &str,
    values: &mut Value,
    path: &str,
    add: &Map<String, Value>,
) -> Result<(), BundleError> {
    let target = slot(component, values, path)?;
    if target.is_null() {
        *target = Value::Object(Map::new());
    }
    let found = kind_of(target);
    let Value::Object(map) = target else {
        return Err(BundleError::ValuesConflict {
            component: component.to_string(),
            path: path.to_string(),
            found,
            expected: "a mapping (node selector)",
        });
    };
    for (k, v) in add {
        map.insert(k.clone(), v.clone());
    }
    Ok(())
}

fn append_list_at(
    component: &str,
    values: &mut Value,
    path: &str,
    add: &[Value],
) -> Result<(), BundleError> {
    let target = slot(component, values, path)?;
    if target.is_null() {
        *target = Value::Array(Vec::new());
    }
    let found = kind_of(target);
    let Value::Array(list) = target else {
        return Err(BundleError::ValuesConflict {
            component: component.to_string(),
            path: path.to_string(),
            found,
            expected: "a list (tolerations)",
        });
    };
    for v in add {
        if !list.contains(v) {
            list.push(v.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::options::Toleration;
    use serde_json::json;

    fn opts() -> BundleOptions {
        BundleOptions {
            system_node_selector: [("nodeGroup".to_string(), "system".to_string())].into(),
            accelerated_node_selector: [("nodeGroup".to_string(), "gpu".to_string())].into(),
            accelerated_tolerations: vec![
                "nvidia.com/gpu=present:NoSchedule"
                    .parse::<Toleration>()
                    .unwrap(),
            ],
            ..BundleOptions::default()
        }
    }

    #[test]
    fn gpu_operator_paths() {
        let mut v = json!({
            "daemonsets": {"tolerations": [{"key": "existing", "operator": "Exists"}]},
            "operator": {"nodeSelector": {"keep": "me", "nodeGroup": "old"}},
            "driver": {"version": "580"}
        });
        let done = inject("gpu-operator", "gpu-operator", &mut v, &opts()).unwrap();
        assert_eq!(
            v["daemonsets"]["tolerations"],
            json!([
                {"key": "existing", "operator": "Exists"},
                {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
            ])
        );
        assert_eq!(
            v["operator"]["nodeSelector"],
            json!({"keep": "me", "nodeGroup": "system"})
        );
        assert_eq!(v["daemonsets"]["nodeSelector"], json!({"nodeGroup": "gpu"}));
        assert_eq!(
            v["node-feature-discovery"]["worker"]["tolerations"][0]["key"],
            "nvidia.com/gpu"
        );
        assert_eq!(
            v["node-feature-discovery"]["master"]["nodeSelector"],
            json!({"nodeGroup": "system"})
        );
        assert_eq!(v["driver"]["version"], "580");
        assert!(
            v.get("nodeSelector").is_none(),
            "no generic fallback for known charts"
        );
        assert_eq!(done.len(), 6);
    }

    #[test]
    fn generic_fallback_and_idempotence() {
        let mut v = json!({});
        inject("x", "some-chart", &mut v, &opts()).unwrap();
        inject("x", "some-chart", &mut v, &opts()).unwrap();
        assert_eq!(v["nodeSelector"], json!({"nodeGroup": "system"}));
        assert_eq!(v["tolerations"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn default_options_change_nothing() {
        let orig = json!({"a": {"b": 1}});
        let mut v = orig.clone();
        let done = inject("x", "gpu-operator", &mut v, &BundleOptions::default()).unwrap();
        assert!(done.is_empty());
        assert_eq!(v, orig);
    }

    #[test]
    fn conflicting_shapes_name_component_and_path() {
        let mut v = json!({"daemonsets": {"tolerations": "oops"}});
        let err = inject("gpu-operator", "gpu-operator", &mut v, &opts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("gpu-operator"), "{err}");
        assert!(err.contains("daemonsets.tolerations"), "{err}");
        assert!(err.contains("a string"), "{err}");

        let mut v = json!({"operator": 3});
        let err = inject("gpu-operator", "gpu-operator", &mut v, &opts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`operator`"), "{err}");
    }
}
