//! CNCF AI conformance cases, one module per requirement. Each proves its requirement on the
//! live cluster (creating objects in the case namespace where it must), or fails naming what
//! was observed instead.

mod accelerator_metrics;
mod ai_service_metrics;
mod cluster_autoscaling;
mod disaggregated_inference;
mod dra_support;
mod driver_runtime_management;
mod gang_scheduling;
mod gpu_sharing;
mod high_performance_networking;
mod inference_gateway;
mod inference_ingress;
mod pod_autoscaling;
mod robust_controller;
mod secure_accelerator_access;
mod virtualized_accelerator;
mod workload_sandboxing;

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

use crate::runner::{CaseContext, Outcome, ParamError};

pub use accelerator_metrics::dcgm_metric_names;
pub use dra_support::claim_devices;
pub use gang_scheduling::{GangObservation, unsatisfiable_gang};
pub use secure_accelerator_access::gpu_access_violations;

/// Image for pods that only need to start (overridable with `params.image`).
pub const DEFAULT_GPU_IMAGE: &str = "nvcr.io/nvidia/cuda:12.8.0-base-ubuntu24.04";
pub const DEFAULT_DEVICE_CLASS: &str = "gpu.nvidia.com";

macro_rules! case_fn {
    ($name:ident, $body:path) => {
        pub fn $name(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
            Box::pin(async move {
                let client = match ctx.require_client() {
                    Ok(c) => c.clone(),
                    Err(skip) => return Ok(skip),
                };
                let prover = ctx.param::<String>("component")?;
                Ok(name_prover(prover.as_deref(), $body(ctx, client).await?))
            })
        }
    };
}

case_fn!(dra_support, dra_support::dra_support_impl);
case_fn!(gang_scheduling, gang_scheduling::gang_scheduling_impl);
case_fn!(
    secure_accelerator_access,
    secure_accelerator_access::secure_access_impl
);
case_fn!(
    accelerator_metrics,
    accelerator_metrics::accelerator_metrics_impl
);
case_fn!(
    ai_service_metrics,
    ai_service_metrics::ai_service_metrics_impl
);
case_fn!(pod_autoscaling, pod_autoscaling::pod_autoscaling_impl);
case_fn!(
    cluster_autoscaling,
    cluster_autoscaling::cluster_autoscaling_impl
);
case_fn!(inference_gateway, inference_gateway::inference_gateway_impl);
case_fn!(inference_ingress, inference_ingress::inference_ingress_impl);
case_fn!(robust_controller, robust_controller::robust_controller_impl);
case_fn!(gpu_sharing, gpu_sharing::gpu_sharing_impl);
case_fn!(
    driver_runtime_management,
    driver_runtime_management::driver_runtime_management_impl
);
case_fn!(
    virtualized_accelerator,
    virtualized_accelerator::virtualized_accelerator_impl
);
case_fn!(
    disaggregated_inference,
    disaggregated_inference::disaggregated_inference_impl
);
case_fn!(
    high_performance_networking,
    high_performance_networking::high_performance_networking_impl
);
case_fn!(
    workload_sandboxing,
    workload_sandboxing::workload_sandboxing_impl
);

/// Prefix a case's message with the recipe component whose parameters it ran with
/// (`params.component`, set by recipe composition), so evidence names what was certified.
pub fn name_prover(component: Option<&str>, outcome: Outcome) -> Outcome {
    let Some(c) = component else {
        return outcome;
    };
    match outcome {
        Outcome::Passed { message } => Outcome::passed(format!("{c}: {message}")),
        Outcome::Failed { message } => Outcome::failed(format!("{c}: {message}")),
        Outcome::Skipped { reason } => Outcome::skipped(format!("{c}: {reason}")),
    }
}

/// Image of workloads that run `aiconform probe` (overridable with `params.probeImage`).
fn probe_image(ctx: &CaseContext) -> Result<String, ParamError> {
    Ok(ctx
        .param::<String>("probeImage")?
        .unwrap_or_else(|| crate::probe::DEFAULT_PROBE_IMAGE.to_string()))
}

fn deadline(ctx: &CaseContext) -> Instant {
    super::k8s::case_deadline(ctx)
}

fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// Ready endpoint addresses over a Service's EndpointSlices.
pub fn ready_endpoints(slices: &[EndpointSlice]) -> usize {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .map(|e| e.addresses.len())
        .sum()
}

async fn service_endpoints(client: &Client, ns: &str, svc: &str) -> anyhow::Result<usize> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await?;
    Ok(ready_endpoints(&list.items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_the_component_that_proved_them() {
        let o = name_prover(Some("kai-scheduler"), Outcome::passed("gang ran"));
        assert_eq!(o, Outcome::passed("kai-scheduler: gang ran"));
        let o = name_prover(None, Outcome::failed("no gang scheduler"));
        assert_eq!(o, Outcome::failed("no gang scheduler"));
    }
}
