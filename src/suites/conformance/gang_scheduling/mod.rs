//! gang_scheduling (KAR-0053): an all-or-nothing gang scheduler is installed and works.
//! The case detects which one the cluster serves, then shows both sides of the contract with
//! Jobs built for it: a gang with capacity for fewer members than it has never gets a pod
//! bound during a settle period, and a gang that fits runs all its pods together and completes.
//! `params` (a recipe's `validation.gangScheduling`, which a built-in recipe takes from its
//! scheduler component) may name the scheduler (`gangScheduler`) and its `queue`,
//! `clusterQueue` or `schedulerName`.

pub mod schedulers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::super::k8s::{
    case_namespace, controllers_running, delete_all_and_wait, dynamic_api, gpu_allocatable,
    next_before, served_resources,
};
use super::{deadline, probe_image};
use crate::runner::{CaseContext, Outcome};
pub use schedulers::unsatisfiable_gang;
use schedulers::{GANG_LABEL, Gang, GangScheduler};

/// API groups whose resources identify a gang scheduler.
const GROUPS: [&str; 4] = [
    "scheduling.x-k8s.io",
    "scheduling.run.ai",
    "scheduling.volcano.sh",
    "kueue.x-k8s.io",
];

/// What a settle-period watch of an unsatisfiable gang saw.
#[derive(Debug, Default)]
pub struct GangObservation {
    /// Members bound to a node: name → node.
    pub bound: BTreeMap<String, String>,
    /// Members the scheduler reported unschedulable at least once.
    pub evaluated: BTreeSet<String>,
}

impl GangObservation {
    fn observe(&mut self, pod: &Pod) {
        let name = pod.name_any();
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            self.bound.insert(name.clone(), node);
        }
        let unschedulable = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            });
        if unschedulable {
            self.evaluated.insert(name);
        }
    }
}

/// Pod phases over time for a satisfiable gang: how many ran at the same moment.
#[derive(Debug, Default)]
pub struct TogetherObservation {
    phase: BTreeMap<String, String>,
    node: BTreeMap<String, String>,
    /// Most members in phase Running at one time.
    pub max_running: usize,
    /// `pod→node` when `max_running` was reached.
    pub placement: Vec<String>,
}

impl TogetherObservation {
    pub fn observe(&mut self, name: &str, phase: &str, node: Option<&str>) {
        self.phase.insert(name.to_string(), phase.to_string());
        if let Some(n) = node {
            self.node.insert(name.to_string(), n.to_string());
        }
        let running: Vec<&String> = self
            .phase
            .iter()
            .filter(|(_, p)| *p == "Running")
            .map(|(n, _)| n)
            .collect();
        if running.len() > self.max_running {
            self.max_running = running.len();
            self.placement = running
                .iter()
                .map(|n| format!("{n}→{}", self.node.get(*n).map_or("?", String::as_str)))
                .collect();
        }
    }

    pub fn phases(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in self.phase.values() {
            *counts.entry(p.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(p, n)| format!("{n} {p}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub(in super::super) async fn gang_scheduling_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let served = served_resources(&client, &GROUPS).await?;
    let detected = schedulers::detect(&served);
    let wanted = ctx.param::<String>("gangScheduler")?;
    if let Some(w) = &wanted
        && !schedulers::KNOWN.contains(&w.as_str())
    {
        return Ok(Outcome::failed(format!(
            "params.gangScheduler `{w}` is not one of {}",
            schedulers::KNOWN.join(", ")
        )));
    }
    let chosen = match (&wanted, detected.first()) {
        (Some(w), _) if detected.contains(&w.as_str()) => w.clone(),
        (Some(w), _) => {
            return Ok(Outcome::failed(format!(
                "params.gangScheduler is {w}, but its APIs are not served (detected: {})",
                if detected.is_empty() {
                    "none".to_string()
                } else {
                    detected.join(", ")
                }
            )));
        }
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Ok(Outcome::failed(
                "no gang scheduler is installed: the API server serves none of coscheduling PodGroups (scheduling.x-k8s.io), KAI queues/podgroups (scheduling.run.ai), Volcano podgroups (scheduling.volcano.sh) or Kueue workloads/queues (kueue.x-k8s.io)",
            ));
        }
    };
    let scheduler = match configure(&ctx, &client, &chosen).await? {
        Ok(s) => s,
        Err(why) => return Ok(Outcome::failed(why)),
    };
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let alloc = gpu_allocatable(&nodes);
    let Some((members, per_pod)) = unsatisfiable_gang(&alloc) else {
        return Ok(Outcome::failed(
            "no node advertises allocatable nvidia.com/gpu: a GPU gang cannot be placed, so gang scheduling is not shown",
        ));
    };
    let total: u64 = alloc.iter().map(|(_, n)| n).sum();
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let settle = Duration::from_secs(ctx.param::<u64>("settleSeconds")?.unwrap_or(20))
        .min(ctx.spec.timeout / 3);
    let run_secs = ctx.param::<u64>("runSeconds")?.unwrap_or(5);
    let image = probe_image(&ctx)?;
    let gang = |name: &str, members: u64, gpus: u64, secs: u64| Gang {
        name: name.to_string(),
        members,
        gpus,
        image: image.clone(),
        args: vec!["probe".into(), "sleep".into(), format!("{secs}s")],
        timeout_seconds: 10,
    };
    let who = match &scheduler {
        GangScheduler::Kueue { cluster_queue } => {
            let controllers = controllers_running(&client, "kueue").await;
            format!(
                "kueue gang scheduler{} through ClusterQueue {cluster_queue}",
                if controllers.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", controllers.join(", "))
                }
            )
        }
        other => format!("{} gang scheduler", other.name()),
    };

    // 1. A gang with capacity for fewer members than it has: no member may be bound.
    let big = gang(
        "gang-unsatisfiable",
        members,
        per_pod,
        settle.as_secs() + run_secs,
    );
    create_all(&client, &ns, &schedulers::manifests(&scheduler, &big)).await?;
    let obs = watch_unsatisfiable(&client, &ns, &big, settle).await?;
    let gang_desc = format!(
        "{members} members × {per_pod} GPUs = {} GPUs, room for {} members in {total} allocatable",
        members * per_pod,
        members - 1
    );
    if !obs.bound.is_empty() {
        let list: Vec<String> = obs.bound.iter().map(|(p, n)| format!("{p}→{n}")).collect();
        return Ok(Outcome::failed(format!(
            "partial placement with the {who}: an unsatisfiable gang ({gang_desc}) had {} of {members} members bound ({}): placement is not all-or-nothing",
            obs.bound.len(),
            list.join(", ")
        )));
    }
    let suspended = matches!(scheduler, GangScheduler::Kueue { .. })
        && job_suspended(&client, &ns, &big.name).await?;
    if obs.evaluated.is_empty() && !suspended {
        return Ok(Outcome::failed(format!(
            "no member of the unsatisfiable gang ({gang_desc}) was reported unschedulable within {}s: the {who} did not evaluate them, so all-or-nothing placement is not shown",
            settle.as_secs()
        )));
    }
    remove_gang(&client, &ns, &big.name).await?;

    // 2. A gang that fits: all members Running at once, then the Job completes.
    let n = ctx.param::<u64>("members")?.unwrap_or(2).max(2);
    let small = gang("gang-satisfiable", n, 1, run_secs);
    create_all(&client, &ns, &schedulers::manifests(&scheduler, &small)).await?;
    let (together, job_state) = watch_satisfiable(&client, &ns, &small, deadline).await?;
    if together.max_running < n as usize {
        if matches!(scheduler, GangScheduler::Kueue { .. })
            && job_suspended(&client, &ns, &small.name).await?
        {
            return Ok(Outcome::failed(format!(
                "the unsatisfiable gang stayed fully pending, but the {who} never admitted the {n}-member gang ({n} × 1 GPU): its Job {ns}/{} stayed suspended, so no member ran",
                small.name
            )));
        }
        return Ok(Outcome::failed(format!(
            "the unsatisfiable gang stayed fully pending, but the {n}-member gang never had all members Running together (at most {} at once; last seen: {}; Job {})",
            together.max_running,
            together.phases(),
            job_state
        )));
    }
    if job_state != "Complete" {
        return Ok(Outcome::failed(format!(
            "all {n} members of the gang ran together ({}), but Job {ns}/{} did not complete: {job_state}",
            together.placement.join(", "),
            small.name
        )));
    }
    Ok(Outcome::passed(format!(
        "{who}: an unsatisfiable gang ({gang_desc}) stayed entirely unbound for {}s ({}); a {n}-member gang ran all members together ({}) and its Job completed",
        settle.as_secs(),
        if suspended {
            "its Job stayed suspended".to_string()
        } else {
            format!("{} members reported unschedulable", obs.evaluated.len())
        },
        together.placement.join(", ")
    )))
}

/// The detected scheduler with what its manifests need, or why it cannot be used.
async fn configure(
    ctx: &CaseContext,
    client: &Client,
    name: &str,
) -> anyhow::Result<Result<GangScheduler, String>> {
    let first = |group: &str, kind: &str, plural: &str, preferred: &str| {
        let api = dynamic_api(client, group, version_of(group), kind, plural, None);
        let preferred = preferred.to_string();
        async move {
            let names: Vec<String> = api
                .list(&ListParams::default())
                .await?
                .items
                .iter()
                .map(|o| o.name_any())
                .collect();
            Ok::<_, anyhow::Error>(if names.contains(&preferred) {
                Some(preferred)
            } else {
                names.into_iter().next()
            })
        }
    };
    Ok(match name {
        "coscheduling" => Ok(GangScheduler::Coscheduling {
            scheduler_name: match ctx.param::<String>("schedulerName")? {
                Some(s) => s,
                None => coscheduling_scheduler(client).await?,
            },
        }),
        "kai" => match ctx.param::<String>("queue")? {
            Some(queue) => Ok(GangScheduler::Kai { queue }),
            None => first("scheduling.run.ai", "Queue", "queues", "default-queue")
                .await?
                .map(|queue| GangScheduler::Kai { queue })
                .ok_or_else(|| {
                    "KAI is installed but has no Queue (create one or set params.queue)".into()
                }),
        },
        "volcano" => Ok(GangScheduler::Volcano {
            queue: ctx
                .param::<String>("queue")?
                .unwrap_or_else(|| "default".to_string()),
        }),
        _ => match ctx.param::<String>("clusterQueue")? {
            Some(cluster_queue) => Ok(GangScheduler::Kueue { cluster_queue }),
            None => first("kueue.x-k8s.io", "ClusterQueue", "clusterqueues", "")
                .await?
                .map(|cluster_queue| GangScheduler::Kueue { cluster_queue })
                .ok_or_else(|| {
                    "Kueue is installed but has no ClusterQueue (create one or set params.clusterQueue)"
                        .into()
                }),
        },
    })
}

fn version_of(group: &str) -> &'static str {
    match group {
        "scheduling.x-k8s.io" => "v1alpha1",
        "scheduling.run.ai" => "v2",
        "scheduling.volcano.sh" => "v1beta1",
        _ => "v1beta1",
    }
}

/// The scheduler that runs the Coscheduling plugin: the scheduler-plugins chart's second
/// scheduler when it is deployed, else the default scheduler (plugin compiled in).
async fn coscheduling_scheduler(client: &Client) -> anyhow::Result<String> {
    let deployments = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    Ok(deployments
        .iter()
        .map(|d| d.name_any())
        .find(|n| n == "scheduler-plugins-scheduler")
        .unwrap_or_else(|| "default-scheduler".to_string()))
}

/// Create each manifest in `ns` (namespaced kinds only).
async fn create_all(client: &Client, ns: &str, objs: &[serde_json::Value]) -> anyhow::Result<()> {
    for o in objs {
        let api_version = o["apiVersion"].as_str().unwrap_or_default();
        let kind = o["kind"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let plural = format!("{}s", kind.to_lowercase());
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            &plural,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let obj: DynamicObject = serde_json::from_value(o.clone())?;
        api.create(&PostParams::default(), &obj)
            .await
            .map_err(|e| anyhow::anyhow!("creating {kind} {ns}/{}: {e}", obj.name_any()))?;
    }
    Ok(())
}

async fn watch_unsatisfiable(
    client: &Client,
    ns: &str,
    gang: &Gang,
    settle: Duration,
) -> anyhow::Result<GangObservation> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("{GANG_LABEL}={}", gang.name);
    let mut obs = GangObservation::default();
    let settle_end = Instant::now() + settle;
    let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default().labels(&selector)));
    while let Some(ev) = next_before(&mut stream, settle_end).await {
        match ev? {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => obs.observe(&p),
            _ => {}
        }
        if obs.bound.len() as u64 == gang.members {
            break;
        }
    }
    Ok(obs)
}

/// Watch the gang's pods and Job until the Job finishes or the deadline: the most members
/// seen Running at once, and the Job's end state (`Complete`, `Failed: ...` or what it was).
async fn watch_satisfiable(
    client: &Client,
    ns: &str,
    gang: &Gang,
    deadline: Instant,
) -> anyhow::Result<(TogetherObservation, String)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let selector = format!("{GANG_LABEL}={}", gang.name);
    let mut together = TogetherObservation::default();
    let mut pod_stream =
        std::pin::pin!(watcher(pods, watcher::Config::default().labels(&selector)));
    let mut job_stream = std::pin::pin!(watcher(
        jobs,
        watcher::Config::default().fields(&format!("metadata.name={}", gang.name))
    ));
    let mut job_state = "not observed".to_string();
    loop {
        tokio::select! {
            ev = next_before(&mut pod_stream, deadline) => match ev {
                Some(ev) => match ev? {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
                        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                        together.observe(&p.name_any(), &phase, node.as_deref());
                    }
                    _ => {}
                },
                None => break,
            },
            ev = next_before(&mut job_stream, deadline) => match ev {
                Some(ev) => match ev? {
                    watcher::Event::Apply(j) | watcher::Event::InitApply(j) => {
                        job_state = job_end_state(&j);
                        if job_state == "Complete" || job_state.starts_with("Failed") {
                            break;
                        }
                    }
                    _ => {}
                },
                None => break,
            },
        }
    }
    Ok((together, job_state))
}

/// `Complete`, `Failed: reason`, or the Job's pod counts while it runs.
pub fn job_end_state(job: &Job) -> String {
    let Some(st) = job.status.as_ref() else {
        return "no status".to_string();
    };
    for c in st.conditions.iter().flatten() {
        if c.status == "True" && c.type_ == "Complete" {
            return "Complete".to_string();
        }
        if c.status == "True" && c.type_ == "Failed" {
            return format!(
                "Failed: {} {}",
                c.reason.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or("")
            );
        }
    }
    format!(
        "active {}, succeeded {}, failed {}",
        st.active.unwrap_or(0),
        st.succeeded.unwrap_or(0),
        st.failed.unwrap_or(0)
    )
}

async fn job_suspended(client: &Client, ns: &str, name: &str) -> anyhow::Result<bool> {
    Ok(Api::<Job>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
        .and_then(|j| j.spec.and_then(|s| s.suspend))
        .unwrap_or(false))
}

/// Delete a gang's Job and wait until its pods are gone (grouping objects go with the namespace).
async fn remove_gang(client: &Client, ns: &str, name: &str) -> anyhow::Result<()> {
    Api::<Job>::namespaced(client.clone(), ns)
        .delete(name, &DeleteParams::background().grace_period(0))
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    delete_all_and_wait(
        &pods,
        &format!("{GANG_LABEL}={name}"),
        Duration::from_secs(60),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn together_counts_simultaneous_running() {
        let mut t = TogetherObservation::default();
        t.observe("a", "Pending", None);
        t.observe("a", "Running", Some("n1"));
        t.observe("a", "Succeeded", Some("n1"));
        t.observe("b", "Running", Some("n2"));
        assert_eq!(t.max_running, 1, "a finished before b started");
        t.observe("c", "Running", Some("n1"));
        assert_eq!(t.max_running, 2);
        assert_eq!(t.placement, vec!["b→n2", "c→n1"]);
        assert_eq!(t.phases(), "2 Running, 1 Succeeded");
    }

    #[test]
    fn job_states() {
        let j: Job = serde_json::from_value(json!({"status": {"active": 2}})).expect("job");
        assert_eq!(job_end_state(&j), "active 2, succeeded 0, failed 0");
        let j: Job = serde_json::from_value(json!({"status": {"conditions": [
            {"type": "Complete", "status": "True"}]}}))
        .expect("job");
        assert_eq!(job_end_state(&j), "Complete");
        let j: Job = serde_json::from_value(json!({"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}))
        .expect("job");
        assert!(job_end_state(&j).starts_with("Failed: BackoffLimitExceeded"));
    }
}
