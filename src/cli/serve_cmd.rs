use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;

use aiconform::recipe::Catalog;
use aiconform::recipe::source::RecipeFiles;
use aiconform::server::config::{parse_duration, parse_size};
use aiconform::server::{Server, ServerConfig, Shutdown, shutdown_signal};

/// Arguments of `aiconform serve`.
#[derive(Debug, ClapArgs)]
#[command(after_help = "\
Examples:
  aiconform serve --listen 127.0.0.1:8080
  curl 'http://127.0.0.1:8080/v1/recipe?service=eks&accelerator=h100&intent=training'
  curl -X POST -H 'Content-Type: application/json' -d '{\"service\":\"eks\"}' http://127.0.0.1:8080/v1/bundle -o bundle.tar.gz

Routes: GET|POST /v1/recipe, GET /v1/query, POST /v1/bundle, GET /healthz, /readyz, /metrics,
/openapi.json. SIGTERM or Ctrl-C stops accepting and lets in-flight requests finish.")]
pub struct Args {
    /// Address to listen on (`host:port`; port 0 picks a free port, printed at startup)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Directory of extra overlays layered over the built-in ones (repeatable; later wins)
    #[arg(long = "data", value_name = "DIR")]
    pub data: Vec<PathBuf>,
    /// Largest request body accepted (e.g. 512KiB, 1MiB, 1MB); larger gets 413
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_body: usize,
    /// Most API requests handled at once; more get 503 with Retry-After
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// Deadline per API request, body upload included (e.g. 500ms, 30s, 2m); past it, 408
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let files = RecipeFiles::with_data_dirs(&args.data).context("cannot load recipe data")?;
    let catalog = Arc::new(Catalog::load(files).context("cannot load the recipe catalog")?);
    let config = ServerConfig {
        max_body: args.max_body,
        concurrency: args.concurrency as usize,
        timeout: args.timeout,
    };
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let overlays = catalog.overlays.len();
        let grace = config.timeout + Duration::from_secs(5);
        let summary = format!(
            "{overlays} overlays; max body {} bytes, concurrency {}, timeout {:?}",
            config.max_body, config.concurrency, config.timeout
        );
        let server = Server::bind(&args.listen, catalog, config).await?;
        let addr = server.local_addr()?;
        println!("aiconform serve: listening on http://{addr} ({summary})");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        match server.run(shutdown_signal(), grace).await? {
            Shutdown::Graceful => {
                eprintln!("aiconform serve: shut down cleanly");
                Ok(ExitCode::SUCCESS)
            }
            Shutdown::Forced => {
                eprintln!(
                    "aiconform serve: requests still running {grace:?} after the shutdown signal were dropped"
                );
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
