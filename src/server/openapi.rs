//! The OpenAPI 3.0 document served at `/openapi.json`. Parameter enums come from the
//! engine's own allowed values, error schemas from the Rust types (schemars), so the
//! document cannot drift from what the server accepts.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use super::error::{ERROR_CODES, ErrorResponse};
use super::request::BUNDLE_FIELDS;
use crate::recipe::criteria::{ANY, Dimension};

/// A DNS-1123 label, as component names and namespaces must be.
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// Selector syntax: dot-separated non-empty segments; `"` quotes a key containing dots.
/// (The server also trims surrounding whitespace; the pattern documents the strict form.)
pub const SELECTOR_PATTERN: &str = r#"^([^."\s]|"[^"]+")+(\.([^."\s]|"[^"]+")+)*$"#;

/// Every route and its methods. The router test checks the server and this list agree.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/recipe", &["get", "post"]),
    ("/v1/query", &["get"]),
    ("/v1/bundle", &["post"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/openapi.json", &["get"]),
    ("/schemas/aiconform-config.json", &["get"]),
];

/// Allowed values of a criterion: the engine's list, `any`, and the empty string (which,
/// as on the command line, also means any).
fn criterion_enum(d: Dimension) -> Vec<Value> {
    d.allowed()
        .iter()
        .chain([&ANY, &""])
        .map(|v| Value::String((*v).to_string()))
        .collect()
}

fn criteria_params() -> Vec<Value> {
    Dimension::ALL
        .iter()
        .map(|d| {
            json!({
                "name": d.key(),
                "in": "query",
                "required": false,
                "description": format!("{} criterion, exactly as listed (lowercase); omitted, empty or `any` leaves it open", d.key()),
                "schema": {"type": "string", "enum": criterion_enum(*d)},
            })
        })
        .collect()
}

fn format_param() -> Value {
    json!({
        "name": "format",
        "in": "query",
        "required": false,
        "description": "Response format; overrides the Accept header. Default json.",
        "schema": {"type": "string", "enum": ["json", "yaml"]},
    })
}

fn set_param() -> Value {
    json!({
        "name": super::request::SET_PARAM,
        "in": "query",
        "required": false,
        "style": "form",
        "explode": true,
        "description": "Override applied after the overlays, COMPONENT:dotted.path=VALUE (repeatable; the last one for a path wins). COMPONENT is a component name or an alias from components/aliases.yaml (gpuoperator, dradriver, ...). VALUE is typed: true/false are booleans, integers and decimals numbers, anything else (or anything in quotes) a string. COMPONENT:enabled=false removes a component, COMPONENT:enabled=true restores one an overlay removed. Recorded in metadata.overrides.",
        "schema": {
            "type": "array",
            "maxItems": super::request::MAX_SETS,
            "items": {"type": "string", "minLength": 3, "maxLength": super::request::MAX_SET_LEN},
        },
        "example": ["gpuoperator:driver.version=580.95.05"],
    })
}

fn set_json_param() -> Value {
    json!({
        "name": super::request::SET_JSON_PARAM,
        "in": "query",
        "required": false,
        "style": "form",
        "explode": true,
        "description": "Override with a JSON value, COMPONENT:dotted.path=JSON (repeatable; applied after every `set`). An object deep-merges into the map at the path, null deletes the key (also inside an object), lists and scalars replace; `enabled` is not accepted (use `set`). A component not in the recipe is an error. Recorded in metadata.overrides.",
        "schema": {
            "type": "array",
            "maxItems": super::request::MAX_SETS,
            "items": {"type": "string", "minLength": 3, "maxLength": super::request::MAX_SET_LEN},
        },
        "example": ["gpuoperator:driver={\"version\":\"580.95.05\",\"rdma\":null}"],
    })
}

fn error_ref() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}})
}

/// Error responses for the listed statuses, each described by the codes it can carry.
fn errors(statuses: &[u16]) -> Map<String, Value> {
    statuses
        .iter()
        .map(|s| {
            let codes: Vec<&str> = ERROR_CODES
                .iter()
                .filter(|(_, st)| st == s)
                .map(|(c, _)| *c)
                .collect();
            (
                s.to_string(),
                json!({
                    "description": format!("Error; `error.code` is one of: {}", codes.join(", ")),
                    "content": error_ref(),
                }),
            )
        })
        .collect()
}

fn responses(ok: Value, statuses: &[u16]) -> Value {
    let mut m = Map::new();
    m.insert("200".into(), ok);
    m.extend(errors(statuses));
    Value::Object(m)
}

fn document_ok(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Recipe"}},
            "application/yaml": {"schema": {"$ref": "#/components/schemas/Recipe"}},
        }
    })
}

/// Statuses every `/v1` route can answer besides its own.
const V1_COMMON: &[u16] = &[400, 405, 406, 408, 500, 503];

pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    // Named structs become `$ref`s; their definitions (ErrorResponse, ErrorDetail) land in
    // the generator under `#/components/schemas/`.
    let _ = generator.subschema_for::<ErrorResponse>();
    let mut schemas = generator.take_definitions(true);

    let criteria_props: Map<String, Value> = Dimension::ALL
        .iter()
        .map(|d| {
            let mut values = criterion_enum(*d);
            values.push(Value::Null);
            (
                d.key().to_string(),
                json!({"type": "string", "nullable": true, "enum": values}),
            )
        })
        .collect();
    schemas.insert(
        "Criteria".into(),
        json!({
            "type": "object",
            "description": "Recipe criteria, values exactly as listed (lowercase); an omitted, null, empty or `any` dimension is left open.",
            "properties": criteria_props,
            "additionalProperties": false,
        }),
    );
    schemas.insert(
        "CriteriaRequest".into(),
        json!({
            "description": "Criteria, flat or under a `criteria` key (the shapes a --criteria file accepts).",
            "anyOf": [
                {"$ref": "#/components/schemas/Criteria"},
                {
                    "type": "object",
                    "required": ["criteria"],
                    "properties": {"criteria": {"$ref": "#/components/schemas/Criteria"}},
                    "additionalProperties": false,
                }
            ]
        }),
    );
    schemas.insert(
        "Recipe".into(),
        json!({
            "type": "object",
            "description": "A version-locked recipe, exactly as `aiconform recipe --format json` writes it (GET /v1/recipe). Bundling also checks what a schema cannot (dependencies, references, values); failures are 422.",
            "required": ["apiVersion", "kind", "metadata", "criteria", "constraints", "deploymentOrder", "components"],
            "properties": {
                "apiVersion": {"type": "string", "enum": [crate::recipe::overlay::API_VERSION]},
                "kind": {"type": "string", "enum": [crate::recipe::resolve::RECIPE_KIND]},
                "metadata": {
                    "type": "object",
                    "required": ["name", "toolVersion", "appliedOverlays", "valueCount"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,253}$"},
                        "toolVersion": {"type": "string"},
                        "appliedOverlays": {"type": "array", "items": {"type": "string"}},
                        "valueCount": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                        "overrides": {"type": "array", "items": {
                            "type": "object",
                            "required": ["component", "path", "value"],
                            "properties": {
                                "component": {"type": "string"},
                                "path": {"type": "string"},
                                "value": {},
                                "dependents": {"type": "array", "items": {"type": "string"}},
                            },
                        }},
                        "excludedOverlays": {"type": "array", "items": {
                            "type": "object",
                            "required": ["name", "reason"],
                            "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
                        }},
                        "constraintWarnings": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "criteria": {"type": "object", "additionalProperties": {"type": "string"}},
                "constraints": {"type": "array", "items": {
                    "type": "object",
                    "required": ["name", "value", "source"],
                    "properties": {
                        "name": {"type": "string"},
                        "value": {"type": "string"},
                        "source": {"type": "string"},
                    },
                }},
                "deploymentOrder": {"type": "array", "items": {"type": "string"}},
                "components": {"type": "array", "items": {"$ref": "#/components/schemas/Component"}},
                "validation": {},
            }
        }),
    );
    schemas.insert(
        "Component".into(),
        json!({
            "type": "object",
            "required": ["name", "type", "version", "namespace"],
            "properties": {
                "name": {"type": "string", "pattern": DNS_LABEL},
                "type": {"type": "string", "enum": ["Helm", "Kustomize", "Manifest"]},
                "source": {"type": "string"},
                "chart": {"type": "string"},
                "version": {"type": "string", "pattern": "^[A-Za-z0-9._+][A-Za-z0-9._+-]{0,127}$"},
                "namespace": {"type": "string", "pattern": DNS_LABEL},
                "dependencyRefs": {"type": "array", "items": {"type": "string", "pattern": DNS_LABEL}},
                "healthChecks": {"type": "array", "items": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "properties": {
                        "kind": {"type": "string", "enum": crate::bundle::HEALTH_KINDS},
                        "name": {"type": "string"},
                        "namespace": {"type": "string"},
                    },
                    "additionalProperties": false,
                }},
                "overlays": {"type": "array", "items": {"type": "string"}},
                "values": {},
                "manifests": {"type": "array", "items": {
                    "type": "object",
                    "required": ["name", "content"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$"},
                        "content": {"type": "string"},
                    },
                }},
            },
        }),
    );
    let option_props: Map<String, Value> = super::bundle::OPTION_FIELDS
        .iter()
        .map(|(name, schema)| ((*name).to_string(), schema()))
        .collect();
    schemas.insert(
        "BundleOptions".into(),
        json!({"type": "object", "properties": option_props, "additionalProperties": false}),
    );
    debug_assert_eq!(BUNDLE_FIELDS, ["criteria", "recipe", "options"]);
    schemas.insert(
        "BundleRequest".into(),
        json!({
            "type": "object",
            "description": "Render the recipe for `criteria`, or the `recipe` given (not both); neither means all criteria `any`.",
            "properties": {
                "criteria": {"$ref": "#/components/schemas/Criteria"},
                "recipe": {"$ref": "#/components/schemas/Recipe"},
                "options": {"$ref": "#/components/schemas/BundleOptions"},
            },
            "additionalProperties": false,
            "not": {"required": ["criteria", "recipe"]},
        }),
    );
    schemas.insert(
        "Status".into(),
        json!({
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}, "overlays": {"type": "integer"}},
        }),
    );

    let mut recipe_get_params = criteria_params();
    recipe_get_params.push(format_param());
    recipe_get_params.push(set_param());
    recipe_get_params.push(set_json_param());
    let mut query_params = criteria_params();
    query_params.push(json!({
        "name": "selector",
        "in": "query",
        "required": true,
        "description": "Dotted path into the recipe, e.g. components.gpu-operator.version; quote keys with dots: a.\"b.c\"",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": super::request::MAX_SELECTOR_LEN,
            "pattern": SELECTOR_PATTERN,
        },
        "example": "deploymentOrder",
    }));
    query_params.push(format_param());
    query_params.push(set_param());
    query_params.push(set_json_param());

    let status_ok = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}});

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "aiconform API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Recipes, queries and bundles over HTTP, computed by the same engine as the aiconform CLI. Every error is JSON: {\"error\": {\"code\", \"message\", \"field\"?}}.",
        },
        "paths": {
            "/v1/recipe": {
                "get": {
                    "operationId": "getRecipe",
                    "summary": "Compose the recipe for criteria given as query parameters",
                    "parameters": recipe_get_params,
                    "responses": responses(document_ok("The recipe (JSON by default; YAML with format=yaml or Accept: application/yaml)"), V1_COMMON),
                },
                "post": {
                    "operationId": "postRecipe",
                    "summary": "Compose the recipe for criteria given as a JSON body",
                    "parameters": [format_param(), set_param(), set_json_param()],
                    "requestBody": {
                        "required": false,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CriteriaRequest"}}},
                    },
                    "responses": responses(document_ok("The recipe"), &[400, 405, 406, 408, 413, 415, 500, 503]),
                },
            },
            "/v1/query": {
                "get": {
                    "operationId": "query",
                    "summary": "One value of the recipe composed for the criteria",
                    "parameters": query_params,
                    "responses": responses(json!({
                        "description": "The selected value (any JSON value; YAML with format=yaml)",
                        "content": {"application/json": {"schema": {}}, "application/yaml": {"schema": {}}},
                    }), &[400, 404, 405, 406, 408, 500, 503]),
                },
            },
            "/v1/bundle": {
                "post": {
                    "operationId": "bundle",
                    "summary": "Render a recipe into a deployable bundle (gzip-compressed tar)",
                    "parameters": [set_param(), set_json_param()],
                    "requestBody": {
                        "required": false,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BundleRequest"}}},
                    },
                    "responses": responses(json!({
                        "description": "The bundle as a .tar.gz archive",
                        "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
                    }), &[400, 405, 408, 413, 415, 422, 500, 503]),
                },
            },
            "/healthz": {"get": {
                "operationId": "healthz",
                "summary": "Liveness: the process is serving",
                "responses": responses(status_ok("Alive"), &[405]),
            }},
            "/readyz": {"get": {
                "operationId": "readyz",
                "summary": "Readiness: the catalog is loaded and the server is not shutting down",
                "responses": responses(status_ok("Ready; `overlays` is the catalog size"), &[405, 503]),
            }},
            "/metrics": {"get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (text exposition format 0.0.4)",
                "responses": responses(json!({
                    "description": "Request counts by route and status, latency histograms",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }), &[405]),
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": responses(json!({
                    "description": "OpenAPI 3.0 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }), &[405]),
            }},
            "/schemas/aiconform-config.json": {"get": {
                "operationId": "configSchema",
                "summary": "JSON Schema of the CLI's --config file (kind: AiconformConfig)",
                "responses": responses(json!({
                    "description": "JSON Schema (draft 2020-12)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }), &[405]),
            }},
        },
        "components": {"schemas": schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_every_route_and_the_error_shape() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let documented: Vec<(&str, Vec<&str>)> = paths
            .iter()
            .map(|(p, ops)| {
                (
                    p.as_str(),
                    ops.as_object()
                        .unwrap()
                        .keys()
                        .map(String::as_str)
                        .collect(),
                )
            })
            .collect();
        assert_eq!(documented.len(), ROUTES.len());
        for (path, methods) in ROUTES {
            let ops = &paths[*path];
            for m in *methods {
                assert!(ops[m]["responses"]["200"].is_object(), "{path} {m}");
            }
        }
        let err = &doc["components"]["schemas"]["ErrorResponse"];
        assert_eq!(err["type"], "object", "{err}");
        let detail = serde_json::to_string(&doc["components"]["schemas"]).unwrap();
        for word in ["\"code\"", "\"message\"", "\"field\""] {
            assert!(detail.contains(word), "{word} missing from {detail}");
        }
        assert_eq!(
            doc["paths"]["/v1/recipe"]["get"]["parameters"][1]["schema"]["enum"][0],
            "h100"
        );
        // Every $ref points at a defined schema.
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
    }
}
