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
//!
//! This module orchestrates a run; `placement` decides where an agent may run, `rbac`
//! and `agent_pod` build the objects, `transport` carries reports back, `cleanup`
//! removes the run.

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

use super::model::{AgentOutcome, AgentReport};

mod agent_pod;
mod cleanup;
mod placement;
mod progress;
mod rbac;
mod transport;

pub use progress::{AgentProgress, ProgressFn};

pub use agent_pod::*;
pub use cleanup::*;
pub use placement::*;
pub use rbac::*;
pub use transport::*;

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

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, SnapshotError> {
    serde_json::from_value(v).map_err(|e| SnapshotError::Internal(format!("building object: {e}")))
}

fn api_error(what: String) -> impl FnOnce(kube::Error) -> SnapshotError {
    move |e| SnapshotError::Api {
        what,
        message: crate::snapshot::kube_message(&e),
    }
}

/// Run the agent on every target and always remove the namespace afterwards. Targets the
/// agent cannot be placed on are reported as unavailable without creating a pod.
pub async fn run_agents(
    client: &kube::Client,
    targets: &[AgentTarget],
    opts: &AgentJobOptions,
    progress: ProgressFn<'_>,
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
    progress(AgentProgress::Started {
        nodes: run.len(),
        namespace: &namespace,
    });
    let work = run_in_namespace(client, &namespace, &run, opts, progress);
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(SnapshotError::Interrupted { namespace: namespace.clone() }),
    };
    progress(AgentProgress::CleaningUp {
        namespace: &namespace,
    });
    let cleanup_warning = clean_up(client, &namespace, opts.cleanup_timeout)
        .await
        .err();
    if let Some(w) = &cleanup_warning {
        progress(AgentProgress::CleanupFailed { warning: w });
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

/// The API server's message when a watch was refused (HTTP 403).
fn forbidden(e: &watcher::Error) -> Option<String> {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => match k {
            kube::Error::Api(s) if s.code == 403 => Some(crate::snapshot::kube_message(k)),
            _ => None,
        },
        watcher::Error::WatchError(s) if s.code == 403 => {
            Some(format!("{} (HTTP {})", s.message, s.code))
        }
        _ => None,
    }
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
        Ok(Err(e)) => Some(crate::snapshot::kube_message(&e)),
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
    progress: ProgressFn<'_>,
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
        .map_ok(|cm| Event::Report(Box::new(cm)))
        .map_err(|e| ("the agents' report ConfigMaps", e));
    let pod_events = watcher(pods.clone(), watcher::Config::default().labels(&selector))
        .default_backoff()
        .applied_objects()
        .map_ok(|p| Event::Pod(Box::new(p)))
        .map_err(|e| ("the agent pods", e));
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
                        format!(
                            "creating the agent pod: {}",
                            crate::snapshot::kube_message(&e)
                        ),
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
            Ok(Err((what, e))) => {
                // Retrying cannot lift a refusal: it would only wait out the timeout.
                if let Some(message) = forbidden(&e) {
                    return Err(SnapshotError::Api {
                        what: format!("watching {what} in namespace {namespace}"),
                        message,
                    });
                }
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
                progress(AgentProgress::Created {
                    done: done.len(),
                    total: nodes.len(),
                });
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
            progress(AgentProgress::Reported {
                done: done.len(),
                total: nodes.len(),
            });
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

    #[test]
    fn only_refused_watches_are_fatal() {
        let refused = || {
            Box::new(
                kube::core::Status::failure(
                    "pods is forbidden: User \"system:serviceaccount:a:b\" cannot list resource \"pods\"",
                    "Forbidden",
                )
                .with_code(403),
            )
        };
        let msg = forbidden(&watcher::Error::InitialListFailed(kube::Error::Api(
            refused(),
        )))
        .unwrap();
        assert!(
            msg.contains("cannot list resource \"pods\"") && msg.contains("403"),
            "{msg}"
        );
        assert!(forbidden(&watcher::Error::WatchError(refused())).is_some());
        let gone = Box::new(kube::core::Status::failure("too old", "Expired").with_code(410));
        assert!(forbidden(&watcher::Error::WatchError(gone)).is_none());
        assert!(forbidden(&watcher::Error::NoResourceVersion).is_none());
    }
    use crate::snapshot::message::parse_agent_output;
    use crate::snapshot::model::AGENT_KIND;

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
