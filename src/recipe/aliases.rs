//! Component aliases for `--set`: short names declared in `components/aliases.yaml` of the
//! recipe data (so a `--data` tree can add its own), e.g. `gpuoperator` → `gpu-operator`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::error::{RecipeError, Result};
use super::overlay::API_VERSION;
use super::source::RecipeFiles;

/// Where the aliases live, relative to the recipes root.
pub const ALIASES_FILE: &str = "components/aliases.yaml";
pub const ALIASES_KIND: &str = "ComponentAliases";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AliasesFile {
    api_version: String,
    kind: String,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// Alias → component name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentAliases {
    pub aliases: BTreeMap<String, String>,
}

impl ComponentAliases {
    /// The aliases of the effective `components/aliases.yaml`; none when there is no file.
    pub fn load(files: &RecipeFiles) -> Result<ComponentAliases> {
        let Some(src) = files.get(ALIASES_FILE) else {
            return Ok(ComponentAliases::default());
        };
        let file: AliasesFile = src.parse()?;
        if file.api_version != API_VERSION || file.kind != ALIASES_KIND {
            return Err(RecipeError::Invalid {
                origin: src.origin.clone(),
                message: format!(
                    "expected apiVersion `{API_VERSION}` and kind `{ALIASES_KIND}`, got `{}` and `{}`",
                    file.api_version, file.kind
                ),
            });
        }
        Ok(ComponentAliases {
            aliases: file.aliases,
        })
    }

    /// The component `name` refers to among `known`: the name itself, else the component its
    /// alias names. `None` when neither.
    pub fn resolve<'a>(&'a self, name: &'a str, known: &BTreeSet<String>) -> Option<&'a str> {
        if known.contains(name) {
            return Some(name);
        }
        self.aliases
            .get(name)
            .map(String::as_str)
            .filter(|target| known.contains(*target))
    }

    /// The aliases of one component, sorted (for messages).
    pub fn of(&self, component: &str) -> Vec<&str> {
        self.aliases
            .iter()
            .filter(|(_, c)| *c == component)
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_win_over_aliases_and_targets_must_be_known() {
        let mut files = RecipeFiles::default();
        files.push_memory_layer(
            "t",
            &[(
                ALIASES_FILE,
                "apiVersion: aiconform.dev/v1alpha1\nkind: ComponentAliases\naliases:\n  gpuoperator: gpu-operator\n  a: b\n  gone: missing\n",
            )],
        );
        let aliases = ComponentAliases::load(&files).unwrap();
        let known: BTreeSet<String> = ["gpu-operator".to_string(), "a".into(), "b".into()].into();
        assert_eq!(aliases.resolve("gpuoperator", &known), Some("gpu-operator"));
        assert_eq!(aliases.resolve("a", &known), Some("a"));
        assert_eq!(aliases.resolve("gone", &known), None);
        assert_eq!(aliases.of("gpu-operator"), ["gpuoperator"]);
    }

    #[test]
    fn wrong_kind_is_named() {
        let mut files = RecipeFiles::default();
        files.push_memory_layer("t", &[(ALIASES_FILE, "apiVersion: x\nkind: Y\n")]);
        let e = ComponentAliases::load(&files).unwrap_err().to_string();
        assert!(e.contains("t:components/aliases.yaml"), "{e}");
        assert!(e.contains("ComponentAliases"), "{e}");
        assert_eq!(
            ComponentAliases::load(&RecipeFiles::default()).unwrap(),
            ComponentAliases::default()
        );
    }
}
