//! robust_controller (KAR-0063): an AI operator installs and runs reliably. Its pods are
//! Running, its CRDs are established, an invalid custom resource is denied by the operator's
//! validating admission webhook (not by RBAC or the CRD schema), and a valid one is reconciled:
//! the operator creates children owned by it and reports it Ready (or Succeeded).
//!
//! Which operator and which objects are given by `params` (a recipe's
//! `validation.robustController`, which a built-in recipe takes from its operator component):
//! `namespace`, `podSelector`, `crds`, `apiVersion`, `kind`, `plural`, `invalid`, `valid`,
//! optionally `readyConditions` and `ownedKinds` (custom resources the operator creates for a
//! reconciled object, e.g. a TrainJob's JobSet).

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource, ResourceExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::super::k8s::{case_namespace, conditions, crd_problems};
use super::{deadline, secs};
use crate::runner::{CaseContext, Outcome};

/// The operator under test and the objects that exercise it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSpec {
    /// Namespace of the operator's (and its webhook's) pods.
    pub namespace: String,
    /// Label selector of the operator's pods.
    pub pod_selector: String,
    /// CRDs the operator installs (`plural.group`).
    pub crds: Vec<String>,
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    /// A custom resource the operator's webhook must deny (metadata.name optional).
    pub invalid: serde_json::Value,
    /// A custom resource the operator must reconcile.
    pub valid: serde_json::Value,
    /// Conditions that mean "reconciled" (default Ready, Succeeded).
    #[serde(default = "default_ready")]
    pub ready_conditions: Vec<String>,
    /// Custom resource kinds counted as children besides Deployments, StatefulSets, Jobs,
    /// Services, ConfigMaps and Pods; a kind the cluster does not serve counts none.
    #[serde(default)]
    pub owned_kinds: Vec<OwnedKind>,
}

/// A custom resource kind an operator creates for the objects it reconciles.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedKind {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
}

/// `(group, version)` of an `apiVersion` (`""` group for the core API).
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

fn default_ready() -> Vec<String> {
    vec!["Ready".into(), "Succeeded".into()]
}

impl OperatorSpec {
    fn group_version(&self) -> (&str, &str) {
        split_api_version(&self.api_version)
    }
}

/// Who denied a create, judged from the API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// One of the expected webhooks, by name.
    Webhook(String),
    /// A webhook that does not cover this kind (named).
    OtherWebhook(String),
    Rbac,
    Schema,
    Other,
}

/// Classify a rejected create: the API server names the webhook in its message
/// (`admission webhook "NAME" denied the request: ...`); RBAC answers 403 "forbidden";
/// schema validation answers 422 with field errors.
pub fn classify_denial(code: u16, message: &str, webhooks: &BTreeSet<String>) -> Denial {
    if let Some(rest) = message.split("admission webhook \"").nth(1)
        && let Some((name, tail)) = rest.split_once('"')
        && tail.trim_start().starts_with("denied the request")
    {
        return if webhooks.contains(name) {
            Denial::Webhook(name.to_string())
        } else {
            Denial::OtherWebhook(name.to_string())
        };
    }
    match code {
        403 => Denial::Rbac,
        422 => Denial::Schema,
        _ => Denial::Other,
    }
}

/// Names of the validating webhooks served from `namespace` (the operator's) whose rules
/// cover CREATE of `group/version` `plural`. Cluster-wide policy engines do not count.
pub fn covering_webhooks(
    configs: &[ValidatingWebhookConfiguration],
    namespace: &str,
    group: &str,
    version: &str,
    plural: &str,
) -> BTreeSet<String> {
    let matches = |list: &Option<Vec<String>>, want: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|x| x == "*" || x == want))
    };
    configs
        .iter()
        .flat_map(|c| c.webhooks.iter().flatten())
        .filter(|w| {
            w.client_config
                .service
                .as_ref()
                .is_some_and(|s| s.namespace == namespace)
        })
        .filter(|w| {
            w.rules.iter().flatten().any(|r| {
                matches(&r.api_groups, group)
                    && matches(&r.api_versions, version)
                    && matches(&r.resources, plural)
                    && matches(&r.operations, "CREATE")
            })
        })
        .map(|w| w.name.clone())
        .collect()
}

pub(super) async fn robust_controller_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let spec: OperatorSpec = match serde_json::from_value(ctx.spec.params.clone()) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Outcome::failed(format!(
                "no operator under test: set validation.robustController in the recipe (namespace, podSelector, crds, apiVersion, kind, plural, invalid, valid): {e}"
            )));
        }
    };
    // 1. Operator pods Running and Ready.
    let pods = Api::<Pod>::namespaced(client.clone(), &spec.namespace)
        .list(&ListParams::default().labels(&spec.pod_selector))
        .await?
        .items;
    let not_running: Vec<String> = pods
        .iter()
        .filter(|p| !pod_ready(p))
        .map(|p| format!("{} ({})", p.name_any(), super::super::k8s::pod_state(p)))
        .collect();
    if pods.is_empty() || !not_running.is_empty() {
        return Ok(Outcome::failed(format!(
            "operator pods {}/{{{}}}: {}",
            spec.namespace,
            spec.pod_selector,
            if pods.is_empty() {
                "none found".to_string()
            } else {
                format!("not Running and Ready: {}", not_running.join(", "))
            }
        )));
    }
    // 2. CRDs established.
    let problems = crd_problems(&client, &spec.crds).await?;
    if !problems.is_empty() {
        return Ok(Outcome::failed(problems.join("; ")));
    }
    // 3. An invalid custom resource is denied by the operator's webhook.
    let (group, version) = spec.group_version();
    let configs = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    // Without a covering webhook the invalid object is still created: what the cluster does
    // with it (admits it) is the evidence.
    let webhooks = covering_webhooks(&configs, &spec.namespace, group, version, &spec.plural);
    let ns = case_namespace(&ctx)?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, &spec.kind),
        &spec.plural,
    );
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let invalid = object(&spec, &spec.invalid, "invalid")?;
    let hooks = if webhooks.is_empty() {
        format!("none served from {}", spec.namespace)
    } else {
        webhooks.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let denied_by = match crs.create(&PostParams::default(), &invalid).await {
        Ok(_) => {
            return Ok(Outcome::failed(admitted_message(&spec, &ns, &webhooks)));
        }
        Err(kube::Error::Api(s)) => match classify_denial(s.code, &s.message, &webhooks) {
            Denial::Webhook(name) => name,
            Denial::OtherWebhook(name) => {
                return Ok(Outcome::failed(format!(
                    "the invalid {} was denied by webhook {name}, which is not one of the operator's ({hooks}): {}",
                    spec.kind, s.message
                )));
            }
            Denial::Rbac => {
                return Ok(Outcome::failed(format!(
                    "the invalid {} was denied by RBAC, not by the operator's webhook ({hooks}): {}",
                    spec.kind, s.message
                )));
            }
            Denial::Schema => {
                return Ok(Outcome::failed(format!(
                    "the invalid {} was rejected by the CRD schema before any webhook ({hooks}) judged it: {} (choose an invalid object the schema accepts)",
                    spec.kind, s.message
                )));
            }
            Denial::Other => {
                return Ok(Outcome::failed(format!(
                    "creating the invalid {} failed ({}), not a denial by the operator's webhook ({hooks}): {}",
                    spec.kind, s.code, s.message
                )));
            }
        },
        Err(e) => return Err(e.into()),
    };
    // 4. A valid custom resource is reconciled: Ready/Succeeded, with children it owns.
    let valid = object(&spec, &spec.valid, "valid")?;
    let created = crs.create(&PostParams::default(), &valid).await?;
    let uid = created.uid().unwrap_or_default();
    let wanted = spec.ready_conditions.clone();
    let cond = move |o: Option<&DynamicObject>| {
        o.is_some_and(|o| {
            conditions(o)
                .iter()
                .any(|(t, s, _, _)| s == "True" && wanted.contains(t))
        })
    };
    let waited =
        tokio::time::timeout_at(deadline(&ctx), await_condition(crs.clone(), "valid", cond)).await;
    let children = owned_children(&client, &ns, &uid, &spec.owned_kinds).await?;
    let reconciled = match waited {
        Ok(r) => r?,
        Err(_) => None,
    };
    let Some(obj) = reconciled else {
        let state = crs
            .get_opt("valid")
            .await?
            .map(|o| {
                let c: Vec<String> = conditions(&o)
                    .into_iter()
                    .map(|(t, s, r, m)| format!("{t}={s} {r} {m}"))
                    .collect();
                if c.is_empty() {
                    "no status conditions".to_string()
                } else {
                    c.join(", ")
                }
            })
            .unwrap_or_else(|| "gone".to_string());
        return Ok(Outcome::failed(format!(
            "webhook {denied_by} denied the invalid {}, but the valid {ns}/valid did not become {} within {}s ({state}; {} child object(s) owned by it)",
            spec.kind,
            spec.ready_conditions.join(" or "),
            secs(ctx.spec.timeout),
            children.len()
        )));
    };
    if children.is_empty() {
        return Ok(Outcome::failed(format!(
            "the valid {} {ns}/valid reports ready but owns no child objects: nothing was reconciled",
            spec.kind
        )));
    }
    let ready: Vec<String> = conditions(&obj)
        .into_iter()
        .filter(|(_, s, _, _)| s == "True")
        .map(|(t, _, _, _)| t)
        .collect();
    Ok(Outcome::passed(format!(
        "{} operator pod(s) Running in {}; CRDs {} established; the invalid {} was denied by admission webhook {denied_by}; the valid one was reconciled ({}) with children {}",
        pods.len(),
        spec.namespace,
        spec.crds.join(", "),
        spec.kind,
        ready.join(", "),
        children.join(", ")
    )))
}

/// Why an admitted invalid object fails the case: the operator's webhooks let it through, or
/// the operator has none for its kind.
fn admitted_message(spec: &OperatorSpec, ns: &str, webhooks: &BTreeSet<String>) -> String {
    let (group, _) = spec.group_version();
    let why = if webhooks.is_empty() {
        format!(
            "no ValidatingWebhookConfiguration has a webhook served from {} for CREATE of {}.{group}, so the operator does not validate its custom resources",
            spec.namespace, spec.plural
        )
    } else {
        let hooks = webhooks.iter().cloned().collect::<Vec<_>>().join(", ");
        format!("webhook(s) {hooks} did not deny it")
    };
    format!("the invalid {} {ns}/invalid was admitted: {why}", spec.kind)
}

fn pod_ready(p: &Pod) -> bool {
    let Some(st) = p.status.as_ref() else {
        return false;
    };
    st.phase.as_deref() == Some("Running")
        && st
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The custom resource from params with apiVersion, kind and a fixed name filled in.
fn object(spec: &OperatorSpec, v: &serde_json::Value, name: &str) -> anyhow::Result<DynamicObject> {
    let mut v = v.clone();
    v["apiVersion"] = spec.api_version.clone().into();
    v["kind"] = spec.kind.clone().into();
    v["metadata"]["name"] = name.into();
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("params.{name} is not an object: {e}"))
}

/// `Kind/name` of objects in `ns` whose ownerReferences name `uid`.
async fn owned_children(
    client: &Client,
    ns: &str,
    uid: &str,
    extra: &[OwnedKind],
) -> anyhow::Result<Vec<String>> {
    async fn owned<K>(client: &Client, ns: &str, uid: &str) -> anyhow::Result<Vec<String>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let kind = K::kind(&K::DynamicType::default()).to_string();
        Ok(Api::<K>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|o| o.owner_references().iter().any(|r| r.uid == uid))
            .map(|o| format!("{kind}/{}", o.name_any()))
            .collect())
    }
    let mut out = owned::<Deployment>(client, ns, uid).await?;
    out.extend(owned::<StatefulSet>(client, ns, uid).await?);
    out.extend(owned::<Job>(client, ns, uid).await?);
    out.extend(owned::<Service>(client, ns, uid).await?);
    out.extend(owned::<ConfigMap>(client, ns, uid).await?);
    out.extend(owned::<Pod>(client, ns, uid).await?);
    for k in extra {
        let (group, version) = split_api_version(&k.api_version);
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, &k.kind),
            &k.plural,
        );
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let items = match api.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        out.extend(
            items
                .iter()
                .filter(|o| o.owner_references().iter().any(|r| r.uid == uid))
                .map(|o| format!("{}/{}", k.kind, o.name_any())),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hooks() -> BTreeSet<String> {
        ["validate.x.dev".to_string()].into()
    }

    #[test]
    fn denials_are_attributed() {
        let m = "admission webhook \"validate.x.dev\" denied the request: invalid ModelServer";
        assert_eq!(
            classify_denial(422, m, &hooks()),
            Denial::Webhook("validate.x.dev".into())
        );
        let other = "admission webhook \"policy.example\" denied the request: no";
        assert_eq!(
            classify_denial(400, other, &hooks()),
            Denial::OtherWebhook("policy.example".into())
        );
        let rbac = "modelservers.ml.aiconform.dev is forbidden: User \"u\" cannot create resource";
        assert_eq!(classify_denial(403, rbac, &hooks()), Denial::Rbac);
        let schema = "ModelServer.ml.aiconform.dev \"x\" is invalid: spec.replicas: Invalid value";
        assert_eq!(classify_denial(422, schema, &hooks()), Denial::Schema);
        let failed_call = "Internal error occurred: failed calling webhook \"validate.x.dev\": connection refused";
        assert_eq!(classify_denial(500, failed_call, &hooks()), Denial::Other);
    }

    #[test]
    fn webhooks_covering_a_resource() {
        let configs: Vec<ValidatingWebhookConfiguration> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "webhooks": [
                {"name": "validate.x.dev", "clientConfig": {"service": {"namespace": "op", "name": "wh"}}, "sideEffects": "None",
                 "admissionReviewVersions": ["v1"],
                 "rules": [{"apiGroups": ["x.dev"], "apiVersions": ["v1"], "resources": ["things"], "operations": ["CREATE", "UPDATE"]}]},
                {"name": "update-only.x.dev", "clientConfig": {"service": {"namespace": "op", "name": "wh"}}, "sideEffects": "None",
                 "admissionReviewVersions": ["v1"],
                 "rules": [{"apiGroups": ["x.dev"], "apiVersions": ["v1"], "resources": ["things"], "operations": ["UPDATE"]}]}]},
            {"metadata": {"name": "b"}, "webhooks": [
                {"name": "all.policy", "clientConfig": {"service": {"namespace": "kyverno", "name": "k"}}, "sideEffects": "None",
                 "admissionReviewVersions": ["v1"],
                 "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "operations": ["*"]}]}]}
        ]))
        .expect("configs");
        let w = covering_webhooks(&configs, "op", "x.dev", "v1", "things");
        assert_eq!(w, ["validate.x.dev".to_string()].into());
        let policy = covering_webhooks(&configs, "kyverno", "x.dev", "v1", "things");
        assert_eq!(policy, ["all.policy".to_string()].into());
        assert!(covering_webhooks(&configs, "op", "y.dev", "v1", "things").is_empty());
    }

    #[test]
    fn operator_spec_from_params() {
        let s: OperatorSpec =
            serde_json::from_value(json!({"namespace": "op", "podSelector": "app=op",
            "crds": ["things.x.dev"], "apiVersion": "x.dev/v1", "kind": "Thing", "plural": "things",
            "invalid": {"spec": {}}, "valid": {"spec": {"a": 1}}}))
            .expect("spec");
        assert_eq!(s.group_version(), ("x.dev", "v1"));
        assert_eq!(s.ready_conditions, vec!["Ready", "Succeeded"]);
        assert!(s.owned_kinds.is_empty());
        let o = object(&s, &s.valid, "valid").expect("object");
        assert_eq!(o.name_any(), "valid");
        assert_eq!(o.types.expect("types").kind, "Thing");
    }

    #[test]
    fn admitted_invalid_object_names_the_missing_or_silent_webhook() {
        let s: OperatorSpec = serde_json::from_value(json!({"namespace": "kubeflow-system",
            "podSelector": "a=b", "crds": [], "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainJob", "plural": "trainjobs", "invalid": {}, "valid": {}}))
        .expect("spec");
        assert_eq!(
            admitted_message(&s, "case-ns", &BTreeSet::new()),
            "the invalid TrainJob case-ns/invalid was admitted: no ValidatingWebhookConfiguration has a webhook served from kubeflow-system for CREATE of trainjobs.trainer.kubeflow.org, so the operator does not validate its custom resources"
        );
        let hooks: BTreeSet<String> =
            ["validator.trainjob.trainer.kubeflow.org".to_string()].into();
        assert_eq!(
            admitted_message(&s, "case-ns", &hooks),
            "the invalid TrainJob case-ns/invalid was admitted: webhook(s) validator.trainjob.trainer.kubeflow.org did not deny it"
        );
    }

    #[test]
    fn owned_kinds_and_provenance_keys_are_accepted() {
        let s: OperatorSpec = serde_json::from_value(json!({"namespace": "op", "podSelector": "a=b",
            "crds": [], "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
            "plural": "trainjobs", "invalid": {}, "valid": {}, "readyConditions": ["Suspended"],
            "ownedKinds": [{"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "plural": "jobsets"}],
            "component": "kubeflow-trainer", "source": "kubeflow/trainer v2.1.0"}))
        .expect("spec");
        assert_eq!(s.owned_kinds[0].kind, "JobSet");
        assert_eq!(
            split_api_version(&s.owned_kinds[0].api_version),
            ("jobset.x-k8s.io", "v1alpha2")
        );
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
