//! `aiconform probe http`: send requests and tally which backend answered each one (the
//! [`SERVED_BY`] header that [`super::serve`] sets), for routing checks judged outside the pod.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

use super::SERVED_BY;

/// What the client observed: answers per backend, and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Requests sent (warm-up excluded).
    pub requests: u64,
    /// Successful answers by the backend named in [`SERVED_BY`].
    pub by_backend: BTreeMap<String, u64>,
    /// Successful answers without a [`SERVED_BY`] header.
    #[serde(default)]
    pub unidentified: u64,
    /// Requests that got no answer or a non-2xx status.
    #[serde(default)]
    pub failures: u64,
    /// The first failure, for the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// Successful answers by the value of a recorded response header (`--record-header`),
    /// e.g. an endpoint picker's decision; answers without it count under "".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_header: BTreeMap<String, u64>,
}

impl Tally {
    /// Answers that named a backend.
    pub fn answered(&self) -> u64 {
        self.by_backend.values().sum()
    }

    /// Record one response (or transport error).
    pub fn record(&mut self, result: Result<(u16, Option<String>), String>) {
        self.record_with(result.map(|(s, b)| (s, b, None)));
    }

    /// Record one response with the value of the recorded header, if one is recorded.
    pub fn record_with(&mut self, result: Result<(u16, Option<String>, Option<String>), String>) {
        self.requests += 1;
        match result {
            Ok((status, served_by, header)) if (200..300).contains(&status) => {
                if let Some(h) = header {
                    *self.by_header.entry(h).or_default() += 1;
                }
                match served_by {
                    Some(name) => *self.by_backend.entry(name).or_default() += 1,
                    None => self.unidentified += 1,
                }
            }
            Ok((status, _, _)) => self.fail(format!("HTTP {status}")),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, why: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(why);
    }

    /// `stable=160 canary=40` (sorted by backend name).
    pub fn summary(&self) -> String {
        if self.by_backend.is_empty() {
            return "no backend answered".to_string();
        }
        self.by_backend
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Model-server load in vLLM's metric names (`vllm:num_requests_waiting`,
/// `vllm:kv_cache_usage_perc`), which inference endpoint pickers read.
pub fn model_load_metrics(name: &str, waiting: u64, kv_cache: f64) -> String {
    format!(
        "# HELP vllm:num_requests_waiting Requests waiting to be processed.\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{model_name=\"{name}\"}} {waiting}\n\
         # HELP vllm:kv_cache_usage_perc KV-cache usage (1 = full).\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{model_name=\"{name}\"}} {kv_cache}\n"
    )
}

/// A `NAME: VALUE` request header from the command line.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("header {s:?} must look like `NAME: VALUE`"))?;
    let name = name.trim();
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("header {s:?}: {name:?} is not a valid header name"))?;
    Ok((name.to_string(), value.trim().to_string()))
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn exchange(
    client: &HttpClient,
    uri: &http::Uri,
    headers: &[(String, String)],
    record: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, Option<String>, Option<String>), String> {
    let mut req = match body {
        Some(_) => {
            http::Request::post(uri.clone()).header(http::header::CONTENT_TYPE, "application/json")
        }
        None => http::Request::get(uri.clone()),
    };
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let payload = Bytes::from(body.unwrap_or_default().to_string());
    let req = req.body(Full::new(payload)).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "no answer within 10s".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let served_by = resp
        .headers()
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let recorded = record.map(|h| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    });
    // Drain the body so the connection is reused.
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    if !(200..300).contains(&status) {
        let text: String = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(200)
            .collect();
        return Err(format!("HTTP {status}: {text}"));
    }
    Ok((status, served_by, recorded))
}

/// Send `count` GET requests to `url` one after another and tally the answers. Before
/// counting, retry one request until it succeeds or `warmup` passes (a route that is being
/// programmed); a warm-up that never succeeds is the first failure of the tally.
pub async fn send(
    url: &str,
    count: u64,
    headers: &[(String, String)],
    record: Option<&str>,
    warmup: Duration,
) -> Result<Tally, String> {
    send_with_ids(url, count, headers, record, warmup, None, None).await
}

/// The `x-request-id` of request `i` (`None`: the warm-up) with [`send_with_ids`].
pub fn request_id(prefix: &str, i: Option<u64>) -> String {
    match i {
        Some(i) => format!("{prefix}-{i:04}"),
        None => format!("{prefix}-warmup"),
    }
}

/// [`send`], each request carrying a distinct `x-request-id` ([`request_id`]) when
/// `id_prefix` is given, and POSTing `body` (JSON) instead of a GET when it is given.
pub async fn send_with_ids(
    url: &str,
    count: u64,
    headers: &[(String, String)],
    record: Option<&str>,
    warmup: Duration,
    id_prefix: Option<&str>,
    body: Option<&str>,
) -> Result<Tally, String> {
    let with_id = |i: Option<u64>| {
        let mut h = headers.to_vec();
        if let Some(p) = id_prefix {
            h.push((super::REQUEST_ID.to_string(), request_id(p, i)));
        }
        h
    };
    let uri: http::Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("--url {url:?} must be an http:// URL with a host"));
    }
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let until = tokio::time::Instant::now() + warmup;
    loop {
        let last = match exchange(&client, &uri, &with_id(None), record, body).await {
            Ok((s, _, _)) if (200..300).contains(&s) => break,
            Ok((s, _, _)) => format!("HTTP {s}"),
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= until {
            let mut t = Tally::default();
            t.fail(format!(
                "warm-up: no successful answer within {}s ({last})",
                warmup.as_secs()
            ));
            return Ok(t);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut tally = Tally::default();
    for i in 0..count {
        tally.record_with(exchange(&client, &uri, &with_id(Some(i)), record, body).await);
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_backends_and_failures() {
        let mut t = Tally::default();
        t.record(Ok((200, Some("a".into()))));
        t.record(Ok((200, Some("b".into()))));
        t.record(Ok((204, Some("a".into()))));
        t.record(Ok((200, None)));
        t.record(Ok((503, Some("a".into()))));
        t.record(Err("connection refused".into()));
        assert_eq!(t.requests, 6);
        assert_eq!(t.answered(), 3);
        assert_eq!(t.summary(), "a=2 b=1");
        assert_eq!((t.unidentified, t.failures), (1, 2));
        assert_eq!(t.first_failure.as_deref(), Some("HTTP 503"));
        let json = serde_json::to_string(&t).expect("json");
        assert_eq!(
            json,
            r#"{"requests":6,"byBackend":{"a":2,"b":1},"unidentified":1,"failures":2,"firstFailure":"HTTP 503"}"#
        );
        assert_eq!(serde_json::from_str::<Tally>(&json).expect("parse"), t);
    }

    #[test]
    fn model_load_is_exposed_in_vllm_names() {
        let m = model_load_metrics("idle", 0, 0.1);
        assert!(
            m.contains("vllm:num_requests_waiting{model_name=\"idle\"} 0\n"),
            "{m}"
        );
        assert!(
            m.contains("vllm:kv_cache_usage_perc{model_name=\"idle\"} 0.1\n"),
            "{m}"
        );
    }

    #[test]
    fn headers_parse() {
        assert_eq!(
            parse_header("X-Gateway-Model-Name:  canary "),
            Ok(("X-Gateway-Model-Name".into(), "canary".into()))
        );
        assert!(parse_header("no-colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[tokio::test]
    async fn send_tallies_a_served_backend() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = tokio::spawn(super::super::serve("a".into(), l));
        let t = send(
            &format!("http://{addr}/v1/completions"),
            5,
            &[("x-test".into(), "1".into())],
            Some(SERVED_BY),
            Duration::from_secs(5),
        )
        .await
        .expect("send");
        assert_eq!(t.summary(), "a=5");
        assert_eq!((t.requests, t.failures), (5, 0));
        assert_eq!(t.by_header, [("a".to_string(), 5)].into());
        server.abort();
        assert!(send("ftp://x", 1, &[], None, Duration::ZERO).await.is_err());
    }

    #[tokio::test]
    async fn ids_and_bodies_reach_the_server() {
        use axum::http::{HeaderMap, Method};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let app =
            axum::Router::new().fallback(|m: Method, h: HeaderMap, body: String| async move {
                let id = h
                    .get(super::super::REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                ([(SERVED_BY, format!("{m} {body} {id}"))], "ok")
            });
        let server = tokio::spawn(async move { axum::serve(l, app).await });
        let url = format!("http://{addr}/v1/completions");
        let t = send_with_ids(
            &url,
            2,
            &[],
            None,
            Duration::from_secs(5),
            Some("r"),
            Some("{}"),
        )
        .await
        .expect("send");
        assert_eq!(t.summary(), "POST {} r-0000=1 POST {} r-0001=1");
        let t = send_with_ids(&url, 1, &[], None, Duration::from_secs(5), None, None)
            .await
            .expect("send");
        assert_eq!(t.summary(), "GET  -=1");
        server.abort();
    }

    #[tokio::test]
    async fn failed_warmup_is_reported() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let t = send(&format!("http://{addr}/"), 3, &[], None, Duration::ZERO)
            .await
            .expect("send");
        assert_eq!((t.requests, t.failures), (0, 1));
        assert!(
            t.first_failure
                .as_deref()
                .is_some_and(|f| f.starts_with("warm-up")),
            "{t:?}"
        );
    }
}
