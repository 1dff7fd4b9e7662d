//! The catalog: every overlay parsed and validated, ready to be selected by criteria.

use std::collections::{BTreeMap, BTreeSet};

use super::criteria::Criteria;
use super::error::{RecipeError, Result};
use super::overlay::{API_VERSION, OverlayFile};
use super::source::{RecipeFiles, SourceFile};

pub const OVERLAY_KIND: &str = "Overlay";
const OVERLAY_DIR: &str = "overlays/";

#[derive(Debug, Clone)]
pub struct LoadedOverlay {
    pub file: OverlayFile,
    pub origin: String,
    pub criteria: Criteria,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub overlays: BTreeMap<String, LoadedOverlay>,
    pub files: RecipeFiles,
    /// Every referenced values file, parsed once when loading (by relative path), so
    /// composing never parses YAML again.
    pub values: BTreeMap<String, serde_json::Value>,
}

fn is_yaml(rel: &str) -> bool {
    rel.ends_with(".yaml") || rel.ends_with(".yml")
}

impl Catalog {
    pub fn load(files: RecipeFiles) -> Result<Catalog> {
        let mut overlays: BTreeMap<String, LoadedOverlay> = BTreeMap::new();
        for layer in &files.layers {
            let mut in_layer: BTreeMap<String, String> = BTreeMap::new();
            for (rel, src) in layer {
                if !rel.starts_with(OVERLAY_DIR) || !is_yaml(rel) {
                    continue;
                }
                let loaded = parse_overlay(src)?;
                let name = loaded.file.name.clone();
                if let Some(first) = in_layer.insert(name.clone(), src.origin.clone()) {
                    return Err(RecipeError::DuplicateOverlay {
                        name,
                        first,
                        second: src.origin.clone(),
                    });
                }
                // A later layer (a --data dir) replaces a built-in overlay of the same name.
                overlays.insert(name, loaded);
            }
        }
        if overlays.is_empty() {
            let searched = files
                .layers
                .iter()
                .flat_map(|l| l.values().next().map(|f| f.origin.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RecipeError::NoOverlays {
                searched: if searched.is_empty() {
                    "the recipe sources".into()
                } else {
                    searched
                },
            });
        }
        let mut catalog = Catalog {
            overlays,
            files,
            values: BTreeMap::new(),
        };
        catalog.values = catalog.validate()?;
        Ok(catalog)
    }

    /// Check references, parents and values files; returns the values files parsed.
    fn validate(&self) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut values = BTreeMap::new();
        let declared: BTreeSet<&str> = self
            .overlays
            .values()
            .flat_map(|o| o.file.component_refs.iter().map(|c| c.name.as_str()))
            .collect();
        for o in self.overlays.values() {
            if let Some(parent) = &o.file.base
                && !self.overlays.contains_key(parent)
            {
                return Err(RecipeError::UnknownParent {
                    origin: o.origin.clone(),
                    overlay: o.file.name.clone(),
                    parent: parent.clone(),
                });
            }
            for c in &o.file.component_refs {
                for (what, file) in c
                    .values_file
                    .iter()
                    .map(|f| ("values file", f))
                    .chain(c.manifest_files.iter().map(|f| ("manifest file", f)))
                {
                    let Some(src) = self.files.get(file) else {
                        return Err(RecipeError::MissingFile {
                            origin: o.origin.clone(),
                            component: c.name.clone(),
                            what,
                            file: file.clone(),
                        });
                    };
                    if what == "values file" && !values.contains_key(file) {
                        let v: serde_json::Value = src.parse()?;
                        if !(v.is_object() || v.is_null()) {
                            return Err(RecipeError::Invalid {
                                origin: src.origin.clone(),
                                message: "a values file must be a YAML mapping".into(),
                            });
                        }
                        values.insert(file.clone(), v);
                    }
                }
                for dep in &c.dependency_refs {
                    if !declared.contains(dep.as_str()) {
                        return Err(RecipeError::UnknownDependency {
                            origin: o.origin.clone(),
                            component: c.name.clone(),
                            dependency: dep.clone(),
                        });
                    }
                }
            }
        }
        for name in self.overlays.keys() {
            self.ancestry(name)?;
        }
        Ok(values)
    }

    /// The parent chain of an overlay, root first, ending with the overlay itself.
    pub fn ancestry(&self, name: &str) -> Result<Vec<String>> {
        let mut chain = vec![name.to_string()];
        let mut current = name;
        while let Some(parent) = self
            .overlays
            .get(current)
            .and_then(|o| o.file.base.as_deref())
        {
            if chain.iter().any(|n| n == parent) {
                chain.push(parent.to_string());
                chain.reverse();
                return Err(RecipeError::ParentCycle { chain });
            }
            chain.push(parent.to_string());
            current = parent;
        }
        chain.reverse();
        Ok(chain)
    }
}

fn parse_overlay(src: &SourceFile) -> Result<LoadedOverlay> {
    let file: OverlayFile = src.parse()?;
    let invalid = |message: String| RecipeError::Invalid {
        origin: src.origin.clone(),
        message,
    };
    if file.api_version != API_VERSION {
        return Err(invalid(format!(
            "apiVersion `{}` is not supported; use `{API_VERSION}`",
            file.api_version
        )));
    }
    if file.kind != OVERLAY_KIND {
        return Err(invalid(format!(
            "kind `{}` is not `{OVERLAY_KIND}`",
            file.kind
        )));
    }
    if !crate::name::is_dns_label(&file.name) {
        return Err(invalid(format!(
            "overlay name `{}` must be lowercase letters, digits and '-' (at most 63)",
            file.name
        )));
    }
    let criteria = file
        .criteria
        .to_criteria()
        .map_err(|source| RecipeError::Criterion {
            origin: src.origin.clone(),
            source,
        })?;
    let mut seen = BTreeSet::new();
    for c in &file.component_refs {
        if !crate::name::is_dns_label(&c.name) {
            return Err(invalid(format!(
                "component name `{}` must be lowercase letters, digits and '-' (at most 63)",
                c.name
            )));
        }
        if !seen.insert(c.name.as_str()) {
            return Err(invalid(format!("component `{}` is listed twice", c.name)));
        }
        super::conformance::check_ref(c).map_err(invalid)?;
    }
    if let Some((req, first, second)) = super::conformance::double_claim(&file.component_refs) {
        return Err(invalid(format!(
            "components `{first}` and `{second}` both claim conformance.{req}; one overlay may give a requirement to one component"
        )));
    }
    let mut constraint_names = BTreeSet::new();
    for c in &file.constraints {
        if c.name.split('.').count() < 3 || c.name.split('.').any(str::is_empty) {
            return Err(invalid(format!(
                "constraint `{}` is not a measurement path `Type.subtype.key`",
                c.name
            )));
        }
        if !constraint_names.insert(c.name.as_str()) {
            return Err(invalid(format!("constraint `{}` is listed twice", c.name)));
        }
    }
    Ok(LoadedOverlay {
        file,
        origin: src.origin.clone(),
        criteria,
    })
}
