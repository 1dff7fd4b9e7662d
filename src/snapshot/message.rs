//! The agent report as a container termination message: the kubelet copies the message
//! into the pod status when the container ends, so a report that fits reaches the collector
//! with the pod's final status and costs no API request of its own. The kubelet keeps at
//! most [`MAX_BYTES`]; a report is written as compact JSON when that fits, else gzip'd and
//! base64-encoded, else not at all (the agent then writes a ConfigMap).

use std::io::{Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::model::{AGENT_KIND, AgentReport};

/// Bytes of a container's termination message the kubelet keeps.
pub const MAX_BYTES: usize = 4096;

/// The message for a report: compact JSON, or gzip + base64 when the JSON is too long;
/// `None` when neither fits in [`MAX_BYTES`].
pub fn encode(report: &AgentReport) -> Option<String> {
    let json = serde_json::to_string(report).ok()?;
    if json.len() <= MAX_BYTES {
        return Some(json);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(json.as_bytes()).ok()?;
    let packed = BASE64.encode(gz.finish().ok()?);
    (packed.len() <= MAX_BYTES).then_some(packed)
}

/// The report in a termination message written by [`encode`].
pub fn decode(message: &str) -> Result<AgentReport, String> {
    let message = message.trim();
    if message.starts_with('{') {
        return parse_agent_output(message);
    }
    let packed = BASE64.decode(message).map_err(|_| {
        format!(
            "termination message is neither a JSON report nor a packed one: {}",
            message.chars().take(120).collect::<String>()
        )
    })?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(packed.as_slice())
        .take(16 * 1024 * 1024)
        .read_to_string(&mut json)
        .map_err(|e| format!("packed report in the termination message is not gzip'd JSON: {e}"))?;
    parse_agent_output(&json)
}

/// Find the agent's JSON report in its output (anything before the first `{` line, such as
/// runtime warnings, is skipped).
pub fn parse_agent_output(log: &str) -> Result<AgentReport, String> {
    let start = log
        .match_indices('{')
        .map(|(i, _)| i)
        .find(|i| *i == 0 || log.as_bytes().get(i - 1) == Some(&b'\n'))
        .ok_or_else(|| {
            format!(
                "no JSON report in the agent log ({} bytes){}",
                log.len(),
                log_tail(log)
            )
        })?;
    let mut stream = serde_json::Deserializer::from_str(&log[start..]).into_iter::<AgentReport>();
    let report = match stream.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(format!("agent report is not valid: {e}")),
        None => return Err("agent log is empty".into()),
    };
    if report.kind != AGENT_KIND {
        return Err(format!(
            "agent output has kind `{}`, expected `{AGENT_KIND}`; is the agent image the same aiconform version?",
            report.kind
        ));
    }
    Ok(report)
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(3).collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(
            "; last lines: {}",
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::model::{AGENT_KIND, API_VERSION, PciDevice};

    fn report(devices: usize) -> AgentReport {
        AgentReport {
            api_version: API_VERSION.into(),
            kind: AGENT_KIND.into(),
            kernel_release: Some("6.8.0".into()),
            pci_devices: (0..devices)
                .map(|i| PciDevice {
                    address: format!("0000:{:02x}:00.0", i % 256),
                    vendor_id: "0x10de".into(),
                    device_id: "0x2330".into(),
                    class: "0x030200".into(),
                })
                .collect(),
            ..AgentReport::default()
        }
    }

    #[test]
    fn small_reports_are_plain_json() {
        let r = report(8);
        let m = encode(&r).unwrap();
        assert!(m.starts_with('{') && m.len() <= MAX_BYTES, "{m}");
        assert_eq!(decode(&m).unwrap(), r);
    }

    #[test]
    fn larger_reports_are_packed_and_too_large_ones_are_refused() {
        let r = report(300);
        assert!(serde_json::to_string(&r).unwrap().len() > MAX_BYTES);
        let m = encode(&r).unwrap();
        assert!(
            !m.starts_with('{') && m.len() <= MAX_BYTES,
            "{} bytes",
            m.len()
        );
        assert_eq!(decode(&m).unwrap(), r);
        // Incompressible content beyond the limit does not fit either way.
        let mut big = report(0);
        big.notes = (0..400)
            .map(|i| format!("{:x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert_eq!(encode(&big), None);
    }

    #[test]
    fn other_messages_explain_themselves() {
        let err = decode("exec format error").unwrap_err();
        assert!(err.contains("exec format error"), "{err}");
        let err = decode(&BASE64.encode(b"not gzip")).unwrap_err();
        assert!(err.contains("not gzip'd JSON"), "{err}");
        let err = decode("{\"kind\": \"Other\", \"apiVersion\": \"x\"}").unwrap_err();
        assert!(err.contains("kind `Other`"), "{err}");
    }
}
