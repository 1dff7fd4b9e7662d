use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use aiconform::bundle::oci::{self, RegistryOptions};
use aiconform::deploy::{self, DeployOptions, Event, Outcome};

use super::progress::Spinner;

const AFTER_HELP: &str = "\
Examples:
  aiconform deploy --bundle ./bundle
  aiconform deploy --bundle ./bundle --kubeconfig ~/.kube/gpu-cluster --timeout 10m
  aiconform deploy --bundle oci://registry.example.com/bundles/h100:v1 --key bundle.pub

Helm charts are installed with $AICONFORM_HELM, else `helm` on PATH (Helm >= 3.13 or 4);
after each release every Deployment, DaemonSet and StatefulSet it holds must become ready.

Bundles rendered with --deployer helm or helmfile are deployed; argocd, argocd-helm and flux
bundles are refused (their controllers install them from Git, as the bundle's README.md says).
Vendored charts (`aiconform bundle --vendor-charts`) are installed from the bundle's charts/
folder, without reaching the chart repositories.

The bundle is verified against its bundle.yaml first. Components are deployed in order;
the first component that does not become healthy is reported with the object and the reason,
and the deploy stops there, leaving later components untouched (--keep-going: deploy the
components that do not depend on it). Exits non-zero if any component failed or was skipped.";

/// Arguments of `aiconform deploy`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    #[command(flatten)]
    _config: super::config_args::ConfigArg,
    /// Bundle directory written by `aiconform bundle`, or oci://REGISTRY/REPO:TAG
    #[arg(long, value_name = "DIR|OCI_REF")]
    bundle: String,
    /// Public key (PEM): refuse a bundle without a valid bundle.yaml.sig from its private key
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    /// Plain HTTP for OCI registries: the bundle's and `oci://` charts' (local registries only)
    #[arg(long)]
    plain_http: bool,
    /// After a failed component, go on with the components that do not depend on it
    #[arg(long)]
    keep_going: bool,
    /// CA certificate (PEM) to trust for the bundle's OCI registry
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Kubeconfig of the target cluster; default: KUBECONFIG, then ~/.kube/config
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// How long each component may take to become healthy, e.g. 90s, 5m, 1h
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = aiconform::duration::parse)]
    timeout: Duration,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let runtime = super::runtime()?;
    let pulled = if oci::is_oci(&args.bundle) {
        let opts = RegistryOptions {
            plain_http: args.plain_http,
            ca_file: args.ca_file.clone(),
            credentials: RegistryOptions::credentials_from_env(),
        };
        let p = runtime.block_on(oci::pull_to_dir(&args.bundle, &opts))?;
        eprintln!("pulled {} ({})", args.bundle, p.digest);
        Some(p)
    } else {
        None
    };
    let dir = pulled
        .as_ref()
        .map_or_else(|| PathBuf::from(&args.bundle), |p| p.dir.clone());
    // Check the bundle before connecting: a tampered or missing bundle is the likelier mistake.
    let verified = aiconform::bundle::verify(&dir)?;
    if !verified.is_ok() {
        println!("{verified}");
        anyhow::bail!(
            "refusing to deploy {}: it does not match its bundle.yaml",
            args.bundle
        );
    }
    aiconform::deploy::check_deployer(&verified.manifest, &args.bundle)?;
    if args.key.is_none() && verified.signature == aiconform::bundle::SignatureState::NotChecked {
        eprintln!(
            "warning: {} is signed, signature not checked (pass --key to check it)",
            args.bundle
        );
    }
    if let Some(key) = &args.key {
        aiconform::bundle::verify_signature(&dir, key).with_context(|| {
            format!(
                "refusing to deploy {}: it is not signed by {}",
                args.bundle,
                key.display()
            )
        })?;
    }
    runtime.block_on(run_async(args, &dir))
}

async fn run_async(args: Args, dir: &Path) -> Result<ExitCode> {
    let client = aiconform::cluster::connect(args.kubeconfig.as_deref())
        .await
        .context("cannot deploy: no cluster to deploy to")?;
    let opts = DeployOptions {
        timeout: args.timeout,
        kubeconfig: args.kubeconfig.clone(),
        plain_http: args.plain_http,
        keep_going: args.keep_going,
    };
    let spinner: Mutex<Option<Spinner>> = Mutex::new(None);
    let progress = |event: Event| {
        let mut current = spinner.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Start {
                index,
                total,
                name,
                description,
            } => {
                *current = Some(Spinner::new(&format!(
                    "[{index}/{total}] {name}: {description}"
                )));
            }
            Event::Step {
                index,
                total,
                name,
                message,
            } => {
                if let Some(s) = current.as_ref() {
                    s.set_message(&format!("[{index}/{total}] {name}: {message}"));
                }
            }
            Event::Done {
                index,
                total,
                result,
            } => {
                if let Some(s) = current.take() {
                    s.finish();
                }
                let status = match &result.outcome {
                    Outcome::Healthy => format!(
                        "healthy in {}",
                        aiconform::duration::format(Duration::from_secs(
                            result.elapsed.as_secs().max(1)
                        ))
                    ),
                    Outcome::Failed(why) => format!("FAILED: {why}"),
                    Outcome::Skipped(why) => format!("skipped: {why}"),
                };
                eprintln!("[{index}/{total}] {}: {status}", result.name);
            }
        }
    };
    let report = deploy::deploy(dir, &client, &opts, &progress).await?;
    println!("{report}");
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
