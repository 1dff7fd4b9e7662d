//! Snapshots: cluster facts via kube-rs and node facts via the agent (issue 5).
//!
//! - [`model`]: the snapshot document (YAML via [`crate::yaml`]).
//! - [`agent`], [`osrelease`], [`cpu`], [`sysfs`], [`nvml`]: node facts collected by
//!   `aiconform agent`.
//! - [`cluster`]: cluster facts from the API server; [`job`]: running the agent on nodes.
//! - [`message`]: agent reports as termination messages.
//! - [`measure`]: flattening into `Type.subtype.key` measurements for readiness.
//! - [`Location`]: where snapshots are written and read (file, stdout, ConfigMap).

pub mod agent;
pub mod cluster;
pub mod cpu;
pub mod job;
pub mod measure;
pub mod message;
pub mod model;
pub mod nvml;
pub mod osrelease;
pub mod sysfs;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

pub use model::{AgentOutcome, AgentReport, Snapshot};

/// Key of the snapshot inside a ConfigMap.
pub const CONFIGMAP_KEY: &str = "snapshot.yaml";
/// ConfigMaps are limited to 1 MiB in total.
const CONFIGMAP_MAX_BYTES: usize = 1024 * 1024 - 4096;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("Kubernetes API error while {what}: {message}")]
    Api { what: String, message: String },
    #[error("interrupted; deleted the agent namespace {namespace} (no agent runs any more)")]
    Interrupted { namespace: String },
    #[error("invalid snapshot location `{location}`: {message}")]
    Location { location: String, message: String },
    #[error("cannot read snapshot {origin}: {message}")]
    Read { origin: String, message: String },
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error(
        "{origin} is not an aiconform snapshot (kind `{kind}`, apiVersion `{api_version}`); create one with `aiconform snapshot`"
    )]
    NotASnapshot {
        origin: String,
        kind: String,
        api_version: String,
    },
    #[error(
        "snapshot is {bytes} bytes, too large for ConfigMap {location} (limit about 1 MiB); write it to a file instead"
    )]
    TooLarge { location: String, bytes: usize },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Where a snapshot goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Stdout,
    File(PathBuf),
    ConfigMap { namespace: String, name: String },
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(crate::recipe::catalog::is_dns_label)
}

impl Location {
    /// `-`, `cm://namespace/name`, or a file path.
    pub fn parse(text: &str) -> Result<Location, SnapshotError> {
        if text == "-" {
            return Ok(Location::Stdout);
        }
        if let Some(rest) = text.strip_prefix("cm://") {
            let err = |message: &str| SnapshotError::Location {
                location: text.to_string(),
                message: message.to_string(),
            };
            let (ns, name) = rest
                .split_once('/')
                .ok_or_else(|| err("expected cm://NAMESPACE/NAME"))?;
            if !crate::recipe::catalog::is_dns_label(ns) {
                return Err(err(
                    "the namespace must be a DNS label (lowercase letters, digits, `-`)",
                ));
            }
            if !is_dns_subdomain(name) {
                return Err(err(
                    "the ConfigMap name must be a DNS subdomain (lowercase letters, digits, `-`, `.`)",
                ));
            }
            return Ok(Location::ConfigMap {
                namespace: ns.to_string(),
                name: name.to_string(),
            });
        }
        if text.is_empty() {
            return Err(SnapshotError::Location {
                location: text.into(),
                message: "empty; give a file, `-` or cm://NAMESPACE/NAME".into(),
            });
        }
        Ok(Location::File(PathBuf::from(text)))
    }

    pub fn needs_cluster(&self) -> bool {
        matches!(self, Location::ConfigMap { .. })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Stdout => f.write_str("-"),
            Location::File(p) => write!(f, "{}", p.display()),
            Location::ConfigMap { namespace, name } => write!(f, "cm://{namespace}/{name}"),
        }
    }
}

/// Parse and check a snapshot document.
pub fn parse(text: &str, origin: &str) -> Result<Snapshot, SnapshotError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Header {
        #[serde(default)]
        kind: String,
        #[serde(default)]
        api_version: String,
    }
    // Check the kind first so a recipe passed by mistake gets a clear message rather than
    // "missing field".
    let header: Header = crate::yaml::from_str(text, origin)?;
    if header.kind != model::SNAPSHOT_KIND || header.api_version != model::API_VERSION {
        return Err(SnapshotError::NotASnapshot {
            origin: origin.into(),
            kind: header.kind,
            api_version: header.api_version,
        });
    }
    Ok(crate::yaml::from_str(text, origin)?)
}

pub fn load_file(path: &Path) -> Result<Snapshot, SnapshotError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| SnapshotError::Read {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| SnapshotError::Read {
        origin: origin.clone(),
        message: format!("not UTF-8 ({e})"),
    })?;
    parse(text, &origin)
}

pub fn render(snapshot: &Snapshot) -> Result<String, SnapshotError> {
    Ok(crate::yaml::to_string(snapshot)?)
}

/// Read a snapshot from a ConfigMap.
pub async fn load_configmap(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Snapshot, SnapshotError> {
    let origin = format!("cm://{namespace}/{name}");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| SnapshotError::Read {
            origin: origin.clone(),
            message: kube_message(&e),
        })?
        .ok_or_else(|| SnapshotError::Read {
            origin: origin.clone(),
            message: "ConfigMap not found".into(),
        })?;
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIGMAP_KEY))
        .ok_or_else(|| SnapshotError::Read {
            origin: origin.clone(),
            message: format!("ConfigMap has no `{CONFIGMAP_KEY}` key"),
        })?;
    parse(text, &origin)
}

/// Create or replace a ConfigMap holding the snapshot (server-side apply).
pub async fn save_configmap(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    text: &str,
) -> Result<(), SnapshotError> {
    let location = format!("cm://{namespace}/{name}");
    if text.len() > CONFIGMAP_MAX_BYTES {
        return Err(SnapshotError::TooLarge {
            location,
            bytes: text.len(),
        });
    }
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { job::MANAGED_BY.0: job::MANAGED_BY.1, "aiconform.dev/purpose": "snapshot" },
        },
        "data": { CONFIGMAP_KEY: text },
    }))
    .map_err(|e| SnapshotError::Internal(e.to_string()))?;
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::apply("aiconform").force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(|e| SnapshotError::Api {
            what: format!("writing {location} (does namespace {namespace} exist?)"),
            message: kube_message(&e),
        })?;
    Ok(())
}

/// A one-line message for a Kubernetes client error (API errors without the debug dump).
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            format!("{} (HTTP {})", s.message, s.code)
        }
        other => other.to_string(),
    }
}

/// Options of [`take`].
#[derive(Debug, Clone, Default)]
pub struct TakeOptions {
    pub node_selector: Option<String>,
    /// `None`: do not run agents (`--no-agent`).
    pub agent: Option<job::AgentJobOptions>,
}

/// Capture a snapshot: cluster facts, then (unless disabled) agents on the selected nodes.
/// Returns the snapshot and warnings for the user (agent cleanup problems, unlisted APIs).
pub async fn take(
    client: &kube::Client,
    opts: &TakeOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(Snapshot, Vec<String>), SnapshotError> {
    let (mut facts, nodes) = cluster::collect(client, opts.node_selector.as_deref()).await?;
    let mut warnings = facts.notes.clone();
    if nodes.is_empty() {
        warnings.push(match &opts.node_selector {
            Some(sel) => {
                format!("no node matches --node-selector {sel}; the snapshot has no node facts")
            }
            None => "the cluster has no nodes; the snapshot has no node facts".into(),
        });
    }
    if let Some(agent_opts) = &opts.agent
        && !nodes.is_empty()
    {
        let targets: Vec<job::AgentTarget> = nodes.iter().map(agent_target).collect();
        let run = job::run_agents(client, &targets, agent_opts, progress).await?;
        if let Some(w) = run.cleanup_warning {
            warnings.push(w);
        }
        for node in &mut facts.nodes {
            if let Some(o) = run.outcomes.get(&node.name) {
                node.agent = o.clone();
            }
        }
    }
    let snapshot = Snapshot {
        api_version: model::API_VERSION.into(),
        kind: model::SNAPSHOT_KIND.into(),
        metadata: model::SnapshotMetadata {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            created_at: now_rfc3339(),
            node_selector: opts.node_selector.clone().unwrap_or_default(),
            agents: opts.agent.is_some(),
        },
        cluster: facts,
    };
    Ok((snapshot, warnings))
}

/// Where and how the agent can run on a node: its taints and allocatable GPUs.
fn agent_target(n: &k8s_openapi::api::core::v1::Node) -> job::AgentTarget {
    job::AgentTarget {
        node: n.metadata.name.clone().unwrap_or_default(),
        taints: n
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default(),
        gpus: n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get("nvidia.com/gpu"))
            .and_then(|q| q.0.parse().ok())
            .unwrap_or(0),
    }
}

/// Current UTC time, RFC 3339 with second precision.
pub fn now_rfc3339() -> String {
    let ts = k8s_openapi::jiff::Timestamp::now();
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(Location::parse("-").unwrap(), Location::Stdout);
        assert_eq!(
            Location::parse("cm://aiconform/snap-1").unwrap(),
            Location::ConfigMap {
                namespace: "aiconform".into(),
                name: "snap-1".into()
            }
        );
        assert_eq!(
            Location::parse("out/snap.yaml").unwrap(),
            Location::File("out/snap.yaml".into())
        );
        for bad in [
            "cm://",
            "cm://ns",
            "cm://NS/x",
            "cm://ns/",
            "cm://ns/a/b",
            "",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Location::parse("cm://a/b").unwrap().to_string(), "cm://a/b");
    }

    #[test]
    fn rejects_other_documents() {
        let err = parse("apiVersion: x\nkind: Recipe\nmetadata: {toolVersion: a}\ncluster: {serverVersion: {gitVersion: v1}, nodes: []}\n", "r.yaml").unwrap_err();
        assert!(
            err.to_string().contains("not an aiconform snapshot"),
            "{err}"
        );
        let err = parse("just: text\n", "t.yaml").unwrap_err();
        assert!(err.to_string().starts_with("t.yaml"), "{err}");
    }

    #[test]
    fn timestamp_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
