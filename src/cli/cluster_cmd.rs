use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;

use aiconform::cluster::embedded::{
    EmbeddedOptions, RealNode, RunningCluster, parse_real_node_line, pid_alive, terminate_pid,
};
use aiconform::cluster::upstream::Stack;

use super::progress::Spinner;

/// Manage the embedded test cluster: a real kube-apiserver, scheduler and
/// controller-manager with simulated GPU nodes, on loopback.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform cluster up --nodes 4\n  export KUBECONFIG=$(aiconform cluster status --kubeconfig-path)\n  aiconform cluster down\n\n\
    Simulated nodes run containers of aiconform's own image (ghcr.io/aiconform/aiconform, any \
    tag) as processes of this aiconform executable, in their own mount and PID namespaces, \
    with the node's fake /proc, /sys and /etc behind hostPath volumes; so `aiconform snapshot` \
    runs real agents there. Containers of other images are only simulated (Running).\n\n\
    --stack upstream installs real upstream controllers built from their Go modules \
    (ci/upstream/build.sh, built on first use) the way a provider does (their own CRDs, RBAC, \
    Deployments and Helm charts), their images running as the built binaries, each pod in a \
    network namespace of its own: the Prometheus Operator v0.85.0 running the real Prometheus \
    3.16.0 server (ai_service_metrics), Kueue v0.17.0 with a ClusterQueue of the GPU \
    pool's 16 GPUs (gang_scheduling, beside the coscheduling plugin), Kubeflow Trainer v2.0.0 \
    with JobSet v0.8.2 (robust_controller), KEDA 2.20.2 (pod_autoscaling, scaling on a \
    query of that Prometheus), Karpenter v1.15.0's kwok provider with KWOK v0.8.0 \
    (cluster_autoscaling: NodePool gpu launches GPU nodes whose kubelet KWOK fakes), and \
    Traefik v3.6.12 as the Gateway API implementation (GatewayClass traefik: ai_inference). \
    Pods get Service networking as in a real cluster (ClusterIPs, cluster DNS, LoadBalancer \
    addresses). Stand-ins stay where \
    no real component builds here (the DCGM exporter needs DCGM and a GPU; the GPU, vGPU and \
    NIC DRA drivers) and, for now, for the Inference Extension gateway (InferencePool), the \
    custom metrics adapter and the AI operator. fixtures/recipes/upstream-stack.yaml names the stack's \
    components and parameters for `aiconform run`."
)]
pub struct Args {
    #[command(subcommand)]
    command: ClusterCommand,
    /// Where the cluster keeps its state, kubeconfig and logs
    #[arg(long, global = true, value_name = "DIR", env = "AICONFORM_CLUSTER_DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Start the cluster in the background and wait until it is ready
    Up {
        /// Number of simulated GPU nodes
        #[arg(long, default_value_t = 2)]
        nodes: u32,
        /// Node profile: builtin name (h100-sxm, gb200) or a YAML file
        #[arg(long)]
        profile: Option<String>,
        /// Start the scheduler without the gang-scheduling plugin
        #[arg(long)]
        no_gang: bool,
        /// Do not create the gpu.nvidia.com DeviceClass
        #[arg(long)]
        no_deviceclass: bool,
        /// Give up if not ready within this many seconds [default: 180, upstream stack 420, plus
        /// 60 per 1,000 nodes above 1,000]
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// What serves monitoring and the other conformance-relevant components: the
        /// project's stand-ins, or real upstream controllers where they build here
        #[arg(long, value_enum, default_value_t = Stack::Standin)]
        stack: Stack,
        /// With --stack upstream: run the stack's images and leave out the stand-ins it
        /// replaces, but install none of it, so that `aiconform deploy` installs it (a bundle
        /// of fixtures/recipes/upstream-stack.yaml)
        #[arg(long)]
        no_install: bool,
        /// A real node (kubelet + containerd, pods really run) beside the simulated ones:
        /// auto = when this machine can run it (root, containerd, runc, CNI plugins)
        #[arg(long, value_enum, default_value_t = RealNode::Auto)]
        real_node: RealNode,
        /// A hardware fault of a simulated GPU node, for node-health runs (repeatable):
        /// NODE=missing-gpu|xid79|row-remap-pending|nvlink-down|pcie-x8|ib-rate-half
        #[arg(long = "node-fault", value_name = "NODE=FAULT")]
        node_faults: Vec<String>,
    },
    /// Stop the cluster and remove its processes
    Down,
    /// Show whether the cluster runs, its kubeconfig and nodes (exit 1 when stopped)
    Status {
        /// Print only the kubeconfig path
        #[arg(long)]
        kubeconfig_path: bool,
    },
}

/// The upstream images the cluster runs as built binaries, one line each.
fn print_upstream_images() {
    let images = aiconform::cluster::upstream::locate()
        .ok()
        .and_then(|dir| std::fs::read_to_string(dir.join("images.txt")).ok())
        .map(|text| aiconform::cluster::upstream::parse_images(&text));
    match images {
        Some(Ok(images)) => {
            for im in images {
                eprintln!(
                    "upstream: {} {} runs {} (built from its Go module){}",
                    im.repository,
                    im.version,
                    im.binary,
                    if im.user.is_empty() {
                        String::new()
                    } else {
                        format!(" as user {}", im.user)
                    }
                );
            }
        }
        Some(Err(e)) => eprintln!("upstream: {e}"),
        None => eprintln!("upstream: images.txt not found"),
    }
}

/// How long `cluster up` waits by default: registering nodes and their ResourceSlices takes
/// tens of seconds per thousand nodes on two cores, so large clusters get a minute per
/// thousand nodes above the first thousand.
fn default_timeout(stack: Stack, nodes: u32) -> u64 {
    let base = match stack {
        Stack::Standin => 180,
        Stack::Upstream => 420,
    };
    base + 60 * u64::from(nodes.saturating_sub(1000)).div_ceil(1000)
}

fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("aiconform/cluster")
}

fn running_pid(dir: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    pid_alive(pid).then_some(pid)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let dir = args.state_dir.unwrap_or_else(default_state_dir);
    let kubeconfig = dir.join("kubeconfig");
    match args.command {
        ClusterCommand::Up {
            nodes,
            profile,
            no_gang,
            no_deviceclass,
            timeout,
            stack,
            no_install,
            real_node,
            node_faults,
        } => {
            if no_install && stack != Stack::Upstream {
                anyhow::bail!(
                    "--no-install leaves the upstream stack for `aiconform deploy`; use it with --stack upstream"
                );
            }
            let timeout = timeout.unwrap_or(default_timeout(stack, nodes));
            if let Some(pid) = running_pid(&dir) {
                eprintln!("embedded cluster already running (pid {pid})");
                println!("{}", kubeconfig.display());
                return Ok(ExitCode::SUCCESS);
            }
            let opts = EmbeddedOptions {
                nodes: Some(nodes),
                profile,
                gang: !no_gang,
                device_class: !no_deviceclass,
                data_dir: Some(dir.clone()),
                parent_pid: None,
                start_timeout: Duration::from_secs(timeout),
                real_node,
                stack,
                install_stack: !no_install,
                extra_args: node_faults
                    .iter()
                    .flat_map(|f| ["--node-fault".to_string(), f.clone()])
                    .collect(),
                ..EmbeddedOptions::default()
            };
            let spinner = Spinner::new("starting embedded cluster");
            let cluster = RunningCluster::start_detached(&opts, &|line| spinner.set_message(line))
                .context("cannot start the embedded cluster")?;
            spinner.finish();
            std::fs::write(dir.join("pid"), cluster.pid.to_string())
                .with_context(|| format!("cannot write {}", dir.join("pid").display()))?;
            eprintln!(
                "embedded cluster ready (pid {}, {nodes} GPU nodes); logs: {}",
                cluster.pid,
                cluster.log_file.display()
            );
            match &cluster.real_node {
                Ok(name) => {
                    eprintln!("real node: {name} (kubelet + containerd; pods run for real)")
                }
                Err(reason) => eprintln!("real node: none ({reason})"),
            }
            if stack == Stack::Upstream {
                print_upstream_images();
            }
            eprintln!(
                "use it with: export KUBECONFIG={}",
                cluster.kubeconfig.display()
            );
            println!("{}", cluster.kubeconfig.display());
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Down => {
            match running_pid(&dir) {
                Some(pid) => {
                    terminate_pid(pid, Duration::from_secs(20));
                    eprintln!("embedded cluster stopped (pid {pid})");
                }
                None => eprintln!("embedded cluster is not running"),
            }
            let _ = std::fs::remove_file(dir.join("pid"));
            Ok(ExitCode::SUCCESS)
        }
        ClusterCommand::Status { kubeconfig_path } => {
            let Some(pid) = running_pid(&dir) else {
                eprintln!(
                    "embedded cluster is not running (state dir {}); start it with `aiconform cluster up`",
                    dir.display()
                );
                return Ok(ExitCode::FAILURE);
            };
            if kubeconfig_path {
                println!("{}", kubeconfig.display());
                return Ok(ExitCode::SUCCESS);
            }
            let rt = super::runtime()?;
            let (version, nodes) = rt.block_on(async {
                let client = aiconform::cluster::connect(Some(&kubeconfig)).await?;
                let version = client.apiserver_version().await?.git_version;
                let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
                let nodes = api.list(&Default::default()).await?.items;
                anyhow::Ok((version, nodes))
            })?;
            let gpus: i64 = nodes
                .iter()
                .filter_map(|n| n.status.as_ref()?.capacity.as_ref()?.get("nvidia.com/gpu"))
                .filter_map(|q| q.0.parse::<i64>().ok())
                .sum();
            println!("running: pid {pid}, Kubernetes {version}");
            println!("nodes: {} ({gpus} GPUs)", nodes.len());
            let real = std::fs::read_to_string(dir.join("real-node"))
                .ok()
                .and_then(|t| t.lines().find_map(parse_real_node_line));
            match real {
                Some(Ok(name)) => println!("real node: {name}"),
                Some(Err(reason)) => println!("real node: none ({reason})"),
                None => println!("real node: none (not reported)"),
            }
            println!("kubeconfig: {}", kubeconfig.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_clusters_get_longer_to_start() {
        assert_eq!(default_timeout(Stack::Standin, 4), 180);
        assert_eq!(default_timeout(Stack::Standin, 1000), 180);
        assert_eq!(default_timeout(Stack::Standin, 1001), 240);
        assert_eq!(default_timeout(Stack::Standin, 10_000), 720);
        assert_eq!(default_timeout(Stack::Upstream, 2), 420);
    }
}
