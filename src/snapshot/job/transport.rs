//! How a report travels from an agent to the collector: its termination message, else a
//! ConfigMap named after its pod; and why a pod that ended gave none.

use super::*;

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
    crate::snapshot::message::parse_agent_output(text)
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
pub(super) fn fatal_waiting(pod: &Pod) -> Option<String> {
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

/// The outcome an agent's ConfigMap gives.
pub(super) fn outcome_of(cm: &ConfigMap, node: &str) -> AgentOutcome {
    match report_from_configmap(cm, node) {
        Ok(report) => AgentOutcome::Collected {
            report: Box::new(report),
        },
        Err(reason) => AgentOutcome::Unavailable { reason },
    }
}

/// The non-empty termination message of an agent pod's container.
pub(super) fn termination_message(pod: &Pod) -> Option<&str> {
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
pub(super) fn outcome_of_message(pod: &Pod, text: &str) -> AgentOutcome {
    match crate::snapshot::message::decode(text) {
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
