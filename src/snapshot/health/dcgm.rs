//! `dcgmi diag -r LEVEL -j` results. DCGM 3.x nests tests under `"DCGM GPU Diagnostic" >
//! "test_categories" > "tests" > "results"` (one result per GPU with `gpu_ids`, or one for
//! all GPUs); DCGM 4.x has a top-level `"tests"` list whose results name an `entity_id`.
//! Both are walked; statuses are normalized to pass/fail/warn/skip, and anything else is
//! kept as it was written (never read as a pass).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One result of one test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DcgmResult {
    pub test: String,
    /// GPU ids the result is for (`0,1,...` for node-wide tests); empty when not given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gpus: String,
    /// `pass`, `fail`, `warn`, `skip`, or the status as written.
    pub status: String,
    /// Warnings and info DCGM attached (first few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
}

/// A `dcgmi diag` run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DcgmDiag {
    pub level: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub results: Vec<DcgmResult>,
}

/// `PASS`, `Pass`, `passed` → `pass`, and so on.
pub fn normalize_status(raw: &str) -> String {
    match raw.trim().to_ascii_lowercase().as_str() {
        "pass" | "passed" => "pass".into(),
        "fail" | "failed" | "error" => "fail".into(),
        "warn" | "warning" => "warn".into(),
        "skip" | "skipped" | "not run" | "n/a" => "skip".into(),
        other => other.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("warning")
                .or_else(|| o.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        })
        .collect()
}

fn push_tests(tests: &[Value], out: &mut Vec<DcgmResult>) {
    for t in tests {
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            continue;
        };
        let Some(Value::Array(results)) = t.get("results") else {
            continue;
        };
        for r in results {
            let gpus = match r.get("gpu_ids").or_else(|| r.get("entity_id")) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let mut detail = strings(r.get("warnings"));
            detail.extend(strings(r.get("info")));
            detail.truncate(4);
            out.push(DcgmResult {
                test: name.to_string(),
                gpus,
                status: normalize_status(r.get("status").and_then(Value::as_str).unwrap_or("")),
                detail,
            });
        }
    }
}

/// Parse `dcgmi diag -j` output. Text before the JSON (dcgmi prints warnings first) is
/// skipped.
pub fn parse(text: &str, level: u8) -> Result<DcgmDiag, String> {
    let start = text.find('{').ok_or("no JSON object in the output")?;
    let doc: Value = serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()
        .ok_or("no JSON object in the output")?
        .map_err(|e| format!("not JSON: {e}"))?;
    let root = doc.get("DCGM GPU Diagnostic").unwrap_or(&doc);
    let mut results = Vec::new();
    if let Some(Value::Array(categories)) = root.get("test_categories") {
        for c in categories {
            if let Some(Value::Array(tests)) = c.get("tests") {
                push_tests(tests, &mut results);
            }
        }
    }
    if let Some(Value::Array(tests)) = root.get("tests") {
        push_tests(tests, &mut results);
    }
    if results.is_empty() {
        let why = root
            .get("runtime_error")
            .or_else(|| root.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("no test results in the document");
        return Err(why.to_string());
    }
    Ok(DcgmDiag {
        level,
        version: root
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/node-health")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn dcgm3_document() {
        let d = parse(&fixture("dcgmi-diag-r2.json"), 2).unwrap();
        assert_eq!(d.version, "3.3.5");
        assert!(
            d.results
                .iter()
                .any(|r| r.test == "Denylist" && r.status == "pass")
        );
        let pcie: Vec<_> = d.results.iter().filter(|r| r.test == "PCIe").collect();
        assert_eq!(pcie.len(), 2);
        assert_eq!(pcie[1].gpus, "1");
        assert_eq!(pcie[1].status, "fail");
        assert!(pcie[1].detail[0].contains("replay"), "{:?}", pcie[1].detail);
    }

    #[test]
    fn dcgm4_document_and_leading_text() {
        let text = "Warning: something\n{\"version\":\"4.2.3\",\"tests\":[{\"name\":\"memory\",\"results\":[{\"entity_id\":0,\"status\":\"Pass\"},{\"entity_id\":1,\"status\":\"Skip\",\"info\":[\"not supported\"]}]}]}";
        let d = parse(text, 1).unwrap();
        assert_eq!(d.results.len(), 2);
        assert_eq!(d.results[0].gpus, "0");
        assert_eq!(d.results[1].status, "skip");
        assert_eq!(d.results[1].detail, ["not supported"]);
    }

    #[test]
    fn errors() {
        assert!(
            parse("dcgmi: command failed", 1)
                .unwrap_err()
                .contains("no JSON")
        );
        let e = parse("{\"DCGM GPU Diagnostic\":{\"version\":\"4.2.3\",\"runtime_error\":\"Unable to run diagnostic on unsupported GPU 0.\"}}", 1).unwrap_err();
        assert!(e.contains("unsupported GPU"), "{e}");
        assert_eq!(normalize_status("PASS"), "pass");
        assert_eq!(normalize_status("Incomplete"), "incomplete");
    }
}
