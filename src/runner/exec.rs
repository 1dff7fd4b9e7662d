//! Executing a plan: phase by phase, the cases of a phase run concurrently (up to
//! `parallel`) on a shared tokio runtime. Per-case timeouts, retries for flaky cases, a
//! namespace per case removed whatever happens, phase gating and `--fail-fast` live here.
//! What happens is told to an [`EventSink`] as it happens; the caller prints, writes
//! reports, owns Ctrl-C (through an [`Interrupter`]) and the exit code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::audit::{self, AuditLog};
use super::case::{CaseContext, CaseFn, CaseSpec, MetricsSink, Outcome};
use super::event::{EventSink, RunEvent};
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
    /// The cluster's Kubernetes version (`gitVersion`), recorded in the reports.
    pub cluster_version: Option<String>,
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
    /// The AI conformance checklist cases report against. A case whose requirement the
    /// checklist does not list, or that the user declared not applicable, is reported
    /// skipped with that reason and not run. `None`: cases run without a level.
    pub conformance: Option<ConformanceRun>,
    /// Stop the run at the first failed case (later cases are reported skipped), and let
    /// cases that evaluate many nodes stop at the first bad node.
    pub fail_fast: bool,
    /// An attempt running this long is reported slow ([`RunEvent::CaseSlow`]), and again
    /// each time as long again has passed.
    pub slow_after: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            parallel: 1,
            keep_going: false,
            conformance: None,
            fail_fast: false,
            slow_after: Duration::from_secs(60),
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

const NOT_STARTED: &str = "not started: the run was interrupted";

impl Runner {
    /// `handle` must belong to a multi-threaded runtime that outlives the run; `execute`
    /// must be called outside of it (it blocks on it).
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

    /// Stops this run from another thread or task: running cases are cancelled and their
    /// namespaces deleted, cases not started are reported interrupted.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.cancel_tx.clone())
    }

    /// Run every case of the plan, phase by phase, telling `sink` what happens, and
    /// return the results.
    pub fn execute(&self, plan: &Plan, sink: &dyn EventSink) -> RunReport {
        let started_ms = now_ms();
        sink.event(&RunEvent::RunStarted {
            run_id: &self.shared.run_id,
            cases: plan.cases.len(),
        });
        let mut results: Vec<CaseResult> = Vec::new();
        let mut gate: Option<String> = None;
        for phase in plan.phases() {
            let cases: Vec<Arc<CaseSpec>> = plan
                .cases
                .iter()
                .filter(|c| c.phase == phase)
                .cloned()
                .collect();
            let not_run = match &gate {
                Some(reason) => Some((Status::Skipped, reason.clone())),
                None if self.shared.cancelled() => {
                    Some((Status::Interrupted, NOT_STARTED.to_string()))
                }
                None => None,
            };
            if let Some((status, reason)) = not_run {
                sink.event(&RunEvent::PhaseSkipped {
                    phase,
                    cases: cases.len(),
                    reason: &reason,
                });
                for c in cases {
                    let r = CaseResult::not_run(c, status, reason.clone());
                    sink.event(&RunEvent::CaseFinished { result: &r });
                    results.push(r);
                }
                continue;
            }
            sink.event(&RunEvent::PhaseStarted {
                phase,
                cases: &cases,
            });
            let started = Instant::now();
            let phase_results = self.run_phase(&cases, sink);
            sink.event(&RunEvent::PhaseFinished {
                phase,
                results: &phase_results,
                elapsed: started.elapsed(),
            });
            if !self.opts.keep_going {
                let refs: Vec<&CaseResult> = phase_results.iter().collect();
                gate = policy::gate_reason(phase, &refs);
            }
            results.extend(phase_results);
        }
        self.sweep();
        let warnings = self
            .shared
            .warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for w in &warnings {
            sink.event(&RunEvent::Warning { message: w });
        }
        let report = RunReport {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            run_id: self.shared.run_id.clone(),
            conformance: self.shared.conformance.clone(),
            cluster_version: self.shared.env.cluster_version.clone(),
            recipe: self.shared.env.recipe.metadata.name.clone(),
            started_ms,
            finished_ms: now_ms(),
            results,
            metrics: self.shared.metrics.snapshot(),
            interrupted: self.shared.cancelled(),
            warnings,
        };
        sink.event(&RunEvent::RunFinished { report: &report });
        report
    }

    /// The cases of one phase, up to `parallel` at once, results in plan order.
    fn run_phase(&self, cases: &[Arc<CaseSpec>], sink: &dyn EventSink) -> Vec<CaseResult> {
        let slow_after = self.opts.slow_after;
        let runs = futures::stream::iter(cases.iter().cloned())
            .map(|spec| run_case(&self.shared, spec, sink, slow_after))
            .buffer_unordered(self.opts.parallel.max(1));
        let mut done: BTreeMap<String, CaseResult> = self.handle.block_on(
            runs.map(|r| {
                self.shared.note_result(&r);
                sink.event(&RunEvent::CaseFinished { result: &r });
                (r.spec.id.clone(), r)
            })
            .collect(),
        );
        cases.iter().filter_map(|c| done.remove(&c.id)).collect()
    }

    /// Delete whatever namespaces of this run are left, warning about each.
    fn sweep(&self) {
        let Some(client) = &self.shared.env.client else {
            return;
        };
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
}

async fn run_case(
    shared: &Shared,
    spec: Arc<CaseSpec>,
    sink: &dyn EventSink,
    slow_after: Duration,
) -> CaseResult {
    if shared.cancelled() {
        return CaseResult::not_run(spec, Status::Interrupted, NOT_STARTED);
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
    sink.event(&RunEvent::CaseStarted { spec: &spec });
    let log = AuditLog::default();
    let mut attempts = Vec::new();
    let of = policy::max_attempts(&spec);
    for n in 1.. {
        let a = run_attempt(shared, &spec, f, &log, sink, slow_after).await;
        let status = a.status;
        attempts.push(a);
        if !policy::should_retry(&spec, n, status) || shared.cancelled() {
            break;
        }
        if let Some(last) = attempts.last() {
            sink.event(&RunEvent::CaseRetrying {
                spec: &spec,
                attempt: n,
                of,
                last,
            });
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

async fn run_attempt(
    shared: &Shared,
    spec: &Arc<CaseSpec>,
    f: CaseFn,
    log: &AuditLog,
    sink: &dyn EventSink,
    slow_after: Duration,
) -> Attempt {
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
    let slow = async {
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + slow_after,
            slow_after.max(Duration::from_millis(1)),
        );
        loop {
            ticks.tick().await;
            sink.event(&RunEvent::CaseSlow {
                spec,
                elapsed: start.elapsed(),
            });
        }
    };
    let mut attempt = tokio::select! {
        _ = slow => unreachable!("the slow reporter never ends"),
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
