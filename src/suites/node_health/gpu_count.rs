//! GPU count: the GPUs the node agent sees (NVML, else NVIDIA PCI functions in sysfs) vs
//! the recipe's GPUs per node and vs the `nvidia.com/gpu` the node advertises. A GPU that
//! fell off the bus disappears from sysfs while the device plugin may still advertise it;
//! the missing address is the one the node's peers (same GPU product) all have.

use std::collections::BTreeMap;

use super::expect::{Expectations, cite};
use super::{NodeVerdict, NodeView, advertised_gpus};
use crate::snapshot::model::NodeFacts;

/// GPU PCI addresses the agent saw on a node, if it reported.
fn addresses(node: &NodeFacts) -> Option<Vec<String>> {
    node.agent.report().map(|r| {
        r.gpu
            .devices
            .iter()
            .map(|d| d.pci_address.to_lowercase())
            .collect()
    })
}

/// Addresses most peers of the same GPU product have that `mine` lacks.
pub fn missing_addresses(node: &NodeFacts, mine: &[String], peers: &[&NodeFacts]) -> Vec<String> {
    let same: Vec<Vec<String>> = peers
        .iter()
        .filter(|p| p.gpu.product == node.gpu.product)
        .filter_map(|p| addresses(p))
        .collect();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for a in same.iter().flatten() {
        *seen.entry(a).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(a, n)| *n * 2 > same.len() && !mine.iter().any(|m| m == a))
        .map(|(a, _)| a.to_string())
        .collect()
}

pub fn check(v: &NodeView<'_>, exp: &Expectations) -> NodeVerdict {
    let seen: Vec<String> = v
        .report
        .gpu
        .devices
        .iter()
        .map(|d| d.pci_address.to_lowercase())
        .collect();
    let how = format!("{:?}", v.report.gpu.source).to_lowercase();
    let count = seen.len() as u64;
    let mut problems = Vec::new();
    if let Some(want) = &exp.gpus_per_node
        && count < u64::from(want.value)
    {
        problems.push(format!(
            "{count} of {} GPUs expected by the recipe{}",
            want.value,
            cite(&want.source)
        ));
    }
    let advertised = advertised_gpus(v.node);
    if let Some(a) = advertised
        && count < a
    {
        problems.push(format!(
            "{count} GPUs seen but the node advertises {a} nvidia.com/gpu"
        ));
    }
    if problems.is_empty() {
        if count == 0 && exp.gpus_per_node.is_none() && advertised.is_none() {
            return NodeVerdict::NotObserved(format!(
                "no GPUs seen ({how}) and no expectation to compare with"
            ));
        }
        return NodeVerdict::Healthy(format!("{count} GPUs seen via {how}"));
    }
    let missing = missing_addresses(v.node, &seen, v.peers);
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "; missing PCI {} (present on its peers)",
            missing.join(", ")
        )
    };
    NodeVerdict::Unhealthy(format!("{} (via {how}){missing}", problems.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::HealthReadings;
    use crate::suites::node_health::expect::Count;
    use crate::suites::node_health::testing::{addr, node};

    fn view<'a>(n: &'a NodeFacts, peers: &'a [&'a NodeFacts]) -> NodeView<'a> {
        let report = n.agent.report().unwrap();
        NodeView {
            node: n,
            report,
            health: report.health.as_deref().unwrap(),
            peers,
        }
    }

    #[test]
    fn counts_against_recipe_and_allocatable_and_names_the_missing_gpu() {
        let exp = Expectations {
            gpus_per_node: Some(Count {
                value: 8,
                source: "HGX H100".into(),
            }),
            ..Expectations::default()
        };
        let good = node("gpu-0", 8, HealthReadings::default());
        let peer = node("gpu-2", 8, HealthReadings::default());
        let mut bad = node("gpu-1", 8, HealthReadings::default());
        if let crate::snapshot::model::AgentOutcome::Collected { report } = &mut bad.agent {
            report.gpu.devices.remove(3);
        }
        let peers = [&good, &peer];
        assert_eq!(
            check(&view(&good, &[&bad, &peer]), &exp),
            NodeVerdict::Healthy("8 GPUs seen via none".into())
        );
        let NodeVerdict::Unhealthy(m) = check(&view(&bad, &peers), &exp) else {
            panic!()
        };
        assert!(
            m.contains("7 of 8 GPUs expected by the recipe (source: HGX H100)"),
            "{m}"
        );
        assert!(
            m.contains("7 GPUs seen but the node advertises 8 nvidia.com/gpu"),
            "{m}"
        );
        assert!(
            m.contains(&format!("missing PCI {} (present on its peers)", addr(3))),
            "{m}"
        );
        // Without an expectation the allocatable still catches it.
        let NodeVerdict::Unhealthy(m) = check(&view(&bad, &peers), &Expectations::default()) else {
            panic!()
        };
        assert!(!m.contains("recipe"), "{m}");
    }
}
