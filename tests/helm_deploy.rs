//! Helm bundles deployed for real into the embedded test cluster with the pinned helm
//! (`ci/tools/build.sh`): the three fixture charts of `fixtures/recipes/helm-charts.yaml`
//! served from a chart repository (HTTP index) and an OCI registry (TLS) on 127.0.0.1.
//!
//! One test walks a bundle's life: the generated deploy.sh installs it; `aiconform deploy`
//! of the same bundle pulled from an OCI registry is an idempotent upgrade whose recipe
//! values reach the releases; a chart that never becomes healthy and values the chart's
//! schema rejects stop the deploy naming the component and the reason, leaving later
//! releases untouched; a missing chart version and an unreachable chart repository are
//! named; the generated undeploy.sh removes the releases in reverse order.
//!
//! Vendored charts (`bundle --vendor-charts`): pulled from the chart repository and the
//! registry, which are then stopped, and deployed by deploy.sh and `aiconform deploy` from
//! the bundle alone; pull failures name the chart and source, a tampered archive fails
//! `bundle verify` and is refused by `deploy`, and helmfile and `mirror list` read the
//! archives without the chart sources.

mod tools_support;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use aiconform::cluster::testing::shared_or_skip;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use tools_support::{ChartRepo, Registry, RegistryConfig, helm, tools};

struct Env {
    tools: PathBuf,
    helm_home: PathBuf,
    kubeconfig: PathBuf,
    ca: PathBuf,
}

impl Env {
    /// Environment of every aiconform, helm and script run: the pinned helm, helm state
    /// in the test's directory, and trust in the test registry's CA (Go reads SSL_CERT_FILE).
    fn apply(&self, cmd: &mut StdCommand) {
        tools_support::helm_env(cmd, &self.helm_home);
        cmd.env("AICONFORM_HELM", self.tools.join("helm"))
            .env("HELM", self.tools.join("helm"))
            .env("SSL_CERT_FILE", &self.ca)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("TIMEOUT", "90s");
    }

    fn helm(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--kubeconfig", self.kubeconfig.to_str().unwrap()]);
        helm(&self.tools, &self.helm_home, &all)
    }

    /// Revision and status of a release's latest revision.
    fn revision(&self, release: &str, ns: &str) -> (u64, String) {
        let out = self.helm(&["history", release, "-n", ns, "--max", "1", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (
            v[0]["revision"].as_u64().unwrap(),
            v[0]["status"].as_str().unwrap().to_string(),
        )
    }

    fn releases(&self) -> Vec<String> {
        let out = self.helm(&["list", "--all-namespaces", "--all", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut names: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// Run a command; (success, stdout, stderr).
    fn run(&self, mut cmd: StdCommand) -> (bool, String, String) {
        self.apply(&mut cmd);
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `aiconform bundle --vendor-charts` of `recipe` into `out`.
    fn vendor(&self, recipe: &Path, out: &Path, extra: &[&str]) -> (bool, String, String) {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("aiconform"));
        cmd.args(["bundle", "--recipe"])
            .arg(recipe)
            .arg("-o")
            .arg(out)
            .arg("--vendor-charts")
            .args(extra);
        self.run(cmd)
    }

    fn deploy(&self, bundle: &str, extra: &[&str]) -> (bool, String, String) {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("aiconform"));
        cmd.args(["deploy", "--bundle", bundle, "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(extra);
        self.run(cmd)
    }
}

/// The fixture recipe with its chart sources pointed at the live servers, edited by `edit`.
fn recipe(dir: &Path, name: &str, repo: &str, oci: &str, edit: &[(&str, &str)]) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/helm-charts.yaml");
    let mut text = std::fs::read_to_string(fixture)
        .unwrap()
        .replace("http://127.0.0.1:8879", repo)
        .replace("oci://127.0.0.1:5000/charts", oci);
    for (from, to) in edit {
        assert!(text.contains(from), "fixture lacks `{from}`");
        text = text.replace(from, to);
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The fixture charts served from a chart repository and, the GPU policy chart, from a TLS
/// OCI registry; and the environment of every command run against them.
fn chart_sources(tools: &Path, tmp: &Path, kubeconfig: &Path) -> (ChartRepo, Registry, Env) {
    let helm_home = tmp.join("helm-home");
    let charts = ChartRepo::start(tools, &helm_home);
    let registry = Registry::start(
        tools,
        &RegistryConfig {
            tls: true,
            ..Default::default()
        },
    );
    let env = Env {
        tools: tools.to_path_buf(),
        helm_home,
        kubeconfig: kubeconfig.to_path_buf(),
        ca: registry.ca.clone().unwrap(),
    };
    let policy_chart = charts.dir.path().join("gpu-policy-0.3.0.tgz");
    env.helm(&[
        "push",
        policy_chart.to_str().unwrap(),
        &format!("oci://{}/charts", registry.addr),
        "--ca-file",
        env.ca.to_str().unwrap(),
    ]);
    (charts, registry, env)
}

fn render(recipe: &Path, out: &Path) {
    assert_cmd::Command::cargo_bin("aiconform")
        .unwrap()
        .args(["bundle", "--recipe"])
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .assert()
        .success();
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_bundle_installs_upgrades_fails_precisely_and_undeploys() {
    let test = "helm_bundle_installs_upgrades_fails_precisely_and_undeploys";
    let Some(tools) = tools(test) else {
        return;
    };
    let Some(cluster) = shared_or_skip(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (charts, registry, env) = chart_sources(&tools, tmp.path(), &cluster.kubeconfig);
    let oci_charts = format!("oci://{}/charts", registry.addr);
    let good = recipe(tmp.path(), "good", &charts.url, &oci_charts, &[]);
    let bundle = tmp.path().join("bundle");
    render(&good, &bundle);

    // 1. The generated deploy.sh installs the three releases in order.
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        let mut cmd = StdCommand::new("bash");
        cmd.arg(bundle.join("deploy.sh"));
        env.run(cmd)
    });
    assert!(ok, "deploy.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("deploy.sh: all 3 components of recipe helm-charts deployed"),
        "{stdout}"
    );
    let order: Vec<usize> = ["gpu-operator", "inference-gateway", "gpu-policy"]
        .iter()
        .map(|c| stdout.find(&format!("] {c}: Helm chart")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    assert_eq!(
        env.revision("gpu-operator", "fx-gpu-operator"),
        (1, "deployed".into())
    );

    // 2. `aiconform deploy` of the same bundle, pushed to and pulled from the registry:
    //    an upgrade (revision 2), every component healthy, recipe values in the releases.
    let pushed = tokio::task::block_in_place(|| {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("aiconform"));
        cmd.args(["bundle", "--recipe"])
            .arg(&good)
            .arg("-o")
            .arg(format!("oci://{}/bundles/helm-charts:v1", registry.addr))
            .arg("--ca-file")
            .arg(&env.ca);
        env.run(cmd)
    });
    assert!(pushed.0, "{}", pushed.2);
    let reference = format!("oci://{}/bundles/helm-charts:v1", registry.addr);
    let ca = env.ca.to_str().unwrap().to_string();
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        env.deploy(&reference, &["--ca-file", &ca, "--timeout", "60s"])
    });
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("3 healthy, 0 failed, 0 skipped"),
        "{stdout}"
    );
    for (release, ns) in [
        ("gpu-operator", "fx-gpu-operator"),
        ("inference-gateway", "fx-gateway"),
        ("gpu-policy", "fx-gpu-policy"),
    ] {
        assert_eq!(
            env.revision(release, ns),
            (2, "deployed".into()),
            "{release}"
        );
    }
    let values: serde_json::Value = serde_json::from_str(&env.helm(&[
        "get",
        "values",
        "gpu-operator",
        "-n",
        "fx-gpu-operator",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(values["replicaCount"], 2, "{values}");
    assert_eq!(values["driver"]["version"], "560.35", "{values}");
    let values: serde_json::Value = serde_json::from_str(&env.helm(&[
        "get",
        "values",
        "gpu-policy",
        "-n",
        "fx-gpu-policy",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(values["sharing"], "timeSlicing", "{values}");

    // What the releases run, read from the cluster.
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let op: Api<Deployment> = Api::namespaced(client.clone(), "fx-gpu-operator");
    let op = op.get("gpu-operator").await.unwrap();
    assert_eq!(op.status.unwrap().ready_replicas, Some(2));
    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "fx-gpu-operator");
    let ds = ds
        .get("gpu-operator-device-plugin")
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(
        ds.desired_number_scheduled >= 1,
        "no GPU node selected: {ds:?}"
    );
    assert_eq!(ds.number_ready, ds.desired_number_scheduled);
    let policies: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "fixtures.aiconform.dev",
            "v1",
            "GpuPolicy",
        )),
    );
    let p = policies.get("gpu-policy").await.unwrap();
    assert_eq!(p.data["spec"]["sharing"], "timeSlicing");

    // 3. A chart that never gets healthy: the deploy stops at it, naming the object and
    //    why; gpu-policy after it is untouched (still revision 2).
    let broken = recipe(
        tmp.path(),
        "broken",
        &charts.url,
        &oci_charts,
        &[("ready: \"true\"", "ready: \"false\"")],
    );
    let broken_bundle = tmp.path().join("broken");
    render(&broken, &broken_bundle);
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        env.deploy(broken_bundle.to_str().unwrap(), &["--timeout", "20s"])
    });
    assert!(!ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let failed = stdout
        .lines()
        .find(|l| l.contains("FAILED  inference-gateway:"))
        .unwrap_or_else(|| panic!("no FAILED line\n{stdout}\n{stderr}"));
    assert!(
        failed.contains("release inference-gateway installed but not healthy: Deployment fx-gateway/inference-gateway-controller: ")
            && failed.ends_with(" after 20s"),
        "{failed}"
    );
    assert!(
        stdout.contains("SKIPPED gpu-policy: not attempted: the deploy stopped at inference-gateway, which failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 healthy, 1 failed, 1 skipped"),
        "{stdout}"
    );
    assert_eq!(
        env.revision("gpu-policy", "fx-gpu-policy"),
        (2, "deployed".into())
    );

    // 4. Values the chart's schema rejects: stopped at the first component, nothing after it
    //    touched, and what is left installed is said.
    let bad = recipe(
        tmp.path(),
        "bad",
        &charts.url,
        &oci_charts,
        &[("replicaCount: 2", "replicaCount: two")],
    );
    let bad_bundle = tmp.path().join("bad");
    render(&bad, &bad_bundle);
    let gateway_before = env.revision("inference-gateway", "fx-gateway");
    let (ok, stdout, _) = tokio::task::block_in_place(|| {
        env.deploy(bad_bundle.to_str().unwrap(), &["--timeout", "20s"])
    });
    assert!(!ok);
    let failed = stdout
        .lines()
        .find(|l| l.contains("FAILED  gpu-operator:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(failed.contains("replicaCount"), "{failed}");
    assert!(failed.contains("schema"), "{failed}");
    assert!(
        failed.contains("release gpu-operator is left in namespace fx-gpu-operator with status deployed (revision 3)"),
        "{failed}"
    );
    assert!(
        stdout.contains("0 healthy, 1 failed, 2 skipped"),
        "{stdout}"
    );
    assert_eq!(
        env.revision("inference-gateway", "fx-gateway"),
        gateway_before
    );

    // 5. A chart version the repository does not have, and a repository that is not there.
    let missing = recipe(
        tmp.path(),
        "missing",
        &charts.url,
        &oci_charts,
        &[("version: 1.2.0", "version: 9.9.9")],
    );
    let missing_bundle = tmp.path().join("missing");
    render(&missing, &missing_bundle);
    let (ok, stdout, _) = tokio::task::block_in_place(|| {
        env.deploy(missing_bundle.to_str().unwrap(), &["--timeout", "20s"])
    });
    assert!(!ok);
    let failed = stdout
        .lines()
        .find(|l| l.contains("FAILED  gpu-operator:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        failed.contains("9.9.9") && failed.contains("not found"),
        "{failed}"
    );
    let gone = recipe(tmp.path(), "gone", "http://127.0.0.1:1", &oci_charts, &[]);
    let gone_bundle = tmp.path().join("gone");
    render(&gone, &gone_bundle);
    let (ok, stdout, _) = tokio::task::block_in_place(|| {
        env.deploy(gone_bundle.to_str().unwrap(), &["--timeout", "20s"])
    });
    assert!(!ok);
    let failed = stdout
        .lines()
        .find(|l| l.contains("FAILED  gpu-operator:"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(failed.contains("127.0.0.1:1"), "{failed}");

    // 6. The generated undeploy.sh removes the releases, last deployed first.
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        let mut cmd = StdCommand::new("bash");
        cmd.arg(bundle.join("undeploy.sh"));
        env.run(cmd)
    });
    assert!(
        ok,
        "undeploy.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let order: Vec<usize> = ["gpu-policy", "inference-gateway", "gpu-operator"]
        .iter()
        .map(|c| stdout.find(&format!("removing {c}")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    let left: Vec<String> = env
        .releases()
        .into_iter()
        .filter(|r| ["gpu-operator", "inference-gateway", "gpu-policy"].contains(&r.as_str()))
        .collect();
    assert!(left.is_empty(), "releases left: {left:?}");
}

/// The fixture recipe's components, releases and namespaces renamed, so its releases live
/// beside those of the other test on the shared cluster.
const AIR: &[(&str, &str)] = &[
    ("- name: gpu-operator", "- name: air-gpu-operator"),
    ("- name: inference-gateway", "- name: air-inference-gateway"),
    ("- name: gpu-policy", "- name: air-gpu-policy"),
    (
        "dependencyRefs: [gpu-operator]",
        "dependencyRefs: [air-gpu-operator]",
    ),
    (
        "deploymentOrder: [gpu-operator, inference-gateway, gpu-policy]",
        "deploymentOrder: [air-gpu-operator, air-inference-gateway, air-gpu-policy]",
    ),
    ("namespace: fx-", "namespace: air-"),
];

const AIR_RELEASES: [(&str, &str); 3] = [
    ("air-gpu-operator", "air-gpu-operator"),
    ("air-inference-gateway", "air-gateway"),
    ("air-gpu-policy", "air-gpu-policy"),
];

/// Text replacements in the fixture recipe.
type Edits<'a> = &'a [(&'a str, &'a str)];

/// Whether something listens at `addr` (`HOST:PORT`).
fn listening(addr: &str) -> bool {
    std::net::TcpStream::connect(addr).is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn vendored_bundle_deploys_with_the_chart_sources_stopped() {
    let test = "vendored_bundle_deploys_with_the_chart_sources_stopped";
    let Some(tools) = tools(test) else {
        return;
    };
    let Some(cluster) = shared_or_skip(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (charts, registry, env) = chart_sources(&tools, tmp.path(), &cluster.kubeconfig);
    let oci_charts = format!("oci://{}/charts", registry.addr);
    let air = recipe(tmp.path(), "air", &charts.url, &oci_charts, AIR);
    let bundle = tmp.path().join("air-bundle");
    let ca = env.ca.to_str().unwrap().to_string();
    let (ok, _, stderr) =
        tokio::task::block_in_place(|| env.vendor(&air, &bundle, &["--ca-file", &ca]));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("vendored 3 chart(s)"), "{stderr}");

    // Stop the chart repository and the registry: any chart download would fail now.
    let repo_addr = charts.url.trim_start_matches("http://").to_string();
    let registry_addr = registry.addr.clone();
    drop(charts);
    drop(registry);
    assert!(
        !listening(&repo_addr),
        "chart repository still at {repo_addr}"
    );
    assert!(
        !listening(&registry_addr),
        "registry still at {registry_addr}"
    );

    // 1. The generated deploy.sh installs the archives.
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        let mut cmd = StdCommand::new("bash");
        cmd.arg(bundle.join("deploy.sh"));
        env.run(cmd)
    });
    assert!(ok, "deploy.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("deploy.sh: all 3 components of recipe helm-charts deployed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Helm chart gpu-operator 1.2.0 (vendored)"),
        "{stdout}"
    );
    for (release, ns) in AIR_RELEASES {
        assert_eq!(
            env.revision(release, ns),
            (1, "deployed".into()),
            "{release}"
        );
    }

    // 2. `aiconform deploy` of the same bundle: an upgrade from the archives, all healthy.
    let (ok, stdout, stderr) =
        tokio::task::block_in_place(|| env.deploy(bundle.to_str().unwrap(), &["--timeout", "60s"]));
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("3 healthy, 0 failed, 0 skipped"),
        "{stdout}"
    );
    for (release, ns) in AIR_RELEASES {
        assert_eq!(
            env.revision(release, ns),
            (2, "deployed".into()),
            "{release}"
        );
    }
    let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
        .await
        .unwrap();
    let op: Api<Deployment> = Api::namespaced(client.clone(), "air-gpu-operator");
    let op = op.get("air-gpu-operator").await.unwrap();
    assert_eq!(op.status.unwrap().ready_replicas, Some(2));
    let policies: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "fixtures.aiconform.dev",
            "v1",
            "GpuPolicy",
        )),
    );
    let p = policies.get("air-gpu-policy").await.unwrap();
    assert_eq!(p.data["spec"]["sharing"], "timeSlicing");

    // 3. Clean up with the generated undeploy.sh.
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        let mut cmd = StdCommand::new("bash");
        cmd.arg(bundle.join("undeploy.sh"));
        env.run(cmd)
    });
    assert!(
        ok,
        "undeploy.sh failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let left: Vec<String> = env
        .releases()
        .into_iter()
        .filter(|r| r.starts_with("air-"))
        .collect();
    assert!(left.is_empty(), "releases left: {left:?}");
}

#[test]
fn vendoring_names_pull_failures_and_vendored_charts_are_verified() {
    let test = "vendoring_names_pull_failures_and_vendored_charts_are_verified";
    let Some(tools) = tools(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let helm_home = tmp.path().join("helm-home");
    let charts = ChartRepo::start(&tools, &helm_home);
    let registry = Registry::start(&tools, &RegistryConfig::default());
    let env = Env {
        tools: tools.clone(),
        helm_home,
        kubeconfig: tmp.path().join("never-read"),
        ca: tmp.path().join("no-ca.pem"),
    };
    let oci_charts = format!("oci://{}/charts", registry.addr);
    let policy_chart = charts.dir.path().join("gpu-policy-0.3.0.tgz");
    env.helm(&[
        "push",
        policy_chart.to_str().unwrap(),
        &oci_charts,
        "--plain-http",
    ]);

    // 1. A version the repository does not have, an unreachable repository, and a registry
    //    repository without the chart: named, and no bundle written.
    let no_chart = format!("oci://{}/elsewhere", registry.addr);
    let cases: [(&str, &str, &str, Edits, String); 3] = [
        (
            "missing",
            &charts.url,
            &oci_charts,
            &[("version: 1.2.0", "version: 9.9.9")],
            format!(
                "component `gpu-operator`: cannot vendor chart gpu-operator version 9.9.9 from {}",
                charts.url
            ),
        ),
        (
            "gone",
            "http://127.0.0.1:1",
            &oci_charts,
            &[],
            "component `gpu-operator`: cannot vendor chart gpu-operator version 1.2.0 from http://127.0.0.1:1".into(),
        ),
        (
            "elsewhere",
            &charts.url,
            &no_chart,
            &[],
            format!(
                "component `gpu-policy`: cannot vendor chart gpu-policy version 0.3.0 from {no_chart}"
            ),
        ),
    ];
    for (name, repo, oci, edits, want) in cases {
        let r = recipe(tmp.path(), name, repo, oci, edits);
        let out = tmp.path().join(format!("{name}-bundle"));
        let (ok, _, stderr) = env.vendor(&r, &out, &["--plain-http"]);
        assert!(!ok, "{name}");
        assert!(stderr.contains(&want), "{name}: {stderr}");
        assert!(
            stderr.contains("is reachable from here"),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: a bundle was written");
    }

    // 2. Vendored: the archives and their provenance, listed in bundle.yaml; helm and
    //    helmfile bundles.
    let good = recipe(tmp.path(), "good", &charts.url, &oci_charts, &[]);
    let bundle = tmp.path().join("bundle");
    let (ok, _, stderr) = env.vendor(&good, &bundle, &["--plain-http"]);
    assert!(ok, "{stderr}");
    let helmfile_bundle = tmp.path().join("helmfile-bundle");
    let (ok, _, stderr) = env.vendor(
        &good,
        &helmfile_bundle,
        &["--plain-http", "--deployer", "helmfile"],
    );
    assert!(ok, "{stderr}");
    let provenance: serde_json::Value = aiconform::yaml::from_str(
        &std::fs::read_to_string(bundle.join("charts/provenance.yaml")).unwrap(),
        "provenance.yaml",
    )
    .unwrap();
    let entries = provenance["charts"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["component"].as_str().unwrap(),
                e["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("gpu-operator", charts.url.as_str()),
            ("gpu-policy", oci_charts.as_str()),
            ("inference-gateway", charts.url.as_str()),
        ]
    );
    let manifest = aiconform::bundle::read_manifest(&bundle).unwrap();
    for e in entries {
        let file = e["file"].as_str().unwrap();
        let bytes = std::fs::read(bundle.join(file)).unwrap();
        assert_eq!(e["sha256"], aiconform::bundle::sha256_hex(&bytes), "{file}");
        assert!(manifest.files.iter().any(|f| f.path == file), "{file}");
        let c = manifest
            .components
            .iter()
            .find(|c| c.name == e["component"])
            .unwrap();
        assert_eq!(c.chart_archive.as_deref(), Some(file));
    }
    let deploy_sh = std::fs::read_to_string(bundle.join("deploy.sh")).unwrap();
    assert!(
        !deploy_sh.contains("--repo") && !deploy_sh.contains("oci://"),
        "{deploy_sh}"
    );

    // 3. With the chart sources stopped: helmfile renders the releases from the archives,
    //    and `mirror list` renders the charts from them and lists them with their sources.
    drop(charts);
    drop(registry);
    let mut cmd = StdCommand::new(tools.join("helmfile"));
    cmd.arg("template").current_dir(&helmfile_bundle).env(
        "PATH",
        format!(
            "{}:{}",
            tools.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    let (ok, stdout, stderr) = env.run(cmd);
    assert!(ok, "helmfile template failed:\n{stderr}");
    assert!(stdout.contains("kind: GpuPolicy"), "{stdout}");
    assert!(
        stdout.contains("name: inference-gateway-controller"),
        "{stdout}"
    );
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("aiconform"));
    cmd.args(["mirror", "list", "-f", "json", "--bundle"])
        .arg(&bundle);
    let (ok, stdout, stderr) = env.run(cmd);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let inv: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for c in inv["components"].as_array().unwrap() {
        assert_eq!(c["rendered"], true, "{c}");
    }
    assert_eq!(inv["charts"].as_array().unwrap().len(), 3, "{inv}");
    assert!(
        inv["charts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["repo"] == oci_charts.as_str() && c["name"] == "gpu-policy"),
        "{inv}"
    );

    // 4. A changed archive fails `bundle verify` and is refused by `deploy`; a removed one
    //    is missing.
    let archive = bundle.join("charts/gpu-operator-1.2.0.tgz");
    let original = std::fs::read(&archive).unwrap();
    let mut tampered = original.clone();
    tampered.push(0);
    std::fs::write(&archive, &tampered).unwrap();
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("aiconform"));
    cmd.args(["bundle", "verify"]).arg(&bundle);
    let (ok, stdout, _) = env.run(cmd);
    assert!(!ok);
    assert!(
        stdout.contains("changed: charts/gpu-operator-1.2.0.tgz"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = env.deploy(bundle.to_str().unwrap(), &[]);
    assert!(!ok);
    assert!(
        stdout.contains("changed: charts/gpu-operator-1.2.0.tgz"),
        "{stdout}"
    );
    assert!(stderr.contains("refusing to deploy"), "{stderr}");
    std::fs::remove_file(&archive).unwrap();
    let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("aiconform"));
    cmd.args(["bundle", "verify"]).arg(&bundle);
    let (ok, stdout, _) = env.run(cmd);
    assert!(!ok);
    assert!(
        stdout.contains("missing: charts/gpu-operator-1.2.0.tgz"),
        "{stdout}"
    );
}
