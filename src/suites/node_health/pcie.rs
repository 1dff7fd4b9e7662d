//! PCIe: every GPU's and NIC's link trained at its maximum generation and width, and at
//! least at the recipe's (a GPU at x8 or a NIC at Gen4 halves its host bandwidth silently).

use super::expect::{Expectations, PcieLink, cite};
use super::{NodeVerdict, NodeView, gpu_name};
use crate::snapshot::health::PciLink;
use crate::snapshot::health::pcie::LinkDevice;

/// The problems of one link.
pub fn problems(l: &PciLink, want: Option<&PcieLink>) -> Vec<String> {
    let mut p = Vec::new();
    let (Some(cur_gen), Some(cur_width)) = (l.current_gen, l.current_width) else {
        return vec!["link speed or width unreadable".into()];
    };
    if let Some(max) = l.max_gen.filter(|m| cur_gen < *m) {
        p.push(format!("Gen{cur_gen} of Gen{max}"));
    }
    if let Some(max) = l.max_width.filter(|m| cur_width < *m) {
        p.push(format!("x{cur_width} of x{max}"));
    }
    if let Some(w) = want
        && (cur_gen < w.generation || cur_width < w.width)
        && p.is_empty()
    {
        p.push(format!(
            "Gen{cur_gen} x{cur_width} below the expected Gen{} x{}{}",
            w.generation,
            w.width,
            cite(&w.source)
        ));
    }
    p
}

pub fn check(v: &NodeView<'_>, exp: &Expectations) -> NodeVerdict {
    let links = match v.health.pcie.observed() {
        Ok(l) => l,
        Err(reason) => return NodeVerdict::NotObserved(reason.to_string()),
    };
    if links.is_empty() {
        return NodeVerdict::NotObserved("no GPU or NIC PCIe links in sysfs".into());
    }
    let mut bad = Vec::new();
    for l in links {
        let (want, name) = match l.device {
            LinkDevice::Gpu => (
                exp.gpu_pcie.as_ref(),
                gpu_name(v.report, v.health, &l.address),
            ),
            LinkDevice::Nic => (exp.nic_pcie.as_ref(), format!("NIC {}", l.address)),
        };
        let p = problems(l, want);
        if !p.is_empty() {
            bad.push(format!("{name}: {}", p.join(", ")));
        }
    }
    let count = |d: LinkDevice| links.iter().filter(|l| l.device == d).count();
    if bad.is_empty() {
        NodeVerdict::Healthy(format!(
            "{} GPU and {} NIC links at their maximum generation and width",
            count(LinkDevice::Gpu),
            count(LinkDevice::Nic)
        ))
    } else {
        NodeVerdict::Unhealthy(bad.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::pcie;

    #[test]
    fn fixture_links() {
        let links = pcie::scan(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-health/sys"),
        )
        .unwrap();
        let want = PcieLink {
            generation: 5,
            width: 16,
            source: "H100 SXM5".into(),
        };
        let shown: Vec<Vec<String>> = links.iter().map(|l| problems(l, Some(&want))).collect();
        assert_eq!(
            shown,
            [
                vec![],
                vec![],
                vec!["x8 of x16".to_string()],
                vec!["Gen4 of Gen5".to_string()]
            ]
        );
        let capped = PciLink {
            max_gen: Some(4),
            current_gen: Some(4),
            ..links[0].clone()
        };
        assert_eq!(
            problems(&capped, Some(&want)),
            ["Gen4 x16 below the expected Gen5 x16 (source: H100 SXM5)"]
        );
    }
}
