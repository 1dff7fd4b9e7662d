//! Parses the built-in recipe YAML (`recipes/`) once at build time and embeds each document
//! as compact JSON, so commands that load the built-in catalog read JSON (many times faster
//! than YAML) instead of parsing YAML at every start. Files that do not parse are left out:
//! the catalog then parses their YAML at run time and reports the error as usual.
//! `recipe::source` checks that an embedded document belongs to the very bytes it replaces.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    println!("cargo::rerun-if-changed=recipes");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Built-in YAML documents as JSON: (path relative to `recipes/`, JSON text).\n\
         pub static BUILTIN_JSON: &[(&str, &str)] = &[\n",
    );
    for rel in &files {
        let path = root.join(rel);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let Ok(value) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let json = serde_json::to_string(&value).expect("a JSON value serialises");
        writeln!(out, "    ({rel:?}, {json:?}),").expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_recipes.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

/// Every `.yaml`/`.yml` file under `dir`, relative to `root` with `/` separators.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            // Kubernetes manifests are copied into recipes verbatim, never parsed.
            if !path.ends_with("manifests") {
                collect(root, &path, out);
            }
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push(rel);
        }
    }
}
