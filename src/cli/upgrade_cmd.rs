use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::deploy::release;
use aiconform::output::ReportFormat;
use aiconform::upgrade::{self, Deployed, check::render_table, record};

/// Exit status when some component is not `safe` to upgrade.
pub const NOT_SAFE_EXIT: u8 = 3;

const AFTER_HELP: &str = "\
Examples:
  aiconform upgrade-check --from recipe-v1.yaml --to recipe-v2.yaml
  aiconform upgrade-check --from ./bundle --to recipe-v2.yaml -o json
  aiconform upgrade-check --from cluster --to recipe-v2.yaml --kubeconfig ~/.kube/gpu-cluster

Per component: the version change and a verdict.
  safe     no recorded step between the two versions, or a component added
  manual   a documented manual step is needed (e.g. apply CRDs first); each with its source
  blocked  the upgrade is not supported between these versions
  unknown  no record for the component, a downgrade, versions outside what the record
           reviewed, or the component moves (namespace, chart, source or type): a move is an
           uninstall and a fresh install, never `safe`
A component only in --from is `manual` (deploy never uninstalls it).

Records are data beside the recipes, built into the binary: recipes/upgrades/<component>.yaml
(see recipes/README.md); --data DIR layers upgrades/<component>.yaml over them.
--from cluster reads the Helm release records (Secrets of type helm.sh/release.v1) of the
releases named like the --to recipe's components.

Exit status: 0 every component safe, 2 bad input or the cluster cannot be read, 3 some
component is manual, blocked or unknown.";

/// Arguments of `aiconform upgrade-check`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// What is deployed now: a recipe file, a bundle directory, or `cluster`
    #[arg(long, value_name = "RECIPE|BUNDLE|cluster")]
    from: String,
    /// The recipe to move to
    #[arg(long, value_name = "RECIPE")]
    to: PathBuf,
    /// Extra recipe data layered over the built-in records (repeatable)
    #[arg(long, value_name = "DIR")]
    data: Vec<PathBuf>,
    /// Result format on stdout
    #[arg(short, long, value_enum, default_value_t = ReportFormat::Table)]
    output: ReportFormat,
    /// Kubeconfig for --from cluster (default: KUBECONFIG or ~/.kube/config)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match check(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            super::report(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn check(args: Args) -> Result<ExitCode> {
    let files = aiconform::recipe::source::RecipeFiles::with_data_dirs(&args.data)?;
    let records = record::load(&files)?;
    let catalog = aiconform::recipe::Catalog::load(files)?;
    record::check_known(
        &records,
        &aiconform::recipe::resolve::declared_components(&catalog),
    )?;
    let to_recipe = aiconform::recipe::load_recipe_file(&args.to)?;
    let to = upgrade::from_recipe(&to_recipe.components);
    let (from, include_removed) = if args.from == "cluster" {
        (from_cluster(args.kubeconfig.as_deref(), &to)?, false)
    } else {
        (from_path(Path::new(&args.from))?, true)
    };
    let report = upgrade::check(
        &from,
        &to,
        &records,
        include_removed,
        &args.from,
        &args.to.display().to_string(),
    );
    let text = args
        .output
        .render(&report, render_table)
        .map_err(anyhow::Error::msg)?;
    print!("{text}");
    Ok(if report.all_safe() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_SAFE_EXIT)
    })
}

/// A bundle directory (it holds bundle.yaml), else a recipe file.
fn from_path(path: &Path) -> Result<Vec<Deployed>> {
    if path.is_dir() {
        let manifest = aiconform::bundle::read_manifest(path)?;
        return Ok(upgrade::from_bundle(&manifest.components));
    }
    let recipe = aiconform::recipe::load_recipe_file(path)?;
    Ok(upgrade::from_recipe(&recipe.components))
}

/// The current Helm release of each component of `to` (by release name; the one in the
/// component's namespace when several share the name).
fn from_cluster(kubeconfig: Option<&Path>, to: &[Deployed]) -> Result<Vec<Deployed>> {
    let rt = super::runtime()?;
    let (records, problems) = rt.block_on(async {
        let client = aiconform::cluster::connect(kubeconfig)
            .await
            .context("cannot reach the cluster to read its Helm releases")?;
        Ok::<_, anyhow::Error>(release::list(&client).await?)
    })?;
    for p in problems {
        eprintln!("warning: {p}");
    }
    let all = upgrade::from_releases(&records);
    Ok(to
        .iter()
        .filter_map(|c| {
            let named: Vec<&Deployed> = all.iter().filter(|d| d.name == c.name).collect();
            named
                .iter()
                .find(|d| d.namespace == c.namespace)
                .or_else(|| named.first())
                .map(|d| (*d).clone())
        })
        .collect())
}
