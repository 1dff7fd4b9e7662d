//! driver_runtime_management (KAR-0001): the accelerator driver and container runtime the
//! platform reports for each GPU node (GPU feature discovery labels, DRA device attributes,
//! the node's `containerRuntimeVersion`) are what a pod on that node actually finds: a probe
//! reads the loaded driver's version from the driver itself and the pod's container ids name
//! the runtime that ran it. A GPU node whose driver the platform does not report is unknown,
//! which is no pass.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::ResourceSlice;
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, create, gpu_nodes, gpu_tolerations, pod_state};
use super::*;
use crate::probe::DriverView;
use crate::runner::{CaseContext, Outcome};

/// The driver version the platform reports for a node, and where it says so.
pub fn reported_driver(node: &Node, slices: &[ResourceSlice]) -> Option<(String, String)> {
    let labels = node.labels();
    if let Some(v) = labels.get("nvidia.com/cuda.driver-version.full") {
        return Some((
            v.clone(),
            "label nvidia.com/cuda.driver-version.full".into(),
        ));
    }
    let parts: Option<Vec<&String>> = ["major", "minor", "rev"]
        .iter()
        .map(|p| labels.get(&format!("nvidia.com/cuda.driver.{p}")))
        .collect();
    if let Some(p) = parts {
        let v = p.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(".");
        return Some((v, "labels nvidia.com/cuda.driver.{major,minor,rev}".into()));
    }
    let name = node.name_any();
    slices
        .iter()
        .filter(|s| s.spec.node_name.as_deref() == Some(name.as_str()))
        .flat_map(|s| {
            s.spec
                .devices
                .iter()
                .flatten()
                .map(move |d| (s.spec.driver.clone(), d))
        })
        .find_map(|(driver, d)| {
            let a = d.attributes.as_ref()?.get("driverVersion")?;
            let v = a.version.clone().or_else(|| a.string.clone())?;
            Some((v, format!("DRA attribute driverVersion of {driver}")))
        })
}

/// Whether two driver versions are the same release (`550.127.05` = `550.127.5`).
pub fn same_version(a: &str, b: &str) -> bool {
    let parts =
        |v: &str| -> Option<Vec<u64>> { v.trim().split('.').map(|p| p.parse().ok()).collect() };
    match (parts(a), parts(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim() == b.trim(),
    }
}

/// The runtime name of `containerd://1.7.20` or a container id `containerd://abc`.
fn runtime_name(v: &str) -> &str {
    v.split_once("://").map_or(v, |(n, _)| n)
}

/// One node's verdict: Ok(evidence) or Err(what was observed instead).
pub fn judge_node(
    node: &str,
    reported: Option<&(String, String)>,
    runtime: &str,
    probe: Result<(i32, DriverView, String), String>,
) -> Result<String, String> {
    let Some((version, source)) = reported else {
        return Err(format!(
            "{node}: driver unknown (the platform reports no driver version: no nvidia.com/cuda.driver labels, no DRA driverVersion attribute)"
        ));
    };
    let (code, view, container_id) = probe.map_err(|e| format!("{node}: {e}"))?;
    let Some(read) = view.driver_version.as_deref().filter(|_| code == 0) else {
        return Err(format!(
            "{node}: {source} reports driver {version}, but a pod found no NVIDIA driver loaded (probe exit code {code})"
        ));
    };
    let from = view.source.as_deref().unwrap_or("the driver");
    if !same_version(read, version) {
        return Err(format!(
            "{node}: {source} reports driver {version}, but a pod reads {read} from {from}"
        ));
    }
    if runtime.is_empty() || runtime_name(runtime) != runtime_name(&container_id) {
        return Err(format!(
            "{node}: driver {version} confirmed, but the node reports container runtime {runtime:?} while the pod's container ran under {:?}",
            runtime_name(&container_id)
        ));
    }
    Ok(format!(
        "{node}: driver {version} ({source}) read as {read} from {from} in a pod; runtime {runtime} ran it"
    ))
}

pub(super) async fn driver_runtime_management_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let all = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let nodes = gpu_nodes(&all);
    if nodes.is_empty() {
        return Ok(Outcome::failed(
            "no GPU nodes (no nvidia.com/gpu.present label or allocatable nvidia.com/gpu): no driver to verify",
        ));
    }
    let slices = Api::<ResourceSlice>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let mut names = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let name = format!("driver-{i}");
        create(
            &pods,
            json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aiconform-driver-runtime"}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"kubernetes.io/hostname": n.name_any()},
                    "containers": [{"name": "probe", "image": probe_image(&ctx)?,
                        "args": ["probe", "driver"]}],
                    "tolerations": gpu_tolerations()
                }}),
        )
        .await?;
        names.push(name);
    }
    let done = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (n, name) in nodes.iter().zip(&names) {
        let waited =
            tokio::time::timeout_at(deadline, await_condition(pods.clone(), name, done)).await;
        let pod = match waited {
            Ok(r) => r?,
            Err(_) => pods.get_opt(name).await?,
        };
        let probe = match &pod {
            None => Err(format!("pod {name} disappeared")),
            Some(p) => {
                let status = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.name == "probe"));
                match status.and_then(|s| Some((s.state.as_ref()?.terminated.as_ref()?, s))) {
                    None => Err(format!(
                        "pod {name} did not complete within {}s: {}",
                        secs(ctx.spec.timeout),
                        pod_state(p)
                    )),
                    Some((t, s)) => {
                        let msg = t.message.as_deref().unwrap_or("").trim();
                        match serde_json::from_str::<DriverView>(msg) {
                            Ok(v) => Ok((
                                t.exit_code,
                                v,
                                s.container_id
                                    .clone()
                                    .or_else(|| t.container_id.clone())
                                    .unwrap_or_default(),
                            )),
                            Err(_) => Err(format!(
                                "pod {name}: the probe exited {} without a driver report: {msg}",
                                t.exit_code
                            )),
                        }
                    }
                }
            }
        };
        let runtime = n
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.container_runtime_version.clone())
            .unwrap_or_default();
        match judge_node(
            &n.name_any(),
            reported_driver(n, &slices).as_ref(),
            &runtime,
            probe,
        ) {
            Ok(m) => ok.push(m),
            Err(m) => bad.push(m),
        }
    }
    if !bad.is_empty() {
        return Ok(Outcome::failed(format!(
            "{} of {} GPU node(s) do not run what the platform reports: {}",
            bad.len(),
            nodes.len(),
            bad.join("; ")
        )));
    }
    Ok(Outcome::passed(format!(
        "every GPU node runs the driver and runtime the platform reports: {}",
        ok.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "gpu-0", "labels": labels}}))
            .expect("node")
    }

    #[test]
    fn reported_driver_from_labels_or_dra() {
        let gfd = node(json!({"nvidia.com/cuda.driver.major": "550",
            "nvidia.com/cuda.driver.minor": "127", "nvidia.com/cuda.driver.rev": "05"}));
        assert_eq!(
            reported_driver(&gfd, &[]).map(|r| r.0).as_deref(),
            Some("550.127.05")
        );
        let full = node(json!({"nvidia.com/cuda.driver-version.full": "570.195.03"}));
        assert_eq!(
            reported_driver(&full, &[]).map(|r| r.0).as_deref(),
            Some("570.195.03")
        );
        let slice: ResourceSlice = serde_json::from_value(json!({"metadata": {"name": "s"},
            "spec": {"driver": "gpu.nvidia.com", "nodeName": "gpu-0",
                "pool": {"name": "gpu-0", "generation": 1, "resourceSliceCount": 1},
                "devices": [{"name": "gpu-0", "attributes": {"driverVersion": {"version": "550.127.5"}}}]}}))
        .expect("slice");
        let (v, source) = reported_driver(&node(json!({})), &[slice]).expect("from DRA");
        assert_eq!(v, "550.127.5");
        assert!(source.contains("DRA attribute driverVersion"), "{source}");
        assert_eq!(reported_driver(&node(json!({})), &[]), None);
    }

    #[test]
    fn nodes_judged_on_what_the_pod_read() {
        let rep = ("550.127.05".to_string(), "labels".to_string());
        let view = |v: Option<&str>| DriverView {
            driver_version: v.map(str::to_string),
            source: Some("/sys/module/nvidia/version".into()),
        };
        let ok = judge_node(
            "n",
            Some(&rep),
            "containerd://1.7.20",
            Ok((0, view(Some("550.127.5")), "containerd://abc".into())),
        );
        assert!(ok.is_ok(), "{ok:?}");
        let skew = judge_node(
            "n",
            Some(&rep),
            "containerd://1.7.20",
            Ok((0, view(Some("535.183.01")), "containerd://abc".into())),
        );
        assert_eq!(
            skew.unwrap_err(),
            "n: labels reports driver 550.127.05, but a pod reads 535.183.01 from /sys/module/nvidia/version"
        );
        let none = judge_node(
            "n",
            Some(&rep),
            "containerd://1.7.20",
            Ok((1, view(None), "containerd://abc".into())),
        );
        assert!(none.unwrap_err().contains("found no NVIDIA driver loaded"));
        let unknown = judge_node(
            "n",
            None,
            "containerd://1.7.20",
            Ok((0, view(Some("1")), String::new())),
        );
        assert!(unknown.unwrap_err().contains("driver unknown"));
        let runtime = judge_node(
            "n",
            Some(&rep),
            "cri-o://1.30",
            Ok((0, view(Some("550.127.05")), "containerd://abc".into())),
        );
        assert!(
            runtime
                .unwrap_err()
                .contains("container runtime \"cri-o://1.30\"")
        );
        assert!(same_version("550.127.05", "550.127.5"));
        assert!(!same_version("550.127.05", "550.127.6"));
    }
}
