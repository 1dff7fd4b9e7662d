//! Run results kept in the cluster, and gathered from many.
//!
//! `aiconform run --report-configmap NAMESPACE/NAME` stores a run's reports in one ConfigMap
//! (`junit.xml`, `ctrf.json`, `results.json`), the snapshot the run took (the baseline of the
//! next run) and the drift from the previous run's snapshot (`drift.json`, a
//! [`crate::diff::compare::SnapshotDiff`]). The ConfigMap is labelled
//! `aiconform.dev/purpose=run-results` and `aiconform.dev/member=<member>`, so the runs of
//! many clusters written into one namespace are found by label: [`report`] turns them into
//! one table and one JUnit document (a testsuite per member), [`metrics`] into Prometheus
//! text. A run that could not produce reports records its error under `error`, keeping the
//! previous run's reports and snapshot.
//!
//! Layout and rendering are pure ([`results_configmap`], [`parse_configmap`]); [`write`],
//! [`read`] and [`list`] are the API calls.

pub mod metrics;
pub mod report;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::diff::compare::SnapshotDiff;
use crate::report::results::RunRecord;
use crate::snapshot::configmap as layout;

/// Label whose value `run-results` marks result ConfigMaps.
pub const PURPOSE_LABEL: &str = "aiconform.dev/purpose";
pub const PURPOSE: &str = "run-results";
/// Label naming the cluster (fleet member) whose run a ConfigMap holds.
pub const MEMBER_LABEL: &str = "aiconform.dev/member";
/// Annotation: when the stored run finished (RFC 3339) or the error was recorded.
pub const UPDATED_ANNOTATION: &str = "aiconform.dev/updated-at";
/// Key of the drift from the previous run's snapshot.
pub const DRIFT_KEY: &str = "drift.json";
/// Key of the error of a run that produced no reports.
pub const ERROR_KEY: &str = "error";
/// The API server refuses objects above 1 MiB; the reports must fit one ConfigMap together
/// with the metadata (kept under 4 KiB here).
pub const MAX_CONFIGMAP_BYTES: usize = 1024 * 1024 - 4096;
/// Field manager of the server-side applies.
pub const FIELD_MANAGER: &str = "aiconform";

/// Keys of the run's reports, in the order they are stored.
pub const REPORT_KEYS: [&str; 3] = [
    crate::report::JUNIT_FILE,
    crate::report::CTRF_FILE,
    crate::report::RESULTS_FILE,
];

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "the run's results for ConfigMap {namespace}/{name} are {size} bytes, over the {limit}-byte limit of a ConfigMap (largest: {largest}); select fewer cases (--phase, --include) or keep the reports in --report-dir only"
    )]
    TooLarge {
        namespace: String,
        name: String,
        size: usize,
        limit: usize,
        largest: String,
    },
    #[error("Kubernetes API error while {what}: {message}")]
    Api { what: String, message: String },
    #[error("ConfigMap {namespace}/{name} is not a result ConfigMap: {message}")]
    Invalid {
        namespace: String,
        name: String,
        message: String,
    },
    #[error(
        "invalid member name `{0}`: it labels the ConfigMap, so it must be a label value (at most 63 letters, digits, `-`, `_`, `.`, starting and ending alphanumeric)"
    )]
    Member(String),
    #[error(transparent)]
    Oci(#[from] crate::bundle::oci::OciError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// `NAMESPACE/NAME` of a result ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapRef {
    pub namespace: String,
    pub name: String,
}

impl std::str::FromStr for ConfigMapRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ns, name) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected NAMESPACE/NAME"))?;
        if !crate::name::is_dns_label(ns) {
            return Err(format!(
                "`{ns}` is not a namespace name (a DNS label: lowercase letters, digits, `-`)"
            ));
        }
        if !crate::name::is_dns_subdomain(name) {
            return Err(format!(
                "`{name}` is not a ConfigMap name (a DNS subdomain: lowercase letters, digits, `-`, `.`)"
            ));
        }
        Ok(ConfigMapRef {
            namespace: ns.into(),
            name: name.into(),
        })
    }
}

impl std::fmt::Display for ConfigMapRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What a result ConfigMap holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    /// Report file name → content.
    pub reports: BTreeMap<String, String>,
    /// The snapshot the run took, as YAML (the next run's drift baseline).
    pub snapshot: Option<String>,
    pub drift: Option<SnapshotDiff>,
    pub error: Option<String>,
}

/// The ConfigMap of a run, checked against the size limit.
pub fn results_configmap(
    at: &ConfigMapRef,
    member: &str,
    updated_at: &str,
    contents: &Contents,
) -> Result<ConfigMap, FleetError> {
    if !crate::name::is_label_value(member) {
        return Err(FleetError::Member(member.into()));
    }
    let mut data: BTreeMap<String, String> = contents.reports.clone();
    let mut binary: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Some(d) = &contents.drift {
        let text = serde_json::to_string_pretty(d)
            .map_err(|e| FleetError::Internal(format!("encoding the drift: {e}")))?;
        data.insert(DRIFT_KEY.into(), text + "\n");
    }
    if let Some(e) = &contents.error {
        data.insert(ERROR_KEY.into(), e.clone());
    }
    if let Some(snap) = &contents.snapshot {
        // The snapshot layout's single-ConfigMap form: text, or gzipped when large.
        let mut parts = layout::encode(&at.name, snap);
        let part = parts.swap_remove(0);
        data.extend(part.data);
        binary.extend(part.binary_data);
    }
    let size = stored_size(&data, &binary);
    if size > MAX_CONFIGMAP_BYTES {
        let largest = data
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .chain(
                binary
                    .iter()
                    .map(|(k, v)| (k.clone(), v.len().div_ceil(3) * 4)),
            )
            .max_by_key(|(_, n)| *n)
            .map(|(k, n)| format!("{k}, {n} bytes"))
            .unwrap_or_default();
        return Err(FleetError::TooLarge {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            size,
            limit: MAX_CONFIGMAP_BYTES,
            largest,
        });
    }
    use base64::Engine as _;
    let binary: BTreeMap<&String, String> = binary
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": at.name,
            "namespace": at.namespace,
            "labels": {
                crate::snapshot::job::MANAGED_BY.0: crate::snapshot::job::MANAGED_BY.1,
                PURPOSE_LABEL: PURPOSE,
                MEMBER_LABEL: member,
            },
            "annotations": { UPDATED_ANNOTATION: updated_at },
        },
        "data": data,
        "binaryData": binary,
    }))
    .map_err(|e| FleetError::Internal(e.to_string()))
}

/// Bytes the ConfigMap's payload takes in the API request (binary data base64-encoded).
fn stored_size(data: &BTreeMap<String, String>, binary: &BTreeMap<String, Vec<u8>>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + binary
            .iter()
            .map(|(k, v)| k.len() + v.len().div_ceil(3) * 4)
            .sum::<usize>()
}

/// A result ConfigMap as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub namespace: String,
    pub name: String,
    pub member: String,
    pub updated_at: String,
    pub contents: Contents,
}

impl Stored {
    /// The run record (`results.json`), when the ConfigMap has one.
    pub fn record(&self) -> Result<Option<RunRecord>, FleetError> {
        let Some(text) = self.contents.reports.get(crate::report::RESULTS_FILE) else {
            return Ok(None);
        };
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| FleetError::Invalid {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                message: format!("{} does not parse: {e}", crate::report::RESULTS_FILE),
            })
    }
}

/// Read a result ConfigMap's contents.
pub fn parse_configmap(cm: &ConfigMap) -> Result<Stored, FleetError> {
    let namespace = cm.metadata.namespace.clone().unwrap_or_default();
    let name = cm.metadata.name.clone().unwrap_or_default();
    let invalid = |message: String| FleetError::Invalid {
        namespace: namespace.clone(),
        name: name.clone(),
        message,
    };
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    if labels.get(PURPOSE_LABEL).map(String::as_str) != Some(PURPOSE) {
        return Err(invalid(format!("no label {PURPOSE_LABEL}={PURPOSE}")));
    }
    let member = labels.get(MEMBER_LABEL).cloned().unwrap_or_default();
    let data = cm.data.clone().unwrap_or_default();
    let binary: BTreeMap<String, Vec<u8>> = cm
        .binary_data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let reports = REPORT_KEYS
        .iter()
        .filter_map(|k| data.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let drift = data
        .get(DRIFT_KEY)
        .map(|t| serde_json::from_str::<SnapshotDiff>(t))
        .transpose()
        .map_err(|e| invalid(format!("{DRIFT_KEY} does not parse: {e}")))?;
    let snapshot = if data.contains_key(layout::TEXT_KEY) || binary.contains_key(layout::GZIP_KEY) {
        let part = layout::Part {
            name: name.clone(),
            data: data.clone(),
            binary_data: binary,
            annotations: BTreeMap::new(),
            part_of: None,
        };
        Some(layout::decode(&[part]).map_err(|e| invalid(e.to_string()))?)
    } else {
        None
    };
    Ok(Stored {
        updated_at: cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(UPDATED_ANNOTATION))
            .cloned()
            .unwrap_or_default(),
        namespace: namespace.clone(),
        name: name.clone(),
        member,
        contents: Contents {
            reports,
            snapshot,
            drift,
            error: data.get(ERROR_KEY).cloned(),
        },
    })
}

fn api_err(what: String) -> impl FnOnce(kube::Error) -> FleetError {
    move |e| FleetError::Api {
        what,
        message: crate::snapshot::kube_message(&e),
    }
}

/// Create or replace the ConfigMap (server-side apply; keys of an earlier write that this one
/// lacks are removed).
pub async fn write(client: &kube::Client, cm: &ConfigMap) -> Result<(), FleetError> {
    let ns = cm.metadata.namespace.clone().unwrap_or_default();
    let name = cm.metadata.name.clone().unwrap_or_default();
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(cm),
        )
        .await
        .map_err(api_err(format!(
            "writing the run's results to ConfigMap {ns}/{name} (does namespace {ns} exist, and may this identity create and patch ConfigMaps there?)"
        )))?;
    Ok(())
}

/// The result ConfigMap at `at`, `None` when there is none yet.
pub async fn read(client: &kube::Client, at: &ConfigMapRef) -> Result<Option<Stored>, FleetError> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &at.namespace)
        .get_opt(&at.name)
        .await
        .map_err(api_err(format!(
            "reading the previous results in ConfigMap {at}"
        )))?;
    cm.as_ref().map(parse_configmap).transpose()
}

/// Every result ConfigMap of `namespace`, sorted by member then name.
pub async fn list(client: &kube::Client, namespace: &str) -> Result<Vec<Stored>, FleetError> {
    let cms = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{PURPOSE_LABEL}={PURPOSE}")))
        .await
        .map_err(api_err(format!(
            "listing result ConfigMaps ({PURPOSE_LABEL}={PURPOSE}) in namespace {namespace}"
        )))?;
    let mut out = cms
        .items
        .iter()
        .map(parse_configmap)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| (&a.member, &a.name).cmp(&(&b.member, &b.name)));
    Ok(out)
}

/// A run's results as an OCI artifact: the stored keys as one deterministic tar.gz layer,
/// packed as bundles are.
pub const RESULTS_ARTIFACT: crate::bundle::oci::ArtifactKind = crate::bundle::oci::ArtifactKind {
    artifact_type: "application/vnd.aiconform.results.v1",
    layer_media_type: "application/vnd.aiconform.results.layer.v1.tar+gzip",
    title: "results.tar.gz",
    what: "aiconform run results",
};

/// The files of the artifact: the reports, `drift.json`, `snapshot.yaml` and `error`, as
/// the ConfigMap holds them.
pub fn artifact_files(contents: &Contents) -> Result<crate::bundle::Bundle, FleetError> {
    let mut files: BTreeMap<String, String> = contents.reports.clone();
    if let Some(d) = &contents.drift {
        let text = serde_json::to_string_pretty(d)
            .map_err(|e| FleetError::Internal(format!("encoding the drift: {e}")))?;
        files.insert(DRIFT_KEY.into(), text + "\n");
    }
    if let Some(s) = &contents.snapshot {
        files.insert(layout::TEXT_KEY.into(), s.clone());
    }
    if let Some(e) = &contents.error {
        files.insert(ERROR_KEY.into(), e.clone());
    }
    Ok(crate::bundle::Bundle {
        files: files
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    crate::bundle::BundleFile {
                        content: v.into_bytes(),
                        executable: false,
                    },
                )
            })
            .collect(),
    })
}

/// Push the results to `reference` (`oci://REGISTRY/REPO[:TAG]`), annotated with the member
/// and, when there is one, the run's id and recipe.
pub async fn push_oci(
    contents: &Contents,
    member: &str,
    reference: &str,
    opts: &crate::bundle::oci::RegistryOptions,
) -> Result<crate::bundle::oci::Pushed, FleetError> {
    let files = artifact_files(contents)?;
    let mut annotations: BTreeMap<String, String> =
        [("dev.aiconform.member".to_string(), member.to_string())].into();
    if let Some(text) = contents.reports.get(crate::report::RESULTS_FILE)
        && let Ok(r) = serde_json::from_str::<RunRecord>(text)
    {
        annotations.insert("dev.aiconform.run".into(), r.run_id);
        annotations.insert("dev.aiconform.recipe".into(), r.recipe);
        annotations.insert("dev.aiconform.tool.version".into(), r.tool_version);
    }
    Ok(
        crate::bundle::oci::push_files(&RESULTS_ARTIFACT, &files, &annotations, reference, opts)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> ConfigMapRef {
        "aiconform/results".parse().unwrap()
    }

    #[test]
    fn configmap_refs() {
        assert_eq!(
            at(),
            ConfigMapRef {
                namespace: "aiconform".into(),
                name: "results".into()
            }
        );
        assert!("results".parse::<ConfigMapRef>().is_err());
        assert!("Bad/results".parse::<ConfigMapRef>().is_err());
        assert!("ns/Bad_name".parse::<ConfigMapRef>().is_err());
        assert_eq!(at().to_string(), "aiconform/results");
    }

    fn contents() -> Contents {
        Contents {
            reports: [
                ("junit.xml".to_string(), "<testsuites/>\n".to_string()),
                ("results.json".to_string(), "{}".to_string()),
            ]
            .into(),
            snapshot: Some("kind: Snapshot\n".into()),
            drift: None,
            error: None,
        }
    }

    #[test]
    fn round_trip_with_labels_and_snapshot() {
        let cm = results_configmap(&at(), "east", "2026-01-02T03:04:05Z", &contents()).unwrap();
        let labels = cm.metadata.labels.clone().unwrap();
        assert_eq!(labels[PURPOSE_LABEL], PURPOSE);
        assert_eq!(labels[MEMBER_LABEL], "east");
        let data = cm.data.clone().unwrap();
        assert_eq!(data[layout::TEXT_KEY], "kind: Snapshot\n");
        let back = parse_configmap(&cm).unwrap();
        assert_eq!(back.member, "east");
        assert_eq!(back.updated_at, "2026-01-02T03:04:05Z");
        assert_eq!(back.contents, contents());
    }

    #[test]
    fn large_snapshots_are_gzipped_and_read_back() {
        let mut c = contents();
        let big: String = (0..60_000).map(|i| format!("fact{i}: {i}\n")).collect();
        assert!(big.len() > 768 * 1024);
        c.snapshot = Some(big.clone());
        let cm = results_configmap(&at(), "east", "t", &c).unwrap();
        assert!(
            cm.binary_data
                .as_ref()
                .unwrap()
                .contains_key(layout::GZIP_KEY)
        );
        assert_eq!(
            parse_configmap(&cm).unwrap().contents.snapshot.as_deref(),
            Some(big.as_str())
        );
    }

    #[test]
    fn over_the_limit_is_an_error_naming_the_largest_key() {
        let mut c = contents();
        c.reports
            .insert("ctrf.json".into(), "x".repeat(MAX_CONFIGMAP_BYTES));
        let err = results_configmap(&at(), "east", "t", &c).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FleetError::TooLarge { .. }), "{msg}");
        assert!(msg.contains("aiconform/results"), "{msg}");
        assert!(msg.contains("largest: ctrf.json"), "{msg}");
    }

    #[test]
    fn artifact_holds_what_the_configmap_holds() {
        let files = artifact_files(&contents()).unwrap();
        let names: Vec<&str> = files.files.keys().map(String::as_str).collect();
        assert_eq!(names, ["junit.xml", "results.json", "snapshot.yaml"]);
        assert_eq!(files.files["junit.xml"].content, b"<testsuites/>\n");
    }

    #[test]
    fn bad_member_and_foreign_configmaps_are_refused() {
        assert!(matches!(
            results_configmap(&at(), "not/ok", "t", &contents()),
            Err(FleetError::Member(_))
        ));
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "y"}, "data": {}
        }))
        .unwrap();
        let err = parse_configmap(&cm).unwrap_err().to_string();
        assert!(err.contains("y/x") && err.contains(PURPOSE_LABEL), "{err}");
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// A result ConfigMap of `member` holding `results` as its `results.json`.
    pub(crate) fn stored(member: &str, results: &str) -> Stored {
        Stored {
            namespace: "fleet".into(),
            name: format!("results-{member}"),
            member: member.into(),
            updated_at: "2026-01-02T03:04:05Z".into(),
            contents: Contents {
                reports: [("results.json".to_string(), results.to_string())].into(),
                ..Contents::default()
            },
        }
    }

    /// A run record: one passed, one failed (with a quote in its id), one skipped case.
    pub(crate) const RESULTS: &str = r#"{
      "apiVersion": "aiconform.dev/v1alpha1", "kind": "RunResults", "toolVersion": "0.1.0",
      "recipe": "demo", "runId": "r1", "startedMs": 1767323000000, "finishedMs": 1767323045250,
      "interrupted": false,
      "cases": [
        {"id": "readiness/k8s-version", "suite": "readiness", "phase": "readiness",
         "description": "d", "status": "passed", "message": "ok", "durationSeconds": 0.1,
         "timeoutSeconds": 10},
        {"id": "readiness/gpu \"model\"", "suite": "readiness", "phase": "readiness",
         "description": "d", "status": "failed", "message": "no <H100>", "durationSeconds": 0.25,
         "timeoutSeconds": 10},
        {"id": "conformance/gpu-sharing", "suite": "conformance", "phase": "conformance",
         "description": "d", "status": "skipped", "message": "not in 1.34",
         "durationSeconds": 0, "timeoutSeconds": 10}
      ]
    }"#;
}
