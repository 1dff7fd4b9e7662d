//! The custom metrics path: an HPA of the case's own on the probe's gauge as a `Pods`
//! metric, read through the custom metrics API (`custom.metrics.k8s.io`).

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::api::Api;
use serde_json::json;

use super::super::super::k8s::{create, served_resources};
use super::super::deadline;
use super::{
    NAME, Params, available_api, deploy_probe, scale_cycle, scaled_message, stalled_message,
};
use crate::runner::{CaseContext, Outcome};

const GROUP: &str = "custom.metrics.k8s.io";
/// Versions of the custom metrics API the HPA controller can use, preferred first.
const VERSIONS: [&str; 2] = ["v1beta2", "v1beta1"];

/// The case's HPA on the gauge as a `Pods` metric.
fn hpa(p: &Params) -> serde_json::Value {
    json!({
        "metadata": {"name": NAME},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": 1, "maxReplicas": 2,
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": p.metric},
                "target": {"type": "AverageValue", "averageValue": p.target.to_string()}}}],
            "behavior": p.behavior()
        }
    })
}

pub(super) async fn run(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    p: &Params,
) -> anyhow::Result<Outcome> {
    let api_service = match available_api(client, GROUP, &VERSIONS).await? {
        Ok(name) => name,
        Err(why) => {
            let keda = served_resources(client, &["keda.sh"])
                .await?
                .contains("scaledobjects.keda.sh");
            let fix = if keda {
                "KEDA is installed (scaledobjects.keda.sh is served): set params.keda.prometheusAddress to autoscale through it"
            } else {
                "install a custom metrics adapter (e.g. prometheus-adapter) or KEDA (then set params.keda.prometheusAddress); if the platform offers no HPA, declare pod_autoscaling not applicable"
            };
            return Ok(Outcome::failed(format!(
                "the custom metrics API ({GROUP}) is not served: {why}; {fix}"
            )));
        }
    };
    let deadline = deadline(ctx);
    deploy_probe(ctx, client, ns, p).await?;
    create(
        &Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
        hpa(p),
    )
    .await?;
    let what = format!(
        "HPA {ns}/{NAME} on custom metric {} ({api_service}), target {} per pod",
        p.metric, p.target
    );
    Ok(match scale_cycle(client, ns, p, NAME, deadline).await? {
        Ok(s) => Outcome::passed(scaled_message(&what, p, &s)),
        Err(s) => Outcome::failed(stalled_message(&what, p, &s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_on_the_pods_metric() {
        let p = Params::sample("aiconform_probe_load");
        let h: HorizontalPodAutoscaler = serde_json::from_value(hpa(&p)).expect("valid HPA");
        let spec = h.spec.expect("spec");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 2));
        let m = &spec.metrics.expect("metrics")[0];
        let pods = m.pods.as_ref().expect("Pods metric");
        assert_eq!(pods.metric.name, "aiconform_probe_load");
        assert_eq!(
            pods.target.average_value.as_ref().map(|q| q.0.as_str()),
            Some("10")
        );
        let down = spec.behavior.and_then(|b| b.scale_down).expect("scaleDown");
        assert_eq!(down.stabilization_window_seconds, Some(5));
    }
}
