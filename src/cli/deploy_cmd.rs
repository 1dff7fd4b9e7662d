use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use aiconform::deploy::{self, DeployOptions, Event, Outcome};

use super::progress::Spinner;

const AFTER_HELP: &str = "\
Examples:
  aiconform deploy --bundle ./bundle
  aiconform deploy --bundle ./bundle --kubeconfig ~/.kube/gpu-cluster --timeout 10m

The bundle is verified against its bundle.yaml first. Components are deployed in order;
a component that does not become healthy is reported and the components that depend on it
are skipped. Exits non-zero if any component failed or was skipped.";

/// Arguments of `aiconform deploy`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Bundle directory written by `aiconform bundle`
    #[arg(long, value_name = "DIR")]
    bundle: PathBuf,
    /// Kubeconfig of the target cluster; default: KUBECONFIG, then ~/.kube/config
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// How long each component may take to become healthy, e.g. 90s, 5m, 1h
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = aiconform::runner::suite::parse_duration)]
    timeout: Duration,
}

pub fn run(args: Args) -> Result<ExitCode> {
    // Check the bundle before connecting: a tampered or missing bundle is the likelier mistake.
    let verified = aiconform::bundle::verify(&args.bundle)?;
    if !verified.is_ok() {
        println!("{verified}");
        anyhow::bail!(
            "refusing to deploy {}: it does not match its bundle.yaml",
            args.bundle.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: Args) -> Result<ExitCode> {
    let client = aiconform::cluster::connect(args.kubeconfig.as_deref())
        .await
        .context("cannot deploy: no cluster to deploy to")?;
    let opts = DeployOptions {
        timeout: args.timeout,
        kubeconfig: args.kubeconfig.clone(),
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
                        deploy::human_duration(result.elapsed.max(Duration::from_secs(1)))
                    ),
                    Outcome::Failed(why) => format!("FAILED: {why}"),
                    Outcome::Skipped(why) => format!("skipped: {why}"),
                };
                eprintln!("[{index}/{total}] {}: {status}", result.name);
            }
        }
    };
    let report = deploy::deploy(&args.bundle, &client, &opts, &progress).await?;
    println!("{report}");
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
