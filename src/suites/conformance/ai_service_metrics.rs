//! ai_service_metrics (KAR-0061): a monitoring system discovers and collects workload metrics
//! in the Prometheus format. The case requires the monitor kinds to be served and then asks the
//! monitoring system itself, through its Prometheus query API reached via the API server's
//! service proxy, for the targets it scrapes: a Prometheus object whose status says
//! "available" proves nothing; a query answered with live `up` series does.

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;

use super::super::k8s::served_resources;
use super::deadline;
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
    if let Some(s) = ctx.param::<String>("prometheusService") {
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

pub(super) async fn ai_service_metrics_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let served = served_resources(&client, &["monitoring.coreos.com"]).await?;
    let monitors: Vec<&str> = [
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
    ]
    .into_iter()
    .filter(|r| served.contains(*r))
    .collect();
    if monitors.is_empty() {
        return Ok(Outcome::failed(
            "no monitor kinds are served (ServiceMonitor or PodMonitor, monitoring.coreos.com): no monitoring system discovers workload metrics",
        ));
    }
    let endpoints = query_endpoints(&ctx, &client).await?;
    if endpoints.is_empty() {
        return Ok(Outcome::failed(format!(
            "{} served, but no Service exposes a Prometheus query API on port 9090 (set params.prometheusService to namespace/name:port): metrics collection is not observable",
            monitors.join(" and ")
        )));
    }
    let mut problems = Vec::new();
    for ep in &endpoints {
        let (ns, svc) = ep.split_once('/').unwrap_or(("default", ep));
        let path = format!("/api/v1/namespaces/{ns}/services/{svc}/proxy/api/v1/query?query=up");
        let request = axum::http::Request::get(&path).body(Vec::new())?;
        let answer = tokio::time::timeout_at(deadline(&ctx), client.request_text(request)).await;
        let body = match answer {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                problems.push(format!("{ep}: {e}"));
                continue;
            }
            Err(_) => {
                problems.push(format!("{ep}: query timed out"));
                continue;
            }
        };
        match parse_instant_query(&body) {
            Err(e) => problems.push(format!("{ep}: {e}")),
            Ok(series) => {
                let up: Vec<&Series> = series.iter().filter(|s| s.value == 1.0).collect();
                if up.is_empty() {
                    problems.push(format!(
                        "{ep}: the monitoring system answers but scrapes no target successfully ({} `up` series, none 1)",
                        series.len()
                    ));
                    continue;
                }
                let mut jobs: Vec<&str> = up
                    .iter()
                    .filter_map(|s| s.labels.get("job").map(String::as_str))
                    .collect();
                jobs.sort();
                jobs.dedup();
                return Ok(Outcome::passed(format!(
                    "{} served; the Prometheus query API at {ep} (via the API server service proxy) reports {} live scrape target(s) (jobs: {})",
                    monitors.join(" and "),
                    up.len(),
                    jobs.join(", ")
                )));
            }
        }
    }
    Ok(Outcome::failed(format!(
        "no monitoring system answered a query for its scrape targets: {}",
        problems.join("; ")
    )))
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
}
