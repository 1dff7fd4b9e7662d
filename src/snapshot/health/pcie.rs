//! PCIe link state of GPUs and NICs from sysfs: `<sysfs>/bus/pci/devices/<addr>/
//! {current_link_speed,current_link_width,max_link_speed,max_link_width}`. A link trained
//! below its maximum (a GPU at x8, a NIC at Gen3) halves host bandwidth without any error.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::snapshot::sysfs::{NVIDIA_VENDOR, is_nvidia_gpu, parse_hex};

/// What kind of device a link belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkDevice {
    Gpu,
    Nic,
}

/// One device's PCIe link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PciLink {
    pub address: String,
    pub device: LinkDevice,
    pub vendor_id: String,
    /// Generation from the speed (2.5 GT/s = 1 .. 64 GT/s = 6); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_gen: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_width: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gen: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width: Option<u8>,
}

/// The generation of a sysfs link speed such as `32.0 GT/s PCIe` or `16 GT/s`.
pub fn parse_gen(speed: &str) -> Option<u8> {
    let gts: f64 = speed.split_whitespace().next()?.parse().ok()?;
    [
        (2.5, 1),
        (5.0, 2),
        (8.0, 3),
        (16.0, 4),
        (32.0, 5),
        (64.0, 6),
    ]
    .iter()
    .find(|(s, _)| (gts - s).abs() < 0.01)
    .map(|(_, g)| *g)
}

/// A sysfs link width (`16`, `x16`).
pub fn parse_width(text: &str) -> Option<u8> {
    text.trim().trim_start_matches(['x', 'X']).parse().ok()
}

/// Which links to report: NVIDIA GPUs and network controllers (class 0x02: Ethernet,
/// InfiniBand).
pub fn link_device(vendor: u32, class: u32) -> Option<LinkDevice> {
    if is_nvidia_gpu(vendor, class) {
        Some(LinkDevice::Gpu)
    } else if class >> 16 == 0x02 && vendor != NVIDIA_VENDOR {
        Some(LinkDevice::Nic)
    } else {
        None
    }
}

/// The links of every GPU and NIC, sorted by address.
pub fn scan(sysfs_root: &Path) -> Result<Vec<PciLink>, String> {
    let dir = sysfs_root.join("bus/pci/devices");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let read = |attr: &str| std::fs::read_to_string(path.join(attr)).ok();
        let hex = |attr: &str| read(attr).and_then(|t| parse_hex(&t));
        let (Some(vendor), Some(class)) = (hex("vendor"), hex("class")) else {
            continue;
        };
        let Some(device) = link_device(vendor, class) else {
            continue;
        };
        // Virtual functions have no link of their own.
        if path.join("physfn").exists() {
            continue;
        }
        out.push(PciLink {
            address: entry.file_name().to_string_lossy().into_owned(),
            device,
            vendor_id: format!("{vendor:#06x}"),
            current_gen: read("current_link_speed").and_then(|t| parse_gen(&t)),
            current_width: read("current_link_width").and_then(|t| parse_width(&t)),
            max_gen: read("max_link_speed").and_then(|t| parse_gen(&t)),
            max_width: read("max_link_width").and_then(|t| parse_width(&t)),
        });
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_and_widths() {
        assert_eq!(parse_gen("32.0 GT/s PCIe\n"), Some(5));
        assert_eq!(parse_gen("16 GT/s"), Some(4));
        assert_eq!(parse_gen("2.5 GT/s PCIe"), Some(1));
        assert_eq!(parse_gen("Unknown"), None);
        assert_eq!(parse_width("16\n"), Some(16));
        assert_eq!(parse_width("x8"), Some(8));
        assert_eq!(parse_width(""), None);
    }

    #[test]
    fn gpus_and_nics_only() {
        assert_eq!(link_device(0x10de, 0x030200), Some(LinkDevice::Gpu));
        assert_eq!(link_device(0x15b3, 0x020700), Some(LinkDevice::Nic));
        assert_eq!(link_device(0x15b3, 0x020000), Some(LinkDevice::Nic));
        assert_eq!(link_device(0x10de, 0x068000), None, "NVSwitch");
        assert_eq!(link_device(0x8086, 0x060000), None, "host bridge");
    }

    #[test]
    fn fixture_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-health/sys");
        let links = scan(&root).unwrap();
        let shown: Vec<String> = links
            .iter()
            .map(|l| {
                format!(
                    "{} {:?} gen{}/{} x{}/{}",
                    l.address,
                    l.device,
                    l.current_gen.unwrap_or(0),
                    l.max_gen.unwrap_or(0),
                    l.current_width.unwrap_or(0),
                    l.max_width.unwrap_or(0)
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "0000:18:00.0 Gpu gen5/5 x16/16",
                "0000:1a:00.0 Nic gen5/5 x16/16",
                "0000:29:00.0 Gpu gen5/5 x8/16",
                "0000:3a:00.0 Nic gen4/5 x16/16",
            ]
        );
        assert!(scan(Path::new("/nonexistent")).is_err());
    }
}
