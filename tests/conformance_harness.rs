//! `cargo test --test conformance`: the aiconform suites as a libtest-compatible harness
//! (harness = false), on the same runner as `aiconform run`.
//!
//! By default the readiness and node-health phases run against the fixture snapshot (whose
//! agents took no node-health readings: those cases skip, naming why) and the cluster phases
//! (deployment, conformance, performance) are listed as ignored, so a plain `cargo test`
//! stays hermetic. Run them with:
//!
//! ```text
//! cargo test --test conformance -- --include-ignored            # embedded test cluster
//! AICONFORM_KUBECONFIG=~/.kube/config cargo test --test conformance  # a real cluster
//! cargo test --test conformance -- --include-ignored gang       # libtest filters work
//! ```
//!
//! Environment: `AICONFORM_RECIPE` (recipe file; default: the base recipe composed from the
//! built-in overlays), `AICONFORM_SNAPSHOT` (default: fixtures/snapshots/h100-eks.yaml),
//! `AICONFORM_PHASES` (comma list, default all), `AICONFORM_SUITES_DIR`,
//! `AICONFORM_KEEP_GOING=1`, `AICONFORM_REPORT_DIR` (write reports there).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, FormatSetting};

use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, Criteria, Recipe, compose, load_recipe_file};
use aiconform::report::ReportFiles;
use aiconform::report::console::Console;
use aiconform::runner::{
    CaseSpec, EventSink, Phase, Plan, RunEnv, RunOptions, Runner, Selection, SuiteSet, plan,
};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn fail(msg: String) -> ExitCode {
    eprintln!("conformance harness: {msg}");
    ExitCode::from(2)
}

fn recipe() -> Result<Recipe, String> {
    match env("AICONFORM_RECIPE") {
        Some(p) => load_recipe_file(Path::new(&p)).map_err(|e| e.to_string()),
        None => {
            let files = RecipeFiles::with_data_dirs(&[]).map_err(|e| e.to_string())?;
            let catalog = Catalog::load(files).map_err(|e| e.to_string())?;
            compose(&catalog, &Criteria::new()).map_err(|e| e.to_string())
        }
    }
}

fn phases() -> Result<Vec<Phase>, String> {
    let Some(text) = env("AICONFORM_PHASES") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Phase::ALL
                .into_iter()
                .find(|p| p.as_str() == s)
                .ok_or_else(|| {
                    format!(
                        "AICONFORM_PHASES: unknown phase `{s}` (readiness, node-health, deployment, conformance, performance)"
                    )
                })
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let recipe = match recipe() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot load the recipe: {e}")),
    };
    let suites = match env("AICONFORM_SUITES_DIR") {
        Some(d) => SuiteSet::from_dir(Path::new(&d)),
        None => SuiteSet::builtin(),
    };
    let suites = match suites {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let phases = match phases() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let sel = Selection {
        phases,
        ..Selection::default()
    };
    let mut plan = match plan(&suites, &recipe, &sel) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let snapshot_path = env("AICONFORM_SNAPSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("fixtures/snapshots/h100-eks.yaml"));
    let snapshot = match aiconform::snapshot::load_file(&snapshot_path) {
        Ok(s) => Arc::new(s),
        Err(e) => return fail(e.to_string()),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };

    // Cluster phases run when asked for (--ignored/--include-ignored) or given a kubeconfig.
    let kubeconfig = env("AICONFORM_KUBECONFIG").map(PathBuf::from);
    let cluster_phases = [Phase::Deployment, Phase::Conformance, Phase::Performance];
    let ignored = |c: &CaseSpec| kubeconfig.is_none() && cluster_phases.contains(&c.phase);
    if args.list {
        print!("{}", list(&plan, &args, &ignored));
        return ExitCode::SUCCESS;
    }
    let planned = plan.cases.len();
    let left_ignored = plan
        .cases
        .iter()
        .filter(|c| ignored(c) && !args.ignored && !args.include_ignored)
        .count();
    plan.cases.retain(|c| selected(&args, &c.id, ignored(c)));
    if left_ignored > 0 {
        println!(
            "{left_ignored} cluster-phase cases ignored (run them with `-- --include-ignored` or AICONFORM_KUBECONFIG); {} of {planned} cases selected",
            plan.cases.len()
        );
    }
    let want_cluster = plan.cases.iter().any(|c| cluster_phases.contains(&c.phase));
    let mut client = None;
    if want_cluster {
        let path = match &kubeconfig {
            Some(p) => Some(p.clone()),
            None => aiconform::cluster::testing::shared_or_skip("conformance harness")
                .map(|c| c.kubeconfig.clone()),
        };
        if let Some(path) = path {
            match rt.block_on(aiconform::cluster::connect(Some(&path))) {
                Ok(c) => client = Some(c),
                Err(e) => return fail(e.to_string()),
            }
        }
    }
    let opts = RunOptions {
        // One case at a time unless asked: cases share the cluster.
        parallel: args.test_threads.unwrap_or(1),
        keep_going: env("AICONFORM_KEEP_GOING").is_some_and(|v| v == "1"),
        ..RunOptions::default()
    };
    let env_ = RunEnv {
        client,
        cluster_version: None,
        recipe: Arc::new(recipe),
        snapshot: Some(snapshot),
        resolver: aiconform::suites::resolver(),
    };
    let runner = Runner::new(rt.handle().clone(), env_, opts);
    let console = Console::new(std::io::stdout(), std::io::stderr());
    let files = env("AICONFORM_REPORT_DIR").map(ReportFiles::new);
    let report = match &files {
        Some(files) => runner.execute(&plan, &[&console as &dyn EventSink, files]),
        None => runner.execute(&plan, &console),
    };
    if let Some(files) = files {
        match files.finish() {
            Ok(paths) => eprintln!("reports written ({} files)", paths.len()),
            Err(e) => return fail(e.to_string()),
        }
    }
    ExitCode::from(report.exit_code())
}

/// libtest's selection: name filters (substring, or whole with `--exact`), `--skip`, and
/// ignored cases only with `--ignored` (or alongside the rest with `--include-ignored`).
fn selected(args: &Arguments, id: &str, ignored: bool) -> bool {
    let matches = |f: &str| if args.exact { id == f } else { id.contains(f) };
    let by_ignore = if args.ignored {
        ignored
    } else {
        args.include_ignored || !ignored
    };
    by_ignore && args.filter.as_deref().is_none_or(matches) && !args.skip.iter().any(|s| matches(s))
}

/// `--list` as libtest prints it (what cargo nextest reads): `ID: test` per case, only the
/// ignored ones with `--ignored`, and a count unless `--format terse`.
fn list(plan: &Plan, args: &Arguments, ignored: &dyn Fn(&CaseSpec) -> bool) -> String {
    let ids: Vec<&str> = plan
        .cases
        .iter()
        .filter(|c| !args.ignored || ignored(c))
        .filter(|c| args.filter.as_deref().is_none_or(|f| c.id.contains(f)))
        .map(|c| c.id.as_str())
        .collect();
    let mut out: String = ids.iter().map(|id| format!("{id}: test\n")).collect();
    if !matches!(args.format, Some(FormatSetting::Terse)) {
        out.push_str(&format!("\n{} tests, 0 benchmarks\n", ids.len()));
    }
    out
}
