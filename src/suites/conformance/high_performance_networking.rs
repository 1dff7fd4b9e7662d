//! high_performance_networking (KAR-0010): special NICs are published by a DRA NIC driver
//! (DRANET-style: ResourceSlices of driver `dra.net` whose devices carry RDMA, PCI address and
//! NUMA node attributes), pods claiming one land only on nodes that have one (a pod pinned to a
//! node without one stays unschedulable), each such pod sees the interface the driver reports
//! in its claim (`status.devices[].networkData`) in its own network namespace besides its
//! primary interface, and several MB sent from one pod to the other's secondary address raise
//! the byte counters of both secondary interfaces while the primary ones do not carry it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::resource::v1::{
    DeviceAttribute, DeviceClass, ResourceClaim, ResourceClaimTemplate, ResourceSlice,
};
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{
    case_namespace, create, gpu_nodes, gpu_tolerations, pod_running_or_done, pod_state, wait_object,
};
use super::*;
use crate::probe::net::{Interface, NetReport};
use crate::runner::{CaseContext, Outcome};

/// DRANET's driver name.
pub const DEFAULT_NIC_DRIVER: &str = "dra.net";
/// DRANET's DeviceClass.
pub const DEFAULT_NIC_CLASS: &str = "dranet";
/// Payload of the transfer (`params.bytes`).
const DEFAULT_BYTES: u64 = 8 * 1024 * 1024;

/// The characteristics of a NIC the requirement names, as DRANET calls its attributes.
const CHARACTERISTICS: [&str; 3] = ["rdma", "pciAddress", "numaNode"];

/// One NIC a DRA driver publishes, with its attributes (the driver's domain prefix dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub node: String,
    pub device: String,
    pub attributes: BTreeMap<String, String>,
}

fn attribute_text(a: &DeviceAttribute) -> Option<String> {
    a.bool
        .map(|b| b.to_string())
        .or_else(|| a.int.map(|i| i.to_string()))
        .or_else(|| a.string.clone())
        .or_else(|| a.version.clone())
}

/// The node-local devices the driver publishes, sorted by node and device.
pub fn nic_inventory(slices: &[ResourceSlice], driver: &str) -> Vec<Nic> {
    let prefix = format!("{driver}/");
    let prefix = prefix.as_str();
    let mut out: Vec<Nic> = slices
        .iter()
        .filter(|s| s.spec.driver == driver)
        .flat_map(|s| {
            let node = s.spec.node_name.clone().unwrap_or_default();
            s.spec.devices.iter().flatten().map(move |d| Nic {
                node: node.clone(),
                device: d.name.clone(),
                attributes: d
                    .attributes
                    .iter()
                    .flatten()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix(prefix).unwrap_or(k).to_string(),
                            attribute_text(v)?,
                        ))
                    })
                    .collect(),
            })
        })
        .filter(|n| !n.node.is_empty())
        .collect();
    out.sort_by(|a, b| (&a.node, &a.device).cmp(&(&b.node, &b.device)));
    out
}

/// `gpu-0: ens1f0np0 (rdma=true pciAddress=0000:1a:00.0 numaNode=0), ...` for NICs that
/// publish any of the named characteristics.
pub fn describe_characteristics(nics: &[Nic]) -> Vec<String> {
    nics.iter()
        .filter_map(|n| {
            let found: Vec<String> = CHARACTERISTICS
                .iter()
                .filter_map(|c| n.attributes.get(*c).map(|v| format!("{c}={v}")))
                .collect();
            (!found.is_empty()).then(|| format!("{}: {} ({})", n.node, n.device, found.join(" ")))
        })
        .collect()
}

/// The interface name and IPs the driver wrote for its device in the claim's status.
pub fn network_data(claim: &ResourceClaim, driver: &str) -> Option<(String, Vec<String>)> {
    claim
        .status
        .as_ref()?
        .devices
        .iter()
        .flatten()
        .filter(|d| d.driver == driver)
        .find_map(|d| {
            let nd = d.network_data.as_ref()?;
            Some((
                nd.interface_name.clone().filter(|n| !n.is_empty())?,
                nd.ips.clone().unwrap_or_default(),
            ))
        })
}

/// The address of `ADDRESS/PREFIX`.
fn address_of(cidr: &str) -> &str {
    cidr.split_once('/').map_or(cidr, |(a, _)| a)
}

/// One pod's verdict from the driver's networkData and the pod's own report: the named
/// interface exists with its addresses beside a primary interface, the transfer completed,
/// the secondary's counter (received when serving, sent when sending) rose by at least the
/// payload and no primary interface carried half of it.
pub fn judge_pod(
    pod: &str,
    network: Option<&(String, Vec<String>)>,
    report: &NetReport,
    bytes: u64,
) -> Result<String, String> {
    let Some((name, ips)) = network else {
        return Err(format!(
            "{pod}: its claim has no networkData from the NIC driver (status.devices[].networkData)"
        ));
    };
    let seen: Vec<&str> = report.interfaces.iter().map(|i| i.name.as_str()).collect();
    let Some(secondary) = report.interface(name) else {
        return Err(format!(
            "{pod}: the claim's networkData names interface {name} ({}), but the pod's own network namespace has only {}",
            ips.join(", "),
            seen.join(", ")
        ));
    };
    let missing: Vec<&String> = ips
        .iter()
        .filter(|ip| {
            !secondary
                .addresses
                .iter()
                .any(|a| address_of(a) == address_of(ip))
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{pod}: interface {name} has addresses [{}], not {} as the claim's networkData says",
            secondary.addresses.join(", "),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let primaries: Vec<_> = report
        .interfaces
        .iter()
        .filter(|i| i.name != *name && i.name != "lo")
        .collect();
    if primaries.is_empty() {
        return Err(format!(
            "{pod}: {name} is its only interface besides lo: no primary interface"
        ));
    }
    if let Some(e) = &report.error {
        return Err(format!("{pod}: the {} failed: {e}", report.role));
    }
    if report.bytes < bytes {
        return Err(format!(
            "{pod}: the {} moved {} of {bytes} bytes",
            report.role, report.bytes
        ));
    }
    let serving = report.role == "serve";
    let dir = if serving { "received" } else { "sent" };
    let counter = |i: &Interface| if serving { i.rx_bytes } else { i.tx_bytes };
    if counter(secondary) < bytes {
        return Err(format!(
            "{pod}: {} {bytes} bytes but {name} {dir} only {} bytes meanwhile: the data did not cross the secondary interface",
            report.role,
            counter(secondary)
        ));
    }
    let carried: Vec<String> = primaries
        .iter()
        .filter(|p| counter(p) >= bytes / 2)
        .map(|p| format!("{} {dir} {} bytes", p.name, counter(p)))
        .collect();
    if !carried.is_empty() {
        return Err(format!(
            "{pod}: the primary interface carried the transfer: {}",
            carried.join(", ")
        ));
    }
    Ok(format!(
        "{pod}: {name} ({}) besides {}; {} {bytes} bytes, {name} {dir} {} bytes, {}",
        ips.join(", "),
        primaries
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        report.role,
        counter(secondary),
        primaries
            .iter()
            .map(|p| format!("{} {}", p.name, counter(p)))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The report of a finished probe container, or what the pod shows instead.
fn net_report(pod: &Pod) -> Result<(i32, NetReport), String> {
    let state = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "probe"))
        .and_then(|c| c.state.as_ref());
    let Some(t) = state.and_then(|s| s.terminated.as_ref()) else {
        return Err(format!("did not finish: {}", pod_state(pod)));
    };
    let msg = t.message.as_deref().unwrap_or("").trim();
    serde_json::from_str::<NetReport>(msg)
        .map(|r| (t.exit_code, r))
        .map_err(|_| {
            format!(
                "the probe exited {} ({}) without a network report: {msg}",
                t.exit_code,
                t.reason.as_deref().unwrap_or("-")
            )
        })
}

/// The networkData of the claims in the namespace, by the pod owning each claim, as the
/// driver writes it.
async fn record_network_data(
    claims: Api<ResourceClaim>,
    driver: String,
    seen: tokio::sync::watch::Sender<BTreeMap<String, (String, Vec<String>)>>,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let mut stream = std::pin::pin!(watcher(claims, watcher::Config::default()).applied_objects());
    while let Some(ev) = stream.next().await {
        let Ok(claim) = ev else { continue };
        let Some(net) = network_data(&claim, &driver) else {
            continue;
        };
        for owner in claim.owner_references().iter().filter(|o| o.kind == "Pod") {
            seen.send_if_modified(|m| {
                let new = !m.contains_key(&owner.name);
                m.entry(owner.name.clone()).or_insert_with(|| net.clone());
                new
            });
        }
    }
}

/// Aborts a background task when the case returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn claim_name(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .resource_claim_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == "nic")?
        .resource_claim_name
        .clone()
}

fn done(p: Option<&Pod>) -> bool {
    p.and_then(|p| p.status.as_ref()?.phase.as_deref())
        .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
}

/// A pod claiming one NIC from the template and running `probe net` with `args`.
fn nic_pod(image: &str, name: &str, args: Vec<String>, node: Option<&str>) -> serde_json::Value {
    let mut all = vec!["probe".to_string(), "net".to_string()];
    all.extend(args);
    let mut spec = json!({
        "restartPolicy": "Never",
        "containers": [{"name": "probe", "image": image, "args": all,
            "resources": {"claims": [{"name": "nic"}]}}],
        "resourceClaims": [{"name": "nic", "resourceClaimTemplateName": "hpn-nic"}],
        "tolerations": gpu_tolerations()
    });
    if let Some(n) = node {
        spec["nodeSelector"] = json!({"kubernetes.io/hostname": n});
    }
    json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/name": "aiconform-high-performance-networking"}},
        "spec": spec})
}

pub(super) async fn high_performance_networking_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let image = probe_image(&ctx)?;
    let driver = ctx
        .param::<String>("driver")?
        .unwrap_or_else(|| DEFAULT_NIC_DRIVER.to_string());
    let class = ctx
        .param::<String>("deviceClass")?
        .unwrap_or_else(|| DEFAULT_NIC_CLASS.to_string());
    let bytes = ctx.param::<u64>("bytes")?.unwrap_or(DEFAULT_BYTES);
    let port = ctx.param::<u16>("port")?.unwrap_or(5201);

    // 1. NICs and their characteristics are discoverable in ResourceSlices.
    let slices = Api::<ResourceSlice>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let nics = nic_inventory(&slices, &driver);
    if nics.is_empty() {
        let drivers: BTreeSet<&str> = slices.iter().map(|s| s.spec.driver.as_str()).collect();
        return Ok(Outcome::failed(format!(
            "no NIC found: no node-local ResourceSlice of DRA driver {driver} publishes a device ({} ResourceSlice(s) of driver(s) {}); install a DRA NIC driver such as DRANET or set params.driver",
            slices.len(),
            if drivers.is_empty() {
                "none".to_string()
            } else {
                drivers.into_iter().collect::<Vec<_>>().join(", ")
            }
        )));
    }
    let characteristics = describe_characteristics(&nics);
    if characteristics.is_empty() {
        return Ok(Outcome::failed(format!(
            "{} device(s) of {driver} publish none of the attributes {}: NIC characteristics are not discoverable",
            nics.len(),
            CHARACTERISTICS
                .iter()
                .map(|c| format!("{driver}/{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if Api::<DeviceClass>::all(client.clone())
        .get_opt(&class)
        .await?
        .is_none()
    {
        return Ok(Outcome::failed(format!(
            "DeviceClass {class} not found: pods cannot claim the {} NIC(s) of {driver} (set params.deviceClass)",
            nics.len()
        )));
    }
    let capable: BTreeSet<&str> = nics.iter().map(|n| n.node.as_str()).collect();
    let ns = case_namespace(&ctx)?;
    let deadline = deadline(&ctx);
    let mut request = json!({"name": "nic", "exactly": {"deviceClassName": class}});
    if let Some(cel) = ctx.param::<String>("selector")? {
        request["exactly"]["selectors"] = json!([{"cel": {"expression": cel}}]);
    }
    let templates: Api<ResourceClaimTemplate> = Api::namespaced(client.clone(), &ns);
    create(
        &templates,
        json!({"metadata": {"name": "hpn-nic"}, "spec": {"spec": {"devices": {"requests": [request]}}}}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let claims: Api<ResourceClaim> = Api::namespaced(client.clone(), &ns);

    // 2. A pod pinned to a node without NICs stays unschedulable.
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let incapable = gpu_nodes(&nodes)
        .into_iter()
        .map(|n| n.name_any())
        .chain(nodes.iter().map(|n| n.name_any()))
        .find(|n| !capable.contains(n.as_str()));
    let pinned = match &incapable {
        None => "every node has a NIC, so no pod was pinned to a node without one".to_string(),
        Some(node) => {
            create(
                &pods,
                nic_pod(
                    &image,
                    "hpn-pinned",
                    vec!["--timeout".into(), "1s".into()],
                    Some(node),
                ),
            )
            .await?;
            let unschedulable = |p: Option<&Pod>| {
                p.is_some_and(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                        || p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .into_iter()
                            .flatten()
                            .any(|c| {
                                c.type_ == "PodScheduled"
                                    && c.status == "False"
                                    && c.reason.as_deref() == Some("Unschedulable")
                            })
                })
            };
            let until =
                deadline.min(tokio::time::Instant::now() + std::time::Duration::from_secs(30));
            let _ = tokio::time::timeout_at(
                until,
                await_condition(pods.clone(), "hpn-pinned", unschedulable),
            )
            .await;
            let p = pods.get("hpn-pinned").await?;
            if let Some(bound) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                return Ok(Outcome::failed(format!(
                    "pod hpn-pinned claiming a NIC of DeviceClass {class} was bound to {bound}, whose ResourceSlices publish no {driver} device (NICs on {})",
                    capable.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
            let state = pod_state(&p);
            if !state.contains("Unschedulable") {
                return Ok(Outcome::failed(format!(
                    "pod hpn-pinned claiming a NIC, pinned to {node} (no {driver} device), was not reported unschedulable: {state}"
                )));
            }
            format!("a pod pinned to {node} (no NIC) stayed unschedulable")
        }
    };

    // 3. The server: its claim's networkData is where the client sends. A claim generated
    // for a pod is deallocated once the pod is done: record networkData as it appears.
    let (seen_tx, seen) = tokio::sync::watch::channel(BTreeMap::new());
    let recorder = tokio::spawn(record_network_data(claims.clone(), driver.clone(), seen_tx));
    let _stop = AbortOnDrop(recorder);
    create(
        &pods,
        nic_pod(
            &image,
            "hpn-server",
            vec![
                "--serve".into(),
                format!("0.0.0.0:{port}"),
                "--timeout".into(),
                format!("{}s", secs(ctx.spec.timeout)),
            ],
            None,
        ),
    )
    .await?;
    let server = match wait_object(
        pods.clone(),
        &format!("pod {ns}/hpn-server"),
        "hpn-server",
        deadline,
        pod_running_or_done,
    )
    .await?
    {
        Ok((p, _)) => p,
        Err(why) => {
            return Ok(Outcome::failed(format!(
                "a pod claiming one NIC of DeviceClass {class} did not run: {why}"
            )));
        }
    };
    let Some(server_claim) = claim_name(&server) else {
        return Ok(Outcome::failed(
            "pod hpn-server runs but no ResourceClaim was generated for it from template hpn-nic",
        ));
    };
    let mut seen_rx = seen.clone();
    let until = deadline.min(tokio::time::Instant::now() + std::time::Duration::from_secs(20));
    let _ =
        tokio::time::timeout_at(until, seen_rx.wait_for(|m| m.contains_key("hpn-server"))).await;
    let Some(server_net) = seen.borrow().get("hpn-server").cloned() else {
        let claim = claims.get(&server_claim).await?;
        return Ok(Outcome::failed(format!(
            "ResourceClaim {server_claim} of pod hpn-server is allocated [{}] but the driver wrote no networkData (interface name, IPs) into its status",
            claim_devices(&claim).join(", ")
        )));
    };
    let Some(server_ip) = server_net.1.first().map(|c| address_of(c).to_string()) else {
        return Ok(Outcome::failed(format!(
            "ResourceClaim {server_claim}: networkData names interface {} without an IP address to reach it",
            server_net.0
        )));
    };

    // 4. The client sends to the server's secondary address.
    create(
        &pods,
        nic_pod(
            &image,
            "hpn-client",
            vec![
                "--send".into(),
                format!("{server_ip}:{port}"),
                "--bytes".into(),
                bytes.to_string(),
                "--timeout".into(),
                format!("{}s", secs(ctx.spec.timeout)),
            ],
            None,
        ),
    )
    .await?;
    let mut results = Vec::new();
    let mut problems = Vec::new();
    for name in ["hpn-client", "hpn-server"] {
        let waited =
            tokio::time::timeout_at(deadline, await_condition(pods.clone(), name, done)).await;
        let Some(pod) = (match waited {
            Ok(r) => r?,
            Err(_) => pods.get_opt(name).await?,
        }) else {
            problems.push(format!("pod {name} disappeared"));
            break;
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if !capable.contains(node.as_str()) {
            problems.push(format!(
                "pod {name} runs on {node}, which publishes no {driver} device"
            ));
            break;
        }
        let net = seen.borrow().get(name).cloned();
        let verdict = net_report(&pod)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|(_, r)| judge_pod(name, net.as_ref(), &r, bytes));
        match verdict {
            Ok(m) => results.push(format!("{m} (on {node})")),
            Err(m) => {
                problems.push(m);
                // A failed client leaves nothing for the server to report.
                break;
            }
        }
    }
    let what = format!(
        "{} NIC(s) of {driver} on {} ({}{})",
        nics.len(),
        capable.iter().copied().collect::<Vec<_>>().join(", "),
        characteristics
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        if characteristics.len() > 2 {
            ", ..."
        } else {
            ""
        }
    );
    if !problems.is_empty() {
        return Ok(Outcome::failed(format!(
            "{what}; {pinned}; but pod-to-pod traffic over the secondary interface was not shown: {}",
            problems.join("; ")
        )));
    }
    Ok(Outcome::passed(format!(
        "{what}; {pinned}; {}",
        results.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(node: &str, driver: &str, devices: serde_json::Value) -> ResourceSlice {
        serde_json::from_value(json!({"metadata": {"name": format!("{node}-{driver}")},
            "spec": {"driver": driver, "nodeName": node,
                "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                "devices": devices}}))
        .expect("slice")
    }

    #[test]
    fn inventory_and_characteristics_of_the_nic_driver_only() {
        let slices = [
            slice(
                "gpu-2",
                "dra.net",
                json!([{"name": "ens1f0np0", "attributes": {
                    "dra.net/rdma": {"bool": true}, "dra.net/pciAddress": {"string": "0000:1a:00.0"},
                    "dra.net/numaNode": {"int": 0}, "dra.net/ifName": {"string": "ens1f0np0"}}}]),
            ),
            slice(
                "gpu-0",
                "dra.net",
                json!([{"name": "eth9", "attributes": {"dra.net/mtu": {"int": 1500}}}]),
            ),
            slice("gpu-0", "gpu.nvidia.com", json!([{"name": "gpu-0"}])),
        ];
        let nics = nic_inventory(&slices, "dra.net");
        let names: Vec<(&str, &str)> = nics
            .iter()
            .map(|n| (n.node.as_str(), n.device.as_str()))
            .collect();
        assert_eq!(names, [("gpu-0", "eth9"), ("gpu-2", "ens1f0np0")]);
        assert_eq!(nics[1].attributes["ifName"], "ens1f0np0");
        assert_eq!(
            describe_characteristics(&nics),
            ["gpu-2: ens1f0np0 (rdma=true pciAddress=0000:1a:00.0 numaNode=0)"]
        );
        assert!(nic_inventory(&slices, "sriovnetwork.k8snetworkplumbingwg.io").is_empty());
    }

    #[test]
    fn network_data_from_the_claim_status() {
        let claim: ResourceClaim = serde_json::from_value(json!({"metadata": {"name": "c"},
            "spec": {"devices": {}},
            "status": {"devices": [
                {"driver": "gpu.nvidia.com", "pool": "gpu-0", "device": "gpu-0"},
                {"driver": "dra.net", "pool": "gpu-0", "device": "ens2f0np0",
                 "networkData": {"interfaceName": "ens2f0np0", "ips": ["100.64.0.2/16"]}}]}}))
        .expect("claim");
        assert_eq!(
            network_data(&claim, "dra.net"),
            Some(("ens2f0np0".to_string(), vec!["100.64.0.2/16".to_string()]))
        );
        assert_eq!(network_data(&claim, "gpu.nvidia.com"), None);
    }

    fn iface(name: &str, addr: &str, rx: u64, tx: u64) -> Interface {
        Interface {
            name: name.into(),
            addresses: vec![addr.into()],
            rx_bytes: rx,
            tx_bytes: tx,
        }
    }

    fn report(role: &str, ifaces: Vec<Interface>, bytes: u64, error: Option<&str>) -> NetReport {
        NetReport {
            interfaces: ifaces,
            role: role.into(),
            peer: None,
            bytes,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn pods_judged_on_their_own_interfaces_and_counters() {
        let net = ("ens1f0np0".to_string(), vec!["100.64.0.1/16".to_string()]);
        const MB8: u64 = 8 << 20;
        let lo = iface("lo", "127.0.0.1/8", 0, 0);
        let good = report(
            "serve",
            vec![
                iface("ens1f0np0", "100.64.0.1/16", MB8 + 40_000, 9_000),
                iface("eth0", "198.18.0.4/15", 200, 90),
                lo.clone(),
            ],
            MB8,
            None,
        );
        let ok = judge_pod("hpn-server", Some(&net), &good, MB8).expect("pass");
        assert!(
            ok.contains("ens1f0np0 (100.64.0.1/16) besides eth0; serve 8388608 bytes, ens1f0np0 received 8428608 bytes, eth0 200"),
            "{ok}"
        );
        // No secondary interface in the pod: the driver's networkData is not the pod's view.
        let none = report(
            "send",
            vec![iface("eth0", "198.18.0.5/15", 0, 0), lo.clone()],
            0,
            Some("cannot connect to 100.64.0.1:5201: Network is unreachable (os error 101)"),
        );
        assert_eq!(
            judge_pod("hpn-client", Some(&net), &none, MB8).unwrap_err(),
            "hpn-client: the claim's networkData names interface ens1f0np0 (100.64.0.1/16), but the pod's own network namespace has only eth0, lo"
        );
        // The data went over the primary interface.
        let primary = report(
            "send",
            vec![
                iface("ens1f0np0", "100.64.0.1/16", 0, 100),
                iface("eth0", "198.18.0.5/15", 0, MB8 + 1),
                lo.clone(),
            ],
            MB8,
            None,
        );
        let e = judge_pod("hpn-client", Some(&net), &primary, MB8).unwrap_err();
        assert!(e.contains("ens1f0np0 sent only 100 bytes meanwhile"), "{e}");
        let both = report(
            "send",
            vec![
                iface("ens1f0np0", "100.64.0.1/16", 0, MB8),
                iface("eth0", "198.18.0.5/15", 0, MB8),
                lo.clone(),
            ],
            MB8,
            None,
        );
        assert!(
            judge_pod("p", Some(&net), &both, MB8)
                .unwrap_err()
                .contains("primary interface carried the transfer: eth0 sent")
        );
        // Wrong address, no primary, no networkData, failed or short transfer.
        let wrong = report(
            "serve",
            vec![
                iface("ens1f0np0", "10.0.0.1/8", MB8, 0),
                iface("eth0", "198.18.0.4/15", 0, 0),
            ],
            MB8,
            None,
        );
        assert!(
            judge_pod("p", Some(&net), &wrong, MB8)
                .unwrap_err()
                .contains("has addresses [10.0.0.1/8], not 100.64.0.1/16")
        );
        let alone = report(
            "serve",
            vec![iface("ens1f0np0", "100.64.0.1/16", MB8, 0), lo.clone()],
            MB8,
            None,
        );
        assert!(
            judge_pod("p", Some(&net), &alone, MB8)
                .unwrap_err()
                .contains("no primary interface")
        );
        assert!(
            judge_pod("p", None, &good, MB8)
                .unwrap_err()
                .contains("no networkData")
        );
        let short = report("serve", good.interfaces.clone(), 10, None);
        assert!(
            judge_pod("p", Some(&net), &short, MB8)
                .unwrap_err()
                .contains("moved 10 of 8388608 bytes")
        );
        let failed = report(
            "serve",
            good.interfaces.clone(),
            0,
            Some("no sender within 60s"),
        );
        assert!(
            judge_pod("p", Some(&net), &failed, MB8)
                .unwrap_err()
                .contains("the serve failed: no sender within 60s")
        );
    }
}
