//! secure_accelerator_access (KAR-0049): accelerators are reachable only through DRA or the device plugin.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceClaim};
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, create, gpu_allocatable, gpu_tolerations, pod_state};
use super::*;
use crate::runner::{CaseContext, Outcome};
use crate::snapshot::cluster::is_simulated;

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

pub(super) async fn secure_access_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
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
        "Running" if simulated.contains(&node) => {
            // Scheduling is not isolation: without a probe's view from inside the container
            // the requirement is not proven, so this is never a pass.
            return Ok(Outcome::skipped(format!(
                "not proven: an unprivileged pod got a GPU via the {mechanism} and runs on {node}, but {node} runs no containers, so what the container sees (and what a pod without a claim sees) was not observed"
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
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
