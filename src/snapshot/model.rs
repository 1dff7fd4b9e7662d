//! The snapshot document: cluster facts from the API server plus node facts from agents.
//!
//! Every map is a `BTreeMap` and every list is sorted before serialization, so the same
//! cluster state always renders to the same YAML (apart from `metadata.createdAt`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const API_VERSION: &str = "aiconform.dev/v1alpha1";
pub const SNAPSHOT_KIND: &str = "Snapshot";
pub const AGENT_KIND: &str = "NodeFacts";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub api_version: String,
    pub kind: String,
    pub metadata: SnapshotMetadata,
    pub cluster: ClusterFacts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMetadata {
    pub tool_version: String,
    /// RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// Label selector the nodes were chosen with (empty: all nodes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    /// Whether node agents were run (`--no-agent` turns them off).
    #[serde(default)]
    pub agents: bool,
}

/// Cluster facts. On the wire, nodes are written as node classes (`snapshot/wire.rs`); a flat
/// `nodes` list is read as well.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFacts {
    pub server_version: ServerVersion,
    /// Selected nodes, sorted by name.
    pub nodes: Vec<NodeFacts>,
    /// Known operators found by Helm release, CRD or workload name, by component name.
    pub operators: BTreeMap<String, OperatorFacts>,
    /// Helm releases (from the labels of release Secrets only; never their payload).
    pub helm_releases: Vec<HelmRelease>,
    /// Known CRDs that are installed, sorted.
    pub crds: Vec<String>,
    pub device_classes: Vec<DeviceClassFacts>,
    pub resource_slices: Vec<ResourceSliceFacts>,
    /// What could not be listed (missing API or permission) and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    pub git_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub effect: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub os_image: String,
    pub kernel_version: String,
    pub container_runtime_version: String,
    pub kubelet_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operating_system: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
}

/// GPU facts read from a node's labels (GPU Feature Discovery) and capacity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuLabels {
    /// `capacity["nvidia.com/gpu"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, rename = "memoryMiB", skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_capable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_strategy: Option<String>,
}

impl GpuLabels {
    pub fn is_empty(&self) -> bool {
        self == &GpuLabels::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFacts {
    /// Empty only in a node class's template, whose members carry the names.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `spec.providerID`, e.g. `aws:///us-east-1a/i-0abc` (empty when the node has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider_id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub capacity: BTreeMap<String, String>,
    #[serde(default)]
    pub allocatable: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    pub node_info: NodeInfo,
    #[serde(default, skip_serializing_if = "GpuLabels::is_empty")]
    pub gpu: GpuLabels,
    pub agent: AgentOutcome,
}

/// What the node agent produced for a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum AgentOutcome {
    /// The agent ran and its report was read from the pod log.
    Collected { report: Box<AgentReport> },
    /// The agent could not run or its output could not be read; node facts come from the
    /// Node object (nodeInfo) instead.
    Unavailable { reason: String },
    /// `--no-agent`.
    Skipped,
}

impl AgentOutcome {
    pub fn report(&self) -> Option<&AgentReport> {
        match self {
            AgentOutcome::Collected { report } => Some(report),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// How it was found, e.g. `helm:gpu-operator/gpu-operator`, `crd:clusterpolicies.nvidia.com`,
    /// `deployment:gpu-operator/gpu-operator`. Sorted.
    pub evidence: Vec<String>,
    /// All workloads found for it are ready (absent when no workload was found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
    /// Release revision (the `version` label of the release Secret).
    pub revision: String,
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceClassFacts {
    pub name: String,
    /// CEL selector expressions.
    #[serde(default)]
    pub selectors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSliceFacts {
    pub name: String,
    pub driver: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    pub pool: String,
    pub device_count: usize,
}

/// What `aiconform agent` reports about one machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentReport {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub tool_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `/etc/os-release` key/values.
    #[serde(default)]
    pub os_release: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// Selected sysctls that exist on this machine.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// Loaded kernel modules, sorted.
    #[serde(default)]
    pub modules: Vec<String>,
    #[serde(default, skip_serializing_if = "CpuFacts::is_empty")]
    pub cpu: CpuFacts,
    /// Every PCI function, sorted by address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pci_devices: Vec<PciDevice>,
    #[serde(default)]
    pub gpu: GpuReport,
    /// Node-health readings (PCIe, InfiniBand, kernel log, nvidia-smi, DCGM); absent from
    /// agents that did not collect them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Box<super::health::HealthReadings>>,
    /// Facts that could not be collected and why.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// CPU facts from `/proc/cpuinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuFacts {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    #[serde(default)]
    pub logical_cpus: u32,
}

impl CpuFacts {
    pub fn is_empty(&self) -> bool {
        self == &CpuFacts::default()
    }
}

/// One PCI function from sysfs (ids as `0x`-prefixed hex).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PciDevice {
    /// e.g. `0000:18:00.0`.
    pub address: String,
    pub vendor_id: String,
    pub device_id: String,
    /// 24-bit class code, e.g. `0x030200` (3D controller).
    pub class: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuSource {
    /// NVML (driver loaded): full facts.
    Nvml,
    /// PCI devices in sysfs (no driver needed): model and count only.
    Sysfs,
    #[default]
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuReport {
    pub source: GpuSource,
    /// `null` when NVML loaded; else `no NVML: <reason>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    #[serde(default)]
    pub devices: Vec<GpuDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuDevice {
    pub model: String,
    /// PCI address, e.g. `0000:18:00.0`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pci_address: String,
    /// PCI device id, e.g. `0x2330`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pci_device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, rename = "memoryMiB", skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// `enabled`/`disabled` (NVML only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_mode: Option<String>,
    /// Active NVLink links (NVML only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_active: Option<u32>,
}
