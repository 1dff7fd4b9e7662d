//! pod_autoscaling (KAR-0057): the HorizontalPodAutoscaler scales accelerator pods on a
//! metric of the workload.
//!
//! The case deploys a Deployment of one pod that requests an accelerator and exposes a
//! Prometheus gauge (`aiconform probe gauge`, annotated `prometheus.io/scrape`), whose value
//! follows the ConfigMap `load` in the case namespace, and an autoscaler (1..2 replicas) on
//! that gauge with an average-value target per pod. Once the HPA reads the metric, the case
//! raises the value to twice the target: the HPA must scale to 2 and the new pod must run on
//! an accelerator node. Then it lowers the value to 0: the HPA must scale back to 1 after the
//! scale-down stabilization window. The verdict rests on the replicas and pods observed, never
//! on an autoscaler's status conditions (those only explain a failure).
//!
//! Two metric sources, chosen by `params` (a recipe's `validation.podAutoscaling`):
//! * the custom metrics API (default, [`custom_metrics`]): the case creates an autoscaling/v2
//!   HPA on the gauge as a `Pods` metric served by a custom metrics adapter
//!   (prometheus-adapter, or any adapter serving `custom.metrics.k8s.io`);
//! * KEDA (`keda` given, [`keda`]): the case creates a KEDA ScaledObject with a `prometheus`
//!   trigger querying the pods' gauge in the case namespace from Prometheus; KEDA's operator
//!   creates the HPA `keda-hpa-<name>`, fed by KEDA's metrics server through the external
//!   metrics API, and the case observes that HPA.
//!
//! Common `params`: `metricName` (the custom metric the adapter serves for the pods' gauge,
//! default `aiconform_probe_load`), `seriesName` (the gauge's Prometheus name when the
//! adapter renames it; default `metricName`), `target` (average value per pod, default 10),
//! `scaleDownStabilizationSeconds` (default 5), `resource` (accelerator resource each pod
//! requests, default `nvidia.com/gpu`), `port`, `tolerations`, `probeImage`,
//! `podMonitorLabels`.
//!
//! `keda` (an object): `prometheusAddress` (required: the URL KEDA's operator queries, e.g.
//! `http://prometheus-operated.monitoring.svc:9090`), `query` (PromQL whose value is the
//! pods' total load; `{namespace}` stands for the case namespace; default
//! `sum(<seriesName>{namespace="{namespace}"})`), `pollingInterval` (seconds, default 5).
//!
//! The pods must be scraped by Prometheus (for prometheus-adapter and KEDA alike): they carry
//! the `prometheus.io/scrape|port|path` annotations of the common `kubernetes-pods` job, and
//! where the Prometheus operator's PodMonitor is served the case also creates one (labelled
//! with `params.podMonitorLabels`, for Prometheus' podMonitorSelector).

mod custom_metrics;
mod keda;
mod observe;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use super::super::k8s::{case_namespace, create, dynamic_api, gpu_tolerations, served_resources};
use super::probe_image;
use crate::runner::{CaseContext, Outcome, ParamError};
use observe::{Observed, Watch, off_accelerator};

/// Name of the probe Deployment and of the autoscaler object the case creates.
const NAME: &str = "gpu-autoscale";
const APP_LABEL: &str = "aiconform.dev/hpa-probe";
const LOAD_CONFIGMAP: &str = "load";

/// `Ok` when an APIService reports Available=True, else its condition.
fn api_service_state(a: &APIService) -> Result<(), String> {
    let cond = a
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Available"));
    match cond {
        Some(c) if c.status == "True" => Ok(()),
        Some(c) => Err(format!(
            "Available={} ({}: {})",
            c.status,
            c.reason.as_deref().unwrap_or("-"),
            c.message.as_deref().unwrap_or("")
        )),
        None => Err("no Available condition".to_string()),
    }
}

/// The first Available APIService of `group` among `versions` (preferred first), or why
/// none is.
async fn available_api(
    client: &Client,
    group: &str,
    versions: &[&str],
) -> anyhow::Result<Result<String, String>> {
    let apis: Api<APIService> = Api::all(client.clone());
    let mut problems = Vec::new();
    for v in versions {
        let name = format!("{v}.{group}");
        match apis.get_opt(&name).await? {
            None => problems.push(format!("APIService {name} is not registered")),
            Some(a) => match api_service_state(&a) {
                Ok(()) => return Ok(Ok(name)),
                Err(e) => problems.push(format!("APIService {name}: {e}")),
            },
        }
    }
    Ok(Err(problems.join("; ")))
}

/// What the case tunes; see the module docs.
#[derive(Debug, Clone)]
struct Params {
    metric: String,
    series: String,
    target: u32,
    stabilization: u32,
    resource: String,
    port: u16,
}

impl Params {
    /// The defaults `of` gives a case without params, for `metric`.
    #[cfg(test)]
    fn sample(metric: &str) -> Self {
        Self {
            metric: metric.into(),
            series: metric.into(),
            target: 10,
            stabilization: 5,
            resource: "nvidia.com/gpu".into(),
            port: 8080,
        }
    }

    fn of(ctx: &CaseContext) -> Result<Self, ParamError> {
        let metric = ctx
            .param::<String>("metricName")?
            .unwrap_or_else(|| crate::probe::gauge::DEFAULT_METRIC.to_string());
        Ok(Self {
            series: ctx
                .param::<String>("seriesName")?
                .unwrap_or_else(|| metric.clone()),
            metric,
            target: ctx.param::<u32>("target")?.unwrap_or(10).max(1),
            stabilization: ctx
                .param::<u32>("scaleDownStabilizationSeconds")?
                .unwrap_or(5),
            resource: ctx
                .param::<String>("resource")?
                .unwrap_or_else(|| "nvidia.com/gpu".to_string()),
            port: ctx.param::<u16>("port")?.unwrap_or(8080),
        })
    }

    /// The value that must make one pod scale to two.
    fn high(&self) -> u32 {
        self.target * 2
    }

    /// The HPA behavior of the case: scale up at once, scale down after the window.
    fn behavior(&self) -> serde_json::Value {
        json!({
            "scaleUp": {"stabilizationWindowSeconds": 0},
            "scaleDown": {"stabilizationWindowSeconds": self.stabilization}
        })
    }
}

/// Nodes that offer `resource` (allocatable > 0).
fn accelerator_nodes(nodes: &[Node], resource: &str) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref())
                .and_then(|a| a.get(resource))
                .is_some_and(|q| q.0.trim().parse::<f64>().is_ok_and(|v| v > 0.0))
        })
        .map(|n| n.name_any())
        .collect()
}

async fn list_accelerator_nodes(
    client: &Client,
    resource: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    Ok(accelerator_nodes(&nodes, resource))
}

/// Where the scale cycle stopped short, with what was observed then.
#[derive(Debug, Clone)]
pub enum Stalled {
    /// No pod ran, or the HPA never read the metric.
    Baseline(Observed),
    /// The metric was raised but no second pod ran; `baseline_metric` is what the HPA read
    /// before.
    ScaleUp {
        obs: Observed,
        baseline_metric: String,
    },
    /// New pods ran on nodes without the accelerator (`pod→node`).
    OffAccelerator(Vec<String>),
    /// The metric was lowered but it did not scale back to one pod within `secs`.
    ScaleDown { obs: Observed, secs: u64 },
}

/// A completed scale cycle: 1 → 2 on the raised metric, back to 1 on the lowered one.
#[derive(Debug, Clone)]
pub struct Scaled {
    pub baseline_metric: String,
    pub up_metric: String,
    /// New pods, `pod→node`.
    pub placed: Vec<String>,
    pub down_after: f64,
}

/// Run the cycle against the deployed probe and the HPA named `hpa`.
async fn scale_cycle(
    client: &Client,
    ns: &str,
    p: &Params,
    hpa: &str,
    deadline: Instant,
) -> anyhow::Result<Result<Scaled, Stalled>> {
    let mut watch = Watch::new(client, ns, hpa);

    // 1. One pod Running; the HPA reads the metric.
    if !watch.until(deadline, Observed::baseline).await? {
        return Ok(Err(Stalled::Baseline(watch.obs)));
    }
    let before: BTreeSet<String> = watch.obs.running().keys().map(|s| s.to_string()).collect();
    let baseline_metric = watch.obs.hpa.metric.clone().unwrap_or_else(|| "-".into());

    // 2. Raise the metric: scale up onto accelerator nodes.
    set_load(client, ns, p.high()).await?;
    watch.obs.peak_metric = None;
    if !watch.until(deadline, |o| o.scaled_up(&before)).await? {
        return Ok(Err(Stalled::ScaleUp {
            obs: watch.obs,
            baseline_metric,
        }));
    }
    let new_pods = watch.obs.new_running(&before);
    // Listed again: a node autoscaler may have added the node the new pod runs on.
    let off = off_accelerator(
        &new_pods,
        &list_accelerator_nodes(client, &p.resource).await?,
    );
    if !off.is_empty() {
        return Ok(Err(Stalled::OffAccelerator(off)));
    }
    // The highest the HPA read: the new pod's first scrape may lag its start.
    let up_metric = watch
        .obs
        .peak_metric
        .map(|v| v.to_string())
        .or_else(|| watch.obs.hpa.metric.clone())
        .unwrap_or_else(|| "-".into());

    // 3. Lower the metric: scale back down.
    set_load(client, ns, 0).await?;
    let lowered = Instant::now();
    if !watch.until(deadline, Observed::scaled_down).await? {
        return Ok(Err(Stalled::ScaleDown {
            obs: watch.obs,
            secs: lowered.elapsed().as_secs(),
        }));
    }
    Ok(Ok(Scaled {
        baseline_metric,
        up_metric,
        placed: new_pods.iter().map(|(p, n)| format!("{p}→{n}")).collect(),
        down_after: lowered.elapsed().as_secs_f64(),
    }))
}

/// The verdict's message for a completed cycle of `what` (the autoscaler under test).
fn scaled_message(what: &str, p: &Params, s: &Scaled) -> String {
    format!(
        "{what}: metric {} at 1 pod; raised to {} (HPA read up to {}), it scaled 1→2 and the new pod ran on an accelerator node ({}, requesting {}); lowered to 0, it scaled back to 1 {:.1}s later (scale-down stabilization window {}s)",
        s.baseline_metric,
        p.high(),
        s.up_metric,
        s.placed.join(", "),
        p.resource,
        s.down_after,
        p.stabilization
    )
}

/// The failure message for a cycle of `what` that stalled.
fn stalled_message(what: &str, p: &Params, s: &Stalled) -> String {
    match s {
        Stalled::Baseline(o) if o.running().is_empty() => format!(
            "{what}: the first pod never ran ({})",
            list_or(&o.not_running(), "no pod created")
        ),
        Stalled::Baseline(o) => format!(
            "{what}: the HPA never read the metric: {}",
            o.hpa.metric_active().err().unwrap_or_default()
        ),
        Stalled::ScaleUp {
            obs,
            baseline_metric,
        } => format!(
            "{what}: raised to {} (was {baseline_metric}), but it did not scale up to a second Running pod: {}; pods not running: {}",
            p.high(),
            obs.hpa.summary(),
            list_or(&obs.not_running(), "none")
        ),
        Stalled::OffAccelerator(off) => format!(
            "{what}: scaled up, but new pods run on nodes without {}: {}",
            p.resource,
            off.join(", ")
        ),
        Stalled::ScaleDown { obs, secs } => format!(
            "{what}: scaled 1→2 on a raised metric, but after lowering it to 0 it did not scale back to 1 within {secs}s: {}; {} pod(s) left",
            obs.hpa.summary(),
            obs.live()
        ),
    }
}

pub(super) async fn pod_autoscaling_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let p = Params::of(&ctx)?;
    if list_accelerator_nodes(&client, &p.resource)
        .await?
        .is_empty()
    {
        return Ok(Outcome::failed(format!(
            "no node offers {}: there are no accelerator nodes to scale onto",
            p.resource
        )));
    }
    let ns = case_namespace(&ctx)?;
    match ctx.param::<serde_json::Value>("keda")? {
        Some(cfg) => keda::run(&ctx, &client, &ns, &p, &cfg).await,
        None => custom_metrics::run(&ctx, &client, &ns, &p).await,
    }
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(", ")
    }
}

/// The load ConfigMap, RBAC for the pods to read it, the PodMonitor (where served) and the
/// probe Deployment.
async fn deploy_probe(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    p: &Params,
) -> anyhow::Result<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    create(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": LOAD_CONFIGMAP}, "data": {"value": "0"}}),
    )
    .await?;
    create(
        &Api::<Role>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": "load-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]}),
    )
    .await?;
    create(
        &Api::<RoleBinding>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": "load-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "load-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]}),
    )
    .await?;
    let tolerations = ctx
        .param::<serde_json::Value>("tolerations")?
        .unwrap_or_else(gpu_tolerations);
    let port = p.port.to_string();
    if served_resources(client, &["monitoring.coreos.com"])
        .await?
        .contains("podmonitors.monitoring.coreos.com")
    {
        let labels = ctx
            .param::<serde_json::Value>("podMonitorLabels")?
            .unwrap_or_else(|| json!({}));
        let monitor: kube::core::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": NAME, "labels": labels},
            "spec": {"selector": {"matchLabels": {APP_LABEL: "true"}},
                "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "5s"}]}
        }))?;
        dynamic_api(
            client,
            "monitoring.coreos.com",
            "v1",
            "PodMonitor",
            "podmonitors",
            Some(ns),
        )
        .create(&kube::api::PostParams::default(), &monitor)
        .await?;
    }
    create(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        json!({
            "metadata": {"name": NAME},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {APP_LABEL: "true"}},
                "template": {
                    "metadata": {"labels": {APP_LABEL: "true"}, "annotations": {
                        "prometheus.io/scrape": "true", "prometheus.io/port": port,
                        "prometheus.io/path": "/metrics"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "tolerations": tolerations,
                        "containers": [{"name": "probe", "image": probe_image(ctx)?,
                            "args": ["probe", "gauge", "--name", p.series, "--configmap", LOAD_CONFIGMAP,
                                "--address", "$(POD_IP)", "--port", port],
                            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                            "ports": [{"name": "metrics", "containerPort": p.port}],
                            "resources": {"limits": {(p.resource.as_str()): "1"}}}]
                    }
                }
            }
        }),
    )
    .await?;
    Ok(())
}

/// Set the value every pod's gauge follows.
async fn set_load(client: &Client, ns: &str, value: u32) -> anyhow::Result<()> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .patch(
            LOAD_CONFIGMAP,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"value": value.to_string()}})),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::observe::PodView;
    use super::*;

    #[test]
    fn api_service_availability() {
        let a: APIService = serde_json::from_value(json!({"metadata": {"name": "v1beta1.custom.metrics.k8s.io"},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints",
                "message": "endpoints for service/prometheus-adapter have no addresses"}]}}))
        .expect("apiservice");
        assert!(
            api_service_state(&a)
                .expect_err("down")
                .contains("MissingEndpoints")
        );
    }

    #[test]
    fn stall_messages_name_the_stage() {
        let p = Params::sample("m");
        let mut o = Observed::default();
        o.pods
            .insert("a".into(), PodView::sample("Pending", None, false));
        assert_eq!(
            stalled_message("X", &p, &Stalled::Baseline(o.clone())),
            "X: the first pod never ran (a Pending)"
        );
        o.pods
            .insert("a".into(), PodView::sample("Running", Some("gpu-0"), false));
        assert_eq!(
            stalled_message("X", &p, &Stalled::Baseline(o.clone())),
            "X: the HPA never read the metric: the HPA does not exist"
        );
        let up = stalled_message(
            "X",
            &p,
            &Stalled::ScaleUp {
                obs: o,
                baseline_metric: "0".into(),
            },
        );
        assert!(
            up.starts_with("X: raised to 20 (was 0), but it did not scale up"),
            "{up}"
        );
        let done = scaled_message(
            "X",
            &p,
            &Scaled {
                baseline_metric: "0".into(),
                up_metric: "20".into(),
                placed: vec!["b→gpu-1".into()],
                down_after: 6.04,
            },
        );
        assert!(
            done.contains("scaled 1→2") && done.contains("(b→gpu-1, requesting nvidia.com/gpu)"),
            "{done}"
        );
        assert!(done.contains("back to 1 6.0s later"), "{done}");
    }

    #[test]
    fn accelerator_nodes_offer_the_resource() {
        let nodes: Vec<Node> = serde_json::from_value(json!([
            {"metadata": {"name": "gpu-0"}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}},
            {"metadata": {"name": "cpu-0"}, "status": {"allocatable": {"cpu": "8"}}},
            {"metadata": {"name": "gpu-zero"}, "status": {"allocatable": {"nvidia.com/gpu": "0"}}}
        ]))
        .expect("nodes");
        assert_eq!(
            accelerator_nodes(&nodes, "nvidia.com/gpu"),
            ["gpu-0".to_string()].into()
        );
    }
}
