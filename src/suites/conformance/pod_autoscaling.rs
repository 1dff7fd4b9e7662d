//! pod_autoscaling (KAR-0057): the HPA scales accelerator pods on custom metrics.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Client;
use kube::api::Api;
use serde_json::json;

use super::super::k8s::{case_namespace, create};
use crate::runner::{CaseContext, Outcome};

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

pub(super) async fn pod_autoscaling_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let apis: Api<APIService> = Api::all(client.clone());
    let mut available = Vec::new();
    let mut problems = Vec::new();
    for name in [
        "v1beta1.custom.metrics.k8s.io",
        "v1beta1.external.metrics.k8s.io",
    ] {
        match apis.get_opt(name).await? {
            None => problems.push(format!("APIService {name} is not registered")),
            Some(a) => match api_service_state(&a) {
                Ok(()) => available.push(name),
                Err(e) => problems.push(format!("APIService {name}: {e}")),
            },
        }
    }
    if available.is_empty() {
        return Ok(Outcome::failed(format!(
            "no custom or external metrics API for the HPA (install prometheus-adapter or KEDA): {}",
            problems.join("; ")
        )));
    }
    let ns = case_namespace(&ctx)?;
    let metric = ctx
        .param::<String>("metricName")
        .unwrap_or_else(|| "DCGM_FI_DEV_GPU_UTIL".to_string());
    let metric_spec = if available.contains(&"v1beta1.custom.metrics.k8s.io") {
        json!({"type": "Pods", "pods": {"metric": {"name": metric},
            "target": {"type": "AverageValue", "averageValue": "50"}}})
    } else {
        json!({"type": "External", "external": {"metric": {"name": metric},
            "target": {"type": "AverageValue", "averageValue": "50"}}})
    };
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let created = create(
        &hpas,
        json!({
            "metadata": {"name": "gpu-util"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference"},
                "minReplicas": 1, "maxReplicas": 4,
                "metrics": [metric_spec]
            }
        }),
    )
    .await;
    match created {
        Ok(_) => Ok(Outcome::passed(format!(
            "{} Available; an autoscaling/v2 HPA on custom metric {metric} was accepted",
            available.join(" and ")
        ))),
        Err(e) => Ok(Outcome::failed(format!(
            "{} Available, but an HPA on custom metric {metric} was rejected: {e}",
            available.join(" and ")
        ))),
    }
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
}
