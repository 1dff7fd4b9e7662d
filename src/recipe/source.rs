//! Where overlays come from: the recipes built into the binary, then any `--data DIR`
//! directories layered on top. This is the only I/O in the recipe engine; everything after
//! it works on the in-memory [`RecipeFiles`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

use super::error::{RecipeError, Result};
use crate::yaml::MAX_YAML_BYTES;

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/recipes");

/// Refuse data directories that are clearly not recipe trees.
const MAX_FILES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Human-readable location for messages: `builtin:overlays/eks.yaml` or a real path.
    pub origin: String,
    /// Which layer it came from: 0 is built-in, then each `--data` dir in order.
    pub layer: usize,
    pub content: Vec<u8>,
}

/// A virtual recipes tree: relative path (with `/`) to file. Later layers replace files with
/// the same relative path; overlays are also replaced by overlay name (see catalog).
#[derive(Debug, Clone, Default)]
pub struct RecipeFiles {
    /// Every file of every layer, in layer order, so overlays can be overridden by name.
    pub layers: Vec<BTreeMap<String, SourceFile>>,
}

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

fn collect_builtin(dir: &Dir<'_>, out: &mut BTreeMap<String, SourceFile>) {
    for file in dir.files() {
        let rel = file.path().to_string_lossy().replace('\\', "/");
        out.insert(
            rel.clone(),
            SourceFile {
                origin: format!("builtin:recipes/{rel}"),
                layer: 0,
                content: file.contents().to_vec(),
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
