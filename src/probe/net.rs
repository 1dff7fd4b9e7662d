//! `aiconform probe net`: the network interfaces this process's network namespace has (names,
//! addresses, byte counters), and optionally one TCP transfer of N bytes, served or sent, with
//! every interface's byte counters before and after it. The judge outside the pod sees which
//! interface carried the data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the kernel lists this namespace's interfaces and their counters.
pub const PROC_NET_DEV: &str = "/proc/net/dev";

/// One interface as the probe saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    pub name: String,
    /// `ADDRESS/PREFIX`, IPv4 and IPv6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Bytes received and sent during the transfer (or 0 without one).
    #[serde(default)]
    pub rx_bytes: u64,
    #[serde(default)]
    pub tx_bytes: u64,
}

/// What `probe net` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetReport {
    /// Interfaces of the pod's own network namespace, by name.
    pub interfaces: Vec<Interface>,
    /// `serve` or `send`; empty without a transfer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// The other end of the transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Payload bytes received (serve) or sent (send).
    #[serde(default)]
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NetReport {
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

/// Received and transmitted bytes per interface from `/proc/net/dev` text.
pub fn parse_proc_net_dev(text: &str) -> BTreeMap<String, (u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?;
            // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
            (f.len() >= 16).then(|| (name.trim().to_string(), (f[0], f[8])))
        })
        .collect()
}

/// The counters now.
pub fn counters() -> std::io::Result<BTreeMap<String, (u64, u64)>> {
    Ok(parse_proc_net_dev(&std::fs::read_to_string(PROC_NET_DEV)?))
}

/// Addresses per interface (`getifaddrs`), as `ADDRESS/PREFIX`.
pub fn addresses() -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for a in addrs {
        let (Some(addr), Some(mask)) = (a.address, a.netmask) else {
            continue;
        };
        let text = if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
            format!("{}/{}", ip.ip(), m.ip().to_bits().count_ones())
        } else if let (Some(ip), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
            format!("{}/{}", ip.ip(), m.ip().to_bits().count_ones())
        } else {
            continue;
        };
        out.entry(a.interface_name).or_default().push(text);
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Interfaces with addresses and the counter differences between two readings.
pub fn interfaces(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
    addresses: &BTreeMap<String, Vec<String>>,
) -> Vec<Interface> {
    after
        .iter()
        .map(|(name, (rx, tx))| {
            let (rx0, tx0) = before.get(name).copied().unwrap_or((*rx, *tx));
            Interface {
                name: name.clone(),
                addresses: addresses.get(name).cloned().unwrap_or_default(),
                rx_bytes: rx.saturating_sub(rx0),
                tx_bytes: tx.saturating_sub(tx0),
            }
        })
        .collect()
}

/// What to do besides reporting.
#[derive(Debug, Clone)]
pub enum Transfer {
    /// Accept one connection on the address and read it to the end.
    Serve { listen: SocketAddr },
    /// Connect to the address (retrying refused connections for `warmup`) and send `bytes`.
    Send {
        peer: SocketAddr,
        bytes: u64,
        warmup: Duration,
    },
}

/// Run the transfer (bounded by `timeout`), reading the counters around it.
pub async fn run(transfer: Option<Transfer>, timeout: Duration) -> NetReport {
    let before = counters().unwrap_or_default();
    let (role, peer, result) = match transfer {
        None => (String::new(), None, Ok(0)),
        Some(Transfer::Serve { listen }) => {
            let r = tokio::time::timeout(timeout, serve_once(listen)).await;
            let (peer, r) = match r {
                Ok(Ok((p, n))) => (Some(p.to_string()), Ok(n)),
                Ok(Err(e)) => (None, Err(e)),
                Err(_) => (
                    None,
                    Err(format!("no sender within {}s", timeout.as_secs())),
                ),
            };
            ("serve".to_string(), peer, r)
        }
        Some(Transfer::Send {
            peer,
            bytes,
            warmup,
        }) => {
            let r = tokio::time::timeout(timeout, send(peer, bytes, warmup))
                .await
                .unwrap_or_else(|_| Err(format!("not done within {}s", timeout.as_secs())));
            ("send".to_string(), Some(peer.to_string()), r)
        }
    };
    let after = counters().unwrap_or_default();
    let (bytes, error) = match result {
        Ok(n) => (n, None),
        Err(e) => (0, Some(e)),
    };
    NetReport {
        interfaces: interfaces(&before, &after, &addresses()),
        role,
        peer,
        bytes,
        error,
    }
}

async fn serve_once(listen: SocketAddr) -> Result<(SocketAddr, u64), String> {
    let l = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let (mut conn, peer) = l.accept().await.map_err(|e| format!("accept: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match conn.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => return Err(format!("reading from {peer} after {total} bytes: {e}")),
        }
    }
    // Acknowledge the count, so the sender knows everything arrived.
    let _ = conn.write_all(format!("{total}\n").as_bytes()).await;
    let _ = conn.shutdown().await;
    Ok((peer, total))
}

/// Whether a connect error means "nobody listens yet" (worth retrying) rather than "no route".
fn retryable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
    )
}

async fn send(peer: SocketAddr, bytes: u64, warmup: Duration) -> Result<u64, String> {
    let until = tokio::time::Instant::now() + warmup;
    let mut conn = loop {
        match tokio::net::TcpStream::connect(peer).await {
            Ok(c) => break c,
            Err(e) if retryable(&e) && tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("cannot connect to {peer}: {e}")),
        }
    };
    let chunk = vec![0x5au8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        conn.write_all(&chunk[..n])
            .await
            .map_err(|e| format!("sending to {peer} after {} bytes: {e}", bytes - left))?;
        left -= n as u64;
    }
    conn.shutdown()
        .await
        .map_err(|e| format!("closing the stream to {peer}: {e}"))?;
    let mut ack = String::new();
    conn.read_to_string(&mut ack)
        .await
        .map_err(|e| format!("reading the receipt from {peer}: {e}"))?;
    match ack.trim().parse::<u64>() {
        Ok(n) if n == bytes => Ok(bytes),
        Ok(n) => Err(format!("sent {bytes} bytes but {peer} received {n}")),
        Err(_) => Err(format!("{peer} did not confirm the {bytes} bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0:    1096      12    0    0    0     0          0         0      866       9    0    0    0     0       0          0
ens1f0np0: 8523776    5210    0    0    0     0          0         0   312000    4100    0    0    0     0       0          0
";

    #[test]
    fn proc_net_dev_counters() {
        let c = parse_proc_net_dev(DEV);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c["lo"], (120, 120));
        assert_eq!(c["eth0"], (1096, 866));
        assert_eq!(c["ens1f0np0"], (8_523_776, 312_000));
        assert!(parse_proc_net_dev("garbage\nx: 1 2\n").is_empty());
    }

    #[test]
    fn interfaces_are_differences_with_addresses() {
        let before = parse_proc_net_dev(DEV);
        let mut after = before.clone();
        after.insert("ens1f0np0".into(), (9_000_000, 400_000));
        after.insert("new0".into(), (5, 5));
        let addrs = [("eth0".to_string(), vec!["198.18.0.4/15".to_string()])].into();
        let i = interfaces(&before, &after, &addrs);
        let names: Vec<&str> = i.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["ens1f0np0", "eth0", "lo", "new0"]);
        assert_eq!((i[0].rx_bytes, i[0].tx_bytes), (476_224, 88_000));
        assert_eq!(i[1].addresses, ["198.18.0.4/15"]);
        assert_eq!((i[1].rx_bytes, i[3].rx_bytes), (0, 0));
        let r = NetReport {
            interfaces: i[1..2].to_vec(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).expect("json"),
            r#"{"interfaces":[{"name":"eth0","addresses":["198.18.0.4/15"],"rxBytes":0,"txBytes":0}],"bytes":0}"#
        );
    }

    #[tokio::test]
    async fn loopback_transfer_counts_bytes() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let server = tokio::spawn(run(
            Some(Transfer::Serve { listen: addr }),
            Duration::from_secs(20),
        ));
        let sent = run(
            Some(Transfer::Send {
                peer: addr,
                bytes: 1_000_000,
                warmup: Duration::from_secs(10),
            }),
            Duration::from_secs(20),
        )
        .await;
        let served = server.await.expect("server");
        assert_eq!((sent.bytes, sent.error.as_deref()), (1_000_000, None));
        assert_eq!((served.bytes, served.role.as_str()), (1_000_000, "serve"));
        assert!(sent.interfaces.iter().any(|i| i.name == "lo"), "{sent:?}");
    }
}
