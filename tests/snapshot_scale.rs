//! A 3,000-node embedded cluster: its snapshot (alike nodes written once, as node classes)
//! reads back everywhere a snapshot is read: `validate --phase readiness`, `recipe
//! --snapshot` and a ConfigMap. Speed and memory at scale are measured by
//! `ci/bench-snapshot`, not here.

use aiconform::cluster::embedded::EmbeddedOptions;
use aiconform::cluster::testing::{fresh, skip, test_options};
use assert_cmd::Command;
use predicates::str::contains;

mod recipe_support;

/// Simulated GPU nodes; with the system node the cluster has 3,000.
const GPU_NODES: u32 = 2_999;

fn aiconform() -> Command {
    Command::cargo_bin("aiconform").unwrap()
}

#[test]
fn three_thousand_node_snapshot_round_trips() {
    let opts = EmbeddedOptions {
        nodes: Some(GPU_NODES),
        ..test_options()
    };
    let cluster = match fresh(&opts) {
        Ok(c) => c,
        Err(reason) => {
            skip::<()>("three_thousand_node_snapshot_round_trips", &reason);
            return;
        }
    };
    let kubeconfig = cluster.kubeconfig.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot.yaml");

    aiconform()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--no-agent", "--output"])
        .arg(&file)
        .assert()
        .success()
        .stderr(contains("3000 node(s)"));
    let text = std::fs::read_to_string(&file).unwrap();
    let snap = aiconform::snapshot::parse(&text, "snapshot.yaml").unwrap();
    assert_eq!(snap.cluster.nodes.len(), 3_000);
    assert!(text.contains("nodeClasses:"), "written as node classes");
    // Every GPU node's ~40 labels and facts are written once, not 2,999 times: the nodes
    // take a line each (name and the patch to its hostname label and provider id).
    let classes = &text[text.find("nodeClasses:").unwrap()..text.find("\n  operators:").unwrap()];
    assert!(
        classes.len() < 200 * 3_000,
        "{} bytes of node classes for 3,000 nodes",
        classes.len()
    );
    // ResourceSlices (one or more per node) take a line each too.
    let slices = text.matches("driver: gpu.nvidia.com").count();
    assert!(slices >= 2_999, "{slices} GPU ResourceSlices");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("driver: gpu.nvidia.com"))
            .count(),
        slices,
        "one line per ResourceSlice"
    );
    assert_eq!(
        aiconform::snapshot::render(&snap)
            .unwrap()
            .lines()
            .skip(5)
            .collect::<Vec<_>>(),
        text.lines().skip(5).collect::<Vec<_>>(),
        "reading and writing again gives the same document (apart from the header)"
    );

    let holds = recipe_support::write_constraint_recipe(
        dir.path(),
        "holds",
        &[("K8s.node.count", "3000"), ("GPU.device.count", ">= 8")],
    );
    let broken = recipe_support::write_constraint_recipe(
        dir.path(),
        "broken",
        &[("K8s.node.count", "2999")],
    );
    for (recipe, code) in [(&holds, 0), (&broken, 1)] {
        aiconform()
            .args(["validate", "--phase", "readiness", "--recipe"])
            .arg(recipe)
            .arg("--snapshot")
            .arg(&file)
            .arg("--report-dir")
            .arg(dir.path().join("reports"))
            .assert()
            .code(code);
    }

    // The simulated H100 nodes run driver 550, older than the base overlay's floor (>= 570),
    // so no recipe fits them: the snapshot is read, criteria come from it, and the reason
    // names three nodes and counts the other 2,996 rather than listing all of them.
    let out = aiconform()
        .args(["recipe", "--snapshot"])
        .arg(&file)
        .assert()
        .failure()
        .stderr(contains("accelerator=h100 (from GPU model"))
        .stderr(contains("no recipe fits the cluster in"))
        .stderr(contains("and 2996 more"))
        .get_output()
        .stderr
        .len();
    assert!(out < 4096, "{out} bytes of stderr");

    aiconform()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--no-agent", "--output", "cm://default/scale-snapshot"])
        .assert()
        .success();
    aiconform()
        .args(["validate", "--phase", "readiness", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--recipe")
        .arg(&holds)
        .args(["--snapshot", "cm://default/scale-snapshot"])
        .arg("--report-dir")
        .arg(dir.path().join("reports"))
        .assert()
        .code(0);
}
