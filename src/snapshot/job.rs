//! Running `aiconform agent` on nodes: one short-lived Job per node in a namespace of its
//! own, results read from pod logs, and the namespace (with everything in it) deleted
//! afterwards — on success, failure, timeout and Ctrl-C.
//!
//! The agent needs no API access: its ServiceAccount has no RoleBindings and no token is
//! mounted. It reads host facts through read-only hostPath mounts of `/sys`, `/proc` and
//! `/etc/os-release`, runs as nobody with all capabilities dropped, and tolerates every taint
//! (GPU nodes are usually tainted). Because of the hostPath mounts the namespace is labelled
//! `pod-security.kubernetes.io/enforce=privileged`.
//!
//! The pod does not use the host network or UTS namespace (least privilege), so the agent's
//! `net.*` sysctls and hostname are those of the pod's namespaces; kernel, modules, `vm.*`,
//! `kernel.*`, `fs.*` sysctls, os-release and PCI devices are the host's.
//!
//! If the process is killed hard (SIGKILL) the namespace remains; it is labelled
//! `app.kubernetes.io/managed-by=aiconform,aiconform.dev/purpose=snapshot` and its Jobs
//! expire by `ttlSecondsAfterFinished`.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
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
const NODE_ANNOTATION: &str = "aiconform.dev/node";
const SERVICE_ACCOUNT: &str = "aiconform-agent";
/// Makes the embedded test cluster's simulator complete the pod.
const SIM_EXIT_CODE: &str = "testcluster.aiconform.dev/exit-code";
const MAX_LOG_BYTES: i64 = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct AgentJobOptions {
    pub image: String,
    /// How long to wait for all agent pods to finish.
    pub timeout: Duration,
    /// How long to wait for the namespace to be gone.
    pub cleanup_timeout: Duration,
    /// Extra annotations on agent pods (e.g. to opt out of sidecar injection); they override
    /// aiconform's own.
    pub pod_annotations: BTreeMap<String, String>,
}

impl Default for AgentJobOptions {
    fn default() -> Self {
        Self {
            image: DEFAULT_AGENT_IMAGE.into(),
            timeout: Duration::from_secs(180),
            cleanup_timeout: Duration::from_secs(90),
            pod_annotations: BTreeMap::new(),
        }
    }
}

/// A node to run the agent on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTarget {
    pub node: String,
    /// A simulated node of the embedded test cluster: annotate the pod so it completes.
    pub simulated: bool,
}

/// Results of an agent run.
#[derive(Debug, Clone, Default)]
pub struct AgentRun {
    pub outcomes: BTreeMap<String, AgentOutcome>,
    /// Set when the namespace could not be confirmed deleted.
    pub cleanup_warning: Option<String>,
    pub namespace: String,
}

/// Six lowercase alphanumerics from the std random hasher seed, time and pid.
pub fn random_suffix() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    let mut n = h.finish();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|_| {
            let c = ALPHABET[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

pub fn namespace_object(name: &str) -> Result<Namespace, SnapshotError> {
    from_json(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                MANAGED_BY.0: MANAGED_BY.1,
                "aiconform.dev/purpose": "snapshot",
                "pod-security.kubernetes.io/enforce": "privileged",
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
        "automountServiceAccountToken": false,
    }))
}

/// The Job that runs the agent on `target.node`.
pub fn agent_job(
    namespace: &str,
    index: usize,
    target: &AgentTarget,
    opts: &AgentJobOptions,
) -> Result<Job, SnapshotError> {
    let mut annotations = serde_json::Map::new();
    annotations.insert(NODE_ANNOTATION.into(), json!(target.node));
    if target.simulated {
        annotations.insert(SIM_EXIT_CODE.into(), json!("0"));
    }
    for (k, v) in &opts.pod_annotations {
        annotations.insert(k.clone(), json!(v));
    }
    let labels = json!({
        AGENT_APP.0: AGENT_APP.1,
        MANAGED_BY.0: MANAGED_BY.1,
        INDEX_LABEL: index.to_string(),
    });
    let host = |name: &str, path: &str, kind: &str| json!({"name": name, "hostPath": {"path": path, "type": kind}});
    from_json(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": format!("agent-{index}"),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": opts.timeout.as_secs().max(1),
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": { "labels": labels, "annotations": annotations },
                "spec": {
                    "nodeName": target.node,
                    "restartPolicy": "Never",
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": false,
                    "tolerations": [{ "operator": "Exists" }],
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
                        "command": [
                            "aiconform", "agent", "--output", "-", "--format", "json",
                            "--sysfs-root", "/host/sys", "--proc-root", "/host/proc",
                            "--etc-root", "/host/etc",
                        ],
                        // Lets the NVIDIA container runtime (when it is the default runtime)
                        // inject NVML without allocating a GPU.
                        "env": [
                            { "name": "NVIDIA_VISIBLE_DEVICES", "value": "all" },
                            { "name": "NVIDIA_DRIVER_CAPABILITIES", "value": "utility" },
                        ],
                        "resources": {
                            "requests": { "cpu": "10m", "memory": "32Mi" },
                            "limits": { "memory": "128Mi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": [
                            { "name": "host-sys", "mountPath": "/host/sys", "readOnly": true },
                            { "name": "host-proc", "mountPath": "/host/proc", "readOnly": true },
                            { "name": "host-os-release", "mountPath": "/host/etc/os-release", "readOnly": true },
                        ],
                    }],
                    "volumes": [
                        host("host-sys", "/sys", "Directory"),
                        host("host-proc", "/proc", "Directory"),
                        host("host-os-release", "/etc/os-release", "File"),
                    ],
                },
            },
        },
    }))
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, SnapshotError> {
    serde_json::from_value(v).map_err(|e| SnapshotError::Internal(format!("building object: {e}")))
}

/// Find the agent's JSON report in a pod log (anything before the first `{` line, such as
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

/// Run the agent on every target and always remove the namespace afterwards.
pub async fn run_agents(
    client: &kube::Client,
    targets: &[AgentTarget],
    opts: &AgentJobOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<AgentRun, SnapshotError> {
    let namespace = format!("{NAMESPACE_PREFIX}{}", random_suffix());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &namespace_object(&namespace)?)
        .await
        .map_err(api_error(format!("creating namespace {namespace}")))?;
    progress(&format!(
        "running the agent on {} node(s) in namespace {namespace}",
        targets.len()
    ));
    let work = run_in_namespace(client, &namespace, targets, opts);
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(SnapshotError::Interrupted { namespace: namespace.clone() }),
    };
    let cleanup_warning = delete_namespace(client, &namespace, opts.cleanup_timeout)
        .await
        .err();
    if let Some(w) = &cleanup_warning {
        progress(&format!("warning: {w}"));
    }
    result.map(|outcomes| AgentRun {
        outcomes,
        cleanup_warning,
        namespace,
    })
}

async fn run_in_namespace(
    client: &kube::Client,
    namespace: &str,
    targets: &[AgentTarget],
    opts: &AgentJobOptions,
) -> Result<BTreeMap<String, AgentOutcome>, SnapshotError> {
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&pp, &service_account_object(namespace)?)
        .await
        .map_err(api_error(format!("creating ServiceAccount in {namespace}")))?;
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // The watcher starts with a full list when first polled, so pods that changed phase
    // before that are still seen.
    let selector = format!("{}={}", AGENT_APP.0, AGENT_APP.1);
    let mut stream = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .boxed();
    for (i, t) in targets.iter().enumerate() {
        jobs.create(&pp, &agent_job(namespace, i, t, opts)?)
            .await
            .map_err(api_error(format!("creating agent Job for node {}", t.node)))?;
    }

    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut finished: BTreeMap<usize, Pod> = BTreeMap::new();
    let mut last_phase: BTreeMap<usize, String> = BTreeMap::new();
    while finished.len() < targets.len() {
        let next = match tokio::time::timeout_at(deadline, stream.try_next()).await {
            Err(_) => break,
            Ok(Ok(Some(pod))) => pod,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::debug!("agent pod watch error (retrying): {e}");
                continue;
            }
        };
        let Some(index) = next
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(INDEX_LABEL))
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|i| *i < targets.len())
        else {
            continue;
        };
        let phase = next
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Pending".into());
        last_phase.insert(index, phase.clone());
        if phase == "Succeeded" || phase == "Failed" {
            finished.insert(index, next);
        }
    }

    let mut out = BTreeMap::new();
    for (i, t) in targets.iter().enumerate() {
        let outcome = match finished.get(&i) {
            None => AgentOutcome::Unavailable {
                reason: format!(
                    "agent pod did not finish within {}s (last phase: {})",
                    opts.timeout.as_secs(),
                    last_phase.get(&i).map_or("not created", String::as_str)
                ),
            },
            Some(pod) => outcome_for(&pods, pod).await,
        };
        out.insert(t.node.clone(), outcome);
    }
    Ok(out)
}

async fn outcome_for(pods: &Api<Pod>, pod: &Pod) -> AgentOutcome {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let lp = LogParams {
        container: Some("agent".into()),
        limit_bytes: Some(MAX_LOG_BYTES),
        ..LogParams::default()
    };
    let logs = pods.logs(&name, &lp).await;
    let failed = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed");
    if failed {
        let exit = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .map(|t| format!("exit code {}", t.exit_code))
            .unwrap_or_else(|| "no exit code".into());
        let tail = logs.as_deref().map(log_tail).unwrap_or_default();
        return AgentOutcome::Unavailable {
            reason: format!("agent pod {ns}/{name} failed ({exit}){tail}"),
        };
    }
    match logs {
        Err(e) => AgentOutcome::Unavailable {
            reason: format!(
                "cannot read logs of agent pod {ns}/{name}: {}",
                super::kube_message(&e)
            ),
        },
        Ok(text) => match parse_agent_output(&text) {
            Ok(report) => AgentOutcome::Collected {
                report: Box::new(report),
            },
            Err(e) => AgentOutcome::Unavailable { reason: e },
        },
    }
}

/// Delete the namespace and wait until it is gone.
pub async fn delete_namespace(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let fix = format!("remove it with `kubectl delete namespace {name}`");
    let uid = match api.get_opt(name).await {
        Ok(Some(ns)) => ns.metadata.uid.unwrap_or_default(),
        Ok(None) => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot check namespace {name}: {}; {fix}",
                super::kube_message(&e)
            ));
        }
    };
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot delete namespace {name}: {}; {fix}",
                super::kube_message(&e)
            ));
        }
    }
    match tokio::time::timeout(
        timeout,
        await_condition(api, name, conditions::is_deleted(&uid)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "waiting for namespace {name} to go away: {e}; {fix}"
        )),
        Err(_) => Err(format!(
            "namespace {name} is still terminating after {}s; {fix}",
            timeout.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_is_pinned_read_only_and_tokenless() {
        let opts = AgentJobOptions::default();
        let t = AgentTarget {
            node: "gpu-node-1".into(),
            simulated: false,
        };
        let job = agent_job("aiconform-snapshot-x", 3, &t, &opts).unwrap();
        let spec = job.spec.unwrap().template.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("gpu-node-1"));
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(spec.host_network, None);
        let c = &spec.containers[0];
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
            spec.tolerations.unwrap()[0].operator.as_deref(),
            Some("Exists")
        );
        assert_eq!(job.metadata.name.as_deref(), Some("agent-3"));
        let ann = job.metadata.annotations.unwrap();
        assert!(!ann.contains_key(SIM_EXIT_CODE));
        let sim = AgentTarget {
            simulated: true,
            ..t
        };
        let job = agent_job("ns", 0, &sim, &opts).unwrap();
        let ann = job
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap();
        assert_eq!(ann[SIM_EXIT_CODE], "0");
    }

    #[test]
    fn namespace_and_sa() {
        let ns = namespace_object("aiconform-snapshot-abc123").unwrap();
        assert_eq!(ns.metadata.labels.unwrap()[MANAGED_BY.0], MANAGED_BY.1);
        let sa = service_account_object("x").unwrap();
        assert_eq!(sa.automount_service_account_token, Some(false));
        let s = random_suffix();
        assert_eq!(s.len(), 6);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
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
