//! pod_autoscaling (KAR-0057): the HorizontalPodAutoscaler scales accelerator pods on a
//! custom metric served by the custom metrics API.
//!
//! The case deploys a Deployment of one pod that requests an accelerator and exposes a
//! Prometheus gauge (`aiconform probe gauge`, annotated `prometheus.io/scrape`), whose value
//! follows the ConfigMap `load` in the case namespace, and an autoscaling/v2 HPA (1..2
//! replicas) on that metric as a `Pods` metric with an average-value target. Once the HPA
//! reads the metric, the case raises the value to twice the target: the HPA must scale to 2
//! and the new pod must run on an accelerator node. Then it lowers the value to 0: the HPA
//! must scale back to 1 after the scale-down stabilization window.
//!
//! `params` (a recipe's `validation.podAutoscaling`): `metricName` (the custom metric the
//! adapter serves for the pods' gauge, default `aiconform_probe_load`), `seriesName` (the
//! gauge's Prometheus name when the adapter renames it; default `metricName`), `target`
//! (average value per pod, default 10), `scaleDownStabilizationSeconds` (default 5),
//! `resource` (accelerator resource each pod requests, default `nvidia.com/gpu`), `port`,
//! `tolerations`, `probeImage`, `podMonitorLabels`.
//!
//! With prometheus-adapter the pods must be scraped by Prometheus: they carry the
//! `prometheus.io/scrape|port|path` annotations of the common `kubernetes-pods` job, and where
//! the Prometheus operator's PodMonitor is served the case also creates one (labelled with
//! `params.podMonitorLabels`, for Prometheus' podMonitorSelector).

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::time::Instant;

use super::super::k8s::{
    case_namespace, create, dynamic_api, gpu_tolerations, next_before, served_resources,
};
use super::{deadline, probe_image};
use crate::runner::{CaseContext, Outcome};

const GROUP: &str = "custom.metrics.k8s.io";
/// Versions of the custom metrics API the HPA controller can use, preferred first.
const VERSIONS: [&str; 2] = ["v1beta2", "v1beta1"];
const NAME: &str = "gpu-autoscale";
const APP_LABEL: &str = "aiconform.dev/hpa-probe";
const LOAD_CONFIGMAP: &str = "load";

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

/// The first Available custom metrics APIService, or why none is.
async fn custom_metrics_api(client: &Client) -> anyhow::Result<Result<String, String>> {
    let apis: Api<APIService> = Api::all(client.clone());
    let mut problems = Vec::new();
    for v in VERSIONS {
        let name = format!("{v}.{GROUP}");
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
    fn of(ctx: &CaseContext) -> Self {
        let metric = ctx
            .param::<String>("metricName")
            .unwrap_or_else(|| crate::probe::gauge::DEFAULT_METRIC.to_string());
        Self {
            series: ctx
                .param::<String>("seriesName")
                .unwrap_or_else(|| metric.clone()),
            metric,
            target: ctx.param::<u32>("target").unwrap_or(10).max(1),
            stabilization: ctx
                .param::<u32>("scaleDownStabilizationSeconds")
                .unwrap_or(5),
            resource: ctx
                .param::<String>("resource")
                .unwrap_or_else(|| "nvidia.com/gpu".to_string()),
            port: ctx.param::<u16>("port").unwrap_or(8080),
        }
    }

    /// The value that must make one pod scale to two.
    fn high(&self) -> u32 {
        self.target * 2
    }
}

/// A pod as the watch last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub phase: String,
    pub node: Option<String>,
    pub terminating: bool,
    /// Phase with the scheduling problem, for messages.
    pub state: String,
}

/// The HPA as the watch last saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HpaView {
    pub current: Option<i32>,
    pub desired: Option<i32>,
    /// (type, status, reason, message)
    pub conditions: Vec<(String, String, String, String)>,
    /// The metric's current average value as the HPA reports it.
    pub metric: Option<String>,
}

impl HpaView {
    pub fn observe(h: &HorizontalPodAutoscaler) -> Self {
        let st = h.status.as_ref();
        Self {
            current: st.and_then(|s| s.current_replicas),
            desired: st.map(|s| s.desired_replicas),
            conditions: st
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c.type_.clone(),
                        c.status.clone(),
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            metric: st
                .and_then(|s| s.current_metrics.as_ref())
                .and_then(|ms| ms.iter().find_map(|m| m.pods.as_ref()))
                .and_then(|p| p.current.average_value.as_ref())
                .map(|q| q.0.clone()),
        }
    }

    fn condition(&self, type_: &str) -> Option<&(String, String, String, String)> {
        self.conditions.iter().find(|c| c.0 == type_)
    }

    /// Ok once the controller computed a scale from the metric (ScalingActive=True); else
    /// what it reports instead.
    pub fn metric_active(&self) -> Result<(), String> {
        match self.condition("ScalingActive") {
            Some((_, s, _, _)) if s == "True" => Ok(()),
            Some((_, s, r, m)) => Err(format!("ScalingActive={s} ({r}: {m})")),
            None if self.conditions.is_empty() => Err(
                "the HPA has no status conditions: no HorizontalPodAutoscaler controller processed it"
                    .to_string(),
            ),
            None => Err(format!("no ScalingActive condition ({})", self.summary())),
        }
    }

    /// `desired=2 current=1 metric=20 AbleToScale=True(...)`, for messages.
    pub fn summary(&self) -> String {
        let n = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        let conds: Vec<String> = self
            .conditions
            .iter()
            .map(|(t, s, r, _)| format!("{t}={s}({r})"))
            .collect();
        format!(
            "desiredReplicas={} currentReplicas={} metric={} {}",
            n(self.desired),
            n(self.current),
            self.metric.as_deref().unwrap_or("-"),
            if conds.is_empty() {
                "no conditions".to_string()
            } else {
                conds.join(" ")
            }
        )
    }
}

/// Pods and HPA as observed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub pods: BTreeMap<String, PodView>,
    pub hpa: HpaView,
}

impl Observed {
    /// Running pods that are not being deleted, name → node.
    pub fn running(&self) -> BTreeMap<&str, &str> {
        self.pods
            .iter()
            .filter(|(_, p)| p.phase == "Running" && !p.terminating)
            .filter_map(|(n, p)| Some((n.as_str(), p.node.as_deref()?)))
            .collect()
    }

    /// Pods that are not being deleted.
    pub fn live(&self) -> usize {
        self.pods.values().filter(|p| !p.terminating).count()
    }

    /// Baseline: one pod Running and the HPA reading the metric.
    pub fn baseline(&self) -> bool {
        !self.running().is_empty() && self.hpa.metric_active().is_ok()
    }

    /// Running pods that were not there before, name → node.
    pub fn new_running(&self, before: &BTreeSet<String>) -> BTreeMap<String, String> {
        self.running()
            .into_iter()
            .filter(|(n, _)| !before.contains(*n))
            .map(|(n, node)| (n.to_string(), node.to_string()))
            .collect()
    }

    /// Scaled up: two pods Running, one of them new.
    pub fn scaled_up(&self, before: &BTreeSet<String>) -> bool {
        self.running().len() >= 2 && !self.new_running(before).is_empty()
    }

    /// Scaled down: the HPA wants one replica and one pod is left.
    pub fn scaled_down(&self) -> bool {
        self.hpa.desired == Some(1) && self.live() == 1
    }

    /// Pods not Running, with their state, for messages.
    pub fn not_running(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|(_, p)| p.phase != "Running" && !p.terminating)
            .map(|(n, p)| format!("{n} {}", p.state))
            .collect()
    }
}

/// New pods that run on nodes without the accelerator, as `pod→node`.
pub fn off_accelerator(
    new_pods: &BTreeMap<String, String>,
    accelerator_nodes: &BTreeSet<String>,
) -> Vec<String> {
    new_pods
        .iter()
        .filter(|(_, node)| !accelerator_nodes.contains(*node))
        .map(|(p, n)| format!("{p}→{n}"))
        .collect()
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

/// Watches of the case's pods and HPA, folded into [`Observed`].
struct Watch {
    obs: Observed,
    pods: BoxStream<'static, Result<watcher::Event<Pod>, watcher::Error>>,
    hpa: BoxStream<'static, Result<watcher::Event<HorizontalPodAutoscaler>, watcher::Error>>,
}

impl Watch {
    fn new(client: &Client, ns: &str) -> Self {
        Self {
            obs: Observed::default(),
            pods: watcher(
                Api::<Pod>::namespaced(client.clone(), ns),
                watcher::Config::default().labels(&format!("{APP_LABEL}=true")),
            )
            .boxed(),
            hpa: watcher(
                Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
                watcher::Config::default().fields(&format!("metadata.name={NAME}")),
            )
            .boxed(),
        }
    }

    /// Follow events until `done` holds (true) or the deadline passes (false).
    async fn until(
        &mut self,
        deadline: Instant,
        done: impl Fn(&Observed) -> bool,
    ) -> anyhow::Result<bool> {
        loop {
            if done(&self.obs) {
                return Ok(true);
            }
            tokio::select! {
                ev = next_before(&mut self.pods, deadline) => match ev {
                    Some(ev) => match ev? {
                        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                            let view = PodView {
                                phase: p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default(),
                                node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
                                terminating: p.metadata.deletion_timestamp.is_some(),
                                state: super::super::k8s::pod_state(&p),
                            };
                            self.obs.pods.insert(p.name_any(), view);
                        }
                        watcher::Event::Delete(p) => {
                            self.obs.pods.remove(&p.name_any());
                        }
                        watcher::Event::Init => self.obs.pods.clear(),
                        watcher::Event::InitDone => {}
                    },
                    None => return Ok(false),
                },
                ev = next_before(&mut self.hpa, deadline) => match ev {
                    Some(ev) => if let watcher::Event::Apply(h) | watcher::Event::InitApply(h) = ev? {
                        self.obs.hpa = HpaView::observe(&h);
                    },
                    None => return Ok(false),
                },
            }
        }
    }
}

pub(super) async fn pod_autoscaling_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let api_service = match custom_metrics_api(&client).await? {
        Ok(name) => name,
        Err(why) => {
            return Ok(Outcome::failed(format!(
                "the custom metrics API ({GROUP}) is not served: {why}; install a custom metrics adapter (e.g. prometheus-adapter) or, if the platform offers no HPA, declare pod_autoscaling not applicable"
            )));
        }
    };
    let p = Params::of(&ctx);
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    if accelerator_nodes(&nodes, &p.resource).is_empty() {
        return Ok(Outcome::failed(format!(
            "no node offers {}: there are no accelerator nodes to scale onto",
            p.resource
        )));
    }
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    deploy(&ctx, &client, &ns, &p).await?;
    let what = format!(
        "HPA {ns}/{NAME} on custom metric {} ({api_service}), target {} per pod",
        p.metric, p.target
    );
    let mut watch = Watch::new(&client, &ns);

    // 1. One pod Running; the HPA reads the metric.
    if !watch.until(deadline, Observed::baseline).await? {
        let o = &watch.obs;
        return Ok(Outcome::failed(if o.running().is_empty() {
            format!(
                "{what}: the first pod never ran ({})",
                list_or(&o.not_running(), "no pod created")
            )
        } else {
            format!(
                "{what}: the HPA never read the metric: {}",
                o.hpa.metric_active().err().unwrap_or_default()
            )
        }));
    }
    let before: BTreeSet<String> = watch.obs.running().keys().map(|s| s.to_string()).collect();
    let baseline_metric = watch.obs.hpa.metric.clone().unwrap_or_else(|| "-".into());

    // 2. Raise the metric: scale up onto accelerator nodes.
    set_load(&client, &ns, p.high()).await?;
    if !watch.until(deadline, |o| o.scaled_up(&before)).await? {
        let o = &watch.obs;
        return Ok(Outcome::failed(format!(
            "{what}: raised to {} (was {baseline_metric}), but it did not scale up to a second Running pod: {}; pods not running: {}",
            p.high(),
            o.hpa.summary(),
            list_or(&o.not_running(), "none")
        )));
    }
    let new_pods = watch.obs.new_running(&before);
    // Listed again: a node autoscaler may have added the node the new pod runs on.
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let off = off_accelerator(&new_pods, &accelerator_nodes(&nodes, &p.resource));
    if !off.is_empty() {
        return Ok(Outcome::failed(format!(
            "{what}: scaled up, but new pods run on nodes without {}: {}",
            p.resource,
            off.join(", ")
        )));
    }
    let up_metric = watch.obs.hpa.metric.clone().unwrap_or_else(|| "-".into());

    // 3. Lower the metric: scale back down.
    set_load(&client, &ns, 0).await?;
    let lowered = Instant::now();
    if !watch.until(deadline, Observed::scaled_down).await? {
        return Ok(Outcome::failed(format!(
            "{what}: scaled 1→2 on a raised metric, but after lowering it to 0 it did not scale back to 1 within {}s: {}; {} pod(s) left",
            lowered.elapsed().as_secs(),
            watch.obs.hpa.summary(),
            watch.obs.live()
        )));
    }
    let placed: Vec<String> = new_pods.iter().map(|(p, n)| format!("{p}→{n}")).collect();
    Ok(Outcome::passed(format!(
        "{what}: metric {baseline_metric} at 1 pod; raised to {} (HPA saw {up_metric}), it scaled 1→2 and the new pod ran on an accelerator node ({}, requesting {}); lowered to 0, it scaled back to 1 {:.1}s later (scale-down stabilization window {}s)",
        p.high(),
        placed.join(", "),
        p.resource,
        lowered.elapsed().as_secs_f64(),
        p.stabilization
    )))
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(", ")
    }
}

/// The load ConfigMap, RBAC for the pods to read it, the Deployment and the HPA.
async fn deploy(ctx: &CaseContext, client: &Client, ns: &str, p: &Params) -> anyhow::Result<()> {
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
        .param::<serde_json::Value>("tolerations")
        .unwrap_or_else(gpu_tolerations);
    let port = p.port.to_string();
    if served_resources(client, &["monitoring.coreos.com"])
        .await?
        .contains("podmonitors.monitoring.coreos.com")
    {
        let labels = ctx
            .param::<serde_json::Value>("podMonitorLabels")
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
                        "containers": [{"name": "probe", "image": probe_image(ctx),
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
    create(
        &Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
        json!({
            "metadata": {"name": NAME},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                "minReplicas": 1, "maxReplicas": 2,
                "metrics": [{"type": "Pods", "pods": {"metric": {"name": p.metric},
                    "target": {"type": "AverageValue", "averageValue": p.target.to_string()}}}],
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 0},
                    "scaleDown": {"stabilizationWindowSeconds": p.stabilization}
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

    fn pod(phase: &str, node: Option<&str>, terminating: bool) -> PodView {
        PodView {
            phase: phase.into(),
            node: node.map(str::to_string),
            terminating,
            state: phase.into(),
        }
    }

    fn hpa(v: serde_json::Value) -> HpaView {
        HpaView::observe(&serde_json::from_value(v).expect("hpa"))
    }

    #[test]
    fn hpa_metric_state() {
        let none = hpa(json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 2,
            "scaleTargetRef": {"kind": "Deployment", "name": "d"}}}));
        assert!(
            none.metric_active()
                .expect_err("no controller")
                .contains("no HorizontalPodAutoscaler controller")
        );
        let failing = hpa(json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 2,
            "scaleTargetRef": {"kind": "Deployment", "name": "d"}},
            "status": {"desiredReplicas": 1, "currentReplicas": 1, "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
                {"type": "ScalingActive", "status": "False", "reason": "FailedGetPodsMetric",
                 "message": "unable to get metric m: no metrics returned from custom metrics API"}]}}));
        let e = failing.metric_active().expect_err("failing");
        assert!(
            e.contains("FailedGetPodsMetric") && e.contains("no metrics returned"),
            "{e}"
        );
        let active = hpa(json!({"metadata": {"name": "h"}, "spec": {"maxReplicas": 2,
            "scaleTargetRef": {"kind": "Deployment", "name": "d"}},
            "status": {"desiredReplicas": 2, "currentReplicas": 1,
                "currentMetrics": [{"type": "Pods", "pods": {"metric": {"name": "m"}, "current": {"averageValue": "20"}}}],
                "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]}}));
        assert!(active.metric_active().is_ok());
        assert_eq!(active.metric.as_deref(), Some("20"));
        assert_eq!(
            active.summary(),
            "desiredReplicas=2 currentReplicas=1 metric=20 ScalingActive=True(ValidMetricFound)"
        );
    }

    #[test]
    fn scale_up_then_down() {
        let mut o = Observed::default();
        o.pods
            .insert("a".into(), pod("Running", Some("gpu-0"), false));
        assert!(!o.baseline(), "no metric yet");
        o.hpa = HpaView {
            desired: Some(1),
            conditions: vec![(
                "ScalingActive".into(),
                "True".into(),
                String::new(),
                String::new(),
            )],
            ..HpaView::default()
        };
        assert!(o.baseline());
        let before: BTreeSet<String> = ["a".to_string()].into();
        o.pods.insert("b".into(), pod("Pending", None, false));
        assert!(!o.scaled_up(&before));
        assert_eq!(o.not_running(), vec!["b Pending"]);
        o.pods
            .insert("b".into(), pod("Running", Some("gpu-1"), false));
        assert!(o.scaled_up(&before));
        let new = o.new_running(&before);
        assert_eq!(new, [("b".to_string(), "gpu-1".to_string())].into());
        assert!(
            off_accelerator(
                &new,
                &BTreeSet::from(["gpu-0".to_string(), "gpu-1".to_string()])
            )
            .is_empty()
        );
        assert_eq!(
            off_accelerator(&new, &BTreeSet::from(["gpu-0".to_string()])),
            vec!["b→gpu-1"]
        );
        // Lowered: the HPA wants one, one pod is going away.
        o.hpa.desired = Some(1);
        assert!(!o.scaled_down());
        o.pods
            .insert("b".into(), pod("Running", Some("gpu-1"), true));
        assert!(o.scaled_down());
        // A replaced pod does not count as a scale-up.
        let mut r = Observed::default();
        r.pods
            .insert("c".into(), pod("Running", Some("gpu-0"), false));
        assert!(!r.scaled_up(&["a".to_string()].into()));
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
