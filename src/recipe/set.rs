//! `--set COMPONENT:dotted.path=VALUE`: one override expression, parsed into a typed value.
//! Pure: no I/O. Applying overrides to a recipe lives in [`super::overrides`].
//!
//! Value typing, in order: a value in single or double quotes is the string inside them;
//! `true`/`false` (any case) are booleans; whole numbers without a leading zero are
//! integers; decimals (`0.5`, `1e3`) are floats; anything else (`580.95.05`, `007`, `null`,
//! empty) is a string. The key `enabled` at the top of a component is special: it takes a
//! boolean and removes (`false`) or restores (`true`) the component.

use std::fmt;

use serde_json::{Number, Value};

/// The key that removes or restores a component instead of setting a value.
pub const ENABLED: &str = "enabled";

/// One parsed `--set` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct SetExpr {
    /// The expression as given, for messages.
    pub text: String,
    /// The component as written: a name or an alias (resolved when applied).
    pub component: String,
    /// Path into the component's values, one key per segment.
    pub path: Vec<String>,
    pub value: Value,
}

/// A malformed expression; the message says what is wrong and shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("set `{expr}`: {message}")]
pub struct SetError {
    pub expr: String,
    pub message: String,
}

const FORM: &str =
    "expected COMPONENT:dotted.path=VALUE, e.g. gpu-operator:driver.version=580.95.05";

impl SetExpr {
    /// Parse `COMPONENT:path=VALUE`.
    pub fn parse(text: &str) -> Result<SetExpr, SetError> {
        let err = |message: String| SetError {
            expr: text.to_string(),
            message,
        };
        let Some((component, rest)) = text.split_once(':') else {
            return Err(err(format!("no `:` after the component; {FORM}")));
        };
        let component = component.trim();
        if component.is_empty() {
            return Err(err(format!("the component is empty; {FORM}")));
        }
        let Some((path, raw)) = rest.split_once('=') else {
            return Err(err(format!("no `=` before the value; {FORM}")));
        };
        let path =
            super::query::split_path(path.trim()).map_err(|m| err(format!("{m}; {FORM}")))?;
        let value = parse_value(raw);
        if path == [ENABLED] && !value.is_boolean() {
            return Err(err(format!(
                "`{ENABLED}` takes true or false (to remove or restore the component), not `{raw}`"
            )));
        }
        Ok(SetExpr {
            text: text.to_string(),
            component: component.to_string(),
            path,
            value,
        })
    }

    /// `Some(on)` when this expression is `COMPONENT:enabled=on`.
    pub fn enabled(&self) -> Option<bool> {
        if self.path == [ENABLED] {
            self.value.as_bool()
        } else {
            None
        }
    }

    /// The path as written back: dots between keys, keys containing dots quoted.
    pub fn path_text(&self) -> String {
        join_path(&self.path)
    }
}

impl fmt::Display for SetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}={}", self.component, self.path_text(), self.value)
    }
}

/// Dotted path text; a key containing a dot is quoted (`a."b.c"`).
pub fn join_path(path: &[String]) -> String {
    path.iter()
        .map(|k| {
            if k.contains('.') {
                format!("\"{k}\"")
            } else {
                k.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Type a raw value (see the module docs).
pub fn parse_value(raw: &str) -> Value {
    for q in ['"', '\''] {
        if raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q) {
            return Value::String(raw[1..raw.len() - 1].to_string());
        }
    }
    if raw.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if raw.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    let unsigned = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    let int_part = unsigned.split(['.', 'e', 'E']).next().unwrap_or("");
    let leading_zero = int_part.len() > 1 && int_part.starts_with('0');
    if !leading_zero && !int_part.is_empty() && int_part.bytes().all(|b| b.is_ascii_digit()) {
        if int_part.len() == unsigned.len() {
            if let Ok(i) = raw.parse::<i64>() {
                return Value::Number(i.into());
            }
        } else if unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
            && let Ok(f) = raw.parse::<f64>()
            && let Some(n) = Number::from_f64(f)
        {
            return Value::Number(n);
        }
    }
    Value::String(raw.to_string())
}

/// Set `value` at `path` inside `values`, creating maps on the way. A scalar or list in the
/// way is an error naming it rather than being silently replaced.
pub fn set_path(values: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if !values.is_object() {
        *values = Value::Object(Default::default());
    }
    let mut current = values;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(map) = current else {
            let at = join_path(&path[..i]);
            return Err(format!(
                "`{at}` is {}, not a map, so `{}` cannot be set inside it; set `{at}` itself",
                describe(current),
                join_path(path)
            ));
        };
        if i + 1 == path.len() {
            map.insert(key.clone(), value);
            return Ok(());
        }
        current = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    Ok(())
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list (lists cannot be indexed)",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_typed() {
        for (raw, want) in [
            ("true", json!(true)),
            ("False", json!(false)),
            ("8", json!(8)),
            ("-3", json!(-3)),
            ("0", json!(0)),
            ("0.5", json!(0.5)),
            ("580.1", json!(580.1)),
            ("1e3", json!(1000.0)),
            ("580.95.05", json!("580.95.05")),
            ("007", json!("007")),
            ("\"580.1\"", json!("580.1")),
            ("'true'", json!("true")),
            ("", json!("")),
            ("null", json!("null")),
            ("inf", json!("inf")),
            ("NaN", json!("NaN")),
            ("99999999999999999999", json!("99999999999999999999")),
            ("v25.10.1", json!("v25.10.1")),
            ("a=b", json!("a=b")),
        ] {
            assert_eq!(parse_value(raw), want, "{raw}");
        }
    }

    #[test]
    fn parses_component_path_and_value() {
        let e = SetExpr::parse("gpuoperator:driver.version=580.95.05").unwrap();
        assert_eq!(e.component, "gpuoperator");
        assert_eq!(e.path, ["driver", "version"]);
        assert_eq!(e.value, json!("580.95.05"));
        assert_eq!(e.enabled(), None);
        // The value may contain `=` and `:`.
        let e = SetExpr::parse("c:env.URL=http://x:1/?a=b").unwrap();
        assert_eq!(e.value, json!("http://x:1/?a=b"));
        let e = SetExpr::parse("c:a.\"b.c\"=1").unwrap();
        assert_eq!(e.path, ["a", "b.c"]);
        assert_eq!(e.to_string(), "c:a.\"b.c\"=1");
        assert_eq!(
            SetExpr::parse("c:enabled=false").unwrap().enabled(),
            Some(false)
        );
        // `enabled` deeper in the values is an ordinary key.
        let e = SetExpr::parse("c:driver.enabled=yes").unwrap();
        assert_eq!((e.enabled(), e.value), (None, json!("yes")));
    }

    #[test]
    fn malformed_expressions_say_why() {
        for (text, needle) in [
            ("gpu-operator", "no `:`"),
            (":a=1", "component is empty"),
            ("c:a.b", "no `=`"),
            ("c:=1", "empty segment"),
            ("c:a..b=1", "empty segment"),
            ("c:a.\"b=1", "unterminated quote"),
            ("c:enabled=maybe", "takes true or false"),
        ] {
            let e = SetExpr::parse(text).unwrap_err();
            assert_eq!(e.expr, text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn set_path_creates_maps_and_refuses_scalars() {
        let mut v = json!({"driver": {"version": "570"}, "args": [1]});
        set_path(&mut v, &["driver".into(), "version".into()], json!("580")).unwrap();
        set_path(&mut v, &["a".into(), "b".into()], json!(1)).unwrap();
        assert_eq!(
            v,
            json!({"driver": {"version": "580"}, "args": [1], "a": {"b": 1}})
        );
        let e = set_path(
            &mut v,
            &["driver".into(), "version".into(), "x".into()],
            json!(1),
        )
        .unwrap_err();
        assert!(e.contains("`driver.version` is a string"), "{e}");
        let e = set_path(&mut v, &["args".into(), "0".into()], json!(1)).unwrap_err();
        assert!(e.contains("lists cannot be indexed"), "{e}");
        let mut null = Value::Null;
        set_path(&mut null, &["a".into()], json!(true)).unwrap();
        assert_eq!(null, json!({"a": true}));
    }
}
