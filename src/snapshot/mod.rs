//! Snapshots: cluster facts via kube-rs and node facts via the agent.
//!
//! - [`model`]: the snapshot document (YAML via [`crate::yaml`]).
//! - [`agent`], [`osrelease`], [`cpu`], [`sysfs`], [`nvml`]: node facts collected by
//!   `aiconform agent`.
//! - [`health`]: node-health readings (PCIe, InfiniBand, Xid, nvidia-smi, DCGM).
//! - [`cluster`]: cluster facts from the API server; [`job`]: running the agent on nodes.
//! - [`message`]: agent reports as termination messages.
//! - [`node_class`]: alike nodes written once, as a template and per-node patches.
//! - [`measure`]: flattening into `Type.subtype.key` measurements for readiness.
//! - [`configmap`]: a snapshot's layout over ConfigMaps (plain, gzipped, or split).
//! - [`Location`]: where snapshots are written and read (file, stdout, ConfigMap).

pub mod agent;
pub mod cluster;
pub mod configmap;
pub mod cpu;
pub mod health;
pub mod job;
pub mod measure;
pub mod message;
pub mod model;
pub mod node_class;
pub mod nvml;
pub mod osrelease;
pub mod sysfs;
mod wire;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};

pub use model::{AgentOutcome, AgentReport, Snapshot};

/// Largest snapshot text aiconform reads, from a file or decompressed from ConfigMaps.
pub const MAX_SNAPSHOT_BYTES: usize = crate::yaml::MAX_YAML_BYTES;

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
    #[error("cannot read snapshot {origin}: {source}")]
    Layout {
        origin: String,
        #[source]
        source: configmap::LayoutError,
    },
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
            if !crate::name::is_dns_label(ns) {
                return Err(err(
                    "the namespace must be a DNS label (lowercase letters, digits, `-`)",
                ));
            }
            if !crate::name::is_dns_subdomain(name) {
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
    let not_a_snapshot = |kind: &str, api_version: &str| {
        (kind != model::SNAPSHOT_KIND || api_version != model::API_VERSION).then(|| {
            SnapshotError::NotASnapshot {
                origin: origin.into(),
                kind: kind.into(),
                api_version: api_version.into(),
            }
        })
    };
    match crate::yaml::from_str::<Snapshot>(text, origin) {
        Ok(s) => match not_a_snapshot(&s.kind, &s.api_version) {
            Some(e) => Err(e),
            None => Ok(s),
        },
        Err(e) => {
            // A recipe passed by mistake gets "not a snapshot" rather than "missing field".
            let header: Header = crate::yaml::from_str(text, origin)?;
            Err(not_a_snapshot(&header.kind, &header.api_version).unwrap_or(e.into()))
        }
    }
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

/// Read a snapshot from a ConfigMap (and its part ConfigMaps when it was split).
pub async fn load_configmap(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Snapshot, SnapshotError> {
    let origin = format!("cm://{namespace}/{name}");
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let get = |cm_name: String| {
        let api = api.clone();
        let origin = origin.clone();
        async move {
            let cm = api
                .get_opt(&cm_name)
                .await
                .map_err(|e| SnapshotError::Read {
                    origin: origin.clone(),
                    message: kube_message(&e),
                })?
                .ok_or_else(|| SnapshotError::Read {
                    origin: origin.clone(),
                    message: format!("ConfigMap {namespace}/{cm_name} not found"),
                })?;
            Ok::<_, SnapshotError>(part_of_configmap(cm_name, cm))
        }
    };
    let head = get(name.to_string()).await?;
    let layout = |source| SnapshotError::Layout {
        origin: origin.clone(),
        source,
    };
    let count = configmap::parts_count(&head).map_err(layout)?;
    let mut parts = vec![head];
    for i in 1..count {
        parts.push(get(configmap::part_name(name, i)).await?);
    }
    let text = configmap::decode(&parts).map_err(layout)?;
    parse(&text, &origin)
}

fn part_of_configmap(name: String, cm: ConfigMap) -> configmap::Part {
    configmap::Part {
        name,
        data: cm.data.unwrap_or_default(),
        binary_data: cm
            .binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
        annotations: cm.metadata.annotations.unwrap_or_default(),
        part_of: None,
    }
}

/// Create or replace the ConfigMaps holding the snapshot (server-side apply), parts first so
/// the head never points at parts of an older write; parts an older, larger snapshot left are
/// deleted.
pub async fn save_configmap(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    text: &str,
) -> Result<(), SnapshotError> {
    let location = format!("cm://{namespace}/{name}");
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let parts = configmap::encode(name, text);
    let api_err = |what: String| {
        move |e: kube::Error| SnapshotError::Api {
            what,
            message: kube_message(&e),
        }
    };
    for part in parts.iter().skip(1).chain(parts.first()) {
        let cm = configmap_of_part(namespace, part)?;
        api.patch(
            &part.name,
            &PatchParams::apply("aiconform").force(),
            &Patch::Apply(&cm),
        )
        .await
        .map_err(api_err(format!(
            "writing {location} (does namespace {namespace} exist?)"
        )))?;
    }
    let stale = api
        .list_metadata(
            &kube::api::ListParams::default()
                .labels(&format!("{}={name}", configmap::PART_OF_LABEL)),
        )
        .await
        .map_err(api_err(format!("listing the parts of {location}")))?;
    for cm in stale.items {
        let cm_name = cm.metadata.name.unwrap_or_default();
        if !parts.iter().any(|p| p.name == cm_name) {
            api.delete(&cm_name, &Default::default())
                .await
                .map_err(api_err(format!(
                    "deleting stale part {namespace}/{cm_name}"
                )))?;
        }
    }
    Ok(())
}

fn configmap_of_part(namespace: &str, part: &configmap::Part) -> Result<ConfigMap, SnapshotError> {
    use base64::Engine as _;
    let mut labels = serde_json::json!({
        job::MANAGED_BY.0: job::MANAGED_BY.1,
        "aiconform.dev/purpose": "snapshot",
    });
    if let Some(head) = &part.part_of {
        labels[configmap::PART_OF_LABEL] = serde_json::Value::String(head.clone());
    }
    let binary: std::collections::BTreeMap<&String, String> = part
        .binary_data
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": part.name,
            "namespace": namespace,
            "labels": labels,
            "annotations": part.annotations,
        },
        "data": part.data,
        "binaryData": binary,
    }))
    .map_err(|e| SnapshotError::Internal(e.to_string()))
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
    progress: job::ProgressFn<'_>,
) -> Result<(Snapshot, Vec<String>), SnapshotError> {
    let (mut facts, targets) = cluster::collect(client, opts.node_selector.as_deref()).await?;
    let mut warnings = facts.notes.clone();
    if targets.is_empty() {
        warnings.push(match &opts.node_selector {
            Some(sel) => {
                format!("no node matches --node-selector {sel}; the snapshot has no node facts")
            }
            None => "the cluster has no nodes; the snapshot has no node facts".into(),
        });
    }
    if let Some(agent_opts) = &opts.agent
        && !targets.is_empty()
    {
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
