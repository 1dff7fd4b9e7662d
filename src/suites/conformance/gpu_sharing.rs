//! gpu_sharing (KAR-0003): at least one static GPU sharing strategy works. A node advertises
//! shares of its GPUs in allocatable (time-sliced replicas as `nvidia.com/gpu.shared`, or as
//! `nvidia.com/gpu` with GPU feature discovery's `nvidia.com/gpu.replicas` above 1, or MIG
//! partitions as `nvidia.com/mig-<profile>`); one more pod than the node has physical GPUs each
//! request one share, all of them run, and their in-container device probes show several of
//! them on the same physical GPU at the same time.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, create, gpu_tolerations, pod_state};
use super::secure_accelerator_access::probe_report;
use super::*;
use crate::runner::{CaseContext, Outcome};

/// Shares of GPUs one node advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedOffer {
    pub node: String,
    /// The extended resource a pod requests one share with.
    pub resource: String,
    /// Shares allocatable on the node.
    pub shares: u64,
    /// Physical GPUs behind them.
    pub gpus: u64,
    /// `time-slicing`, `mps`, `MIG`.
    pub strategy: String,
}

fn quantity(node: &Node, resource: &str) -> u64 {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get(resource))
        .and_then(|q| q.0.trim().parse().ok())
        .unwrap_or(0)
}

/// The sharing each node advertises (at most one offer per node: the first of time-sliced
/// replicas, replicas under the plain resource name, MIG partitions). A node says how many
/// physical GPUs it has with `nvidia.com/gpu.count` (GPU feature discovery).
pub fn shared_offers(nodes: &[Node]) -> Vec<SharedOffer> {
    let mut out = Vec::new();
    for n in nodes {
        let labels = n.labels();
        let label = |k: &str| labels.get(k).and_then(|v| v.parse::<u64>().ok());
        let replicas = label("nvidia.com/gpu.replicas").unwrap_or(1);
        let strategy = labels
            .get("nvidia.com/gpu.sharing-strategy")
            .cloned()
            .unwrap_or_else(|| "time-slicing".to_string());
        let gpus = label("nvidia.com/gpu.count");
        let shared = quantity(n, "nvidia.com/gpu.shared");
        let plain = quantity(n, "nvidia.com/gpu");
        let mig = n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| {
                a.keys()
                    .filter(|k| k.starts_with("nvidia.com/mig-"))
                    .map(|k| (k.clone(), quantity(n, k)))
                    .find(|(_, q)| *q > 0)
            });
        let offer = if shared > 0 {
            Some((
                "nvidia.com/gpu.shared".to_string(),
                shared,
                strategy,
                replicas,
            ))
        } else if replicas > 1 && plain > 0 {
            Some(("nvidia.com/gpu".to_string(), plain, strategy, replicas))
        } else {
            mig.map(|(r, q)| (r, q, "MIG".to_string(), 1))
        };
        if let Some((resource, shares, strategy, replicas)) = offer {
            out.push(SharedOffer {
                node: n.name_any(),
                gpus: gpus.unwrap_or(shares / replicas.max(1)),
                resource,
                shares,
                strategy,
            });
        }
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// What one pod's probe saw: the physical GPU (its UUID, else its device file) and when its
/// container ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub pod: String,
    pub gpu: String,
    pub started: Time,
    pub finished: Time,
}

/// Per physical GPU, the pods that ran on it while another pod ran on it too.
pub fn concurrent_sharers(placements: &[Placement]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in placements {
        let overlaps = placements.iter().any(|b| {
            b.pod != a.pod
                && b.gpu == a.gpu
                && a.started.0 < b.finished.0
                && b.started.0 < a.finished.0
        });
        if overlaps {
            out.entry(a.gpu.clone()).or_default().push(a.pod.clone());
        }
    }
    for pods in out.values_mut() {
        pods.sort();
    }
    out
}

/// The physical GPU a probe report names.
fn gpu_identity(view: &crate::probe::DeviceView) -> Option<String> {
    match view.visible_devices.as_deref() {
        Some(v) if !v.is_empty() && v != "all" && v != "void" && !v.contains(',') => {
            Some(v.to_string())
        }
        _ => (view.devices.len() == 1).then(|| view.devices[0].clone()),
    }
}

/// `Failed (UnexpectedAdmissionError: ...)` or the phase.
fn describe_pod(pod: &Pod) -> String {
    match pod.status.as_ref().and_then(|s| s.reason.as_ref()) {
        Some(r) => format!(
            "{} ({r}: {})",
            pod_state(pod),
            pod.status
                .as_ref()
                .and_then(|s| s.message.as_deref())
                .unwrap_or("")
        ),
        None => pod_state(pod),
    }
}

pub(super) async fn gpu_sharing_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let offers = shared_offers(&nodes);
    let Some(offer) = offers.iter().find(|o| o.shares > o.gpus && o.gpus > 0) else {
        return Ok(Outcome::failed(if offers.is_empty() {
            "no node advertises shared GPUs: no nvidia.com/gpu.shared, no nvidia.com/mig-* and no nvidia.com/gpu with nvidia.com/gpu.replicas above 1 in any node's allocatable".to_string()
        } else {
            format!(
                "no node advertises more GPU shares than it has GPUs: {}",
                offers
                    .iter()
                    .map(|o| format!("{} {} {} for {} GPUs", o.node, o.shares, o.resource, o.gpus))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }));
    };
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let hold = ctx.param::<u64>("holdSeconds")?.unwrap_or(10);
    let count = offer.gpus + 1;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..count).map(|i| format!("share-{i}")).collect();
    let mut limits = serde_json::Map::new();
    limits.insert(offer.resource.clone(), json!("1"));
    for name in &names {
        create(
            &pods,
            json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aiconform-gpu-sharing"}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"kubernetes.io/hostname": offer.node},
                    "containers": [{"name": "probe", "image": probe_image(&ctx)?,
                        "args": ["probe", "devices", "--expect", "1", "--hold", format!("{hold}s")],
                        "resources": {"limits": limits}}],
                    "tolerations": gpu_tolerations()
                }}),
        )
        .await?;
    }
    let done = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.as_deref())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    let mut placements = Vec::new();
    let mut problems = Vec::new();
    for name in &names {
        let waited =
            tokio::time::timeout_at(deadline, await_condition(pods.clone(), name, done)).await;
        let pod = match waited {
            Ok(r) => r?,
            Err(_) => pods.get_opt(name).await?,
        };
        let Some(pod) = pod else {
            problems.push(format!("pod {name} disappeared"));
            continue;
        };
        let status = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == "probe"));
        let report = match probe_report(status) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!(
                    "pod {name}: container probe {e} (pod {})",
                    describe_pod(&pod)
                ));
                continue;
            }
        };
        let (code, view) = report;
        let gpu = gpu_identity(&view);
        let term = status
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.terminated.as_ref());
        match (
            code,
            gpu,
            term.and_then(|t| Some((t.started_at.clone()?, t.finished_at.clone()?))),
        ) {
            (0, Some(gpu), Some((started, finished))) if view.devices.len() == 1 => placements
                .push(Placement {
                    pod: name.clone(),
                    gpu,
                    started,
                    finished,
                }),
            _ => problems.push(format!(
                "pod {name}: the probe exited {code} seeing {}",
                if view.devices.is_empty() {
                    "no GPU device".to_string()
                } else {
                    view.devices.join(", ")
                }
            )),
        }
    }
    let what = format!(
        "{count} pods each requesting 1 {} on {} ({} GPUs, {} shares advertised, {})",
        offer.resource, offer.node, offer.gpus, offer.shares, offer.strategy
    );
    if !problems.is_empty() {
        return Ok(Outcome::failed(format!(
            "{what}: {} of {count} did not run with exactly one GPU: {}",
            problems.len(),
            problems.join("; ")
        )));
    }
    let sharers = concurrent_sharers(&placements);
    if sharers.is_empty() {
        let mut by_gpu: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for p in &placements {
            by_gpu.entry(&p.gpu).or_default().push(&p.pod);
        }
        return Ok(Outcome::failed(format!(
            "{what} all ran, but no two of them used the same physical GPU at the same time: {}",
            by_gpu
                .iter()
                .map(|(g, p)| format!("{g}: {}", p.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    Ok(Outcome::passed(format!(
        "{what} all ran and each probe saw exactly one GPU; shared at the same time: {}",
        sharers
            .iter()
            .map(|(g, p)| format!("{g} by {}", p.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: serde_json::Value, alloc: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": alloc}}))
        .expect("node")
    }

    #[test]
    fn offers_from_replicas_and_mig() {
        let nodes = [
            node(
                "b-sliced",
                json!({"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.count": "8",
                    "nvidia.com/gpu.sharing-strategy": "time-slicing"}),
                json!({"nvidia.com/gpu": "8", "nvidia.com/gpu.shared": "32"}),
            ),
            node(
                "a-plain-replicas",
                json!({"nvidia.com/gpu.replicas": "2"}),
                json!({"nvidia.com/gpu": "16"}),
            ),
            node(
                "c-mig",
                json!({"nvidia.com/gpu.count": "1"}),
                json!({"nvidia.com/mig-1g.10gb": "7"}),
            ),
            node("d-whole", json!({}), json!({"nvidia.com/gpu": "8"})),
        ];
        let o = shared_offers(&nodes);
        let short: Vec<(&str, &str, u64, u64, &str)> = o
            .iter()
            .map(|o| {
                (
                    o.node.as_str(),
                    o.resource.as_str(),
                    o.shares,
                    o.gpus,
                    o.strategy.as_str(),
                )
            })
            .collect();
        assert_eq!(
            short,
            vec![
                ("a-plain-replicas", "nvidia.com/gpu", 16, 8, "time-slicing"),
                ("b-sliced", "nvidia.com/gpu.shared", 32, 8, "time-slicing"),
                ("c-mig", "nvidia.com/mig-1g.10gb", 7, 1, "MIG"),
            ]
        );
    }

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + secs).expect("timestamp"))
    }

    #[test]
    fn sharers_must_overlap_on_one_gpu() {
        let p = |pod: &str, gpu: &str, s: i64, f: i64| Placement {
            pod: pod.into(),
            gpu: gpu.into(),
            started: at(s),
            finished: at(f),
        };
        let together = [
            p("a", "GPU-0", 0, 10),
            p("b", "GPU-0", 5, 15),
            p("c", "GPU-1", 0, 10),
            p("d", "GPU-0", 20, 30),
        ];
        let s = concurrent_sharers(&together);
        assert_eq!(s.len(), 1);
        assert_eq!(s["GPU-0"], vec!["a".to_string(), "b".to_string()]);
        // One after the other on the same GPU is not sharing; neither are distinct GPUs.
        let apart = [
            p("a", "GPU-0", 0, 10),
            p("b", "GPU-0", 10, 20),
            p("c", "GPU-1", 0, 20),
        ];
        assert!(concurrent_sharers(&apart).is_empty());
    }

    #[test]
    fn gpu_identity_from_uuid_or_single_device() {
        let v = |d: &[&str], env: Option<&str>| crate::probe::DeviceView {
            devices: d.iter().map(|s| s.to_string()).collect(),
            visible_devices: env.map(str::to_string),
        };
        assert_eq!(
            gpu_identity(&v(&["/dev/nvidia0"], Some("GPU-a"))).as_deref(),
            Some("GPU-a")
        );
        assert_eq!(
            gpu_identity(&v(&["/dev/nvidia3"], Some("all"))).as_deref(),
            Some("/dev/nvidia3")
        );
        assert_eq!(
            gpu_identity(&v(&["/dev/nvidia0", "/dev/nvidia1"], None)),
            None
        );
    }
}
