//! The command line: argument parsing and turning library errors into friendly messages.

mod agent_cmd;
mod bundle_cmd;
mod cluster_cmd;
mod completions_cmd;
mod config_args;
mod criteria_args;
mod deploy_cmd;
mod diff_cmd;
mod evidence_cmd;
mod fleet_cmd;
mod mirror_cmd;
mod probe_cmd;
mod progress;
mod recipe_cmd;
mod results_cm;
mod run_cmd;
mod serve_cmd;
mod snapshot_arg;
mod snapshot_cmd;
mod submission_cmd;
mod upgrade_cmd;
mod validate_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  aiconform recipe --service eks --accelerator h100 --os ubuntu --intent training --platform kubeflow -o recipe.yaml
  aiconform query --service eks --accelerator h100 --selector components.gpu-operator.values.driver.version";

#[derive(Debug, Parser)]
#[command(
    name = "aiconform",
    version,
    about = "Make GPU Kubernetes clusters reproducible and prove it",
    long_about = "Make GPU Kubernetes clusters reproducible and prove it.\n\n\
        Compose validated component stacks (recipes) from layered overlays, render them into \
        deployable bundles, snapshot clusters and certify them against recipes.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compose overlays into one version-locked recipe
    Recipe(recipe_cmd::RecipeArgs),
    /// Print one value of the recipe composed for the given criteria
    Query(recipe_cmd::QueryArgs),
    /// Render a recipe into deployable artifacts
    Bundle(bundle_cmd::Args),
    /// Apply a bundle to a cluster and wait for every component to be healthy
    Deploy(deploy_cmd::Args),
    /// Capture cluster state to a file or ConfigMap
    Snapshot(snapshot_cmd::Args),
    /// Collect node facts on this machine (what the snapshot Job runs on each node)
    Agent(agent_cmd::Args),
    /// Check a cluster against a recipe (readiness, deployment, conformance, performance)
    Validate(validate_cmd::Args),
    /// Show drift: snapshot against snapshot, or a recipe against a snapshot or the cluster
    Diff(diff_cmd::Args),
    /// Verdict per component of moving a recipe, bundle or cluster to a new recipe
    UpgradeCheck(upgrade_cmd::Args),
    /// Images and charts a recipe or bundle deploys, for air-gapped mirrors
    Mirror(mirror_cmd::Args),
    /// Deploy and run test suites against a target, writing reports
    Run(run_cmd::Args),
    /// Serve recipes, queries and bundles over HTTP
    Serve(serve_cmd::Args),
    /// Manage the embedded test cluster
    Cluster(cluster_cmd::Args),
    /// Write and check a CNCF AI conformance submission (PRODUCT.yaml and evidence)
    Submission(submission_cmd::Args),
    /// Verify signed run evidence (`run --attest`) and a submission's statuses against it
    Evidence(evidence_cmd::Args),
    /// Gather the results runs stored in ConfigMaps (`run --report-configmap`): one table
    /// and one JUnit file, or Prometheus metrics
    Fleet(fleet_cmd::Args),
    /// Workload programs the conformance cases run inside containers
    #[command(hide = true)]
    Probe(probe_cmd::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell)
    Completions(completions_cmd::Args),
}

/// The process's one async runtime, started on first use: every command that talks to a
/// cluster, a registry or the network runs on it.
pub fn runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Ctrl-C while a run goes: the first stops it (running cases cancelled, their namespaces
/// deleted, unfinished cases reported interrupted, reports written), a second quits at once
/// with 130. Dropping the guard stops listening.
pub fn stop_run_on_ctrl_c(
    rt: &tokio::runtime::Runtime,
    interrupter: aiconform::runner::Interrupter,
) -> AbortOnDrop {
    use aiconform::runner::namespace::{MANAGED_BY, MANAGED_BY_LABEL};
    AbortOnDrop(rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!(
            "\ninterrupted: stopping running cases and deleting their namespaces (Ctrl-C again to quit at once)"
        );
        interrupter.interrupt();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted twice: quitting without cleanup; delete leftovers with kubectl delete ns -l {MANAGED_BY_LABEL}={MANAGED_BY}"
            );
            std::process::exit(130);
        }
    }))
}

/// Aborts its task when dropped.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn main() -> ExitCode {
    let argv = match config_args::expand(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(err) => {
            report(&err);
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    let result = match cli.command {
        Command::Recipe(args) => recipe_cmd::run(args).map(|()| ExitCode::SUCCESS),
        Command::Query(args) => recipe_cmd::run_query(args).map(|()| ExitCode::SUCCESS),
        Command::Bundle(args) => bundle_cmd::run(args),
        Command::Deploy(args) => deploy_cmd::run(args),
        Command::Snapshot(args) => snapshot_cmd::run(args),
        Command::Agent(args) => agent_cmd::run(args),
        Command::Validate(args) => validate_cmd::run(args),
        Command::Diff(args) => diff_cmd::run(args),
        Command::UpgradeCheck(args) => upgrade_cmd::run(args),
        Command::Mirror(args) => mirror_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Cluster(args) => cluster_cmd::run(args),
        Command::Submission(args) => submission_cmd::run(args),
        Command::Evidence(args) => evidence_cmd::run(args),
        Command::Fleet(args) => fleet_cmd::run(args),
        Command::Probe(args) => probe_cmd::run(args),
        Command::Completions(args) => completions_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, most general first, without the messages that already contain
/// their cause.
pub fn error_lines(err: &anyhow::Error) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for cause in err.chain() {
        let msg = cause.to_string();
        if lines.last().is_some_and(|prev| prev.contains(&msg)) {
            continue;
        }
        lines.push(msg);
    }
    lines
}

/// Print an error and its causes ([`error_lines`]).
fn report(err: &anyhow::Error) {
    let lines = error_lines(err);
    eprintln!(
        "error: {}",
        lines.first().map(String::as_str).unwrap_or("unknown error")
    );
    for l in lines.iter().skip(1) {
        eprintln!("  caused by: {l}");
    }
}
