//! Thermals: active clock event (throttle) reasons that mark a throttled GPU (hardware or
//! software thermal slowdown, power brake, hardware slowdown) and temperatures at or above
//! the GPU's own slowdown threshold less the suite's margin.

use super::expect::{Expectations, cite};
use super::{NodeVerdict, NodeView, listed_gpus, per_device};
use crate::snapshot::health::GpuHealth;

/// The problems of one GPU.
pub fn problems(g: &GpuHealth, exp: &Expectations) -> Vec<String> {
    let Some(t) = &exp.thermal else {
        return Vec::new();
    };
    let mut p = Vec::new();
    let active: Vec<&str> = g
        .clock_events
        .iter()
        .filter(|r| t.reasons.iter().any(|w| w == *r))
        .map(String::as_str)
        .collect();
    if !active.is_empty() {
        p.push(format!("clocks throttled: {}", active.join(", ")));
    }
    if let (Some(temp), Some(slow)) = (g.temperature_c, g.slowdown_temperature_c) {
        let limit = slow.saturating_sub(t.margin_below_slowdown_c);
        if temp >= limit {
            p.push(format!("{temp} C (limit {limit} C: slowdown at {slow} C)"));
        }
    }
    if !p.is_empty() && !t.source.is_empty() {
        p.push(cite(&t.source).trim().to_string());
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
            let hottest = gpus.iter().filter_map(|g| g.temperature_c).max();
            format!(
                "{} GPUs not throttled{}",
                gpus.len(),
                hottest
                    .map(|t| format!(", hottest {t} C"))
                    .unwrap_or_default()
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::node_health::expect::Thermal;

    #[test]
    fn reasons_and_temperature() {
        let exp = Expectations {
            thermal: Some(Thermal {
                reasons: vec![
                    "hw_thermal_slowdown".into(),
                    "hw_power_brake_slowdown".into(),
                ],
                margin_below_slowdown_c: 5,
                source: "NVML clock event reasons".into(),
            }),
            ..Expectations::default()
        };
        let cool = GpuHealth {
            temperature_c: Some(40),
            slowdown_temperature_c: Some(92),
            clock_events: vec!["gpu_idle".into()],
            ..GpuHealth::default()
        };
        assert!(problems(&cool, &exp).is_empty());
        let hot = GpuHealth {
            temperature_c: Some(88),
            clock_events: vec!["hw_slowdown".into(), "hw_thermal_slowdown".into()],
            ..cool
        };
        assert_eq!(
            problems(&hot, &exp),
            [
                "clocks throttled: hw_thermal_slowdown",
                "88 C (limit 87 C: slowdown at 92 C)",
                "(source: NVML clock event reasons)"
            ]
        );
    }
}
