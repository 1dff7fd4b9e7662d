//! `aiconform run` and `validate --phase ...` through the binary: listing, selection, exit
//! codes, reports, and Ctrl-C (exit 130, partial reports, namespaces deleted).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aiconform::cluster::testing::shared_or_skip;
use aiconform::recipe::model::{Component, ComponentType, Constraint, Recipe, RecipeMetadata};
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn snapshot_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/snapshots/h100-eks.yaml")
}

/// A recipe with two components and these constraints; returns (dir guard, path).
fn recipe(constraints: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let comp = |name: &str| Component {
        name: name.into(),
        component_type: ComponentType::Helm,
        source: None,
        chart: None,
        version: "v1.0.0".into(),
        namespace: name.into(),
        dependency_refs: vec![],
        health_checks: vec![],
        overlays: vec![],
        values: serde_json::json!({"adminPassword": "s3cr3t-value"}),
        manifests: vec![],
    };
    let r = Recipe {
        api_version: "aiconform.dev/v1alpha1".into(),
        kind: "Recipe".into(),
        metadata: RecipeMetadata {
            name: "cli-test".into(),
            tool_version: "0.1.0".into(),
            applied_overlays: vec!["base".into()],
            value_count: 1,
            ..Default::default()
        },
        criteria: Default::default(),
        constraints: constraints
            .iter()
            .map(|(n, v)| Constraint {
                name: n.to_string(),
                value: v.to_string(),
                source: "base".into(),
            })
            .collect(),
        deployment_order: vec!["cert-manager".into(), "gpu-operator".into()],
        components: vec![comp("cert-manager"), comp("gpu-operator")],
        validation: serde_json::Value::Null,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recipe.yaml");
    std::fs::write(&path, aiconform::yaml::to_string(&r).unwrap()).unwrap();
    (dir, path)
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("aiconform").unwrap();
    c.env_remove("KUBECONFIG");
    c
}

#[test]
fn list_prints_every_case_in_phase_order_without_a_cluster() {
    let (_d, r) = recipe(&[("K8s.server.version", ">= 1.32")]);
    let out = bin()
        .args(["run", "--list", "--recipe"])
        .arg(&r)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids[0], "readiness/K8s.server.version");
    assert_eq!(ids[1], "node-health/gpu-count");
    assert_eq!(ids[8], "node-health/dcgm-diag");
    assert_eq!(ids[9], "deployment/cert-manager");
    assert_eq!(ids[10], "deployment/gpu-operator");
    assert_eq!(ids[11], "conformance/dra-support");
    assert!(ids.contains(&"fabric/nccl-all-reduce-bw"));
    assert!(text.ends_with("29 cases\n"), "{text}");
    let gang = text
        .lines()
        .find(|l| l.starts_with("conformance/gang-scheduling "))
        .unwrap();
    let cols: Vec<&str> = gang.split_whitespace().collect();
    assert_eq!(cols[1], "conformance", "{gang}");
    assert_eq!(cols[2], "The", "description follows: {gang}");
    assert!(!text.contains("s3cr3t"), "component values never printed");
}

#[test]
fn list_with_phase_suite_and_globs() {
    let (_d, r) = recipe(&[]);
    bin()
        .args([
            "run",
            "--list",
            "--phase",
            "conformance",
            "--exclude",
            "*gang*",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(0)
        .stdout(contains("15 cases\n"))
        .stdout(contains("gang").not());
    bin()
        .args([
            "run",
            "--list",
            "--suite",
            "fabric",
            "--include",
            "*/gdr-*",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(0)
        .stdout(contains("fabric/gdr-enabled"))
        .stdout(contains("1 cases\n"));
}

#[test]
fn bad_input_exits_2_with_the_reason() {
    let (d, r) = recipe(&[]);
    bin()
        .args(["run", "--suite", "nope", "--list", "--recipe"])
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("unknown suite `nope`"));
    bin()
        .args(["run", "--include", "nothing-matches", "--recipe"])
        .arg(&r)
        .args(["--kubeconfig", "/nonexistent"])
        .assert()
        .code(2)
        .stderr(contains("no cases selected"));
    bin()
        .args([
            "run",
            "--phase",
            "conformance",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("cannot read kubeconfig /nonexistent/kubeconfig"));
    let suites = d.path().join("suites");
    std::fs::create_dir(&suites).unwrap();
    std::fs::write(
        suites.join("mine.yaml"),
        "name: mine\nphase: conformance\ncases:\n  - name: a\n    timeout: soon\n",
    )
    .unwrap();
    bin()
        .args(["run", "--list", "--suites-dir"])
        .arg(&suites)
        .arg("--recipe")
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("mine.yaml:5:"))
        .stderr(contains("write it like 90s"));
    bin()
        .args([
            "run",
            "--list",
            "--kubeconfig",
            "x",
            "--target",
            "embedded",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("cannot be combined"));
}

#[test]
fn kind_target_without_kind_says_why() {
    if aiconform::deploy::find_on_path("kind").is_some() {
        eprintln!("SKIP: kind is installed here");
        return;
    }
    let (_d, r) = recipe(&[]);
    bin()
        .args([
            "run",
            "--target",
            "kind",
            "--phase",
            "conformance",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("--target kind needs the `kind` CLI on PATH"));
}

#[test]
fn validate_other_phases_need_a_reachable_cluster() {
    let (_d, r) = recipe(&[]);
    bin()
        .args([
            "validate",
            "--phase",
            "conformance",
            "--kubeconfig",
            "/nonexistent/kc",
            "--recipe",
        ])
        .arg(&r)
        .assert()
        .code(2)
        .stderr(contains("cannot read kubeconfig /nonexistent/kc"));
}

/// Count elements named `name` in an XML document.
fn count(xml: &str, name: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut n = 0;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == name.as_bytes() =>
            {
                n += 1
            }
            quick_xml::events::Event::Eof => return n,
            _ => {}
        }
    }
}

#[test]
fn readiness_run_exit_codes_and_reports() {
    let Some(cluster) = shared_or_skip("readiness_run_exit_codes_and_reports") else {
        return;
    };
    let (d, pass) = recipe(&[
        ("K8s.server.version", ">= 1.32"),
        ("OS.release.ID", "ubuntu"),
    ]);
    let reports = d.path().join("out");
    bin()
        .args(["run", "--phase", "readiness", "--recipe"])
        .arg(&pass)
        .arg("--snapshot")
        .arg(snapshot_fixture())
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--report-dir")
        .arg(&reports)
        .assert()
        .code(0)
        .stdout(contains("aiconform: 2 passed, 0 failed, 0 skipped"));
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert_eq!(count(&junit, "testcase"), 2);
    assert_eq!(count(&junit, "failure"), 0);

    let (d, fail) = recipe(&[
        ("K8s.server.version", ">= 1.99"),
        ("OS.release.ID", "ubuntu"),
    ]);
    let reports = d.path().join("out");
    bin()
        .args([
            "validate",
            "--phase",
            "all",
            "--keep-going",
            "--include",
            "readiness",
            "--recipe",
        ])
        .arg(&fail)
        .arg("--snapshot")
        .arg(snapshot_fixture())
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--report-dir")
        .arg(&reports)
        .assert()
        .code(1)
        .stdout(contains("aiconform: 1 passed, 1 failed, 0 skipped"));
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert_eq!(count(&junit, "failure"), 1);
    let ctrf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("ctrf.json")).unwrap()).unwrap();
    assert_eq!(ctrf["results"]["summary"]["failed"], 1);
    for f in ["junit.xml", "ctrf.json", "performance.json", "report.html"] {
        let text = std::fs::read_to_string(reports.join(f)).unwrap();
        assert!(!text.contains("s3cr3t"), "{f} leaks a component value");
    }
}

/// `run --attest`: the run's evidence signed beside its reports, verified by `evidence
/// verify`, and one byte changed in a report is named. A readiness run with a given
/// snapshot is the cheapest run on the shared cluster.
#[test]
fn attested_run_verifies_and_a_changed_report_is_named() {
    let Some(cluster) = shared_or_skip("attested_run_verifies_and_a_changed_report_is_named")
    else {
        return;
    };
    let (d, pass) = recipe(&[("K8s.server.version", ">= 1.32")]);
    let (key, public) = (d.path().join("run.key"), d.path().join("run.pub"));
    bin()
        .args(["bundle", "keygen", "--private-key"])
        .arg(&key)
        .arg("--public-key")
        .arg(&public)
        .assert()
        .success();
    let reports = d.path().join("out");
    let evidence = d.path().join("evidence");
    // A bad key stops the run before it starts.
    bin()
        .args(["run", "--phase", "readiness", "--recipe"])
        .arg(&pass)
        .arg("--attest")
        .arg(&evidence)
        .arg("--attest-key")
        .arg(&public)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .assert()
        .code(2)
        .stderr(contains("is not an ECDSA P-256 private key"));
    bin()
        .args(["run", "--phase", "readiness", "--recipe"])
        .arg(&pass)
        .arg("--snapshot")
        .arg(snapshot_fixture())
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--report-dir")
        .arg(&reports)
        .arg("--attest")
        .arg(&evidence)
        .arg("--attest-key")
        .arg(&key)
        .assert()
        .code(0)
        .stderr(contains("attestation: "));
    for f in [
        "attestation.dsse.json",
        "recipe.yaml",
        "snapshot.yaml",
        "junit.xml",
        "results.json",
    ] {
        assert!(evidence.join(f).is_file(), "{f}");
    }
    assert_eq!(
        std::fs::read(evidence.join("junit.xml")).unwrap(),
        std::fs::read(reports.join("junit.xml")).unwrap()
    );
    let verify = |k: Option<&Path>| {
        let mut c = bin();
        c.args(["evidence", "verify"]).arg(&evidence);
        if let Some(k) = k {
            c.arg("--key").arg(k);
        }
        c.assert()
    };
    let out = verify(Some(&public))
        .code(0)
        .stdout(contains("OK: verified"))
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("run ") && text.contains(", cluster "),
        "the cluster's kube-system UID: {text}"
    );
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(evidence.join("attestation.dsse.json")).unwrap())
            .unwrap();
    use base64::Engine as _;
    let statement: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let p = &statement["predicate"];
    assert!(
        p["cluster"]["kubeSystemUid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{p}"
    );
    assert!(
        p["cluster"]["server"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{p}"
    );
    assert_eq!(p["cases"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["cases"][0]["status"], "passed");

    let junit = evidence.join("junit.xml");
    let mut bytes = std::fs::read(&junit).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&junit, bytes).unwrap();
    verify(Some(&public)).code(1).stdout(contains(format!(
        "differs: {}: changed after the run",
        junit.display()
    )));
}

#[test]
fn ctrl_c_exits_130_writes_partial_reports_and_deletes_namespaces() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let Some(cluster) = shared_or_skip("ctrl_c_exits_130") else {
        return;
    };
    let (d, r) = recipe(&[]);
    let suites = d.path().join("suites");
    std::fs::create_dir(&suites).unwrap();
    // A case that waits a long time in its namespace, then one that never starts.
    std::fs::write(
        suites.join("slow.yaml"),
        "name: slow\nphase: conformance\ncases:\n  - name: waits\n    implementation: gang-scheduling\n    needsNamespace: true\n    timeout: 10m\n    params: {settleSeconds: 600}\n  - name: never\n    implementation: cluster-autoscaling\n",
    )
    .unwrap();
    let reports = d.path().join("out");
    let exe = assert_cmd::cargo::cargo_bin("aiconform");
    let mut child = std::process::Command::new(exe)
        .args(["run", "--suites-dir"])
        .arg(&suites)
        .arg("--recipe")
        .arg(&r)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--report-dir")
        .arg(&reports)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.starts_with("== conformance"))
    {
        assert!(Instant::now() < deadline, "no progress: {lines:?}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    // Let the case create its namespace and start waiting.
    std::thread::sleep(Duration::from_secs(4));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130));
    while let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
        lines.push(l);
    }
    let all = lines.join("\n");
    assert!(all.contains("2 interrupted"), "{all}");

    let ctrf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("ctrf.json")).unwrap()).unwrap();
    let tests = ctrf["results"]["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2);
    assert!(tests.iter().all(|t| t["status"] == "other"), "{tests:?}");
    assert_eq!(ctrf["results"]["environment"]["extra"]["interrupted"], true);

    // Every namespace this case got is deleted (gone or terminating).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = aiconform::cluster::connect(Some(&cluster.kubeconfig))
            .await
            .unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        let list = api
            .list(&kube::api::ListParams::default().labels("aiconform.dev/case=slow_waits"))
            .await
            .unwrap();
        for ns in list.items {
            assert!(
                ns.metadata.deletion_timestamp.is_some(),
                "{:?} not deleted",
                ns.metadata.name
            );
        }
    });
}
