//! The bare pod that runs the agent on one node: pinned with `nodeName`, least privileged,
//! reading host facts through read-only mounts.

use super::*;

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
