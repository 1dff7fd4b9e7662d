//! What the case observes: its pods and the HPA, folded from watches into [`Observed`],
//! and the judgements made on them.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::time::Instant;

use super::super::super::k8s::{next_before, pod_state};
use super::APP_LABEL;

/// A pod as the watch last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub phase: String,
    pub node: Option<String>,
    pub terminating: bool,
    /// Phase with the scheduling problem, for messages.
    pub state: String,
}

#[cfg(test)]
impl PodView {
    /// A pod in `phase` (also its state), bound to `node` when given.
    pub fn sample(phase: &str, node: Option<&str>, terminating: bool) -> Self {
        Self {
            phase: phase.into(),
            node: node.map(str::to_string),
            terminating,
            state: phase.into(),
        }
    }
}

/// The HPA as the watch last saw it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HpaView {
    /// The HPA exists (an autoscaler such as KEDA creates it on its own).
    pub seen: bool,
    pub current: Option<i32>,
    pub desired: Option<i32>,
    /// (type, status, reason, message)
    pub conditions: Vec<(String, String, String, String)>,
    /// The metric's current (average) value as the HPA reports it: a `Pods` metric's
    /// average, or an `External` metric's average (or value).
    pub metric: Option<String>,
}

impl HpaView {
    pub fn observe(h: &HorizontalPodAutoscaler) -> Self {
        let st = h.status.as_ref();
        let metrics = st.and_then(|s| s.current_metrics.as_ref());
        Self {
            seen: true,
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
            metric: metrics
                .into_iter()
                .flatten()
                .find_map(|m| {
                    if let Some(p) = &m.pods {
                        return p.current.average_value.as_ref();
                    }
                    let e = m.external.as_ref()?;
                    e.current
                        .average_value
                        .as_ref()
                        .or(e.current.value.as_ref())
                })
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
            None if !self.seen => Err("the HPA does not exist".to_string()),
            None if self.conditions.is_empty() => Err(
                "the HPA has no status conditions: no HorizontalPodAutoscaler controller processed it"
                    .to_string(),
            ),
            None => Err(format!("no ScalingActive condition ({})", self.summary())),
        }
    }

    /// The metric as a number (`1500m` is 1.5), when the HPA reports one.
    pub fn metric_value(&self) -> Option<f64> {
        quantity_value(self.metric.as_deref()?)
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

/// The value of a Kubernetes quantity as the HPA writes metric values (`20`, `1500m`,
/// `2k`); `None` for anything else.
pub fn quantity_value(q: &str) -> Option<f64> {
    let q = q.trim();
    let (num, scale) = match q.char_indices().last()? {
        (i, 'm') => (&q[..i], 1e-3),
        (i, 'k') => (&q[..i], 1e3),
        (i, 'M') => (&q[..i], 1e6),
        (i, 'G') => (&q[..i], 1e9),
        _ => (q, 1.0),
    };
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// Pods and HPA as observed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub pods: BTreeMap<String, PodView>,
    pub hpa: HpaView,
    /// The highest metric value the HPA reported.
    pub peak_metric: Option<f64>,
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

    pub(super) fn set_hpa(&mut self, hpa: HpaView) {
        if let Some(v) = hpa.metric_value() {
            self.peak_metric = Some(self.peak_metric.map_or(v, |p| p.max(v)));
        }
        self.hpa = hpa;
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

/// Watches of the case's pods and of the HPA named `hpa`, folded into [`Observed`].
pub(super) struct Watch {
    pub(super) obs: Observed,
    pods: BoxStream<'static, Result<watcher::Event<Pod>, watcher::Error>>,
    hpa: BoxStream<'static, Result<watcher::Event<HorizontalPodAutoscaler>, watcher::Error>>,
}

impl Watch {
    pub(super) fn new(client: &Client, ns: &str, hpa: &str) -> Self {
        Self {
            obs: Observed::default(),
            pods: watcher(
                Api::<Pod>::namespaced(client.clone(), ns),
                watcher::Config::default().labels(&format!("{APP_LABEL}=true")),
            )
            .boxed(),
            hpa: watcher(
                Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
                watcher::Config::default().fields(&format!("metadata.name={hpa}")),
            )
            .boxed(),
        }
    }

    /// Follow events until `done` holds (true) or the deadline passes (false).
    pub(super) async fn until(
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
                                state: pod_state(&p),
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
                    Some(ev) => match ev? {
                        watcher::Event::Apply(h) | watcher::Event::InitApply(h) => {
                            self.obs.set_hpa(HpaView::observe(&h));
                        }
                        watcher::Event::Delete(_) => self.obs.hpa = HpaView::default(),
                        watcher::Event::Init | watcher::Event::InitDone => {}
                    },
                    None => return Ok(false),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(v: serde_json::Value) -> HpaView {
        HpaView::observe(&serde_json::from_value(v).expect("hpa"))
    }

    #[test]
    fn hpa_metric_state() {
        assert_eq!(
            HpaView::default().metric_active(),
            Err("the HPA does not exist".to_string())
        );
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
    fn external_metric_of_a_keda_hpa() {
        let h = hpa(
            json!({"metadata": {"name": "keda-hpa-x"}, "spec": {"maxReplicas": 2,
            "scaleTargetRef": {"kind": "Deployment", "name": "d"}},
            "status": {"desiredReplicas": 2, "currentReplicas": 1,
                "currentMetrics": [{"type": "External", "external": {
                    "metric": {"name": "s0-prometheus", "selector": {"matchLabels": {"scaledobject.keda.sh/name": "x"}}},
                    "current": {"averageValue": "20500m"}}}],
                "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]}}),
        );
        assert_eq!(h.metric.as_deref(), Some("20500m"));
        assert_eq!(h.metric_value(), Some(20.5));
        let mut o = Observed::default();
        o.set_hpa(h.clone());
        o.set_hpa(HpaView {
            metric: Some("0".into()),
            ..h
        });
        assert_eq!(o.peak_metric, Some(20.5));
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_value("20"), Some(20.0));
        assert_eq!(quantity_value("1500m"), Some(1.5));
        assert_eq!(quantity_value("2k"), Some(2000.0));
        assert_eq!(quantity_value("0"), Some(0.0));
        assert_eq!(quantity_value(""), None);
        assert_eq!(quantity_value("x"), None);
    }

    #[test]
    fn scale_up_then_down() {
        let mut o = Observed::default();
        o.pods
            .insert("a".into(), PodView::sample("Running", Some("gpu-0"), false));
        assert!(!o.baseline(), "no metric yet");
        o.hpa = HpaView {
            seen: true,
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
        o.pods
            .insert("b".into(), PodView::sample("Pending", None, false));
        assert!(!o.scaled_up(&before));
        assert_eq!(o.not_running(), vec!["b Pending"]);
        o.pods
            .insert("b".into(), PodView::sample("Running", Some("gpu-1"), false));
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
            .insert("b".into(), PodView::sample("Running", Some("gpu-1"), true));
        assert!(o.scaled_down());
        // A replaced pod does not count as a scale-up.
        let mut r = Observed::default();
        r.pods
            .insert("c".into(), PodView::sample("Running", Some("gpu-0"), false));
        assert!(!r.scaled_up(&["a".to_string()].into()));
    }
}
