//! HTTP tests of `aiconform serve` over loopback: every route, every error class, limits,
//! metrics, the OpenAPI document, bundles, graceful shutdown and the CLI startup line.

mod recipe_support;
mod server_support;

use std::io::Read;
use std::time::Duration;

use aiconform::output::Format;
use aiconform::recipe::criteria::Dimension;
use aiconform::recipe::{Criteria, compose};
use aiconform::server::openapi::ROUTES;
use aiconform::server::{ServerConfig, Shutdown};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server_support::{TestServer, catalog, raw_request};

const FULL: &str = "service=eks&accelerator=h100&os=ubuntu&intent=training&platform=kubeflow";

fn criteria(pairs: &[(Dimension, &str)]) -> Criteria {
    let mut c = Criteria::new();
    for (d, v) in pairs {
        c.set(*d, v).expect("valid test criteria");
    }
    c
}

/// Assert the JSON error shape and return (code, field).
async fn error_of(resp: reqwest::Response) -> (String, Option<String>, String) {
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/json", "error content type");
    let v: Value = resp.json().await.expect("error body is JSON");
    let err = v["error"].as_object().expect("error object");
    for key in err.keys() {
        assert!(["code", "message", "field"].contains(&key.as_str()), "{v}");
    }
    (
        err["code"].as_str().expect("code").to_string(),
        err.get("field").and_then(Value::as_str).map(str::to_string),
        err["message"].as_str().expect("message").to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_get_equals_cli_output_byte_for_byte() {
    let s = TestServer::start(ServerConfig::default()).await;
    for (query, args) in [
        ("", vec![]),
        (FULL, recipe_support::EKS_H100_TRAINING_ARGS.to_vec()),
        (
            "service=gke&accelerator=h100&intent=training",
            vec![
                "--service",
                "gke",
                "--accelerator",
                "h100",
                "--intent",
                "training",
            ],
        ),
    ] {
        for format in ["json", "yaml"] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
                .arg("recipe")
                .args(&args)
                .args(["--format", format])
                .output()
                .expect("run aiconform recipe");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let resp = s.get(&format!("/v1/recipe?{query}&format={format}")).await;
            assert_eq!(resp.status(), 200);
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            assert_eq!(ct, format!("application/{format}"));
            let body = resp.bytes().await.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&out.stdout),
                "GET /v1/recipe?{query} ({format}) differs from the CLI"
            );
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipe_negotiation_and_post_body() {
    let s = TestServer::start(ServerConfig::default()).await;
    let c = criteria(&[(Dimension::Service, "eks"), (Dimension::Intent, "training")]);
    let expected_json = Format::Json
        .render(&compose(&catalog(), &c).unwrap())
        .unwrap();
    let expected_yaml = Format::Yaml
        .render(&compose(&catalog(), &c).unwrap())
        .unwrap();

    // Default JSON; Accept: application/yaml gives YAML; format= wins over Accept.
    let r = s.get("/v1/recipe?service=eks&intent=training").await;
    assert_eq!(r.text().await.unwrap(), expected_json);
    let r = s
        .client
        .get(s.url("/v1/recipe?service=eks&intent=training"))
        .header("accept", "text/html;q=0.9, application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/yaml");
    assert_eq!(r.text().await.unwrap(), expected_yaml);
    let r = s
        .client
        .get(s.url("/v1/recipe?service=eks&intent=training&format=json"))
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), expected_json);
    let r = s
        .client
        .get(s.url("/v1/recipe"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    assert_eq!(error_of(r).await.0, "not_acceptable");

    // POST: flat and nested bodies give the same recipe as GET.
    for body in [
        json!({"service": "eks", "intent": "training"}),
        json!({"criteria": {"service": "eks", "intent": "training", "os": null}}),
    ] {
        let r = s
            .client
            .post(s.url("/v1/recipe"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{body}");
        assert_eq!(r.text().await.unwrap(), expected_json);
    }
    let r = s
        .client
        .post(s.url("/v1/recipe?format=yaml"))
        .json(&json!({"service": "eks", "intent": "training"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), expected_yaml);
    // No body: all criteria any.
    let r = s.client.post(s.url("/v1/recipe")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let generic = Format::Json
        .render(&compose(&catalog(), &Criteria::new()).unwrap())
        .unwrap();
    assert_eq!(r.text().await.unwrap(), generic);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_the_field() {
    let s = TestServer::start(ServerConfig::default()).await;
    let cases: &[(&str, &str, Option<&str>, &[&str])] = &[
        (
            "/v1/recipe?accelerator=v100",
            "invalid_criterion",
            Some("accelerator"),
            &["h100", "gb200", "any"],
        ),
        (
            "/v1/recipe?service=EKS",
            "invalid_criterion",
            Some("service"),
            &["did you mean `eks`?"],
        ),
        (
            "/v1/recipe?os=windows",
            "invalid_criterion",
            Some("os"),
            &["ubuntu", "rhel"],
        ),
        (
            "/v1/recipe?acclerator=h100",
            "unknown_parameter",
            Some("acclerator"),
            &["accelerator"],
        ),
        (
            "/v1/recipe?os=ubuntu&os=rhel",
            "invalid_parameter",
            Some("os"),
            &["more than once"],
        ),
        (
            "/v1/recipe?format=xml",
            "invalid_parameter",
            Some("format"),
            &["json, yaml"],
        ),
        (
            "/v1/query?service=eks",
            "invalid_parameter",
            Some("selector"),
            &["required"],
        ),
        (
            "/v1/query?selector=a..b",
            "invalid_selector",
            Some("selector"),
            &["empty segment"],
        ),
        (
            "/v1/query?selector=%22a",
            "invalid_selector",
            Some("selector"),
            &["quote"],
        ),
        (
            "/v1/query?selector=kind&intent=sleeping",
            "invalid_criterion",
            Some("intent"),
            &["training, inference"],
        ),
    ];
    for (path, code, field, words) in cases {
        let r = s.get(path).await;
        assert_eq!(r.status(), 400, "{path}");
        let (c, f, msg) = error_of(r).await;
        assert_eq!((c.as_str(), f.as_deref()), (*code, *field), "{path}: {msg}");
        for w in *words {
            assert!(msg.contains(w), "{path}: `{w}` not in {msg}");
        }
    }
    let posts: &[(&str, &str, &str, Option<&str>)] = &[
        ("/v1/recipe", "{\"service\":", "invalid_body", None),
        ("/v1/recipe", "[1,2]", "invalid_body", None),
        (
            "/v1/recipe",
            "{\"gpu\":\"h100\"}",
            "invalid_body",
            Some("gpu"),
        ),
        (
            "/v1/recipe",
            "{\"service\":\"ec2\"}",
            "invalid_criterion",
            Some("service"),
        ),
        (
            "/v1/recipe",
            "{\"service\":7}",
            "invalid_criterion",
            Some("service"),
        ),
        (
            "/v1/bundle",
            "{\"criteria\":{\"os\":\"dos\"}}",
            "invalid_criterion",
            Some("criteria.os"),
        ),
        (
            "/v1/bundle",
            "{\"recipe\":{\"kind\":\"Pod\"}}",
            "invalid_recipe",
            Some("recipe"),
        ),
        (
            "/v1/bundle",
            "{\"options\":{\"deployer\":\"kapp\"}}",
            "invalid_body",
            Some("options.deployer"),
        ),
        (
            "/v1/bundle",
            "{\"criteria\":{},\"recipe\":{}}",
            "invalid_body",
            Some("recipe"),
        ),
    ];
    for (path, body, code, field) in posts {
        let r = s
            .client
            .post(s.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        let (c, f, msg) = error_of(r).await;
        assert_eq!(
            (c.as_str(), f.as_deref()),
            (*code, *field),
            "{path} {body}: {msg}"
        );
    }
    let r = s
        .client
        .post(s.url("/v1/recipe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("service=eks")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(error_of(r).await.0, "unsupported_media_type");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_selects_like_the_engine() {
    let s = TestServer::start(ServerConfig::default()).await;
    let c = criteria(&[
        (Dimension::Service, "eks"),
        (Dimension::Accelerator, "h100"),
    ]);
    let recipe = compose(&catalog(), &c).unwrap();
    let first = recipe.components.first().expect("catalog has components");
    let r = s
        .get(&format!(
            "/v1/query?service=eks&accelerator=h100&selector=components.{}.version",
            first.name
        ))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!(first.version));
    let r = s
        .get("/v1/query?service=eks&accelerator=h100&selector=criteria&format=yaml")
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("service: eks"), "{text}");

    let r = s
        .get("/v1/query?selector=components.no-such-thing.version")
        .await;
    assert_eq!(r.status(), 404);
    let (code, field, msg) = error_of(r).await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("selector_not_found", Some("selector"))
    );
    assert!(msg.contains("no `no-such-thing`"), "{msg}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_wrong_methods_are_json() {
    let s = TestServer::start(ServerConfig::default()).await;
    let r = s.get("/v2/recipe").await;
    assert_eq!(r.status(), 404);
    assert_eq!(error_of(r).await.0, "not_found");
    let r = s.client.delete(s.url("/v1/recipe")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        allow
            .as_deref()
            .is_some_and(|a| a.contains("GET") && a.contains("POST")),
        "{allow:?}"
    );
    assert_eq!(error_of(r).await.0, "method_not_allowed");
    for (path, bad) in [
        ("/v1/bundle", "GET"),
        ("/healthz", "POST"),
        ("/v1/query", "PUT"),
    ] {
        let r = s
            .client
            .request(
                reqwest::Method::from_bytes(bad.as_bytes()).unwrap(),
                s.url(path),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{bad} {path}");
        assert_eq!(error_of(r).await.0, "method_not_allowed");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let s = TestServer::start(ServerConfig {
        max_body: 1024,
        ..ServerConfig::default()
    })
    .await;
    let big = format!("{{\"service\": \"eks\"{}}}", " ".repeat(2048));
    let r = s
        .client
        .post(s.url("/v1/recipe"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (code, _, msg) = error_of(r).await;
    assert_eq!(code, "payload_too_large");
    assert!(msg.contains("1024"), "{msg}");
    // Chunked upload without Content-Length: the limit applies while streaming.
    let chunk = "x".repeat(600);
    let req = format!(
        "POST /v1/bundle HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let (status, body) = raw_request(s.addr, req.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Just under the limit is fine.
    let ok = format!("{{\"service\": \"eks\"{}}}", " ".repeat(900));
    let r = s
        .client
        .post(s.url("/v1/recipe"))
        .header("content-type", "application/json")
        .body(ok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// Open a POST whose body is promised but not yet sent: it holds a concurrency slot.
async fn hold_request(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /v1/recipe HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Send the rest of a held request's body and read its response.
async fn finish_request(mut stream: tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"\"service\":\"eks\"}   ").await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    server_support::parse_response(&buf)
}

async fn wait_for_in_flight(s: &TestServer, n: usize) {
    for _ in 0..200 {
        let m = s.get("/metrics").await.text().await.unwrap();
        // The /metrics request itself is in flight too.
        if m.contains(&format!("aiconform_http_requests_in_flight {}\n", n + 1)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never saw {n} requests in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_sheds_load_with_503() {
    let s = TestServer::start(ServerConfig {
        concurrency: 1,
        ..ServerConfig::default()
    })
    .await;
    let held = hold_request(s.addr).await;
    wait_for_in_flight(&s, 1).await;
    let r = s.get("/v1/recipe").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_of(r).await.0, "overloaded");
    // Probes are not limited.
    assert_eq!(s.get("/healthz").await.status(), 200);
    assert_eq!(s.get("/readyz").await.status(), 200);
    let (status, body) = finish_request(held).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get("/v1/recipe").await.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_408() {
    let s = TestServer::start(ServerConfig {
        timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .await;
    use tokio::io::AsyncReadExt;
    let mut held = hold_request(s.addr).await;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), held.read_to_end(&mut buf))
        .await
        .expect("timed out in time")
        .unwrap();
    let (status, body) = server_support::parse_response(&buf);
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("\"request_timeout\""), "{body}");
    // The slot was released.
    assert_eq!(s.get("/v1/recipe").await.status(), 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let s = TestServer::start(ServerConfig::default()).await;
    let r = s.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["overlays"], json!(catalog().overlays.len()));

    for _ in 0..3 {
        s.get("/v1/recipe?service=eks").await;
    }
    s.get("/v1/recipe?service=nope").await;
    s.get("/no/such/route").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let m = r.text().await.unwrap();
    for line in [
        "aiconform_http_requests_total{method=\"GET\",route=\"/v1/recipe\",status=\"200\"} 3\n",
        "aiconform_http_requests_total{method=\"GET\",route=\"/v1/recipe\",status=\"400\"} 1\n",
        "aiconform_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n",
        "aiconform_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1\n",
        "aiconform_http_request_duration_seconds_count{route=\"/v1/recipe\"} 4\n",
        "aiconform_http_request_duration_seconds_bucket{route=\"/v1/recipe\",le=\"+Inf\"} 4\n",
        "# TYPE aiconform_http_request_duration_seconds histogram\n",
        "aiconform_recipe_cache_entries 1\n",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_they_answer() {
    let s = TestServer::start(ServerConfig::default()).await;
    let r = s.get("/schemas/aiconform-config.json").await;
    assert_eq!(r.status(), 200);
    let schema: Value = r.json().await.unwrap();
    assert_eq!(schema["properties"]["kind"]["const"], "AiconformConfig");
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert_eq!(paths.len(), ROUTES.len());
    for (path, methods) in ROUTES {
        for m in *methods {
            let op = &paths[*path][*m];
            assert!(op["operationId"].is_string(), "{m} {path}");
            // Every documented operation exists on the server (not 404/405).
            let resp = s
                .client
                .request(
                    reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap(),
                    s.url(path),
                )
                .header("content-type", "application/json")
                .body(if *m == "post" { "{}" } else { "" })
                .send()
                .await
                .unwrap();
            assert!(
                ![404, 405].contains(&resp.status().as_u16()),
                "{m} {path}: {}",
                resp.status()
            );
        }
    }
    for name in [
        "ErrorResponse",
        "ErrorDetail",
        "Criteria",
        "BundleRequest",
        "BundleOptions",
        "Recipe",
    ] {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_bundles_are_the_bytes_a_fresh_render_gives() {
    let s = TestServer::start(ServerConfig::default()).await;
    let post = |body: Value| {
        let req = s.client.post(s.url("/v1/bundle")).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        }
    };
    let plain = json!({"criteria": {"service": "eks", "intent": "training"}});
    let placed = json!({"criteria": {"service": "eks", "intent": "training"},
                        "options": {"systemNodeSelector": ["nodeGroup=system"]}});
    let first = post(plain.clone()).await;
    let other = post(placed.clone()).await;
    assert_ne!(first, other, "options are part of the cache key");
    for _ in 0..2 {
        assert_eq!(post(plain.clone()).await, first);
        assert_eq!(post(placed.clone()).await, other);
    }
    // The recipe sent in the body is never cached and renders the same archive.
    let recipe = compose(
        &catalog(),
        &criteria(&[(Dimension::Service, "eks"), (Dimension::Intent, "training")]),
    )
    .unwrap();
    let sent = post(json!({"recipe": serde_json::to_value(&recipe).unwrap()})).await;
    assert_eq!(sent, first);
    let m = s.get("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("aiconform_bundle_cache_entries 2\n"),
        "two cached archives in\n{m}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_is_a_tar_gz_with_values_per_component() {
    let s = TestServer::start(ServerConfig::default()).await;
    let c = criteria(&[
        (Dimension::Service, "eks"),
        (Dimension::Accelerator, "h100"),
        (Dimension::Intent, "training"),
    ]);
    let recipe = compose(&catalog(), &c).unwrap();
    let r = s
        .client
        .post(s.url("/v1/bundle"))
        .json(
            &json!({"criteria": {"service": "eks", "accelerator": "h100", "intent": "training"},
                      "options": {"systemNodeSelector": ["nodeGroup=system"]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".tar.gz\"")
    );
    let gz = r.bytes().await.unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
    let mut names = Vec::new();
    for entry in tar.entries().expect("a tar archive") {
        let mut entry = entry.expect("a tar entry");
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        names.push(name);
    }
    assert!(
        names.iter().any(|n| n.ends_with("bundle.yaml")),
        "{names:?}"
    );
    let helm: Vec<_> = recipe
        .components
        .iter()
        .filter(|c| c.component_type == aiconform::recipe::ComponentType::Helm)
        .collect();
    assert!(!helm.is_empty());
    for (i, c) in recipe.components.iter().enumerate() {
        if c.component_type != aiconform::recipe::ComponentType::Helm {
            continue;
        }
        let suffix = format!("{:02}-{}/values.yaml", i + 1, c.name);
        assert!(
            names.iter().any(|n| n.ends_with(&suffix)),
            "{suffix} not in {names:?}"
        );
    }

    // Sending the recipe itself gives the same archive (deterministic rendering).
    let again = s
        .client
        .post(s.url("/v1/bundle"))
        .json(&json!({"recipe": serde_json::to_value(&recipe).unwrap(),
                      "options": {"systemNodeSelector": ["nodeGroup=system"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap(), gz);

    // A recipe the bundler rejects is the client's problem: 4xx, never 5xx.
    let mut bad = serde_json::to_value(&recipe).unwrap();
    bad["components"][0]["name"] = json!("../etc");
    let r = s
        .client
        .post(s.url("/v1/bundle"))
        .json(&json!({"recipe": bad}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (code, field, _) = error_of(r).await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("invalid_recipe", Some("recipe.components[0].name"))
    );
    // Well-formed but semantically wrong (a component twice): the bundler's 422.
    let mut dup = serde_json::to_value(&recipe).unwrap();
    let first = dup["components"][0].clone();
    dup["components"].as_array_mut().unwrap().push(first);
    let r = s
        .client
        .post(s.url("/v1/bundle"))
        .json(&json!({"recipe": dup}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let (code, field, msg) = error_of(r).await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("bundle_failed", Some("recipe"))
    );
    assert!(msg.contains("twice"), "{msg}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_overrides_match_the_cli_and_errors_name_the_parameter() {
    let s = TestServer::start(ServerConfig::default()).await;
    let sets = [
        "gpuoperator:driver.version=580.95.05",
        "certmanager:enabled=false",
    ];
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args(["recipe", "--service", "eks", "--format", "json"])
        .args(sets.iter().flat_map(|v| ["--set", v]))
        .output()
        .expect("run aiconform recipe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let query: String = sets
        .iter()
        .map(|v| format!("&set={}", v.replace(':', "%3A").replace('=', "%3D")))
        .collect();
    let resp = s.get(&format!("/v1/recipe?service=eks{query}")).await;
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&out.stdout),
        "GET /v1/recipe with set differs from the CLI"
    );
    // Overrides never leak into the cached recipe for the same criteria.
    let plain = s.get("/v1/recipe?service=eks").await.text().await.unwrap();
    assert!(!plain.contains("overrides"), "{plain}");

    let v: Value = s
        .get("/v1/query?service=eks&selector=components.gpu-operator.values.driver.version&set=gpu-operator%3Adriver.version%3D1.5")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!(1.5));

    for (q, needle) in [
        ("set=nope%3Ax%3D1", "unknown component `nope`"),
        ("set=gpu-operator", "no `:`"),
        ("set=dynamo-platform%3Ax%3D1", "not part of this recipe"),
    ] {
        let r = s.get(&format!("/v1/recipe?service=eks&{q}")).await;
        assert_eq!(r.status(), 400, "{q}");
        let (code, field, msg) = error_of(r).await;
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("invalid_set", Some("set")),
            "{q}"
        );
        assert!(msg.contains(needle), "{q}: {msg}");
    }
    let many: String = (0..65)
        .map(|i| format!("&set=gpu-operator%3Ak{i}%3D1"))
        .collect();
    let r = s.get(&format!("/v1/recipe?service=eks{many}")).await;
    assert_eq!(r.status(), 400);
    assert!(error_of(r).await.2.contains("at most 64"));

    // Bundles: set applies to composed and to posted recipes alike.
    let recipe = compose(&catalog(), &criteria(&[(Dimension::Service, "eks")])).unwrap();
    let bundle = |body: Value| {
        s.client
            .post(s.url("/v1/bundle?set=skyhook%3Aenabled%3Dfalse"))
            .json(&body)
            .send()
    };
    let a = bundle(json!({"criteria": {"service": "eks"}}))
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    let a = a.bytes().await.unwrap();
    let names = |gz: &[u8]| -> Vec<String> {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        tar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect()
    };
    assert!(
        !names(&a).iter().any(|n| n.contains("skyhook-operator")),
        "{:?}",
        names(&a)
    );
    let b = bundle(json!({"recipe": serde_json::to_value(&recipe).unwrap()}))
        .await
        .unwrap();
    assert_eq!(b.status(), 200);
    assert!(
        !names(&b.bytes().await.unwrap())
            .iter()
            .any(|n| n.contains("skyhook-operator"))
    );
    let r = s
        .client
        .post(s.url("/v1/bundle?set=nope%3Aenabled%3Dfalse"))
        .json(&json!({"recipe": serde_json::to_value(&recipe).unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_of(r).await.0, "invalid_set");
    s.stop().await;
}

/// Every byte but ASCII letters and digits as `%XX`, for query values.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_json_matches_the_cli_and_bad_input_names_the_parameter() {
    let s = TestServer::start(ServerConfig::default()).await;
    let doc = r#"gpuoperator:driver={"version":"580.95.05","rdma":null}"#;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args([
            "recipe",
            "--service",
            "eks",
            "--format",
            "json",
            "--set-json",
            doc,
        ])
        .output()
        .expect("run aiconform recipe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let encoded = percent_encode(doc);
    let resp = s
        .get(&format!("/v1/recipe?service=eks&set-json={encoded}"))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        String::from_utf8_lossy(&resp.bytes().await.unwrap()),
        String::from_utf8_lossy(&out.stdout),
        "GET /v1/recipe with set-json differs from the CLI"
    );
    let v: Value = s
        .get(&format!(
            "/v1/query?service=eks&selector=components.gpu-operator.values.driver&set-json={encoded}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["version"], "580.95.05");
    assert!(v.get("rdma").is_none(), "null deletes: {v}");
    assert_eq!(v["kernelModuleType"], "open", "merged: {v}");
    for (doc, needle) in [
        ("gpu-operator:driver.version=580.95.05", "is not JSON"),
        (
            "gpu-operator:enabled=false",
            "use --set gpu-operator:enabled",
        ),
        ("nope:x=1", "unknown component `nope`"),
        ("dynamo-platform:x=1", "not part of this recipe"),
    ] {
        let encoded = percent_encode(doc);
        let r = s
            .get(&format!("/v1/recipe?service=eks&set-json={encoded}"))
            .await;
        assert_eq!(r.status(), 400, "{doc}");
        let (code, field, msg) = error_of(r).await;
        assert_eq!(code, "invalid_set", "{doc}");
        assert!(msg.contains(needle), "{doc}: {msg}");
        if needle.contains("JSON") || needle.contains("--set") {
            assert_eq!(field.as_deref(), Some("set-json"), "{doc}");
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let s = TestServer::start(ServerConfig::default()).await;
    let held = hold_request(s.addr).await;
    wait_for_in_flight(&s, 1).await;
    let TestServer {
        stop, handle, addr, ..
    } = s;
    stop.send(()).expect("server running");
    // Give the server a moment to begin draining, then complete the held request.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = finish_request(held).await;
    assert_eq!(status, 200, "{body}");
    let outcome = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("server stopped in time")
        .expect("server task")
        .expect("server result");
    assert_eq!(outcome, Shutdown::Graceful);
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn cli_prints_the_bound_port_and_exits_0_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--timeout",
            "5s",
            "--max-body",
            "64KiB",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn aiconform serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("aiconform serve: listening on http://127.0.0.1:"),
        "{line}"
    );
    let port: u16 = line
        .trim_start_matches("aiconform serve: listening on http://127.0.0.1:")
        .split(' ')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    assert_ne!(port, 0);
    assert!(line.contains("max body 65536 bytes"), "{line}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let c = server_support::http_client().build().unwrap();
        c.get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "exit {code:?}");
}

#[test]
fn cli_rejects_bad_limits_with_a_friendly_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args(["serve", "--max-body", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid size"), "{err}");
}

/// Start `aiconform serve` on a free port; returns the child and its base URL.
fn spawn_serve(extra: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn aiconform serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("startup line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, url)
}

fn stop_child(mut child: std::process::Child) -> std::process::ExitStatus {
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = child.try_wait().expect("wait") {
            return code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cli_layers_data_dirs_over_the_builtin_catalog() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("overlays")).unwrap();
    std::fs::write(
        dir.path().join("overlays/zz-server-test.yaml"),
        "apiVersion: aiconform.dev/v1alpha1\nkind: Overlay\nname: zz-server-test\ncriteria:\n  service: kind\n",
    )
    .unwrap();
    let (child, url) = spawn_serve(&["--data", &dir.path().display().to_string()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ready, recipe) = rt.block_on(async {
        let c = server_support::http_client().build().unwrap();
        let ready: Value = c
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let recipe: Value = c
            .get(format!("{url}/v1/recipe?service=kind"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (ready, recipe)
    });
    assert!(stop_child(child).success());
    assert_eq!(ready["overlays"], json!(catalog().overlays.len() + 1));
    let applied = recipe["metadata"]["appliedOverlays"].as_array().unwrap();
    assert!(applied.contains(&json!("zz-server-test")), "{applied:?}");
}

#[test]
fn cli_explains_a_bad_data_dir() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aiconform"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/nonexistent/aiconform-data",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: cannot load recipe data"), "{err}");
    assert!(err.contains("/nonexistent/aiconform-data"), "{err}");
}
