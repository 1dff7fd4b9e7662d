//! CNCF AI conformance cases. Each proves a requirement on the live cluster (creating
//! objects in the case namespace where it must), or fails / skips naming what is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceClaim};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use super::health;
use super::k8s::{
    case_namespace, condition_true, conditions, crd_established, crd_problems, create,
    delete_all_and_wait, dynamic_api, gpu_allocatable, gpu_tolerations, next_before,
    pod_running_or_done, pod_state, wait_object,
};
use crate::runner::{CaseContext, Outcome};
use crate::snapshot::cluster::is_simulated;

/// Image for pods that only need to start (overridable with `params.image`).
pub const DEFAULT_GPU_IMAGE: &str = "nvcr.io/nvidia/cuda:12.8.0-base-ubuntu24.04";
pub const DEFAULT_DEVICE_CLASS: &str = "gpu.nvidia.com";
pub const POD_GROUP_LABEL: &str = "scheduling.x-k8s.io/pod-group";
pub const POD_GROUP_CRD: &str = "podgroups.scheduling.x-k8s.io";

macro_rules! case_fn {
    ($name:ident, $body:ident) => {
        pub fn $name(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
            Box::pin(async move {
                let client = match ctx.require_client() {
                    Ok(c) => c.clone(),
                    Err(skip) => return Ok(skip),
                };
                $body(ctx, client).await
            })
        }
    };
}

case_fn!(dra_support, dra_support_impl);
case_fn!(gang_scheduling, gang_scheduling_impl);
case_fn!(secure_accelerator_access, secure_access_impl);
case_fn!(accelerator_metrics, accelerator_metrics_impl);
case_fn!(ai_service_metrics, ai_service_metrics_impl);
case_fn!(pod_autoscaling, pod_autoscaling_impl);
case_fn!(cluster_autoscaling, cluster_autoscaling_impl);
case_fn!(inference_gateway, inference_gateway_impl);
case_fn!(robust_controller, robust_controller_impl);

fn image(ctx: &CaseContext) -> String {
    ctx.param::<String>("image")
        .unwrap_or_else(|| DEFAULT_GPU_IMAGE.to_string())
}

fn deadline(ctx: &CaseContext) -> Instant {
    super::k8s::case_deadline(ctx)
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

// ---------------------------------------------------------------------------------------
// dra-support

/// `driver/pool/device` of each allocated device of a claim.
pub fn claim_devices(claim: &ResourceClaim) -> Vec<String> {
    claim
        .status
        .as_ref()
        .and_then(|s| s.allocation.as_ref())
        .and_then(|a| a.devices.as_ref())
        .and_then(|d| d.results.as_ref())
        .map(|rs| {
            rs.iter()
                .map(|r| format!("{}/{}/{}", r.driver, r.pool, r.device))
                .collect()
        })
        .unwrap_or_default()
}

async fn dra_support_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let class = ctx
        .param::<String>("deviceClass")
        .unwrap_or_else(|| DEFAULT_DEVICE_CLASS.to_string());
    let classes: Api<DeviceClass> = Api::all(client.clone());
    match classes.get_opt(&class).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(Outcome::failed(
                "resource.k8s.io/v1 is not served: Dynamic Resource Allocation is not available (Kubernetes >= 1.34, or enable the DynamicResourceAllocation feature and API)",
            ));
        }
        Err(e) => return Err(e.into()),
        Ok(None) => {
            return Ok(Outcome::failed(format!(
                "DeviceClass {class} not found: no DRA driver publishes it (install nvidia-dra-driver-gpu or set params.deviceClass)"
            )));
        }
        Ok(Some(_)) => {}
    }
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create(
        &claims,
        json!({
            "metadata": {"name": "dra-gpu"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": class}}]}}
        }),
    )
    .await?;
    create(
        &pods,
        json!({
            "metadata": {"name": "dra-gpu", "labels": {"app.kubernetes.io/name": "aiconform-dra-support"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "gpu", "image": image(&ctx),
                    "command": ["sh", "-c", "nvidia-smi -L && sleep 300"],
                    "resources": {"claims": [{"name": "gpu"}]}}],
                "resourceClaims": [{"name": "gpu", "resourceClaimName": "dra-gpu"}],
                "tolerations": gpu_tolerations()
            }
        }),
    )
    .await?;
    let waited = wait_object(
        pods.clone(),
        &format!("pod {ns}/dra-gpu"),
        "dra-gpu",
        deadline,
        pod_running_or_done,
    )
    .await?;
    let claim = claims.get("dra-gpu").await?;
    let devices = claim_devices(&claim);
    match waited {
        Err(reason) => Ok(Outcome::failed(format!(
            "{reason} after {}s; ResourceClaim {ns}/dra-gpu {}",
            secs(ctx.spec.timeout),
            if devices.is_empty() {
                "is not allocated".to_string()
            } else {
                format!("is allocated ({})", devices.join(", "))
            }
        ))),
        Ok(_) if devices.is_empty() => Ok(Outcome::failed(format!(
            "pod {ns}/dra-gpu runs but ResourceClaim dra-gpu shows no allocation"
        ))),
        Ok((pod, state)) => Ok(Outcome::passed(format!(
            "DeviceClass {class} present; ResourceClaim dra-gpu allocated {} and its pod is {state} on node {}",
            devices.join(", "),
            pod.spec.and_then(|s| s.node_name).unwrap_or_default()
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// gang-scheduling

/// Size of a gang that cannot fit: members × GPUs each exceeds the cluster's allocatable GPUs,
/// each member asking for as many GPUs as the largest node has. `None` without GPUs.
pub fn unsatisfiable_gang(alloc: &[(String, u64)]) -> Option<(u64, u64)> {
    let per_pod = alloc.iter().map(|(_, n)| *n).max()?;
    let total: u64 = alloc.iter().map(|(_, n)| *n).sum();
    Some((total / per_pod + 1, per_pod))
}

fn gang_pod(ctx: &CaseContext, group: &str, i: u64, gpus: u64) -> serde_json::Value {
    let mut spec = json!({
        "restartPolicy": "Never",
        "containers": [{"name": "worker", "image": image(ctx),
            "command": ["sh", "-c", "nvidia-smi -L && sleep 300"],
            "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}],
        "tolerations": gpu_tolerations()
    });
    if let Some(s) = ctx.param::<String>("schedulerName") {
        spec["schedulerName"] = json!(s);
    }
    json!({
        "metadata": {"name": format!("{group}-{i}"), "labels": {POD_GROUP_LABEL: group,
            "app.kubernetes.io/name": "aiconform-gang"}},
        "spec": spec
    })
}

async fn create_gang(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    group: &str,
    members: u64,
    gpus: u64,
) -> anyhow::Result<()> {
    let pgs = dynamic_api(
        client,
        "scheduling.x-k8s.io",
        "v1alpha1",
        "PodGroup",
        "podgroups",
        Some(ns),
    );
    let pg: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
        "metadata": {"name": group},
        "spec": {"minMember": members, "scheduleTimeoutSeconds": 10}
    }))?;
    pgs.create(&kube::api::PostParams::default(), &pg).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    for i in 0..members {
        create(&pods, gang_pod(ctx, group, i, gpus)).await?;
    }
    Ok(())
}

/// What a settle-period watch of an unsatisfiable gang saw.
#[derive(Debug, Default)]
pub struct GangObservation {
    /// Members bound to a node: name → node.
    pub bound: BTreeMap<String, String>,
    /// Members the scheduler reported unschedulable at least once.
    pub evaluated: BTreeSet<String>,
}

fn observe(obs: &mut GangObservation, pod: &Pod) {
    let name = pod.name_any();
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        obs.bound.insert(name.clone(), node);
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
        obs.evaluated.insert(name);
    }
}

async fn gang_scheduling_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    if let Err(reason) = crd_established(&client, POD_GROUP_CRD).await? {
        return Ok(Outcome::failed(format!(
            "{reason}: no gang scheduler (scheduler-plugins coscheduling) is installed"
        )));
    }
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let alloc = gpu_allocatable(&nodes);
    let Some((members, per_pod)) = unsatisfiable_gang(&alloc) else {
        return Ok(Outcome::skipped(
            "no node advertises allocatable nvidia.com/gpu (device plugin): cannot build GPU gangs",
        ));
    };
    let total: u64 = alloc.iter().map(|(_, n)| n).sum();
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let settle = Duration::from_secs(ctx.param::<u64>("settleSeconds").unwrap_or(20))
        .min(ctx.spec.timeout / 2);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // 1. A gang that cannot fit must stay entirely unbound.
    let big = "gang-unsatisfiable";
    create_gang(&ctx, &client, &ns, big, members, per_pod).await?;
    let selector = format!("{POD_GROUP_LABEL}={big}");
    let mut obs = GangObservation::default();
    {
        let settle_end = Instant::now() + settle;
        let mut stream = std::pin::pin!(watcher(
            pods.clone(),
            watcher::Config::default().labels(&selector)
        ));
        while let Some(ev) = next_before(&mut stream, settle_end).await {
            match ev? {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => observe(&mut obs, &p),
                _ => {}
            }
            if obs.bound.len() as u64 == members {
                break;
            }
        }
    }
    let gang_desc = format!(
        "{members} members × {per_pod} GPUs = {} GPUs > {total} allocatable",
        members * per_pod
    );
    if !obs.bound.is_empty() {
        let list: Vec<String> = obs.bound.iter().map(|(p, n)| format!("{p}→{n}")).collect();
        return Ok(Outcome::failed(format!(
            "partial placement: an unsatisfiable gang ({gang_desc}) had {} of {members} members bound ({}): the scheduler does not enforce all-or-nothing placement (coscheduling plugin not enabled?)",
            obs.bound.len(),
            list.join(", ")
        )));
    }
    if obs.evaluated.is_empty() {
        return Ok(Outcome::failed(format!(
            "no member of the unsatisfiable gang ({gang_desc}) was reported unschedulable within {}s: the scheduler did not evaluate them, so all-or-nothing placement is not shown",
            settle.as_secs()
        )));
    }
    delete_all_and_wait(&pods, &selector, Duration::from_secs(60)).await?;

    // 2. A gang that fits must start as a whole.
    let small = "gang-satisfiable";
    create_gang(&ctx, &client, &ns, small, 2, 1).await?;
    let mut failures = Vec::new();
    let mut placed = Vec::new();
    for i in 0..2 {
        let name = format!("{small}-{i}");
        match wait_object(
            pods.clone(),
            &format!("pod {ns}/{name}"),
            &name,
            deadline,
            pod_running_or_done,
        )
        .await?
        {
            Ok((p, _)) => placed.push(format!(
                "{name}→{}",
                p.spec.and_then(|s| s.node_name).unwrap_or_default()
            )),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Ok(Outcome::failed(format!(
            "unsatisfiable gang stayed fully pending, but the satisfiable 2-member gang did not run: {}",
            failures.join("; ")
        )));
    }
    Ok(Outcome::passed(format!(
        "unsatisfiable gang ({gang_desc}) stayed entirely unbound for {}s ({} members reported unschedulable); 2-member gang ran together ({})",
        settle.as_secs(),
        obs.evaluated.len(),
        placed.join(", ")
    )))
}

// ---------------------------------------------------------------------------------------
// secure-accelerator-access

fn requests_gpu(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty())
        || spec.containers.iter().any(|c| {
            c.resources.as_ref().is_some_and(|r| {
                r.limits
                    .as_ref()
                    .is_some_and(|l| l.keys().any(|k| k.starts_with("nvidia.com/")))
                    || r.requests
                        .as_ref()
                        .is_some_and(|l| l.keys().any(|k| k.starts_with("nvidia.com/")))
            })
        })
}

/// Host device paths a pod mounts: `/dev` itself or `/dev/nvidia*`.
fn device_host_paths(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.host_path.as_ref().map(|h| h.path.trim_end_matches('/')))
                .filter(|p| *p == "/dev" || p.starts_with("/dev/nvidia"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn privileged_containers(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .filter(|c| {
                    c.security_context
                        .as_ref()
                        .and_then(|sc| sc.privileged)
                        .unwrap_or(false)
                })
                .map(|c| c.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Pods outside `exempt` namespaces that reach GPUs with host privileges: a GPU pod that is
/// privileged, uses hostPID or mounts host devices, or any pod mounting `/dev/nvidia*`.
pub fn gpu_access_violations(pods: &[Pod], exempt: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for p in pods {
        let ns = p.namespace().unwrap_or_default();
        if exempt.contains(&ns) {
            continue;
        }
        let gpu = requests_gpu(p);
        let dev = device_host_paths(p);
        let privileged = privileged_containers(p);
        let host_pid = p.spec.as_ref().and_then(|s| s.host_pid).unwrap_or(false);
        let mut why = Vec::new();
        if !dev.is_empty() && (gpu || dev.iter().any(|d| d.starts_with("/dev/nvidia"))) {
            why.push(format!("hostPath {}", dev.join(", ")));
        }
        if gpu && !privileged.is_empty() {
            why.push(format!("privileged container(s) {}", privileged.join(", ")));
        }
        if gpu && host_pid {
            why.push("hostPID".to_string());
        }
        if !why.is_empty() {
            out.push(format!("{ns}/{} ({})", p.name_any(), why.join("; ")));
        }
    }
    out.sort();
    out
}

async fn secure_access_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let simulated: BTreeSet<String> = nodes
        .iter()
        .filter(|n| is_simulated(n))
        .map(|n| n.name_any())
        .collect();
    let alloc = gpu_allocatable(&nodes);
    let class = ctx
        .param::<String>("deviceClass")
        .unwrap_or_else(|| DEFAULT_DEVICE_CLASS.to_string());
    let has_class = Api::<DeviceClass>::all(client.clone())
        .get_opt(&class)
        .await
        .ok()
        .flatten()
        .is_some();
    let ns = case_namespace(&ctx)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let (mechanism, resources, claims) = if !alloc.is_empty() {
        (
            "device plugin (nvidia.com/gpu)",
            json!({"limits": {"nvidia.com/gpu": "1"}}),
            None,
        )
    } else if has_class {
        let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), &ns);
        create(
            &claims,
            json!({"metadata": {"name": "secure-gpu"},
                "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": class}}]}}}),
        )
        .await?;
        (
            "DRA (DeviceClass)",
            json!({"claims": [{"name": "gpu"}]}),
            Some(json!([{"name": "gpu", "resourceClaimName": "secure-gpu"}])),
        )
    } else {
        return Ok(Outcome::failed(format!(
            "no GPU is offered to pods: no node advertises nvidia.com/gpu and DeviceClass {class} does not exist"
        )));
    };
    let mut spec = json!({
        "restartPolicy": "Never",
        "hostPID": false,
        "containers": [{"name": "gpu", "image": image(&ctx), "command": ["nvidia-smi", "-L"],
            "resources": resources,
            "securityContext": {"privileged": false, "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"]}}}],
        "tolerations": gpu_tolerations()
    });
    if let Some(c) = claims {
        spec["resourceClaims"] = c;
    }
    let created: Pod = create(
        &pods,
        json!({"metadata": {"name": "secure-gpu"}, "spec": spec}),
    )
    .await?;
    // Admission may have mutated the pod: judge what the cluster stored.
    let own = gpu_access_violations(std::slice::from_ref(&created), &BTreeSet::new());
    if !own.is_empty() || !privileged_containers(&created).is_empty() {
        return Ok(Outcome::failed(format!(
            "admission changed the unprivileged GPU pod into a privileged one: {}",
            own.join(", ")
        )));
    }
    let sim = simulated.clone();
    let cond = move |p: Option<&Pod>| {
        p.and_then(|p| {
            let phase = p.status.as_ref()?.phase.clone()?;
            let node = p.spec.as_ref()?.node_name.clone().unwrap_or_default();
            Some(
                phase == "Succeeded"
                    || phase == "Failed"
                    || (phase == "Running" && sim.contains(&node)),
            )
        })
        .unwrap_or(false)
    };
    let waited = tokio::time::timeout_at(
        deadline(&ctx),
        await_condition(pods.clone(), "secure-gpu", cond),
    )
    .await;
    let pod = match waited {
        Ok(r) => r?,
        Err(_) => pods.get_opt("secure-gpu").await?,
    };
    let Some(pod) = pod else {
        anyhow::bail!("pod {ns}/secure-gpu disappeared");
    };
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    let access = match phase.as_str() {
        "Succeeded" => format!(
            "an unprivileged pod got a GPU via the {mechanism} on {node} and `nvidia-smi -L` succeeded"
        ),
        "Running" if simulated.contains(&node) => format!(
            "an unprivileged pod got a GPU via the {mechanism} and runs on {node} (simulated node: GPU visibility inside the container is not observable)"
        ),
        _ => {
            return Ok(Outcome::failed(format!(
                "an unprivileged pod requesting a GPU via the {mechanism} did not complete within {}s: {}",
                secs(ctx.spec.timeout),
                pod_state(&pod)
            )));
        }
    };
    let mut exempt: BTreeSet<String> = ctx
        .recipe
        .components
        .iter()
        .map(|c| c.namespace.clone())
        .collect();
    exempt.extend(
        ctx.param::<Vec<String>>("exemptNamespaces")
            .unwrap_or_default(),
    );
    let all = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let violations = gpu_access_violations(&all, &exempt);
    if !violations.is_empty() {
        return Ok(Outcome::failed(format!(
            "{access}; but {} workload pod(s) outside the operator namespaces ({}) reach GPUs with host privileges: {}",
            violations.len(),
            exempt.into_iter().collect::<Vec<_>>().join(", "),
            violations.join(", ")
        )));
    }
    Ok(Outcome::passed(format!(
        "{access}; no pod outside the operator namespaces mounts /dev/nvidia* or runs GPUs privileged ({} pods scanned)",
        all.len()
    )))
}

// ---------------------------------------------------------------------------------------
// accelerator-metrics

/// Ready endpoint addresses over a Service's EndpointSlices.
pub fn ready_endpoints(slices: &[EndpointSlice]) -> usize {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .map(|e| e.addresses.len())
        .sum()
}

async fn service_endpoints(client: &Client, ns: &str, svc: &str) -> anyhow::Result<usize> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await?;
    Ok(ready_endpoints(&list.items))
}

/// Metric families named `DCGM_FI_*` in a Prometheus text exposition.
pub fn dcgm_metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let name = l.split(['{', ' ']).next()?;
            name.starts_with("DCGM_FI_").then(|| name.to_string())
        })
        .collect()
}

async fn accelerator_metrics_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let ns = ctx.param::<String>("namespace").unwrap_or_else(|| {
        ctx.recipe
            .component("gpu-operator")
            .map(|c| c.namespace.clone())
            .unwrap_or_else(|| "gpu-operator".to_string())
    });
    let name = ctx
        .param::<String>("exporter")
        .unwrap_or_else(|| "nvidia-dcgm-exporter".to_string());
    let ds = Api::<DaemonSet>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let svc = Api::<Service>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let (ds, svc) = match (ds, svc) {
        (None, None) => {
            return Ok(Outcome::failed(format!(
                "no DCGM exporter: neither DaemonSet nor Service {ns}/{name} exists (GPU Operator dcgmExporter disabled or not installed)"
            )));
        }
        (_, None) => {
            return Ok(Outcome::failed(format!(
                "DaemonSet {ns}/{name} exists but no Service {ns}/{name} exposes its metrics endpoint"
            )));
        }
        (ds, Some(svc)) => (ds, svc),
    };
    if ds.is_some()
        && let Err(e) = wait_object(
            Api::<DaemonSet>::namespaced(client.clone(), &ns),
            &format!("DaemonSet {ns}/{name}"),
            &name,
            deadline(&ctx),
            health::daemonset,
        )
        .await?
    {
        return Ok(Outcome::failed(format!("DCGM exporter not ready: {e}")));
    }
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let simulated: Vec<String> = super::k8s::gpu_nodes(&nodes)
        .into_iter()
        .filter(|n| is_simulated(n))
        .map(|n| n.name_any())
        .collect();
    let endpoints = service_endpoints(&client, &ns, &name).await?;
    if endpoints == 0 {
        if !simulated.is_empty() {
            return Ok(Outcome::skipped(format!(
                "DCGM exporter {ns}/{name} is deployed but cannot be scraped: simulated GPU nodes ({}) have no reachable pod network, so the Service has no ready endpoints",
                simulated.join(", ")
            )));
        }
        return Ok(Outcome::failed(format!(
            "Service {ns}/{name} has no ready endpoints: the exporter pods are not serving"
        )));
    }
    let port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.name.clone().unwrap_or_else(|| p.port.to_string()))
        .unwrap_or_else(|| "9400".to_string());
    let path = format!("/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/metrics");
    let request = axum::http::Request::get(&path).body(Vec::new())?;
    let scrape = tokio::time::timeout_at(deadline(&ctx), client.request_text(request)).await;
    match scrape {
        Ok(Ok(text)) => {
            let names = dcgm_metric_names(&text);
            if names.is_empty() {
                Ok(Outcome::failed(format!(
                    "{ns}/{name} answered on {path} but exposes no DCGM_FI_* metrics"
                )))
            } else {
                Ok(Outcome::passed(format!(
                    "DCGM exporter {ns}/{name}: {endpoints} ready endpoint(s), {} DCGM metric families (e.g. {})",
                    names.len(),
                    names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        }
        Ok(Err(e)) => Ok(Outcome::skipped(format!(
            "DCGM exporter {ns}/{name} has {endpoints} ready endpoint(s) but cannot be scraped through the API server proxy ({path}): {e}"
        ))),
        Err(_) => Ok(Outcome::skipped(format!(
            "DCGM exporter {ns}/{name} has {endpoints} ready endpoint(s) but scraping {path} timed out"
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// ai-service-metrics

async fn ai_service_metrics_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let _ = &ctx;
    let missing = crd_problems(
        &client,
        &[
            "prometheuses.monitoring.coreos.com",
            "servicemonitors.monitoring.coreos.com",
        ],
    )
    .await?;
    if !missing.is_empty() {
        return Ok(Outcome::failed(format!(
            "no Prometheus operator for service metrics: {}",
            missing.join("; ")
        )));
    }
    let proms = dynamic_api(
        &client,
        "monitoring.coreos.com",
        "v1",
        "Prometheus",
        "prometheuses",
        None,
    )
    .list(&ListParams::default())
    .await?
    .items;
    if proms.is_empty() {
        return Ok(Outcome::failed(
            "Prometheus operator CRDs are installed but there is no Prometheus instance",
        ));
    }
    let mut ready = Vec::new();
    let mut unready = Vec::new();
    for p in &proms {
        let id = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
        let available = p
            .data
            .pointer("/status/availableReplicas")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        if condition_true(p, "Available") || available > 0 {
            ready.push(id);
        } else {
            let conds: Vec<String> = conditions(p)
                .into_iter()
                .map(|(t, s, r, _)| format!("{t}={s} {r}"))
                .collect();
            unready.push(format!("{id} ({})", conds.join(", ")));
        }
    }
    if ready.is_empty() {
        return Ok(Outcome::failed(format!(
            "no Prometheus instance is available: {}",
            unready.join("; ")
        )));
    }
    Ok(Outcome::passed(format!(
        "ServiceMonitor CRD established; Prometheus available: {}",
        ready.join(", ")
    )))
}

// ---------------------------------------------------------------------------------------
// pod-autoscaling

fn api_service_state(a: &APIService) -> Result<(), String> {
    let cond = a
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Available"));
    match cond {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(format!(
            "Available={} ({}: {})",
            c.status,
            c.reason.as_deref().unwrap_or("-"),
            c.message.as_deref().unwrap_or("")
        )),
        None => Err("no Available condition".to_string()),
    }
}

async fn pod_autoscaling_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let apis: Api<APIService> = Api::all(client.clone());
    let mut available = Vec::new();
    let mut problems = Vec::new();
    for name in [
        "v1beta1.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
    ] {
        match apis.get_opt(name).await? {
            None => problems.push(format!("APIService {name} is not registered")),
            Some(a) => match api_service_state(&a) {
                Ok(()) => available.push(name),
                Err(e) => problems.push(format!("APIService {name}: {e}")),
            },
        }
    }
    if available.is_empty() {
        return Ok(Outcome::failed(format!(
            "no custom or external metrics API for the HPA (install prometheus-adapter or KEDA): {}",
            problems.join("; ")
        )));
    }
    let ns = case_namespace(&ctx)?;
    let metric = ctx
        .param::<String>("metricName")
        .unwrap_or_else(|| "DCGM_FI_DEV_GPU_UTIL".to_string());
    let metric_spec = if available.contains(&"v1beta1.custom.metrics.k8s.io") {
        json!({"type": "Pods", "pods": {"metric": {"name": metric},
            "target": {"type": "AverageValue", "averageValue": "50"}}})
    } else {
        json!({"type": "External", "external": {"metric": {"name": metric},
            "target": {"type": "AverageValue", "averageValue": "50"}}})
    };
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let created = create(
        &hpas,
        json!({
            "metadata": {"name": "gpu-util"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference"},
                "minReplicas": 1, "maxReplicas": 4,
                "metrics": [metric_spec]
            }
        }),
    )
    .await;
    match created {
        Ok(_) => Ok(Outcome::passed(format!(
            "{} Available; an autoscaling/v2 HPA on custom metric {metric} was accepted",
            available.join(" and ")
        ))),
        Err(e) => Ok(Outcome::failed(format!(
            "{} Available, but an HPA on custom metric {metric} was rejected: {e}",
            available.join(" and ")
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// cluster-autoscaling

async fn cluster_autoscaling_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let _ = &ctx;
    let deployments = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let mut evidence = Vec::new();
    let mut problems = Vec::new();
    for d in &deployments {
        let name = d.name_any();
        let app = d
            .labels()
            .get("app.kubernetes.io/name")
            .cloned()
            .unwrap_or_default();
        let is_autoscaler = name.contains("cluster-autoscaler")
            || name == "karpenter"
            || app == "cluster-autoscaler"
            || app == "karpenter";
        if !is_autoscaler {
            continue;
        }
        let id = format!("Deployment {}/{name}", d.namespace().unwrap_or_default());
        match health::deployment(d) {
            Ok(m) => evidence.push(format!("{id} ({m})")),
            Err(e) => problems.push(format!("{id}: {e}")),
        }
    }
    if crd_established(&client, "nodepools.karpenter.sh")
        .await?
        .is_ok()
    {
        let pools = dynamic_api(&client, "karpenter.sh", "v1", "NodePool", "nodepools", None)
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        if pools > 0 {
            evidence.push(format!("Karpenter NodePools: {pools}"));
        } else {
            problems.push("Karpenter NodePool CRD present but no NodePool defined".to_string());
        }
    }
    // Managed autoscalers (GKE, AKS) run outside the cluster but publish their status here.
    if let Some(cm) = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .get_opt("cluster-autoscaler-status")
        .await?
    {
        evidence.push(format!(
            "managed autoscaler status ConfigMap kube-system/{}",
            cm.name_any()
        ));
    }
    if !problems.is_empty() {
        return Ok(Outcome::failed(format!(
            "cluster autoscaler present but not healthy: {}",
            problems.join("; ")
        )));
    }
    if evidence.is_empty() {
        return Ok(Outcome::failed(
            "no cluster autoscaler: no cluster-autoscaler or Karpenter Deployment, no Karpenter NodePool CRD, and no kube-system/cluster-autoscaler-status ConfigMap of a managed autoscaler",
        ));
    }
    Ok(Outcome::passed(format!(
        "cluster autoscaling: {}",
        evidence.join("; ")
    )))
}

// ---------------------------------------------------------------------------------------
// inference-gateway

async fn inference_gateway_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let missing = crd_problems(
        &client,
        &[
            "gatewayclasses.gateway.networking.k8s.io",
            "gateways.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
        ],
    )
    .await?;
    if !missing.is_empty() {
        return Ok(Outcome::failed(format!(
            "Gateway API is not installed: {}",
            missing.join("; ")
        )));
    }
    let classes = dynamic_api(
        &client,
        "gateway.networking.k8s.io",
        "v1",
        "GatewayClass",
        "gatewayclasses",
        None,
    )
    .list(&ListParams::default())
    .await?
    .items;
    let wanted = ctx.param::<String>("gatewayClass");
    let accepted: Vec<String> = classes
        .iter()
        .filter(|c| condition_true(c, "Accepted"))
        .map(|c| c.name_any())
        .filter(|n| wanted.as_ref().is_none_or(|w| w == n))
        .collect();
    let Some(class) = accepted.first().cloned() else {
        let all: Vec<String> = classes
            .iter()
            .map(|c| {
                let conds: Vec<String> = conditions(c)
                    .into_iter()
                    .map(|(t, s, r, _)| format!("{t}={s} {r}"))
                    .collect();
                format!("{} ({})", c.name_any(), conds.join(", "))
            })
            .collect();
        return Ok(Outcome::failed(format!(
            "no accepted GatewayClass{}: {}",
            wanted.map(|w| format!(" named {w}")).unwrap_or_default(),
            if all.is_empty() {
                "none defined (no Gateway controller installed)".to_string()
            } else {
                all.join("; ")
            }
        )));
    };
    let ns = case_namespace(&ctx)?;
    let gws = dynamic_api(
        &client,
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
        "gateways",
        Some(&ns),
    );
    let gw: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "inference"},
        "spec": {"gatewayClassName": class,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}
    }))?;
    gws.create(&kube::api::PostParams::default(), &gw).await?;
    let cond =
        |g: Option<&kube::core::DynamicObject>| g.is_some_and(|g| condition_true(g, "Accepted"));
    let waited = tokio::time::timeout_at(
        deadline(&ctx),
        await_condition(gws.clone(), "inference", cond),
    )
    .await;
    if let Ok(r) = waited
        && r?.is_some()
    {
        return Ok(Outcome::passed(format!(
            "Gateway API installed; GatewayClass {class} accepted; Gateway {ns}/inference Accepted"
        )));
    }
    let state = gws
        .get_opt("inference")
        .await?
        .map(|g| {
            conditions(&g)
                .into_iter()
                .map(|(t, s, r, m)| format!("{t}={s} {r} {m}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "gone".to_string());
    Ok(Outcome::failed(format!(
        "Gateway {ns}/inference (class {class}) not Accepted within {}s: {}",
        secs(ctx.spec.timeout),
        if state.is_empty() {
            "no status conditions"
        } else {
            &state
        }
    )))
}

// ---------------------------------------------------------------------------------------
// robust-controller

async fn robust_controller_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let crds: Vec<String> = ctx
        .recipe
        .components
        .iter()
        .flat_map(|c| c.health_checks.iter())
        .filter(|h| h.kind == "CustomResourceDefinition")
        .map(|h| h.name.clone())
        .collect();
    if crds.is_empty() {
        return Ok(Outcome::skipped(format!(
            "recipe {} declares no operator CRDs (healthChecks of kind CustomResourceDefinition)",
            ctx.recipe.metadata.name
        )));
    }
    let mut problems = crd_problems(&client, &crds).await?;
    let namespaces: BTreeSet<String> = ctx
        .recipe
        .components
        .iter()
        .map(|c| c.namespace.clone())
        .collect();
    // (configuration, webhook) → service namespace/name
    let mut services: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for cfg in &validating {
        for w in cfg.webhooks.iter().flatten() {
            if let Some(s) = &w.client_config.service
                && namespaces.contains(&s.namespace)
            {
                services
                    .entry((s.namespace.clone(), s.name.clone()))
                    .or_default()
                    .push(format!("validating {}/{}", cfg.name_any(), w.name));
            }
        }
    }
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    for cfg in &mutating {
        for w in cfg.webhooks.iter().flatten() {
            if let Some(s) = &w.client_config.service
                && namespaces.contains(&s.namespace)
            {
                services
                    .entry((s.namespace.clone(), s.name.clone()))
                    .or_default()
                    .push(format!("mutating {}/{}", cfg.name_any(), w.name));
            }
        }
    }
    for ((ns, name), hooks) in &services {
        if service_endpoints(&client, ns, name).await? == 0 {
            problems.push(format!(
                "webhook Service {ns}/{name} has no ready endpoints (used by {})",
                hooks.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return Ok(Outcome::failed(problems.join("; ")));
    }
    Ok(Outcome::passed(format!(
        "{} operator CRDs established; {} admission webhook Service(s) of recipe components have ready endpoints",
        crds.len(),
        services.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn unsatisfiable_gang_exceeds_allocatable() {
        let alloc = vec![("a".to_string(), 8), ("b".to_string(), 8)];
        assert_eq!(unsatisfiable_gang(&alloc), Some((3, 8)));
        let mixed = vec![("a".to_string(), 8), ("b".to_string(), 4)];
        let (m, g) = unsatisfiable_gang(&mixed).expect("gang");
        assert!(m * g > 12);
        assert_eq!(unsatisfiable_gang(&[]), None);
    }

    #[test]
    fn gpu_access_violations_find_privileged_and_device_mounts() {
        let gpu_priv = pod(
            json!({"metadata": {"name": "trainer", "namespace": "team-a"},
            "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true},
                "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}),
        );
        let dev_mount = pod(
            json!({"metadata": {"name": "sneaky", "namespace": "team-b"},
            "spec": {"containers": [{"name": "c"}],
                "volumes": [{"name": "d", "hostPath": {"path": "/dev/nvidia0"}}]}}),
        );
        let operator = pod(
            json!({"metadata": {"name": "driver", "namespace": "gpu-operator"},
            "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}],
                "volumes": [{"name": "d", "hostPath": {"path": "/dev"}}]}}),
        );
        let cni = pod(
            json!({"metadata": {"name": "cni", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "c", "securityContext": {"privileged": true}}],
                "volumes": [{"name": "d", "hostPath": {"path": "/dev/"}}]}}),
        );
        let clean = pod(json!({"metadata": {"name": "ok", "namespace": "team-a"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}));
        let exempt: BTreeSet<String> = ["gpu-operator".to_string()].into();
        let v = gpu_access_violations(&[gpu_priv, dev_mount, operator, cni, clean], &exempt);
        assert_eq!(
            v,
            vec![
                "team-a/trainer (privileged container(s) c)".to_string(),
                "team-b/sneaky (hostPath /dev/nvidia0)".to_string()
            ]
        );
    }

    #[test]
    fn endpoints_and_dcgm_metrics() {
        let slices: Vec<EndpointSlice> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "addressType": "IPv4", "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}}]},
            {"metadata": {"name": "b"}, "addressType": "IPv4"}
        ]))
        .expect("slices");
        assert_eq!(ready_endpoints(&slices), 1);
        let text = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization.\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 12\nDCGM_FI_DEV_FB_USED{gpu=\"0\"} 100\ngo_goroutines 12\n";
        let names = dcgm_metric_names(text);
        assert_eq!(names.len(), 2);
        assert!(names.contains("DCGM_FI_DEV_GPU_UTIL"));
        assert!(dcgm_metric_names("go_goroutines 1\n").is_empty());
    }

    #[test]
    fn api_service_availability() {
        let a: APIService = serde_json::from_value(json!({"metadata": {"name": "v1beta1.custom.metrics.k8s.io"},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints",
                "message": "endpoints for service/prometheus-adapter have no addresses"}]}}))
        .expect("apiservice");
        assert!(
            api_service_state(&a)
                .expect_err("down")
                .contains("MissingEndpoints")
        );
    }
}
