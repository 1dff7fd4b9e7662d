//! Durations as users write them in flags and files (`90s`, `2m`, `1m30s`, `1h`, `500ms`):
//! the one parser of the project, and its inverse for messages.

use std::time::Duration;

/// `90s`, `2m`, `1m30s`, `1h`, `500ms`: a sequence of number+unit pairs.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("number `{}` is too large", &rest[..digits]))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => return Err(format!("`{n}` has no unit (ms, s, m or h)")),
            other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
        };
        total = total.saturating_add(part);
    }
    if total.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(total)
}

/// `90s` -> "90s", `150s` -> "2m30s": the inverse of [`parse`] for messages.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    if s == 0 {
        return "0s".to_string();
    }
    [(s / 3600, "h"), ((s % 3600) / 60, "m"), (s % 60, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse("2").unwrap_err().contains("no unit"));
        assert_eq!(format(parse("150s").unwrap()), "2m30s");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_secs(3720)), "1h2m");
        assert_eq!(format(Duration::from_secs(3601)), "1h1s");
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
