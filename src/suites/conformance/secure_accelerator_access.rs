//! secure_accelerator_access (KAR-0049): accelerators are reachable only through DRA or the
//! device plugin. The three subtests of the upstream `TestSecureAcceleratorAccess`, each judged
//! from inside the containers by `aiconform probe devices` (exit code and termination message):
//! positive access (a container with a claim sees exactly its allocated device), negative
//! isolation (a pod without a claim on the same GPU node sees no GPU device) and multi-container
//! isolation (a sibling container without the claim sees none). Workload pods outside the
//! operator namespaces must not reach GPUs through host privileges either.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use k8s_openapi::api::resource::v1::{
    DeviceClass, ResourceClaim, ResourceClaimTemplate, ResourceSlice,
};
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, create, gpu_allocatable, gpu_tolerations, pod_state};
use super::*;
use crate::probe::DeviceView;
use crate::runner::{CaseContext, Outcome};

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

/// How the case gives a container its GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Dra,
    DevicePlugin,
}

impl Mechanism {
    fn describe(self) -> &'static str {
        match self {
            Mechanism::Dra => "a DRA claim",
            Mechanism::DevicePlugin => "the device plugin (nvidia.com/gpu)",
        }
    }

    /// `resources` of a container that gets one GPU.
    fn resources(self) -> serde_json::Value {
        match self {
            Mechanism::Dra => json!({"claims": [{"name": "gpu"}]}),
            Mechanism::DevicePlugin => json!({"limits": {"nvidia.com/gpu": "1"}}),
        }
    }
}

/// What a container must see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// No GPU device at all.
    Nothing,
    /// Exactly these device files (the allocated devices are known by their minor numbers).
    Exactly(Vec<String>),
    /// This many GPU devices (the mechanism does not say which).
    Count(usize),
}

/// What a probe container reported: its exit code and device view, or why there is none
/// (still waiting, running, or exited without a report).
pub fn probe_report(status: Option<&ContainerStatus>) -> Result<(i32, DeviceView), String> {
    container_report(status, "device report")
}

/// A probe's JSON report (`what`, for messages) from its termination message, with its exit
/// code, or why there is none: still waiting, running, or exited without one.
pub(super) fn container_report<T: serde::de::DeserializeOwned>(
    status: Option<&ContainerStatus>,
    what: &str,
) -> Result<(i32, T), String> {
    let Some(state) = status.and_then(|s| s.state.as_ref()) else {
        return Err("has no container status".to_string());
    };
    if let Some(t) = &state.terminated {
        let msg = t.message.as_deref().unwrap_or("").trim();
        return match serde_json::from_str::<T>(msg) {
            Ok(view) => Ok((t.exit_code, view)),
            Err(_) => Err(format!(
                "exited {} ({}) without a {what}{}",
                t.exit_code,
                t.reason.as_deref().unwrap_or("-"),
                if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                }
            )),
        };
    }
    if let Some(w) = &state.waiting {
        return Err(format!(
            "is waiting ({}{})",
            w.reason.as_deref().unwrap_or("-"),
            w.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    Err("is still running".to_string())
}

/// What a view shows, for messages: `sees /dev/nvidia3 (NVIDIA_VISIBLE_DEVICES=GPU-…)`.
fn describe_view(view: &DeviceView) -> String {
    let env = view
        .visible_devices
        .as_deref()
        .filter(|v| !v.is_empty())
        .map(|v| format!(" (NVIDIA_VISIBLE_DEVICES={v})"))
        .unwrap_or_default();
    if view.devices.is_empty() {
        format!("sees no GPU device{env}")
    } else {
        format!("sees {}{env}", view.devices.join(", "))
    }
}

/// A container's verdict from its probe: Ok(what it saw) when that is what it must see,
/// Err(what it saw instead) otherwise.
pub fn judge_view(
    exit_code: i32,
    view: &DeviceView,
    expected: &Expected,
) -> Result<String, String> {
    let seen = describe_view(view);
    let ok = exit_code == 0
        && match expected {
            Expected::Nothing => view.devices.is_empty(),
            Expected::Exactly(files) => &view.devices == files,
            Expected::Count(n) => view.devices.len() == *n,
        };
    if ok {
        return Ok(seen);
    }
    let want = match expected {
        Expected::Nothing => "none".to_string(),
        Expected::Exactly(files) => files.join(", "),
        Expected::Count(n) => format!("{n} device(s)"),
    };
    Err(format!(
        "{seen}, expected {want} (probe exit code {exit_code})"
    ))
}

/// The `/dev/nvidia<minor>` files of a claim's allocated devices, by the `minor` attribute
/// their driver publishes; `None` when a device has no such attribute (then only the count
/// can be checked).
pub fn allocated_device_files(
    claim: &ResourceClaim,
    slices: &[ResourceSlice],
) -> Option<Vec<String>> {
    let results = claim
        .status
        .as_ref()?
        .allocation
        .as_ref()?
        .devices
        .as_ref()?
        .results
        .as_ref()?;
    let mut out = Vec::new();
    for r in results {
        let minor = slices
            .iter()
            .filter(|s| s.spec.driver == r.driver && s.spec.pool.name == r.pool)
            .flat_map(|s| s.spec.devices.iter().flatten())
            .find(|d| d.name == r.device)?
            .attributes
            .as_ref()?
            .get("minor")?
            .int?;
        out.push(format!("/dev/nvidia{minor}"));
    }
    out.sort();
    Some(out)
}

const TEMPLATE: &str = "secure-gpu";
const POSITIVE: &str = "positive-access";
const NEGATIVE: &str = "negative-isolation";
const MULTI: &str = "multi-container";
/// How long probes keep running after reporting, so the case reads each claim's allocation
/// while its pod still holds it.
const PROBE_HOLD: &str = "3s";

/// A container that runs the device probe and must see `gpus` GPU devices.
fn probe_container(
    image: &str,
    name: &str,
    gpus: usize,
    resources: serde_json::Value,
) -> serde_json::Value {
    json!({"name": name, "image": image,
        "args": ["probe", "devices", "--expect", gpus.to_string(), "--hold", PROBE_HOLD],
        "resources": resources,
        "securityContext": {"privileged": false, "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]}}})
}

fn pod_manifest(
    name: &str,
    containers: Vec<serde_json::Value>,
    claim: bool,
    node: Option<&str>,
) -> serde_json::Value {
    let mut spec = json!({
        "restartPolicy": "Never",
        "hostPID": false,
        "containers": containers,
        "tolerations": gpu_tolerations()
    });
    if claim {
        spec["resourceClaims"] = json!([{"name": "gpu", "resourceClaimTemplateName": TEMPLATE}]);
    }
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aiconform-secure-accelerator-access"}},
        "spec": spec})
}

/// Wait until the pod finished (Succeeded or Failed) or the deadline passed; the pod as last seen.
pub(super) async fn wait_finished(
    pods: &Api<Pod>,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<Option<Pod>> {
    let done = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    match tokio::time::timeout_at(deadline, await_condition(pods.clone(), name, done)).await {
        Ok(r) => Ok(r?),
        Err(_) => Ok(pods.get_opt(name).await?),
    }
}

/// The pod's scheduled node once it has one (or the deadline passed).
pub(super) async fn wait_scheduled(
    pods: &Api<Pod>,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<Option<Pod>> {
    let bound = |p: Option<&Pod>| {
        p.and_then(|p| p.spec.as_ref()?.node_name.as_ref())
            .is_some()
    };
    match tokio::time::timeout_at(deadline, await_condition(pods.clone(), name, bound)).await {
        Ok(r) => Ok(r?),
        Err(_) => Ok(pods.get_opt(name).await?),
    }
}

fn node_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default()
}

/// What the cluster's view of a claimed container must be: its claim's allocated device files
/// (DRA, when the driver publishes minors) or one device.
async fn expected_for(
    client: &Client,
    ns: &str,
    pod: Option<&Pod>,
    mechanism: Mechanism,
    slices: &[ResourceSlice],
) -> anyhow::Result<Result<(Expected, String), String>> {
    let Some(pod) = pod.filter(|p| !node_of(p).is_empty()) else {
        return Ok(Err(format!(
            "was not scheduled: {}",
            pod.map(pod_state).unwrap_or_else(|| "gone".to_string())
        )));
    };
    if mechanism == Mechanism::DevicePlugin {
        return Ok(Ok((Expected::Count(1), "one nvidia.com/gpu".to_string())));
    }
    let claim_name = pod
        .status
        .as_ref()
        .and_then(|s| s.resource_claim_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "gpu"))
        .and_then(|c| c.resource_claim_name.clone());
    let Some(claim_name) = claim_name else {
        return Ok(Err(format!(
            "no ResourceClaim was generated from ResourceClaimTemplate {ns}/{TEMPLATE} (is the resourceclaim controller running?)"
        )));
    };
    let claim = Api::<ResourceClaim>::namespaced(client.clone(), ns)
        .get(&claim_name)
        .await?;
    let devices = super::claim_devices(&claim);
    if devices.is_empty() {
        return Ok(Err(format!("ResourceClaim {claim_name} is not allocated")));
    }
    let what = format!("ResourceClaim {claim_name}: {}", devices.join(", "));
    Ok(Ok(match allocated_device_files(&claim, slices) {
        Some(files) => (Expected::Exactly(files), what),
        None => (Expected::Count(devices.len()), what),
    }))
}

/// Judge one container of a finished (or timed-out) pod.
fn judge_container(pod: &Pod, container: &str, expected: &Expected) -> Result<String, String> {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container));
    let (code, view) = probe_report(status).map_err(|e| {
        format!(
            "container {container} {e} (pod {}: {})",
            pod.name_any(),
            pod_state(pod)
        )
    })?;
    judge_view(code, &view, expected)
}

pub(super) async fn secure_access_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let image = probe_image(&ctx)?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let alloc = gpu_allocatable(&nodes);
    let class = ctx
        .param::<String>("deviceClass")?
        .unwrap_or_else(|| DEFAULT_DEVICE_CLASS.to_string());
    let has_class = Api::<DeviceClass>::all(client.clone())
        .get_opt(&class)
        .await
        .ok()
        .flatten()
        .is_some();
    let mechanism = match ctx.param::<String>("mechanism")?.as_deref() {
        Some("dra") | None if has_class => Mechanism::Dra,
        Some("device-plugin") | None if !alloc.is_empty() => Mechanism::DevicePlugin,
        Some("dra") => {
            return Ok(Outcome::failed(format!(
                "params.mechanism is dra but DeviceClass {class} does not exist"
            )));
        }
        Some("device-plugin") => {
            return Ok(Outcome::failed(
                "params.mechanism is device-plugin but no node advertises allocatable nvidia.com/gpu",
            ));
        }
        Some(other) => {
            return Ok(Outcome::failed(format!(
                "params.mechanism {other:?} is not one of dra, device-plugin"
            )));
        }
        None => {
            return Ok(Outcome::failed(format!(
                "no GPU is offered to pods: no node advertises nvidia.com/gpu and DeviceClass {class} does not exist"
            )));
        }
    };
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let dra = mechanism == Mechanism::Dra;
    if dra {
        let templates: Api<ResourceClaimTemplate> = Api::namespaced(client.clone(), &ns);
        create(
            &templates,
            json!({"metadata": {"name": TEMPLATE}, "spec": {"spec": {"devices": {"requests": [
                {"name": "gpu", "exactly": {"deviceClassName": class}}]}}}}),
        )
        .await?;
    }

    // Positive access and multi-container isolation start together; negative isolation
    // follows on the node the positive pod landed on.
    let positive: Pod = create(
        &pods,
        pod_manifest(
            POSITIVE,
            vec![probe_container(&image, "gpu", 1, mechanism.resources())],
            dra,
            None,
        ),
    )
    .await?;
    // Admission may have mutated the pod: judge what the cluster stored.
    let own = gpu_access_violations(std::slice::from_ref(&positive), &BTreeSet::new());
    if !own.is_empty() || !privileged_containers(&positive).is_empty() {
        return Ok(Outcome::failed(format!(
            "admission changed the unprivileged GPU pod into a privileged one: {}",
            own.join(", ")
        )));
    }
    create(
        &pods,
        pod_manifest(
            MULTI,
            vec![
                probe_container(&image, "authorized", 1, mechanism.resources()),
                probe_container(&image, "unauthorized", 0, json!({})),
            ],
            dra,
            None,
        ),
    )
    .await?;
    let scheduled = wait_scheduled(&pods, POSITIVE, deadline).await?;
    let node = scheduled.as_ref().map(node_of).unwrap_or_default();
    if node.is_empty() {
        return Ok(Outcome::failed(format!(
            "positive access: pod {ns}/{POSITIVE} requesting a GPU via {} was not scheduled within {}s: {}",
            mechanism.describe(),
            secs(ctx.spec.timeout),
            scheduled
                .as_ref()
                .map(pod_state)
                .unwrap_or_else(|| "gone".to_string())
        )));
    }
    create(
        &pods,
        pod_manifest(
            NEGATIVE,
            vec![probe_container(&image, "probe", 0, json!({}))],
            false,
            Some(&node),
        ),
    )
    .await?;

    // What the claimed containers must see, read while their pods hold the allocation (a
    // claim is released once its pod is done, and one from a template is deleted).
    let slices = if dra {
        Api::<ResourceSlice>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items
    } else {
        Vec::new()
    };
    let positive_expected =
        expected_for(&client, &ns, scheduled.as_ref(), mechanism, &slices).await?;
    let multi = wait_scheduled(&pods, MULTI, deadline).await?;
    let multi_expected = expected_for(&client, &ns, multi.as_ref(), mechanism, &slices).await?;

    let mut results: Vec<(&str, Result<String, String>)> = Vec::new();
    for name in [POSITIVE, NEGATIVE, MULTI] {
        let Some(pod) = wait_finished(&pods, name, deadline).await? else {
            results.push((name, Err(format!("pod {ns}/{name} disappeared"))));
            continue;
        };
        let on = node_of(&pod);
        let verdict = match name {
            NEGATIVE => judge_container(&pod, "probe", &Expected::Nothing)
                .map(|seen| format!("pod {name} without a claim on {on} {seen}"))
                .map_err(|e| format!("pod {name} without a claim on {on}: {e}")),
            POSITIVE => match &positive_expected {
                Err(e) => Err(format!("pod {name}: {e}")),
                Ok((expected, what)) => judge_container(&pod, "gpu", expected)
                    .map(|seen| format!("container gpu of pod {name} on {on} ({what}) {seen}"))
                    .map_err(|e| format!("container gpu of pod {name} on {on} ({what}): {e}")),
            },
            _ => match &multi_expected {
                Err(e) => Err(format!("pod {name}: {e}")),
                Ok((expected, what)) => {
                    let granted = judge_container(&pod, "authorized", expected).map_err(|e| {
                        format!("container authorized of pod {name} on {on} ({what}): {e}")
                    });
                    let sibling = judge_container(&pod, "unauthorized", &Expected::Nothing)
                        .map_err(|e| format!("its sibling unauthorized (no claim): {e}"));
                    match (granted, sibling) {
                        (Ok(g), Ok(s)) => Ok(format!(
                            "container authorized of pod {name} on {on} ({what}) {g}, its sibling unauthorized {s}"
                        )),
                        (g, s) => Err([g.err(), s.err()]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join("; ")),
                    }
                }
            },
        };
        results.push((name, verdict));
    }
    let label = |n: &&str| match *n {
        POSITIVE => "positive access",
        NEGATIVE => "negative isolation",
        _ => "multi-container isolation",
    };
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(n, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{} FAILED: {e}", label(n)))
        })
        .collect();
    let summary = results
        .iter()
        .map(|(n, r)| match r {
            Ok(m) => format!("{}: {m}", label(n)),
            Err(_) => format!("{}: failed", label(n)),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if !failed.is_empty() {
        return Ok(Outcome::failed(format!(
            "GPUs via {} are not isolated as observed from inside the containers: {}",
            mechanism.describe(),
            failed.join("; ")
        )));
    }

    let mut exempt: BTreeSet<String> = ctx
        .recipe
        .components
        .iter()
        .map(|c| c.namespace.clone())
        .collect();
    exempt.extend(
        ctx.param::<Vec<String>>("exemptNamespaces")?
            .unwrap_or_default(),
    );
    let all = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let violations = gpu_access_violations(&all, &exempt);
    if !violations.is_empty() {
        return Ok(Outcome::failed(format!(
            "{summary}; but {} workload pod(s) outside the operator namespaces ({}) reach GPUs with host privileges: {}",
            violations.len(),
            exempt.into_iter().collect::<Vec<_>>().join(", "),
            violations.join(", ")
        )));
    }
    Ok(Outcome::passed(format!(
        "GPUs via {}, seen from inside the containers: {summary}; no pod outside the operator namespaces mounts /dev/nvidia* or runs GPUs privileged ({} pods scanned)",
        mechanism.describe(),
        all.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn status(state: serde_json::Value) -> ContainerStatus {
        serde_json::from_value(
            json!({"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": state}),
        )
        .expect("status")
    }

    #[test]
    fn probe_reports_from_container_states() {
        let done = status(json!({"terminated": {"exitCode": 0, "reason": "Completed",
            "message": r#"{"devices":["/dev/nvidia3"],"visibleDevices":"GPU-3"}"#}}));
        let (code, view) = probe_report(Some(&done)).expect("report");
        assert_eq!(
            (code, view.devices.as_slice()),
            (0, ["/dev/nvidia3".to_string()].as_slice())
        );
        let none = status(json!({"terminated": {"exitCode": 0, "message": r#"{"devices":[]}"#}}));
        assert!(
            probe_report(Some(&none))
                .expect("report")
                .1
                .devices
                .is_empty()
        );
        let crashed = status(
            json!({"terminated": {"exitCode": 128, "reason": "StartError",
            "message": "exec: not found"}}),
        );
        assert_eq!(
            probe_report(Some(&crashed)).unwrap_err(),
            "exited 128 (StartError) without a device report: exec: not found"
        );
        let waiting = status(
            json!({"waiting": {"reason": "CreateContainerConfigError", "message": "no GPU free"}}),
        );
        assert_eq!(
            probe_report(Some(&waiting)).unwrap_err(),
            "is waiting (CreateContainerConfigError: no GPU free)"
        );
        let running = status(json!({"running": {}}));
        assert_eq!(
            probe_report(Some(&running)).unwrap_err(),
            "is still running"
        );
        assert!(probe_report(None).is_err());
    }

    #[test]
    fn views_judged_against_what_was_allocated() {
        let view = |d: &[&str], env: Option<&str>| DeviceView {
            devices: d.iter().map(|s| s.to_string()).collect(),
            visible_devices: env.map(str::to_string),
        };
        let one = Expected::Exactly(vec!["/dev/nvidia3".into()]);
        assert_eq!(
            judge_view(0, &view(&["/dev/nvidia3"], Some("GPU-3")), &one).unwrap(),
            "sees /dev/nvidia3 (NVIDIA_VISIBLE_DEVICES=GPU-3)"
        );
        // Another GPU than the allocated one is not positive access.
        assert_eq!(
            judge_view(0, &view(&["/dev/nvidia0"], None), &one).unwrap_err(),
            "sees /dev/nvidia0, expected /dev/nvidia3 (probe exit code 0)"
        );
        assert!(judge_view(0, &view(&["/dev/nvidia5"], None), &Expected::Count(1)).is_ok());
        assert_eq!(
            judge_view(0, &view(&[], None), &Expected::Nothing).unwrap(),
            "sees no GPU device"
        );
        assert_eq!(
            judge_view(
                1,
                &view(&["/dev/nvidia0", "/dev/nvidia1"], Some("all")),
                &Expected::Nothing
            )
            .unwrap_err(),
            "sees /dev/nvidia0, /dev/nvidia1 (NVIDIA_VISIBLE_DEVICES=all), expected none (probe exit code 1)"
        );
        // A probe that failed is no pass even if the view looks right.
        assert!(judge_view(1, &view(&[], None), &Expected::Nothing).is_err());
    }

    #[test]
    fn allocated_device_files_from_published_minors() {
        let slice: ResourceSlice = serde_json::from_value(json!({"metadata": {"name": "s"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": "n1",
                "pool": {"name": "n1", "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0", "attributes": {"minor": {"int": 0}}},
                    {"name": "gpu-7", "attributes": {"minor": {"int": 7}}},
                    {"name": "mig-a", "attributes": {"uuid": {"string": "MIG-1"}}}]}}))
        .expect("slice");
        let claim = |devices: &[&str]| -> ResourceClaim {
            let results: Vec<serde_json::Value> = devices
                .iter()
                .map(|d| json!({"request": "gpu", "driver": "gpu.nvidia.com", "pool": "n1", "device": d}))
                .collect();
            serde_json::from_value(
                json!({"metadata": {"name": "c"}, "spec": {"devices": {"requests": []}},
                "status": {"allocation": {"devices": {"results": results}}}}),
            )
            .expect("claim")
        };
        let slices = [slice];
        assert_eq!(
            allocated_device_files(&claim(&["gpu-7", "gpu-0"]), &slices),
            Some(vec!["/dev/nvidia0".to_string(), "/dev/nvidia7".to_string()])
        );
        assert_eq!(allocated_device_files(&claim(&["mig-a"]), &slices), None);
        assert_eq!(allocated_device_files(&claim(&["gpu-9"]), &slices), None);
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
}
