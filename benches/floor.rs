//! Costs as ratios to floors measured in the same run (`ci/bench`, or
//! `cargo bench --bench floor`): one Markdown table a reviewer can paste.
//!
//! - CLI: `recipe` and `bundle` wall time over `aiconform --version` (the process floor),
//!   medians of alternating runs of the release binary, and each one's peak RSS.
//! - Server: `aiconform serve` on 127.0.0.1:0 in its own process; requests/s and p50/p99 of
//!   GET /v1/recipe and POST /v1/bundle at 8 and 64 connections, over GET /healthz at the
//!   same connections (the server's floor); the server's peak RSS.
//! - Readiness of a 10,000-node snapshot (in process) over the process floor, and the peak
//!   RSS of a process that builds and evaluates it.
//!
//! `AICONFORM_BENCH_BIN` measures another `aiconform` binary. Bounds, overridable by
//! environment: `AICONFORM_BENCH_RUNS` (CLI runs per command,
//! default 21, at most 201), `AICONFORM_BENCH_SECONDS` (per load step, default 3, at most
//! 30), `AICONFORM_BENCH_REQUESTS` (per load step, default 200000, at most 1000000).
//! Traffic goes only to 127.0.0.1; the server is stopped at the end, also on failure.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

mod support;

/// The binary under test: this build's, or `AICONFORM_BENCH_BIN` (e.g. an older build to
/// compare with).
fn bin() -> String {
    std::env::var("AICONFORM_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aiconform").into())
}
/// Set in a child that should run the command after `--` and print its peak RSS (KiB).
const RSS_ENV: &str = "AICONFORM_BENCH_RSS_OF";
/// Set in a child that should build and evaluate the 10,000-node readiness snapshot.
const READINESS_ENV: &str = "AICONFORM_BENCH_READINESS_CHILD";

const RECIPE_ARGS: &[&str] = &[
    "recipe",
    "--service",
    "eks",
    "--accelerator",
    "h100",
    "--os",
    "ubuntu",
    "--intent",
    "training",
    "--platform",
    "kubeflow",
];
const RECIPE_QUERY: &str =
    "/v1/recipe?service=eks&accelerator=h100&os=ubuntu&intent=training&platform=kubeflow";
const BUNDLE_BODY: &str = r#"{"criteria":{"service":"eks","accelerator":"h100","os":"ubuntu","intent":"training","platform":"kubeflow"}}"#;

fn env_bounded(name: &str, default: u64, max: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

fn main() -> ExitCode {
    if std::env::var_os(RSS_ENV).is_some() {
        return rss_child();
    }
    if std::env::var_os(READINESS_ENV).is_some() {
        readiness_child();
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

/// Child mode: run `argv[after --]`, wait, print the peak RSS of that (only) child in KiB.
fn rss_child() -> ExitCode {
    let args: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("floor: {RSS_ENV} needs a command after --");
        return ExitCode::FAILURE;
    };
    // The measured command must not see the child-mode variables: when it is this program
    // again (the readiness child), it would re-enter this mode instead of doing the work.
    let status = Command::new(cmd)
        .args(rest)
        .env_remove(RSS_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    match (status, usage) {
        (Ok(s), Ok(u)) if s.success() => {
            println!("{}", u.max_rss());
            ExitCode::SUCCESS
        }
        (s, u) => {
            eprintln!("floor: {cmd}: {s:?} {u:?}");
            ExitCode::FAILURE
        }
    }
}

fn readiness_child() {
    let catalog = support::builtin_catalog();
    let constraints = support::readiness_constraints(&support::largest_recipe(&catalog));
    let snapshot = support::snapshot(support::SNAPSHOT_NODES);
    let report = aiconform::readiness::evaluate_snapshot(&constraints, &snapshot);
    std::hint::black_box(report);
}

/// Peak RSS in KiB of `cmd args` run in a child of a fresh copy of this program.
fn rss_of(envs: &[(&str, &str)], cmd: &[&str]) -> Result<u64> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(me)
        .env(RSS_ENV, "1")
        .envs(envs.iter().copied())
        .arg("--")
        .args(cmd)
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| {
        format!(
            "no RSS for {cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Two decimals, more below 0.1 so a small ratio never prints as `0.00×`.
fn ratio(x: f64, floor: f64) -> String {
    let r = x / floor;
    let decimals = if r > 0.0 && r < 0.1 {
        (2.0 - r.log10().floor()).min(6.0) as usize
    } else {
        2
    };
    format!("{r:.decimals$}×")
}

/// One timed run of the CLI; fails on a non-zero exit.
fn time_cli(args: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let bin = bin();
    let status = Command::new(&bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("`aiconform {}` failed: {status}", args.join(" ")));
    }
    Ok(elapsed)
}

struct Row {
    what: String,
    value: String,
    floor: String,
    ratio: String,
    target: &'static str,
    rss: String,
}

fn run() -> Result<()> {
    let runs = env_bounded("AICONFORM_BENCH_RUNS", 21, 201) as usize;
    let load_before = load_average();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let recipe_file = tmp.path().join("recipe.yaml");
    let recipe_path = recipe_file.to_str().ok_or("temp path is not UTF-8")?;
    let mut recipe_args = RECIPE_ARGS.to_vec();
    recipe_args.extend(["-o", recipe_path]);
    time_cli(&recipe_args)?;

    eprintln!("floor: CLI, {runs} alternating runs of each command");
    let (mut floor, mut recipe, mut bundle) = (Vec::new(), Vec::new(), Vec::new());
    let bundle_dir = |i: usize| tmp.path().join(format!("bundle-{i}"));
    for i in 0..runs {
        floor.push(time_cli(&["--version"])?);
        recipe.push(time_cli(&recipe_args)?);
        let dir = bundle_dir(i);
        let dir_str = dir.to_str().ok_or("temp path is not UTF-8")?;
        bundle.push(time_cli(&[
            "bundle",
            "--recipe",
            recipe_path,
            "-o",
            dir_str,
        ])?);
    }
    // Removed only after the timed runs: on ext4 without a journal the inode allocator skips
    // every recently deleted inode, one lookup each, so deleting a bundle right before the
    // next run would make that run pay for this loop's own deletes.
    for i in 0..runs {
        std::fs::remove_dir_all(bundle_dir(i)).map_err(|e| e.to_string())?;
    }
    let (floor, recipe, bundle) = (median(&mut floor), median(&mut recipe), median(&mut bundle));
    let rss_dir = bundle_dir(runs);
    let rss_dir = rss_dir.to_str().ok_or("temp path is not UTF-8")?;
    let floor_s = floor.as_secs_f64();
    let bin = bin();
    let bin = bin.as_str();
    let mut rows = vec![
        Row {
            what: "`aiconform --version` (process floor)".into(),
            value: ms(floor),
            floor: ms(floor),
            ratio: ratio(floor_s, floor_s),
            target: "",
            rss: mib(rss_of(&[], &[bin, "--version"])?),
        },
        Row {
            what: "`recipe` eks-h100-ubuntu-training-kubeflow -o FILE".into(),
            value: ms(recipe),
            floor: ms(floor),
            ratio: ratio(recipe.as_secs_f64(), floor_s),
            target: "≤ 2×",
            rss: mib(rss_of(&[], &[&[bin][..], &recipe_args[..]].concat())?),
        },
        Row {
            what: "`bundle --recipe FILE -o DIR`".into(),
            value: ms(bundle),
            floor: ms(floor),
            ratio: ratio(bundle.as_secs_f64(), floor_s),
            target: "≤ 4×",
            rss: mib(rss_of(
                &[],
                &[bin, "bundle", "--recipe", recipe_path, "-o", rss_dir],
            )?),
        },
    ];

    eprintln!("floor: readiness of {} nodes", support::SNAPSHOT_NODES);
    let catalog = support::builtin_catalog();
    let constraints = support::readiness_constraints(&support::largest_recipe(&catalog));
    let snapshot = support::snapshot(support::SNAPSHOT_NODES);
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(aiconform::readiness::evaluate_snapshot(
                &constraints,
                &snapshot,
            ));
            t.elapsed()
        })
        .collect();
    drop(snapshot);
    let readiness = median(&mut times);
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let me = me.to_str().ok_or("bench path is not UTF-8")?;
    rows.push(Row {
        what: format!(
            "readiness of {} nodes, {} constraints (in process)",
            support::SNAPSHOT_NODES,
            constraints.len()
        ),
        value: ms(readiness),
        floor: ms(floor),
        ratio: ratio(readiness.as_secs_f64(), floor_s),
        target: "",
        rss: format!(
            "{} (incl. building it)",
            mib(rss_of(&[(READINESS_ENV, "1")], &[me])?)
        ),
    });

    let server = ServerProcess::start()?;
    rows.extend(server_rows(&server)?);
    let server_rss = server.peak_rss_kib()?;
    drop(server);
    rows.push(Row {
        what: "`aiconform serve` after all load steps".into(),
        value: String::new(),
        floor: String::new(),
        ratio: String::new(),
        target: "",
        rss: mib(server_rss),
    });

    let load = format!("{load_before} → {}", load_average());
    print_table(&rows, runs, &load);
    Ok(())
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

fn print_table(rows: &[Row], runs: usize, load: &str) {
    println!();
    println!(
        "aiconform {} · {} · {} CPUs, load average {load} (start → end) · medians of {runs} alternating CLI runs · loopback load from a single-threaded client · machine shared, so compare ratios, not times",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!("| measure | value | floor | ratio | target | peak RSS |");
    println!("|---|---:|---:|---:|---|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.what, r.value, r.floor, r.ratio, r.target, r.rss
        );
    }
}

/// `aiconform serve` on a free loopback port; killed when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn start() -> Result<Self> {
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--concurrency", "256"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no server stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse::<SocketAddr>().ok());
        match (read, addr) {
            (Ok(_), Some(addr)) if addr.ip().is_loopback() => Ok(ServerProcess { child, addr }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the server did not report a loopback address: {line:?}"
                ))
            }
        }
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("cannot read the server's /proc status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmHWM in the server's /proc status".into())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy)]
struct Load {
    label: &'static str,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
}

const HEALTHZ: Load = Load {
    label: "GET /healthz",
    method: "GET",
    path: "/healthz",
    body: None,
};
const GET_RECIPE: Load = Load {
    label: "GET /v1/recipe",
    method: "GET",
    path: RECIPE_QUERY,
    body: None,
};
const POST_BUNDLE: Load = Load {
    label: "POST /v1/bundle",
    method: "POST",
    path: "/v1/bundle",
    body: Some(BUNDLE_BODY),
};

struct LoadResult {
    label: &'static str,
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    bytes: usize,
}

impl LoadResult {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn server_rows(server: &ServerProcess) -> Result<Vec<Row>> {
    let seconds = env_bounded("AICONFORM_BENCH_SECONDS", 3, 30);
    let max_requests = env_bounded("AICONFORM_BENCH_REQUESTS", 200_000, 1_000_000) as usize;
    let deadline = Duration::from_secs(seconds);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for conns in [8, 64] {
        eprintln!("floor: server load at {conns} connections, {seconds} s per route");
        let floor = rt.block_on(load(server.addr, HEALTHZ, conns, deadline, max_requests))?;
        rows.push(load_row(&floor, &floor, conns, ""));
        for (what, target) in [(GET_RECIPE, "≥ 10,000 req/s at 8"), (POST_BUNDLE, "")] {
            let r = rt.block_on(load(server.addr, what, conns, deadline, max_requests))?;
            rows.push(load_row(
                &r,
                &floor,
                conns,
                if conns == 8 { target } else { "" },
            ));
        }
    }
    Ok(rows)
}

fn load_row(r: &LoadResult, floor: &LoadResult, conns: usize, target: &'static str) -> Row {
    let mut sorted = r.latencies.clone();
    sorted.sort();
    Row {
        what: format!(
            "{} × {conns} conns ({} B responses)",
            r.label,
            r.bytes / r.requests.max(1)
        ),
        value: format!(
            "{:.0} req/s, p50 {}, p99 {}",
            r.per_second(),
            ms(percentile(&sorted, 0.50)),
            ms(percentile(&sorted, 0.99))
        ),
        floor: format!("{:.0} req/s", floor.per_second()),
        ratio: ratio(r.per_second(), floor.per_second()),
        target,
        rss: String::new(),
    }
}

/// `conns` keep-alive HTTP/1.1 connections, each sending `what` back to back until the
/// deadline or `max_requests` in total; every response must be 2xx. One warm-up request per
/// connection is not counted.
async fn load(
    addr: SocketAddr,
    what: Load,
    conns: usize,
    deadline: Duration,
    max_requests: usize,
) -> Result<LoadResult> {
    let mut senders = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    for s in &mut senders {
        send(s, addr, what).await?;
    }
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut bytes = 0;
                while start.elapsed() < deadline
                    && sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < max_requests
                {
                    let t = Instant::now();
                    bytes += send(&mut sender, addr, what).await?;
                    latencies.push(t.elapsed());
                }
                Ok::<_, String>((latencies, bytes))
            })
        })
        .collect();
    let mut result = LoadResult {
        label: what.label,
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
        bytes: 0,
    };
    for t in tasks {
        let (latencies, bytes) = t.await.map_err(|e| e.to_string())??;
        result.latencies.extend(latencies);
        result.bytes += bytes;
    }
    result.elapsed = start.elapsed();
    result.requests = result.latencies.len();
    Ok(result)
}

/// One request; the body length of its 2xx response.
async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    what: Load,
) -> Result<usize> {
    let mut req = hyper::Request::builder()
        .method(what.method)
        .uri(what.path)
        .header(hyper::header::HOST, addr.to_string());
    if what.body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from_static(
            what.body.unwrap_or("").as_bytes(),
        )))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{}: {e}", what.label))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{}: {e}", what.label))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "{} answered {status}: {}",
            what.label,
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok(body.len())
}
