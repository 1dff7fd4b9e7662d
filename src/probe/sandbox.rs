//! `aiconform probe sandbox`: what a workload sees of the node it runs on, in the terms of the
//! upstream `TestWorkloadSandboxing` (kubernetes-sigs/ai-conformance): the processes its
//! `/proc` lists, whether it can read host memory (`/dev/mem`, `/dev/kmem`), host paths, host
//! network interfaces, and its kernel identity. The case runs it in a sandboxed pod and in an
//! ordinary control pod on the same node and compares.
//!
//! How the process list is seen: every numeric entry of this process's `/proc` with its `comm`,
//! plus how many of them are in another PID namespace than the probe's own (read from
//! `/proc/<pid>/ns/pid` where readable). A sandbox lists only its own processes; a container
//! that shares the host's `/proc` (or PID namespace) lists the node's.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Process names (`comm`) of node daemons a sandbox must not see; a trailing `*` is a prefix.
pub const HOST_PROCESSES: &[&str] = &[
    "kubelet",
    "containerd",
    "containerd-shim*",
    "dockerd",
    "crio",
    "systemd-journal",
];

/// Host paths a sandbox must not have.
pub const HOST_PATHS: &[&str] = &["/var/lib/kubelet", "/etc/kubernetes", "/var/log/pods"];

/// Node network interfaces a sandbox must not see; a trailing `*` is a prefix.
pub const HOST_INTERFACES: &[&str] = &[
    "docker0", "cbr0", "flannel*", "cni0", "br-*", "bond*", "dummy*",
];

/// Devices giving access to physical or kernel memory.
pub const MEMORY_DEVICES: &[&str] = &["/dev/mem", "/dev/kmem"];

/// At most this many interface names go into a report (the termination message is small).
const MAX_INTERFACES: usize = 32;

/// The kernel this process sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelIdentity {
    /// `uname -r` (the uname(2) release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uname_release: Option<String>,
    /// `/proc/version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_version: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

impl KernelIdentity {
    /// The fields by the names messages use.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 3] {
        [
            ("uname -r", self.uname_release.as_deref()),
            ("/proc/version", self.proc_version.as_deref()),
            ("boot id", self.boot_id.as_deref()),
        ]
    }
}

/// One memory device and what opening and reading one byte of it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAccess {
    pub path: String,
    /// `absent`, `denied`, `unreadable: <error>` or `readable`.
    pub access: String,
}

impl DeviceAccess {
    pub fn readable(&self) -> bool {
        self.access == "readable"
    }
}

/// What `probe sandbox` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxView {
    /// Processes listed in this process's `/proc`.
    pub processes: usize,
    /// Of them, the node daemons ([`HOST_PROCESSES`]) as `comm(pid)`.
    #[serde(default)]
    pub host_processes: Vec<String>,
    /// Of them, those in another PID namespace than the probe's (`/proc/<pid>/ns/pid`).
    #[serde(default)]
    pub foreign_processes: usize,
    /// [`MEMORY_DEVICES`] and what reading them did.
    #[serde(default)]
    pub memory: Vec<DeviceAccess>,
    /// The [`HOST_PATHS`] that exist.
    #[serde(default)]
    pub host_paths: Vec<String>,
    /// This network namespace's interfaces (from `/proc/net/dev`).
    #[serde(default)]
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub kernel: KernelIdentity,
}

/// True when `name` matches `pattern` (exactly, or by prefix for a trailing `*`).
pub fn name_matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

fn matches_any(name: &str, patterns: &[&str]) -> bool {
    patterns.iter().any(|p| name_matches(name, p))
}

/// The node daemons among `(pid, comm)` processes, as `comm(pid)`.
pub fn host_processes(procs: &[(u32, String)]) -> Vec<String> {
    procs
        .iter()
        .filter(|(_, comm)| matches_any(comm, HOST_PROCESSES))
        .map(|(pid, comm)| format!("{comm}({pid})"))
        .collect()
}

/// The node interfaces among `names`.
pub fn host_interfaces(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| matches_any(n, HOST_INTERFACES))
        .cloned()
        .collect()
}

/// One isolation check of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `process isolation`, `memory isolation`, `filesystem isolation`, `network isolation`.
    pub name: &'static str,
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join(", ")
    }
}

/// The checks a view passes or fails on its own (kernel identity needs a control view:
/// [`kernel_difference`]).
pub fn isolation_checks(v: &SandboxView) -> Vec<Check> {
    let process = if v.host_processes.is_empty() && v.foreign_processes == 0 {
        Check {
            name: "process isolation",
            ok: true,
            detail: format!(
                "its /proc lists {} process(es), none of {} and none outside its PID namespace",
                v.processes,
                HOST_PROCESSES.join(", ")
            ),
        }
    } else {
        let mut seen = Vec::new();
        if !v.host_processes.is_empty() {
            seen.push(format!("node daemons {}", v.host_processes.join(", ")));
        }
        if v.foreign_processes > 0 {
            seen.push(format!(
                "{} process(es) outside its PID namespace",
                v.foreign_processes
            ));
        }
        Check {
            name: "process isolation",
            ok: false,
            detail: format!(
                "its /proc lists {} process(es), including {}",
                v.processes,
                seen.join(" and ")
            ),
        }
    };
    let readable: Vec<String> = v
        .memory
        .iter()
        .filter(|d| d.readable())
        .map(|d| d.path.clone())
        .collect();
    let memory = Check {
        name: "memory isolation",
        ok: readable.is_empty() && !v.memory.is_empty(),
        detail: if v.memory.is_empty() {
            "not checked".to_string()
        } else {
            v.memory
                .iter()
                .map(|d| format!("{} {}", d.path, d.access))
                .collect::<Vec<_>>()
                .join(", ")
        },
    };
    let filesystem = Check {
        name: "filesystem isolation",
        ok: v.host_paths.is_empty(),
        detail: if v.host_paths.is_empty() {
            format!("none of {}", HOST_PATHS.join(", "))
        } else {
            format!("has {}", v.host_paths.join(", "))
        },
    };
    let host_ifs = host_interfaces(&v.interfaces);
    let network = Check {
        name: "network isolation",
        ok: host_ifs.is_empty(),
        detail: if host_ifs.is_empty() {
            format!("interfaces {}", list_or(&v.interfaces, "none"))
        } else {
            format!(
                "node interfaces {} (of {})",
                host_ifs.join(", "),
                v.interfaces.join(", ")
            )
        },
    };
    vec![process, memory, filesystem, network]
}

/// How a sandbox's kernel identity compares with a control pod's on the same node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelComparison {
    /// Fields readable in both that differ.
    pub differing: Vec<&'static str>,
    /// Fields readable in both that are equal.
    pub same: Vec<&'static str>,
    /// Fields unreadable in either.
    pub unreadable: Vec<&'static str>,
}

impl KernelComparison {
    /// A distinct kernel identity: at least one readable field differs.
    pub fn distinct(&self) -> bool {
        !self.differing.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.differing.is_empty() {
            parts.push(format!("differs in {}", self.differing.join(", ")));
        }
        if !self.same.is_empty() {
            parts.push(format!("same {}", self.same.join(", ")));
        }
        if !self.unreadable.is_empty() {
            parts.push(format!("unreadable {}", self.unreadable.join(", ")));
        }
        parts.join("; ")
    }
}

/// Compare the kernel identity field by field.
pub fn kernel_difference(sandbox: &KernelIdentity, control: &KernelIdentity) -> KernelComparison {
    let mut c = KernelComparison::default();
    for ((name, a), (_, b)) in sandbox.fields().into_iter().zip(control.fields()) {
        match (a, b) {
            (Some(a), Some(b)) if a == b => c.same.push(name),
            (Some(_), Some(_)) => c.differing.push(name),
            _ => c.unreadable.push(name),
        }
    }
    c
}

/// Interface names from `/proc/net/dev` text, in its order.
pub fn interface_names(proc_net_dev: &str) -> Vec<String> {
    proc_net_dev
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|n| !n.is_empty() && !n.contains('|'))
        .collect()
}

/// The upstream probe's log lines: `SANDBOX_PROBE: <CHECK>=PASS|FAIL` per check, then
/// `SANDBOX_INFO: KEY=value` for the kernel identity, then `SANDBOX_PROBE: COMPLETED`.
pub fn protocol_lines(v: &SandboxView) -> Vec<String> {
    let mut out: Vec<String> = isolation_checks(v)
        .iter()
        .map(|c| {
            format!(
                "SANDBOX_PROBE: {}={}",
                c.name.to_uppercase().replace(' ', "_"),
                if c.ok { "PASS" } else { "FAIL" }
            )
        })
        .collect();
    for (key, (_, val)) in ["UNAME_R", "PROC_VERSION", "BOOT_ID"]
        .into_iter()
        .zip(v.kernel.fields())
    {
        out.push(format!("SANDBOX_INFO: {key}={}", val.unwrap_or("-")));
    }
    out.push("SANDBOX_PROBE: COMPLETED".to_string());
    out
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Open a device and read one byte.
fn device_access(path: &str) -> DeviceAccess {
    let access = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "absent".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => "denied".to_string(),
        Err(e) => format!("unreadable: {e}"),
        Ok(mut f) => {
            let mut b = [0u8; 1];
            match f.read(&mut b) {
                Ok(1) => "readable".to_string(),
                Ok(_) => "unreadable: empty".to_string(),
                Err(e) => format!("unreadable: {e}"),
            }
        }
    };
    DeviceAccess {
        path: path.to_string(),
        access,
    }
}

/// What this process sees, under `/`.
pub fn observe() -> SandboxView {
    let proc = Path::new("/proc");
    let own_ns = std::fs::read_link(proc.join("self/ns/pid")).ok();
    let mut procs: Vec<(u32, String)> = Vec::new();
    let mut foreign = 0;
    for entry in std::fs::read_dir(proc).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(comm) = read_trimmed(&entry.path().join("comm")) else {
            continue; // gone meanwhile
        };
        if let (Some(own), Ok(ns)) = (&own_ns, std::fs::read_link(entry.path().join("ns/pid")))
            && &ns != own
        {
            foreign += 1;
        }
        procs.push((pid, comm));
    }
    procs.sort();
    let mut interfaces = std::fs::read_to_string(crate::probe::net::PROC_NET_DEV)
        .map(|t| interface_names(&t))
        .unwrap_or_default();
    interfaces.truncate(MAX_INTERFACES);
    SandboxView {
        processes: procs.len(),
        host_processes: host_processes(&procs),
        foreign_processes: foreign,
        memory: MEMORY_DEVICES.iter().map(|d| device_access(d)).collect(),
        host_paths: HOST_PATHS
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .map(|p| p.to_string())
            .collect(),
        interfaces,
        kernel: KernelIdentity {
            uname_release: nix::sys::utsname::uname()
                .ok()
                .and_then(|u| u.release().to_str().map(str::to_string)),
            proc_version: read_trimmed(&proc.join("version")),
            boot_id: read_trimmed(&proc.join("sys/kernel/random/boot_id")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean() -> SandboxView {
        SandboxView {
            processes: 1,
            memory: vec![
                DeviceAccess {
                    path: "/dev/mem".into(),
                    access: "absent".into(),
                },
                DeviceAccess {
                    path: "/dev/kmem".into(),
                    access: "absent".into(),
                },
            ],
            interfaces: vec!["lo".into(), "eth0".into()],
            ..SandboxView::default()
        }
    }

    #[test]
    fn names_match_exactly_or_by_prefix() {
        assert!(name_matches("containerd", "containerd"));
        assert!(!name_matches("containerd-shim", "containerd"));
        assert!(name_matches("containerd-shim", "containerd-shim*"));
        assert!(name_matches("br-1a2b", "br-*"));
        assert!(!name_matches("bridge0", "br-*"));
        let procs = vec![
            (1, "aiconform".to_string()),
            (812, "kubelet".to_string()),
            (900, "containerd-shim".to_string()),
            (901, "kubelet-helper".to_string()),
        ];
        assert_eq!(
            host_processes(&procs),
            ["kubelet(812)", "containerd-shim(900)"]
        );
        let ifs: Vec<String> = ["lo", "eth0", "docker0", "flannel.1", "cni0x", "dummy0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(host_interfaces(&ifs), ["docker0", "flannel.1", "dummy0"]);
    }

    #[test]
    fn interface_names_from_proc_net_dev() {
        let text = "Inter-|   Receive                            |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
            lo:       0       0    0    0    0     0          0         0        0\n  \
            eth0: 1200      10    0    0    0     0          0         0      800\n";
        assert_eq!(interface_names(text), ["lo", "eth0"]);
    }

    #[test]
    fn a_clean_view_passes_every_check() {
        let checks = isolation_checks(&clean());
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
        let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "process isolation",
                "memory isolation",
                "filesystem isolation",
                "network isolation"
            ]
        );
        assert_eq!(
            checks[0].detail,
            "its /proc lists 1 process(es), none of kubelet, containerd, containerd-shim*, dockerd, crio, systemd-journal and none outside its PID namespace"
        );
        assert_eq!(checks[1].detail, "/dev/mem absent, /dev/kmem absent");
        assert_eq!(checks[3].detail, "interfaces lo, eth0");
    }

    #[test]
    fn each_leak_fails_its_check_naming_what_was_seen() {
        let v = SandboxView {
            processes: 103,
            host_processes: vec!["kubelet(812)".into()],
            foreign_processes: 102,
            memory: vec![DeviceAccess {
                path: "/dev/mem".into(),
                access: "readable".into(),
            }],
            host_paths: vec!["/var/lib/kubelet".into()],
            interfaces: vec!["lo".into(), "eth0".into(), "docker0".into()],
            ..SandboxView::default()
        };
        let checks = isolation_checks(&v);
        assert!(checks.iter().all(|c| !c.ok), "{checks:#?}");
        assert_eq!(
            checks[0].detail,
            "its /proc lists 103 process(es), including node daemons kubelet(812) and 102 process(es) outside its PID namespace"
        );
        assert_eq!(checks[1].detail, "/dev/mem readable");
        assert_eq!(checks[2].detail, "has /var/lib/kubelet");
        assert_eq!(
            checks[3].detail,
            "node interfaces docker0 (of lo, eth0, docker0)"
        );
        // Foreign processes alone fail it too (a host /proc without named daemons).
        let only_foreign = SandboxView {
            foreign_processes: 3,
            ..clean()
        };
        assert!(!isolation_checks(&only_foreign)[0].ok);
        // Memory that could not be checked is no pass.
        let unchecked = SandboxView {
            memory: Vec::new(),
            ..clean()
        };
        assert!(!isolation_checks(&unchecked)[1].ok);
        // Denied or failing reads are isolation.
        let denied = SandboxView {
            memory: vec![DeviceAccess {
                path: "/dev/mem".into(),
                access: "denied".into(),
            }],
            ..clean()
        };
        assert!(isolation_checks(&denied)[1].ok);
    }

    #[test]
    fn kernel_identity_differs_in_at_least_one_readable_field() {
        let host = KernelIdentity {
            uname_release: Some("6.8.0".into()),
            proc_version: Some("Linux version 6.8.0".into()),
            boot_id: Some("b8".into()),
        };
        let sandbox = KernelIdentity {
            uname_release: Some("6.8.0".into()),
            proc_version: Some("Linux version 4.19.0-gvisor".into()),
            boot_id: None,
        };
        let c = kernel_difference(&sandbox, &host);
        assert!(c.distinct());
        assert_eq!(c.differing, ["/proc/version"]);
        assert_eq!(
            c.describe(),
            "differs in /proc/version; same uname -r; unreadable boot id"
        );
        let same = kernel_difference(&host, &host);
        assert!(!same.distinct());
        assert_eq!(same.describe(), "same uname -r, /proc/version, boot id");
        // Nothing readable proves nothing.
        let blind = kernel_difference(&KernelIdentity::default(), &host);
        assert!(!blind.distinct());
    }

    #[test]
    fn protocol_lines_as_upstream_logs_them() {
        let mut v = clean();
        v.kernel.uname_release = Some("4.19.0".into());
        let lines = protocol_lines(&v);
        assert_eq!(lines[0], "SANDBOX_PROBE: PROCESS_ISOLATION=PASS");
        assert!(lines.contains(&"SANDBOX_INFO: UNAME_R=4.19.0".to_string()));
        assert!(lines.contains(&"SANDBOX_INFO: PROC_VERSION=-".to_string()));
        assert_eq!(lines.last().unwrap(), "SANDBOX_PROBE: COMPLETED");
    }

    #[test]
    fn the_view_round_trips_as_json() {
        let v = clean();
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.len() < 4096);
        assert_eq!(serde_json::from_str::<SandboxView>(&text).unwrap(), v);
    }
}
