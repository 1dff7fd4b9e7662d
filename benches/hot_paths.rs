//! Criterion benchmarks of the hot paths: `cargo bench --bench hot_paths [-- FILTER]`.
//!
//! Recipe engine (catalog load, composition of four criteria sets, query), bundle rendering
//! in memory, readiness of a 10,000-node snapshot, JUnit + CTRF + HTML reports of 10,000
//! cases, and parsing a 16 GiB nccl-tests sweep with `NCCL_DEBUG=INFO` lines. Inputs come
//! from `benches/support` (checked by `tests/bench_setup.rs`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use aiconform::bundle::{self, BundleOptions};
use aiconform::readiness;
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, compose, query};
use aiconform::report;
use aiconform::suites::nccl;

mod support;

fn recipe_engine(c: &mut Criterion) {
    c.bench_function("catalog/load-builtin", |b| {
        b.iter(|| Catalog::load(black_box(RecipeFiles::builtin())).expect("catalog"))
    });
    let catalog = support::builtin_catalog();
    let mut group = c.benchmark_group("compose");
    for (name, pins) in support::CRITERIA_SETS {
        let criteria = support::criteria(pins);
        group.bench_function(name, |b| {
            b.iter(|| compose(&catalog, black_box(&criteria)).expect("compose"))
        });
    }
    group.finish();
    let recipe = support::largest_recipe(&catalog);
    c.bench_function("query/gpu-operator-driver-version", |b| {
        b.iter(|| query::select(&recipe, black_box(support::QUERY_SELECTOR)).expect("query"))
    });
}

fn bundle_render(c: &mut Criterion) {
    let catalog = support::builtin_catalog();
    let recipe = support::largest_recipe(&catalog);
    let opts = BundleOptions::default();
    c.bench_function("bundle/render-in-memory", |b| {
        b.iter(|| bundle::render(black_box(&recipe), &opts).expect("render"))
    });
}

fn readiness_10k(c: &mut Criterion) {
    let catalog = support::builtin_catalog();
    let constraints = support::readiness_constraints(&support::largest_recipe(&catalog));
    let snapshot = support::snapshot(support::SNAPSHOT_NODES);
    let mut group = c.benchmark_group("readiness");
    group.throughput(Throughput::Elements(support::SNAPSHOT_NODES as u64));
    group.sample_size(20);
    group.bench_function("evaluate-10k-nodes", |b| {
        b.iter(|| readiness::evaluate_snapshot(&constraints, black_box(&snapshot)))
    });
    group.finish();
}

fn reports_10k(c: &mut Criterion) {
    let run = support::run_report(support::REPORT_CASES);
    let mut group = c.benchmark_group("reports-10k-cases");
    group.throughput(Throughput::Elements(support::REPORT_CASES as u64));
    group.sample_size(20);
    group.bench_function("junit", |b| {
        b.iter(|| report::junit::render(black_box(&run)).expect("junit"))
    });
    group.bench_function("ctrf", |b| {
        b.iter(|| report::ctrf::render(black_box(&run)).expect("ctrf"))
    });
    group.bench_function("html", |b| b.iter(|| report::html::render(black_box(&run))));
    group.bench_function("write-all", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                report::write_all(dir.path(), black_box(&run)).expect("write");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn nccl_parse(c: &mut Criterion) {
    let log = support::nccl_log(8);
    let mut group = c.benchmark_group("nccl");
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.bench_function("parse-16g-sweep-64-ranks-info", |b| {
        b.iter(|| nccl::parse(black_box(&log)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = recipe_engine, bundle_render, readiness_10k, reports_10k, nccl_parse
}
criterion_main!(benches);
