//! accelerator_metrics (KAR-0059): an accelerator metrics endpoint with per-device numbers
//! that follow the load. The exporter is scraped the way a monitoring system or a user reaches
//! it, through the API server's service proxy: every GPU node must report utilization and
//! memory for each of its devices, and while a pod of the case holds a GPU, that device's
//! utilization must change.
//!
//! Parameters: `namespace` and `exporter` (the exporter's Service and DaemonSet; default the
//! GPU Operator's `nvidia-dcgm-exporter`), `loadImage` and `loadCommand` (the GPU workload;
//! default `aiconform probe sleep`, which only holds the device: on real GPUs use a program that
//! loads it), `changeWithinSeconds` (how long the device may take to show the load; DCGM
//! collects every 30 s by default).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::resource::v1::{DeviceClass, ResourceClaim};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::exposition::{self, Sample};
use super::super::k8s::{
    case_namespace, create, gpu_allocatable, gpu_nodes, gpu_tolerations, pod_state, wait_object,
};
use super::*;
use crate::health;
use crate::runner::{CaseContext, Outcome};

const UTIL: &str = "DCGM_FI_DEV_GPU_UTIL";
const FB_USED: &str = "DCGM_FI_DEV_FB_USED";
const FB_FREE: &str = "DCGM_FI_DEV_FB_FREE";
const LOAD_POD: &str = "gpu-load";

/// Metric families named `DCGM_FI_*` in a Prometheus text exposition.
pub fn dcgm_metric_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let name = l.split(['{', ' ']).next()?;
            name.starts_with("DCGM_FI_").then(|| name.to_string())
        })
        .collect()
}

/// What the exporter reports for one device.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceReading {
    pub uuid: Option<String>,
    /// Utilization in percent.
    pub util: Option<f64>,
    /// Frame buffer memory used and free, MiB.
    pub fb_used: Option<f64>,
    pub fb_free: Option<f64>,
    /// The pod the exporter attributes the device to, as `namespace/name`.
    pub pod: Option<String>,
}

impl DeviceReading {
    fn complete(&self) -> bool {
        self.util.is_some() && (self.fb_used.is_some() || self.fb_free.is_some())
    }
}

/// Device readings by node (`Hostname` label) and GPU index (`gpu` label).
pub type NodeReadings = BTreeMap<String, BTreeMap<String, DeviceReading>>;

/// Group the DCGM samples of a scrape by node and device.
pub fn device_readings(samples: &[Sample]) -> NodeReadings {
    let mut out = NodeReadings::new();
    for s in samples {
        let (Some(node), Some(gpu)) = (s.labels.get("Hostname"), s.labels.get("gpu")) else {
            continue;
        };
        let slot = match s.name.as_str() {
            UTIL | FB_USED | FB_FREE => out
                .entry(node.clone())
                .or_default()
                .entry(gpu.clone())
                .or_default(),
            _ => continue,
        };
        match s.name.as_str() {
            UTIL => slot.util = Some(s.value),
            FB_USED => slot.fb_used = Some(s.value),
            _ => slot.fb_free = Some(s.value),
        }
        if let Some(u) = s.labels.get("UUID") {
            slot.uuid = Some(u.clone());
        }
        if let (Some(ns), Some(pod)) = (s.labels.get("namespace"), s.labels.get("pod"))
            && !pod.is_empty()
        {
            slot.pod = Some(format!("{ns}/{pod}"));
        }
    }
    out
}

/// Why the readings do not cover every GPU node with utilization and memory for each of its
/// devices (`expected`: node → device count, when known).
pub fn coverage_problems(
    expected: &BTreeMap<String, Option<u64>>,
    seen: &NodeReadings,
) -> Vec<String> {
    let mut out = Vec::new();
    for (node, want) in expected {
        let complete = seen
            .get(node)
            .map(|d| d.values().filter(|r| r.complete()).count() as u64)
            .unwrap_or(0);
        match (seen.get(node), want) {
            (None, _) => out.push(format!("{node}: no series with Hostname={node}")),
            (Some(_), Some(n)) if complete < *n => out.push(format!(
                "{node}: utilization and memory for {complete} of {n} GPUs"
            )),
            (Some(_), None) if complete == 0 => out.push(format!(
                "{node}: no device with both utilization and memory"
            )),
            _ => {}
        }
    }
    out
}

fn gpu_name(gpu: &str, r: &DeviceReading) -> String {
    match &r.uuid {
        Some(u) => format!("GPU {gpu} ({u})"),
        None => format!("GPU {gpu}"),
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_else(|| "-".into())
}

/// Whether a node's device utilization moved between an idle and a loaded scrape. The device
/// the exporter attributes to `pod` must move; without attribution, any device may.
pub fn utilization_change(
    before: &BTreeMap<String, DeviceReading>,
    after: &BTreeMap<String, DeviceReading>,
    pod: &str,
) -> Result<String, String> {
    let describe = |gpu: &str, a: &DeviceReading| {
        let b = before.get(gpu).cloned().unwrap_or_default();
        format!(
            "{} utilization {}% → {}%, memory used {} → {} MiB",
            gpu_name(gpu, a),
            num(b.util),
            num(a.util),
            num(b.fb_used),
            num(a.fb_used)
        )
    };
    let moved = |gpu: &str, a: &DeviceReading| {
        a.util.is_some() && before.get(gpu).and_then(|b| b.util) != a.util
    };
    let attributed: Vec<(&String, &DeviceReading)> = after
        .iter()
        .filter(|(_, r)| r.pod.as_deref() == Some(pod))
        .collect();
    if !attributed.is_empty() {
        return match attributed.iter().find(|(g, r)| moved(g, r)) {
            Some((g, r)) => Ok(format!("{} (attributed to {pod})", describe(g, r))),
            None => Err(format!(
                "the device(s) attributed to {pod} did not change: {}",
                attributed
                    .iter()
                    .map(|(g, r)| describe(g, r))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
    }
    match after.iter().find(|(g, r)| moved(g, r)) {
        Some((g, r)) => Ok(format!(
            "{} (the exporter does not attribute devices to pods)",
            describe(g, r)
        )),
        None => Err(format!(
            "no device changed (utilization {}) and none is attributed to {pod}",
            after
                .iter()
                .map(|(g, r)| format!("{g}: {}%", num(r.util)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether a held device's utilization moved once the workload ended: the devices attributed
/// to `pod` while it ran (without attribution, any device) compared with a later scrape.
pub fn utilization_release(
    held: &BTreeMap<String, DeviceReading>,
    after: &BTreeMap<String, DeviceReading>,
    pod: &str,
) -> Result<String, String> {
    let ours: Vec<(&String, &DeviceReading)> = held
        .iter()
        .filter(|(_, r)| r.pod.as_deref() == Some(pod))
        .collect();
    let candidates = if ours.is_empty() {
        held.iter().collect()
    } else {
        ours
    };
    for (g, h) in &candidates {
        if let Some(a) = after.get(*g)
            && a.util.is_some()
            && a.util != h.util
        {
            return Ok(format!(
                "{} utilization {}% while {pod} held it → {}% after it ended",
                gpu_name(g, h),
                num(h.util),
                num(a.util)
            ));
        }
    }
    Err(format!(
        "utilization stayed the same ({})",
        candidates
            .iter()
            .map(|(g, r)| format!("{g}: {}%", num(r.util)))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// A verdict on one node's device readings: why they show the load, or why not.
type Judge<'a> = dyn Fn(&BTreeMap<String, DeviceReading>) -> Result<String, String> + Sync + 'a;

/// Scrape `node` every second until `judge` accepts its readings or `until` passes. Returns
/// the verdict (the last judgement wins over a later scrape error) and the last readings.
async fn watch_node(
    client: &Client,
    path: &str,
    node: &str,
    attempts: usize,
    until: tokio::time::Instant,
    judge: &Judge<'_>,
) -> anyhow::Result<(
    Result<String, String>,
    Option<BTreeMap<String, DeviceReading>>,
)> {
    let only = BTreeSet::from([node.to_string()]);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let (mut judged, mut scrape_err, mut last) = (None, None, None);
    loop {
        tick.tick().await;
        let (mut seen, err) = scrape_nodes(client, path, &only, attempts, until).await?;
        match seen.remove(node) {
            Some(readings) => {
                let verdict = judge(&readings);
                last = Some(readings);
                match verdict {
                    Ok(m) => return Ok((Ok(m), last)),
                    Err(e) => judged = Some(e),
                }
            }
            None => scrape_err = err.or(scrape_err),
        }
        if tokio::time::Instant::now() >= until {
            let e = judged
                .or(scrape_err)
                .unwrap_or_else(|| format!("no scrape of {node} answered"));
            return Ok((Err(e), last));
        }
    }
}

/// Scrape through the service proxy until every node in `want` answered or `attempts` are
/// used (each request reaches one endpoint). Returns the readings and the last error.
async fn scrape_nodes(
    client: &Client,
    path: &str,
    want: &BTreeSet<String>,
    attempts: usize,
    deadline: tokio::time::Instant,
) -> anyhow::Result<(NodeReadings, Option<String>)> {
    let mut seen = NodeReadings::new();
    let mut last_err = None;
    for _ in 0..attempts {
        let request = axum::http::Request::get(path).body(Vec::new())?;
        match tokio::time::timeout_at(deadline, client.request_text(request)).await {
            Err(_) => {
                last_err = Some(format!("scraping {path} timed out"));
                break;
            }
            Ok(Err(e)) => last_err = Some(format!("scraping {path}: {e}")),
            Ok(Ok(text)) => match exposition::parse(&text) {
                Err(e) => last_err = Some(format!("{path} is not a Prometheus exposition: {e}")),
                Ok(samples) => seen.extend(device_readings(&samples)),
            },
        }
        if want.iter().all(|n| seen.contains_key(n)) {
            break;
        }
    }
    Ok((seen, last_err))
}

pub(super) async fn accelerator_metrics_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let ns = ctx.param::<String>("namespace")?.unwrap_or_else(|| {
        ctx.recipe
            .component("gpu-operator")
            .map(|c| c.namespace.clone())
            .unwrap_or_else(|| "gpu-operator".to_string())
    });
    let name = ctx
        .param::<String>("exporter")?
        .unwrap_or_else(|| "nvidia-dcgm-exporter".to_string());
    let Some(svc) = Api::<Service>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?
    else {
        return Ok(Outcome::failed(format!(
            "no DCGM exporter: no Service {ns}/{name} exposes an accelerator metrics endpoint (GPU Operator dcgmExporter disabled or not installed; set params.namespace/exporter otherwise)"
        )));
    };
    let deadline = deadline(&ctx);
    if Api::<DaemonSet>::namespaced(client.clone(), &ns)
        .get_opt(&name)
        .await?
        .is_some()
        && let Err(e) = wait_object(
            Api::<DaemonSet>::namespaced(client.clone(), &ns),
            &format!("DaemonSet {ns}/{name}"),
            &name,
            deadline,
            health::daemonset,
        )
        .await?
    {
        return Ok(Outcome::failed(format!("DCGM exporter not ready: {e}")));
    }
    let endpoints = service_endpoints(&client, &ns, &name).await?;
    if endpoints == 0 {
        return Ok(Outcome::failed(format!(
            "Service {ns}/{name} has no ready endpoints: no exporter pod serves its metrics"
        )));
    }
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let alloc: BTreeMap<String, u64> = gpu_allocatable(&nodes).into_iter().collect();
    let expected: BTreeMap<String, Option<u64>> = gpu_nodes(&nodes)
        .into_iter()
        .map(|n| (n.name_any(), alloc.get(&n.name_any()).copied()))
        .collect();
    if expected.is_empty() {
        return Ok(Outcome::failed(
            "no GPU node (label nvidia.com/gpu.present=true or allocatable nvidia.com/gpu): nothing to measure",
        ));
    }
    let port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.name.clone().unwrap_or_else(|| p.port.to_string()))
        .unwrap_or_else(|| "9400".to_string());
    let path = format!("/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/metrics");
    let want: BTreeSet<String> = expected.keys().cloned().collect();
    let attempts = 8 * want.len() + 8;
    let (before, err) = scrape_nodes(&client, &path, &want, attempts, deadline).await?;
    let problems = coverage_problems(&expected, &before);
    if !problems.is_empty() {
        let why = err
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        return Ok(Outcome::failed(format!(
            "scraping {path} ({attempts} requests through the API server service proxy, {endpoints} endpoint(s)) does not give per-device utilization and memory for every GPU node: {}{why}",
            problems.join("; ")
        )));
    }
    let coverage = before
        .iter()
        .filter(|(n, _)| expected.contains_key(*n))
        .map(|(n, d)| format!("{n}: {} GPUs", d.len()))
        .collect::<Vec<_>>()
        .join(", ");

    let case_ns = case_namespace(&ctx)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &case_ns);
    if let Err(why) = start_load(&ctx, &client, &case_ns, &nodes).await? {
        return Ok(Outcome::failed(why));
    }
    let running = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.clone())
            .is_some_and(|ph| ph != "Pending")
    };
    let waited =
        tokio::time::timeout_at(deadline, await_condition(pods.clone(), LOAD_POD, running)).await;
    let pod = match waited {
        Ok(r) => r?,
        Err(_) => pods.get_opt(LOAD_POD).await?,
    };
    let Some(pod) = pod else {
        anyhow::bail!("pod {case_ns}/{LOAD_POD} disappeared");
    };
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    let (Some("Running"), Some(node)) = (phase.as_deref(), node) else {
        return Ok(Outcome::failed(format!(
            "{coverage}; but the GPU workload {case_ns}/{LOAD_POD} did not run: {}",
            pod_state(&pod)
        )));
    };
    let holder = format!("{case_ns}/{LOAD_POD}");
    let idle = before.get(&node).cloned().unwrap_or_default();
    let within = Duration::from_secs(ctx.param::<u64>("changeWithinSeconds")?.unwrap_or(60));
    let change_deadline = deadline.min(tokio::time::Instant::now() + within);
    let (during, held) = watch_node(&client, &path, &node, attempts, change_deadline, &|after| {
        utilization_change(&idle, after, &holder)
    })
    .await?;
    let _ = pods
        .delete(LOAD_POD, &DeleteParams::default().grace_period(0))
        .await;
    // The device may have been busy before (another workload was ending): then the change
    // shows when this one ends.
    let verdict = match (during, held) {
        (Ok(m), _) => Ok(m),
        (Err(e), Some(held)) if tokio::time::Instant::now() < deadline => {
            let until = deadline.min(tokio::time::Instant::now() + within);
            let (released, _) = watch_node(&client, &path, &node, attempts, until, &|after| {
                utilization_release(&held, after, &holder)
            })
            .await?;
            released.map_err(|r| format!("{e}; and after it ended, {r}"))
        }
        (Err(e), _) => Err(e),
    };
    Ok(match verdict {
        Ok(m) => Outcome::passed(format!(
            "DCGM exporter {ns}/{name} scraped through the API server service proxy: utilization and memory per device on every GPU node ({coverage}); {holder} held a GPU on {node}: {m}"
        )),
        Err(e) => Outcome::failed(format!(
            "DCGM exporter {ns}/{name} reports every GPU node ({coverage}), but its numbers do not follow the load: while {holder} held a GPU on {node} for {}s, {e}",
            within.as_secs()
        )),
    })
}

/// Create the pod that holds one GPU: through the device plugin when nodes advertise
/// `nvidia.com/gpu`, else through a ResourceClaim of the DeviceClass.
async fn start_load(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    nodes: &[Node],
) -> anyhow::Result<Result<(), String>> {
    let class = ctx
        .param::<String>("deviceClass")?
        .unwrap_or_else(|| DEFAULT_DEVICE_CLASS.to_string());
    let remaining = deadline(ctx).saturating_duration_since(tokio::time::Instant::now());
    let command = ctx.param::<Vec<String>>("loadCommand")?.unwrap_or_else(|| {
        vec![
            "aiconform".into(),
            "probe".into(),
            "sleep".into(),
            format!("{}s", remaining.as_secs() + 5),
        ]
    });
    let image = match ctx.param::<String>("loadImage")? {
        Some(image) => image,
        None => probe_image(ctx)?,
    };
    let mut spec = json!({
        "restartPolicy": "Never",
        "tolerations": gpu_tolerations(),
        "containers": [{"name": "load", "image": image, "command": command}]
    });
    if !gpu_allocatable(nodes).is_empty() {
        spec["containers"][0]["resources"] = json!({"limits": {"nvidia.com/gpu": "1"}});
    } else if Api::<DeviceClass>::all(client.clone())
        .get_opt(&class)
        .await?
        .is_some()
    {
        create(
            &Api::<ResourceClaim>::namespaced(client.clone(), ns),
            json!({"metadata": {"name": LOAD_POD},
                "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": class}}]}}}),
        )
        .await?;
        spec["containers"][0]["resources"] = json!({"claims": [{"name": "gpu"}]});
        spec["resourceClaims"] = json!([{"name": "gpu", "resourceClaimName": LOAD_POD}]);
    } else {
        return Ok(Err(format!(
            "no GPU is offered to pods: no node advertises nvidia.com/gpu and DeviceClass {class} does not exist"
        )));
    }
    create(
        &Api::<Pod>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": LOAD_POD}, "spec": spec}),
    )
    .await?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    #[test]
    fn endpoints_and_dcgm_metrics() {
        let slices: Vec<EndpointSlice> = serde_json::from_value(json!([
            {"metadata": {"name": "a"}, "addressType": "IPv4", "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}}]},
            {"metadata": {"name": "b"}, "addressType": "IPv4"}
        ]))
        .expect("slices");
        assert_eq!(ready_endpoints(&slices), 1);
        let text = "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization.\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 12\nDCGM_FI_DEV_FB_USED{gpu=\"0\"} 100\ngo_goroutines 12\n";
        let names = dcgm_metric_names(text);
        assert_eq!(names.len(), 2);
        assert!(names.contains("DCGM_FI_DEV_GPU_UTIL"));
        assert!(dcgm_metric_names("go_goroutines 1\n").is_empty());
    }

    /// A scrape of node `node` with `util` per GPU; GPU 1 held by `pod` when given.
    fn scrape(node: &str, util: &[f64], pod: Option<&str>) -> NodeReadings {
        let mut text = String::new();
        for (i, u) in util.iter().enumerate() {
            let held = match pod {
                Some(p) if i == 1 => format!(",namespace=\"ns\",pod=\"{p}\",container=\"c\""),
                _ => String::new(),
            };
            let l = format!("gpu=\"{i}\",UUID=\"GPU-{i}\",Hostname=\"{node}\"{held}");
            text += &format!("{UTIL}{{{l}}} {u}\n{FB_USED}{{{l}}} {}\n", u * 10.0);
        }
        device_readings(&exposition::parse(&text).expect("parse"))
    }

    #[test]
    fn readings_by_node_and_device_with_pod_attribution() {
        let r = scrape("gpu-0", &[0.0, 97.0], Some("load"));
        let d = &r["gpu-0"];
        assert_eq!(d.len(), 2);
        assert_eq!(d["1"].util, Some(97.0));
        assert_eq!(d["1"].fb_used, Some(970.0));
        assert_eq!(d["1"].uuid.as_deref(), Some("GPU-1"));
        assert_eq!(d["1"].pod.as_deref(), Some("ns/load"));
        assert_eq!(d["0"].pod, None);
        // Series without Hostname or gpu are not device readings.
        let other = exposition::parse("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 1\nup 1\n").expect("p");
        assert!(device_readings(&other).is_empty());
    }

    #[test]
    fn coverage_needs_every_gpu_node_and_device() {
        let mut seen = scrape("gpu-0", &[0.0, 0.0], None);
        let expected = BTreeMap::from([
            ("gpu-0".to_string(), Some(2)),
            ("gpu-1".to_string(), Some(8)),
        ]);
        assert_eq!(
            coverage_problems(&expected, &seen),
            vec!["gpu-1: no series with Hostname=gpu-1"]
        );
        seen.extend(scrape("gpu-1", &[0.0; 3], None));
        assert_eq!(
            coverage_problems(&expected, &seen),
            vec!["gpu-1: utilization and memory for 3 of 8 GPUs"]
        );
        seen.extend(scrape("gpu-1", &[0.0; 8], None));
        assert!(coverage_problems(&expected, &seen).is_empty());
        // Utilization without memory does not count.
        let util_only = device_readings(
            &exposition::parse("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",Hostname=\"n\"} 1\n").expect("p"),
        );
        let one = BTreeMap::from([("n".to_string(), None)]);
        assert_eq!(
            coverage_problems(&one, &util_only),
            vec!["n: no device with both utilization and memory"]
        );
    }

    #[test]
    fn utilization_must_move_on_the_attributed_device() {
        let idle = scrape("gpu-0", &[0.0, 0.0], None).remove("gpu-0").unwrap();
        let busy = scrape("gpu-0", &[0.0, 97.0], Some("load"))
            .remove("gpu-0")
            .unwrap();
        let m = utilization_change(&idle, &busy, "ns/load").expect("moved");
        assert!(m.starts_with("GPU 1 (GPU-1) utilization 0% → 97%"), "{m}");
        assert!(m.contains("attributed to ns/load"), "{m}");
        // Frozen: attributed but unchanged.
        let frozen = scrape("gpu-0", &[0.0, 0.0], Some("load"))
            .remove("gpu-0")
            .unwrap();
        let e = utilization_change(&idle, &frozen, "ns/load").expect_err("frozen");
        assert!(e.contains("did not change"), "{e}");
        // Another device moved, but not the one attributed to the pod.
        let wrong = scrape("gpu-0", &[50.0, 0.0], Some("load"))
            .remove("gpu-0")
            .unwrap();
        assert!(utilization_change(&idle, &wrong, "ns/load").is_err());
        // Without attribution any device moving counts; none moving fails.
        let anon = scrape("gpu-0", &[0.0, 97.0], None).remove("gpu-0").unwrap();
        assert!(
            utilization_change(&idle, &anon, "ns/load")
                .expect("moved")
                .contains("does not attribute")
        );
        let e = utilization_change(&idle, &idle, "ns/load").expect_err("idle");
        assert!(
            e.contains("no device changed (utilization 0: 0%, 1: 0%)"),
            "{e}"
        );
    }

    #[test]
    fn utilization_may_move_when_the_workload_ends() {
        // Busy before (another workload), busy while held: the change shows at the end.
        let held = scrape("gpu-0", &[97.0, 0.0], None);
        let mut held = held["gpu-0"].clone();
        held.get_mut("0").unwrap().pod = Some("ns/load".into());
        let ended = scrape("gpu-0", &[0.0, 0.0], None).remove("gpu-0").unwrap();
        let m = utilization_release(&held, &ended, "ns/load").expect("released");
        assert_eq!(
            m,
            "GPU 0 (GPU-0) utilization 97% while ns/load held it → 0% after it ended"
        );
        let frozen = scrape("gpu-0", &[0.0, 0.0], None).remove("gpu-0").unwrap();
        let e = utilization_release(&frozen, &frozen, "ns/load").expect_err("frozen");
        assert_eq!(e, "utilization stayed the same (0: 0%, 1: 0%)");
    }
}
