//! The CLI's outputs byte for byte: `recipe` (YAML and JSON) equals the library's rendering,
//! and the bundle of a built-in recipe is pinned by its `bundle.yaml` (every file's
//! SHA-256), written by `aiconform bundle` exactly as rendered in memory. Guards the
//! caching and I/O shortcuts that keep the CLI near its process floor.

use std::path::Path;

use aiconform::bundle::{self, BundleOptions, Deployer};
use aiconform::output::Format;
use assert_cmd::Command;

mod recipe_support;
use recipe_support::{EKS_H100_TRAINING_ARGS as ARGS, eks_h100_training as recipe};

fn cli() -> Command {
    Command::cargo_bin("aiconform").unwrap()
}

#[test]
fn recipe_cli_writes_the_rendered_bytes() {
    let r = recipe();
    let dir = tempfile::tempdir().unwrap();
    for (file, format) in [("r.yaml", Format::Yaml), ("r.json", Format::Json)] {
        let path = dir.path().join(file);
        cli()
            .arg("recipe")
            .args(ARGS)
            .arg("-o")
            .arg(&path)
            .assert()
            .success();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format.render(&r).unwrap(),
            "{file}"
        );
    }
    let stdout = cli().arg("recipe").args(ARGS).output().unwrap().stdout;
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        Format::Yaml.render(&r).unwrap()
    );
}

#[test]
fn builtin_bundles_are_pinned() {
    let r = recipe();
    for deployer in Deployer::ALL {
        let opts = BundleOptions {
            deployer,
            ..BundleOptions::default()
        };
        let b = bundle::render(&r, &opts).unwrap();
        let manifest = String::from_utf8(b.files[bundle::BUNDLE_FILE].content.clone()).unwrap();
        insta::assert_snapshot!(format!("eks_h100_training_kubeflow_{deployer:?}"), manifest);
    }
}

#[test]
fn bundle_cli_writes_the_rendered_bytes() {
    let r = recipe();
    let b = bundle::render(&r, &BundleOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    cli()
        .arg("bundle")
        .args(ARGS)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let mut written = Vec::new();
    collect(&out, &out, &mut written);
    written.sort();
    let expected: Vec<(String, Vec<u8>, bool)> = b
        .files
        .iter()
        .map(|(p, f)| (p.clone(), f.content.clone(), f.executable))
        .collect();
    assert_eq!(written.len(), expected.len());
    for (w, e) in written.iter().zip(&expected) {
        assert_eq!(w, e, "{}", e.0);
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, bool)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            out.push((rel, std::fs::read(&path).unwrap(), mode & 0o111 != 0));
        }
    }
}
