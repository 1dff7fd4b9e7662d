//! Pod status as messages name it: the phase, and why a pod is not running yet (the
//! scheduler's reason, else the first waiting container's).

use k8s_openapi::api::core::v1::Pod;

/// `Running`, `Pending (Unschedulable: 0/3 nodes are available ...)`,
/// `Pending (ImagePullBackOff)`; `Pending` for a pod without status yet.
pub fn pod_state(pod: &Pod) -> String {
    let Some(status) = pod.status.as_ref() else {
        return "Pending".to_string();
    };
    let phase = status.phase.clone().unwrap_or_else(|| "Pending".into());
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status != "True")
        .map(|c| {
            format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or("-"),
                c.message.as_deref().unwrap_or("")
            )
        });
    let waiting = || {
        status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
    };
    match unschedulable.or_else(waiting) {
        Some(why) => format!("{phase} ({why})"),
        None => phase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status}))
            .unwrap()
    }

    #[test]
    fn phase_and_why_not_running() {
        assert_eq!(pod_state(&pod(serde_json::Value::Null)), "Pending");
        assert_eq!(
            pod_state(&pod(serde_json::json!({"phase": "Running"}))),
            "Running"
        );
        let unschedulable = pod(serde_json::json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available"}]}));
        assert_eq!(
            pod_state(&unschedulable),
            "Pending (Unschedulable: 0/3 nodes are available)"
        );
        let pulling = pod(
            serde_json::json!({"phase": "Pending", "containerStatuses": [
            {"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
        );
        assert_eq!(pod_state(&pulling), "Pending (ImagePullBackOff)");
    }
}
