//! What a case changed on the cluster: every create, update, patch and delete it sent
//! through its client, with the API server's answer. The runner hands each case a client
//! that records these, so evidence lists the objects a case created without the case
//! having to report them.

use std::sync::{Arc, Mutex};

use http::{Method, Request};
use kube::client::Body;
use serde::{Deserialize, Serialize};

/// Most writes kept per case; later ones are counted, not listed.
pub const MAX_WRITES: usize = 200;

/// One write request and the status the API server answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiWrite {
    /// `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The request path, e.g. `/apis/apps/v1/namespaces/ns/deployments`.
    pub path: String,
    /// The object's name for creates (`metadata.name` or `generateName` of the body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// HTTP status; 0 when no answer came.
    pub status: u16,
}

impl std::fmt::Display for ApiWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.path)?;
        if let Some(n) = &self.name {
            write!(f, " ({n})")?;
        }
        match self.status {
            0 => write!(f, " -> no answer"),
            s => write!(f, " -> {s}"),
        }
    }
}

/// The writes recorded for one case.
#[derive(Debug, Clone, Default)]
pub struct AuditLog {
    inner: Arc<Mutex<(Vec<ApiWrite>, usize)>>,
}

impl AuditLog {
    fn push(&self, w: ApiWrite) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.len() < MAX_WRITES {
            g.0.push(w);
        } else {
            g.1 += 1;
        }
    }

    /// The writes kept, and how many more were left out.
    pub fn take(&self) -> (Vec<ApiWrite>, usize) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (std::mem::take(&mut g.0), std::mem::take(&mut g.1))
    }
}

fn verb(m: &Method) -> Option<&'static str> {
    match *m {
        Method::POST => Some("create"),
        Method::PUT => Some("update"),
        Method::PATCH => Some("patch"),
        Method::DELETE => Some("delete"),
        _ => None,
    }
}

/// `metadata.name` (or `generateName`) of a JSON request body.
fn body_name(body: &Body) -> Option<String> {
    let bytes = body.try_clone()?;
    let bytes = futures::executor::block_on(bytes.collect_bytes()).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let meta = v.get("metadata")?;
    meta.get("name")
        .or_else(|| meta.get("generateName"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
}

/// A client that sends through `client` and records its writes in `log`. Must be called
/// inside a tokio runtime.
pub fn audited(client: kube::Client, log: AuditLog) -> kube::Client {
    let default_ns = client.default_namespace().to_string();
    let svc = tower::service_fn(move |req: Request<Body>| {
        let client = client.clone();
        let log = log.clone();
        async move {
            let write = verb(req.method()).map(|v| ApiWrite {
                verb: v.to_string(),
                path: req.uri().path().to_string(),
                name: (*req.method() == Method::POST)
                    .then(|| body_name(req.body()))
                    .flatten(),
                status: 0,
            });
            let res = client.send(req).await;
            if let Some(mut w) = write {
                w.status = res.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                log.push(w);
            }
            res
        }
    });
    kube::Client::new(svc, default_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_body() {
        let b = Body::from(br#"{"metadata":{"name":"gang-a"}}"#.to_vec());
        assert_eq!(body_name(&b).as_deref(), Some("gang-a"));
        let b = Body::from(br#"{"metadata":{"generateName":"probe-"}}"#.to_vec());
        assert_eq!(body_name(&b).as_deref(), Some("probe-"));
        assert_eq!(body_name(&Body::empty()), None);
        let w = ApiWrite {
            verb: "create".into(),
            path: "/api/v1/namespaces/x/pods".into(),
            name: Some("p".into()),
            status: 201,
        };
        assert_eq!(w.to_string(), "create /api/v1/namespaces/x/pods (p) -> 201");
    }

    #[test]
    fn the_log_is_bounded() {
        let log = AuditLog::default();
        for i in 0..(MAX_WRITES + 5) {
            log.push(ApiWrite {
                verb: "delete".into(),
                path: format!("/p/{i}"),
                name: None,
                status: 200,
            });
        }
        let (kept, more) = log.take();
        assert_eq!((kept.len(), more), (MAX_WRITES, 5));
    }
}
