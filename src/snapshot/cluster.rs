//! Cluster facts from the API server. Conversions from Kubernetes objects are pure functions
//! (unit-tested without a cluster); [`collect`] does the listing.
//!
//! Secrets: only Helm release Secrets (`type=helm.sh/release.v1`, label `owner=helm`) are
//! listed, **metadata only** (`list_metadata`), and only their `name`, `version` and `status`
//! labels are kept. Secret data is never requested.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceSlice};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

use super::job::AgentTarget;

use super::SnapshotError;
use super::model::{
    AgentOutcome, ClusterFacts, DeviceClassFacts, GpuLabels, HelmRelease, NodeFacts, NodeInfo,
    OperatorFacts, ResourceSliceFacts, ServerVersion, Taint,
};
use crate::version::Version;

/// An operator aiconform recognizes, with the names it is found by.
pub struct KnownOperator {
    pub name: &'static str,
    /// Deployment or DaemonSet names (any namespace).
    pub workloads: &'static [&'static str],
    pub crds: &'static [&'static str],
}

pub const KNOWN_OPERATORS: &[KnownOperator] = &[
    KnownOperator {
        name: "cert-manager",
        workloads: &["cert-manager"],
        crds: &["certificates.cert-manager.io", "issuers.cert-manager.io"],
    },
    KnownOperator {
        name: "gpu-operator",
        workloads: &["gpu-operator"],
        crds: &["clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com"],
    },
    KnownOperator {
        name: "network-operator",
        workloads: &["network-operator"],
        crds: &["nicclusterpolicies.mellanox.com"],
    },
    KnownOperator {
        name: "kube-prometheus-stack",
        workloads: &["kube-prometheus-stack-operator"],
        crds: &[
            "prometheuses.monitoring.coreos.com",
            "servicemonitors.monitoring.coreos.com",
        ],
    },
    KnownOperator {
        name: "nvidia-dra-driver-gpu",
        workloads: &[
            "nvidia-dra-driver-gpu-controller",
            "nvidia-dra-driver-gpu-kubelet-plugin",
        ],
        crds: &["computedomains.resource.nvidia.com"],
    },
    KnownOperator {
        name: "kai-scheduler",
        workloads: &["kai-scheduler"],
        crds: &["queues.scheduling.run.ai", "podgroups.scheduling.run.ai"],
    },
    KnownOperator {
        name: "nvsentinel",
        workloads: &["nvsentinel"],
        crds: &[],
    },
    KnownOperator {
        name: "skyhook-operator",
        workloads: &["skyhook-operator-controller-manager"],
        crds: &["skyhooks.skyhook.nvidia.com"],
    },
    KnownOperator {
        name: "kubeflow-trainer",
        workloads: &["kubeflow-trainer-controller-manager"],
        crds: &[
            "trainjobs.trainer.kubeflow.org",
            "clustertrainingruntimes.trainer.kubeflow.org",
        ],
    },
    KnownOperator {
        name: "nvidia-device-plugin",
        workloads: &["nvidia-device-plugin-daemonset"],
        crds: &[],
    },
    KnownOperator {
        name: "dcgm-exporter",
        workloads: &["nvidia-dcgm-exporter", "dcgm-exporter"],
        crds: &[],
    },
    KnownOperator {
        name: "aws-ebs-csi-driver",
        workloads: &["ebs-csi-controller"],
        crds: &[],
    },
];

/// A Deployment or DaemonSet, reduced to what operator detection needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub images: Vec<String>,
    pub ready: bool,
}

fn quantity_map(
    m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, String> {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
        .unwrap_or_default()
}

/// GPU facts from GPU Feature Discovery labels and `nvidia.com/gpu` capacity.
pub fn gpu_labels(
    labels: &BTreeMap<String, String>,
    capacity: &BTreeMap<String, String>,
) -> GpuLabels {
    let get = |k: &str| {
        labels
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let joined = |keys: &[&str]| -> Option<String> {
        let parts: Option<Vec<String>> = keys.iter().map(|k| get(k)).collect();
        parts.map(|p| p.join("."))
    };
    GpuLabels {
        capacity: capacity
            .get("nvidia.com/gpu")
            .and_then(|q| q.trim().parse().ok()),
        product: get("nvidia.com/gpu.product"),
        count: get("nvidia.com/gpu.count").and_then(|v| v.parse().ok()),
        memory_mib: get("nvidia.com/gpu.memory").and_then(|v| v.parse().ok()),
        family: get("nvidia.com/gpu.family"),
        driver_version: get("nvidia.com/cuda.driver-version.full").or_else(|| {
            joined(&[
                "nvidia.com/cuda.driver.major",
                "nvidia.com/cuda.driver.minor",
                "nvidia.com/cuda.driver.rev",
            ])
        }),
        cuda_version: get("nvidia.com/cuda.runtime-version.full").or_else(|| {
            joined(&[
                "nvidia.com/cuda.runtime.major",
                "nvidia.com/cuda.runtime.minor",
            ])
        }),
        mig_capable: get("nvidia.com/mig.capable").and_then(|v| v.parse().ok()),
        mig_strategy: get("nvidia.com/mig.strategy"),
    }
}

/// A Node reduced to snapshot facts (agent outcome to be filled in by the caller).
pub fn node_facts(node: &Node) -> NodeFacts {
    let status = node.status.as_ref();
    let capacity = quantity_map(status.and_then(|s| s.capacity.as_ref()));
    let allocatable = quantity_map(status.and_then(|s| s.allocatable.as_ref()));
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let mut taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .map(|t| Taint {
                    key: t.key.clone(),
                    value: t.value.clone().unwrap_or_default(),
                    effect: t.effect.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    taints.sort_by(|a, b| (&a.key, &a.effect).cmp(&(&b.key, &b.effect)));
    let node_info = status
        .and_then(|s| s.node_info.as_ref())
        .map(|i| NodeInfo {
            os_image: i.os_image.clone(),
            kernel_version: i.kernel_version.clone(),
            container_runtime_version: i.container_runtime_version.clone(),
            kubelet_version: i.kubelet_version.clone(),
            operating_system: i.operating_system.clone(),
            architecture: i.architecture.clone(),
        })
        .unwrap_or_default();
    NodeFacts {
        name: node.metadata.name.clone().unwrap_or_default(),
        provider_id: node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
        gpu: gpu_labels(&labels, &capacity),
        labels,
        capacity,
        allocatable,
        taints,
        node_info,
        agent: AgentOutcome::Skipped,
    }
}

/// The tag of a container image (`nvcr.io/nvidia/gpu-operator:v25.10.1` → `v25.10.1`).
pub fn image_tag(image: &str) -> Option<&str> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':')
        .map(|(_, t)| t)
        .filter(|t| !t.is_empty())
}

/// The name of a container image: the last segment of its repository, without tag or digest
/// (`nvcr.io/nvidia/gpu-operator:v25.10.1` → `gpu-operator`).
pub fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

/// The version in a `helm.sh/chart` label (`gpu-operator-v25.10.1` → `v25.10.1`).
pub fn chart_version(chart_label: &str) -> Option<&str> {
    chart_label
        .match_indices('-')
        .map(|(i, _)| &chart_label[i + 1..])
        .find(|rest| Version::parse(rest).is_some())
}

/// The version a workload reports: `app.kubernetes.io/version`, else the chart label's
/// version, else the first container image tag that looks like a version.
pub fn workload_version(w: &Workload) -> Option<String> {
    w.labels
        .get("app.kubernetes.io/version")
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| {
            w.labels
                .get("helm.sh/chart")
                .and_then(|c| chart_version(c))
                .map(str::to_string)
        })
        .or_else(|| {
            w.images
                .iter()
                .filter_map(|i| image_tag(i))
                .find(|t| Version::parse(t).is_some())
                .map(str::to_string)
        })
}

/// Known operators found by Helm release name, CRD or workload name / `app.kubernetes.io/name`.
pub fn detect_operators(
    releases: &[HelmRelease],
    crds: &[String],
    workloads: &[Workload],
) -> BTreeMap<String, OperatorFacts> {
    let mut out = BTreeMap::new();
    for known in KNOWN_OPERATORS {
        let mut facts = OperatorFacts::default();
        for r in releases.iter().filter(|r| r.name == known.name) {
            facts
                .evidence
                .push(format!("helm:{}/{}", r.namespace, r.name));
        }
        for crd in crds.iter().filter(|c| known.crds.contains(&c.as_str())) {
            facts.evidence.push(format!("crd:{crd}"));
        }
        let mut ready = Vec::new();
        for w in workloads.iter().filter(|w| {
            known.workloads.contains(&w.name.as_str())
                || w.labels.get("app.kubernetes.io/name").map(String::as_str) == Some(known.name)
        }) {
            facts
                .evidence
                .push(format!("{}:{}/{}", w.kind, w.namespace, w.name));
            if facts.version.is_none() {
                facts.version = workload_version(w);
            }
            ready.push(w.ready);
        }
        if facts.evidence.is_empty() {
            continue;
        }
        if !ready.is_empty() {
            facts.ready = Some(ready.iter().all(|r| *r));
        }
        facts.evidence.sort();
        facts.evidence.dedup();
        out.insert(known.name.to_string(), facts);
    }
    out
}

pub fn helm_release(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<HelmRelease> {
    let labels = meta.labels.as_ref()?;
    Some(HelmRelease {
        name: labels.get("name")?.clone(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        revision: labels.get("version").cloned().unwrap_or_default(),
        status: labels.get("status").cloned().unwrap_or_default(),
    })
}

/// Keep only the latest revision of each release (Helm keeps a Secret per revision).
pub fn latest_releases(mut all: Vec<HelmRelease>) -> Vec<HelmRelease> {
    all.sort_by(|a, b| {
        (&a.namespace, &a.name)
            .cmp(&(&b.namespace, &b.name))
            .then_with(|| {
                let ra: u64 = a.revision.parse().unwrap_or(0);
                let rb: u64 = b.revision.parse().unwrap_or(0);
                rb.cmp(&ra)
            })
    });
    all.dedup_by(|later, first| later.namespace == first.namespace && later.name == first.name);
    all
}

pub fn device_class_facts(dc: &DeviceClass) -> DeviceClassFacts {
    let mut selectors: Vec<String> = dc
        .spec
        .selectors
        .iter()
        .flatten()
        .filter_map(|s| s.cel.as_ref().map(|c| c.expression.clone()))
        .collect();
    selectors.sort();
    DeviceClassFacts {
        name: dc.metadata.name.clone().unwrap_or_default(),
        selectors,
    }
}

pub fn resource_slice_facts(rs: &ResourceSlice) -> ResourceSliceFacts {
    ResourceSliceFacts {
        name: rs.metadata.name.clone().unwrap_or_default(),
        driver: rs.spec.driver.clone(),
        node_name: rs.spec.node_name.clone().unwrap_or_default(),
        pool: rs.spec.pool.name.clone(),
        device_count: rs.spec.devices.as_ref().map_or(0, Vec::len),
    }
}

fn deployment_workload(d: &Deployment) -> Workload {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let have = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let template = d.spec.as_ref().map(|s| &s.template);
    workload("deployment", &d.metadata, template, have >= want)
}

fn daemonset_workload(d: &DaemonSet) -> Workload {
    let status = d.status.as_ref();
    let desired = status.map_or(0, |s| s.desired_number_scheduled);
    let ready = status.map_or(0, |s| s.number_ready);
    let template = d.spec.as_ref().map(|s| &s.template);
    workload("daemonset", &d.metadata, template, ready >= desired)
}

/// The facts shared by every workload kind: identity, labels and container images.
fn workload(
    kind: &'static str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    template: Option<&k8s_openapi::api::core::v1::PodTemplateSpec>,
    ready: bool,
) -> Workload {
    Workload {
        kind,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        images: template
            .and_then(|t| t.spec.as_ref())
            .map(|p| {
                p.containers
                    .iter()
                    .filter_map(|c| c.image.clone())
                    .collect()
            })
            .unwrap_or_default(),
        ready,
    }
}

fn optional<T>(what: &str, r: Result<T, kube::Error>, notes: &mut Vec<String>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404) => {
            notes.push(format!("{what} not listed: {} ({})", s.message, s.code));
            None
        }
        Err(e) => {
            notes.push(format!("{what} not listed: {}", super::kube_message(&e)));
            None
        }
    }
}

/// Objects per list request: each page is reduced to facts before the next is fetched, so
/// memory follows the facts, not the (much larger) objects; a 10,000-node cluster's Nodes and
/// ResourceSlices are hundreds of MB of JSON.
const PAGE: u32 = 500;

/// Every object `lp` selects, listed a page at a time and each reduced with `reduce`.
async fn list_reduced<K, T>(
    api: &Api<K>,
    mut lp: ListParams,
    reduce: impl Fn(&K) -> T,
) -> Result<Vec<T>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    lp = lp.limit(PAGE);
    let mut out = Vec::new();
    loop {
        let page = api.list(&lp).await?;
        out.extend(page.items.iter().map(&reduce));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => return Ok(out),
        }
    }
}

/// The selected nodes' facts and agent targets, sorted by name.
async fn list_nodes(
    client: &kube::Client,
    node_selector: Option<&str>,
) -> Result<(Vec<NodeFacts>, Vec<AgentTarget>), kube::Error> {
    let mut lp = ListParams::default();
    if let Some(sel) = node_selector {
        lp = lp.labels(sel);
    }
    let mut both = list_reduced(&Api::<Node>::all(client.clone()), lp, |n| {
        (node_facts(n), agent_target(n))
    })
    .await?;
    both.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(both.into_iter().unzip())
}

/// Where and how the agent can run on a node: its taints and allocatable GPUs.
pub fn agent_target(n: &Node) -> AgentTarget {
    AgentTarget {
        node: n.metadata.name.clone().unwrap_or_default(),
        taints: n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default(),
        gpus: n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get("nvidia.com/gpu"))
            .and_then(|q| q.0.parse().ok())
            .unwrap_or(0),
    }
}

/// List everything the snapshot needs. Nodes and the server version are required; the rest
/// is best effort (a missing API or permission becomes a note).
pub async fn collect(
    client: &kube::Client,
    node_selector: Option<&str>,
) -> Result<(ClusterFacts, Vec<AgentTarget>), SnapshotError> {
    let api_err = |what: &str| {
        let what = what.to_string();
        move |e: kube::Error| SnapshotError::Api {
            what: what.clone(),
            message: super::kube_message(&e),
        }
    };
    let version = client
        .apiserver_version()
        .await
        .map_err(api_err("server version"))?;
    let (node_facts, targets) = list_nodes(client, node_selector)
        .await
        .map_err(api_err("nodes"))?;
    let mut notes = Vec::new();

    let helm_lp = ListParams::default()
        .labels("owner=helm")
        .fields("type=helm.sh/release.v1");
    let releases = optional(
        "Helm release secrets",
        Api::<Secret>::all(client.clone())
            .list_metadata(&helm_lp)
            .await,
        &mut notes,
    )
    .map(|l| {
        l.items
            .iter()
            .filter_map(|s| helm_release(&s.metadata))
            .collect()
    })
    .unwrap_or_default();
    let helm_releases = latest_releases(releases);

    let known_crds: Vec<&str> = KNOWN_OPERATORS
        .iter()
        .flat_map(|k| k.crds.iter().copied())
        .collect();
    let mut crds: Vec<String> = optional(
        "CustomResourceDefinitions",
        Api::<CustomResourceDefinition>::all(client.clone())
            .list_metadata(&ListParams::default())
            .await,
        &mut notes,
    )
    .map(|l| {
        l.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .filter(|n| known_crds.contains(&n.as_str()))
            .collect()
    })
    .unwrap_or_default();
    crds.sort();

    let mut workloads: Vec<Workload> = Vec::new();
    if let Some(l) = optional(
        "Deployments",
        list_reduced(
            &Api::<Deployment>::all(client.clone()),
            ListParams::default(),
            deployment_workload,
        )
        .await,
        &mut notes,
    ) {
        workloads.extend(l);
    }
    if let Some(l) = optional(
        "DaemonSets",
        list_reduced(
            &Api::<DaemonSet>::all(client.clone()),
            ListParams::default(),
            daemonset_workload,
        )
        .await,
        &mut notes,
    ) {
        workloads.extend(l);
    }
    let operators = detect_operators(&helm_releases, &crds, &workloads);

    let mut device_classes: Vec<DeviceClassFacts> = optional(
        "DeviceClasses (resource.k8s.io/v1)",
        Api::<DeviceClass>::all(client.clone())
            .list(&ListParams::default())
            .await,
        &mut notes,
    )
    .map(|l| l.items.iter().map(device_class_facts).collect())
    .unwrap_or_default();
    device_classes.sort();
    let mut resource_slices: Vec<ResourceSliceFacts> = optional(
        "ResourceSlices (resource.k8s.io/v1)",
        list_reduced(
            &Api::<ResourceSlice>::all(client.clone()),
            ListParams::default(),
            resource_slice_facts,
        )
        .await,
        &mut notes,
    )
    .unwrap_or_default();
    resource_slices.sort();

    let facts = ClusterFacts {
        server_version: ServerVersion {
            git_version: version.git_version.clone(),
            platform: version.platform.clone(),
        },
        nodes: node_facts,
        operators,
        helm_releases,
        crds,
        device_classes,
        resource_slices,
        notes,
    };
    Ok((facts, targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn gpu_labels_from_gfd() {
        let labels = map(&[
            ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),
            ("nvidia.com/gpu.count", "8"),
            ("nvidia.com/gpu.memory", "81559"),
            ("nvidia.com/cuda.driver.major", "550"),
            ("nvidia.com/cuda.driver.minor", "127"),
            ("nvidia.com/cuda.driver.rev", "05"),
            ("nvidia.com/cuda.runtime.major", "12"),
            ("nvidia.com/cuda.runtime.minor", "4"),
            ("nvidia.com/mig.capable", "true"),
            ("nvidia.com/mig.strategy", "single"),
        ]);
        let g = gpu_labels(&labels, &map(&[("nvidia.com/gpu", "8")]));
        assert_eq!(g.capacity, Some(8));
        assert_eq!(g.count, Some(8));
        assert_eq!(g.memory_mib, Some(81559));
        assert_eq!(g.driver_version.as_deref(), Some("550.127.05"));
        assert_eq!(g.cuda_version.as_deref(), Some("12.4"));
        assert_eq!(g.mig_capable, Some(true));
        // Partial driver labels do not make up a version; newer full labels win.
        let g = gpu_labels(
            &map(&[
                ("nvidia.com/cuda.driver.major", "550"),
                ("nvidia.com/cuda.runtime-version.full", "12.8"),
                ("nvidia.com/gpu.count", "eight"),
            ]),
            &BTreeMap::new(),
        );
        assert_eq!(g.driver_version, None);
        assert_eq!(g.cuda_version.as_deref(), Some("12.8"));
        assert_eq!(g.count, None);
        assert!(gpu_labels(&BTreeMap::new(), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn versions_from_workloads() {
        assert_eq!(
            image_tag("nvcr.io/nvidia/gpu-operator:v25.10.1"),
            Some("v25.10.1")
        );
        assert_eq!(image_tag("registry:5000/x/y"), None);
        assert_eq!(image_tag("registry:5000/x/y:1.2@sha256:abc"), Some("1.2"));
        assert_eq!(chart_version("gpu-operator-v25.10.1"), Some("v25.10.1"));
        assert_eq!(
            chart_version("kube-prometheus-stack-82.8.0"),
            Some("82.8.0")
        );
        assert_eq!(chart_version("nochart"), None);
        let w = Workload {
            labels: map(&[("helm.sh/chart", "cert-manager-v1.17.2")]),
            images: vec!["quay.io/jetstack/cert-manager-controller:v1.17.1".into()],
            ..Workload::default()
        };
        assert_eq!(workload_version(&w).as_deref(), Some("v1.17.2"));
        let w = Workload {
            images: vec!["busybox:latest".into(), "x/y:2.0".into()],
            ..Workload::default()
        };
        assert_eq!(workload_version(&w).as_deref(), Some("2.0"));
    }

    #[test]
    fn operators_by_helm_crd_and_workload() {
        let releases = vec![HelmRelease {
            name: "gpu-operator".into(),
            namespace: "gpu-operator".into(),
            revision: "2".into(),
            status: "deployed".into(),
        }];
        let crds = vec![
            "clusterpolicies.nvidia.com".to_string(),
            "foo.example.com".to_string(),
        ];
        let workloads = vec![
            Workload {
                kind: "deployment",
                namespace: "gpu-operator".into(),
                name: "gpu-operator".into(),
                labels: map(&[("app.kubernetes.io/version", "v25.10.1")]),
                ready: true,
                ..Workload::default()
            },
            Workload {
                kind: "deployment",
                namespace: "cm".into(),
                name: "my-cm".into(),
                labels: map(&[("app.kubernetes.io/name", "cert-manager")]),
                ready: false,
                ..Workload::default()
            },
        ];
        let ops = detect_operators(&releases, &crds, &workloads);
        assert_eq!(
            ops.keys().collect::<Vec<_>>(),
            ["cert-manager", "gpu-operator"]
        );
        let g = &ops["gpu-operator"];
        assert_eq!(g.version.as_deref(), Some("v25.10.1"));
        assert_eq!(g.ready, Some(true));
        assert_eq!(
            g.evidence,
            [
                "crd:clusterpolicies.nvidia.com",
                "deployment:gpu-operator/gpu-operator",
                "helm:gpu-operator/gpu-operator"
            ]
        );
        assert_eq!(ops["cert-manager"].ready, Some(false));
    }

    #[test]
    fn helm_latest_revision_wins() {
        let r = |rev: &str, status: &str| HelmRelease {
            name: "a".into(),
            namespace: "ns".into(),
            revision: rev.into(),
            status: status.into(),
        };
        let out = latest_releases(vec![
            r("2", "superseded"),
            r("10", "deployed"),
            r("9", "superseded"),
        ]);
        assert_eq!(out, vec![r("10", "deployed")]);
    }
}
