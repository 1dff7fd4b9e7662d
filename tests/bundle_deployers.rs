//! The argocd, argocd-helm, flux and helmfile deployers on the eks/h100/ubuntu/training/
//! kubeflow recipe: golden output, every YAML document parses, every `dependsOn` / `needs`
//! names an object the bundle defines and the graph has no cycle, `--serial` chains the
//! components in deployment order, and each output is read by its own tool (built by
//! `ci/tools/build.sh` from Go modules): `helm lint`/`helm template` on the argocd-helm chart,
//! `helmfile list` on helmfile.yaml, the Flux API types (strict decoding) on the Flux
//! objects. The CLI writes bundles that `bundle verify` accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use aiconform::bundle::{self, Bundle, BundleOptions, Deployer};
use assert_cmd::Command;
use serde_json::Value;

mod tools_support;

mod recipe_support;
use recipe_support::{EKS_H100_TRAINING_ARGS as ARGS, eks_h100_training as recipe};

fn render(deployer: Deployer, serial: bool) -> Bundle {
    let opts = BundleOptions {
        deployer,
        serial,
        ..BundleOptions::default()
    };
    bundle::render(&recipe(), &opts).unwrap()
}

/// The files a deployer adds, as one text.
fn dump(b: &Bundle, prefixes: &[&str]) -> String {
    let mut out = String::new();
    for (path, f) in &b.files {
        if !prefixes.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        out.push_str(&format!("===== {path} =====\n"));
        out.push_str(&String::from_utf8_lossy(&f.content));
    }
    out
}

fn text(b: &Bundle, path: &str) -> String {
    String::from_utf8(b.files[path].content.clone()).unwrap()
}

/// Every YAML document of a file, parsed.
fn docs(b: &Bundle, path: &str) -> Vec<Value> {
    let t = text(b, path);
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in t.lines().chain(std::iter::once("---")) {
        if line == "---" {
            if cur
                .lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
            {
                out.push(aiconform::yaml::from_str(&cur, path).unwrap());
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    out
}

/// `deps` (node -> what it waits for) names only nodes, and has no cycle.
fn assert_acyclic_and_closed(what: &str, deps: &BTreeMap<String, Vec<String>>) {
    for (n, ds) in deps {
        for d in ds {
            assert!(deps.contains_key(d), "{what}: {n} waits for unknown {d}");
        }
    }
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < deps.len() {
        let ready: Vec<&str> = deps
            .iter()
            .filter(|(n, ds)| {
                !done.contains(n.as_str()) && ds.iter().all(|d| done.contains(d.as_str()))
            })
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(!ready.is_empty(), "{what}: cycle among {deps:?}");
        done.extend(ready);
    }
}

fn flux_objects(b: &Bundle) -> Vec<Value> {
    let root = docs(b, "kustomization.yaml").remove(0);
    let resources: Vec<String> = root["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let listed: BTreeSet<&str> = resources.iter().map(String::as_str).collect();
    let on_disk: BTreeSet<&str> = b
        .files
        .keys()
        .filter(|p| p.starts_with("flux/"))
        .map(String::as_str)
        .collect();
    assert_eq!(listed, on_disk, "kustomization.yaml lists every flux file");
    for g in root["configMapGenerator"].as_array().unwrap() {
        let file = g["files"][0].as_str().unwrap();
        let (_, path) = file.split_once('=').unwrap();
        assert!(b.files.contains_key(path), "generator reads {path}");
    }
    resources.iter().flat_map(|p| docs(b, p)).collect()
}

/// Flux `dependsOn` per kind: name -> names it waits for.
fn flux_graph(objects: &[Value], kind: &str) -> BTreeMap<String, Vec<String>> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind && o["apiVersion"].as_str().unwrap().contains("toolkit"))
        .filter(|o| kind != "Kustomization" || o["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1")
        .map(|o| {
            let deps = o["spec"]["dependsOn"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|d| d["name"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            (o["metadata"]["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

fn helmfile_graph(b: &Bundle) -> BTreeMap<String, Vec<String>> {
    let doc = docs(b, "helmfile.yaml").remove(0);
    let repos: BTreeSet<&str> = doc["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut out = BTreeMap::new();
    for r in doc["releases"].as_array().unwrap() {
        let chart = r["chart"].as_str().unwrap();
        match chart.strip_prefix("./") {
            Some(dir) => assert!(
                b.files.keys().any(|p| p.starts_with(&format!("{dir}/"))),
                "{chart} is a folder of the bundle"
            ),
            None => assert!(repos.contains(chart.split('/').next().unwrap()), "{chart}"),
        }
        for v in r["values"].as_array().into_iter().flatten() {
            assert!(b.files.contains_key(v.as_str().unwrap()), "{v}");
        }
        let needs = r["needs"]
            .as_array()
            .map(|a| a.iter().map(|n| n.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        out.insert(
            format!(
                "{}/{}",
                r["namespace"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            ),
            needs,
        );
    }
    out
}

/// A Helm template with each `{{ ... }}` action replaced by a string, so it parses as YAML.
fn untemplated(t: &str) -> String {
    let mut out = String::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").unwrap() + start + 2;
        out.push_str("\"templated\"");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn waves(b: &Bundle, prefix: &str) -> BTreeMap<String, u64> {
    b.files
        .keys()
        .filter(|p| p.starts_with(prefix))
        .map(|p| {
            let app: Value = aiconform::yaml::from_str(&untemplated(&text(b, p)), p).unwrap();
            (
                app["metadata"]["name"].as_str().unwrap().to_string(),
                app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        })
        .collect()
}

// ---- golden output ---------------------------------------------------------------------

#[test]
fn golden_deployers() {
    for (deployer, prefixes) in [
        (Deployer::ArgoCd, &["argocd/"][..]),
        (Deployer::ArgoCdHelm, &["argocd-helm/"][..]),
        (Deployer::Flux, &["kustomization.yaml", "flux/"][..]),
        (Deployer::Helmfile, &["helmfile.yaml"][..]),
    ] {
        let b = render(deployer, false);
        insta::assert_snapshot!(
            format!("eks_h100_training_kubeflow_{deployer}"),
            dump(&b, prefixes)
        );
    }
}

// ---- structure -------------------------------------------------------------------------

#[test]
fn flux_objects_parse_and_depend_on_defined_objects() {
    for serial in [false, true] {
        let b = render(Deployer::Flux, serial);
        let objects = flux_objects(&b);
        let releases = flux_graph(&objects, "HelmRelease");
        let kustomizations = flux_graph(&objects, "Kustomization");
        assert_acyclic_and_closed("HelmRelease", &releases);
        assert_acyclic_and_closed("Kustomization", &kustomizations);
        let r = recipe();
        assert_eq!(
            releases.len(),
            r.components.len(),
            "a HelmRelease per chart"
        );
        for o in &objects {
            let name = o["metadata"]["name"].as_str().unwrap();
            assert_eq!(o["metadata"]["namespace"], "flux-system", "{name}");
            match o["kind"].as_str().unwrap() {
                "HelmRelease" => {
                    assert_eq!(o["apiVersion"], "helm.toolkit.fluxcd.io/v2");
                    let spec = &o["spec"];
                    // Exactly one of chart (HelmRepository) and chartRef (OCIRepository),
                    // and the source it names exists.
                    let (kind, source) = if spec["chartRef"].is_object() {
                        assert!(spec["chart"].is_null(), "{name}");
                        ("OCIRepository", &spec["chartRef"]["name"])
                    } else {
                        (
                            "HelmRepository",
                            &spec["chart"]["spec"]["sourceRef"]["name"],
                        )
                    };
                    assert!(
                        objects
                            .iter()
                            .any(|s| s["kind"] == kind && &s["metadata"]["name"] == source),
                        "{name}: {kind} {source}"
                    );
                    assert_eq!(spec["valuesFrom"][0]["kind"], "ConfigMap", "{name}");
                }
                "HelmRepository" | "OCIRepository" | "GitRepository" => {
                    assert_eq!(o["apiVersion"], "source.toolkit.fluxcd.io/v1", "{name}");
                }
                "Kustomization" => {
                    let path = o["spec"]["path"].as_str().unwrap();
                    let dir = path.strip_prefix("./").unwrap();
                    assert!(
                        b.files.keys().any(|p| p.starts_with(&format!("{dir}/"))),
                        "{name}: {path}"
                    );
                }
                other => panic!("unexpected kind {other}"),
            }
        }
        // Charts from oci:// sources come from an OCIRepository.
        let oci: Vec<&str> = objects
            .iter()
            .filter(|o| o["kind"] == "OCIRepository")
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            oci,
            ["jobset", "kai-scheduler", "kubeflow-trainer", "nvsentinel"]
        );
        if !serial {
            assert_eq!(
                releases["gpu-operator"],
                [
                    "cert-manager",
                    "kube-prometheus-stack",
                    "node-feature-discovery"
                ]
            );
            assert!(releases["cert-manager"].is_empty());
        }
    }
}

#[test]
fn helmfile_needs_name_defined_releases() {
    for serial in [false, true] {
        let b = render(Deployer::Helmfile, serial);
        let g = helmfile_graph(&b);
        assert_acyclic_and_closed("helmfile", &g);
        if !serial {
            assert_eq!(
                g["gpu-operator/gpu-operator"],
                [
                    "cert-manager/cert-manager",
                    "monitoring/kube-prometheus-stack",
                    "node-feature-discovery/node-feature-discovery"
                ]
            );
        }
    }
}

#[test]
fn serial_chains_components_in_deployment_order() {
    let r = recipe();
    let names: Vec<&str> = r.components.iter().map(|c| c.name.as_str()).collect();
    for (deployer, prefix) in [
        (Deployer::ArgoCd, "argocd/applications/"),
        (Deployer::ArgoCdHelm, "argocd-helm/templates/"),
    ] {
        let serial = waves(&render(deployer, true), prefix);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(serial[*n], i as u64, "{deployer} {n}");
        }
        // Parallel: a component's wave is one more than its latest dependency's, and
        // independent components share wave 0.
        let parallel = waves(&render(deployer, false), prefix);
        for c in &r.components {
            let expected = c
                .dependency_refs
                .iter()
                .map(|d| parallel[d] + 1)
                .max()
                .unwrap_or(0);
            assert_eq!(parallel[&c.name], expected, "{deployer} {}", c.name);
        }
        let first: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| parallel[*n] == 0)
            .collect();
        assert!(first.len() > 1, "{first:?}");
    }
    let flux = flux_graph(&flux_objects(&render(Deployer::Flux, true)), "HelmRelease");
    let helmfile = helmfile_graph(&render(Deployer::Helmfile, true));
    for (i, n) in names.iter().enumerate() {
        let prev: Vec<String> = i
            .checked_sub(1)
            .map(|j| names[j].to_string())
            .into_iter()
            .collect();
        assert_eq!(flux[*n], prev, "flux {n}");
        let ns = &r.components[i].namespace;
        let id = format!("{ns}/{n}");
        let want: Vec<String> = i
            .checked_sub(1)
            .map(|j| format!("{}/{}", r.components[j].namespace, names[j]))
            .into_iter()
            .collect();
        // A chart's extra manifests come after it; the next component waits for both.
        let got: Vec<String> = helmfile[&id]
            .iter()
            .filter(|d| !d.ends_with("-manifests"))
            .cloned()
            .collect();
        assert_eq!(got, want, "helmfile {id}");
    }
}

// ---- real tools ------------------------------------------------------------------------

#[test]
fn argocd_helm_chart_renders_with_helm() {
    let Some(tools) = tools_support::tools("argocd_helm_chart_renders_with_helm") else {
        return;
    };
    let helm = tools.join("helm");
    let b = render(Deployer::ArgoCdHelm, false);
    let dir = tempfile::tempdir().unwrap();
    b.write_to(&dir.path().join("b"), false).unwrap();
    let chart = dir.path().join("b/argocd-helm");
    let lint = StdCommand::new(&helm)
        .arg("lint")
        .arg(&chart)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let out = StdCommand::new(&helm)
        .args(["template", "apps"])
        .arg(&chart)
        .args([
            "--set",
            "repoURL=https://git.example.com/x.git,targetRevision=v1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout).unwrap();
    let apps: Vec<Value> = rendered
        .split("\n---\n")
        .filter(|d| d.contains("kind:"))
        .map(|d| aiconform::yaml::from_str(d, "helm template").unwrap())
        .collect();
    // Same Applications as the argocd deployer, with the repository from the values.
    let argocd = render(Deployer::ArgoCd, false);
    assert_eq!(apps.len(), recipe().components.len());
    for app in &apps {
        let name = app["metadata"]["name"].as_str().unwrap();
        let path = argocd
            .files
            .keys()
            .find(|p| {
                p.starts_with("argocd/applications/") && p.ends_with(&format!("-{name}.yaml"))
            })
            .unwrap();
        let mut want: Value =
            aiconform::yaml::from_slice(&argocd.files[path].content, path).unwrap();
        for s in want["spec"]["sources"].as_array_mut().unwrap() {
            if s["repoURL"] == bundle::ARGOCD_REPO_PLACEHOLDER {
                s["repoURL"] = "https://git.example.com/x.git".into();
                s["targetRevision"] = "v1".into();
            }
        }
        assert_eq!(app, &want, "{name}");
    }
}

#[test]
fn flux_objects_decode_strictly_into_the_flux_api_types() {
    let Some(tools) = tools_support::tools("flux_objects_decode_strictly_into_the_flux_api_types")
    else {
        return;
    };
    let check = |dir: &Path| {
        let files: Vec<PathBuf> = std::fs::read_dir(dir.join("flux"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        StdCommand::new(tools.join("aiconform-fluxcheck"))
            .args(&files)
            .output()
            .unwrap()
    };
    for serial in [false, true] {
        let b = render(Deployer::Flux, serial);
        let dir = tempfile::tempdir().unwrap();
        b.write_to(&dir.path().join("b"), false).unwrap();
        let out = check(&dir.path().join("b"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains(" 0 bad"), "{stdout}");
    }
    // The checker fails on a field the API does not have.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("flux")).unwrap();
    std::fs::write(
        dir.path().join("flux/x.yaml"),
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: x}\nspec: {interval: 1m, releaseNam: x}\n",
    )
    .unwrap();
    let out = check(dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("releaseNam"));
}

#[test]
fn helmfile_reads_the_releases_and_their_needs() {
    let Some(tools) = tools_support::tools("helmfile_reads_the_releases_and_their_needs") else {
        return;
    };
    let list = |dir: &Path| {
        let home = dir.join("helm-home");
        let mut cmd = StdCommand::new(tools.join("helmfile"));
        cmd.arg("list").current_dir(dir).env(
            "PATH",
            format!(
                "{}:{}",
                tools.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
        tools_support::helm_env(&mut cmd, &home);
        cmd.output().unwrap()
    };
    for serial in [false, true] {
        let b = render(Deployer::Helmfile, serial);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        b.write_to(&dir, false).unwrap();
        let out = list(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // helmfile warns about a `needs` entry naming no release.
        assert!(!stderr.contains("WARNING"), "{stderr}");
        for (id, _) in helmfile_graph(&b) {
            let name = id.split_once('/').unwrap().1;
            assert!(
                stdout
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(name)),
                "{name} in {stdout}"
            );
        }
        // A field helmfile does not know is an error, an unknown need a warning.
        let path = dir.join("helmfile.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen("- cert-manager/cert-manager", "- cert-manager/ghost", 1),
        )
        .unwrap();
        assert!(String::from_utf8_lossy(&list(&dir).stderr).contains("ghost"));
        std::fs::write(&path, text.replace("\nreleases:", "\nrelases:")).unwrap();
        assert!(!list(&dir).status.success());
    }
}

// ---- CLI -------------------------------------------------------------------------------

#[test]
fn cli_writes_each_deployer_and_verify_passes() {
    for deployer in ["argocd", "argocd-helm", "flux", "helmfile"] {
        for serial in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("b");
            let mut cmd = Command::cargo_bin("aiconform").unwrap();
            cmd.arg("bundle")
                .args(ARGS)
                .args(["--deployer", deployer])
                .arg("-o")
                .arg(&out);
            if serial {
                cmd.arg("--serial");
            }
            cmd.assert().success();
            let manifest = bundle::read_manifest(&out).unwrap();
            assert_eq!(manifest.deployer.to_string(), deployer);
            assert_eq!(manifest.serial, serial);
            for f in ["README.md", "checksums.sha256"] {
                assert!(out.join(f).exists(), "{deployer}: {f}");
            }
            let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
            let own = match deployer {
                "flux" => "kustomization.yaml",
                "helmfile" => "helmfile.yaml",
                "argocd-helm" => "argocd-helm/Chart.yaml",
                _ => "argocd/app-of-apps.yaml",
            };
            assert!(listed.contains(own), "{deployer}: bundle.yaml covers {own}");
            Command::cargo_bin("aiconform")
                .unwrap()
                .args(["bundle", "verify"])
                .arg(&out)
                .assert()
                .success();
            // An edit to a deployer file is caught.
            let path = out.join(own);
            let mut t = std::fs::read_to_string(&path).unwrap();
            t.push_str("# edited\n");
            std::fs::write(&path, t).unwrap();
            Command::cargo_bin("aiconform")
                .unwrap()
                .args(["bundle", "verify"])
                .arg(&out)
                .assert()
                .failure();
        }
    }
}

#[test]
fn help_lists_the_deployers_and_bad_ones_are_named() {
    let out = Command::cargo_bin("aiconform")
        .unwrap()
        .args(["bundle", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for d in [
        "helm",
        "argocd",
        "argocd-helm",
        "flux",
        "helmfile",
        "--serial",
    ] {
        assert!(help.contains(d), "{d} in {help}");
    }
    let dir = tempfile::tempdir().unwrap();
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("bundle")
        .args(ARGS)
        .args(["--deployer", "kapp", "-o"])
        .arg(dir.path().join("b"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("helmfile"));
    Command::cargo_bin("aiconform")
        .unwrap()
        .arg("bundle")
        .args(ARGS)
        .args([
            "--deployer",
            "helmfile",
            "--argocd-repo-url",
            "https://x/y.git",
            "-o",
        ])
        .arg(dir.path().join("c"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("--argocd-repo-url"));
}
