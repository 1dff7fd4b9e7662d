//! cluster_autoscaling (KAR-0055): an autoscaled accelerator node pool grows when pods that
//! request an accelerator cannot be placed, and shrinks back when they are gone.
//!
//! The pool is a node group: nodes carrying `params.poolLabel=params.pool` (a
//! cluster-autoscaler node-group label, or `karpenter.sh/nodepool` for a Karpenter NodePool
//! found on the cluster). With F free GPUs on the pool's N nodes, the case creates F+1
//! single-GPU pods pinned to the pool: one must stay Pending, the pool must grow, the scheduler
//! must bind that pod to a new node and the node must report it Running; after the pods are
//! deleted the pool must return to N nodes. When the pool does not grow, the failure quotes
//! why, as the pending pods' events say it (the scheduler's and the autoscaler's).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use super::super::k8s::{
    case_namespace, create, delete_all_and_wait, dynamic_api, gpu_tolerations, next_before,
    project_controllers, served_resources,
};
use super::{deadline, probe_image};
use crate::runner::{CaseContext, Outcome};

const APP_LABEL: &str = "aiconform.dev/autoscaling-probe";
const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
const KARPENTER_POOL_LABEL: &str = "karpenter.sh/nodepool";

/// Why the pending probe pods were not placed, as their events say: the newest message of
/// each reporting component, as `component: message`, in component order. Events only
/// explain a failure; the verdict rests on the pods and nodes observed.
pub fn pending_reasons(events: &[Event], pods: &BTreeSet<String>) -> Vec<String> {
    let mut newest: BTreeMap<String, (String, String)> = BTreeMap::new();
    for e in events {
        if e.involved_object.kind.as_deref() != Some("Pod")
            || !e
                .involved_object
                .name
                .as_ref()
                .is_some_and(|n| pods.contains(n))
            || e.type_.as_deref() == Some("Normal") && e.reason.as_deref() == Some("Scheduled")
        {
            continue;
        }
        let Some(msg) = e.message.as_deref().filter(|m| !m.is_empty()) else {
            continue;
        };
        let who = e
            .reporting_component
            .as_deref()
            .filter(|c| !c.is_empty())
            .or_else(|| e.source.as_ref().and_then(|s| s.component.as_deref()))
            .unwrap_or("unknown")
            .to_string();
        let when = e
            .last_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
            .unwrap_or_default();
        if newest.get(&who).is_none_or(|(w, _)| *w <= when) {
            newest.insert(who, (when, msg.to_string()));
        }
    }
    newest
        .into_iter()
        .map(|(who, (_, msg))| format!("{who}: {msg}"))
        .collect()
}

/// Free `nvidia.com/gpu` on `nodes`: allocatable minus what bound, unfinished pods request.
pub fn free_gpus(nodes: &[Node], pods: &[Pod]) -> u64 {
    let names: BTreeSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    let alloc: u64 = super::super::k8s::gpu_allocatable(nodes)
        .iter()
        .map(|(_, n)| n)
        .sum();
    let used: u64 = pods
        .iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| names.contains(n))
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded") | Some("Failed")
                )
        })
        .map(pod_gpus)
        .sum();
    alloc.saturating_sub(used)
}

fn pod_gpus(p: &Pod) -> u64 {
    p.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| {
            let r = c.resources.as_ref()?;
            r.requests
                .as_ref()
                .and_then(|m| m.get("nvidia.com/gpu"))
                .or_else(|| r.limits.as_ref().and_then(|m| m.get("nvidia.com/gpu")))
                .and_then(|q| q.0.parse::<u64>().ok())
        })
        .sum()
}

/// What the scale-up watch saw.
#[derive(Debug, Default)]
pub struct ScaleUp {
    baseline: BTreeSet<String>,
    pool: BTreeSet<String>,
    /// Most pool nodes at once.
    pub max_nodes: usize,
    /// Pods reported unschedulable at least once.
    pub pending: BTreeSet<String>,
    phase: BTreeMap<String, (String, Option<String>)>,
    /// Instance type (`node.kubernetes.io/instance-type`) of each pool node seen.
    instance_types: BTreeMap<String, String>,
}

impl ScaleUp {
    pub fn new(baseline: BTreeSet<String>) -> Self {
        Self {
            max_nodes: baseline.len(),
            pool: baseline.clone(),
            baseline,
            ..Self::default()
        }
    }

    pub fn node(&mut self, name: &str, present: bool, instance_type: Option<&str>) {
        if let Some(t) = instance_type {
            self.instance_types.insert(name.to_string(), t.to_string());
        }
        if present {
            self.pool.insert(name.to_string());
        } else {
            self.pool.remove(name);
        }
        self.max_nodes = self.max_nodes.max(self.pool.len());
    }

    pub fn pod(&mut self, name: &str, phase: &str, node: Option<&str>, unschedulable: bool) {
        if unschedulable {
            self.pending.insert(name.to_string());
        }
        self.phase.insert(
            name.to_string(),
            (phase.to_string(), node.map(str::to_string)),
        );
    }

    /// Pods Running (or done), by name → node.
    pub fn running(&self) -> BTreeMap<&str, &str> {
        self.phase
            .iter()
            .filter(|(_, (p, _))| p == "Running" || p == "Succeeded")
            .filter_map(|(n, (_, node))| Some((n.as_str(), node.as_deref()?)))
            .collect()
    }

    /// Pods that were Pending and then ran on a node the pool did not have before.
    pub fn rescued(&self) -> Vec<String> {
        let running = self.running();
        self.pending
            .iter()
            .filter_map(|p| {
                let node = running.get(p.as_str())?;
                (!self.baseline.contains(*node)).then(|| match self.instance_types.get(*node) {
                    Some(t) => format!("{p}→{node} ({t})"),
                    None => format!("{p}→{node}"),
                })
            })
            .collect()
    }

    pub fn done(&self, pods: usize) -> bool {
        self.running().len() == pods && !self.rescued().is_empty()
    }

    pub fn grew(&self) -> bool {
        self.max_nodes > self.baseline.len()
    }
}

pub(super) async fn cluster_autoscaling_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let (label, pool) = match find_pool(&ctx, &client).await? {
        Ok(p) => p,
        Err(why) => return Ok(Outcome::failed(why)),
    };
    let selector = format!("{label}={pool}");
    let nodes_api: Api<Node> = Api::all(client.clone());
    let nodes = nodes_api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    let all_pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let free = free_gpus(&nodes, &all_pods);
    let baseline: BTreeSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    let n = baseline.len();
    let count = free + 1;
    let limit = ctx.param::<u64>("maxPods")?.unwrap_or(32);
    if count > limit {
        return Ok(Outcome::failed(format!(
            "pool {selector} has {free} free GPUs on {n} nodes: {count} probe pods exceed params.maxPods ({limit}); use a pool with fewer idle GPUs"
        )));
    }
    let ns = case_namespace(&ctx)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut tolerations = ctx
        .param::<serde_json::Value>("tolerations")?
        .unwrap_or_else(gpu_tolerations);
    if let Some(list) = tolerations.as_array_mut() {
        list.push(json!({"key": label, "operator": "Exists"}));
    }
    let mut node_selector = serde_json::Map::new();
    node_selector.insert(label.clone(), json!(pool));
    let create_pods = async {
        for i in 0..count {
            create(
                &pods,
                json!({
                    "metadata": {"name": format!("gpu-{i}"), "labels": {APP_LABEL: "true"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "nodeSelector": node_selector,
                        "tolerations": tolerations,
                        "containers": [{"name": "gpu", "image": probe_image(&ctx)?,
                            "args": ["probe", "sleep", "1h"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}}}]
                    }
                }),
            )
            .await?;
        }
        anyhow::Ok(())
    };
    let deadline = deadline(&ctx);
    let obs = watch_scale_up(
        &client,
        &ns,
        &selector,
        baseline.clone(),
        count as usize,
        deadline,
        create_pods,
    )
    .await?;
    let autoscaler = if label == KARPENTER_POOL_LABEL {
        let controllers = project_controllers(&client, "karpenter").await;
        format!(
            " of Karpenter NodePool {pool} ({})",
            if controllers.is_empty() {
                "no Deployment running a karpenter image found".to_string()
            } else {
                controllers.join(", ")
            }
        )
    } else {
        String::new()
    };
    let what = format!(
        "pool {selector}{autoscaler} ({n} nodes, {free} free GPUs), {count} single-GPU pod{}",
        if count == 1 { "" } else { "s" }
    );
    if obs.pending.is_empty() {
        return Ok(Outcome::failed(format!(
            "{what}: no pod was ever Pending as unschedulable, so no scale-up was needed (running: {})",
            obs.running().len()
        )));
    }
    if !obs.grew() {
        let events = Api::<Event>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let unplaced: BTreeSet<String> = obs
            .pending
            .iter()
            .filter(|p| !obs.running().contains_key(p.as_str()))
            .cloned()
            .collect();
        let reasons = pending_reasons(&events, &unplaced);
        return Ok(Outcome::failed(format!(
            "{what}: {} pod(s) stayed Pending and the pool never grew beyond {n} nodes{}",
            obs.pending.len(),
            if reasons.is_empty() {
                " (no event on the pending pods says why)".to_string()
            } else {
                format!("; the pending pods' events: {}", reasons.join("; "))
            }
        )));
    }
    if !obs.done(count as usize) {
        return Ok(Outcome::failed(format!(
            "{what}: the pool grew to {} nodes but the pending pod was not bound to a new node and reported Running there ({} of {count} running)",
            obs.max_nodes,
            obs.running().len()
        )));
    }
    let rescued = obs.rescued();
    delete_all_and_wait(&pods, &format!("{APP_LABEL}=true"), Duration::from_secs(60)).await?;
    let after = watch_pool_size(&client, &selector, n, deadline).await?;
    if after > n {
        return Ok(Outcome::failed(format!(
            "{what}: one pod stayed Pending, the pool grew to {} nodes and it ran there ({}), but after the pods were deleted the pool still has {after} nodes (baseline {n}): it does not scale down",
            obs.max_nodes,
            rescued.join(", ")
        )));
    }
    Ok(Outcome::passed(format!(
        "{what}: one stayed Pending, the pool grew {n}→{} nodes, the scheduler bound it to the new node and the node reported it Running ({}); after deletion the pool shrank back to {after}",
        obs.max_nodes,
        rescued.join(", ")
    )))
}

/// The autoscaled GPU pool: `params.poolLabel` + `params.pool`, else the Karpenter NodePool
/// that limits `nvidia.com/gpu`.
async fn find_pool(
    ctx: &CaseContext,
    client: &Client,
) -> anyhow::Result<Result<(String, String), String>> {
    if let Some(pool) = ctx.param::<String>("pool")? {
        let label = ctx
            .param::<String>("poolLabel")?
            .unwrap_or_else(|| KARPENTER_POOL_LABEL.to_string());
        return Ok(Ok((label, pool)));
    }
    let served = served_resources(client, &["karpenter.sh"]).await?;
    if served.contains("nodepools.karpenter.sh") {
        let pools = dynamic_api(client, "karpenter.sh", "v1", "NodePool", "nodepools", None)
            .list(&ListParams::default())
            .await?
            .items;
        if let Some(p) = pools
            .iter()
            .find(|p| p.data.pointer("/spec/limits/nvidia.com~1gpu").is_some())
        {
            return Ok(Ok((KARPENTER_POOL_LABEL.to_string(), p.name_any())));
        }
    }
    Ok(Err(
        "no autoscaled GPU node pool found: no Karpenter NodePool limits nvidia.com/gpu, and params.pool / params.poolLabel (the node-group label of the autoscaled GPU pool) are not set; if the platform has no cluster autoscaler, declare this requirement not applicable"
            .to_string(),
    ))
}

/// Lists the probe pods' watch, creates them with `create_pods`, then follows pods and pool
/// nodes until every pod runs and one was rescued by a new node, or the deadline.
async fn watch_scale_up(
    client: &Client,
    ns: &str,
    pool_selector: &str,
    baseline: BTreeSet<String>,
    pods: usize,
    deadline: Instant,
    create_pods: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<ScaleUp> {
    let mut obs = ScaleUp::new(baseline);
    let mut pod_stream = std::pin::pin!(watcher(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(&format!("{APP_LABEL}=true"))
    ));
    // The pod watch is listed before the pods exist: a pod that an autoscaler rescues quickly
    // is still seen Pending, where a list taken after the creations could miss it.
    loop {
        match next_before(&mut pod_stream, deadline).await {
            Some(ev) => {
                if matches!(ev?, watcher::Event::InitDone) {
                    break;
                }
            }
            None => {
                anyhow::bail!("the pod watch in namespace {ns} did not start before the deadline")
            }
        }
    }
    create_pods.await?;
    let mut node_stream = std::pin::pin!(watcher(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().labels(pool_selector)
    ));
    loop {
        tokio::select! {
            ev = next_before(&mut pod_stream, deadline) => match ev {
                Some(ev) => if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev? {
                    let st = p.status.as_ref();
                    let unschedulable = st.and_then(|s| s.conditions.as_ref()).is_some_and(|cs| {
                        cs.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False"
                            && c.reason.as_deref() == Some("Unschedulable"))
                    });
                    let phase = st.and_then(|s| s.phase.clone()).unwrap_or_default();
                    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
                    obs.pod(&p.name_any(), &phase, node.as_deref(), unschedulable);
                },
                None => break,
            },
            ev = next_before(&mut node_stream, deadline) => match ev {
                Some(ev) => match ev? {
                    watcher::Event::Apply(n) | watcher::Event::InitApply(n) => obs.node(&n.name_any(), true, n.labels().get(INSTANCE_TYPE).map(String::as_str)),
                    watcher::Event::Delete(n) => obs.node(&n.name_any(), false, None),
                    _ => {}
                },
                None => break,
            },
        }
        if obs.done(pods) {
            break;
        }
    }
    Ok(obs)
}

/// Watch the pool until it has at most `target` nodes or the deadline; its final size.
async fn watch_pool_size(
    client: &Client,
    selector: &str,
    target: usize,
    deadline: Instant,
) -> anyhow::Result<usize> {
    let mut nodes = BTreeSet::new();
    let mut synced = false;
    let mut stream = std::pin::pin!(watcher(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().labels(selector)
    ));
    while let Some(ev) = next_before(&mut stream, deadline).await {
        match ev? {
            watcher::Event::Init => nodes.clear(),
            watcher::Event::InitApply(n) | watcher::Event::Apply(n) => {
                nodes.insert(n.name_any());
            }
            watcher::Event::Delete(n) => {
                nodes.remove(&n.name_any());
            }
            watcher::Event::InitDone => synced = true,
        }
        if synced && nodes.len() <= target {
            break;
        }
    }
    Ok(nodes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_gpus_subtract_running_requests() {
        let nodes: Vec<Node> = serde_json::from_value(json!([
            {"metadata": {"name": "b-0"}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}}
        ]))
        .expect("nodes");
        let pods: Vec<Pod> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "spec": {"nodeName": "b-0", "containers": [{"name": "c",
                "resources": {"limits": {"nvidia.com/gpu": "3"}}}]}, "status": {"phase": "Running"}},
            {"metadata": {"name": "done"}, "spec": {"nodeName": "b-0", "containers": [{"name": "c",
                "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}, "status": {"phase": "Succeeded"}},
            {"metadata": {"name": "elsewhere"}, "spec": {"nodeName": "gpu-0", "containers": [{"name": "c",
                "resources": {"limits": {"nvidia.com/gpu": "4"}}}]}, "status": {"phase": "Running"}}
        ]))
        .expect("pods");
        assert_eq!(free_gpus(&nodes, &pods), 5);
        assert_eq!(free_gpus(&[], &pods), 0);
    }

    #[test]
    fn scale_up_needs_a_pending_pod_rescued_by_a_new_node() {
        let mut o = ScaleUp::new(["b-0".to_string()].into());
        o.pod("gpu-0", "Running", Some("b-0"), false);
        o.pod("gpu-1", "Pending", None, true);
        assert!(!o.grew() && !o.done(2));
        o.node("b-1", true, Some("gpu-h100-1x"));
        assert!(o.grew());
        assert!(!o.done(2));
        o.pod("gpu-1", "Running", Some("b-1"), true);
        assert!(o.done(2));
        assert_eq!(o.rescued(), vec!["gpu-1→b-1 (gpu-h100-1x)"]);
        // The node going away keeps its instance type for the evidence.
        o.node("b-1", false, None);
        assert_eq!(o.max_nodes, 2);
        assert_eq!(o.rescued(), vec!["gpu-1→b-1 (gpu-h100-1x)"]);
        // A pod that was pending but then ran on a baseline node is not a rescue.
        let mut p = ScaleUp::new(["b-0".to_string()].into());
        p.pod("gpu-0", "Pending", None, true);
        p.pod("gpu-0", "Running", Some("b-0"), false);
        assert!(!p.done(1));
    }

    #[test]
    fn pending_reasons_take_each_components_newest_message_for_the_probe_pods() {
        let events: Vec<Event> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "involvedObject": {"kind": "Pod", "name": "gpu-0"},
             "source": {"component": "default-scheduler"}, "type": "Warning", "reason": "FailedScheduling",
             "lastTimestamp": "2026-01-01T00:00:01Z", "message": "0/4 nodes are available: old"},
            {"metadata": {"name": "b"}, "involvedObject": {"kind": "Pod", "name": "gpu-0"},
             "source": {"component": "default-scheduler"}, "type": "Warning", "reason": "FailedScheduling",
             "lastTimestamp": "2026-01-01T00:00:05Z", "message": "0/4 nodes are available: new"},
            {"metadata": {"name": "c"}, "involvedObject": {"kind": "Pod", "name": "gpu-0"},
             "source": {"component": "karpenter"}, "type": "Warning", "reason": "FailedScheduling",
             "lastTimestamp": "2026-01-01T00:00:03Z",
             "message": "Failed to schedule pod, all available instance types exceed limits for nodepool: \"gpu\""},
            {"metadata": {"name": "d"}, "involvedObject": {"kind": "Pod", "name": "other"},
             "source": {"component": "karpenter"}, "message": "not ours"},
            {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "gpu-0"},
             "source": {"component": "default-scheduler"}, "type": "Normal", "reason": "Scheduled",
             "lastTimestamp": "2026-01-01T00:00:09Z", "message": "Successfully assigned"}
        ]))
        .expect("events");
        let pods: BTreeSet<String> = ["gpu-0".to_string()].into();
        assert_eq!(
            pending_reasons(&events, &pods),
            vec![
                "default-scheduler: 0/4 nodes are available: new".to_string(),
                "karpenter: Failed to schedule pod, all available instance types exceed limits for nodepool: \"gpu\"".to_string(),
            ]
        );
        assert!(pending_reasons(&events, &BTreeSet::new()).is_empty());
    }
}
