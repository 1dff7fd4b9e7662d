//! A submission from a finished run: `vX.Y/<product>/PRODUCT.yaml` (the version's template
//! with status, evidence and notes filled), `evidence/<requirement>.md`, a README and the
//! run's own artifacts in `results/`.
//!
//! `results/` holds the run's `junit.xml` and `results.json` for checklists with hybrid
//! verification (1.37+), where each implemented requirement's evidence also links the cases
//! that prove it the way the program's CI reads them (`file://results/junit.xml#<case>`); and,
//! for any version, the whole signed run evidence when the run was attested (`aiconform run
//! --attest`), so `aiconform evidence verify PRODUCT.yaml` can check it.
//! [`render`] is pure; [`read_artifacts`] and [`write`] do the I/O.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::evidence;
use super::product::Product;
use crate::conformance::catalog::{Checklist, Level};
use crate::report::results::RunRecord;
use crate::report::verdict::{RequirementVerdict, Verdict, verdicts};

pub const PRODUCT_FILE: &str = "PRODUCT.yaml";
pub const README_FILE: &str = "README.md";
pub const EVIDENCE_DIR: &str = "evidence";
/// The run's artifacts inside the product directory.
pub use crate::attest::RESULTS_DIR;

/// Why a submission cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error(
        "the run in {0} reported against no AI conformance checklist (it ran no conformance cases); run `aiconform run --phase conformance` first"
    )]
    NoChecklist(String),
    #[error("{path} already exists; pass --force to replace it or choose another -o directory")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render PRODUCT.yaml: {0}")]
    Render(String),
    #[error(
        "the product file's layers name requirements the {version} checklist does not have: {}; use ids of the checklist",
        ids.join(", ")
    )]
    UnknownRequirements { version: String, ids: Vec<String> },
    #[error("cannot read the run's artifacts: {0}")]
    Artifacts(#[from] crate::attest::AttestError),
    #[error("{path} is not text: {reason}")]
    NotText { path: String, reason: String },
}

/// Run files a submission carries in `results/`, as `(name, content)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifacts {
    pub files: Vec<(String, String)>,
    /// The files are a signed attestation with its subjects.
    pub attested: bool,
}

impl Artifacts {
    fn has(&self, name: &str) -> bool {
        self.files.iter().any(|(n, _)| n == name)
    }
}

/// The artifacts of the run in `report_dir`: everything its attestation covers, with the
/// envelope, when the run was attested there; else `junit.xml` and `results.json` when the
/// checklist has hybrid verification; else none.
pub fn read_artifacts(
    report_dir: &Path,
    checklist: &Checklist,
) -> Result<Artifacts, SubmissionError> {
    let attested = crate::attest::is_attested(report_dir);
    let names: Vec<String> = if attested {
        let mut n = crate::attest::subject_names(report_dir)?;
        n.push(crate::attest::ENVELOPE_FILE.to_string());
        n
    } else if checklist.hybrid_verification() {
        vec![
            crate::report::JUNIT_FILE.to_string(),
            crate::report::RESULTS_FILE.to_string(),
        ]
    } else {
        vec![]
    };
    let mut files = Vec::new();
    for name in names {
        let path = report_dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| SubmissionError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| SubmissionError::NotText {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        files.push((name, text));
    }
    Ok(Artifacts { files, attested })
}

/// The files of a submission, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// `v1.34/<product>`.
    pub dir: PathBuf,
    /// `(path relative to dir, content)`, PRODUCT.yaml first.
    pub files: Vec<(PathBuf, String)>,
}

/// A mapping serialized in the given order.
struct InOrder<'a, V>(&'a [(String, V)]);

impl<V: Serialize> Serialize for InOrder<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    id: &'a str,
    description: &'a str,
    level: Level,
    status: &'a str,
    evidence: Vec<String>,
    notes: String,
}

/// Evidence files a requirement's PRODUCT.yaml entry cites. A SHOULD that was not run
/// cites nothing (the program skips SHOULDs with empty status and evidence).
fn cites_evidence(v: &RequirementVerdict<'_>) -> bool {
    match v.verdict {
        Verdict::NotRun(_) => v.requirement.level == Level::Must && !v.cases.is_empty(),
        _ => true,
    }
}

fn evidence_path(id: &str) -> String {
    format!("{EVIDENCE_DIR}/{id}.md")
}

/// `file://results/junit.xml#<case>` for each case proving an implemented requirement.
fn artifact_links(v: &RequirementVerdict<'_>) -> Vec<String> {
    if v.verdict != Verdict::Implemented {
        return vec![];
    }
    v.cases
        .iter()
        .map(|c| {
            format!(
                "file://{RESULTS_DIR}/{}#{}",
                crate::report::JUNIT_FILE,
                crate::report::junit::case_name(&c.id, &c.suite)
            )
        })
        .collect()
}

/// The notes of a requirement: which layer provides it (layered products), then what the
/// run showed.
fn notes_with_layer(v: &RequirementVerdict<'_>, run: &RunRecord, product: &Product) -> String {
    let n = notes(v, run);
    match product.provider(&v.requirement.id) {
        Some(p) if !n.is_empty() => format!("{}. {n}", p.note()),
        _ => n,
    }
}

fn notes(v: &RequirementVerdict<'_>, run: &RunRecord) -> String {
    let by = format!(
        "aiconform {} run {} on Kubernetes {}",
        run.tool_version,
        run.run_id,
        run.cluster_version
            .as_deref()
            .unwrap_or("(unknown version)")
    );
    match &v.verdict {
        Verdict::Implemented => format!("Proven by {by}: {}", v.summary()),
        Verdict::NotImplemented(why) => format!("Failed in {by}: {why}"),
        Verdict::NotApplicable(reason) => reason.clone(),
        Verdict::NotRun(_) if v.requirement.level == Level::Should => String::new(),
        Verdict::NotRun(why) => format!("Not proven by {by}: {why}"),
    }
}

/// Build the submission of `run` for `product`.
pub fn render(
    checklist: &Checklist,
    run: &RunRecord,
    product: &Product,
    artifacts: &Artifacts,
) -> Result<Submission, SubmissionError> {
    let known: Vec<&str> = checklist.requirements().map(|r| r.id.as_str()).collect();
    let unknown = product.unknown_requirements(&known);
    if !unknown.is_empty() {
        return Err(SubmissionError::UnknownRequirements {
            version: checklist.version.to_string(),
            ids: unknown
                .iter()
                .map(|(layer, id)| format!("{id} (layer {layer})"))
                .collect(),
        });
    }
    let link_artifacts =
        checklist.hybrid_verification() && artifacts.has(crate::report::JUNIT_FILE);
    let rows = verdicts(checklist, run);
    let mut metadata: Vec<(String, String)> =
        vec![("kubernetesVersion".into(), checklist.version.dir_name())];
    metadata.extend(
        product
            .metadata()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let spec: Vec<(String, Vec<Entry>)> = checklist
        .categories
        .iter()
        .map(|cat| {
            let entries = cat
                .requirements
                .iter()
                .filter_map(|req| rows.iter().find(|r| r.requirement.id == req.id))
                .map(|v| Entry {
                    id: &v.requirement.id,
                    description: &v.requirement.description,
                    level: v.requirement.level,
                    status: v.verdict.status(),
                    evidence: if cites_evidence(v) {
                        let mut e = vec![evidence_path(&v.requirement.id)];
                        if link_artifacts {
                            e.extend(artifact_links(v));
                        }
                        e
                    } else {
                        vec![]
                    },
                    notes: notes_with_layer(v, run, product),
                })
                .collect();
            (cat.name.clone(), entries)
        })
        .collect();
    #[derive(Serialize)]
    struct Doc<'a> {
        metadata: InOrder<'a, String>,
        spec: InOrder<'a, Vec<Entry<'a>>>,
    }
    // One-line scalars, as in the program's template (no folded descriptions).
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    let body = serde_saphyr::to_string_with_options(
        &Doc {
            metadata: InOrder(&metadata),
            spec: InOrder(&spec),
        },
        options,
    )
    .map_err(|e| SubmissionError::Render(e.to_string()))?;
    let results = if artifacts.files.is_empty() {
        String::new()
    } else if artifacts.attested {
        format!("; the run's signed evidence (reports, recipe, snapshot) is in {RESULTS_DIR}/")
    } else {
        format!("; the run's reports are in {RESULTS_DIR}/")
    };
    let header = format!(
        "# Kubernetes AI Conformance Checklist\n# Notes: This checklist is based on the Kubernetes AI Conformance document.\n# Written by aiconform {} from run {}; evidence files are in evidence/{results}.\n\n",
        run.tool_version, run.run_id
    );
    let mut files = vec![(PathBuf::from(PRODUCT_FILE), header + &body)];
    files.push((
        PathBuf::from(README_FILE),
        readme(checklist, run, product, &rows, artifacts),
    ));
    for v in rows.iter().filter(|v| cites_evidence(v)) {
        files.push((
            PathBuf::from(evidence_path(&v.requirement.id)),
            evidence::render(v, run),
        ));
    }
    for (name, content) in &artifacts.files {
        files.push((Path::new(RESULTS_DIR).join(name), content.clone()));
    }
    Ok(Submission {
        dir: Path::new(&checklist.version.dir_name()).join(&product.directory),
        files,
    })
}

fn readme(
    checklist: &Checklist,
    run: &RunRecord,
    product: &Product,
    rows: &[RequirementVerdict<'_>],
    artifacts: &Artifacts,
) -> String {
    let mut out = format!(
        "# {} {}: Kubernetes AI conformance {}\n\n{}\n\nVendor: {}. Documentation: {}\n\n",
        product.platform_name,
        product.platform_version,
        checklist.version,
        product.description,
        product.vendor_name,
        product.documentation_url
    );
    out.push_str("The requirements below were exercised by [aiconform](https://github.com/aiconform/aiconform) on the cluster described here; each verdict rests on behaviour the run observed. `PRODUCT.yaml` is the program's checklist with status, evidence and notes filled from this run.\n\n");
    if !product.layers.is_empty() {
        out.push_str("## Layers\n\nA layered product: each requirement's notes name the layer that provides it (the base unless an add-on lists it).\n\n| Layer | Role | AI conformance of its own |\n|---|---|---|\n");
        for l in &product.layers {
            let role = match l.role {
                super::product::LayerRole::Base => "base",
                super::product::LayerRole::AddOn => "add-on",
            };
            let _ = writeln!(
                out,
                "| {} | {role} | {} |",
                l.name,
                l.certification.as_deref().unwrap_or("none")
            );
        }
        out.push('\n');
    }
    out.push_str("## Run\n\n");
    out.push_str(&evidence::run_table(run));
    if artifacts.attested {
        let _ = writeln!(
            out,
            "\nThe run's reports, recipe and snapshot are in [{RESULTS_DIR}/]({RESULTS_DIR}/) with its signed attestation (`{}`): `aiconform evidence verify PRODUCT.yaml --key KEY.pub` checks that they and every status above are what the run produced.",
            crate::attest::ENVELOPE_FILE
        );
    } else if !artifacts.files.is_empty() {
        let _ = writeln!(
            out,
            "\nThe run's reports are in [{RESULTS_DIR}/]({RESULTS_DIR}/); each implemented requirement links the cases proving it in `{RESULTS_DIR}/junit.xml`."
        );
    }
    out.push_str(
        "\n## Requirements\n\n| Requirement | Level | Status | Evidence |\n|---|---|---|---|\n",
    );
    for v in rows {
        let status = match v.verdict.status() {
            "" => "(not run)",
            s => s,
        };
        let ev = if cites_evidence(v) {
            format!("[{0}]({0})", evidence_path(&v.requirement.id))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            v.requirement.id,
            v.requirement.level_label(),
            status,
            ev
        );
    }
    out
}

/// Write `sub` under `out`. The product directory is assembled in a temporary sibling and
/// renamed into place, so a failure never leaves a partial submission that looks complete.
/// An existing product directory is replaced only with `force`.
pub fn write(out: &Path, sub: &Submission, force: bool) -> Result<PathBuf, SubmissionError> {
    let target = out.join(&sub.dir);
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SubmissionError::Io { path, source }
    };
    if target.exists() && !force {
        return Err(SubmissionError::Exists {
            path: target.display().to_string(),
        });
    }
    let parent = target.parent().unwrap_or(out);
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".aiconform-submission-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    for (rel, content) in &sub.files {
        let path = tmp.path().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&path, content).map_err(io(&path))?;
    }
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io(&target))?;
    }
    let staged = tmp.keep();
    std::fs::rename(&staged, &target).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        io(&target)(e)
    })?;
    Ok(target)
}

/// The checklist a run reported against.
pub fn checklist_of(
    run: &RunRecord,
    report_dir: &Path,
) -> Result<&'static Checklist, SubmissionError> {
    run.ai_conformance
        .as_ref()
        .map(|c| c.checklist())
        .ok_or_else(|| SubmissionError::NoChecklist(report_dir.display().to_string()))
}
