//! DCGM diagnostics: the `dcgmi diag -r LEVEL -j` results the agent collected where DCGM
//! is installed. A failed test fails the node (naming the GPUs and DCGM's own words);
//! warnings are reported; a node without DCGM is not observed.

use super::expect::Expectations;
use super::{NodeVerdict, NodeView};

pub fn check(v: &NodeView<'_>, _exp: &Expectations) -> NodeVerdict {
    let diag = match v.health.dcgm.observed() {
        Ok(d) => d,
        Err(reason) => return NodeVerdict::NotObserved(reason.to_string()),
    };
    let show = |status: &str| -> Vec<String> {
        diag.results
            .iter()
            .filter(|r| r.status == status)
            .map(|r| {
                let gpus = if r.gpus.is_empty() {
                    String::new()
                } else {
                    format!(" (GPU {})", r.gpus)
                };
                let detail = r
                    .detail
                    .first()
                    .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                    .unwrap_or_default();
                format!("{}{gpus}{detail}", r.test)
            })
            .collect()
    };
    let failed = show("fail");
    let warned = show("warn");
    let unknown: Vec<&str> = diag
        .results
        .iter()
        .filter(|r| !matches!(r.status.as_str(), "pass" | "fail" | "warn" | "skip"))
        .map(|r| r.status.as_str())
        .collect();
    let level = diag.level;
    if !failed.is_empty() {
        let mut m = format!("dcgmi diag -r {level} failed: {}", failed.join("; "));
        if !warned.is_empty() {
            m.push_str(&format!("; warnings: {}", warned.join("; ")));
        }
        return NodeVerdict::Unhealthy(m);
    }
    if !unknown.is_empty() {
        return NodeVerdict::NotObserved(format!(
            "dcgmi diag -r {level} reported statuses that are neither pass nor fail: {}",
            unknown.join(", ")
        ));
    }
    let passed = diag.results.iter().filter(|r| r.status == "pass").count();
    if passed == 0 {
        return NodeVerdict::NotObserved(format!(
            "dcgmi diag -r {level} ran no test (all skipped)"
        ));
    }
    let mut m = format!("dcgmi diag -r {level}: {passed} result(s) passed");
    if !warned.is_empty() {
        m.push_str(&format!("; warnings: {}", warned.join("; ")));
    }
    NodeVerdict::Healthy(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::{HealthReadings, dcgm};
    use crate::suites::node_health::testing::{node, observed};

    #[test]
    fn fixture_diag() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/node-health/dcgmi-diag-r2.json"),
        )
        .unwrap();
        let health = HealthReadings {
            dcgm: observed(dcgm::parse(&text, 2).unwrap()),
            ..HealthReadings::default()
        };
        let n = node("gpu-0", 2, health);
        let report = n.agent.report().unwrap();
        let v = check(
            &NodeView {
                node: &n,
                report,
                health: report.health.as_deref().unwrap(),
                peers: &[],
            },
            &Expectations::default(),
        );
        let NodeVerdict::Unhealthy(m) = v else {
            panic!("{v:?}")
        };
        assert!(
            m.starts_with("dcgmi diag -r 2 failed: PCIe (GPU 1): Detected more than 8 PCIe replays per minute for GPU 1 : 103."),
            "{m}"
        );
    }
}
