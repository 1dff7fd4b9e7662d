//! Load test of the REST API over loopback: a bounded number of requests against an
//! in-process server on 127.0.0.1:0, reporting requests/s and latency percentiles.
//!
//! `cargo bench --bench server_load` (or `ci/bench-server.sh`). Bounds, overridable by
//! environment: `AICONFORM_BENCH_REQUESTS` (default 2000, at most 20000),
//! `AICONFORM_BENCH_CONCURRENCY` (default 16, at most 64), `AICONFORM_BENCH_SECONDS`
//! (default 10, at most 60: the run stops at this deadline even if requests remain).
//! Traffic goes only to 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aiconform::recipe::Catalog;
use aiconform::recipe::source::RecipeFiles;
use aiconform::server::{Server, ServerConfig};

fn env_bounded(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// The request mix: (label, method, path, body).
const MIX: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "GET /v1/recipe",
        "GET",
        "/v1/recipe?service=eks&accelerator=h100&os=ubuntu&intent=training&platform=kubeflow",
        None,
    ),
    (
        "GET /v1/recipe",
        "GET",
        "/v1/recipe?service=gke&accelerator=h100&intent=training&format=yaml",
        None,
    ),
    ("GET /v1/recipe", "GET", "/v1/recipe", None),
    (
        "POST /v1/recipe",
        "POST",
        "/v1/recipe",
        Some(r#"{"service":"aks","intent":"training"}"#),
    ),
    (
        "GET /v1/query",
        "GET",
        "/v1/query?service=eks&accelerator=h100&selector=deploymentOrder",
        None,
    ),
    (
        "GET /v1/recipe 400",
        "GET",
        "/v1/recipe?accelerator=v100",
        None,
    ),
    ("GET /healthz", "GET", "/healthz", None),
    (
        "POST /v1/bundle",
        "POST",
        "/v1/bundle",
        Some(r#"{"criteria":{"service":"eks","accelerator":"h100","intent":"training"}}"#),
    ),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing but we still
    // keep the run bounded.
    let total = env_bounded("AICONFORM_BENCH_REQUESTS", 2000, 20_000);
    let workers = env_bounded("AICONFORM_BENCH_CONCURRENCY", 16, 64);
    let deadline = Duration::from_secs(env_bounded("AICONFORM_BENCH_SECONDS", 10, 60) as u64);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let files = RecipeFiles::with_data_dirs(&[]).expect("builtin recipes");
        let catalog = Arc::new(Catalog::load(files).expect("builtin catalog"));
        let server = Server::bind("127.0.0.1:0", catalog, ServerConfig::default())
            .await
            .expect("bind 127.0.0.1:0");
        let addr = server.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(10),
        ));
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(workers)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");

        // Warm up: one request per mix entry (fills the recipe cache like a live server).
        for (_, method, path, body) in MIX {
            let mut req = client.request(
                method.parse().expect("method"),
                format!("http://{addr}{path}"),
            );
            if let Some(b) = body {
                req = req.header("content-type", "application/json").body(*b);
            }
            let _ = req.send().await.map(|r| r.bytes());
        }

        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let client = client.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let mut samples: Vec<(&'static str, u16, Duration)> = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || start.elapsed() >= deadline {
                        break;
                    }
                    let (label, method, path, body) = MIX[i % MIX.len()];
                    let mut req = client.request(
                        method.parse().expect("method"),
                        format!("http://{addr}{path}"),
                    );
                    if let Some(b) = body {
                        req = req.header("content-type", "application/json").body(b);
                    }
                    let t = Instant::now();
                    let status = match req.send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let _ = r.bytes().await;
                            s
                        }
                        Err(_) => 0,
                    };
                    samples.push((label, status, t.elapsed()));
                }
                samples
            }));
        }
        let mut samples = Vec::new();
        for t in tasks {
            samples.extend(t.await.expect("worker"));
        }
        let elapsed = start.elapsed();
        let _ = stop.send(());
        let _ = handle.await;

        let mut all: Vec<Duration> = samples.iter().map(|s| s.2).collect();
        all.sort();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let mut by_route: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
        for (label, status, d) in &samples {
            *statuses.entry(*status).or_default() += 1;
            by_route.entry(label).or_default().push(*d);
        }
        println!(
            "server_load: {} requests in {:.2}s with {workers} connections to {addr}",
            samples.len(),
            elapsed.as_secs_f64()
        );
        println!(
            "  throughput: {:.0} requests/s",
            samples.len() as f64 / elapsed.as_secs_f64()
        );
        println!(
            "  latency: p50 {}  p90 {}  p99 {}  max {}",
            ms(percentile(&all, 0.50)),
            ms(percentile(&all, 0.90)),
            ms(percentile(&all, 0.99)),
            ms(all.last().copied().unwrap_or_default())
        );
        println!("  statuses: {statuses:?}");
        for (label, mut v) in by_route {
            v.sort();
            println!(
                "  {label:<20} n={:<5} p50 {:>9}  p99 {:>9}",
                v.len(),
                ms(percentile(&v, 0.50)),
                ms(percentile(&v, 0.99))
            );
        }
        let errors = statuses.get(&0).copied().unwrap_or(0)
            + statuses.range(500..).map(|(_, n)| n).sum::<usize>();
        if errors > 0 {
            eprintln!("server_load: {errors} requests failed or got 5xx");
            std::process::exit(1);
        }
    });
}
