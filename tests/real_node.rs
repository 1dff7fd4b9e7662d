//! The embedded cluster's real node (kubelet + containerd, `ci/testcluster/internal/realnode`):
//! pods run for real from the locally built aiconform image (logs, exec, probes and the pod
//! IP through the API server), and the snapshot agent collects this machine's facts from
//! inside its container.
//!
//! Needs root, containerd, runc, CNI plugins, the kubelet (ci/testcluster/build.sh) and the
//! image (ci/image/build.sh); skipped with the reason otherwise, fatal when
//! `AICONFORM_REQUIRE_CLUSTER=1` (ci/test).

use std::time::Duration;

use aiconform::cluster::embedded::RunningCluster;
use aiconform::cluster::testing;
use aiconform::snapshot::job::{AgentJobOptions, DEFAULT_AGENT_IMAGE};
use aiconform::snapshot::{self, AgentOutcome, TakeOptions};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::io::AsyncReadExt;

const REAL_NODE_LABEL: &str = "testcluster.aiconform.dev/real-node=true";

/// One cluster with a real node for this test binary, or why there is none.
fn cluster(test: &str) -> Option<&'static RunningCluster> {
    testing::real_node_or_skip(test)
}

async fn client(c: &RunningCluster) -> kube::Client {
    aiconform::cluster::connect(Some(&c.kubeconfig))
        .await
        .expect("connect to the embedded cluster")
}

async fn namespace(client: &kube::Client, name: &str) -> Api<Pod> {
    testing::create_namespace(client, name).await;
    Api::namespaced(client.clone(), name)
}

/// A pod of the aiconform image on the real node serving its REST API on :8080, probed on
/// `probe_port`.
fn server_pod(name: &str, probe_port: u16) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"testcluster.aiconform.dev/real-node": "true"},
            "tolerations": [{"key": "testcluster.aiconform.dev/real-node", "operator": "Exists"}],
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "server",
                "image": DEFAULT_AGENT_IMAGE,
                "imagePullPolicy": "Never",
                "args": ["serve", "--listen", "0.0.0.0:8080"],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": probe_port},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080},
                    "periodSeconds": 2,
                },
                "securityContext": {
                    "runAsNonRoot": true,
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    }))
    .unwrap()
}

fn is_ready(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.status.as_ref()?.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn cleanup(client: &kube::Client, ns: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}

#[tokio::test]
async fn pods_on_the_real_node_run_for_real() {
    let Some(c) = cluster("pods_on_the_real_node_run_for_real") else {
        return;
    };
    let client = client(c).await;
    let ns = "t-realnode-pods";
    let pods = namespace(&client, ns).await;
    pods.create(&PostParams::default(), &server_pod("server", 8080))
        .await
        .expect("create pod");
    // Ready only once the kubelet's readiness probe got an answer from the process.
    tokio::time::timeout(
        Duration::from_secs(120),
        await_condition(pods.clone(), "server", |p: Option<&Pod>| is_ready(p)),
    )
    .await
    .expect("the pod becomes Ready within 120s")
    .unwrap();
    let pod = pods.get("server").await.unwrap();
    let status = pod.status.unwrap();
    let ip = status.pod_ip.expect("a pod IP");
    assert!(
        ip.starts_with("10.244."),
        "pod IP from the CNI bridge: {ip}"
    );
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("real-0"));

    // Logs through the API server (-> kubelet -> containerd).
    let logs = pods.logs("server", &LogParams::default()).await.unwrap();
    assert!(
        logs.contains("aiconform serve: listening on http://0.0.0.0:8080"),
        "{logs}"
    );

    // Exec through the API server.
    let mut proc = pods
        .exec(
            "server",
            ["aiconform", "--version"],
            &AttachParams::default().stderr(false),
        )
        .await
        .expect("exec");
    let mut out = String::new();
    proc.stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    proc.join().await.unwrap();
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");

    // The pod IP through the API server's pod proxy.
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{ns}/pods/server:8080/proxy/healthz"
    ))
    .body(Vec::new())
    .unwrap();
    let body = client.request_text(req).await.expect("pod proxy");
    assert!(body.to_lowercase().contains("ok"), "{body}");

    // A probe that cannot succeed is reported by the kubelet (Unhealthy event), and the pod
    // never turns Ready.
    pods.create(&PostParams::default(), &server_pod("unready", 9))
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut unhealthy = watcher(
        events,
        watcher::Config::default().fields("involvedObject.name=unready,reason=Unhealthy"),
    )
    .applied_objects()
    .boxed();
    let event = tokio::time::timeout(Duration::from_secs(120), unhealthy.try_next())
        .await
        .expect("an Unhealthy event within 120s")
        .unwrap()
        .expect("event");
    assert!(
        event
            .message
            .unwrap_or_default()
            .contains("Readiness probe failed"),
        "probe failure comes from the kubelet"
    );
    assert!(!is_ready(pods.get("unready").await.ok().as_ref()));
    cleanup(&client, ns).await;
}

fn host(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test]
async fn snapshot_agent_reads_this_machine_from_its_container() {
    let Some(c) = cluster("snapshot_agent_reads_this_machine_from_its_container") else {
        return;
    };
    let client = client(c).await;
    let opts = TakeOptions {
        node_selector: Some(REAL_NODE_LABEL.into()),
        agent: Some(AgentJobOptions {
            timeout: Duration::from_secs(120),
            ..AgentJobOptions::default()
        }),
    };
    let (snap, warnings) = snapshot::take(&client, &opts, &|p| eprintln!("{p}"))
        .await
        .expect("snapshot");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(snap.cluster.nodes.len(), 1);
    let node = &snap.cluster.nodes[0];
    assert_eq!(node.name, "real-0");
    let report = match &node.agent {
        AgentOutcome::Collected { report } => report,
        other => panic!("agent did not run on the real node: {other:?}"),
    };

    // Read through the pod's hostPath mounts of this machine's /proc, /sys and os-release.
    assert_eq!(
        report.kernel_release.as_deref(),
        Some(host("/proc/sys/kernel/osrelease").as_str())
    );
    let os = aiconform::snapshot::osrelease::parse(&host("/etc/os-release"));
    assert_eq!(report.os_release.get("ID"), os.get("ID"));
    assert_eq!(report.os_release.get("VERSION_ID"), os.get("VERSION_ID"));
    let cpu = aiconform::snapshot::cpu::parse_cpuinfo(&host("/proc/cpuinfo"));
    assert_eq!(report.cpu, cpu);
    assert!(cpu.logical_cpus > 0);
    let mut pci: Vec<String> = std::fs::read_dir("/sys/bus/pci/devices")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    pci.sort();
    let seen: Vec<String> = report
        .pci_devices
        .iter()
        .map(|d| d.address.clone())
        .collect();
    assert_eq!(seen, pci);
    // The agent ran in a container: the image is FROM scratch (no os-release of its own, so
    // the one above came from the mount) and the pod has its own UTS namespace.
    assert_ne!(report.hostname, host("/proc/sys/kernel/hostname"));
    assert!(!report.hostname.is_empty());
    // Kernel modules as this machine has them (a kernel without module support has no
    // /proc/modules: then that is the only note).
    match std::fs::read_to_string("/proc/modules") {
        Ok(text) => {
            assert_eq!(
                report.modules,
                aiconform::snapshot::agent::parse_modules(&text)
            );
            assert!(report.notes.is_empty(), "{:?}", report.notes);
        }
        Err(_) => assert!(
            report.notes.len() == 1 && report.notes[0].contains("/host/proc/modules"),
            "{:?}",
            report.notes
        ),
    }
}
