use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use aiconform::probe;
use aiconform::runner::suite::parse_duration;

/// Programs the conformance cases run inside their workload containers.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform probe sleep 3s\n  aiconform probe devices --expect 1\n  \
    aiconform probe devices --expect 0 --termination-log /tmp/msg\n  \
    aiconform probe serve --name stable --address 127.0.0.1 --port 8080\n  \
    aiconform probe http --url http://127.0.0.1:8080/v1/completions --count 100 \
    --header 'X-Gateway-Model-Name: canary'"
)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Run for DURATION (`3s`, `1m`), then exit 0
    Sleep {
        #[arg(value_parser = parse_duration)]
        duration: std::time::Duration,
    },
    /// Serve HTTP on PORT: every request is answered with NAME (body and `x-served-by`
    /// header) and counted; `/metrics` exposes the count in the Prometheus format
    Serve {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on (e.g. the pod IP)
        #[arg(long, default_value = "0.0.0.0")]
        address: std::net::IpAddr,
        /// Also report model-server load on /metrics: this many waiting requests
        /// (`vllm:num_requests_waiting`)
        #[arg(long, value_name = "N")]
        queue: Option<u64>,
        /// KV-cache usage reported with --queue (`vllm:kv_cache_usage_perc`, 0..1)
        #[arg(
            long,
            value_name = "FRACTION",
            default_value_t = 0.0,
            requires = "queue"
        )]
        kv_cache: f64,
    },
    /// Send COUNT GET requests to URL and tally the backend that answered each one (the
    /// `x-served-by` header of `probe serve`): JSON on stdout and as the termination message;
    /// exit 0 when every request got a 2xx answer naming a backend, 1 otherwise
    Http {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 100)]
        count: u64,
        /// Request header `NAME: VALUE` (repeatable)
        #[arg(long = "header", value_name = "NAME: VALUE", value_parser = probe::traffic::parse_header)]
        headers: Vec<(String, String)>,
        /// Also tally the answers by this response header's value (e.g. an endpoint
        /// picker's `x-gateway-destination-endpoint`)
        #[arg(long, value_name = "NAME")]
        record_header: Option<String>,
        /// Retry one uncounted request until it succeeds, for at most this long
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        warmup: std::time::Duration,
        /// Where to write the termination message
        #[arg(long, value_name = "FILE", default_value = probe::TERMINATION_LOG)]
        termination_log: PathBuf,
    },
    /// Report the GPU device nodes this process sees (JSON on stdout and as the termination
    /// message); exit 0 when they match --expect, 1 otherwise
    Devices {
        /// Expected number of GPU devices (default: at least one)
        #[arg(long)]
        expect: Option<usize>,
        /// Where to write the termination message
        #[arg(long, value_name = "FILE", default_value = probe::TERMINATION_LOG)]
        termination_log: PathBuf,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.what {
        What::Sleep { duration } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            rt.block_on(probe::sleep(duration));
            Ok(ExitCode::SUCCESS)
        }
        What::Serve {
            name,
            port,
            address,
            queue,
            kv_cache,
        } => {
            let extra = queue
                .map(|q| probe::traffic::model_load_metrics(&name, q, kv_cache))
                .unwrap_or_default();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind((address, port))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {address} port {port}: {e}"))?;
                probe::serve_with_metrics(name, l, extra).await?;
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        What::Http {
            url,
            count,
            headers,
            record_header,
            warmup,
            termination_log,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let tally = rt
                .block_on(probe::traffic::send(
                    &url,
                    count,
                    &headers,
                    record_header.as_deref(),
                    warmup,
                ))
                .map_err(anyhow::Error::msg)?;
            let text = serde_json::to_string(&tally)?;
            println!("{text}");
            probe::write_termination_message(&termination_log, &text)?;
            Ok(if tally.failures == 0 && tally.unidentified == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        What::Devices {
            expect,
            termination_log,
        } => {
            let view = probe::device_view(
                &probe::probe_root(),
                std::env::var("NVIDIA_VISIBLE_DEVICES").ok(),
            );
            let text = serde_json::to_string(&view)?;
            println!("{text}");
            probe::write_termination_message(&termination_log, &text)?;
            Ok(if probe::view_matches(&view, expect) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
