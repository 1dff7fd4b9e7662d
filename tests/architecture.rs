//! The module graph has no cycles: no top-level module of `src/` imports one that imports
//! it back (directly or around a loop), and no two files of one folder import each other.
//! Read from the source text (`crate::x`, `super::x`, `use crate::{x, ...}`), test modules
//! and comments left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Non-test, non-comment code of a file.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Names `prefix::NAME` and `prefix::{NAME, ...}` refer to.
fn referenced(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices(prefix) {
        let rest = &code[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for part in group.split(',') {
                names.insert(ident(part.trim()));
            }
        } else {
            names.insert(ident(rest));
        }
    }
    names.remove("");
    names
}

/// Top-level module of a file under `src/`.
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| top_module(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let from = top_module(f);
        for to in referenced(&code(f), "crate::") {
            if to != from && modules.contains(&to) {
                deps.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Every module that can reach itself through its imports sits on a cycle.
    for start in &modules {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, path)) = stack.pop() {
            for next in deps.get(&m).into_iter().flatten() {
                if next == start {
                    panic!("import cycle: {} -> {start}", path.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
}

#[test]
fn files_of_a_folder_do_not_import_each_other() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for f in files {
        by_dir
            .entry(f.parent().unwrap().to_path_buf())
            .or_default()
            .push(f);
    }
    for (dir, files) in by_dir {
        let name = |p: &Path| p.file_stem().unwrap().to_string_lossy().to_string();
        let siblings: BTreeSet<String> = files
            .iter()
            .map(|p| name(p))
            .filter(|n| n != "mod" && n != "lib" && n != "main")
            .collect();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let from = name(f);
            for to in referenced(&code(f), "super::") {
                if to != from && siblings.contains(&to) {
                    deps.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        for (a, tos) in &deps {
            for b in tos {
                assert!(
                    !deps.get(b).is_some_and(|t| t.contains(a)),
                    "{}: {a} and {b} import each other",
                    dir.display()
                );
            }
        }
    }
}
