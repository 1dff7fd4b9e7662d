//! Flattening a snapshot into measurements: `Type.subtype.key` → values with their source.
//!
//! Paths (see also the module docs of [`crate::readiness`]):
//!
//! | path | from | one value per |
//! |---|---|---|
//! | `K8s.server.version` | API server `gitVersion` | cluster |
//! | `K8s.node.count` | selected nodes | cluster |
//! | `K8s.node.gpuCount` | selected nodes with at least one GPU | cluster |
//! | `K8s.gpu.total` | sum of GPUs over selected nodes | cluster |
//! | `K8s.node.kubeletVersion`, `K8s.node.containerRuntime`, `K8s.node.architecture` | nodeInfo | node |
//! | `K8s.crd.<name>` = `present` | known CRDs | cluster |
//! | `DRA.deviceClass.<name>` = `present` | DeviceClasses | cluster |
//! | `DRA.driver.<driver>.devices` / `.nodes` | ResourceSlices | cluster |
//! | `Operator.<name>.version` / `.installed` / `.ready` | Helm, CRDs, workloads | cluster |
//! | `Helm.release.<name>.status` / `.revision` | release Secret labels | release |
//! | `OS.release.<KEY>` (`ID`, `VERSION_ID`, …) | agent, else nodeInfo.osImage | node |
//! | `OS.kernel.release` | agent, else nodeInfo.kernelVersion | node |
//! | `OS.sysctl.<key>` | agent | node |
//! | `OS.module.<name>` = `loaded` | agent | node |
//! | `GPU.device.model` (distinct per node), `GPU.device.count`, `GPU.device.memoryMiB` | agent (NVML or sysfs), else node labels | node |
//! | `GPU.driver.version`, `GPU.cuda.version` | NVML, else node labels | node |
//! | `GPU.mig.mode` (`enabled`/`disabled`), `GPU.nvlink.active` | NVML | node |
//! | `GPU.mig.capable`, `GPU.mig.strategy` | node labels | node |
//!
//! Node-level values may differ across nodes; a constraint must hold for every value. Nodes
//! expected to report a node-level path ([`expected_nodes`]: every selected node for `OS.*`
//! and `K8s.node.<per-node key>`, every GPU node for `GPU.*`) but lacking it make the
//! constraint `missing` — an unverified node does not pass silently.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::model::{GpuSource, NodeFacts, Snapshot};
use super::osrelease;

/// One measured value and where it came from (`cluster`, `node/<name>`,
/// `node/<name> (nodeInfo)`, `node/<name> (labels)`, `helm/<namespace>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Measured {
    pub value: String,
    pub source: String,
}

pub type Measurements = BTreeMap<String, Vec<Measured>>;

struct Sink(Measurements);

impl Sink {
    fn put(&mut self, path: impl Into<String>, value: impl Into<String>, source: &str) {
        self.0.entry(path.into()).or_default().push(Measured {
            value: value.into(),
            source: source.to_string(),
        });
    }
}

/// GPUs on a node: agent devices when it found any, else `capacity`, else the count label.
pub fn node_gpu_count(node: &NodeFacts) -> u32 {
    if let Some(r) = node.agent.report()
        && !r.gpu.devices.is_empty()
    {
        return u32::try_from(r.gpu.devices.len()).unwrap_or(u32::MAX);
    }
    node.gpu.capacity.or(node.gpu.count).unwrap_or(0)
}

/// Per-node paths under `K8s.node.` (the others there are cluster-wide counts).
const PER_NODE_K8S: &[&str] = &[
    "K8s.node.kubeletVersion",
    "K8s.node.containerRuntime",
    "K8s.node.architecture",
];

/// The nodes that should each report `path`, or `None` for cluster-level paths.
pub fn expected_nodes<'a>(snapshot: &'a Snapshot, path: &str) -> Option<Vec<&'a str>> {
    let nodes = &snapshot.cluster.nodes;
    if path.starts_with("OS.") || PER_NODE_K8S.contains(&path) {
        Some(nodes.iter().map(|n| n.name.as_str()).collect())
    } else if path.starts_with("GPU.") {
        Some(
            nodes
                .iter()
                .filter(|n| node_gpu_count(n) > 0)
                .map(|n| n.name.as_str())
                .collect(),
        )
    } else {
        None
    }
}

/// Whether a measurement source (`node/<name>` or `node/<name> (…)`) is that node.
pub fn source_is_node(source: &str, node: &str) -> bool {
    source
        .strip_prefix("node/")
        .and_then(|rest| rest.strip_prefix(node))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// Flatten a snapshot. Values of each path are sorted by source for stable output.
pub fn flatten(snapshot: &Snapshot) -> Measurements {
    let mut s = Sink(Measurements::new());
    let c = &snapshot.cluster;
    let cluster = "cluster";
    if !c.server_version.git_version.is_empty() {
        s.put("K8s.server.version", &c.server_version.git_version, cluster);
    }
    s.put("K8s.node.count", c.nodes.len().to_string(), cluster);
    let gpu_counts: Vec<u32> = c.nodes.iter().map(node_gpu_count).collect();
    s.put(
        "K8s.node.gpuCount",
        gpu_counts.iter().filter(|n| **n > 0).count().to_string(),
        cluster,
    );
    s.put(
        "K8s.gpu.total",
        gpu_counts
            .iter()
            .map(|n| u64::from(*n))
            .sum::<u64>()
            .to_string(),
        cluster,
    );
    for crd in &c.crds {
        s.put(format!("K8s.crd.{crd}"), "present", cluster);
    }
    for dc in &c.device_classes {
        s.put(format!("DRA.deviceClass.{}", dc.name), "present", cluster);
    }
    let mut per_driver: BTreeMap<&str, (usize, BTreeSet<&str>)> = BTreeMap::new();
    for slice in &c.resource_slices {
        let e = per_driver.entry(&slice.driver).or_default();
        e.0 += slice.device_count;
        if !slice.node_name.is_empty() {
            e.1.insert(&slice.node_name);
        }
    }
    for (driver, (devices, nodes)) in per_driver {
        s.put(
            format!("DRA.driver.{driver}.devices"),
            devices.to_string(),
            cluster,
        );
        s.put(
            format!("DRA.driver.{driver}.nodes"),
            nodes.len().to_string(),
            cluster,
        );
    }
    for (name, op) in &c.operators {
        s.put(format!("Operator.{name}.installed"), "true", cluster);
        if let Some(v) = &op.version {
            s.put(format!("Operator.{name}.version"), v, cluster);
        }
        if let Some(r) = op.ready {
            s.put(format!("Operator.{name}.ready"), r.to_string(), cluster);
        }
    }
    for rel in &c.helm_releases {
        let src = format!("helm/{}", rel.namespace);
        s.put(
            format!("Helm.release.{}.status", rel.name),
            &rel.status,
            &src,
        );
        s.put(
            format!("Helm.release.{}.revision", rel.name),
            &rel.revision,
            &src,
        );
    }
    for node in &c.nodes {
        flatten_node(&mut s, node);
    }
    let mut out = s.0;
    for values in out.values_mut() {
        values.sort_by(|a, b| a.source.cmp(&b.source).then(a.value.cmp(&b.value)));
    }
    out
}

fn flatten_node(s: &mut Sink, node: &NodeFacts) {
    let src = format!("node/{}", node.name);
    let info_src = format!("node/{} (nodeInfo)", node.name);
    let label_src = format!("node/{} (labels)", node.name);
    let info = &node.node_info;
    if !info.kubelet_version.is_empty() {
        s.put("K8s.node.kubeletVersion", &info.kubelet_version, &info_src);
    }
    if !info.container_runtime_version.is_empty() {
        s.put(
            "K8s.node.containerRuntime",
            &info.container_runtime_version,
            &info_src,
        );
    }
    if !info.architecture.is_empty() {
        s.put("K8s.node.architecture", &info.architecture, &info_src);
    }

    let report = node.agent.report();
    // OS facts: agent first, nodeInfo as fallback.
    match report.filter(|r| !r.os_release.is_empty()) {
        Some(r) => {
            for (k, v) in &r.os_release {
                s.put(format!("OS.release.{k}"), v, &src);
            }
        }
        None => {
            for (k, v) in osrelease::from_os_image(&info.os_image) {
                s.put(format!("OS.release.{k}"), v, &info_src);
            }
        }
    }
    match report.and_then(|r| r.kernel_release.as_ref()) {
        Some(k) => s.put("OS.kernel.release", k, &src),
        None if !info.kernel_version.is_empty() => {
            s.put("OS.kernel.release", &info.kernel_version, &info_src)
        }
        None => {}
    }
    if let Some(r) = report {
        for (k, v) in &r.sysctls {
            s.put(format!("OS.sysctl.{k}"), v, &src);
        }
        for m in &r.modules {
            s.put(format!("OS.module.{m}"), "loaded", &src);
        }
    }

    // GPU facts: agent devices first, node labels as fallback.
    let agent_gpu = report.map(|r| &r.gpu).filter(|g| !g.devices.is_empty());
    match agent_gpu {
        Some(g) => {
            let models: BTreeSet<&str> = g.devices.iter().map(|d| d.model.as_str()).collect();
            for m in models {
                s.put("GPU.device.model", m, &src);
            }
            s.put("GPU.device.count", g.devices.len().to_string(), &src);
            let mems: BTreeSet<u64> = g.devices.iter().filter_map(|d| d.memory_mib).collect();
            for m in &mems {
                s.put("GPU.device.memoryMiB", m.to_string(), &src);
            }
            if mems.is_empty()
                && let Some(m) = node.gpu.memory_mib
            {
                s.put("GPU.device.memoryMiB", m.to_string(), &label_src);
            }
            if let Some(v) = &g.driver_version {
                s.put("GPU.driver.version", v, &src);
            }
            if let Some(v) = &g.cuda_version {
                s.put("GPU.cuda.version", v, &src);
            }
            let migs: BTreeSet<&str> = g
                .devices
                .iter()
                .filter_map(|d| d.mig_mode.as_deref())
                .collect();
            for m in migs {
                s.put("GPU.mig.mode", m, &src);
            }
            let links: BTreeSet<u32> = g.devices.iter().filter_map(|d| d.nvlink_active).collect();
            for l in links {
                s.put("GPU.nvlink.active", l.to_string(), &src);
            }
            s.put(
                "GPU.detection.source",
                match g.source {
                    GpuSource::Nvml => "nvml",
                    GpuSource::Sysfs => "sysfs",
                    GpuSource::None => "none",
                },
                &src,
            );
            // The driver and CUDA versions are still known from labels when NVML is not.
            if g.source != GpuSource::Nvml {
                put_label_versions(s, node, &label_src);
            }
        }
        None => {
            let g = &node.gpu;
            if let Some(p) = &g.product {
                s.put("GPU.device.model", p, &label_src);
            }
            if let Some(n) = g.capacity.or(g.count).filter(|n| *n > 0) {
                s.put("GPU.device.count", n.to_string(), &label_src);
            }
            if let Some(m) = g.memory_mib {
                s.put("GPU.device.memoryMiB", m.to_string(), &label_src);
            }
            if !g.is_empty() {
                s.put("GPU.detection.source", "labels", &label_src);
            }
            put_label_versions(s, node, &label_src);
        }
    }
    if let Some(m) = node.gpu.mig_capable {
        s.put("GPU.mig.capable", m.to_string(), &label_src);
    }
    if let Some(m) = &node.gpu.mig_strategy {
        s.put("GPU.mig.strategy", m, &label_src);
    }
}

fn put_label_versions(s: &mut Sink, node: &NodeFacts, label_src: &str) {
    if let Some(v) = &node.gpu.driver_version {
        s.put("GPU.driver.version", v, label_src);
    }
    if let Some(v) = &node.gpu.cuda_version {
        s.put("GPU.cuda.version", v, label_src);
    }
}
