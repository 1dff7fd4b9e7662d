//! Health of the objects a component's health checks name. Pure: each function looks at
//! one object as read from the API server.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;

/// Whether an object is healthy, and a one-line account of why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthStatus {
    pub ready: bool,
    pub detail: String,
}

fn observed<K: Resource>(obj: &K, observed_generation: Option<i64>) -> bool {
    match (obj.meta().generation, observed_generation) {
        (Some(g), Some(o)) => o >= g,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

fn not_observed() -> HealthStatus {
    HealthStatus {
        ready: false,
        detail: "controller has not processed the latest spec yet".into(),
    }
}

/// Ready when the controller saw the latest spec, every desired replica is updated and
/// ready, and no replica of an older template is left (as `kubectl rollout status`): during
/// a rollout the old pods are still ready, so counting ready replicas alone is not enough.
pub fn deployment(d: &Deployment) -> HealthStatus {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    if !observed(d, status.observed_generation) {
        return not_observed();
    }
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let old = status.replicas.unwrap_or(0) - updated;
    HealthStatus {
        ready: ready >= desired && updated >= desired && old <= 0,
        detail: if old > 0 {
            format!(
                "rollout not finished: {updated} of {desired} replicas updated, {old} old replica(s) not replaced, {ready} ready"
            )
        } else {
            format!("{ready} of {desired} replicas ready")
        },
    }
}

pub fn statefulset(s: &StatefulSet) -> HealthStatus {
    let desired = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = s.status.clone().unwrap_or_default();
    if !observed(s, status.observed_generation) {
        return not_observed();
    }
    let ready = status.ready_replicas.unwrap_or(0);
    HealthStatus {
        ready: ready >= desired,
        detail: format!("{ready} of {desired} replicas ready"),
    }
}

/// Ready when every node the DaemonSet schedules to runs a ready pod
/// (`numberReady == desiredNumberScheduled`).
pub fn daemonset(d: &DaemonSet) -> HealthStatus {
    let Some(status) = d.status.as_ref() else {
        return not_observed();
    };
    if !observed(d, status.observed_generation) {
        return not_observed();
    }
    let desired = status.desired_number_scheduled;
    let ready = status.number_ready;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    HealthStatus {
        ready: ready == desired && updated >= desired,
        detail: if desired == 0 {
            "0 of 0 pods ready (no node matches its selector and tolerations)".into()
        } else {
            format!("{ready} of {desired} pods ready")
        },
    }
}

pub fn crd(c: &CustomResourceDefinition) -> HealthStatus {
    let established = c
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Established"));
    match established {
        Some(c) if c.status == "True" => HealthStatus {
            ready: true,
            detail: "Established".into(),
        },
        Some(c) => HealthStatus {
            ready: false,
            detail: format!(
                "not Established: {}",
                c.message
                    .as_deref()
                    .unwrap_or(c.reason.as_deref().unwrap_or("no reason given"))
            ),
        },
        None => HealthStatus {
            ready: false,
            detail: "not Established yet".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(generation: i64, status: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "ns", "generation": generation},
            "spec": {"selector": {}, "template": {}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn daemonset_health() {
        let s = daemonset(&ds(
            1,
            json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 1,
                   "currentNumberScheduled": 2, "numberMisscheduled": 0, "updatedNumberScheduled": 2}),
        ));
        assert!(!s.ready);
        assert_eq!(s.detail, "1 of 2 pods ready");
        let s = daemonset(&ds(
            1,
            json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 2,
                   "currentNumberScheduled": 2, "numberMisscheduled": 0, "updatedNumberScheduled": 2}),
        ));
        assert!(s.ready, "{s:?}");
        // A stale status (controller has not seen generation 2) is not healthy.
        let s = daemonset(&ds(
            2,
            json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "numberReady": 2,
                   "currentNumberScheduled": 2, "numberMisscheduled": 0, "updatedNumberScheduled": 2}),
        ));
        assert!(!s.ready);
        // Freshly created: no status yet.
        let fresh: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "x", "generation": 1},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        assert!(!daemonset(&fresh).ready);
    }

    #[test]
    fn deployment_health() {
        let d = |ready: i32, updated: i32| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "x", "generation": 3},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"observedGeneration": 3, "readyReplicas": ready, "updatedReplicas": updated}
            }))
            .unwrap()
        };
        assert!(deployment(&d(2, 2)).ready);
        let s = deployment(&d(1, 2));
        assert!(!s.ready);
        assert_eq!(s.detail, "1 of 2 replicas ready");
        assert!(!deployment(&d(2, 1)).ready, "old replicas still serving");
        // A rollout whose new pod never gets ready: the old one still is.
        let rolling: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "x", "generation": 4},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 1}
        }))
        .unwrap();
        let s = deployment(&rolling);
        assert!(!s.ready);
        assert_eq!(
            s.detail,
            "rollout not finished: 1 of 1 replicas updated, 1 old replica(s) not replaced, 1 ready"
        );
    }

    #[test]
    fn statefulset_health() {
        let s: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "x"},
            "spec": {"selector": {}, "template": {}, "serviceName": "x"},
            "status": {"replicas": 1, "readyReplicas": 1}
        }))
        .unwrap();
        assert!(statefulset(&s).ready);
    }

    #[test]
    fn crd_health() {
        let c = |status: &str| -> CustomResourceDefinition {
            serde_json::from_value(json!({
                "metadata": {"name": "xs.example.com"},
                "spec": {"group": "example.com", "names": {"plural": "xs", "kind": "X"},
                         "scope": "Namespaced", "versions": []},
                "status": {"conditions": [{"type": "Established", "status": status,
                                           "reason": "InitialNamesAccepted"}]}
            }))
            .unwrap()
        };
        assert!(crd(&c("True")).ready);
        let s = crd(&c("False"));
        assert!(!s.ready);
        assert!(s.detail.contains("InitialNamesAccepted"), "{s:?}");
    }
}
