//! `--config FILE` (`kind: AiconformConfig`): a command reads its section as flags, flags on
//! the command line win, unknown keys and missing sections are errors, and `run`/`validate`
//! still read the older run configuration.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

const HEAD: &str = "apiVersion: aiconform.dev/v1alpha1\nkind: AiconformConfig\n";

fn aiconform() -> Command {
    let mut cmd = Command::cargo_bin("aiconform").unwrap();
    cmd.env_remove("KUBECONFIG");
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn recipe_config(dir: &Path) -> PathBuf {
    write(
        dir,
        "aiconform.yaml",
        &format!(
            "{HEAD}recipe:\n  service: eks\n  accelerator: h100\n  intent: training\n  set: [\"gpuoperator:driver.version=580.1.2\"]\nrun:\n  reportDir: r\n"
        ),
    )
}

fn stdout(assert: assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.success().get_output().stdout.clone()).unwrap()
}

#[test]
fn recipe_reads_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = recipe_config(dir.path());
    let y = stdout(
        aiconform()
            .arg("recipe")
            .arg("--config")
            .arg(&config)
            .assert(),
    );
    assert!(y.contains("service: eks"), "{y}");
    assert!(y.contains("accelerator: h100"), "{y}");
    assert!(y.contains("intent: training"), "{y}");
    assert!(
        y.contains("580.1.2"),
        "the file's set was not applied:\n{y}"
    );
}

#[test]
fn flags_on_the_command_line_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = recipe_config(dir.path());
    let y = stdout(
        aiconform()
            .args(["recipe", "--service", "gke", "--set"])
            .arg("gpuoperator:driver.version=570.9.9")
            .arg("--config")
            .arg(&config)
            .assert(),
    );
    assert!(y.contains("service: gke"), "{y}");
    assert!(y.contains("accelerator: h100"), "{y}");
    // A repeatable flag given on the command line replaces the file's list.
    assert!(y.contains("570.9.9") && !y.contains("580.1.2"), "{y}");
}

#[test]
fn unknown_key_is_named_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.yaml",
        &format!("{HEAD}recipe:\n  service: eks\n  servce: gke\n"),
    );
    aiconform()
        .arg("recipe")
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(contains(format!(
            "{}:5: unknown key `servce` in the `recipe` section",
            config.display()
        )))
        .stderr(contains("takes: accelerator, criteria"));
    let config = write(
        dir.path(),
        "d.yaml",
        &format!("{HEAD}recipe: {{}}\nrecpie: {{}}\n"),
    );
    aiconform()
        .arg("recipe")
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(contains(format!("{}:4:", config.display())))
        .stderr(contains("recpie"));
}

#[test]
fn a_bad_value_is_named_by_clap_as_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.yaml",
        &format!("{HEAD}run:\n  phase: [conformance, nonsense]\n  list: true\n"),
    );
    aiconform()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(contains("nonsense").and(contains("--phase")));
}

#[test]
fn missing_section_names_the_command_and_the_sections() {
    let dir = tempfile::tempdir().unwrap();
    let config = recipe_config(dir.path());
    aiconform()
        .args(["bundle", "-o"])
        .arg(dir.path().join("b"))
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(contains(format!(
            "{} has no `bundle` section (it has: recipe, run)",
            config.display()
        )));
    assert!(!dir.path().join("b").exists());
}

#[test]
fn run_section_supplies_flags_and_declarations() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.yaml",
        &format!(
            "{HEAD}run:\n  service: eks\n  accelerator: h100\n  phase: [conformance]\n  list: true\n  aiConformance: \"1.34\"\n  notApplicable:\n    cluster_autoscaling: \"on-prem: no cluster autoscaler\"\n"
        ),
    );
    let out = stdout(aiconform().arg("run").arg("--config").arg(&config).assert());
    assert!(out.contains("conformance/"), "{out}");
    assert!(!out.contains("readiness/"), "{out}");
    // A declaration the checklist forbids is refused with its line: the section was read.
    let config = write(
        dir.path(),
        "d.yaml",
        &format!(
            "{HEAD}run:\n  service: eks\n  list: true\n  aiConformance: \"1.34\"\n  notApplicable:\n    gang_scheduling: we use plain pods\n"
        ),
    );
    aiconform()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .assert()
        .code(2)
        .stderr(contains(format!(
            "{}:8: notApplicable: `gang_scheduling` is an unconditional MUST",
            config.display()
        )));
}

#[test]
fn validate_takes_a_required_flag_from_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    aiconform()
        .args(["recipe", "--service", "eks", "--accelerator", "h100", "-o"])
        .arg(&recipe)
        .assert()
        .success();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml");
    let config = write(
        dir.path(),
        "c.yaml",
        &format!(
            "{HEAD}validate:\n  recipe: {}\n  snapshot: {}\n  reportDir: {}\n  output: json\n",
            recipe.display(),
            snapshot.display(),
            dir.path().join("reports").display()
        ),
    );
    let out = aiconform()
        .arg("validate")
        .arg("--config")
        .arg(&config)
        .assert()
        .get_output()
        .clone();
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.get("results").is_some(), "{report}");
    assert!(dir.path().join("reports").exists());
}

#[test]
fn run_and_validate_still_read_the_run_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(
        dir.path(),
        "run.yaml",
        "aiConformance: \"1.34\"\nnotApplicable:\n  cluster_autoscaling: \"on-prem: no cluster autoscaler\"\n",
    );
    let out = stdout(
        aiconform()
            .args([
                "run",
                "--service",
                "eks",
                "--phase",
                "conformance",
                "--list",
            ])
            .arg("--config")
            .arg(&old)
            .assert(),
    );
    assert!(out.contains("conformance/"), "{out}");
    // Still checked as a run configuration, by run and by validate.
    let bad = write(
        dir.path(),
        "bad.yaml",
        "notApplicable:\n  gang_scheduling: we use plain pods\n",
    );
    aiconform()
        .args([
            "run",
            "--service",
            "eks",
            "--list",
            "--ai-conformance",
            "1.34",
        ])
        .arg("--config")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(contains("bad.yaml:2: notApplicable: `gang_scheduling`"));
    let recipe = dir.path().join("recipe.yaml");
    aiconform()
        .args(["recipe", "--service", "eks", "-o"])
        .arg(&recipe)
        .assert()
        .success();
    aiconform()
        .args(["validate", "--phase", "conformance", "--recipe"])
        .arg(&recipe)
        .args(["--ai-conformance", "1.34", "--config"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(contains("bad.yaml:2: notApplicable: `gang_scheduling`"));
    // Other commands do not take it.
    aiconform()
        .arg("recipe")
        .arg("--config")
        .arg(&old)
        .assert()
        .code(2)
        .stderr(contains(
            "read as a run configuration, which only `run` and `validate` take",
        ));
}
