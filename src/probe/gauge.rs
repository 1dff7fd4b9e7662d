//! `aiconform probe gauge`: a Prometheus gauge whose value follows a key of a ConfigMap, so
//! whoever may edit that ConfigMap raises and lowers a custom metric of every pod at once
//! (the autoscaling case does, as a user would with `kubectl patch`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

/// Default name of the gauge (and of the custom metric an adapter serves for it).
pub const DEFAULT_METRIC: &str = "aiconform_probe_load";

/// ConfigMap key holding the value.
pub const DEFAULT_KEY: &str = "value";

/// The gauge's current value, shared by the server and the ConfigMap follower.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// Prometheus text exposition of gauge `name`.
pub fn gauge_text(name: &str, value: f64) -> String {
    format!(
        "# HELP {name} Load on this pod, as set in the ConfigMap it follows.\n\
         # TYPE {name} gauge\n\
         {name} {value}\n"
    )
}

/// The value of `key` in a ConfigMap's data: a finite number, 0 when the key is absent.
pub fn value_of(cm: &ConfigMap, key: &str) -> Result<f64, String> {
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(key)) else {
        return Ok(0.0);
    };
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("data.{key} is not a number: {text:?}")),
    }
}

/// Serve `GET /metrics` (the gauge) on `listener`; other paths answer 404.
pub async fn serve(
    name: String,
    gauge: Arc<Gauge>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (name, gauge) = (name.clone(), gauge.clone());
            async move { gauge_text(&name, gauge.get()) }
        }),
    );
    axum::serve(listener, app).await
}

/// Keep `gauge` at the value of `key` in ConfigMap `namespace/name` (watching it, retrying
/// with backoff); 0 while the ConfigMap does not exist. Malformed values and watch errors are
/// reported on stderr; the gauge keeps its last value meanwhile. Runs until cancelled.
pub async fn follow_configmap(
    client: Client,
    namespace: &str,
    name: &str,
    key: &str,
    gauge: Arc<Gauge>,
) {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
    let mut seen = false;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => {
                seen = true;
                match value_of(&cm, key) {
                    Ok(v) => gauge.set(v),
                    Err(e) => eprintln!("ConfigMap {namespace}/{name}: {e}"),
                }
            }
            Ok(watcher::Event::Delete(_)) => gauge.set(0.0),
            Ok(watcher::Event::Init) => seen = false,
            Ok(watcher::Event::InitDone) if !seen => gauge.set(0.0),
            Ok(watcher::Event::InitDone) => {}
            Err(e) => eprintln!("watching ConfigMap {namespace}/{name}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_from_a_configmap() {
        let cm = |data: serde_json::Value| -> ConfigMap {
            serde_json::from_value(json!({"metadata": {"name": "load"}, "data": data})).expect("cm")
        };
        assert_eq!(value_of(&cm(json!({"value": "20"})), "value"), Ok(20.0));
        assert_eq!(value_of(&cm(json!({"value": " 2.5\n"})), "value"), Ok(2.5));
        assert_eq!(value_of(&cm(json!({"other": "1"})), "value"), Ok(0.0));
        assert!(
            value_of(&cm(json!({"value": "high"})), "value")
                .expect_err("text")
                .contains("not a number")
        );
        assert!(value_of(&cm(json!({"value": "NaN"})), "value").is_err());
    }

    #[test]
    fn exposition_is_a_gauge() {
        let g = Gauge::default();
        assert_eq!(g.get(), 0.0);
        g.set(20.0);
        let text = gauge_text(DEFAULT_METRIC, g.get());
        assert!(
            text.contains("# TYPE aiconform_probe_load gauge\n"),
            "{text}"
        );
        assert!(text.ends_with("\naiconform_probe_load 20\n"), "{text}");
        assert!(gauge_text("m", 0.25).ends_with("\nm 0.25\n"));
    }

    #[tokio::test]
    async fn serves_the_current_value() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let g = Arc::new(Gauge::default());
        let task = tokio::spawn(serve("m".into(), g.clone(), l));
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
        assert!(get("/metrics").await.ends_with("\nm 0\n"));
        g.set(7.0);
        assert!(get("/metrics").await.ends_with("\nm 7\n"));
        assert!(get("/other").await.starts_with("HTTP/1.1 404"));
        task.abort();
    }
}
