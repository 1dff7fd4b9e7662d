//! Node-health suite: one case per hardware check, evaluated on every GPU node from the
//! readings its node agent collected (`aiconform agent --health`: sysfs, the kernel log,
//! `nvidia-smi`, `dcgmi diag`), never from the Node object alone.
//!
//! Each check is a pure function of one node's facts and the expectations
//! ([`expect::Expectations`]: the recipe's `validation.nodeHealth` over the suite's
//! parameters, each value with its source). A node is healthy, unhealthy, or not observed
//! (no agent, no driver utilities, no permission: the reason is kept, and such a node never
//! counts as healthy). The case fails when any node is unhealthy, passes when every node
//! was observed healthy, and is skipped otherwise. Every node's verdict is recorded for the
//! reports (`node-health/xid[gpu-3]`).
//!
//! - [`gpu_count`]: GPUs seen vs the recipe and vs allocatable, naming missing addresses.
//! - [`xid`]: Xid/SXid events classified fatal or degraded.
//! - [`ecc`]: uncorrectable ECC errors, retired pages, row remapping pending or failed.
//! - [`nvlink`]: links up per GPU vs expected, error counters over thresholds.
//! - [`pcie`]: current link generation and width vs max (and the recipe) for GPUs and NICs.
//! - [`infiniband`]: port state, physical state and rate vs expected.
//! - [`thermal`]: clock event (throttle) reasons and temperature vs the slowdown threshold.
//! - [`dcgm`]: `dcgmi diag` results.

pub mod dcgm;
pub mod ecc;
pub mod expect;
pub mod gpu_count;
pub mod infiniband;
pub mod nvlink;
pub mod pcie;
pub mod thermal;
pub mod xid;

use futures::future::BoxFuture;

use crate::runner::CaseContext;
use crate::runner::case::{NodeResult, Outcome};
use crate::runner::result::Status;
use crate::snapshot::health::{GpuHealth, HealthReadings};
use crate::snapshot::model::{AgentOutcome, AgentReport, NodeFacts};
pub use expect::Expectations;

/// One node's verdict for one check.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeVerdict {
    Healthy(String),
    Unhealthy(String),
    /// The readings the check needs are missing; the reason says why.
    NotObserved(String),
}

impl NodeVerdict {
    fn status(&self) -> Status {
        match self {
            NodeVerdict::Healthy(_) => Status::Passed,
            NodeVerdict::Unhealthy(_) => Status::Failed,
            NodeVerdict::NotObserved(_) => Status::Skipped,
        }
    }
    fn message(&self) -> &str {
        match self {
            NodeVerdict::Healthy(m) | NodeVerdict::Unhealthy(m) | NodeVerdict::NotObserved(m) => m,
        }
    }
}

/// Everything a check sees of one node.
pub struct NodeView<'a> {
    pub node: &'a NodeFacts,
    pub report: &'a AgentReport,
    pub health: &'a HealthReadings,
    /// The other GPU nodes (for peer comparisons).
    pub peers: &'a [&'a NodeFacts],
}

/// The GPUs `nvidia-smi` listed on the node, or the not-observed verdict saying why there
/// are none to judge.
pub fn listed_gpus<'a>(v: &NodeView<'a>) -> Result<&'a [GpuHealth], NodeVerdict> {
    match v.health.gpus.observed() {
        Ok(g) if g.is_empty() => Err(NodeVerdict::NotObserved("nvidia-smi listed no GPUs".into())),
        Ok(g) => Ok(g),
        Err(reason) => Err(NodeVerdict::NotObserved(reason.to_string())),
    }
}

/// The verdict of a per-device check: unhealthy naming each device with problems
/// (`describe`d, then its problems), else healthy with `summary`.
pub fn per_device<D>(
    devices: &[D],
    describe: impl Fn(&D) -> String,
    problems: impl Fn(&D) -> Vec<String>,
    summary: impl FnOnce() -> String,
) -> NodeVerdict {
    let bad: Vec<String> = devices
        .iter()
        .filter_map(|d| {
            let p = problems(d);
            (!p.is_empty()).then(|| format!("{}: {}", describe(d), p.join(", ")))
        })
        .collect();
    if bad.is_empty() {
        NodeVerdict::Healthy(summary())
    } else {
        NodeVerdict::Unhealthy(bad.join("; "))
    }
}

/// A check: the verdict for one node.
pub type Check = fn(&NodeView<'_>, &Expectations) -> NodeVerdict;

/// `nvidia.com/gpu` a node advertises (capacity, else allocatable).
pub fn advertised_gpus(node: &NodeFacts) -> Option<u64> {
    node.allocatable
        .get("nvidia.com/gpu")
        .or_else(|| node.capacity.get("nvidia.com/gpu"))
        .and_then(|v| v.parse().ok())
}

/// Whether a node is a GPU node: it advertises GPUs, carries GPU labels, or its agent
/// saw GPUs.
pub fn is_gpu_node(node: &NodeFacts) -> bool {
    advertised_gpus(node).is_some_and(|n| n > 0)
        || node.gpu.count.is_some_and(|n| n > 0)
        || node.gpu.product.is_some()
        || node
            .agent
            .report()
            .is_some_and(|r| !r.gpu.devices.is_empty())
}

/// The readings of a node, or why there are none.
fn readings(node: &NodeFacts) -> Result<(&AgentReport, &HealthReadings), String> {
    match &node.agent {
        AgentOutcome::Collected { report } => match &report.health {
            Some(h) => Ok((report, h)),
            None => Err(
                "the agent collected no node-health readings (snapshot taken without them; run with --phase node-health or `aiconform agent --health`)"
                    .into(),
            ),
        },
        AgentOutcome::Unavailable { reason } => Err(format!("no agent report: {reason}")),
        AgentOutcome::Skipped => Err("node agents were not run (--no-agent)".into()),
    }
}

/// `GPU 3 (GPU-..., 0000:4b:00.0)`: how verdicts name a GPU, from the readings that know it.
pub fn gpu_name(report: &AgentReport, health: &HealthReadings, pci: &str) -> String {
    let pci = pci.to_lowercase();
    let matches = |addr: &str| addr == pci || addr.starts_with(&format!("{pci}."));
    if let Ok(gpus) = health.gpus.observed()
        && let Some(g) = gpus.iter().find(|g| matches(&g.pci_address))
    {
        return format!("GPU {} ({}, {})", g.index, g.uuid, g.pci_address);
    }
    if let Some((i, d)) = report
        .gpu
        .devices
        .iter()
        .enumerate()
        .find(|(_, d)| matches(&d.pci_address))
    {
        return match &d.uuid {
            Some(u) => format!("GPU {i} ({u}, {})", d.pci_address),
            None => format!("GPU {i} ({})", d.pci_address),
        };
    }
    format!("PCI {pci}")
}

/// Evaluate `check` on every GPU node of the snapshot.
pub fn evaluate(ctx: &CaseContext, check: Check) -> Outcome {
    let Some(snapshot) = &ctx.snapshot else {
        return Outcome::skipped(
            "no snapshot: node-health reads the node agents' readings; run against a cluster (a snapshot with readings is taken) or pass --snapshot",
        );
    };
    let exp = match Expectations::from_params(&ctx.spec.params) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::failed(format!(
                "{} (recipe {}: validation.nodeHealth)",
                e, ctx.recipe.metadata.name
            ));
        }
    };
    let nodes: Vec<&NodeFacts> = snapshot
        .cluster
        .nodes
        .iter()
        .filter(|n| is_gpu_node(n))
        .collect();
    if nodes.is_empty() {
        return Outcome::skipped("no GPU nodes in the snapshot");
    }
    let mut verdicts: Vec<(&str, NodeVerdict)> = Vec::new();
    let mut stopped = 0;
    for (i, node) in nodes.iter().enumerate() {
        let peers: Vec<&NodeFacts> = nodes
            .iter()
            .filter(|p| p.name != node.name)
            .copied()
            .collect();
        let v = match readings(node) {
            Ok((report, health)) => check(
                &NodeView {
                    node,
                    report,
                    health,
                    peers: &peers,
                },
                &exp,
            ),
            Err(reason) => NodeVerdict::NotObserved(reason),
        };
        let bad = matches!(v, NodeVerdict::Unhealthy(_));
        verdicts.push((&node.name, v));
        if bad && ctx.fail_fast {
            stopped = nodes.len() - i - 1;
            break;
        }
    }
    for (node, v) in &verdicts {
        ctx.metrics.record_node(NodeResult {
            case_id: ctx.spec.id.clone(),
            node: (*node).to_string(),
            status: v.status(),
            message: v.message().to_string(),
        });
    }
    summarize(&verdicts, stopped)
}

/// The case's outcome from its nodes' verdicts.
pub fn summarize(verdicts: &[(&str, NodeVerdict)], stopped: usize) -> Outcome {
    let line = |(node, v): &(&str, NodeVerdict)| format!("{node}: {}", v.message());
    let failed: Vec<String> = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, NodeVerdict::Unhealthy(_)))
        .map(line)
        .collect();
    let unobserved: Vec<String> = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, NodeVerdict::NotObserved(_)))
        .map(line)
        .collect();
    let healthy = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, NodeVerdict::Healthy(_)))
        .count();
    if !failed.is_empty() {
        let mut m = format!(
            "{} of {} node(s) unhealthy: {}",
            failed.len(),
            verdicts.len() + stopped,
            failed.join("; ")
        );
        if !unobserved.is_empty() {
            m.push_str(&format!("; not observed: {}", unobserved.join("; ")));
        }
        if stopped > 0 {
            m.push_str(&format!(
                "; stopped at the first bad node (--fail-fast): {stopped} node(s) not evaluated"
            ));
        }
        return Outcome::failed(m);
    }
    if !unobserved.is_empty() {
        return Outcome::skipped(format!(
            "not observed on {} of {} node(s) ({healthy} healthy): {}",
            unobserved.len(),
            verdicts.len(),
            unobserved.join("; ")
        ));
    }
    let shown: Vec<String> = verdicts.iter().take(4).map(line).collect();
    let more = if verdicts.len() > 4 {
        format!("; and {} more", verdicts.len() - 4)
    } else {
        String::new()
    };
    Outcome::passed(format!(
        "{} node(s) healthy: {}{more}",
        verdicts.len(),
        shown.join("; ")
    ))
}

macro_rules! case {
    ($name:ident, $check:path) => {
        pub fn $name(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
            Box::pin(async move { Ok(evaluate(&ctx, $check)) })
        }
    };
}

case!(gpu_count_case, gpu_count::check);
case!(xid_case, xid::check);
case!(ecc_case, ecc::check);
case!(nvlink_case, nvlink::check);
case!(pcie_case, pcie::check);
case!(infiniband_case, infiniband::check);
case!(thermal_case, thermal::check);
case!(dcgm_case, dcgm::check);

#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;

    use crate::snapshot::health::{HealthReadings, Reading};
    use crate::snapshot::model::{AgentOutcome, AgentReport, GpuDevice, NodeFacts, NodeInfo};

    /// A GPU node with `gpus` sysfs GPUs at `0000:{18+i}:00.0` and the given readings.
    pub fn node(name: &str, gpus: usize, health: HealthReadings) -> NodeFacts {
        let report = AgentReport {
            gpu: crate::snapshot::model::GpuReport {
                devices: (0..gpus)
                    .map(|i| GpuDevice {
                        model: "NVIDIA H100 80GB HBM3".into(),
                        pci_address: addr(i),
                        ..GpuDevice::default()
                    })
                    .collect(),
                ..Default::default()
            },
            health: Some(Box::new(health)),
            ..AgentReport::default()
        };
        NodeFacts {
            name: name.into(),
            provider_id: String::new(),
            labels: BTreeMap::new(),
            capacity: BTreeMap::from([("nvidia.com/gpu".into(), "8".into())]),
            allocatable: BTreeMap::from([("nvidia.com/gpu".into(), "8".into())]),
            taints: Vec::new(),
            node_info: NodeInfo::default(),
            gpu: Default::default(),
            agent: AgentOutcome::Collected {
                report: Box::new(report),
            },
        }
    }

    pub fn addr(i: usize) -> String {
        format!("0000:{:02x}:00.0", 0x18 + i)
    }

    pub fn observed<T>(v: T) -> Reading<T> {
        Reading::Observed(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_from_verdicts() {
        let h = |m: &str| NodeVerdict::Healthy(m.into());
        let u = |m: &str| NodeVerdict::Unhealthy(m.into());
        let n = |m: &str| NodeVerdict::NotObserved(m.into());
        let o = summarize(&[("a", h("8 GPUs")), ("b", h("8 GPUs"))], 0);
        assert_eq!(
            o,
            Outcome::passed("2 node(s) healthy: a: 8 GPUs; b: 8 GPUs")
        );
        let o = summarize(&[("a", h("ok")), ("b", n("no nvidia-smi"))], 0);
        assert!(
            matches!(&o, Outcome::Skipped { reason } if reason.contains("not observed on 1 of 2 node(s) (1 healthy): b: no nvidia-smi")),
            "{o:?}"
        );
        let o = summarize(&[("a", u("7 of 8 GPUs")), ("b", n("x"))], 3);
        let Outcome::Failed { message } = o else {
            panic!()
        };
        assert!(
            message.starts_with("1 of 5 node(s) unhealthy: a: 7 of 8 GPUs; not observed: b: x"),
            "{message}"
        );
        assert!(message.contains("--fail-fast"), "{message}");
    }

    #[test]
    fn nodes_without_readings_are_not_observed() {
        let mut n = testing::node("gpu-0", 8, HealthReadings::default());
        assert!(readings(&n).is_ok());
        n.agent = AgentOutcome::Unavailable {
            reason: "pod failed".into(),
        };
        assert_eq!(readings(&n).unwrap_err(), "no agent report: pod failed");
        n.agent = AgentOutcome::Collected {
            report: Box::default(),
        };
        assert!(
            readings(&n)
                .unwrap_err()
                .contains("no node-health readings")
        );
        assert!(is_gpu_node(&n));
    }
}
