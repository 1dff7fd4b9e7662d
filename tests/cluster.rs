//! The embedded test cluster behaves like Kubernetes: GPU nodes, device-plugin GPUs, DRA
//! allocation and all-or-nothing gang scheduling.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use aiconform::cluster::testing::{self, fresh, shared_or_skip, skip, test_options};

async fn client(kubeconfig: &std::path::Path) -> Client {
    aiconform::cluster::connect(Some(kubeconfig))
        .await
        .expect("connect to embedded cluster")
}

async fn namespace(client: &Client, name: &str) -> Api<Pod> {
    let ns: Api<Namespace> = Api::all(client.clone());
    let _ = ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await;
    Api::namespaced(client.clone(), name)
}

fn gpu_pod(name: &str, gpus: u32, labels: BTreeMap<&str, &str>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [{"name": "c", "image": "nvcr.io/nvidia/cuda:12.8.0-base-ubuntu24.04",
                "resources": {"limits": {"nvidia.com/gpu": gpus.to_string()}}}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        }
    }))
    .unwrap()
}

async fn wait_running(pods: &Api<Pod>, name: &str) -> Pod {
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(pods.clone(), name, conditions::is_pod_running()),
    )
    .await
    .unwrap_or_else(|_| panic!("pod {name} not running within 60s"))
    .expect("watch")
    .expect("pod exists")
}

#[tokio::test]
async fn nodes_are_ready_with_gpu_capacity() {
    let Some(cluster) = shared_or_skip("nodes_are_ready_with_gpu_capacity") else {
        return;
    };
    let client = client(&cluster.kubeconfig).await;
    let nodes: Api<Node> = Api::all(client);
    let gpu_nodes = nodes
        .list(&ListParams::default().labels("nvidia.com/gpu.present=true"))
        .await
        .unwrap();
    assert_eq!(gpu_nodes.items.len(), 2);
    for n in &gpu_nodes.items {
        let status = n.status.as_ref().unwrap();
        assert_eq!(
            status.capacity.as_ref().unwrap()["nvidia.com/gpu"].0,
            "8",
            "{}",
            n.name_any()
        );
        let ready = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True", "{}", n.name_any());
        assert!(n.labels()["nvidia.com/gpu.product"].contains("H100"));
    }
}

#[tokio::test]
async fn device_plugin_gpu_pod_runs_on_gpu_node() {
    let Some(cluster) = shared_or_skip("device_plugin_gpu_pod_runs_on_gpu_node") else {
        return;
    };
    let client = client(&cluster.kubeconfig).await;
    let pods = namespace(&client, "t-device-plugin").await;
    pods.create(
        &PostParams::default(),
        &gpu_pod("one-gpu", 1, BTreeMap::new()),
    )
    .await
    .unwrap();
    let pod = wait_running(&pods, "one-gpu").await;
    let node_name = pod.spec.unwrap().node_name.unwrap();
    let node = Api::<Node>::all(client).get(&node_name).await.unwrap();
    assert_eq!(node.labels()["nvidia.com/gpu.present"], "true");
}

#[tokio::test]
async fn resource_claim_is_allocated_and_pod_runs() {
    let Some(cluster) = shared_or_skip("resource_claim_is_allocated_and_pod_runs") else {
        return;
    };
    let client = client(&cluster.kubeconfig).await;
    let pods = namespace(&client, "t-dra").await;
    let claims: Api<k8s_openapi::api::resource::v1::ResourceClaim> =
        Api::namespaced(client.clone(), "t-dra");
    let claim = serde_json::from_value(json!({
        "metadata": {"name": "one-gpu"},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}}
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "dra-pod"},
        "spec": {
            "containers": [{"name": "c", "image": "ubuntu", "resources": {"claims": [{"name": "gpu"}]}}],
            "resourceClaims": [{"name": "gpu", "resourceClaimName": "one-gpu"}],
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_running(&pods, "dra-pod").await;
    let claim = claims.get("one-gpu").await.unwrap();
    let allocation = claim
        .status
        .and_then(|s| s.allocation)
        .expect("claim allocated");
    let results = allocation.devices.unwrap().results.unwrap_or_default();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].driver, "gpu.nvidia.com");
}

fn gang_pod(group: &str, i: usize, gpus: u32) -> Pod {
    let mut labels = BTreeMap::new();
    labels.insert("scheduling.x-k8s.io/pod-group", group);
    gpu_pod(&format!("{group}-{i}"), gpus, labels)
}

async fn create_gang(client: &Client, ns: &str, group: &str, size: usize, gpus: u32) -> Api<Pod> {
    let pods = namespace(client, ns).await;
    let pg_api: Api<kube::core::DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &kube::core::ApiResource {
            group: "scheduling.x-k8s.io".into(),
            version: "v1alpha1".into(),
            api_version: "scheduling.x-k8s.io/v1alpha1".into(),
            kind: "PodGroup".into(),
            plural: "podgroups".into(),
        },
    );
    let pg = serde_json::from_value(json!({
        "apiVersion": "scheduling.x-k8s.io/v1alpha1", "kind": "PodGroup",
        "metadata": {"name": group}, "spec": {"minMember": size}
    }))
    .unwrap();
    pg_api.create(&PostParams::default(), &pg).await.unwrap();
    for i in 0..size {
        pods.create(&PostParams::default(), &gang_pod(group, i, gpus))
            .await
            .unwrap();
    }
    pods
}

async fn count_phases(pods: &Api<Pod>, group: &str) -> (usize, usize) {
    let list = pods
        .list(&ListParams::default().labels(&format!("scheduling.x-k8s.io/pod-group={group}")))
        .await
        .unwrap();
    let running = list
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .count();
    let bound = list
        .items
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
        .count();
    (running, bound)
}

/// Watch pods of a group until `want` are running (or the deadline passes); returns the count.
async fn wait_group_running(pods: &Api<Pod>, group: &str, want: usize, within: Duration) -> usize {
    use futures::StreamExt;
    let cfg = kube::runtime::watcher::Config::default()
        .labels(&format!("scheduling.x-k8s.io/pod-group={group}"));
    let stream = kube::runtime::watcher(pods.clone(), cfg);
    let deadline = tokio::time::sleep(within);
    tokio::pin!(stream, deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return count_phases(pods, group).await.0,
            ev = stream.next() => {
                if ev.is_none() { return count_phases(pods, group).await.0; }
                let (running, _) = count_phases(pods, group).await;
                if running >= want { return running; }
            }
        }
    }
}

#[tokio::test]
async fn gang_that_cannot_fit_stays_pending_until_capacity_allows() {
    let Some(cluster) = shared_or_skip("gang_that_cannot_fit_stays_pending") else {
        return;
    };
    let client = client(&cluster.kubeconfig).await;
    // 5 pods x 4 GPUs on 2 nodes x 8 GPUs: the gang cannot fit. (Other tests on the shared
    // cluster hold at most a GPU per node, so 2 x 4 GPUs still fit afterwards.)
    let pods = create_gang(&client, "t-gang", "big", 5, 4).await;
    // Give the scheduler time to try (and let a non-gang scheduler bind 2 of them).
    let running = wait_group_running(&pods, "big", 1, Duration::from_secs(15)).await;
    let (_, bound) = count_phases(&pods, "big").await;
    assert_eq!(
        (running, bound),
        (0, 0),
        "an unsatisfiable gang must stay entirely pending"
    );

    // Shrink the gang to what fits: delete 3 members and lower minMember to 2.
    for i in 2..5 {
        pods.delete(
            &format!("big-{i}"),
            &DeleteParams::default().grace_period(0),
        )
        .await
        .unwrap();
    }
    let pg_api: Api<kube::core::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "t-gang",
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("scheduling.x-k8s.io", "v1alpha1", "PodGroup"),
            "podgroups",
        ),
    );
    pg_api
        .patch(
            "big",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"minMember": 2}})),
        )
        .await
        .unwrap();
    let running = wait_group_running(&pods, "big", 2, Duration::from_secs(60)).await;
    assert_eq!(running, 2, "the gang starts once it fits");
}

#[tokio::test]
async fn without_gang_plugin_a_gang_is_partially_placed() {
    if testing::shared().is_err() {
        // Same reason as the shared cluster; don't try to start a second one.
        let _ = skip::<()>(
            "without_gang_plugin_a_gang_is_partially_placed",
            &testing::shared().err().unwrap_or_default(),
        );
        return;
    }
    let opts = aiconform::cluster::embedded::EmbeddedOptions {
        gang: false,
        ..test_options()
    };
    let cluster = fresh(&opts).expect("start cluster without gang plugin");
    let client = client(&cluster.kubeconfig).await;
    let pods = create_gang(&client, "t-nogang", "big", 4, 8).await;
    let running = wait_group_running(&pods, "big", 2, Duration::from_secs(60)).await;
    assert_eq!(
        running, 2,
        "without the plugin the default scheduler places what fits"
    );
}

#[test]
fn cluster_up_status_down_cli() {
    if let Err(reason) = testing::shared() {
        let _ = skip::<()>("cluster_up_status_down_cli", &reason);
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let cli = || {
        let mut c = assert_cmd::Command::cargo_bin("aiconform").unwrap();
        c.env("AICONFORM_CLUSTER_DIR", state.path());
        c
    };
    let up = cli()
        .args(["cluster", "up", "--nodes", "1", "--real-node", "off"])
        .assert()
        .success();
    let kubeconfig = String::from_utf8(up.get_output().stdout.clone()).unwrap();
    assert_eq!(
        kubeconfig.trim(),
        state.path().join("kubeconfig").display().to_string()
    );
    let pid: u32 = std::fs::read_to_string(state.path().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(aiconform::cluster::embedded::pid_alive(pid));

    let status = cli().args(["cluster", "status"]).assert().success();
    let out = String::from_utf8(status.get_output().stdout.clone()).unwrap();
    assert!(out.contains("nodes: 2 (8 GPUs)"), "{out}");
    assert!(
        out.contains("real node: none (disabled (--real-node=off))"),
        "{out}"
    );

    cli().args(["cluster", "down"]).assert().success();
    assert!(
        !aiconform::cluster::embedded::pid_alive(pid),
        "cluster process is gone"
    );
    let stopped = cli().args(["cluster", "status"]).assert().failure();
    let err = String::from_utf8(stopped.get_output().stderr.clone()).unwrap();
    assert!(err.contains("not running"), "{err}");
}

/// A Job of aiconform's image on a simulated node; returns it once it completed or failed.
async fn run_image_job(
    client: &Client,
    ns: &str,
    name: &str,
    container: serde_json::Value,
    volumes: serde_json::Value,
) -> Job {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [{"operator": "Exists"}],
                "containers": [container],
                "volumes": volumes,
            }},
        },
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let finished = |j: Option<&Job>| {
        j.and_then(|j| j.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            })
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(jobs.clone(), name, finished),
    )
    .await
    .unwrap_or_else(|_| panic!("job {name} did not finish within 60s"))
    .unwrap()
    .unwrap()
}

fn job_condition(job: &Job) -> String {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.status == "True" && (c.type_ == "Complete" || c.type_ == "Failed"))
        })
        .map(|c| c.type_.clone())
        .unwrap_or_default()
}

/// The terminated state of the single container of the Job's pod.
async fn terminated(
    client: &Client,
    ns: &str,
    job: &str,
) -> k8s_openapi::api::core::v1::ContainerStateTerminated {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap();
    list.items[0]
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .expect("container terminated")
}

/// Simulated nodes run aiconform's image as processes of the aiconform binary: exit codes
/// decide the Job and termination messages come back. (Agent facts read through hostPath
/// volumes are checked by the snapshot tests.)
#[tokio::test]
async fn aiconform_image_runs_as_a_process_on_simulated_nodes() {
    let Some(cluster) = shared_or_skip("aiconform_image_runs_as_a_process_on_simulated_nodes")
    else {
        return;
    };
    let client = client(&cluster.kubeconfig).await;
    namespace(&client, "runtime").await;
    let image = format!(
        "{}:v{}",
        aiconform::cluster::embedded::IMAGE_REPOSITORY,
        env!("CARGO_PKG_VERSION")
    );

    let ok = run_image_job(
        &client,
        "runtime",
        "version",
        json!({"name": "c", "image": image, "command": ["aiconform", "--version"]}),
        json!([]),
    )
    .await;
    assert_eq!(job_condition(&ok), "Complete");
    let t = terminated(&client, "runtime", "version").await;
    assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));

    // A usage error exits 2; with FallbackToLogsOnError the log tail is the message.
    let bad = run_image_job(
        &client,
        "runtime",
        "bad-flag",
        json!({"name": "c", "image": image, "args": ["--no-such-flag"],
               "terminationMessagePolicy": "FallbackToLogsOnError"}),
        json!([]),
    )
    .await;
    assert_eq!(job_condition(&bad), "Failed");
    let t = terminated(&client, "runtime", "bad-flag").await;
    assert_eq!((t.exit_code, t.reason.as_deref()), (2, Some("Error")));
    assert!(
        t.message
            .as_deref()
            .unwrap_or_default()
            .contains("--no-such-flag"),
        "{t:?}"
    );

    let jobs: Api<Job> = Api::namespaced(client.clone(), "runtime");
    for name in ["version", "bad-flag"] {
        let _ = jobs.delete(name, &DeleteParams::background()).await;
    }
}
