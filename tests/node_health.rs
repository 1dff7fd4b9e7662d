//! `aiconform run --phase node-health` against the embedded cluster: readings come from the
//! node agents running in the simulated nodes' containers (sysfs, /dev/kmsg, the
//! nvidia-smi and dcgmi the runtime injects). Healthy nodes pass every check; with one
//! hardware fault per check spread over the nodes, exactly the faulted check fails, and
//! only for the faulted node.

mod suites_support;

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use aiconform::cluster::embedded::EmbeddedOptions;
use aiconform::cluster::testing::{shared_or_skip, test_options};
use suites_support::start_fresh;

const CHECKS: &[&str] = &[
    "gpu-count",
    "xid",
    "ecc",
    "nvlink",
    "pcie",
    "infiniband",
    "thermal",
    "dcgm-diag",
];

/// Run the node-health phase with an H100 recipe on an InfiniBand fabric (AKS training:
/// 400 Gb/s per port) and return the exit code and the CTRF tests by name.
fn run_node_health(kubeconfig: &Path, extra: &[&str]) -> (i32, BTreeMap<String, Value>) {
    let report = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("aiconform")
        .unwrap()
        .args([
            "run",
            "--service",
            "aks",
            "--accelerator",
            "h100",
            "--intent",
            "training",
            "--phase",
            "node-health",
            "--suite",
            "node-health",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .arg("--report-dir")
        .arg(report.path())
        .args(extra)
        .timeout(std::time::Duration::from_secs(600))
        .output()
        .unwrap();
    let text = std::fs::read_to_string(report.path().join("ctrf.json")).unwrap_or_else(|e| {
        panic!(
            "no ctrf.json ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let doc: Value = serde_json::from_str(&text).unwrap();
    let tests = doc["results"]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    let html = std::fs::read_to_string(report.path().join("report.html")).unwrap();
    assert!(html.contains("<section id=\"nodes\">"), "no node grid");
    (out.status.code().unwrap_or(-1), tests)
}

fn status(tests: &BTreeMap<String, Value>, name: &str) -> String {
    tests
        .get(name)
        .unwrap_or_else(|| panic!("no test {name}: {:#?}", tests.keys().collect::<Vec<_>>()))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn message(tests: &BTreeMap<String, Value>, name: &str) -> String {
    tests[name]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn healthy_nodes_pass_every_check() {
    let Some(cluster) = shared_or_skip("healthy_nodes_pass_every_check") else {
        return;
    };
    let (code, tests) = run_node_health(&cluster.kubeconfig, &[]);
    for check in CHECKS {
        let id = format!("node-health/{check}");
        assert_eq!(
            status(&tests, &id),
            "passed",
            "{id}: {}",
            message(&tests, &id)
        );
        for node in ["gpu-0", "gpu-1"] {
            let n = format!("{id}[{node}]");
            assert_eq!(status(&tests, &n), "passed", "{n}: {}", message(&tests, &n));
        }
    }
    assert_eq!(code, 0);
    let m = message(&tests, "node-health/gpu-count[gpu-0]");
    assert_eq!(m, "8 GPUs seen via sysfs");
    let m = message(&tests, "node-health/infiniband[gpu-1]");
    assert_eq!(m, "8 port(s) ACTIVE/LinkUp at 400 Gb/sec (4X NDR)");
}

#[tokio::test]
async fn each_fault_fails_exactly_its_check_on_its_node() {
    let test = "each_fault_fails_exactly_its_check_on_its_node";
    let faults: &[(&str, &str, &str)] = &[
        ("gpu-0", "xid79", "xid"),
        ("gpu-0", "pcie-x8", "pcie"),
        ("gpu-0", "ib-rate-half", "infiniband"),
        ("gpu-1", "missing-gpu", "gpu-count"),
        ("gpu-2", "row-remap-pending", "ecc"),
        ("gpu-2", "nvlink-down", "nvlink"),
    ];
    let mut extra_args = Vec::new();
    for (node, fault, _) in faults {
        extra_args.push("--node-fault".to_string());
        extra_args.push(format!("{node}={fault}"));
    }
    let opts = EmbeddedOptions {
        nodes: Some(4),
        extra_args,
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let kubeconfig = cluster.kubeconfig.clone();
    let (code, tests) = tokio::task::spawn_blocking(move || run_node_health(&kubeconfig, &[]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    for check in CHECKS {
        let id = format!("node-health/{check}");
        let faulted = faults.iter().any(|(_, _, c)| c == check);
        let want = if faulted { "failed" } else { "passed" };
        assert_eq!(status(&tests, &id), want, "{id}: {}", message(&tests, &id));
        for node in ["gpu-0", "gpu-1", "gpu-2", "gpu-3"] {
            let n = format!("{id}[{node}]");
            let bad = faults.iter().any(|(fn_, _, c)| *fn_ == node && c == check);
            let want = if bad { "failed" } else { "passed" };
            assert_eq!(status(&tests, &n), want, "{n}: {}", message(&tests, &n));
        }
    }
    let m = |n: &str| message(&tests, &format!("node-health/{n}"));
    assert!(
        m("xid[gpu-0]").starts_with("fatal Xid 79 on GPU 3 (GPU-")
            && m("xid[gpu-0]").contains(", 0000:4b:00.0): pid='<unknown>'"),
        "{}",
        m("xid[gpu-0]")
    );
    assert!(
        m("pcie[gpu-0]").contains("0000:4b:00.0): x8 of x16"),
        "{}",
        m("pcie[gpu-0]")
    );
    assert!(
        m("infiniband[gpu-0]")
            .starts_with("mlx5_0 port 1: rate 200 Gb/sec (4X HDR) (expected 400 Gb/s)"),
        "{}",
        m("infiniband[gpu-0]")
    );
    assert!(
        m("gpu-count[gpu-1]").contains("7 of 8 GPUs expected by the recipe")
            && m("gpu-count[gpu-1]")
                .contains("7 GPUs seen but the node advertises 8 nvidia.com/gpu")
            && m("gpu-count[gpu-1]").contains("missing PCI 0000:4b:00.0 (present on its peers)"),
        "{}",
        m("gpu-count[gpu-1]")
    );
    assert!(
        m("ecc[gpu-2]").starts_with("GPU 3 (GPU-") && m("ecc[gpu-2]").contains("row remap pending"),
        "{}",
        m("ecc[gpu-2]")
    );
    assert!(
        m("nvlink[gpu-2]").contains(", 0000:4b:00.0): 17 of 18 NVLinks up"),
        "{}",
        m("nvlink[gpu-2]")
    );

    // --fail-fast: the first failing case stops at its first bad node and the rest do not run.
    let kubeconfig = cluster.kubeconfig.clone();
    let (code, tests) =
        tokio::task::spawn_blocking(move || run_node_health(&kubeconfig, &["--fail-fast"]))
            .await
            .unwrap();
    assert_eq!(code, 1);
    let gpu_count = message(&tests, "node-health/gpu-count");
    assert!(
        gpu_count.contains("stopped at the first bad node (--fail-fast): 2 node(s) not evaluated"),
        "{gpu_count}"
    );
    assert_eq!(status(&tests, "node-health/xid"), "skipped");
    assert!(
        message(&tests, "node-health/xid")
            .contains("--fail-fast stopped the run after node-health/gpu-count failed"),
        "{}",
        message(&tests, "node-health/xid")
    );
}
