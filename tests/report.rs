//! Reports: JUnit XML and CTRF golden files from a synthetic run, the JUnit parsed back as
//! Jenkins/GitLab would, and the sample reports in `reports/` rendered from a fixture run
//! (nccl-tests outputs in fixtures/nccl, the fixture snapshot for readiness).
//!
//! Regenerate the samples with `AICONFORM_UPDATE_SAMPLES=1 cargo test --test report`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use quick_xml::events::Event;

use aiconform::conformance::{ConformanceRun, Version};
use aiconform::recipe::Recipe;
use aiconform::recipe::model::{Constraint, RecipeMetadata};
use aiconform::report;
use aiconform::runner::case::{MetricsData, Series};
use aiconform::runner::result::{Attempt, Failure};
use aiconform::runner::{
    CaseResult, CaseSpec, Phase, RunEnv, RunOptions, RunReport, Runner, Selection, Status,
    SuiteSet, plan,
};

fn spec(id: &str, phase: Phase) -> Arc<CaseSpec> {
    let (suite, name) = id.split_once('/').unwrap();
    Arc::new(CaseSpec {
        id: id.into(),
        suite: suite.into(),
        name: name.into(),
        phase,
        description: String::new(),
        params: serde_json::json!({}),
        timeout: Duration::from_secs(60),
        retries: 1,
        flaky: true,
        needs_namespace: false,
        requirement: match name {
            "gang-scheduling" => Some("gang_scheduling".into()),
            "cluster-autoscaling" => Some("cluster_autoscaling".into()),
            "dra-support" => Some("dra_support".into()),
            _ => None,
        },
    })
}

fn attempt(status: Status, message: &str, ms: u64) -> Attempt {
    Attempt {
        status,
        message: message.into(),
        duration: Duration::from_millis(ms),
        failure: (status == Status::Failed).then_some(Failure::Assertion),
    }
}

fn timed_out(message: &str, ms: u64) -> Attempt {
    Attempt::failed(Failure::Timeout, message, Duration::from_millis(ms))
}

/// A run with one of everything: pass, failure (with XML-hostile text), flaky pass, skip,
/// timeout, interruption, phase-gated skip, and performance data.
fn synthetic() -> RunReport {
    let mut metrics = MetricsData::default();
    metrics.series.push(Series {
        case_id: "fabric/nccl-all-reduce-bw".into(),
        name: "all_reduce_perf busbw out-of-place".into(),
        x_label: "message size (B)".into(),
        y_label: "bus bandwidth (GB/s)".into(),
        points: vec![(1024.0, 5.5), (1048576.0, 120.0), (1073741824.0, 430.25)],
        threshold: Some(420.0),
    });
    metrics
        .values
        .entry("fabric/nccl-all-reduce-bw".into())
        .or_default()
        .insert("avgBusBandwidthGBps".into(), 185.25);
    RunReport {
        tool_version: "0.1.0".into(),
        recipe: "h100-eks-ubuntu-training".into(),
        run_id: "1700000000000-abcdef".into(),
        conformance: Some(ConformanceRun::new(Version::new(1, 34), "cluster v1.34.4")),
        cluster_version: Some("v1.34.4".into()),
        started_ms: 1_700_000_000_000,
        finished_ms: 1_700_000_042_000,
        results: vec![
            CaseResult::from_attempts(
                spec("readiness/K8s.server.version", Phase::Readiness),
                vec![attempt(
                    Status::Passed,
                    "K8s.server.version >= 1.32 (actual v1.34.4)",
                    5,
                )],
            ),
            CaseResult::from_attempts(
                spec("deployment/gpu-operator", Phase::Deployment),
                vec![attempt(
                    Status::Failed,
                    "DaemonSet gpu-operator/nvidia-driver <not ready>: 1/2 & \"rolling\"",
                    1500,
                )],
            ),
            CaseResult::from_attempts(
                spec("conformance/gang-scheduling", Phase::Conformance),
                vec![
                    attempt(Status::Failed, "gang started partially", 2000),
                    attempt(Status::Passed, "all 4 pods started together", 3000),
                ],
            ),
            CaseResult::from_attempts(
                spec("conformance/cluster-autoscaling", Phase::Conformance),
                vec![attempt(
                    Status::Skipped,
                    "no cluster autoscaler on kind",
                    10,
                )],
            ),
            CaseResult::from_attempts(
                spec("conformance/dra-support", Phase::Conformance),
                vec![
                    timed_out("timed out after 3m", 180_000),
                    timed_out("timed out after 3m", 180_000),
                ],
            ),
            CaseResult::from_attempts(
                spec("fabric/nccl-all-reduce-bw", Phase::Performance),
                vec![attempt(
                    Status::Interrupted,
                    "interrupted while running (Ctrl-C)",
                    700,
                )],
            ),
            CaseResult::not_run(
                spec("fabric/gdr-enabled", Phase::Performance),
                Status::Interrupted,
                "not started: the run was interrupted",
            ),
        ],
        metrics,
        interrupted: true,
        warnings: vec![],
    }
}

#[test]
fn junit_golden() {
    insta::assert_snapshot!("junit", report::junit::render(&synthetic()).unwrap());
}

#[test]
fn ctrf_golden() {
    insta::assert_snapshot!("ctrf", report::ctrf::render(&synthetic()).unwrap());
}

/// Element name -> count, plus attributes of interest, from a JUnit document.
fn parse_junit(
    xml: &str,
) -> (
    std::collections::BTreeMap<String, usize>,
    Vec<(String, String)>,
) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut counts = std::collections::BTreeMap::new();
    let mut suites_attrs = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if name == "testsuite" {
                    let get = |k: &str| {
                        e.attributes()
                            .filter_map(Result::ok)
                            .find(|a| a.key.as_ref() == k.as_bytes())
                            .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                            .unwrap_or_default()
                    };
                    suites_attrs.push((
                        get("name"),
                        format!(
                            "tests={} failures={} skipped={}",
                            get("tests"),
                            get("failures"),
                            get("skipped")
                        ),
                    ));
                }
                *counts.entry(name).or_insert(0) += 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    (counts, suites_attrs)
}

/// The JUnit file is what Jenkins' xunit plugin accepts: `xmllint --schema` against its
/// `junit-10.xsd` (`ci/schemas/`). Without xmllint the test says it did not run, and fails
/// under `AICONFORM_REQUIRE_CLUSTER=1` (ci/test installs it).
#[test]
fn junit_is_valid_against_the_jenkins_xunit_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, report::junit::render(&synthetic()).unwrap()).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/schemas/junit-10.xsd");
    let out = match std::process::Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            let reason = format!("xmllint not runnable ({e}); install libxml2-utils");
            if std::env::var("AICONFORM_REQUIRE_CLUSTER").is_ok_and(|v| v == "1") {
                panic!("{reason}");
            }
            eprintln!("SKIP junit_is_valid_against_the_jenkins_xunit_schema: {reason}");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn junit_parses_back_with_the_right_counts() {
    let xml = report::junit::render(&synthetic()).unwrap();
    let (counts, suites) = parse_junit(&xml);
    assert_eq!(counts["testsuites"], 1);
    assert_eq!(counts["testsuite"], 4);
    assert_eq!(counts["testcase"], 7);
    assert_eq!(counts["failure"], 2, "deployment and dra-support");
    assert_eq!(counts["skipped"], 3, "one skip, two interrupted");
    assert_eq!(counts["flakyFailure"], 1, "gang-scheduling's first attempt");
    assert_eq!(counts["rerunFailure"], 1, "dra-support's retry");
    assert_eq!(
        suites,
        [
            (
                "readiness".to_string(),
                "tests=1 failures=0 skipped=0".to_string()
            ),
            ("deployment".into(), "tests=1 failures=1 skipped=0".into()),
            ("conformance".into(), "tests=3 failures=1 skipped=1".into()),
            ("fabric".into(), "tests=2 failures=0 skipped=2".into()),
        ]
    );
    assert!(xml.contains("classname=\"conformance\""));
    assert!(xml.contains("&lt;not ready&gt;: 1/2 &amp; &quot;rolling&quot;"));
    assert!(xml.contains("type=\"timeout\""));
}

#[test]
fn ctrf_counts_and_fields() {
    let v: serde_json::Value =
        serde_json::from_str(&report::ctrf::render(&synthetic()).unwrap()).unwrap();
    let r = &v["results"];
    assert_eq!(r["tool"]["name"], "aiconform");
    let s = &r["summary"];
    assert_eq!(
        (
            &s["tests"],
            &s["passed"],
            &s["failed"],
            &s["skipped"],
            &s["pending"],
            &s["other"]
        ),
        (
            &7.into(),
            &2.into(),
            &2.into(),
            &1.into(),
            &0.into(),
            &2.into()
        )
    );
    assert_eq!(s["start"], 1_700_000_000_000u64);
    assert_eq!(s["stop"], 1_700_000_042_000u64);
    let gang = &r["tests"][2];
    assert_eq!(gang["name"], "conformance/gang-scheduling");
    assert_eq!(gang["flaky"], true);
    assert_eq!(gang["retries"], 1);
    assert_eq!(gang["duration"], 5000);
    assert_eq!(gang["suite"], "conformance");
    assert!(
        gang["message"]
            .as_str()
            .unwrap()
            .starts_with("flaky: passed on attempt 2")
    );
}

// ---- samples from a fixture run -----------------------------------------------------------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_recipe() -> Recipe {
    Recipe {
        api_version: "aiconform.dev/v1alpha1".into(),
        kind: "Recipe".into(),
        metadata: RecipeMetadata {
            name: "h100-eks-ubuntu-training (sample)".into(),
            tool_version: "0.1.0".into(),
            applied_overlays: vec!["base".into(), "eks".into(), "h100".into()],
            value_count: 0,
            ..Default::default()
        },
        criteria: Default::default(),
        constraints: vec![
            Constraint {
                name: "K8s.server.version".into(),
                value: ">= 1.32.0".into(),
                source: "base".into(),
            },
            Constraint {
                name: "OS.kernel.release".into(),
                value: ">= 6.14".into(),
                source: "eks".into(),
            },
        ],
        deployment_order: vec![],
        components: vec![],
        validation: serde_json::json!({"nccl": {"fabric": "infiniband-gdr", "allReduce": {
            "minAvgBusBandwidthGBps": 100,
            "largeMessageBytes": 8589934592u64,
            "floors": {"singleNode": {"default": {
                "floor": {"busbwGBps": 460, "estimate": false,
                    "source": "azurehpc-health-checks ND H100 v5"},
                "anchor": {"busbwGBps": 478.87, "estimate": false,
                    "source": "Azure ND H100 v5, 8 GiB"}
            }}}
        }}}),
    }
}

/// The built-in readiness suite plus a fabric suite reading nccl-tests fixtures.
fn fixture_suites() -> SuiteSet {
    let nccl = root().join("fixtures/nccl");
    let fabric = format!(
        "name: fabric\nphase: performance\ncases:\n  - name: nccl-all-reduce-bw\n    description: all_reduce_perf bus bandwidth meets the recipe thresholds\n    validation: nccl.allReduce\n    params:\n      logFile: {}\n  - name: gdr-enabled\n    description: NCCL logs show GPUDirect RDMA between nodes\n    params:\n      logFile: {}\n",
        nccl.join("h100-8gpu-nvlink.txt").display(),
        nccl.join("h100-2node-ib-gdr.txt").display()
    );
    let readiness = std::fs::read_to_string(root().join("suites/readiness.yaml")).unwrap();
    SuiteSet::from_texts(&[
        ("suites/fabric.yaml".into(), fabric),
        ("suites/readiness.yaml".into(), readiness),
    ])
    .unwrap()
}

/// Fixed times and paths so the samples are reproducible.
fn normalize(mut r: RunReport) -> RunReport {
    r.started_ms = 1_700_000_000_000;
    r.finished_ms = 1_700_000_060_000;
    r.tool_version = "0.1.0".into();
    r.run_id = "1700000000000-sample".into();
    let root = root().display().to_string();
    for res in &mut r.results {
        res.message = res.message.replace(&root, "$ROOT");
        for a in &mut res.attempts {
            a.duration = Duration::from_millis(250);
            a.message = a.message.replace(&root, "$ROOT");
        }
        res.duration = Duration::from_millis(250 * res.attempts.len() as u64);
    }
    r
}

fn fixture_run() -> RunReport {
    let recipe = fixture_recipe();
    let p = plan(&fixture_suites(), &recipe, &Selection::default()).unwrap();
    let snapshot =
        aiconform::snapshot::load_file(&root().join("fixtures/snapshots/h100-eks.yaml")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = RunEnv {
        client: None,
        cluster_version: None,
        recipe: Arc::new(recipe),
        snapshot: Some(Arc::new(snapshot)),
        resolver: aiconform::suites::resolver(),
    };
    let opts = RunOptions {
        keep_going: true,
        ..Default::default()
    };
    normalize(Runner::new(rt.handle().clone(), env, opts).execute(&p, &()))
}

#[test]
fn sample_reports_are_current() {
    let report = fixture_run();
    let ids: Vec<(&str, Status)> = report
        .results
        .iter()
        .map(|r| (r.spec.id.as_str(), r.status))
        .collect();
    assert_eq!(
        ids,
        [
            ("readiness/K8s.server.version", Status::Passed),
            ("readiness/OS.kernel.release", Status::Failed),
            ("fabric/nccl-all-reduce-bw", Status::Passed),
            ("fabric/gdr-enabled", Status::Passed),
        ],
        "{:#?}",
        report.results
    );
    assert!(
        !report.metrics.series.is_empty(),
        "the NCCL fixture yields a bandwidth series"
    );
    let dir = root().join("reports");
    let update = std::env::var("AICONFORM_UPDATE_SAMPLES").is_ok_and(|v| v == "1");
    for (name, content) in report::render_all(&report).unwrap() {
        let path: &Path = &dir.join(name);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(path, &content).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate with AICONFORM_UPDATE_SAMPLES=1 cargo test --test report",
                path.display()
            )
        });
        assert!(
            committed == content,
            "{} is stale; regenerate with AICONFORM_UPDATE_SAMPLES=1 cargo test --test report",
            path.display()
        );
    }
}

#[test]
fn write_all_creates_the_directory_and_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/report");
    let written = report::write_all(&out, &synthetic()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "junit.xml",
            "ctrf.json",
            "results.json",
            "performance.json",
            "report.html",
            "performance.html"
        ]
    );
    let perf: MetricsData =
        serde_json::from_str(&std::fs::read_to_string(out.join("performance.json")).unwrap())
            .unwrap();
    assert_eq!(perf, synthetic().metrics, "performance.json round-trips");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("floor 420"));
    let old = std::fs::read_to_string(out.join("performance.html")).unwrap();
    assert!(old.contains("url=report.html#performance"), "{old}");
    // A file where the directory should be: a clear error, no panic.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let e = report::write_all(&blocker, &synthetic())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--report-dir"), "{e}");
}

/// The first of `names` on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

/// What a reader of `report.html` sees: the page printed by headless Chromium (Debian's
/// package), its text extracted with pdftotext. Without both the test says it did not run,
/// and fails under `AICONFORM_REQUIRE_CLUSTER=1` (ci/test installs them).
#[test]
fn report_html_reads_in_a_browser() {
    let tools = (
        on_path(&["chromium", "chromium-browser", "google-chrome"]),
        on_path(&["pdftotext"]),
    );
    let (Some(chromium), Some(pdftotext)) = tools else {
        let reason = "chromium or pdftotext not on PATH; install chromium and poppler-utils";
        if std::env::var("AICONFORM_REQUIRE_CLUSTER").is_ok_and(|v| v == "1") {
            panic!("{reason}");
        }
        eprintln!("SKIP report_html_reads_in_a_browser: {reason}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = synthetic();
    report::write_all(dir.path(), &report).unwrap();
    let pdf = dir.path().join("report.pdf");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!(
            "file://{}",
            dir.path().join("report.html").display()
        ))
        .output()
        .unwrap();
    assert!(pdf.is_file(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::process::Command::new(pdftotext)
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    // Lines wrap where the page is narrow: compare with whitespace collapsed.
    let text = String::from_utf8(text.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let seen = |s: &str| assert!(text.contains(s), "`{s}` not on the page:\n{text}");
    seen("aiconform report");
    assert!(report.interrupted);
    seen(&format!("Run interrupted: {}", report.summary()));
    // Every section the run has, in order.
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("no `{s}`:\n{text}"));
    let order = [
        "Phase Cases Passed Failed Skipped Time",
        "CNCF AI conformance 1.34",
        "Constraint Outcome Detail",
        "Deployment health Component Outcome Detail",
        "all_reduce_perf busbw out-of-place",
        "Every case Case Outcome Time",
    ];
    assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
    seen("gang_scheduling");
    // Escaped text reads as written, not as markup.
    seen("DaemonSet gpu-operator/nvidia-driver <not ready>: 1/2 & \"rolling\"");
    assert!(!text.contains("&lt;") && !text.contains("&amp;"), "{text}");
    // The NCCL plot is drawn, with its floor.
    seen("floor 420");
    // Evidence is collapsed: its summary shows, its items do not.
    seen("2 attempts");
    assert!(!text.contains("attempt 1 failed after"), "{text}");
}
