//! InfiniBand / RoCE ports: every port ACTIVE with physical state LinkUp, at the rate the
//! recipe's fabric expects (a port at half rate after a bad cable or a degraded lane), and
//! as many active ports as expected.

use super::expect::{Expectations, cite};
use super::{NodeVerdict, NodeView};
use crate::snapshot::health::IbPort;

/// The problems of one port.
pub fn problems(p: &IbPort, want_rate: Option<f64>) -> Vec<String> {
    let mut out = Vec::new();
    if p.state != "ACTIVE" {
        out.push(format!(
            "state {}",
            if p.state.is_empty() {
                "unknown"
            } else {
                &p.state
            }
        ));
    }
    if p.phys_state != "LinkUp" {
        out.push(format!(
            "physical state {}",
            if p.phys_state.is_empty() {
                "unknown"
            } else {
                &p.phys_state
            }
        ));
    }
    if let Some(want) = want_rate {
        match p.rate_gbps {
            Some(r) if r + 1e-9 < want => {
                out.push(format!("rate {} (expected {want} Gb/s)", p.rate))
            }
            None => out.push(format!("rate unreadable (`{}`)", p.rate)),
            _ => {}
        }
    }
    out
}

pub fn check(v: &NodeView<'_>, exp: &Expectations) -> NodeVerdict {
    let ports = match v.health.infiniband.observed() {
        Ok(p) => p,
        Err(reason) => return NodeVerdict::NotObserved(reason.to_string()),
    };
    let want = exp.ib_ports.as_ref();
    let source = want.map(|w| cite(&w.source)).unwrap_or_default();
    if ports.is_empty() {
        return match want.and_then(|w| w.count).filter(|c| *c > 0) {
            Some(c) => {
                NodeVerdict::Unhealthy(format!("no InfiniBand/RoCE ports; expected {c}{source}"))
            }
            None => NodeVerdict::NotObserved("no InfiniBand/RoCE ports on this node".into()),
        };
    }
    let mut bad: Vec<String> = ports
        .iter()
        .filter_map(|p| {
            let pr = problems(p, want.and_then(|w| w.rate_gbps));
            (!pr.is_empty()).then(|| {
                let pci = if p.pci_address.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.pci_address)
                };
                format!("{} port {}{pci}: {}", p.device, p.port, pr.join(", "))
            })
        })
        .collect();
    let active = ports.iter().filter(|p| p.state == "ACTIVE").count();
    if let Some(c) = want.and_then(|w| w.count)
        && active < c as usize
    {
        bad.push(format!("{active} of {c} ports active"));
    }
    if bad.is_empty() {
        let rates: Vec<String> = {
            let mut r: Vec<String> = ports.iter().map(|p| p.rate.clone()).collect();
            r.dedup();
            r
        };
        NodeVerdict::Healthy(format!(
            "{} port(s) ACTIVE/LinkUp at {}",
            ports.len(),
            rates.join(", ")
        ))
    } else {
        NodeVerdict::Unhealthy(format!("{}{source}", bad.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::infiniband;

    #[test]
    fn fixture_ports() {
        let ports = infiniband::scan(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-health/sys"),
        )
        .unwrap();
        assert!(problems(&ports[0], Some(400.0)).is_empty());
        assert_eq!(
            problems(&ports[1], Some(400.0)),
            ["rate 200 Gb/sec (2X NDR) (expected 400 Gb/s)"]
        );
        let down = IbPort {
            state: "DOWN".into(),
            phys_state: "Polling".into(),
            ..ports[0].clone()
        };
        assert_eq!(
            problems(&down, None),
            ["state DOWN", "physical state Polling"]
        );
    }
}
