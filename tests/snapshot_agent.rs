//! `aiconform agent`: parsers on fixture host trees, and the real agent on this machine.

use std::path::{Path, PathBuf};

use aiconform::snapshot::agent::{AgentOptions, collect};
use aiconform::snapshot::model::{AgentReport, GpuSource};
use assert_cmd::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sysfs")
        .join(name)
}

fn collect_fixture(name: &str) -> AgentReport {
    let root = fixture(name);
    collect(&AgentOptions {
        sysfs_root: root.join("sys"),
        proc_root: root.join("proc"),
        etc_root: root.join("etc"),
        use_nvml: false,
        health: None,
    })
}

#[test]
fn h100_sxm_node_from_sysfs() {
    let r = collect_fixture("h100-sxm-8x");
    assert_eq!(r.kind, "NodeFacts");
    assert_eq!(r.os_release["ID"], "ubuntu");
    assert_eq!(r.os_release["VERSION_ID"], "24.04");
    assert_eq!(r.kernel_release.as_deref(), Some("6.8.0-1015-aws"));
    assert_eq!(r.hostname, "h100-sxm-8x");
    assert_eq!(r.sysctls["vm.max_map_count"], "262144");
    assert_eq!(r.sysctls["net.ipv4.ip_local_port_range"], "32768 60999");
    assert!(
        !r.sysctls.contains_key("vm.swappiness"),
        "absent sysctls are not invented"
    );
    assert!(r.modules.contains(&"nvidia_peermem".to_string()));
    assert!(
        r.modules.windows(2).all(|w| w[0] < w[1]),
        "modules sorted: {:?}",
        r.modules
    );

    assert_eq!(r.gpu.source, GpuSource::Sysfs);
    assert_eq!(r.gpu.nvml_note.as_deref(), Some("no NVML: disabled"));
    assert_eq!(
        r.gpu.devices.len(),
        8,
        "NVSwitches must not count: {:?}",
        r.gpu.devices
    );
    assert!(
        r.gpu
            .devices
            .iter()
            .all(|d| d.model == "NVIDIA H100 80GB HBM3" && d.pci_device_id == "0x2330")
    );
    assert_eq!(r.gpu.devices[0].pci_address, "0000:53:00.0");
    assert_eq!(r.gpu.devices[7].pci_address, "0000:ca:00.0");
    assert_eq!(r.cpu.model, "Intel(R) Xeon(R) Platinum 8488C");
    assert_eq!(r.cpu.logical_cpus, 4);
    assert_eq!(
        r.pci_devices.len(),
        13,
        "all PCI functions (host bridge, 4 NVSwitches, 8 GPUs): {:?}",
        r.pci_devices
    );
    assert!(
        r.pci_devices
            .windows(2)
            .all(|w| w[0].address < w[1].address)
    );
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn cpu_only_node_has_no_gpus() {
    let r = collect_fixture("no-gpu");
    assert_eq!(r.gpu.source, GpuSource::None);
    assert!(r.gpu.devices.is_empty());
    assert_eq!(r.modules, ["br_netfilter", "overlay"]);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn unknown_ids_and_broken_entries() {
    let r = collect_fixture("mixed-unknown");
    assert_eq!(r.os_release["ID"], "rhel");
    assert_eq!(r.os_release["VERSION_ID"], "9.4");
    let models: Vec<&str> = r.gpu.devices.iter().map(|d| d.model.as_str()).collect();
    assert_eq!(
        models,
        ["NVIDIA H200", "NVIDIA H100 PCIe", "NVIDIA device 0x20b5"]
    );
    assert!(r.modules.is_empty());
    assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    assert!(r.notes[0].contains("modules"), "{:?}", r.notes);
    assert!(r.notes[1].contains("cpuinfo"), "{:?}", r.notes);
    assert!(r.cpu.is_empty());
}

#[test]
fn missing_roots_become_notes_not_errors() {
    let r = collect(&AgentOptions {
        sysfs_root: "/nonexistent/sys".into(),
        proc_root: "/nonexistent/proc".into(),
        etc_root: "/nonexistent/etc".into(),
        use_nvml: false,
        health: None,
    });
    assert!(r.os_release.is_empty());
    assert_eq!(r.kernel_release, None);
    assert_eq!(r.notes.len(), 5, "{:?}", r.notes);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("/nonexistent/etc/os-release"))
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("/nonexistent/sys/bus/pci/devices"))
    );
}

#[test]
fn cli_on_fixture_writes_json_file() {
    let root = fixture("h100-sxm-8x");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("facts.json");
    Command::cargo_bin("aiconform")
        .unwrap()
        .args(["agent", "--no-nvml", "--output"])
        .arg(&out)
        .arg("--sysfs-root")
        .arg(root.join("sys"))
        .arg("--proc-root")
        .arg(root.join("proc"))
        .arg("--etc-root")
        .arg(root.join("etc"))
        .assert()
        .success()
        .stderr(predicates::str::contains("8 GPU(s)"));
    let r: AgentReport = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(r.gpu.devices.len(), 8);
}

/// The real agent on this machine (no GPU, no driver): succeeds, reports OS facts, and says
/// why NVML is unavailable.
#[test]
fn agent_on_this_machine() {
    let out = Command::cargo_bin("aiconform")
        .unwrap()
        .args(["agent", "--output", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let r: AgentReport = aiconform::yaml::from_str(&text, "agent stdout").unwrap();
    assert_eq!(r.kind, "NodeFacts");
    assert!(r.os_release.contains_key("ID"), "{text}");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(r.kernel_release.as_deref(), Some(kernel.trim()));
    if Path::new("/dev/nvidiactl").exists() {
        eprintln!("this machine has an NVIDIA driver; skipping the no-NVML assertion");
        return;
    }
    let note = r.gpu.nvml_note.as_deref().unwrap_or_default();
    assert!(note.starts_with("no NVML: "), "{text}");
    assert_ne!(r.gpu.source, GpuSource::Nvml);
}
