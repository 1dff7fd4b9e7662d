//! accelerator_metrics (KAR-0059): an accelerator metrics endpoint with per-device numbers.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::super::health;
use super::super::k8s::wait_object;
use super::*;
use crate::runner::{CaseContext, Outcome};
use crate::snapshot::cluster::is_simulated;

/// Metric families named `DCGM_FI_*` in a Prometheus text exposition.
pub fn dcgm_metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let name = l.split(['{', ' ']).next()?;
            name.starts_with("DCGM_FI_").then(|| name.to_string())
        })
        .collect()
}

pub(super) async fn accelerator_metrics_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let ns = ctx.param::<String>("namespace").unwrap_or_else(|| {
        ctx.recipe
            .component("gpu-operator")
            .map(|c| c.namespace.clone())
            .unwrap_or_else(|| "gpu-operator".to_string())
    });
    let name = ctx
        .param::<String>("exporter")
        .unwrap_or_else(|| "nvidia-dcgm-exporter".to_string());
    let ds = Api::<DaemonSet>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let svc = Api::<Service>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?;
    let (ds, svc) = match (ds, svc) {
        (None, None) => {
            return Ok(Outcome::failed(format!(
                "no DCGM exporter: neither DaemonSet nor Service {ns}/{name} exists (GPU Operator dcgmExporter disabled or not installed)"
            )));
        }
        (_, None) => {
            return Ok(Outcome::failed(format!(
                "DaemonSet {ns}/{name} exists but no Service {ns}/{name} exposes its metrics endpoint"
            )));
        }
        (ds, Some(svc)) => (ds, svc),
    };
    if ds.is_some()
        && let Err(e) = wait_object(
            Api::<DaemonSet>::namespaced(client.clone(), &ns),
            &format!("DaemonSet {ns}/{name}"),
            &name,
            deadline(&ctx),
            health::daemonset,
        )
        .await?
    {
        return Ok(Outcome::failed(format!("DCGM exporter not ready: {e}")));
    }
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let simulated: Vec<String> = super::super::k8s::gpu_nodes(&nodes)
        .into_iter()
        .filter(|n| is_simulated(n))
        .map(|n| n.name_any())
        .collect();
    let endpoints = service_endpoints(&client, &ns, &name).await?;
    if endpoints == 0 {
        if !simulated.is_empty() {
            return Ok(Outcome::skipped(format!(
                "DCGM exporter {ns}/{name} is deployed but cannot be scraped: simulated GPU nodes ({}) have no reachable pod network, so the Service has no ready endpoints",
                simulated.join(", ")
            )));
        }
        return Ok(Outcome::failed(format!(
            "Service {ns}/{name} has no ready endpoints: the exporter pods are not serving"
        )));
    }
    let port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.name.clone().unwrap_or_else(|| p.port.to_string()))
        .unwrap_or_else(|| "9400".to_string());
    let path = format!("/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/metrics");
    let request = axum::http::Request::get(&path).body(Vec::new())?;
    let scrape = tokio::time::timeout_at(deadline(&ctx), client.request_text(request)).await;
    match scrape {
        Ok(Ok(text)) => {
            let names = dcgm_metric_names(&text);
            if names.is_empty() {
                Ok(Outcome::failed(format!(
                    "{ns}/{name} answered on {path} but exposes no DCGM_FI_* metrics"
                )))
            } else {
                Ok(Outcome::passed(format!(
                    "DCGM exporter {ns}/{name}: {endpoints} ready endpoint(s), {} DCGM metric families (e.g. {})",
                    names.len(),
                    names.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                )))
            }
        }
        Ok(Err(e)) => Ok(Outcome::skipped(format!(
            "DCGM exporter {ns}/{name} has {endpoints} ready endpoint(s) but cannot be scraped through the API server proxy ({path}): {e}"
        ))),
        Err(_) => Ok(Outcome::skipped(format!(
            "DCGM exporter {ns}/{name} has {endpoints} ready endpoint(s) but scraping {path} timed out"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use serde_json::json;

    #[test]
    fn endpoints_and_dcgm_metrics() {
        let slices: Vec<EndpointSlice> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "addressType": "IPv4", "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}}]},
            {"metadata": {"name": "b"}, "addressType": "IPv4"}
        ]))
        .expect("slices");
        assert_eq!(ready_endpoints(&slices), 1);
        let text = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization.\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 12\nDCGM_FI_DEV_FB_USED{gpu=\"0\"} 100\ngo_goroutines 12\n";
        let names = dcgm_metric_names(text);
        assert_eq!(names.len(), 2);
        assert!(names.contains("DCGM_FI_DEV_GPU_UTIL"));
        assert!(dcgm_metric_names("go_goroutines 1\n").is_empty());
    }
}
