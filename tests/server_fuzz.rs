//! OpenAPI-driven fuzz of the REST API: requests are generated from `/openapi.json` itself
//! (documented parameters with their enums, request body schemas) mixed with off-schema
//! noise (random strings, unknown parameters, arbitrary JSON, wrong content types). Every
//! answer must be below 500, and every error must have the documented JSON shape.
//!
//! Bounded: a fixed number of cases against an in-process server on 127.0.0.1.
//! `AICONFORM_FUZZ_CASES` raises the count for longer local runs.

mod server_support;

use std::sync::Arc;

use aiconform::server::ServerConfig;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use server_support::TestServer;

#[derive(Debug, Clone)]
struct Case {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    content_type: Option<String>,
    accept: Option<String>,
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn noise_string() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z0-9-]{0,12}",
        "\\PC{0,16}",
        Just(String::new()),
        Just("any".to_string()),
        Just("ANY".to_string()),
        Just(" H100 ".to_string()),
        Just("a..b".to_string()),
        Just("\"".to_string()),
        Just("components.\"x.y\"".to_string()),
    ]
    .boxed()
}

fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        noise_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Values that mostly follow `schema`, sometimes not.
fn value_for(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema);
    if depth > 4 {
        return arbitrary_json();
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let strategies: Vec<BoxedStrategy<Value>> = options
            .iter()
            .map(|s| value_for(doc, s, depth + 1))
            .collect();
        return proptest::strategy::Union::new(strategies).boxed();
    }
    let on_schema: BoxedStrategy<Value> =
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            proptest::sample::select(values.clone()).boxed()
        } else {
            match schema.get("type").and_then(Value::as_str) {
                Some("object") => {
                    let props: Vec<(String, Value)> = schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    let extra = schema.get("additionalProperties").cloned();
                    let fields: Vec<BoxedStrategy<Option<(String, Value)>>> = props
                        .into_iter()
                        .map(|(k, s)| {
                            prop::option::of(
                                value_for(doc, &s, depth + 1).prop_map(move |v| (k.clone(), v)),
                            )
                            .boxed()
                        })
                        .collect();
                    let extra_fields: BoxedStrategy<Vec<(String, Value)>> = match extra {
                        Some(Value::Object(s)) => prop::collection::vec(
                            (
                                "[a-zA-Z./-]{1,12}",
                                value_for(doc, &Value::Object(s), depth + 1),
                            ),
                            0..3,
                        )
                        .boxed(),
                        _ => Just(Vec::new()).boxed(),
                    };
                    (fields, extra_fields)
                        .prop_map(|(fields, extra)| {
                            let mut m = Map::new();
                            for (k, v) in fields.into_iter().flatten().chain(extra) {
                                m.insert(k, v);
                            }
                            Value::Object(m)
                        })
                        .boxed()
                }
                Some("array") => {
                    let items = schema.get("items").cloned().unwrap_or(json!({}));
                    prop::collection::vec(value_for(doc, &items, depth + 1), 0..3)
                        .prop_map(Value::Array)
                        .boxed()
                }
                Some("string") => noise_string().prop_map(Value::String).boxed(),
                Some("integer") => any::<i32>().prop_map(|n| json!(n)).boxed(),
                _ => arbitrary_json(),
            }
        };
    prop_oneof![8 => on_schema, 1 => arbitrary_json()].boxed()
}

/// Every documented operation plus a few undocumented ones, with generated inputs.
fn cases(doc: &Value) -> BoxedStrategy<Case> {
    let mut ops: Vec<BoxedStrategy<Case>> = Vec::new();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in paths {
        for (method, op) in item.as_object().cloned().unwrap_or_default() {
            let params: Vec<Value> = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let param_strats: Vec<BoxedStrategy<Option<(String, String)>>> = params
                .iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or("x").to_string();
                    let values: BoxedStrategy<String> =
                        match p["schema"].get("enum").and_then(Value::as_array) {
                            Some(e) => {
                                let e: Vec<String> = e
                                    .iter()
                                    .filter_map(|v| v.as_str().map(str::to_string))
                                    .collect();
                                prop_oneof![6 => proptest::sample::select(e), 1 => noise_string()]
                                    .boxed()
                            }
                            // Mostly selectors every recipe answers, so happy paths are reached
                            // however many other parameters a query carries.
                            None if name == "selector" => prop_oneof![
                                4 => Just("kind".to_string()),
                                4 => Just("metadata.name".to_string()),
                                2 => Just("components".to_string()),
                                1 => "components\\.[a-z-]{1,20}\\.(version|values|namespace)",
                                1 => noise_string(),
                            ]
                            .boxed(),
                            None if name == "set-json" => prop_oneof![
                                3 => Just(
                                    r#"gpuoperator:driver={"version":"580.95.05","rdma":null}"#
                                        .to_string()
                                ),
                                3 => Just("cert-manager:replicaCount=null".to_string()),
                                1 => Just(r#"nvsentinel:a.b=[1,{"c":null}]"#.to_string()),
                                1 => "[a-z-]{1,20}:[a-zA-Z.]{1,20}=[\\[\\]{}\":,a-z0-9]{0,12}",
                                1 => noise_string(),
                            ]
                            .boxed(),
                            None if name == "set" => prop_oneof![
                                3 => Just("gpuoperator:driver.version=580.95.05".to_string()),
                                3 => Just("cert-manager:replicaCount=2".to_string()),
                                1 => "[a-z-]{1,20}:[a-zA-Z.]{1,20}=[a-z0-9.\"]{0,8}",
                                1 => noise_string(),
                            ]
                            .boxed(),
                            None => noise_string(),
                        };
                    prop::option::weighted(0.6, values.prop_map(move |v| (name.clone(), v))).boxed()
                })
                .collect();
            let junk_params = prop::collection::vec(("[a-z]{1,8}", noise_string()), 0..2);
            let body_schema = op
                .pointer("/requestBody/content/application~1json/schema")
                .cloned();
            let body: BoxedStrategy<Option<Vec<u8>>> = match body_schema {
                Some(s) => prop_oneof![
                    10 => value_for(doc, &s, 0).prop_map(|v| Some(serde_json::to_vec(&v).unwrap_or_default())),
                    1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
                    1 => Just(None),
                ]
                .boxed(),
                None => prop::option::weighted(0.1, prop::collection::vec(any::<u8>(), 0..32)).boxed(),
            };
            let content_type = prop_oneof![
                8 => Just(Some("application/json".to_string())),
                1 => Just(None),
                1 => Just(Some("text/plain".to_string())),
            ];
            let accept = prop_oneof![
                6 => Just(None),
                1 => Just(Some("application/yaml".to_string())),
                1 => Just(Some("text/html".to_string())),
                1 => Just(Some("application/json;q=0.2, text/yaml;q=0.9".to_string())),
                1 => "\\PC{0,20}".prop_map(Some),
            ];
            let method_s = prop_oneof![12 => Just(method.to_uppercase()), 1 => Just("DELETE".to_string()), 1 => Just("PATCH".to_string())];
            let path_s = prop_oneof![12 => Just(path.clone()), 1 => Just(format!("{path}/x")), 1 => Just(path.to_uppercase())];
            ops.push(
                (
                    method_s,
                    path_s,
                    param_strats,
                    junk_params,
                    body,
                    content_type,
                    accept,
                )
                    .prop_map(|(method, path, params, junk, body, content_type, accept)| {
                        let mut query: Vec<(String, String)> =
                            params.into_iter().flatten().collect();
                        query.extend(junk);
                        Case {
                            method,
                            path,
                            query,
                            body,
                            content_type,
                            accept,
                        }
                    })
                    .boxed(),
            );
        }
    }
    proptest::strategy::Union::new(ops).boxed()
}

async fn check(client: &reqwest::Client, base: &str, case: &Case) -> Result<u16, String> {
    let mut url =
        reqwest::Url::parse(&format!("{base}{}", case.path)).map_err(|e| e.to_string())?;
    if !case.query.is_empty() {
        url.query_pairs_mut()
            .extend_pairs(case.query.iter().map(|(k, v)| (k, v)));
    }
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = client.request(method, url);
    if let Some(ct) = &case.content_type {
        req = req.header("content-type", ct);
    }
    if let Some(a) = &case.accept
        && let Ok(v) = reqwest::header::HeaderValue::from_str(a)
    {
        req = req.header("accept", v);
    }
    if let Some(b) = &case.body {
        req = req.body(b.clone());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("transport error: {e}"))?;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if status >= 500 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    if status >= 400 {
        if ct != "application/json" {
            return Err(format!("{status} with content type `{ct}`"));
        }
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| format!("{status} body not JSON: {e}"))?;
        let ok = v["error"]["code"].is_string()
            && v["error"]["message"].is_string()
            && v["error"].as_object().is_some_and(|o| {
                o.keys()
                    .all(|k| ["code", "message", "field"].contains(&k.as_str()))
            });
        if !ok {
            return Err(format!("{status} body does not match ErrorResponse: {v}"));
        }
    }
    Ok(status)
}

#[test]
fn openapi_driven_fuzz_finds_no_5xx() {
    let cases_n: u32 = std::env::var("AICONFORM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let server = rt.block_on(TestServer::start(ServerConfig {
        max_body: 16 * 1024,
        ..ServerConfig::default()
    }));
    let base = server.url("");
    let doc: Value = rt.block_on(async {
        server
            .get("/openapi.json")
            .await
            .json()
            .await
            .expect("openapi JSON")
    });
    let client = server.client.clone();
    let mut runner = TestRunner::new(Config {
        cases: cases_n,
        failure_persistence: None,
        ..Config::default()
    });
    let seen: std::sync::Mutex<std::collections::BTreeMap<(String, String, u16), u32>> =
        Default::default();
    let result = runner.run(&cases(&doc), |case| {
        let status = rt.block_on(check(&client, &base, &case));
        if let Ok(code) = status
            && let Ok(mut seen) = seen.lock()
        {
            *seen
                .entry((case.method.clone(), case.path.clone(), code))
                .or_default() += 1;
        }
        status.map(|_| ()).map_err(|e| {
            TestCaseError::fail(format!(
                "{} {} {:?}: {e}",
                case.method, case.path, case.query
            ))
        })
    });
    rt.block_on(server.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner().unwrap_or_default();
    for ((method, path, status), n) in &seen {
        eprintln!("{n:5} {method} {path} -> {status}");
    }
    // The generator must reach the happy paths, not only errors.
    for (method, path) in [
        ("GET", "/v1/recipe"),
        ("POST", "/v1/recipe"),
        ("GET", "/v1/query"),
        ("POST", "/v1/bundle"),
    ] {
        assert!(
            seen.keys()
                .any(|(m, p, s)| m == method && p == path && *s == 200),
            "no 200 for {method} {path}: {seen:?}"
        );
    }
}
