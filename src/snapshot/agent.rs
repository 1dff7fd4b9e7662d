//! Node facts for `aiconform agent`: os-release, kernel, sysctls, modules and GPUs.
//!
//! Reading is rooted at configurable directories so the same code runs on a host, inside the
//! snapshot Job (host paths mounted under `/host`), and against fixture trees in tests.
//! Nothing here fails: missing facts become `notes`.

use std::path::{Path, PathBuf};

use super::model::{AGENT_KIND, API_VERSION, AgentReport, GpuReport, GpuSource};
use super::{cpu, nvml, osrelease, sysfs};

/// Sysctls worth checking on GPU nodes (only those present are reported).
pub const SYSCTLS: &[&str] = &[
    "fs.file-max",
    "fs.inotify.max_user_instances",
    "fs.inotify.max_user_watches",
    "kernel.numa_balancing",
    "kernel.pid_max",
    "net.bridge.bridge-nf-call-iptables",
    "net.core.rmem_max",
    "net.core.somaxconn",
    "net.core.wmem_max",
    "net.ipv4.ip_forward",
    "net.ipv4.ip_local_port_range",
    "vm.max_map_count",
    "vm.nr_hugepages",
    "vm.overcommit_memory",
    "vm.swappiness",
];

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub sysfs_root: PathBuf,
    pub proc_root: PathBuf,
    pub etc_root: PathBuf,
    /// Try NVML first (off in fixture tests so a GPU machine gives the same answer).
    pub use_nvml: bool,
    /// Node-health readings to collect; `None`: none.
    pub health: Option<super::health::HealthOptions>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            sysfs_root: "/sys".into(),
            proc_root: "/proc".into(),
            etc_root: "/etc".into(),
            use_nvml: true,
            health: None,
        }
    }
}

/// Parse `/proc/modules`: the first field of each line, sorted and deduplicated.
pub fn parse_modules(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The procfs path of a sysctl key: `net.ipv4.ip_forward` → `sys/net/ipv4/ip_forward`.
pub fn sysctl_path(proc_root: &Path, key: &str) -> PathBuf {
    let mut p = proc_root.join("sys");
    for part in key.split('.') {
        p.push(part);
    }
    p
}

/// Whitespace-normalized sysctl value (`32768\t60999` → `32768 60999`).
pub fn normalize_sysctl(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn read_trimmed(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Collect everything; never fails.
pub fn collect(opts: &AgentOptions) -> AgentReport {
    let mut report = AgentReport {
        api_version: API_VERSION.into(),
        kind: AGENT_KIND.into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        ..AgentReport::default()
    };
    let notes = &mut report.notes;

    let os_release = opts.etc_root.join("os-release");
    let mut os_text = read_trimmed(&os_release);
    if os_text.is_err() && opts.etc_root == Path::new("/etc") {
        os_text = read_trimmed(Path::new("/usr/lib/os-release"));
    }
    match os_text {
        Ok(t) => report.os_release = osrelease::parse(&t),
        Err(e) => notes.push(e),
    }

    match read_trimmed(&opts.proc_root.join("sys/kernel/osrelease")) {
        Ok(k) if !k.is_empty() => report.kernel_release = Some(k),
        Ok(_) => notes.push("kernel release is empty".into()),
        Err(e) => notes.push(e),
    }
    if let Ok(h) = read_trimmed(&opts.proc_root.join("sys/kernel/hostname")) {
        report.hostname = h;
    }
    for key in SYSCTLS {
        if let Ok(v) = std::fs::read_to_string(sysctl_path(&opts.proc_root, key)) {
            report
                .sysctls
                .insert((*key).to_string(), normalize_sysctl(&v));
        }
    }
    match std::fs::read_to_string(opts.proc_root.join("modules")) {
        Ok(t) => report.modules = parse_modules(&t),
        Err(e) => notes.push(format!(
            "cannot read {}: {e}",
            opts.proc_root.join("modules").display()
        )),
    }

    match std::fs::read_to_string(opts.proc_root.join("cpuinfo")) {
        Ok(t) => report.cpu = cpu::parse_cpuinfo(&t),
        Err(e) => notes.push(format!(
            "cannot read {}: {e}",
            opts.proc_root.join("cpuinfo").display()
        )),
    }
    let pci = sysfs::pci_devices(&opts.sysfs_root);
    report.gpu = collect_gpus(opts, &pci, notes);
    report.pci_devices = pci.unwrap_or_default();
    report.health = opts
        .health
        .as_ref()
        .map(|h| Box::new(super::health::collect(h)));
    report
}

fn collect_gpus(
    opts: &AgentOptions,
    pci: &Result<Vec<super::model::PciDevice>, String>,
    notes: &mut Vec<String>,
) -> GpuReport {
    let nvml_note = if opts.use_nvml {
        match nvml::collect() {
            Ok(gpu) => return gpu,
            Err(reason) => format!("no NVML: {reason}"),
        }
    } else {
        "no NVML: disabled".to_string()
    };
    let mut gpu = GpuReport {
        nvml_note: Some(nvml_note),
        ..GpuReport::default()
    };
    match pci.as_ref().map(|d| sysfs::gpus(d)) {
        Ok(devices) => {
            gpu.source = if devices.is_empty() {
                GpuSource::None
            } else {
                GpuSource::Sysfs
            };
            gpu.devices = devices;
        }
        Err(e) => notes.push(e.clone()),
    }
    gpu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules() {
        let text = "nvidia_uvm 1531904 0 - Live 0x0000000000000000 (POE)\n\
                    nvidia 54308864 1 nvidia_uvm, Live 0x0000000000000000 (POE)\n\
                    \n\
                    br_netfilter 32768 0 - Live 0x0000000000000000\n\
                    nvidia 1 0 - Live 0x0\n";
        assert_eq!(
            parse_modules(text),
            ["br_netfilter", "nvidia", "nvidia_uvm"]
        );
        assert!(parse_modules("").is_empty());
    }

    #[test]
    fn sysctl_paths_and_values() {
        assert_eq!(
            sysctl_path(Path::new("/host/proc"), "net.ipv4.ip_forward"),
            Path::new("/host/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(normalize_sysctl("32768\t60999\n"), "32768 60999");
    }
}
