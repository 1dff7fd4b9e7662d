//! `--set COMPONENT:dotted.path=VALUE`: one override expression, parsed into a typed value;
//! `--set-json COMPONENT:path=JSON` and `--set-file COMPONENT:path=FILE` give the value as a
//! JSON document or a YAML/JSON file instead, and merge it: an object deep-merges into the
//! map at the path, `null` deletes the key (at the path, or inside a merged object),
//! anything else replaces. Pure: no I/O (the caller reads `--set-file`'s file). Applying
//! overrides to a recipe lives in [`super::overrides`].
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
    /// Given as a document (`--set-json`, `--set-file`): merged rather than set.
    pub merge: bool,
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

const JSON_FORM: &str = "expected COMPONENT:dotted.path=JSON, e.g. gpu-operator:driver.env='[{\"name\":\"A\",\"value\":\"1\"}]'";
const FILE_FORM: &str =
    "expected COMPONENT:dotted.path=FILE, e.g. gpu-operator:devicePlugin.config=./plugin.yaml";

/// `COMPONENT:path=REST` split into its parts; `form` is shown when the shape is wrong.
fn split<'a>(text: &'a str, form: &str) -> Result<(&'a str, Vec<String>, &'a str), SetError> {
    let err = |message: String| SetError {
        expr: text.to_string(),
        message,
    };
    let Some((component, rest)) = text.split_once(':') else {
        return Err(err(format!("no `:` after the component; {form}")));
    };
    let component = component.trim();
    if component.is_empty() {
        return Err(err(format!("the component is empty; {form}")));
    }
    let Some((path, raw)) = rest.split_once('=') else {
        return Err(err(format!("no `=` before the value; {form}")));
    };
    let path = super::query::split_path(path.trim()).map_err(|m| err(format!("{m}; {form}")))?;
    Ok((component, path, raw))
}

impl SetExpr {
    /// Parse `COMPONENT:path=VALUE`.
    pub fn parse(text: &str) -> Result<SetExpr, SetError> {
        let (component, path, raw) = split(text, FORM)?;
        let value = parse_value(raw);
        if path == [ENABLED] && !value.is_boolean() {
            return Err(SetError {
                expr: text.to_string(),
                message: format!(
                    "`{ENABLED}` takes true or false (to remove or restore the component), not `{raw}`"
                ),
            });
        }
        Ok(SetExpr {
            text: text.to_string(),
            component: component.to_string(),
            path,
            value,
            merge: false,
        })
    }

    /// Parse `--set-json COMPONENT:path=JSON`.
    pub fn parse_json(text: &str) -> Result<SetExpr, SetError> {
        let (component, path, raw) = split(text, JSON_FORM)?;
        let value: Value = serde_json::from_str(raw).map_err(|e| SetError {
            expr: text.to_string(),
            message: format!(
                "`{raw}` is not JSON ({e}); a string needs quotes (`\"580.95.05\"`), or use --set for a plain value"
            ),
        })?;
        Self::document(text, component, path, value)
    }

    /// The file named by `--set-file COMPONENT:path=FILE`, for the caller to read.
    pub fn file_of(text: &str) -> Result<(String, Vec<String>, String), SetError> {
        let (component, path, file) = split(text, FILE_FORM)?;
        if file.trim().is_empty() {
            return Err(SetError {
                expr: text.to_string(),
                message: format!("the file is empty; {FILE_FORM}"),
            });
        }
        Ok((component.to_string(), path, file.trim().to_string()))
    }

    /// `--set-file COMPONENT:path=FILE` once FILE has been read: `content` is YAML (JSON is
    /// YAML too).
    pub fn from_file(text: &str, content: &str) -> Result<SetExpr, SetError> {
        let (component, path, file) = Self::file_of(text)?;
        let value: Value = crate::yaml::from_str(content, &file).map_err(|e| SetError {
            expr: text.to_string(),
            message: format!("cannot read the value: {e}"),
        })?;
        Self::document(text, &component, path, value)
    }

    fn document(
        text: &str,
        component: &str,
        path: Vec<String>,
        value: Value,
    ) -> Result<SetExpr, SetError> {
        if path == [ENABLED] {
            return Err(SetError {
                expr: text.to_string(),
                message: format!(
                    "`{ENABLED}` removes or restores a component; use --set {component}:{ENABLED}=true|false"
                ),
            });
        }
        Ok(SetExpr {
            text: text.to_string(),
            component: component.to_string(),
            path,
            value,
            merge: true,
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

/// Merge a document into `values` at `path`: `null` deletes the key, an object deep-merges
/// into a map already there (its own `null`s deleting keys), anything else replaces. Maps
/// are created on the way; a scalar or list in the way is an error as for [`set_path`].
pub fn merge_path(values: &mut Value, path: &[String], value: &Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the path is empty".into());
    };
    if !values.is_object() {
        *values = Value::Object(Default::default());
    }
    let mut current = values;
    for (i, key) in parents.iter().enumerate() {
        let Value::Object(map) = current else {
            unreachable!("checked below before descending");
        };
        let next = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Default::default()));
        if !next.is_object() {
            let at = join_path(&path[..=i]);
            return Err(format!(
                "`{at}` is {}, not a map, so `{}` cannot be set inside it; set `{at}` itself",
                describe(next),
                join_path(path)
            ));
        }
        current = next;
    }
    let Value::Object(map) = current else {
        unreachable!("every parent is a map");
    };
    if value.is_null() {
        map.remove(last);
        return Ok(());
    }
    match map.get_mut(last) {
        Some(existing) if existing.is_object() && value.is_object() => {
            super::merge::deep_merge(existing, value);
            strip_nulls(existing);
        }
        _ => {
            let mut v = value.clone();
            strip_nulls(&mut v);
            map.insert(last.clone(), v);
        }
    }
    Ok(())
}

/// Drop `null` entries of maps (a new document's nulls delete nothing, and recipe values are
/// never null).
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
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
    fn json_and_file_values_are_documents() {
        let e = SetExpr::parse_json(r#"gpuoperator:driver={"version":"580","rdma":null}"#).unwrap();
        assert!(e.merge);
        assert_eq!(e.path, ["driver"]);
        assert_eq!(e.value, json!({"version": "580", "rdma": null}));
        let e = SetExpr::parse_json("c:a.b=null").unwrap();
        assert_eq!(e.value, Value::Null);
        let e =
            SetExpr::from_file("c:devicePlugin.config=./p.yaml", "name: x\nreplicas: 2\n").unwrap();
        assert_eq!(e.value, json!({"name": "x", "replicas": 2}));
        assert_eq!(
            SetExpr::file_of("c:a=./p.yaml").unwrap(),
            (
                "c".to_string(),
                vec!["a".to_string()],
                "./p.yaml".to_string()
            )
        );
    }

    #[test]
    fn bad_json_and_file_expressions_say_why() {
        for (text, needle) in [
            ("c:a=580.95.05", "is not JSON"),
            ("c:a={\"x\":", "is not JSON"),
            ("c:enabled=false", "use --set c:enabled"),
            ("c", "no `:`"),
            ("c:a", "no `=`"),
        ] {
            let e = SetExpr::parse_json(text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        let e = SetExpr::file_of("c:a=").unwrap_err();
        assert!(e.to_string().contains("the file is empty"), "{e}");
        let e = SetExpr::from_file("c:a=./p.yaml", "a: [unclosed\n").unwrap_err();
        assert!(e.to_string().contains("./p.yaml"), "{e}");
    }

    #[test]
    fn merge_path_merges_deletes_and_replaces() {
        let mut v = json!({"driver": {"version": "570", "rdma": {"enabled": true}}, "args": [1]});
        let p = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        merge_path(
            &mut v,
            &p("driver"),
            &json!({"version": "580", "rdma": null}),
        )
        .unwrap();
        assert_eq!(v["driver"], json!({"version": "580"}));
        merge_path(&mut v, &p("args"), &json!([2, 3])).unwrap();
        assert_eq!(v["args"], json!([2, 3]), "lists replace");
        merge_path(&mut v, &p("driver.version"), &Value::Null).unwrap();
        assert_eq!(v["driver"], json!({}));
        merge_path(&mut v, &p("new.deep"), &json!({"a": 1, "b": null})).unwrap();
        assert_eq!(v["new"], json!({"deep": {"a": 1}}), "no nulls written");
        let e = merge_path(&mut v, &p("args.x"), &json!(1)).unwrap_err();
        assert!(e.contains("`args` is a list"), "{e}");
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
