//! The fabric a recipe promises and whether the NCCL debug evidence shows it in use.
//!
//! [`Fabric`] names the inter-node transport (InfiniBand or RoCE with GPUDirect RDMA, EFA
//! through aws-ofi-nccl, GPUDirect-TCPXO, multi-node NVLink, sockets) or none (one NVLink
//! node). [`Expectation`] adds the intra-node promises (NVLink P2P, NVLS). [`judge`] compares
//! [`Evidence`] with it; every message quotes the line that decided it.

use serde_json::Value;

use super::transport::{Evidence, Marker, Seen};
use std::collections::BTreeMap;

/// The inter-node fabric NCCL is expected to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fabric {
    /// InfiniBand verbs with GPUDirect RDMA (`NET/IB/.../GDRDMA`).
    InfinibandGdr,
    /// RoCE (IB verbs over Ethernet) with GPUDirect RDMA.
    RoceGdr,
    /// AWS Elastic Fabric Adapter through the aws-ofi-nccl plugin (provider `efa`).
    Efa,
    /// GKE A3 Mega GPUDirect-TCPXO (the FasTrak NCCL plugin).
    Tcpxo,
    /// GB200 NVL72: multi-node NVLink inside the rack (`P2P/MNNVL`).
    Mnnvl,
    /// One node, NVLink only: no network expectation.
    NvlinkOnly,
    /// TCP sockets (development clusters without an RDMA fabric).
    Socket,
}

impl Fabric {
    pub const ALL: [Fabric; 7] = [
        Fabric::InfinibandGdr,
        Fabric::RoceGdr,
        Fabric::Efa,
        Fabric::Tcpxo,
        Fabric::Mnnvl,
        Fabric::NvlinkOnly,
        Fabric::Socket,
    ];

    /// The name used in recipe data (`validation.nccl.fabric`).
    pub fn as_str(self) -> &'static str {
        match self {
            Fabric::InfinibandGdr => "infiniband-gdr",
            Fabric::RoceGdr => "roce-gdr",
            Fabric::Efa => "efa",
            Fabric::Tcpxo => "tcpxo",
            Fabric::Mnnvl => "mnnvl",
            Fabric::NvlinkOnly => "nvlink",
            Fabric::Socket => "socket",
        }
    }

    pub fn parse(s: &str) -> Result<Fabric, String> {
        Fabric::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Fabric::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown fabric `{s}` in validation.nccl.fabric; use one of {}",
                    names.join(", ")
                )
            })
    }

    /// Names NCCL prints in `Using network X` for this fabric (empty: any but Socket).
    /// TCPXO's `FasTrak` comes from the plugin's NCCL_FASTRAK_* settings and field logs,
    /// not from a published source.
    pub fn networks(self) -> &'static [&'static str] {
        match self {
            Fabric::InfinibandGdr | Fabric::RoceGdr => &["IB"],
            Fabric::Efa => &["Libfabric", "AWS Libfabric"],
            Fabric::Tcpxo => &["FasTrak"],
            Fabric::Socket => &["Socket"],
            Fabric::Mnnvl | Fabric::NvlinkOnly => &[],
        }
    }

    /// Traffic between nodes goes through NICs (the network check, Ring-bound on 2 nodes).
    pub fn uses_nic(self) -> bool {
        matches!(
            self,
            Fabric::InfinibandGdr | Fabric::RoceGdr | Fabric::Efa | Fabric::Tcpxo
        )
    }

    /// GPUDirect RDMA is part of the promise (the NIC reads and writes GPU memory).
    pub fn gdr(self) -> bool {
        matches!(self, Fabric::InfinibandGdr | Fabric::RoceGdr | Fabric::Efa)
    }

    /// The fabric of a (service, accelerator, intent) combination when the recipe does not
    /// name one: training clusters get their cloud's RDMA fabric, anything else is judged
    /// on one node.
    pub fn for_criteria(service: &str, accelerator: &str, intent: &str) -> Fabric {
        if service == "kind" {
            return Fabric::Socket;
        }
        if intent != "training" {
            return Fabric::NvlinkOnly;
        }
        match (service, accelerator) {
            (_, "gb200" | "gb300" | "vr200") => Fabric::Mnnvl,
            ("eks", _) => Fabric::Efa,
            ("gke", "h100") => Fabric::Tcpxo,
            ("gke", _) | ("oke", _) => Fabric::RoceGdr,
            _ => Fabric::InfinibandGdr,
        }
    }
}

impl std::fmt::Display for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accelerators whose GPUs of a node are NVLink-connected through NVSwitch (HGX / NVL72).
const NVLINK: &[&str] = &[
    "a100", "h100", "h200", "b200", "b300", "gb200", "gb300", "vr200",
];
/// ... of which support NVLS (NVLink SHARP, NVSwitch generation 3 and later).
const NVLS: &[&str] = &["h100", "h200", "b200", "b300", "gb200", "gb300", "vr200"];

/// What the transport check expects of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub fabric: Fabric,
    /// GPUs of a node are NVLink-connected (P2P, never SHM).
    pub nvlink: bool,
    /// NVLS (NVLink SHARP) is expected on one node or inside an NVLink domain.
    pub nvls: bool,
}

impl Expectation {
    /// From a recipe's criteria (`service`, `accelerator`, `intent`) and `validation.nccl`:
    /// `fabric` / `nvlink` / `nvls` when set, else derived from the criteria; NVLS is off
    /// when the recipe's NCCL env sets NCCL_NVLS_ENABLE=0.
    pub fn for_recipe(
        criteria: &BTreeMap<String, String>,
        nccl: Option<&Value>,
    ) -> Result<Expectation, String> {
        let get = |k: &str| nccl.and_then(|v| v.get(k));
        let dim = |k: &str| criteria.get(k).map_or("any", String::as_str);
        let accelerator = dim("accelerator");
        let fabric = match get("fabric") {
            Some(Value::String(s)) => Fabric::parse(s)?,
            Some(other) => {
                return Err(format!(
                    "validation.nccl.fabric must be a string, found {other}"
                ));
            }
            None => Fabric::for_criteria(dim("service"), accelerator, dim("intent")),
        };
        let flag = |k: &str, default: bool| match get(k) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!(
                "validation.nccl.{k} must be true or false, found {other}"
            )),
        };
        let nvlink = flag("nvlink", NVLINK.contains(&accelerator))?;
        let nvls_env_off = get("env")
            .and_then(|e| e.get("NCCL_NVLS_ENABLE"))
            .is_some_and(|v| v.as_str().map(str::trim) == Some("0") || v.as_i64() == Some(0));
        let nvls = flag("nvls", NVLS.contains(&accelerator) && !nvls_env_off)?;
        Ok(Expectation {
            fabric,
            nvlink,
            nvls,
        })
    }
}

/// Transport verdict of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportVerdict {
    /// The expected transports are in use; the message quotes the proving lines.
    Pass(String),
    /// A fallback or a wrong transport; the message quotes the offending lines.
    Fail(String),
    /// The run cannot show it (no debug lines, or the network was not exercised).
    NotShown(String),
}

fn quote(s: &Seen) -> String {
    format!("`{}`", s.line)
}

/// Intra-node promises: NVLink P2P (no SHM, no P2P-disabled warning, GRAPH type NVL) and NVLS.
fn judge_intra(
    ev: &Evidence,
    exp: &Expectation,
    nvls_due: bool,
    problems: &mut Vec<String>,
    proofs: &mut Vec<String>,
) {
    if !exp.nvlink {
        return;
    }
    if let Some(s) = ev.first(|m| *m == Marker::P2pDisabledNvlink) {
        problems.push(format!(
            "P2P is disabled between NVLink-connected GPUs: {}",
            quote(s)
        ));
    }
    let shm = ev.count(|m| *m == Marker::ShmChannel);
    if let Some(s) = ev.first(|m| *m == Marker::ShmChannel) {
        problems.push(format!(
            "{shm} channel(s) between NVLink-connected GPUs go through host memory (SHM fallback, P2P off): {}",
            quote(s)
        ));
    }
    let not_nvlink = |m: &Marker| match m {
        Marker::GraphType { intra } => !matches!(intra.as_str(), "NVL" | "LOC" | "NVB" | "C2C"),
        _ => false,
    };
    if let Some(s) = ev.first(not_nvlink) {
        problems.push(format!(
            "NCCL's topology search found no NVLink path between the GPUs of a node: {}",
            quote(s)
        ));
    }
    if shm == 0
        && let Some(s) = ev
            .first(|m| matches!(m, Marker::GraphType { intra } if intra == "NVL"))
            .or_else(|| ev.first(|m| *m == Marker::P2pChannel))
    {
        proofs.push(format!("NVLink P2P inside the node: {}", quote(s)));
    }
    if nvls_due {
        if let Some(s) = ev.first(|m| *m == Marker::NvlsSupport(false)) {
            problems.push(format!(
                "NVLS (NVLink SHARP) is expected on this NVSwitch system but unavailable: {}",
                quote(s)
            ));
        } else if let Some(s) = ev.first(|m| *m == Marker::NvlsComm) {
            proofs.push(format!("NVLS in use: {}", quote(s)));
        } else {
            let hint = ev
                .first(|m| *m == Marker::NvlsSupport(true))
                .map(|s| format!(" although NCCL reported {}", quote(s)))
                .unwrap_or_default();
            problems.push(format!(
                "no `NVLS comm` line: NVLS (NVLink SHARP) was not used on this NVSwitch system{hint}; set NCCL_NVLS_ENABLE=0 in validation.nccl.env (or validation.nccl.nvls: false) if that is intended"
            ));
        }
    }
}

/// GPUDirect RDMA over the NIC: every NET channel carries `/GDRDMA`, or `GDR 1` when the
/// channel lines are absent (NCCL >= 2.27 may not print them).
fn judge_gdr(ev: &Evidence, problems: &mut Vec<String>, proofs: &mut Vec<String>) -> bool {
    let net = ev.count(|m| matches!(m, Marker::NetChannel { .. }));
    let gdr = ev.count(|m| matches!(m, Marker::NetChannel { gdr: true, .. }));
    if net > 0 {
        if let Some(s) = ev.first(|m| matches!(m, Marker::NetChannel { gdr: false, .. })) {
            let mut msg = format!(
                "{} of {net} network channels lack GDRDMA (staged through host memory: check nvidia-peermem / dma-buf): {}",
                net - gdr,
                quote(s)
            );
            if let Some(n) = ev.first(|m| *m == Marker::GdrDisabled) {
                msg.push_str(&format!("; NCCL says {}", quote(n)));
            }
            problems.push(msg);
        } else if let Some(s) = ev.first(|m| matches!(m, Marker::NetChannel { .. })) {
            proofs.push(format!(
                "all {net} network channels use GPUDirect RDMA: {}",
                quote(s)
            ));
        }
        return true;
    }
    if let Some(s) = ev.first(|m| *m == Marker::RingGdr(false)) {
        problems.push(format!(
            "GPUDirect RDMA is off for at least one rank: {}",
            quote(s)
        ));
        return true;
    }
    if let Some(s) = ev.first(|m| *m == Marker::RingGdr(true)) {
        proofs.push(format!("GPUDirect RDMA on every rank: {}", quote(s)));
        return true;
    }
    false
}

/// The run's own network failures, whatever the fabric: a socket fallback, another
/// network than the fabric's, HCAs of the other link layer, a non-efa libfabric provider.
fn judge_network_choice(
    ev: &Evidence,
    fabric: Fabric,
    problems: &mut Vec<String>,
    proofs: &mut Vec<String>,
) {
    let socket = ev
        .first(|m| matches!(m, Marker::Network(n) if n == "Socket"))
        .or_else(|| ev.first(|m| matches!(m, Marker::NetChannel { net, .. } if net == "Socket")));
    if let Some(s) = socket {
        let mut msg = format!(
            "NCCL fell back to TCP sockets on a {fabric} fabric: {}",
            quote(s)
        );
        if let Some(c) = ev.first(|m| matches!(m, Marker::NoIbDevice | Marker::NoIbverbs)) {
            msg.push_str(&format!(" after {}", quote(c)));
        }
        problems.push(msg);
    }
    let expected = fabric.networks();
    if !expected.is_empty() {
        let other = |m: &Marker| matches!(m, Marker::Network(n) if n != "Socket" && !expected.contains(&n.as_str()));
        if let Some(s) = ev.first(other) {
            problems.push(format!(
                "NCCL used another network than the {fabric} fabric's ({}): {}",
                expected.join(" or "),
                quote(s)
            ));
        }
        let ours = |m: &Marker| matches!(m, Marker::Network(n) if expected.contains(&n.as_str()));
        if let Some(s) = ev.first(ours) {
            proofs.push(format!("{fabric} network: {}", quote(s)));
        }
    }
    match fabric {
        Fabric::InfinibandGdr | Fabric::RoceGdr => {
            let want_roce = fabric == Fabric::RoceGdr;
            let other = |m: &Marker| matches!(m, Marker::IbDevices { roce } if *roce != want_roce);
            if let Some(s) = ev.first(other) {
                problems.push(format!(
                    "the HCAs run {} but the recipe's fabric is {fabric}: {}",
                    if want_roce { "InfiniBand" } else { "RoCE" },
                    quote(s)
                ));
            }
        }
        Fabric::Efa => {
            if let Some(s) = ev.first(|m| matches!(m, Marker::OfiProvider(p) if p != "efa")) {
                problems.push(format!(
                    "aws-ofi-nccl chose a libfabric provider other than efa: {}",
                    quote(s)
                ));
            } else if let Some(s) = ev.first(|m| matches!(m, Marker::OfiProvider(_))) {
                proofs.push(format!("provider: {}", quote(s)));
            }
        }
        _ => {}
    }
}

/// Trays of an NVLink domain reach each other over MNNVL, not the NIC.
fn judge_mnnvl(ev: &Evidence, problems: &mut Vec<String>, proofs: &mut Vec<String>) -> bool {
    let mnnvl = ev
        .first(|m| *m == Marker::MnnvlChannel)
        .or_else(|| ev.first(|m| matches!(m, Marker::Comm { mnnvl: true, .. })));
    if let Some(s) = mnnvl {
        proofs.push(format!("multi-node NVLink: {}", quote(s)));
        return true;
    }
    if let Some(s) = ev.first(|m| matches!(m, Marker::NetChannel { .. })) {
        problems.push(format!(
            "traffic between trays of the NVLink domain went over the NIC, not MNNVL (check the ComputeDomain / IMEX channel): {}",
            quote(s)
        ));
    } else if let Some(s) = ev.first(|m| matches!(m, Marker::Comm { mnnvl: false, .. })) {
        problems.push(format!(
            "MNNVL is off for a multi-node communicator: {}",
            quote(s)
        ));
    }
    false
}

/// Nodes of the run: `hosts`, or `nNodes` of NCCL's comm lines when larger.
fn nodes(ev: &Evidence, hosts: usize) -> usize {
    ev.seen
        .iter()
        .filter_map(|s| match s.marker {
            Marker::Comm { nodes, .. } => Some(nodes as usize),
            _ => None,
        })
        .fold(hosts, usize::max)
}

/// Judge the evidence of a run over `hosts` nodes against the expectation.
pub fn judge(ev: &Evidence, hosts: usize, exp: &Expectation) -> TransportVerdict {
    if ev.info_lines == 0 {
        return TransportVerdict::NotShown(
            "no `NCCL INFO` lines in the output: run with NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,ENV,NET,GRAPH to show the transports".to_string(),
        );
    }
    let fabric = exp.fabric;
    let nodes = nodes(ev, hosts);
    let multi = nodes >= 2
        || ev
            .first(|m| matches!(m, Marker::NetChannel { .. }))
            .is_some();
    let mut problems = Vec::new();
    let mut proofs = Vec::new();
    let nvls_due = exp.nvls && !ev.ring_forced() && (!multi || fabric == Fabric::Mnnvl);
    judge_intra(ev, exp, nvls_due, &mut problems, &mut proofs);
    // Whether the log shows the inter-node transport at work (trivially so without one).
    let network_shown = match fabric {
        Fabric::NvlinkOnly => true,
        Fabric::Socket => {
            if let Some(s) = ev.first(|m| matches!(m, Marker::Network(_))) {
                proofs.push(format!("network (sockets expected): {}", quote(s)));
            }
            true
        }
        _ => {
            judge_network_choice(ev, fabric, &mut problems, &mut proofs);
            match fabric {
                _ if !multi => false,
                Fabric::Mnnvl => judge_mnnvl(ev, &mut problems, &mut proofs),
                Fabric::Tcpxo => ev
                    .first(|m| matches!(m, Marker::Network(n) if n == "FasTrak"))
                    .is_some(),
                _ => judge_gdr(ev, &mut problems, &mut proofs),
            }
        }
    };
    if !problems.is_empty() {
        return TransportVerdict::Fail(problems.join("; "));
    }
    let hosts_note = format!("{nodes} host(s)");
    if !network_shown {
        let why = if multi {
            format!(
                "the log does not show how the {fabric} network was used (no channel lines, no GDR flag): add NET to NCCL_DEBUG_SUBSYS"
            )
        } else {
            format!(
                "the {fabric} network is not exercised on one node; run across at least 2 nodes"
            )
        };
        let seen = if proofs.is_empty() {
            String::new()
        } else {
            format!("; seen: {}", proofs.join("; "))
        };
        return TransportVerdict::NotShown(format!("{hosts_note}: {why}{seen}"));
    }
    if proofs.is_empty() {
        return TransportVerdict::NotShown(format!(
            "{hosts_note}: no transport lines in the NCCL INFO output (channel, network or topology lines); add INIT,NET,GRAPH to NCCL_DEBUG_SUBSYS"
        ));
    }
    TransportVerdict::Pass(format!(
        "{fabric} fabric, {hosts_note}: {}",
        proofs.join("; ")
    ))
}
