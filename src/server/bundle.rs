//! `POST /v1/bundle`: adapter between the API and [`crate::bundle`].

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::recipe::model::Recipe;

/// Option names accepted under `options` (none until the bundle engine exposes some).
/// Each entry is the option's name and its OpenAPI schema.
pub const OPTION_FIELDS: &[(&str, OptionSchema)] = &[];

/// Builds the OpenAPI schema of one option.
pub type OptionSchema = fn() -> Value;

/// Render `recipe` into a gzip-compressed tar archive.
pub fn render_tar_gz(_recipe: &Recipe, _options: &Map<String, Value>) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::new(
        axum::http::StatusCode::NOT_IMPLEMENTED,
        "not_implemented",
        "bundle rendering is not available in this build; use GET /v1/recipe and `aiconform bundle`",
    ))
}
