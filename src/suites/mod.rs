//! Case implementations, registered by name. Suite definitions (which cases, parameters,
//! thresholds) are data in `suites/*.yaml`.
//!
//! Pure evaluation ([`nccl`] output parsing and thresholds, [`health`] of objects from their
//! status) is separate from the cases that talk to the cluster ([`deployment`],
//! [`conformance`], [`fabric`]). [`node_health`] evaluates the node agents' hardware
//! readings per node.

pub mod conformance;
pub mod deployment;
pub mod exposition;
pub mod fabric;
pub mod k8s;
pub mod nccl;
pub mod node_health;
pub mod version_evidence;

use crate::runner::CaseFn;

/// How a run finds its cases: this registry first, then the runner's built-ins.
pub fn resolver() -> crate::runner::Resolver {
    std::sync::Arc::new(|name: &str| lookup(name).or_else(|| crate::runner::builtin::lookup(name)))
}

/// The implementation registered under `name`, if any.
pub fn lookup(name: &str) -> Option<CaseFn> {
    registry()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f)
}

/// Every implemented case, by name.
pub fn registry() -> Vec<(&'static str, CaseFn)> {
    vec![
        // deployment
        ("component-health", deployment::component_health),
        // node health
        ("gpu-count", node_health::gpu_count_case),
        ("xid", node_health::xid_case),
        ("ecc", node_health::ecc_case),
        ("nvlink", node_health::nvlink_case),
        ("pcie", node_health::pcie_case),
        ("infiniband", node_health::infiniband_case),
        ("thermal", node_health::thermal_case),
        ("dcgm-diag", node_health::dcgm_case),
        // conformance
        ("dra-support", conformance::dra_support),
        ("gang-scheduling", conformance::gang_scheduling),
        (
            "secure-accelerator-access",
            conformance::secure_accelerator_access,
        ),
        ("accelerator-metrics", conformance::accelerator_metrics),
        ("ai-service-metrics", conformance::ai_service_metrics),
        ("pod-autoscaling", conformance::pod_autoscaling),
        ("cluster-autoscaling", conformance::cluster_autoscaling),
        ("inference-gateway", conformance::inference_gateway),
        ("inference-ingress", conformance::inference_ingress),
        ("robust-controller", conformance::robust_controller),
        ("gpu-sharing", conformance::gpu_sharing),
        (
            "driver-runtime-management",
            conformance::driver_runtime_management,
        ),
        (
            "virtualized-accelerator",
            conformance::virtualized_accelerator,
        ),
        (
            "disaggregated-inference",
            conformance::disaggregated_inference,
        ),
        (
            "high-performance-networking",
            conformance::high_performance_networking,
        ),
        ("workload-sandboxing", conformance::workload_sandboxing),
        // performance
        ("nccl-all-reduce-bw", fabric::nccl_all_reduce_bw),
        ("gdr-enabled", fabric::gdr_enabled),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_names_are_unique_and_found() {
        let names: Vec<&str> = super::registry().iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for n in names {
            assert!(super::lookup(n).is_some(), "{n}");
        }
        assert!(super::lookup("nope").is_none());
    }
}
