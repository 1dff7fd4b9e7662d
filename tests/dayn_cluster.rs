//! `diff` and `upgrade-check` against a live embedded cluster whose deployed stack changes
//! after the snapshot: a chart is upgraded by hand with helm, and the commands must see it
//! from the Helm release records.

use std::path::{Path, PathBuf};

use aiconform::cluster::testing::shared_or_skip;
use assert_cmd::Command;
use predicates::str::contains;

mod tools_support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A recipe of one Helm component: the fixture gpu-operator chart at `version`.
fn recipe(dir: &Path, name: &str, version: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: aiconform.dev/v1alpha1\nkind: Recipe\n\
             metadata: {{name: {name}, toolVersion: 0.1.0, appliedOverlays: [t], valueCount: 0}}\n\
             criteria: {{}}\nconstraints:\n  - {{name: K8s.server.version, value: \">= 1.30\", source: t}}\n\
             deploymentOrder: [gpu-operator]\ncomponents:\n\
             \x20 - {{name: gpu-operator, type: Helm, source: https://helm.ngc.nvidia.com/nvidia, \
             chart: gpu-operator, version: {version}, namespace: dayn-gpu}}\n"
        ),
    )
    .unwrap();
    path
}

fn aiconform(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("aiconform").unwrap();
    cmd.args(args).arg("--kubeconfig").arg(kubeconfig);
    cmd
}

#[test]
fn drift_and_upgrade_check_see_a_hand_upgraded_release() {
    let test = "drift_and_upgrade_check_see_a_hand_upgraded_release";
    let Some(tools) = tools_support::tools(test) else {
        return;
    };
    let Some(cluster) = shared_or_skip(test) else {
        return;
    };
    let kc = cluster.kubeconfig.clone();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("helm-home");
    let helm = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--kubeconfig", kc.to_str().unwrap()]);
        tools_support::helm(&tools, &home, &all)
    };
    let chart_dir = root().join("fixtures/charts/gpu-operator");
    helm(&[
        "install",
        "gpu-operator",
        chart_dir.to_str().unwrap(),
        "--namespace",
        "dayn-gpu",
        "--create-namespace",
    ]);
    let v1 = recipe(tmp.path(), "stack-v1", "1.2.0");

    // Monday: the cluster matches its recipe, and a snapshot records it.
    aiconform(
        &kc,
        &["diff", "--recipe", v1.to_str().unwrap(), "--fail-on-drift"],
    )
    .assert()
    .code(0)
    .stdout(contains("every component is at the recipe's version"));
    let monday = tmp.path().join("monday.yaml");
    aiconform(
        &kc,
        &["snapshot", "--no-agent", "-o", monday.to_str().unwrap()],
    )
    .assert()
    .success();

    // The chart is upgraded by hand to 1.3.0.
    let packaged = tmp.path().join("charts");
    tools_support::helm(
        &tools,
        &home,
        &[
            "package",
            chart_dir.to_str().unwrap(),
            "--version",
            "1.3.0",
            "--destination",
            packaged.to_str().unwrap(),
        ],
    );
    helm(&[
        "upgrade",
        "gpu-operator",
        packaged.join("gpu-operator-1.3.0.tgz").to_str().unwrap(),
        "--namespace",
        "dayn-gpu",
    ]);

    // Friday: the recipe drift names the release and both versions.
    let out = aiconform(
        &kc,
        &["diff", "--recipe", v1.to_str().unwrap(), "--fail-on-drift"],
    )
    .assert()
    .code(3)
    .get_output()
    .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1.2.0 in dayn-gpu"), "{text}");
    assert!(text.contains("1.3.0 in dayn-gpu"), "{text}");
    assert!(
        text.contains("helm release dayn-gpu/gpu-operator (revision 2, deployed)"),
        "{text}"
    );

    // Snapshot against snapshot: the release's revision moved.
    let friday = tmp.path().join("friday.yaml");
    aiconform(
        &kc,
        &["snapshot", "--no-agent", "-o", friday.to_str().unwrap()],
    )
    .assert()
    .success();
    let out = aiconform(
        &kc,
        &[
            "diff",
            monday.to_str().unwrap(),
            friday.to_str().unwrap(),
            "-o",
            "json",
        ],
    )
    .assert()
    .code(0)
    .get_output()
    .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let change = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "helmReleases[dayn-gpu/gpu-operator].revision")
        .unwrap_or_else(|| panic!("no revision change in {v}"));
    assert_eq!(change["base"], "1");
    assert_eq!(change["target"], "2");

    // Upgrade check from the cluster: it starts from the hand-upgraded 1.3.0. The fixture
    // chart's record (layered with --data) makes every minor release a manual step.
    let v2 = recipe(tmp.path(), "stack-v2", "1.4.0");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("upgrades")).unwrap();
    std::fs::write(
        data.join("upgrades/gpu-operator.yaml"),
        "apiVersion: aiconform.dev/v1alpha1\nkind: ComponentUpgrades\ncomponent: gpu-operator\n\
         reviewed: {from: 1.0.0, through: 2.0.0}\nrules:\n\
         \x20 - {change: minor, verdict: manual, reason: apply the fixture CRD first, \
         source: https://example.com/fixture-notes}\n",
    )
    .unwrap();
    let out = aiconform(
        &kc,
        &[
            "upgrade-check",
            "--from",
            "cluster",
            "--to",
            v2.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "-o",
            "json",
        ],
    )
    .assert()
    .code(3)
    .get_output()
    .clone();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["components"][0];
    assert_eq!(c["component"], "gpu-operator", "{v}");
    assert_eq!(c["from"], "1.3.0", "{v}");
    assert_eq!(c["to"], "1.4.0", "{v}");
    assert_eq!(c["verdict"], "manual", "{v}");

    helm(&["uninstall", "gpu-operator", "--namespace", "dayn-gpu"]);
}
