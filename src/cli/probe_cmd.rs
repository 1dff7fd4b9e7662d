use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use aiconform::duration::parse as parse_duration;
use aiconform::probe;

/// Programs the conformance cases run inside their workload containers.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  aiconform probe sleep 3s\n  aiconform probe devices --expect 1\n  \
    aiconform probe devices --expect 0 --termination-log /tmp/msg\n  \
    aiconform probe gauge --configmap load --address 127.0.0.1 --port 8080\n  \
    aiconform probe devices --expect 1 --hold 10s\n  aiconform probe driver\n  \
    aiconform probe serve --name stable --address 127.0.0.1 --port 8080\n  \
    aiconform probe serve --name prefill-0 --role prefill --port 8000\n  \
    aiconform probe http --url http://127.0.0.1:8080/v1/completions --count 100 \
    --header 'X-Gateway-Model-Name: canary'\n  aiconform probe net\n  \
    aiconform probe net --serve 0.0.0.0:5201\n  \
    aiconform probe net --send 100.64.0.2:5201 --bytes 8388608\n  aiconform probe sandbox"
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
        /// Serve one phase of a disaggregated inference stack: `prefill` answers each
        /// request with a KV-transfer handle (`x-kv-transfer-handle`), `decode` receives one;
        /// both log `phase=... request_id=... kv_handle=...` per request to stdout
        #[arg(long, value_enum, conflicts_with = "queue")]
        role: Option<probe::phase::Phase>,
    },
    /// Serve a Prometheus gauge on PORT (`/metrics`) whose value follows a key of a
    /// ConfigMap in the pod's namespace (credentials from KUBECONFIG or in-cluster; needs
    /// get/list/watch on configmaps); 0 while the ConfigMap does not exist
    Gauge {
        /// Metric name of the gauge
        #[arg(long, default_value = probe::gauge::DEFAULT_METRIC)]
        name: String,
        /// ConfigMap whose key sets the value
        #[arg(long)]
        configmap: String,
        /// Key of the ConfigMap holding the value
        #[arg(long, default_value = probe::gauge::DEFAULT_KEY)]
        key: String,
        /// Namespace of the ConfigMap (default: the client's namespace, the pod's in-cluster)
        #[arg(long)]
        namespace: Option<String>,
        /// Address to listen on (e.g. the pod IP)
        #[arg(long, default_value = "0.0.0.0")]
        address: std::net::IpAddr,
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Send COUNT GET (or, with --body, POST) requests to URL and tally the backend that answered each one (the
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
        /// Send a distinct `x-request-id` with each request: PREFIX-0000, PREFIX-0001, ...
        /// (PREFIX-warmup for the warm-up)
        #[arg(long, value_name = "PREFIX")]
        request_id_prefix: Option<String>,
        /// POST this JSON body (e.g. an OpenAI completion request) instead of a GET
        #[arg(long, value_name = "JSON")]
        body: Option<String>,
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
        /// Keep running this long after reporting (`10s`), so that workloads sharing a
        /// device are seen to run at the same time
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        hold: Option<std::time::Duration>,
    },
    /// Report this pod's network interfaces (names, addresses; from /proc/net/dev and
    /// getifaddrs), optionally around one TCP transfer: --serve accepts one connection and reads
    /// it to the end, --send sends BYTES; each interface's received/sent bytes during the
    /// transfer are reported (JSON on stdout and as the termination message); exit 0 when the
    /// transfer (if any) completed, 1 otherwise
    Net {
        /// Accept one connection on ADDRESS:PORT and count what arrives
        #[arg(long, value_name = "ADDRESS:PORT", conflicts_with = "send")]
        serve: Option<std::net::SocketAddr>,
        /// Send --bytes to ADDRESS:PORT (a `probe net --serve`)
        #[arg(long, value_name = "ADDRESS:PORT")]
        send: Option<std::net::SocketAddr>,
        /// Payload to send with --send
        #[arg(long, default_value_t = 8 * 1024 * 1024)]
        bytes: u64,
        /// With --send: retry refused connections this long (the server may still be starting)
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        warmup: std::time::Duration,
        /// Give up the transfer after this long
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: std::time::Duration,
        /// Where to write the termination message
        #[arg(long, value_name = "FILE", default_value = probe::TERMINATION_LOG)]
        termination_log: PathBuf,
    },
    /// Report what this process sees of its node, as the workload-sandboxing case compares it
    /// between a sandboxed and an ordinary pod: the processes in its /proc (node daemons such as
    /// kubelet or containerd, and processes outside its PID namespace), whether one byte of
    /// /dev/mem or /dev/kmem can be read, host paths (/var/lib/kubelet, /etc/kubernetes,
    /// /var/log/pods), node interfaces (docker0, cni0, flannel*, ...) and its kernel identity
    /// (uname -r, /proc/version, boot id). `SANDBOX_PROBE:` lines and JSON on stdout, the JSON
    /// as the termination message; exit 0 when none of the node's processes, memory, paths or
    /// interfaces is visible, 1 otherwise
    Sandbox {
        /// Where to write the termination message
        #[arg(long, value_name = "FILE", default_value = probe::TERMINATION_LOG)]
        termination_log: PathBuf,
    },
    /// Report the NVIDIA driver version of this node as the driver shows it
    /// (/sys/module/nvidia/version or /proc/driver/nvidia/version; JSON on stdout and as the
    /// termination message); exit 0 when a driver is loaded, 1 otherwise
    Driver {
        /// Where to write the termination message
        #[arg(long, value_name = "FILE", default_value = probe::TERMINATION_LOG)]
        termination_log: PathBuf,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.what {
        What::Sleep { duration } => {
            let rt = super::runtime()?;
            rt.block_on(probe::sleep(duration));
            Ok(ExitCode::SUCCESS)
        }
        What::Serve {
            name,
            port,
            address,
            queue,
            kv_cache,
            role,
        } => {
            let extra = queue
                .map(|q| probe::traffic::model_load_metrics(&name, q, kv_cache))
                .unwrap_or_default();
            let rt = super::runtime()?;
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind((address, port))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {address} port {port}: {e}"))?;
                match role {
                    Some(phase) => probe::phase::serve(name, phase, l).await?,
                    None => probe::serve_with_metrics(name, l, extra).await?,
                }
                Ok::<_, anyhow::Error>(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        What::Gauge {
            name,
            configmap,
            key,
            namespace,
            address,
            port,
        } => {
            let rt = super::runtime()?;
            rt.block_on(gauge(name, configmap, key, namespace, address, port))?;
            Ok(ExitCode::SUCCESS)
        }
        What::Http {
            url,
            count,
            headers,
            record_header,
            request_id_prefix,
            body,
            warmup,
            termination_log,
        } => {
            let rt = super::runtime()?;
            let tally = rt
                .block_on(probe::traffic::send_with_ids(
                    &url,
                    count,
                    &headers,
                    record_header.as_deref(),
                    warmup,
                    request_id_prefix.as_deref(),
                    body.as_deref(),
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
            hold,
        } => {
            let view = probe::device_view(
                &probe::probe_root(),
                std::env::var("NVIDIA_VISIBLE_DEVICES").ok(),
            );
            let text = serde_json::to_string(&view)?;
            println!("{text}");
            probe::write_termination_message(&termination_log, &text)?;
            if let Some(d) = hold {
                std::thread::sleep(d);
            }
            Ok(if probe::view_matches(&view, expect) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        What::Net {
            serve,
            send,
            bytes,
            warmup,
            timeout,
            termination_log,
        } => {
            let transfer = match (serve, send) {
                (Some(listen), _) => Some(probe::net::Transfer::Serve { listen }),
                (None, Some(peer)) => Some(probe::net::Transfer::Send {
                    peer,
                    bytes,
                    warmup,
                }),
                (None, None) => None,
            };
            let rt = super::runtime()?;
            let report = rt.block_on(probe::net::run(transfer, timeout));
            let text = serde_json::to_string(&report)?;
            println!("{text}");
            probe::write_termination_message(&termination_log, &text)?;
            Ok(if report.error.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        What::Sandbox { termination_log } => {
            let view = probe::sandbox::observe();
            for line in probe::sandbox::protocol_lines(&view) {
                println!("{line}");
            }
            let text = serde_json::to_string(&view)?;
            println!("{text}");
            probe::write_termination_message(&termination_log, &text)?;
            let isolated = probe::sandbox::isolation_checks(&view).iter().all(|c| c.ok);
            Ok(if isolated {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        What::Driver { termination_log } => {
            let view = probe::driver_view(&probe::probe_root());
            let text = serde_json::to_string(&view)?;
            println!("{text}");
            probe::write_termination_message(&termination_log, &text)?;
            Ok(if view.driver_version.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn gauge(
    name: String,
    configmap: String,
    key: String,
    namespace: Option<String>,
    address: std::net::IpAddr,
    port: u16,
) -> Result<()> {
    use anyhow::Context;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes credentials to read the ConfigMap (KUBECONFIG or in-cluster)")?;
    let ns = namespace.unwrap_or_else(|| client.default_namespace().to_string());
    let l = tokio::net::TcpListener::bind((address, port))
        .await
        .with_context(|| format!("cannot listen on {address} port {port}"))?;
    let value = std::sync::Arc::new(probe::gauge::Gauge::default());
    tokio::select! {
        r = probe::gauge::serve(name, value.clone(), l) => r.context("serving the gauge")?,
        () = probe::gauge::follow_configmap(client, &ns, &configmap, &key, value) => {}
    }
    Ok(())
}
