//! Health of workloads and CRDs from their status, and version evidence from their labels and
//! images. Pure functions: `Ok(summary)` when healthy, `Err(reason)` naming what is missing.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::recipe::Component;
use crate::snapshot::cluster::{image_name, image_tag};

fn generation_lag(meta: &ObjectMeta, observed: Option<i64>) -> Option<String> {
    let generation = meta.generation?;
    match observed {
        Some(o) if o >= generation => None,
        o => Some(format!(
            "controller has not observed generation {generation} yet (observed {})",
            o.map_or("none".to_string(), |o| o.to_string())
        )),
    }
}

pub fn deployment(d: &Deployment) -> Result<String, String> {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = d.status.as_ref() else {
        return Err("no status yet (controller has not processed it)".to_string());
    };
    if let Some(lag) = generation_lag(&d.metadata, status.observed_generation) {
        return Err(lag);
    }
    if want == 0 {
        return Err("scaled to 0 replicas".to_string());
    }
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Available");
    let mut problems = Vec::new();
    if ready != want {
        problems.push(format!("{ready}/{want} replicas ready"));
    }
    if updated < want {
        problems.push(format!("{updated}/{want} replicas updated"));
    }
    match available {
        Some(c) if c.status == "True" => {}
        Some(c) => problems.push(format!(
            "Available={} ({}: {})",
            c.status,
            c.reason.as_deref().unwrap_or("-"),
            c.message.as_deref().unwrap_or("")
        )),
        None => problems.push("no Available condition".to_string()),
    }
    if problems.is_empty() {
        Ok(format!("{ready}/{want} replicas ready, Available"))
    } else {
        Err(problems.join(", "))
    }
}

pub fn daemonset(d: &DaemonSet) -> Result<String, String> {
    let Some(s) = d.status.as_ref() else {
        return Err("no status yet (controller has not processed it)".to_string());
    };
    if let Some(lag) = generation_lag(&d.metadata, s.observed_generation) {
        return Err(lag);
    }
    let desired = s.desired_number_scheduled;
    if desired == 0 {
        return Err("0 pods desired: no node matches its node selector / tolerations".to_string());
    }
    let mut problems = Vec::new();
    if s.number_ready != desired {
        problems.push(format!("{}/{desired} pods ready", s.number_ready));
    }
    let updated = s.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        problems.push(format!("{updated}/{desired} pods updated"));
    }
    if s.number_misscheduled > 0 {
        problems.push(format!("{} pods misscheduled", s.number_misscheduled));
    }
    if problems.is_empty() {
        Ok(format!("{}/{desired} pods ready", s.number_ready))
    } else {
        Err(problems.join(", "))
    }
}

pub fn statefulset(st: &StatefulSet) -> Result<String, String> {
    let want = st.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = st.status.as_ref() else {
        return Err("no status yet (controller has not processed it)".to_string());
    };
    if let Some(lag) = generation_lag(&st.metadata, s.observed_generation) {
        return Err(lag);
    }
    if want == 0 {
        return Err("scaled to 0 replicas".to_string());
    }
    let ready = s.ready_replicas.unwrap_or(0);
    let mut problems = Vec::new();
    if ready != want {
        problems.push(format!("{ready}/{want} replicas ready"));
    }
    if let Some(updated) = s.updated_replicas
        && updated < want
        && s.update_revision.is_some()
        && s.update_revision != s.current_revision
    {
        problems.push(format!(
            "rollout in progress: {updated}/{want} replicas updated"
        ));
    }
    if problems.is_empty() {
        Ok(format!("{ready}/{want} replicas ready"))
    } else {
        Err(problems.join(", "))
    }
}

pub fn crd(c: &CustomResourceDefinition) -> Result<String, String> {
    let conds = c
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .cloned()
        .unwrap_or_default();
    let find = |t: &str| conds.iter().find(|c| c.type_ == t);
    match find("Established") {
        Some(e) if e.status == "True" => {}
        Some(e) => {
            return Err(format!(
                "Established={} ({})",
                e.status,
                e.message.as_deref().unwrap_or("")
            ));
        }
        None => return Err("not Established yet".to_string()),
    }
    if let Some(n) = find("NamesAccepted")
        && n.status != "True"
    {
        return Err(format!(
            "NamesAccepted={} ({})",
            n.status,
            n.message.as_deref().unwrap_or("")
        ));
    }
    Ok("Established".to_string())
}

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

    #[test]
    fn deployment_states() {
        let ok: Deployment = from(json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                "conditions": [{"type": "Available", "status": "True"}]}
        }));
        assert_eq!(
            deployment(&ok),
            Ok("2/2 replicas ready, Available".to_string())
        );

        let mut partial = ok.clone();
        if let Some(s) = partial.status.as_mut() {
            s.ready_replicas = Some(1);
            s.conditions = Some(vec![from(json!({"type": "Available", "status": "False",
                "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}))]);
        }
        let e = deployment(&partial).expect_err("unready");
        assert!(
            e.contains("1/2 replicas ready") && e.contains("MinimumReplicasUnavailable"),
            "{e}"
        );

        let mut stale = ok.clone();
        stale.metadata.generation = Some(3);
        assert!(
            deployment(&stale)
                .expect_err("stale")
                .contains("generation 3")
        );

        let mut zero = ok.clone();
        if let Some(s) = zero.spec.as_mut() {
            s.replicas = Some(0);
        }
        assert_eq!(deployment(&zero), Err("scaled to 0 replicas".to_string()));

        let fresh: Deployment =
            from(json!({"metadata": {"name": "d"}, "spec": {"selector": {}, "template": {}}}));
        assert!(deployment(&fresh).is_err());
    }

    #[test]
    fn daemonset_states() {
        let ds = |desired: i32, ready: i32| -> DaemonSet {
            from(json!({"metadata": {"name": "x", "generation": 1},
                "status": {"observedGeneration": 1, "desiredNumberScheduled": desired, "numberReady": ready,
                    "currentNumberScheduled": desired, "numberMisscheduled": 0, "updatedNumberScheduled": desired}}))
        };
        assert_eq!(daemonset(&ds(3, 3)), Ok("3/3 pods ready".to_string()));
        assert_eq!(daemonset(&ds(3, 2)), Err("2/3 pods ready".to_string()));
        assert!(
            daemonset(&ds(0, 0))
                .expect_err("nothing scheduled")
                .contains("0 pods desired")
        );
    }

    #[test]
    fn statefulset_and_crd_states() {
        let st: StatefulSet = from(
            json!({"metadata": {"name": "s"}, "spec": {"replicas": 3, "selector": {}, "template": {}, "serviceName": "s"},
            "status": {"replicas": 3, "readyReplicas": 1}}),
        );
        assert_eq!(statefulset(&st), Err("1/3 replicas ready".to_string()));
        let crd_ok: CustomResourceDefinition = from(json!({"metadata": {"name": "a.b"},
            "spec": {"group": "b", "names": {"kind": "A", "plural": "a"}, "scope": "Namespaced", "versions": []},
            "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}}));
        assert!(crd(&crd_ok).is_ok());
        let mut pending = crd_ok.clone();
        pending.status = None;
        assert_eq!(crd(&pending), Err("not Established yet".to_string()));
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
