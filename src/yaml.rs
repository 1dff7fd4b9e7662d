//! Safe YAML reading and writing.
//!
//! serde_yaml is archived, so aiconform uses `serde-saphyr`: it is maintained, panic-free on
//! malformed input, reports line/column, and enforces parse budgets (aliases, anchors, events,
//! depth) so an alias bomb fails fast instead of exhausting memory.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Ceiling on any YAML document aiconform reads. It only stops runaway inputs: a snapshot of
/// 10,000 nodes with agent facts is a few MiB, written flat about 100 MiB. Within the ceiling
/// the parse budget grows with the document (see [`budget`]), so memory and time stay
/// proportional to the bytes read.
pub const MAX_YAML_BYTES: usize = 256 * 1024 * 1024;

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

/// Parse budget for a document of `len` bytes. Events, nodes and scalar bytes scale with the
/// input (a document cannot hold more of them than bytes, except through aliases); aliases,
/// anchors and nesting, the only ways to amplify input, stay at small fixed limits, so an
/// alias bomb fails fast whatever the file's size.
fn budget(len: usize) -> Option<serde_saphyr::Budget> {
    serde_saphyr::budget! {
        max_aliases: 64,
        max_anchors: 64,
        max_events: 200_000 + len,
        max_nodes: 250_000 + len,
        max_total_scalar_bytes: (64 * 1024 * 1024).max(len),
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
                "file is {} bytes, over the {} byte ceiling for YAML inputs; is this the right file?",
                text.len(),
                MAX_YAML_BYTES
            ),
        });
    }
    let options = serde_saphyr::options! { budget: budget(text.len()) };
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
    // separately, so keep messages to one line for tables and JSON errors, without the
    // `error: line L column C: ` it repeats at their start.
    let line = message.lines().next().unwrap_or(message).trim();
    without_location(line).unwrap_or(line).to_string()
}

/// `rest` of `error: line L column C: rest`, if the message has that prefix.
fn without_location(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("error: line ")?;
    let (numbers, rest) = rest.split_once(": ")?;
    let (l, c) = numbers.split_once(" column ")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(l) && digits(c)).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repeated_location_prefix_is_dropped() {
        assert_eq!(
            first_line("error: line 2 column 1: unknown field `servce`\n  | snippet"),
            "unknown field `servce`"
        );
        assert_eq!(
            first_line("error: line x column 1: y"),
            "error: line x column 1: y"
        );
        assert_eq!(first_line("plain message"), "plain message");
    }
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
    fn rejects_runaway_input() {
        let doc = "a: b\n".repeat(MAX_YAML_BYTES / 4);
        let err = from_str::<serde_json::Value>(&doc, "big.yaml").unwrap_err();
        assert!(err.message.contains("byte ceiling"), "{err}");
    }

    #[test]
    fn budget_grows_with_the_document() {
        // 400,000 list items: twice the fixed event budget this reader once had, and over 4 MiB.
        let mut doc = String::from("items:\n");
        for i in 0..400_000 {
            doc.push_str(&format!("- item-{i:07}\n"));
        }
        assert!(doc.len() > 4 * 1024 * 1024);
        let back: BTreeMap<String, Vec<String>> = from_str(&doc, "large.yaml").unwrap();
        assert_eq!(back["items"].len(), 400_000);
        assert_eq!(back["items"][399_999], "item-0399999");
    }

    #[test]
    fn deep_nesting_is_refused_in_a_small_file() {
        let doc = format!("{}x{}", "[".repeat(200), "]".repeat(200));
        let err = from_str::<serde_json::Value>(&doc, "deep.yaml").unwrap_err();
        assert_eq!(err.origin, "deep.yaml");
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
