//! Recipes for tests that check constraints: a recipe holding only the given constraints,
//! written to a file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aiconform::recipe::model::{Constraint, Recipe, RecipeMetadata};

/// Write `<dir>/<name>.yaml`: a recipe named `name` with these constraints from `base`.
pub fn write_constraint_recipe(dir: &Path, name: &str, constraints: &[(&str, &str)]) -> PathBuf {
    let r = Recipe {
        api_version: "aiconform.dev/v1alpha1".into(),
        kind: "Recipe".into(),
        metadata: RecipeMetadata {
            name: name.into(),
            tool_version: "0.1.0".into(),
            applied_overlays: vec!["base".into()],
            value_count: 0,
            ..Default::default()
        },
        criteria: Default::default(),
        constraints: constraints
            .iter()
            .map(|(n, v)| Constraint {
                name: n.to_string(),
                value: v.to_string(),
                source: "base".into(),
            })
            .collect(),
        deployment_order: vec![],
        components: vec![],
        validation: serde_json::Value::Null,
    };
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, aiconform::yaml::to_string(&r).unwrap()).unwrap();
    path
}
