//! Points in time as reports and evidence print them.

/// Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn timestamp(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| k8s_openapi::jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| format!("{ms} ms since the Unix epoch"))
}
