//! The runner end to end with stub cases: timeouts, retries of flaky cases, errors and
//! panics, phase gating, interruption, and per-case namespaces on the embedded cluster
//! (created, labelled, deleted after pass, failure and timeout).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

use aiconform::cluster::testing::shared_or_skip;
use aiconform::recipe::Recipe;
use aiconform::recipe::model::{Component, ComponentType, RecipeMetadata};
use aiconform::runner::namespace::{CASE_LABEL, MANAGED_BY, MANAGED_BY_LABEL, RUN_LABEL};
use aiconform::runner::{
    CaseContext, CaseFn, CaseOutcome, EventSink, Interrupter, Outcome, RunEnv, RunEvent,
    RunOptions, RunReport, Runner, Selection, Status, SuiteSet, plan,
};

type CaseFuture = BoxFuture<'static, anyhow::Result<Outcome>>;

fn recipe() -> Recipe {
    let comp = |name: &str| Component {
        name: name.into(),
        component_type: ComponentType::Helm,
        source: None,
        chart: None,
        version: "v1".into(),
        namespace: name.into(),
        dependency_refs: vec![],
        health_checks: vec![],
        overlays: vec![],
        values: serde_json::json!({}),
        manifests: vec![],
    };
    Recipe {
        api_version: "aiconform.dev/v1alpha1".into(),
        kind: "Recipe".into(),
        metadata: RecipeMetadata {
            name: "runner-test".into(),
            tool_version: "0.1.0".into(),
            applied_overlays: vec![],
            value_count: 0,
            ..Default::default()
        },
        criteria: Default::default(),
        constraints: vec![],
        deployment_order: vec!["alpha".into(), "beta".into()],
        components: vec![comp("alpha"), comp("beta")],
        validation: serde_json::Value::Null,
    }
}

// ---- stub cases -------------------------------------------------------------------------

fn pass(_: CaseContext) -> CaseFuture {
    async { Ok(Outcome::passed("fine")) }.boxed()
}
fn fail(_: CaseContext) -> CaseFuture {
    async { Ok(Outcome::failed("wrong answer")) }.boxed()
}
fn skip(_: CaseContext) -> CaseFuture {
    async { Ok(Outcome::skipped("not on this target")) }.boxed()
}
fn error(_: CaseContext) -> CaseFuture {
    async { Err(anyhow::anyhow!("API said no")) }.boxed()
}
fn panics(_: CaseContext) -> CaseFuture {
    async { panic!("bug in case") }.boxed()
}
fn hang(_: CaseContext) -> CaseFuture {
    async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Outcome::passed("never"))
    }
    .boxed()
}
/// Fails unless `params.component` is `beta` (per-component expansion).
fn only_beta(ctx: CaseContext) -> CaseFuture {
    async move {
        Ok(match ctx.param::<String>("component")?.as_deref() {
            Some("beta") => Outcome::passed("beta"),
            other => Outcome::failed(format!("component {other:?}")),
        })
    }
    .boxed()
}

/// Fails on the first call counted by `calls`, passes after.
fn fails_first(calls: &'static AtomicU32) -> CaseFuture {
    async {
        Ok(if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Outcome::failed("first attempt fails")
        } else {
            Outcome::passed("second attempt passes")
        })
    }
    .boxed()
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);
fn flaky_once(_: CaseContext) -> CaseFuture {
    fails_first(&FLAKY_CALLS)
}

static ALWAYS_CALLS: AtomicU32 = AtomicU32::new(0);
fn flaky_always(_: CaseContext) -> CaseFuture {
    async {
        ALWAYS_CALLS.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::failed("still broken"))
    }
    .boxed()
}

static INTERRUPTER: OnceLock<Interrupter> = OnceLock::new();
/// Interrupts the run, then waits to be cancelled.
fn interrupt(_: CaseContext) -> CaseFuture {
    async {
        if let Some(i) = INTERRUPTER.get() {
            i.interrupt();
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Outcome::passed("never"))
    }
    .boxed()
}

/// Namespaces handed to cluster cases, by case id.
static SEEN: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
fn record(ctx: &CaseContext) {
    if let Some(ns) = &ctx.namespace {
        SEEN.lock().unwrap().push((ctx.spec.id.clone(), ns.clone()));
    }
}
/// Checks its namespace exists, then passes / fails / hangs.
fn ns_pass(ctx: CaseContext) -> CaseFuture {
    async move {
        record(&ctx);
        let api: Api<Namespace> = Api::all(ctx.client.clone().unwrap());
        let ns = api.get(ctx.namespace.as_deref().unwrap()).await?;
        Ok(Outcome::passed(format!(
            "namespace {}",
            ns.metadata.name.unwrap()
        )))
    }
    .boxed()
}
fn ns_fail(ctx: CaseContext) -> CaseFuture {
    async move {
        record(&ctx);
        Ok(Outcome::failed("failing in my namespace"))
    }
    .boxed()
}
fn ns_hang(ctx: CaseContext) -> CaseFuture {
    async move {
        record(&ctx);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(Outcome::passed("never"))
    }
    .boxed()
}

/// As `flaky_once`, counted apart (for the event test alone).
static RETRIED_CALLS: AtomicU32 = AtomicU32::new(0);
fn retried(_: CaseContext) -> CaseFuture {
    fails_first(&RETRIED_CALLS)
}

fn resolve(name: &str) -> Option<CaseFn> {
    Some(match name {
        "retried" => retried,
        "pass" => pass,
        "fail" => fail,
        "skip" => skip,
        "error" => error,
        "panics" => panics,
        "hang" => hang,
        "only-beta" => only_beta,
        "flaky-once" => flaky_once,
        "flaky-always" => flaky_always,
        "interrupt" => interrupt,
        "ns-pass" => ns_pass,
        "ns-fail" => ns_fail,
        "ns-hang" => ns_hang,
        _ => return None,
    })
}

// ---- helpers ----------------------------------------------------------------------------

fn suites(files: &[(&str, &str)]) -> SuiteSet {
    SuiteSet::from_texts(
        &files
            .iter()
            .map(|(n, t)| (format!("suites/{n}.yaml"), t.to_string()))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn run_with(
    set: &SuiteSet,
    sel: &Selection,
    client: Option<kube::Client>,
    opts: RunOptions,
    interrupter: Option<&OnceLock<Interrupter>>,
    rt: &tokio::runtime::Runtime,
) -> RunReport {
    run_into(set, sel, client, opts, interrupter, rt, &())
}

fn run_into(
    set: &SuiteSet,
    sel: &Selection,
    client: Option<kube::Client>,
    opts: RunOptions,
    interrupter: Option<&OnceLock<Interrupter>>,
    rt: &tokio::runtime::Runtime,
    sink: &dyn EventSink,
) -> RunReport {
    let p = plan(set, &recipe(), sel).unwrap();
    let env = RunEnv {
        client,
        cluster_version: None,
        recipe: Arc::new(recipe()),
        snapshot: None,
        resolver: Arc::new(resolve),
    };
    let runner = Runner::new(rt.handle().clone(), env, opts);
    if let Some(cell) = interrupter {
        let _ = cell.set(runner.interrupter());
    }
    runner.execute(&p, sink)
}

/// Each event as one short line, slow reports of a case counted once.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventSink for Recorder {
    fn event(&self, e: &RunEvent<'_>) {
        let line = match e {
            RunEvent::RunStarted { cases, .. } => format!("run started: {cases} cases"),
            RunEvent::PhaseStarted { phase, cases } => format!("{phase} started: {}", cases.len()),
            RunEvent::PhaseSkipped { phase, reason, .. } => {
                format!("{phase} skipped: {}", reason.split(';').next().unwrap())
            }
            RunEvent::CaseStarted { spec } => format!("{} started", spec.id),
            RunEvent::CaseSlow { spec, .. } => format!("{} slow", spec.id),
            RunEvent::CaseRetrying {
                spec, attempt, of, ..
            } => format!("{} retrying {attempt} of {of}", spec.id),
            RunEvent::CaseFinished { result } => {
                let outcome = match result.outcome() {
                    CaseOutcome::Skip { .. } => "Skip".to_string(),
                    o => format!("{o:?}"),
                };
                format!("{} finished: {outcome}", result.spec.id)
            }
            RunEvent::PhaseFinished { phase, results, .. } => {
                format!("{phase} finished: {}", results.len())
            }
            RunEvent::Warning { message } => format!("warning: {message}"),
            RunEvent::RunFinished { report } => format!("run finished: {}", report.summary()),
        };
        let mut lines = self.0.lock().unwrap();
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }
}

fn run(set: &SuiteSet, opts: RunOptions) -> RunReport {
    let rt = tokio::runtime::Runtime::new().unwrap();
    run_with(set, &Selection::default(), None, opts, None, &rt)
}

fn status(report: &RunReport, id: &str) -> (Status, String) {
    let r = report
        .results
        .iter()
        .find(|r| r.spec.id == id)
        .unwrap_or_else(|| panic!("no result for {id}"));
    (r.status, r.message.clone())
}

// ---- tests without a cluster --------------------------------------------------------------

#[test]
fn outcomes_errors_panics_and_missing_implementations() {
    let set = suites(&[(
        "demo",
        "name: demo\nphase: conformance\ncases:\n  - name: a\n    implementation: pass\n  - name: b\n    implementation: fail\n  - name: c\n    implementation: skip\n  - name: d\n    implementation: error\n  - name: e\n    implementation: panics\n  - name: f\n    implementation: not-there\n",
    )]);
    let report = run(&set, RunOptions::default());
    assert_eq!(status(&report, "demo/a").0, Status::Passed);
    assert_eq!(
        status(&report, "demo/b"),
        (Status::Failed, "wrong answer".into())
    );
    assert_eq!(
        status(&report, "demo/c"),
        (Status::Skipped, "not on this target".into())
    );
    assert_eq!(
        status(&report, "demo/d"),
        (Status::Failed, "error: API said no".into())
    );
    let (s, m) = status(&report, "demo/e");
    assert_eq!(s, Status::Failed);
    assert!(m.contains("panicked: bug in case"), "{m}");
    let (s, m) = status(&report, "demo/f");
    assert_eq!(s, Status::Failed);
    assert!(
        m.contains("no implementation registered for case `not-there`"),
        "{m}"
    );
    let sum = report.summary();
    assert_eq!((sum.passed, sum.failed, sum.skipped), (1, 4, 1));
    assert_eq!(sum.to_string(), "1 passed, 4 failed, 1 skipped");
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        report
            .results
            .iter()
            .map(|r| r.spec.id.as_str())
            .collect::<Vec<_>>(),
        ["demo/a", "demo/b", "demo/c", "demo/d", "demo/e", "demo/f"],
        "results in plan order"
    );
}

#[test]
fn a_wrongly_typed_parameter_fails_naming_it() {
    let set = suites(&[(
        "typed",
        "name: typed\nphase: conformance\ncases:\n  - name: list\n    implementation: only-beta\n    params: {component: [beta]}\n  - name: absent\n    implementation: only-beta\n    params: {component: null}\n",
    )]);
    let report = run(&set, RunOptions::default());
    let (s, m) = status(&report, "typed/list");
    assert_eq!(s, Status::Failed);
    assert!(
        m.contains("case typed/list: parameter `component` = [\"beta\"]: invalid type: sequence, expected a string"),
        "{m}"
    );
    // null reads as absent: the case runs with its default.
    assert_eq!(
        status(&report, "typed/absent"),
        (Status::Failed, "component None".into())
    );
}

#[test]
fn timeout_fails_with_the_limit_named() {
    let set = suites(&[(
        "slow",
        "name: slow\nphase: conformance\ncases:\n  - name: stuck\n    implementation: hang\n    timeout: 1s\n  - name: after\n    implementation: pass\n",
    )]);
    let started = std::time::Instant::now();
    let report = run(&set, RunOptions::default());
    assert!(started.elapsed() < Duration::from_secs(30));
    let (s, m) = status(&report, "slow/stuck");
    assert_eq!(s, Status::Failed);
    assert!(m.starts_with("timed out after 1s"), "{m}");
    assert_eq!(
        status(&report, "slow/after").0,
        Status::Passed,
        "the run goes on"
    );
}

#[test]
fn flaky_cases_are_retried_and_marked() {
    let set = suites(&[(
        "flaky",
        "name: flaky\nphase: conformance\ncases:\n  - name: once\n    implementation: flaky-once\n    flaky: true\n    retries: 2\n  - name: always\n    implementation: flaky-always\n    flaky: true\n    retries: 2\n",
    )]);
    let report = run(&set, RunOptions::default());
    let once = report
        .results
        .iter()
        .find(|r| r.spec.id == "flaky/once")
        .unwrap();
    assert_eq!(once.status, Status::Passed);
    assert!(once.is_flaky());
    assert_eq!(once.attempts.len(), 2, "no third attempt after a pass");
    assert!(
        once.message.starts_with("flaky: passed on attempt 2"),
        "{}",
        once.message
    );
    let always = report
        .results
        .iter()
        .find(|r| r.spec.id == "flaky/always")
        .unwrap();
    assert_eq!(always.status, Status::Failed);
    assert_eq!(
        ALWAYS_CALLS.load(Ordering::SeqCst),
        3,
        "1 + retries attempts"
    );
    assert_eq!(report.summary().flaky, 1);
    assert_eq!(
        report.summary().to_string(),
        "1 passed, 1 failed, 0 skipped (1 flaky)"
    );
}

const GATED: &[(&str, &str)] = &[
    (
        "deploy",
        "name: deploy\nphase: deployment\ncases:\n  - name: health\n    implementation: only-beta\n    expand: perComponent\n",
    ),
    (
        "conf",
        "name: conf\nphase: conformance\ncases:\n  - name: x\n    implementation: pass\n",
    ),
];

#[test]
fn deployment_failure_skips_later_phases_unless_keep_going() {
    let set = suites(GATED);
    let report = run(&set, RunOptions::default());
    assert_eq!(status(&report, "deploy/alpha").0, Status::Failed);
    assert_eq!(status(&report, "deploy/beta").0, Status::Passed);
    let (s, m) = status(&report, "conf/x");
    assert_eq!(s, Status::Skipped);
    assert!(
        m.starts_with("deployment phase failed: deploy/alpha;") && m.contains("--keep-going"),
        "{m}"
    );
    assert!(report.results[2].attempts.is_empty(), "never ran");

    let report = run(
        &set,
        RunOptions {
            keep_going: true,
            ..Default::default()
        },
    );
    assert_eq!(status(&report, "conf/x").0, Status::Passed);
}

#[test]
fn parallel_cases_all_run() {
    let set = suites(&[(
        "par",
        "name: par\nphase: conformance\ncases:\n  - name: a\n    implementation: pass\n  - name: b\n    implementation: pass\n  - name: c\n    implementation: fail\n  - name: d\n    implementation: pass\n",
    )]);
    let report = run(
        &set,
        RunOptions {
            parallel: 3,
            ..Default::default()
        },
    );
    assert_eq!(
        report
            .results
            .iter()
            .map(|r| r.spec.id.as_str())
            .collect::<Vec<_>>(),
        ["par/a", "par/b", "par/c", "par/d"],
        "plan order whatever the completion order"
    );
    assert_eq!(report.summary().passed, 3);
}

#[test]
fn interruption_marks_unfinished_cases_and_exits_130() {
    let set = suites(&[
        (
            "first",
            "name: first\nphase: conformance\ncases:\n  - name: ok\n    implementation: pass\n  - name: stop\n    implementation: interrupt\n  - name: later\n    implementation: pass\n",
        ),
        (
            "perf",
            "name: perf\nphase: performance\ncases:\n  - name: p\n    implementation: pass\n",
        ),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = run_with(
        &set,
        &Selection::default(),
        None,
        RunOptions::default(),
        Some(&INTERRUPTER),
        &rt,
    );
    assert!(report.interrupted);
    assert_eq!(report.exit_code(), 130);
    assert_eq!(status(&report, "first/ok").0, Status::Passed);
    assert_eq!(
        status(&report, "first/stop"),
        (
            Status::Interrupted,
            "interrupted while running (Ctrl-C)".into()
        )
    );
    for id in ["first/later", "perf/p"] {
        let (s, m) = status(&report, id);
        assert_eq!(s, Status::Interrupted, "{id}");
        assert!(m.starts_with("not started"), "{id}: {m}");
    }
    assert_eq!(
        report.results.len(),
        4,
        "every planned case is in the report"
    );
    assert!(report.summary().to_string().ends_with(", 3 interrupted"));
}

#[test]
fn needs_namespace_without_cluster_skips_with_reason() {
    let set = suites(&[(
        "ns",
        "name: ns\nphase: conformance\ncases:\n  - name: a\n    implementation: ns-pass\n    needsNamespace: true\n",
    )]);
    let report = run(&set, RunOptions::default());
    let (s, m) = status(&report, "ns/a");
    assert_eq!(s, Status::Skipped);
    assert!(m.contains("no cluster target"), "{m}");
}

// ---- on the embedded cluster ------------------------------------------------------------

#[test]
fn namespaces_are_created_labelled_and_deleted_after_pass_fail_and_timeout() {
    let Some(cluster) = shared_or_skip("namespaces_are_created_labelled_and_deleted") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt
        .block_on(aiconform::cluster::connect(Some(&cluster.kubeconfig)))
        .unwrap();
    let set = suites(&[(
        "nscases",
        "name: nscases\nphase: conformance\ncases:\n  - name: passes\n    implementation: ns-pass\n    needsNamespace: true\n  - name: fails\n    implementation: ns-fail\n    needsNamespace: true\n  - name: times-out\n    implementation: ns-hang\n    needsNamespace: true\n    timeout: 2s\n",
    )]);
    let report = run_with(
        &set,
        &Selection::default(),
        Some(client.clone()),
        RunOptions::default(),
        None,
        &rt,
    );
    assert_eq!(
        status(&report, "nscases/passes").0,
        Status::Passed,
        "{:?}",
        report.results
    );
    assert_eq!(status(&report, "nscases/fails").0, Status::Failed);
    assert!(
        status(&report, "nscases/times-out")
            .1
            .starts_with("timed out after 2s")
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let seen: Vec<(String, String)> = SEEN
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| id.starts_with("nscases/"))
        .cloned()
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let api: Api<Namespace> = Api::all(client);
    for (id, ns) in seen {
        let leaf = id.rsplit('/').next().unwrap();
        assert!(ns.starts_with(&format!("aiconform-{leaf}-")), "{ns}");
        // Deleted: gone, or terminating with the run's labels.
        if let Some(obj) = rt.block_on(api.get_opt(&ns)).unwrap() {
            assert!(
                obj.metadata.deletion_timestamp.is_some(),
                "namespace {ns} of {id} was not deleted"
            );
            let labels = obj.metadata.labels.unwrap();
            assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
            assert!(labels.contains_key(RUN_LABEL));
            assert_eq!(labels[CASE_LABEL], format!("nscases_{leaf}"));
        }
    }
}

#[test]
fn fail_fast_stops_the_run_at_the_first_failure() {
    let set = suites(&[
        (
            "first",
            "name: first\nphase: conformance\ncases:\n  - name: a\n    implementation: pass\n  - name: b\n    implementation: fail\n  - name: c\n    implementation: pass\n",
        ),
        (
            "later",
            "name: later\nphase: performance\ncases:\n  - name: d\n    implementation: pass\n",
        ),
    ]);
    let report = run(
        &set,
        RunOptions {
            fail_fast: true,
            ..Default::default()
        },
    );
    assert_eq!(status(&report, "first/a").0, Status::Passed);
    assert_eq!(status(&report, "first/b").0, Status::Failed);
    for id in ["first/c", "later/d"] {
        let (s, m) = status(&report, id);
        assert_eq!(s, Status::Skipped, "{id}");
        assert_eq!(
            m,
            "not run: --fail-fast stopped the run after first/b failed"
        );
    }
    // Without it every case runs.
    let report = run(&set, RunOptions::default());
    assert_eq!(status(&report, "later/d").0, Status::Passed);
}

#[test]
fn events_tell_the_run_in_order_with_typed_outcomes() {
    let set = suites(&[
        (
            "dep",
            "name: dep\nphase: deployment\ncases:\n  - name: retried\n    implementation: retried\n    flaky: true\n    retries: 1\n  - name: slow\n    implementation: hang\n    timeout: 1s\n",
        ),
        (
            "conf",
            "name: conf\nphase: conformance\ncases:\n  - name: error\n    implementation: error\n  - name: panic\n    implementation: panics\n  - name: fail\n    implementation: fail\n",
        ),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = |opts: RunOptions| {
        let recorder = Recorder::default();
        let report = run_into(
            &set,
            &Selection::default(),
            None,
            opts,
            None,
            &rt,
            &recorder,
        );
        (report, recorder.0.into_inner().unwrap())
    };
    let slow = RunOptions {
        slow_after: Duration::from_millis(300),
        ..RunOptions::default()
    };
    let (report, lines) = events(slow.clone());
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        lines,
        [
            "run started: 5 cases",
            "deployment started: 2",
            "dep/retried started",
            "dep/retried retrying 1 of 2",
            "dep/retried finished: Pass",
            "dep/slow started",
            "dep/slow slow",
            "dep/slow finished: Timeout",
            "deployment finished: 2",
            "conformance skipped: deployment phase failed: dep/slow",
            "conf/error finished: Skip",
            "conf/panic finished: Skip",
            "conf/fail finished: Skip",
            "run finished: 1 passed, 1 failed, 3 skipped (1 flaky)",
        ]
    );
    let (_, lines) = events(RunOptions {
        keep_going: true,
        ..slow
    });
    let conformance: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("conf/") && l.contains("finished"))
        .collect();
    assert_eq!(
        conformance,
        [
            "conf/error finished: Error",
            "conf/panic finished: Panic",
            "conf/fail finished: Fail",
        ]
    );
}
