//! Case implementations end to end: fabric cases on nccl-tests fixtures (no cluster), and the
//! read-only deployment / conformance cases on the embedded cluster.

mod suites_support;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use aiconform::cluster::testing::shared_or_skip;
use aiconform::runner::case::{MetricsSink, Outcome};
use suites_support::{connect, deploy_components, letter, message, recipe, run_case, spec};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/nccl/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn offline(case: &str, file: &str, metrics: &MetricsSink) -> Outcome {
    offline_on(case, file, "infiniband-gdr", metrics).await
}

/// Evaluate a fixture with the test recipe, its `validation.nccl.fabric` set to `fabric`.
async fn offline_on(case: &str, file: &str, fabric: &str, metrics: &MetricsSink) -> Outcome {
    let mut r = recipe("gpu-operator");
    r.validation["nccl"]["fabric"] = json!(fabric);
    let recipe = Arc::new(r);
    let s = spec(
        case,
        json!({"logFile": fixture(file)}),
        Duration::from_secs(5),
        true,
    );
    run_case(None, &recipe, s, "offline", metrics).await
}

#[tokio::test]
async fn nccl_bandwidth_from_logs_against_recipe_thresholds() {
    let metrics = MetricsSink::default();
    let ok = offline("nccl-all-reduce-bw", "h100-8gpu-nvlink.txt", &metrics).await;
    assert!(
        matches!(&ok, Outcome::Passed { message } if message.contains("avg busbw 147.19 GB/s (min 100)")
            && message.contains("busbw 477.98 GB/s at 8589934592 B (singleNode run, default algorithm) >= floor 420 GB/s")),
        "{ok:?}"
    );
    let data = metrics.snapshot();
    let values = &data.values["performance/nccl-all-reduce-bw"];
    assert_eq!(values["avgBusBandwidthGBps"], 147.19);
    assert_eq!(values["largeMessageBusBandwidthGBps"], 477.98);
    assert_eq!(values["ranks"], 8.0);
    assert_eq!(values["nodes"], 1.0);
    assert_eq!(values["floorBusBandwidthGBps"], 420.0);
    assert_eq!(values["floorIsEstimate"], 0.0);
    assert_eq!(data.series.len(), 2);
    let s = &data.series[0];
    assert_eq!(s.points.len(), 31);
    assert_eq!(s.points[30], (8_589_934_592.0, 477.98));
    assert_eq!(s.threshold, Some(420.0));

    // The IB run (2 nodes over IB) does not reach the single-node NVLink floor of the recipe.
    let slow = offline(
        "nccl-all-reduce-bw",
        "h100-2node-ib-no-gdr.txt",
        &MetricsSink::default(),
    )
    .await;
    assert!(
        matches!(&slow, Outcome::Failed { message } if message.contains("below the floor 420")),
        "{slow:?}"
    );
    let truncated = offline(
        "nccl-all-reduce-bw",
        "h100-8gpu-truncated.txt",
        &MetricsSink::default(),
    )
    .await;
    assert!(
        matches!(&truncated, Outcome::Failed { message } if message.contains("output truncated")),
        "{truncated:?}"
    );
    let wrong = offline(
        "nccl-all-reduce-bw",
        "h100-8gpu-wrong.txt",
        &MetricsSink::default(),
    )
    .await;
    assert!(
        matches!(&wrong, Outcome::Failed { message } if message.contains("#wrong > 0")
            && message.contains("out of bounds values: 1048578")),
        "{wrong:?}"
    );
    let missing = offline(
        "nccl-all-reduce-bw",
        "does-not-exist.txt",
        &MetricsSink::default(),
    )
    .await;
    assert!(
        matches!(&missing, Outcome::Failed { message } if message.contains("cannot read nccl-tests output")),
        "{missing:?}"
    );
}

#[tokio::test]
async fn transports_from_nccl_debug_logs_against_the_recipe_fabric() {
    let m = MetricsSink::default();
    let mut got = Vec::new();
    for (f, fabric) in [
        ("h100-2node-ib-gdr.txt", "infiniband-gdr"),
        ("h100-2node-efa.txt", "efa"),
        ("gke-a3mega-2node-tcpxo.txt", "tcpxo"),
        ("coreweave-gb200-nvl72.txt", "mnnvl"),
        ("azure-ndh100v5-1node-nvls.txt", "nvlink"),
        ("h100-2node-ib-no-gdr.txt", "infiniband-gdr"),
        ("h100-2node-efa.txt", "infiniband-gdr"),
        ("gke-a3mega-2node-socket.txt", "tcpxo"),
        ("h100-8gpu-shm-fallback-2.11.txt", "nvlink"),
        ("h100-8gpu-nvlink.txt", "nvlink"),
        ("azure-ndh100v5-1node-nvls.txt", "infiniband-gdr"),
    ] {
        got.push(offline_on("gdr-enabled", f, fabric, &m).await);
    }
    let letters: String = got.iter().map(letter).collect();
    assert_eq!(letters, "PPPPPFFFFFS", "{got:#?}");
    assert!(message(&got[1]).contains("AWS Libfabric"));
    assert!(message(&got[2]).contains("Using network FasTrak`"));
    assert!(message(&got[3]).contains("via P2P/MNNVL`"));
    assert!(message(&got[5]).contains("32 of 32 network channels lack GDRDMA"));
    assert!(message(&got[6]).contains("Using network AWS Libfabric`"));
    assert!(message(&got[7]).contains("Using network Socket`"));
    assert!(message(&got[8]).contains("via SHM/direct/direct`"));
    assert!(message(&got[9]).contains("NCCL_DEBUG=INFO"));
    assert!(message(&got[10]).contains("not exercised on one node"));
}

/// Sources in order: no log and no cluster → skip; the env var; the cluster, where a recipe
/// without an nccl-tests image fails naming it. One test, because it sets a process-wide
/// variable.
#[tokio::test]
async fn fabric_sources_env_var_and_cluster() {
    let recipe = Arc::new(recipe("gpu-operator"));
    let m = MetricsSink::default();
    let s = || spec("gdr-enabled", json!({}), Duration::from_secs(30), true);
    let none = run_case(None, &recipe, s(), "src", &m).await;
    assert!(
        matches!(&none, Outcome::Skipped { reason } if reason.contains("no cluster target")),
        "{none:?}"
    );

    // SAFETY: no other test in this binary reads AICONFORM_NCCL_LOG.
    unsafe {
        std::env::set_var(
            aiconform::suites::fabric::LOG_ENV,
            fixture("h100-2node-ib-gdr.txt"),
        )
    };
    let from_env = run_case(None, &recipe, s(), "src", &m).await;
    unsafe { std::env::remove_var(aiconform::suites::fabric::LOG_ENV) };
    assert!(
        matches!(&from_env, Outcome::Passed { message } if message.contains("h100-2node-ib-gdr.txt")),
        "{from_env:?}"
    );

    let Some(cluster) = shared_or_skip("fabric_sources_env_var_and_cluster") else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    for case in ["nccl-all-reduce-bw", "gdr-enabled"] {
        let sp = spec(case, json!({}), Duration::from_secs(30), true);
        let o = run_case(Some(&client), &recipe, sp, "sim", &m).await;
        assert!(
            matches!(&o, Outcome::Failed { message } if message.starts_with("no nccl-tests image configured")),
            "{case}: {o:?}"
        );
    }
}

#[tokio::test]
async fn read_only_cases_on_the_embedded_cluster() {
    let Some(cluster) = shared_or_skip("read_only_cases_on_the_embedded_cluster") else {
        return;
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, "gpu-operator").await;
    let m = MetricsSink::default();
    let recipe = Arc::new(recipe("gpu-operator"));
    let quick = Duration::from_secs(5);

    // A recipe pinning another cert-manager version than the one running.
    let mut newer = (*recipe).clone();
    if let Some(c) = newer
        .components
        .iter_mut()
        .find(|c| c.name == "cert-manager")
    {
        c.version = "v1.18.0".to_string();
    }
    // A component whose objects are not deployed.
    let mut absent = (*recipe).clone();
    absent.components.push(
        serde_json::from_value(json!({"name": "kai-scheduler", "type": "Helm", "version": "v0.13.0",
            "namespace": "kai-scheduler", "healthChecks": [{"kind": "Deployment", "name": "kai-operator"}]}))
        .expect("component"),
    );
    let ch = |c: &str| spec("component-health", json!({"component": c}), quick, false);
    let cases = vec![
        run_case(Some(&client), &recipe, ch("cert-manager"), "ro", &m).await,
        run_case(
            Some(&client),
            &Arc::new(newer),
            ch("cert-manager"),
            "ro",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &Arc::new(absent),
            ch("kai-scheduler"),
            "ro",
            &m,
        )
        .await,
        run_case(Some(&client), &recipe, ch("network-operator"), "ro", &m).await,
        run_case(
            Some(&client),
            &recipe,
            spec(
                "accelerator-metrics",
                json!({"exporter": "absent-exporter"}),
                quick,
                false,
            ),
            "ro",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec(
                "ai-service-metrics",
                json!({"prometheusService": "monitoring/absent-prometheus:9090"}),
                quick,
                false,
            ),
            "ro",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec("cluster-autoscaling", json!({}), quick, false),
            "ro",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec(
                "inference-gateway",
                json!({"gatewayClass": "absent"}),
                quick,
                true,
            ),
            "ro",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec("robust-controller", json!({}), quick, false),
            "ro",
            &m,
        )
        .await,
    ];
    let letters: String = cases.iter().map(letter).collect();
    assert_eq!(letters, "PFFSFFFFF", "{cases:#?}");
    let msg = |i: usize| message(&cases[i]).to_string();
    assert!(
        msg(0).contains("version v1.17.2 confirmed by Deployment cert-manager/cert-manager"),
        "{}",
        msg(0)
    );
    assert!(
        msg(1).contains("version mismatch")
            && msg(1).contains("cert-manager-v1.17.2")
            && msg(1).contains("v1.18.0"),
        "{}",
        msg(1)
    );
    assert!(
        msg(2).contains("Deployment kai-scheduler/kai-operator not found"),
        "{}",
        msg(2)
    );
    assert!(msg(3).contains("not part of recipe"), "{}", msg(3));
    assert!(
        msg(4).contains("no DCGM exporter: no Service gpu-operator/absent-exporter"),
        "{}",
        msg(4)
    );
    assert!(
        msg(5).contains("monitoring/absent-prometheus:9090: the Service has no ready endpoints"),
        "{}",
        msg(5)
    );
    assert!(
        msg(6).contains("no autoscaled GPU node pool found"),
        "{}",
        msg(6)
    );
    assert!(
        msg(7).contains("no accepted GatewayClass named absent: aiconform (Accepted=True"),
        "{}",
        msg(7)
    );
    assert!(msg(8).contains("no operator under test"), "{}", msg(8));

    // An exporter deployed on the GPU nodes whose pods serve nothing: its Service has
    // endpoints, but scraping them gives no per-device numbers.
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "gpu-operator");
    let exporter = serde_json::from_value(json!({
        "metadata": {"name": "silent-exporter"},
        "spec": {"selector": {"matchLabels": {"app": "silent-exporter"}},
            "template": {"metadata": {"labels": {"app": "silent-exporter"}},
                "spec": {"nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "exporter", "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
                        "ports": [{"name": "metrics", "containerPort": 9400}]}]}}}
    }))
    .expect("ds");
    ds.create(&PostParams::default(), &exporter)
        .await
        .expect("create exporter");
    let svc: Api<Service> = Api::namespaced(client.clone(), "gpu-operator");
    let service = serde_json::from_value(json!({
        "metadata": {"name": "silent-exporter"},
        "spec": {"selector": {"app": "silent-exporter"}, "ports": [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400}]}
    }))
    .expect("svc");
    svc.create(&PostParams::default(), &service)
        .await
        .expect("create service");
    // The DaemonSet needs a moment to become ready: the case itself does not wait for it,
    // so wait here (watching) for its pods.
    let ready = aiconform::health::healthy::<DaemonSet>;
    tokio::time::timeout(
        Duration::from_secs(60),
        kube::runtime::wait::await_condition(ds.clone(), "silent-exporter", ready),
    )
    .await
    .expect("exporter ready")
    .expect("watch");
    let o = run_case(
        Some(&client),
        &recipe,
        spec(
            "accelerator-metrics",
            json!({"exporter": "silent-exporter"}),
            Duration::from_secs(15),
            false,
        ),
        "ro",
        &m,
    )
    .await;
    assert!(
        matches!(&o, Outcome::Failed { message } if message.contains("does not give per-device utilization and memory for every GPU node")
            && message.contains("gpu-0: no series with Hostname=gpu-0")),
        "{o:?}"
    );
    let _ = ds.delete("silent-exporter", &DeleteParams::default()).await;
    let _ = svc
        .delete("silent-exporter", &DeleteParams::default())
        .await;
}

/// Objects without the behaviour behind them (CRDs, objects whose status was written by hand,
/// an autoscaler Deployment that does nothing, a webhook without endpoints): no case whose
/// behaviour is missing passes. A fresh cluster: the CRDs and webhooks are cluster-wide.
/// The test cluster's own Gateway API stand-in also runs here; inference-gateway is pointed at
/// the hand-written GatewayClass, whose fake controller only writes Gateway status.
#[tokio::test]
async fn hand_written_status_passes_no_behavioural_case() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    use kube::runtime::wait::{await_condition, conditions};
    use suites_support::{crd, create_or_exists, ensure_namespace, scoped_crd};

    let test = "hand_written_status_passes_no_behavioural_case";
    // Neither the HPA controller nor a custom metrics adapter: only the APIService below.
    let opts = aiconform::cluster::embedded::EmbeddedOptions {
        extra_args: vec![
            "--no-hpa-controller".to_string(),
            "--no-custom-metrics-api".to_string(),
        ],
        ..aiconform::cluster::testing::test_options()
    };
    let cluster = match tokio::task::spawn_blocking(move || {
        aiconform::cluster::testing::fresh(&opts)
    })
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(reason)) => {
            let _: Option<()> = aiconform::cluster::testing::skip(test, &reason);
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let client = connect(&cluster.kubeconfig).await;
    deploy_components(&client, "gpu-operator").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let gw = "gateway.networking.k8s.io";
    for (def, name) in [
        (
            crd("monitoring.coreos.com", "Prometheus", "prometheuses"),
            "prometheuses.monitoring.coreos.com",
        ),
        (
            crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
            "servicemonitors.monitoring.coreos.com",
        ),
        (
            scoped_crd(gw, "GatewayClass", "gatewayclasses", "Cluster"),
            "gatewayclasses.gateway.networking.k8s.io",
        ),
        (
            crd(gw, "Gateway", "gateways"),
            "gateways.gateway.networking.k8s.io",
        ),
        (
            crd(gw, "HTTPRoute", "httproutes"),
            "httproutes.gateway.networking.k8s.io",
        ),
    ] {
        create_or_exists(&crds, def).await;
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established")
        .expect("watch");
    }
    ensure_namespace(&client, "monitoring").await;
    let dyn_api = |group: &str, kind: &str, plural: &str, ns: Option<&str>| {
        let ar = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(group, "v1", kind),
            plural,
        );
        match ns {
            Some(ns) => Api::<kube::core::DynamicObject>::namespaced_with(client.clone(), ns, &ar),
            None => Api::<kube::core::DynamicObject>::all_with(client.clone(), &ar),
        }
    };
    let obj = |v: serde_json::Value| -> kube::core::DynamicObject {
        serde_json::from_value(v).expect("object")
    };
    dyn_api("monitoring.coreos.com", "Prometheus", "prometheuses", Some("monitoring"))
        .create(&PostParams::default(), &obj(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
            "metadata": {"name": "k8s"}, "spec": {"replicas": 1},
            "status": {"availableReplicas": 1, "conditions": [{"type": "Available", "status": "True"}]}})))
        .await
        .expect("prometheus");
    // Its Service, with nothing behind it (the embedded cluster's own stand-in Prometheus, which
    // really scrapes, is left out of this test by naming this Service).
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "monitoring");
    create_or_exists(&services, json!({
        "metadata": {"name": "prometheus-k8s", "labels": {"app.kubernetes.io/name": "prometheus"}},
        "spec": {"selector": {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"},
            "ports": [{"name": "web", "port": 9090}]}
    }))
    .await;
    // The Gateway API CRDs (the test cluster's) have a status subresource: status is written there.
    let accepted = json!({"status": {"conditions": [{"type": "Accepted", "status": "True",
        "reason": "Accepted", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    let classes = dyn_api(gw, "GatewayClass", "gatewayclasses", None);
    classes
        .create(&PostParams::default(), &obj(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "kgateway"}, "spec": {"controllerName": "kgateway.dev/kgateway"}})))
        .await
        .expect("gatewayclass");
    classes
        .patch_status(
            "kgateway",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(accepted.clone()),
        )
        .await
        .expect("gatewayclass status");
    let autoscaler: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    create_or_exists(&autoscaler, json!({
        "metadata": {"name": "cluster-autoscaler"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "cluster-autoscaler"}},
            "template": {"metadata": {"labels": {"app": "cluster-autoscaler"}},
                "spec": {"containers": [{"name": "ca", "image": "registry.k8s.io/autoscaling/cluster-autoscaler:v1.34.0"}]}}}
    }))
    .await;
    tokio::time::timeout(
        Duration::from_secs(60),
        await_condition(
            autoscaler.clone(),
            "cluster-autoscaler",
            conditions::is_deployment_completed(),
        ),
    )
    .await
    .expect("autoscaler ready")
    .expect("watch");
    // An aggregated metrics API whose backing Service has no endpoints.
    let apis: Api<APIService> = Api::all(client.clone());
    create_or_exists(&apis, json!({
        "metadata": {"name": "v1beta1.custom.metrics.k8s.io"},
        "spec": {"group": "custom.metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": "monitoring", "name": "prometheus-adapter", "port": 443}}
    }))
    .await;
    // A webhook of a recipe component (cert-manager) whose Service has no endpoints; it only
    // matches a resource nobody creates, and failures are ignored.
    let hooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    create_or_exists(&hooks, json!({
        "metadata": {"name": "cert-manager-webhook"},
        "webhooks": [{"name": "webhook.cert-manager.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Ignore",
            "clientConfig": {"service": {"namespace": "cert-manager", "name": "cert-manager-webhook", "path": "/validate"}},
            "rules": [{"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["certificates"]}]}]
    }))
    .await;

    // A fake Gateway controller: accepts every Gateway of class kgateway.
    let gateways = dyn_api(gw, "Gateway", "gateways", None);
    let controller = {
        let client = client.clone();
        tokio::spawn(async move {
            use futures::TryStreamExt;
            let stream =
                kube::runtime::watcher(gateways, kube::runtime::watcher::Config::default());
            let mut stream = std::pin::pin!(stream);
            while let Ok(Some(ev)) = stream.try_next().await {
                if let kube::runtime::watcher::Event::Apply(g)
                | kube::runtime::watcher::Event::InitApply(g) = ev
                {
                    let ns = g.metadata.namespace.clone().unwrap_or_default();
                    let name = g.metadata.name.clone().unwrap_or_default();
                    if g.data.pointer("/status/conditions").is_some() {
                        continue;
                    }
                    let ar = kube::core::ApiResource::from_gvk_with_plural(
                        &kube::core::GroupVersionKind::gvk(
                            "gateway.networking.k8s.io",
                            "v1",
                            "Gateway",
                        ),
                        "gateways",
                    );
                    let api =
                        Api::<kube::core::DynamicObject>::namespaced_with(client.clone(), &ns, &ar);
                    let _ = api
                        .patch_status(
                            &name,
                            &kube::api::PatchParams::default(),
                            &kube::api::Patch::Merge(&accepted),
                        )
                        .await;
                }
            }
        })
    };

    let recipe = Arc::new(recipe("gpu-operator"));
    let m = MetricsSink::default();
    let t = Duration::from_secs(20);
    let cases = vec![
        run_case(
            Some(&client),
            &recipe,
            spec(
                "ai-service-metrics",
                json!({"prometheusService": "monitoring/prometheus-k8s:9090"}),
                t,
                true,
            ),
            "stand-in",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec("cluster-autoscaling", json!({}), t, false),
            "stand-in",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec(
                "inference-gateway",
                json!({"gatewayClass": "kgateway"}),
                t,
                true,
            ),
            "stand-in",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec("pod-autoscaling", json!({}), t, true),
            "stand-in",
            &m,
        )
        .await,
        run_case(
            Some(&client),
            &recipe,
            spec(
                "robust-controller",
                json!({"namespace": "cert-manager", "podSelector": "app=cert-manager",
                    "crds": ["certificates.cert-manager.io"], "apiVersion": "cert-manager.io/v1",
                    "kind": "Certificate", "plural": "certificates",
                    "invalid": {"spec": {}}, "valid": {"spec": {"secretName": "s"}}}),
                t,
                true,
            ),
            "stand-in",
            &m,
        )
        .await,
    ];
    controller.abort();
    let letters: String = cases.iter().map(letter).collect();
    assert_eq!(letters, "FFFFF", "{cases:#?}");
    let msg = |i: usize| message(&cases[i]).to_string();
    assert!(
        msg(0).contains("no monitoring system answered a query")
            && msg(0)
                .contains("monitoring/prometheus-k8s:9090: the Service has no ready endpoints"),
        "{}",
        msg(0)
    );
    assert!(
        msg(1).contains("no autoscaled GPU node pool found"),
        "{}",
        msg(1)
    );
    assert!(
        msg(2).contains("Gateway")
            && msg(2).contains("(class kgateway) not Accepted and Programmed with an address"),
        "{}",
        msg(2)
    );
    assert!(
        msg(3).contains("APIService v1beta1.custom.metrics.k8s.io: Available=False"),
        "{}",
        msg(3)
    );
    assert!(
        msg(4).contains("the invalid Certificate") && msg(4).contains("was admitted"),
        "{}",
        msg(4)
    );
}
