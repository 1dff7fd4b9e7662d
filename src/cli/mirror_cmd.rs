use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use aiconform::bundle::BundleComponent;
use aiconform::mirror::render::Renderer;
use aiconform::mirror::{self, ChartRef, ComponentInput, Inventory, format};
use aiconform::recipe::model::{Component, ComponentType};

const AFTER_HELP: &str = "\
Examples:
  aiconform mirror list --recipe recipe.yaml
  aiconform mirror list --bundle ./bundle -f hauler -o hauler.yaml
  aiconform mirror list --recipe recipe.yaml -f zarf -o zarf.yaml
  aiconform mirror list --recipe recipe.yaml --no-render -f json

Lists every container image and Helm chart a recipe or bundle deploys, for mirroring into an
air-gapped registry. Each chart is rendered with `helm template` ($AICONFORM_HELM, else helm
on PATH; this fetches the chart and runs its template code, so only list recipes you trust)
and its images read from the rendered objects, plus pinned image references in its values
(operands an operator starts later, such as the GPU Operator's driver). Extra manifests are
scanned as they are. A bundle's vendored charts (bundle --vendor-charts) are rendered from its
charts/ folder, without reaching the chart sources; they are listed with their sources, for
mirroring. A chart that cannot be fetched or rendered is a warning on stderr naming
it: its images then come from its values only, and images the chart sets by default are
missing. --no-render skips helm altogether (values and manifests only).

Formats: yaml and json (per component, all images, charts, warnings); hauler
(content.hauler.cattle.io/v1 Images and Charts); zarf (a ZarfPackageConfig with one required
component). Hauler and Zarf files hold what was found; warnings never go into them. Then
`hauler store sync -f hauler.yaml`, or `zarf package create` in the directory of zarf.yaml.
Exit status: 0 listed (also with warnings), 2 bad input.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the images and charts a recipe or bundle deploys
    List(ListArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MirrorFormat {
    Yaml,
    Json,
    Hauler,
    Zarf,
}

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["recipe", "bundle"]))]
struct ListArgs {
    /// Recipe file written by `aiconform recipe`
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
    /// Bundle directory written by `aiconform bundle`
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = MirrorFormat::Yaml)]
    format: MirrorFormat,
    /// Where to write: a file, or - for stdout
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    output: String,
    /// Do not run helm: images from values and manifests only
    #[arg(long)]
    no_render: bool,
    /// Pull oci:// charts over plain HTTP (local registries only)
    #[arg(long)]
    plain_http: bool,
    /// How long fetching and rendering one chart may take, e.g. 60s, 5m
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = aiconform::duration::parse)]
    render_timeout: Duration,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let Command::List(list) = args.command;
    match list_cmd(list) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            super::report(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn chart_of(
    t: ComponentType,
    name: &str,
    chart: &Option<String>,
    source: &Option<String>,
    version: &str,
) -> Option<ChartRef> {
    if t != ComponentType::Helm {
        return None;
    }
    Some(ChartRef {
        name: chart.clone().unwrap_or_else(|| name.to_string()),
        repo: source.clone().unwrap_or_default(),
        version: version.to_string(),
    })
}

fn recipe_input(c: &Component) -> ComponentInput {
    ComponentInput {
        name: c.name.clone(),
        namespace: c.namespace.clone(),
        chart: chart_of(c.component_type, &c.name, &c.chart, &c.source, &c.version),
        values: c.values.clone(),
        manifests: c
            .manifests
            .iter()
            .map(|m| (m.name.clone(), m.content.clone()))
            .collect(),
        rendered: None,
    }
}

fn read_text(dir: &Path, rel: &str) -> Result<String> {
    let path = dir.join(rel);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn bundle_input(dir: &Path, c: &BundleComponent) -> Result<ComponentInput> {
    let values: Value = match &c.values {
        Some(rel) => {
            let text = read_text(dir, rel)?;
            aiconform::yaml::from_str(&text, &dir.join(rel).display().to_string())?
        }
        None => Value::Null,
    };
    let mut manifests = Vec::new();
    for rel in &c.manifests {
        manifests.push((rel.clone(), read_text(dir, rel)?));
    }
    if let Some(k) = &c.kustomization {
        // The kustomization's resources, unbuilt: enough to find the images they name.
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(k))
            .with_context(|| format!("cannot read {}", dir.join(k).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && !p.ends_with("kustomization.yaml")
            })
            .collect();
        files.sort();
        for p in files {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            manifests.push((p.display().to_string(), text));
        }
    }
    Ok(ComponentInput {
        name: c.name.clone(),
        namespace: c.namespace.clone(),
        chart: chart_of(c.component_type, &c.name, &c.chart, &c.source, &c.version),
        values,
        manifests,
        rendered: None,
    })
}

/// The chart to render for a bundle component: its vendored archive (read from the bundle,
/// no network) when there is one, else the chart as listed.
fn render_source(dir: &Path, c: &BundleComponent, listed: &ChartRef) -> ChartRef {
    match c.chart_archive.as_deref().and_then(|a| a.rsplit_once('/')) {
        Some((folder, file)) => ChartRef {
            name: file.to_string(),
            repo: dir.join(folder).display().to_string(),
            version: listed.version.clone(),
        },
        None => listed.clone(),
    }
}

fn list_cmd(args: ListArgs) -> Result<()> {
    let (name, source, mut inputs, sources) = match (&args.recipe, &args.bundle) {
        (Some(path), None) => {
            let recipe = aiconform::recipe::load_recipe_file(path)?;
            let inputs: Vec<ComponentInput> = recipe.components.iter().map(recipe_input).collect();
            let sources: Vec<Option<ChartRef>> = inputs.iter().map(|c| c.chart.clone()).collect();
            (
                recipe.metadata.name,
                path.display().to_string(),
                inputs,
                sources,
            )
        }
        (None, Some(dir)) => {
            let manifest = aiconform::bundle::read_manifest(dir)?;
            let inputs = manifest
                .components
                .iter()
                .map(|c| bundle_input(dir, c))
                .collect::<Result<Vec<_>>>()?;
            let sources: Vec<Option<ChartRef>> = manifest
                .components
                .iter()
                .zip(&inputs)
                .map(|(c, i)| i.chart.as_ref().map(|chart| render_source(dir, c, chart)))
                .collect();
            (
                manifest.recipe.name,
                dir.display().to_string(),
                inputs,
                sources,
            )
        }
        _ => bail!("give --recipe FILE or --bundle DIR"),
    };
    render_charts(&mut inputs, &sources, &args)?;
    let inv = mirror::inventory(&name, &source, &inputs);
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    let text = encode(&inv, args.format).map_err(anyhow::Error::msg)?;
    aiconform::output::write_target(&args.output, text.as_bytes())
        .with_context(|| format!("cannot write {}", args.output))?;
    Ok(())
}

/// Render every chart, one after another, each from its entry of `sources` (parallel to
/// `inputs`); a renderer that cannot start is one reason for every chart.
fn render_charts(
    inputs: &mut [ComponentInput],
    sources: &[Option<ChartRef>],
    args: &ListArgs,
) -> Result<()> {
    if args.no_render {
        return Ok(());
    }
    let renderer = Renderer::locate(args.plain_http, args.render_timeout);
    let rt = super::runtime()?;
    for (c, chart) in inputs.iter_mut().zip(sources) {
        let Some(chart) = chart else {
            continue;
        };
        c.rendered = Some(match &renderer {
            Ok(r) => rt.block_on(r.template(&c.name, chart, &c.namespace, &c.values)),
            Err(e) => Err(e.clone()),
        });
    }
    Ok(())
}

fn encode(inv: &Inventory, f: MirrorFormat) -> Result<String, String> {
    match f {
        MirrorFormat::Yaml => aiconform::output::Format::Yaml.render(inv),
        MirrorFormat::Json => aiconform::output::Format::Json.render(inv),
        MirrorFormat::Hauler => format::hauler(inv),
        MirrorFormat::Zarf => format::zarf(inv),
    }
}
