//! Driver-free GPU detection from sysfs PCI devices (`<sysfs>/bus/pci/devices/*/{vendor,
//! device,class}`): NVIDIA vendor 0x10de with a display class (0x0300 VGA, 0x0302 3D).
//! NVSwitches (class 0x0680) and other functions are ignored.

use std::path::Path;

use super::model::{GpuDevice, PciDevice};

pub const NVIDIA_VENDOR: u32 = 0x10de;

/// PCI device ids we are sure of. Unknown ids are reported as `NVIDIA device 0x....`.
const KNOWN_DEVICES: &[(u32, &str)] = &[
    (0x2330, "NVIDIA H100 80GB HBM3"),
    (0x2331, "NVIDIA H100 PCIe"),
    (0x2335, "NVIDIA H200"),
];

/// The model name for an NVIDIA PCI device id.
pub fn model_for(device_id: u32) -> String {
    KNOWN_DEVICES
        .iter()
        .find(|(id, _)| *id == device_id)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("NVIDIA device {device_id:#06x}"))
}

/// Parse a sysfs hex attribute such as `0x10de\n`.
pub fn parse_hex(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u32::from_str_radix(t, 16).ok()
}

/// Whether a PCI function (vendor, 24-bit class) is an NVIDIA GPU.
pub fn is_nvidia_gpu(vendor: u32, class: u32) -> bool {
    vendor == NVIDIA_VENDOR && matches!(class >> 8, 0x0300 | 0x0302)
}

/// Every PCI function in `<sysfs_root>/bus/pci/devices` with readable vendor, device and
/// class ids, sorted by address; an error string when the directory cannot be read (no sysfs).
pub fn pci_devices(sysfs_root: &Path) -> Result<Vec<PciDevice>, String> {
    let dir = sysfs_root.join("bus/pci/devices");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let read = |attr: &str| {
            std::fs::read_to_string(path.join(attr))
                .ok()
                .and_then(|t| parse_hex(&t))
        };
        let (Some(vendor), Some(device), Some(class)) =
            (read("vendor"), read("device"), read("class"))
        else {
            continue;
        };
        out.push(PciDevice {
            address: entry.file_name().to_string_lossy().into_owned(),
            vendor_id: format!("{vendor:#06x}"),
            device_id: format!("{device:#06x}"),
            class: format!("{class:#08x}"),
        });
    }
    out.sort();
    Ok(out)
}

/// The NVIDIA GPUs among `devices`, in the same (address) order.
pub fn gpus(devices: &[PciDevice]) -> Vec<GpuDevice> {
    devices
        .iter()
        .filter_map(|d| {
            let (vendor, device, class) = (
                parse_hex(&d.vendor_id)?,
                parse_hex(&d.device_id)?,
                parse_hex(&d.class)?,
            );
            is_nvidia_gpu(vendor, class).then(|| GpuDevice {
                model: model_for(device),
                pci_address: d.address.clone(),
                pci_device_id: format!("{device:#06x}"),
                ..GpuDevice::default()
            })
        })
        .collect()
}

/// Scan `<sysfs_root>/bus/pci/devices` for GPUs, sorted by PCI address.
pub fn scan(sysfs_root: &Path) -> Result<Vec<GpuDevice>, String> {
    pci_devices(sysfs_root).map(|d| gpus(&d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_class() {
        assert_eq!(parse_hex("0x10de\n"), Some(0x10de));
        assert_eq!(parse_hex("10DE"), Some(0x10de));
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
        assert!(is_nvidia_gpu(0x10de, 0x030200));
        assert!(is_nvidia_gpu(0x10de, 0x030000));
        assert!(!is_nvidia_gpu(0x10de, 0x068000), "NVSwitch is not a GPU");
        assert!(!is_nvidia_gpu(0x8086, 0x030000));
    }

    #[test]
    fn models() {
        assert_eq!(model_for(0x2330), "NVIDIA H100 80GB HBM3");
        assert_eq!(model_for(0x2335), "NVIDIA H200");
        assert_eq!(model_for(0x1db6), "NVIDIA device 0x1db6");
        assert_eq!(model_for(0x20), "NVIDIA device 0x0020");
    }
}
