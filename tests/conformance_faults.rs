//! Deployment and conformance cases against the embedded cluster, healthy and with injected
//! faults. Each fault must fail exactly the case it breaks: the full outcome vector of the
//! relevant cases is asserted.
//!
//! Vector order: component-health(cert-manager), component-health(gpu-operator), dra-support,
//! gang-scheduling, secure-accelerator-access, robust-controller, cluster-autoscaling,
//! pod-autoscaling, accelerator-metrics, ai-service-metrics, inference-gateway,
//! inference-ingress.

mod suites_support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::resource::v1::DeviceClass;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use serde_json::json;

use aiconform::cluster::embedded::EmbeddedOptions;
use aiconform::cluster::testing::{shared_or_skip, test_options};
use aiconform::runner::case::{MetricsSink, Outcome};
use suites_support::{
    GPU_NS, connect, deploy_components, letter, letters, message, recipe, run_case, spec,
    start_fresh, vector,
};

/// The 1.35 SHOULD case gpu-sharing, run after the MUST vector on the same cluster.
async fn gpu_sharing(client: &Client, prefix: &str) -> Outcome {
    let recipe = Arc::new(recipe(GPU_NS));
    let s = spec("gpu-sharing", json!({}), Duration::from_secs(90), true);
    run_case(Some(client), &recipe, s, prefix, &MetricsSink::default()).await
}

/// The 1.35 SHOULD case driver-runtime-management.
async fn driver_runtime(client: &Client, prefix: &str) -> Outcome {
    let recipe = Arc::new(recipe(GPU_NS));
    let s = spec(
        "driver-runtime-management",
        json!({}),
        Duration::from_secs(60),
        true,
    );
    run_case(Some(client), &recipe, s, prefix, &MetricsSink::default()).await
}

/// The 1.35 SHOULD case virtualized-accelerator.
async fn virtualized_accelerator(client: &Client, prefix: &str) -> Outcome {
    let recipe = Arc::new(recipe(GPU_NS));
    let s = spec(
        "virtualized-accelerator",
        json!({}),
        Duration::from_secs(90),
        true,
    );
    run_case(Some(client), &recipe, s, prefix, &MetricsSink::default()).await
}

/// The 1.36 SHOULD case disaggregated-inference.
async fn disaggregated(client: &Client, prefix: &str) -> Outcome {
    let recipe = Arc::new(recipe(GPU_NS));
    let s = spec(
        "disaggregated-inference",
        json!({"gatewayClass": "aiconform"}),
        Duration::from_secs(90),
        true,
    );
    run_case(Some(client), &recipe, s, prefix, &MetricsSink::default()).await
}

/// The 1.36 SHOULD case high-performance-networking.
async fn high_performance_networking(client: &Client, prefix: &str) -> Outcome {
    let recipe = Arc::new(recipe(GPU_NS));
    let s = spec(
        "high-performance-networking",
        json!({}),
        Duration::from_secs(120),
        true,
    );
    run_case(Some(client), &recipe, s, prefix, &MetricsSink::default()).await
}

/// The 1.37 SHOULD case workload-sandboxing.
async fn workload_sandboxing(client: &Client, prefix: &str) -> Outcome {
    let recipe = Arc::new(recipe(GPU_NS));
    let s = spec(
        "workload-sandboxing",
        json!({}),
        Duration::from_secs(60),
        true,
    );
    run_case(Some(client), &recipe, s, prefix, &MetricsSink::default()).await
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
    assert_eq!(letters(&healthy), "PPPPPPPPPPPP", "{healthy:#?}");
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
    let secure = message(&healthy[4]);
    assert!(
        secure.contains("positive access: container gpu of pod positive-access")
            && secure.contains("negative isolation: pod negative-isolation without a claim")
            && secure.contains("sees no GPU device")
            && secure.contains("its sibling unauthorized sees no GPU device"),
        "{secure}"
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
        message(&healthy[7]).contains("it scaled 1→2 and the new pod ran on an accelerator node")
            && message(&healthy[7]).contains("scaled back to 1"),
        "{healthy:#?}"
    );

    let sharing = gpu_sharing(&client, "healthy").await;
    assert_eq!(letter(&sharing), 'P', "{sharing:#?}");
    assert!(
        message(&sharing).contains("9 pods each requesting 1 nvidia.com/gpu.shared")
            && message(&sharing).contains("shared at the same time: GPU-"),
        "{sharing:#?}"
    );

    let driver = driver_runtime(&client, "healthy").await;
    assert_eq!(letter(&driver), 'P', "{driver:#?}");
    assert!(
        message(&driver).contains("gpu-0: driver 550.127.05")
            && message(&driver).contains("read as 550.127.05 from /sys/module/nvidia/version"),
        "{driver:#?}"
    );

    let vgpu = virtualized_accelerator(&client, "healthy").await;
    assert_eq!(letter(&vgpu), 'P', "{vgpu:#?}");
    assert!(
        message(&vgpu)
            .contains("3 pods each claiming one of the 2 vGPU(s) H100-40C of parent GPU GPU-")
            && message(&vgpu)
                .contains("2 ran at the same time, each probe saw exactly its own vGPU")
            && message(&vgpu).contains("waited unallocated (Unschedulable"),
        "{vgpu:#?}"
    );

    let disagg = disaggregated(&client, "healthy").await;
    assert_eq!(letter(&disagg), 'P', "{disagg:#?}");
    let m = message(&disagg);
    assert!(
        m.contains("all 12 requests through the gateway succeeded, answered by decode pods")
            && m.contains("all 12 request ids appear in the logs of prefill pods (model-prefill-")
            && m.contains("produced kv-model-prefill-"),
        "{m}"
    );

    let hpn = high_performance_networking(&client, "healthy").await;
    assert_eq!(letter(&hpn), 'P', "{hpn:#?}");
    let m = message(&hpn);
    assert!(
        m.contains("4 NIC(s) of dra.net on gpu-0")
            && m.contains("rdma=true pciAddress=0000:1a:00.0 numaNode=0")
            && m.contains("a pod pinned to gpu-1 (no NIC) stayed unschedulable")
            && m.contains("hpn-client: ens")
            && m.contains("besides eth0; send 8388608 bytes")
            && m.contains("received"),
        "{m}"
    );
    let sandbox = workload_sandboxing(&client, "healthy").await;
    assert_eq!(letter(&sandbox), 'P', "{sandbox:#?}");
    let m = message(&sandbox);
    assert!(
        m.contains("RuntimeClass gvisor (handler runsc): the same probe ran in a sandboxed pod and in a control pod on node ")
            && m.contains("process isolation PASS (its /proc lists 1 process(es), none of kubelet")
            && m.contains("memory isolation PASS (/dev/mem absent, /dev/kmem absent)")
            && m.contains("filesystem isolation PASS")
            && m.contains("network isolation PASS (interfaces lo)")
            && m.contains("kernel identity PASS (differs in /proc/version, boot id")
            && m.contains("/proc/version Linux version 4.19.0-gvisor")
            && m.contains("Control pod (default runtime, same node; reference only): process isolation not isolated"),
        "{m}"
    );
    assert!(
        message(&healthy[8]).contains("scraped through the API server service proxy")
            && message(&healthy[8]).contains("gpu-0: 8 GPUs")
            && message(&healthy[8]).contains("utilization 0% → 97%")
            && message(&healthy[8]).contains("attributed to healthy-accelerator-metrics/gpu-load"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[9])
            .contains("ServiceMonitor healthy-ai-service-metrics/aiconform-ai-service")
            && message(&healthy[9]).contains("rising"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[10]).contains("Programmed at http://127.2.")
            && message(&healthy[10]).contains("for weights 80:20")
            && message(&healthy[10]).contains("all 20 requests with the header reached canary"),
        "{healthy:#?}"
    );
    assert!(
        message(&healthy[11])
            .contains("all 30 requests reached the least-loaded model server idle")
            && message(&healthy[11]).contains("in x-gateway-destination-endpoint for each"),
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
    assert_eq!(letters(&faulty), "PFPPPPPPPPPP", "{faulty:#?}");
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
    assert_eq!(letters(&v), "PPFPPPPPPPPP", "{v:#?}");
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
    assert_eq!(letters(&v), "PPPFPPPPPPPP", "{v:#?}");
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
    assert_eq!(letters(&v), "PPPPPFPPPPPP", "{v:#?}");
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
    assert_eq!(letters(&v), "PPPPPFPPPPPP", "{v:#?}");
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
    assert_eq!(letters(&v), "PPPPPPFPPPPP", "{v:#?}");
    let m = message(&v[6]);
    assert!(
        m.contains("the pool grew to 1 nodes") && m.contains("does not scale down"),
        "{m}"
    );
}

#[tokio::test]
async fn cluster_without_hpa_controller_fails_only_pod_autoscaling() {
    let test = "cluster_without_hpa_controller_fails_only_pod_autoscaling";
    let Some(v) = vector_with_fault(test, &["--no-hpa-controller"], "no-hpa").await else {
        return;
    };
    assert_eq!(letters(&v), "PPPPPPPFPPPP", "{v:#?}");
    let m = message(&v[7]);
    assert!(
        m.contains("the HPA never read the metric")
            && m.contains("no HorizontalPodAutoscaler controller processed it"),
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
    assert_eq!(letters(&v), "PPPPPPPPPPFP", "{v:#?}");
    let m = message(&v[10]);
    assert!(
        m.contains("200 requests split stable=200 for weights 80:20")
            && m.contains("5σ binomial bound")
            && !m.contains("header rule"),
        "{m}"
    );
}

#[tokio::test]
async fn frozen_exporter_fails_only_accelerator_metrics() {
    let test = "frozen_exporter_fails_only_accelerator_metrics";
    let Some(v) = vector_with_fault(test, &["--exporter-frozen"], "frozen").await else {
        return;
    };
    assert_eq!(letters(&v), "PPPPPPPPFPPP", "{v:#?}");
    let m = message(&v[8]);
    assert!(
        m.contains("reports every GPU node")
            && m.contains("do not follow the load")
            && m.contains("no device changed"),
        "{m}"
    );
}

#[tokio::test]
async fn leaky_device_isolation_fails_only_secure_accelerator_access() {
    let test = "leaky_device_isolation_fails_only_secure_accelerator_access";
    let Some(v) = vector_with_fault(test, &["--leaky-device-isolation"], "leaky").await else {
        return;
    };
    assert_eq!(letters(&v), "PPPPFPPPPPPP", "{v:#?}");
    let m = message(&v[4]);
    assert!(
        m.contains("negative isolation FAILED: pod negative-isolation without a claim")
            && m.contains("sees /dev/nvidia0, /dev/nvidia1")
            && m.contains("NVIDIA_VISIBLE_DEVICES=all")
            && m.contains("multi-container isolation FAILED")
            && m.contains("positive access FAILED"),
        "{m}"
    );
}

#[tokio::test]
async fn exclusive_gpu_replicas_fail_only_gpu_sharing() {
    let test = "exclusive_gpu_replicas_fail_only_gpu_sharing";
    let opts = EmbeddedOptions {
        extra_args: vec!["--gpu-sharing-exclusive".to_string()],
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let v = vector(&client, "exclusive").await;
    assert_eq!(letters(&v), "PPPPPPPPPPPP", "{v:#?}");
    let sharing = gpu_sharing(&client, "exclusive").await;
    assert_eq!(letter(&sharing), 'F', "{sharing:#?}");
    let m = message(&sharing);
    assert!(
        m.contains("1 of 9 did not run with exactly one GPU")
            && m.contains("UnexpectedAdmissionError"),
        "{m}"
    );
}

#[tokio::test]
async fn skewed_driver_fails_only_driver_runtime_management() {
    let test = "skewed_driver_fails_only_driver_runtime_management";
    let opts = EmbeddedOptions {
        extra_args: vec!["--driver-version-skew".to_string()],
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let v = vector(&client, "skew").await;
    assert_eq!(letters(&v), "PPPPPPPPPPPP", "{v:#?}");
    assert_eq!(letter(&gpu_sharing(&client, "skew").await), 'P');
    let driver = driver_runtime(&client, "skew").await;
    assert_eq!(letter(&driver), 'F', "{driver:#?}");
    let m = message(&driver);
    assert!(
        m.contains("2 of 2 GPU node(s) do not run what the platform reports")
            && m.contains("reports driver 550.127.05, but a pod reads 535.183.01"),
        "{m}"
    );
}

#[tokio::test]
async fn monitoring_that_never_scrapes_fails_only_ai_service_metrics() {
    let test = "monitoring_that_never_scrapes_fails_only_ai_service_metrics";
    let Some(v) = vector_with_fault(test, &["--monitoring-no-scrape"], "no-scrape").await else {
        return;
    };
    assert_eq!(letters(&v), "PPPPPPPPPFPP", "{v:#?}");
    let m = message(&v[9]);
    assert!(
        m.contains("answers queries but did not collect the service's metrics")
            && m.contains("was not scraped"),
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
    assert_eq!(letters(&v), "PPPPPPPPPPPF", "{v:#?}");
    let m = message(&v[11]);
    assert!(
        m.contains("30 requests reached busy=10 idle=10 warm=10")
            && m.contains("the least-loaded model server idle should have answered all"),
        "{m}"
    );
}

#[tokio::test]
async fn leaky_vgpus_fail_only_virtualized_accelerator() {
    let test = "leaky_vgpus_fail_only_virtualized_accelerator";
    let opts = EmbeddedOptions {
        extra_args: vec!["--vgpu-leaky".to_string()],
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let v = vector(&client, "leaky-vgpu").await;
    assert_eq!(letters(&v), "PPPPPPPPPPPP", "{v:#?}");
    let vgpu = virtualized_accelerator(&client, "leaky-vgpu").await;
    assert_eq!(letter(&vgpu), 'F', "{vgpu:#?}");
    let m = message(&vgpu);
    assert!(
        m.contains("did not run with exactly their own vGPU")
            && m.contains("but sees /dev/nvidia8, /dev/nvidia9 (NVIDIA_VISIBLE_DEVICES=GPU-")
            && m.contains("sibling vGPU(s) vgpu-7-"),
        "{m}"
    );
}

#[tokio::test]
async fn gateway_without_disaggregation_fails_only_disaggregated_inference() {
    let test = "gateway_without_disaggregation_fails_only_disaggregated_inference";
    let opts = EmbeddedOptions {
        extra_args: vec!["--gateway-no-disaggregation".to_string()],
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let v = vector(&client, "no-disagg").await;
    assert_eq!(letters(&v), "PPPPPPPPPPPP", "{v:#?}");
    let disagg = disaggregated(&client, "no-disagg").await;
    assert_eq!(letter(&disagg), 'F', "{disagg:#?}");
    let m = message(&disagg);
    assert!(
        m.contains("of 12 request ids, ")
            && m.contains("never appeared in a prefill pod's log")
            && m.contains("were answered by a pod that is not a decode pod"),
        "{m}"
    );
}

#[tokio::test]
async fn nics_without_secondary_interface_fail_only_high_performance_networking() {
    let test = "nics_without_secondary_interface_fail_only_high_performance_networking";
    let opts = EmbeddedOptions {
        extra_args: vec!["--nic-no-secondary-interface".to_string()],
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let v = vector(&client, "no-nic-if").await;
    assert_eq!(letters(&v), "PPPPPPPPPPPP", "{v:#?}");
    let hpn = high_performance_networking(&client, "no-nic-if").await;
    assert_eq!(letter(&hpn), 'F', "{hpn:#?}");
    let m = message(&hpn);
    assert!(
        m.contains("4 NIC(s) of dra.net on gpu-0")
            && m.contains("the claim's networkData names interface ens")
            && m.contains("but the pod's own network namespace has only eth0, lo"),
        "{m}"
    );
}

#[tokio::test]
async fn leaky_sandbox_fails_only_workload_sandboxing_and_no_runtime_class_skips_it() {
    let test = "leaky_sandbox_fails_only_workload_sandboxing_and_no_runtime_class_skips_it";
    let opts = EmbeddedOptions {
        extra_args: vec!["--sandbox-leaky".to_string()],
        ..test_options()
    };
    let Some(cluster) = start_fresh(test, opts).await else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, GPU_NS).await;
    let v = vector(&client, "leaky-sandbox").await;
    assert_eq!(letters(&v), "PPPPPPPPPPPP", "{v:#?}");
    let sandbox = workload_sandboxing(&client, "leaky-sandbox").await;
    assert_eq!(letter(&sandbox), 'F', "{sandbox:#?}");
    let m = message(&sandbox);
    assert!(
        m.contains("RuntimeClass gvisor (handler runsc) does not isolate workloads from node ")
            && m.contains("process isolation FAILED (its /proc lists ")
            && m.contains("outside its PID namespace)")
            && m.contains(
                "kernel identity FAILED (same uname -r, /proc/version, boot id as the control pod)"
            )
            && !m.contains("memory isolation FAILED")
            && !m.contains("filesystem isolation FAILED")
            && !m.contains("network isolation FAILED"),
        "{m}"
    );

    // Without a sandboxed RuntimeClass the requirement is not applicable: skipped, never passed.
    let classes: Api<RuntimeClass> = Api::all(client.clone());
    classes
        .delete("gvisor", &DeleteParams::default())
        .await
        .expect("delete RuntimeClass");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(classes.clone(), "gvisor", |r: Option<&RuntimeClass>| {
            r.is_none()
        }),
    )
    .await
    .expect("RuntimeClass gone")
    .expect("watch");
    let none = workload_sandboxing(&client, "no-sandbox").await;
    assert_eq!(letter(&none), 'S', "{none:#?}");
    let m = message(&none);
    assert!(
        m.contains("no sandboxed RuntimeClass: looked for a RuntimeClass whose name or handler contains gvisor, runsc, kata, sandboxed, quark, krun")
            && m.contains("declare workload_sandboxing not applicable"),
        "{m}"
    );
}
