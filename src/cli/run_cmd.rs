//! `aiconform run`: plan the suites for a recipe, bring up or connect to a target, deploy a
//! bundle if given, take a snapshot for readiness, run the cases and write reports.
//! `aiconform validate --phase ...` shares [`execute`].

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use aiconform::cluster::embedded::{EmbeddedOptions, RunningCluster};
use aiconform::recipe::Recipe;
use aiconform::runner::{
    self, EventSink, Phase, Plan, RunEnv, RunOptions, RunReport, Runner, Selection, SuiteSet,
};
use aiconform::snapshot::{self, Location};

use aiconform::conformance::ConformanceRun;
use aiconform::conformance::mapping::select_version;
use aiconform::conformance::run_config::RunConfig;
use aiconform::report::ReportFiles;
use aiconform::report::console::Console;

use super::criteria_args::CriteriaArgs;

/// Where the cases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// The embedded test cluster, started for this run and stopped after it
    Embedded,
    /// A kind cluster, created for this run and deleted after it (needs kind and docker/podman)
    Kind,
    /// The cluster of --kubeconfig (or KUBECONFIG / ~/.kube/config)
    Kubeconfig,
}

/// Which cases: suites, globs, suite definitions.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelectArgs {
    /// Suite to run (repeatable; default: the recipe's validation.suites, else all)
    #[arg(long = "suite", value_name = "NAME")]
    pub suites: Vec<String>,
    /// Run only cases whose id (suite/case) or suite matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out cases whose id or suite matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Read suite definitions (*.yaml) from this directory instead of the built-in ones
    #[arg(long, value_name = "DIR")]
    pub suites_dir: Option<PathBuf>,
}

/// How to run and where to report.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Cases run at the same time within a phase
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Directory for junit.xml, ctrf.json, results.json, performance.json and report.html
    #[arg(long, value_name = "DIR", default_value = "aiconform-report")]
    pub report_dir: PathBuf,
    /// Run later phases even when readiness or deployment failed
    #[arg(long)]
    pub keep_going: bool,
    /// Stop at the first failure: cases not yet started are reported skipped, and
    /// node-health cases stop at the first bad node
    #[arg(long)]
    pub fail_fast: bool,
    /// CNCF AI conformance checklist the conformance cases report against (1.33, 1.34,
    /// 1.35, 1.36 or 1.37); default: the run configuration's aiConformance, else the cluster's
    /// Kubernetes minor version
    #[arg(long, value_name = "VERSION")]
    pub ai_conformance: Option<aiconform::conformance::Version>,
    /// Configuration file (`kind: AiconformConfig`): the command's section holds its flags
    /// in camelCase (flags given here win) and `notApplicable: {ID: REASON}` for
    /// conditional requirements whose context does not apply to the platform. A file
    /// without `kind` is read as a run configuration: `aiConformance: "1.34"` and
    /// `notApplicable`
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The command whose section of --config holds the run configuration.
    #[arg(skip)]
    pub command: aiconform::config::Section,
    /// Write signed run evidence to DIR (may be the report directory): the recipe, a
    /// snapshot of the cluster, the reports, and attestation.dsse.json, an in-toto statement
    /// of their SHA-256 digests and the run's verdicts signed with --attest-key; check it
    /// with `aiconform evidence verify DIR --key PUB`
    #[arg(long, value_name = "DIR", requires = "attest_key")]
    pub attest: Option<PathBuf>,
    /// Private key (PEM, ECDSA P-256, e.g. from `aiconform bundle keygen`) that signs the
    /// attestation
    #[arg(long, value_name = "KEY", requires = "attest")]
    pub attest_key: Option<PathBuf>,
}

/// Arguments of `aiconform run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every case passed or skipped, 1 a case failed, \
2 the run could not start (bad input, no target), 130 interrupted (Ctrl-C).\n\n\
Examples:\n  aiconform run --recipe recipe.yaml --list\n  \
aiconform run --recipe recipe.yaml --kubeconfig ~/.kube/config --phase conformance\n  \
aiconform run --service eks --accelerator h100 --bundle ./bundle --include 'conformance/*' --exclude '*gang*'\n  \
aiconform run --recipe recipe.yaml --phase conformance --ai-conformance 1.35 --config run.yaml\n  \
aiconform run --recipe recipe.yaml --phase conformance --report-dir report --attest report --attest-key run.key"
)]
pub struct Args {
    /// Recipe file written by `aiconform recipe`; without it the recipe is composed from the
    /// criteria flags
    #[arg(long, value_name = "FILE")]
    recipe: Option<PathBuf>,
    #[command(flatten)]
    criteria: CriteriaArgs,
    /// Bundle directory (from `aiconform bundle`) to deploy before testing
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Kubeconfig of the cluster to test (implies --target kubeconfig)
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Target cluster; default: --kubeconfig when given, else the embedded test cluster
    #[arg(long, value_enum)]
    target: Option<TargetKind>,
    /// Snapshot for the readiness phase: a file or cm://NAMESPACE/NAME; default: take one
    #[arg(long, value_name = "SNAPSHOT")]
    snapshot: Option<String>,
    /// Phase to run (repeatable; default all: readiness, node-health, deployment,
    /// conformance, performance)
    #[arg(long = "phase", value_enum, value_name = "PHASE")]
    phases: Vec<Phase>,
    #[command(flatten)]
    select: SelectArgs,
    /// Print the selected cases (id, phase, description) and exit; needs no cluster
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    exec: ExecArgs,
    #[command(flatten)]
    results: super::results_cm::ResultsArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match run_inner(args) {
        Ok(code) => Ok(code),
        Err(e) => {
            super::report(&e);
            Ok(ExitCode::from(2))
        }
    }
}

fn run_inner(args: Args) -> Result<ExitCode> {
    let recipe = args.criteria.recipe(args.recipe.as_deref())?;
    let target = match (args.target, &args.kubeconfig) {
        (Some(TargetKind::Embedded | TargetKind::Kind), Some(_)) => {
            bail!(
                "--kubeconfig names the cluster to test; it cannot be combined with --target embedded or kind"
            )
        }
        (Some(TargetKind::Embedded), None) | (None, None) => Target::Embedded,
        (Some(TargetKind::Kind), None) => Target::Kind,
        (Some(TargetKind::Kubeconfig) | None, k) => Target::Kubeconfig(k.clone()),
    };
    let job = Job {
        recipe,
        phases: args.phases,
        select: args.select,
        exec: args.exec,
        target,
        bundle: args.bundle,
        snapshot: args.snapshot,
        list: args.list,
        results: args.results.target(args.kubeconfig.as_deref()),
    };
    // A run on a cluster it starts itself has nowhere to record its error afterwards.
    let results = job
        .results
        .clone()
        .filter(|_| matches!(job.target, Target::Kubeconfig(_)));
    let outcome = execute(job);
    if let (Err(e), Some(results)) = (&outcome, results) {
        super::results_cm::record_error(&results, e);
    }
    outcome
}

/// The cluster to test.
#[derive(Debug, Clone)]
pub enum Target {
    Embedded,
    Kind,
    Kubeconfig(Option<PathBuf>),
}

/// Everything a run needs, from `run` or `validate`.
pub struct Job {
    pub recipe: Recipe,
    /// Empty: all.
    pub phases: Vec<Phase>,
    pub select: SelectArgs,
    pub exec: ExecArgs,
    pub target: Target,
    pub bundle: Option<PathBuf>,
    pub snapshot: Option<String>,
    pub list: bool,
    /// Where the run's results are also stored (`--report-configmap`).
    pub results: Option<super::results_cm::ResultsTarget>,
}

fn suites(dir: Option<&Path>) -> Result<SuiteSet> {
    Ok(match dir {
        Some(d) => SuiteSet::from_dir(d)?,
        None => SuiteSet::builtin()?,
    })
}

/// Plan the job's cases (pure apart from reading --suites-dir).
pub fn make_plan(job: &Job) -> Result<Plan> {
    let set = suites(job.select.suites_dir.as_deref())?;
    let sel = Selection {
        phases: job.phases.clone(),
        suites: job.select.suites.clone(),
        include: job.select.include.clone(),
        exclude: job.select.exclude.clone(),
    };
    Ok(runner::plan(&set, &job.recipe, &sel)?)
}

/// A kind cluster created for the run, deleted on drop.
struct KindCluster {
    name: String,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl KindCluster {
    fn create() -> Result<Self> {
        let Some(kind) = aiconform::deploy::find_on_path("kind") else {
            bail!(
                "--target kind needs the `kind` CLI on PATH (https://kind.sigs.k8s.io) and a container engine; `kind` was not found. Use --kubeconfig FILE or the embedded cluster (default)"
            );
        };
        if !["docker", "podman", "nerdctl"]
            .iter()
            .any(|e| aiconform::deploy::find_on_path(e).is_some())
        {
            bail!(
                "--target kind needs a container engine (docker, podman or nerdctl) on PATH; none was found. Use --kubeconfig FILE or the embedded cluster (default)"
            );
        }
        let dir = tempfile::tempdir().context("cannot create a temp dir")?;
        let kubeconfig = dir.path().join("kubeconfig");
        let name = format!("aiconform-{}", aiconform::name::random_suffix(6));
        eprintln!("creating kind cluster {name} ...");
        let status = Command::new(kind)
            .args([
                "create",
                "cluster",
                "--name",
                &name,
                "--wait",
                "180s",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .stdin(Stdio::null())
            .status()
            .context("cannot run kind")?;
        if !status.success() {
            bail!("`kind create cluster --name {name}` failed ({status})");
        }
        Ok(KindCluster {
            name,
            kubeconfig,
            _dir: dir,
        })
    }
}

impl Drop for KindCluster {
    fn drop(&mut self) {
        if let Some(kind) = aiconform::deploy::find_on_path("kind") {
            eprintln!("deleting kind cluster {} ...", self.name);
            let _ = Command::new(kind)
                .args(["delete", "cluster", "--name", &self.name])
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// Keeps a cluster started for the run alive until the run ends.
enum Guard {
    None,
    Embedded(#[allow(dead_code)] RunningCluster),
    Kind(#[allow(dead_code)] KindCluster),
}

/// The run configuration and, when it can be known before connecting, the checklist.
struct ConformanceSetup {
    config: Option<RunConfig>,
    /// Chosen from --ai-conformance or the run configuration; `None`: from the cluster.
    early: Option<ConformanceRun>,
}

impl ConformanceSetup {
    fn new(exec: &ExecArgs) -> Result<Self> {
        let config = exec
            .config
            .as_deref()
            .map(|path| RunConfig::load_for(path, exec.command))
            .transpose()?;
        let early = match (exec.ai_conformance, &config) {
            (Some(v), _) => Some(ConformanceRun::new(v, "--ai-conformance")),
            (None, Some(c)) => c
                .ai_conformance
                .map(|v| ConformanceRun::new(v, c.origin.clone())),
            (None, None) => None,
        };
        let mut setup = ConformanceSetup { config, early };
        if let Some(run) = setup.early.take() {
            setup.early = Some(setup.declare(run)?);
        }
        Ok(setup)
    }

    /// Attach the run configuration's not-applicable declarations, checked against the
    /// run's checklist.
    fn declare(&self, mut run: ConformanceRun) -> Result<ConformanceRun> {
        if let Some(c) = &self.config {
            run.not_applicable = c.not_applicable_for(run.checklist())?;
        }
        Ok(run)
    }

    /// The checklist for a run against a cluster reporting `server` as its version.
    fn resolve(&self, server: Result<&str, &str>) -> Result<ConformanceRun> {
        match &self.early {
            Some(run) => Ok(run.clone()),
            None => {
                let run = select_version(None, None, server).map_err(anyhow::Error::msg)?;
                self.declare(run)
            }
        }
    }
}

/// Plan, connect, deploy, snapshot, run, report. Returns the run's exit code.
pub fn execute(job: Job) -> Result<ExitCode> {
    let setup = ConformanceSetup::new(&job.exec)?;
    let plan = make_plan(&job)?;
    if job.list {
        print!("{}", runner::plan::render_list(&plan, setup.early.as_ref()));
        return Ok(ExitCode::SUCCESS);
    }
    // Read the signing key before any cluster work, so a bad key costs nothing.
    let attest_key = match &job.exec.attest_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --attest-key {}", path.display()))?;
            Some(aiconform::bundle::sign::parse_private_key(
                &pem,
                &path.display().to_string(),
            )?)
        }
        None => None,
    };
    if plan.cases.is_empty() {
        bail!(
            "no cases selected for recipe `{}`: check --phase, --suite, --include and --exclude (see them with --list)",
            job.recipe.metadata.name
        );
    }
    let rt = super::runtime()?;
    let (guard, kubeconfig) = match &job.target {
        Target::Embedded => {
            eprintln!(
                "starting the embedded test cluster (use --kubeconfig to test a real cluster) ..."
            );
            let opts = EmbeddedOptions {
                parent_pid: Some(std::process::id()),
                real_node: aiconform::cluster::embedded::RealNode::Off,
                ..EmbeddedOptions::default()
            };
            let c = RunningCluster::start(&opts, &|line| eprintln!("  {line}"))
                .context("cannot start the embedded test cluster")?;
            let k = c.kubeconfig.clone();
            (Guard::Embedded(c), Some(k))
        }
        Target::Kind => {
            let c = KindCluster::create()?;
            let k = c.kubeconfig.clone();
            (Guard::Kind(c), Some(k))
        }
        Target::Kubeconfig(k) => (Guard::None, k.clone()),
    };
    let client = rt.block_on(aiconform::cluster::connect(kubeconfig.as_deref()))?;
    let server = rt
        .block_on(client.apiserver_version())
        .map(|info| info.git_version)
        .map_err(|e| e.to_string());
    let conformance = if plan.cases.iter().any(|c| c.requirement.is_some()) {
        let run = setup.resolve(server.as_deref().map_err(String::as_str))?;
        eprintln!(
            "AI conformance checklist {} (selected by {})",
            run.version, run.source
        );
        Some(run)
    } else {
        None
    };
    if let Some(dir) = &job.bundle {
        deploy_bundle(rt, dir, &client, kubeconfig.as_deref())?;
    }
    let needs_snapshot = plan
        .cases
        .iter()
        .any(|c| matches!(c.phase, Phase::Readiness | Phase::NodeHealth));
    let snap = if needs_snapshot {
        Some(Arc::new(obtain_snapshot(
            rt,
            job.snapshot.as_deref(),
            &client,
            health_readings(&plan),
        )?))
    } else {
        None
    };
    let attest_client = client.clone();
    let results_client = client.clone();
    let run_snapshot = snap.clone();
    let env = RunEnv {
        client: Some(client),
        cluster_version: server.ok(),
        recipe: Arc::new(job.recipe.clone()),
        snapshot: snap,
        resolver: aiconform::suites::resolver(),
    };
    let opts = RunOptions {
        parallel: usize::from(job.exec.parallel),
        keep_going: job.exec.keep_going,
        conformance,
        fail_fast: job.exec.fail_fast,
        ..RunOptions::default()
    };
    let runner = Runner::new(rt.handle().clone(), env, opts);
    let console = Console::new(std::io::stdout(), std::io::stderr());
    let files = ReportFiles::new(&job.exec.report_dir);
    let report = {
        let _ctrl_c = super::stop_run_on_ctrl_c(rt, runner.interrupter());
        let sinks: [&dyn EventSink; 2] = [&console, &files];
        runner.execute(&plan, &sinks)
    };
    say_written(files.finish()?);
    if let Some(results) = &job.results {
        super::results_cm::store(
            rt,
            results,
            &results_client,
            &report,
            run_snapshot.as_deref(),
        )?;
    }
    if let (Some(dir), Some(key)) = (&job.exec.attest, &attest_key) {
        let context = attest_context(
            rt,
            &attest_client,
            &job.recipe,
            run_snapshot.as_deref(),
            kubeconfig.as_deref(),
            report.cluster_version.clone(),
        )?;
        let envelope = aiconform::attest::attest(&job.exec.report_dir, dir, &context, key)
            .with_context(|| format!("cannot write the run's attestation to {}", dir.display()))?;
        eprintln!(
            "attestation: {} (check it with `aiconform evidence verify {} --key PUB`)",
            envelope.display(),
            dir.display()
        );
    }
    drop(guard);
    if report.interrupted {
        eprintln!("interrupted: partial reports written; unfinished cases are marked interrupted");
    }
    Ok(ExitCode::from(report.exit_code()))
}

/// The readiness phase against a snapshot, without a cluster: the same plan, cases and
/// reports as `run --phase readiness`, the runner's per-case lines kept off the terminal
/// (the caller prints the readiness table). Writes the reports to `--report-dir`.
pub fn readiness_reports(
    recipe: Recipe,
    snapshot: aiconform::snapshot::model::Snapshot,
    select: SelectArgs,
    exec: &ExecArgs,
) -> Result<RunReport> {
    let job = Job {
        recipe,
        phases: vec![Phase::Readiness],
        select,
        exec: exec.clone(),
        target: Target::Kubeconfig(None),
        bundle: None,
        snapshot: None,
        list: false,
        results: None,
    };
    let plan = make_plan(&job)?;
    let rt = super::runtime()?;
    let env = RunEnv {
        client: None,
        cluster_version: None,
        recipe: Arc::new(job.recipe),
        snapshot: Some(Arc::new(snapshot)),
        resolver: aiconform::suites::resolver(),
    };
    let opts = RunOptions {
        parallel: usize::from(exec.parallel),
        ..RunOptions::default()
    };
    let runner = Runner::new(rt.handle().clone(), env, opts);
    let files = ReportFiles::new(&exec.report_dir);
    let report = {
        let _ctrl_c = super::stop_run_on_ctrl_c(rt, runner.interrupter());
        runner.execute(&plan, &files)
    };
    say_written(files.finish()?);
    Ok(report)
}

/// Say where the reports are.
fn say_written(written: Vec<std::path::PathBuf>) {
    eprintln!(
        "reports: {}",
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// What an attestation records beyond the reports: the recipe, a snapshot (the run's, else
/// one of the cluster without node agents) and the cluster's identity.
fn attest_context(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    recipe: &Recipe,
    snap: Option<&aiconform::snapshot::model::Snapshot>,
    kubeconfig: Option<&Path>,
    kubernetes_version: Option<String>,
) -> Result<aiconform::attest::RunContext> {
    use k8s_openapi::api::core::v1::Namespace;
    let recipe_yaml = aiconform::yaml::to_string(recipe)
        .map_err(|e| anyhow::anyhow!("cannot encode the recipe for the attestation: {e}"))?;
    let snapshot = match snap {
        Some(s) => s.clone(),
        None => {
            eprintln!("taking a snapshot of the cluster for the attestation (no node agents) ...");
            let opts = snapshot::TakeOptions {
                node_selector: None,
                agent: None,
            };
            let (s, warnings) = rt
                .block_on(snapshot::take(
                    client,
                    &opts,
                    &|p: snapshot::job::AgentProgress<'_>| eprintln!("  {p}"),
                ))
                .context("cannot take a snapshot of the cluster for the attestation")?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            s
        }
    };
    let snapshot_yaml = snapshot::render(&snapshot)?;
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let kube_system_uid = rt
        .block_on(namespaces.get("kube-system"))
        .context("cannot read the kube-system namespace, whose UID identifies the cluster in the attestation")?
        .metadata
        .uid;
    Ok(aiconform::attest::RunContext {
        recipe_yaml,
        snapshot_yaml: Some(snapshot_yaml),
        cluster: aiconform::attest::ClusterIdentity {
            kubernetes_version,
            kube_system_uid,
            server: kubeconfig.and_then(server_of),
        },
    })
}

/// The API server URL of a kubeconfig's current context.
fn server_of(kubeconfig: &Path) -> Option<String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).ok()?;
    let context = kc.current_context.as_deref()?;
    let cluster = kc
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    kc.clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .clone()
}

fn deploy_bundle(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    client: &kube::Client,
    kubeconfig: Option<&Path>,
) -> Result<()> {
    use aiconform::deploy::{self, DeployOptions, Event};
    eprintln!("deploying bundle {} ...", dir.display());
    let opts = DeployOptions {
        kubeconfig: kubeconfig.map(Path::to_path_buf),
        ..DeployOptions::default()
    };
    let progress = |e: Event| match e {
        Event::Start {
            index, total, name, ..
        } => eprintln!("  [{index}/{total}] {name}"),
        Event::Done { result, .. } => eprintln!("    {}: {:?}", result.name, result.outcome),
        Event::Step { .. } => {}
    };
    let report = rt
        .block_on(deploy::deploy(dir, client, &opts, &progress))
        .with_context(|| format!("cannot deploy bundle {}", dir.display()))?;
    eprintln!("{report}");
    if !report.is_ok() {
        eprintln!("note: the deployment phase reports the unhealthy components");
    }
    Ok(())
}

/// The node-health readings the plan's node-health cases need from the agents: `None`
/// without such cases; the `dcgmi diag` level from the `dcgm-diag` case's `level` (0: off).
pub fn health_readings(plan: &Plan) -> Option<snapshot::job::AgentHealth> {
    let cases: Vec<_> = plan
        .cases
        .iter()
        .filter(|c| c.phase == Phase::NodeHealth)
        .collect();
    if cases.is_empty() {
        return None;
    }
    let dcgm_level = cases
        .iter()
        .filter(|c| c.name == "dcgm-diag")
        .filter_map(|c| c.params.get("level").and_then(serde_json::Value::as_u64))
        .max()
        .filter(|l| *l > 0)
        .map(|l| u8::try_from(l.min(4)).unwrap_or(4));
    Some(snapshot::job::AgentHealth { dcgm_level })
}

fn obtain_snapshot(
    rt: &tokio::runtime::Runtime,
    given: Option<&str>,
    client: &kube::Client,
    health: Option<snapshot::job::AgentHealth>,
) -> Result<aiconform::snapshot::model::Snapshot> {
    match given {
        Some(text) => match Location::parse(text)? {
            Location::Stdout => {
                bail!("--snapshot - is not supported; give a file or cm://NAMESPACE/NAME")
            }
            Location::File(path) => Ok(snapshot::load_file(&path)?),
            Location::ConfigMap { namespace, name } => {
                Ok(rt.block_on(snapshot::load_configmap(client, &namespace, &name))?)
            }
        },
        None => {
            eprintln!(
                "taking a snapshot for the readiness and node-health phases (pass --snapshot to reuse one) ..."
            );
            let opts = snapshot::TakeOptions {
                node_selector: None,
                agent: Some(snapshot::job::AgentJobOptions {
                    health,
                    ..Default::default()
                }),
            };
            let (snap, warnings) = rt
                .block_on(snapshot::take(client, &opts, &|p: snapshot::job::AgentProgress<'_>| {
                    eprintln!("  {p}")
                }))
                .context(
                    "cannot take a snapshot for the readiness and node-health phases; pass --snapshot FILE or leave them out with --phase",
                )?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            for n in &snap.cluster.nodes {
                if let snapshot::AgentOutcome::Unavailable { reason } = &n.agent {
                    eprintln!(
                        "  {}: agent unavailable ({reason}); using Node facts",
                        n.name
                    );
                }
            }
            Ok(snap)
        }
    }
}
