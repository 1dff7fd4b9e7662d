use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::output::{Format, write_target};
use aiconform::snapshot::agent::{AgentOptions, collect};
use aiconform::snapshot::health::HealthOptions;
use aiconform::snapshot::job::publish_report;
use aiconform::snapshot::{Location, message};

/// Collect this machine's node facts: os-release, kernel, sysctls, kernel modules and GPUs
/// (NVML when the driver is loaded, else PCI devices in sysfs).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform agent\n  aiconform agent --output node.yaml\n  \
    aiconform agent --sysfs-root /host/sys --proc-root /host/proc --etc-root /host/etc --format json"
)]
pub struct Args {
    /// Where to write the facts: a file, `-` for stdout, or cm://NAMESPACE/NAME to create a
    /// ConfigMap (JSON under `report.json`; credentials from KUBECONFIG or in-cluster)
    #[arg(short, long, value_name = "TARGET", default_value = "-")]
    output: String,
    /// Node this agent runs on, recorded on the ConfigMap it creates
    #[arg(long, value_name = "NAME", env = "NODE_NAME", default_value = "")]
    node_name: String,
    /// Output format; defaults to JSON for *.json files, else YAML
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Root of the sysfs tree (PCI devices)
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Root of the procfs tree (kernel release, sysctls, modules)
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    proc_root: PathBuf,
    /// Directory holding os-release
    #[arg(long, value_name = "DIR", default_value = "/etc")]
    etc_root: PathBuf,
    /// Do not try NVML; detect GPUs from sysfs only
    #[arg(long)]
    no_nvml: bool,
    /// Also collect node-health readings: PCIe links of GPUs and NICs, InfiniBand ports,
    /// Xid/SXid events of the kernel log, `nvidia-smi -q -x` and `nvidia-smi nvlink`, and
    /// `dcgmi diag` with --dcgm-diag-level
    #[arg(long)]
    health: bool,
    /// Kernel log for Xid/SXid events: /dev/kmsg or a file of dmesg lines
    #[arg(long, value_name = "PATH", default_value = "/dev/kmsg")]
    kernel_log: PathBuf,
    /// The nvidia-smi command
    #[arg(long, value_name = "CMD", default_value = "nvidia-smi")]
    nvidia_smi: String,
    /// The dcgmi command
    #[arg(long, value_name = "CMD", default_value = "dcgmi")]
    dcgmi: String,
    /// Run `dcgmi diag -r LEVEL -j` (1 quick .. 4 long) when dcgmi is installed; 0: do not
    #[arg(long, value_name = "LEVEL", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=4))]
    dcgm_diag_level: u8,
    /// With a cm:// output: write the report to this termination message file instead when
    /// it fits in one (4 KiB, JSON or gzip+base64), so it reaches the pod status without an
    /// API request; the ConfigMap is created only for larger reports
    #[arg(long, value_name = "FILE")]
    termination_log: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let health = args.health.then(|| HealthOptions {
        sysfs_root: args.sysfs_root.clone(),
        proc_root: args.proc_root.clone(),
        kernel_log: args.kernel_log.clone(),
        nvidia_smi: args.nvidia_smi.clone(),
        dcgmi: args.dcgmi.clone(),
        dcgm_level: (args.dcgm_diag_level > 0).then_some(args.dcgm_diag_level),
        ..HealthOptions::default()
    });
    let opts = AgentOptions {
        sysfs_root: args.sysfs_root,
        proc_root: args.proc_root,
        etc_root: args.etc_root,
        use_nvml: !args.no_nvml,
        health,
    };
    let report = collect(&opts);
    if let Location::ConfigMap { namespace, name } = Location::parse(&args.output)? {
        if let (Some(path), Some(text)) = (&args.termination_log, message::encode(&report)) {
            match std::fs::write(path, &text) {
                Ok(()) => return Ok(ExitCode::SUCCESS),
                Err(e) => {
                    // Leave no partial report behind; the ConfigMap carries it instead.
                    let _ = std::fs::write(path, "");
                    eprintln!(
                        "warning: cannot write the termination message {}: {e}; writing cm://{namespace}/{name}",
                        path.display()
                    );
                }
            }
        }
        let rt = super::runtime()?;
        rt.block_on(async {
            // No version probe: one request per agent is all the API server sees.
            let client = kube::Client::try_default().await.context(
                "no Kubernetes credentials for the cm:// output (KUBECONFIG or in-cluster)",
            )?;
            publish_report(&client, &namespace, &name, &args.node_name, &report).await?;
            anyhow::Ok(())
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = Format::resolve(args.format, &args.output)
        .render(&report)
        .map_err(anyhow::Error::msg)?;
    write_target(&args.output, text.as_bytes())
        .with_context(|| format!("cannot write {}", args.output))?;
    if args.output != "-" {
        let os = report
            .os_release
            .get("PRETTY_NAME")
            .map(String::as_str)
            .unwrap_or("unknown OS");
        eprintln!(
            "wrote {} ({os}, kernel {}, {} GPU(s) via {:?}, {} note(s))",
            args.output,
            report.kernel_release.as_deref().unwrap_or("unknown"),
            report.gpu.devices.len(),
            report.gpu.source,
            report.notes.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
