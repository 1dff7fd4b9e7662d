//! `query --selector components.gpu-operator.values.driver.version`: one hydrated value.

use serde_json::Value;

use super::error::{RecipeError, Result};
use super::model::Recipe;

/// Resolve a dotted selector against a recipe. `components.<name>` indexes components by
/// name; other lists take numeric indexes. Keys containing dots can be quoted: `a."b.c"`.
pub fn select(recipe: &Recipe, selector: &str) -> Result<Value> {
    let mut root = serde_json::to_value(recipe).map_err(|e| RecipeError::Invalid {
        origin: "recipe".into(),
        message: e.to_string(),
    })?;
    // Make components addressable by name.
    if let Some(Value::Array(items)) = root.get_mut("components") {
        let by_name = items
            .drain(..)
            .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c)))
            .collect();
        root["components"] = Value::Object(by_name);
    }
    let err = |message: String| RecipeError::Selector {
        selector: selector.to_string(),
        message,
    };
    let segments = split_path(selector).map_err(err)?;
    let mut current = &root;
    let mut walked: Vec<&str> = Vec::new();
    for seg in &segments {
        let next = match current {
            Value::Object(m) => m.get(seg.as_str()),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        };
        match next {
            Some(v) => current = v,
            None => {
                let here = if walked.is_empty() {
                    "the recipe".to_string()
                } else {
                    format!("`{}`", walked.join("."))
                };
                let hint = match current {
                    Value::Object(m) => {
                        let keys: Vec<&str> = m.keys().map(String::as_str).take(20).collect();
                        format!("available: {}", keys.join(", "))
                    }
                    Value::Array(a) => format!("it is a list of {} items; use an index", a.len()),
                    _ => "it is a single value".to_string(),
                };
                return Err(err(format!("no `{seg}` under {here}; {hint}")));
            }
        }
        walked.push(seg);
    }
    Ok(current.clone())
}

/// Split a dotted path into keys; `"` quotes a key that contains dots (`a."b.c"`).
pub fn split_path(selector: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in selector.trim().chars() {
        match ch {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    if out.iter().any(String::is_empty) {
        return Err("empty segment; use dots between keys, e.g. driver.version".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_segments() {
        assert_eq!(split_path("a.\"b.c\".d").unwrap(), ["a", "b.c", "d"]);
        assert!(split_path("a..b").is_err());
        assert!(split_path("a.\"b").is_err());
    }
}
