use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::readiness;
use aiconform::runner::Phase as RunnerPhase;

use super::run_cmd::{ExecArgs, Job, SelectArgs, Target};

/// Validation phases. Readiness alone prints the constraint table and writes the readiness
/// reports; any other phase runs the suites through the test runner against the cluster (as
/// `aiconform run` does) and writes reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Recipe constraints against a snapshot
    Readiness,
    /// Hardware health of every GPU node (GPU count, Xid, ECC, NVLink, PCIe, InfiniBand,
    /// thermals, DCGM diagnostics)
    #[value(name = "node-health")]
    NodeHealth,
    /// Components deployed and healthy
    Deployment,
    /// Kubernetes AI conformance checks
    Conformance,
    /// Performance checks such as NCCL bandwidth
    Performance,
    /// Every phase, in order
    All,
}

impl Phase {
    fn runner_phases(self) -> Vec<RunnerPhase> {
        match self {
            Phase::Readiness => vec![RunnerPhase::Readiness],
            Phase::NodeHealth => vec![RunnerPhase::NodeHealth],
            Phase::Deployment => vec![RunnerPhase::Deployment],
            Phase::Conformance => vec![RunnerPhase::Conformance],
            Phase::Performance => vec![RunnerPhase::Performance],
            Phase::All => RunnerPhase::ALL.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Check a cluster against a recipe. Exit status: 0 every check passed, 1 a check failed or a
/// measurement is missing, 2 the check could not run (bad input, no cluster), 130 interrupted.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform validate --recipe recipe.yaml --snapshot snapshot.yaml\n  \
    aiconform validate --recipe recipe.yaml --snapshot cm://aiconform/snapshot --output json\n  \
    aiconform validate --recipe recipe.yaml --snapshot snapshot.yaml --phase all --kubeconfig ~/.kube/config"
)]
pub struct Args {
    /// Recipe file written by `aiconform recipe`
    #[arg(long, value_name = "FILE")]
    recipe: PathBuf,
    /// Snapshot: a file, or cm://NAMESPACE/NAME
    #[arg(long, value_name = "SNAPSHOT")]
    snapshot: Option<String>,
    /// Which checks to run (repeatable). Readiness alone prints the constraint table, needs no
    /// cluster, and writes the readiness reports to --report-dir; other phases run the suites
    /// against the cluster of --kubeconfig
    #[arg(long, value_enum, default_values_t = [Phase::Readiness])]
    phase: Vec<Phase>,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Kubeconfig for reading a snapshot from a ConfigMap, and of the cluster to test for
    /// phases other than readiness (default: KUBECONFIG or ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    select: SelectArgs,
    #[command(flatten)]
    exec: ExecArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match validate(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            super::report(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn validate(mut args: Args) -> Result<ExitCode> {
    args.exec.command = aiconform::config::Section::Validate;
    if args.phase.iter().any(|p| *p != Phase::Readiness) {
        return run_phases(args);
    }
    let snapshot_arg = args
        .snapshot
        .as_deref()
        .context("--phase readiness needs --snapshot FILE or cm://NAMESPACE/NAME (create one with `aiconform snapshot`)")?;
    let recipe = aiconform::recipe::load_recipe_file(&args.recipe)?;
    let snap = super::snapshot_arg::load(snapshot_arg, args.kubeconfig.as_deref())?;
    let report = readiness::evaluate_snapshot(&recipe.constraints, &snap);
    let run = super::run_cmd::readiness_reports(recipe.clone(), snap, args.select, &args.exec)?;
    match args.output {
        OutputFormat::Table => {
            if report.results.is_empty() {
                println!(
                    "recipe {} has no constraints; nothing to check",
                    recipe.metadata.name
                );
            } else {
                print!("{}", readiness::render_table(&report));
            }
        }
        OutputFormat::Json => {
            let text = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
            println!("{text}");
        }
    }
    if run.interrupted {
        return Ok(ExitCode::from(130));
    }
    Ok(if report.passed() && run.exit_code() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Phases beyond readiness: the same runner as `aiconform run`, against --kubeconfig.
fn run_phases(args: Args) -> Result<ExitCode> {
    if args.output != OutputFormat::Table {
        eprintln!(
            "note: --output applies to readiness alone; results are in {}",
            args.exec.report_dir.display()
        );
    }
    let recipe = aiconform::recipe::load_recipe_file(&args.recipe)?;
    let mut phases: Vec<RunnerPhase> = args.phase.iter().flat_map(|p| p.runner_phases()).collect();
    phases.sort();
    phases.dedup();
    super::run_cmd::execute(Job {
        recipe,
        phases,
        select: args.select,
        exec: args.exec,
        target: Target::Kubeconfig(args.kubeconfig),
        bundle: None,
        snapshot: args.snapshot,
        list: false,
        results: None,
    })
}
