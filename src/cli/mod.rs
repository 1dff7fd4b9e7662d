//! The command line: argument parsing and turning library errors into friendly messages.

mod criteria_args;
mod recipe_cmd;

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
    /// Render a recipe into deployable artifacts (not yet available)
    Bundle(Pending),
    /// Apply a bundle to a cluster (not yet available)
    Deploy(Pending),
    /// Capture cluster state (not yet available)
    Snapshot(Pending),
    /// Collect node facts on this machine (not yet available)
    Agent(Pending),
    /// Check a cluster against a recipe (not yet available)
    Validate(Pending),
    /// Run test suites against a cluster (not yet available)
    Run(Pending),
    /// Serve the API over HTTP (not yet available)
    Serve(Pending),
    /// Manage the embedded test cluster (not yet available)
    Cluster(Pending),
}

/// Arguments of a command that a later release provides.
#[derive(Debug, clap::Args)]
pub struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Recipe(args) => recipe_cmd::run(args),
        Command::Query(args) => recipe_cmd::run_query(args),
        Command::Bundle(_)
        | Command::Deploy(_)
        | Command::Snapshot(_)
        | Command::Agent(_)
        | Command::Validate(_)
        | Command::Run(_)
        | Command::Serve(_)
        | Command::Cluster(_) => {
            let name = std::env::args().nth(1).unwrap_or_default();
            eprintln!("aiconform {name}: not yet available in this version");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Print an error and its causes, most general first, without repeating messages that
/// already contain their cause.
fn report(err: &anyhow::Error) {
    let mut lines: Vec<String> = Vec::new();
    for cause in err.chain() {
        let msg = cause.to_string();
        if lines.last().is_some_and(|prev| prev.contains(&msg)) {
            continue;
        }
        lines.push(msg);
    }
    eprintln!(
        "error: {}",
        lines.first().map(String::as_str).unwrap_or("unknown error")
    );
    for l in lines.iter().skip(1) {
        eprintln!("  caused by: {l}");
    }
}
