//! ECC: volatile uncorrectable errors (since the driver loaded), row remapping pending (the
//! GPU needs a reset to use its spare rows) or failed (no spare rows left: replace it),
//! pages pending retirement, and retired pages at the replacement limit. Aggregate
//! (lifetime) uncorrectable counts are reported with the reading.

use super::expect::{Expectations, cite};
use super::{NodeVerdict, NodeView, listed_gpus, per_device};
use crate::snapshot::health::GpuHealth;

/// The problems of one GPU.
pub fn problems(g: &GpuHealth, exp: &Expectations) -> Vec<String> {
    let mut p = Vec::new();
    if let Some(n) = g.ecc_volatile_uncorrectable.filter(|n| *n > 0) {
        p.push(format!(
            "{n} volatile uncorrectable ECC error(s) (aggregate {})",
            g.ecc_aggregate_uncorrectable
                .map_or("N/A".to_string(), |a| a.to_string())
        ));
    }
    if g.remap_failure == Some(true) {
        p.push("row remapping failed (no spare rows left)".into());
    }
    if g.remap_pending == Some(true) {
        p.push(format!(
            "row remap pending ({} uncorrectable row(s) remapped; needs a GPU reset)",
            g.remapped_rows_uncorrectable.unwrap_or(0)
        ));
    }
    if g.retirement_pending == Some(true) {
        p.push("page retirement pending (needs a GPU reset)".into());
    }
    if let (Some(n), Some(limit)) = (g.retired_pages_dbe, &exp.ecc)
        && n >= limit.max_retired_pages
    {
        p.push(format!(
            "{n} retired pages (limit {}{})",
            limit.max_retired_pages,
            cite(&limit.source)
        ));
    }
    p
}

pub fn check(v: &NodeView<'_>, exp: &Expectations) -> NodeVerdict {
    let gpus = match listed_gpus(v) {
        Ok(g) => g,
        Err(not_observed) => return not_observed,
    };
    per_device(
        gpus,
        |g| format!("GPU {} ({}, {})", g.index, g.uuid, g.pci_address),
        |g| problems(g, exp),
        || {
            let aggregate: u64 = gpus
                .iter()
                .filter_map(|g| g.ecc_aggregate_uncorrectable)
                .sum();
            format!(
                "{} GPUs: no volatile uncorrectable ECC errors, no pending or failed row remaps (aggregate uncorrectable {aggregate})",
                gpus.len()
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::nvsmi;
    use crate::suites::node_health::expect::EccLimits;

    #[test]
    fn fixture_gpus() {
        let xml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/node-health/nvidia-smi-q.xml"),
        )
        .unwrap();
        let gpus = nvsmi::parse_query(&xml).unwrap();
        let exp = Expectations {
            ecc: Some(EccLimits {
                max_retired_pages: 60,
                source: "s".into(),
            }),
            ..Expectations::default()
        };
        assert!(problems(&gpus[0], &exp).is_empty());
        assert_eq!(
            problems(&gpus[1], &exp),
            [
                "2 volatile uncorrectable ECC error(s) (aggregate 2)",
                "row remap pending (1 uncorrectable row(s) remapped; needs a GPU reset)"
            ]
        );
        let old = GpuHealth {
            retired_pages_dbe: Some(61),
            remap_failure: Some(true),
            ..GpuHealth::default()
        };
        assert_eq!(
            problems(&old, &exp),
            [
                "row remapping failed (no spare rows left)",
                "61 retired pages (limit 60 (source: s))"
            ]
        );
    }
}
