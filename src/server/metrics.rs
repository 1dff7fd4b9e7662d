//! Prometheus metrics in the text exposition format (version 0.0.4).
//!
//! Written here rather than pulled in: the format is a few lines of text, and the maintained
//! crates (`prometheus`, `metrics-exporter-prometheus`) bring their own registries, protobuf
//! or HTTP listeners that this server does not need. Labels are bounded: `route` is the
//! matched route template (or `unmatched`), `method` one of the standard methods (or `OTHER`),
//! `status` a status code; so the series count cannot grow with client input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Non-cumulative counts per bucket; the cumulative form is computed when rendering.
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// (method, route, status) -> count
    requests: BTreeMap<(&'static str, String, u16), u64>,
    /// route -> latency histogram
    latency: BTreeMap<String, Histogram>,
}

/// Request counters and latency histograms, shared by all connections.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    in_flight: AtomicI64,
}

/// Methods get a fixed label so arbitrary method tokens cannot create new series.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// Decrements the in-flight gauge when a request ends, even if its future is dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            // A panic while holding the lock cannot leave the maps inconsistent
            // (each update is a single insert), so keep counting.
            Err(poisoned) => poisoned.into_inner(),
        };
        *inner
            .requests
            .entry((method_label(method), route.to_string(), status))
            .or_default() += 1;
        inner
            .latency
            .entry(route.to_string())
            .or_default()
            .observe(elapsed.as_secs_f64());
    }

    /// Render every metric, sorted, with `gauges` (name, help, value) appended.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = String::new();
        out.push_str("# HELP aiconform_http_requests_total HTTP requests answered, by method, route template and status.\n");
        out.push_str("# TYPE aiconform_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "aiconform_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP aiconform_http_request_duration_seconds Time to answer an HTTP request, by route template.\n");
        out.push_str("# TYPE aiconform_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.latency {
            let route = escape(route);
            let mut cumulative = 0;
            for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "aiconform_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "aiconform_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "aiconform_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "aiconform_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str(
            "# HELP aiconform_http_requests_in_flight HTTP requests being answered now.\n",
        );
        out.push_str("# TYPE aiconform_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "aiconform_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// Escape a label value: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("GET", "/healthz", 200, Duration::from_micros(100));
        m.observe("GET", "/healthz", 200, Duration::from_millis(3));
        m.observe("BREW", "/healthz", 405, Duration::from_secs(100));
        let text = m.render(&[("aiconform_catalog_overlays", "Overlays loaded.", 3.0)]);
        assert!(text.contains(
            "aiconform_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "aiconform_http_requests_total{method=\"OTHER\",route=\"/healthz\",status=\"405\"} 1\n"
        ));
        assert!(text.contains(
            "aiconform_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0005\"} 1\n"
        ));
        assert!(text.contains(
            "aiconform_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 2\n"
        ));
        // 100s is above every finite bucket: only +Inf counts it.
        assert!(text.contains(
            "aiconform_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"30\"} 2\n"
        ));
        assert!(text.contains(
            "aiconform_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 3\n"
        ));
        assert!(
            text.contains("aiconform_http_request_duration_seconds_count{route=\"/healthz\"} 3\n")
        );
        assert!(text.contains("aiconform_catalog_overlays 3\n"));
    }

    #[test]
    fn in_flight_guard_decrements_on_drop() {
        let m = Metrics::default();
        let g = m.start();
        assert!(
            m.render(&[])
                .contains("aiconform_http_requests_in_flight 1\n")
        );
        drop(g);
        assert!(
            m.render(&[])
                .contains("aiconform_http_requests_in_flight 0\n")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
