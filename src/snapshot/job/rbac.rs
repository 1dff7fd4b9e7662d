//! The objects an agent run creates besides its pods: the namespace (labelled with the Pod
//! Security level the pods need), and the ServiceAccount whose only right is to create
//! ConfigMaps in it.

use super::*;

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
