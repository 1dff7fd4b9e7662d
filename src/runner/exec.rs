//! Executing a plan: one libtest-mimic run per phase (so the CLI and the `cargo test`
//! harness share the engine), each trial blocking on a shared tokio runtime. Per-case
//! timeouts, retries for flaky cases, a namespace per case removed whatever happens, phase
//! gating, `--fail-fast` and Ctrl-C handling live here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::audit::{self, AuditLog};
use super::case::{CaseContext, CaseFn, CaseSpec, MetricsSink, Outcome};
use super::namespace;
use super::plan::Plan;
use super::policy;
use super::result::{Attempt, CaseResult, Failure, RunReport, Status};
use crate::conformance::ConformanceRun;
use crate::recipe::Recipe;
use crate::snapshot::model::Snapshot;

/// How long one namespace deletion (or the final sweep) may take before it is reported.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds the implementation of a case by its registered name.
pub type Resolver = Arc<dyn Fn(&str) -> Option<CaseFn> + Send + Sync>;

/// What cases run against.
#[derive(Clone)]
pub struct RunEnv {
    /// `None`: no cluster; cluster cases skip with the reason.
    pub client: Option<kube::Client>,
    pub recipe: Arc<Recipe>,
    pub snapshot: Option<Arc<Snapshot>>,
    pub resolver: Resolver,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Cases run at once within a phase.
    pub parallel: usize,
    /// Run later phases even when readiness or deployment failed.
    pub keep_going: bool,
    /// libtest-mimic arguments (the harness passes the command line's); `None` builds them
    /// from `parallel`.
    pub harness_args: Option<Arguments>,
    /// Stop on Ctrl-C (clean up, mark unfinished cases). Off in unit tests.
    pub handle_ctrl_c: bool,
    /// Phases whose trials are marked ignored: libtest-mimic runs them only with
    /// `--ignored` / `--include-ignored` (the cargo test harness uses this for cluster phases);
    /// cases it does not run are left out of the report.
    pub ignored_phases: Vec<super::case::Phase>,
    /// Write libtest-mimic's per-case progress to this file instead of stdout, and print no
    /// phase headers or summary. In-process tests use it so their own test output carries no
    /// nested `test result:` lines; `validate` so stdout holds only its table or JSON.
    pub console_log: Option<String>,
    /// The AI conformance checklist cases report against. A case whose requirement the
    /// checklist does not list, or that the user declared not applicable, is reported
    /// skipped with that reason and not run. `None`: cases run without a level.
    pub conformance: Option<ConformanceRun>,
    /// Stop the run at the first failed case (later cases are reported skipped), and let
    /// cases that evaluate many nodes stop at the first bad node.
    pub fail_fast: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            parallel: 1,
            keep_going: false,
            harness_args: None,
            handle_ctrl_c: false,
            ignored_phases: Vec::new(),
            console_log: None,
            conformance: None,
            fail_fast: false,
        }
    }
}

/// Stops a run from another thread (what Ctrl-C does).
#[derive(Clone)]
pub struct Interrupter(watch::Sender<bool>);

impl Interrupter {
    pub fn interrupt(&self) {
        self.0.send_replace(true);
    }
}

struct Shared {
    env: RunEnv,
    run_id: String,
    cancel: watch::Receiver<bool>,
    conformance: Option<ConformanceRun>,
    metrics: MetricsSink,
    warnings: Mutex<Vec<String>>,
    fail_fast: bool,
    /// With `fail_fast`: the case whose failure stopped the run.
    stopped_by: Mutex<Option<String>>,
}

impl Shared {
    /// The skip reason of a case not started because `--fail-fast` stopped the run.
    fn stopped(&self) -> Option<String> {
        self.stopped_by
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|id| format!("not run: --fail-fast stopped the run after {id} failed"))
    }
    fn note_result(&self, r: &CaseResult) {
        if self.fail_fast && r.status == Status::Failed {
            self.stopped_by
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| r.spec.id.clone());
        }
    }
    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }
    fn warn(&self, w: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w);
    }
}

/// Runs plans against one environment.
pub struct Runner {
    handle: Handle,
    shared: Arc<Shared>,
    cancel_tx: watch::Sender<bool>,
    opts: RunOptions,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Runner {
    /// `handle` must belong to a multi-threaded runtime that outlives the run; `execute`
    /// must be called outside of it (trials block on it).
    pub fn new(handle: Handle, env: RunEnv, opts: RunOptions) -> Self {
        let (cancel_tx, cancel) = watch::channel(false);
        let run_id = format!("{}-{}", now_ms(), crate::name::random_suffix(6));
        Runner {
            handle,
            shared: Arc::new(Shared {
                env,
                run_id,
                cancel,
                conformance: opts.conformance.clone(),
                metrics: MetricsSink::default(),
                warnings: Mutex::new(Vec::new()),
                fail_fast: opts.fail_fast,
                stopped_by: Mutex::new(None),
            }),
            cancel_tx,
            opts,
        }
    }

    /// Namespaces of this run carry `aiconform.dev/run=<run id>`.
    pub fn run_id(&self) -> &str {
        &self.shared.run_id
    }

    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.cancel_tx.clone())
    }

    fn args(&self) -> Arguments {
        let mut args = self.opts.harness_args.clone().unwrap_or_else(|| Arguments {
            test_threads: Some(self.opts.parallel.max(1)),
            ..Arguments::default()
        });
        if self.opts.console_log.is_some() {
            args.logfile.clone_from(&self.opts.console_log);
        }
        args
    }

    /// Run every case of the plan, phase by phase, and collect the results. Prints
    /// libtest-style progress and a summary line to stdout.
    pub fn execute(&self, plan: &Plan) -> RunReport {
        let started_ms = now_ms();
        let ctrl_c = self.opts.handle_ctrl_c.then(|| {
            let tx = self.cancel_tx.clone();
            self.handle.spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "\ninterrupted: stopping running cases and deleting their namespaces (Ctrl-C again to quit at once)"
                    );
                    tx.send_replace(true);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        eprintln!(
                            "interrupted twice: quitting without cleanup; delete leftovers with kubectl delete ns -l {}={}",
                            namespace::MANAGED_BY_LABEL,
                            namespace::MANAGED_BY
                        );
                        std::process::exit(130);
                    }
                }
            })
        });
        let args = self.args();
        // `--list` output is parsed by tools (cargo nextest): print nothing of our own; with
        // the per-case lines going to a file, neither do the phase headers and summary.
        let chatty = !args.list && self.opts.console_log.is_none();
        let mut results: Vec<CaseResult> = Vec::new();
        let mut gate: Option<String> = None;
        for phase in plan.phases() {
            let cases: Vec<Arc<CaseSpec>> = plan
                .cases
                .iter()
                .filter(|c| c.phase == phase)
                .cloned()
                .collect();
            if let Some(reason) = &gate {
                if chatty {
                    println!("\nskipping {phase} ({} cases): {reason}", cases.len());
                }
                results.extend(
                    cases
                        .into_iter()
                        .map(|c| CaseResult::not_run(c, Status::Skipped, reason.clone())),
                );
                continue;
            }
            if self.shared.cancelled() {
                results.extend(cases.into_iter().map(|c| {
                    CaseResult::not_run(
                        c,
                        Status::Interrupted,
                        "not started: the run was interrupted",
                    )
                }));
                continue;
            }
            if chatty {
                println!("\n== {phase}: {} cases ==", cases.len());
            }
            let store: Arc<Mutex<BTreeMap<String, CaseResult>>> = Arc::default();
            let trials: Vec<Trial> = cases
                .iter()
                .map(|spec| {
                    let spec = spec.clone();
                    let shared = self.shared.clone();
                    let handle = self.handle.clone();
                    let store = store.clone();
                    let ignored = self.opts.ignored_phases.contains(&spec.phase);
                    Trial::ignorable_test(spec.id.clone(), move || {
                        let r = handle.block_on(run_case(shared.clone(), spec));
                        shared.note_result(&r);
                        let completion = completion(&r);
                        store
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(r.spec.id.clone(), r);
                        completion
                    })
                    .with_ignored_flag(ignored)
                })
                .collect();
            let _conclusion = libtest_mimic::run(&args, trials);
            let mut store = std::mem::take(&mut *store.lock().unwrap_or_else(|e| e.into_inner()));
            // Cases the harness filtered out (cargo test filters, --list) have no result.
            let phase_results: Vec<CaseResult> =
                cases.iter().filter_map(|c| store.remove(&c.id)).collect();
            if !self.opts.keep_going {
                let refs: Vec<&CaseResult> = phase_results.iter().collect();
                gate = policy::gate_reason(phase, &refs);
            }
            results.extend(phase_results);
        }
        if let Some(client) = &self.shared.env.client {
            let sweep = self.handle.block_on(async {
                tokio::time::timeout(
                    CLEANUP_TIMEOUT,
                    namespace::sweep(client, &self.shared.run_id),
                )
                .await
            });
            match sweep.unwrap_or_else(|_| Err(kube::Error::Service("timed out".into()))) {
                Ok(left) if !left.is_empty() => self.shared.warn(format!(
                    "deleted namespaces left behind by cases: {}",
                    left.join(", ")
                )),
                Ok(_) => {}
                Err(e) => self.shared.warn(format!(
                    "could not list this run's namespaces (label {}={}) to clean up: {e}; delete them with kubectl delete ns -l {}={}",
                    namespace::RUN_LABEL,
                    self.shared.run_id,
                    namespace::MANAGED_BY_LABEL,
                    namespace::MANAGED_BY
                )),
            }
        }
        if let Some(task) = ctrl_c {
            task.abort();
        }
        let report = RunReport {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: self.shared.run_id.clone(),
            conformance: self.shared.conformance.clone(),
            cluster_version: None,
            recipe: self.shared.env.recipe.metadata.name.clone(),
            started_ms,
            finished_ms: now_ms(),
            results,
            metrics: self.shared.metrics.snapshot(),
            interrupted: self.shared.cancelled(),
            warnings: self
                .shared
                .warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        };
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if chatty {
            println!("\naiconform: {}", report.summary());
        }
        report
    }
}

fn completion(r: &CaseResult) -> Result<Completion, Failed> {
    match r.status {
        Status::Passed => Ok(Completion::Completed),
        Status::Skipped | Status::Interrupted => Ok(Completion::ignored_with(&r.message)),
        Status::Failed => Err(Failed::from(r.message.as_str())),
    }
}

async fn run_case(shared: Arc<Shared>, spec: Arc<CaseSpec>) -> CaseResult {
    if shared.cancelled() {
        return CaseResult::not_run(
            spec,
            Status::Interrupted,
            "not started: the run was interrupted",
        );
    }
    if let Some(reason) = shared.stopped() {
        return CaseResult::not_run(spec, Status::Skipped, reason);
    }
    if let (Some(req), Some(conf)) = (&spec.requirement, &shared.conformance)
        && let Some(reason) = conf.skip_reason(req)
    {
        return CaseResult::not_run(spec, Status::Skipped, reason);
    }
    let Some(f) = (shared.env.resolver)(&spec.name) else {
        let message = format!(
            "no implementation registered for case `{}` (suite `{}`); this build does not provide it — check the suite file or upgrade aiconform",
            spec.name, spec.suite
        );
        return CaseResult::from_attempts(
            spec,
            vec![Attempt::failed(Failure::Error, message, Duration::ZERO)],
        );
    };
    let log = AuditLog::default();
    let mut attempts = Vec::new();
    for n in 1.. {
        let a = run_attempt(&shared, &spec, f, &log).await;
        let status = a.status;
        attempts.push(a);
        if !policy::should_retry(&spec, n, status) || shared.cancelled() {
            break;
        }
    }
    let mut result = CaseResult::from_attempts(spec, attempts);
    (result.writes, result.writes_left_out) = log.take();
    result
}

fn panic_text(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "the case task was cancelled".into();
    }
    let p = e.into_panic();
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

async fn run_attempt(shared: &Shared, spec: &Arc<CaseSpec>, f: CaseFn, log: &AuditLog) -> Attempt {
    let start = Instant::now();
    let mut ns = None;
    if spec.needs_namespace {
        let Some(client) = &shared.env.client else {
            return Attempt::skipped(
                "no cluster target: this case needs a namespace of its own (--kubeconfig or the embedded cluster)",
                start.elapsed(),
            );
        };
        match namespace::create(client, &shared.run_id, &spec.id, &spec.name).await {
            Ok(n) => ns = Some(n),
            Err(e) => {
                return Attempt::failed(
                    Failure::Error,
                    format!("cannot create a namespace for the case: {e}"),
                    start.elapsed(),
                );
            }
        }
    }
    let ctx = CaseContext {
        spec: spec.clone(),
        client: shared
            .env
            .client
            .clone()
            .map(|c| audit::audited(c, log.clone())),
        recipe: shared.env.recipe.clone(),
        snapshot: shared.env.snapshot.clone(),
        namespace: ns.clone(),
        metrics: shared.metrics.clone(),
        fail_fast: shared.fail_fast,
    };
    let mut task = tokio::spawn(f(ctx));
    let mut cancel = shared.cancel.clone();
    let cancelled = async move {
        if cancel.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut attempt = tokio::select! {
        r = tokio::time::timeout(spec.timeout, &mut task) => match r {
            Err(_) => {
                task.abort();
                Attempt::failed(Failure::Timeout, policy::timeout_message(spec.timeout), Duration::ZERO)
            }
            Ok(Ok(Ok(o))) => Attempt::from_outcome(&o, Duration::ZERO),
            Ok(Ok(Err(e))) => Attempt::failed(Failure::Error, format!("error: {e:#}"), Duration::ZERO),
            Ok(Err(e)) => Attempt::failed(
                Failure::Panic,
                format!("the case panicked: {}", panic_text(e)),
                Duration::ZERO,
            ),
        },
        () = cancelled => {
            task.abort();
            Attempt {
                status: Status::Interrupted,
                message: "interrupted while running (Ctrl-C)".to_string(),
                duration: Duration::ZERO,
                failure: None,
            }
        }
    };
    if let (Some(name), Some(client)) = (&ns, &shared.env.client)
        && let Err(e) = tokio::time::timeout(CLEANUP_TIMEOUT, namespace::delete(client, name))
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())))
    {
        shared.warn(format!(
            "could not delete namespace {name} of {}: {e}",
            spec.id
        ));
    }
    attempt.duration = start.elapsed();
    attempt
}

/// Outcome helper for tests and cases: [`Outcome`] into a status.
pub fn status_of(o: &Outcome) -> Status {
    Attempt::from_outcome(o, Duration::ZERO).status
}
