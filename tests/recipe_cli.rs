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
    assert!(y.contains("service: generic"), "{y}");
    // Same recipe as the canonical spelling, byte for byte.
    assert_eq!(
        y,
        stdout_of(&[
            "recipe",
            "--service",
            "generic",
            "--accelerator",
            "h100",
            "--os",
            "amazonlinux"
        ])
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

#[test]
fn criteria_file_names_a_misspelt_key_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("flat.yaml");
    std::fs::write(&flat, "accelerator: h100\nservce: eks\n").unwrap();
    aiconform()
        .args(["recipe", "--criteria"])
        .arg(&flat)
        .assert()
        .failure()
        .stderr(
            contains("unknown field `servce`")
                .and(contains("flat.yaml:2"))
                .and(contains("did not match any variant").not()),
        );
    let nested = dir.path().join("nested.yaml");
    std::fs::write(&nested, "criteria:\n  service: eks\n  acelerator: h100\n").unwrap();
    aiconform()
        .args(["recipe", "--criteria"])
        .arg(&nested)
        .assert()
        .failure()
        .stderr(contains("unknown field `acelerator`").and(contains("nested.yaml:3")));
    let both = dir.path().join("both.yaml");
    std::fs::write(&both, "service: eks\ncriteria:\n  accelerator: h100\n").unwrap();
    aiconform()
        .args(["recipe", "--criteria"])
        .arg(&both)
        .assert()
        .failure()
        .stderr(contains("not both"));
    // Both shapes still read.
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "criteria:\n  service: eks\n  accelerator: h100\n").unwrap();
    let y = stdout_of(&["recipe", "--criteria", good.to_str().unwrap()]);
    assert!(
        y.contains("service: eks") && y.contains("accelerator: h100"),
        "{y}"
    );
}

#[test]
fn recipe_list_prints_the_matrix_in_each_format() {
    let table = stdout_of(&["recipe", "list"]);
    assert!(table.starts_with("SERVICE"), "{table}");
    assert!(table.contains("eks-training-kubeflow"), "{table}");
    assert!(table.contains("leaves: recipe"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&["recipe", "list", "-o", "json"])).unwrap();
    let leaves = json["leaves"].as_array().unwrap();
    assert_eq!(json["summary"]["leaves"], leaves.len());
    assert!(
        leaves
            .iter()
            .all(|l| l["stages"]["recipe"] == serde_json::Value::Bool(true)),
        "{json}"
    );
    let yaml = stdout_of(&["recipe", "list", "-o", "yaml"]);
    assert!(
        yaml.contains("leaves:") && yaml.contains("summary:"),
        "{yaml}"
    );
    // Byte-identical across runs.
    assert_eq!(yaml, stdout_of(&["recipe", "list", "-o", "yaml"]));
    aiconform()
        .args(["recipe", "list", "--service", "eks"])
        .assert()
        .failure();
}

#[test]
fn a_criterion_without_an_overlay_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("overlays")).unwrap();
    // Take the built-in l40s overlay over for another accelerator.
    std::fs::write(
        dir.path().join("overlays/l40s.yaml"),
        "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\nname: l40s\ncriteria:\n  accelerator: l40\n",
    )
    .unwrap();
    aiconform()
        .args(["recipe", "--accelerator", "l40s", "--data"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(contains("no overlay carries accelerator `l40s`"));
}

#[test]
fn set_json_and_set_file_merge_delete_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("driver.yaml");
    std::fs::write(
        &file,
        "version: \"575.57.08\"\nupgradePolicy:\n  maxParallelUpgrades: 4\n",
    )
    .unwrap();
    let set_file = format!("gpuoperator:driver={}", file.display());
    let y = stdout_of(&[
        "recipe",
        "--service",
        "eks",
        "--gpu",
        "h100",
        "--set",
        "gpuoperator:driver.version=1",
        "--set-json",
        r#"gpuoperator:driver={"version":"580.95.05","rdma":null}"#,
        "--set-json",
        r#"gpuoperator:devicePlugin.env=[{"name":"A","value":"1"}]"#,
        "--set-file",
        &set_file,
    ]);
    let recipe: serde_json::Value = aiconform::yaml::from_str(&y, "out").unwrap();
    let gpu = recipe["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gpu-operator")
        .unwrap();
    let driver = &gpu["values"]["driver"];
    assert_eq!(
        driver["version"], "575.57.08",
        "the file applies last: {driver}"
    );
    assert!(driver.get("rdma").is_none(), "null deleted it: {driver}");
    assert_eq!(
        driver["kernelModuleType"], "open",
        "merged, not replaced: {driver}"
    );
    assert_eq!(
        driver["upgradePolicy"]["maxParallelUpgrades"], 4,
        "{driver}"
    );
    assert_eq!(driver["upgradePolicy"]["autoUpgrade"], true, "{driver}");
    assert_eq!(
        gpu["values"]["devicePlugin"]["env"],
        serde_json::json!([{"name": "A", "value": "1"}]),
        "lists replace"
    );
}

#[test]
fn bad_set_json_and_set_file_inputs_are_named() {
    for (flag, arg, needle) in [
        (
            "--set-json",
            "gpuoperator:driver.version=580.95.05",
            "is not JSON",
        ),
        ("--set-json", "gpuoperator:driver={", "is not JSON"),
        ("--set-json", "gpuoperator", "no `:` after the component"),
        (
            "--set-json",
            "gpuoperator:driver",
            "no `=` before the value",
        ),
        (
            "--set-json",
            "gpuoperator:enabled=false",
            "use --set gpuoperator:enabled",
        ),
        ("--set-json", "nosuch:a=1", "unknown component `nosuch`"),
        (
            "--set-json",
            "aws-efa:a=1",
            "component `aws-efa` is not part of this recipe",
        ),
        (
            "--set-json",
            "gpuoperator:driver.version.x=1",
            "`driver.version` is a string",
        ),
        ("--set-file", "gpuoperator:driver=", "the file is empty"),
        (
            "--set-file",
            "gpuoperator:driver=/nonexistent/x.yaml",
            "cannot read /nonexistent/x.yaml",
        ),
    ] {
        aiconform()
            .args(["recipe", "--service", "gke", flag, arg])
            .assert()
            .failure()
            .stderr(contains(needle));
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "a: [unclosed\n").unwrap();
    aiconform()
        .args(["recipe", "--set-file"])
        .arg(format!("gpuoperator:driver={}", bad.display()))
        .assert()
        .failure()
        .stderr(contains("bad.yaml"));
}

#[test]
fn set_json_applies_to_a_recipe_file_and_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("r.yaml");
    aiconform()
        .args(["recipe", "--service", "eks", "-o"])
        .arg(&recipe)
        .assert()
        .success();
    let out = dir.path().join("bundle");
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(&recipe)
        .args([
            "--set-json",
            r#"gpuoperator:driver={"version":"580.0.0"}"#,
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let values =
        std::fs::read_to_string(component_dir(&out, "gpu-operator").join("values.yaml")).unwrap();
    assert!(values.contains("580.0.0"), "{values}");
    let v = stdout_of(&[
        "query",
        "--service",
        "eks",
        "--set-json",
        r#"gpuoperator:driver={"version":"580.0.0"}"#,
        "--selector",
        "components.gpu-operator.values.driver.version",
    ]);
    assert_eq!(v.trim(), "580.0.0");
}
