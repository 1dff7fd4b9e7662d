//! Where overlays come from: the recipes built into the binary, then any `--data DIR`
//! directories layered on top. This is the only I/O in the recipe engine; everything after
//! it works on the in-memory [`RecipeFiles`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

use super::error::{RecipeError, Result};
use crate::yaml::{MAX_YAML_BYTES, YamlError};

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/recipes");

/// The built-in YAML documents parsed at build time (see `build.rs`), as JSON text.
mod parsed {
    include!(concat!(env!("OUT_DIR"), "/builtin_recipes.rs"));
}

/// Refuse data directories that are clearly not recipe trees.
const MAX_FILES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Human-readable location for messages: `builtin:overlays/eks.yaml` or a real path.
    pub origin: String,
    /// Which layer it came from: 0 is built-in, then each `--data` dir in order.
    pub layer: usize,
    pub content: Vec<u8>,
    /// The bytes built into the binary this file was read from (built-in files only).
    builtin: Option<&'static [u8]>,
}

/// A virtual recipes tree: relative path (with `/`) to file. Later layers replace files with
/// the same relative path; overlays are also replaced by overlay name (see catalog).
#[derive(Debug, Clone, Default)]
pub struct RecipeFiles {
    /// Every file of every layer, in layer order, so overlays can be overridden by name.
    pub layers: Vec<BTreeMap<String, SourceFile>>,
}

impl SourceFile {
    /// The build-time JSON form of this file when it is a built-in YAML document exactly as
    /// built into the binary; parsing it gives the same value as parsing the YAML, faster.
    pub fn builtin_json(&self) -> Option<&'static str> {
        if self.layer != 0 || self.builtin? != self.content.as_slice() {
            return None;
        }
        let rel = self.origin.strip_prefix(BUILTIN_ORIGIN)?;
        let i = parsed::BUILTIN_JSON
            .binary_search_by(|(path, _)| (*path).cmp(rel))
            .ok()?;
        Some(parsed::BUILTIN_JSON[i].1)
    }

    /// Parse this YAML file: from its build-time JSON form when it has one, else (and if
    /// that does not fit `T`) from the YAML, whose errors name the file, line and column.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> std::result::Result<T, YamlError> {
        if let Some(value) = self
            .builtin_json()
            .and_then(|json| serde_json::from_str(json).ok())
        {
            return Ok(value);
        }
        crate::yaml::from_slice(&self.content, &self.origin)
    }
}

/// Origin prefix of built-in files.
const BUILTIN_ORIGIN: &str = "builtin:recipes/";

impl RecipeFiles {
    /// The effective file at a relative path: the one from the latest layer that has it.
    pub fn get(&self, rel: &str) -> Option<&SourceFile> {
        self.layers.iter().rev().find_map(|l| l.get(rel))
    }

    pub fn push_layer(&mut self, files: BTreeMap<String, SourceFile>) {
        self.layers.push(files);
    }

    /// A layer from in-memory `(relative path, content)` pairs; used by tests and the API.
    pub fn push_memory_layer(&mut self, name: &str, files: &[(&str, &str)]) {
        let layer = self.layers.len();
        let files = files
            .iter()
            .map(|(rel, content)| {
                (
                    rel.to_string(),
                    SourceFile {
                        origin: format!("{name}:{rel}"),
                        layer,
                        content: content.as_bytes().to_vec(),
                        builtin: None,
                    },
                )
            })
            .collect();
        self.push_layer(files);
    }

    /// Built-in recipes only.
    pub fn builtin() -> Self {
        let mut files = BTreeMap::new();
        collect_builtin(&BUILTIN, &mut files);
        let mut rf = RecipeFiles::default();
        rf.push_layer(files);
        rf
    }

    /// Built-in recipes with each data directory layered on top, in order.
    pub fn with_data_dirs(dirs: &[PathBuf]) -> Result<Self> {
        let mut rf = Self::builtin();
        for dir in dirs {
            let layer = rf.layers.len();
            rf.push_layer(read_dir_tree(dir, layer)?);
        }
        Ok(rf)
    }
}

fn collect_builtin(dir: &'static Dir<'static>, out: &mut BTreeMap<String, SourceFile>) {
    for file in dir.files() {
        let rel = file.path().to_string_lossy().replace('\\', "/");
        out.insert(
            rel.clone(),
            SourceFile {
                origin: format!("{BUILTIN_ORIGIN}{rel}"),
                layer: 0,
                content: file.contents().to_vec(),
                builtin: Some(file.contents()),
            },
        );
    }
    for sub in dir.dirs() {
        collect_builtin(sub, out);
    }
}

/// Read every regular file under `root`. Symlinks are not followed so a data dir cannot
/// pull in files from elsewhere.
pub fn read_dir_tree(root: &Path, layer: usize) -> Result<BTreeMap<String, SourceFile>> {
    let io = |path: &Path, source| RecipeError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(root).map_err(|e| io(root, e))?;
    if !meta.is_dir() {
        return Err(RecipeError::Invalid {
            origin: root.display().to_string(),
            message: "--data expects a directory containing overlays/".into(),
        });
    }
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| io(&path, e))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let size = entry.metadata().map_err(|e| io(&path, e))?.len();
                if size as usize > MAX_YAML_BYTES {
                    return Err(RecipeError::Invalid {
                        origin: path.display().to_string(),
                        message: format!(
                            "file is {size} bytes, over the {MAX_YAML_BYTES} byte limit"
                        ),
                    });
                }
                let content = std::fs::read(&path).map_err(|e| io(&path, e))?;
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(
                    rel,
                    SourceFile {
                        origin: path.display().to_string(),
                        layer,
                        content,
                        builtin: None,
                    },
                );
                if out.len() > MAX_FILES {
                    return Err(RecipeError::Invalid {
                        origin: root.display().to_string(),
                        message: format!(
                            "more than {MAX_FILES} files; is this really a recipes directory?"
                        ),
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::overlay::OverlayFile;

    /// The build-time JSON of every built-in document parses to exactly what its YAML
    /// parses to, as a generic value and, for overlays, as the typed file.
    #[test]
    fn builtin_json_matches_yaml() {
        let files = RecipeFiles::builtin();
        let mut checked = 0;
        for (rel, src) in &files.layers[0] {
            if !(rel.ends_with(".yaml") || rel.ends_with(".yml")) || rel.contains("/manifests/") {
                continue;
            }
            let json = src
                .builtin_json()
                .unwrap_or_else(|| panic!("{rel} has no build-time JSON form"));
            let from_yaml: serde_json::Value =
                crate::yaml::from_slice(&src.content, &src.origin).unwrap();
            let from_json: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(from_json, from_yaml, "{rel}");
            if rel.starts_with("overlays/") {
                let from_yaml: OverlayFile =
                    crate::yaml::from_slice(&src.content, &src.origin).unwrap();
                let from_json: OverlayFile = serde_json::from_str(json).unwrap();
                assert_eq!(from_json, from_yaml, "{rel}");
            }
            checked += 1;
        }
        assert!(checked > 20, "only {checked} built-in documents");
    }

    /// A file that is not byte for byte the built-in one is parsed from its own YAML.
    #[test]
    fn changed_builtin_is_parsed_from_yaml() {
        let files = RecipeFiles::builtin();
        let (rel, src) = files.layers[0]
            .iter()
            .find(|(rel, _)| rel.starts_with("overlays/"))
            .unwrap();
        assert!(src.builtin_json().is_some(), "{rel}");
        let mut changed = src.clone();
        changed.content.extend_from_slice(b"\nextra: [unclosed\n");
        assert!(changed.builtin_json().is_none());
        let err = changed.parse::<serde_json::Value>().unwrap_err();
        assert_eq!(err.origin, src.origin);
        assert!(err.line.is_some(), "{err}");
        let mut data_layer = src.clone();
        data_layer.layer = 1;
        assert!(data_layer.builtin_json().is_none());
    }
}
