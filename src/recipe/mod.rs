//! Recipes: layered overlays composed into one version-locked recipe.
//!
//! Flow: [`source`] reads files (the only I/O) → [`catalog`] parses and validates overlays →
//! [`resolve`] selects, merges and orders them into a [`model::Recipe`].

pub mod aliases;
pub mod catalog;
pub mod conformance;
pub mod criteria;
pub mod error;
pub mod manifest_files;
pub mod matrix;
pub mod merge;
pub mod model;
pub mod order;
pub mod overlay;
pub mod overrides;
pub mod query;
pub mod resolve;
pub mod set;
pub mod source;

pub use catalog::Catalog;
pub use criteria::{Criteria, CriteriaSpec, Dimension};
pub use error::RecipeError;
pub use model::{Component, ComponentType, Recipe};
pub use resolve::{Adjustments, compose, compose_with};

/// Load a recipe file written by `aiconform recipe` (YAML or JSON), with the manifests it
/// names by file read in ([`manifest_files`]).
pub fn load_recipe_file(path: &std::path::Path) -> Result<Recipe, RecipeError> {
    let bytes = std::fs::read(path).map_err(|source| RecipeError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut recipe: Recipe = crate::yaml::from_slice(&bytes, &path.display().to_string())?;
    if recipe.kind != resolve::RECIPE_KIND || recipe.api_version != overlay::API_VERSION {
        return Err(RecipeError::Invalid {
            origin: path.display().to_string(),
            message: format!(
                "not an aiconform recipe (kind `{}`, apiVersion `{}`); create one with `aiconform recipe`",
                recipe.kind, recipe.api_version
            ),
        });
    }
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    manifest_files::resolve(&mut recipe, base).map_err(|message| RecipeError::Invalid {
        origin: path.display().to_string(),
        message,
    })?;
    Ok(recipe)
}

#[cfg(test)]
mod tests;
