//! Inputs of the benchmarks, generated in memory so every run measures the same work:
//! criteria sets, a snapshot of many nodes, a run of many cases and a long nccl-tests log.
//!
//! Shared by `benches/hot_paths.rs`, `benches/floor.rs` and `tests/bench_setup.rs` (which
//! checks in `cargo test` that each input is what the benches claim to measure).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aiconform::recipe::model::Constraint;
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, Criteria, Dimension, Recipe};
use aiconform::runner::case::{MetricsData, Series};
use aiconform::runner::result::{Attempt, Failure};
use aiconform::runner::{CaseResult, CaseSpec, Phase, RunReport, Status};
use aiconform::snapshot::Snapshot;

/// The four criteria sets the composition bench covers, from generic to fully pinned.
pub const CRITERIA_SETS: [(&str, &[(Dimension, &str)]); 4] = [
    ("generic", &[]),
    (
        "aks-training",
        &[(Dimension::Service, "aks"), (Dimension::Intent, "training")],
    ),
    (
        "gke-h100-training",
        &[
            (Dimension::Service, "gke"),
            (Dimension::Accelerator, "h100"),
            (Dimension::Intent, "training"),
        ],
    ),
    (
        "eks-h100-ubuntu-training-kubeflow",
        &[
            (Dimension::Service, "eks"),
            (Dimension::Accelerator, "h100"),
            (Dimension::Os, "ubuntu"),
            (Dimension::Intent, "training"),
            (Dimension::Platform, "kubeflow"),
        ],
    ),
];

/// The selector the query bench resolves (deep inside the largest recipe).
pub const QUERY_SELECTOR: &str = "components.gpu-operator.values.driver.version";

/// Nodes in the readiness snapshot.
pub const SNAPSHOT_NODES: usize = 10_000;
/// Cases in the report run.
pub const REPORT_CASES: usize = 10_000;

pub fn criteria(pins: &[(Dimension, &str)]) -> Criteria {
    let mut c = Criteria::new();
    for (d, v) in pins {
        c.set(*d, v).expect("bench criteria are valid");
    }
    c
}

/// The built-in catalog, loaded as the CLI loads it.
pub fn builtin_catalog() -> Catalog {
    Catalog::load(RecipeFiles::builtin()).expect("built-in catalog loads")
}

/// The largest built-in recipe (every dimension pinned).
pub fn largest_recipe(catalog: &Catalog) -> Recipe {
    let (_, pins) = CRITERIA_SETS[CRITERIA_SETS.len() - 1];
    aiconform::recipe::compose(catalog, &criteria(pins)).expect("recipe composes")
}

fn fixture(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A snapshot of `nodes` nodes: the fixture cluster's nodes (GPU with agent, GPU without
/// agent, CPU-only) repeated round-robin under new names, so every code path of readiness
/// (per-node values, nodes lacking agent facts, CPU nodes exempt from `GPU.*`) runs at scale.
pub fn snapshot(nodes: usize) -> Snapshot {
    let text = fixture("fixtures/snapshots/h100-eks.yaml");
    let mut snap = aiconform::snapshot::parse(&text, "fixtures/snapshots/h100-eks.yaml")
        .expect("fixture snapshot parses");
    let templates = std::mem::take(&mut snap.cluster.nodes);
    assert!(!templates.is_empty(), "fixture snapshot has nodes");
    snap.cluster.nodes = (0..nodes)
        .map(|i| {
            let mut n = templates[i % templates.len()].clone();
            n.name = format!("{}-{i:05}", n.name);
            n
        })
        .collect();
    snap
}

/// Constraints over every kind of measurement path (cluster, node info, agent facts, GPU),
/// as a recipe sets them.
pub fn readiness_constraints(recipe: &Recipe) -> Vec<Constraint> {
    let mut out = recipe.constraints.clone();
    for (name, value) in [
        ("K8s.server.version", ">= 1.32"),
        ("OS.kernel.release", ">= 6.8"),
        ("OS.sysctl.vm.max_map_count", ">= 262144"),
        ("GPU.driver.version", ">= 570"),
    ] {
        if !out.iter().any(|c| c.name == name) {
            out.push(Constraint {
                name: name.into(),
                value: value.into(),
                source: "bench".into(),
            });
        }
    }
    out
}

/// A finished run of `cases` cases spread over four suites: mostly passes, every tenth a
/// failure with an XML-hostile multi-line message, every twentieth skipped, every fiftieth
/// flaky (a failed attempt, then a pass); bandwidth curves for every 400th case.
pub fn run_report(cases: usize) -> RunReport {
    let suites = [
        ("readiness", Phase::Readiness),
        ("deployment", Phase::Deployment),
        ("conformance", Phase::Conformance),
        ("fabric", Phase::Performance),
    ];
    let results = (0..cases)
        .map(|i| {
            let (suite, phase) = suites[i % suites.len()];
            let name = format!("case-{i:05}");
            let spec = Arc::new(CaseSpec {
                id: format!("{suite}/{name}"),
                suite: suite.into(),
                name,
                phase,
                description: format!("synthetic case {i}"),
                params: serde_json::json!({}),
                timeout: Duration::from_secs(60),
                retries: 1,
                flaky: i % 50 == 0,
                needs_namespace: false,
                requirement: None,
            });
            let ms = |n: usize| Duration::from_millis((n % 997) as u64 + 1);
            let attempt = |status, message: String, d| Attempt {
                status,
                message,
                duration: d,
                failure: (status == Status::Failed).then_some(Failure::Timeout),
            };
            let attempts = if i % 50 == 0 {
                vec![
                    attempt(
                        Status::Failed,
                        "timed out <waiting> & retried".into(),
                        ms(i),
                    ),
                    attempt(Status::Passed, String::new(), ms(i + 1)),
                ]
            } else if i % 20 == 0 {
                return CaseResult::not_run(spec, Status::Skipped, "phase not selected");
            } else if i % 10 == 0 {
                vec![attempt(
                    Status::Failed,
                    format!("expected <ready> & \"true\" on node-{i}\nsecond line ]]> end"),
                    ms(i),
                )]
            } else {
                vec![attempt(Status::Passed, format!("ok {i}"), ms(i))]
            };
            CaseResult::from_attempts(spec, attempts)
        })
        .collect();
    // A bandwidth curve and a value for every hundredth performance case.
    let mut metrics = MetricsData::default();
    for i in (3..cases).step_by(400) {
        let case_id = format!("fabric/case-{i:05}");
        metrics.series.push(Series {
            case_id: case_id.clone(),
            name: "all_reduce_perf busbw out-of-place".into(),
            x_label: "message size (B)".into(),
            y_label: "bus bandwidth (GB/s)".into(),
            points: sweep_sizes()
                .into_iter()
                .map(|s| (s as f64, (s as f64).log2() * 10.0))
                .collect(),
            threshold: Some(300.0),
        });
        metrics
            .values
            .entry(case_id)
            .or_default()
            .insert("avgBusBandwidthGBps".into(), 185.25 + i as f64);
    }
    RunReport {
        tool_version: "0.1.0".into(),
        recipe: "bench".into(),
        started_ms: 1_700_000_000_000,
        finished_ms: 1_700_000_600_000,
        results,
        metrics,
        ..RunReport::default()
    }
}

/// Sizes of a `-b 8 -e 16G -f 2` sweep: 8 B to 16 GiB.
pub fn sweep_sizes() -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut s = 8u64;
    while s <= 16 << 30 {
        sizes.push(s);
        s *= 2;
    }
    sizes
}

/// The `all_reduce_perf` output of a 16 GiB sweep over `nodes` nodes of 8 GPUs with
/// `NCCL_DEBUG=INFO`, in the format of `fixtures/nccl/h100-2node-ib-gdr.txt`: the device
/// list, per-rank INFO lines (bootstrap, 32 channels over NET/IB with GDRDMA each way, P2P
/// ring links), the result table and the summary.
pub fn nccl_log(nodes: usize) -> String {
    let ranks = nodes * 8;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# nThread 1 nGpus 1 minBytes 8 maxBytes 17179869184 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0\n#\n# Using devices"
    );
    for r in 0..ranks {
        let (node, dev) = (r / 8, r % 8);
        let _ = writeln!(
            out,
            "#  Rank {r:>2} Group  0 Pid {:>6} on     node-{node:03} device  {dev} [0x{:02x}] NVIDIA H100 80GB HBM3",
            50_000 + r,
            0x18 + dev * 0x11
        );
    }
    let _ = writeln!(out, "NCCL version 2.21.5+cuda12.4");
    for r in 0..ranks {
        let (node, dev) = (r / 8, r % 8);
        let head = format!(
            "node-{node:03}:{}:{} [{dev}] NCCL INFO",
            50_000 + r,
            60_000 + r
        );
        let peer = (r + 8) % ranks;
        let _ = writeln!(out, "{head} Bootstrap : Using eth0:192.0.2.{node}<0>");
        let _ = writeln!(out, "{head} Using network IB");
        let _ = writeln!(
            out,
            "{head} comm 0x55d0c8a0 rank {r} nRanks {ranks} nNodes {nodes} localRanks 8 localRank {dev} MNNVL 0"
        );
        let _ = writeln!(
            out,
            "{head} GPU Direct RDMA Enabled for GPU {dev} / HCA {dev} (distance 4 <= 4), read 1 mode Default"
        );
        for ch in 0..32 {
            let _ = writeln!(
                out,
                "{head} Channel {ch:02}/0 : {peer}[{dev}] -> {r}[{dev}] [receive] via NET/IB/{dev}/GDRDMA"
            );
            let _ = writeln!(
                out,
                "{head} Channel {ch:02}/0 : {r}[{dev}] -> {peer}[{dev}] [send] via NET/IB/{dev}/GDRDMA"
            );
        }
        let next = node * 8 + (dev + 1) % 8;
        let _ = writeln!(
            out,
            "{head} Channel 00/0 : {r}[{dev}] -> {next}[{}] via P2P/CUMEM/read",
            (dev + 1) % 8
        );
        let _ = writeln!(out, "{head} Connected all rings");
        let _ = writeln!(out, "{head} Connected all trees");
    }
    out.push_str("#\n#                                                              out-of-place                       in-place          \n");
    out.push_str("#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong\n");
    out.push_str("#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)       \n");
    let factor = 2.0 * (ranks as f64 - 1.0) / ranks as f64;
    let mut sum = 0.0;
    let sizes = sweep_sizes();
    for &size in &sizes {
        let time_us = 60.0 + size as f64 / 195_000.0;
        let algbw = size as f64 / time_us / 1000.0;
        let busbw = algbw * factor;
        sum += busbw;
        let _ = writeln!(
            out,
            "{size:>12}  {:>12}     float     sum      -1  {time_us:>8.2}  {algbw:>6.2}  {busbw:>6.2}      0  {time_us:>8.2}  {algbw:>6.2}  {busbw:>6.2}      0",
            size / 4
        );
    }
    let _ = writeln!(out, "# Out of bounds values : 0 OK");
    let _ = writeln!(
        out,
        "# Avg bus bandwidth    : {:.4} ",
        sum / sizes.len() as f64
    );
    out.push_str("#\n");
    out
}
