use anyhow::Result;
use clap::Args;

use aiconform::output::{Format, write_target};
use aiconform::recipe::{compose, query};

use super::criteria_args::CriteriaArgs;

#[derive(Debug, Args)]
pub struct RecipeArgs {
    #[command(flatten)]
    pub criteria: CriteriaArgs,
    /// Where to write the recipe; `-` is stdout
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub output: String,
    /// Output format; defaults to JSON for *.json files, else YAML
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(args: RecipeArgs) -> Result<()> {
    let criteria = args.criteria.to_criteria()?;
    let catalog = args.criteria.catalog()?;
    let recipe = compose(&catalog, &criteria)?;
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
    Ok(())
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub criteria: CriteriaArgs,
    /// Dotted path into the hydrated recipe, e.g. components.gpu-operator.values.driver.version
    #[arg(long, value_name = "PATH")]
    pub selector: String,
    /// Output format for maps and lists (scalars print bare)
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run_query(args: QueryArgs) -> Result<()> {
    let criteria = args.criteria.to_criteria()?;
    let catalog = args.criteria.catalog()?;
    let recipe = compose(&catalog, &criteria)?;
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
