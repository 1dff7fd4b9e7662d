//! Xid and SXid events in the kernel log, classified by the suite's Xid classes (fatal:
//! the GPU needs a reset or replacement; degraded: it runs with reduced reliability) and
//! named by the GPU they report. Other Xids (13, 31, 43: application faults) are listed but
//! do not fail a node. SXids (NVSwitch) classify themselves: `Fatal` or `Non-fatal`.

use super::expect::{Expectations, cite};
use super::{NodeVerdict, NodeView, gpu_name};
use crate::snapshot::health::{XidEvent, XidSource};

/// How bad an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Informational,
    Degraded,
    Fatal,
}

/// Classify one event.
pub fn classify(e: &XidEvent, exp: &Expectations) -> Severity {
    match e.source {
        XidSource::SXid => {
            let d = e.detail.trim_start().to_ascii_lowercase();
            if d.starts_with("fatal") {
                Severity::Fatal
            } else if d.starts_with("non-fatal") {
                Severity::Degraded
            } else {
                Severity::Informational
            }
        }
        XidSource::Xid => match &exp.xid {
            Some(c) if c.fatal.contains(&e.code) => Severity::Fatal,
            Some(c) if c.degraded.contains(&e.code) => Severity::Degraded,
            _ => Severity::Informational,
        },
    }
}

pub fn check(v: &NodeView<'_>, exp: &Expectations) -> NodeVerdict {
    let log = match v.health.kernel_log.observed() {
        Ok(l) => l,
        Err(reason) => return NodeVerdict::NotObserved(reason.to_string()),
    };
    let window = match exp.xid_window_seconds() {
        Ok(w) => w,
        Err(e) => return NodeVerdict::Unhealthy(e),
    };
    let since = match (window, log.uptime_seconds) {
        (Some(w), Some(up)) => Some(up - w),
        _ => None,
    };
    let source = exp
        .xid
        .as_ref()
        .map(|c| cite(&c.source))
        .unwrap_or_default();
    let mut bad = Vec::new();
    let mut other = Vec::new();
    for e in &log.events {
        if let (Some(since), Some(at)) = (since, e.at_seconds)
            && at < since
        {
            continue;
        }
        let what = match e.source {
            XidSource::Xid => format!(
                "Xid {} on {}: {}",
                e.code,
                gpu_name(v.report, v.health, &e.pci),
                e.detail
            ),
            XidSource::SXid => format!("SXid {} on NVSwitch {}: {}", e.code, e.pci, e.detail),
        };
        match classify(e, exp) {
            Severity::Fatal => bad.push(format!("fatal {what}")),
            Severity::Degraded => bad.push(format!("degraded {what}")),
            Severity::Informational => other.push(format!("Xid {}", e.code)),
        }
    }
    let scope = match window {
        Some(_) => format!("within {}", exp.xid_window.as_deref().unwrap_or_default()),
        None => "since boot".to_string(),
    };
    if !bad.is_empty() {
        return NodeVerdict::Unhealthy(format!("{}{source}", bad.join("; ")));
    }
    if other.is_empty() {
        NodeVerdict::Healthy(format!("no Xid/SXid events {scope}"))
    } else {
        NodeVerdict::Healthy(format!(
            "no fatal or degrading Xid {scope} (application-level: {})",
            other.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::health::{HealthReadings, KernelLog, kmsg};
    use crate::suites::node_health::expect::XidClasses;
    use crate::suites::node_health::testing::{node, observed};

    fn exp() -> Expectations {
        Expectations {
            xid: Some(XidClasses {
                fatal: vec![48, 64, 74, 79, 95],
                degraded: vec![63, 92, 94],
                source: "NVIDIA Xid catalog".into(),
            }),
            ..Expectations::default()
        }
    }

    fn run(lines: &str, exp: &Expectations) -> NodeVerdict {
        let health = HealthReadings {
            kernel_log: observed(KernelLog {
                uptime_seconds: Some(6000.0),
                events: kmsg::parse(lines),
            }),
            ..HealthReadings::default()
        };
        let n = node("gpu-1", 8, health);
        let report = n.agent.report().unwrap();
        check(
            &NodeView {
                node: &n,
                report,
                health: report.health.as_deref().unwrap(),
                peers: &[],
            },
            exp,
        )
    }

    #[test]
    fn classifies_and_names_the_gpu() {
        let v = run(
            "3,1,5678901234,-;NVRM: Xid (PCI:0000:1b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n",
            &exp(),
        );
        let NodeVerdict::Unhealthy(m) = v else {
            panic!("{v:?}")
        };
        assert!(
            m.starts_with("fatal Xid 79 on GPU 3 (0000:1b:00.0): pid="),
            "{m}"
        );
        assert!(m.ends_with("(source: NVIDIA Xid catalog)"), "{m}");

        let v = run(
            "4,1,1,-;NVRM: Xid (PCI:0000:18:00): 94, pid=1, Contained ECC error\n",
            &exp(),
        );
        assert!(
            matches!(&v, NodeVerdict::Unhealthy(m) if m.starts_with("degraded Xid 94 on GPU 0")),
            "{v:?}"
        );

        let v = run(
            "4,1,1,-;NVRM: Xid (PCI:0000:18:00): 13, pid=1, Graphics Exception\n",
            &exp(),
        );
        assert_eq!(
            v,
            NodeVerdict::Healthy(
                "no fatal or degrading Xid since boot (application-level: Xid 13)".into()
            )
        );

        let v = run(
            "4,1,1,-;nvidia-nvswitch0: SXid (PCI:0000:07:00.0): 20034, Fatal, Link 30 LTSSM Fault Up\n",
            &exp(),
        );
        assert!(
            matches!(&v, NodeVerdict::Unhealthy(m) if m.starts_with("fatal SXid 20034 on NVSwitch 0000:07:00.0")),
            "{v:?}"
        );

        assert_eq!(
            run("", &exp()),
            NodeVerdict::Healthy("no Xid/SXid events since boot".into())
        );
    }

    #[test]
    fn window_and_unreadable_log() {
        let mut e = exp();
        e.xid_window = Some("1h".into());
        // At 1000 s of 6000 s uptime: outside the last hour.
        let v = run("3,1,1000000000,-;NVRM: Xid (PCI:0000:18:00): 79, x\n", &e);
        assert_eq!(
            v,
            NodeVerdict::Healthy("no Xid/SXid events within 1h".into())
        );
        let n = node("gpu-1", 8, HealthReadings::default());
        let report = n.agent.report().unwrap();
        let v = check(
            &NodeView {
                node: &n,
                report,
                health: report.health.as_deref().unwrap(),
                peers: &[],
            },
            &e,
        );
        assert_eq!(v, NodeVerdict::NotObserved("not collected".into()));
    }
}
