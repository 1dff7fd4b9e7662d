//! Signed run evidence (`aiconform run --attest DIR --attest-key KEY`, `aiconform evidence
//! verify`): an [in-toto Statement](https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)
//! whose subjects are the run's recipe, snapshot and every report file by SHA-256, and whose
//! predicate states what the run was (aiconform version, run id and times, the cluster's
//! identity, the checklist) and what it found (every case's status, every requirement's
//! PRODUCT.yaml status). It is signed as a [DSSE envelope](https://github.com/secure-systems-lab/dsse)
//! with the keys `bundle sign` uses (ECDSA P-256/SHA-256, PEM), the form `cosign
//! attest-blob` writes and `cosign verify-blob-attestation --key` reads.
//!
//! An attestation directory holds [`ENVELOPE_FILE`] and its subjects under their subject
//! names (`recipe.yaml`, `snapshot.yaml`, `junit.xml`, `results.json`, ...); a submission
//! carries one in `vX.Y/<product>/results/`.
//!
//! [`statement`], [`seal`], [`open`], [`check_digests`] and [`check_statuses`] are pure; the
//! rest reads and writes files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::sha256_hex;
use crate::bundle::sign::{self, SignError};
use crate::clock::timestamp;
use crate::report::results::RunRecord;
use crate::report::verdict::verdicts;

pub const ENVELOPE_FILE: &str = "attestation.dsse.json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://aiconform.dev/attestation/run/v1";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const RECIPE_FILE: &str = "recipe.yaml";
pub const SNAPSHOT_FILE: &str = "snapshot.yaml";
/// The directory of a submission holding the run's reports and evidence.
pub const RESULTS_DIR: &str = "results";

/// The report files of a run an attestation covers, as `aiconform run` writes them.
pub const REPORT_FILES: [&str; 6] = [
    crate::report::JUNIT_FILE,
    crate::report::CTRF_FILE,
    crate::report::RESULTS_FILE,
    crate::report::PERF_JSON_FILE,
    crate::report::REPORT_HTML_FILE,
    crate::report::PERF_HTML_FILE,
];

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{dir} holds no {ENVELOPE_FILE}: it is not signed run evidence; write one with `aiconform run --attest DIR --attest-key KEY`"
    )]
    NotAttested { dir: String },
    #[error("{path} is not an aiconform run attestation: {reason}")]
    Invalid { path: String, reason: String },
    #[error(transparent)]
    Signature(#[from] SignError),
    #[error("{path} is not the results.json of an aiconform run: {reason}")]
    Results { path: String, reason: String },
    #[error("cannot encode the attestation: {0}")]
    Encode(String),
    #[error(transparent)]
    Oci(#[from] crate::bundle::oci::OciError),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AttestError {
    let path = path.display().to_string();
    move |source| AttestError::Io { what, path, source }
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    pub fn sha256(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

/// What the run was and what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Predicate {
    pub aiconform_version: String,
    pub run_id: String,
    pub recipe: String,
    pub started: String,
    pub finished: String,
    pub interrupted: bool,
    pub cluster: ClusterIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist: Option<ChecklistRef>,
    pub cases: Vec<CaseVerdict>,
    /// Every requirement of the checklist with the PRODUCT.yaml status the run gives it
    /// (empty: not run).
    #[serde(default)]
    pub requirements: Vec<RequirementStatus>,
}

/// Which cluster the run tested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIdentity {
    /// The API server's `gitVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// The UID of the `kube-system` namespace: fixed for the life of a cluster, different
    /// for every cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_system_uid: Option<String>,
    /// The API server URL the run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistRef {
    pub version: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_applicable: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseVerdict {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementStatus {
    pub id: String,
    pub level: String,
    pub status: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub payload_type: String,
    /// Base64 of the statement's JSON.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the DER ECDSA signature of the DSSE pre-authentication encoding.
    pub sig: String,
}

/// The statement for files `(subject name, content)` of the run `run` on `cluster`.
pub fn statement(
    files: &[(String, Vec<u8>)],
    run: &RunRecord,
    cluster: ClusterIdentity,
) -> Statement {
    let subject = files
        .iter()
        .map(|(name, bytes)| Subject {
            name: name.clone(),
            digest: BTreeMap::from([("sha256".to_string(), sha256_hex(bytes))]),
        })
        .collect();
    let requirements = run
        .ai_conformance
        .as_ref()
        .map(|c| {
            verdicts(c.checklist(), run)
                .into_iter()
                .map(|v| RequirementStatus {
                    id: v.requirement.id.clone(),
                    level: v.requirement.level_label(),
                    status: v.verdict.status().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Predicate {
            aiconform_version: run.tool_version.clone(),
            run_id: run.run_id.clone(),
            recipe: run.recipe.clone(),
            started: timestamp(run.started_ms),
            finished: timestamp(run.finished_ms),
            interrupted: run.interrupted,
            cluster: ClusterIdentity {
                kubernetes_version: cluster
                    .kubernetes_version
                    .or_else(|| run.cluster_version.clone()),
                ..cluster
            },
            checklist: run.ai_conformance.as_ref().map(|c| ChecklistRef {
                version: c.version.to_string(),
                source: c.source.clone(),
                not_applicable: c.not_applicable.clone().into_iter().collect(),
            }),
            cases: run
                .cases
                .iter()
                .map(|c| CaseVerdict {
                    id: c.id.clone(),
                    requirement: c.requirement.clone(),
                    status: c.status.as_str().to_string(),
                })
                .collect(),
            requirements,
        },
    }
}

/// Sign `statement` with `key` into a DSSE envelope.
pub fn seal(statement: &Statement, key: &SigningKey) -> Result<Envelope, AttestError> {
    let payload = serde_json::to_vec(statement).map_err(|e| AttestError::Encode(e.to_string()))?;
    let sig = sign::sign_base64(key, &sign::dsse_pae(PAYLOAD_TYPE, &payload));
    Ok(Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: BASE64.encode(&payload),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig,
        }],
    })
}

/// A public key and the path naming it in messages.
#[derive(Debug, Clone, Copy)]
pub struct PublicKey<'a> {
    pub key: &'a VerifyingKey,
    pub path: &'a str,
}

/// The statement of `envelope` (read from `path`), its signature checked when `key` is
/// given. A signature that does not verify is an error; none checked is the caller's to
/// report.
pub fn open(
    envelope: &Envelope,
    key: Option<PublicKey<'_>>,
    path: &str,
) -> Result<Statement, AttestError> {
    let invalid = |reason: String| AttestError::Invalid {
        path: path.to_string(),
        reason,
    };
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(invalid(format!(
            "payloadType is `{}`, expected {PAYLOAD_TYPE}",
            envelope.payload_type
        )));
    }
    let payload = BASE64
        .decode(envelope.payload.as_bytes())
        .map_err(|e| invalid(format!("payload is not base64: {e}")))?;
    if let Some(k) = key {
        if envelope.signatures.is_empty() {
            return Err(invalid("it carries no signature".into()));
        }
        let pae = sign::dsse_pae(&envelope.payload_type, &payload);
        // One valid signature by the key is enough, as in DSSE.
        let mut last = None;
        for s in &envelope.signatures {
            match sign::verify(k.key, &pae, s.sig.as_bytes(), path, "its statement", k.path) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e.into());
        }
    }
    let statement: Statement = serde_json::from_slice(&payload)
        .map_err(|e| invalid(format!("the statement cannot be read: {e}")))?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != PREDICATE_TYPE {
        return Err(invalid(format!(
            "statement type `{}` with predicate `{}`, expected {STATEMENT_TYPE} with {PREDICATE_TYPE}",
            statement.statement_type, statement.predicate_type
        )));
    }
    Ok(statement)
}

/// One way a directory or submission differs from what was attested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The file (and, for PRODUCT.yaml, the YAML path) at fault.
    pub file: String,
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Compare `files` (subject name to content, `None` when missing) with the subjects.
pub fn check_digests(
    statement: &Statement,
    files: &BTreeMap<String, Option<Vec<u8>>>,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for s in &statement.subject {
        let Some(expected) = s.sha256() else {
            out.push(Mismatch {
                file: s.name.clone(),
                message: "the attestation records no sha256 for it".into(),
            });
            continue;
        };
        match files.get(&s.name) {
            Some(Some(bytes)) => {
                let actual = sha256_hex(bytes);
                if actual != expected {
                    out.push(Mismatch {
                        file: s.name.clone(),
                        message: format!(
                            "changed after the run: sha256 {} but the attestation records {}",
                            &actual[..12],
                            expected.get(..12).unwrap_or(expected)
                        ),
                    });
                }
            }
            _ => out.push(Mismatch {
                file: s.name.clone(),
                message: "missing: the attestation names it".into(),
            }),
        }
    }
    out
}

/// Compare a PRODUCT.yaml document with the attested requirement statuses. `file` names
/// PRODUCT.yaml in the findings.
pub fn check_statuses(statement: &Statement, product: &Value, file: &str) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let p = &statement.predicate;
    let Some(checklist) = &p.checklist else {
        out.push(Mismatch {
            file: file.into(),
            message: "the attested run reported against no AI conformance checklist".into(),
        });
        return out;
    };
    let version = product
        .pointer("/metadata/kubernetesVersion")
        .or_else(|| product.pointer("/metadata/kubernetes_version"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if version.trim_start_matches('v') != checklist.version {
        out.push(Mismatch {
            file: format!("{file} metadata.kubernetesVersion"),
            message: format!(
                "is `{version}` but the attested run reported against the {} checklist",
                checklist.version
            ),
        });
    }
    let Some(Value::Object(spec)) = product.get("spec") else {
        out.push(Mismatch {
            file: file.into(),
            message: "has no spec section".into(),
        });
        return out;
    };
    let mut seen = Vec::new();
    for (category, list) in spec {
        for (i, entry) in list.as_array().into_iter().flatten().enumerate() {
            let Some(id) = entry.get("id").and_then(Value::as_str) else {
                continue;
            };
            seen.push(id.to_string());
            let status = entry.get("status").and_then(Value::as_str).unwrap_or("");
            let at = format!("{file} spec.{category}[{i}].status");
            match p.requirements.iter().find(|r| r.id == id) {
                None => out.push(Mismatch {
                    file: at,
                    message: format!(
                        "'{id}' is not a requirement of the attested run's {} checklist",
                        checklist.version
                    ),
                }),
                Some(r) if r.status != status => out.push(Mismatch {
                    file: at,
                    message: format!(
                        "'{id}' is '{status}' but the attested run gives '{}'",
                        r.status
                    ),
                }),
                Some(_) => {}
            }
        }
    }
    for r in &p.requirements {
        if !seen.contains(&r.id) {
            out.push(Mismatch {
                file: file.into(),
                message: format!("requirement '{}' of the attested run is missing", r.id),
            });
        }
    }
    out
}

/// What a run adds to its reports in an attestation.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// The recipe, as YAML.
    pub recipe_yaml: String,
    /// The snapshot of the cluster, as YAML, when the run has one.
    pub snapshot_yaml: Option<String>,
    pub cluster: ClusterIdentity,
}

/// The subjects of a run: recipe, snapshot and the report files of `report_dir`.
pub fn run_files(
    report_dir: &Path,
    context: &RunContext,
) -> Result<Vec<(String, Vec<u8>)>, AttestError> {
    let mut files = vec![(
        RECIPE_FILE.to_string(),
        context.recipe_yaml.clone().into_bytes(),
    )];
    if let Some(s) = &context.snapshot_yaml {
        files.push((SNAPSHOT_FILE.to_string(), s.clone().into_bytes()));
    }
    for name in REPORT_FILES {
        let path = report_dir.join(name);
        files.push((
            name.to_string(),
            std::fs::read(&path).map_err(io("read", &path))?,
        ));
    }
    Ok(files)
}

fn run_record(files: &[(String, Vec<u8>)], origin: &Path) -> Result<RunRecord, AttestError> {
    let path = origin
        .join(crate::report::RESULTS_FILE)
        .display()
        .to_string();
    let bytes = files
        .iter()
        .find(|(n, _)| n == crate::report::RESULTS_FILE)
        .map(|(_, b)| b.as_slice())
        .ok_or_else(|| AttestError::Results {
            path: path.clone(),
            reason: "not found".into(),
        })?;
    serde_json::from_slice(bytes).map_err(|e| AttestError::Results {
        path,
        reason: e.to_string(),
    })
}

/// Attest the run whose reports are in `report_dir`: write its subjects and the signed
/// envelope into `out` (created; may be `report_dir` itself). Returns the envelope's path.
pub fn attest(
    report_dir: &Path,
    out: &Path,
    context: &RunContext,
    key: &SigningKey,
) -> Result<PathBuf, AttestError> {
    let files = run_files(report_dir, context)?;
    let run = run_record(&files, report_dir)?;
    let envelope = seal(&statement(&files, &run, context.cluster.clone()), key)?;
    std::fs::create_dir_all(out).map_err(io("create", out))?;
    for (name, bytes) in &files {
        let path = out.join(name);
        crate::output::write_atomic(&path, bytes).map_err(io("write", &path))?;
    }
    let path = out.join(ENVELOPE_FILE);
    let mut text =
        serde_json::to_string_pretty(&envelope).map_err(|e| AttestError::Encode(e.to_string()))?;
    text.push('\n');
    crate::output::write_atomic(&path, text.as_bytes()).map_err(io("write", &path))?;
    Ok(path)
}

/// Whether `dir` holds an attestation.
pub fn is_attested(dir: &Path) -> bool {
    dir.join(ENVELOPE_FILE).is_file()
}

/// Read the envelope of `dir`.
pub fn read_envelope(dir: &Path) -> Result<Envelope, AttestError> {
    let path = dir.join(ENVELOPE_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AttestError::NotAttested {
                dir: dir.display().to_string(),
            });
        }
        Err(e) => return Err(io("read", &path)(e)),
    };
    serde_json::from_slice(&text).map_err(|e| AttestError::Invalid {
        path: path.display().to_string(),
        reason: format!("not a DSSE envelope: {e}"),
    })
}

/// The subject names of the attestation in `dir`, its signature not checked: what a
/// submission copies.
pub fn subject_names(dir: &Path) -> Result<Vec<String>, AttestError> {
    let path = dir.join(ENVELOPE_FILE).display().to_string();
    let statement = open(&read_envelope(dir)?, None, &path)?;
    for s in &statement.subject {
        crate::bundle::check_bundle_path(&s.name).map_err(|e| AttestError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(statement.subject.into_iter().map(|s| s.name).collect())
}

/// What `evidence verify` found.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The attestation directory.
    pub dir: PathBuf,
    pub statement: Statement,
    /// The key the signature was checked with; `None`: not checked.
    pub key: Option<String>,
    /// Each makes verification fail.
    pub mismatches: Vec<Mismatch>,
    /// The PRODUCT.yaml compared, if any.
    pub product: Option<PathBuf>,
}

impl Verified {
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Check the attestation in `dir`: its signature (with `key`), and every subject's digest.
pub fn verify_dir(dir: &Path, key: Option<PublicKey<'_>>) -> Result<Verified, AttestError> {
    let envelope = read_envelope(dir)?;
    let path = dir.join(ENVELOPE_FILE).display().to_string();
    let statement = open(&envelope, key, &path)?;
    let mut files = BTreeMap::new();
    for s in &statement.subject {
        crate::bundle::check_bundle_path(&s.name).map_err(|e| AttestError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let file = dir.join(&s.name);
        let content = match std::fs::read(&file) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io("read", &file)(e)),
        };
        files.insert(s.name.clone(), content);
    }
    let mismatches = check_digests(&statement, &files)
        .into_iter()
        .map(|m| Mismatch {
            file: dir.join(&m.file).display().to_string(),
            ..m
        })
        .collect();
    Ok(Verified {
        dir: dir.to_path_buf(),
        statement,
        key: key.map(|k| k.path.to_string()),
        mismatches,
        product: None,
    })
}

/// The directory of a submission that holds its run evidence.
pub fn submission_results(product_dir: &Path) -> PathBuf {
    product_dir.join(RESULTS_DIR)
}

/// Check a submission (`PRODUCT.yaml`): the attestation in its `results/` as
/// [`verify_dir`] does, and that every requirement's status is the attested one.
pub fn verify_submission(
    product_file: &Path,
    key: Option<PublicKey<'_>>,
) -> Result<Verified, AttestError> {
    let product_dir = product_file.parent().unwrap_or(Path::new("."));
    let mut v = verify_dir(&submission_results(product_dir), key)?;
    let text = std::fs::read_to_string(product_file).map_err(io("read", product_file))?;
    let doc: Value =
        crate::yaml::from_str(&text, &product_file.display().to_string()).map_err(|e| {
            AttestError::Invalid {
                path: product_file.display().to_string(),
                reason: e.to_string(),
            }
        })?;
    v.mismatches.extend(check_statuses(
        &v.statement,
        &doc,
        &product_file.display().to_string(),
    ));
    v.product = Some(product_file.to_path_buf());
    Ok(v)
}

/// Run evidence as an OCI artifact: the attestation directory (envelope and subjects) as one
/// deterministic tar.gz layer, packed as bundles are.
pub const EVIDENCE_ARTIFACT: crate::bundle::oci::ArtifactKind = crate::bundle::oci::ArtifactKind {
    artifact_type: "application/vnd.aiconform.evidence.v1",
    layer_media_type: "application/vnd.aiconform.evidence.layer.v1.tar+gzip",
    title: "evidence.tar.gz",
    what: "aiconform run evidence",
};

/// The envelope and subjects of the attestation in `dir`, for an OCI push.
pub fn evidence_files(dir: &Path) -> Result<crate::bundle::Bundle, AttestError> {
    let mut names = subject_names(dir)?;
    names.push(ENVELOPE_FILE.to_string());
    let mut files = BTreeMap::new();
    for name in names {
        let path = dir.join(&name);
        let content = std::fs::read(&path).map_err(io("read", &path))?;
        files.insert(
            name,
            crate::bundle::BundleFile {
                content,
                executable: false,
            },
        );
    }
    Ok(crate::bundle::Bundle { files })
}

/// Push the attestation directory `dir` to `reference` (`oci://...`).
pub async fn push(
    dir: &Path,
    reference: &str,
    opts: &crate::bundle::oci::RegistryOptions,
) -> Result<crate::bundle::oci::Pushed, AttestError> {
    let files = evidence_files(dir)?;
    let path = dir.join(ENVELOPE_FILE).display().to_string();
    let statement = open(&read_envelope(dir)?, None, &path)?;
    let p = &statement.predicate;
    let annotations = [
        ("dev.aiconform.run".to_string(), p.run_id.clone()),
        ("dev.aiconform.recipe".into(), p.recipe.clone()),
        (
            "dev.aiconform.tool.version".into(),
            p.aiconform_version.clone(),
        ),
    ]
    .into();
    Ok(
        crate::bundle::oci::push_files(&EVIDENCE_ARTIFACT, &files, &annotations, reference, opts)
            .await?,
    )
}

/// Run evidence pulled into a temporary directory, removed on drop.
pub struct PulledEvidence {
    pub dir: PathBuf,
    pub digest: String,
    _tmp: tempfile::TempDir,
}

/// Pull the run evidence at `reference` into a temporary directory, to verify it.
pub async fn pull_to_dir(
    reference: &str,
    opts: &crate::bundle::oci::RegistryOptions,
) -> Result<PulledEvidence, AttestError> {
    let (files, digest) =
        crate::bundle::oci::pull_files(&EVIDENCE_ARTIFACT, reference, opts).await?;
    let tmp = tempfile::Builder::new()
        .prefix("aiconform-oci-evidence-")
        .tempdir()
        .map_err(io("create a directory in", &std::env::temp_dir()))?;
    let dir = tmp.path().join("evidence");
    files
        .write_to(&dir, false)
        .map_err(crate::bundle::oci::OciError::from)?;
    Ok(PulledEvidence {
        dir,
        digest,
        _tmp: tmp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{ConformanceRun, Version};
    use crate::report::results::CaseRecord;
    use crate::runner::case::Phase;
    use crate::runner::result::Status;

    fn run() -> RunRecord {
        let case = |id: &str, req: &str, status: Status| CaseRecord {
            id: id.into(),
            suite: "conformance".into(),
            phase: Phase::Conformance,
            description: String::new(),
            requirement: Some(req.into()),
            level: None,
            status,
            message: "m".into(),
            duration_seconds: 1.0,
            timeout_seconds: 1.0,
            attempts: vec![],
            api_writes: vec![],
            api_writes_left_out: 0,
        };
        RunRecord {
            api_version: String::new(),
            kind: String::new(),
            tool_version: "0.1.0".into(),
            recipe: "r".into(),
            run_id: "id".into(),
            started_ms: 0,
            finished_ms: 1000,
            interrupted: false,
            cluster_version: Some("v1.37.1".into()),
            ai_conformance: Some(ConformanceRun::new(Version::new(1, 37), "test")),
            cases: vec![
                case(
                    "conformance/gang-scheduling",
                    "gang_scheduling",
                    Status::Passed,
                ),
                case(
                    "conformance/inference-gateway",
                    "ai_inference",
                    Status::Failed,
                ),
            ],
            warnings: vec![],
        }
    }

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("recipe.yaml".into(), b"name: r\n".to_vec()),
            ("junit.xml".into(), b"<testsuites/>".to_vec()),
        ]
    }

    #[test]
    fn statement_records_digests_cluster_and_verdicts() {
        let cluster = ClusterIdentity {
            kube_system_uid: Some("uid-1".into()),
            ..Default::default()
        };
        let s = statement(&files(), &run(), cluster);
        assert_eq!(
            s.subject[0].sha256(),
            Some(sha256_hex(b"name: r\n").as_str())
        );
        assert_eq!(
            s.predicate.cluster.kubernetes_version.as_deref(),
            Some("v1.37.1")
        );
        assert_eq!(
            s.predicate.cluster.kube_system_uid.as_deref(),
            Some("uid-1")
        );
        assert_eq!(s.predicate.checklist.as_ref().unwrap().version, "1.37");
        assert_eq!(s.predicate.cases[1].status, "failed");
        let status = |id: &str| {
            s.predicate
                .requirements
                .iter()
                .find(|r| r.id == id)
                .unwrap()
                .status
                .clone()
        };
        assert_eq!(status("gang_scheduling"), "Implemented");
        assert_eq!(status("ai_inference"), "Not Implemented");
        assert_eq!(status("workload_sandboxing"), "");
        assert_eq!(s.predicate.requirements.len(), 15);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["_type"], STATEMENT_TYPE);
        assert_eq!(json["subject"][1]["name"], "junit.xml");
    }

    #[test]
    fn sealed_statements_open_only_with_their_key_and_unchanged() {
        let (private, public) = sign::generate_key_pair();
        let sk = sign::parse_private_key(&private, "k").unwrap();
        let vk = sign::parse_public_key(&public, "p").unwrap();
        let key = PublicKey {
            key: &vk,
            path: "p.pub",
        };
        let s = statement(&files(), &run(), ClusterIdentity::default());
        let env = seal(&s, &sk).unwrap();
        assert_eq!(open(&env, Some(key), "a").unwrap(), s);
        assert_eq!(open(&env, None, "a").unwrap(), s);
        // A verdict changed in the payload: the signature no longer matches.
        let mut payload: Value =
            serde_json::from_slice(&BASE64.decode(&env.payload).unwrap()).unwrap();
        payload["predicate"]["cases"][1]["status"] = "passed".into();
        let forged = Envelope {
            payload: BASE64.encode(serde_json::to_vec(&payload).unwrap()),
            ..env.clone()
        };
        let e = open(&forged, Some(key), "a.json").unwrap_err();
        assert!(
            matches!(e, AttestError::Signature(SignError::Mismatch { .. })),
            "{e}"
        );
        let unsigned = Envelope {
            signatures: vec![],
            ..env
        };
        assert!(open(&unsigned, Some(key), "a").is_err());
    }

    #[test]
    fn digests_and_statuses_name_what_differs() {
        let s = statement(&files(), &run(), ClusterIdentity::default());
        let mut found: BTreeMap<String, Option<Vec<u8>>> =
            files().into_iter().map(|(n, b)| (n, Some(b))).collect();
        assert!(check_digests(&s, &found).is_empty());
        found.insert("junit.xml".into(), Some(b"<testsuites/ >".to_vec()));
        found.insert("recipe.yaml".into(), None);
        let m: Vec<String> = check_digests(&s, &found)
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert!(m[0].starts_with("recipe.yaml: missing"), "{m:?}");
        assert!(
            m[1].starts_with("junit.xml: changed after the run"),
            "{m:?}"
        );

        let mut doc = serde_json::json!({"metadata": {"kubernetesVersion": "v1.37"}, "spec": {}});
        let spec = doc["spec"].as_object_mut().unwrap();
        for r in &s.predicate.requirements {
            let entry = serde_json::json!({"id": r.id, "status": r.status});
            spec.entry("all")
                .or_insert_with(|| Value::Array(vec![]))
                .as_array_mut()
                .unwrap()
                .push(entry);
        }
        assert!(check_statuses(&s, &doc, "P.yaml").is_empty());
        let i = s
            .predicate
            .requirements
            .iter()
            .position(|r| r.id == "ai_inference")
            .unwrap();
        doc["spec"]["all"][i]["status"] = "Implemented".into();
        let m = check_statuses(&s, &doc, "P.yaml");
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0].to_string(),
            format!(
                "P.yaml spec.all[{i}].status: 'ai_inference' is 'Implemented' but the attested run gives 'Not Implemented'"
            )
        );
    }
}
