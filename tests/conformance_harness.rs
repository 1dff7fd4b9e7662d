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

use libtest_mimic::Arguments;

use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, Criteria, Recipe, compose, load_recipe_file};
use aiconform::runner::{Phase, RunEnv, RunOptions, Runner, Selection, SuiteSet, plan};

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
    let plan = match plan(&suites, &recipe, &sel) {
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
    let want_cluster = kubeconfig.is_some() || args.ignored || args.include_ignored;
    let cluster_phases = vec![Phase::Deployment, Phase::Conformance, Phase::Performance];
    let mut client = None;
    if want_cluster && !args.list {
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
        parallel: args.test_threads.unwrap_or(1),
        keep_going: env("AICONFORM_KEEP_GOING").is_some_and(|v| v == "1"),
        harness_args: Some(Arguments {
            // One thread per phase run unless asked: cases share the cluster.
            test_threads: Some(args.test_threads.unwrap_or(1)),
            ..args.clone()
        }),
        handle_ctrl_c: true,
        ignored_phases: if kubeconfig.is_some() {
            Vec::new()
        } else {
            cluster_phases
        },
        console_log: None,
        conformance: None,
        fail_fast: false,
    };
    let env_ = RunEnv {
        client,
        recipe: Arc::new(recipe),
        snapshot: Some(snapshot),
        resolver: aiconform::suites::resolver(),
    };
    let report = Runner::new(rt.handle().clone(), env_, opts).execute(&plan);
    if let Some(dir) = env("AICONFORM_REPORT_DIR")
        && !args.list
    {
        match aiconform::report::write_all(Path::new(&dir), &report) {
            Ok(paths) => eprintln!("reports written to {dir} ({} files)", paths.len()),
            Err(e) => return fail(e.to_string()),
        }
    }
    ExitCode::from(report.exit_code())
}
