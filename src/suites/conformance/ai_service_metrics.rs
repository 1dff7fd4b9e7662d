//! ai_service_metrics (KAR-0061): a monitoring system discovers and collects workload metrics
//! in the Prometheus format. The case deploys a small service that counts its requests and
//! exposes the count on `/metrics`, a ServiceMonitor (or PodMonitor) selecting it, sends it
//! traffic through the API server's service proxy, and asks the monitoring system's Prometheus
//! query API (reached the same way) for the counter: it must appear and rise by the requests
//! sent. A Prometheus object whose status says "available" proves nothing.
//!
//! Parameters: `prometheusService` (`namespace/name:port` of the query API; default: Services
//! on port 9090 named or labelled as Prometheus), `monitorLabels` (labels the monitoring
//! system selects monitors by; default: the `matchLabels` of every Prometheus object's
//! monitor selector), `requests` (traffic sent, default 5), `scrapeInterval` (default `2s`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::json;

use super::super::k8s::{
    case_namespace, controllers_running, create, dynamic_api, pod_state, served_resources,
};
use super::{deadline, probe_image, secs, service_endpoints};
use crate::runner::{CaseContext, Outcome};

/// One series of an instant-query answer: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Deserialize)]
struct QueryResponse {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: Vec<VectorSample>,
}

#[derive(Deserialize)]
struct VectorSample {
    metric: std::collections::BTreeMap<String, String>,
    value: (f64, String),
}

/// Parse a Prometheus HTTP API instant-query answer (`resultType: vector`).
pub fn parse_instant_query(body: &str) -> Result<Vec<Series>, String> {
    let r: QueryResponse =
        serde_json::from_str(body).map_err(|e| format!("not a Prometheus query answer: {e}"))?;
    if r.status != "success" {
        return Err(format!(
            "query failed: {}",
            r.error.unwrap_or_else(|| r.status.clone())
        ));
    }
    let data = r.data.ok_or("query answer without data")?;
    if data.result_type != "vector" {
        return Err(format!("expected a vector, got {}", data.result_type));
    }
    data.result
        .into_iter()
        .map(|s| {
            let value = s
                .value
                .1
                .parse::<f64>()
                .map_err(|_| format!("sample value `{}` is not a number", s.value.1))?;
            Ok(Series {
                labels: s.metric,
                value,
            })
        })
        .collect()
}

/// Services that serve a Prometheus query API: `params.prometheusService` (`ns/name:port`),
/// else Services with a port 9090 labelled or named as Prometheus.
async fn query_endpoints(ctx: &CaseContext, client: &Client) -> anyhow::Result<Vec<String>> {
    if let Some(s) = ctx.param::<String>("prometheusService")? {
        return Ok(vec![s]);
    }
    let services = Api::<Service>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let mut out = Vec::new();
    for s in &services {
        let name = s.name_any();
        let labels = s.labels();
        let is_prom = name.contains("prometheus")
            || labels
                .get("app.kubernetes.io/name")
                .is_some_and(|v| v == "prometheus")
            || labels.contains_key("operated-prometheus");
        let port = s
            .spec
            .as_ref()
            .and_then(|sp| sp.ports.as_ref())
            .and_then(|ps| ps.iter().find(|p| p.port == 9090));
        if let (true, Some(p)) = (is_prom, port) {
            out.push(format!(
                "{}/{name}:{}",
                s.namespace().unwrap_or_default(),
                p.name.clone().unwrap_or_else(|| p.port.to_string())
            ));
        }
    }
    out.sort();
    Ok(out)
}

const APP: &str = "aiconform-ai-service";
const COUNTER: &str = "aiconform_probe_requests_total";

/// Labels a monitor needs to be selected: the union of `spec.<kind>Selector.matchLabels` over
/// Prometheus objects (an empty or absent selector adds nothing).
pub fn selector_labels(
    prometheuses: &[serde_json::Value],
    selector: &str,
) -> BTreeMap<String, String> {
    prometheuses
        .iter()
        .filter_map(|p| {
            p.pointer(&format!("/spec/{selector}/matchLabels"))?
                .as_object()
        })
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// The sum of a query's series values, `None` when it returned no series.
pub fn counter_total(series: &[Series]) -> Option<f64> {
    (!series.is_empty()).then(|| series.iter().map(|s| s.value).sum())
}

/// GET `path` of the query API at `ep` (`ns/name:port`) through the API server service proxy.
async fn proxy_get(
    client: &Client,
    ep: &str,
    path: &str,
    deadline: tokio::time::Instant,
) -> Result<String, String> {
    let (ns, svc) = ep.split_once('/').unwrap_or(("default", ep));
    let request = axum::http::Request::get(format!(
        "/api/v1/namespaces/{ns}/services/{svc}/proxy{path}"
    ))
    .body(Vec::new())
    .map_err(|e| e.to_string())?;
    match tokio::time::timeout_at(deadline, client.request_text(request)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("query timed out".to_string()),
    }
}

/// Run an instant query against `ep` (`ns/name:port`) through the API server service proxy.
async fn query(
    client: &Client,
    ep: &str,
    q: &str,
    deadline: tokio::time::Instant,
) -> Result<Vec<Series>, String> {
    let path = format!("/api/v1/query?query={}", encode_query(q));
    parse_instant_query(&proxy_get(client, ep, &path, deadline).await?)
}

/// The `version` of a Prometheus `/api/v1/status/buildinfo` answer.
pub fn parse_build_version(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    (v.get("status")?.as_str()? == "success")
        .then(|| v.pointer("/data/version")?.as_str().map(str::to_string))
        .flatten()
        .filter(|s| !s.is_empty())
}

/// What answered at `ep`, as its own build info says (`Prometheus 3.16.0`), for the
/// evidence; `None` when the server does not serve build info.
async fn server_identity(
    client: &Client,
    ep: &str,
    deadline: tokio::time::Instant,
) -> Option<String> {
    let body = proxy_get(client, ep, "/api/v1/status/buildinfo", deadline)
        .await
        .ok()?;
    parse_build_version(&body).map(|v| format!("Prometheus {v}"))
}

/// Percent-encode a query for a URL query string.
fn encode_query(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn ai_service_metrics_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let served = served_resources(&client, &["monitoring.coreos.com"]).await?;
    let kind = if served.contains("servicemonitors.monitoring.coreos.com") {
        "ServiceMonitor"
    } else if served.contains("podmonitors.monitoring.coreos.com") {
        "PodMonitor"
    } else {
        return Ok(Outcome::failed(
            "no monitor kinds are served (ServiceMonitor or PodMonitor, monitoring.coreos.com): no monitoring system discovers workload metrics",
        ));
    };
    let endpoints = query_endpoints(&ctx, &client).await?;
    if endpoints.is_empty() {
        return Ok(Outcome::failed(format!(
            "{kind} served, but no Service exposes a Prometheus query API on port 9090 (set params.prometheusService to namespace/name:port): metrics collection is not observable"
        )));
    }
    let deadline = deadline(&ctx);
    let mut answering = Vec::new();
    let mut problems = Vec::new();
    for ep in &endpoints {
        let (ns, svc) = ep.split_once('/').unwrap_or(("default", ep));
        let name = svc.split(':').next().unwrap_or(svc);
        if service_endpoints(&client, ns, name).await? == 0 {
            problems.push(format!(
                "{ep}: the Service has no ready endpoints (nothing serves the query API)"
            ));
            continue;
        }
        match query(&client, ep, "up", deadline).await {
            Ok(_) => answering.push(ep.clone()),
            Err(e) => problems.push(format!("{ep}: {e}")),
        }
    }
    if answering.is_empty() {
        return Ok(Outcome::failed(format!(
            "no monitoring system answered a query through the API server service proxy: {}",
            problems.join("; ")
        )));
    }

    let ns = case_namespace(&ctx)?;
    let mut monitor_labels = ctx
        .param::<BTreeMap<String, String>>("monitorLabels")?
        .unwrap_or_default();
    if served.contains("prometheuses.monitoring.coreos.com") {
        let proms = dynamic_api(
            &client,
            "monitoring.coreos.com",
            "v1",
            "Prometheus",
            "prometheuses",
            None,
        )
        .list(&ListParams::default())
        .await?
        .items;
        let specs: Vec<serde_json::Value> = proms.iter().map(|p| p.data.clone()).collect();
        let selector = if kind == "ServiceMonitor" {
            "serviceMonitorSelector"
        } else {
            "podMonitorSelector"
        };
        for (k, v) in selector_labels(&specs, selector) {
            monitor_labels.entry(k).or_insert(v);
        }
    }
    let interval = ctx
        .param::<String>("scrapeInterval")?
        .unwrap_or_else(|| "2s".to_string());
    deploy_service(&ctx, &client, &ns, kind, &monitor_labels, &interval).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let running = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.clone())
            .is_some_and(|ph| ph != "Pending")
    };
    let waited =
        tokio::time::timeout_at(deadline, await_condition(pods.clone(), APP, running)).await;
    let pod = match waited {
        Ok(r) => r?,
        Err(_) => pods.get_opt(APP).await?,
    };
    match pod {
        Some(p) if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") => {}
        Some(p) => {
            return Ok(Outcome::failed(format!(
                "the metrics-exposing service {ns}/{APP} did not run: {}",
                pod_state(&p)
            )));
        }
        None => anyhow::bail!("pod {ns}/{APP} disappeared"),
    }

    let q = format!("{COUNTER}{{namespace=\"{ns}\"}}");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // Until the monitoring system has scraped the new target at least once.
    let (ep, before) = loop {
        tick.tick().await;
        let mut found = None;
        for ep in &answering {
            if let Ok(s) = query(&client, ep, &q, deadline).await
                && let Some(v) = counter_total(&s)
            {
                found = Some((ep.clone(), v));
                break;
            }
        }
        if let Some(f) = found {
            break f;
        }
        if tokio::time::Instant::now() >= deadline {
            let up = query(
                &client,
                &answering[0],
                &format!("up{{namespace=\"{ns}\"}}"),
                deadline,
            )
            .await
            .map(|s| s.len())
            .unwrap_or(0);
            return Ok(Outcome::failed(format!(
                "the monitoring system ({}) answers queries but did not collect the service's metrics within {}s: `{q}` returned no series ({up} `up` series in {ns}): the {kind} {ns}/{APP} was not scraped (with the Prometheus Operator, a new monitor can take the kubelet's Secret refresh plus prometheus-config-reloader's 3-minute watch interval to reach Prometheus: allow the case 5 minutes)",
                answering.join(", "),
                secs(ctx.spec.timeout)
            )));
        }
    };

    let requests = ctx.param::<u32>("requests")?.unwrap_or(5).max(1);
    let path = format!("/api/v1/namespaces/{ns}/services/{APP}:http/proxy/v1/completions");
    let mut sent = 0u32;
    let mut last_err = None;
    for _ in 0..requests {
        let request = axum::http::Request::get(&path).body(Vec::new())?;
        match tokio::time::timeout_at(deadline, client.request_text(request)).await {
            Ok(Ok(_)) => sent += 1,
            Ok(Err(e)) => last_err = Some(e.to_string()),
            Err(_) => break,
        }
    }
    if sent == 0 {
        return Ok(Outcome::failed(format!(
            "the service {ns}/{APP} could not be reached through the API server service proxy ({path}): {}",
            last_err.unwrap_or_else(|| "timed out".into())
        )));
    }
    let mut after = before;
    loop {
        tick.tick().await;
        if let Ok(s) = query(&client, &ep, &q, deadline).await
            && let Some(v) = counter_total(&s)
        {
            after = v;
            if after >= before + f64::from(sent) {
                let server = server_identity(&client, &ep, deadline)
                    .await
                    .unwrap_or_else(|| "a server without build info".to_string());
                let operators = controllers_running(&client, "prometheus-operator").await;
                let operated = if operators.is_empty() {
                    String::new()
                } else {
                    format!(", configured by {}", operators.join(", "))
                };
                return Ok(Outcome::passed(format!(
                    "{kind} {ns}/{APP} selected the service; after {sent} request(s) through the API server service proxy, the monitoring system's query API at {ep} ({server}{operated}; via the service proxy) shows `{COUNTER}` rising {before} → {after}"
                )));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Outcome::failed(format!(
                "the monitoring system at {ep} collected `{COUNTER}` of {ns}/{APP} once ({before}) but it did not rise by the {sent} request(s) sent (last value {after}): it stopped scraping the {kind}'s target"
            )));
        }
    }
}

/// The service (a probe that counts requests and exposes `/metrics`), its Service and the
/// monitor that selects it.
async fn deploy_service(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    kind: &str,
    monitor_labels: &BTreeMap<String, String>,
    interval: &str,
) -> anyhow::Result<()> {
    let labels = json!({"app.kubernetes.io/name": APP});
    create(
        &Api::<Pod>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": APP, "labels": labels},
            "spec": {"containers": [{"name": "server", "image": probe_image(ctx)?,
                "command": ["aiconform", "probe", "serve", "--name", APP, "--port", "8080", "--address", "$(POD_IP)"],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [{"name": "http", "containerPort": 8080}]}]}}),
    )
    .await?;
    create(
        &Api::<Service>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": APP, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": "http"}]}}),
    )
    .await?;
    let (plural, spec) = if kind == "ServiceMonitor" {
        (
            "servicemonitors",
            json!({"selector": {"matchLabels": labels},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": interval}]}),
        )
    } else {
        (
            "podmonitors",
            json!({"selector": {"matchLabels": labels},
                "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "interval": interval}]}),
        )
    };
    let api = dynamic_api(
        client,
        "monitoring.coreos.com",
        "v1",
        kind,
        plural,
        Some(ns),
    );
    let obj: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": kind,
        "metadata": {"name": APP, "labels": monitor_labels}, "spec": spec}))?;
    api.create(&kube::api::PostParams::default(), &obj).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_query_answers() {
        let ok = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"vllm"},"value":[1700000000.1,"1"]},
            {"metric":{"__name__":"up","job":"down"},"value":[1700000000.1,"0"]}]}}"#;
        let s = parse_instant_query(ok).expect("parse");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].labels["job"], "vllm");
        assert_eq!(s[0].value, 1.0);
        assert_eq!(s[1].value, 0.0);
        let err = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(
            parse_instant_query(err)
                .expect_err("error")
                .contains("parse error")
        );
        assert!(parse_instant_query("<html>").is_err());
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_instant_query(matrix).is_err());
    }

    #[test]
    fn build_info_versions() {
        let ok = r#"{"status":"success","data":{"version":"3.16.0","revision":"v0.316.0","branch":"release"}}"#;
        assert_eq!(parse_build_version(ok).as_deref(), Some("3.16.0"));
        assert_eq!(
            parse_build_version(r#"{"status":"success","data":{"version":""}}"#),
            None
        );
        assert_eq!(
            parse_build_version(r#"{"status":"error","error":"x"}"#),
            None
        );
        assert_eq!(parse_build_version("404 page not found"), None);
    }

    #[test]
    fn monitor_selector_labels_and_counter_totals() {
        let proms = vec![
            json!({"spec": {"serviceMonitorSelector": {"matchLabels": {"release": "kps"}}}}),
            json!({"spec": {"serviceMonitorSelector": {}}}),
            json!({"spec": {"podMonitorSelector": {"matchLabels": {"team": "ml"}}}}),
        ];
        assert_eq!(
            selector_labels(&proms, "serviceMonitorSelector"),
            BTreeMap::from([("release".to_string(), "kps".to_string())])
        );
        assert_eq!(selector_labels(&proms, "podMonitorSelector")["team"], "ml");
        assert!(selector_labels(&[], "serviceMonitorSelector").is_empty());
        let s = |v: f64| Series {
            labels: BTreeMap::new(),
            value: v,
        };
        assert_eq!(counter_total(&[]), None);
        assert_eq!(counter_total(&[s(2.0), s(3.0)]), Some(5.0));
        assert_eq!(
            encode_query("up{namespace=\"a b\"}"),
            "up%7Bnamespace%3D%22a%20b%22%7D"
        );
    }
}
