//! Running `aiconform agent` on nodes at scale: one bare Pod per node, pinned with
//! `nodeName` (no scheduler or controller in the loop), in a namespace of its own. Each
//! agent writes its report to its termination message when it fits (see [`super::message`]:
//! the kubelet puts it into the pod's final status, so the report costs no request), else
//! to a ConfigMap named after its pod; the collector watches the namespace's Pods and
//! ConfigMaps until every node has reported or failed, or the deadline passes. Nodes
//! without a report fall back to their Node object, with the reason. No pod logs are read,
//! so no request goes through a node's kubelet.
//!
//! Cleanup, on success, failure, timeout and Ctrl-C: the namespace is deleted (so nothing
//! new can be created in it), the agent pods that have not finished are deleted by one
//! collection delete, and the run waits (watch, deadline) until those are gone: no agent
//! runs when it returns. Everything else in the namespace (finished pods, report
//! ConfigMaps, the ServiceAccount and Role) is removed by the namespace controller, which
//! starts on a deleted namespace after a grace period of its own (5 s upstream) and
//! deletes a collection one object at a time; waiting for that would cost seconds per
//! hundred pods.
//!
//! Least privilege: the agent's ServiceAccount may only `create` ConfigMaps in that
//! namespace (a Role, no cluster-wide rights). Pods run as nobody with all capabilities
//! dropped, a read-only root filesystem and the RuntimeDefault seccomp profile. By default
//! they read host facts through read-only hostPath mounts of `/sys`, `/proc` and
//! `/etc/os-release` (the namespace is labelled PSS `privileged` for that); with
//! `privileged: false` the pods are PSS `restricted` (no hostPath; the namespace enforces
//! `restricted`) and the agent reads what a container sees: the kernel's `/proc` and
//! `/sys` (kernel release, modules, sysctls, PCI devices) but the image's os-release.
//!
//! If the process is killed hard (SIGKILL) the namespace remains; it is labelled
//! `app.kubernetes.io/managed-by=aiconform,aiconform.dev/purpose=snapshot` and the pods end
//! by `activeDeadlineSeconds`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount, Taint, Toleration};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PartialObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::SnapshotError;
use super::model::{AGENT_KIND, AgentOutcome, AgentReport};

pub const DEFAULT_AGENT_IMAGE: &str =
    concat!("ghcr.io/aiconform/aiconform:v", env!("CARGO_PKG_VERSION"));
pub const NAMESPACE_PREFIX: &str = "aiconform-snapshot-";
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "aiconform");
pub const AGENT_APP: (&str, &str) = ("app.kubernetes.io/name", "aiconform-agent");
const INDEX_LABEL: &str = "aiconform.dev/agent-index";
/// Annotation naming the node, on agent pods and on the ConfigMaps agents write.
pub const NODE_ANNOTATION: &str = "aiconform.dev/node";
/// Key of the agent's JSON report in its ConfigMap.
pub const REPORT_KEY: &str = "report.json";
const SERVICE_ACCOUNT: &str = "aiconform-agent";
/// Field selector of pods that have not finished (their containers may still run).
const NOT_FINISHED: &str = "status.phase!=Succeeded,status.phase!=Failed";
/// Where agent pods write their termination message (Kubernetes' default).
const TERMINATION_LOG: &str = "/dev/termination-log";
/// Bound of the one list that settles agents whose report the watch has not delivered.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Waiting reasons after which a pod will not start without a change to its spec.
const FATAL_WAITING: &[&str] = &[
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

#[derive(Debug, Clone)]
pub struct AgentJobOptions {
    pub image: String,
    /// How long to wait for all agents to report.
    pub timeout: Duration,
    /// How long to wait for the agent pods still running to be gone.
    pub cleanup_timeout: Duration,
    /// Extra annotations on agent pods (e.g. to opt out of sidecar injection); they override
    /// aiconform's own.
    pub pod_annotations: BTreeMap<String, String>,
    /// Read host facts through hostPath mounts (PSS `privileged` namespace); `false` runs a
    /// PSS `restricted` pod that reports what a container can see.
    pub privileged: bool,
    /// Tolerations of the agent pods; nodes with a NoSchedule or NoExecute taint none of them
    /// tolerates get no agent. Default: tolerate everything.
    pub tolerations: Vec<Toleration>,
    /// `runtimeClassName` of the agent pods (e.g. `nvidia`).
    pub runtime_class: Option<String>,
    /// Request one `nvidia.com/gpu` per agent pod (so the NVIDIA runtime injects the driver);
    /// nodes without allocatable GPUs get no agent.
    pub require_gpu: bool,
    /// Agent pods created at once.
    pub create_concurrency: usize,
    /// Collect node-health readings (`aiconform agent --health`); privileged agents read
    /// the kernel log through a hostPath mount of `/dev/kmsg`.
    pub health: Option<AgentHealth>,
}

/// Node-health readings the agents collect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentHealth {
    /// `dcgmi diag -r LEVEL` where DCGM is installed; `None`: not run.
    pub dcgm_level: Option<u8>,
}

impl Default for AgentJobOptions {
    fn default() -> Self {
        Self {
            image: DEFAULT_AGENT_IMAGE.into(),
            timeout: Duration::from_secs(180),
            cleanup_timeout: Duration::from_secs(90),
            pod_annotations: BTreeMap::new(),
            privileged: true,
            tolerations: vec![tolerate_all()],
            runtime_class: None,
            require_gpu: false,
            create_concurrency: 32,
            health: None,
        }
    }
}

/// A node to run the agent on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentTarget {
    pub node: String,
    pub taints: Vec<Taint>,
    /// Allocatable `nvidia.com/gpu`.
    pub gpus: u64,
}

/// Results of an agent run.
#[derive(Debug, Clone, Default)]
pub struct AgentRun {
    pub outcomes: BTreeMap<String, AgentOutcome>,
    /// Set when the namespace could not be deleted or agent pods still run.
    pub cleanup_warning: Option<String>,
    pub namespace: String,
}

pub fn tolerate_all() -> Toleration {
    Toleration {
        operator: Some("Exists".into()),
        ..Toleration::default()
    }
}

/// Parse `--agent-toleration`: `all`, `KEY`, `KEY=VALUE`, each optionally followed by
/// `:EFFECT` (NoSchedule, PreferNoSchedule, NoExecute).
pub fn parse_toleration(text: &str) -> Result<Toleration, String> {
    if text == "all" {
        return Ok(tolerate_all());
    }
    let (kv, effect) = match text.rsplit_once(':') {
        Some((kv, e)) => (kv, Some(e)),
        None => (text, None),
    };
    if let Some(e) = effect
        && !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
    {
        return Err(format!(
            "toleration `{text}`: effect `{e}` is not NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(format!(
            "toleration `{text}`: expected `all` or KEY[=VALUE][:EFFECT], e.g. nvidia.com/gpu:NoSchedule"
        ));
    }
    Ok(Toleration {
        key: Some(key.into()),
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.into()),
        value: value.map(str::to_string),
        effect: effect.map(str::to_string),
        ..Toleration::default()
    })
}

/// Whether a toleration matches a taint (Kubernetes semantics).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if key.is_empty() {
        return t.operator.as_deref() == Some("Exists");
    }
    if key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// Why the agent cannot run on a target under these options, if it cannot: a NoSchedule or
/// NoExecute taint no toleration matches, or no GPU while one is required.
pub fn placement_problem(target: &AgentTarget, opts: &AgentJobOptions) -> Option<String> {
    if let Some(taint) = target.taints.iter().find(|taint| {
        matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute")
            && !opts.tolerations.iter().any(|t| tolerates(t, taint))
    }) {
        let value = taint
            .value
            .as_deref()
            .map(|v| format!("={v}"))
            .unwrap_or_default();
        return Some(format!(
            "taint {}{value}:{} is not tolerated; add --agent-toleration {}:{}",
            taint.key, taint.effect, taint.key, taint.effect
        ));
    }
    if opts.require_gpu && target.gpus == 0 {
        return Some("no allocatable nvidia.com/gpu and --require-gpu is set".into());
    }
    None
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, SnapshotError> {
    serde_json::from_value(v).map_err(|e| SnapshotError::Internal(format!("building object: {e}")))
}

/// Find the agent's JSON report in its output (anything before the first `{` line, such as
/// runtime warnings, is skipped).
pub fn parse_agent_output(log: &str) -> Result<AgentReport, String> {
    let start = log
        .match_indices('{')
        .map(|(i, _)| i)
        .find(|i| *i == 0 || log.as_bytes().get(i - 1) == Some(&b'\n'))
        .ok_or_else(|| {
            format!(
                "no JSON report in the agent log ({} bytes){}",
                log.len(),
                log_tail(log)
            )
        })?;
    let mut stream = serde_json::Deserializer::from_str(&log[start..]).into_iter::<AgentReport>();
    let report = match stream.next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(format!("agent report is not valid: {e}")),
        None => return Err("agent log is empty".into()),
    };
    if report.kind != AGENT_KIND {
        return Err(format!(
            "agent output has kind `{}`, expected `{AGENT_KIND}`; is the agent image the same aiconform version?",
            report.kind
        ));
    }
    Ok(report)
}

fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(3).collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(
            "; last lines: {}",
            lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    }
}

fn api_error(what: String) -> impl FnOnce(kube::Error) -> SnapshotError {
    move |e| SnapshotError::Api {
        what,
        message: super::kube_message(&e),
    }
}

/// Delete the namespace and the agent pods still running in it, and wait until those are
/// gone; finished pods, reports and the rest go with the namespace.
pub async fn clean_up(client: &kube::Client, name: &str, timeout: Duration) -> Result<(), String> {
    let fix = format!("remove it with `kubectl delete namespace {name}`");
    // Deleting the namespace first stops new objects from appearing in it.
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot delete namespace {name}: {}; {fix}",
                super::kube_message(&e)
            ));
        }
    }
    let labels = format!("{}={}", AGENT_APP.0, AGENT_APP.1);
    let work = async {
        let pods: Api<Pod> = Api::namespaced(client.clone(), name);
        match pods
            .delete_collection(
                &DeleteParams::background(),
                &ListParams::default().labels(&labels).fields(NOT_FINISHED),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(format!(
                    "cannot delete the agent pods in namespace {name}: {}; {fix}",
                    super::kube_message(&e)
                ));
            }
        }
        // A metadata-only watch: the wait needs names, not the pods.
        until_none(
            Api::<PartialObjectMeta<Pod>>::namespaced(client.clone(), name),
            watcher::Config::default()
                .labels(&labels)
                .fields(NOT_FINISHED),
        )
        .await;
        Ok(())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "agent pods in namespace {name} are still running after {}s; {fix}",
            timeout.as_secs()
        )),
    }
}

/// Wait until no object of `api` matches `config`'s selectors (errors are retried with
/// backoff; the caller bounds the wait).
async fn until_none<K>(api: Api<K>, config: watcher::Config)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    use kube::runtime::watcher::Event as W;
    let stream = watcher(api, config).default_backoff();
    futures::pin_mut!(stream);
    // Names present as of the last complete list, updated by later events.
    let mut present = None::<std::collections::BTreeSet<String>>;
    let mut listing = std::collections::BTreeSet::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(W::Init) => listing.clear(),
            Ok(W::InitApply(o)) => {
                listing.insert(o.name_any());
            }
            Ok(W::InitDone) => present = Some(std::mem::take(&mut listing)),
            Ok(W::Apply(o)) => {
                if let Some(p) = &mut present {
                    p.insert(o.name_any());
                }
            }
            Ok(W::Delete(o)) => {
                if let Some(p) = &mut present {
                    p.remove(&o.name_any());
                }
            }
            Err(e) => tracing::debug!("cleanup watch error (retrying): {e}"),
        }
        if present.as_ref().is_some_and(|p| p.is_empty()) {
            return;
        }
    }
}

pub fn namespace_object(name: &str, privileged: bool) -> Result<Namespace, SnapshotError> {
    let level = if privileged {
        "privileged"
    } else {
        "restricted"
    };
    from_json(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                MANAGED_BY.0: MANAGED_BY.1,
                "aiconform.dev/purpose": "snapshot",
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }))
}

pub fn service_account_object(namespace: &str) -> Result<ServiceAccount, SnapshotError> {
    from_json(json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": SERVICE_ACCOUNT,
            "namespace": namespace,
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
        },
    }))
}

/// The agent's only right: create ConfigMaps in its namespace.
pub fn role_object(namespace: &str) -> Result<Role, SnapshotError> {
    from_json(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": { "name": SERVICE_ACCOUNT, "namespace": namespace, "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
        "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"] }],
    }))
}

pub fn role_binding_object(namespace: &str) -> Result<RoleBinding, SnapshotError> {
    from_json(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": { "name": SERVICE_ACCOUNT, "namespace": namespace, "labels": { MANAGED_BY.0: MANAGED_BY.1 } },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT },
        "subjects": [{ "kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace }],
    }))
}

/// Name of the agent pod (and of the ConfigMap it writes) for target `index`.
pub fn agent_name(index: usize) -> String {
    format!("agent-{index}")
}

/// The pod that runs the agent on `node`.
pub fn agent_pod(
    namespace: &str,
    index: usize,
    node: &str,
    opts: &AgentJobOptions,
) -> Result<Pod, SnapshotError> {
    let mut annotations = serde_json::Map::new();
    annotations.insert(NODE_ANNOTATION.into(), json!(node));
    for (k, v) in &opts.pod_annotations {
        annotations.insert(k.clone(), json!(v));
    }
    let mut command = vec![
        "aiconform",
        "agent",
        "--format",
        "json",
        "--output",
        "cm://$(POD_NAMESPACE)/$(POD_NAME)",
        "--node-name",
        "$(NODE_NAME)",
        "--termination-log",
        TERMINATION_LOG,
    ];
    let level;
    if let Some(h) = &opts.health {
        command.push("--health");
        if let Some(l) = h.dcgm_level {
            level = l.to_string();
            command.extend(["--dcgm-diag-level", &level]);
        }
    }
    let (mut mounts, mut volumes) = if opts.privileged {
        command.extend([
            "--sysfs-root",
            "/host/sys",
            "--proc-root",
            "/host/proc",
            "--etc-root",
            "/host/etc",
        ]);
        let host = |name: &str, path: &str, kind: &str| json!({"name": name, "hostPath": {"path": path, "type": kind}});
        (
            json!([
                { "name": "host-sys", "mountPath": "/host/sys", "readOnly": true },
                { "name": "host-proc", "mountPath": "/host/proc", "readOnly": true },
                { "name": "host-os-release", "mountPath": "/host/etc/os-release", "readOnly": true },
            ]),
            json!([
                host("host-sys", "/sys", "Directory"),
                host("host-proc", "/proc", "Directory"),
                host("host-os-release", "/etc/os-release", "File"),
            ]),
        )
    } else {
        (json!([]), json!([]))
    };
    if opts.privileged && opts.health.is_some() {
        command.extend(["--kernel-log", "/host/dev/kmsg"]);
        if let (Some(m), Some(v)) = (mounts.as_array_mut(), volumes.as_array_mut()) {
            m.push(json!({ "name": "host-kmsg", "mountPath": "/host/dev/kmsg", "readOnly": true }));
            v.push(json!({"name": "host-kmsg", "hostPath": {"path": "/dev/kmsg", "type": "CharDevice"}}));
        }
    }
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let mut limits = json!({ "memory": "128Mi" });
    let mut requests = json!({ "cpu": "10m", "memory": "32Mi" });
    if opts.require_gpu {
        limits[GPU_RESOURCE] = json!("1");
        requests[GPU_RESOURCE] = json!("1");
    }
    from_json(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": agent_name(index),
            "namespace": namespace,
            "labels": {
                AGENT_APP.0: AGENT_APP.1,
                MANAGED_BY.0: MANAGED_BY.1,
                INDEX_LABEL: index.to_string(),
            },
            "annotations": annotations,
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": opts.timeout.as_secs().max(1),
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": true,
            "tolerations": opts.tolerations,
            "runtimeClassName": opts.runtime_class,
            "terminationGracePeriodSeconds": 5,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": "agent",
                "image": opts.image,
                "command": command,
                "env": [
                    field("NODE_NAME", "spec.nodeName"),
                    field("POD_NAME", "metadata.name"),
                    field("POD_NAMESPACE", "metadata.namespace"),
                    // Lets the NVIDIA container runtime (when it is the default runtime)
                    // inject NVML without allocating a GPU.
                    { "name": "NVIDIA_VISIBLE_DEVICES", "value": "all" },
                    { "name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility" },
                ],
                "resources": { "requests": requests, "limits": limits },
                // Reports and failures reach the collector through the pod status, not
                // logs.
                "terminationMessagePath": TERMINATION_LOG,
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "runAsNonRoot": true,
                    "capabilities": { "drop": ["ALL"] },
                },
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    }))
}

/// The ConfigMap an agent writes its report to.
pub fn report_configmap(
    namespace: &str,
    name: &str,
    node: &str,
    report: &AgentReport,
) -> Result<ConfigMap, SnapshotError> {
    let text = serde_json::to_string(report)
        .map_err(|e| SnapshotError::Internal(format!("encoding the agent report: {e}")))?;
    from_json(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { AGENT_APP.0: AGENT_APP.1, MANAGED_BY.0: MANAGED_BY.1 },
            "annotations": { NODE_ANNOTATION: node },
        },
        "data": { REPORT_KEY: text },
    }))
}

/// Write an agent report as a new ConfigMap (the agent may only create, never update).
pub async fn publish_report(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    node: &str,
    report: &AgentReport,
) -> Result<(), SnapshotError> {
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .create(
            &PostParams::default(),
            &report_configmap(namespace, name, node, report)?,
        )
        .await
        .map_err(api_error(format!(
            "writing the agent report to ConfigMap {namespace}/{name}"
        )))?;
    Ok(())
}

/// The report in an agent's ConfigMap, checked to come from the expected node.
pub fn report_from_configmap(cm: &ConfigMap, node: &str) -> Result<AgentReport, String> {
    let from = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NODE_ANNOTATION))
        .map(String::as_str)
        .unwrap_or("");
    if from != node {
        return Err(format!(
            "agent report ConfigMap {} names node `{from}`, expected `{node}`",
            cm.metadata.name.as_deref().unwrap_or("")
        ));
    }
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(REPORT_KEY))
        .ok_or_else(|| format!("agent report ConfigMap has no `{REPORT_KEY}` key"))?;
    parse_agent_output(text)
}

/// Why an agent pod ended without a report, from its status (exit code, reason and
/// termination message, which holds the log tail on failure).
pub fn pod_failure(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    let term = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    match term {
        Some(t) => {
            let msg = t
                .message
                .as_deref()
                .map(|m| {
                    let lines: Vec<&str> = m.trim().lines().rev().take(3).collect();
                    format!(
                        ": {}",
                        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    )
                })
                .unwrap_or_default();
            format!(
                "agent pod {name} {phase} (exit code {}, {}){msg}",
                t.exit_code,
                t.reason.as_deref().unwrap_or("no reason")
            )
        }
        None => {
            let reason = status
                .and_then(|s| s.reason.clone().or(s.message.clone()))
                .unwrap_or_else(|| "no container status".into());
            format!("agent pod {name} {phase} ({reason})")
        }
    }
}

/// A waiting reason that will not resolve by itself (e.g. `InvalidImageName`), with its
/// message.
fn fatal_waiting(pod: &Pod) -> Option<String> {
    let w = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    let reason = w.reason.as_deref()?;
    FATAL_WAITING.contains(&reason).then(|| {
        format!(
            "agent pod {} cannot start: {reason}{}",
            pod.metadata.name.as_deref().unwrap_or(""),
            w.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )
    })
}

/// Run the agent on every target and always remove the namespace afterwards. Targets the
/// agent cannot be placed on are reported as unavailable without creating a pod.
pub async fn run_agents(
    client: &kube::Client,
    targets: &[AgentTarget],
    opts: &AgentJobOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<AgentRun, SnapshotError> {
    let mut outcomes = BTreeMap::new();
    let mut run: Vec<&str> = Vec::new();
    for t in targets {
        match placement_problem(t, opts) {
            Some(reason) => {
                outcomes.insert(t.node.clone(), AgentOutcome::Unavailable { reason });
            }
            None => run.push(&t.node),
        }
    }
    let namespace = format!("{NAMESPACE_PREFIX}{}", crate::name::random_suffix(6));
    if run.is_empty() {
        return Ok(AgentRun {
            outcomes,
            cleanup_warning: None,
            namespace,
        });
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &namespace_object(&namespace, opts.privileged)?,
        )
        .await
        .map_err(api_error(format!("creating namespace {namespace}")))?;
    progress(&format!(
        "running the agent on {} node(s) in namespace {namespace}",
        run.len()
    ));
    let work = run_in_namespace(client, &namespace, &run, opts, progress);
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(SnapshotError::Interrupted { namespace: namespace.clone() }),
    };
    progress(&format!(
        "deleting namespace {namespace} and the agent pods still running in it"
    ));
    let cleanup_warning = clean_up(client, &namespace, opts.cleanup_timeout)
        .await
        .err();
    if let Some(w) = &cleanup_warning {
        progress(&format!("warning: {w}"));
    }
    result.map(|found| {
        outcomes.extend(found);
        AgentRun {
            outcomes,
            cleanup_warning,
            namespace,
        }
    })
}

/// Index of an agent object from its name (`agent-<i>`), if it is one of ours.
fn index_of(name: Option<&str>, count: usize) -> Option<usize> {
    name?
        .strip_prefix("agent-")?
        .parse::<usize>()
        .ok()
        .filter(|i| *i < count)
}

enum Event {
    Report(Box<ConfigMap>),
    Pod(Box<Pod>),
    CreateFailed(usize, String),
    /// Every creation request has been answered.
    CreationsDone,
}

/// The outcome an agent's ConfigMap gives.
fn outcome_of(cm: &ConfigMap, node: &str) -> AgentOutcome {
    match report_from_configmap(cm, node) {
        Ok(report) => AgentOutcome::Collected {
            report: Box::new(report),
        },
        Err(reason) => AgentOutcome::Unavailable { reason },
    }
}

/// The non-empty termination message of an agent pod's container.
fn termination_message(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .as_ref()?
        .message
        .as_deref()
        .filter(|m| !m.trim().is_empty())
}

/// The outcome a succeeded agent pod's termination message gives.
fn outcome_of_message(pod: &Pod, text: &str) -> AgentOutcome {
    match super::message::decode(text) {
        Ok(report) => AgentOutcome::Collected {
            report: Box::new(report),
        },
        Err(e) => AgentOutcome::Unavailable {
            reason: format!(
                "agent pod {} succeeded but its report is unreadable: {e}",
                pod.metadata.name.as_deref().unwrap_or("")
            ),
        },
    }
}

/// Settle agents that exited 0 but whose report has not come through the watch: one list
/// of the reports (bounded by [`SETTLE_TIMEOUT`]) rather than a read per agent.
async fn settle_exited(
    cms: &Api<ConfigMap>,
    selector: &str,
    nodes: &[&str],
    exited: &mut BTreeMap<usize, Box<Pod>>,
    done: &mut BTreeMap<usize, AgentOutcome>,
) {
    if exited.is_empty() {
        return;
    }
    let listed = tokio::time::timeout(
        SETTLE_TIMEOUT,
        cms.list(&ListParams::default().labels(selector)),
    )
    .await;
    let mut reports: BTreeMap<usize, ConfigMap> = BTreeMap::new();
    let error = match listed {
        Ok(Ok(list)) => {
            for cm in list.items {
                if let Some(i) = index_of(cm.metadata.name.as_deref(), nodes.len()) {
                    reports.insert(i, cm);
                }
            }
            None
        }
        Ok(Err(e)) => Some(super::kube_message(&e)),
        Err(_) => Some(format!("no answer within {}s", SETTLE_TIMEOUT.as_secs())),
    };
    for (i, pod) in std::mem::take(exited) {
        let outcome = match (reports.get(&i), &error) {
            (Some(cm), _) => outcome_of(cm, nodes[i]),
            (None, None) => AgentOutcome::Unavailable {
                reason: format!("{} but wrote no report", pod_failure(&pod)),
            },
            (None, Some(e)) => AgentOutcome::Unavailable {
                reason: format!("cannot read the agent report: {e}"),
            },
        };
        done.insert(i, outcome);
    }
}

async fn run_in_namespace(
    client: &kube::Client,
    namespace: &str,
    nodes: &[&str],
    opts: &AgentJobOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BTreeMap<String, AgentOutcome>, SnapshotError> {
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&pp, &service_account_object(namespace)?)
        .await
        .map_err(api_error(format!("creating ServiceAccount in {namespace}")))?;
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&pp, &role_object(namespace)?)
        .await
        .map_err(api_error(format!("creating Role in {namespace}")))?;
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&pp, &role_binding_object(namespace)?)
        .await
        .map_err(api_error(format!("creating RoleBinding in {namespace}")))?;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("{}={}", AGENT_APP.0, AGENT_APP.1);
    // Watchers start with a full list when first polled, so nothing that happened before
    // is missed.
    let reports = watcher(cms.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .map_ok(|cm| Event::Report(Box::new(cm)));
    let pod_events = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .map_ok(|p| Event::Pod(Box::new(p)));
    let specs: Vec<Pod> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| agent_pod(namespace, i, node, opts))
        .collect::<Result<_, _>>()?;
    let create_pods = pods.clone();
    let creations = futures::stream::iter(specs.into_iter().enumerate())
        .map(move |(i, pod)| {
            let api = create_pods.clone();
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => None,
                    Err(e) => Some(Ok(Event::CreateFailed(
                        i,
                        format!("creating the agent pod: {}", super::kube_message(&e)),
                    ))),
                }
            }
        })
        .buffer_unordered(opts.create_concurrency.max(1))
        .filter_map(futures::future::ready)
        .chain(futures::stream::once(async { Ok(Event::CreationsDone) }));
    let mut events = futures::stream::select(
        futures::stream::select(reports.boxed(), pod_events.boxed()),
        creations.boxed(),
    );

    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut done: BTreeMap<usize, AgentOutcome> = BTreeMap::new();
    let mut last_state: BTreeMap<usize, String> = BTreeMap::new();
    // Agents that exited 0 before their report came through the ConfigMap watch (the two
    // watches are not ordered with respect to each other).
    let mut exited: BTreeMap<usize, Box<Pod>> = BTreeMap::new();
    let mut reported_tenths = 0;
    while done.len() < nodes.len() {
        if !exited.is_empty() && done.len() + exited.len() == nodes.len() {
            // Everything else is settled: one list finds the reports still in flight.
            settle_exited(&cms, &selector, nodes, &mut exited, &mut done).await;
            break;
        }
        let event = match tokio::time::timeout_at(deadline, events.try_next()).await {
            Err(_) => break,
            Ok(Ok(Some(e))) => e,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::debug!("agent watch error (retrying): {e}");
                continue;
            }
        };
        match event {
            Event::CreateFailed(i, reason) => {
                done.entry(i)
                    .or_insert(AgentOutcome::Unavailable { reason });
            }
            Event::CreationsDone => {
                progress(&format!(
                    "agent pods created; agents done: {}/{}",
                    done.len(),
                    nodes.len()
                ));
            }
            Event::Report(cm) => {
                let Some(i) = index_of(cm.metadata.name.as_deref(), nodes.len()) else {
                    continue;
                };
                exited.remove(&i);
                done.insert(i, outcome_of(&cm, nodes[i]));
            }
            Event::Pod(pod) => {
                let Some(i) = index_of(pod.metadata.name.as_deref(), nodes.len()) else {
                    continue;
                };
                if done.contains_key(&i) || exited.contains_key(&i) {
                    continue;
                }
                last_state.insert(i, crate::pod::pod_state(&pod));
                match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                    Some("Failed") => {
                        done.insert(
                            i,
                            AgentOutcome::Unavailable {
                                reason: pod_failure(&pod),
                            },
                        );
                    }
                    Some("Succeeded") => match termination_message(&pod) {
                        Some(text) => {
                            done.insert(i, outcome_of_message(&pod, text));
                        }
                        // The report went to a ConfigMap.
                        None => {
                            exited.insert(i, pod);
                        }
                    },
                    _ => {
                        if let Some(reason) = fatal_waiting(&pod) {
                            done.insert(i, AgentOutcome::Unavailable { reason });
                        }
                    }
                }
            }
        }
        let tenths = done.len() * 10 / nodes.len();
        if tenths > reported_tenths && done.len() < nodes.len() {
            reported_tenths = tenths;
            progress(&format!("agents done: {}/{}", done.len(), nodes.len()));
        }
    }

    settle_exited(&cms, &selector, nodes, &mut exited, &mut done).await;
    let mut out = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let outcome = done
            .remove(&i)
            .unwrap_or_else(|| AgentOutcome::Unavailable {
                reason: format!(
                    "agent did not report within {}s (pod: {})",
                    opts.timeout.as_secs(),
                    last_state.get(&i).map_or("not seen", String::as_str)
                ),
            });
        out.insert(node.to_string(), outcome);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(str::to_string),
            effect: effect.into(),
            ..Taint::default()
        }
    }

    #[test]
    fn pod_is_pinned_least_privileged_and_reports_to_a_configmap() {
        let opts = AgentJobOptions::default();
        let pod = agent_pod("aiconform-snapshot-x", 3, "gpu-node-1", &opts).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("agent-3"));
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("gpu-node-1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.host_network, None);
        assert_eq!(
            spec.tolerations.unwrap()[0].operator.as_deref(),
            Some("Exists")
        );
        let c = &spec.containers[0];
        let cmd = c.command.as_ref().unwrap().join(" ");
        assert!(
            cmd.contains("--output cm://$(POD_NAMESPACE)/$(POD_NAME)"),
            "{cmd}"
        );
        assert!(cmd.contains("--proc-root /host/proc"), "{cmd}");
        assert!(
            cmd.contains("--termination-log /dev/termination-log"),
            "{cmd}"
        );
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert!(
            c.volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .all(|m| m.read_only == Some(true))
        );
        let sc = c.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(
            c.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        assert!(
            pod.metadata
                .annotations
                .unwrap()
                .keys()
                .all(|k| !k.contains("testcluster"))
        );
        let role = role_object("ns").unwrap();
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["configmaps".to_string()][..])
        );
        assert_eq!(rules[0].verbs, ["create"]);
    }

    #[test]
    fn restricted_mode_has_no_host_access_and_options_apply() {
        let opts = AgentJobOptions {
            privileged: false,
            runtime_class: Some("nvidia".into()),
            require_gpu: true,
            tolerations: vec![parse_toleration("nvidia.com/gpu:NoSchedule").unwrap()],
            ..AgentJobOptions::default()
        };
        let spec = agent_pod("ns", 0, "n", &opts).unwrap().spec.unwrap();
        assert!(spec.volumes.unwrap_or_default().is_empty());
        let c = &spec.containers[0];
        assert!(c.volume_mounts.clone().unwrap_or_default().is_empty());
        assert!(
            !c.command
                .as_ref()
                .unwrap()
                .iter()
                .any(|a| a.starts_with("/host"))
        );
        assert_eq!(spec.runtime_class_name.as_deref(), Some("nvidia"));
        let limits = c.resources.as_ref().unwrap().limits.as_ref().unwrap();
        assert_eq!(limits["nvidia.com/gpu"].0, "1");
        let ns = namespace_object("x", false).unwrap();
        assert_eq!(
            ns.metadata.labels.unwrap()["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        assert_eq!(
            namespace_object("x", true)
                .unwrap()
                .metadata
                .labels
                .unwrap()["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
    }

    #[test]
    fn health_readings_add_flags_and_the_kernel_log_mount() {
        let health = Some(AgentHealth {
            dcgm_level: Some(2),
        });
        let opts = AgentJobOptions {
            health: health.clone(),
            ..AgentJobOptions::default()
        };
        let spec = agent_pod("ns", 0, "n", &opts).unwrap().spec.unwrap();
        let cmd = spec.containers[0].command.clone().unwrap().join(" ");
        assert!(
            cmd.contains("--health --dcgm-diag-level 2")
                && cmd.contains("--kernel-log /host/dev/kmsg"),
            "{cmd}"
        );
        let kmsg = spec
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "host-kmsg")
            .unwrap();
        let hp = kmsg.host_path.unwrap();
        assert_eq!(
            (hp.path.as_str(), hp.type_.as_deref()),
            ("/dev/kmsg", Some("CharDevice"))
        );
        // Restricted agents read what a container sees: no kernel log mount.
        let opts = AgentJobOptions {
            privileged: false,
            health,
            ..AgentJobOptions::default()
        };
        let spec = agent_pod("ns", 0, "n", &opts).unwrap().spec.unwrap();
        let cmd = spec.containers[0].command.clone().unwrap().join(" ");
        assert!(cmd.contains("--health") && !cmd.contains("/host"), "{cmd}");
        assert!(spec.volumes.unwrap_or_default().is_empty());
        // Without health readings nothing changes.
        let spec = agent_pod("ns", 0, "n", &AgentJobOptions::default())
            .unwrap()
            .spec
            .unwrap();
        let cmd = spec.containers[0].command.clone().unwrap().join(" ");
        assert!(!cmd.contains("--health"), "{cmd}");
    }

    #[test]
    fn tolerations_parse_and_match() {
        let all = parse_toleration("all").unwrap();
        let gpu = parse_toleration("nvidia.com/gpu:NoSchedule").unwrap();
        let eq = parse_toleration("dedicated=ml").unwrap();
        for bad in ["", ":NoSchedule", "k:Never", "=v"] {
            assert!(parse_toleration(bad).is_err(), "{bad}");
        }
        let t_gpu = taint("nvidia.com/gpu", Some("present"), "NoSchedule");
        let t_ml = taint("dedicated", Some("ml"), "NoExecute");
        assert!(tolerates(&all, &t_gpu) && tolerates(&all, &t_ml));
        assert!(tolerates(&gpu, &t_gpu) && !tolerates(&gpu, &t_ml));
        assert!(tolerates(&eq, &t_ml));
        assert!(!tolerates(
            &eq,
            &taint("dedicated", Some("web"), "NoExecute")
        ));
        assert!(!tolerates(
            &gpu,
            &taint("nvidia.com/gpu", None, "NoExecute")
        ));

        let opts = AgentJobOptions {
            tolerations: vec![gpu],
            ..AgentJobOptions::default()
        };
        let target = |taints: Vec<Taint>, gpus| AgentTarget {
            node: "n".into(),
            taints,
            gpus,
        };
        assert_eq!(
            placement_problem(&target(vec![t_gpu.clone()], 8), &opts),
            None
        );
        let why = placement_problem(&target(vec![t_gpu, t_ml], 8), &opts).unwrap();
        assert!(why.contains("dedicated=ml:NoExecute"), "{why}");
        // PreferNoSchedule never blocks.
        assert_eq!(
            placement_problem(
                &target(vec![taint("x", None, "PreferNoSchedule")], 0),
                &opts
            ),
            None
        );
        let gpu_opts = AgentJobOptions {
            require_gpu: true,
            ..AgentJobOptions::default()
        };
        assert!(placement_problem(&target(vec![], 0), &gpu_opts).is_some());
        assert_eq!(placement_problem(&target(vec![], 1), &gpu_opts), None);
    }

    #[test]
    fn reports_round_trip_through_configmaps() {
        let report = AgentReport {
            api_version: super::super::model::API_VERSION.into(),
            kind: AGENT_KIND.into(),
            kernel_release: Some("6.8.0".into()),
            ..AgentReport::default()
        };
        let cm = report_configmap("ns", "agent-0", "gpu-0", &report).unwrap();
        assert_eq!(report_from_configmap(&cm, "gpu-0").unwrap(), report);
        let err = report_from_configmap(&cm, "gpu-1").unwrap_err();
        assert!(err.contains("expected `gpu-1`"), "{err}");
        assert_eq!(index_of(Some("agent-7"), 8), Some(7));
        assert_eq!(index_of(Some("agent-8"), 8), None);
        assert_eq!(index_of(Some("other"), 8), None);
    }

    #[test]
    fn failed_pods_explain_themselves() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "agent-1"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "agent", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "message": "a\nb\nError: cannot write ConfigMap (HTTP 403)\n"}}
            }]}
        }))
        .unwrap();
        let why = pod_failure(&pod);
        assert!(why.contains("exit code 1, Error"), "{why}");
        assert!(why.contains("HTTP 403"), "{why}");
        let waiting: Pod = serde_json::from_value(json!({
            "metadata": {"name": "agent-2"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "agent", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "InvalidImageName", "message": "bad ref"}}
            }]}
        }))
        .unwrap();
        assert!(
            fatal_waiting(&waiting)
                .unwrap()
                .contains("InvalidImageName: bad ref")
        );
        assert_eq!(
            crate::pod::pod_state(&waiting),
            "Pending (InvalidImageName)"
        );
    }

    #[test]
    fn succeeded_pods_carry_their_report() {
        let report = AgentReport {
            api_version: super::super::model::API_VERSION.into(),
            kind: AGENT_KIND.into(),
            kernel_release: Some("6.8.0".into()),
            ..AgentReport::default()
        };
        let pod = |message: &str| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "agent-4"},
                "status": {"phase": "Succeeded", "containerStatuses": [{
                    "name": "agent", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message}}
                }]}
            }))
            .unwrap()
        };
        let with_report = pod(&super::super::message::encode(&report).unwrap());
        let text = termination_message(&with_report).unwrap();
        assert_eq!(
            outcome_of_message(&with_report, text),
            AgentOutcome::Collected {
                report: Box::new(report)
            }
        );
        // An empty message: the report went to a ConfigMap.
        assert_eq!(termination_message(&pod("  ")), None);
        let garbled = pod("%%%");
        match outcome_of_message(&garbled, termination_message(&garbled).unwrap()) {
            AgentOutcome::Unavailable { reason } => {
                assert!(reason.contains("agent-4 succeeded but"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn agent_output_parsing() {
        let report = AgentReport {
            api_version: super::super::model::API_VERSION.into(),
            kind: AGENT_KIND.into(),
            kernel_release: Some("6.8.0".into()),
            ..AgentReport::default()
        };
        let json = serde_json::to_string_pretty(&report).unwrap();
        let log = format!("warning: something {{odd}}\n{json}\ntrailing\n");
        assert_eq!(parse_agent_output(&log).unwrap(), report);
        let err = parse_agent_output("exec format error\n").unwrap_err();
        assert!(err.contains("exec format error"), "{err}");
        let err = parse_agent_output("{\"kind\": \"Other\", \"apiVersion\": \"x\"}").unwrap_err();
        assert!(err.contains("kind `Other`"), "{err}");
        assert!(parse_agent_output("{ not json").is_err());
    }
}
