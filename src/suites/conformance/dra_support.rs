//! dra_support (KAR-0051): every `resource.k8s.io/v1` kind is served and works (DeviceClass,
//! ResourceClaim and ResourceClaimTemplate are created, read and deleted; a driver publishes
//! ResourceSlices), and a claim made from a template is allocated on a node where its pod then
//! runs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::resource::v1::{
    DeviceClass, ResourceClaim, ResourceClaimTemplate, ResourceSlice,
};
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::super::k8s::{
    case_namespace, create, gpu_tolerations, pod_running_or_done, wait_object,
};
use super::{DEFAULT_DEVICE_CLASS, deadline, probe_image, secs};
use crate::runner::{CaseContext, Outcome};

/// The four kinds KAR-0051 names, by their `resource.k8s.io/v1` resource names.
const KINDS: [&str; 4] = [
    "deviceclasses",
    "resourceclaims",
    "resourceclaimtemplates",
    "resourceslices",
];

/// `driver/pool/device` of each allocated device of a claim.
pub fn claim_devices(claim: &ResourceClaim) -> Vec<String> {
    claim
        .status
        .as_ref()
        .and_then(|s| s.allocation.as_ref())
        .and_then(|a| a.devices.as_ref())
        .and_then(|d| d.results.as_ref())
        .map(|rs| {
            rs.iter()
                .map(|r| format!("{}/{}/{}", r.driver, r.pool, r.device))
                .collect()
        })
        .unwrap_or_default()
}

/// The node a claim's allocation binds it to: the node of the ResourceSlice publishing the
/// allocated devices' pool, else the node named by the allocation's node selector.
/// `None` for an unallocated claim or network-attached devices.
pub fn allocation_node(claim: &ResourceClaim, slices: &[ResourceSlice]) -> Option<String> {
    let alloc = claim.status.as_ref()?.allocation.as_ref()?;
    let results = alloc.devices.as_ref()?.results.as_ref()?;
    for r in results {
        let node = slices
            .iter()
            .filter(|s| s.spec.driver == r.driver && s.spec.pool.name == r.pool)
            .find_map(|s| s.spec.node_name.clone());
        if node.is_some() {
            return node;
        }
    }
    alloc
        .node_selector
        .as_ref()?
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

/// Devices published per driver, over all ResourceSlices.
pub fn devices_by_driver(slices: &[ResourceSlice]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in slices {
        *out.entry(s.spec.driver.clone()).or_default() +=
            s.spec.devices.as_ref().map_or(0, Vec::len);
    }
    out
}

/// Create, read back and delete one object: the CRUD round trip of its kind.
async fn round_trip<K>(api: &Api<K>, obj: serde_json::Value) -> anyhow::Result<Result<(), String>>
where
    K: Clone + std::fmt::Debug + DeserializeOwned + Serialize + Resource,
{
    let kind = obj["kind"].as_str().unwrap_or("object").to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Err(e) = create(api, obj).await {
        return Ok(Err(format!("creating {kind} {name}: {e}")));
    }
    let read = api.get(&name).await;
    let deleted = api.delete(&name, &DeleteParams::default()).await;
    if let Err(e) = read {
        return Ok(Err(format!("reading back {kind} {name}: {e}")));
    }
    if let Err(e) = deleted {
        return Ok(Err(format!("deleting {kind} {name}: {e}")));
    }
    Ok(Ok(()))
}

pub(super) async fn dra_support_impl(ctx: CaseContext, client: Client) -> anyhow::Result<Outcome> {
    // 1. The four kinds are served in resource.k8s.io/v1.
    let served: Vec<String> = match client.list_api_group_resources("resource.k8s.io/v1").await {
        Ok(list) => list.resources.into_iter().map(|r| r.name).collect(),
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let missing: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| !served.iter().any(|s| s == k))
        .collect();
    if !missing.is_empty() {
        return Ok(Outcome::failed(format!(
            "resource.k8s.io/v1 does not serve {}: Dynamic Resource Allocation is not available (Kubernetes >= 1.34, or enable the DynamicResourceAllocation feature and API)",
            missing.join(", ")
        )));
    }
    let ns = case_namespace(&ctx)?;
    let class = ctx
        .param::<String>("deviceClass")?
        .unwrap_or_else(|| DEFAULT_DEVICE_CLASS.to_string());

    // 2. A driver publishes devices in ResourceSlices, and its DeviceClass exists.
    let slices = Api::<ResourceSlice>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let drivers = devices_by_driver(&slices);
    let published: Vec<String> = drivers
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(d, n)| format!("{d} ({n} devices)"))
        .collect();
    if published.is_empty() {
        return Ok(Outcome::failed(format!(
            "no DRA driver publishes devices: {} ResourceSlice(s), none with devices",
            slices.len()
        )));
    }
    let classes: Api<DeviceClass> = Api::all(client.clone());
    if classes.get_opt(&class).await?.is_none() {
        return Ok(Outcome::failed(format!(
            "DeviceClass {class} not found: no DRA driver publishes it (install nvidia-dra-driver-gpu or set params.deviceClass); ResourceSlices publish {}",
            published.join(", ")
        )));
    }

    // 3. CRUD round trips of DeviceClass, ResourceClaimTemplate and ResourceClaim.
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), &ns);
    let templates: Api<ResourceClaimTemplate> = Api::namespaced(client.clone(), &ns);
    let request =
        json!({"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": class}}]}});
    let driver = drivers.keys().next().cloned().unwrap_or_default();
    let crud = [
        round_trip(
            &classes,
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                "metadata": {"name": format!("aiconform-crud-{ns}")},
                "spec": {"selectors": [{"cel": {"expression": format!("device.driver == {driver:?}")}}]}}),
        )
        .await?,
        round_trip(
            &templates,
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "metadata": {"name": "crud"}, "spec": {"spec": request}}),
        )
        .await?,
        round_trip(
            &claims,
            json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
                "metadata": {"name": "crud"}, "spec": request}),
        )
        .await?,
    ];
    let crud_errors: Vec<String> = crud.into_iter().filter_map(Result::err).collect();
    if !crud_errors.is_empty() {
        return Ok(Outcome::failed(crud_errors.join("; ")));
    }

    // 4. A pod whose claim comes from a template runs on the node its claim was allocated on.
    create(
        &templates,
        json!({"metadata": {"name": "dra-gpu"}, "spec": {"spec": request}}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    create(
        &pods,
        json!({
            "metadata": {"name": "dra-gpu", "labels": {"app.kubernetes.io/name": "aiconform-dra-support"}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "gpu", "image": probe_image(&ctx)?,
                    "args": ["probe", "sleep", "5s"],
                    "resources": {"claims": [{"name": "gpu"}]}}],
                "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "dra-gpu"}],
                "tolerations": gpu_tolerations()
            }
        }),
    )
    .await?;
    let waited = wait_object(
        pods.clone(),
        &format!("pod {ns}/dra-gpu"),
        "dra-gpu",
        deadline(&ctx),
        pod_running_or_done,
    )
    .await?;
    let pod = pods.get("dra-gpu").await?;
    let claim_name = pod
        .status
        .as_ref()
        .and_then(|s| s.resource_claim_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "gpu"))
        .and_then(|c| c.resource_claim_name.clone());
    let Some(claim_name) = claim_name else {
        return Ok(Outcome::failed(format!(
            "no ResourceClaim was generated from ResourceClaimTemplate {ns}/dra-gpu for pod dra-gpu (is the resourceclaim controller running?); pod: {}",
            waited.err().unwrap_or_else(|| "running".to_string())
        )));
    };
    let claim = claims.get(&claim_name).await?;
    let devices = claim_devices(&claim);
    let (pod, state) = match waited {
        Err(reason) => {
            return Ok(Outcome::failed(format!(
                "{reason} after {}s; ResourceClaim {ns}/{claim_name} {}",
                secs(ctx.spec.timeout),
                if devices.is_empty() {
                    "is not allocated".to_string()
                } else {
                    format!("is allocated ({})", devices.join(", "))
                }
            )));
        }
        Ok(p) => p,
    };
    if devices.is_empty() {
        return Ok(Outcome::failed(format!(
            "pod {ns}/dra-gpu is {state} but ResourceClaim {claim_name} shows no allocation"
        )));
    }
    let pod_node = pod.spec.and_then(|s| s.node_name).unwrap_or_default();
    let slices = Api::<ResourceSlice>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    match allocation_node(&claim, &slices) {
        Some(n) if n == pod_node => Ok(Outcome::passed(format!(
            "resource.k8s.io/v1 serves all four kinds; DeviceClass, ResourceClaimTemplate and ResourceClaim created, read and deleted; ResourceSlices publish {}; ResourceClaim {claim_name} (from a template) allocated {} on node {n}, where its pod is {state}",
            published.join(", "),
            devices.join(", ")
        ))),
        Some(n) => Ok(Outcome::failed(format!(
            "ResourceClaim {claim_name} was allocated on node {n} ({}), but its pod runs on node {pod_node}",
            devices.join(", ")
        ))),
        None => Ok(Outcome::failed(format!(
            "ResourceClaim {claim_name} allocated {} but neither a node-local ResourceSlice nor the allocation's node selector names a node; pod is {state} on {pod_node}",
            devices.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(node: &str, driver: &str, pool: &str, devices: usize) -> ResourceSlice {
        let devs: Vec<serde_json::Value> = (0..devices)
            .map(|i| json!({"name": format!("gpu-{i}")}))
            .collect();
        serde_json::from_value(json!({"metadata": {"name": format!("{node}-{driver}")},
            "spec": {"driver": driver, "nodeName": node, "pool": {"name": pool, "generation": 1,
                "resourceSliceCount": 1}, "devices": devs}}))
        .expect("slice")
    }

    fn claim(alloc: serde_json::Value) -> ResourceClaim {
        serde_json::from_value(json!({"metadata": {"name": "c"},
            "spec": {"devices": {"requests": []}}, "status": {"allocation": alloc}}))
        .expect("claim")
    }

    #[test]
    fn allocation_node_from_pool_or_selector() {
        let slices = vec![
            slice("n1", "gpu.nvidia.com", "n1", 2),
            slice("n2", "gpu.nvidia.com", "n2", 2),
        ];
        let c = claim(json!({"devices": {"results": [
            {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "n2", "device": "gpu-0"}]}}));
        assert_eq!(allocation_node(&c, &slices).as_deref(), Some("n2"));
        assert_eq!(claim_devices(&c), vec!["gpu.nvidia.com/n2/gpu-0"]);
        let by_selector = claim(json!({"devices": {"results": [
            {"request": "gpu", "driver": "other", "pool": "p", "device": "d"}]},
            "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}}));
        assert_eq!(
            allocation_node(&by_selector, &slices).as_deref(),
            Some("n7")
        );
        let unallocated: ResourceClaim = serde_json::from_value(json!({"metadata": {"name": "c"},
            "spec": {"devices": {"requests": []}}}))
        .expect("claim");
        assert_eq!(allocation_node(&unallocated, &slices), None);
        assert!(claim_devices(&unallocated).is_empty());
    }

    #[test]
    fn devices_counted_per_driver() {
        let slices = vec![
            slice("n1", "a", "n1", 2),
            slice("n2", "a", "n2", 3),
            slice("n1", "b", "n1", 0),
        ];
        let d = devices_by_driver(&slices);
        assert_eq!(d.get("a"), Some(&5));
        assert_eq!(d.get("b"), Some(&0));
    }
}
