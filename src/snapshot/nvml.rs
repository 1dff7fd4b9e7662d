//! GPU facts through NVML (needs the NVIDIA driver). Any failure to load or initialize NVML
//! is returned as a reason string; the caller falls back to sysfs.

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

use super::model::{GpuDevice, GpuReport, GpuSource};

/// NVLink links per GPU that NVML can describe (NVML_NVLINK_MAX_LINKS).
const MAX_NVLINKS: u32 = 18;

fn init() -> Result<Nvml, NvmlError> {
    // The driver ships libnvidia-ml.so.1; the unversioned name needs the dev package.
    Nvml::builder()
        .lib_path(std::ffi::OsStr::new("libnvidia-ml.so.1"))
        .init()
        .or_else(|_| Nvml::init())
}

/// Collect GPUs via NVML, or say why not.
pub fn collect() -> Result<GpuReport, String> {
    let nvml = init().map_err(|e| e.to_string())?;
    let count = nvml
        .device_count()
        .map_err(|e| format!("device count: {e}"))?;
    let mut gpu = GpuReport {
        source: GpuSource::Nvml,
        driver_version: nvml.sys_driver_version().ok(),
        cuda_version: nvml.sys_cuda_driver_version().ok().map(|v| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(v),
                nvml_wrapper::cuda_driver_version_minor(v)
            )
        }),
        ..GpuReport::default()
    };
    for i in 0..count {
        let device = nvml
            .device_by_index(i)
            .map_err(|e| format!("device {i}: {e}"))?;
        let pci = device.pci_info().ok();
        let nvlink_active = (0..MAX_NVLINKS)
            .map_while(|l| device.link_wrapper_for(l).is_active().ok())
            .filter(|active| *active)
            .count();
        gpu.devices.push(GpuDevice {
            model: device.name().unwrap_or_else(|e| format!("unknown ({e})")),
            pci_address: pci
                .as_ref()
                .map(|p| p.bus_id.to_lowercase())
                .unwrap_or_default(),
            pci_device_id: pci
                .as_ref()
                .map(|p| format!("{:#06x}", p.pci_device_id >> 16))
                .unwrap_or_default(),
            uuid: device.uuid().ok(),
            memory_mib: device.memory_info().ok().map(|m| m.total / (1024 * 1024)),
            mig_mode: device.mig_mode().ok().map(|m| {
                if m.current == 1 {
                    "enabled"
                } else {
                    "disabled"
                }
                .to_string()
            }),
            nvlink_active: Some(u32::try_from(nvlink_active).unwrap_or(u32::MAX)),
        });
    }
    gpu.devices
        .sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    Ok(gpu)
}
