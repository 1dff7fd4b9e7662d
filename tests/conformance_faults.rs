//! Deployment and conformance cases against the embedded cluster, healthy and with injected
//! faults. Each fault must fail exactly the case it breaks: the full outcome vector of the
//! relevant cases is asserted.
//!
//! Vector order: component-health(cert-manager), component-health(gpu-operator), dra-support,
//! gang-scheduling, secure-accelerator-access, robust-controller, cluster-autoscaling,
//! inference-gateway, inference-ingress.
//! secure-accelerator-access is `S` (not proven) on simulated nodes: they run no containers
//! whose view of the devices it could judge.

mod suites_support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::resource::v1::DeviceClass;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use serde_json::json;

use aiconform::cluster::embedded::{EmbeddedOptions, RunningCluster};
use aiconform::cluster::testing::{fresh, shared_or_skip, skip, test_options};
use aiconform::runner::case::{MetricsSink, Outcome};
use suites_support::{connect, deploy_components, letter, message, recipe, run_case, spec};

const GPU_NS: &str = "gpu-operator";

async fn vector(client: &Client, prefix: &str) -> Vec<Outcome> {
    let recipe = Arc::new(recipe(GPU_NS));
    let metrics = MetricsSink::default();
    let specs = vec![
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
    ];
    let mut out = Vec::new();
    // Sequential: gangs and GPU pods of one case must not disturb the next.
    for s in specs {
        out.push(run_case(Some(client), &recipe, s, prefix, &metrics).await);
    }
    out
}

/// The test cluster's stand-in operator, as a recipe's `validation.robustController` names it.
fn stand_in_operator() -> serde_json::Value {
    json!({
        "namespace": "modelserver-system",
        "podSelector": "app.kubernetes.io/name=modelserver-operator",
        "crds": ["modelservers.ml.aiconform.dev"],
        "apiVersion": "ml.aiconform.dev/v1", "kind": "ModelServer", "plural": "modelservers",
        "invalid": {"spec": {"model": "", "replicas": 0}},
        "valid": {"spec": {"model": "tiny-llm", "replicas": 1}}
    })
}

fn letters(v: &[Outcome]) -> String {
    v.iter().map(letter).collect()
}

async fn start_fresh(test: &str, opts: EmbeddedOptions) -> Option<RunningCluster> {
    match tokio::task::spawn_blocking(move || fresh(&opts)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(reason)) => skip(test, &reason),
        Err(e) => panic!("{test}: starting the cluster panicked: {e}"),
    }
}

#[tokio::test]
async fn healthy_cluster_passes_then_unready_daemonset_fails_only_its_component() {
    let test = "healthy_then_unready_daemonset";
    let Some(cluster) = shared_or_skip(test) else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;

    let healthy = vector(&client, "healthy").await;
    assert_eq!(letters(&healthy), "PPPPSPPPP", "{healthy:#?}");
    assert!(
        message(&healthy[1]).contains("version v25.10.1 confirmed"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[2]).contains("allocated gpu.nvidia.com/"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[3]).contains("stayed entirely unbound")
            && message(&healthy[3]).contains("its Job completed"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[5])
            .contains("denied by admission webhook validate.modelservers.ml.aiconform.dev")
            && message(&healthy[5]).contains("Deployment/valid"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[6]).contains("the pool grew 0→1 nodes")
            && message(&healthy[6]).contains("shrank back to 0"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[7]).contains("Programmed at http://127.2.")
            && message(&healthy[7]).contains("for weights 80:20")
            && message(&healthy[7]).contains("all 20 requests with the header reached canary"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[8]).contains("all 30 requests reached the least-loaded model server idle")
            && message(&healthy[8]).contains("in x-gateway-destination-endpoint for each"),
        "{healthy:#?}"
    );

    // Fault: the device-plugin DaemonSet's new pods never become ready.
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), GPU_NS);
    ds.patch(
        "nvidia-device-plugin-daemonset",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations":
            {"testcluster.aiconform.dev/ready": "false"}}}}})),
    )
    .await
    .expect("patch DaemonSet");
    let unready = |d: Option<&DaemonSet>| {
        d.and_then(|d| Some((d.metadata.generation?, d.status.as_ref()?)))
            .is_some_and(|(g, s)| {
                s.observed_generation == Some(g) && s.number_ready < s.desired_number_scheduled
            })
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(ds.clone(), "nvidia-device-plugin-daemonset", unready),
    )
    .await
    .expect("DaemonSet becomes unready")
    .expect("watch");

    let faulty = vector(&client, "unready-ds").await;
    assert_eq!(letters(&faulty), "PFPPSPPPP", "{faulty:#?}");
    let m = message(&faulty[1]);
    assert!(
        m.contains("DaemonSet gpu-operator/nvidia-device-plugin-daemonset")
            && m.contains("pods ready"),
        "{m}"
    );
    assert!(m.contains("2/3 health checks healthy"), "{m}");
}

#[tokio::test]
async fn deleted_device_class_fails_only_dra_support() {
    let test = "deleted_device_class_fails_only_dra_support";
    let Some(cluster) = start_fresh(test, test_options()).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let classes: Api<DeviceClass> = Api::all(client.clone());
    classes
        .delete("gpu.nvidia.com", &DeleteParams::default())
        .await
        .expect("delete DeviceClass");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(
            classes.clone(),
            "gpu.nvidia.com",
            |d: Option<&DeviceClass>| d.is_none(),
        ),
    )
    .await
    .expect("DeviceClass gone")
    .expect("watch");

    let v = vector(&client, "no-deviceclass").await;
    assert_eq!(letters(&v), "PPFPSPPPP", "{v:#?}");
    assert!(
        message(&v[2]).contains("DeviceClass gpu.nvidia.com not found"),
        "{v:#?}"
    );
}

#[tokio::test]
async fn cluster_without_gang_plugin_fails_only_gang_scheduling() {
    let test = "cluster_without_gang_plugin_fails_only_gang_scheduling";
    let opts = EmbeddedOptions {
        gang: false,
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;

    let v = vector(&client, "no-gang").await;
    assert_eq!(letters(&v), "PPPFSPPPP", "{v:#?}");
    let m = message(&v[3]);
    assert!(
        m.contains("partial placement") && m.contains("of 3 members bound"),
        "{m}"
    );
}

/// Start a fresh cluster with extra testcluster flags, deploy the stand-ins, run the vector.
async fn vector_with_fault(test: &str, flags: &[&str], prefix: &str) -> Option<Vec<Outcome>> {
    let opts = EmbeddedOptions {
        extra_args: flags.iter().map(|f| f.to_string()).collect(),
        ..test_options()
    };
    let cluster = start_fresh(test, opts).await?;
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    Some(vector(&client, prefix).await)
}

#[tokio::test]
async fn webhook_that_admits_everything_fails_only_robust_controller() {
    let test = "webhook_that_admits_everything_fails_only_robust_controller";
    let Some(v) = vector_with_fault(test, &["--operator-webhook-admits-all"], "admit-all").await
    else {
        return;
    };
    assert_eq!(letters(&v), "PPPPSFPPP", "{v:#?}");
    assert!(
        message(&v[5]).contains("the invalid ModelServer")
            && message(&v[5]).contains("was admitted"),
        "{v:#?}"
    );
}

#[tokio::test]
async fn operator_without_reconciler_fails_only_robust_controller() {
    let test = "operator_without_reconciler_fails_only_robust_controller";
    let Some(v) = vector_with_fault(test, &["--operator-no-reconciler"], "no-reconcile").await
    else {
        return;
    };
    assert_eq!(letters(&v), "PPPPSFPPP", "{v:#?}");
    let m = message(&v[5]);
    assert!(
        m.contains("denied the invalid ModelServer")
            && m.contains("did not become Ready or Succeeded")
            && m.contains("0 child object(s)"),
        "{m}"
    );
}

#[tokio::test]
async fn autoscaler_that_never_shrinks_fails_only_cluster_autoscaling() {
    let test = "autoscaler_that_never_shrinks_fails_only_cluster_autoscaling";
    let Some(v) = vector_with_fault(test, &["--gpu-pool-no-scale-down"], "no-shrink").await else {
        return;
    };
    assert_eq!(letters(&v), "PPPPSPFPP", "{v:#?}");
    let m = message(&v[6]);
    assert!(
        m.contains("the pool grew to 1 nodes") && m.contains("does not scale down"),
        "{m}"
    );
}

#[tokio::test]
async fn gateway_that_ignores_weights_fails_only_inference_gateway() {
    let test = "gateway_that_ignores_weights_fails_only_inference_gateway";
    let Some(v) = vector_with_fault(test, &["--gateway-ignores-weights"], "no-weights").await
    else {
        return;
    };
    assert_eq!(letters(&v), "PPPPSPPFP", "{v:#?}");
    let m = message(&v[7]);
    assert!(
        m.contains("200 requests split stable=200 for weights 80:20")
            && m.contains("5σ binomial bound")
            && !m.contains("header rule"),
        "{m}"
    );
}

#[tokio::test]
async fn endpoint_picker_that_ignores_load_fails_only_inference_ingress() {
    let test = "endpoint_picker_that_ignores_load_fails_only_inference_ingress";
    let Some(v) = vector_with_fault(test, &["--gateway-epp-ignores-metrics"], "epp-no-load").await
    else {
        return;
    };
    assert_eq!(letters(&v), "PPPPSPPPF", "{v:#?}");
    let m = message(&v[8]);
    assert!(
        m.contains("30 requests reached busy=10 idle=10 warm=10")
            && m.contains("the least-loaded model server idle should have answered all"),
        "{m}"
    );
}
