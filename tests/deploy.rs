//! `aiconform deploy` against the embedded test cluster: a manifest-only bundle whose
//! healthy components pass and whose broken DaemonSet is reported by name, a Helm component
//! without `helm` on PATH, and the refusals that need no cluster (tampered bundle, no
//! reachable cluster).
//!
//! Cluster tests skip with a printed reason when the test cluster binary is unavailable
//! (build it with `ci/testcluster/build.sh`); `AICONFORM_REQUIRE_CLUSTER=1` makes that fatal.

use std::path::{Path, PathBuf};

use aiconform::cluster::testing::shared_or_skip;
use aiconform::recipe::load_recipe_file;
use aiconform::recipe::model::{Component, ComponentType, HealthCheck, Manifest, Recipe};
use assert_cmd::Command;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use predicates::str::contains;

fn manifest_stack() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/manifest-stack.yaml")
}

fn write_recipe(dir: &Path, recipe: &Recipe) -> PathBuf {
    let path = dir.join("recipe.yaml");
    std::fs::write(&path, aiconform::yaml::to_string(recipe).unwrap()).unwrap();
    path
}

fn render(recipe: &Path, out: &Path) {
    Command::cargo_bin("aiconform")
        .unwrap()
        .args(["bundle", "--recipe"])
        .arg(recipe)
        .arg("--output")
        .arg(out)
        .assert()
        .success();
}

fn deploy(bundle: &Path, kubeconfig: &Path, timeout: &str) -> assert_cmd::assert::Assert {
    Command::cargo_bin("aiconform")
        .unwrap()
        .args(["deploy", "--keep-going", "--bundle"])
        .arg(bundle)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--timeout", timeout])
        .timeout(std::time::Duration::from_secs(300))
        .assert()
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_stack_deploys_and_reports_the_broken_component() {
    let Some(cluster) = shared_or_skip("manifest_stack_deploys_and_reports_the_broken_component")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    render(&manifest_stack(), &bundle);

    let kubeconfig = cluster.kubeconfig.clone();
    let b = bundle.clone();
    let assert = tokio::task::spawn_blocking(move || deploy(&b, &kubeconfig, "20s"))
        .await
        .unwrap()
        .failure();
    let out = assert.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");

    for healthy in [
        "[1/6] demo-crds: healthy",
        "[2/6] demo-api: healthy",
        "[3/6] gpu-agent: healthy",
        "[6/6] demo-web: healthy",
    ] {
        assert!(stderr.contains(healthy), "expected `{healthy}`\n{both}");
    }
    // The shared cluster has 2 GPU nodes; the count is not what this test is about.
    let failed = stdout
        .lines()
        .find(|l| l.contains("FAILED  broken-agent:"))
        .unwrap_or_else(|| panic!("no FAILED line for broken-agent\n{both}"));
    assert!(
        failed.contains("DaemonSet broken-agent/broken-agent: 0/")
            && failed.ends_with(" pods ready after 20s"),
        "{both}"
    );
    assert!(
        stdout.contains(
            "SKIPPED broken-consumer: depends on broken-agent, which did not become healthy"
        ),
        "{both}"
    );
    assert!(
        stdout.contains("deploy of recipe manifest-stack: 4 healthy, 1 failed, 1 skipped"),
        "{both}"
    );

    // The objects are there, applied server-side by the aiconform field manager.
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "demo-api");
    let d = deployments.get("demo-api").await.unwrap();
    let managers: Vec<String> = d
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.iter().any(|m| m == "aiconform"), "{managers:?}");
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "demo-api",
        &ApiResource::from_gvk(&GroupVersionKind::gvk("demo.aiconform.dev", "v1", "Widget")),
    );
    let w = widgets.get("default-widget").await.unwrap();
    assert_eq!(w.data["spec"]["size"], 3);
    // The consumer of the broken component was never applied.
    let consumer: Api<Deployment> = Api::namespaced(client.clone(), "broken-consumer");
    assert!(consumer.get_opt("broken-consumer").await.unwrap().is_none());

    // Deploying again is idempotent: without the broken components everything is healthy.
    let mut recipe = load_recipe_file(&manifest_stack()).unwrap();
    recipe.components.retain(|c| !c.name.starts_with("broken-"));
    recipe
        .deployment_order
        .retain(|c| !c.starts_with("broken-"));
    let healthy_bundle = tmp.path().join("healthy");
    render(&write_recipe(tmp.path(), &recipe), &healthy_bundle);
    let kubeconfig = cluster.kubeconfig.clone();
    let assert = tokio::task::spawn_blocking(move || deploy(&healthy_bundle, &kubeconfig, "60s"))
        .await
        .unwrap();
    let out = assert.get_output().clone();
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("4 healthy, 0 failed, 0 skipped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn helm_recipe() -> Recipe {
    let mut recipe = load_recipe_file(&manifest_stack()).unwrap();
    recipe.metadata.name = "helm-missing".into();
    let chart = Component {
        name: "chart-x".into(),
        component_type: ComponentType::Helm,
        source: Some("https://charts.example.com".into()),
        chart: Some("chart-x".into()),
        version: "1.0.0".into(),
        namespace: "chart-x".into(),
        dependency_refs: vec![],
        health_checks: vec![HealthCheck {
            kind: "Deployment".into(),
            name: "chart-x".into(),
            namespace: None,
        }],
        overlays: vec![],
        values: serde_json::json!({"replicaCount": 1}),
        manifests: vec![],
    };
    let after = Component {
        name: "after-chart".into(),
        component_type: ComponentType::Manifest,
        source: None,
        chart: None,
        version: "1.0.0".into(),
        namespace: "after-chart".into(),
        dependency_refs: vec!["chart-x".into()],
        health_checks: vec![],
        overlays: vec![],
        values: serde_json::json!({}),
        manifests: vec![Manifest {
            name: "cm.yaml".into(),
            content: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after}\n".into(),
            file: None,
        }],
    };
    recipe.deployment_order = vec!["chart-x".into(), "after-chart".into()];
    recipe.components = vec![chart, after];
    recipe
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_component_without_helm_is_a_clear_failure() {
    let Some(cluster) = shared_or_skip("helm_component_without_helm_is_a_clear_failure") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    render(&write_recipe(tmp.path(), &helm_recipe()), &bundle);
    let empty_path = tmp.path().join("empty-path");
    std::fs::create_dir(&empty_path).unwrap();
    let kubeconfig = cluster.kubeconfig.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("aiconform")
            .unwrap()
            .args(["deploy", "--bundle"])
            .arg(&bundle)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--timeout", "20s"])
            .env("PATH", &empty_path)
            .assert()
            .failure()
            .get_output()
            .clone()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED  chart-x: Helm chart chart-x 1.0.0 cannot be installed: the `helm` CLI is not on PATH"),
        "{stdout}"
    );
    assert!(
        stdout.contains("https://helm.sh/docs/intro/install/"),
        "{stdout}"
    );
    assert!(stdout.contains("01-chart-x/README.md"), "{stdout}");
    assert!(
        stdout.contains("SKIPPED after-chart: depends on chart-x"),
        "{stdout}"
    );
}

#[test]
fn tampered_bundle_is_not_deployed() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    render(&manifest_stack(), &bundle);
    std::fs::write(
        bundle.join("04-broken-agent/manifests/daemonset.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: swapped}\n",
    )
    .unwrap();
    Command::cargo_bin("aiconform")
        .unwrap()
        .args(["deploy", "--bundle"])
        .arg(&bundle)
        .arg("--kubeconfig")
        .arg(tmp.path().join("never-read"))
        .assert()
        .failure()
        .stdout(contains(
            "changed: 04-broken-agent/manifests/daemonset.yaml",
        ))
        .stderr(contains("refusing to deploy"));
}

#[test]
fn bundles_for_git_deployers_are_refused_with_how_to_apply_them() {
    let tmp = tempfile::tempdir().unwrap();
    for (deployer, how) in [
        ("argocd", "argocd/app-of-apps.yaml"),
        ("argocd-helm", "argocd-helm/app-of-apps.yaml"),
        ("flux", "flux/source.yaml"),
    ] {
        let bundle = tmp.path().join(deployer);
        Command::cargo_bin("aiconform")
            .unwrap()
            .args(["bundle", "--recipe"])
            .arg(manifest_stack())
            .arg("--output")
            .arg(&bundle)
            .args(["--deployer", deployer])
            .assert()
            .success();
        Command::cargo_bin("aiconform")
            .unwrap()
            .args(["deploy", "--bundle"])
            .arg(&bundle)
            .arg("--kubeconfig")
            .arg(tmp.path().join("never-read"))
            .assert()
            .failure()
            .stderr(contains(format!(
                "is rendered for --deployer {deployer}, which `aiconform deploy` does not install"
            )))
            .stderr(contains(how));
    }
}

#[test]
fn unreachable_cluster_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    render(&manifest_stack(), &bundle);
    let kubeconfig = tmp.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n\
         contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n\
         users:\n- name: u\n  user: {token: x}\n",
    )
    .unwrap();
    Command::cargo_bin("aiconform")
        .unwrap()
        .args(["deploy", "--bundle"])
        .arg(&bundle)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .failure()
        .stderr(contains("cannot deploy"))
        .stderr(contains("127.0.0.1:1"));
    Command::cargo_bin("aiconform")
        .unwrap()
        .args(["deploy", "--bundle"])
        .arg(tmp.path().join("no-such-bundle"))
        .assert()
        .failure()
        .stderr(contains("bundle.yaml not found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rendered_deploy_and_undeploy_scripts_run_against_the_cluster() {
    let test = "rendered_deploy_and_undeploy_scripts_run_against_the_cluster";
    if aiconform::deploy::find_on_path("kubectl").is_none() {
        eprintln!("SKIP {test}: kubectl not on PATH");
        return;
    }
    let Some(cluster) = shared_or_skip(test) else {
        return;
    };
    // Healthy components only, in namespaces of their own, without the cluster-wide CRD the
    // other test uses.
    let mut recipe = load_recipe_file(&manifest_stack()).unwrap();
    recipe.metadata.name = "scripts".into();
    recipe
        .components
        .retain(|c| ["demo-api", "gpu-agent", "demo-web"].contains(&c.name.as_str()));
    for c in &mut recipe.components {
        c.namespace = format!("sh-{}", c.namespace);
        c.dependency_refs.clear();
        c.manifests.retain(|m| m.name != "widget.yaml");
    }
    recipe.deployment_order = recipe.components.iter().map(|c| c.name.clone()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    render(&write_recipe(tmp.path(), &recipe), &bundle);

    let run = |script: &str| {
        let out = std::process::Command::new("bash")
            .arg(bundle.join(script))
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("TIMEOUT", "90s")
            .output()
            .unwrap();
        let text = format!(
            "{script} stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let deployed = tokio::task::block_in_place(|| run("deploy.sh"));
    assert!(
        deployed.contains("deploy.sh: all 3 components of recipe scripts deployed"),
        "{deployed}"
    );
    assert!(deployed.contains("successfully rolled out"), "{deployed}");

    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(client.clone(), "sh-demo-api");
    assert!(api.get_opt("demo-api").await.unwrap().is_some());

    let removed = tokio::task::block_in_place(|| run("undeploy.sh"));
    assert!(removed.contains("removing demo-api"), "{removed}");
    let gone = api.get_opt("demo-api").await.unwrap();
    assert!(
        gone.is_none() || gone.is_some_and(|d| d.metadata.deletion_timestamp.is_some()),
        "demo-api still there after undeploy.sh"
    );
}
