//! CNCF AI conformance submissions end to end: the runner (stub cases, no cluster) records a
//! run in results.json, `submission write` turns it into PRODUCT.yaml + evidence (golden per
//! checklist version), `submission check` accepts a full pass and refuses a failed MUST,
//! catches each rule of the program's CI, and the HTML report shows one row per requirement.
//! From 1.37: evidence links the run's junit.xml (`file://results/junit.xml#case`) and check
//! refuses missing or failed cases; layered products; `--members`; signed run evidence
//! (`aiconform::attest` on a saved run's reports, then `submission write` and `evidence
//! verify` through the binary) with a changed report byte and a changed status named.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use aiconform::conformance::{ConformanceRun, Version};
use aiconform::recipe::Recipe;
use aiconform::report;
use aiconform::report::results::RunRecord;
use aiconform::runner::{
    CaseContext, CaseFn, Outcome, Phase, RunEnv, RunOptions, RunReport, Runner, Selection, Status,
    SuiteSet, plan,
};
use aiconform::submission::check;
use aiconform::submission::product::Product;
use aiconform::submission::write as submission;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn recipe() -> Recipe {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "aiconform.dev/v1alpha1", "kind": "Recipe",
        "metadata": {"name": "h100-onprem-training", "toolVersion": "test", "appliedOverlays": [], "valueCount": 0},
        "criteria": {}, "constraints": [], "deploymentOrder": [], "components": [],
        "validation": null
    }))
    .unwrap()
}

fn pass(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    async move {
        Ok(Outcome::passed(format!(
            "observed the behaviour of {}",
            ctx.spec.name
        )))
    }
    .boxed()
}

fn fail(_: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    async {
        Ok(Outcome::failed(
            "2 of 4 gang members Running while 2 stayed Pending: the gang started partially",
        ))
    }
    .boxed()
}

/// Run the built-in conformance suite with stub cases: every case passes except `failing`.
fn stub_run(conformance: ConformanceRun, failing: Option<&'static str>) -> RunReport {
    stub_run_without(conformance, failing, &[])
}

/// [`stub_run`] without the cases `exclude` selects (their requirements are not run).
fn stub_run_without(
    conformance: ConformanceRun,
    failing: Option<&'static str>,
    exclude: &[&str],
) -> RunReport {
    // The built-in conformance suite, minus per-case namespaces (there is no cluster).
    let text = std::fs::read_to_string(root().join("suites/conformance.yaml"))
        .unwrap()
        .replace("    needsNamespace: true\n", "");
    let set = SuiteSet::from_texts(&[("suites/conformance.yaml".into(), text)]).unwrap();
    let sel = Selection {
        phases: vec![Phase::Conformance],
        exclude: exclude.iter().map(|e| e.to_string()).collect(),
        ..Default::default()
    };
    let p = plan(&set, &recipe(), &sel).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = RunEnv {
        client: None,
        cluster_version: None,
        recipe: Arc::new(recipe()),
        snapshot: None,
        resolver: Arc::new(move |name: &str| -> Option<CaseFn> {
            Some(if Some(name) == failing { fail } else { pass })
        }),
    };
    let opts = RunOptions {
        conformance: Some(conformance),
        ..Default::default()
    };
    let mut r = Runner::new(rt.handle().clone(), env, opts).execute(&p, &());
    // Deterministic: fixed ids, times and durations.
    let v = r.conformance.as_ref().unwrap().version;
    r.run_id = "1767225600000-fixtur".into();
    r.cluster_version = Some(format!("v{v}.2"));
    r.started_ms = 1_767_225_600_000;
    r.finished_ms = 1_767_225_660_000;
    for c in &mut r.results {
        c.duration = Duration::from_millis(1500);
        for a in &mut c.attempts {
            a.duration = Duration::from_millis(1500);
        }
    }
    r
}

fn conformance(minor: u32, not_applicable: &[(&str, &str)]) -> ConformanceRun {
    let mut c = ConformanceRun::new(Version::new(1, minor), "--ai-conformance");
    for (id, why) in not_applicable {
        c.not_applicable.insert(id.to_string(), why.to_string());
    }
    c
}

fn product() -> Product {
    Product::load(&root().join("fixtures/conformance/product.yaml")).unwrap()
}

/// Write the run's reports and a submission from them (as the CLI does); returns the
/// product directory.
fn write_submission(report: &RunReport, out: &Path) -> PathBuf {
    let report_dir = out.join("report");
    report::write_all(&report_dir, report).unwrap();
    let run = RunRecord::load(&report_dir).unwrap();
    let checklist = submission::checklist_of(&run, &report_dir).unwrap();
    let artifacts = submission::read_artifacts(&report_dir, checklist).unwrap();
    let sub = submission::render(checklist, &run, &product(), &artifacts).unwrap();
    submission::write(&out.join("submission"), &sub, false).unwrap()
}

const ON_PREM: &str = "on-prem: the nodes are bare metal; there is no cluster autoscaler";

#[test]
fn golden_product_yaml_per_version_and_check_accepts_a_full_pass() {
    for minor in [33, 34, 35, 36, 37] {
        let report = stub_run(
            conformance(minor, &[("cluster_autoscaling", ON_PREM)]),
            None,
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_submission(&report, tmp.path());
        assert!(
            dir.ends_with(format!("v1.{minor}/acme-ai-cloud")),
            "{}",
            dir.display()
        );
        let product_yaml = std::fs::read_to_string(dir.join("PRODUCT.yaml")).unwrap();
        insta::assert_snapshot!(format!("product_v1_{minor}"), product_yaml);
        let r = check::check(&dir);
        assert!(r.passed(), "v1.{minor}: {:?}", r.problems);
        assert_eq!(r.version, Some(Version::new(1, minor)));
        assert_eq!(
            r.notes.len(),
            1,
            "the declared N/A is noted for the reviewer"
        );
        assert!(r.notes[0].to_string().starts_with("spec.schedulingOrchestration[1].status: 'cluster_autoscaling' is a conditional MUST declared N/A"));
        let mut evidence: Vec<String> = std::fs::read_dir(dir.join("evidence"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        evidence.sort();
        // One evidence file per requirement a case proves: gpu_sharing,
        // driver_runtime_management and virtualized_accelerator from 1.35; 1.36 drops
        // dra_support and gains advanced_inference_ingress, high_performance_networking and
        // disaggregated_inference.
        let expected = match minor {
            33 | 34 => 9,
            35 => 12,
            _ => 14,
        };
        // 1.37 adds workload_sandboxing, which has an evidence file once a case proves it.
        let sandbox =
            usize::from(minor >= 37 && dir.join("evidence/workload_sandboxing.md").is_file());
        assert_eq!(
            evidence.len(),
            expected + sandbox,
            "v1.{minor}: {evidence:?}"
        );
        assert!(dir.join("README.md").is_file());
        // Hybrid verification from 1.37: the run's reports travel in results/.
        assert_eq!(
            dir.join("results/junit.xml").is_file(),
            minor >= 37,
            "v1.{minor}"
        );
    }
}

#[test]
fn evidence_states_what_ran_and_was_observed() {
    let report = stub_run(conformance(34, &[("cluster_autoscaling", ON_PREM)]), None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&report, tmp.path());
    let gang = std::fs::read_to_string(dir.join("evidence/gang_scheduling.md")).unwrap();
    insta::assert_snapshot!("evidence_gang_scheduling", gang);
    let na = std::fs::read_to_string(dir.join("evidence/cluster_autoscaling.md")).unwrap();
    assert!(
        na.contains(
            "**Verdict:** N/A, declared by the platform owner in the run configuration: on-prem"
        ),
        "{na}"
    );
    assert!(
        na.contains("- **Observed:** declared not applicable: on-prem"),
        "the case did not run: {na}"
    );
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("| `gang_scheduling` | MUST | Implemented | [evidence/gang_scheduling.md](evidence/gang_scheduling.md) |"), "{readme}");
    assert!(
        readme.contains("| `cluster_autoscaling` | MUST (conditional) | N/A |"),
        "{readme}"
    );
}

#[test]
fn round_trip_with_a_failed_must_is_refused_naming_it() {
    let report = stub_run(
        conformance(35, &[("cluster_autoscaling", ON_PREM)]),
        Some("gang-scheduling"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&report, tmp.path());
    let text = std::fs::read_to_string(dir.join("PRODUCT.yaml")).unwrap();
    assert!(text.contains("status: Not Implemented"), "{text}");
    assert!(
        text.contains("the gang started partially"),
        "reason in notes: {text}"
    );
    let r = check::check(&dir);
    let problems: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            "spec.schedulingOrchestration[0].status: requirement 'gang_scheduling' is MUST level but status is 'Not Implemented'; it must be 'Implemented'"
        ]
    );
}

#[test]
fn without_a_declaration_a_skipped_conditional_must_is_not_proven() {
    // The stub resolver has no implementation for cluster-autoscaling: it fails, so the
    // conditional MUST is Not Implemented unless declared; nothing is silently N/A.
    let report = stub_run(conformance(34, &[]), Some("cluster-autoscaling"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&report, tmp.path());
    let r = check::check(&dir);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(
        r.problems[0]
            .message
            .contains("'cluster_autoscaling' is MUST level")
    );
}

#[test]
fn cases_report_their_requirement_level_and_checklist_gating() {
    let report = stub_run(
        conformance(
            36,
            &[(
                "pod_autoscaling",
                "no HPA: the platform offers no HorizontalPodAutoscaler",
            )],
        ),
        None,
    );
    let get = |id: &str| report.results.iter().find(|r| r.spec.id == id).unwrap();
    let dra = get("conformance/dra-support");
    assert_eq!(dra.status, Status::Skipped);
    assert_eq!(
        dra.message,
        "requirement dra_support is not part of the AI conformance 1.36 checklist (it is in 1.33, 1.34, 1.35); not run"
    );
    assert!(dra.attempts.is_empty(), "not run");
    let hpa = get("conformance/pod-autoscaling");
    assert_eq!(hpa.status, Status::Skipped);
    assert_eq!(
        hpa.message,
        "declared not applicable: no HPA: the platform offers no HorizontalPodAutoscaler"
    );
    assert_eq!(get("conformance/inference-gateway").status, Status::Passed);
    // JUnit properties and CTRF extra fields.
    let junit = report::junit::render(&report).unwrap();
    assert!(
        junit.contains(r#".requirement" value="ai_inference"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#".requirementLevel" value="MUST (conditional)"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#".requirementLevel" value="not in 1.36"/>"#),
        "{junit}"
    );
    assert!(
        junit.contains(r#"<property name="aiConformance" value="1.36"/>"#),
        "{junit}"
    );
    let ctrf: serde_json::Value =
        serde_json::from_str(&report::ctrf::render(&report).unwrap()).unwrap();
    let tests = ctrf["results"]["tests"].as_array().unwrap();
    let gang = tests
        .iter()
        .find(|t| t["name"] == "conformance/gang-scheduling")
        .unwrap();
    assert_eq!(gang["extra"]["requirement"], "gang_scheduling");
    assert_eq!(gang["extra"]["requirementLevel"], "MUST");
    assert_eq!(
        ctrf["results"]["environment"]["extra"]["aiConformance"]["version"],
        "1.36"
    );
    // results.json carries the same.
    let record = RunRecord::from_report(&report);
    let c = record
        .cases
        .iter()
        .find(|c| c.id == "conformance/robust-controller")
        .unwrap();
    assert_eq!(
        (c.requirement.as_deref(), c.level.as_deref()),
        (Some("robust_controller"), Some("MUST"))
    );
}

#[test]
fn html_overview_has_one_row_per_requirement() {
    let report = stub_run_without(
        conformance(35, &[("cluster_autoscaling", ON_PREM)]),
        Some("robust-controller"),
        &["conformance/virtualized-accelerator"],
    );
    let html = report::html::render(&report);
    let rows: Vec<&str> = html
        .lines()
        .filter(|l| l.starts_with("<tr data-requirement="))
        .collect();
    assert_eq!(rows.len(), 12, "9 MUST + 3 SHOULD in 1.35");
    let row = |id: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("<tr data-requirement=\"{id}\">")))
            .unwrap_or_else(|| panic!("no row for {id}"))
            .to_string()
    };
    assert_eq!(
        row("gang_scheduling"),
        "<tr data-requirement=\"gang_scheduling\"><td>gang_scheduling</td><td>MUST</td><td class=\"passed\">implemented</td><td>conformance/gang-scheduling: observed the behaviour of gang-scheduling</td></tr>"
    );
    assert!(row("robust_controller").contains("<td class=\"failed\">not implemented</td><td>conformance/robust-controller failed: 2 of 4 gang members"), "{}", row("robust_controller"));
    assert!(row("cluster_autoscaling").contains("<td>MUST (conditional)</td><td class=\"skipped\">not applicable</td><td>declared not applicable: on-prem"));
    assert!(row("gpu_sharing").contains("<td>SHOULD</td><td class=\"passed\">implemented</td>"));
    assert!(
        row("virtualized_accelerator")
            .contains("<td>SHOULD</td><td class=\"skipped\">not run</td>")
    );
    assert!(html.contains("<h2>CNCF AI conformance 1.35</h2>"));
}

// ---- check: one fixture per rule ----------------------------------------------------------

/// A passing 1.34 submission to break one rule at a time.
fn valid_submission(tmp: &Path) -> PathBuf {
    let report = stub_run(conformance(34, &[("cluster_autoscaling", ON_PREM)]), None);
    write_submission(&report, tmp)
}

fn edit(dir: &Path, f: impl FnOnce(String) -> String) {
    let p = dir.join("PRODUCT.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let new = f(text.clone());
    assert_ne!(new, text, "the fixture edit changed nothing");
    std::fs::write(&p, new).unwrap();
}

#[test]
fn check_catches_each_rule() {
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "missing category",
            Box::new(|t: String| t.replace("  operator:\n", "  operators:\n")),
            "spec.operator",
            "missing spec category: operator",
        ),
        (
            "missing requirement",
            Box::new(|t: String| t.replace("id: robust_controller", "id: robust_operator")),
            "spec.operator",
            "missing requirement 'robust_controller'",
        ),
        (
            "changed description",
            Box::new(|t: String| {
                t.replacen("Dynamic Resource Allocation (DRA) APIs", "DRA APIs", 1)
            }),
            "spec.accelerators[0].description",
            "differs from the published checklist",
        ),
        (
            "changed level",
            Box::new(|t: String| t.replacen("level: MUST", "level: SHOULD", 1)),
            "spec.accelerators[0].level",
            "must stay MUST",
        ),
        (
            "invalid status",
            Box::new(|t: String| t.replacen("status: Implemented", "status: Done", 1)),
            "spec.accelerators[0].status",
            "invalid status 'Done'",
        ),
        (
            "MUST not implemented",
            Box::new(|t: String| {
                t.replacen("status: Implemented", "status: Partially Implemented", 1)
            }),
            "spec.accelerators[0].status",
            "is MUST level but status is 'Partially Implemented'",
        ),
        (
            "unconditional MUST N/A",
            Box::new(|t: String| t.replacen("status: Implemented", "status: N/A", 1)),
            "spec.accelerators[0].status",
            "is MUST level but status is 'N/A'",
        ),
        (
            "N/A without notes",
            Box::new(|t: String| {
                let i = t.find("status: N/A").unwrap();
                let j = i + t[i..].find("notes:").unwrap();
                let k = j + t[j..].find('\n').unwrap();
                format!("{}notes: \"\"{}", &t[..j], &t[k..])
            }),
            "spec.schedulingOrchestration[1].notes",
            "notes required for 'cluster_autoscaling' when status is N/A",
        ),
        (
            "missing evidence file",
            Box::new(|t: String| t.replacen("evidence/dra_support.md", "evidence/dra.md", 1)),
            "spec.accelerators[0].evidence[0]",
            "invalid evidence file for 'dra_support': evidence/dra.md",
        ),
        (
            "malformed evidence URL",
            Box::new(|t: String| t.replacen("evidence/dra_support.md", "https:///nowhere", 1)),
            "spec.accelerators[0].evidence[0]",
            "invalid evidence URL",
        ),
        (
            "missing metadata field",
            Box::new(|t: String| {
                t.replace("  contactEmailAddress: conformance@acme.example\n", "")
            }),
            "metadata.contactEmailAddress",
            "missing metadata field contactEmailAddress (or contact_email_address)",
        ),
        (
            "empty metadata field",
            Box::new(|t: String| t.replace("platformVersion: \"2.3\"", "platformVersion: \"\"")),
            "metadata.platformVersion",
            "is empty",
        ),
        (
            "placeholder",
            Box::new(|t: String| {
                t.replace(
                    "vendorName: Acme Corporation",
                    "vendorName: \"[Vendor Name]\"",
                )
            }),
            "metadata.vendorName",
            "has placeholder value: [Vendor Name]",
        ),
        (
            "non-string metadata",
            Box::new(|t: String| t.replace("platformVersion: \"2.3\"", "platformVersion: 2.3")),
            "metadata.platformVersion",
            "is not a string",
        ),
        (
            "k8sConformanceUrl form",
            Box::new(|t: String| {
                t.replace(
                    "k8s-conformance/tree/master/v1.34",
                    "k8s-conformance/blob/master/v1.34",
                )
            }),
            "metadata.k8sConformanceUrl",
            "invalid format",
        ),
        (
            "malformed metadata URL",
            Box::new(|t: String| {
                t.replace(
                    "websiteUrl: https://acme.example/ai",
                    "websiteUrl: https://",
                )
            }),
            "metadata.websiteUrl",
            "invalid URL",
        ),
        (
            "missing spec",
            Box::new(|t: String| t[..t.find("spec:").unwrap()].to_string()),
            "spec",
            "missing 'spec' section",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let pristine = valid_submission(tmp.path());
    let text = std::fs::read_to_string(pristine.join("PRODUCT.yaml")).unwrap();
    for (rule, f, path, message) in cases {
        std::fs::write(pristine.join("PRODUCT.yaml"), &text).unwrap();
        edit(&pristine, f);
        let r = check::check(&pristine);
        assert!(
            r.problems
                .iter()
                .any(|p| p.path == path && p.message.contains(message)),
            "{rule}: expected `{path}: ...{message}...`, got {:#?}",
            r.problems
        );
        // Nothing outside the broken entry is flagged.
        let scope = path.rsplit_once('.').map_or(path, |(a, _)| a);
        assert!(
            r.problems.iter().all(|p| p.path.starts_with(scope)),
            "{rule}: only `{scope}` is flagged: {:#?}",
            r.problems
        );
    }
}

#[test]
fn check_reads_the_version_from_the_path_and_accepts_snake_case_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = valid_submission(tmp.path());
    edit(&dir, |t| {
        t.replace("contactEmailAddress:", "contact_email_address:")
    });
    assert!(check::check(&dir).passed());
    // A SHOULD left empty is skipped, one with evidence but no status is not.
    let moved = tmp.path().join("elsewhere/acme");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&dir, &moved).unwrap();
    let r = check::check(&moved);
    assert_eq!(r.problems[0].path, "(path)");
    assert!(
        r.problems[0]
            .message
            .contains("cannot determine the version")
    );
    let v135 = tmp.path().join("submission/v1.35/acme");
    std::fs::create_dir_all(v135.parent().unwrap()).unwrap();
    std::fs::rename(&moved, &v135).unwrap();
    let r = check::check(&v135);
    assert!(
        r.problems.iter().any(|p| p.path == "spec.accelerators"
            && p.message
                .contains("missing requirement 'driver_runtime_management'")),
        "a 1.34 file checked as 1.35: {:?}",
        r.problems
    );
}

#[test]
fn should_not_run_stays_empty_and_passes() {
    let report = stub_run_without(
        conformance(35, &[("cluster_autoscaling", ON_PREM)]),
        None,
        &["conformance/virtualized-accelerator"],
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&report, tmp.path());
    let text = std::fs::read_to_string(dir.join("PRODUCT.yaml")).unwrap();
    let i = text.find("id: virtualized_accelerator").unwrap();
    let entry = &text[i..i + text[i..].find("- id:").unwrap()];
    assert!(
        entry.contains("status: \"\"")
            && entry.contains("evidence: []")
            && entry.contains("notes: \"\""),
        "{entry}"
    );
    assert!(check::check(&dir).passed());
    // With evidence but no status the program's CI refuses it.
    edit(&dir, |t| {
        let j = t.find("id: virtualized_accelerator").unwrap();
        let k = j + t[j..].find("evidence: []").unwrap();
        format!(
            "{}evidence: [https://acme.example/vgpu]{}",
            &t[..k],
            &t[k + "evidence: []".len()..]
        )
    });
    let r = check::check(&dir);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(r.problems[0].path, "spec.accelerators[3].status");
}

#[test]
fn write_refuses_to_overwrite_and_leaves_nothing_half_written() {
    let report = stub_run(conformance(34, &[]), None);
    let tmp = tempfile::tempdir().unwrap();
    let report_dir = tmp.path().join("report");
    report::write_all(&report_dir, &report).unwrap();
    let run = RunRecord::load(&report_dir).unwrap();
    let sub = submission::render(
        submission::checklist_of(&run, &report_dir).unwrap(),
        &run,
        &product(),
        &Default::default(),
    )
    .unwrap();
    let out = tmp.path().join("out");
    submission::write(&out, &sub, false).unwrap();
    let e = submission::write(&out, &sub, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists; pass --force"), "{e}");
    std::fs::write(out.join("v1.34/acme-ai-cloud/evidence/stale.md"), "old").unwrap();
    submission::write(&out, &sub, true).unwrap();
    assert!(
        !out.join("v1.34/acme-ai-cloud/evidence/stale.md").exists(),
        "replaced, not merged"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.join("v1.34"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("acme-ai-cloud")]);
}

/// A site that answers `/ok` and redirects `/moved` there; everything else is 404.
async fn site() -> (String, tokio::task::JoinHandle<()>) {
    use axum::Router;
    use axum::response::Redirect;
    use axum::routing::get;
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/moved", get(|| async { Redirect::temporary("/ok") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, task)
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn online_check_names_each_url_that_does_not_answer() {
    let report = stub_run(conformance(34, &[("cluster_autoscaling", ON_PREM)]), None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&report, tmp.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, server) = rt.block_on(site());
    let closed = closed_port();
    let file = dir.join("PRODUCT.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("https://acme.example/ai/docs", &format!("{base}/missing"))
        .replace(
            "https://acme.example/ai/logo.svg",
            &format!("http://127.0.0.1:{closed}/logo.svg"),
        )
        .replace("https://acme.example/ai", &format!("{base}/ok"))
        .replace("https://github.com/acme/ai-cloud", &format!("{base}/moved"));
    std::fs::write(&file, text).unwrap();

    let offline = check::check(&dir);
    assert!(
        offline.passed(),
        "well-formed URLs pass offline: {:?}",
        offline.problems
    );
    let paths: Vec<&str> = offline.links.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "metadata.websiteUrl",
            "metadata.repoUrl",
            "metadata.documentationUrl",
            "metadata.productLogoUrl",
            "metadata.k8sConformanceUrl"
        ]
    );
    // The k8s-conformance link needs the internet, which a test cannot count on either way.
    let local: Vec<_> = offline
        .links
        .iter()
        .filter(|l| l.url.starts_with("http://127.0.0.1"))
        .cloned()
        .collect();
    let found = rt.block_on(aiconform::submission::online::unreachable(
        &local,
        Duration::from_secs(5),
    ));
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("metadata.documentationUrl: {base}/missing answered 404 Not Found")
    );
    assert!(
        lines[1].starts_with(&format!(
            "metadata.productLogoUrl: http://127.0.0.1:{closed}/logo.svg is unreachable: "
        )),
        "{}",
        lines[1]
    );
    server.abort();
}

// ---- 1.37: hybrid verification, layered products, signed run evidence ---------------------

fn v137() -> RunReport {
    stub_run(conformance(37, &[("cluster_autoscaling", ON_PREM)]), None)
}

fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("aiconform").unwrap();
    c.env_remove("KUBECONFIG");
    c
}

fn problems(dir: &Path) -> Vec<String> {
    check::check(dir)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn v137_evidence_links_the_runs_junit_and_check_parses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&v137(), tmp.path());
    let text = std::fs::read_to_string(dir.join("PRODUCT.yaml")).unwrap();
    assert!(
        text.contains(
            "    - evidence/gang_scheduling.md\n    - file://results/junit.xml#gang-scheduling\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains("#cluster-autoscaling"),
        "an N/A requirement links no test"
    );
    assert!(text.contains("the run's reports are in results/"), "{text}");
    assert_eq!(
        std::fs::read(dir.join("results/junit.xml")).unwrap(),
        std::fs::read(tmp.path().join("report/junit.xml")).unwrap(),
        "the run's own junit.xml, byte for byte"
    );
    assert!(dir.join("results/results.json").is_file());
    let r = check::check(&dir);
    assert!(r.passed(), "{:?}", r.problems);

    // A linked case that does not exist: refused, naming requirement, link and case.
    edit(&dir, |t| {
        t.replace("junit.xml#gang-scheduling", "junit.xml#gang-sched")
    });
    assert_eq!(
        problems(&dir),
        [
            "spec.schedulingOrchestration[0].evidence[1]: evidence link file://results/junit.xml#gang-sched for 'gang_scheduling': case 'gang-sched' does not exist in results/junit.xml"
        ]
    );
    edit(&dir, |t| {
        t.replace("junit.xml#gang-sched", "junit.xml#gang-scheduling")
    });

    // A linked case that failed (the report edited to say so): refused.
    let junit = dir.join("results/junit.xml");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let i = xml.find("<testcase name=\"gang-scheduling\"").unwrap();
    let end = i + xml[i..].find('>').unwrap() + 1;
    let failed = format!(
        "{}<failure message=\"partial gang\"/>{}",
        &xml[..end],
        &xml[end..]
    );
    std::fs::write(&junit, failed).unwrap();
    assert_eq!(
        problems(&dir),
        [
            "spec.schedulingOrchestration[0].evidence[1]: evidence link file://results/junit.xml#gang-scheduling for 'gang_scheduling': case 'gang-scheduling' failed in results/junit.xml; the CI refuses evidence whose test failed"
        ]
    );
    std::fs::write(&junit, xml).unwrap();

    // aiconform's results.json is not `go test -json`, which is how the CI reads that name;
    // a link out of the product directory is refused.
    edit(&dir, |t| {
        t.replace(
            "file://results/junit.xml#gang-scheduling",
            "file://results/results.json#gang-scheduling",
        )
        .replace(
            "file://results/junit.xml#robust-controller",
            "file://../other/junit.xml#robust-controller",
        )
    });
    let p = problems(&dir);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].contains("results/results.json is not `go test -json` output"),
        "{p:?}"
    );
    assert!(p[1].contains("leaves the product directory"), "{p:?}");
}

#[test]
fn v137_without_k8s_conformance_url_check_says_the_ci_requires_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&v137(), tmp.path());
    let text = std::fs::read_to_string(dir.join("PRODUCT.yaml")).unwrap();
    assert!(
        text.contains(
            "k8sConformanceUrl: https://github.com/cncf/k8s-conformance/tree/master/v1.34/acme-ai-cloud"
        ),
        "write fills it although the 1.37 template lacks it: {text}"
    );
    edit(&dir, |t| {
        t.lines()
            .filter(|l| !l.contains("k8sConformanceUrl"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let p = problems(&dir);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("metadata.k8sConformanceUrl: missing metadata field k8sConformanceUrl (or k8s_conformance_url); the v1.37 template does not have it, but the program's CI (validate.go) requires it"),
        "{p:?}"
    );
}

fn layered(provides: &str) -> Product {
    let text = std::fs::read_to_string(root().join("fixtures/conformance/product.yaml")).unwrap()
        + "layers:\n  - name: Acme Kubernetes Engine\n    role: base\n    certification: https://github.com/cncf/k8s-ai-conformance/tree/main/v1.37/ake\n  - name: Acme AI Stack\n    role: add-on\n    provides:\n"
        + provides;
    Product::parse(&text, "product.yaml").unwrap()
}

fn write_layered(report: &RunReport, out: &Path, product: &Product) -> PathBuf {
    let report_dir = out.join("report");
    report::write_all(&report_dir, report).unwrap();
    let run = RunRecord::load(&report_dir).unwrap();
    let checklist = submission::checklist_of(&run, &report_dir).unwrap();
    let artifacts = submission::read_artifacts(&report_dir, checklist).unwrap();
    let sub = submission::render(checklist, &run, product, &artifacts).unwrap();
    submission::write(&out.join("submission"), &sub, false).unwrap()
}

#[test]
fn layered_products_name_the_layer_and_check_warns_without_one_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let product = layered("      gang_scheduling: replaces\n      ai_inference: matches\n");
    let dir = write_layered(&v137(), tmp.path(), &product);
    let text = std::fs::read_to_string(dir.join("PRODUCT.yaml")).unwrap();
    assert!(
        text.contains(
            "notes: \"Layer: Acme AI Stack (add-on, replaces the base). Proven by aiconform"
        ),
        "{text}"
    );
    assert!(text.contains("notes: \"Layer: Acme Kubernetes Engine (base). Proven by"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("| Acme Kubernetes Engine | base | https://github.com/cncf/k8s-ai-conformance/tree/main/v1.37/ake |"),
        "{readme}"
    );
    let r = check::check(&dir);
    assert!(r.passed() && r.warnings.is_empty(), "{r:?}");

    let tmp = tempfile::tempdir().unwrap();
    let only_matches = layered("      ai_inference: matches\n");
    assert!(only_matches.contributes_nothing());
    let dir = write_layered(&v137(), tmp.path(), &only_matches);
    let r = check::check(&dir);
    assert!(r.passed(), "a warning, not a CI failure: {:?}", r.problems);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0]
            .to_string()
            .contains("a layered product whose notes name no requirement of its own"),
        "{:?}",
        r.warnings
    );

    // Layers naming a requirement the checklist does not have.
    let e = submission::render(
        aiconform::conformance::checklist(Version::new(1, 37)).unwrap(),
        &RunRecord::from_report(&v137()),
        &layered("      dra_support: replaces\n"),
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("dra_support (layer Acme AI Stack)"), "{e}");
}

#[test]
fn members_list_checks_the_vendor_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_submission(&v137(), tmp.path());
    let members = tmp.path().join("members.txt");
    std::fs::write(&members, "# CNCF members\nAcme Corp\nBeta Inc\n").unwrap();
    let check = |extra: &[&str]| {
        bin()
            .args(["submission", "check"])
            .arg(&dir)
            .args(extra)
            .assert()
    };
    check(&[])
        .code(0)
        .stdout(predicates::str::contains(
            "not checked: URL reachability (--online), vendorName in the CNCF members list (--members FILE)",
        ));
    check(&["--members", members.to_str().unwrap()])
        .code(1)
        .stdout(predicates::str::contains(
            "problem: metadata.vendorName: 'Acme Corporation' does not match any CNCF member in",
        ))
        .stdout(predicates::str::contains("(close: Acme Corp)"));
    std::fs::write(
        &members,
        "landscape:\n  - category:\n    name: CNCF Members\n    subcategories:\n      - subcategory:\n        name: Gold\n        items:\n          - item:\n            name: Acme Corporation (member)\n",
    )
    .unwrap();
    check(&["--members", members.to_str().unwrap()])
        .code(0)
        .stdout(predicates::str::contains(
            "checked vendorName against the CNCF members in",
        ));
    check(&["--members", tmp.path().join("nope.txt").to_str().unwrap()])
        .code(2)
        .stderr(predicates::str::contains("cannot read the members list"));
}

/// A 1.37 run's reports attested in place with a fresh key; returns (report dir, private
/// key path, public key path).
fn attested_run(tmp: &Path, report: &RunReport) -> (PathBuf, PathBuf, PathBuf) {
    use aiconform::attest;
    use aiconform::bundle::sign;
    let report_dir = tmp.join("report");
    report::write_all(&report_dir, report).unwrap();
    let (private, public) = sign::generate_key_pair();
    let (key, pubkey) = (tmp.join("run.key"), tmp.join("run.pub"));
    std::fs::write(&key, &private).unwrap();
    std::fs::write(&pubkey, &public).unwrap();
    let context = attest::RunContext {
        recipe_yaml: aiconform::yaml::to_string(&recipe()).unwrap(),
        snapshot_yaml: Some(
            std::fs::read_to_string(root().join("fixtures/snapshots/h100-eks.yaml")).unwrap(),
        ),
        cluster: attest::ClusterIdentity {
            kube_system_uid: Some("0f9a6c2e-kube-system".into()),
            ..Default::default()
        },
    };
    let sk = sign::parse_private_key(&private, "run.key").unwrap();
    attest::attest(&report_dir, &report_dir, &context, &sk).unwrap();
    (report_dir, key, pubkey)
}

fn evidence_verify(target: &Path, key: Option<&Path>) -> assert_cmd::assert::Assert {
    let mut c = bin();
    c.args(["evidence", "verify"]).arg(target);
    if let Some(k) = key {
        c.arg("--key").arg(k);
    }
    c.assert()
}

#[test]
fn attested_run_verifies_and_a_tampered_report_or_status_is_named() {
    use predicates::str::contains;
    let tmp = tempfile::tempdir().unwrap();
    let (report_dir, _key, public) = attested_run(tmp.path(), &v137());
    for f in [
        "attestation.dsse.json",
        "recipe.yaml",
        "snapshot.yaml",
        "junit.xml",
        "results.json",
    ] {
        assert!(report_dir.join(f).is_file(), "{f}");
    }
    // The envelope is a DSSE envelope over an in-toto statement.
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("attestation.dsse.json")).unwrap())
            .unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    evidence_verify(&report_dir, Some(&public))
        .code(0)
        .stdout(contains("signature valid for"))
        .stdout(contains(
            "cluster 0f9a6c2e-kube-system, checklist 1.37; 8 files",
        ))
        .stdout(contains("OK: verified"));
    evidence_verify(&report_dir, None)
        .code(3)
        .stdout(contains("signed, signature not checked (pass --key)"));

    // The submission carries the attested files; its statuses match the attested verdicts.
    let out = tmp.path().join("submission");
    bin()
        .args(["submission", "write", "--report-dir"])
        .arg(&report_dir)
        .arg("--product")
        .arg(root().join("fixtures/conformance/product.yaml"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(0)
        .stdout(contains("carried the run's signed evidence"))
        .stdout(contains("submission check: no problems"));
    let dir = out.join("v1.37/acme-ai-cloud");
    let product = dir.join("PRODUCT.yaml");
    assert!(dir.join("results/attestation.dsse.json").is_file());
    evidence_verify(&product, Some(&public))
        .code(0)
        .stdout(contains("every status in PRODUCT.yaml is the attested one"));
    evidence_verify(&dir, Some(&public)).code(0);
    assert!(check::check(&dir).passed());

    // One byte of a report.
    let junit = dir.join("results/junit.xml");
    let original = std::fs::read(&junit).unwrap();
    let mut edited = original.clone();
    let at = edited.len() - 2;
    edited[at] ^= 0x20;
    std::fs::write(&junit, &edited).unwrap();
    evidence_verify(&product, Some(&public))
        .code(1)
        .stdout(contains(format!(
            "differs: {}: changed after the run",
            junit.display()
        )))
        .stdout(contains("FAILED"));
    evidence_verify(&product, None).code(1);
    std::fs::write(&junit, &original).unwrap();

    // One status in PRODUCT.yaml.
    edit(&dir, |t| {
        t.replacen("status: Implemented", "status: Partially Implemented", 1)
    });
    evidence_verify(&product, Some(&public))
        .code(1)
        .stdout(contains(format!(
            "differs: {} spec.accelerators[0].status: 'driver_runtime_management' is 'Partially Implemented' but the attested run gives 'Implemented'",
            product.display()
        )));
    edit(&dir, |t| {
        t.replacen("status: Partially Implemented", "status: Implemented", 1)
    });

    // Another key; no attestation at all.
    let (other, _) = aiconform::bundle::sign::generate_key_pair();
    let other_pub = tmp.path().join("other.pub");
    let sk = aiconform::bundle::sign::parse_private_key(&other, "k").unwrap();
    std::fs::write(&other_pub, aiconform::bundle::sign::public_key_pem(&sk)).unwrap();
    evidence_verify(&product, Some(&other_pub))
        .code(1)
        .stderr(contains("is not signed by"))
        .stderr(contains("signed with another key"));
    evidence_verify(tmp.path(), Some(&public))
        .code(2)
        .stderr(contains("holds no attestation.dsse.json"));

    // A submission is not written from attested files changed after the run.
    let results = report_dir.join("results.json");
    let text = std::fs::read_to_string(&results).unwrap();
    std::fs::write(&results, text.replacen("\"passed\"", "\"failed\"", 1)).unwrap();
    bin()
        .args(["submission", "write", "--report-dir"])
        .arg(&report_dir)
        .arg("--product")
        .arg(root().join("fixtures/conformance/product.yaml"))
        .arg("-o")
        .arg(tmp.path().join("again"))
        .assert()
        .code(1)
        .stderr(contains("its files differ from its attestation"))
        .stderr(contains("results.json: changed after the run"));
}

/// The envelope is standard DSSE: openssl verifies its signature over the pre-authentication
/// encoding with the public key (what `cosign verify-blob-attestation --key` checks).
#[test]
fn attestation_signature_verifies_with_openssl() {
    use base64::Engine as _;
    if aiconform::deploy::find_on_path("openssl").is_none() {
        eprintln!("SKIP attestation_signature_verifies_with_openssl: openssl not on PATH");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (report_dir, _, public) = attested_run(tmp.path(), &v137());
    let env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("attestation.dsse.json")).unwrap())
            .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(env["payload"].as_str().unwrap()).unwrap();
    let payload_type = env["payloadType"].as_str().unwrap();
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    std::fs::write(tmp.path().join("pae.bin"), &pae).unwrap();
    let sig = b64
        .decode(env["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    std::fs::write(tmp.path().join("sig.der"), sig).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public)
        .arg("-signature")
        .arg(tmp.path().join("sig.der"))
        .arg(tmp.path().join("pae.bin"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Verified OK"),
        "{text}"
    );
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://aiconform.dev/attestation/run/v1"
    );
}
