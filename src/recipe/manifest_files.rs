//! Manifests a recipe file takes from files beside it (`manifests[].file`): a YAML file, or
//! a folder of them joined into one multi-document manifest. Read when the recipe is
//! loaded, so everything after loading (bundles, deploys, the REST API) sees a
//! self-contained recipe.

use std::path::{Path, PathBuf};

use crate::recipe::model::Recipe;

/// Largest manifest file accepted, in a recipe and in a bundle.
pub const MAX_MANIFEST_BYTES: usize = 8 * 1024 * 1024;

/// The YAML files of `dir`, recursively, sorted by their path below `dir`.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_yaml(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// Documents joined into one multi-document manifest, each starting on a line of its own.
pub fn join_documents<'a>(docs: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for doc in docs {
        if !out.is_empty() {
            out.push_str("---\n");
        }
        out.push_str(doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The manifest text at `path` (a file, or a folder of YAML files), bounded in size.
fn read_source(path: &Path) -> Result<String, String> {
    let files = if path.is_dir() {
        yaml_files(path).map_err(|e| format!("cannot list {}: {e}", path.display()))?
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(format!("{} holds no .yaml files", path.display()));
    }
    let mut texts = Vec::with_capacity(files.len());
    let mut total = 0;
    for f in &files {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        total += text.len();
        if total > MAX_MANIFEST_BYTES {
            return Err(format!(
                "{} is over the {MAX_MANIFEST_BYTES} byte limit of a manifest; split it into several manifests",
                path.display()
            ));
        }
        texts.push(text);
    }
    Ok(join_documents(texts.iter().map(String::as_str)))
}

/// Reads every `manifests[].file` of `recipe` (relative to `base`, the recipe file's folder)
/// into its `content`. Errors name the component, the manifest and the path.
pub fn resolve(recipe: &mut Recipe, base: &Path) -> Result<(), String> {
    for c in &mut recipe.components {
        for m in &mut c.manifests {
            let Some(rel) = m.file.take() else { continue };
            let at = format!("component `{}` manifest `{}`", c.name, m.name);
            if !m.content.is_empty() {
                return Err(format!(
                    "{at} has both content and file `{rel}`; keep one of them"
                ));
            }
            m.content = read_source(&base.join(&rel))
                .map_err(|e| format!("{at}: {e} (file paths are relative to the recipe file)"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::model::{Component, ComponentType, Manifest};

    fn recipe_with(manifests: Vec<Manifest>) -> Recipe {
        let mut r: Recipe = serde_json::from_value(serde_json::json!({
            "apiVersion": "aiconform.dev/v1alpha1", "kind": "Recipe",
            "metadata": {"name": "r", "toolVersion": "0", "appliedOverlays": [], "valueCount": 0},
            "criteria": {"service": "any", "accelerator": "any", "os": "any", "intent": "any", "platform": "any"},
            "constraints": [], "components": [], "deploymentOrder": []
        }))
        .unwrap();
        r.components.push(Component {
            name: "c".into(),
            component_type: ComponentType::Manifest,
            source: None,
            chart: None,
            version: "v1".into(),
            namespace: "ns".into(),
            dependency_refs: vec![],
            health_checks: vec![],
            overlays: vec![],
            values: serde_json::json!({}),
            manifests,
        });
        r
    }

    fn manifest(name: &str, file: &str) -> Manifest {
        Manifest {
            name: name.into(),
            content: String::new(),
            file: Some(file.into()),
        }
    }

    #[test]
    fn join_documents_separates_and_terminates() {
        assert_eq!(join_documents(["a: 1", "b: 2\n"]), "a: 1\n---\nb: 2\n");
        assert_eq!(join_documents(Vec::<&str>::new()), "");
    }

    #[test]
    fn a_folder_is_joined_in_path_order_and_the_field_cleared() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("m/10-b")).unwrap();
        std::fs::write(dir.path().join("m/10-b/x.yaml"), "kind: B\n").unwrap();
        std::fs::write(dir.path().join("m/00-a.yaml"), "kind: A").unwrap();
        std::fs::write(dir.path().join("m/README.md"), "not yaml").unwrap();
        let mut r = recipe_with(vec![manifest("all.yaml", "m")]);
        resolve(&mut r, dir.path()).unwrap();
        let m = &r.components[0].manifests[0];
        assert_eq!(m.content, "kind: A\n---\nkind: B\n");
        assert_eq!(m.file, None);
    }

    #[test]
    fn a_missing_file_names_component_manifest_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = recipe_with(vec![manifest("x.yaml", "nowhere/x.yaml")]);
        let err = resolve(&mut r, dir.path()).unwrap_err();
        assert!(err.contains("component `c` manifest `x.yaml`"), "{err}");
        assert!(err.contains("nowhere/x.yaml"), "{err}");
        assert!(err.contains("relative to the recipe file"), "{err}");
    }

    #[test]
    fn content_and_file_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest("x.yaml", "x.yaml");
        m.content = "kind: A\n".into();
        let err = resolve(&mut recipe_with(vec![m]), dir.path()).unwrap_err();
        assert!(err.contains("both content and file"), "{err}");
    }

    #[test]
    fn an_empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let err = resolve(
            &mut recipe_with(vec![manifest("x.yaml", "empty")]),
            dir.path(),
        )
        .unwrap_err();
        assert!(err.contains("holds no .yaml files"), "{err}");
    }
}
