//! virtualized_accelerator (KAR-0004): vGPUs, where the cluster advertises them, are allocated
//! through DRA with the semantics of fractional GPUs. One pod more than a parent GPU has vGPUs
//! each claims one of them: as many pods as there are vGPUs run at the same time, each one's
//! device probe sees exactly its own vGPU (neither the parent GPU nor a sibling), the extra
//! claim stays unallocated while every vGPU is held, and its pod runs once a holder is done.
//! A cluster that advertises no vGPUs is not applicable: the case is skipped saying where it
//! looked, never passed. vGPUs advertised only as extended resources (outside DRA) are reported
//! and skipped too: their allocation semantics are not proven here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{
    Device, DeviceAttribute, DeviceClass, ResourceClaim, ResourceSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::json;

use super::super::k8s::{case_namespace, create, gpu_tolerations, next_before, pod_state};
use super::secure_accelerator_access::probe_report;
use super::*;
use crate::probe::DeviceView;
use crate::runner::{CaseContext, Outcome};

/// DeviceClass the vGPU claims request (`params.deviceClass`).
pub const DEFAULT_VGPU_DEVICE_CLASS: &str = "vgpu.nvidia.com";

/// The DRA device attributes that mark and describe a vGPU (`params.attributes`), by name in
/// the publishing driver's domain (or `domain/name`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VgpuAttributes {
    /// String attribute whose value [`Self::type_value`] marks a vGPU.
    pub type_name: String,
    pub type_value: String,
    /// UUID of the physical GPU a vGPU is carved from.
    pub parent: String,
    /// The vGPU's own UUID (what `NVIDIA_VISIBLE_DEVICES` names in its container).
    pub uuid: String,
    /// vGPU type, e.g. `A100-4C`.
    pub profile: String,
    /// Device minor: the container sees `/dev/nvidia<minor>`.
    pub minor: String,
}

impl Default for VgpuAttributes {
    fn default() -> Self {
        VgpuAttributes {
            type_name: "type".into(),
            type_value: "vgpu".into(),
            parent: "parentUUID".into(),
            uuid: "uuid".into(),
            profile: "profile".into(),
            minor: "minor".into(),
        }
    }
}

/// Extended resources that advertise vGPUs outside DRA (`params.extendedResources`; a
/// trailing `*` matches any suffix).
pub const DEFAULT_VGPU_EXTENDED_RESOURCES: &[&str] = &["nvidia.com/vgpu", "nvidia.com/GRID_*"];

/// One vGPU a DRA driver publishes on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vgpu {
    pub driver: String,
    pub pool: String,
    pub node: String,
    pub device: String,
    /// Domain of the attributes that identify it (the driver's, unless qualified).
    pub domain: String,
    pub uuid: Option<String>,
    pub parent: Option<String>,
    pub profile: Option<String>,
    pub minor: Option<i64>,
}

impl Vgpu {
    /// The device file its container must see, when the driver publishes its minor.
    fn file(&self) -> Option<String> {
        self.minor.map(|m| format!("/dev/nvidia{m}"))
    }
}

/// The attribute `name` of a device: `name` in the driver's domain or `<domain>/name`, with
/// the domain it was found in.
fn attribute<'a>(d: &'a Device, driver: &str, name: &str) -> Option<(String, &'a DeviceAttribute)> {
    let attrs = d.attributes.as_ref()?;
    if let Some((domain, short)) = name.split_once('/') {
        return attrs
            .get(name)
            .map(|a| (domain.to_string(), a))
            .or_else(|| {
                (domain == driver)
                    .then(|| attrs.get(short))
                    .flatten()
                    .map(|a| (domain.to_string(), a))
            });
    }
    if let Some(a) = attrs.get(name) {
        return Some((driver.to_string(), a));
    }
    attrs.iter().find_map(|(k, a)| {
        let (domain, short) = k.split_once('/')?;
        (short == name).then(|| (domain.to_string(), a))
    })
}

fn string_attr(d: &Device, driver: &str, name: &str) -> Option<String> {
    let a = attribute(d, driver, name)?.1;
    a.string.clone().or_else(|| a.version.clone())
}

/// Every node-local device whose type attribute says vGPU, sorted by node, parent and device.
pub fn vgpu_devices(slices: &[ResourceSlice], attrs: &VgpuAttributes) -> Vec<Vgpu> {
    let mut out = Vec::new();
    for s in slices {
        let Some(node) = s.spec.node_name.as_ref() else {
            continue;
        };
        let driver = &s.spec.driver;
        for d in s.spec.devices.iter().flatten() {
            let Some((domain, t)) = attribute(d, driver, &attrs.type_name) else {
                continue;
            };
            if t.string.as_deref() != Some(attrs.type_value.as_str()) {
                continue;
            }
            out.push(Vgpu {
                driver: driver.clone(),
                pool: s.spec.pool.name.clone(),
                node: node.clone(),
                device: d.name.clone(),
                domain,
                uuid: string_attr(d, driver, &attrs.uuid),
                parent: string_attr(d, driver, &attrs.parent),
                profile: string_attr(d, driver, &attrs.profile),
                minor: attribute(d, driver, &attrs.minor).and_then(|(_, a)| a.int),
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.node, &a.parent, &a.driver, &a.device).cmp(&(&b.node, &b.parent, &b.driver, &b.device))
    });
    out
}

/// Nodes advertising vGPUs as extended resources: (node, resource, allocatable), sorted.
pub fn vgpu_extended_resources(nodes: &[Node], patterns: &[String]) -> Vec<(String, String, u64)> {
    let matches = |r: &str| {
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => r.starts_with(prefix),
            None => r == p,
        })
    };
    let mut out = Vec::new();
    for n in nodes {
        let alloc = n.status.as_ref().and_then(|s| s.allocatable.as_ref());
        for (r, q) in alloc.into_iter().flatten() {
            let count: u64 = q.0.trim().parse().unwrap_or(0);
            if count > 0 && matches(r) {
                out.push((n.name_any(), r.clone(), count));
            }
        }
    }
    out.sort();
    out
}

/// The vGPUs of one parent GPU on one node (the parent unknown when the driver does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgpuParent {
    pub node: String,
    pub driver: String,
    pub parent: Option<String>,
    pub vgpus: Vec<Vgpu>,
}

impl VgpuParent {
    fn describe(&self) -> String {
        let profiles: Vec<&str> = {
            let mut p: Vec<&str> = self
                .vgpus
                .iter()
                .filter_map(|v| v.profile.as_deref())
                .collect();
            p.dedup();
            p
        };
        format!(
            "{} vGPU(s){} of {} on node {} (driver {})",
            self.vgpus.len(),
            if profiles.is_empty() {
                String::new()
            } else {
                format!(" {}", profiles.join("/"))
            },
            self.parent
                .as_deref()
                .map(|p| format!("parent GPU {p}"))
                .unwrap_or_else(|| "an unnamed parent GPU".into()),
            self.node,
            self.driver
        )
    }
}

/// What the case does on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No vGPUs anywhere it looked: not applicable, for this reason.
    NotApplicable(String),
    /// vGPUs exist only as extended resources: their semantics are not proven here.
    OutsideDra(String),
    /// Prove the semantics on this parent.
    Prove(VgpuParent),
}

/// Choose the parent to prove the semantics on: the one with the fewest vGPUs among those with
/// at least two (two vGPUs of one GPU must serve two pods at once), else the smallest.
/// `looked` says which ResourceSlices were searched, `patterns` which extended resources.
pub fn plan(
    vgpus: &[Vgpu],
    extended: &[(String, String, u64)],
    looked: &str,
    patterns: &[String],
) -> Plan {
    let mut parents: BTreeMap<(String, Option<String>, String), Vec<Vgpu>> = BTreeMap::new();
    for v in vgpus {
        parents
            .entry((v.node.clone(), v.parent.clone(), v.driver.clone()))
            .or_default()
            .push(v.clone());
    }
    let best = parents
        .iter()
        .min_by_key(|(k, v)| (v.len() < 2, v.len(), (*k).clone()));
    if let Some(((node, parent, driver), vgpus)) = best {
        return Plan::Prove(VgpuParent {
            node: node.clone(),
            driver: driver.clone(),
            parent: parent.clone(),
            vgpus: vgpus.clone(),
        });
    }
    if !extended.is_empty() {
        return Plan::OutsideDra(format!(
            "vGPUs are advertised only as extended resources ({}), not as DRA devices ({looked}): this case proves vGPU allocation semantics through DRA claims only; publish them with a DRA driver, or declare virtualized_accelerator not applicable with a reason",
            extended
                .iter()
                .map(|(n, r, c)| format!("{n}: {c} {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Plan::NotApplicable(format!(
        "no vGPU devices found: {looked}, and no node advertises an extended resource matching {}. Declare virtualized_accelerator not applicable with a reason (a cluster without vGPUs does not pass)",
        patterns.join(", ")
    ))
}

/// The CEL selector that restricts a claim to vGPUs of the chosen parent.
pub fn selector(p: &VgpuParent, attrs: &VgpuAttributes) -> String {
    let short = |n: &str| n.rsplit('/').next().unwrap_or(n).to_string();
    let domain = p
        .vgpus
        .first()
        .map(|v| v.domain.clone())
        .unwrap_or_else(|| p.driver.clone());
    let mut e = format!(
        "device.driver == {:?} && device.attributes[{domain:?}].{} == {:?}",
        p.driver,
        short(&attrs.type_name),
        attrs.type_value
    );
    if let Some(parent) = &p.parent {
        e.push_str(&format!(
            " && device.attributes[{domain:?}].{} == {parent:?}",
            short(&attrs.parent)
        ));
    }
    e
}

/// What the case saw of one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgpuRun {
    pub pod: String,
    /// The device its claim was allocated (`driver/pool/device`), if seen.
    pub allocated: Option<String>,
    /// The probe's exit code and view, or why there is none.
    pub view: Result<(i32, DeviceView), String>,
    pub started: Option<Time>,
    pub finished: Option<Time>,
    /// The scheduler's reason while the pod waited unscheduled, if it ever did.
    pub waited: Option<String>,
}

/// The parent GPU as a container would see it: its UUID and device file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentIds {
    pub uuid: Option<String>,
    pub file: Option<String>,
}

/// The device file of the GPU with this UUID, over all drivers' devices (`None` if unknown).
pub fn parent_ids(
    slices: &[ResourceSlice],
    parent: Option<&str>,
    attrs: &VgpuAttributes,
) -> ParentIds {
    let Some(uuid) = parent else {
        return ParentIds::default();
    };
    let file = slices
        .iter()
        .flat_map(|s| {
            s.spec
                .devices
                .iter()
                .flatten()
                .map(move |d| (&s.spec.driver, d))
        })
        .find(|(driver, d)| string_attr(d, driver, &attrs.uuid).as_deref() == Some(uuid))
        .and_then(|(driver, d)| attribute(d, driver, &attrs.minor)?.1.int)
        .map(|m| format!("/dev/nvidia{m}"));
    ParentIds {
        uuid: Some(uuid.to_string()),
        file,
    }
}

fn describe_view(view: &DeviceView) -> String {
    let devices = if view.devices.is_empty() {
        "no GPU device".to_string()
    } else {
        view.devices.join(", ")
    };
    match view.visible_devices.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => format!("{devices} (NVIDIA_VISIBLE_DEVICES={v})"),
        None => devices,
    }
}

/// Why a pod's view is not exactly its own vGPU, if it is not.
fn isolation_problem(
    own: &Vgpu,
    view: &DeviceView,
    siblings: &[Vgpu],
    parent: &ParentIds,
) -> Option<String> {
    let visible: Vec<&str> = view
        .visible_devices
        .as_deref()
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut wrong = Vec::new();
    if view.devices.len() != 1 {
        wrong.push(format!("{} GPU devices instead of 1", view.devices.len()));
    }
    if let Some(f) = own
        .file()
        .filter(|f| view.devices.len() == 1 && view.devices[0] != *f)
    {
        wrong.push(format!("not its device {f}"));
    }
    if let Some(u) = own
        .uuid
        .as_deref()
        .filter(|u| !visible.is_empty() && visible != [*u])
    {
        wrong.push(format!("NVIDIA_VISIBLE_DEVICES is not its UUID {u}"));
    }
    let sees_parent = parent
        .file
        .as_ref()
        .is_some_and(|f| view.devices.contains(f))
        || parent.uuid.as_deref().is_some_and(|u| visible.contains(&u));
    if sees_parent {
        wrong.push("its parent GPU".to_string());
    }
    let seen_siblings: Vec<&str> = siblings
        .iter()
        .filter(|s| s.device != own.device)
        .filter(|s| {
            s.file().is_some_and(|f| view.devices.contains(&f))
                || s.uuid.as_deref().is_some_and(|u| visible.contains(&u))
        })
        .map(|s| s.device.as_str())
        .collect();
    if !seen_siblings.is_empty() {
        wrong.push(format!("sibling vGPU(s) {}", seen_siblings.join(", ")));
    }
    (!wrong.is_empty()).then(|| {
        format!(
            "was allocated {}{} but sees {}: {}",
            own.device,
            own.uuid
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default(),
            describe_view(view),
            wrong.join(", ")
        )
    })
}

/// The most pods whose containers ran at the same time (intervals `[started, finished)`).
pub fn max_concurrent(runs: &[VgpuRun]) -> usize {
    let spans: Vec<(&Time, &Time)> = runs
        .iter()
        .filter_map(|r| Some((r.started.as_ref()?, r.finished.as_ref()?)))
        .collect();
    spans
        .iter()
        .map(|(s, _)| {
            spans
                .iter()
                .filter(|(s2, f2)| s2.0 <= s.0 && s.0 < f2.0)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Judge the runs of one more pod than `p` has vGPUs: `Ok(evidence)` or `Err(what failed)`.
pub fn judge(p: &VgpuParent, parent: &ParentIds, runs: &[VgpuRun]) -> Result<String, String> {
    let k = p.vgpus.len();
    let what = format!(
        "{} pods each claiming one of the {}",
        runs.len(),
        p.describe()
    );
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for r in runs {
        let own = r.allocated.as_deref().and_then(|a| {
            p.vgpus
                .iter()
                .find(|v| format!("{}/{}/{}", v.driver, v.pool, v.device) == a)
        });
        match (&r.view, own, r.allocated.as_deref()) {
            (Err(e), _, _) => problems.push(format!("pod {}: container probe {e}", r.pod)),
            (Ok(_), None, None) => problems.push(format!(
                "pod {} ran but its claim's allocation was never seen",
                r.pod
            )),
            (Ok(_), None, Some(a)) => problems.push(format!(
                "pod {} was allocated {a}, not a vGPU of the parent",
                r.pod
            )),
            (Ok((code, view)), Some(own), _) => {
                match isolation_problem(own, view, &p.vgpus, parent) {
                    Some(why) => problems.push(format!("pod {} {why}", r.pod)),
                    None if *code != 0 => {
                        problems.push(format!("pod {}: the probe exited {code}", r.pod))
                    }
                    None => seen.push(format!(
                        "{} got {}: {}",
                        r.pod,
                        own.device,
                        describe_view(view)
                    )),
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "{what}: {} of {} did not run with exactly their own vGPU: {}",
            problems.len(),
            runs.len(),
            problems.join("; ")
        ));
    }
    let most = max_concurrent(runs);
    if most > k {
        return Err(format!(
            "{what}: {most} pods ran at the same time on {k} vGPU(s): the vGPUs were overcommitted"
        ));
    }
    if most < k {
        return Err(format!(
            "{what}: all ran, but never more than {most} at the same time: the {k} vGPUs of one GPU did not serve {k} pods concurrently"
        ));
    }
    // The pod that started last is the one that had to wait for a vGPU.
    let Some(waiter) = runs
        .iter()
        .filter(|r| r.started.is_some())
        .max_by_key(|r| r.started.as_ref().map(|t| t.0))
    else {
        return Err(format!("{what}: no pod reported when it started"));
    };
    let Some(why) = waiter.waited.as_deref() else {
        return Err(format!(
            "{what}: all ran and at most {k} at once, but pod {} (the last to start) was never seen waiting unallocated for a vGPU",
            waiter.pod
        ));
    };
    let first_done = runs
        .iter()
        .filter(|r| r.pod != waiter.pod)
        .filter_map(|r| r.finished.as_ref())
        .min_by_key(|t| t.0);
    if let (Some(started), Some(done)) = (waiter.started.as_ref(), first_done)
        && started.0 < done.0
    {
        return Err(format!(
            "{what}: pod {} waited ({why}) but started before any holder finished",
            waiter.pod
        ));
    }
    Ok(format!(
        "{what}: {k} ran at the same time, each probe saw exactly its own vGPU and neither the parent GPU nor a sibling ({}); pod {} waited unallocated ({}) while all {k} vGPUs were held and ran once a holder finished",
        seen.join("; "),
        waiter.pod,
        why
    ))
}

/// `Unschedulable: 0/4 nodes are available: ...` for a pod the scheduler could not place.
fn unscheduled(pod: &Pod) -> Option<String> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
    // The scheduler's first sentence says why; the rest is about preemption.
    let first = c.message.as_deref().unwrap_or("").split(". ").next();
    let msg: String = first.unwrap_or("").chars().take(200).collect();
    Some(format!("{}: {msg}", c.reason.as_deref().unwrap_or("-")))
}

fn is_done(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
}

/// The `driver/pool/device` a pod's generated claim was allocated, once it is.
async fn allocated_device(
    claims: &Api<ResourceClaim>,
    pod: &Pod,
) -> anyhow::Result<Option<String>> {
    let name = pod
        .status
        .as_ref()
        .and_then(|s| s.resource_claim_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "vgpu"))
        .and_then(|c| c.resource_claim_name.clone());
    let Some(name) = name else {
        return Ok(None);
    };
    Ok(claims
        .get_opt(&name)
        .await?
        .and_then(|c| super::claim_devices(&c).into_iter().next()))
}

const LABEL: &str = "app.kubernetes.io/name=aiconform-virtualized-accelerator";

pub(super) async fn virtualized_accelerator_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let attrs = ctx
        .param::<VgpuAttributes>("attributes")?
        .unwrap_or_default();
    let patterns = ctx
        .param::<Vec<String>>("extendedResources")?
        .unwrap_or_else(|| {
            DEFAULT_VGPU_EXTENDED_RESOURCES
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    let slices = Api::<ResourceSlice>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let drivers: std::collections::BTreeSet<&str> =
        slices.iter().map(|s| s.spec.driver.as_str()).collect();
    let looked = format!(
        "no device in {} ResourceSlice(s) (drivers: {}) has attribute {}={}",
        slices.len(),
        if drivers.is_empty() {
            "none".to_string()
        } else {
            drivers.into_iter().collect::<Vec<_>>().join(", ")
        },
        attrs.type_name,
        attrs.type_value,
    );
    let parent = match plan(
        &vgpu_devices(&slices, &attrs),
        &vgpu_extended_resources(&nodes, &patterns),
        &looked,
        &patterns,
    ) {
        Plan::NotApplicable(reason) => return Ok(Outcome::skipped(reason)),
        Plan::OutsideDra(why) => return Ok(Outcome::skipped(why)),
        Plan::Prove(p) => p,
    };
    let class = ctx
        .param::<String>("deviceClass")?
        .unwrap_or_else(|| DEFAULT_VGPU_DEVICE_CLASS.to_string());
    if Api::<DeviceClass>::all(client.clone())
        .get_opt(&class)
        .await?
        .is_none()
    {
        return Ok(Outcome::failed(format!(
            "{} are published, but DeviceClass {class} does not exist: no claim can request them (set params.deviceClass to the class that selects them)",
            parent.describe()
        )));
    }
    let ids = parent_ids(&slices, parent.parent.as_deref(), &attrs);
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let hold = ctx.param::<u64>("holdSeconds")?.unwrap_or(10);

    let templates: Api<k8s_openapi::api::resource::v1::ResourceClaimTemplate> =
        Api::namespaced(client.clone(), &ns);
    create(
        &templates,
        json!({"metadata": {"name": "vgpu"}, "spec": {"spec": {"devices": {"requests": [{
            "name": "vgpu",
            "exactly": {"deviceClassName": class, "count": 1,
                "selectors": [{"cel": {"expression": selector(&parent, &attrs)}}]}
        }]}}}}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = (0..=parent.vgpus.len())
        .map(|i| format!("vgpu-{i}"))
        .collect();
    for name in &names {
        create(
            &pods,
            json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aiconform-virtualized-accelerator"}},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"kubernetes.io/hostname": parent.node},
                    "containers": [{"name": "probe", "image": probe_image(&ctx)?,
                        "args": ["probe", "devices", "--expect", "1", "--hold", format!("{hold}s")],
                        "resources": {"claims": [{"name": "vgpu"}]}}],
                    "resourceClaims": [{"name": "vgpu", "resourceClaimTemplateName": "vgpu"}],
                    "tolerations": gpu_tolerations()
                }}),
        )
        .await?;
    }

    // Watch the pods to the end: record each claim's allocation while its pod holds it (a
    // generated claim is deleted once its pod is done) and whether a pod waited unscheduled.
    let mut allocated: BTreeMap<String, String> = BTreeMap::new();
    let mut waited: BTreeMap<String, String> = BTreeMap::new();
    let mut latest: BTreeMap<String, Pod> = BTreeMap::new();
    let mut stream = std::pin::pin!(watcher(
        pods.clone(),
        watcher::Config::default().labels(LABEL)
    ));
    while let Some(ev) = next_before(&mut stream, deadline).await {
        let pod = match ev? {
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => p,
            _ => continue,
        };
        let name = pod.name_any();
        if let Some(why) = unscheduled(&pod) {
            waited.entry(name.clone()).or_insert(why);
        }
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        if bound
            && !allocated.contains_key(&name)
            && let Some(d) = allocated_device(&claims, &pod).await?
        {
            allocated.insert(name.clone(), d);
        }
        latest.insert(name, pod);
        if names.iter().all(|n| latest.get(n).is_some_and(is_done)) {
            break;
        }
    }

    let mut runs = Vec::new();
    for name in &names {
        let pod = latest.get(name);
        let status = pod
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == "probe"));
        let term = status
            .and_then(|s| s.state.as_ref())
            .and_then(|s| s.terminated.as_ref());
        let view = match pod {
            None => Err("never appeared".to_string()),
            Some(p) if !is_done(p) => Err(format!(
                "did not finish within {}s: pod {}",
                secs(ctx.spec.timeout),
                pod_state(p)
            )),
            Some(_) => probe_report(status),
        };
        runs.push(VgpuRun {
            pod: name.clone(),
            allocated: allocated.get(name).cloned(),
            view,
            started: term.and_then(|t| t.started_at.clone()),
            finished: term.and_then(|t| t.finished_at.clone()),
            waited: waited.get(name).cloned(),
        });
    }
    Ok(match judge(&parent, &ids, &runs) {
        Ok(evidence) => Outcome::passed(format!("DeviceClass {class}: {evidence}")),
        Err(why) => Outcome::failed(format!("DeviceClass {class}: {why}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(node: &str, driver: &str, devices: serde_json::Value) -> ResourceSlice {
        serde_json::from_value(json!({"metadata": {"name": format!("{node}-{driver}")},
            "spec": {"driver": driver, "nodeName": node, "pool": {"name": node, "generation": 1,
                "resourceSliceCount": 1}, "devices": devices}}))
        .expect("slice")
    }

    fn cluster() -> Vec<ResourceSlice> {
        vec![
            slice(
                "gpu-0",
                "gpu.nvidia.com",
                json!([{"name": "gpu-7", "attributes": {"type": {"string": "gpu"},
                    "uuid": {"string": "GPU-p"}, "minor": {"int": 7}}}]),
            ),
            slice(
                "gpu-0",
                "vgpu.nvidia.com",
                json!([
                    {"name": "vgpu-7-1", "attributes": {"type": {"string": "vgpu"},
                        "uuid": {"string": "GPU-b"}, "parentUUID": {"string": "GPU-p"},
                        "profile": {"string": "H100-40C"}, "minor": {"int": 9}}},
                    {"name": "vgpu-7-0", "attributes": {"type": {"string": "vgpu"},
                        "uuid": {"string": "GPU-a"}, "parentUUID": {"string": "GPU-p"},
                        "profile": {"string": "H100-40C"}, "minor": {"int": 8}}}
                ]),
            ),
            // A lone vGPU on another node, in a qualified attribute domain.
            slice(
                "gpu-1",
                "other.example.com",
                json!([{"name": "v0", "attributes": {"vgpu.example.com/type": {"string": "vgpu"},
                    "vgpu.example.com/parentUUID": {"string": "GPU-q"}}}]),
            ),
        ]
    }

    #[test]
    fn vgpus_found_by_type_attribute_in_any_domain() {
        let v = vgpu_devices(&cluster(), &VgpuAttributes::default());
        type Row<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<i64>);
        let short: Vec<Row> = v
            .iter()
            .map(|v| {
                (
                    v.node.as_str(),
                    v.device.as_str(),
                    v.domain.as_str(),
                    v.parent.as_deref(),
                    v.minor,
                )
            })
            .collect();
        assert_eq!(
            short,
            vec![
                (
                    "gpu-0",
                    "vgpu-7-0",
                    "vgpu.nvidia.com",
                    Some("GPU-p"),
                    Some(8)
                ),
                (
                    "gpu-0",
                    "vgpu-7-1",
                    "vgpu.nvidia.com",
                    Some("GPU-p"),
                    Some(9)
                ),
                ("gpu-1", "v0", "vgpu.example.com", Some("GPU-q"), None),
            ]
        );
        // Configured names: nothing is a "mdev".
        let other = VgpuAttributes {
            type_value: "mdev".into(),
            ..VgpuAttributes::default()
        };
        assert!(vgpu_devices(&cluster(), &other).is_empty());
    }

    #[test]
    fn plan_prefers_a_parent_with_two_vgpus_and_states_why_when_not_applicable() {
        let attrs = VgpuAttributes::default();
        let Plan::Prove(p) = plan(&vgpu_devices(&cluster(), &attrs), &[], "x", &[]) else {
            panic!("a parent to prove");
        };
        assert_eq!((p.node.as_str(), p.vgpus.len()), ("gpu-0", 2));
        assert_eq!(
            selector(&p, &attrs),
            r#"device.driver == "vgpu.nvidia.com" && device.attributes["vgpu.nvidia.com"].type == "vgpu" && device.attributes["vgpu.nvidia.com"].parentUUID == "GPU-p""#
        );
        assert_eq!(
            parent_ids(&cluster(), Some("GPU-p"), &attrs),
            ParentIds {
                uuid: Some("GPU-p".into()),
                file: Some("/dev/nvidia7".into())
            }
        );

        // Nothing advertised: not applicable with the reason, never a pass.
        let patterns: Vec<String> = DEFAULT_VGPU_EXTENDED_RESOURCES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let Plan::NotApplicable(why) = plan(
            &[],
            &[],
            "no device in 2 ResourceSlice(s) has attribute type=vgpu",
            &patterns,
        ) else {
            panic!("not applicable");
        };
        assert!(
            why.starts_with("no vGPU devices found: no device in 2 ResourceSlice(s) has attribute type=vgpu, and no node advertises an extended resource matching nvidia.com/vgpu, nvidia.com/GRID_*.")
                && why.contains("Declare virtualized_accelerator not applicable with a reason"),
            "{why}"
        );

        // Only extended resources: vGPUs exist but not through DRA.
        let nodes: Vec<Node> = serde_json::from_value(json!([
            {"metadata": {"name": "kv-0"}, "status": {"allocatable": {
                "nvidia.com/GRID_A100-4C": "10", "nvidia.com/gpu": "0", "cpu": "8"}}},
            {"metadata": {"name": "plain"}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}}
        ]))
        .expect("nodes");
        let ext = vgpu_extended_resources(&nodes, &patterns);
        assert_eq!(
            ext,
            vec![(
                "kv-0".to_string(),
                "nvidia.com/GRID_A100-4C".to_string(),
                10
            )]
        );
        let Plan::OutsideDra(why) = plan(&[], &ext, "x", &patterns) else {
            panic!("outside DRA");
        };
        assert!(
            why.contains("kv-0: 10 nvidia.com/GRID_A100-4C")
                && why.contains("declare virtualized_accelerator not applicable"),
            "{why}"
        );
    }

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + secs).expect("timestamp"))
    }

    fn parent() -> (VgpuParent, ParentIds) {
        let attrs = VgpuAttributes::default();
        let Plan::Prove(p) = plan(&vgpu_devices(&cluster(), &attrs), &[], "x", &[]) else {
            panic!("parent");
        };
        let ids = parent_ids(&cluster(), p.parent.as_deref(), &attrs);
        (p, ids)
    }

    fn run(
        pod: &str,
        dev: &str,
        files: &[&str],
        env: &str,
        s: i64,
        f: i64,
        waited: bool,
    ) -> VgpuRun {
        VgpuRun {
            pod: pod.into(),
            allocated: Some(format!("vgpu.nvidia.com/gpu-0/{dev}")),
            view: Ok((
                if files.len() == 1 { 0 } else { 1 },
                DeviceView {
                    devices: files.iter().map(|s| s.to_string()).collect(),
                    visible_devices: Some(env.into()),
                },
            )),
            started: Some(at(s)),
            finished: Some(at(f)),
            waited: waited.then(|| "Unschedulable: cannot allocate all claims".to_string()),
        }
    }

    fn healthy() -> Vec<VgpuRun> {
        vec![
            run(
                "vgpu-0",
                "vgpu-7-0",
                &["/dev/nvidia8"],
                "GPU-a",
                0,
                10,
                false,
            ),
            run(
                "vgpu-1",
                "vgpu-7-1",
                &["/dev/nvidia9"],
                "GPU-b",
                1,
                11,
                false,
            ),
            run(
                "vgpu-2",
                "vgpu-7-0",
                &["/dev/nvidia8"],
                "GPU-a",
                10,
                20,
                true,
            ),
        ]
    }

    #[test]
    fn same_semantics_as_fractional_gpus_pass() {
        let (p, ids) = parent();
        let ok = judge(&p, &ids, &healthy()).expect("pass");
        assert!(
            ok.contains("3 pods each claiming one of the 2 vGPU(s) H100-40C of parent GPU GPU-p on node gpu-0")
                && ok.contains("2 ran at the same time")
                && ok.contains("vgpu-0 got vgpu-7-0: /dev/nvidia8 (NVIDIA_VISIBLE_DEVICES=GPU-a)")
                && ok.contains("pod vgpu-2 waited unallocated (Unschedulable: cannot allocate all claims)"),
            "{ok}"
        );
    }

    #[test]
    fn a_container_seeing_its_siblings_or_parent_fails() {
        let (p, ids) = parent();
        let mut leaky = healthy();
        leaky[0] = run(
            "vgpu-0",
            "vgpu-7-0",
            &["/dev/nvidia8", "/dev/nvidia9"],
            "GPU-a,GPU-b",
            0,
            10,
            false,
        );
        let e = judge(&p, &ids, &leaky).unwrap_err();
        assert!(
            e.contains("1 of 3 did not run with exactly their own vGPU")
                && e.contains("pod vgpu-0 was allocated vgpu-7-0 (GPU-a) but sees /dev/nvidia8, /dev/nvidia9 (NVIDIA_VISIBLE_DEVICES=GPU-a,GPU-b)")
                && e.contains("sibling vGPU(s) vgpu-7-1"),
            "{e}"
        );
        let mut parent_seen = healthy();
        parent_seen[1] = run(
            "vgpu-1",
            "vgpu-7-1",
            &["/dev/nvidia7"],
            "GPU-p",
            1,
            11,
            false,
        );
        let e = judge(&p, &ids, &parent_seen).unwrap_err();
        assert!(
            e.contains("not its device /dev/nvidia9") && e.contains("its parent GPU"),
            "{e}"
        );
        let mut unbacked = healthy();
        unbacked[2] = run("vgpu-2", "vgpu-7-0", &[], "", 10, 20, true);
        let e = judge(&p, &ids, &unbacked).unwrap_err();
        assert!(
            e.contains("sees no GPU device: 0 GPU devices instead of 1"),
            "{e}"
        );
    }

    #[test]
    fn overcommit_serialisation_and_no_wait_fail() {
        let (p, ids) = parent();
        let mut over = healthy();
        over[2] = run(
            "vgpu-2",
            "vgpu-7-0",
            &["/dev/nvidia8"],
            "GPU-a",
            2,
            12,
            false,
        );
        let e = judge(&p, &ids, &over).unwrap_err();
        assert!(
            e.contains("3 pods ran at the same time on 2 vGPU(s)"),
            "{e}"
        );

        let serial = vec![
            run(
                "vgpu-0",
                "vgpu-7-0",
                &["/dev/nvidia8"],
                "GPU-a",
                0,
                10,
                false,
            ),
            run(
                "vgpu-1",
                "vgpu-7-1",
                &["/dev/nvidia9"],
                "GPU-b",
                10,
                20,
                true,
            ),
            run(
                "vgpu-2",
                "vgpu-7-0",
                &["/dev/nvidia8"],
                "GPU-a",
                20,
                30,
                true,
            ),
        ];
        let e = judge(&p, &ids, &serial).unwrap_err();
        assert!(e.contains("never more than 1 at the same time"), "{e}");

        let mut never_waited = healthy();
        never_waited[2].waited = None;
        let e = judge(&p, &ids, &never_waited).unwrap_err();
        assert!(
            e.contains("pod vgpu-2 (the last to start) was never seen waiting"),
            "{e}"
        );

        let mut gone = healthy();
        gone[1].view = Err("did not finish within 180s: pod Pending".into());
        gone[1].allocated = None;
        let e = judge(&p, &ids, &gone).unwrap_err();
        assert!(
            e.contains("pod vgpu-1: container probe did not finish within 180s"),
            "{e}"
        );
    }

    #[test]
    fn the_schedulers_reason_for_a_waiting_pod() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "vgpu-2"},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 1 cannot allocate all claims. still not schedulable, preemption: 0/3 nodes are available"}]}}))
        .expect("pod");
        assert_eq!(
            unscheduled(&pod).as_deref(),
            Some("Unschedulable: 0/3 nodes are available: 1 cannot allocate all claims")
        );
        let bound: Pod = serde_json::from_value(json!({"metadata": {"name": "vgpu-0"},
            "status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}}))
        .expect("pod");
        assert_eq!(unscheduled(&bound), None);
    }

    #[test]
    fn concurrency_counts_half_open_intervals() {
        let r = |s: i64, f: i64| VgpuRun {
            pod: format!("{s}"),
            allocated: None,
            view: Err(String::new()),
            started: Some(at(s)),
            finished: Some(at(f)),
            waited: None,
        };
        assert_eq!(max_concurrent(&[r(0, 10), r(10, 20), r(20, 30)]), 1);
        assert_eq!(max_concurrent(&[r(0, 10), r(5, 20), r(9, 30)]), 3);
        assert_eq!(max_concurrent(&[]), 0);
    }
}
