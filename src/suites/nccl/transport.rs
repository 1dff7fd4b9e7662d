//! `NCCL_DEBUG=INFO` lines classified into transport evidence. Each marker keeps the line it
//! came from so a verdict can quote it.
//!
//! Strings follow NVIDIA/nccl (2.18 .. 2.30) and aws-ofi-nccl; where they changed across
//! versions both forms are recognised (`SHM/direct/direct` and `SHM/direct`, `Selected
//! Provider is` and `Selected provider is`, `AWS Libfabric` and `Libfabric`).

/// What one line says about the transports.
#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    /// `NCCL version 2.21.5+cuda12.4`.
    Version(String),
    /// `Using network IB` / `Libfabric` / `AWS Libfabric` / `Socket` / a plugin's name.
    Network(String),
    /// `NET/IB : Using [0]mlx5_0:1/IB ...`: the link layer of the HCAs (`IB` or `RoCE`).
    IbDevices { roce: bool },
    /// `NET/IB : No device found.`
    NoIbDevice,
    /// `Count not open libibverbs.so` (sic) or `Failed to open libibverbs.so`.
    NoIbverbs,
    /// `NET/Socket : Using [0]eth0:...`: the socket transport was initialised.
    SocketDevices,
    /// aws-ofi-nccl `Selected provider is efa` (any case of `Provider`).
    OfiProvider(String),
    /// A channel over a network transport: `via NET/<name>/<dev>[/GDRDMA]...`.
    NetChannel { net: String, gdr: bool },
    /// `via P2P/...` (not MNNVL).
    P2pChannel,
    /// `via P2P/MNNVL`: multi-node NVLink.
    MnnvlChannel,
    /// `via SHM/...`: P2P disabled, staged through host memory.
    ShmChannel,
    /// `Connected all rings, use ring PXN 0 GDR 1` (NCCL >= 2.27).
    RingGdr(bool),
    /// `GPU Direct RDMA Disabled for HCA ...` or `... for GPU ...`.
    GdrDisabled,
    /// GRAPH `Pattern ..., type NVL/PIX, ...`: the intra-node link type of a search result.
    GraphType { intra: String },
    /// WARN `P2P is disabled between NVLINK connected GPUs`.
    P2pDisabledNvlink,
    /// `NVLS multicast support is available` (`true`) / `is not available` (`false`).
    NvlsSupport(bool),
    /// `NVLS comm 0x...`: an NVLS communicator was built.
    NvlsComm,
    /// `comm 0x.. rank 0 nRanks 16 nNodes 2 ... MNNVL 1`.
    Comm { nodes: u32, mnnvl: bool },
    /// `NCCL_ALGO set by environment to X`.
    AlgoEnv(String),
}

/// A marker and the line that showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub marker: Marker,
    pub line: String,
}

/// Every classified line of a log, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evidence {
    /// `NCCL INFO` lines (debug logging was on when > 0).
    pub info_lines: usize,
    pub seen: Vec<Seen>,
}

impl Evidence {
    /// Markers matching `pred`, with their lines.
    pub fn all(&self, pred: impl Fn(&Marker) -> bool) -> impl Iterator<Item = &Seen> {
        self.seen.iter().filter(move |s| pred(&s.marker))
    }

    pub fn first(&self, pred: impl Fn(&Marker) -> bool) -> Option<&Seen> {
        self.seen.iter().find(|s| pred(&s.marker))
    }

    pub fn count(&self, pred: impl Fn(&Marker) -> bool) -> usize {
        self.all(pred).count()
    }

    /// `NCCL version` as (major, minor), if logged.
    pub fn nccl_version(&self) -> Option<(u32, u32)> {
        self.seen.iter().find_map(|s| match &s.marker {
            Marker::Version(v) => {
                let mut it = v.split(['.', '+']).map(|p| p.parse::<u32>().ok());
                Some((it.next()??, it.next()??))
            }
            _ => None,
        })
    }

    /// Whether the run was forced to the Ring algorithm (`NCCL_ALGO=Ring`, any case, or an
    /// `allreduce:ring` list naming only Ring).
    pub fn ring_forced(&self) -> bool {
        self.seen.iter().any(|s| match &s.marker {
            Marker::AlgoEnv(v) => {
                let v = v.to_ascii_lowercase();
                let algos = v.rsplit(':').next().unwrap_or(&v);
                algos.trim() == "ring"
            }
            _ => false,
        })
    }
}

/// The transport a channel line names: `via NET/IB/0/GDRDMA` → NET channel over `IB`.
fn channel(via: &str) -> Option<Marker> {
    let via = via.trim();
    if let Some(net) = via.strip_prefix("NET/") {
        let mut parts = net.split('/');
        let name = parts.next().unwrap_or("").trim().to_string();
        let gdr = parts.any(|p| p.trim() == "GDRDMA");
        return Some(Marker::NetChannel { net: name, gdr });
    }
    if via.starts_with("P2P/MNNVL") {
        return Some(Marker::MnnvlChannel);
    }
    if via.starts_with("P2P/") {
        return Some(Marker::P2pChannel);
    }
    if via.starts_with("SHM") {
        return Some(Marker::ShmChannel);
    }
    None
}

/// The number right after `key ` in `msg`.
fn number_after(msg: &str, key: &str) -> Option<u32> {
    let (_, rest) = msg.split_once(key)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Classify the message part of an NCCL debug line (after `NCCL INFO ` / `NCCL WARN `).
pub fn classify_message(msg: &str) -> Option<Marker> {
    let msg = msg.trim();
    if let Some(net) = msg.strip_prefix("Using network ") {
        return Some(Marker::Network(net.trim().to_string()));
    }
    if let Some(v) = msg.strip_prefix("NCCL_ALGO set by environment to ") {
        return Some(Marker::AlgoEnv(v.trim().to_string()));
    }
    if let Some(rest) = msg.strip_prefix("NET/IB : Using ") {
        // [0]mlx5_0:1/IB [1]mlx5_1:1/RoCE ... ; OOB eth0
        let devs = rest.split(';').next().unwrap_or(rest);
        return Some(Marker::IbDevices {
            roce: devs.contains("/RoCE"),
        });
    }
    if msg.starts_with("NET/IB : No device found") {
        return Some(Marker::NoIbDevice);
    }
    if msg.contains("open libibverbs") {
        return Some(Marker::NoIbverbs);
    }
    if msg.starts_with("NET/Socket : Using") {
        return Some(Marker::SocketDevices);
    }
    if let Some((_, rest)) = msg
        .split_once("Selected provider is ")
        .or_else(|| msg.split_once("Selected Provider is "))
    {
        let p = rest.split([',', ' ']).next().unwrap_or("").to_string();
        return Some(Marker::OfiProvider(p));
    }
    if let Some((_, via)) = msg.split_once(" via ")
        && let Some(m) = channel(via)
    {
        return Some(m);
    }
    if msg.starts_with("Connected all rings") && msg.contains(" GDR ") {
        return number_after(msg, " GDR").map(|g| Marker::RingGdr(g != 0));
    }
    if msg.contains("GPU Direct RDMA Disabled") {
        return Some(Marker::GdrDisabled);
    }
    if msg.starts_with("Pattern ")
        && let Some((_, rest)) = msg.split_once("type ")
    {
        let t = rest.split([',', ' ']).next().unwrap_or("");
        let intra = t.split('/').next().unwrap_or(t).to_string();
        return Some(Marker::GraphType { intra });
    }
    if msg.contains("P2P is disabled between NVLINK connected GPUs") {
        return Some(Marker::P2pDisabledNvlink);
    }
    if msg.contains("NVLS multicast support is not available") {
        return Some(Marker::NvlsSupport(false));
    }
    if msg.contains("NVLS multicast support is available") {
        return Some(Marker::NvlsSupport(true));
    }
    if msg.starts_with("NVLS comm 0x") {
        return Some(Marker::NvlsComm);
    }
    if msg.starts_with("comm 0x") && msg.contains(" nNodes ") {
        let nodes = number_after(msg, " nNodes")?;
        return Some(Marker::Comm {
            nodes,
            mnnvl: number_after(msg, " MNNVL").is_some_and(|m| m != 0),
        });
    }
    None
}

/// Classify one log line, or `None` for lines that are not NCCL debug output.
pub fn classify(line: &str) -> Option<Marker> {
    let t = line.trim();
    if let Some(v) = t.strip_prefix("NCCL version ") {
        return Some(Marker::Version(
            v.split_whitespace().next().unwrap_or("").to_string(),
        ));
    }
    let (_, msg) = t
        .split_once("NCCL INFO ")
        .or_else(|| t.split_once("NCCL WARN "))?;
    if let Some(v) = msg.strip_prefix("NCCL version ") {
        return Some(Marker::Version(
            v.split_whitespace().next().unwrap_or("").to_string(),
        ));
    }
    classify_message(msg)
}

/// Every NCCL debug line of a log.
pub fn evidence(text: &str) -> Evidence {
    let mut ev = Evidence::default();
    for line in text.lines() {
        let t = line.trim();
        if t.contains("NCCL INFO") {
            ev.info_lines += 1;
        }
        if let Some(marker) = classify(t) {
            ev.seen.push(Seen {
                marker,
                line: t.to_string(),
            });
        }
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "node-a:52000:52040 [0] NCCL INFO ";

    fn c(msg: &str) -> Option<Marker> {
        classify(&format!("{P}{msg}"))
    }

    #[test]
    fn net_channels_across_versions_and_plugins() {
        let gdr = |net: &str| {
            Some(Marker::NetChannel {
                net: net.into(),
                gdr: true,
            })
        };
        assert_eq!(
            c("Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/0/GDRDMA"),
            gdr("IB")
        );
        assert_eq!(
            c("Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/3(1)/GDRDMA"),
            gdr("IB")
        );
        assert_eq!(
            c("Channel 01/0 : 8[0] -> 0[0] [receive] via NET/AWS Libfabric/0/GDRDMA/Shared"),
            gdr("AWS Libfabric")
        );
        assert_eq!(
            c("Channel 00/0 : 1[0] -> 0[0] [receive] via NET/Socket/0"),
            Some(Marker::NetChannel {
                net: "Socket".into(),
                gdr: false
            })
        );
        assert_eq!(
            c("Channel 00/0 : 0[0] -> 8[0] [send] via NET/IB/0(PCI)"),
            Some(Marker::NetChannel {
                net: "IB".into(),
                gdr: false
            })
        );
    }

    #[test]
    fn intra_node_transports() {
        assert_eq!(
            c("Channel 00/0 : 0[0] -> 1[1] via P2P/CUMEM/read"),
            Some(Marker::P2pChannel)
        );
        assert_eq!(
            c("Channel 00/0 : 0[0] -> 1[1] via P2P/IPC"),
            Some(Marker::P2pChannel)
        );
        assert_eq!(
            c("Channel 00/0 : 0[0] -> 4[0] via P2P/MNNVL"),
            Some(Marker::MnnvlChannel)
        );
        assert_eq!(
            c("Channel 00 : 0[0] -> 1[1] via SHM/direct/direct"),
            Some(Marker::ShmChannel)
        );
        assert_eq!(
            c("Channel 00 : 0[0] -> 1[1] via SHM/direct"),
            Some(Marker::ShmChannel)
        );
        assert_eq!(
            c(
                "Pattern 4, crossNic 0, nChannels 16, bw 20.000000/20.000000, type NVL/PIX, sameChannels 1"
            ),
            Some(Marker::GraphType {
                intra: "NVL".into()
            })
        );
        assert_eq!(
            classify(
                "h:1:1 [0] NCCL WARN P2P is disabled between NVLINK connected GPUs 0 and 1. This should not be the case"
            ),
            Some(Marker::P2pDisabledNvlink)
        );
        assert_eq!(
            c("NVLS multicast support is available on dev 0"),
            Some(Marker::NvlsSupport(true))
        );
        assert_eq!(
            c("NVLS multicast support is not available on dev 0"),
            Some(Marker::NvlsSupport(false))
        );
        assert_eq!(
            c("NVLS comm 0x55d0c8a0 headRank 0 nHeads 8 nvlsRanks 8 buffSize 1048576"),
            Some(Marker::NvlsComm)
        );
    }

    #[test]
    fn network_selection_and_fallback() {
        assert_eq!(c("Using network IB"), Some(Marker::Network("IB".into())));
        assert_eq!(
            c("Using network AWS Libfabric"),
            Some(Marker::Network("AWS Libfabric".into()))
        );
        assert_eq!(
            c("NET/IB : Using [0]mlx5_0:1/RoCE [1]mlx5_1:1/RoCE [RO]; OOB eth0:10.0.0.1<0>"),
            Some(Marker::IbDevices { roce: true })
        );
        assert_eq!(
            c("NET/IB : Using [0]mlx5_0:1/IB [RO]; OOB eth0:10.0.0.1<0>"),
            Some(Marker::IbDevices { roce: false })
        );
        assert_eq!(c("NET/IB : No device found."), Some(Marker::NoIbDevice));
        assert_eq!(
            c("NET/Socket : Using [0]eth0:10.0.0.5<0>"),
            Some(Marker::SocketDevices)
        );
        assert_eq!(
            classify("h:1:1 [0] misc/ibvwrap.cc:63 NCCL WARN Failed to open libibverbs.so[.1]"),
            Some(Marker::NoIbverbs)
        );
        assert_eq!(
            c("NET/OFI Selected provider is efa, fabric is efa-direct (found 32 nics)"),
            Some(Marker::OfiProvider("efa".into()))
        );
        assert_eq!(
            c("NET/OFI Selected Provider is tcp (found 4 nics)"),
            Some(Marker::OfiProvider("tcp".into()))
        );
        assert_eq!(
            c("Connected all rings, use ring PXN 0 GDR 1"),
            Some(Marker::RingGdr(true))
        );
        assert_eq!(
            c("Connected all rings, use ring PXN 0 GDR 0"),
            Some(Marker::RingGdr(false))
        );
        assert_eq!(c("Connected all rings"), None);
        assert_eq!(
            c("NET/IB : GPU Direct RDMA Disabled for HCA 0 'mlx5_0'"),
            Some(Marker::GdrDisabled)
        );
        assert_eq!(
            c("comm 0x55d0 rank 0 nRanks 72 nNodes 18 localRanks 4 localRank 0 MNNVL 1"),
            Some(Marker::Comm {
                nodes: 18,
                mnnvl: true
            })
        );
        assert_eq!(
            classify("NCCL version 2.21.5+cuda12.4"),
            Some(Marker::Version("2.21.5+cuda12.4".into()))
        );
        assert_eq!(c("Bootstrap : Using eth0:10.0.0.11<0>"), None);
        assert_eq!(classify("some unrelated line via NET/IB/0"), None);
    }

    #[test]
    fn version_and_forced_ring() {
        let ev = evidence(&format!(
            "NCCL version 2.27.7+cuda12.8\n{P}NCCL_ALGO set by environment to Ring\n"
        ));
        assert_eq!(ev.nccl_version(), Some((2, 27)));
        assert!(ev.ring_forced());
        assert_eq!(ev.info_lines, 1);
        for (algo, ring) in [
            ("ring", true),
            ("allreduce:ring", true),
            ("Ring,Tree", false),
            ("^Tree", false),
        ] {
            let ev = evidence(&format!("{P}NCCL_ALGO set by environment to {algo}\n"));
            assert_eq!(ev.ring_forced(), ring, "{algo}");
        }
    }
}
