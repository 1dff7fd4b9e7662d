use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::readiness;
use aiconform::snapshot::{self, Location};

/// Validation phases. Only readiness (constraints vs a snapshot) is available so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Recipe constraints against a snapshot
    Readiness,
    /// Components deployed and healthy
    Deployment,
    /// Kubernetes AI conformance checks
    Conformance,
    /// Performance checks such as NCCL bandwidth
    Performance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Check a cluster against a recipe. Exit status: 0 every check passed, 1 a check failed or a
/// measurement is missing, 2 the check could not run (bad input, phase not available).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform validate --recipe recipe.yaml --snapshot snapshot.yaml\n  \
    aiconform validate --recipe recipe.yaml --snapshot cm://aiconform/snapshot --output json"
)]
pub struct Args {
    /// Recipe file written by `aiconform recipe`
    #[arg(long, value_name = "FILE")]
    recipe: PathBuf,
    /// Snapshot: a file, or cm://NAMESPACE/NAME
    #[arg(long, value_name = "SNAPSHOT")]
    snapshot: Option<String>,
    /// Which checks to run
    #[arg(long, value_enum, default_value_t = Phase::Readiness)]
    phase: Phase,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Kubeconfig for reading a snapshot from a ConfigMap
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
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

fn validate(args: Args) -> Result<ExitCode> {
    if args.phase != Phase::Readiness {
        anyhow::bail!(
            "phase `{}` is not yet available in this version; use --phase readiness",
            format!("{:?}", args.phase).to_lowercase()
        );
    }
    let snapshot_arg = args
        .snapshot
        .as_deref()
        .context("--phase readiness needs --snapshot FILE or cm://NAMESPACE/NAME (create one with `aiconform snapshot`)")?;
    let recipe = aiconform::recipe::load_recipe_file(&args.recipe)?;
    let snap = match Location::parse(snapshot_arg)? {
        Location::Stdout => {
            anyhow::bail!("--snapshot - is not supported; give a file or cm://NAMESPACE/NAME")
        }
        Location::File(path) => snapshot::load_file(&path)?,
        Location::ConfigMap { namespace, name } => {
            let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            rt.block_on(async {
                let client = aiconform::cluster::connect(args.kubeconfig.as_deref()).await?;
                Ok::<_, anyhow::Error>(snapshot::load_configmap(&client, &namespace, &name).await?)
            })?
        }
    };
    let measurements = snapshot::measure::flatten(&snap);
    let report = readiness::evaluate(&recipe.constraints, &measurements);
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
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
