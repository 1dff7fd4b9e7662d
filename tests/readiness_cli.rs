//! `aiconform validate --phase readiness`: exit codes, table and JSON output.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;

mod recipe_support;

fn snapshot_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml")
}

/// Write a recipe with these constraints; returns (dir guard, path).
fn recipe(constraints: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = recipe_support::write_constraint_recipe(dir.path(), "recipe", constraints);
    (dir, path)
}

/// `validate` with its reports in a directory of their own beside the recipe.
fn validate(recipe: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("validate")
        .arg("--recipe")
        .arg(recipe)
        .arg("--snapshot")
        .arg(snapshot_fixture())
        .arg("--report-dir")
        .arg(recipe.with_file_name("reports"))
        .args(extra)
        .assert()
}

/// Readiness against a snapshot file needs no cluster and writes the same reports as a run:
/// one JUnit case per constraint, with the table's verdicts.
#[test]
fn readiness_from_a_snapshot_writes_reports() {
    let (d, r) = recipe(&[
        ("OS.kernel.release", ">= 6.8.0-1010"),
        ("OS.release.ID", "ubuntu"),
    ]);
    validate(&r, &[])
        .code(1)
        .stderr(contains("reports: "))
        .stdout(contains("1 passed, 1 failed"));
    let reports = d.path().join("reports");
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"<testsuites name="aiconform" tests="2" failures="1""#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<testcase name="OS.kernel.release" classname="readiness""#),
        "{junit}"
    );
    assert!(junit.contains("node/gpu-b (nodeInfo)"), "{junit}");
    let ctrf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("ctrf.json")).unwrap()).unwrap();
    assert_eq!(ctrf["results"]["summary"]["failed"], 1, "{ctrf}");
    assert_eq!(ctrf["results"]["summary"]["passed"], 1, "{ctrf}");
}

#[test]
fn passing_recipe_exits_zero() {
    let (_d, r) = recipe(&[
        ("K8s.server.version", ">= 1.32, < 1.36"),
        ("OS.release.ID", "ubuntu"),
        ("OS.release.VERSION_ID", "24.04"),
        ("OS.kernel.release", ">= 6.8"),
        ("GPU.device.model", "*H100*"),
        ("GPU.driver.version", ">= 580.95.05"),
        ("K8s.node.gpuCount", ">= 2"),
        ("Operator.gpu-operator.version", ">= v25.10.0"),
    ]);
    validate(&r, &[])
        .code(0)
        .stdout(contains("CONSTRAINT"))
        .stdout(contains("8 passed, 0 failed, 0 missing"));
}

#[test]
fn one_old_node_fails_the_constraint() {
    let (_d, r) = recipe(&[
        ("OS.kernel.release", ">= 6.8.0-1010"),
        ("OS.release.ID", "ubuntu"),
    ]);
    validate(&r, &[])
        .code(1)
        .stdout(contains("fail"))
        .stdout(contains("node/gpu-b (nodeInfo)"))
        .stdout(contains("1 passed, 1 failed"));
}

#[test]
fn missing_measurement_fails() {
    let (_d, r) = recipe(&[("GPU.mig.mode", "disabled")]);
    validate(&r, &[]).code(1).stdout(contains("missing"));
}

#[test]
fn node_without_agent_facts_makes_agent_paths_missing() {
    // gpu-b's agent was unavailable: the sysctl holds on gpu-a and system but is unverified
    // on gpu-b, so it must not pass.
    let (_d, r) = recipe(&[("OS.sysctl.vm.max_map_count", ">= 65530")]);
    validate(&r, &[])
        .code(1)
        .stdout(contains("missing"))
        .stdout(contains("no value from node/gpu-b"));
}

#[test]
fn json_output() {
    let (_d, r) = recipe(&[
        ("K8s.server.version", ">= 1.35"),
        ("OS.release.ID", "ubuntu"),
    ]);
    let out = validate(&r, &["--output", "json"])
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["phase"], "readiness");
    assert_eq!(v["summary"]["failed"], 1);
    assert_eq!(v["summary"]["passed"], 1);
    assert_eq!(v["results"][0]["status"], "fail");
    assert_eq!(v["results"][0]["actual"][0]["value"], "v1.34.2-eks-a737599");
}

#[test]
fn no_constraints_passes() {
    let (_d, r) = recipe(&[]);
    validate(&r, &[]).code(0).stdout(contains("no constraints"));
}

#[test]
fn other_phase_without_a_cluster_exits_two() {
    // Phases beyond readiness run suites against a cluster; with no kubeconfig they cannot.
    let (d, r) = recipe(&[]);
    Command::cargo_bin("aiconform")
        .unwrap()
        .env_remove("KUBECONFIG")
        .env("HOME", d.path())
        .arg("validate")
        .arg("--recipe")
        .arg(&r)
        .arg("--snapshot")
        .arg(snapshot_fixture())
        .args(["--phase", "conformance", "--report-dir"])
        .arg(d.path().join("reports"))
        .assert()
        .code(2)
        .stderr(contains("kubeconfig"));
}

#[test]
fn bad_inputs_exit_two_with_the_file_named() {
    let (_d, r) = recipe(&[]);
    Command::cargo_bin("aiconform")
        .unwrap()
        .args([
            "validate",
            "--snapshot",
            "/nonexistent/snap.yaml",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/snap.yaml"));
    // A recipe passed as the snapshot is rejected with a hint.
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("validate")
        .arg("--recipe")
        .arg(&r)
        .arg("--snapshot")
        .arg(&r)
        .arg("--report-dir")
        .arg(r.with_file_name("reports"))
        .assert()
        .code(2)
        .stderr(contains("snapshot"));
    Command::cargo_bin("aiconform")
        .unwrap()
        .args([
            "validate",
            "--recipe",
            "/nonexistent/recipe.yaml",
            "--snapshot",
        ])
        .arg(snapshot_fixture())
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/recipe.yaml"));
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("validate")
        .arg("--recipe")
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("--snapshot"));
}
