//! aiconform inside the cluster: `charts/aiconform` installed with the project's helm on an
//! embedded cluster whose real node runs the CronJob's Job from the aiconform image; the
//! run's JUnit, drift and metrics read back from the cluster, a ClusterRole missing a verb
//! shown to fail the run by name; and a fleet: a management cluster running one Job per
//! member cluster, gathered by `aiconform fleet report`.
//!
//! Needs what tests/real_node.rs needs (root, containerd, the kubelet, the image of
//! ci/image/build.sh with this build's binary) and helm (ci/tools/build.sh); skipped with the
//! reason otherwise, fatal when `AICONFORM_REQUIRE_CLUSTER=1`.

mod tools_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use aiconform::cluster::embedded::RunningCluster;
use aiconform::cluster::testing;
use aiconform::fleet;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Node, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

const CHART: &str = "charts/aiconform";
const REAL_NODE: &str = "testcluster.aiconform.dev/real-node";

fn chart() -> PathBuf {
    tools_support::repo_root().join(CHART)
}

// ---------------------------------------------------------------------------------------
// The chart alone: lint and render.

fn template(tools: &Path, home: &Path, args: &[&str]) -> Vec<Value> {
    let chart = chart();
    let mut all = vec![
        "template",
        "t",
        chart.to_str().unwrap(),
        "--namespace",
        "fleet",
    ];
    all.extend_from_slice(args);
    let out = tools_support::helm(tools, home, &all);
    out.split("\n---")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn container_args(job_template: &Value) -> Vec<String> {
    job_template["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn chart_lints_and_renders_least_rbac_and_one_job_per_member() {
    let Some(tools) = tools_support::tools("chart_lints_and_renders") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let chart = chart();
    tools_support::helm(
        &tools,
        home.path(),
        &["lint", "--strict", chart.to_str().unwrap()],
    );

    // One cluster: a CronJob running the phases, a ClusterRole per phase plus the
    // snapshot's, a Role on the results ConfigMap only.
    let objs = template(
        &tools,
        home.path(),
        &["--set", "phases={readiness,deployment}"],
    );
    let crons = of_kind(&objs, "CronJob");
    assert_eq!(crons.len(), 1);
    let args = container_args(&crons[0]["spec"]["jobTemplate"]);
    let joined = args.join(" ");
    assert!(
        joined.contains("--phase readiness --phase deployment")
            && joined.contains("--report-configmap fleet/aiconform-results --report-member local"),
        "{joined}"
    );
    assert_eq!(
        crons[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/aiconform/aiconform:v{}", env!("CARGO_PKG_VERSION"))
    );
    let roles: Vec<&str> = of_kind(&objs, "ClusterRole")
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "t-aiconform-snapshot",
            "t-aiconform-readiness",
            "t-aiconform-deployment"
        ]
    );
    let deployment = of_kind(&objs, "ClusterRole")[2]["rules"].to_string();
    assert!(
        !deployment.contains("create") && !deployment.contains("delete"),
        "the deployment phase only reads: {deployment}"
    );
    let role = of_kind(&objs, "Role")[0];
    assert_eq!(
        role["rules"][0]["resourceNames"],
        json!(["aiconform-results"])
    );

    // A fleet: one CronJob per member, each mounting only its own member's Secret, writing
    // to the cluster it runs in; nothing of this cluster is tested, so no ClusterRole.
    let objs = template(
        &tools,
        home.path(),
        &[
            "--set",
            "fleet.members[0].name=east,fleet.members[0].kubeconfigSecret=east-kc",
            "--set",
            "fleet.members[1].name=west,fleet.members[1].kubeconfigSecret=west-kc",
        ],
    );
    assert!(of_kind(&objs, "ClusterRole").is_empty());
    let crons = of_kind(&objs, "CronJob");
    assert_eq!(crons.len(), 2);
    for (cron, member) in crons.iter().zip(["east", "west"]) {
        let pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        let secrets: Vec<&str> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["secret"]["secretName"].as_str())
            .collect();
        assert_eq!(secrets, [format!("{member}-kc")]);
        let joined = container_args(&cron["spec"]["jobTemplate"]).join(" ");
        assert!(
            joined.contains(&format!(
                "--report-configmap fleet/aiconform-results-{member} --report-member {member}"
            )) && joined.contains("--report-in-cluster"),
            "{joined}"
        );
    }
    let role = of_kind(&objs, "Role")[0];
    assert_eq!(
        role["rules"][0]["resourceNames"],
        json!(["aiconform-results-east", "aiconform-results-west"])
    );

    // The schema refuses what the chart cannot run.
    let mut cmd = Command::new(tools.join("helm"));
    tools_support::helm_env(&mut cmd, home.path());
    let out = cmd
        .args([
            "template",
            "t",
            chart.to_str().unwrap(),
            "--set",
            "phases={fabric}",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("phases"), "{err}");
}

// ---------------------------------------------------------------------------------------
// In the cluster.

/// Tests that change what the others observe (node pools, GPUs in use) take it for writing;
/// the others share it.
fn cluster_state() -> &'static tokio::sync::RwLock<()> {
    static STATE: OnceLock<tokio::sync::RwLock<()>> = OnceLock::new();
    STATE.get_or_init(|| tokio::sync::RwLock::new(()))
}

/// One cluster with a real node for this test binary, or why there is none.
fn cluster(test: &str) -> Option<&'static RunningCluster> {
    testing::real_node_or_skip(test)
}

async fn connect(kubeconfig: &Path) -> kube::Client {
    aiconform::cluster::connect(Some(kubeconfig))
        .await
        .expect("connect to the embedded cluster")
}

/// The recipe the runs certify against: two readiness constraints the embedded cluster's
/// simulated H100 nodes meet, and one component (the gang scheduler's CRD) for the
/// deployment phase.
const RECIPE: &str = "\
apiVersion: aiconform.dev/v1alpha1
kind: Recipe
metadata:
  name: incluster
  toolVersion: 0.1.0
  appliedOverlays: [incluster]
  valueCount: 0
criteria: {service: any, accelerator: any, os: any, intent: any, platform: any}
constraints:
  - {name: K8s.server.version, value: \">= 1.34\", source: incluster}
  - {name: GPU.device.model, value: \"*H100*\", source: incluster}
deploymentOrder: [gang-scheduler]
components:
  - name: gang-scheduler
    type: Manifest
    version: v1alpha1
    namespace: kube-system
    healthChecks:
      - {kind: CustomResourceDefinition, name: podgroups.scheduling.x-k8s.io}
";

/// Values putting the runs on the real node from the locally imported image, never on
/// schedule (the test starts each run).
fn values(extra: Value) -> Value {
    let mut v = json!({
        "image": {"pullPolicy": "Never"},
        "schedule": "0 0 1 1 *",
        "suspend": true,
        "phases": ["readiness"],
        "recipe": RECIPE,
        "nodeSelector": {REAL_NODE: "true"},
        "tolerations": [{"key": REAL_NODE, "operator": "Exists"}],
    });
    if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
        v.extend(extra);
    }
    v
}

/// `helm install` the chart into `ns` of the cluster of `kubeconfig`.
fn helm_install(tools: &Path, home: &Path, kubeconfig: &Path, release: &str, ns: &str, v: &Value) {
    let file = home.join(format!("{release}-values.json"));
    std::fs::write(&file, v.to_string()).unwrap();
    let chart = chart();
    tools_support::helm(
        tools,
        home,
        &[
            "install",
            release,
            chart.to_str().unwrap(),
            "--namespace",
            ns,
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--values",
            file.to_str().unwrap(),
        ],
    );
}

/// A Job from the CronJob's template, owned by it (what `kubectl create job --from=cronjob`
/// does).
async fn trigger(client: &kube::Client, ns: &str, cronjob: &str, job: &str) {
    let cron = Api::<CronJob>::namespaced(client.clone(), ns)
        .get(cronjob)
        .await
        .expect("the chart's CronJob");
    let template = cron.spec.unwrap().job_template;
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert("aiconform.dev/test-run".into(), job.into());
    let j: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job,
            "namespace": ns,
            "labels": labels,
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob,
                "uid": cron.metadata.uid.unwrap(), "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": template.spec.unwrap(),
    }))
    .unwrap();
    Api::<Job>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &j)
        .await
        .expect("create the Job");
}

/// `Complete` or `Failed`, once the Job reaches one (watch, deadline).
async fn finished(client: &kube::Client, ns: &str, job: &str) -> String {
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let stream = watcher(
        jobs,
        watcher::Config::default().fields(&format!("metadata.name={job}")),
    )
    .applied_objects()
    .try_filter_map(|j: Job| async move {
        Ok(j.status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            .map(|c| c.type_))
    })
    .boxed();
    let mut stream = stream;
    match tokio::time::timeout(Duration::from_secs(300), stream.try_next()).await {
        Ok(Ok(Some(state))) => state,
        other => panic!(
            "Job {ns}/{job} did not finish within 300s ({other:?}); its log:\n{}",
            job_log(client, ns, job).await
        ),
    }
}

/// The log of the Job's pod.
async fn job_log(client: &kube::Client, ns: &str, job: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .unwrap();
    let mut out = String::new();
    for p in list.items {
        let name = p.metadata.name.unwrap();
        out.push_str(
            &pods
                .logs(&name, &LogParams::default())
                .await
                .unwrap_or_default(),
        );
    }
    out
}

async fn results(client: &kube::Client, ns: &str, name: &str) -> fleet::Stored {
    let at = fleet::ConfigMapRef {
        namespace: ns.into(),
        name: name.into(),
    };
    fleet::read(client, &at)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no ConfigMap {at}"))
}

/// `<testcase name=...>` of a JUnit document with whether it failed.
fn junit_cases(xml: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for part in xml.split("<testcase ").skip(1) {
        let name = part
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        let tag_end = part.find('>').unwrap();
        let self_closing = part[..tag_end].ends_with('/');
        let end = part.find("</testcase>").unwrap_or(part.len());
        let failed = !self_closing && part[..end].contains("<failure");
        out.push((name, failed));
    }
    out
}

#[tokio::test]
async fn cronjob_runs_in_cluster_and_stores_junit_drift_and_metrics() {
    let test = "cronjob_runs_in_cluster_and_stores_junit_drift_and_metrics";
    let Some(c) = cluster(test) else { return };
    let Some(tools) = tools_support::tools(test) else {
        return;
    };
    let _shared = cluster_state().read().await;
    let home = tempfile::tempdir().unwrap();
    let client = connect(&c.kubeconfig).await;
    let ns = "aiconform";
    testing::create_namespace(&client, ns).await;
    helm_install(
        &tools,
        home.path(),
        &c.kubeconfig,
        "ic",
        ns,
        &values(json!({"metrics": {"enabled": true}, "phases": ["readiness", "deployment"]})),
    );

    // The first run: every case passes, the results and snapshot land in the ConfigMap.
    trigger(&client, ns, "ic-aiconform", "run-1").await;
    let state = finished(&client, ns, "run-1").await;
    let log = job_log(&client, ns, "run-1").await;
    assert_eq!(state, "Complete", "{log}");
    let pod_node = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("job-name=run-1"))
        .await
        .unwrap()
        .items[0]
        .spec
        .as_ref()
        .unwrap()
        .node_name
        .clone();
    assert_eq!(pod_node.as_deref(), Some("real-0"), "ran on the real node");
    let first = results(&client, ns, "aiconform-results").await;
    assert_eq!(first.member, "local");
    let junit = &first.contents.reports["junit.xml"];
    let cases = junit_cases(junit);
    for name in ["K8s.server.version", "GPU.device.model", "gang-scheduler"] {
        assert!(
            cases.iter().any(|(n, _)| n == name),
            "no case {name}: {junit}"
        );
    }
    assert!(cases.iter().all(|(_, failed)| !failed), "{junit}");
    let record = first.record().unwrap().unwrap();
    assert_eq!(record.recipe, "incluster");
    assert!(first.contents.snapshot.is_some());
    assert!(
        first.contents.drift.is_none(),
        "no baseline before the first run"
    );
    assert!(log.contains("drift starts with the next run"), "{log}");

    // A change to the cluster between runs is the next run's drift.
    let nodes: Api<Node> = Api::all(client.clone());
    let gpu_node = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .find(|n| n != "real-0")
        .unwrap();
    nodes
        .patch(
            &gpu_node,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"example.com/drift-probe": "yes"}}})),
        )
        .await
        .unwrap();
    trigger(&client, ns, "ic-aiconform", "run-2").await;
    assert_eq!(finished(&client, ns, "run-2").await, "Complete");
    let second = results(&client, ns, "aiconform-results").await;
    let drift = second.contents.drift.expect("drift after the second run");
    for ch in &drift.changes {
        eprintln!("drift: {} {}", ch.kind.as_str(), ch.path);
    }
    assert!(drift.base.contains("previous run"), "{}", drift.base);
    let probe: Vec<_> = drift
        .changes
        .iter()
        .filter(|ch| ch.path.contains("drift-probe"))
        .collect();
    assert_eq!(probe.len(), 1, "{:#?}", drift.changes);
    assert!(probe[0].path.starts_with(&format!("nodes[{gpu_node}]")));
    assert_eq!(probe[0].kind, aiconform::diff::compare::ChangeKind::Added);
    assert!(drift.summary.total >= 1);

    // The metrics Deployment serves the stored run (through the API server's pod proxy).
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let metrics_pod = tokio::time::timeout(
        Duration::from_secs(120),
        watcher(
            pods.clone(),
            watcher::Config::default().labels("app.kubernetes.io/component=metrics"),
        )
        .applied_objects()
        .try_filter(|p: &Pod| {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            async move { ready }
        })
        .boxed()
        .try_next(),
    )
    .await
    .expect("the metrics pod is Ready within 120s")
    .unwrap()
    .unwrap();
    let name = metrics_pod.metadata.name.unwrap();
    let req = http::Request::get(format!(
        "/api/v1/namespaces/{ns}/pods/{name}:9090/proxy/metrics"
    ))
    .body(Vec::new())
    .unwrap();
    let text = client.request_text(req).await.expect("metrics");
    for line in [
        "aiconform_case_passed{member=\"local\",phase=\"readiness\",case=\"readiness/K8s.server.version\"} 1",
        "aiconform_case_passed{member=\"local\",phase=\"readiness\",case=\"readiness/GPU.device.model\"} 1",
        "aiconform_case_passed{member=\"local\",phase=\"deployment\",case=\"deployment/gang-scheduler\"} 1",
        "aiconform_cases{member=\"local\",status=\"failed\"} 0",
        "aiconform_run_error{member=\"local\"} 0",
        &format!(
            "aiconform_drift_facts{{member=\"local\"}} {}",
            drift.summary.total
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }

    // Least RBAC, shown from the other side: without `list` on nodes the run stops at its
    // snapshot, naming the forbidden resource, in its log and in the ConfigMap; the
    // previous run's reports stay.
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let mut role = roles.get("ic-aiconform-snapshot").await.unwrap();
    role.rules.as_mut().unwrap().retain(|r| {
        !r.resources
            .as_ref()
            .is_some_and(|rs| rs.contains(&"nodes".to_string()))
    });
    role.metadata.managed_fields = None;
    roles
        .replace("ic-aiconform-snapshot", &PostParams::default(), &role)
        .await
        .unwrap();
    trigger(&client, ns, "ic-aiconform", "run-3").await;
    assert_eq!(finished(&client, ns, "run-3").await, "Failed");
    let log = job_log(&client, ns, "run-3").await;
    assert!(
        log.contains("cannot list resource \"nodes\""),
        "the error names the forbidden resource: {log}"
    );
    let third = results(&client, ns, "aiconform-results").await;
    let error = third.contents.error.expect("the error is recorded");
    assert!(error.contains("cannot list resource \"nodes\""), "{error}");
    assert_eq!(
        third.contents.reports["junit.xml"],
        second.contents.reports["junit.xml"]
    );
}

// ---------------------------------------------------------------------------------------
// A fleet.

/// Forwards connections to `listen` (an address of the management cluster's node) to
/// `target` (a member's API server on this machine's loopback): the member's API endpoint as
/// the management cluster's pods reach it. Stops with the test's runtime.
async fn forward(listen: &str, target: String) -> u16 {
    let listener = tokio::net::TcpListener::bind(format!("{listen}:0"))
        .await
        .expect("listen on the node's address");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

/// The kubeconfig of `path` with its server replaced (and the API server's certificate
/// checked for `kubernetes`, a name it carries).
fn kubeconfig_via(path: &Path, server: &str) -> String {
    let mut kc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for c in kc["clusters"].as_array_mut().unwrap() {
        c["cluster"]["server"] = json!(server);
        c["cluster"]["tls-server-name"] = json!("kubernetes");
    }
    serde_json::to_string(&kc).unwrap()
}

/// A kubeconfig for `server` authenticating with a bearer `token`, trusting the CA of the
/// kubeconfig at `path`.
fn token_kubeconfig(path: &Path, server: &str, token: &str) -> String {
    let kc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ca = kc["clusters"][0]["cluster"]["certificate-authority-data"].clone();
    json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "member",
        "clusters": [{"name": "member", "cluster": {
            "server": server, "certificate-authority-data": ca, "tls-server-name": "kubernetes",
        }}],
        "users": [{"name": "aiconform", "user": {"token": token}}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": "aiconform"}}],
    })
    .to_string()
}

/// A token of ServiceAccount `ns/name` (TokenRequest, one hour).
async fn service_account_token(client: &kube::Client, ns: &str, name: &str) -> String {
    let tr: Value = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_subresource(
            "token",
            name,
            &PostParams::default(),
            &json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            }),
        )
        .await
        .expect("a ServiceAccount token");
    tr["status"]["token"].as_str().unwrap().to_string()
}

fn server_of(path: &Path) -> String {
    let kc: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn kubeconfig_secret(client: &kube::Client, ns: &str, name: &str, kubeconfig: String) {
    let s: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"kubeconfig": kubeconfig},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
}

#[tokio::test]
async fn fleet_runs_one_job_per_member_and_reports_them_together() {
    let test = "fleet_runs_one_job_per_member_and_reports_them_together";
    let Some(c) = cluster(test) else { return };
    let Some(tools) = tools_support::tools(test) else {
        return;
    };
    let _shared = cluster_state().read().await;
    // The member: a second embedded cluster (simulated nodes only).
    let member = match testing::fresh(&testing::test_options()) {
        Ok(m) => m,
        Err(reason) => {
            testing::skip::<()>(test, &format!("no second cluster: {reason}"));
            return;
        }
    };
    let home = tempfile::tempdir().unwrap();
    let client = connect(&c.kubeconfig).await;
    let ns = "fleet";
    testing::create_namespace(&client, ns).await;

    // The management cluster's pods reach its own API server at the kubernetes Service,
    // and the member's through its node's address (the bridge the real node's pods use).
    let node = Api::<Node>::all(client.clone())
        .get("real-0")
        .await
        .unwrap();
    let node_ip = node
        .status
        .unwrap()
        .addresses
        .unwrap()
        .into_iter()
        .find(|a| a.type_ == "InternalIP")
        .unwrap()
        .address;
    let member_server = server_of(&member.kubeconfig);
    let member_addr = member_server.trim_start_matches("https://").to_string();
    let port = forward(&node_ip, member_addr).await;
    kubeconfig_secret(
        &client,
        ns,
        "mgmt-kubeconfig",
        kubeconfig_via(&c.kubeconfig, "https://10.96.0.1:443"),
    )
    .await;
    // The member's identity is a ServiceAccount of the member with only the chart's roles
    // (the chart installed there, its own CronJob suspended): least RBAC for a member too.
    let member_client = connect(&member.kubeconfig).await;
    testing::create_namespace(&member_client, "aiconform").await;
    helm_install(
        &tools,
        home.path(),
        &member.kubeconfig,
        "m",
        "aiconform",
        &values(json!({})),
    );
    let token = service_account_token(&member_client, "aiconform", "m-aiconform").await;
    kubeconfig_secret(
        &client,
        ns,
        "member-kubeconfig",
        token_kubeconfig(
            &member.kubeconfig,
            &format!("https://{node_ip}:{port}"),
            &token,
        ),
    )
    .await;
    helm_install(
        &tools,
        home.path(),
        &c.kubeconfig,
        "fl",
        ns,
        &values(json!({"fleet": {"members": [
            {"name": "mgmt", "kubeconfigSecret": "mgmt-kubeconfig"},
            {"name": "member", "kubeconfigSecret": "member-kubeconfig"},
        ]}})),
    );
    trigger(&client, ns, "fl-aiconform-mgmt", "fleet-mgmt").await;
    trigger(&client, ns, "fl-aiconform-member", "fleet-member").await;
    for job in ["fleet-mgmt", "fleet-member"] {
        let state = finished(&client, ns, job).await;
        assert_eq!(state, "Complete", "{}", job_log(&client, ns, job).await);
    }
    // Each run tested its own cluster: the member's snapshot has the member's nodes (no
    // real node there).
    let stored = fleet::list(&client, ns).await.unwrap();
    let members: Vec<&str> = stored.iter().map(|s| s.member.as_str()).collect();
    assert_eq!(members, ["member", "mgmt"]);
    let snap = |s: &fleet::Stored| s.contents.snapshot.clone().unwrap();
    assert!(!snap(&stored[0]).contains("real-0"));
    assert!(snap(&stored[1]).contains("real-0"));
    // No kubeconfig reaches a ConfigMap.
    for s in &stored {
        for text in s
            .contents
            .reports
            .values()
            .chain(s.contents.snapshot.iter())
        {
            assert!(!text.contains("client-key-data"), "{}", s.name);
            assert!(!text.contains(&token), "{}", s.name);
        }
    }

    // `aiconform fleet report`: one table, one JUnit with a testsuite per member.
    let junit = home.path().join("fleet-junit.xml");
    let out = Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args(["fleet", "report", "--namespace", ns, "--kubeconfig"])
        .arg(&c.kubeconfig)
        .arg("--junit")
        .arg(&junit)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("aiconform fleet report:\n{table}");
    assert!(
        out.status.success(),
        "{table}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("MEMBER  PASSED  FAILED  SKIPPED"),
        "{table}"
    );
    assert!(lines[1].starts_with("member  2       0       0"), "{table}");
    assert!(lines[2].starts_with("mgmt    2       0       0"), "{table}");
    assert_eq!(
        lines[3],
        "2 members: 4 passed, 0 failed, 0 skipped cases; 0 members without reports"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"member\" tests=\"2\" failures=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testsuite name=\"mgmt\" tests=\"2\" failures=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("classname=\"member.readiness\""), "{xml}");
    drop(member);
}

// ---------------------------------------------------------------------------------------
// The same from outside the cluster, with an OCI push.

#[tokio::test]
async fn run_from_outside_stores_results_and_pushes_them_to_a_registry() {
    let test = "run_from_outside_stores_results_and_pushes_them_to_a_registry";
    let Some(c) = cluster(test) else { return };
    let Some(tools) = tools_support::tools(test) else {
        return;
    };
    let _shared = cluster_state().read().await;
    let registry = tools_support::Registry::start(&tools, &Default::default());
    let client = connect(&c.kubeconfig).await;
    let ns = "outside";
    testing::create_namespace(&client, ns).await;
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(&recipe, RECIPE).unwrap();
    let reference = format!("oci://{}/aiconform/results:laptop", registry.addr);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args(["run", "--kubeconfig"])
        .arg(&c.kubeconfig)
        .arg("--recipe")
        .arg(&recipe)
        .args(["--phase", "readiness", "--report-dir"])
        .arg(dir.path().join("report"))
        .args([
            "--report-configmap",
            "outside/results",
            "--report-member",
            "laptop",
            "--report-oci",
            &reference,
            "--report-oci-plain-http",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("results: pushed to oci://"), "{stderr}");
    let stored = results(&client, ns, "results").await;
    assert_eq!(stored.member, "laptop");
    // The files of the report directory, the ConfigMap and the artifact are the same.
    let opts = aiconform::bundle::oci::RegistryOptions {
        plain_http: true,
        ..Default::default()
    };
    let (files, _) =
        aiconform::bundle::oci::pull_files(&fleet::RESULTS_ARTIFACT, &reference, &opts)
            .await
            .unwrap();
    for key in fleet::REPORT_KEYS {
        let on_disk = std::fs::read_to_string(dir.path().join("report").join(key)).unwrap();
        assert_eq!(stored.contents.reports[key], on_disk, "{key}");
        assert_eq!(files.files[key].content, on_disk.as_bytes(), "{key}");
    }
    assert_eq!(
        files.files["snapshot.yaml"].content,
        stored.contents.snapshot.unwrap().as_bytes()
    );
}

// ---------------------------------------------------------------------------------------
// Least RBAC: every verb the readiness phase's roles grant is used.

/// Every `(apiGroup, resource, verb)` a ClusterRole grants.
fn grants(role: &ClusterRole) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for r in role.rules.iter().flatten() {
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    out.push((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// `role` without one grant (each remaining grant as a rule of its own).
fn without(role: &ClusterRole, drop: &(String, String, String)) -> ClusterRole {
    let mut r = role.clone();
    r.metadata.managed_fields = None;
    r.metadata.resource_version = None;
    r.rules = Some(
        grants(role)
            .into_iter()
            .filter(|g| g != drop)
            .map(|(g, res, v)| {
                serde_json::from_value(json!({"apiGroups": [g], "resources": [res], "verbs": [v]}))
                    .unwrap()
            })
            .collect(),
    );
    r
}

#[tokio::test]
async fn each_verb_of_the_readiness_roles_is_needed() {
    let test = "each_verb_of_the_readiness_roles_is_needed";
    let Some(c) = cluster(test) else { return };
    let Some(tools) = tools_support::tools(test) else {
        return;
    };
    let _shared = cluster_state().read().await;
    let home = tempfile::tempdir().unwrap();
    let client = connect(&c.kubeconfig).await;
    let ns = "least-rbac";
    testing::create_namespace(&client, ns).await;
    helm_install(
        &tools,
        home.path(),
        &c.kubeconfig,
        "lr",
        ns,
        &values(json!({})),
    );
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let mut findings = Vec::new();
    let mut run = 0;
    for role_name in ["lr-aiconform-readiness", "lr-aiconform-snapshot"] {
        let full = roles.get(role_name).await.unwrap();
        for grant in grants(&full) {
            roles
                .replace(role_name, &PostParams::default(), &without(&full, &grant))
                .await
                .unwrap();
            run += 1;
            let job = format!("lr-{run}");
            trigger(&client, ns, "lr-aiconform", &job).await;
            let state = finished(&client, ns, &job).await;
            let log = job_log(&client, ns, &job).await;
            let (group, resource, verb) = &grant;
            // What the run said about the missing grant: its error, or a warning or note.
            let said = log
                .lines()
                .find(|l| l.contains(&format!("cannot {verb} resource \"{resource}\"")))
                .or_else(|| {
                    // Without a right the agents' Role grants, RBAC refuses that Role.
                    let role = format!("Resources:[\"{resource}\"], Verbs:[\"{verb}\"]");
                    (log.contains("attempting to grant RBAC permissions not currently held")
                        && log.contains(&role))
                    .then_some(
                        "the agents' Role: attempting to grant RBAC permissions not currently held",
                    )
                })
                .map(str::trim)
                .unwrap_or("")
                .to_string();
            eprintln!("without {verb} {resource}.{group}: Job {state}; {said}");
            findings.push((grant.clone(), state, said));
            let mut restore = full.clone();
            restore.metadata.managed_fields = None;
            restore.metadata.resource_version = None;
            roles
                .replace(role_name, &PostParams::default(), &restore)
                .await
                .unwrap();
        }
    }
    // Each grant is needed: without it the run fails or says what it could not do (a
    // snapshot note, an agent namespace left behind), naming the resource and verb.
    let unused: Vec<_> = findings
        .iter()
        .filter(|(_, _, said)| said.is_empty())
        .map(|(g, state, _)| format!("{g:?} (Job {state})"))
        .collect();
    assert!(
        unused.is_empty(),
        "grants the run never missed: {unused:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// The conformance phase's role, in the cluster.

#[tokio::test]
async fn conformance_runs_in_cluster_with_the_conformance_role() {
    let test = "conformance_runs_in_cluster_with_the_conformance_role";
    let Some(c) = cluster(test) else { return };
    let Some(tools) = tools_support::tools(test) else {
        return;
    };
    // Its cases scale node pools and fill GPUs: the other tests wait.
    let _alone = cluster_state().write().await;
    let home = tempfile::tempdir().unwrap();
    let client = connect(&c.kubeconfig).await;
    let ns = "conformance";
    testing::create_namespace(&client, ns).await;
    // The quick-start recipe: its `validation:` points each case at the embedded cluster's
    // implementation (and names robust-controller's custom resource, which the chart grants).
    let recipe = std::fs::read_to_string(
        tools_support::repo_root().join("fixtures/recipes/demo-stack.yaml"),
    )
    .unwrap();
    helm_install(
        &tools,
        home.path(),
        &c.kubeconfig,
        "cf",
        ns,
        &values(json!({
            "phases": ["conformance"],
            "checklist": "1.34",
            "recipe": recipe,
        })),
    );
    trigger(&client, ns, "cf-aiconform", "conformance-1").await;
    let state = finished(&client, ns, "conformance-1").await;
    let log = job_log(&client, ns, "conformance-1").await;
    assert_eq!(state, "Complete", "{log}");
    let record = results(&client, ns, "aiconform-results")
        .await
        .record()
        .unwrap()
        .unwrap();
    // Every requirement of the 1.34 checklist is shown, each by a passing case; the cases of
    // later checklists are skipped.
    let checklist = aiconform::conformance::ConformanceRun::new("1.34".parse().unwrap(), "test");
    for req in checklist.checklist().requirements() {
        let case = record
            .cases
            .iter()
            .find(|c| c.requirement.as_deref() == Some(req.id.as_str()));
        let case = case.unwrap_or_else(|| panic!("no case for {}: {log}", req.id));
        assert_eq!(
            case.status.as_str(),
            "passed",
            "{}: {}",
            case.id,
            case.message
        );
    }
    assert!(
        record
            .cases
            .iter()
            .all(|c| matches!(c.status.as_str(), "passed" | "skipped")),
        "{log}"
    );
}
