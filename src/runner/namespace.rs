//! Per-case namespaces: created before a case, deleted after it whatever happened, and
//! swept by label at the end of a run as a safety net.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client, ResourceExt};

use super::policy::{label_value, namespace_name};

pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "aiconform";
/// Identifies the run that created a namespace.
pub const RUN_LABEL: &str = "aiconform.dev/run";
/// The case id (label-safe) a namespace belongs to.
pub const CASE_LABEL: &str = "aiconform.dev/case";

/// Create `aiconform-<case>-<random>` labelled with the run and case.
pub async fn create(
    client: &Client,
    run_id: &str,
    case_id: &str,
    case_name: &str,
) -> Result<String, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let leaf = case_id.rsplit('/').next().unwrap_or(case_name);
    let name = namespace_name(leaf, &crate::name::random_suffix(5));
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (RUN_LABEL.to_string(), label_value(run_id)),
        (CASE_LABEL.to_string(), label_value(case_id)),
    ]);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &ns).await?;
    Ok(name)
}

/// Delete a namespace (background propagation); gone already counts as deleted.
pub async fn delete(client: &Client, name: &str) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Delete every namespace of this run that is not already terminating. Returns the names
/// it deleted.
pub async fn sweep(client: &Client, run_id: &str) -> Result<Vec<String>, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let selector = format!(
        "{MANAGED_BY_LABEL}={MANAGED_BY},{RUN_LABEL}={}",
        label_value(run_id)
    );
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    let mut deleted = Vec::new();
    for ns in list.items {
        if ns.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = ns.name_any();
        delete(client, &name).await?;
        deleted.push(name);
    }
    Ok(deleted)
}
