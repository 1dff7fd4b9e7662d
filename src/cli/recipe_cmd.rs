use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use aiconform::output::{Format, write_target};
use aiconform::readiness::fit as from_snapshot;
use aiconform::recipe::{Adjustments, compose_with, query};

use super::criteria_args::{CriteriaArgs, SetArgs, report_overrides};

const AFTER_HELP: &str = "\
Examples:
  aiconform recipe --service eks --gpu h100 --os ubuntu --intent training --platform kubeflow -o recipe.yaml
  aiconform recipe list -o json
  aiconform recipe --service eks --gpu h100 --intent training --set gpuoperator:driver.version=580.95.05
  aiconform recipe --snapshot snapshot.yaml --intent training
  aiconform recipe --snapshot cm://aiconform/snapshot --kubeconfig ~/.kube/config -o recipe.yaml";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct RecipeArgs {
    #[command(subcommand)]
    pub command: Option<RecipeCommand>,
    #[command(flatten)]
    pub criteria: CriteriaArgs,
    #[command(flatten)]
    pub sets: SetArgs,
    #[command(flatten)]
    _config: super::config_args::ConfigArg,
    /// Compose for the cluster in this snapshot (a file or cm://NAMESPACE/NAME): service,
    /// accelerator and OS come from it (flags override them), and overlays whose
    /// constraints it contradicts are left out (listed in metadata.excludedOverlays)
    #[arg(long, value_name = "FILE|cm://NS/NAME")]
    pub snapshot: Option<String>,
    /// Kubeconfig for reading --snapshot cm://... (default: KUBECONFIG, ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Where to write the recipe; `-` is stdout
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub output: String,
    /// Output format; defaults to JSON for *.json files, else YAML
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Debug, clap::Subcommand)]
pub enum RecipeCommand {
    /// Print the catalog's leaf combinations and which stages each has data for
    List(ListArgs),
}

const LIST_HELP: &str = "\
A leaf is the criteria of an overlay that no other overlay refines (pins all of its
dimensions to the same values, and more). Each is composed with exactly those criteria.
Stages: RECIPE it composes; DEPLOY every component has a chart, source or manifests to
install from; PERF the NCCL floors of its scope (one node, and across nodes for training)
come from an overlay that pins a criterion, not only the catch-all; CONFORMANCE a component
proves aiServiceMetrics, gangScheduling and robustController (and inferenceGateway,
inferenceIngress for inference).

Examples:
  aiconform recipe list
  aiconform recipe list -o yaml --data ./site-overlays";

#[derive(Debug, Args)]
#[command(after_help = LIST_HELP)]
pub struct ListArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub output: ListFormat,
    /// Directory of extra overlays layered over the built-in ones (repeatable; later wins)
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Yaml,
    Json,
}

pub fn run_list(args: ListArgs) -> Result<()> {
    let criteria = CriteriaArgs {
        data: args.data,
        ..Default::default()
    };
    let m = aiconform::recipe::matrix::matrix(&criteria.catalog()?);
    let text = match args.output {
        ListFormat::Table => aiconform::recipe::matrix::render_table(&m),
        ListFormat::Yaml => Format::Yaml.render(&m).map_err(anyhow::Error::msg)?,
        ListFormat::Json => Format::Json.render(&m).map_err(anyhow::Error::msg)?,
    };
    write_target("-", text.as_bytes())?;
    Ok(())
}

pub fn run(args: RecipeArgs) -> Result<()> {
    if let Some(RecipeCommand::List(list)) = args.command {
        return run_list(list);
    }
    let catalog = args.criteria.catalog()?;
    let mut adj = Adjustments {
        sets: args.sets.exprs()?,
        ..Default::default()
    };
    let criteria = match &args.snapshot {
        None => args.criteria.to_criteria()?,
        Some(arg) => {
            let snap = super::snapshot_arg::load(arg, args.kubeconfig.as_deref())?;
            let derived = from_snapshot::derive_criteria(&snap);
            for d in &derived {
                eprintln!(
                    "snapshot {arg}: {}={} (from {})",
                    d.dimension, d.value, d.evidence
                );
            }
            let criteria = args
                .criteria
                .to_criteria_over(from_snapshot::criteria_of(&derived))?;
            let found = from_snapshot::adjustments(&catalog, &criteria, &snap)
                .with_context(|| format!("evaluating overlay constraints against {arg}"))?;
            for e in &found.excluded {
                eprintln!("excluded overlay {}: {}", e.name, e.reason);
            }
            for w in &found.constraint_warnings {
                eprintln!("warning: {w}");
            }
            adj.excluded = found.excluded;
            adj.constraint_warnings = found.constraint_warnings;
            criteria
        }
    };
    let recipe = compose_with(&catalog, &criteria, &adj).map_err(|e| {
        let excluded: Vec<&str> = adj.excluded.iter().map(|e| e.name.as_str()).collect();
        let err = anyhow::Error::from(e);
        if excluded.is_empty() {
            err
        } else {
            // The snapshot left out overlays the recipe needs: that is the cause to report.
            err.context(format!(
                "no recipe fits the cluster in the snapshot: it contradicts overlay(s) {} (reasons above); upgrade the cluster, or compose without --snapshot",
                excluded.join(", ")
            ))
        }
    })?;
    report_overrides(&recipe);
    let text = Format::resolve(args.format, &args.output)
        .render(&recipe)
        .map_err(anyhow::Error::msg)?;
    write_target(&args.output, text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.output))?;
    if args.output != "-" {
        eprintln!(
            "wrote {} ({} components, {} values, overlays: {})",
            args.output,
            recipe.components.len(),
            recipe.metadata.value_count,
            recipe.metadata.applied_overlays.join(" → ")
        );
    }
    // The process exits next: freeing the catalog's many small allocations is wasted work.
    std::mem::forget(catalog);
    Ok(())
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub criteria: CriteriaArgs,
    #[command(flatten)]
    pub sets: SetArgs,
    /// Dotted path into the hydrated recipe, e.g. components.gpu-operator.values.driver.version
    #[arg(long, value_name = "PATH")]
    pub selector: String,
    /// Output format for maps and lists (scalars print bare)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run_query(args: QueryArgs) -> Result<()> {
    let recipe = args.criteria.recipe_with(None, &args.sets)?;
    let value = query::select(&recipe, &args.selector)?;
    let text = match &value {
        serde_json::Value::String(s) => format!("{s}\n"),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) | serde_json::Value::Null => {
            format!("{value}\n")
        }
        _ => Format::resolve(args.format, "")
            .render(&value)
            .map_err(anyhow::Error::msg)?,
    };
    write_target("-", text.as_bytes())?;
    Ok(())
}
