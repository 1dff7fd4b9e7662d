//! The router: shared state, middleware (metrics, load shedding, timeouts) and handlers.
//! Handlers are thin: parse with [`super::request`], run the engine, render.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::config::ServerConfig;
use super::error::{ApiError, from_recipe_error};
use super::metrics::Metrics;
use super::request::{
    self, BUNDLE_PARAMS, BundleInput, FORMAT_ONLY, Params, QUERY_PARAMS, RECIPE_PARAMS,
    content_type, negotiate,
};
use crate::bundle::BundleOptions;
use crate::output::Format;
use crate::recipe::aliases::ComponentAliases;
use crate::recipe::model::Recipe;
use crate::recipe::query::select;
use crate::recipe::set::SetExpr;
use crate::recipe::{Adjustments, Catalog, Criteria, compose, compose_with, overrides};

/// Upper bound on cached recipes. Valid criteria form a finite set (well under this), so
/// the cache can never be grown by clients; the bound is belt and braces.
const RECIPE_CACHE_MAX: usize = 4096;

/// Upper bound on cached bundle archives. Their keys include client-chosen options, so the
/// bound is what keeps the cache small (a few MiB); later keys are rendered every time.
const BUNDLE_CACHE_MAX: usize = 256;

/// Everything handlers share. The catalog is loaded once and never changes, so composed
/// recipes are cached by criteria.
pub struct AppState {
    pub catalog: Arc<Catalog>,
    pub config: ServerConfig,
    pub metrics: Metrics,
    permits: Arc<Semaphore>,
    recipes: Mutex<HashMap<Criteria, Arc<Recipe>>>,
    /// Rendered recipe documents by (criteria, is YAML); same bound as `recipes`.
    documents: Mutex<HashMap<(Criteria, bool), Bytes>>,
    /// Bundle archives of catalog recipes (no overrides) by criteria and options.
    bundles: Mutex<HashMap<(Criteria, BundleOptions), Bytes>>,
    openapi: Bytes,
    draining: AtomicBool,
}

impl AppState {
    pub fn new(catalog: Arc<Catalog>, config: ServerConfig) -> Arc<Self> {
        let openapi = serde_json::to_vec_pretty(&super::openapi::document())
            .map(Bytes::from)
            .unwrap_or_default();
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            catalog,
            config,
            metrics: Metrics::default(),
            recipes: Mutex::new(HashMap::new()),
            documents: Mutex::new(HashMap::new()),
            bundles: Mutex::new(HashMap::new()),
            openapi,
            draining: AtomicBool::new(false),
        })
    }

    /// Stop reporting ready (called when shutdown starts, so load balancers drain).
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The recipe for `criteria`, from the cache or composed on a blocking thread.
    async fn recipe(self: &Arc<Self>, criteria: Criteria) -> Result<Arc<Recipe>, ApiError> {
        if let Some(hit) = self.cache().get(&criteria) {
            return Ok(hit.clone());
        }
        let state = self.clone();
        let key = criteria.clone();
        let recipe = tokio::task::spawn_blocking(move || compose(&state.catalog, &criteria))
            .await
            .map_err(|e| ApiError::internal(format!("composition task failed: {e}")))?
            .map_err(from_recipe_error)?;
        let recipe = Arc::new(recipe);
        let mut cache = self.cache();
        if cache.len() < RECIPE_CACHE_MAX {
            cache.insert(key, recipe.clone());
        }
        Ok(recipe)
    }

    /// The recipe for `criteria` with `set` overrides: cached when there are none, else
    /// composed afresh (overrides are unbounded in number, so they are never cache keys).
    async fn recipe_with_sets(
        self: &Arc<Self>,
        criteria: Criteria,
        sets: Vec<SetExpr>,
    ) -> Result<Arc<Recipe>, ApiError> {
        if sets.is_empty() {
            return self.recipe(criteria).await;
        }
        let state = self.clone();
        let recipe = tokio::task::spawn_blocking(move || {
            let adj = Adjustments {
                sets,
                ..Default::default()
            };
            compose_with(&state.catalog, &criteria, &adj)
        })
        .await
        .map_err(|e| ApiError::internal(format!("composition task failed: {e}")))?
        .map_err(from_recipe_error)?;
        Ok(Arc::new(recipe))
    }

    /// The recipe for `criteria` (and `sets`) rendered as `format`; without overrides
    /// cached, so the same bytes every time.
    async fn recipe_document(
        self: &Arc<Self>,
        criteria: Criteria,
        sets: Vec<SetExpr>,
        format: Format,
    ) -> Result<Bytes, ApiError> {
        if !sets.is_empty() {
            let recipe = self.recipe_with_sets(criteria, sets).await?;
            let text = tokio::task::spawn_blocking(move || format.render(&*recipe))
                .await
                .map_err(|e| ApiError::internal(format!("rendering task failed: {e}")))?
                .map_err(|e| ApiError::internal(format!("cannot render the recipe: {e}")))?;
            return Ok(Bytes::from(text));
        }
        let key = (criteria, format == Format::Yaml);
        if let Some(hit) = lock(&self.documents).get(&key) {
            return Ok(hit.clone());
        }
        let recipe = self.recipe(key.0.clone()).await?;
        let text = tokio::task::spawn_blocking(move || format.render(&*recipe))
            .await
            .map_err(|e| ApiError::internal(format!("rendering task failed: {e}")))?
            .map_err(|e| ApiError::internal(format!("cannot render the recipe: {e}")))?;
        let bytes = Bytes::from(text);
        let mut docs = lock(&self.documents);
        if docs.len() < 2 * RECIPE_CACHE_MAX {
            docs.insert(key, bytes.clone());
        }
        Ok(bytes)
    }

    /// The tar.gz bundle of `recipe`, rendered on a blocking thread. With a `key` (a catalog
    /// recipe without overrides: the same key always means the same recipe) the archive is
    /// cached, and rendering is deterministic, so a hit gives the very bytes a render would.
    async fn bundle_archive(
        &self,
        recipe: Arc<Recipe>,
        options: BundleOptions,
        client_recipe: bool,
        key: Option<(Criteria, BundleOptions)>,
    ) -> Result<Bytes, ApiError> {
        if let Some(hit) = key
            .as_ref()
            .and_then(|k| lock(&self.bundles).get(k).cloned())
        {
            return Ok(hit);
        }
        let bytes = tokio::task::spawn_blocking(move || {
            super::bundle::render_tar_gz(&recipe, &options, client_recipe)
        })
        .await
        .map_err(|e| ApiError::internal(format!("bundle task failed: {e}")))??;
        let bytes = Bytes::from(bytes);
        if let Some(key) = key {
            let mut bundles = lock(&self.bundles);
            if bundles.len() < BUNDLE_CACHE_MAX {
                bundles.insert(key, bytes.clone());
            }
        }
        Ok(bytes)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Criteria, Arc<Recipe>>> {
        lock(&self.recipes)
    }
}

/// Lock a cache. A panic while holding one cannot leave it inconsistent (each update is a
/// single insert), so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Build the router with every route, the JSON 404/405 fallbacks and the middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/recipe", get(get_recipe).post(post_recipe))
        .route("/v1/query", get(get_query))
        .route("/v1/bundle", post(post_bundle))
        .route_layer(middleware::from_fn_with_state(state.clone(), limit));
    Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/schemas/aiconform-config.json", get(config_schema))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Outermost middleware: count every response by route template and status.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let _in_flight = state.metrics.start();
    let resp = next.run(req).await;
    state
        .metrics
        .observe(&method, &route, resp.status().as_u16(), start.elapsed());
    resp
}

/// `/v1/*` only: shed load past the concurrency limit (503, no queue) and enforce the
/// per-request deadline (408), body upload included.
async fn limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Ok(permit) = state.permits.clone().try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "the server is handling its limit of {} requests; retry shortly",
                state.config.concurrency
            ),
        )
        .into_response();
    };
    let timeout = state.config.timeout;
    let resp = tokio::time::timeout(timeout, next.run(req)).await;
    drop(permit);
    match resp {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request took longer than {timeout:?}; retry, or send the body faster"),
        )
        .into_response(),
    }
}

type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn params(q: RawQuery, allowed: &[&str]) -> Result<Params, ApiError> {
    let Query(pairs) = q.map_err(|e| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("malformed query string: {}", e.body_text()),
        )
    })?;
    Params::parse(pairs, allowed)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Read a JSON body within `max_body` bytes: 413 past the limit, 415 for non-JSON types.
async fn read_json(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    request::check_json_content_type(header_str(headers, header::CONTENT_TYPE))?;
    let max = state.config.max_body;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is over the {max} byte limit"),
        )
    };
    if let Some(len) =
        header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
        && len > max as u64
    {
        return Err(too_large());
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("could not read the request body: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > max {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    request::parse_json_body(&buf)
}

fn with_type(format: Format, bytes: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(format)),
        )],
        bytes,
    )
        .into_response()
}

fn document(format: Format, value: &impl serde::Serialize) -> Result<Response, ApiError> {
    let text = format
        .render(value)
        .map_err(|e| ApiError::internal(format!("cannot render the response: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(format)),
        )],
        text,
    )
        .into_response())
}

async fn get_recipe(
    State(state): State<Arc<AppState>>,
    q: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = params(q, RECIPE_PARAMS)?;
    let criteria = p.criteria()?;
    let sets = p.sets()?;
    let format = negotiate(p.get("format"), header_str(&headers, header::ACCEPT))?;
    let bytes = state.recipe_document(criteria, sets, format).await?;
    Ok(with_type(format, bytes))
}

async fn post_recipe(
    State(state): State<Arc<AppState>>,
    q: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = params(q, FORMAT_ONLY)?;
    let sets = p.sets()?;
    let format = negotiate(p.get("format"), header_str(&headers, header::ACCEPT))?;
    let value = read_json(&state, &headers, body).await?;
    let criteria = request::criteria_from_json(&value, "")?;
    let bytes = state.recipe_document(criteria, sets, format).await?;
    Ok(with_type(format, bytes))
}

async fn get_query(
    State(state): State<Arc<AppState>>,
    q: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = params(q, QUERY_PARAMS)?;
    let criteria = p.criteria()?;
    let selector = request::check_selector(p.get("selector"))?;
    let sets = p.sets()?;
    let format = negotiate(p.get("format"), header_str(&headers, header::ACCEPT))?;
    let recipe = state.recipe_with_sets(criteria, sets).await?;
    let value = select(&recipe, &selector).map_err(from_recipe_error)?;
    document(format, &value)
}

async fn post_bundle(
    State(state): State<Arc<AppState>>,
    q: RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sets = params(q, BUNDLE_PARAMS)?.sets()?;
    let value = read_json(&state, &headers, body).await?;
    let (input, options) = request::bundle_request(&value)?;
    let options = super::bundle::options_from_json(&options)?;
    let (recipe, client_recipe, key) = match input {
        BundleInput::Criteria(c) => {
            let key = sets.is_empty().then(|| (c.clone(), options.clone()));
            (state.recipe_with_sets(c, sets).await?, false, key)
        }
        BundleInput::Recipe(mut r) => {
            if !sets.is_empty() {
                let aliases =
                    ComponentAliases::load(&state.catalog.files).map_err(from_recipe_error)?;
                overrides::apply_exprs(&mut r, &sets, &aliases).map_err(from_recipe_error)?;
            }
            (Arc::new(*r), true, None)
        }
    };
    let name = download_name(&recipe.metadata.name);
    let bytes = state
        .bundle_archive(recipe, options, client_recipe, key)
        .await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}.tar.gz\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"bundle.tar.gz\""));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/gzip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// A file name from a recipe name: letters, digits, `-`, `_`, `.` only, never empty.
fn download_name(recipe_name: &str) -> String {
    let s: String = recipe_name
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '.' || c == '-').to_string();
    if s.is_empty() { "bundle".into() } else { s }
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_draining() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the server is shutting down",
        )
        .into_response();
    }
    json_response(
        StatusCode::OK,
        &json!({"status": "ready", "overlays": state.catalog.overlays.len()}),
    )
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let text = state.metrics.render(&[
        (
            "aiconform_catalog_overlays",
            "Overlays in the loaded recipe catalog.",
            state.catalog.overlays.len() as f64,
        ),
        (
            "aiconform_recipe_cache_entries",
            "Composed recipes cached by criteria.",
            state.cache().len() as f64,
        ),
        (
            "aiconform_bundle_cache_entries",
            "Bundle archives of catalog recipes cached by criteria and options.",
            lock(&state.bundles).len() as f64,
        ),
    ]);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.clone(),
    )
        .into_response()
}

/// The JSON Schema of the CLI's `--config` file, as published in docs/ (a test of the CLI
/// keeps that file current with the commands' flags).
const CONFIG_SCHEMA: &str = include_str!("../../docs/aiconform-config.schema.json");

async fn config_schema() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/schema+json"),
        )],
        CONFIG_SCHEMA,
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found_route(method.as_str(), &truncated_path(&uri))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), &truncated_path(&uri))
}

fn truncated_path(uri: &Uri) -> String {
    let p = uri.path();
    if p.len() > 200 {
        let mut end = 200;
        while !p.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &p[..end])
    } else {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_safe() {
        assert_eq!(download_name("eks-h100-training"), "eks-h100-training");
        assert_eq!(download_name("../../etc/passwd"), "etc-passwd");
        assert_eq!(download_name("a\"b\r\n"), "a-b");
        assert_eq!(download_name(""), "bundle");
        assert_eq!(download_name("..."), "bundle");
    }
}
