//! Conformance against the real upstream controllers of the embedded cluster's upstream
//! stack (`aiconform cluster up --stack upstream`): the full vector passes, and under a
//! natural fault of each component exactly its case fails (the cases that could share the
//! component's fate run beside it; the others meet stand-ins the fault does not touch).
//!
//! Components: Kueue v0.17.0 (gang-scheduling, through its ClusterQueue), Kubeflow Trainer
//! v2.0.0 with JobSet v0.8.2 (robust-controller), the Prometheus Operator v0.85.0 running the
//! real Prometheus 3.16.0 (ai-service-metrics), Traefik v3.6.12's Gateway API provider
//! (inference-gateway, GatewayClass traefik). The other cases meet the cluster's stand-ins.

mod suites_support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::{reflector, watcher};
use serde_json::json;

use aiconform::cluster::embedded::EmbeddedOptions;
use aiconform::cluster::testing::test_options;
use aiconform::cluster::upstream::Stack;
use aiconform::runner::case::CaseSpec;
use suites_support::{
    GPU_NS, connect, deploy_components, letters, message, run_specs, start_fresh, vector_specs,
};

/// Indexes of cases in the vector.
const DRA_SUPPORT: usize = 2;
const GANG_SCHEDULING: usize = 3;
const ROBUST_CONTROLLER: usize = 5;
const CLUSTER_AUTOSCALING: usize = 6;
const POD_AUTOSCALING: usize = 7;
const ACCELERATOR_METRICS: usize = 8;
const AI_SERVICE_METRICS: usize = 9;
const INFERENCE_GATEWAY: usize = 10;
const INFERENCE_INGRESS: usize = 11;

/// How long ai-service-metrics may take against the Prometheus Operator: a new monitor
/// reaches Prometheus once the kubelet refreshed its config Secret (2 s here) and
/// prometheus-config-reloader noticed, at worst at its 3-minute watch interval.
const METRICS_TIMEOUT: Duration = Duration::from_secs(240);

/// The vector against the upstream stack: gangs go through Kueue's ClusterQueue (the
/// coscheduling plugin stays beside it), ai-service-metrics has the Prometheus Operator's time,
/// inference-gateway uses Traefik's GatewayClass (inference-ingress stays on the stand-in's:
/// Traefik implements no InferencePool).
fn upstream_specs() -> Vec<CaseSpec> {
    let mut specs = vector_specs();
    specs[GANG_SCHEDULING].params["gangScheduler"] = json!("kueue");
    specs[GANG_SCHEDULING].params["clusterQueue"] = json!("cluster-queue");
    specs[ROBUST_CONTROLLER].params = kubeflow_trainer();
    specs[ROBUST_CONTROLLER].timeout = Duration::from_secs(120);
    specs[AI_SERVICE_METRICS].timeout = METRICS_TIMEOUT;
    specs[INFERENCE_GATEWAY].params["gatewayClass"] = json!("traefik");
    specs
}

/// Kubeflow Trainer as the operator under test, with the parameters the built-in kubeflow
/// overlay gives it (recipes/overlays/kubeflow.yaml).
fn kubeflow_trainer() -> serde_json::Value {
    let runtime = json!({"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
        "name": "torch-distributed-gpu"});
    json!({
        "component": "kubeflow-trainer",
        "namespace": "kubeflow-system",
        "podSelector": "app.kubernetes.io/name=kubeflow-trainer,app.kubernetes.io/component=manager",
        "crds": ["trainjobs.trainer.kubeflow.org", "trainingruntimes.trainer.kubeflow.org",
            "clustertrainingruntimes.trainer.kubeflow.org"],
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob", "plural": "trainjobs",
        "invalid": {"spec": {"runtimeRef": runtime, "trainer": {"numNodes": 1, "numProcPerNode": 1,
            "env": [{"name": "PET_NNODES", "value": "1"}]}}},
        "valid": {"spec": {"suspend": true, "runtimeRef": runtime, "trainer": {"numNodes": 1}}},
        "readyConditions": ["Suspended"],
        "ownedKinds": [{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "plural": "jobsets"}]
    })
}

/// The vector's cases at `indexes`, in that order.
fn pick(indexes: &[usize]) -> Vec<CaseSpec> {
    let specs = upstream_specs();
    indexes.iter().map(|&i| specs[i].clone()).collect()
}

/// Set the GPU quota of Kueue's ClusterQueue cluster-queue (the provider's, from
/// ci/upstream/kueue/manifests/queues.yaml).
async fn set_gpu_quota(client: &kube::Client, gpus: u32) {
    let queues = kueue_api(client, "clusterqueues", "ClusterQueue");
    let mut cq = queues
        .get("cluster-queue")
        .await
        .expect("ClusterQueue cluster-queue");
    let resources = cq.data["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
        .as_array_mut()
        .expect("ClusterQueue resources");
    for r in resources.iter_mut() {
        if r["name"] == "nvidia.com/gpu" {
            r["nominalQuota"] = json!(gpus.to_string());
        }
    }
    queues
        .replace("cluster-queue", &Default::default(), &cq)
        .await
        .expect("update ClusterQueue");
}

fn kueue_api(client: &kube::Client, plural: &str, kind: &str) -> Api<kube::core::DynamicObject> {
    let gvk = kube::core::GroupVersionKind::gvk("kueue.x-k8s.io", "v1beta2", kind);
    let ar = kube::core::ApiResource::from_gvk_with_plural(&gvk, plural);
    Api::all_with(client.clone(), &ar)
}

/// Scale a Deployment of `namespace` (its pods labelled `pod_labels`) and wait until its pods
/// match: none left at 0, one available at 1.
async fn scale(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    pod_labels: &str,
    replicas: i32,
) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    deployments
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap_or_else(|e| panic!("scale {namespace}/{name}: {e}"));
    let settled = move |d: Option<&Deployment>| {
        d.and_then(|d| Some((d.metadata.generation?, d.status.as_ref()?)))
            .is_some_and(|(g, s)| {
                s.observed_generation == Some(g)
                    && s.replicas.unwrap_or(0) == replicas
                    && s.available_replicas.unwrap_or(0) == replicas
            })
    };
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(deployments, name, settled),
    )
    .await
    .unwrap_or_else(|_| panic!("Deployment {namespace}/{name} settles"))
    .expect("watch");
    // The ReplicaSet controller deletes the pod; its process ends once the runtime stops it.
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let cfg = watcher::Config::default().labels(pod_labels);
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(pods, cfg)).boxed();
    let settled = async {
        while let Some(event) = events.try_next().await.expect("watch pods") {
            if matches!(
                event,
                watcher::Event::InitDone | watcher::Event::Apply(_) | watcher::Event::Delete(_)
            ) && reader.state().len() == replicas as usize
            {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), settled)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{namespace}/{name} still has {} pod(s), want {replicas}",
                reader.state().len()
            )
        });
}

#[tokio::test]
async fn upstream_stack_passes_and_each_component_fault_fails_its_case() {
    let test = "upstream_stack";
    let opts = EmbeddedOptions {
        stack: Stack::Upstream,
        start_timeout: Duration::from_secs(420),
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;

    let healthy = run_specs(&client, "up-healthy", upstream_specs()).await;
    assert_eq!(letters(&healthy), "PPPPPPPPPPPP", "{healthy:#?}");
    let gang = message(&healthy[GANG_SCHEDULING]);
    assert!(
        gang.contains("kueue gang scheduler (kueue v0.17.0 (kueue-system/kueue-controller-manager)) through ClusterQueue cluster-queue")
            && gang.contains("its Job stayed suspended")
            && gang.contains("its Job completed"),
        "{gang}"
    );
    let trainer = message(&healthy[ROBUST_CONTROLLER]);
    assert!(
        trainer.contains("denied by admission webhook validator.trainjob.trainer.kubeflow.org")
            && trainer.contains("children JobSet/valid"),
        "{trainer}"
    );
    let metrics = message(&healthy[AI_SERVICE_METRICS]);
    assert!(
        metrics.contains("ServiceMonitor up-healthy-ai-service-metrics/aiconform-ai-service")
            && metrics.contains("default/prometheus-operated:web (Prometheus 3.16.0")
            && metrics.contains(
                "configured by prometheus-operator v0.85.0 (default/prometheus-operator)"
            )
            && metrics.contains("rising"),
        "{metrics}"
    );

    let gateway = message(&healthy[INFERENCE_GATEWAY]);
    assert!(
        gateway.contains("(class traefik) Programmed at http://")
            && gateway.contains("Accepted and ResolvedRefs by traefik.io/gateway-controller (traefik v3.6.12 (default/traefik), 1/1 ready)")
            && gateway.contains("for weights 80:20")
            && gateway.contains("reached canary"),
        "{gateway}"
    );

    // Fault: Kueue's ClusterQueue has no GPU quota. Kueue admits no GPU Job, so no gang
    // runs; the scheduling cases that do not queue through Kueue are unaffected.
    set_gpu_quota(&client, 0).await;
    let no_quota = run_specs(
        &client,
        "up-no-quota",
        pick(&[DRA_SUPPORT, GANG_SCHEDULING, CLUSTER_AUTOSCALING]),
    )
    .await;
    assert_eq!(letters(&no_quota), "PFP", "{no_quota:#?}");
    assert!(
        message(&no_quota[1]).contains("never admitted the 2-member gang"),
        "{no_quota:#?}"
    );
    set_gpu_quota(&client, 16).await;

    // Fault: Kubeflow Trainer's validating webhook removed. The invalid TrainJob is admitted.
    let webhooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    webhooks
        .delete("validator.trainer.kubeflow.org", &Default::default())
        .await
        .expect("delete the Trainer's ValidatingWebhookConfiguration");
    let no_webhook = run_specs(&client, "up-no-webhook", pick(&[ROBUST_CONTROLLER])).await;
    assert_eq!(letters(&no_webhook), "F", "{no_webhook:#?}");
    assert!(
        message(&no_webhook[0]).contains("the invalid TrainJob")
            && message(&no_webhook[0]).contains("was admitted"),
        "{no_webhook:#?}"
    );

    // Fault: the Prometheus Operator scaled to zero. Prometheus keeps serving what it was
    // configured with; a new ServiceMonitor is never turned into scrape configuration.
    // The other cases meet stand-ins; the monitoring ones run again beside it.
    scale(
        &client,
        "default",
        "prometheus-operator",
        "app.kubernetes.io/name=prometheus-operator",
        0,
    )
    .await;
    let faulted = run_specs(
        &client,
        "up-no-operator",
        pick(&[ACCELERATOR_METRICS, POD_AUTOSCALING, AI_SERVICE_METRICS]),
    )
    .await;
    assert_eq!(letters(&faulted), "PPF", "{faulted:#?}");
    assert!(
        message(&faulted[2]).contains("was not scraped"),
        "{faulted:#?}"
    );

    // Fault: Traefik scaled to zero. No controller programs the case's Gateway; the
    // Inference Extension case meets the stand-in gateway, which runs on.
    scale(&client, "default", "traefik", "app=traefik-lb", 0).await;
    let no_traefik = run_specs(
        &client,
        "up-no-traefik",
        pick(&[INFERENCE_GATEWAY, INFERENCE_INGRESS]),
    )
    .await;
    assert_eq!(letters(&no_traefik), "FP", "{no_traefik:#?}");
    assert!(
        message(&no_traefik[0]).contains("(class traefik) not Accepted and Programmed")
            && message(&no_traefik[0]).contains("traefik v3.6.12 (default/traefik), 0/0 ready"),
        "{no_traefik:#?}"
    );
}
