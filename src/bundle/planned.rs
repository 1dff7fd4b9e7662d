//! The bundle's layout shared by its renderers: a component as placed in the bundle
//! ([`Planned`]) and the names of the files every component folder holds. `render` plans;
//! the scripts, README and Argo CD renderers read the plan.

use super::model::BundleComponent;
use super::placement::Injection;

pub const CHECKSUMS_FILE: &str = "checksums.sha256";
pub const RECIPE_FILE: &str = "recipe.yaml";
pub const VALUES_FILE: &str = "values.yaml";
pub const README_FILE: &str = "README.md";

/// A component as laid out in the bundle, with what the README and scripts need to know.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub bc: BundleComponent,
    /// 1-based position in deployment order.
    pub index: usize,
    /// CRDs defined by each manifest, parallel to `bc.manifests`.
    pub manifest_crds: Vec<Vec<String>>,
    pub injections: Vec<Injection>,
    pub overlays: Vec<String>,
    /// Values given for a component type that takes none.
    pub ignored_values: bool,
}
