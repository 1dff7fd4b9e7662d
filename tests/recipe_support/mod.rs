//! Recipes for tests: the shipped eks/h100/ubuntu/training/kubeflow recipe (composed, and as
//! CLI criteria), and a recipe holding only given constraints, written to a file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aiconform::recipe::model::{Constraint, Recipe, RecipeMetadata};
use aiconform::recipe::source::RecipeFiles;
use aiconform::recipe::{Catalog, Criteria, Dimension, compose};

/// The criteria of the eks/h100/ubuntu/training/kubeflow recipe, as CLI flags.
pub const EKS_H100_TRAINING_ARGS: &[&str] = &[
    "--service",
    "eks",
    "--accelerator",
    "h100",
    "--os",
    "ubuntu",
    "--intent",
    "training",
    "--platform",
    "kubeflow",
];

/// The eks/h100/ubuntu/training/kubeflow recipe composed from the built-in catalog.
pub fn eks_h100_training() -> Recipe {
    let mut c = Criteria::new();
    for (d, v) in [
        (Dimension::Service, "eks"),
        (Dimension::Accelerator, "h100"),
        (Dimension::Os, "ubuntu"),
        (Dimension::Intent, "training"),
        (Dimension::Platform, "kubeflow"),
    ] {
        c.set(d, v).unwrap();
    }
    compose(&Catalog::load(RecipeFiles::builtin()).unwrap(), &c).unwrap()
}

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
