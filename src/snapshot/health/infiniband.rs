//! InfiniBand and RoCE ports from sysfs: `<sysfs>/class/infiniband/<hca>/ports/<n>/
//! {state,phys_state,rate,link_layer}` (`4: ACTIVE`, `5: LinkUp`, `400 Gb/sec (4X NDR)`,
//! `InfiniBand`), and the HCA's PCI address from its `device` link.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One port of one HCA.
#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IbPort {
    /// HCA name, e.g. `mlx5_0`.
    pub device: String,
    pub port: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pci_address: String,
    /// Logical state without its number: `ACTIVE`, `DOWN`, `INIT`, `ARMED`.
    pub state: String,
    /// Physical state without its number: `LinkUp`, `Polling`, `Disabled`.
    pub phys_state: String,
    /// Rate in Gb/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_gbps: Option<f64>,
    /// The rate as sysfs shows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rate: String,
    /// `InfiniBand` or `Ethernet` (RoCE).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_layer: String,
}

impl Eq for IbPort {}

/// `4: ACTIVE` → `ACTIVE`; text without a number is kept.
pub fn parse_state(text: &str) -> String {
    let t = text.trim();
    match t.split_once(':') {
        Some((n, rest)) if n.trim().chars().all(|c| c.is_ascii_digit()) => rest.trim().to_string(),
        _ => t.to_string(),
    }
}

/// `400 Gb/sec (4X NDR)` → 400.
pub fn parse_rate(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Every port of every HCA, sorted by device and port. No `class/infiniband` directory
/// is a node without HCAs: an empty list.
pub fn scan(sysfs_root: &Path) -> Result<Vec<IbPort>, String> {
    let dir = sysfs_root.join("class/infiniband");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for hca in entries.flatten() {
        let device = hca.file_name().to_string_lossy().into_owned();
        let pci_address = std::fs::read_link(hca.path().join("device"))
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let Ok(ports) = std::fs::read_dir(hca.path().join("ports")) else {
            continue;
        };
        for port in ports.flatten() {
            let Ok(n) = port.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let read = |attr: &str| {
                std::fs::read_to_string(port.path().join(attr))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default()
            };
            let rate = read("rate");
            out.push(IbPort {
                device: device.clone(),
                port: n,
                pci_address: pci_address.clone(),
                state: parse_state(&read("state")),
                phys_state: parse_state(&read("phys_state")),
                rate_gbps: parse_rate(&rate),
                rate,
                link_layer: read("link_layer"),
            });
        }
    }
    out.sort_by(|a, b| (&a.device, a.port).cmp(&(&b.device, b.port)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_rates() {
        assert_eq!(parse_state("4: ACTIVE\n"), "ACTIVE");
        assert_eq!(parse_state("5: LinkUp"), "LinkUp");
        assert_eq!(parse_state("3: Disabled"), "Disabled");
        assert_eq!(parse_state("ACTIVE"), "ACTIVE");
        assert_eq!(parse_rate("400 Gb/sec (4X NDR)"), Some(400.0));
        assert_eq!(parse_rate("200 Gb/sec (2X NDR)"), Some(200.0));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Some(2.5));
        assert_eq!(parse_rate(""), None);
    }

    #[test]
    fn fixture_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-health/sys");
        let ports = scan(&root).unwrap();
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert_eq!(ports[0].device, "mlx5_0");
        assert_eq!(ports[0].state, "ACTIVE");
        assert_eq!(ports[0].phys_state, "LinkUp");
        assert_eq!(ports[0].rate_gbps, Some(400.0));
        assert_eq!(ports[0].link_layer, "InfiniBand");
        assert_eq!(ports[1].rate_gbps, Some(200.0));
        assert!(scan(Path::new("/nonexistent")).unwrap().is_empty());
    }
}
