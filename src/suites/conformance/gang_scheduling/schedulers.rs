//! The gang schedulers the case knows: how each is recognised from the APIs a cluster serves,
//! and the manifests that express "run these N pods all together or not at all" for it.
//! Pure functions: detection reads a set of served resources, builders return JSON objects.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Label the scheduler-plugins Coscheduling plugin groups pods by.
pub const COSCHEDULING_LABEL: &str = "scheduling.x-k8s.io/pod-group";
/// Label KAI groups pods by (its PodGroup name).
pub const KAI_POD_GROUP_LABEL: &str = "pod-group-name";
/// Annotation Volcano groups pods by.
pub const VOLCANO_GROUP_ANNOTATION: &str = "scheduling.k8s.io/group-name";
/// Label Kueue admits Jobs by.
pub const KUEUE_QUEUE_LABEL: &str = "kueue.x-k8s.io/queue-name";

/// Served resources (`plural.group`) that identify each gang scheduler.
pub const COSCHEDULING_RESOURCE: &str = "podgroups.scheduling.x-k8s.io";
pub const KAI_RESOURCES: [&str; 2] = ["queues.scheduling.run.ai", "podgroups.scheduling.run.ai"];
pub const VOLCANO_RESOURCE: &str = "podgroups.scheduling.volcano.sh";
pub const KUEUE_RESOURCES: [&str; 3] = [
    "workloads.kueue.x-k8s.io",
    "clusterqueues.kueue.x-k8s.io",
    "localqueues.kueue.x-k8s.io",
];

/// A gang scheduler installed on the cluster, with what its manifests need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GangScheduler {
    /// scheduler-plugins Coscheduling: a PodGroup CR and a pod label; pods go to
    /// `scheduler_name` (the default scheduler when the plugin is compiled into it).
    Coscheduling { scheduler_name: String },
    /// NVIDIA KAI: a PodGroup in a queue, pods scheduled by `kai-scheduler`.
    Kai { queue: String },
    /// Volcano: a PodGroup in a queue, pods scheduled by `volcano`.
    Volcano { queue: String },
    /// Kueue: Jobs admitted as a whole through a LocalQueue that points at `cluster_queue`.
    Kueue { cluster_queue: String },
}

impl GangScheduler {
    pub fn name(&self) -> &'static str {
        match self {
            GangScheduler::Coscheduling { .. } => "coscheduling",
            GangScheduler::Kai { .. } => "kai",
            GangScheduler::Volcano { .. } => "volcano",
            GangScheduler::Kueue { .. } => "kueue",
        }
    }
}

/// Names accepted by `params.gangScheduler`.
pub const KNOWN: [&str; 4] = ["coscheduling", "kai", "volcano", "kueue"];

/// Which gang schedulers the served resources show, in preference order (a dedicated gang
/// scheduler before an admission queue). `served` holds `plural.group` names.
pub fn detect(served: &BTreeSet<String>) -> Vec<&'static str> {
    let has = |r: &str| served.contains(r);
    let mut out = Vec::new();
    if has(COSCHEDULING_RESOURCE) {
        out.push("coscheduling");
    }
    if KAI_RESOURCES.iter().all(|r| has(r)) {
        out.push("kai");
    }
    if has(VOLCANO_RESOURCE) {
        out.push("volcano");
    }
    if KUEUE_RESOURCES.iter().all(|r| has(r)) {
        out.push("kueue");
    }
    out
}

/// What one gang is: `members` pods, each asking for `gpus` GPUs and running `args` in `image`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gang {
    pub name: String,
    pub members: u64,
    pub gpus: u64,
    pub image: String,
    pub args: Vec<String>,
    /// Seconds the scheduler keeps a partial gang waiting before it retries.
    pub timeout_seconds: u64,
}

/// Label every gang pod carries (for watches), whatever the scheduler.
pub const GANG_LABEL: &str = "aiconform.dev/gang";

/// The objects to create, in order: the scheduler's grouping objects, then the Job.
pub fn manifests(s: &GangScheduler, g: &Gang) -> Vec<Value> {
    let mut out = Vec::new();
    let mut job = job(g);
    match s {
        GangScheduler::Coscheduling { scheduler_name } => {
            out.push(json!({
                "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
                "metadata": {"name": g.name},
                "spec": {"minMember": g.members, "scheduleTimeoutSeconds": g.timeout_seconds}
            }));
            let tpl = &mut job["spec"]["template"];
            tpl["metadata"]["labels"][COSCHEDULING_LABEL] = json!(g.name);
            tpl["spec"]["schedulerName"] = json!(scheduler_name);
        }
        GangScheduler::Kai { queue } => {
            out.push(json!({
                "apiVersion": "scheduling.run.ai/v2alpha2", "kind": "PodGroup",
                "metadata": {"name": g.name},
                "spec": {"minMember": g.members, "queue": queue}
            }));
            let tpl = &mut job["spec"]["template"];
            tpl["metadata"]["labels"][KAI_POD_GROUP_LABEL] = json!(g.name);
            tpl["metadata"]["labels"]["kai.scheduler/queue"] = json!(queue);
            tpl["spec"]["schedulerName"] = json!("kai-scheduler");
        }
        GangScheduler::Volcano { queue } => {
            out.push(json!({
                "apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                "metadata": {"name": g.name},
                "spec": {"minMember": g.members, "queue": queue}
            }));
            let tpl = &mut job["spec"]["template"];
            tpl["metadata"]["annotations"][VOLCANO_GROUP_ANNOTATION] = json!(g.name);
            tpl["spec"]["schedulerName"] = json!("volcano");
        }
        GangScheduler::Kueue { cluster_queue } => {
            out.push(json!({
                "apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
                "metadata": {"name": g.name},
                "spec": {"clusterQueue": cluster_queue}
            }));
            job["metadata"]["labels"][KUEUE_QUEUE_LABEL] = json!(g.name);
            // Kueue starts a suspended Job once the whole Job is admitted.
            job["spec"]["suspend"] = json!(true);
        }
    }
    out.push(job);
    out
}

/// An indexed Job of `members` pods that must all run at once (parallelism = completions).
fn job(g: &Gang) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": g.name, "labels": {GANG_LABEL: g.name}},
        "spec": {
            "parallelism": g.members,
            "completions": g.members,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {GANG_LABEL: g.name,
                    "app.kubernetes.io/name": "aiconform-gang"}, "annotations": {}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "worker", "image": g.image, "args": g.args,
                        "resources": {"limits": {"nvidia.com/gpu": g.gpus.to_string()}}}],
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                        "effect": "NoSchedule"}]
                }
            }
        }
    })
}

/// `(members, gpus each)` of a gang that cannot fit: each member asks for as many GPUs as
/// the largest node has, and there is one member more than the cluster can hold.
/// `None` without GPUs.
pub fn unsatisfiable_gang(alloc: &[(String, u64)]) -> Option<(u64, u64)> {
    let per_pod = alloc.iter().map(|(_, n)| *n).max()?;
    let total: u64 = alloc.iter().map(|(_, n)| *n / per_pod).sum();
    Some((total + 1, per_pod))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn gang() -> Gang {
        Gang {
            name: "g".into(),
            members: 3,
            gpus: 2,
            image: "img".into(),
            args: vec!["probe".into(), "sleep".into(), "3s".into()],
            timeout_seconds: 10,
        }
    }

    #[test]
    fn detection_needs_every_identifying_resource() {
        assert!(detect(&served(&[])).is_empty());
        assert_eq!(
            detect(&served(&[COSCHEDULING_RESOURCE])),
            vec!["coscheduling"]
        );
        assert!(detect(&served(&["queues.scheduling.run.ai"])).is_empty());
        assert_eq!(detect(&served(&KAI_RESOURCES)), vec!["kai"]);
        assert_eq!(detect(&served(&[VOLCANO_RESOURCE])), vec!["volcano"]);
        assert!(detect(&served(&["workloads.kueue.x-k8s.io"])).is_empty());
        let mut all = served(&KUEUE_RESOURCES);
        all.insert(VOLCANO_RESOURCE.into());
        assert_eq!(detect(&all), vec!["volcano", "kueue"]);
    }

    #[test]
    fn coscheduling_manifests_group_by_label() {
        let m = manifests(
            &GangScheduler::Coscheduling {
                scheduler_name: "default-scheduler".into(),
            },
            &gang(),
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["kind"], "PodGroup");
        assert_eq!(m[0]["spec"]["minMember"], 3);
        let job = &m[1];
        assert_eq!(job["kind"], "Job");
        assert_eq!(job["spec"]["parallelism"], 3);
        assert_eq!(job["spec"]["completions"], 3);
        let tpl = &job["spec"]["template"];
        assert_eq!(tpl["metadata"]["labels"][COSCHEDULING_LABEL], "g");
        assert_eq!(tpl["metadata"]["labels"][GANG_LABEL], "g");
        assert_eq!(tpl["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(
            tpl["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
            "2"
        );
        assert_eq!(
            tpl["spec"]["containers"][0]["args"],
            json!(["probe", "sleep", "3s"])
        );
    }

    #[test]
    fn kai_volcano_and_kueue_manifests() {
        let kai = manifests(&GangScheduler::Kai { queue: "q".into() }, &gang());
        assert_eq!(kai[0]["apiVersion"], "scheduling.run.ai/v2alpha2");
        assert_eq!(kai[0]["spec"]["queue"], "q");
        assert_eq!(
            kai[1]["spec"]["template"]["spec"]["schedulerName"],
            "kai-scheduler"
        );
        assert_eq!(
            kai[1]["spec"]["template"]["metadata"]["labels"][KAI_POD_GROUP_LABEL],
            "g"
        );
        let vol = manifests(
            &GangScheduler::Volcano {
                queue: "default".into(),
            },
            &gang(),
        );
        assert_eq!(vol[0]["apiVersion"], "scheduling.volcano.sh/v1beta1");
        assert_eq!(
            vol[1]["spec"]["template"]["metadata"]["annotations"][VOLCANO_GROUP_ANNOTATION],
            "g"
        );
        assert_eq!(
            vol[1]["spec"]["template"]["spec"]["schedulerName"],
            "volcano"
        );
        let kq = manifests(
            &GangScheduler::Kueue {
                cluster_queue: "cq".into(),
            },
            &gang(),
        );
        assert_eq!(kq[0]["kind"], "LocalQueue");
        assert_eq!(kq[0]["spec"]["clusterQueue"], "cq");
        assert_eq!(kq[1]["metadata"]["labels"][KUEUE_QUEUE_LABEL], "g");
        assert_eq!(kq[1]["spec"]["suspend"], true);
        assert!(
            kq[1]["spec"]["template"]["spec"]
                .get("schedulerName")
                .is_none()
        );
    }

    #[test]
    fn unsatisfiable_gang_exceeds_allocatable() {
        let alloc = vec![("a".to_string(), 8), ("b".to_string(), 8)];
        assert_eq!(unsatisfiable_gang(&alloc), Some((3, 8)));
        let mixed = vec![("a".to_string(), 8), ("b".to_string(), 4)];
        assert_eq!(unsatisfiable_gang(&mixed), Some((2, 8)));
        assert_eq!(unsatisfiable_gang(&[]), None);
    }
}
