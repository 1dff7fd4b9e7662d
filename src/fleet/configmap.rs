//! A run's results as one ConfigMap and back: the keys, the snapshot's text or gzip form,
//! the size limit, and the labels fleet reads.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use super::{
    ConfigMapRef, Contents, DRIFT_KEY, ERROR_KEY, FleetError, MAX_CONFIGMAP_BYTES, MEMBER_LABEL,
    PURPOSE, PURPOSE_LABEL, REPORT_KEYS, Stored, UPDATED_ANNOTATION,
};
use crate::diff::compare::SnapshotDiff;
use crate::snapshot::configmap as layout;

/// The ConfigMap of a run, checked against the size limit.
pub fn results_configmap(
    at: &ConfigMapRef,
    member: &str,
    updated_at: &str,
    contents: &Contents,
) -> Result<ConfigMap, FleetError> {
    if !crate::name::is_label_value(member) {
        return Err(FleetError::Member(member.into()));
    }
    let mut data = contents.text_files()?;
    let mut binary: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    if let Some(snap) = &contents.snapshot {
        // The snapshot layout's single-ConfigMap form: text, or gzipped when large.
        let mut parts = layout::encode(&at.name, snap);
        let part = parts.swap_remove(0);
        data.extend(part.data);
        binary.extend(part.binary_data);
    }
    let size = stored_size(&data, &binary);
    if size > MAX_CONFIGMAP_BYTES {
        let largest = data
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .chain(
                binary
                    .iter()
                    .map(|(k, v)| (k.clone(), v.len().div_ceil(3) * 4)),
            )
            .max_by_key(|(_, n)| *n)
            .map(|(k, n)| format!("{k}, {n} bytes"))
            .unwrap_or_default();
        return Err(FleetError::TooLarge {
            namespace: at.namespace.clone(),
            name: at.name.clone(),
            size,
            limit: MAX_CONFIGMAP_BYTES,
            largest,
        });
    }
    use base64::Engine as _;
    let binary: BTreeMap<&String, String> = binary
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": at.name,
            "namespace": at.namespace,
            "labels": {
                crate::snapshot::job::MANAGED_BY.0: crate::snapshot::job::MANAGED_BY.1,
                PURPOSE_LABEL: PURPOSE,
                MEMBER_LABEL: member,
            },
            "annotations": { UPDATED_ANNOTATION: updated_at },
        },
        "data": data,
        "binaryData": binary,
    }))
    .map_err(|e| FleetError::Internal(e.to_string()))
}

/// Bytes the ConfigMap's payload takes in the API request (binary data base64-encoded).
fn stored_size(data: &BTreeMap<String, String>, binary: &BTreeMap<String, Vec<u8>>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + binary
            .iter()
            .map(|(k, v)| k.len() + v.len().div_ceil(3) * 4)
            .sum::<usize>()
}

/// Read a result ConfigMap's contents.
pub fn parse_configmap(cm: &ConfigMap) -> Result<Stored, FleetError> {
    let namespace = cm.metadata.namespace.clone().unwrap_or_default();
    let name = cm.metadata.name.clone().unwrap_or_default();
    let invalid = |message: String| FleetError::Invalid {
        namespace: namespace.clone(),
        name: name.clone(),
        message,
    };
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    if labels.get(PURPOSE_LABEL).map(String::as_str) != Some(PURPOSE) {
        return Err(invalid(format!("no label {PURPOSE_LABEL}={PURPOSE}")));
    }
    let member = labels.get(MEMBER_LABEL).cloned().unwrap_or_default();
    let data = cm.data.clone().unwrap_or_default();
    let binary: BTreeMap<String, Vec<u8>> = cm
        .binary_data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let reports = REPORT_KEYS
        .iter()
        .filter_map(|k| data.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let drift = data
        .get(DRIFT_KEY)
        .map(|t| serde_json::from_str::<SnapshotDiff>(t))
        .transpose()
        .map_err(|e| invalid(format!("{DRIFT_KEY} does not parse: {e}")))?;
    let snapshot = if data.contains_key(layout::TEXT_KEY) || binary.contains_key(layout::GZIP_KEY) {
        let part = layout::Part {
            name: name.clone(),
            data: data.clone(),
            binary_data: binary,
            annotations: BTreeMap::new(),
            part_of: None,
        };
        Some(layout::decode(&[part]).map_err(|e| invalid(e.to_string()))?)
    } else {
        None
    };
    Ok(Stored {
        updated_at: cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(UPDATED_ANNOTATION))
            .cloned()
            .unwrap_or_default(),
        namespace: namespace.clone(),
        name: name.clone(),
        member,
        contents: Contents {
            reports,
            snapshot,
            drift,
            error: data.get(ERROR_KEY).cloned(),
        },
    })
}
