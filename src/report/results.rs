//! `results.json`: the machine-readable record of a run — every case with its requirement,
//! level, status, messages, attempts and timings, plus the run, recipe, cluster and
//! checklist it ran against. `aiconform submission write` reads it back, so it carries
//! everything a submission's evidence states.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ReportError;
use crate::conformance::ConformanceRun;
use crate::runner::audit::ApiWrite;
use crate::runner::case::Phase;
use crate::runner::result::{CaseResult, Failure, RunReport, Status};

pub const API_VERSION: &str = "aiconform.dev/v1alpha1";
pub const KIND: &str = "RunResults";

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub api_version: String,
    pub kind: String,
    pub tool_version: String,
    pub recipe: String,
    pub run_id: String,
    /// Unix milliseconds.
    pub started_ms: u64,
    pub finished_ms: u64,
    pub interrupted: bool,
    /// The cluster's Kubernetes version (`gitVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_conformance: Option<ConformanceRun>,
    pub cases: Vec<CaseRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseRecord {
    pub id: String,
    pub suite: String,
    pub phase: Phase,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// The requirement's level in the run's checklist (`MUST`, `MUST (conditional)`,
    /// `SHOULD`, `not in 1.36`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    pub status: Status,
    /// Pass detail, failure reason or skip reason: what the case observed.
    pub message: String,
    pub duration_seconds: f64,
    pub timeout_seconds: f64,
    #[serde(default)]
    pub attempts: Vec<AttemptRecord>,
    /// Creates, updates, patches and deletes the case sent, with the API server's status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_writes: Vec<ApiWrite>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub api_writes_left_out: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub status: Status,
    pub message: String,
    pub duration_seconds: f64,
    /// How a failed attempt failed: assertion, error, panic or timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl CaseRecord {
    fn from_result(r: &CaseResult, conformance: Option<&ConformanceRun>) -> Self {
        let requirement = r.spec.requirement.clone();
        let level = match (&requirement, conformance) {
            (Some(id), Some(c)) => Some(c.level_label(id)),
            _ => None,
        };
        CaseRecord {
            id: r.spec.id.clone(),
            suite: r.spec.suite.clone(),
            phase: r.spec.phase,
            description: r.spec.description.clone(),
            requirement,
            level,
            status: r.status,
            message: r.message.clone(),
            duration_seconds: r.duration.as_secs_f64(),
            timeout_seconds: r.spec.timeout.as_secs_f64(),
            attempts: r
                .attempts
                .iter()
                .map(|a| AttemptRecord {
                    status: a.status,
                    message: a.message.clone(),
                    duration_seconds: a.duration.as_secs_f64(),
                    failure: a.failure,
                })
                .collect(),
            api_writes: r.writes.clone(),
            api_writes_left_out: r.writes_left_out,
        }
    }
}

impl RunRecord {
    pub fn from_report(report: &RunReport) -> Self {
        RunRecord {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            tool_version: report.tool_version.clone(),
            recipe: report.recipe.clone(),
            run_id: report.run_id.clone(),
            started_ms: report.started_ms,
            finished_ms: report.finished_ms,
            interrupted: report.interrupted,
            cluster_version: report.cluster_version.clone(),
            ai_conformance: report.conformance.clone(),
            cases: report
                .results
                .iter()
                .map(|r| CaseRecord::from_result(r, report.conformance.as_ref()))
                .collect(),
            warnings: report.warnings.clone(),
        }
    }

    /// Read `results.json` of a report directory.
    pub fn load(dir: &Path) -> Result<RunRecord, LoadError> {
        let path = dir.join(super::RESULTS_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let record: RunRecord = serde_json::from_str(&text).map_err(|e| LoadError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if record.kind != KIND {
            return Err(LoadError::Invalid {
                path: path.display().to_string(),
                message: format!("kind is `{}`, expected `{KIND}`", record.kind),
            });
        }
        Ok(record)
    }
}

/// `results.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "cannot read {path}: {source}; point --report-dir at the directory an `aiconform run` wrote"
    )]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an aiconform run record: {message}")]
    Invalid { path: String, message: String },
}

/// The record, pretty-printed.
pub fn render(report: &RunReport) -> Result<String, ReportError> {
    serde_json::to_string_pretty(&RunRecord::from_report(report))
        .map(|s| s + "\n")
        .map_err(|e| ReportError::Render {
            what: "results JSON",
            message: e.to_string(),
        })
}
