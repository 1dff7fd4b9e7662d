//! What a test case is, what it gets, and what it returns. Suites (`src/suites/`) implement
//! cases against this interface; the runner (`src/runner/`) selects, executes and reports them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::recipe::Recipe;
use crate::snapshot::model::Snapshot;

/// Validation phases, in the order a full run executes them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Readiness,
    /// Hardware health of every GPU node from the node agents' readings.
    #[serde(rename = "node-health")]
    #[value(name = "node-health")]
    NodeHealth,
    Deployment,
    Conformance,
    Performance,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Readiness,
        Phase::NodeHealth,
        Phase::Deployment,
        Phase::Conformance,
        Phase::Performance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Readiness => "readiness",
            Phase::NodeHealth => "node-health",
            Phase::Deployment => "deployment",
            Phase::Conformance => "conformance",
            Phase::Performance => "performance",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case as selected from a suite definition: `suites/<suite>.yaml` entry + defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSpec {
    /// `<suite>/<case>`, e.g. `conformance/dra-support`; what filters match against.
    pub id: String,
    pub suite: String,
    /// Implementation name looked up in the registry (usually the case name).
    pub name: String,
    pub phase: Phase,
    pub description: String,
    /// Parameters from the suite file, overlaid with the recipe's `validation` values.
    pub params: serde_json::Value,
    pub timeout: Duration,
    /// Extra attempts for cases declared flaky; a pass after a retry is reported as flaky.
    pub retries: u32,
    pub flaky: bool,
    /// Whether the case needs its own namespace (created before, deleted after).
    pub needs_namespace: bool,
    /// The CNCF AI conformance requirement id this case proves (`gang_scheduling`); its
    /// level comes from the checklist version selected for the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
}

/// Everything a case may use. Cluster-facing cases get a client and, if asked for, a
/// namespace of their own that the runner removes afterwards whatever happens.
#[derive(Clone)]
pub struct CaseContext {
    pub spec: Arc<CaseSpec>,
    pub client: Option<kube::Client>,
    pub recipe: Arc<Recipe>,
    pub snapshot: Option<Arc<Snapshot>>,
    /// The case's namespace when `needs_namespace`.
    pub namespace: Option<String>,
    /// Performance data a case wants in the performance report.
    pub metrics: MetricsSink,
    /// `--fail-fast`: a case evaluating many nodes stops at the first bad one.
    pub fail_fast: bool,
}

impl CaseContext {
    /// The client, or a skip explaining that this case needs a cluster.
    pub fn require_client(&self) -> Result<&kube::Client, Outcome> {
        self.client.as_ref().ok_or_else(|| {
            Outcome::skipped(
                "no cluster target: this case needs --kubeconfig or the embedded cluster",
            )
        })
    }

    /// The case parameter `key`: `None` when absent (or null), an error naming it when its
    /// value is not a `T`, so a typo in a suite or recipe never runs the case with a default.
    pub fn param<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ParamError> {
        match self.spec.params.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|source| ParamError {
                    case: self.spec.id.clone(),
                    key: key.to_string(),
                    value: v.to_string(),
                    source,
                }),
        }
    }
}

/// A case parameter whose value has the wrong type.
#[derive(Debug, thiserror::Error)]
#[error(
    "case {case}: parameter `{key}` = {value}: {source}; fix it in the suite's params or the recipe's validation section"
)]
pub struct ParamError {
    pub case: String,
    pub key: String,
    pub value: String,
    #[source]
    pub source: serde_json::Error,
}

/// Final status of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    /// The run was interrupted (Ctrl-C) before the case finished or started.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
        }
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    Passed {
        message: String,
    },
    Failed {
        message: String,
    },
    /// Could not be evaluated on this target; `reason` says exactly why.
    Skipped {
        reason: String,
    },
}

impl Outcome {
    pub fn passed(message: impl Into<String>) -> Self {
        Outcome::Passed {
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Outcome::Failed {
            message: message.into(),
        }
    }
    pub fn skipped(reason: impl Into<String>) -> Self {
        Outcome::Skipped {
            reason: reason.into(),
        }
    }
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// The async body of a case. Errors are unexpected faults (API errors, bugs); the runner
/// reports them as failures with the message. Expected negative results are `Outcome::Failed`.
pub type CaseFn = fn(CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>>;

/// A named series for the performance report, e.g. NCCL bus bandwidth by message size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    pub case_id: String,
    pub name: String,
    pub x_label: String,
    pub y_label: String,
    pub points: Vec<(f64, f64)>,
    /// Pass threshold drawn on plots, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
}

/// One node's verdict within a case that evaluates every node (node-health); reports show
/// it as `<case>[<node>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeResult {
    pub case_id: String,
    pub node: String,
    pub status: Status,
    pub message: String,
}

/// Scalar measurements and series collected during a run (shared by all cases).
#[derive(Debug, Clone, Default)]
pub struct MetricsSink {
    inner: Arc<Mutex<MetricsData>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsData {
    /// case id -> metric name -> value
    pub values: BTreeMap<String, BTreeMap<String, f64>>,
    pub series: Vec<Series>,
    /// Per-node verdicts of cases that evaluate every node, in evaluation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeResult>,
}

impl MetricsSink {
    pub fn record(&self, case_id: &str, name: &str, value: f64) {
        let mut d = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        d.values
            .entry(case_id.to_string())
            .or_default()
            .insert(name.to_string(), value);
    }

    pub fn series(&self, series: Series) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .series
            .push(series);
    }

    pub fn record_node(&self, result: NodeResult) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .push(result);
    }

    pub fn snapshot(&self) -> MetricsData {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
