//! Xid and SXid events from the kernel log. The NVIDIA driver logs GPU faults as
//! `NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the
//! bus.` and NVSwitch faults as `nvidia-nvswitch0: SXid (PCI:0000:07:00.0): 12028, Non-fatal,
//! ...`. Records come from `/dev/kmsg` (`PRIO,SEQ,USEC,FLAGS;TEXT`) or `dmesg` output
//! (`[ 5678.901234] TEXT`); both carry the time since boot.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Which driver reported the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum XidSource {
    /// A GPU (`NVRM: Xid`).
    Xid,
    /// An NVSwitch (`SXid`).
    SXid,
}

/// One Xid/SXid line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XidEvent {
    pub source: XidSource,
    pub code: u32,
    /// The PCI address as logged (`0000:18:00` for GPUs, `0000:07:00.0` for NVSwitches).
    pub pci: String,
    /// Seconds since boot, when the record carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_seconds: Option<f64>,
    /// The rest of the line after the code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Eq for XidEvent {}

/// The kernel log's Xid/SXid events and the node's uptime (to apply a window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<f64>,
    #[serde(default)]
    pub events: Vec<XidEvent>,
}

impl Eq for KernelLog {}

/// Longest detail kept per event.
const MAX_DETAIL: usize = 160;
/// Events kept per log (the first ones of each code and address are the informative ones).
const MAX_EVENTS: usize = 64;

/// `/proc/uptime` → seconds since boot.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Split a record into (seconds since boot, message).
fn split_record(line: &str) -> (Option<f64>, &str) {
    // /dev/kmsg: "6,1234,5678901234,-;message" (usec since boot).
    if let Some((head, msg)) = line.split_once(';') {
        let fields: Vec<&str> = head.split(',').collect();
        if fields.len() >= 3
            && fields[..3]
                .iter()
                .all(|f| f.chars().all(|c| c.is_ascii_digit()))
        {
            let usec: Option<f64> = fields[2].parse().ok();
            return (usec.map(|u| u / 1e6), msg);
        }
    }
    // dmesg: "[ 5678.901234] message".
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[')
        && let Some((ts, msg)) = rest.split_once(']')
    {
        return (ts.trim().parse().ok(), msg.trim_start());
    }
    (None, line)
}

/// Parse one line; `None` when it is not an Xid/SXid report.
pub fn parse_line(line: &str) -> Option<XidEvent> {
    let (at_seconds, msg) = split_record(line);
    let (source, rest) = if let Some(i) = msg.find("NVRM: Xid (") {
        (XidSource::Xid, &msg[i + "NVRM: Xid (".len()..])
    } else if let Some(i) = msg.find("SXid (") {
        (XidSource::SXid, &msg[i + "SXid (".len()..])
    } else {
        return None;
    };
    let (pci, rest) = rest.split_once("):")?;
    let pci = pci.trim().strip_prefix("PCI:").unwrap_or(pci.trim());
    let rest = rest.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let code = digits.parse().ok()?;
    let detail = rest[digits.len()..]
        .trim_start_matches([',', ' '])
        .chars()
        .take(MAX_DETAIL)
        .collect();
    Some(XidEvent {
        source,
        code,
        pci: pci.to_lowercase(),
        at_seconds,
        detail,
    })
}

/// Every Xid/SXid event of a log, in order, at most [`MAX_EVENTS`].
pub fn parse(text: &str) -> Vec<XidEvent> {
    text.lines()
        .filter_map(parse_line)
        .take(MAX_EVENTS)
        .collect()
}

/// Read the kernel log. `/dev/kmsg` returns one record per read and blocks at the end, so
/// it is opened non-blocking and read until it has no more; a regular file is read whole.
pub fn read(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => format!(
                "cannot read the kernel log {}: {e} (reading it needs CAP_SYSLOG when kernel.dmesg_restrict=1)",
                path.display()
            ),
            _ => format!("cannot read the kernel log {}: {e}", path.display()),
        })?;
    let mut out = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten while reading; the next read continues.
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "cannot read the kernel log {}: {e}",
                    path.display()
                ));
            }
        }
        if out.len() > 64 * 1024 * 1024 {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmsg_and_dmesg_lines() {
        let e = parse_line("3,2211,5678901234,-;NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.").unwrap();
        assert_eq!(e.source, XidSource::Xid);
        assert_eq!(e.code, 79);
        assert_eq!(e.pci, "0000:18:00");
        assert_eq!(e.at_seconds, Some(5678.901234));
        assert!(e.detail.starts_with("pid='<unknown>'"), "{}", e.detail);

        let e = parse_line("[ 1234.500000] NVRM: Xid (PCI:0000:9A:00): 48, pid=2202, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.").unwrap();
        assert_eq!(
            (e.code, e.pci.as_str(), e.at_seconds),
            (48, "0000:9a:00", Some(1234.5))
        );

        let e = parse_line("4,99,100,-;nvidia-nvswitch3: SXid (PCI:0000:07:00.0): 12028, Non-fatal, Link 32 egress non-posted PRIV error (First)").unwrap();
        assert_eq!(e.source, XidSource::SXid);
        assert_eq!((e.code, e.pci.as_str()), (12028, "0000:07:00.0"));

        assert!(
            parse_line("6,1,2,-;nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver")
                .is_none()
        );
        assert!(parse_line("NVRM: Xid (PCI:0000:18:00): garbage").is_none());
    }

    #[test]
    fn fixture_log() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node-health/kmsg.txt"),
        )
        .unwrap();
        let events = parse(&text);
        let codes: Vec<u32> = events.iter().map(|e| e.code).collect();
        assert_eq!(codes, [13, 79, 12028], "{events:?}");
        assert_eq!(parse_uptime("35000.12 120000.00\n"), Some(35000.12));
    }

    #[test]
    fn reads_a_file_and_explains_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kmsg");
        std::fs::write(&p, "6,1,2,-;hello\n").unwrap();
        assert_eq!(read(&p).unwrap(), "6,1,2,-;hello\n");
        let err = read(&dir.path().join("nope")).unwrap_err();
        assert!(err.contains("cannot read the kernel log"), "{err}");
    }
}
