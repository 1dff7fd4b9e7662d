use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Subcommand};

use aiconform::bundle::oci::{self, RegistryOptions};
use aiconform::bundle::vendor::{self, PullOptions, VendoredCharts};
use aiconform::bundle::{self, BundleOptions, Deployer, Toleration, sign};

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
  aiconform bundle verify ./bundle

Signed bundles and OCI registries:
  aiconform bundle keygen                        # bundle.key (private) and bundle.pub
  aiconform bundle --recipe recipe.yaml -o ./bundle --sign bundle.key
  aiconform bundle verify ./bundle --key bundle.pub
  aiconform bundle --recipe recipe.yaml -o oci://registry.example.com/bundles/h100:v1 --sign bundle.key
  aiconform bundle verify oci://registry.example.com/bundles/h100:v1 --key bundle.pub

Air-gapped bundles (--deployer helm or helmfile):
  aiconform bundle --recipe recipe.yaml -o ./bundle --vendor-charts
  aiconform deploy --bundle ./bundle             # or ./bundle/deploy.sh; no chart repository needed

--vendor-charts pulls each Helm chart (exact recipe version, $AICONFORM_HELM else helm on PATH,
with --plain-http, --ca-file and the registry credentials below) into charts/<chart>-<version>.tgz
and records chart, version, source, file and SHA-256 in charts/provenance.yaml. bundle.yaml lists
the archives with their SHA-256, so `bundle verify` and signatures cover them. Container images
are not vendored: list them for mirroring with `aiconform mirror list --bundle ./bundle`.

bundle.yaml.sig is what `cosign sign-blob --key` writes for bundle.yaml (base64 DER ECDSA
P-256/SHA-256): `cosign verify-blob --key bundle.pub --signature bundle.yaml.sig bundle.yaml`
(with --insecure-ignore-tlog) or `openssl dgst -sha256 -verify bundle.pub -signature <(base64 -d
bundle.yaml.sig) bundle.yaml` check it too. Registry credentials (HTTP basic auth) come from
AICONFORM_REGISTRY_USERNAME and AICONFORM_REGISTRY_PASSWORD (also used to pull vendored charts).";

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
    /// Check a bundle (directory or oci:// reference) against its bundle.yaml: reports
    /// changed, missing and extra files and exits non-zero on any; with --key, also its
    /// signature
    #[command(after_help = "\
Exit status: 0 the files match bundle.yaml and, for a signed bundle, the signature is valid \
for --key (an unsigned bundle without --key: 0, \"intact\"); 1 a file differs, is missing or \
extra, or the signature does not verify; 3 the files match bundle.yaml, but the bundle is \
signed and its signature was not checked (pass --key): bundle.yaml itself may have been \
edited, so nothing is proven.")]
    Verify {
        /// The bundle directory, or oci://REGISTRY/REPO:TAG
        #[arg(value_name = "DIR|OCI_REF")]
        target: String,
        /// Public key (PEM); the bundle must carry a valid bundle.yaml.sig made with its
        /// private key
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Sign an intact bundle directory: writes bundle.yaml.sig (cosign sign-blob format)
    Sign {
        /// The bundle directory
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Private key (PEM, ECDSA P-256), from `aiconform bundle keygen` or openssl
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Create an ECDSA P-256 key pair for signing bundles (PEM, readable by openssl and
    /// cosign verify-blob)
    Keygen {
        /// Private key file (written with mode 0600)
        #[arg(long, value_name = "FILE", default_value = "bundle.key")]
        private_key: PathBuf,
        /// Public key file
        #[arg(long, value_name = "FILE", default_value = "bundle.pub")]
        public_key: PathBuf,
        /// Overwrite existing key files
        #[arg(long)]
        force: bool,
    },
}

/// How to reach an OCI registry.
#[derive(Debug, Clone, ClapArgs)]
pub struct RegistryArgs {
    /// Talk to the OCI registry over plain HTTP (local registries only); with
    /// --vendor-charts, also to oci:// chart sources
    #[arg(long)]
    pub plain_http: bool,
    /// CA certificate (PEM) to trust for the OCI registry's TLS; with --vendor-charts, also
    /// for the chart sources
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            plain_http: self.plain_http,
            ca_file: self.ca_file.clone(),
            credentials: RegistryOptions::credentials_from_env(),
        }
    }
}

#[derive(Debug, ClapArgs)]
struct RenderArgs {
    #[command(flatten)]
    _config: super::config_args::ConfigArg,
    /// Recipe file written by `aiconform recipe` (YAML or JSON); without it the recipe is
    /// composed from the criteria flags
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
    #[command(flatten)]
    criteria: CriteriaArgs,
    #[command(flatten)]
    sets: SetArgs,
    /// Directory to write the bundle to (created; must be empty unless --force), or
    /// oci://REGISTRY/REPO[:TAG] to push it as an OCI artifact (tag defaults to the
    /// aiconform version)
    #[arg(short, long, value_name = "DIR|OCI_REF")]
    output: Option<PathBuf>,
    /// Sign bundle.yaml with this private key (PEM, ECDSA P-256): writes bundle.yaml.sig
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
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
    /// How the bundle deploys:
    /// helm (deploy.sh/undeploy.sh, one component at a time);
    /// argocd (app-of-apps, one Application per component, sync waves);
    /// argocd-helm (the app-of-apps as a Helm chart);
    /// flux (HelmRepository/OCIRepository + HelmRelease, Kustomizations, dependsOn);
    /// helmfile (helmfile.yaml, releases with needs)
    #[arg(
        long,
        value_name = "DEPLOYER",
        default_value = "helm",
        verbatim_doc_comment
    )]
    deployer: String,
    /// Git repository the bundle is read from (argocd, argocd-helm and flux deployers)
    #[arg(long, value_name = "URL")]
    argocd_repo_url: Option<String>,
    /// One component at a time: each waits for the one before it, instead of only for its
    /// dependencies (argocd, argocd-helm, flux, helmfile; the helm scripts are serial anyway)
    #[arg(long)]
    serial: bool,
    /// Pull every Helm chart into charts/<chart>-<version>.tgz (with charts/provenance.yaml)
    /// so the bundle deploys without reaching the chart sources (deployers helm and
    /// helmfile), e.g. `aiconform bundle --recipe recipe.yaml -o ./bundle --vendor-charts`
    #[arg(long)]
    vendor_charts: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Some(BundleCommand::Verify {
            target,
            key,
            registry,
        }) => verify(&target, key.as_deref(), &registry),
        Some(BundleCommand::Sign { dir, key }) => sign(&dir, &key),
        Some(BundleCommand::Keygen {
            private_key,
            public_key,
            force,
        }) => keygen(&private_key, &public_key, force),
        None => render(args.render),
    }
}

fn options(args: &RenderArgs) -> Result<BundleOptions> {
    let deployer: Deployer = args.deployer.parse()?;
    if args.argocd_repo_url.is_some() && !deployer.reads_git() {
        bail!(
            "--argocd-repo-url only applies with --deployer argocd, argocd-helm or flux (not {deployer})"
        );
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
        serial: args.serial,
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
    let context = || {
        format!(
            "cannot render a bundle of recipe `{}`",
            recipe.metadata.name
        )
    };
    // Rendered first without charts: a recipe the bundle refuses is reported before any pull.
    let mut rendered = bundle::render(&recipe, &opts).with_context(context)?;
    if args.vendor_charts {
        let charts = vendor_charts(&args, &recipe, opts.deployer)?;
        rendered = bundle::render_with_charts(&recipe, &opts, &charts).with_context(context)?;
        eprintln!(
            "vendored {} chart(s) into charts/ ({})",
            charts.len(),
            charts
                .values()
                .map(|c| format!("{} {}", c.chart, c.version))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(key) = &args.sign {
        rendered.sign(&read_private_key(key)?)?;
    }
    let names: Vec<&str> = recipe.components.iter().map(|c| c.name.as_str()).collect();
    if let Some(reference) = output.to_str().filter(|o| oci::is_oci(o)) {
        let runtime = super::runtime()?;
        let pushed = runtime.block_on(oci::push(&rendered, reference, &args.registry.options()))?;
        eprintln!(
            "pushed bundle {reference} ({} files, {} components: {})",
            rendered.files.len(),
            names.len(),
            names.join(" → ")
        );
        println!("{}", pushed.digest);
        eprintln!("deploy with `aiconform deploy --bundle {}`", pushed.pinned);
        return Ok(ExitCode::SUCCESS);
    }
    rendered.write_to(&output, args.force)?;
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
        Deployer::ArgoCdHelm => eprintln!(
            "push it to Git and apply {}/argocd-helm/app-of-apps.yaml (see its README.md)",
            output.display()
        ),
        Deployer::Flux => eprintln!(
            "push it to Git, apply {}/flux/source.yaml and point a Flux Kustomization at it (see its README.md)",
            output.display()
        ),
        Deployer::Helmfile => eprintln!(
            "deploy with `helmfile apply` in {} (see its README.md)",
            output.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Pull every chart of `recipe` with the helm `deploy` uses, over the registry options.
fn vendor_charts(
    args: &RenderArgs,
    recipe: &aiconform::recipe::model::Recipe,
    deployer: Deployer,
) -> Result<VendoredCharts> {
    vendor::check_deployer(deployer)?;
    let helm = aiconform::deploy::helm::locate()
        .map_err(|why| anyhow::anyhow!("--vendor-charts pulls the charts with helm: {why}"))?;
    let registry = args.registry.options();
    let pull = PullOptions {
        plain_http: registry.plain_http,
        ca_file: registry.ca_file,
        credentials: registry.credentials,
        timeout: VENDOR_PULL_TIMEOUT,
    };
    Ok(super::runtime()?.block_on(aiconform::deploy::helm::pull_charts(recipe, &helm, &pull))?)
}

/// How long pulling one chart may take.
const VENDOR_PULL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn read_private_key(path: &Path) -> Result<p256::ecdsa::SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    Ok(sign::parse_private_key(&pem, &path.display().to_string())?)
}

fn verify(target: &str, key: Option<&Path>, registry: &RegistryArgs) -> Result<ExitCode> {
    let pulled = if oci::is_oci(target) {
        let p = super::runtime()?.block_on(oci::pull_to_dir(target, &registry.options()))?;
        eprintln!("pulled {target} ({})", p.digest);
        Some(p)
    } else {
        None
    };
    let dir = pulled
        .as_ref()
        .map_or_else(|| PathBuf::from(target), |p| p.dir.clone());
    let mut report = bundle::verify(&dir)?;
    if !report.is_ok() {
        println!("{report}");
        return Ok(ExitCode::FAILURE);
    }
    if let Some(key) = key {
        report
            .check_signature(key)
            .with_context(|| format!("bundle {target} is not signed by {}", key.display()))?;
    }
    println!("{report}");
    Ok(match report.signature {
        bundle::SignatureState::NotChecked => ExitCode::from(SIGNATURE_NOT_CHECKED),
        _ => ExitCode::SUCCESS,
    })
}

/// Exit status of `bundle verify` on a signed bundle whose files match bundle.yaml but
/// whose signature was not checked (no --key).
const SIGNATURE_NOT_CHECKED: u8 = 3;

fn sign(dir: &Path, key: &Path) -> Result<ExitCode> {
    let report = bundle::verify(dir)?;
    if !report.is_ok() {
        println!("{report}");
        bail!(
            "refusing to sign {}: it does not match its bundle.yaml",
            dir.display()
        );
    }
    let key = read_private_key(key)?;
    let manifest = std::fs::read(dir.join(bundle::BUNDLE_FILE))
        .with_context(|| format!("cannot read {}/bundle.yaml", dir.display()))?;
    let path = dir.join(sign::SIGNATURE_FILE);
    std::fs::write(&path, sign::sign(&key, &manifest))
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn keygen(private: &Path, public: &Path, force: bool) -> Result<ExitCode> {
    for p in [private, public] {
        if p.exists() && !force {
            bail!("{} exists; pass --force to overwrite it", p.display());
        }
    }
    let (private_pem, public_pem) = sign::generate_key_pair();
    write_private(private, &private_pem)?;
    std::fs::write(public, public_pem)
        .with_context(|| format!("cannot write {}", public.display()))?;
    eprintln!(
        "wrote private key {} (keep it secret) and public key {}",
        private.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn write_private(path: &Path, pem: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(pem.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, pem: &str) -> Result<()> {
    std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))
}
