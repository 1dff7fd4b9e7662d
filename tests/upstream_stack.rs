//! Conformance against the real upstream controllers of the embedded cluster's upstream
//! stack (`aiconform cluster up --stack upstream`): the full vector passes, and under a
//! natural fault of each component exactly its case fails (the cases that could share the
//! component's fate run beside it; the others meet stand-ins the fault does not touch).
//!
//! Components: Kueue v0.17.0 (gang-scheduling, through its ClusterQueue), Kubeflow Trainer
//! v2.0.0 with JobSet v0.8.2 (robust-controller), the Prometheus Operator v0.85.0 running the
//! real Prometheus 3.16.0 (ai-service-metrics), KEDA 2.20.2 scaling on a query of that
//! Prometheus (pod-autoscaling), Karpenter v1.15.0's kwok provider with KWOK v0.8.0 faking
//! the kubelets of the nodes it creates (cluster-autoscaling, through its NodePool gpu),
//! Traefik v3.6.12's Gateway API provider (inference-gateway, GatewayClass traefik). The
//! other cases meet the cluster's stand-ins.

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

/// How long cluster-autoscaling may take against Karpenter: a batch window (1 s idle, 10 s
/// at most) before it launches a node, and, once the node is empty, consolidateAfter (5 s)
/// plus its disruption loop's validation before the node is drained and deleted (about 2 s
/// up and 25 s down here). A fault keeps the pod pending until this deadline.
const KARPENTER_TIMEOUT: Duration = Duration::from_secs(120);

/// How long an autoscaling case may take under a fault that keeps it from scaling: KEDA
/// creates its HPA and serves the query's value within seconds, Karpenter launches a node
/// for a pending pod within its 10 s batch window; past that the verdict is the same.
const FAULTED_AUTOSCALING_TIMEOUT: Duration = Duration::from_secs(60);

/// The Prometheus KEDA's operator queries: the Service the Prometheus Operator makes for
/// Prometheus default/k8s, by its cluster DNS name.
const PROMETHEUS_URL: &str = "http://prometheus-operated.default.svc:9090";

/// The vector against the upstream stack: gangs go through Kueue's ClusterQueue (the
/// coscheduling plugin stays beside it), pods scale through a KEDA ScaledObject on a query
/// of the real Prometheus, and the monitoring cases have the Prometheus Operator's time (a
/// new monitor must reach Prometheus' configuration), inference-gateway uses Traefik's
/// GatewayClass (inference-ingress stays on the stand-in's: Traefik implements no
/// InferencePool).
fn upstream_specs() -> Vec<CaseSpec> {
    let mut specs = vector_specs();
    specs[GANG_SCHEDULING].params["gangScheduler"] = json!("kueue");
    specs[GANG_SCHEDULING].params["clusterQueue"] = json!("cluster-queue");
    specs[ROBUST_CONTROLLER].params = kubeflow_trainer();
    specs[ROBUST_CONTROLLER].timeout = Duration::from_secs(120);
    specs[POD_AUTOSCALING].params["keda"] = json!({"prometheusAddress": PROMETHEUS_URL});
    specs[POD_AUTOSCALING].timeout = METRICS_TIMEOUT;
    specs[CLUSTER_AUTOSCALING].params =
        json!({"poolLabel": "karpenter.sh/nodepool", "pool": "gpu"});
    specs[CLUSTER_AUTOSCALING].timeout = KARPENTER_TIMEOUT;
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

/// The autoscaling case `index` alone, with the deadline of a fault that keeps it from
/// scaling.
fn faulted_autoscaling(index: usize) -> Vec<CaseSpec> {
    let mut specs = pick(&[index]);
    specs[0].timeout = FAULTED_AUTOSCALING_TIMEOUT;
    specs
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

/// Set the `nvidia.com/gpu` limit of Karpenter's NodePool gpu (the provider's, from
/// ci/upstream/karpenter/manifests/nodepool.yaml).
async fn set_nodepool_gpu_limit(client: &kube::Client, gpus: u32) {
    let gvk = kube::core::GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool");
    let ar = kube::core::ApiResource::from_gvk_with_plural(&gvk, "nodepools");
    let pools: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &ar);
    pools
        .patch(
            "gpu",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"limits": {"nvidia.com/gpu": gpus.to_string()}}})),
        )
        .await
        .expect("patch NodePool gpu");
}

/// Scale Deployment `ns/name` (pods labelled `pods`) and wait until its pods match: none
/// left at 0, one available at 1.
async fn scale_deployment(client: &kube::Client, ns: &str, name: &str, pods: &str, replicas: i32) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    deployments
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await
        .unwrap_or_else(|e| panic!("scale {ns}/{name}: {e}"));
    let settled = move |d: Option<&Deployment>| {
        d.and_then(|d| Some((d.metadata.generation?, d.status.as_ref()?)))
            .is_some_and(|(g, s)| {
                s.observed_generation == Some(g)
                    && s.replicas.unwrap_or(0) == replicas
                    && s.available_replicas.unwrap_or(0) == replicas
            })
    };
    tokio::time::timeout(
        Duration::from_secs(90),
        await_condition(deployments, name, settled),
    )
    .await
    .unwrap_or_else(|_| panic!("Deployment {ns}/{name} settles at {replicas}"))
    .expect("watch");
    // The ReplicaSet controller deletes the pod; its process ends once the runtime stops it.
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let cfg = watcher::Config::default().labels(pods);
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(api, cfg)).boxed();
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
                "{ns}/{name} still has {} pod(s), want {replicas}",
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
    let autoscaling = message(&healthy[CLUSTER_AUTOSCALING]);
    assert!(
        autoscaling.contains("pool karpenter.sh/nodepool=gpu of Karpenter NodePool gpu (karpenter v1.15.0 (kube-system/karpenter, 1/1 ready))")
            && autoscaling.contains("the pool grew 0→1 nodes")
            && autoscaling.contains("shrank back to 0"),
        "{autoscaling}"
    );
    let scaled = message(&healthy[POD_AUTOSCALING]);
    assert!(
        scaled.contains("KEDA (keda 2.20.2 (keda/keda-operator))")
            && scaled.contains("→ HPA up-healthy-pod-autoscaling/keda-hpa-gpu-autoscale")
            && scaled.contains("it scaled 1→2")
            && scaled.contains("scaled back to 1"),
        "{scaled}"
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

    // Fault: Karpenter's NodePool has reached its GPU limit (0, as many as it has). Karpenter
    // launches nothing for the pending pod and says so on it.
    set_nodepool_gpu_limit(&client, 0).await;
    let at_limit = run_specs(
        &client,
        "up-pool-limit",
        faulted_autoscaling(CLUSTER_AUTOSCALING),
    )
    .await;
    assert_eq!(letters(&at_limit), "F", "{at_limit:#?}");
    assert!(
        message(&at_limit[0]).contains("the pool never grew beyond 0 nodes")
            && message(&at_limit[0]).contains("karpenter: ")
            && message(&at_limit[0]).contains("exceed limits for nodepool"),
        "{at_limit:#?}"
    );
    set_nodepool_gpu_limit(&client, 16).await;

    // Fault: Karpenter scaled to zero. Nothing launches nodes for pending pods.
    let karpenter = "app.kubernetes.io/name=karpenter";
    scale_deployment(&client, "kube-system", "karpenter", karpenter, 0).await;
    let no_karpenter = run_specs(
        &client,
        "up-no-karpenter",
        faulted_autoscaling(CLUSTER_AUTOSCALING),
    )
    .await;
    assert_eq!(letters(&no_karpenter), "F", "{no_karpenter:#?}");
    assert!(
        message(&no_karpenter[0]).contains("(kube-system/karpenter, 0/0 ready)")
            && message(&no_karpenter[0]).contains("the pool never grew beyond 0 nodes"),
        "{no_karpenter:#?}"
    );

    // Fault: a ScaledObject whose query matches nothing. KEDA serves 0 whatever the pods
    // report, so the HPA it made never scales up.
    let mut bad_query = faulted_autoscaling(POD_AUTOSCALING);
    bad_query[0].params["keda"]["query"] =
        json!("sum(aiconform_probe_load{namespace=\"no-such-namespace\"})");
    let bad_query = run_specs(&client, "up-bad-query", bad_query).await;
    assert_eq!(letters(&bad_query), "F", "{bad_query:#?}");
    assert!(
        message(&bad_query[0]).contains("did not scale up")
            && message(&bad_query[0]).contains("the metric KEDA served never rose above 0"),
        "{bad_query:#?}"
    );

    // Fault: KEDA's operator scaled to zero. Its metrics server still serves the external
    // metrics API, but no ScaledObject becomes an HPA.
    scale_deployment(&client, "keda", "keda-operator", "app=keda-operator", 0).await;
    let no_keda = run_specs(&client, "up-no-keda", faulted_autoscaling(POD_AUTOSCALING)).await;
    assert_eq!(letters(&no_keda), "F", "{no_keda:#?}");
    assert!(
        message(&no_keda[0]).contains("KEDA never created the HPA keda-hpa-gpu-autoscale")
            && message(&no_keda[0]).contains("no KEDA operator reconciled it"),
        "{no_keda:#?}"
    );
    scale_deployment(&client, "keda", "keda-operator", "app=keda-operator", 1).await;

    // Fault: the Prometheus Operator scaled to zero. Prometheus keeps serving what it was
    // configured with; a new ServiceMonitor or PodMonitor is never turned into scrape
    // configuration, so neither the service's counter (ai-service-metrics) nor the probe
    // pods' gauge KEDA scales on (pod-autoscaling) reaches it. accelerator-metrics reads the
    // exporter itself (through the service proxy), not Prometheus.
    scale_deployment(
        &client,
        "default",
        "prometheus-operator",
        "app.kubernetes.io/name=prometheus-operator",
        0,
    )
    .await;
    let mut monitoring = pick(&[ACCELERATOR_METRICS, POD_AUTOSCALING, AI_SERVICE_METRICS]);
    monitoring[1].timeout = FAULTED_AUTOSCALING_TIMEOUT;
    // A healthy stack scrapes a new ServiceMonitor within the reloader's 3-minute watch
    // interval; without the operator the verdict after 90 s is the same as after 240 s.
    monitoring[2].timeout = Duration::from_secs(90);
    let faulted = run_specs(&client, "up-no-operator", monitoring).await;
    assert_eq!(letters(&faulted), "PFF", "{faulted:#?}");
    assert!(
        message(&faulted[1]).contains("the metric KEDA served never rose above 0"),
        "{faulted:#?}"
    );
    assert!(
        message(&faulted[2]).contains("was not scraped"),
        "{faulted:#?}"
    );

    // Fault: Traefik scaled to zero. No controller programs the case's Gateway; the
    // Inference Extension case meets the stand-in gateway, which runs on.
    scale_deployment(&client, "default", "traefik", "app=traefik-lb", 0).await;
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
