//! API errors: one JSON shape for every failure,
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::recipe::RecipeError;
use crate::recipe::criteria::{ANY, CriteriaError, Dimension, UnknownCriterion};

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_criterion`.
    pub code: String,
    /// Human-readable explanation, including what would have been accepted.
    pub message: String,
    /// The query parameter or body field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Every error code the API returns, with its HTTP status. Listed in the OpenAPI document.
pub const ERROR_CODES: &[(&str, u16)] = &[
    ("invalid_parameter", 400),
    ("unknown_parameter", 400),
    ("invalid_criterion", 400),
    ("invalid_body", 400),
    ("invalid_selector", 400),
    ("invalid_recipe", 400),
    ("invalid_set", 400),
    ("selector_not_found", 404),
    ("not_found", 404),
    ("method_not_allowed", 405),
    ("not_acceptable", 406),
    ("request_timeout", 408),
    ("payload_too_large", 413),
    ("unsupported_media_type", 415),
    ("bundle_failed", 422),
    ("internal", 500),
    ("recipe_composition_failed", 500),
    ("overloaded", 503),
    ("not_ready", 503),
];

/// A failed request: status plus the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn not_found_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route for {method} {path}; see /openapi.json for the routes this server offers"
            ),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{path} does not accept {method}; the Allow header lists the methods it does"),
        )
    }

    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl From<UnknownCriterion> for ApiError {
    fn from(e: UnknownCriterion) -> Self {
        ApiError::bad_request("invalid_criterion", e.to_string()).with_field(e.dimension.key())
    }
}

impl From<CriteriaError> for ApiError {
    fn from(e: CriteriaError) -> Self {
        match e {
            CriteriaError::Unknown(u) => u.into(),
            CriteriaError::Nodes { .. } => {
                ApiError::bad_request("invalid_criterion", e.to_string()).with_field("nodes")
            }
        }
    }
}

/// The allowed values of a dimension as a comma list, `any` last (for messages).
pub fn allowed_values(d: Dimension) -> String {
    let mut v: Vec<&str> = d.allowed().to_vec();
    v.push(ANY);
    v.join(", ")
}

/// Map an engine error raised while answering a request. Selector errors are the client's
/// (404: the path does not exist in this recipe); anything else means the catalog cannot
/// produce a recipe for valid criteria, which is a data problem on the server (500).
pub fn from_recipe_error(e: RecipeError) -> ApiError {
    match e {
        RecipeError::Selector { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "selector_not_found", e.to_string())
                .with_field("selector")
        }
        RecipeError::Criterion { source, .. } => source.into(),
        RecipeError::Set { .. } => {
            ApiError::bad_request("invalid_set", e.to_string()).with_field("set")
        }
        RecipeError::UncoveredCriterion { dimension, .. } => {
            ApiError::bad_request("invalid_criterion", e.to_string()).with_field(dimension.key())
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "recipe_composition_failed",
            format!("the recipe catalog could not compose these criteria: {other}"),
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::to_vec(&self.body()).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"error serialization failed"}}"#.to_vec()
        });
        body.push(b'\n');
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// Failures starting the server (the CLI turns these into messages).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
}
