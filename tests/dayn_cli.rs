//! Day-N commands through the binary: `diff` (snapshot vs snapshot, recipe vs snapshot),
//! `upgrade-check` and `mirror list`: golden output, exit codes and bad input.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::str::contains;

mod recipe_support;
mod tools_support;

use recipe_support::EKS_H100_TRAINING_ARGS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `aiconform ARGS` run from the repository root, so fixture paths print relative.
fn aiconform(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("aiconform").unwrap();
    cmd.current_dir(root()).args(args);
    cmd
}

fn stdout(cmd: &mut Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

const MONDAY: &str = "fixtures/snapshots/h100-eks.yaml";
const FRIDAY: &str = "fixtures/snapshots/h100-eks-drifted.yaml";
const V1: &str = "fixtures/recipes/dayn-v1.yaml";
const V2: &str = "fixtures/recipes/dayn-v2.yaml";

#[test]
fn diff_snapshots_table() {
    let text = stdout(&mut aiconform(&["diff", MONDAY, FRIDAY]), 0);
    insta::assert_snapshot!("diff_snapshots_table", text);
}

#[test]
fn diff_snapshots_json() {
    let text = stdout(&mut aiconform(&["diff", MONDAY, FRIDAY, "-o", "json"]), 0);
    insta::assert_snapshot!("diff_snapshots_json", text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let paths: Vec<&str> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "changes are sorted by path");
    assert!(paths.contains(&"nodes[gpu-a].agent.report.kernelRelease"));
    assert!(paths.contains(&"nodes[gpu-c]"));
}

#[test]
fn diff_fail_on_drift_exit_codes() {
    aiconform(&["diff", MONDAY, FRIDAY, "--fail-on-drift"])
        .assert()
        .code(3);
    aiconform(&["diff", MONDAY, MONDAY, "--fail-on-drift"])
        .assert()
        .code(0)
        .stdout(contains("no drift"));
}

/// The same cluster written flat and as node classes is no drift: nodes are compared
/// expanded.
#[test]
fn diff_reads_node_classes_expanded() {
    let snap = aiconform::snapshot::load_file(&root().join(FRIDAY)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes.yaml");
    let text = aiconform::snapshot::render(&snap).unwrap();
    assert!(text.contains("nodeClasses"));
    std::fs::write(&classes, text).unwrap();
    aiconform(&["diff", FRIDAY, classes.to_str().unwrap(), "--fail-on-drift"])
        .assert()
        .code(0);
}

#[test]
fn diff_recipe_against_snapshot() {
    let text = stdout(&mut aiconform(&["diff", "--recipe", V2, FRIDAY]), 0);
    insta::assert_snapshot!("diff_recipe_table", text);
    aiconform(&["diff", "--recipe", V2, FRIDAY, "--fail-on-drift"])
        .assert()
        .code(3);
}

#[test]
fn diff_bad_input() {
    aiconform(&["diff", MONDAY, "fixtures/snapshots/missing.yaml"])
        .assert()
        .code(2)
        .stderr(contains("fixtures/snapshots/missing.yaml"));
    aiconform(&["diff", MONDAY])
        .assert()
        .code(2)
        .stderr(contains("give two snapshots"));
    aiconform(&["diff", "--recipe", V2, MONDAY, FRIDAY])
        .assert()
        .code(2)
        .stderr(contains("at most one snapshot"));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: aiconform.dev/v1alpha1\nkind: Snapshot\nmetadata: {toolVersion: x}\ncluster:\n  serverVersion: [\n",
    )
    .unwrap();
    aiconform(&["diff", MONDAY, bad.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains(format!("{}:5", bad.display())));
}

#[test]
fn upgrade_check_recipes_table() {
    let text = stdout(
        &mut aiconform(&["upgrade-check", "--from", V1, "--to", V2]),
        3,
    );
    insta::assert_snapshot!("upgrade_check_table", text);
}

#[test]
fn upgrade_check_recipes_json() {
    let text = stdout(
        &mut aiconform(&["upgrade-check", "--from", V1, "--to", V2, "-o", "json"]),
        3,
    );
    insta::assert_snapshot!("upgrade_check_json", text);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let verdict = |name: &str| {
        v["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["component"] == name)
            .map(|c| c["verdict"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(verdict("gpu-operator"), "manual");
    assert_eq!(verdict("kai-scheduler"), "unknown", "namespace moves");
    assert_eq!(verdict("cert-manager"), "unknown");
    assert_eq!(verdict("kube-prometheus-stack"), "safe");
    assert_eq!(verdict("jobset"), "safe");
    assert_eq!(verdict("nvsentinel"), "manual");
}

#[test]
fn upgrade_check_same_recipe_is_safe() {
    aiconform(&["upgrade-check", "--from", V2, "--to", V2])
        .assert()
        .code(0)
        .stdout(contains("7 safe, 0 manual, 0 blocked, 0 unknown"));
}

#[test]
fn upgrade_check_from_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    aiconform(&["bundle", "--recipe", V1, "-o", bundle.to_str().unwrap()])
        .assert()
        .success();
    let text = stdout(
        &mut aiconform(&[
            "upgrade-check",
            "--from",
            bundle.to_str().unwrap(),
            "--to",
            V2,
            "-o",
            "json",
        ]),
        3,
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["summary"]["manual"], 4, "{text}");
    assert_eq!(v["summary"]["unknown"], 2, "{text}");
}

fn data_dir(file: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("upgrades")).unwrap();
    std::fs::write(dir.path().join("upgrades").join(file), text).unwrap();
    dir
}

#[test]
fn upgrade_check_bad_input() {
    aiconform(&[
        "upgrade-check",
        "--from",
        "fixtures/recipes/nope.yaml",
        "--to",
        V2,
    ])
    .assert()
    .code(2)
    .stderr(contains("fixtures/recipes/nope.yaml"));
    let malformed = data_dir(
        "gpu-operator.yaml",
        "apiVersion: aiconform.dev/v1alpha1\nkind: ComponentUpgrades\ncomponent: gpu-operator\nreviewed: {from: 1.0.0\n",
    );
    let path = malformed.path().join("upgrades/gpu-operator.yaml");
    aiconform(&[
        "upgrade-check",
        "--from",
        V1,
        "--to",
        V2,
        "--data",
        malformed.path().to_str().unwrap(),
    ])
    .assert()
    .code(2)
    .stderr(contains(format!("{}:", path.display())));
    let unknown = data_dir(
        "gpu-operater.yaml",
        "apiVersion: aiconform.dev/v1alpha1\nkind: ComponentUpgrades\ncomponent: gpu-operater\n\
         reviewed: {from: 1.0.0, through: 2.0.0}\n",
    );
    aiconform(&[
        "upgrade-check",
        "--from",
        V1,
        "--to",
        V2,
        "--data",
        unknown.path().to_str().unwrap(),
    ])
    .assert()
    .code(2)
    .stderr(contains("no overlay declares component `gpu-operater`"));
}

/// A recipe with one chart from an unreachable repository and one manifest: the manifest's
/// images are listed, the chart is a warning naming it.
#[test]
fn mirror_list_warns_about_unrendered_charts() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(
        &recipe,
        r#"apiVersion: aiconform.dev/v1alpha1
kind: Recipe
metadata: {name: mirror-test, toolVersion: 0.1.0, appliedOverlays: [t], valueCount: 1}
criteria: {}
constraints: []
deploymentOrder: [op, extra]
components:
  - name: op
    type: Helm
    source: http://127.0.0.1:9/charts
    chart: op
    version: 1.0.0
    namespace: op
    values:
      driver: {repository: nvcr.io/nvidia, image: driver, version: 580.95.05}
  - name: extra
    type: Manifest
    version: v1
    namespace: extra
    manifests:
      - name: pod.yaml
        content: |
          apiVersion: v1
          kind: Pod
          metadata: {name: p, namespace: extra}
          spec:
            containers: [{name: c, image: "busybox:1.36"}]
"#,
    )
    .unwrap();
    let out = aiconform(&["mirror", "list", "--recipe", recipe.to_str().unwrap()])
        .env("AICONFORM_HELM", "/nonexistent/helm")
        .assert()
        .code(0)
        .stderr(contains("warning: op: chart op 1.0.0 not rendered"))
        .get_output()
        .clone();
    let v: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        v["images"],
        serde_json::json!(["busybox:1.36", "nvcr.io/nvidia/driver:580.95.05"])
    );
    assert_eq!(v["charts"][0]["repo"], "http://127.0.0.1:9/charts");
    let hauler = aiconform(&[
        "mirror",
        "list",
        "--recipe",
        recipe.to_str().unwrap(),
        "--no-render",
        "-f",
        "hauler",
    ])
    .assert()
    .code(0)
    .get_output()
    .stdout
    .clone();
    let text = String::from_utf8(hauler).unwrap();
    assert!(
        text.contains("kind: Images") && text.contains("kind: Charts"),
        "{text}"
    );
    assert!(!text.contains("warning"));
}

#[test]
fn mirror_list_bad_input() {
    aiconform(&["mirror", "list", "--bundle", "fixtures/nope"])
        .assert()
        .code(2)
        .stderr(contains("fixtures/nope"));
    aiconform(&["mirror", "list"]).assert().code(2);
}

/// The shipped eks/h100/training recipe without helm: every chart listed, images from
/// values and manifests, Hauler and Zarf documents that parse with their schemas' shape.
#[test]
fn mirror_list_eks_h100_training() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    let mut args = vec!["recipe"];
    args.extend_from_slice(EKS_H100_TRAINING_ARGS);
    args.extend(["-o", recipe.to_str().unwrap()]);
    aiconform(&args).assert().success();
    let run = |format: &str| {
        let out = aiconform(&[
            "mirror",
            "list",
            "--recipe",
            recipe.to_str().unwrap(),
            "--no-render",
            "-f",
            format,
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
        String::from_utf8(out.stdout).unwrap()
    };
    let inv: serde_json::Value = serde_json::from_str(&run("json")).unwrap();
    let charts: Vec<&str> = inv["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in [
        "gpu-operator",
        "kube-prometheus-stack",
        "kai-scheduler",
        "nvidia-dra-driver-gpu",
    ] {
        assert!(charts.contains(&c), "{charts:?}");
    }
    assert!(!inv["images"].as_array().unwrap().is_empty());
    let hauler: Vec<serde_json::Value> = serde_saphyr::from_multiple(&run("hauler")).unwrap();
    assert_eq!(hauler.len(), 2);
    for doc in &hauler {
        assert_eq!(doc["apiVersion"], "content.hauler.cattle.io/v1");
        assert!(doc["metadata"]["name"].as_str().is_some());
    }
    assert_eq!(
        hauler[1]["spec"]["charts"].as_array().unwrap().len(),
        charts.len()
    );
    let zarf: serde_json::Value = serde_saphyr::from_str(&run("zarf")).unwrap();
    assert_eq!(zarf["kind"], "ZarfPackageConfig");
    let comp = &zarf["components"][0];
    for c in comp["charts"].as_array().unwrap() {
        for field in ["name", "version", "namespace", "url"] {
            assert!(c[field].as_str().is_some_and(|s| !s.is_empty()), "{c}");
        }
    }
}

/// Charts rendered for real: the fixture charts served from a local chart repository and
/// OCI registry with the project's helm (`ci/tools/build.sh`).
#[test]
fn mirror_list_renders_charts() {
    let Some(tools) = tools_support::tools("mirror_list_renders_charts") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let repo = tools_support::ChartRepo::start(&tools, home.path());
    let registry = tools_support::Registry::start(&tools, &Default::default());
    let policy_chart = repo.dir.path().join("gpu-policy-0.3.0.tgz");
    tools_support::helm(
        &tools,
        home.path(),
        &[
            "push",
            policy_chart.to_str().unwrap(),
            &format!("oci://{}/charts", registry.addr),
            "--plain-http",
        ],
    );
    let text = std::fs::read_to_string(root().join("fixtures/recipes/helm-charts.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:8879", &repo.url)
        .replace("127.0.0.1:5000", &registry.addr);
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(&recipe, text).unwrap();
    let mut cmd = aiconform(&[
        "mirror",
        "list",
        "--recipe",
        recipe.to_str().unwrap(),
        "--plain-http",
        "-f",
        "json",
    ]);
    cmd.env("AICONFORM_HELM", tools.join("helm"));
    for (var, sub) in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ] {
        cmd.env(var, home.path().join(sub));
    }
    let out = cmd.assert().code(0).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in v["components"].as_array().unwrap() {
        assert_eq!(c["rendered"], true, "{c}");
    }
    let images: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(images, ["registry.k8s.io/pause:3.10"], "{v}");
}
