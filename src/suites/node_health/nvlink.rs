//! NVLink: links up per GPU vs the recipe's NVLinks per GPU (a link down halves a GPU's
//! share of the NVSwitch fabric), and per-link CRC, replay and recovery counters over the
//! suite's thresholds.

use super::expect::{Expectations, cite};
use super::{NodeVerdict, NodeView};
use crate::snapshot::health::GpuNvlink;

/// The problems of one GPU's links.
pub fn problems(g: &GpuNvlink, exp: &Expectations) -> Vec<String> {
    let mut p = Vec::new();
    let up = g.links.iter().filter(|l| l.up).count();
    if let Some(want) = &exp.nvlinks_per_gpu
        && up < want.value as usize
    {
        let down: Vec<String> = g
            .links
            .iter()
            .filter(|l| !l.up)
            .map(|l| l.link.to_string())
            .collect();
        p.push(format!(
            "{up} of {} NVLinks up{} (down: {})",
            want.value,
            cite(&want.source),
            if down.is_empty() {
                "not listed".to_string()
            } else {
                down.join(", ")
            }
        ));
    }
    if let Some(t) = &exp.nvlink_errors {
        for l in &g.links {
            let over = [
                ("CRC", l.crc_errors, t.max_crc),
                ("replay", l.replay_errors, t.max_replay),
                ("recovery", l.recovery_errors, t.max_recovery),
            ]
            .into_iter()
            .filter_map(|(name, n, max)| {
                n.filter(|n| *n > max)
                    .map(|n| format!("{n} {name} errors (max {max})"))
            })
            .collect::<Vec<_>>();
            if !over.is_empty() {
                p.push(format!(
                    "link {}: {}{}",
                    l.link,
                    over.join(", "),
                    cite(&t.source)
                ));
            }
        }
    }
    p
}

/// `GPU 3 (GPU-..., 0000:4b:00.0)`: the PCI address from `nvidia-smi -q -x` by UUID.
fn name(v: &NodeView<'_>, g: &GpuNvlink) -> String {
    let pci = v
        .health
        .gpus
        .observed()
        .ok()
        .and_then(|gpus| gpus.iter().find(|h| !g.uuid.is_empty() && h.uuid == g.uuid))
        .map(|h| format!(", {}", h.pci_address))
        .unwrap_or_default();
    format!("GPU {} ({}{pci})", g.index, g.uuid)
}

pub fn check(v: &NodeView<'_>, exp: &Expectations) -> NodeVerdict {
    let gpus = match v.health.nvlink.observed() {
        Ok(g) => g,
        Err(reason) => return NodeVerdict::NotObserved(reason.to_string()),
    };
    if gpus.is_empty() || gpus.iter().all(|g| g.links.is_empty()) {
        return match &exp.nvlinks_per_gpu {
            Some(w) if w.value > 0 => NodeVerdict::Unhealthy(format!(
                "no NVLinks listed by nvidia-smi; expected {} per GPU{}",
                w.value,
                cite(&w.source)
            )),
            _ => NodeVerdict::Healthy("no NVLinks (none expected)".into()),
        };
    }
    let bad: Vec<String> = gpus
        .iter()
        .filter_map(|g| {
            let p = problems(g, exp);
            (!p.is_empty()).then(|| format!("{}: {}", name(v, g), p.join("; ")))
        })
        .collect();
    if bad.is_empty() {
        let links: usize = gpus
            .iter()
            .map(|g| g.links.iter().filter(|l| l.up).count())
            .sum();
        NodeVerdict::Healthy(format!(
            "{} GPUs, {links} NVLinks up, error counters within limits",
            gpus.len()
        ))
    } else {
        NodeVerdict::Unhealthy(bad.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::nvsmi;
    use crate::suites::node_health::expect::{Count, NvlinkErrors};

    #[test]
    fn fixture_links() {
        let read = |f: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/node-health")
                    .join(f),
            )
            .unwrap()
        };
        let mut gpus = nvsmi::parse_nvlink_status(&read("nvidia-smi-nvlink-s.txt"));
        nvsmi::merge_nvlink_errors(&mut gpus, &read("nvidia-smi-nvlink-e.txt"));
        let exp = Expectations {
            nvlinks_per_gpu: Some(Count {
                value: 18,
                source: "H100 SXM5: 18 NVLink 4 links".into(),
            }),
            nvlink_errors: Some(NvlinkErrors {
                max_crc: 100,
                max_replay: 10,
                max_recovery: 0,
                source: String::new(),
            }),
            ..Expectations::default()
        };
        assert!(problems(&gpus[0], &exp).is_empty());
        assert_eq!(
            problems(&gpus[1], &exp),
            [
                "17 of 18 NVLinks up (source: H100 SXM5: 18 NVLink 4 links) (down: 5)",
                "link 2: 12 replay errors (max 10)"
            ]
        );
    }
}
