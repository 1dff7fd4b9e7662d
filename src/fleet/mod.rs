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
//! Layout and rendering are pure (`configmap`: [`results_configmap`], [`parse_configmap`]);
//! `store` ([`write`], [`read`], [`list`]) makes the API calls, `oci` pushes the artifact.

mod configmap;
pub mod metrics;
mod oci;
pub mod report;
mod store;

pub use configmap::{parse_configmap, results_configmap};
pub use oci::{RESULTS_ARTIFACT, artifact_files, push_oci};
pub use store::{list, read, write};

use std::collections::BTreeMap;

use crate::diff::compare::SnapshotDiff;
use crate::report::results::RunRecord;

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

impl Contents {
    /// The reports, `drift.json` and `error` as text files: what both the ConfigMap and the
    /// OCI artifact hold besides the snapshot.
    pub fn text_files(&self) -> Result<BTreeMap<String, String>, FleetError> {
        let mut files = self.reports.clone();
        if let Some(d) = &self.drift {
            let text = serde_json::to_string_pretty(d)
                .map_err(|e| FleetError::Internal(format!("encoding the drift: {e}")))?;
            files.insert(DRIFT_KEY.into(), text + "\n");
        }
        if let Some(e) = &self.error {
            files.insert(ERROR_KEY.into(), e.clone());
        }
        Ok(files)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    use crate::snapshot::configmap as layout;

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
