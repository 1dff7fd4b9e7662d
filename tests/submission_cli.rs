//! `aiconform submission write|check` and the run's conformance flags through the binary:
//! error paths name the file, field or requirement and exit non-zero; nothing needs a cluster.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("aiconform").unwrap();
    c.env_remove("KUBECONFIG");
    c
}

const RECIPE: &str = "apiVersion: aiconform.dev/v1alpha1\nkind: Recipe\nmetadata:\n  name: cli-conformance\n  toolVersion: 0.1.0\n  appliedOverlays: []\n  valueCount: 0\ncriteria: {}\nconstraints: []\ndeploymentOrder: []\ncomponents: []\nvalidation: null\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn list_shows_requirement_and_level_for_the_chosen_checklist() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write(tmp.path(), "recipe.yaml", RECIPE);
    let out = bin()
        .args([
            "run",
            "--list",
            "--phase",
            "conformance",
            "--ai-conformance",
            "1.36",
            "--config",
        ])
        .arg(root().join("fixtures/conformance/run.yaml"))
        .arg("--recipe")
        .arg(&recipe)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(
        line("conformance/gang-scheduling ").ends_with("[gang_scheduling: MUST in 1.36]"),
        "{text}"
    );
    assert!(
        line("conformance/dra-support ").ends_with("[dra_support: not in the 1.36 checklist]"),
        "{text}"
    );
    assert!(
        line("conformance/pod-autoscaling ")
            .ends_with("[pod_autoscaling: MUST (conditional) in 1.36]"),
        "{text}"
    );
    assert!(
        line("conformance/inference-gateway ").ends_with("[ai_inference: MUST in 1.36]"),
        "{text}"
    );
}

#[test]
fn run_configuration_errors_stop_before_any_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = write(tmp.path(), "recipe.yaml", RECIPE);
    let config = write(
        tmp.path(),
        "run.yaml",
        "notApplicable:\n  gang_scheduling: we only run inference\n",
    );
    bin()
        .args(["run", "--list", "--ai-conformance", "1.34", "--config"])
        .arg(&config)
        .arg("--recipe")
        .arg(&recipe)
        .assert()
        .code(2)
        .stderr(contains("run.yaml:2: notApplicable: `gang_scheduling` is an unconditional MUST requirement of AI conformance 1.34"));
    bin()
        .args(["run", "--list", "--ai-conformance", "1.32", "--recipe"])
        .arg(&recipe)
        .assert()
        .code(2)
        .stderr(contains("Kubernetes 1.32 has no CNCF AI conformance checklist; aiconform knows 1.33, 1.34, 1.35, 1.36"));
    bin()
        .args(["run", "--list", "--config"])
        .arg(tmp.path().join("missing.yaml"))
        .arg("--recipe")
        .arg(&recipe)
        .assert()
        .code(2)
        .stderr(contains("cannot read config file"));
}

#[test]
fn write_names_the_placeholder_field_and_the_missing_run() {
    let tmp = tempfile::tempdir().unwrap();
    let product = std::fs::read_to_string(root().join("fixtures/conformance/product.yaml"))
        .unwrap()
        .replace(
            "platformName: Acme AI Cloud",
            "platformName: \"[Platform Name]\"",
        );
    let product = write(tmp.path(), "product.yaml", &product);
    bin()
        .args(["submission", "write", "--report-dir"])
        .arg(tmp.path())
        .arg("--product")
        .arg(&product)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .assert()
        .code(1)
        .stderr(contains(
            "platformName: `[Platform Name]` is a template placeholder",
        ));
    bin()
        .args(["submission", "write", "--report-dir"])
        .arg(tmp.path().join("no-report"))
        .arg("--product")
        .arg(root().join("fixtures/conformance/product.yaml"))
        .arg("-o")
        .arg(tmp.path().join("out"))
        .assert()
        .code(1)
        .stderr(contains("results.json"))
        .stderr(contains(
            "point --report-dir at the directory an `aiconform run` wrote",
        ));
    assert!(!tmp.path().join("out").exists(), "nothing written");
}

#[test]
fn check_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .args(["submission", "check"])
        .arg(tmp.path().join("v1.34/nothing"))
        .assert()
        .code(2)
        .stderr(contains(
            "v1.34/nothing does not exist; give a vX.Y/<product>/ directory",
        ));
    let dir = tmp.path().join("v1.34/acme");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("conformance/AIConformance-1.34.yaml"),
        dir.join("PRODUCT.yaml"),
    )
    .unwrap();
    bin()
        .args(["submission", "check"])
        .arg(&dir)
        .assert()
        .code(1)
        .stdout(contains(
            "problem: metadata.platformName: has placeholder value: [Platform Name]",
        ))
        .stdout(contains(
            "problem: metadata.k8sConformanceUrl: missing metadata field k8sConformanceUrl",
        ))
        .stdout(contains(
            "problem: spec.observability[0].status: invalid status '' for 'accelerator_metrics'",
        ))
        .stdout(contains("FAILED:"));
}

#[test]
fn timeout_needs_online() {
    bin()
        .args(["submission", "check", "--timeout", "5s", "v1.34/acme"])
        .assert()
        .code(2)
        .stderr(contains("--online"));
}
