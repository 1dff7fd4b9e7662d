//! The KEDA path: a ScaledObject with a `prometheus` trigger on the probe's gauge. KEDA's
//! operator creates the HPA `keda-hpa-<name>` on an `External` metric that KEDA's metrics
//! server serves (`external.metrics.k8s.io`, answered by the operator querying Prometheus);
//! the case observes that HPA and the pods. KEDA's status conditions and events only explain
//! a failure.

use k8s_openapi::api::core::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use kube::core::DynamicObject;
use serde::Deserialize;
use serde_json::json;

use super::super::super::k8s::{conditions, controllers_running, dynamic_api, served_resources};
use super::super::deadline;
use super::{
    NAME, Observed, Params, Stalled, available_api, deploy_probe, scale_cycle, scaled_message,
    stalled_message,
};
use crate::runner::{CaseContext, Outcome};

const GROUP: &str = "keda.sh";
const VERSION: &str = "v1alpha1";
const EXTERNAL_METRICS: &str = "external.metrics.k8s.io";
/// The image KEDA's operator runs (`ghcr.io/kedacore/keda`).
const OPERATOR_IMAGE: &str = "keda";

/// `params.keda`, as a recipe writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KedaParams {
    prometheus_address: Option<String>,
    query: Option<String>,
    polling_interval: Option<u32>,
}

/// The ScaledObject's trigger, resolved for the case namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub server_address: String,
    pub query: String,
    pub polling_interval: u32,
}

impl Trigger {
    /// Resolve `params.keda` for namespace `ns`: the default query sums the gauge `series`
    /// over the namespace's pods; `{namespace}` in a given query stands for `ns`.
    pub fn of(cfg: &serde_json::Value, series: &str, ns: &str) -> Result<Self, String> {
        let k: KedaParams = serde_json::from_value(cfg.clone()).map_err(|e| {
            format!("params.keda is not {{prometheusAddress, query, pollingInterval}}: {e}")
        })?;
        let server_address = k.prometheus_address.filter(|a| !a.is_empty()).ok_or(
            "params.keda.prometheusAddress is required: the URL of the Prometheus server that scrapes the probe pods, as KEDA's operator reaches it (e.g. http://prometheus-operated.monitoring.svc:9090)",
        )?;
        let query = k
            .query
            .unwrap_or_else(|| format!("sum({series}{{namespace=\"{{namespace}}\"}})"))
            .replace("{namespace}", ns);
        Ok(Self {
            server_address,
            query,
            polling_interval: k.polling_interval.unwrap_or(5).max(1),
        })
    }
}

/// The HPA KEDA creates for the ScaledObject `name` (KEDA's default naming).
pub fn hpa_name(name: &str) -> String {
    format!("keda-hpa-{name}")
}

/// The ScaledObject of the case: 1..2 replicas of the probe Deployment on the Prometheus
/// query, `threshold` being the target per pod (AverageValue: KEDA's HPA divides the
/// query's value by the replicas), with the case's HPA behavior.
pub fn scaled_object(t: &Trigger, p: &Params) -> serde_json::Value {
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"), "kind": "ScaledObject",
        "metadata": {"name": NAME},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicaCount": 1,
            "maxReplicaCount": 2,
            "pollingInterval": t.polling_interval,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": p.behavior()}},
            "triggers": [{
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": t.server_address,
                    "query": t.query,
                    "threshold": p.target.to_string()
                }
            }]
        }
    })
}

/// What KEDA reports about the ScaledObject: its conditions and recent warning events.
pub fn keda_report(so: Option<&DynamicObject>, warnings: &[String]) -> String {
    let state = match so {
        None => "the ScaledObject is gone".to_string(),
        Some(so) => {
            let conds = conditions(so);
            if conds.is_empty() {
                "the ScaledObject has no status conditions: no KEDA operator reconciled it"
                    .to_string()
            } else {
                let c: Vec<String> = conds
                    .iter()
                    .map(|(t, s, r, m)| match (r.is_empty(), m.is_empty()) {
                        (true, true) => format!("{t}={s}"),
                        (_, true) => format!("{t}={s}({r})"),
                        _ => format!("{t}={s}({r}: {m})"),
                    })
                    .collect();
                format!("ScaledObject {}", c.join(" "))
            }
        }
    };
    if warnings.is_empty() {
        format!("KEDA reports: {state}")
    } else {
        format!("KEDA reports: {state}; warnings: {}", warnings.join("; "))
    }
}

/// Why the HPA did not scale up when the metric KEDA served stayed at or below the value
/// it had before the raise (`None` when it did rise).
pub fn metric_never_rose(obs: &Observed, t: &Trigger) -> Option<String> {
    let peak = obs.peak_metric.unwrap_or(0.0);
    (peak <= 0.0).then(|| {
        format!(
            "the metric KEDA served never rose above {peak} after the raise: Prometheus at {} returns no load for `{}` (the query matches no series, or Prometheus never scraped the probe pods)",
            t.server_address, t.query
        )
    })
}

/// The failure message of a stalled cycle, with what KEDA reports.
fn stalled(what: &str, p: &Params, t: &Trigger, s: &Stalled, report: &str) -> String {
    match s {
        Stalled::Baseline(o) if !o.running().is_empty() && !o.hpa.seen => format!(
            "{what}: KEDA never created the HPA {} for the ScaledObject; {report}",
            hpa_name(NAME)
        ),
        Stalled::ScaleUp { obs, .. } => match metric_never_rose(obs, t) {
            Some(why) => format!("{}; {why}; {report}", stalled_message(what, p, s)),
            None => format!("{}; {report}", stalled_message(what, p, s)),
        },
        _ => format!("{}; {report}", stalled_message(what, p, s)),
    }
}

/// Warning events about the ScaledObject, newest last (at most three), as `reason: message`.
async fn warnings(client: &Client, ns: &str) -> anyhow::Result<Vec<String>> {
    let mut events = Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=ScaledObject,involvedObject.name={NAME},type=Warning"
        )))
        .await?
        .items;
    events.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    let mut out: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or("-"),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect();
    out.dedup();
    Ok(out.split_off(out.len().saturating_sub(3)))
}

pub(super) async fn run(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    p: &Params,
    cfg: &serde_json::Value,
) -> anyhow::Result<Outcome> {
    let trigger = match Trigger::of(cfg, &p.series, ns) {
        Ok(t) => t,
        Err(e) => return Ok(Outcome::failed(e)),
    };
    if !served_resources(client, &[GROUP])
        .await?
        .contains("scaledobjects.keda.sh")
    {
        return Ok(Outcome::failed(
            "KEDA is not installed: scaledobjects.keda.sh is not served (params.keda selects KEDA as the pod autoscaler)",
        ));
    }
    if let Err(why) = available_api(client, EXTERNAL_METRICS, &["v1beta1"]).await? {
        return Ok(Outcome::failed(format!(
            "the external metrics API ({EXTERNAL_METRICS}) that KEDA's metrics server registers is not served: {why}"
        )));
    }
    let deadline = deadline(ctx);
    deploy_probe(ctx, client, ns, p).await?;
    let scaled_objects = dynamic_api(
        client,
        GROUP,
        VERSION,
        "ScaledObject",
        "scaledobjects",
        Some(ns),
    );
    let so: DynamicObject = serde_json::from_value(scaled_object(&trigger, p))?;
    scaled_objects.create(&PostParams::default(), &so).await?;

    let running = controllers_running(client, OPERATOR_IMAGE).await;
    let keda = if running.is_empty() {
        format!("no Deployment runs a {OPERATOR_IMAGE} image")
    } else {
        running.join(", ")
    };
    let hpa = hpa_name(NAME);
    let what = format!(
        "KEDA ({keda}): ScaledObject {ns}/{NAME} (prometheus trigger `{}` at {}, threshold {} per pod) → HPA {ns}/{hpa}",
        trigger.query, trigger.server_address, p.target
    );
    Ok(match scale_cycle(client, ns, p, &hpa, deadline).await? {
        Ok(s) => Outcome::passed(scaled_message(&what, p, &s)),
        Err(s) => {
            let so = scaled_objects.get_opt(NAME).await?;
            let report = keda_report(so.as_ref(), &warnings(client, ns).await?);
            Outcome::failed(stalled(&what, p, &trigger, &s, &report))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::observe::{HpaView, PodView};
    use super::*;

    fn params() -> Params {
        Params::sample("aiconform_probe_load")
    }

    #[test]
    fn trigger_defaults_and_overrides() {
        let t = Trigger::of(
            &json!({"prometheusAddress": "http://prometheus-operated.default.svc:9090"}),
            "aiconform_probe_load",
            "ns1",
        )
        .expect("trigger");
        assert_eq!(t.query, "sum(aiconform_probe_load{namespace=\"ns1\"})");
        assert_eq!(t.polling_interval, 5);
        let t = Trigger::of(
            &json!({"prometheusAddress": "http://p:9090", "query": "max(x{namespace=\"{namespace}\", a=\"b\"})",
                "pollingInterval": 2}),
            "s",
            "ns1",
        )
        .expect("trigger");
        assert_eq!(t.query, "max(x{namespace=\"ns1\", a=\"b\"})");
        assert_eq!(t.polling_interval, 2);
        assert!(
            Trigger::of(&json!({}), "s", "n")
                .expect_err("no address")
                .contains("prometheusAddress is required")
        );
        assert!(
            Trigger::of(&json!({"prometheusAddres": "x"}), "s", "n")
                .expect_err("typo")
                .contains("params.keda")
        );
    }

    #[test]
    fn scaled_object_on_the_prometheus_query() {
        let t = Trigger {
            server_address: "http://p:9090".into(),
            query: "sum(g{namespace=\"n\"})".into(),
            polling_interval: 5,
        };
        let so = scaled_object(&t, &params());
        assert_eq!(so["apiVersion"], "keda.sh/v1alpha1");
        assert_eq!(so["spec"]["scaleTargetRef"]["name"], NAME);
        assert_eq!(
            (
                &so["spec"]["minReplicaCount"],
                &so["spec"]["maxReplicaCount"]
            ),
            (&json!(1), &json!(2))
        );
        let trig = &so["spec"]["triggers"][0];
        assert_eq!(trig["type"], "prometheus");
        assert_eq!(trig["metricType"], "AverageValue");
        assert_eq!(
            trig["metadata"],
            json!({"serverAddress": "http://p:9090", "query": "sum(g{namespace=\"n\"})", "threshold": "10"})
        );
        assert_eq!(
            so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            5
        );
        assert_eq!(hpa_name(NAME), "keda-hpa-gpu-autoscale");
    }

    #[test]
    fn what_keda_reports() {
        let so: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "ScaledObjectReady", "message": "ScaledObject is defined correctly and is ready for scaling"},
                {"type": "Active", "status": "False", "reason": "ScalerNotActive", "message": ""},
                {"type": "Paused", "status": "False"}]}}))
        .expect("so");
        assert_eq!(
            keda_report(Some(&so), &[]),
            "KEDA reports: ScaledObject Ready=True(ScaledObjectReady: ScaledObject is defined correctly and is ready for scaling) Active=False(ScalerNotActive) Paused=False"
        );
        let bare: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}}))
        .expect("so");
        assert_eq!(
            keda_report(Some(&bare), &["KEDAScalerFailed: boom".into()]),
            "KEDA reports: the ScaledObject has no status conditions: no KEDA operator reconciled it; warnings: KEDAScalerFailed: boom"
        );
    }

    #[test]
    fn stalls_explained_with_keda() {
        let t = Trigger {
            server_address: "http://p:9090".into(),
            query: "sum(g{namespace=\"nowhere\"})".into(),
            polling_interval: 5,
        };
        let mut o = Observed::default();
        o.pods
            .insert("a".into(), PodView::sample("Running", Some("gpu-0"), false));
        let no_hpa = stalled("K", &params(), &t, &Stalled::Baseline(o.clone()), "R");
        assert_eq!(
            no_hpa,
            "K: KEDA never created the HPA keda-hpa-gpu-autoscale for the ScaledObject; R"
        );
        o.set_hpa(HpaView {
            seen: true,
            metric: Some("0".into()),
            ..HpaView::default()
        });
        let flat = stalled(
            "K",
            &params(),
            &t,
            &Stalled::ScaleUp {
                obs: o.clone(),
                baseline_metric: "0".into(),
            },
            "R",
        );
        assert!(
            flat.contains("did not scale up")
                && flat.contains("the metric KEDA served never rose above 0")
                && flat.contains("sum(g{namespace=\"nowhere\"})")
                && flat.ends_with("; R"),
            "{flat}"
        );
        o.set_hpa(HpaView {
            seen: true,
            metric: Some("20".into()),
            ..HpaView::default()
        });
        assert_eq!(metric_never_rose(&o, &t), None);
    }
}
