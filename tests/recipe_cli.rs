//! `aiconform recipe`/`bundle`/`query` with `--set`, `--snapshot`, criteria aliases and
//! `--nodes`, and `aiconform completions`: exit codes, output and error messages.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn aiconform() -> Command {
    let mut cmd = Command::cargo_bin("aiconform").unwrap();
    cmd.env_remove("KUBECONFIG");
    cmd
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml")
}

fn stdout_of(args: &[&str]) -> String {
    let out = aiconform()
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn criteria_aliases_and_gpu_flag() {
    let y = stdout_of(&[
        "recipe",
        "--service",
        "self-managed",
        "--gpu",
        "h100",
        "--os",
        "al2023",
    ]);
    assert!(y.contains("accelerator: h100"), "{y}");
    assert!(y.contains("os: amazonlinux"), "{y}");
    assert!(y.contains("service: any"), "{y}");
    // Same recipe as the canonical spelling, byte for byte.
    assert_eq!(
        y,
        stdout_of(&["recipe", "--accelerator", "h100", "--os", "amazonlinux"])
    );
    aiconform()
        .args(["recipe", "--gpu", "v100"])
        .assert()
        .failure()
        .stderr(contains("invalid --accelerator").and(contains("unknown accelerator `v100`")));
}

#[test]
fn set_overrides_are_applied_and_recorded() {
    let y = stdout_of(&[
        "recipe",
        "--service",
        "eks",
        "--gpu",
        "h100",
        "--intent",
        "training",
        "--set",
        "gpuoperator:driver.version=1",
        "--set",
        "gpuoperator:driver.version=580.95.05",
        "--set",
        "dradriver:gpuResourcesEnabledOverride=true",
    ]);
    assert!(
        y.contains("overrides:\n  - component: gpu-operator\n    path: driver.version\n    value: \"580.95.05\"\n"),
        "{y}"
    );
    assert!(y.contains("component: nvidia-dra-driver-gpu"), "{y}");
    assert!(!y.contains("value: 1\n"), "the last one wins: {y}");
    let v = stdout_of(&[
        "query",
        "--service",
        "eks",
        "--selector",
        "components.gpu-operator.values.driver.version",
        "--set",
        "gpu-operator:driver.version='580.1'",
    ]);
    assert_eq!(v, "580.1\n");
}

#[test]
fn set_enabled_false_reports_dependents() {
    aiconform()
        .args([
            "recipe",
            "--service",
            "eks",
            "--intent",
            "training",
            "--platform",
            "kubeflow",
        ])
        .args(["--set", "certmanager:enabled=false"])
        .assert()
        .success()
        .stdout(contains("path: enabled").and(contains("dependents:")))
        .stderr(
            contains("warning: --set removed component cert-manager; ").and(contains("jobset")),
        );
}

#[test]
fn set_errors_are_clear() {
    for (set, needles) in [
        (
            "gpu-operator",
            &[
                "set `gpu-operator`",
                "no `:`",
                "COMPONENT:dotted.path=VALUE",
            ][..],
        ),
        (
            "gpu-opertor:driver.version=1",
            &["unknown component `gpu-opertor`", "gpu-operator"][..],
        ),
        ("kgateway:x=1", &["not part of this recipe"][..]),
        ("gpu-operator:enabled=maybe", &["takes true or false"][..]),
    ] {
        let mut cmd = aiconform();
        cmd.args(["recipe", "--service", "eks", "--set", set]);
        let mut assert = cmd.assert().failure().stdout("");
        for n in needles {
            assert = assert.stderr(contains(*n));
        }
    }
}

/// Bundle folders are numbered in deployment order: `03-gpu-operator`.
fn component_dir(bundle: &Path, name: &str) -> PathBuf {
    std::fs::read_dir(bundle)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.split_once('-').is_some_and(|(_, rest)| rest == name))
        })
        .unwrap_or_else(|| panic!("no folder for {name} in {}", bundle.display()))
}

fn component_exists(bundle: &Path, name: &str) -> bool {
    std::fs::read_dir(bundle).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_str()
            .is_some_and(|n| n.split_once('-').is_some_and(|(_, rest)| rest == name))
    })
}

#[test]
fn bundle_takes_set_with_a_recipe_file() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    aiconform()
        .args(["recipe", "--service", "eks", "--gpu", "h100", "-o"])
        .arg(&recipe)
        .assert()
        .success();
    let out = dir.path().join("bundle");
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(&recipe)
        .args([
            "--set",
            "gpuoperator:driver.version=580.95.05",
            "--set",
            "skyhook:enabled=false",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let values =
        std::fs::read_to_string(component_dir(&out, "gpu-operator").join("values.yaml")).unwrap();
    assert!(values.contains("580.95.05"), "{values}");
    assert!(!component_exists(&out, "skyhook-operator"));
    let bundled = std::fs::read_to_string(out.join("recipe.yaml")).unwrap();
    assert!(bundled.contains("overrides:"), "{bundled}");
    // The same command renders the same bytes.
    let again = dir.path().join("again");
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(&recipe)
        .args([
            "--set",
            "gpuoperator:driver.version=580.95.05",
            "--set",
            "skyhook:enabled=false",
            "-o",
        ])
        .arg(&again)
        .assert()
        .success();
    assert_eq!(
        values,
        std::fs::read_to_string(component_dir(&again, "gpu-operator").join("values.yaml")).unwrap()
    );
    // A recipe file cannot restore what it never carried.
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(&recipe)
        .args(["--set", "dynamo-platform:enabled=true", "-o"])
        .arg(dir.path().join("x"))
        .assert()
        .failure()
        .stderr(contains("nothing to restore"));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn recipe_from_a_snapshot_derives_criteria() {
    aiconform()
        .args(["recipe", "--snapshot"])
        .arg(fixture())
        .args(["--intent", "training"])
        .assert()
        .success()
        .stdout(
            contains("accelerator: h100")
                .and(contains("service: eks"))
                .and(contains("intent: training")),
        )
        .stdout(contains("excludedOverlays").not())
        .stderr(contains(
            "service=eks (from server version `v1.34.2-eks-a737599`)",
        ));
    // Flags override what the snapshot shows.
    aiconform()
        .args(["recipe", "--snapshot"])
        .arg(fixture())
        .args(["--service", "any"])
        .assert()
        .success()
        .stdout(contains("service: any"));
}

#[test]
fn recipe_from_a_snapshot_excludes_contradicted_overlays() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("old.yaml");
    let text = std::fs::read_to_string(fixture()).unwrap().replace(
        "gitVersion: v1.34.2-eks-a737599",
        "gitVersion: v1.32.1-eks-a737599",
    );
    std::fs::write(&snap, text).unwrap();
    aiconform()
        .args(["recipe", "--snapshot"])
        .arg(&snap)
        .args(["--intent", "training"])
        .assert()
        .success()
        .stdout(
            contains("excludedOverlays:\n  - name: eks\n    reason: ")
                .and(contains("- name: eks-training")),
        )
        .stderr(contains(
            "excluded overlay eks: K8s.server.version >= 1.32.4",
        ))
        .stderr(contains(
            "excluded overlay eks-training: its base `eks` is excluded",
        ));
}

#[test]
fn snapshot_errors_name_the_source() {
    aiconform()
        .args(["recipe", "--snapshot", "/nonexistent/snap.yaml"])
        .assert()
        .failure()
        .stderr(contains("/nonexistent/snap.yaml"));
    // A ConfigMap on a cluster that does not answer: the server is named, nothing hangs.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .unwrap();
    aiconform()
        .args([
            "recipe",
            "--snapshot",
            "cm://aiconform/snapshot",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(
            contains("cannot read snapshot cm://aiconform/snapshot").and(contains("127.0.0.1:9")),
        );
    aiconform()
        .args(["recipe", "--snapshot", "cm://NS/x"])
        .assert()
        .failure()
        .stderr(contains("cm://"));
}

#[test]
fn nodes_selects_overlays_from_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("overlays")).unwrap();
    std::fs::write(
        dir.path().join("overlays/large.yaml"),
        "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\nname: large\ncriteria:\n  nodes: \">= 8\"\ncomponentRefs:\n  - name: skyhook-operator\n    values: {estimatedNodeCount: 8}\n",
    )
    .unwrap();
    let data = dir.path().to_str().unwrap();
    let small = stdout_of(&["recipe", "--data", data, "--nodes", "4"]);
    assert!(!small.contains("- large"), "{small}");
    let big = stdout_of(&["recipe", "--data", data, "--nodes", "16"]);
    assert!(
        big.contains("- large") && big.contains("nodes: '16'") || big.contains("nodes: \"16\""),
        "{big}"
    );
    aiconform()
        .args(["recipe", "--nodes", "many"])
        .assert()
        .failure()
        .stderr(contains("--nodes"));
    let criteria = dir.path().join("criteria.yaml");
    std::fs::write(&criteria, "nodes: \">= 8\"\n").unwrap();
    aiconform()
        .args(["recipe", "--criteria"])
        .arg(&criteria)
        .assert()
        .failure()
        .stderr(contains("must be a whole number"));
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = stdout_of(&["completions", shell]);
        assert!(out.contains("aiconform"), "{shell}");
        assert!(out.contains("gpu"), "{shell}: the --gpu alias completes");
        assert!(out.contains("snapshot"), "{shell}");
    }
    aiconform()
        .args(["completions", "tcsh"])
        .assert()
        .failure()
        .stderr(contains("possible values: bash"));
}
