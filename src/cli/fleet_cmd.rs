//! `aiconform fleet report|metrics`: the results that runs stored in ConfigMaps
//! (`run --report-configmap`), one per cluster, gathered from one namespace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::fleet;

const AFTER_HELP: &str = "\
Examples:
  aiconform fleet report --namespace aiconform
  aiconform fleet report --namespace aiconform --junit fleet-junit.xml
  aiconform fleet metrics --namespace aiconform --listen 0.0.0.0:9090

Result ConfigMaps are those labelled aiconform.dev/purpose=run-results; each names its
cluster in aiconform.dev/member. The runs of a fleet (one Kubernetes Job per member cluster,
see charts/aiconform) write them into one namespace of the management cluster.

Exit status of `report`: 0 every member's last run passed, 1 a member's run failed or
produced no reports, 2 the ConfigMaps cannot be read.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Print one table of the members' last runs and write one JUnit file (a testsuite per
    /// member)
    Report(ReportArgs),
    /// Serve the members' last runs as Prometheus metrics on /metrics
    Metrics(MetricsArgs),
}

#[derive(Debug, clap::Args)]
struct Source {
    /// Namespace holding the result ConfigMaps
    #[arg(long, short = 'n', value_name = "NAMESPACE")]
    namespace: String,
    /// Kubeconfig of the cluster holding them (default: KUBECONFIG, ~/.kube/config, or the
    /// pod's ServiceAccount)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    source: Source,
    /// Write the merged JUnit XML here
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct MetricsArgs {
    #[command(flatten)]
    source: Source,
    /// Address to listen on
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    listen: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let result = match args.command {
        Sub::Report(a) => report(a),
        Sub::Metrics(a) => metrics(a),
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            super::report(&e);
            Ok(ExitCode::from(2))
        }
    }
}

async fn list(source: &Source) -> Result<Vec<fleet::Stored>> {
    let client = aiconform::cluster::connect(source.kubeconfig.as_deref()).await?;
    Ok(fleet::list(&client, &source.namespace).await?)
}

fn report(args: ReportArgs) -> Result<ExitCode> {
    let rt = super::runtime()?;
    let runs = rt.block_on(list(&args.source))?;
    if runs.is_empty() {
        eprintln!(
            "no result ConfigMaps ({}={}) in namespace {}",
            fleet::PURPOSE_LABEL,
            fleet::PURPOSE,
            args.source.namespace
        );
    }
    let rows = fleet::report::rows(&runs);
    print!("{}", fleet::report::render_table(&rows));
    if let Some(path) = &args.junit {
        let xml = fleet::report::render_junit(&runs)?;
        std::fs::write(path, xml).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("junit: {}", path.display());
    }
    let all_ok = rows.iter().all(|r| r.state == "ok");
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn metrics(args: MetricsArgs) -> Result<ExitCode> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let rt = super::runtime()?;
    let source = std::sync::Arc::new(args.source);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let app = axum::Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/metrics",
                get(move || {
                    let source = source.clone();
                    async move {
                        match list(&source).await {
                            Ok(runs) => (
                                StatusCode::OK,
                                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                                fleet::metrics::render(&runs),
                            ),
                            Err(e) => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                [(header::CONTENT_TYPE, "text/plain")],
                                format!("cannot read the result ConfigMaps: {e:#}\n"),
                            ),
                        }
                    }
                }),
            );
        eprintln!(
            "aiconform fleet metrics: listening on http://{}/metrics",
            listener.local_addr()?
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving metrics")?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
