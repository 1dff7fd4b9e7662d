//! The benchmarks' inputs (`benches/support`) are what the benches claim to measure: this
//! runs each bench's setup once, small where size does not change the shape, so a broken
//! setup fails `cargo test` rather than the next `cargo bench`.

#[path = "../benches/support/mod.rs"]
mod support;

use aiconform::bundle::{self, BundleOptions};
use aiconform::readiness::{self, Status};
use aiconform::recipe::{compose, query};
use aiconform::report;
use aiconform::suites::nccl;

#[test]
fn recipe_engine_inputs_compose_and_query() {
    let catalog = support::builtin_catalog();
    let mut names = Vec::new();
    for (name, pins) in support::CRITERIA_SETS {
        let recipe = compose(&catalog, &support::criteria(pins)).unwrap();
        assert_eq!(recipe.metadata.name, name);
        names.push(recipe.metadata.applied_overlays.len());
    }
    // From generic to fully pinned, each set applies more overlays than the one before.
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    let recipe = support::largest_recipe(&catalog);
    let v = query::select(&recipe, support::QUERY_SELECTOR).unwrap();
    assert!(v.is_string(), "{v}");
}

#[test]
fn bundle_input_renders() {
    let recipe = support::largest_recipe(&support::builtin_catalog());
    let b = bundle::render(&recipe, &BundleOptions::default()).unwrap();
    assert!(
        b.files.len() > 2 * recipe.components.len(),
        "{}",
        b.files.len()
    );
}

#[test]
fn readiness_snapshot_scales_every_node_kind() {
    let snap = support::snapshot(support::SNAPSHOT_NODES);
    assert_eq!(snap.cluster.nodes.len(), support::SNAPSHOT_NODES);
    let names: std::collections::BTreeSet<&str> =
        snap.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names.len(),
        support::SNAPSHOT_NODES,
        "node names are unique"
    );

    let recipe = support::largest_recipe(&support::builtin_catalog());
    let constraints = support::readiness_constraints(&recipe);
    let small = readiness::evaluate_snapshot(&constraints, &support::snapshot(30));
    let kernel = small
        .results
        .iter()
        .find(|r| r.constraint == "OS.kernel.release")
        .unwrap();
    assert_eq!(kernel.actual.len(), 30, "one kernel value per node");
    // The CPU node's low value fails it, and the agent-less nodes are named as lacking it.
    let sysctl = small
        .results
        .iter()
        .find(|r| r.constraint == "OS.sysctl.vm.max_map_count")
        .unwrap();
    assert_eq!(sysctl.status, Status::Fail, "{sysctl:?}");
    let detail = sysctl.detail.as_deref().unwrap();
    assert!(
        detail.contains("`65530` is not >= 262144 (node/system-00002, node/system-00005"),
        "{detail}"
    );
    assert!(
        detail.contains("no value from node/gpu-b-00001, node/gpu-b-00004"),
        "{detail}"
    );
}

#[test]
fn report_run_has_every_outcome_and_renders() {
    let run = support::run_report(support::REPORT_CASES);
    assert_eq!(run.results.len(), support::REPORT_CASES);
    let s = run.summary();
    assert!(
        s.passed > 0 && s.failed > 0 && s.skipped > 0 && s.flaky > 0,
        "{s:?}"
    );
    let small = support::run_report(200);
    let junit = report::junit::render(&small).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 200);
    let ctrf: serde_json::Value =
        serde_json::from_str(&report::ctrf::render(&small).unwrap()).unwrap();
    assert_eq!(ctrf["results"]["tests"].as_array().unwrap().len(), 200);
    assert!(report::html::render(&small).contains("case-00199"));
}

#[test]
fn nccl_log_is_a_complete_16g_sweep_with_info_lines() {
    let log = support::nccl_log(8);
    let parsed = nccl::parse(&log);
    assert_eq!(parsed.runs.len(), 1);
    let run = &parsed.runs[0];
    assert!(run.complete(), "{:?}", run.malformed);
    assert!(run.malformed.is_empty(), "{:?}", run.malformed);
    assert_eq!(run.ranks, 64);
    assert_eq!(run.hosts.len(), 8);
    assert_eq!(run.rows.len(), support::sweep_sizes().len());
    assert_eq!(run.rows.last().map(|r| r.size_bytes), Some(16 << 30));
    assert!(
        parsed.transport.info_lines > 64 * 64,
        "{}",
        parsed.transport.info_lines
    );
}
