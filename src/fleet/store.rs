//! Reading and writing result ConfigMaps through the API server.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::configmap::parse_configmap;
use super::{ConfigMapRef, FIELD_MANAGER, FleetError, PURPOSE, PURPOSE_LABEL, Stored};

fn api_err(what: String) -> impl FnOnce(kube::Error) -> FleetError {
    move |e| FleetError::Api {
        what,
        message: crate::snapshot::kube_message(&e),
    }
}

/// Create or replace the ConfigMap (server-side apply; keys of an earlier write that this one
/// lacks are removed).
pub async fn write(client: &kube::Client, cm: &ConfigMap) -> Result<(), FleetError> {
    let ns = cm.metadata.namespace.clone().unwrap_or_default();
    let name = cm.metadata.name.clone().unwrap_or_default();
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(cm),
        )
        .await
        .map_err(api_err(format!(
            "writing the run's results to ConfigMap {ns}/{name} (does namespace {ns} exist, and may this identity create and patch ConfigMaps there?)"
        )))?;
    Ok(())
}

/// The result ConfigMap at `at`, `None` when there is none yet.
pub async fn read(client: &kube::Client, at: &ConfigMapRef) -> Result<Option<Stored>, FleetError> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &at.namespace)
        .get_opt(&at.name)
        .await
        .map_err(api_err(format!(
            "reading the previous results in ConfigMap {at}"
        )))?;
    cm.as_ref().map(parse_configmap).transpose()
}

/// Every result ConfigMap of `namespace`, sorted by member then name.
pub async fn list(client: &kube::Client, namespace: &str) -> Result<Vec<Stored>, FleetError> {
    let cms = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("{PURPOSE_LABEL}={PURPOSE}")))
        .await
        .map_err(api_err(format!(
            "listing result ConfigMaps ({PURPOSE_LABEL}={PURPOSE}) in namespace {namespace}"
        )))?;
    let mut out = cms
        .items
        .iter()
        .map(parse_configmap)
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| (&a.member, &a.name).cmp(&(&b.member, &b.name)));
    Ok(out)
}
