//! What conformance workloads run inside their containers (`aiconform probe ...`): small,
//! deterministic programs whose exit code and termination message are the evidence a case
//! judges from outside the container.

pub mod gauge;
pub mod net;
pub mod phase;
pub mod sandbox;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Image that carries the probe; cases use it unless `params.probeImage` says otherwise.
pub const DEFAULT_PROBE_IMAGE: &str =
    concat!("ghcr.io/aiconform/aiconform:v", env!("CARGO_PKG_VERSION"));

/// Request header identifying a request on every hop.
pub const REQUEST_ID: &str = "x-request-id";
/// Response header naming the backend that served a request.
pub const SERVED_BY: &str = "x-served-by";

/// Environment variable naming a directory the device probe treats as `/` (for a node
/// agent that mounts the host at another path). Only a path prefix, never a device list.
pub const ROOT_ENV: &str = "AICONFORM_PROBE_ROOT";

/// Kubernetes' default `terminationMessagePath`.
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// Accelerator devices visible to this process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    /// `/dev/nvidia<N>` device nodes, sorted.
    #[serde(default)]
    pub devices: Vec<String>,
    /// `NVIDIA_VISIBLE_DEVICES` as the container runtime set it, if at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visible_devices: Option<String>,
}

/// True for `nvidia<digits>`: a GPU device node (not nvidiactl, nvidia-uvm, ...).
pub fn is_gpu_device_name(name: &str) -> bool {
    name.strip_prefix("nvidia")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The GPU device nodes under `<root>/dev`.
pub fn gpu_devices(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(root.join("dev"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_gpu_device_name(n))
        .map(|n| format!("/dev/{n}"))
        .collect();
    out.sort();
    out
}

/// What this process can see, under `root`.
pub fn device_view(root: &Path, visible_devices: Option<String>) -> DeviceView {
    DeviceView {
        devices: gpu_devices(root),
        visible_devices,
    }
}

/// Whether a view matches an expected device count: `None` means "at least one".
pub fn view_matches(view: &DeviceView, expect: Option<usize>) -> bool {
    match expect {
        Some(n) => view.devices.len() == n,
        None => !view.devices.is_empty(),
    }
}

/// The NVIDIA kernel driver of the node this process runs on, as the driver reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverView {
    /// `550.127.05`; absent when no NVIDIA driver is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// The file it was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The version in the driver's `/proc/driver/nvidia/version` text
/// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.127.05  Tue Oct ...`).
pub fn nvrm_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let rest = &line[line.find("Kernel Module")? + "Kernel Module".len()..];
    rest.split_whitespace()
        .next()
        .filter(|v| {
            v.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// The loaded driver under `root`: `/sys/module/nvidia/version`, else the NVRM line of
/// `/proc/driver/nvidia/version`.
pub fn driver_view(root: &Path) -> DriverView {
    let sys = "sys/module/nvidia/version";
    if let Ok(v) = std::fs::read_to_string(root.join(sys)) {
        let v = v.trim();
        if !v.is_empty() {
            return DriverView {
                driver_version: Some(v.to_string()),
                source: Some(format!("/{sys}")),
            };
        }
    }
    let proc = "proc/driver/nvidia/version";
    match std::fs::read_to_string(root.join(proc))
        .ok()
        .as_deref()
        .and_then(nvrm_version)
    {
        Some(v) => DriverView {
            driver_version: Some(v),
            source: Some(format!("/{proc}")),
        },
        None => DriverView::default(),
    }
}

/// The root the device probe looks under: [`ROOT_ENV`] or `/`.
pub fn probe_root() -> PathBuf {
    std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Write the termination message; a missing directory (not in a container) is not an error.
pub fn write_termination_message(path: &Path, text: &str) -> std::io::Result<()> {
    match std::fs::write(path, text) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Sleep, for workloads that only need to run for a while and then succeed.
pub async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Requests served so far, by the [`serve`] endpoint.
#[derive(Debug, Default)]
pub struct Served {
    count: std::sync::atomic::AtomicU64,
}

/// Prometheus text exposition of the request counter.
pub fn metrics_text(name: &str, count: u64) -> String {
    format!(
        "# HELP aiconform_probe_requests_total Requests answered by this probe.\n\
         # TYPE aiconform_probe_requests_total counter\n\
         aiconform_probe_requests_total{{backend=\"{name}\"}} {count}\n"
    )
}

/// Answer every request with `name` (body and `x-served-by` header) and count it; `/metrics`
/// exposes the count. For routing checks: which backend a request reached is visible outside.
pub async fn serve(name: String, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_with_metrics(name, listener, String::new()).await
}

/// [`serve`], with `extra` appended to the `/metrics` exposition (e.g.
/// [`traffic::model_load_metrics`]).
pub async fn serve_with_metrics(
    name: String,
    listener: tokio::net::TcpListener,
    extra: String,
) -> std::io::Result<()> {
    use axum::response::IntoResponse;
    let state = std::sync::Arc::new((name, Served::default()));
    let metrics_state = state.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let s = metrics_state.clone();
                let extra = extra.clone();
                async move {
                    metrics_text(&s.0, s.1.count.load(std::sync::atomic::Ordering::Relaxed))
                        + &extra
                }
            }),
        )
        .fallback(move || {
            let s = state.clone();
            async move {
                s.1.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ([("x-served-by", s.0.clone())], s.0.clone()).into_response()
            }
        });
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serve_answers_with_its_name_and_counts() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let task = tokio::spawn(serve("b".into(), l));
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
            c.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .expect("write");
            let mut out = String::new();
            c.read_to_string(&mut out).await.expect("read");
            out
        };
        let first = get("/v1/completions").await;
        assert!(
            first.contains("x-served-by: b") && first.ends_with("b"),
            "{first}"
        );
        get("/").await;
        let m = get("/metrics").await;
        assert!(
            m.contains("aiconform_probe_requests_total{backend=\"b\"} 2"),
            "{m}"
        );
        task.abort();
    }

    #[test]
    fn driver_version_from_sysfs_or_nvrm_line() {
        assert_eq!(
            nvrm_version("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.127.05  Tue Oct  8 03:22:07 UTC 2024\nGCC version: gcc 12\n")
                .as_deref(),
            Some("550.127.05")
        );
        assert_eq!(nvrm_version("NVRM version: garbage"), None);
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(driver_view(dir.path()), DriverView::default());
        std::fs::create_dir_all(dir.path().join("proc/driver/nvidia")).expect("dir");
        std::fs::write(
            dir.path().join("proc/driver/nvidia/version"),
            "NVRM version: NVIDIA UNIX Open Kernel Module  570.195.03  (x)\n",
        )
        .expect("write");
        assert_eq!(
            driver_view(dir.path()).driver_version.as_deref(),
            Some("570.195.03")
        );
        std::fs::create_dir_all(dir.path().join("sys/module/nvidia")).expect("dir");
        std::fs::write(dir.path().join("sys/module/nvidia/version"), "570.195.03\n")
            .expect("write");
        let v = driver_view(dir.path());
        assert_eq!(v.source.as_deref(), Some("/sys/module/nvidia/version"));
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            r#"{"driverVersion":"570.195.03","source":"/sys/module/nvidia/version"}"#
        );
    }

    #[test]
    fn gpu_device_names() {
        assert!(is_gpu_device_name("nvidia0"));
        assert!(is_gpu_device_name("nvidia17"));
        assert!(!is_gpu_device_name("nvidia"));
        assert!(!is_gpu_device_name("nvidiactl"));
        assert!(!is_gpu_device_name("nvidia-uvm"));
        assert!(!is_gpu_device_name("nvidia0a"));
    }

    #[test]
    fn devices_under_a_root() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("dev")).expect("dev");
        for n in ["nvidia1", "nvidia0", "nvidiactl", "null"] {
            std::fs::write(dir.path().join("dev").join(n), "").expect("file");
        }
        let v = device_view(dir.path(), Some("GPU-1".into()));
        assert_eq!(v.devices, vec!["/dev/nvidia0", "/dev/nvidia1"]);
        assert!(view_matches(&v, Some(2)));
        assert!(view_matches(&v, None));
        assert!(!view_matches(&v, Some(0)));
        let empty = device_view(&dir.path().join("nowhere"), None);
        assert!(empty.devices.is_empty());
        assert!(view_matches(&empty, Some(0)));
        assert!(!view_matches(&empty, None));
        assert_eq!(
            serde_json::to_string(&v).expect("json"),
            r#"{"devices":["/dev/nvidia0","/dev/nvidia1"],"visibleDevices":"GPU-1"}"#
        );
    }
}
