//! Server limits and the parsers for their human-friendly flag values (`1MiB`, `30s`).
//! Pure: no I/O.

use std::time::Duration;

/// Limits applied to every API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes; larger bodies get a 413.
    pub max_body: usize,
    /// Most `/v1/*` requests handled at once; more get a 503 (load shedding, no queue).
    pub concurrency: usize,
    /// Deadline for one `/v1/*` request, body upload included; past it the client gets a 408.
    pub timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body: 1024 * 1024,
            concurrency: 64,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A flag value that could not be parsed; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}; {hint}")]
pub struct ParseLimitError {
    pub value: String,
    pub what: &'static str,
    pub hint: &'static str,
}

/// Largest `--max-body` accepted: 1 GiB. Anything above is almost certainly a typo.
pub const MAX_BODY_CEILING: u64 = 1024 * 1024 * 1024;

/// Parse a byte size: `1048576`, `512B`, `64KiB`, `1MiB`, `1MB`, `2k`, `1m` (case-insensitive;
/// decimal units are powers of 1000, binary units powers of 1024, bare `k`/`m`/`g` are binary).
pub fn parse_size(text: &str) -> Result<usize, ParseLimitError> {
    let err = || ParseLimitError {
        value: text.to_string(),
        what: "size",
        hint: "use a number of bytes with an optional unit such as 512KiB, 1MiB or 1MB (at most 1GiB, at least 1 byte)",
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "k" | "kib" => 1024,
        "mb" => 1000 * 1000,
        "m" | "mib" => 1024 * 1024,
        "gb" => 1000 * 1000 * 1000,
        "g" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(err()),
    };
    let bytes = n.checked_mul(mult).ok_or_else(err)?;
    if bytes == 0 || bytes > MAX_BODY_CEILING {
        return Err(err());
    }
    usize::try_from(bytes).map_err(|_| err())
}

/// Parse a duration: `30s`, `500ms`, `2m`, `1m30s`, `1h` ([`crate::duration::parse`]), or bare
/// seconds `30`. Must be above zero and at most one day.
pub fn parse_duration(text: &str) -> Result<Duration, ParseLimitError> {
    let err = || ParseLimitError {
        value: text.to_string(),
        what: "duration",
        hint: "use a number with a unit such as 500ms, 30s, 2m or 1h (above zero, at most 24h)",
    };
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(t.parse().map_err(|_| err())?)
    } else {
        crate::duration::parse(t).map_err(|_| err())?
    };
    if d.is_zero() || d > Duration::from_secs(24 * 3600) {
        return Err(err());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("1mib"), Ok(1024 * 1024));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size(" 10 B "), Ok(10));
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "-1",
            "0",
            "2GiB",
            "1 parsec",
            "99999999999999999999",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.to_string().contains("not a valid size"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "0s", "1.5s", "25h", "3 weeks", "-1s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains("not a valid duration"), "{bad}: {e}");
        }
    }
}
