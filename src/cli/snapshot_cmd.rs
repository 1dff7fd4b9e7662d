use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use aiconform::output::write_target;
use aiconform::snapshot::job::{AgentJobOptions, DEFAULT_AGENT_IMAGE};
use aiconform::snapshot::{self, Location, SnapshotError, TakeOptions};

/// Capture cluster state (server version, nodes, GPU inventory, operators, DRA objects) and
/// node facts from a short-lived agent pod per selected node.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform snapshot --output snapshot.yaml\n  \
    aiconform snapshot --node-selector nvidia.com/gpu.present=true --output cm://aiconform/snapshot\n  \
    aiconform snapshot --no-agent --output -\n\n\
    The agents run as one pod per node in a temporary namespace aiconform-snapshot-<random> \
    that is deleted afterwards, also on failure, timeout and Ctrl-C (the command returns once \
    the agent pods and reports are gone; the empty namespace follows within seconds). Each \
    agent returns its facts as its termination message, or when they do not fit in one (4 KiB) \
    as a ConfigMap there (its ServiceAccount may only create ConfigMaps in that namespace). Nodes \
    whose agent did not report in time are recorded as `agent: unavailable` with the reason; \
    their OS facts then come from the Node object."
)]
pub struct Args {
    #[command(flatten)]
    _config: super::config_args::ConfigArg,
    /// Kubeconfig of the cluster (default: KUBECONFIG, ~/.kube/config, in-cluster)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Label selector choosing the nodes to snapshot, e.g. nvidia.com/gpu.present=true
    #[arg(long, value_name = "SELECTOR")]
    node_selector: Option<String>,
    /// Image with the aiconform binary, run as the node agent
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_AGENT_IMAGE)]
    agent_image: String,
    /// Do not run the node agent; node facts come from Node objects only
    #[arg(long)]
    no_agent: bool,
    /// Extra annotation on agent pods, KEY=VALUE (repeatable), e.g. sidecar.istio.io/inject=false
    #[arg(long, value_name = "KEY=VALUE")]
    agent_pod_annotation: Vec<String>,
    /// Seconds to wait for agents to report; nodes without a report fall back to Node facts
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    timeout: u64,
    /// Run the agent as a PSS-restricted pod without host mounts: it reports what a container
    /// sees (kernel release, modules, sysctls, PCI devices; not the host's os-release)
    #[arg(long)]
    agent_restricted: bool,
    /// Toleration of agent pods: `all` (the default), KEY, KEY=VALUE, each with an optional
    /// :EFFECT (repeatable); nodes with an untolerated NoSchedule/NoExecute taint get no agent
    #[arg(long, value_name = "TOLERATION")]
    agent_toleration: Vec<String>,
    /// runtimeClassName of agent pods, e.g. nvidia
    #[arg(long, value_name = "NAME")]
    agent_runtime_class: Option<String>,
    /// Agent pods request one nvidia.com/gpu (so the NVIDIA runtime mounts the driver); nodes
    /// without allocatable GPUs get no agent
    #[arg(long)]
    require_gpu: bool,
    /// Agents also collect node-health readings (PCIe links, InfiniBand ports, Xid/SXid
    /// events from /dev/kmsg, nvidia-smi, and `dcgmi diag -r LEVEL` with
    /// --dcgm-diag-level), for `aiconform run --phase node-health --snapshot FILE`
    #[arg(long)]
    node_health: bool,
    /// With --node-health: run `dcgmi diag -r LEVEL -j` where DCGM is installed (1 quick ..
    /// 4 long; 0: do not)
    #[arg(long, value_name = "LEVEL", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=4))]
    dcgm_diag_level: u8,
    /// Where to write: a file, `-` for stdout, or cm://NAMESPACE/NAME for a ConfigMap
    #[arg(short, long, value_name = "TARGET", default_value = "-")]
    output: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let location = Location::parse(&args.output)?;
    if let Some(sel) = &args.node_selector
        && sel.trim().is_empty()
    {
        anyhow::bail!(
            "--node-selector is empty; give a label selector such as nvidia.com/gpu.present=true"
        );
    }
    let mut pod_annotations = std::collections::BTreeMap::new();
    for a in &args.agent_pod_annotation {
        match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                pod_annotations.insert(k.trim().to_string(), v.to_string());
            }
            _ => anyhow::bail!("--agent-pod-annotation `{a}` must be KEY=VALUE"),
        }
    }
    let tolerations = if args.agent_toleration.is_empty() {
        vec![aiconform::snapshot::job::tolerate_all()]
    } else {
        args.agent_toleration
            .iter()
            .map(|t| aiconform::snapshot::job::parse_toleration(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--agent-toleration: {e}"))?
    };
    let started = std::time::Instant::now();
    let rt = super::runtime()?;
    let result = rt.block_on(async {
        let client = aiconform::cluster::connect(args.kubeconfig.as_deref()).await?;
        let opts = TakeOptions {
            node_selector: args.node_selector.clone(),
            agent: (!args.no_agent).then(|| AgentJobOptions {
                image: args.agent_image.clone(),
                timeout: Duration::from_secs(args.timeout.max(1)),
                pod_annotations: pod_annotations.clone(),
                privileged: !args.agent_restricted,
                tolerations: tolerations.clone(),
                runtime_class: args.agent_runtime_class.clone(),
                require_gpu: args.require_gpu,
                health: args
                    .node_health
                    .then_some(aiconform::snapshot::job::AgentHealth {
                        dcgm_level: (args.dcgm_diag_level > 0).then_some(args.dcgm_diag_level),
                    }),
                ..AgentJobOptions::default()
            }),
        };
        let progress = |p: snapshot::job::AgentProgress<'_>| eprintln!("{p}");
        let (snap, warnings) = snapshot::take(&client, &opts, &progress).await?;
        let text = snapshot::render(&snap)?;
        match &location {
            Location::ConfigMap { namespace, name } => {
                snapshot::save_configmap(&client, namespace, name, &text).await?;
            }
            other => write_target(&other.to_string(), text.as_bytes())
                .with_context(|| format!("cannot write {other}"))?,
        }
        Ok::<_, anyhow::Error>((snap, warnings))
    });
    let (snap, warnings) = match result {
        Ok(v) => v,
        Err(e) => {
            if let Some(SnapshotError::Interrupted { .. }) = e.downcast_ref::<SnapshotError>() {
                super::report(&e);
                return Ok(ExitCode::from(130));
            }
            return Err(e);
        }
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let nodes = &snap.cluster.nodes;
    let collected = nodes.iter().filter(|n| n.agent.report().is_some()).count();
    let gpus: u32 = nodes.iter().map(snapshot::measure::node_gpu_count).sum();
    eprintln!(
        "snapshot of {} ({} node(s), {gpus} GPU(s), agent facts from {collected}/{} node(s)) written to {location} in {:.1}s ({} API requests)",
        snap.cluster.server_version.git_version,
        nodes.len(),
        nodes.len(),
        started.elapsed().as_secs_f64(),
        aiconform::cluster::api_requests()
    );
    for n in nodes {
        if let snapshot::AgentOutcome::Unavailable { reason } = &n.agent {
            eprintln!(
                "  {}: agent unavailable ({reason}); using Node facts",
                n.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
