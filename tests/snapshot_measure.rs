//! Snapshot documents and their flattening into measurements.

use std::path::Path;

use aiconform::snapshot::{self, measure};

fn fixture() -> snapshot::Snapshot {
    snapshot::load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml"),
    )
    .expect("fixture snapshot parses")
}

fn values(m: &measure::Measurements, path: &str) -> Vec<(String, String)> {
    m.get(path)
        .unwrap_or_else(|| panic!("no {path} in {:?}", m.keys().collect::<Vec<_>>()))
        .iter()
        .map(|v| (v.value.clone(), v.source.clone()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn cluster_level_paths() {
    let m = measure::flatten(&fixture());
    assert_eq!(
        values(&m, "K8s.server.version"),
        pairs(&[("v1.34.2-eks-a737599", "cluster")])
    );
    assert_eq!(values(&m, "K8s.node.count"), pairs(&[("3", "cluster")]));
    assert_eq!(values(&m, "K8s.node.gpuCount"), pairs(&[("2", "cluster")]));
    assert_eq!(values(&m, "K8s.gpu.total"), pairs(&[("16", "cluster")]));
    assert_eq!(
        values(&m, "Operator.gpu-operator.version"),
        pairs(&[("v25.10.1", "cluster")])
    );
    assert_eq!(
        values(&m, "Operator.gpu-operator.ready"),
        pairs(&[("true", "cluster")])
    );
    assert_eq!(
        values(&m, "Helm.release.gpu-operator.status"),
        pairs(&[("deployed", "helm/gpu-operator")])
    );
    assert_eq!(
        values(&m, "DRA.deviceClass.gpu.nvidia.com"),
        pairs(&[("present", "cluster")])
    );
    assert_eq!(
        values(&m, "DRA.driver.gpu.nvidia.com.devices"),
        pairs(&[("16", "cluster")])
    );
    assert_eq!(
        values(&m, "DRA.driver.gpu.nvidia.com.nodes"),
        pairs(&[("2", "cluster")])
    );
    assert_eq!(
        values(&m, "K8s.crd.clusterpolicies.nvidia.com"),
        pairs(&[("present", "cluster")])
    );
}

#[test]
fn node_level_paths_prefer_agent_and_fall_back() {
    let m = measure::flatten(&fixture());
    assert_eq!(
        values(&m, "OS.kernel.release"),
        pairs(&[
            ("6.8.0-1015-aws", "node/gpu-a"),
            ("6.8.0-1008-aws", "node/gpu-b (nodeInfo)"),
            ("6.8.0-1015-aws", "node/system"),
        ])
    );
    assert_eq!(
        values(&m, "OS.release.VERSION_ID"),
        pairs(&[
            ("24.04", "node/gpu-a"),
            ("24.04", "node/gpu-b (nodeInfo)"),
            ("24.04", "node/system")
        ])
    );
    assert_eq!(
        values(&m, "GPU.device.model"),
        pairs(&[
            ("NVIDIA H100 80GB HBM3", "node/gpu-a"),
            ("NVIDIA-H100-80GB-HBM3", "node/gpu-b (labels)")
        ])
    );
    assert_eq!(
        values(&m, "GPU.device.count"),
        pairs(&[("8", "node/gpu-a"), ("8", "node/gpu-b (labels)")])
    );
    // Driver-free detection on gpu-a: the driver version comes from its labels.
    assert_eq!(
        values(&m, "GPU.driver.version"),
        pairs(&[
            ("580.95.05", "node/gpu-a (labels)"),
            ("580.95.05", "node/gpu-b (labels)")
        ])
    );
    assert_eq!(
        values(&m, "GPU.detection.source"),
        pairs(&[("sysfs", "node/gpu-a"), ("labels", "node/gpu-b (labels)")])
    );
    assert_eq!(
        values(&m, "OS.sysctl.vm.max_map_count"),
        pairs(&[("262144", "node/gpu-a"), ("65530", "node/system")])
    );
    assert_eq!(
        values(&m, "OS.module.nvidia_peermem"),
        pairs(&[("loaded", "node/gpu-a")])
    );
    assert!(
        !m.contains_key("GPU.mig.mode"),
        "MIG mode is only known from NVML"
    );
}

#[test]
fn snapshot_round_trips_through_yaml() {
    let snap = fixture();
    let text = snapshot::render(&snap).unwrap();
    let back = snapshot::parse(&text, "rendered").unwrap();
    assert_eq!(back, snap);
    // Deterministic: rendering twice gives the same bytes.
    assert_eq!(snapshot::render(&back).unwrap(), text);
}

#[test]
fn expected_nodes_per_path() {
    let snap = fixture();
    assert_eq!(measure::expected_nodes(&snap, "K8s.server.version"), None);
    assert_eq!(measure::expected_nodes(&snap, "K8s.node.count"), None);
    assert_eq!(
        measure::expected_nodes(&snap, "OS.kernel.release").unwrap(),
        ["gpu-a", "gpu-b", "system"]
    );
    assert_eq!(
        measure::expected_nodes(&snap, "GPU.driver.version").unwrap(),
        ["gpu-a", "gpu-b"]
    );
    assert!(measure::source_is_node("node/gpu-a (labels)", "gpu-a"));
    assert!(measure::source_is_node("node/gpu-a", "gpu-a"));
    assert!(!measure::source_is_node("node/gpu-ab", "gpu-a"));
    assert!(!measure::source_is_node("cluster", "gpu-a"));
}
