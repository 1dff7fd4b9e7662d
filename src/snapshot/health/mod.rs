//! Node-health readings collected by `aiconform agent`: PCIe links of GPUs and NICs and
//! InfiniBand/RoCE ports (sysfs), Xid/SXid events (the kernel log), per-GPU ECC, row
//! remapping, retired pages, temperature, clock event reasons and NVLink (`nvidia-smi`, which
//! the NVIDIA container runtime injects with the `utility` capability), and `dcgmi diag`
//! results when DCGM is installed.
//!
//! Each source is a [`Reading`]: what was read, or why it could not be (no driver, no
//! permission, no such file). Parsing lives in one module per source and is pure; this
//! module does the reading.
//!
//! - [`pcie`] reads `<sysfs>/bus/pci/devices/*/{current,max}_link_{speed,width}`.
//! - [`infiniband`] reads `<sysfs>/class/infiniband/*/ports/*/{state,phys_state,rate,link_layer}`.
//! - [`kmsg`] reads `NVRM: Xid (PCI:...): N, ...` and `SXid` lines of `/dev/kmsg`.
//! - [`nvsmi`] reads `nvidia-smi -q -x` and `nvidia-smi nvlink -s` / `-e`.
//! - [`dcgm`] reads `dcgmi diag -r N -j`.

pub mod dcgm;
pub mod infiniband;
pub mod kmsg;
pub mod nvsmi;
pub mod pcie;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use dcgm::DcgmDiag;
pub use infiniband::IbPort;
pub use kmsg::{KernelLog, XidEvent, XidSource};
pub use nvsmi::{GpuHealth, GpuNvlink, NvlinkLink};
pub use pcie::PciLink;

/// A reading, or why there is none. A node whose reading is missing is "not observed",
/// never healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reading<T> {
    Observed(T),
    NotObserved(String),
}

impl<T> Reading<T> {
    pub fn observed(&self) -> Result<&T, &str> {
        match self {
            Reading::Observed(v) => Ok(v),
            Reading::NotObserved(reason) => Err(reason),
        }
    }
}

impl<T> Default for Reading<T> {
    fn default() -> Self {
        Reading::NotObserved("not collected".into())
    }
}

/// Everything the node-health checks read on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReadings {
    /// PCIe links of every GPU and NIC.
    #[serde(default)]
    pub pcie: Reading<Vec<PciLink>>,
    /// InfiniBand / RoCE ports (an empty list: the node has none).
    #[serde(default)]
    pub infiniband: Reading<Vec<IbPort>>,
    /// Xid and SXid events in the kernel log since boot.
    #[serde(default)]
    pub kernel_log: Reading<KernelLog>,
    /// Per-GPU health from `nvidia-smi -q -x`.
    #[serde(default)]
    pub gpus: Reading<Vec<GpuHealth>>,
    /// NVLink state and error counters per GPU from `nvidia-smi nvlink`.
    #[serde(default)]
    pub nvlink: Reading<Vec<GpuNvlink>>,
    /// `dcgmi diag` results.
    #[serde(default)]
    pub dcgm: Reading<DcgmDiag>,
}

/// Where the readings come from.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    pub sysfs_root: PathBuf,
    pub proc_root: PathBuf,
    /// The kernel log: `/dev/kmsg`, or a file of `dmesg` lines.
    pub kernel_log: PathBuf,
    /// The `nvidia-smi` command (a name looked up on PATH, or a path).
    pub nvidia_smi: String,
    /// The `dcgmi` command.
    pub dcgmi: String,
    /// `dcgmi diag -r LEVEL` (1 quick .. 4 long); `None`: do not run it.
    pub dcgm_level: Option<u8>,
    /// How long one command may run.
    pub command_timeout: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            sysfs_root: "/sys".into(),
            proc_root: "/proc".into(),
            kernel_log: "/dev/kmsg".into(),
            nvidia_smi: "nvidia-smi".into(),
            dcgmi: "dcgmi".into(),
            dcgm_level: Some(1),
            command_timeout: Duration::from_secs(60),
        }
    }
}

/// Collect every reading; never fails (a source that cannot be read says why).
pub fn collect(opts: &HealthOptions) -> HealthReadings {
    let pcie = match pcie::scan(&opts.sysfs_root) {
        Ok(v) => Reading::Observed(v),
        Err(e) => Reading::NotObserved(e),
    };
    let infiniband = match infiniband::scan(&opts.sysfs_root) {
        Ok(v) => Reading::Observed(v),
        Err(e) => Reading::NotObserved(e),
    };
    let uptime = std::fs::read_to_string(opts.proc_root.join("uptime"))
        .ok()
        .and_then(|t| kmsg::parse_uptime(&t));
    let kernel_log = match kmsg::read(&opts.kernel_log) {
        Ok(text) => Reading::Observed(KernelLog {
            uptime_seconds: uptime,
            events: kmsg::parse(&text),
        }),
        Err(e) => Reading::NotObserved(e),
    };
    let smi = |args: &[&str]| run(&opts.nvidia_smi, args, opts.command_timeout);
    let gpus = match smi(&["-q", "-x"]) {
        Ok(xml) => match nvsmi::parse_query(&xml) {
            Ok(v) => Reading::Observed(v),
            Err(e) => Reading::NotObserved(format!("`nvidia-smi -q -x`: {e}")),
        },
        Err(e) => Reading::NotObserved(e),
    };
    let nvlink = match (smi(&["nvlink", "-s"]), smi(&["nvlink", "-e"])) {
        (Ok(status), errors) => {
            let mut v = nvsmi::parse_nvlink_status(&status);
            if let Ok(errors) = errors {
                nvsmi::merge_nvlink_errors(&mut v, &errors);
            }
            Reading::Observed(v)
        }
        (Err(e), _) => Reading::NotObserved(e),
    };
    let dcgm = match opts.dcgm_level {
        None => Reading::NotObserved("dcgmi diag not requested".into()),
        Some(level) => {
            let level_arg = level.to_string();
            match run(
                &opts.dcgmi,
                &["diag", "-r", &level_arg, "-j"],
                opts.command_timeout,
            ) {
                Ok(json) => match dcgm::parse(&json, level) {
                    Ok(d) => Reading::Observed(d),
                    Err(e) => Reading::NotObserved(format!("`dcgmi diag -r {level} -j`: {e}")),
                },
                Err(e) => Reading::NotObserved(e),
            }
        }
    };
    HealthReadings {
        pcie,
        infiniband,
        kernel_log,
        gpus,
        nvlink,
        dcgm,
    }
}

/// Run a command and return its standard output. A command that is not installed, fails
/// or runs too long is an error saying so. `dcgmi diag` exits non-zero when a test
/// fails, so output that parses is kept whatever the exit status.
fn run(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let shown = format!("`{program} {}`", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("{program} not found (no NVIDIA driver utilities in the container)")
            }
            _ => format!("cannot run {shown}: {e}"),
        })?;
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            if let Some(mut s) = pipe {
                let _ = s.read_to_string(&mut out);
            }
            out
        })
    };
    let reader = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let errors = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not finish in {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for {shown}: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if out.trim().is_empty() {
        let err = errors.join().unwrap_or_default();
        return Err(format!(
            "{shown} printed nothing ({status}): {}",
            err.trim().chars().take(300).collect::<String>()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-health")
    }

    /// A stand-in for nvidia-smi and dcgmi printing the fixtures.
    fn tool(dir: &Path) -> String {
        let f = fixtures();
        let script = format!(
            "#!/bin/sh\ncase \"$*\" in\n  '-q -x') cat {f}/nvidia-smi-q.xml ;;\n  'nvlink -s') cat {f}/nvidia-smi-nvlink-s.txt ;;\n  'nvlink -e') cat {f}/nvidia-smi-nvlink-e.txt ;;\n  'diag -r 2 -j') cat {f}/dcgmi-diag-r2.json; exit 226 ;;\n  *) echo unsupported >&2; exit 2 ;;\nesac\n",
            f = f.display()
        );
        let path = dir.join("tool");
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[test]
    fn collects_every_source_from_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let tool = tool(dir.path());
        let r = collect(&HealthOptions {
            sysfs_root: fixtures().join("sys"),
            proc_root: fixtures().join("proc"),
            kernel_log: fixtures().join("kmsg.txt"),
            nvidia_smi: tool.clone(),
            dcgmi: tool,
            dcgm_level: Some(2),
            command_timeout: Duration::from_secs(30),
        });
        assert_eq!(r.pcie.observed().unwrap().len(), 4);
        assert_eq!(r.infiniband.observed().unwrap().len(), 2);
        let log = r.kernel_log.observed().unwrap();
        assert_eq!(log.events.len(), 3);
        assert_eq!(log.uptime_seconds, None, "no /proc/uptime in the fixture");
        assert_eq!(r.gpus.observed().unwrap().len(), 2);
        assert_eq!(
            r.nvlink.observed().unwrap()[1].links[2].replay_errors,
            Some(12)
        );
        // dcgmi exits non-zero when a test fails; its JSON still counts.
        assert_eq!(r.dcgm.observed().unwrap().level, 2);
    }

    #[test]
    fn missing_tools_and_files_are_not_observed_with_the_reason() {
        let r = collect(&HealthOptions {
            sysfs_root: "/nonexistent/sys".into(),
            proc_root: "/nonexistent/proc".into(),
            kernel_log: "/nonexistent/kmsg".into(),
            nvidia_smi: "/nonexistent/nvidia-smi".into(),
            dcgmi: "/nonexistent/dcgmi".into(),
            dcgm_level: None,
            command_timeout: Duration::from_secs(5),
        });
        assert!(
            r.pcie
                .observed()
                .unwrap_err()
                .contains("cannot read /nonexistent/sys")
        );
        assert!(
            r.infiniband.observed().unwrap().is_empty(),
            "no HCAs: an empty list"
        );
        assert!(
            r.kernel_log
                .observed()
                .unwrap_err()
                .contains("cannot read the kernel log")
        );
        let e = r.gpus.observed().unwrap_err();
        assert!(e.contains("/nonexistent/nvidia-smi not found"), "{e}");
        assert_eq!(r.dcgm.observed().unwrap_err(), "dcgmi diag not requested");
    }

    #[test]
    fn failing_commands_say_so_and_readings_round_trip() {
        let e = run(
            "sh",
            &["-c", "echo broken >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.contains("printed nothing") && e.contains("broken"), "{e}");
        let readings = HealthReadings::default();
        let json = serde_json::to_string(&readings).unwrap();
        assert!(json.contains("\"notObserved\":\"not collected\""), "{json}");
        let back: HealthReadings = serde_json::from_str(&json).unwrap();
        assert_eq!(back, readings);
    }
}
