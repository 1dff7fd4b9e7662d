//! `aiconform probe serve --role prefill|decode`: a model server of one phase of a
//! disaggregated inference stack. Like vLLM's prefill and decode instances behind llm-d, a
//! prefill server answers each request with a KV-transfer handle (the `x-kv-transfer-handle`
//! header) it produced, and a decode server answers after receiving one; both log one line
//! per request naming its `x-request-id` and the handle, which is the evidence a case reads
//! from the pods' logs. The platform's router decides which servers a request visits.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use axum::response::IntoResponse;

use super::{REQUEST_ID, SERVED_BY};

/// The KV-transfer handle: answered by a prefill server, received by a decode server.
pub const KV_HANDLE: &str = "x-kv-transfer-handle";
/// The prefill endpoint (host:port) a router chose, on the request to the decode server.
pub const PREFILLER: &str = "x-prefiller-host-port";
/// Logged in place of an absent header value.
pub const NONE: &str = "none";

/// The phase a model server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Prefill,
    Decode,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        })
    }
}

/// One request as a phase server logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseLine {
    pub phase: Phase,
    pub request_id: String,
    /// The KV-transfer handle produced (prefill) or received (decode), if any.
    pub kv_handle: Option<String>,
}

/// A header value as one logfmt token: whitespace and `=` become `_`, absent is [`NONE`].
fn token(v: Option<&str>) -> String {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => v
            .chars()
            .map(|c| {
                if c.is_whitespace() || c == '=' {
                    '_'
                } else {
                    c
                }
            })
            .collect(),
        None => NONE.to_string(),
    }
}

/// The log line of one request: `phase=decode request_id=r-1 kv_handle=kv-p-1 prefiller=...
/// server=...`.
pub fn log_line(
    phase: Phase,
    server: &str,
    request_id: Option<&str>,
    kv_handle: Option<&str>,
    prefiller: Option<&str>,
) -> String {
    let mut line = format!(
        "phase={phase} request_id={} kv_handle={}",
        token(request_id),
        token(kv_handle)
    );
    if phase == Phase::Decode {
        line.push_str(&format!(" prefiller={}", token(prefiller)));
    }
    line.push_str(&format!(" server={}", token(Some(server))));
    line
}

/// Parse a [`log_line`] (anywhere in a log line, e.g. after a timestamp); other lines are
/// `None`.
pub fn parse_line(line: &str) -> Option<PhaseLine> {
    let mut phase = None;
    let mut request_id = None;
    let mut kv_handle = None;
    for field in line.split_whitespace() {
        match field.split_once('=') {
            Some(("phase", "prefill")) => phase = Some(Phase::Prefill),
            Some(("phase", "decode")) => phase = Some(Phase::Decode),
            Some(("request_id", v)) => request_id = Some(v.to_string()),
            Some(("kv_handle", v)) => kv_handle = Some(v.to_string()),
            _ => {}
        }
    }
    Some(PhaseLine {
        phase: phase?,
        request_id: request_id.filter(|v| v != NONE)?,
        kv_handle: kv_handle.filter(|v| v != NONE),
    })
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Serve one phase on `listener`: every request (but `/metrics`) is answered with `name`
/// (body and `x-served-by`), logged to stdout as a [`log_line`], and counted; a prefill
/// server answers with a new KV-transfer handle `kv-<name>-<n>`.
pub async fn serve(
    name: String,
    phase: Phase,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let served = Arc::new(AtomicU64::new(0));
    let counted = served.clone();
    let metrics_name = name.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let n = counted.load(Ordering::Relaxed);
                let name = metrics_name.clone();
                async move { super::metrics_text(&name, n) }
            }),
        )
        .fallback(move |headers: HeaderMap| {
            let n = served.fetch_add(1, Ordering::Relaxed) + 1;
            let name = name.clone();
            async move {
                let handle = match phase {
                    Phase::Prefill => Some(format!("kv-{name}-{n}")),
                    Phase::Decode => header(&headers, KV_HANDLE).map(str::to_string),
                };
                println!(
                    "{}",
                    log_line(
                        phase,
                        &name,
                        header(&headers, REQUEST_ID),
                        handle.as_deref(),
                        header(&headers, PREFILLER),
                    )
                );
                let mut resp = ([(SERVED_BY, name.clone())], name).into_response();
                if let (Phase::Prefill, Some(h)) = (phase, handle)
                    && let Ok(v) = h.parse()
                {
                    resp.headers_mut().insert(KV_HANDLE, v);
                }
                resp
            }
        });
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_round_trip() {
        let l = log_line(
            Phase::Decode,
            "decode-0",
            Some("ns-r0001"),
            Some("kv-p-1"),
            Some("10.0.0.1:8000"),
        );
        assert_eq!(
            l,
            "phase=decode request_id=ns-r0001 kv_handle=kv-p-1 prefiller=10.0.0.1:8000 server=decode-0"
        );
        assert_eq!(
            parse_line(&format!("2026-01-01T00:00:00Z {l}")),
            Some(PhaseLine {
                phase: Phase::Decode,
                request_id: "ns-r0001".into(),
                kv_handle: Some("kv-p-1".into())
            })
        );
        let direct = log_line(Phase::Decode, "d", Some("a b=c"), None, None);
        assert_eq!(
            direct,
            "phase=decode request_id=a_b_c kv_handle=none prefiller=none server=d"
        );
        assert_eq!(parse_line(&direct).unwrap().kv_handle, None);
        assert_eq!(
            log_line(Phase::Prefill, "p", Some("r"), Some("kv-p-1"), None),
            "phase=prefill request_id=r kv_handle=kv-p-1 server=p"
        );
        assert_eq!(parse_line("INFO: Started server process"), None);
        assert_eq!(
            parse_line("phase=prefill request_id=none kv_handle=x"),
            None
        );
    }

    #[tokio::test]
    async fn prefill_answers_a_handle() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let task = tokio::spawn(serve("p".into(), Phase::Prefill, l));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nx-request-id: r1\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        c.read_to_string(&mut out).await.expect("read");
        assert!(
            out.contains("x-kv-transfer-handle: kv-p-1") && out.contains("x-served-by: p"),
            "{out}"
        );
        task.abort();
    }
}
