//! Safe YAML reading and writing.
//!
//! serde_yaml is archived, so aiconform uses `serde-saphyr`: it is maintained, panic-free on
//! malformed input, reports line/column, and enforces parse budgets (aliases, anchors, events,
//! depth) so an alias bomb fails fast instead of exhausting memory.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest YAML document aiconform reads (recipes, overlays, values, snapshots).
pub const MAX_YAML_BYTES: usize = 4 * 1024 * 1024;

/// A YAML document could not be read. `origin` names the file (or other source) so the
/// message tells the user where to look.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct YamlError {
    pub origin: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(col)) => {
                write!(f, "{}:{}:{}: {}", self.origin, line, col, self.message)
            }
            (Some(line), None) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            _ => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

fn budget() -> Option<serde_saphyr::Budget> {
    serde_saphyr::budget! {
        max_aliases: 64,
        max_anchors: 64,
        max_events: 200_000,
        max_depth: 64,
        max_documents: 1,
    }
}

/// Parse one YAML document into `T`, rejecting oversized input and alias bombs.
pub fn from_str<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, YamlError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError {
            origin: origin.to_string(),
            line: None,
            column: None,
            message: format!(
                "file is {} bytes, over the {} byte limit for YAML inputs; split it or trim it",
                text.len(),
                MAX_YAML_BYTES
            ),
        });
    }
    let options = serde_saphyr::options! { budget: budget() };
    serde_saphyr::from_str_with_options(text, options).map_err(|err| {
        let location = err.location();
        YamlError {
            origin: origin.to_string(),
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message: first_line(&err.to_string()),
        }
    })
}

/// Parse YAML from bytes, reporting invalid UTF-8 as a YAML error.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], origin: &str) -> Result<T, YamlError> {
    let text = std::str::from_utf8(bytes).map_err(|e| YamlError {
        origin: origin.to_string(),
        line: None,
        column: None,
        message: format!("not valid UTF-8 ({e})"),
    })?;
    from_str(text, origin)
}

/// Serialize to YAML. Maps in aiconform's models are ordered (BTreeMap / sorted
/// serde_json maps), so the output is deterministic.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, YamlError> {
    serde_saphyr::to_string(value).map_err(|e| YamlError {
        origin: "<serialize>".into(),
        line: None,
        column: None,
        message: e.to_string(),
    })
}

fn first_line(message: &str) -> String {
    // serde-saphyr renders a source snippet after the first line; the location is reported
    // separately, so keep messages to one line for tables and JSON errors.
    message.lines().next().unwrap_or(message).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn reports_line_of_syntax_error() {
        let err =
            from_str::<BTreeMap<String, String>>("a: b\nc: [unclosed\n", "x.yaml").unwrap_err();
        assert_eq!(err.origin, "x.yaml");
        assert!(err.line.is_some(), "{err}");
        assert!(err.to_string().starts_with("x.yaml:"), "{err}");
    }

    #[test]
    fn rejects_alias_bomb() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = from_str::<serde_json::Value>(&doc, "bomb.yaml").unwrap_err();
        assert_eq!(err.origin, "bomb.yaml");
    }

    #[test]
    fn rejects_oversized_input() {
        let doc = "a: b\n".repeat(MAX_YAML_BYTES / 4);
        let err = from_str::<serde_json::Value>(&doc, "big.yaml").unwrap_err();
        assert!(err.message.contains("byte limit"), "{err}");
    }

    #[test]
    fn rejects_invalid_utf8() {
        let err = from_slice::<serde_json::Value>(&[0xff, 0xfe], "bin.yaml").unwrap_err();
        assert!(err.message.contains("UTF-8"));
    }

    #[test]
    fn round_trips_sorted_maps() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), 2);
        m.insert("a".to_string(), 1);
        let text = to_string(&m).unwrap();
        assert_eq!(text, "a: 1\nb: 2\n");
        let back: BTreeMap<String, i32> = from_str(&text, "t").unwrap();
        assert_eq!(back, m);
    }
}
