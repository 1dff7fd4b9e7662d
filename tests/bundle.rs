//! `aiconform bundle` and `aiconform bundle verify`: golden bundles, tamper detection,
//! traversal rejection, determinism, --force, atomic writes, and the real `sha256sum` and
//! `shellcheck` on rendered output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use aiconform::bundle::{self, Bundle, BundleFile, BundleOptions, Deployer, Toleration};
use aiconform::recipe::load_recipe_file;
use assert_cmd::Command;
use predicates::str::contains;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn manifest_stack() -> PathBuf {
    fixture("fixtures/recipes/manifest-stack.yaml")
}

fn helm_stack() -> PathBuf {
    fixture("fixtures/bundle/helm-stack.yaml")
}

fn placement() -> BundleOptions {
    BundleOptions {
        system_node_selector: [("nodeGroup".to_string(), "system".to_string())].into(),
        accelerated_node_selector: [("nvidia.com/gpu.present".to_string(), "true".to_string())]
            .into(),
        accelerated_tolerations: vec![
            "nvidia.com/gpu=present:NoSchedule"
                .parse::<Toleration>()
                .unwrap(),
        ],
        ..BundleOptions::default()
    }
}

const PLACEMENT_ARGS: &[&str] = &[
    "--system-node-selector",
    "nodeGroup=system",
    "--accelerated-node-selector",
    "nvidia.com/gpu.present=true",
    "--accelerated-node-toleration",
    "nvidia.com/gpu=present:NoSchedule",
];

/// Every file of a bundle as one text, for golden snapshots.
fn dump(b: &Bundle, filter: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for (path, f) in &b.files {
        if !filter(path) {
            continue;
        }
        out.push_str(&format!(
            "===== {path}{} =====\n",
            if f.executable { " (executable)" } else { "" }
        ));
        out.push_str(&String::from_utf8_lossy(&f.content));
        if !f.content.ends_with(b"\n") {
            out.push('\n');
        }
    }
    out
}

fn aiconform() -> Command {
    Command::cargo_bin("aiconform").unwrap()
}

fn bundle_cmd(recipe: &Path, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    aiconform()
        .arg("bundle")
        .arg("--recipe")
        .arg(recipe)
        .arg("--output")
        .arg(out)
        .args(extra)
        .assert()
}

fn verify_cmd(dir: &Path) -> assert_cmd::assert::Assert {
    aiconform().arg("bundle").arg("verify").arg(dir).assert()
}

fn on_path(tool: &str) -> bool {
    StdCommand::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---- golden bundles -------------------------------------------------------------------

#[test]
fn golden_manifest_stack() {
    let recipe = load_recipe_file(&manifest_stack()).unwrap();
    let b = bundle::render(&recipe, &BundleOptions::default()).unwrap();
    insta::assert_snapshot!("manifest_stack_helm", dump(&b, |_| true));
}

#[test]
fn golden_helm_stack_with_placement() {
    let recipe = load_recipe_file(&helm_stack()).unwrap();
    let b = bundle::render(&recipe, &placement()).unwrap();
    insta::assert_snapshot!("helm_stack_placement", dump(&b, |_| true));
}

#[test]
fn golden_helm_stack_argocd() {
    let recipe = load_recipe_file(&helm_stack()).unwrap();
    let opts = BundleOptions {
        deployer: Deployer::ArgoCd,
        argocd_repo_url: Some("https://git.example.com/platform/gpu-cluster.git".into()),
        ..placement()
    };
    let b = bundle::render(&recipe, &opts).unwrap();
    assert!(!b.files.contains_key("deploy.sh"));
    insta::assert_snapshot!(
        "helm_stack_argocd",
        dump(&b, |p| p.starts_with("argocd/") || p == "README.md")
    );
}

#[test]
fn argocd_sync_waves_follow_dependency_depth_or_order_when_serial() {
    let recipe = load_recipe_file(&helm_stack()).unwrap();
    // cert-manager <- gpu-operator <- kai-scheduler; custom-tool and kustomized stand alone.
    for (serial, waves) in [(false, [0, 1, 2, 0, 0]), (true, [0, 1, 2, 3, 4])] {
        let opts = BundleOptions {
            deployer: Deployer::ArgoCd,
            serial,
            ..BundleOptions::default()
        };
        let b = bundle::render(&recipe, &opts).unwrap();
        for (i, c) in recipe.components.iter().enumerate() {
            let path = format!("argocd/applications/{:02}-{}.yaml", i + 1, c.name);
            let app: serde_json::Value =
                aiconform::yaml::from_slice(&b.files[&path].content, &path).unwrap();
            assert_eq!(
                app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"],
                serde_json::json!(waves[i].to_string()),
                "{path} serial={serial}"
            );
            assert_eq!(app["metadata"]["name"], serde_json::json!(c.name));
        }
        let parent = String::from_utf8(b.files["argocd/app-of-apps.yaml"].content.clone()).unwrap();
        assert!(parent.contains(bundle::ARGOCD_REPO_PLACEHOLDER), "{parent}");
        assert!(parent.contains("path: argocd/applications"), "{parent}");
    }
}

#[test]
fn placement_lands_at_chart_paths() {
    let recipe = load_recipe_file(&helm_stack()).unwrap();
    let b = bundle::render(&recipe, &placement()).unwrap();
    let values = |p: &str| -> serde_json::Value {
        aiconform::yaml::from_slice(&b.files[p].content, p).unwrap()
    };
    let gpu = values("02-gpu-operator/values.yaml");
    let tols = gpu["daemonsets"]["tolerations"].as_array().unwrap();
    assert_eq!(tols.len(), 2, "recipe toleration kept, option appended");
    assert_eq!(tols[0]["key"], "CriticalAddonsOnly");
    assert_eq!(tols[1]["key"], "nvidia.com/gpu");
    assert_eq!(tols[1]["effect"], "NoSchedule");
    assert_eq!(
        gpu["node-feature-discovery"]["worker"]["tolerations"][0]["value"],
        "present"
    );
    assert_eq!(gpu["operator"]["nodeSelector"]["nodeGroup"], "system");
    assert_eq!(
        gpu["daemonsets"]["nodeSelector"]["nvidia.com/gpu.present"],
        "true"
    );
    assert_eq!(gpu["driver"]["version"], "580.95.05");
    let cm = values("01-cert-manager/values.yaml");
    for path in ["nodeSelector", "webhook", "cainjector", "startupapicheck"] {
        let sel = if path == "nodeSelector" {
            &cm["nodeSelector"]
        } else {
            &cm[path]["nodeSelector"]
        };
        assert_eq!(sel["nodeGroup"], "system", "cert-manager {path}");
    }
    assert!(cm.get("tolerations").is_none());
    let custom = values("04-custom-tool/values.yaml");
    assert_eq!(custom["nodeSelector"]["nodeGroup"], "system");
    assert_eq!(custom["tolerations"][0]["key"], "nvidia.com/gpu");
    assert_eq!(custom["replicaCount"], 2);
}

// ---- CLI, checksums, shellcheck ------------------------------------------------------

#[test]
fn cli_writes_bundle_that_verifies_and_passes_sha256sum() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    bundle_cmd(&helm_stack(), &out, PLACEMENT_ARGS)
        .success()
        .stderr(contains("wrote bundle"))
        .stderr(contains("5 components"));
    for rel in [
        "bundle.yaml",
        "recipe.yaml",
        "README.md",
        "deploy.sh",
        "undeploy.sh",
        "checksums.sha256",
        "01-cert-manager/values.yaml",
        "01-cert-manager/README.md",
        "01-cert-manager/checksums.sha256",
        "02-gpu-operator/manifests/dcgm-metrics.yaml",
        "05-kustomized/kustomize/kustomization.yaml",
    ] {
        assert!(out.join(rel).is_file(), "{rel} missing");
    }
    verify_cmd(&out).success().stdout(contains("is intact"));

    if !on_path("sha256sum") {
        eprintln!("SKIP sha256sum checks: sha256sum not on PATH");
        return;
    }
    let run = |dir: &Path| {
        let o = StdCommand::new("sha256sum")
            .args(["-c", "--strict", "checksums.sha256"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sha256sum -c in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let top = run(&out);
    assert!(top.contains("02-gpu-operator/values.yaml: OK"), "{top}");
    assert!(top.contains("deploy.sh: OK"), "{top}");
    for folder in ["01-cert-manager", "02-gpu-operator", "05-kustomized"] {
        let s = run(&out.join(folder));
        assert!(s.contains("README.md: OK"), "{s}");
    }
    // And sha256sum notices tampering too.
    std::fs::write(out.join("01-cert-manager/values.yaml"), "tampered: true\n").unwrap();
    let o = StdCommand::new("sha256sum")
        .args(["-c", "checksums.sha256"])
        .current_dir(out.join("01-cert-manager"))
        .output()
        .unwrap();
    assert!(!o.status.success());
}

#[test]
fn rendered_scripts_are_shellcheck_clean() {
    if !on_path("shellcheck") {
        eprintln!(
            "SKIP rendered_scripts_are_shellcheck_clean: shellcheck not on PATH (ci/install-deps.sh installs it)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (name, recipe) in [("helm", helm_stack()), ("manifest", manifest_stack())] {
        let out = tmp.path().join(name);
        bundle_cmd(&recipe, &out, PLACEMENT_ARGS).success();
        for script in ["deploy.sh", "undeploy.sh"] {
            let path = out.join(script);
            let o = StdCommand::new("shellcheck")
                .arg("--severity=style")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "shellcheck {}:\n{}",
                path.display(),
                String::from_utf8_lossy(&o.stdout)
            );
            let syntax = StdCommand::new("bash")
                .arg("-n")
                .arg(&path)
                .status()
                .unwrap();
            assert!(syntax.success(), "bash -n {}", path.display());
        }
    }
}

// ---- verify ---------------------------------------------------------------------------

#[test]
fn verify_reports_changed_missing_and_extra_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    bundle_cmd(&manifest_stack(), &out, &[]).success();
    verify_cmd(&out).success();

    std::fs::write(
        out.join("02-demo-api/manifests/deployment.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: evil}\n",
    )
    .unwrap();
    std::fs::remove_file(out.join("03-gpu-agent/README.md")).unwrap();
    std::fs::write(out.join("01-demo-crds/manifests/extra.yaml"), "x: 1\n").unwrap();
    std::fs::create_dir_all(out.join("new-dir")).unwrap();
    std::fs::write(out.join("new-dir/notes.txt"), "hi\n").unwrap();

    let assert = verify_cmd(&out).failure();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains("changed: 02-demo-api/manifests/deployment.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("missing: 03-gpu-agent/README.md"),
        "{stdout}"
    );
    assert!(
        stdout.contains("extra:   01-demo-crds/manifests/extra.yaml"),
        "{stdout}"
    );
    assert!(stdout.contains("extra:   new-dir/notes.txt"), "{stdout}");
    assert!(stdout.contains("1 changed, 1 missing, 2 extra"), "{stdout}");

    let report = bundle::verify(&out).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.problem_count(), 4);
}

#[cfg(unix)]
#[test]
fn verify_reports_lost_executable_bit_and_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    bundle_cmd(&manifest_stack(), &out, &[]).success();
    std::fs::set_permissions(
        out.join("deploy.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::remove_file(out.join("README.md")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", out.join("README.md")).unwrap();
    let report = bundle::verify(&out).unwrap();
    let changed: BTreeMap<&str, &str> = report
        .changed
        .iter()
        .map(|c| (c.path.as_str(), c.reason.as_str()))
        .collect();
    assert!(changed["deploy.sh"].contains("executable"), "{changed:?}");
    assert!(
        changed["README.md"].contains("symbolic link"),
        "{changed:?}"
    );
}

#[test]
fn verify_rejects_non_bundles_and_unsafe_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    verify_cmd(tmp.path())
        .failure()
        .stderr(contains("not a valid aiconform bundle"))
        .stderr(contains("bundle.yaml not found"));

    // A bundle.yaml that lists a path outside the bundle is refused before reading it.
    let out = tmp.path().join("bundle");
    bundle_cmd(&manifest_stack(), &out, &[]).success();
    let text = std::fs::read_to_string(out.join("bundle.yaml")).unwrap();
    let evil = text.replacen("path: 01-demo-crds/README.md", "path: ../../etc/passwd", 1);
    assert_ne!(text, evil);
    std::fs::write(out.join("bundle.yaml"), evil).unwrap();
    verify_cmd(&out)
        .failure()
        .stderr(contains("../../etc/passwd"))
        .stderr(contains("inside the bundle"));
}

// ---- safety ---------------------------------------------------------------------------

#[test]
fn traversal_names_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out").join("bundle");
    bundle_cmd(
        &fixture("fixtures/bundle/traversal-component.yaml"),
        &out,
        &[],
    )
    .failure()
    .stderr(contains("`../x`"))
    .stderr(contains("outside its folder"));
    bundle_cmd(
        &fixture("fixtures/bundle/traversal-manifest.yaml"),
        &out,
        &[],
    )
    .failure()
    .stderr(contains("`../../escaped.yaml`"))
    .stderr(contains("manifest file name"));
    assert!(!out.exists());
    assert!(!tmp.path().join("escaped.yaml").exists());
    assert!(!tmp.path().join("x").exists());
    // Nothing at all was left next to the target.
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("out"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn output_must_be_empty_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    std::fs::create_dir(&out).unwrap();
    // An existing empty directory is fine.
    bundle_cmd(&manifest_stack(), &out, &[]).success();

    // A second render into the now non-empty directory is refused and changes nothing.
    std::fs::write(out.join("keep.txt"), "mine\n").unwrap();
    bundle_cmd(&helm_stack(), &out, &[])
        .failure()
        .stderr(contains("not empty"))
        .stderr(contains("--force"));
    assert!(out.join("keep.txt").exists());
    assert!(out.join("01-demo-crds").exists());

    // --force replaces it entirely: old files are gone, the new bundle verifies.
    bundle_cmd(&helm_stack(), &out, &["--force"]).success();
    assert!(!out.join("keep.txt").exists());
    assert!(!out.join("01-demo-crds").exists());
    assert!(out.join("01-cert-manager/values.yaml").exists());
    verify_cmd(&out).success();
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "bundle")
        .collect();
    assert!(leftovers.is_empty(), "temp dirs left behind: {leftovers:?}");

    // A file where the directory should be is refused even with --force.
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    bundle_cmd(&helm_stack(), &file, &["--force"])
        .failure()
        .stderr(contains("not a directory"));
}

#[test]
fn failed_render_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    // The fourth component's manifest is not valid YAML: rendering fails midway.
    let text = std::fs::read_to_string(manifest_stack()).unwrap();
    let broken = text.replacen(
        "          kind: DaemonSet\n          metadata:\n            name: broken-agent\n",
        "          kind: DaemonSet\n          metadata: [unclosed\n",
        1,
    );
    assert_ne!(text, broken);
    let recipe = tmp.path().join("recipe.yaml");
    std::fs::write(&recipe, broken).unwrap();
    let out = tmp.path().join("bundle");
    bundle_cmd(&recipe, &out, &[])
        .failure()
        .stderr(contains("broken-agent"))
        .stderr(contains("daemonset.yaml"));
    assert!(!out.exists());

    // A write that fails midway (a file where a directory must go) leaves no half bundle
    // and no temp dir.
    let mut files = BTreeMap::new();
    for (path, content) in [("a", "file"), ("a/b", "needs a to be a dir"), ("c", "x")] {
        files.insert(
            path.to_string(),
            BundleFile {
                content: content.as_bytes().to_vec(),
                executable: false,
            },
        );
    }
    let err = Bundle { files }.write_to(&out, false).unwrap_err();
    assert!(err.to_string().contains("a"), "{err}");
    assert!(!out.exists());
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["recipe.yaml"], "{entries:?}");
}

// ---- determinism ----------------------------------------------------------------------

#[test]
fn rendering_is_deterministic() {
    let opts = placement();
    let one = bundle::render(&load_recipe_file(&helm_stack()).unwrap(), &opts).unwrap();
    let two = bundle::render(&load_recipe_file(&helm_stack()).unwrap(), &opts).unwrap();
    assert_eq!(one, two);
    let tar1 = one.to_tar_gz().unwrap();
    let tar2 = two.to_tar_gz().unwrap();
    assert_eq!(tar1, tar2, "tar.gz bytes differ");

    // Two CLI runs give byte-identical directories.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    bundle_cmd(&helm_stack(), &a, PLACEMENT_ARGS).success();
    bundle_cmd(&helm_stack(), &b, PLACEMENT_ARGS).success();
    for (rel, f) in &one.files {
        let on_disk_a = std::fs::read(a.join(rel)).unwrap();
        let on_disk_b = std::fs::read(b.join(rel)).unwrap();
        assert_eq!(on_disk_a, f.content, "{rel}");
        assert_eq!(on_disk_a, on_disk_b, "{rel}");
    }
}

#[test]
fn tar_gz_extracts_to_a_bundle_that_verifies() {
    let recipe = load_recipe_file(&manifest_stack()).unwrap();
    let b = bundle::render(&recipe, &BundleOptions::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let archive = b.to_tar_gz().unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    ar.set_preserve_permissions(true);
    ar.unpack(tmp.path()).unwrap();
    let report = bundle::verify(tmp.path()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.ok, b.files.len() - 1);
}

#[test]
fn recipe_digest_is_recorded_and_stable() {
    let recipe = load_recipe_file(&manifest_stack()).unwrap();
    let b = bundle::render(&recipe, &BundleOptions::default()).unwrap();
    let m = b.manifest().unwrap();
    assert_eq!(m.recipe.digest, bundle::recipe_digest(&recipe).unwrap());
    assert!(m.recipe.digest.starts_with("sha256:"));
    assert_eq!(m.recipe.digest.len(), "sha256:".len() + 64);
    // The recipe copy in the bundle has the same digest as the input.
    let copy: aiconform::recipe::Recipe =
        aiconform::yaml::from_slice(&b.files["recipe.yaml"].content, "recipe.yaml").unwrap();
    assert_eq!(bundle::recipe_digest(&copy).unwrap(), m.recipe.digest);
    // A one-value change gives another digest.
    let mut changed = recipe.clone();
    changed.components[0].version = "v1.0.1".into();
    assert_ne!(bundle::recipe_digest(&changed).unwrap(), m.recipe.digest);
}

#[test]
fn cli_rejects_bad_options() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    bundle_cmd(
        &manifest_stack(),
        &out,
        &["--accelerated-node-toleration", "gpu=x:Never"],
    )
    .failure()
    .stderr(contains("--accelerated-node-toleration"))
    .stderr(contains("key=value:Effect"));
    bundle_cmd(
        &manifest_stack(),
        &out,
        &["--system-node-selector", "novalue"],
    )
    .failure()
    .stderr(contains("--system-node-selector"));
    bundle_cmd(&manifest_stack(), &out, &["--deployer", "kapp"])
        .failure()
        .stderr(contains("helmfile"));
    bundle_cmd(&manifest_stack(), &out, &["--service", "eks"])
        .failure()
        .stderr(contains("not both"));
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(manifest_stack())
        .assert()
        .failure()
        .stderr(contains("--output"));
    assert!(!out.exists());
}

#[test]
fn vendor_charts_is_refused_where_charts_cannot_be_installed_from_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("b");
    for deployer in ["argocd", "argocd-helm", "flux"] {
        bundle_cmd(
            &helm_stack(),
            &out,
            &["--deployer", deployer, "--vendor-charts"],
        )
        .failure()
        .stderr(contains(format!(
            "--vendor-charts does not apply to --deployer {deployer}"
        )))
        .stderr(contains("--deployer helm, helmfile"));
    }
    // Without a usable helm, vendoring says so and writes nothing.
    aiconform()
        .arg("bundle")
        .arg("--recipe")
        .arg(helm_stack())
        .arg("--output")
        .arg(&out)
        .arg("--vendor-charts")
        .env("AICONFORM_HELM", tmp.path().join("no-helm"))
        .assert()
        .failure()
        .stderr(contains(
            "--vendor-charts pulls the charts with helm: cannot run",
        ))
        .stderr(contains("no-helm"));
    assert!(!out.exists());
}

// ---- properties -----------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever names a hand-written recipe uses, rendering never panics, and when it
        /// succeeds every path stays inside the bundle, under the component's own folder.
        #[test]
        fn rendered_paths_never_escape(
            name in "[a-zA-Z0-9./_-]{0,12}",
            manifest in "[a-zA-Z0-9./_ -]{0,12}",
            namespace in "[a-z0-9./-]{0,8}",
        ) {
            let mut recipe = load_recipe_file(&manifest_stack()).unwrap();
            recipe.components.truncate(1);
            let c = &mut recipe.components[0];
            c.name = name.clone();
            c.namespace = namespace;
            c.manifests[0].name = manifest;
            if let Ok(b) = bundle::render(&recipe, &BundleOptions::default()) {
                for path in b.files.keys() {
                    prop_assert!(bundle::check_bundle_path(path).is_ok(), "{path}");
                    let top_level = !path.contains('/') || path.starts_with("argocd/");
                    prop_assert!(
                        top_level || path.starts_with(&format!("01-{name}/")),
                        "{path}"
                    );
                }
            }
        }
    }
}

// ---- manifests taken from files beside the recipe ---------------------------------------

const FILE_RECIPE: &str = "apiVersion: aiconform.dev/v1alpha1
kind: Recipe
metadata: {name: files, toolVersion: 0.1.0, appliedOverlays: [], valueCount: 0}
criteria: {accelerator: any, intent: any, os: any, platform: any, service: any}
constraints: []
deploymentOrder: [app]
components:
  - name: app
    type: Manifest
    version: v1
    namespace: app
    manifests:
      - {name: app.yaml, file: FILE}
";

#[test]
fn manifests_from_a_folder_beside_the_recipe_land_in_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("built/app");
    std::fs::create_dir_all(m.join("10-rbac")).unwrap();
    std::fs::write(
        m.join("00-config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\n",
    )
    .unwrap();
    std::fs::write(
        m.join("10-rbac/sa.yaml"),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app}\n",
    )
    .unwrap();
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(&recipe, FILE_RECIPE.replace("FILE", "built/app")).unwrap();
    let out = dir.path().join("bundle");
    bundle_cmd(&recipe, &out, &[]).success();
    verify_cmd(&out).success();
    let app = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with("-app"))
        .expect("component folder");
    let text = std::fs::read_to_string(app.join("manifests/app.yaml")).unwrap();
    assert_eq!(
        text,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app}\n"
    );
}

#[test]
fn a_missing_manifest_file_names_it_and_writes_no_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.yaml");
    std::fs::write(&recipe, FILE_RECIPE.replace("FILE", "not-built/app")).unwrap();
    let out = dir.path().join("bundle");
    bundle_cmd(&recipe, &out, &[])
        .failure()
        .stderr(contains("component `app` manifest `app.yaml`"))
        .stderr(contains("not-built/app"));
    assert!(!out.exists());
}
