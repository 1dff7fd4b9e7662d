//! Small kube helpers shared by the cases: deadline-bounded watches, CRD and object lookups.

use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::runner::CaseContext;
use crate::snapshot::cluster::{image_name, image_tag};

/// When a case's own waits end: before the runner's timeout (which would only say "timed
/// out"), leaving a margin of a tenth of the timeout (at most 15 s) to report the precise reason.
pub fn case_deadline(ctx: &CaseContext) -> Instant {
    let t = ctx.spec.timeout;
    let margin = (t / 10).min(Duration::from_secs(15));
    Instant::now() + t.saturating_sub(margin)
}

pub use crate::wait::wait_object;

/// The CRD's problem if it is missing or not Established.
pub async fn crd_established(client: &Client, name: &str) -> anyhow::Result<Result<(), String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    Ok(match api.get_opt(name).await? {
        None => Err(format!("CRD {name} is not installed")),
        Some(crd) => crate::health::crd(&crd)
            .map(|_| ())
            .map_err(|e| format!("CRD {name}: {e}")),
    })
}

/// The problems of every CRD in `names` that is missing or not Established, in order.
pub async fn crd_problems<S: AsRef<str>>(
    client: &Client,
    names: &[S],
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    for name in names {
        if let Err(e) = crd_established(client, name.as_ref()).await? {
            problems.push(e);
        }
    }
    Ok(problems)
}

/// The served API of a CRD-backed kind, for dynamic access.
pub fn dynamic_api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// The case namespace; a runner fault if it was not provided.
pub fn case_namespace(ctx: &CaseContext) -> anyhow::Result<String> {
    ctx.namespace.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "case {} needs a namespace (needs_namespace) but the runner gave none",
            ctx.spec.id
        )
    })
}

/// Status conditions of a dynamic object (`status.conditions[]`), as (type, status, reason, message).
pub fn conditions(obj: &DynamicObject) -> Vec<(String, String, String, String)> {
    obj.data
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let s = |k: &str| {
                        c.get(k)
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_string()
                    };
                    (s("type"), s("status"), s("reason"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn condition_true(obj: &DynamicObject, type_: &str) -> bool {
    conditions(obj)
        .iter()
        .any(|(t, s, _, _)| t == type_ && s == "True")
}

/// Allocatable `nvidia.com/gpu` per node (nodes with none are left out).
pub fn gpu_allocatable(nodes: &[Node]) -> Vec<(String, u64)> {
    nodes
        .iter()
        .filter_map(|n| {
            let q = n
                .status
                .as_ref()?
                .allocatable
                .as_ref()?
                .get("nvidia.com/gpu")?;
            let count: u64 = q.0.trim().parse().ok()?;
            (count > 0).then(|| (n.metadata.name.clone().unwrap_or_default(), count))
        })
        .collect()
}

/// Nodes that have GPUs: GFD label `nvidia.com/gpu.present=true` or allocatable `nvidia.com/gpu`.
pub fn gpu_nodes(nodes: &[Node]) -> Vec<&Node> {
    nodes
        .iter()
        .filter(|n| {
            n.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("nvidia.com/gpu.present"))
                .is_some_and(|v| v == "true")
                || !gpu_allocatable(std::slice::from_ref(*n)).is_empty()
        })
        .collect()
}

pub use crate::pod::pod_state;

pub fn pod_running_or_done(pod: &Pod) -> Result<String, String> {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Running") | Some("Succeeded") => Ok(pod_state(pod)),
        _ => Err(pod_state(pod)),
    }
}

pub async fn create<K>(api: &Api<K>, obj: serde_json::Value) -> anyhow::Result<K>
where
    K: Clone + Debug + DeserializeOwned + serde::Serialize + Resource,
{
    let obj: K = serde_json::from_value(obj)?;
    Ok(api.create(&PostParams::default(), &obj).await?)
}

/// Delete everything with `selector` in the API and wait (watching) until it is gone.
pub async fn delete_all_and_wait<K>(
    api: &Api<K>,
    selector: &str,
    timeout: Duration,
) -> anyhow::Result<()>
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
    K::DynamicType: Default,
{
    let lp = ListParams::default().labels(selector);
    api.delete_collection(&DeleteParams::background().grace_period(0), &lp)
        .await?;
    let wc = watcher::Config::default().labels(selector);
    let gone = async {
        let mut remaining: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut init = true;
        let mut stream = std::pin::pin!(watcher(api.clone(), wc));
        while let Some(ev) = stream.try_next().await? {
            match ev {
                watcher::Event::Init => {
                    remaining.clear();
                    init = true;
                }
                watcher::Event::InitApply(o) => {
                    remaining.insert(o.meta().name.clone().unwrap_or_default());
                }
                watcher::Event::InitDone => {
                    init = false;
                    if remaining.is_empty() {
                        return Ok::<(), anyhow::Error>(());
                    }
                }
                watcher::Event::Apply(_) => {}
                watcher::Event::Delete(o) => {
                    remaining.remove(&o.meta().name.clone().unwrap_or_default());
                    if !init && remaining.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, gone).await {
        Ok(r) => r,
        Err(_) => anyhow::bail!(
            "objects with {selector} still present {}s after deletion",
            timeout.as_secs()
        ),
    }
}

/// Toleration for the GPU node taint (any value, NoSchedule).
pub fn gpu_tolerations() -> serde_json::Value {
    serde_json::json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
}

/// Stream helper: the next item or `None` at the deadline.
pub async fn next_before<S: futures::Stream + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> Option<S::Item> {
    tokio::time::timeout_at(deadline, stream.next())
        .await
        .ok()
        .flatten()
}

/// The resources the API server serves in `groups`, as `plural.group` (any version;
/// subresources left out). Discovery, not CRD objects: a CRD that is not served is absent.
pub async fn served_resources(
    client: &Client,
    groups: &[&str],
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for g in client.list_api_groups().await?.groups {
        if !groups.contains(&g.name.as_str()) {
            continue;
        }
        for v in &g.versions {
            let list = client.list_api_group_resources(&v.group_version).await?;
            for r in list.resources {
                if !r.name.contains('/') {
                    out.insert(format!("{}.{}", r.name, g.name));
                }
            }
        }
    }
    Ok(out)
}

/// Deployments whose containers run an image named `image_name` (the last path segment of
/// the repository), as `<image_name> <tag> (<namespace>/<deployment>)`, sorted: names the
/// controller a case met in its evidence (never part of a verdict).
pub async fn controllers_running(client: &Client, image_name: &str) -> Vec<String> {
    deployments_by_image(client, |i| image_named(i, image_name))
        .await
        .into_iter()
        .map(|d| format!("{image_name} {} ({})", d.tag, d.name))
        .collect()
}

/// The tag of `image` when its name (the last path segment of the repository) is `name`,
/// `latest` when untagged.
pub fn image_named<'a>(image: &'a str, name: &str) -> Option<&'a str> {
    (image_name(image) == name).then(|| image_tag(image).unwrap_or("latest"))
}

/// The tag of `image` when a path segment of its repository after the registry is `project`
/// (`public.ecr.aws/karpenter/controller:1.8.0` and `registry.k8s.io/karpenter/kwok:v1.15.0`
/// are `karpenter`'s), `latest` when untagged.
pub fn image_of_project<'a>(image: &'a str, project: &str) -> Option<&'a str> {
    let repo = image.split('@').next().unwrap_or(image);
    let repo = match repo.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repo,
    };
    let mut segments = repo.split('/');
    if repo.contains('/') {
        segments.next(); // the registry host (or the Docker Hub namespace)
    }
    segments
        .any(|s| s == project)
        .then(|| image_tag(image).unwrap_or("latest"))
}

/// Deployments running an image of `project` (see [`image_of_project`]), as
/// `<project> <tag> (<namespace>/<deployment>, <ready>/<replicas> ready)`, sorted: names the
/// controller a case met, and whether it runs, in its evidence (never part of a verdict).
pub async fn project_controllers(client: &Client, project: &str) -> Vec<String> {
    deployments_by_image(client, |i| image_of_project(i, project))
        .await
        .into_iter()
        .map(|d| {
            format!(
                "{project} {} ({}, {}/{} ready)",
                d.tag, d.name, d.ready, d.replicas
            )
        })
        .collect()
}

/// A Deployment one of whose images a matcher picked, with that image's tag.
pub struct ImageDeployment {
    /// `<namespace>/<name>`.
    pub name: String,
    pub tag: String,
    pub ready: i32,
    pub replicas: i32,
}

/// Every Deployment of the cluster whose containers run an image `tag_of` picks (returning
/// its tag), sorted by namespace/name; none when Deployments cannot be listed (evidence
/// only, never a verdict).
pub async fn deployments_by_image(
    client: &Client,
    tag_of: impl Fn(&str) -> Option<&str>,
) -> Vec<ImageDeployment> {
    let Ok(list) = Api::<k8s_openapi::api::apps::v1::Deployment>::all(client.clone())
        .list(&kube::api::ListParams::default())
        .await
    else {
        return Vec::new();
    };
    let mut out: Vec<ImageDeployment> = list
        .items
        .iter()
        .filter_map(|d| {
            let spec = d.spec.as_ref()?;
            let tag = spec
                .template
                .spec
                .as_ref()?
                .containers
                .iter()
                .filter_map(|c| c.image.as_deref())
                .find_map(&tag_of)?;
            Some(ImageDeployment {
                name: format!(
                    "{}/{}",
                    d.metadata.namespace.as_deref().unwrap_or_default(),
                    d.metadata.name.as_deref().unwrap_or_default()
                ),
                tag: tag.to_string(),
                ready: d
                    .status
                    .as_ref()
                    .and_then(|s| s.ready_replicas)
                    .unwrap_or(0),
                replicas: spec.replicas.unwrap_or(1),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::{image_named, image_of_project};

    #[test]
    fn images_by_project() {
        assert_eq!(
            image_of_project("registry.k8s.io/karpenter/kwok:v1.15.0", "karpenter"),
            Some("v1.15.0")
        );
        assert_eq!(
            image_of_project(
                "public.ecr.aws/karpenter/controller:1.8.0@sha256:ab",
                "karpenter"
            ),
            Some("1.8.0")
        );
        assert_eq!(
            image_of_project("localhost:5000/karpenter/controller", "karpenter"),
            Some("latest")
        );
        assert_eq!(
            image_of_project("registry.k8s.io/kwok/kwok:v0.8.0", "karpenter"),
            None
        );
        // The registry host is not a project.
        assert_eq!(image_of_project("karpenter:5000/x/y:1", "karpenter"), None);
    }

    #[test]
    fn images_by_name() {
        assert_eq!(
            image_named("registry.k8s.io/kueue/kueue:v0.17.0", "kueue"),
            Some("v0.17.0")
        );
        assert_eq!(
            image_named(
                "quay.io/prometheus-operator/prometheus-operator:v0.85.0",
                "prometheus-operator"
            ),
            Some("v0.85.0")
        );
        assert_eq!(image_named("localhost:5000/kueue", "kueue"), Some("latest"));
        assert_eq!(
            image_named(
                "quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0",
                "prometheus-operator"
            ),
            None
        );
        assert_eq!(image_named("kueue-viz:v1", "kueue"), None);
    }
}
