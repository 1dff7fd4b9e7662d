use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use aiconform::deploy::release::{self, ReleaseRecord};
use aiconform::diff::{self, compare, recipe as recipe_drift};
use aiconform::output::ReportFormat;
use aiconform::snapshot::Snapshot;
use aiconform::snapshot::model::{API_VERSION, SNAPSHOT_KIND, SnapshotMetadata};

/// Exit status when drift was found and `--fail-on-drift` is set.
pub const DRIFT_EXIT: u8 = 3;

const AFTER_HELP: &str = "\
Examples:
  aiconform diff monday.yaml friday.yaml
  aiconform diff cm://aiconform/baseline friday.yaml -o json --fail-on-drift
  aiconform diff --recipe recipe.yaml friday.yaml
  aiconform diff --recipe recipe.yaml --kubeconfig ~/.kube/gpu-cluster

Snapshot against snapshot: every fact that was added, removed or changed, by path and
sorted. Nodes are compared one by one (node classes are expanded), lists by their natural
key: `nodes[gpu-a].agent.report.kernelRelease`, `nodes[gpu-a].capacity[nvidia.com/gpu]`,
`helmReleases[gpu-operator/gpu-operator].revision`, `crds[clusterpolicies.nvidia.com]`. A node
that joined or left is one change carrying all its facts.

With --recipe: the recipe against a snapshot, or against the live cluster when no snapshot
is given. Lists each constraint that no longer holds and each component not deployed at the
recipe's version. Deployed versions come from the Helm release records (Secrets of type
helm.sh/release.v1; live cluster only) and else from the workload labels a snapshot records.

Exit status: 0 no drift (or drift without --fail-on-drift), 2 bad input or the cluster
cannot be read, 3 drift found with --fail-on-drift.";

/// Arguments of `aiconform diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Baseline snapshot (file or cm://NAMESPACE/NAME); with --recipe, the snapshot to check
    #[arg(value_name = "BASE")]
    base: Option<String>,
    /// Snapshot to compare with the baseline (file or cm://NAMESPACE/NAME)
    #[arg(value_name = "TARGET")]
    target: Option<String>,
    /// Compare a snapshot (or the live cluster) with this recipe instead of another snapshot
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Table)]
    output: ReportFormat,
    /// Exit 3 when anything drifted
    #[arg(long)]
    fail_on_drift: bool,
    /// Kubeconfig for cm:// snapshots and the live cluster (default: KUBECONFIG or
    /// ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match diff(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            super::report(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn diff(args: Args) -> Result<ExitCode> {
    let (text, drift) = match (&args.recipe, &args.base, &args.target) {
        (None, Some(base), Some(target)) => {
            let b = super::snapshot_arg::load(base, args.kubeconfig.as_deref())?;
            let t = super::snapshot_arg::load(target, args.kubeconfig.as_deref())?;
            let d = diff::diff_snapshots(&b, base, &t, target);
            let text = args
                .output
                .render(&d, compare::render_table)
                .map_err(anyhow::Error::msg)?;
            (text, d.has_drift())
        }
        (None, _, _) => bail!(
            "give two snapshots (BASE TARGET), or --recipe FILE with one snapshot or none (the live cluster)"
        ),
        (Some(_), Some(_), Some(_)) => bail!(
            "--recipe compares one snapshot (or the live cluster) with the recipe; give at most one snapshot"
        ),
        (Some(recipe_path), snapshot_arg, None) => {
            let recipe = aiconform::recipe::load_recipe_file(recipe_path)?;
            let (snap, releases, target) = match snapshot_arg {
                Some(s) => (
                    super::snapshot_arg::load(s, args.kubeconfig.as_deref())?,
                    Vec::new(),
                    s.clone(),
                ),
                None => live(args.kubeconfig.as_deref())?,
            };
            let d = recipe_drift::recipe_drift(&recipe, &target, &snap, &releases);
            let text = args
                .output
                .render(&d, recipe_drift::render_table)
                .map_err(anyhow::Error::msg)?;
            (text, d.has_drift())
        }
        (Some(_), None, Some(_)) => unreachable!("clap fills BASE before TARGET"),
    };
    print!("{text}");
    Ok(if drift && args.fail_on_drift {
        ExitCode::from(DRIFT_EXIT)
    } else {
        ExitCode::SUCCESS
    })
}

/// The live cluster's facts (no node agents: node facts from the Node objects) and its
/// Helm release records; undecodable records are reported on stderr.
fn live(kubeconfig: Option<&Path>) -> Result<(Snapshot, Vec<ReleaseRecord>, String)> {
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = aiconform::cluster::connect(kubeconfig)
            .await
            .context("cannot reach the cluster")?;
        let (facts, _) = aiconform::snapshot::cluster::collect(&client, None).await?;
        let (releases, problems) = release::list(&client).await?;
        for p in problems {
            eprintln!("warning: {p}");
        }
        let snapshot = Snapshot {
            api_version: API_VERSION.into(),
            kind: SNAPSHOT_KIND.into(),
            metadata: SnapshotMetadata {
                tool_version: env!("CARGO_PKG_VERSION").into(),
                created_at: aiconform::snapshot::now_rfc3339(),
                node_selector: String::new(),
                agents: false,
            },
            cluster: facts,
        };
        let target = match kubeconfig {
            Some(k) => format!("live cluster (kubeconfig {})", k.display()),
            None => "live cluster (default kubeconfig)".to_string(),
        };
        Ok((snapshot, releases, target))
    })
}
