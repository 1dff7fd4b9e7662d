//! Turning query strings, headers and JSON bodies into engine inputs. Pure: no I/O, every
//! failure is an [`ApiError`] naming the parameter or field at fault.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::error::{ApiError, allowed_values};
use crate::name::is_dns_label;
use crate::output::Format;
use crate::recipe::criteria::{Criteria, Dimension};
use crate::recipe::model::Recipe;
use crate::recipe::overlay::API_VERSION;
use crate::recipe::resolve::RECIPE_KIND;
use crate::recipe::set::SetExpr;

/// Query parameters accepted by `GET /v1/recipe`.
pub const RECIPE_PARAMS: &[&str] = &[
    "service",
    "accelerator",
    "os",
    "intent",
    "platform",
    "format",
    SET_PARAM,
    SET_JSON_PARAM,
];
/// Query parameters accepted by `GET /v1/query`.
pub const QUERY_PARAMS: &[&str] = &[
    "service",
    "accelerator",
    "os",
    "intent",
    "platform",
    "selector",
    "format",
    SET_PARAM,
    SET_JSON_PARAM,
];
/// Query parameters accepted by `POST /v1/recipe`.
pub const FORMAT_ONLY: &[&str] = &["format", SET_PARAM, SET_JSON_PARAM];
/// Query parameters accepted by `POST /v1/bundle`.
pub const BUNDLE_PARAMS: &[&str] = &[SET_PARAM, SET_JSON_PARAM];

/// `set=COMPONENT:dotted.path=VALUE`, the CLI's `--set`; repeatable.
pub const SET_PARAM: &str = "set";
/// `set-json=COMPONENT:dotted.path=JSON`, the CLI's `--set-json` (and, with the file's
/// content as JSON, its `--set-file`); repeatable, applied after every `set`.
pub const SET_JSON_PARAM: &str = "set-json";
/// Most `set` plus `set-json` parameters in one request, and the longest one in characters.
pub const MAX_SETS: usize = 64;
pub const MAX_SET_LEN: usize = 1024;

/// Longest selector accepted, in characters (as the OpenAPI `maxLength` counts); real ones
/// are well under 200.
pub const MAX_SELECTOR_LEN: usize = 1024;

/// Query parameters after validation: each name at most once, all names known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Reject unknown and repeated parameters so a typo (`acclerator=h100`) is an error,
    /// not a silently broader recipe.
    pub fn parse(pairs: Vec<(String, String)>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut seen = BTreeSet::new();
        for (name, _) in &pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::bad_request(
                    "unknown_parameter",
                    format!(
                        "unknown query parameter `{}`; this route accepts: {}",
                        truncate(name),
                        allowed.join(", ")
                    ),
                )
                .with_field(truncate(name)));
            }
            let repeatable = name == SET_PARAM || name == SET_JSON_PARAM;
            if !repeatable && !seen.insert(name.as_str()) {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("query parameter `{name}` is given more than once; give it once"),
                )
                .with_field(name.clone()));
            }
        }
        Ok(Params { pairs })
    }

    /// The `set` and then the `set-json` parameters, parsed, within the documented count
    /// and length limits.
    pub fn sets(&self) -> Result<Vec<SetExpr>, ApiError> {
        let of = |param: &str| -> Vec<&str> {
            self.pairs
                .iter()
                .filter(|(n, _)| n == param)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let (sets, jsons) = (of(SET_PARAM), of(SET_JSON_PARAM));
        if sets.len() + jsons.len() > MAX_SETS {
            return Err(ApiError::bad_request(
                "invalid_set",
                format!(
                    "{} `set`/`set-json` parameters; at most {MAX_SETS} are accepted",
                    sets.len() + jsons.len()
                ),
            )
            .with_field(SET_PARAM));
        }
        let mut exprs = Vec::with_capacity(sets.len() + jsons.len());
        for (param, texts) in [(SET_PARAM, sets), (SET_JSON_PARAM, jsons)] {
            let bad =
                |message: String| ApiError::bad_request("invalid_set", message).with_field(param);
            for text in texts {
                if text.chars().count() > MAX_SET_LEN {
                    return Err(bad(format!(
                        "`{param}` `{}` is longer than {MAX_SET_LEN} characters",
                        truncate(text)
                    )));
                }
                let parsed = if param == SET_PARAM {
                    SetExpr::parse(text)
                } else {
                    SetExpr::parse_json(text)
                };
                exprs.push(parsed.map_err(|e| bad(e.to_string()))?);
            }
        }
        Ok(exprs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The criteria among the parameters; absent dimensions mean `any`.
    pub fn criteria(&self) -> Result<Criteria, ApiError> {
        let mut c = Criteria::new();
        for d in Dimension::ALL {
            if let Some(v) = self.get(d.key()) {
                set_exact(&mut c, d, v, d.key())?;
            }
        }
        Ok(c)
    }
}

/// Keep echoed client input short in messages.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Criteria from a JSON body: `{"service": "eks", ...}` or `{"criteria": {...}}` (the same
/// two shapes a `--criteria` file accepts). `null` or `"any"` leave a dimension open.
pub fn criteria_from_json(body: &Value, prefix: &str) -> Result<Criteria, ApiError> {
    let Value::Object(map) = body else {
        return Err(invalid_body(
            prefix,
            format!(
                "expected a JSON object with any of {}, got {}",
                dimension_keys(),
                kind(body)
            ),
        ));
    };
    if prefix.is_empty()
        && map.len() == 1
        && let Some(inner) = map.get("criteria")
    {
        return criteria_from_json(inner, "criteria");
    }
    let mut c = Criteria::new();
    for (key, value) in map {
        let field = join(prefix, key);
        let Some(d) = Dimension::from_key(key) else {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!(
                    "unknown field `{}`; criteria fields are: {}",
                    truncate(&field),
                    dimension_keys()
                ),
            )
            .with_field(truncate(&field)));
        };
        match value {
            Value::Null => {}
            Value::String(s) => {
                set_exact(&mut c, d, s, &field)?;
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_criterion",
                    format!(
                        "`{field}` must be a string, one of: {}; got {}",
                        allowed_values(d),
                        kind(other)
                    ),
                )
                .with_field(field));
            }
        }
    }
    Ok(c)
}

/// Set a criterion from API input. Unlike the command line, the API takes values exactly
/// as documented (lowercase, no surrounding spaces; `any` or empty for open), so what the
/// OpenAPI document allows and what the server accepts are the same set.
fn set_exact(c: &mut Criteria, d: Dimension, value: &str, field: &str) -> Result<(), ApiError> {
    let normal = value.trim().to_ascii_lowercase();
    if normal != value {
        let hint =
            if d.allowed().contains(&normal.as_str()) || normal == crate::recipe::criteria::ANY {
                format!("; did you mean `{normal}`?")
            } else {
                String::new()
            };
        return Err(ApiError::bad_request(
            "invalid_criterion",
            format!(
                "{} `{}` must be written exactly as one of: {} (lowercase, no spaces){hint}",
                d.key(),
                truncate(value),
                allowed_values(d)
            ),
        )
        .with_field(field));
    }
    c.set(d, value)
        .map_err(|e| ApiError::bad_request("invalid_criterion", e.to_string()).with_field(field))
}

fn dimension_keys() -> String {
    Dimension::ALL.map(Dimension::key).join(", ")
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn invalid_body(field: &str, message: String) -> ApiError {
    let e = ApiError::bad_request("invalid_body", message);
    if field.is_empty() {
        e
    } else {
        e.with_field(field)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parse a request body as JSON. An empty body is `{}` so `POST` with no body means
/// "all criteria any".
pub fn parse_json_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("request body is not valid JSON: {e}"),
        )
    })
}

/// Check the `Content-Type` of a body: absent or JSON (`application/json`, `*+json`).
pub fn check_json_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(ct) = content_type else {
        return Ok(());
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "request body must be JSON; send `Content-Type: application/json` (got `{}`)",
                truncate(ct)
            ),
        ))
    }
}

/// Check a selector's syntax (the engine's rules: dot-separated, non-empty segments, `"`
/// quotes keys that contain dots) so that any error the engine then reports means "not
/// found" rather than "malformed".
pub fn check_selector(selector: Option<&str>) -> Result<String, ApiError> {
    let bad =
        |message: String| ApiError::bad_request("invalid_selector", message).with_field("selector");
    let Some(sel) = selector else {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "query parameter `selector` is required, e.g. selector=components.gpu-operator.version",
        )
        .with_field("selector"));
    };
    let chars = sel.chars().count();
    if chars > MAX_SELECTOR_LEN {
        return Err(bad(format!(
            "selector is {chars} characters; at most {MAX_SELECTOR_LEN} are accepted"
        )));
    }
    let mut segments = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    // No trimming here: the engine trims, and any selector it then cannot resolve is a
    // 404 (not found), never a malformed-input 400 for input the documented pattern allows.
    for ch in sel.chars() {
        match ch {
            '"' => quoted = !quoted,
            '.' if !quoted => segments.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(bad("selector has an unterminated quote".into()));
    }
    segments.push(cur);
    if segments.iter().any(String::is_empty) {
        return Err(bad(
            "selector has an empty segment; use dots between keys, e.g. components.gpu-operator.version"
                .into(),
        ));
    }
    Ok(sel.to_string())
}

/// Media types that select each format.
const JSON_TYPES: &[&str] = &["application/json", "text/json", "application/*", "*/*"];
const YAML_TYPES: &[&str] = &[
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
];

/// Choose the response format: the `format` parameter wins, then the `Accept` header (by
/// quality, then order), then JSON.
pub fn negotiate(format: Option<&str>, accept: Option<&str>) -> Result<Format, ApiError> {
    if let Some(f) = format {
        return match f.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            _ => Err(ApiError::bad_request(
                "invalid_parameter",
                format!(
                    "unknown format `{}`; expected one of: json, yaml",
                    truncate(f)
                ),
            )
            .with_field("format")),
        };
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json);
    };
    let mut ranges: Vec<(u16, usize, String)> = Vec::new();
    for (i, part) in accept.split(',').enumerate() {
        let mut pieces = part.split(';');
        let media = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1000u16;
        for p in pieces {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = parse_q(v.trim()).unwrap_or(0);
            }
        }
        if q > 0 && !media.is_empty() {
            ranges.push((q, i, media));
        }
    }
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, media) in &ranges {
        if YAML_TYPES.contains(&media.as_str()) {
            return Ok(Format::Yaml);
        }
        if JSON_TYPES.contains(&media.as_str()) {
            return Ok(Format::Json);
        }
    }
    Err(ApiError::new(
        axum::http::StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        format!(
            "cannot produce any of `{}`; this route answers application/json or application/yaml (or pass format=json|yaml)",
            truncate(accept)
        ),
    ))
}

/// Quality value in thousandths (`0.5` → 500); `None` when malformed.
fn parse_q(v: &str) -> Option<u16> {
    let f: f64 = v.parse().ok()?;
    if !(0.0..=1.0).contains(&f) {
        return None;
    }
    Some((f * 1000.0).round() as u16)
}

pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Yaml => "application/yaml",
    }
}

/// What `POST /v1/bundle` renders: a recipe composed from criteria, or one sent whole.
#[derive(Debug, Clone, PartialEq)]
pub enum BundleInput {
    Criteria(Criteria),
    Recipe(Box<Recipe>),
}

/// Fields of `POST /v1/bundle` bodies.
pub const BUNDLE_FIELDS: &[&str] = &["criteria", "recipe", "options"];

/// Parse `{"criteria": {...}}` or `{"recipe": {...}}`, each with optional `"options"`.
/// Returns the input and the raw options object (mapped by the bundle adapter).
pub fn bundle_request(body: &Value) -> Result<(BundleInput, Map<String, Value>), ApiError> {
    let Value::Object(map) = body else {
        return Err(invalid_body(
            "",
            format!(
                "expected a JSON object with `criteria` or `recipe` (and optional `options`), got {}",
                kind(body)
            ),
        ));
    };
    for key in map.keys() {
        if !BUNDLE_FIELDS.contains(&key.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!(
                    "unknown field `{}`; bundle requests accept: {}",
                    truncate(key),
                    BUNDLE_FIELDS.join(", ")
                ),
            )
            .with_field(truncate(key)));
        }
    }
    let options = match map.get("options") {
        None => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(other) => {
            return Err(invalid_body(
                "options",
                format!("`options` must be an object, got {}", kind(other)),
            ));
        }
    };
    let criteria = map.get("criteria");
    let recipe = map.get("recipe");
    let input = match (criteria, recipe) {
        (Some(_), Some(_)) => {
            return Err(invalid_body(
                "recipe",
                "give either `criteria` or `recipe`, not both".into(),
            ));
        }
        (Some(c), None) => BundleInput::Criteria(criteria_from_json(c, "criteria")?),
        (None, Some(r)) => BundleInput::Recipe(Box::new(recipe_from_json(r)?)),
        (None, None) => BundleInput::Criteria(Criteria::new()),
    };
    Ok((input, options))
}

/// A recipe sent by a client: must be an aiconform recipe whose component and manifest
/// names are safe to use as directory and file names.
pub fn recipe_from_json(v: &Value) -> Result<Recipe, ApiError> {
    let bad = |field: &str, message: String| {
        ApiError::bad_request("invalid_recipe", message).with_field(field)
    };
    let recipe: Recipe = serde_json::from_value(v.clone()).map_err(|e| {
        bad(
            "recipe",
            format!("`recipe` is not an aiconform recipe: {e}; create one with GET /v1/recipe"),
        )
    })?;
    if recipe.kind != RECIPE_KIND || recipe.api_version != API_VERSION {
        return Err(bad(
            "recipe",
            format!(
                "`recipe` has kind `{}` and apiVersion `{}`; expected kind `{RECIPE_KIND}` and apiVersion `{API_VERSION}`",
                truncate(&recipe.kind),
                truncate(&recipe.api_version)
            ),
        ));
    }
    if recipe.metadata.value_count > u32::MAX as usize {
        return Err(bad(
            "recipe.metadata.valueCount",
            format!("`valueCount` must be at most {}", u32::MAX),
        ));
    }
    // Shape only; semantic problems (duplicate components, unknown dependencies, ...) are
    // the bundle engine's to report, as 422.
    for (i, c) in recipe.components.iter().enumerate() {
        let field = format!("recipe.components[{i}].name");
        if !is_dns_label(&c.name) {
            return Err(bad(
                &field,
                format!(
                    "component name `{}` must be lowercase letters, digits and '-' (at most 63)",
                    truncate(&c.name)
                ),
            ));
        }
        for (j, m) in c.manifests.iter().enumerate() {
            if !is_safe_file_name(&m.name) {
                return Err(bad(
                    &format!("recipe.components[{i}].manifests[{j}].name"),
                    format!(
                        "manifest name `{}` must be a plain file name (letters, digits, '.', '_', '-')",
                        truncate(&m.name)
                    ),
                ));
            }
        }
    }
    Ok(recipe)
}

fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn params_reject_unknown_and_repeated() {
        let e = Params::parse(pairs(&[("acclerator", "h100")]), RECIPE_PARAMS).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "unknown_parameter"));
        assert_eq!(e.field.as_deref(), Some("acclerator"));
        assert!(e.message.contains("service, accelerator"), "{}", e.message);

        let e =
            Params::parse(pairs(&[("os", "ubuntu"), ("os", "rhel")]), RECIPE_PARAMS).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("os"));
    }

    #[test]
    fn params_criteria_name_the_dimension() {
        let p = Params::parse(pairs(&[("service", "eks"), ("os", "any")]), RECIPE_PARAMS).unwrap();
        let c = p.criteria().unwrap();
        assert_eq!(c.get(Dimension::Service), Some("eks"));
        assert_eq!(c.get(Dimension::Os), None);

        let p = Params::parse(pairs(&[("accelerator", "v100")]), RECIPE_PARAMS).unwrap();
        let e = p.criteria().unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_criterion", Some("accelerator"))
        );
        assert!(e.message.contains("h100, h200, gb200"), "{}", e.message);
    }

    #[test]
    fn criteria_must_be_written_exactly() {
        for v in ["EKS", " eks", "eks\t", "\t"] {
            let p = Params::parse(pairs(&[("service", v)]), RECIPE_PARAMS).unwrap();
            let e = p.criteria().unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_criterion", Some("service")),
                "{v:?}"
            );
        }
        let e = Params::parse(pairs(&[("service", "EKS")]), RECIPE_PARAMS)
            .unwrap()
            .criteria()
            .unwrap_err();
        assert!(e.message.contains("did you mean `eks`?"), "{}", e.message);
        let e = criteria_from_json(&json!({"criteria": {"os": "Ubuntu"}}), "").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("criteria.os"));
        // Empty still means any.
        let p = Params::parse(pairs(&[("service", "")]), RECIPE_PARAMS).unwrap();
        assert!(p.criteria().unwrap().is_empty());
    }

    #[test]
    fn json_criteria_flat_nested_and_errors() {
        let c = criteria_from_json(&json!({"service": "gke", "intent": null}), "").unwrap();
        assert_eq!(c.get(Dimension::Service), Some("gke"));
        let c = criteria_from_json(&json!({"criteria": {"os": "rhel"}}), "").unwrap();
        assert_eq!(c.get(Dimension::Os), Some("rhel"));

        let e = criteria_from_json(&json!({"gpu": "h100"}), "").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("gpu"));
        let e = criteria_from_json(&json!({"criteria": {"os": 3}}), "").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("criteria.os"));
        assert!(e.message.contains("ubuntu, rhel"), "{}", e.message);
        let e = criteria_from_json(&json!(["eks"]), "").unwrap_err();
        assert_eq!(e.code, "invalid_body");
    }

    #[test]
    fn empty_body_is_empty_object_and_bad_json_is_400() {
        assert_eq!(parse_json_body(b"  \n").unwrap(), json!({}));
        let e = parse_json_body(b"{\"service\":").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_body"));
    }

    #[test]
    fn content_types() {
        assert!(check_json_content_type(None).is_ok());
        assert!(check_json_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_json_content_type(Some("application/merge-patch+json")).is_ok());
        let e = check_json_content_type(Some("application/x-www-form-urlencoded")).unwrap_err();
        assert_eq!(e.status.as_u16(), 415);
    }

    #[test]
    fn selectors() {
        assert_eq!(check_selector(Some("a.\"b.c\".d")).unwrap(), "a.\"b.c\".d");
        for bad in ["a..b", "a.\"b", "", "."] {
            let e = check_selector(Some(bad)).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_selector", Some("selector")),
                "{bad}"
            );
        }
        assert_eq!(check_selector(None).unwrap_err().code, "invalid_parameter");
        assert!(check_selector(Some(&"a".repeat(MAX_SELECTOR_LEN + 1))).is_err());
        // The limit counts characters, not bytes.
        assert!(check_selector(Some(&"é".repeat(MAX_SELECTOR_LEN))).is_ok());
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None, None).unwrap(), Format::Json);
        assert_eq!(
            negotiate(Some("YAML"), Some("application/json")).unwrap(),
            Format::Yaml
        );
        assert_eq!(
            negotiate(None, Some("application/yaml")).unwrap(),
            Format::Yaml
        );
        assert_eq!(
            negotiate(None, Some("text/html, */*;q=0.1")).unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(None, Some("application/json;q=0.5, application/x-yaml")).unwrap(),
            Format::Yaml
        );
        assert_eq!(
            negotiate(None, Some("application/yaml;q=0, application/json")).unwrap(),
            Format::Json
        );
        let e = negotiate(None, Some("text/html")).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (406, "not_acceptable"));
        let e = negotiate(Some("xml"), None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("format"));
        assert_eq!(
            negotiate(None, Some("application/json;q=abc, text/yaml")).unwrap(),
            Format::Yaml
        );
    }

    #[test]
    fn bundle_bodies() {
        let (input, opts) = bundle_request(&json!({})).unwrap();
        assert_eq!(input, BundleInput::Criteria(Criteria::new()));
        assert!(opts.is_empty());
        let e = bundle_request(&json!({"criteria": {}, "recipe": {}})).unwrap_err();
        assert_eq!(e.code, "invalid_body");
        let e = bundle_request(&json!({"recipes": {}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("recipes"));
        let e = bundle_request(&json!({"options": 1})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("options"));
        let e = bundle_request(&json!({"recipe": {
            "apiVersion": API_VERSION, "kind": RECIPE_KIND, "criteria": {}, "constraints": [],
            "deploymentOrder": [], "components": [],
            "metadata": {"name": "x", "toolVersion": "0", "appliedOverlays": [], "valueCount": 4_294_967_296u64}
        }}))
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("recipe.metadata.valueCount"));
        let e = bundle_request(&json!({"recipe": {"kind": "Recipe"}})).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_recipe", Some("recipe"))
        );
    }

    #[test]
    fn file_names() {
        assert!(is_safe_file_name("crd.yaml"));
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(!is_safe_file_name(bad), "{bad}");
        }
    }
}
