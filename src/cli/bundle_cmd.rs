use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Subcommand};

use aiconform::bundle::{self, BundleOptions, Deployer, Toleration};

use super::criteria_args::{CriteriaArgs, SetArgs};

const AFTER_HELP: &str = "\
Examples:
  aiconform bundle --recipe recipe.yaml --output ./bundle
  aiconform bundle --service eks --accelerator h100 --intent training -o ./bundle \\
      --system-node-selector nodeGroup=system \\
      --accelerated-node-selector nodeGroup=gpu \\
      --accelerated-node-toleration nvidia.com/gpu=present:NoSchedule
  aiconform bundle --recipe recipe.yaml -o ./bundle --set gpuoperator:driver.version=580.95.05 \\
      --set kai-scheduler:enabled=false
  aiconform bundle verify ./bundle";

/// Arguments of `aiconform bundle`.
#[derive(Debug, ClapArgs)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    command: Option<BundleCommand>,
    #[command(flatten)]
    render: RenderArgs,
}

#[derive(Debug, Subcommand)]
enum BundleCommand {
    /// Check a bundle directory against its bundle.yaml: reports changed, missing and extra
    /// files and exits non-zero on any
    Verify {
        /// The bundle directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, ClapArgs)]
struct RenderArgs {
    /// Recipe file written by `aiconform recipe` (YAML or JSON); without it the recipe is
    /// composed from the criteria flags
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
    #[command(flatten)]
    criteria: CriteriaArgs,
    #[command(flatten)]
    sets: SetArgs,
    /// Directory to write the bundle to (created; must be empty unless --force)
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Replace the output directory if it is not empty
    #[arg(long)]
    force: bool,
    /// Node label for system workloads (operators, controllers), key=value (repeatable)
    #[arg(long = "system-node-selector", value_name = "KEY=VALUE")]
    system_node_selector: Vec<String>,
    /// Node label for GPU-node workloads (driver and plugin daemonsets), key=value (repeatable)
    #[arg(long = "accelerated-node-selector", value_name = "KEY=VALUE")]
    accelerated_node_selector: Vec<String>,
    /// Toleration for GPU-node workloads, key=value:Effect or key:Effect (repeatable)
    #[arg(long = "accelerated-node-toleration", value_name = "KEY=VALUE:EFFECT")]
    accelerated_node_toleration: Vec<String>,
    /// How the bundle deploys: helm (deploy.sh/undeploy.sh) or argocd (app-of-apps)
    #[arg(long, value_name = "DEPLOYER", default_value = "helm")]
    deployer: String,
    /// Git repository the Argo CD Applications read this bundle from (argocd deployer)
    #[arg(long, value_name = "URL")]
    argocd_repo_url: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Some(BundleCommand::Verify { dir }) => verify(&dir),
        None => render(args.render),
    }
}

fn options(args: &RenderArgs) -> Result<BundleOptions> {
    let deployer: Deployer = args.deployer.parse()?;
    if args.argocd_repo_url.is_some() && deployer != Deployer::ArgoCd {
        bail!("--argocd-repo-url only applies with --deployer argocd");
    }
    Ok(BundleOptions {
        system_node_selector: bundle::parse_selectors(
            "--system-node-selector",
            &args.system_node_selector,
        )?,
        accelerated_node_selector: bundle::parse_selectors(
            "--accelerated-node-selector",
            &args.accelerated_node_selector,
        )?,
        accelerated_tolerations: args
            .accelerated_node_toleration
            .iter()
            .map(|t| t.parse::<Toleration>())
            .collect::<Result<_, _>>()?,
        deployer,
        argocd_repo_url: args.argocd_repo_url.clone(),
    })
}

fn render(args: RenderArgs) -> Result<ExitCode> {
    let Some(output) = args.output.clone() else {
        bail!(
            "--output DIR is required: the directory to write the bundle to (or use `aiconform bundle verify DIR`)"
        );
    };
    let opts = options(&args)?;
    let recipe = args
        .criteria
        .recipe_with(args.recipe.as_deref(), &args.sets)?;
    let rendered = bundle::render(&recipe, &opts).with_context(|| {
        format!(
            "cannot render a bundle of recipe `{}`",
            recipe.metadata.name
        )
    })?;
    rendered.write_to(&output, args.force)?;
    let names: Vec<&str> = recipe.components.iter().map(|c| c.name.as_str()).collect();
    eprintln!(
        "wrote bundle {} ({} files, {} components: {})",
        output.display(),
        rendered.files.len(),
        names.len(),
        names.join(" → ")
    );
    match opts.deployer {
        Deployer::Helm => eprintln!(
            "deploy with {}/deploy.sh or `aiconform deploy --bundle {}`",
            output.display(),
            output.display()
        ),
        Deployer::ArgoCd => eprintln!(
            "push it to Git and apply {}/argocd/app-of-apps.yaml (see its README.md)",
            output.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &std::path::Path) -> Result<ExitCode> {
    let report = bundle::verify(dir)?;
    if report.is_ok() {
        println!("{report}");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{report}");
        Ok(ExitCode::FAILURE)
    }
}
