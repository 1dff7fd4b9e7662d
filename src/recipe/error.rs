use crate::recipe::criteria::{CriteriaError, Dimension};
use crate::yaml::YamlError;

/// Everything that can go wrong loading overlays or composing a recipe. Each variant names
/// the file (`origin`) and the entry at fault so the CLI can print an actionable message.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("{origin}: {source}")]
    Criterion {
        origin: String,
        #[source]
        source: CriteriaError,
    },
    #[error("overlay `{name}` is defined twice: {first} and {second}; rename one of them")]
    DuplicateOverlay {
        name: String,
        first: String,
        second: String,
    },
    #[error("{origin}: overlay `{overlay}` has base `{parent}`, which no overlay defines")]
    UnknownParent {
        origin: String,
        overlay: String,
        parent: String,
    },
    #[error("overlay parents form a cycle: {}", .chain.join(" -> "))]
    ParentCycle { chain: Vec<String> },
    #[error(
        "{origin}: component `{component}` refers to {what} `{file}`, which does not exist under the recipes root"
    )]
    MissingFile {
        origin: String,
        component: String,
        what: &'static str,
        file: String,
    },
    #[error(
        "{origin}: component `{component}` depends on `{dependency}`, which is not a component of this recipe"
    )]
    UnknownDependency {
        origin: String,
        component: String,
        dependency: String,
    },
    #[error("component dependencies form a cycle among: {}", .components.join(", "))]
    DependencyCycle { components: Vec<String> },
    #[error("component `{component}` has no {field} after applying overlays {}; set it in one of them", .overlays.join(", "))]
    IncompleteComponent {
        component: String,
        field: &'static str,
        overlays: Vec<String>,
    },
    #[error(
        "no overlay carries {dimension} `{value}`: the recipe would be the one for {dimension} any (overlays that apply: {}); add an overlay whose criteria set `{dimension}: {value}` (with --data DIR), or leave --{dimension} as any",
        .applied.join(", ")
    )]
    UncoveredCriterion {
        dimension: Dimension,
        value: String,
        applied: Vec<String>,
    },
    #[error("no overlays found in {searched}; expected YAML files under overlays/")]
    NoOverlays { searched: String },
    #[error("set `{expr}`: {message}")]
    Set { expr: String, message: String },
    #[error("selector `{selector}`: {message}")]
    Selector { selector: String, message: String },
}

pub type Result<T, E = RecipeError> = std::result::Result<T, E>;

impl From<super::set::SetError> for RecipeError {
    fn from(e: super::set::SetError) -> Self {
        RecipeError::Set {
            expr: e.expr,
            message: e.message,
        }
    }
}
