//! Health of workloads and CRDs from their status, one definition for `deploy` (waiting for
//! a component) and the deployment suite (judging it). Pure functions: `Ok(summary)` when
//! healthy, `Err(reason)` naming what is missing; [`healthy`] is the same test as a
//! kube-runtime `Condition`.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use kube::Resource;

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
    // During a rollout the old pods are still ready: replicas of an older template left
    // over mean it has not finished (as `kubectl rollout status` says).
    let old = status.replicas.unwrap_or(0) - updated;
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
    if old > 0 {
        problems.push(format!(
            "rollout not finished: {old} old replica(s) not replaced"
        ));
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

/// An object whose status says whether it is healthy.
pub trait Workload:
    Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static
{
    /// `Ok(summary)` when healthy, `Err(what is missing)`.
    fn health(&self) -> Result<String, String>;
}

impl Workload for Deployment {
    fn health(&self) -> Result<String, String> {
        deployment(self)
    }
}

impl Workload for DaemonSet {
    fn health(&self) -> Result<String, String> {
        daemonset(self)
    }
}

impl Workload for StatefulSet {
    fn health(&self) -> Result<String, String> {
        statefulset(self)
    }
}

impl Workload for CustomResourceDefinition {
    fn health(&self) -> Result<String, String> {
        crd(self)
    }
}

/// The object exists and is healthy: a `kube::runtime::wait::Condition`.
pub fn healthy<K: Workload>(obj: Option<&K>) -> bool {
    obj.is_some_and(|o| o.health().is_ok())
}

/// [`Workload::health`] as a plain function, for waits that take one.
pub fn check<K: Workload>(obj: &K) -> Result<String, String> {
    obj.health()
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

    #[test]
    fn a_rollout_with_old_replicas_left_is_not_healthy() {
        // The new pod never gets ready; the old one still is.
        let rolling: Deployment = from(json!({
            "metadata": {"name": "x", "generation": 4},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 1,
                "conditions": [{"type": "Available", "status": "True"}]}
        }));
        let e = deployment(&rolling).expect_err("rolling");
        assert_eq!(e, "rollout not finished: 1 old replica(s) not replaced");
        assert!(!healthy(Some(&rolling)));
        assert!(!healthy::<Deployment>(None));
    }
}
