//! `aiconform snapshot` and `validate --phase readiness` against the embedded test cluster.
//! Skipped (with the reason printed) when the cluster binary is unavailable, unless
//! AICONFORM_REQUIRE_CLUSTER=1.

use std::path::Path;

use aiconform::cluster::testing::shared_or_skip;
use aiconform::snapshot::{self, AgentOutcome};
use assert_cmd::Command;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::Api;
use kube::api::ListParams;
use predicates::str::contains;

mod recipe_support;

/// The recipe the readiness checks here use, as `<dir>/recipe.yaml`.
fn write_recipe(dir: &Path, constraints: &[(&str, &str)]) -> std::path::PathBuf {
    recipe_support::write_constraint_recipe(dir, "recipe", constraints)
}

/// The agent namespace a snapshot run reported on stderr.
fn agent_namespace(stderr: &str) -> String {
    stderr
        .split_whitespace()
        .find(|w| w.starts_with(snapshot::job::NAMESPACE_PREFIX))
        .unwrap_or_else(|| panic!("no agent namespace in stderr: {stderr}"))
        .to_string()
}

/// What a snapshot run left behind: agent pods still running or a namespace not being
/// deleted when it returns, or a namespace (with its finished pods and reports) the cluster
/// has not removed within a minute (its controller starts after a 5 s grace period).
async fn leftovers(kubeconfig: &Path, namespace: &str) -> Vec<String> {
    use kube::runtime::wait::{await_condition, conditions};
    let client = aiconform::cluster::connect(Some(kubeconfig)).await.unwrap();
    let mut out = Vec::new();
    let running = ListParams::default()
        .labels("app.kubernetes.io/name=aiconform-agent")
        .fields("status.phase!=Succeeded,status.phase!=Failed");
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&running)
        .await
        .unwrap();
    out.extend(pods.items.into_iter().map(|p| {
        format!(
            "pod {} ({:?})",
            p.metadata.name.unwrap_or_default(),
            p.status.and_then(|s| s.phase)
        )
    }));
    let namespaces = Api::<Namespace>::all(client);
    if let Some(ns) = namespaces.get_opt(namespace).await.unwrap() {
        if ns.metadata.deletion_timestamp.is_none() {
            out.push(format!("namespace {namespace} (not deleted)"));
        } else if out.is_empty() {
            let uid = ns.metadata.uid.unwrap_or_default();
            let gone = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                await_condition(namespaces, namespace, conditions::is_deleted(&uid)),
            )
            .await;
            if !matches!(gone, Ok(Ok(_))) {
                out.push(format!("namespace {namespace} still there after 60s"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_with_agents_then_readiness() {
    let Some(cluster) = shared_or_skip("snapshot_with_agents_then_readiness") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshot.yaml");
    let kubeconfig = cluster.kubeconfig.clone();
    let out2 = out.clone();
    let assert = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--timeout", "60", "--output"])
            .arg(&out2)
            .assert()
    })
    .await
    .unwrap();
    let assert = assert.success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(!stderr.contains("agent unavailable"), "{stderr}");
    assert!(stderr.contains("API requests"), "{stderr}");

    let snap = snapshot::load_file(&out).unwrap();
    let c = &snap.cluster;
    assert!(
        c.server_version.git_version.starts_with("v1.34"),
        "{:?}",
        c.server_version
    );
    let gpu_nodes: Vec<_> = c
        .nodes
        .iter()
        .filter(|n| n.gpu.capacity == Some(8))
        .collect();
    assert_eq!(
        gpu_nodes.len(),
        2,
        "nodes: {:?}",
        c.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
    for n in &gpu_nodes {
        assert_eq!(n.gpu.product.as_deref(), Some("NVIDIA-H100-80GB-HBM3"));
        assert_eq!(n.node_info.kernel_version, "6.8.0-1015-aws");
        assert!(
            n.taints.iter().any(|t| t.key == "nvidia.com/gpu"),
            "{:?}",
            n.taints
        );
    }
    for n in &c.nodes {
        // The agent ran on every node (a process of the aiconform binary on the simulated
        // node) and read the node's tree through its hostPath mounts.
        let report = n
            .agent
            .report()
            .unwrap_or_else(|| panic!("{}: no agent report: {:?}", n.name, n.agent));
        assert_eq!(
            report.os_release.get("ID").map(String::as_str),
            Some("ubuntu")
        );
        assert!(report.kernel_release.is_some(), "{}: {report:?}", n.name);
        let gpus = &report.gpu.devices;
        if n.gpu.capacity == Some(8) {
            assert_eq!(report.kernel_release.as_deref(), Some("6.8.0-1015-aws"));
            assert_eq!(gpus.len(), 8, "{}: {gpus:?}", n.name);
            assert!(
                gpus.iter().all(|g| g.model == "NVIDIA H100 80GB HBM3"),
                "{gpus:?}"
            );
            assert!(report.modules.iter().any(|m| m == "nvidia"), "{report:?}");
        } else {
            assert!(gpus.is_empty(), "{}: {gpus:?}", n.name);
        }
    }
    assert!(
        c.device_classes.iter().any(|d| d.name == "gpu.nvidia.com"),
        "{:?}",
        c.device_classes
    );
    assert_eq!(
        c.resource_slices
            .iter()
            .filter(|s| s.driver == "gpu.nvidia.com")
            .map(|s| s.device_count)
            .sum::<usize>(),
        16,
        "{:?}",
        c.resource_slices
    );
    assert!(snap.metadata.agents);

    let left = leftovers(&cluster.kubeconfig, &agent_namespace(&stderr)).await;
    assert!(left.is_empty(), "snapshot left objects behind: {left:?}");

    // Readiness of a small recipe against this snapshot.
    let pass = write_recipe(
        dir.path(),
        &[
            ("K8s.server.version", ">= 1.32, < 1.36"),
            ("OS.release.ID", "ubuntu"),
            ("OS.release.VERSION_ID", "24.04"),
            ("OS.kernel.release", ">= 6.8"),
            ("GPU.device.model", "*H100*"),
            ("GPU.device.count", "8"),
            ("GPU.driver.version", ">= 550"),
            ("K8s.node.gpuCount", "== 2"),
            ("DRA.deviceClass.gpu.nvidia.com", "present"),
        ],
    );
    let (p, o) = (pass.clone(), out.clone());
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("validate")
            .arg("--recipe")
            .arg(&p)
            .arg("--snapshot")
            .arg(&o)
            .arg("--report-dir")
            .arg(o.with_file_name("reports-pass"))
            .assert()
            .code(0)
            .stdout(contains("9 passed, 0 failed, 0 missing"));
    })
    .await
    .unwrap();
    let fail = write_recipe(
        dir.path(),
        &[
            ("OS.kernel.release", ">= 6.9"),
            ("OS.sysctl.vm.max_map_count", ">= 262144"),
        ],
    );
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("validate")
            .arg("--recipe")
            .arg(&fail)
            .arg("--snapshot")
            .arg(&out)
            .arg("--report-dir")
            .arg(out.with_file_name("reports-fail"))
            .assert()
            .code(1)
            .stdout(contains("1 passed, 1 failed, 0 missing"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_to_configmap_without_agent() {
    let Some(cluster) = shared_or_skip("snapshot_to_configmap_without_agent") else {
        return;
    };
    let kubeconfig = cluster.kubeconfig.clone();
    let kc = kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--no-agent",
                "--node-selector",
                "nvidia.com/gpu.present=true",
                "--output",
                "cm://default/aiconform-snapshot",
            ])
            .assert()
            .success();
    })
    .await
    .unwrap();
    let client = aiconform::cluster::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let snap = snapshot::load_configmap(&client, "default", "aiconform-snapshot")
        .await
        .unwrap();
    assert_eq!(snap.cluster.nodes.len(), 2, "selector keeps GPU nodes only");
    assert!(
        snap.cluster
            .nodes
            .iter()
            .all(|n| n.agent == AgentOutcome::Skipped)
    );
    assert_eq!(snap.metadata.node_selector, "nvidia.com/gpu.present=true");

    let dir = tempfile::tempdir().unwrap();
    let recipe = write_recipe(
        dir.path(),
        &[("K8s.node.count", "2"), ("GPU.device.count", ">= 8")],
    );
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("validate")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--recipe")
            .arg(&recipe)
            .args(["--snapshot", "cm://default/aiconform-snapshot"])
            .assert()
            .code(0);
    })
    .await
    .unwrap();
    // Writing again replaces the ConfigMap (no "already exists").
    let kc = cluster.kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["--no-agent", "--output", "cm://default/aiconform-snapshot"])
            .assert()
            .success();
    })
    .await
    .unwrap();
    let snap = snapshot::load_configmap(&client, "default", "aiconform-snapshot")
        .await
        .unwrap();
    assert_eq!(snap.cluster.nodes.len(), 3, "all nodes without a selector");
}

#[test]
fn missing_configmap_namespace_is_a_clear_error() {
    let Some(cluster) = shared_or_skip("missing_configmap_namespace_is_a_clear_error") else {
        return;
    };
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["--no-agent", "--output", "cm://no-such-ns/snap"])
        .assert()
        .failure()
        .stderr(contains("no-such-ns"));
}

/// Agent pods that never finish (an image the embedded cluster only simulates, so its
/// container runs forever): the run gives up after --timeout, records every node as
/// unavailable, and still removes everything.
#[tokio::test(flavor = "multi_thread")]
async fn agent_timeout_cleans_up() {
    let Some(cluster) = shared_or_skip("agent_timeout_cleans_up") else {
        return;
    };
    let kc = cluster.kubeconfig.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap.yaml");
    let out2 = out.clone();
    let assert = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--timeout",
                "3",
                "--agent-image",
                "example.com/never-finishes:1",
                "--output",
            ])
            .arg(&out2)
            .assert()
            .success()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let snap = snapshot::load_file(&out).unwrap();
    for n in &snap.cluster.nodes {
        match &n.agent {
            AgentOutcome::Unavailable { reason } => {
                assert!(
                    reason.contains("did not report within 3s (pod: Running)"),
                    "{}: {reason}",
                    n.name
                )
            }
            other => panic!("{}: {other:?}", n.name),
        }
    }
    let left = leftovers(&cluster.kubeconfig, &agent_namespace(&stderr)).await;
    assert!(left.is_empty(), "left behind after timeout: {left:?}");
}

/// Ctrl-C while agents run: exit 130 and nothing left behind.
#[tokio::test(flavor = "multi_thread")]
async fn interrupt_cleans_up() {
    use std::io::{BufRead, BufReader};
    let Some(cluster) = shared_or_skip("interrupt_cleans_up") else {
        return;
    };
    let bin = assert_cmd::cargo::cargo_bin("aiconform");
    let mut child = std::process::Command::new(bin)
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args([
            "--timeout",
            "300",
            "--agent-image",
            "example.com/never-finishes:1",
            "--output",
            "/dev/null",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("snapshot should report the agent namespace");
    let namespace = agent_namespace(&first);
    // Let the pods be created, then interrupt.
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pods.list(&ListParams::default()).await.unwrap().items.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "agent pods never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert_eq!(status.code(), Some(130), "stderr: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    let left = leftovers(&cluster.kubeconfig, &namespace).await;
    assert!(left.is_empty(), "left behind after Ctrl-C: {left:?}");
}

/// Operators are found from Helm release Secret labels and workloads; the release payload
/// (Secret data) never reaches the snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn operators_from_helm_labels_without_secret_data() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::PostParams;
    let Some(cluster) = shared_or_skip("operators_from_helm_labels_without_secret_data") else {
        return;
    };
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let ns = "gpu-operator";
    let _ = Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "sh.helm.release.v1.gpu-operator.v2",
            "labels": {"owner": "helm", "name": "gpu-operator", "status": "deployed", "version": "2"},
        },
        "type": "helm.sh/release.v1",
        "stringData": {"release": "TOP-SECRET-PAYLOAD"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "gpu-operator",
            "labels": {"app.kubernetes.io/version": "v25.10.1"},
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "gpu-operator"}},
            "template": {
                "metadata": {"labels": {"app": "gpu-operator"}},
                "spec": {"containers": [{"name": "op", "image": "nvcr.io/nvidia/gpu-operator:v25.10.1"}]},
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let kc = cluster.kubeconfig.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["--no-agent", "--output", "-"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    })
    .await
    .unwrap();
    let text = String::from_utf8(output).unwrap();
    assert!(
        !text.contains("TOP-SECRET-PAYLOAD"),
        "secret data leaked into the snapshot"
    );
    let snap = snapshot::parse(&text, "stdout").unwrap();
    let op = &snap.cluster.operators["gpu-operator"];
    assert_eq!(op.version.as_deref(), Some("v25.10.1"));
    assert_eq!(op.ready, Some(true));
    assert!(
        op.evidence
            .contains(&"helm:gpu-operator/gpu-operator".to_string()),
        "{op:?}"
    );
    assert!(
        op.evidence
            .contains(&"deployment:gpu-operator/gpu-operator".to_string()),
        "{op:?}"
    );
    let rel = snap
        .cluster
        .helm_releases
        .iter()
        .find(|r| r.name == "gpu-operator")
        .expect("helm release listed");
    assert_eq!(
        (rel.revision.as_str(), rel.status.as_str()),
        ("2", "deployed")
    );
}

#[test]
fn selector_matching_no_node_warns() {
    let Some(cluster) = shared_or_skip("selector_matching_no_node_warns") else {
        return;
    };
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("snapshot")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["--node-selector", "no-such-label=x", "--output", "-"])
        .assert()
        .success()
        .stderr(contains("no node matches --node-selector no-such-label=x"))
        .stdout(contains("nodeClasses: []"));
}

/// PSS-restricted agents (the namespace enforces `restricted`, so the API server admits the
/// pods only if they comply) still report the kernel, modules and PCI devices a container
/// sees; a toleration list that misses the GPU taint skips the GPU nodes with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn restricted_agents_and_tolerations() {
    let Some(cluster) = shared_or_skip("restricted_agents_and_tolerations") else {
        return;
    };
    let kc = cluster.kubeconfig.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap.yaml");
    let out2 = out.clone();
    tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["--agent-restricted", "--timeout", "60", "--output"])
            .arg(&out2)
            .assert()
            .success();
    })
    .await
    .unwrap();
    let snap = snapshot::load_file(&out).unwrap();
    for n in &snap.cluster.nodes {
        let r = n
            .agent
            .report()
            .unwrap_or_else(|| panic!("{}: {:?}", n.name, n.agent));
        assert!(r.kernel_release.is_some(), "{}: {r:?}", n.name);
        assert!(
            r.os_release.is_empty(),
            "the image has no os-release: {r:?}"
        );
        if n.gpu.capacity == Some(8) {
            assert_eq!(r.gpu.devices.len(), 8, "{}: {r:?}", n.name);
        }
    }

    let kc = cluster.kubeconfig.clone();
    let out2 = out.clone();
    let assert = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .arg("snapshot")
            .arg("--kubeconfig")
            .arg(&kc)
            .args([
                "--agent-toleration",
                "dedicated=ml:NoSchedule",
                "--timeout",
                "60",
                "--output",
            ])
            .arg(&out2)
            .assert()
            .success()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    let snap = snapshot::load_file(&out).unwrap();
    for n in &snap.cluster.nodes {
        match (&n.agent, n.gpu.capacity) {
            (AgentOutcome::Unavailable { reason }, Some(8)) => {
                assert!(
                    reason.contains("taint nvidia.com/gpu=present:NoSchedule is not tolerated"),
                    "{reason}"
                )
            }
            (AgentOutcome::Collected { .. }, None) => {}
            other => panic!("{}: {other:?}", n.name),
        }
    }
    assert!(stderr.contains("using Node facts"), "{stderr}");
}

/// The agent's two ways of returning a report: a report that fits in a termination message
/// goes there and creates no ConfigMap; a larger one (a node with 1,500 PCI functions)
/// leaves the message empty and is created as a ConfigMap.
#[tokio::test(flavor = "multi_thread")]
async fn agent_report_in_termination_message_or_configmap() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{DeleteParams, PostParams};
    let Some(cluster) = shared_or_skip("agent_report_in_termination_message_or_configmap") else {
        return;
    };
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let ns = format!("agent-transport-{}", aiconform::name::random_suffix(6));
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sysfs/h100-sxm-8x");
    let dir = tempfile::tempdir().unwrap();
    let big_sys = dir.path().join("sys");
    for i in 0..1500u32 {
        let dev = big_sys.join(format!(
            "bus/pci/devices/0000:{:02x}:{:02x}.{}",
            i / 256,
            (i / 8) % 32,
            i % 8
        ));
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("vendor"), "0x15b3\n").unwrap();
        std::fs::write(dev.join("device"), format!("{:#06x}\n", 0x1000 + i)).unwrap();
        std::fs::write(dev.join("class"), "0x020700\n").unwrap();
    }
    let run = |sys: &Path, name: &str| {
        let message = dir.path().join(format!("{name}.msg"));
        std::fs::write(&message, "").unwrap();
        Command::cargo_bin("aiconform")
            .unwrap()
            .env("KUBECONFIG", &cluster.kubeconfig)
            .args(["agent", "--no-nvml", "--node-name", "gpu-0", "--output"])
            .arg(format!("cm://{ns}/{name}"))
            .arg("--termination-log")
            .arg(&message)
            .arg("--sysfs-root")
            .arg(sys)
            .arg("--proc-root")
            .arg(fixture.join("proc"))
            .arg("--etc-root")
            .arg(fixture.join("etc"))
            .assert()
            .success();
        std::fs::read_to_string(message).unwrap()
    };
    // Blocking commands on this runtime worker (the cluster is shared with async tests).
    let (small, large) = tokio::task::block_in_place(|| {
        (run(&fixture.join("sys"), "small"), run(&big_sys, "large"))
    });

    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let report = snapshot::message::decode(&small).unwrap();
    assert_eq!(report.gpu.devices.len(), 8, "{report:?}");
    assert!(cms.get_opt("small").await.unwrap().is_none());
    assert_eq!(large, "", "a report too large for a termination message");
    let cm = cms.get("large").await.unwrap();
    let report = snapshot::job::report_from_configmap(&cm, "gpu-0").unwrap();
    assert_eq!(report.pci_devices.len(), 1500);
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
}

/// A snapshot too large for one ConfigMap even gzipped (per-node values that do not
/// compress, like GPU UUIDs) is split over part ConfigMaps and read back whole; writing a
/// small snapshot under the same name later removes the parts.
#[tokio::test(flavor = "multi_thread")]
async fn large_snapshot_is_split_over_configmaps_and_read_back() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let Some(cluster) = shared_or_skip("large_snapshot_is_split_over_configmaps_and_read_back")
    else {
        return;
    };
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let base = snapshot::parse(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml"),
        )
        .unwrap(),
        "h100-eks.yaml",
    )
    .unwrap();
    let mut big = base.clone();
    let template = base.cluster.nodes[0].clone();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    big.cluster.nodes = (0..4_000)
        .map(|i| {
            let mut node = template.clone();
            node.name = format!("gpu-{i:05}");
            for g in 0..32 {
                let mut uuid = String::from("GPU-");
                for _ in 0..2 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    uuid.push_str(&format!("{state:016x}"));
                }
                node.labels
                    .insert(format!("example.com/gpu-{g}-uuid"), uuid);
            }
            node
        })
        .collect();
    let text = snapshot::render(&big).unwrap();
    snapshot::save_configmap(&client, "default", "split-snapshot", &text)
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let parts = cms
        .list(&ListParams::default().labels("aiconform.dev/snapshot-of=split-snapshot"))
        .await
        .unwrap();
    assert!(
        !parts.items.is_empty(),
        "{} bytes fit one ConfigMap",
        text.len()
    );
    let back = snapshot::load_configmap(&client, "default", "split-snapshot")
        .await
        .unwrap();
    assert_eq!(back.cluster, big.cluster);

    snapshot::save_configmap(
        &client,
        "default",
        "split-snapshot",
        &snapshot::render(&base).unwrap(),
    )
    .await
    .unwrap();
    let parts = cms
        .list(&ListParams::default().labels("aiconform.dev/snapshot-of=split-snapshot"))
        .await
        .unwrap();
    assert!(parts.items.is_empty(), "stale parts left behind");
    let back = snapshot::load_configmap(&client, "default", "split-snapshot")
        .await
        .unwrap();
    assert_eq!(back.cluster, base.cluster);
}
