//! Shared by tests/suites.rs and tests/conformance_faults.rs: a test recipe whose components
//! are stand-ins deployed onto the embedded cluster, and running cases by registry name.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

use aiconform::cluster::embedded::{EmbeddedOptions, RunningCluster};
use aiconform::cluster::testing::{fresh, skip};
use aiconform::recipe::Recipe;
use aiconform::runner::case::{CaseContext, CaseSpec, MetricsSink, Outcome, Phase};

/// A recipe with two components whose objects [`deploy_components`] creates:
/// cert-manager (Deployment + CRD) and gpu-operator (Deployment + device-plugin DaemonSet on
/// the GPU nodes + CRD), both labelled with their chart versions. `gpu_ns` lets a test use
/// its own namespace for the GPU Operator stand-in.
pub fn recipe(gpu_ns: &str) -> Recipe {
    serde_json::from_value(json!({
        "apiVersion": "aiconform.dev/v1alpha1", "kind": "Recipe",
        "metadata": {"name": "test-h100", "toolVersion": "test", "appliedOverlays": ["base", "h100"], "valueCount": 0},
        "criteria": {"accelerator": "h100"},
        "constraints": [],
        "deploymentOrder": ["cert-manager", "gpu-operator"],
        "components": [
            {"name": "cert-manager", "type": "Helm", "chart": "cert-manager", "version": "v1.17.2",
             "namespace": "cert-manager", "healthChecks": [
                {"kind": "Deployment", "name": "cert-manager", "namespace": "cert-manager"},
                {"kind": "CustomResourceDefinition", "name": "certificates.cert-manager.io"}]},
            {"name": "gpu-operator", "type": "Helm", "chart": "gpu-operator", "version": "v25.10.1",
             "namespace": gpu_ns, "healthChecks": [
                {"kind": "Deployment", "name": "gpu-operator", "namespace": gpu_ns},
                {"kind": "DaemonSet", "name": "nvidia-device-plugin-daemonset", "namespace": gpu_ns},
                {"kind": "CustomResourceDefinition", "name": "clusterpolicies.nvidia.com"}]}
        ],
        "validation": {"nccl": {"allReduce": {"minAvgBusBandwidthGBps": 100,
            "minLargeMessageBusBandwidthGBps": 420, "largeMessageBytes": 8589934592u64}}}
    }))
    .expect("test recipe")
}

pub async fn connect(kubeconfig: &std::path::Path) -> Client {
    aiconform::cluster::connect(Some(kubeconfig))
        .await
        .expect("connect to embedded cluster")
}

pub async fn ensure_namespace(client: &Client, name: &str) {
    let ns: Api<Namespace> = Api::all(client.clone());
    let obj = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    match ns.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

pub async fn create_or_exists<K>(api: &Api<K>, v: Value)
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize + kube::Resource,
{
    let obj: K = serde_json::from_value(v).expect("object");
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create: {e}"),
    }
}

pub fn crd(group: &str, kind: &str, plural: &str) -> Value {
    scoped_crd(group, kind, plural, "Namespaced")
}

/// A schemaless CRD (status is part of the object: no status subresource).
pub fn scoped_crd(group: &str, kind: &str, plural: &str, scope: &str) -> Value {
    // Groups under k8s.io need the approval annotation (the real Gateway API CRDs carry it).
    let annotations = if group.ends_with(".k8s.io") {
        json!({"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api/pull/3328"})
    } else {
        json!({})
    };
    json!({
        "metadata": {"name": format!("{plural}.{group}"), "annotations": annotations},
        "spec": {"group": group, "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

fn deployment(name: &str, chart: &str, image: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"helm.sh/chart": chart, "app.kubernetes.io/name": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "manager", "image": image}]}}}
    })
}

/// Create the stand-ins for the recipe's components and wait until the workloads are ready.
pub async fn deploy_components(client: &Client, gpu_ns: &str) {
    ensure_namespace(client, "cert-manager").await;
    ensure_namespace(client, gpu_ns).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    create_or_exists(&crds, crd("cert-manager.io", "Certificate", "certificates")).await;
    create_or_exists(&crds, crd("nvidia.com", "ClusterPolicy", "clusterpolicies")).await;
    let cm: Api<Deployment> = Api::namespaced(client.clone(), "cert-manager");
    create_or_exists(
        &cm,
        deployment(
            "cert-manager",
            "cert-manager-v1.17.2",
            "quay.io/jetstack/cert-manager-controller:v1.17.2",
        ),
    )
    .await;
    let gpu: Api<Deployment> = Api::namespaced(client.clone(), gpu_ns);
    create_or_exists(
        &gpu,
        deployment(
            "gpu-operator",
            "gpu-operator-v25.10.1",
            "nvcr.io/nvidia/gpu-operator:v25.10.1",
        ),
    )
    .await;
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), gpu_ns);
    create_or_exists(
        &ds,
        json!({
            "metadata": {"name": "nvidia-device-plugin-daemonset", "labels": {"helm.sh/chart": "gpu-operator-v25.10.1"}},
            "spec": {"selector": {"matchLabels": {"app": "nvidia-device-plugin-daemonset"}},
                "template": {"metadata": {"labels": {"app": "nvidia-device-plugin-daemonset"}},
                    "spec": {"nodeSelector": {"nvidia.com/gpu.present": "true"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [{"name": "plugin", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.1"}]}}}
        }),
    )
    .await;
    let within = Duration::from_secs(60);
    for name in ["certificates.cert-manager.io", "clusterpolicies.nvidia.com"] {
        tokio::time::timeout(
            within,
            await_condition(crds.clone(), name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} not established"))
        .expect("watch");
    }
    for (api, name) in [(&cm, "cert-manager"), (&gpu, "gpu-operator")] {
        tokio::time::timeout(
            within,
            await_condition(api.clone(), name, conditions::is_deployment_completed()),
        )
        .await
        .unwrap_or_else(|_| panic!("Deployment {name} not complete"))
        .expect("watch");
    }
}

pub fn spec(name: &str, params: Value, timeout: Duration, needs_namespace: bool) -> CaseSpec {
    let phase = match name {
        "component-health" => Phase::Deployment,
        "nccl-all-reduce-bw" | "gdr-enabled" => Phase::Performance,
        _ => Phase::Conformance,
    };
    let id = match params.get("component").and_then(Value::as_str) {
        Some(c) => format!("deployment/{c}"),
        None => format!("{phase}/{name}"),
    };
    CaseSpec {
        suite: phase.as_str().to_string(),
        id,
        name: name.to_string(),
        phase,
        description: String::new(),
        params,
        timeout,
        retries: 0,
        flaky: false,
        needs_namespace,
        requirement: None,
    }
}

/// Run the registered case `spec.name`, creating its namespace (`<prefix>-<case>`) if needed.
pub async fn run_case(
    client: Option<&Client>,
    recipe: &Arc<Recipe>,
    spec: CaseSpec,
    ns_prefix: &str,
    metrics: &MetricsSink,
) -> Outcome {
    let f = aiconform::suites::lookup(&spec.name)
        .unwrap_or_else(|| panic!("case {} is not registered", spec.name));
    let namespace = if spec.needs_namespace {
        let ns = format!("{ns_prefix}-{}", spec.name);
        if let Some(c) = client {
            ensure_namespace(c, &ns).await;
        }
        Some(ns)
    } else {
        None
    };
    let ctx = CaseContext {
        spec: Arc::new(spec),
        client: client.cloned(),
        recipe: recipe.clone(),
        snapshot: None,
        namespace: namespace.clone(),
        metrics: metrics.clone(),
        fail_fast: false,
    };
    let id = ctx.spec.id.clone();
    let outcome = f(ctx)
        .await
        .unwrap_or_else(|e| Outcome::failed(format!("error: {e:#}")));
    eprintln!("{id}: {outcome:?}");
    if let (Some(c), Some(ns)) = (client, namespace) {
        let _ = Api::<Namespace>::all(c.clone())
            .delete(&ns, &DeleteParams::default())
            .await;
    }
    outcome
}

/// Pass/Fail/Skip letter of an outcome, for comparing outcome vectors.
pub fn letter(o: &Outcome) -> char {
    match o {
        Outcome::Passed { .. } => 'P',
        Outcome::Failed { .. } => 'F',
        Outcome::Skipped { .. } => 'S',
    }
}

pub fn message(o: &Outcome) -> &str {
    match o {
        Outcome::Passed { message } | Outcome::Failed { message } => message,
        Outcome::Skipped { reason } => reason,
    }
}

/// The namespace of the GPU Operator stand-in in the conformance vectors.
pub const GPU_NS: &str = "gpu-operator";

/// The outcomes of the deployment and MUST conformance cases, run one after the other. Order:
/// component-health(cert-manager), component-health(gpu-operator), dra-support,
/// gang-scheduling, secure-accelerator-access, robust-controller, cluster-autoscaling,
/// pod-autoscaling, accelerator-metrics, ai-service-metrics, inference-gateway,
/// inference-ingress.
pub async fn vector(client: &Client, prefix: &str) -> Vec<Outcome> {
    run_specs(client, prefix, vector_specs()).await
}

/// The specs of [`vector`], in its order, for tests that adjust one.
pub fn vector_specs() -> Vec<CaseSpec> {
    vec![
        spec(
            "component-health",
            json!({"component": "cert-manager"}),
            Duration::from_secs(15),
            false,
        ),
        spec(
            "component-health",
            json!({"component": "gpu-operator"}),
            Duration::from_secs(15),
            false,
        ),
        spec("dra-support", json!({}), Duration::from_secs(60), true),
        spec(
            "gang-scheduling",
            json!({"settleSeconds": 8}),
            Duration::from_secs(90),
            true,
        ),
        spec(
            "secure-accelerator-access",
            json!({}),
            Duration::from_secs(60),
            true,
        ),
        spec(
            "robust-controller",
            stand_in_operator(),
            Duration::from_secs(30),
            true,
        ),
        spec(
            "cluster-autoscaling",
            json!({"poolLabel": "node.aiconform.dev/pool", "pool": "gpu-burst"}),
            Duration::from_secs(90),
            true,
        ),
        spec("pod-autoscaling", json!({}), Duration::from_secs(60), true),
        spec(
            "accelerator-metrics",
            json!({"namespace": "gpu-operator", "changeWithinSeconds": 10}),
            Duration::from_secs(40),
            true,
        ),
        spec(
            "ai-service-metrics",
            json!({"scrapeInterval": "1s"}),
            Duration::from_secs(30),
            true,
        ),
        spec(
            "inference-gateway",
            json!({"gatewayClass": "aiconform"}),
            Duration::from_secs(90),
            true,
        ),
        spec(
            "inference-ingress",
            json!({"gatewayClass": "aiconform"}),
            Duration::from_secs(90),
            true,
        ),
    ]
}

/// Run specs one after the other against the test recipe.
pub async fn run_specs(client: &Client, prefix: &str, specs: Vec<CaseSpec>) -> Vec<Outcome> {
    let recipe = Arc::new(recipe(GPU_NS));
    let metrics = MetricsSink::default();
    let mut out = Vec::new();
    // Sequential: gangs and GPU pods of one case must not disturb the next.
    for s in specs {
        out.push(run_case(Some(client), &recipe, s, prefix, &metrics).await);
    }
    out
}

/// The test cluster's stand-in operator, as a recipe's `validation.robustController` names it.
pub fn stand_in_operator() -> serde_json::Value {
    json!({
        "namespace": "modelserver-system",
        "podSelector": "app.kubernetes.io/name=modelserver-operator",
        "crds": ["modelservers.ml.aiconform.dev"],
        "apiVersion": "ml.aiconform.dev/v1", "kind": "ModelServer", "plural": "modelservers",
        "invalid": {"spec": {"model": "", "replicas": 0}},
        "valid": {"spec": {"model": "tiny-llm", "replicas": 1}}
    })
}

/// Outcome letters (P, F, S, ...) of a vector.
pub fn letters(v: &[Outcome]) -> String {
    v.iter().map(letter).collect()
}

/// A cluster of the test's own, or None (after a skip) when none can start.
pub async fn start_fresh(test: &str, opts: EmbeddedOptions) -> Option<RunningCluster> {
    match tokio::task::spawn_blocking(move || fresh(&opts)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(reason)) => skip(test, &reason),
        Err(e) => panic!("{test}: starting the cluster panicked: {e}"),
    }
}
