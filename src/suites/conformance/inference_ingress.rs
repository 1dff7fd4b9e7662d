//! advanced_inference_ingress (KAR-0011): a Gateway API Inference Extension implementation
//! routes to model servers chosen by its endpoint picker from their metrics.
//!
//! The case deploys three model-server stand-ins (`aiconform probe serve --queue N
//! --kv-cache F`, exposing vLLM's `vllm:num_requests_waiting` and `vllm:kv_cache_usage_perc`)
//! with different loads, an InferencePool selecting them, and an HTTPRoute on a Gateway of an
//! accepted class whose backendRef is the pool. The implementation must accept and program
//! them; then a client pod sends requests through the Gateway and records which server
//! answered each one and the endpoint picker's decision (`x-gateway-destination-endpoint`).
//! Every request must reach the least-loaded server, and the decision must name it.
//!
//! Params (all optional): `gatewayClass`, `listenerPort` (8080), `requests` (30),
//! `endpointPickerRef` (the pool's, default `{name: models-epp, port: {number: 9002}}`: the
//! implementation's endpoint picker for the pool), `probeImage`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use kube::runtime::wait::await_condition;
use serde_json::json;

use super::super::k8s::{case_namespace, crd_problems, create, dynamic_api};
use super::inference_gateway::{
    GATEWAY, ROUTE, accepted_class, await_available, client_pod, client_tally, pod_states,
    programmed_gateway,
};
use super::*;
use crate::probe::traffic::Tally;
use crate::runner::{CaseContext, Outcome};

const POOL_GROUP: &str = "inference.networking.k8s.io";
const POOL: &str = "models";
/// Response header naming the endpoint picker's choice (GAIE endpoint-picker protocol).
pub const DESTINATION_HEADER: &str = "x-gateway-destination-endpoint";
const TARGET_PORT: u16 = 8000;
/// Pool members: name, waiting requests, KV-cache usage. The last is the least loaded.
pub const MEMBERS: [(&str, u64, f64); 3] = [("busy", 8, 0.9), ("warm", 2, 0.5), ("idle", 0, 0.1)];

/// Whether every answer came from `best` and every decision named `best_addr`. Ok and Err
/// both say what was observed.
pub fn judge_picks(tally: &Tally, best: &str, best_addr: &str) -> Result<String, String> {
    if tally.failures > 0 || tally.unidentified > 0 {
        return Err(format!(
            "{} of {} requests failed and {} answered without naming a server (first failure: {}); answered: {}",
            tally.failures,
            tally.requests,
            tally.unidentified,
            tally.first_failure.as_deref().unwrap_or("-"),
            tally.summary()
        ));
    }
    let n = tally.answered();
    if n == 0 {
        return Err("no request was answered".to_string());
    }
    if tally.by_backend.get(best).copied().unwrap_or(0) != n {
        return Err(format!(
            "{n} requests reached {}; the least-loaded model server {best} should have answered all",
            tally.summary()
        ));
    }
    let decisions: Vec<String> = tally
        .by_header
        .iter()
        .map(|(k, v)| {
            if k.is_empty() {
                format!("(none)={v}")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    if tally.by_header.get(best_addr).copied().unwrap_or(0) != n {
        return Err(format!(
            "all {n} requests reached {best}, but the endpoint picker's decisions ({DESTINATION_HEADER}) were {}; expected {best_addr} for each",
            if decisions.is_empty() {
                "absent".to_string()
            } else {
                decisions.join(" ")
            }
        ));
    }
    Ok(format!(
        "all {n} requests reached the least-loaded model server {best} and the endpoint picker named {best_addr} in {DESTINATION_HEADER} for each"
    ))
}

fn member(name: &str, waiting: u64, kv: f64, image: &str) -> serde_json::Value {
    let labels = json!({"app.kubernetes.io/name": "model-server", "aiconform.dev/pool": POOL,
        "aiconform.dev/member": name});
    json!({
        "metadata": {"name": format!("model-{name}"), "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "server", "image": image,
                    "args": ["probe", "serve", "--name", name, "--address", "$(POD_IP)",
                        "--port", TARGET_PORT.to_string(), "--queue", waiting.to_string(),
                        "--kv-cache", kv.to_string()],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "ports": [{"name": "http", "containerPort": TARGET_PORT}],
                    "readinessProbe": {"tcpSocket": {"port": TARGET_PORT}, "periodSeconds": 1}}]}}}
    })
}

fn pool(picker: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
        "metadata": {"name": POOL},
        "spec": {"selector": {"matchLabels": {"aiconform.dev/pool": POOL}},
            "targetPorts": [{"number": TARGET_PORT}],
            "endpointPickerRef": picker}
    })
}

fn pool_route() -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": ROUTE},
        "spec": {"parentRefs": [{"name": GATEWAY}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"group": POOL_GROUP, "kind": "InferencePool", "name": POOL}]}]}
    })
}

/// Whether the pool reports a parent that accepted it.
pub(super) fn pool_accepted(p: &DynamicObject) -> bool {
    p.data
        .pointer("/status/parents")
        .and_then(|v| v.as_array())
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.get("conditions")
                    .and_then(|c| c.as_array())
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.get("type").and_then(|v| v.as_str()) == Some("Accepted")
                                && c.get("status").and_then(|v| v.as_str()) == Some("True")
                        })
                    })
            })
        })
}

pub(super) async fn inference_ingress_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let (class, controller) = match accepted_class(&ctx, &client).await? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    let missing = crd_problems(&client, &["inferencepools.inference.networking.k8s.io"]).await?;
    if !missing.is_empty() {
        return Ok(Outcome::failed(format!(
            "the Gateway API Inference Extension is not installed: {}",
            missing.join("; ")
        )));
    }
    let port: u16 = ctx.param("listenerPort")?.unwrap_or(8080);
    let requests: u64 = ctx.param("requests")?.unwrap_or(30);
    let picker = ctx
        .param::<serde_json::Value>("endpointPickerRef")?
        .unwrap_or_else(|| json!({"name": format!("{POOL}-epp"), "port": {"number": 9002}}));
    let image = probe_image(&ctx)?;
    let ns = case_namespace(&ctx)?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for (name, waiting, kv) in MEMBERS {
        create(&deployments, member(name, waiting, kv, &image)).await?;
    }
    for (name, _, _) in MEMBERS {
        let d = format!("model-{name}");
        if !await_available(&deployments, &d, deadline(&ctx)).await? {
            return Ok(Outcome::failed(format!(
                "model server Deployment {ns}/{d} has no available replica within {}s (pods: {})",
                secs(ctx.spec.timeout),
                pod_states(&client, &ns, &format!("aiconform.dev/member={name}")).await?
            )));
        }
    }
    let (best, best_waiting, best_kv) = MEMBERS[MEMBERS.len() - 1];
    let best_pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&format!("aiconform.dev/member={best}")))
        .await?
        .items
        .into_iter()
        .find_map(|p| p.status.and_then(|s| s.pod_ip));
    let Some(best_ip) = best_pod else {
        anyhow::bail!("model server {best} has no pod IP although its Deployment is available");
    };
    let best_addr = if best_ip.contains(':') {
        format!("[{best_ip}]:{TARGET_PORT}")
    } else {
        format!("{best_ip}:{TARGET_PORT}")
    };

    let pools = dynamic_api(
        &client,
        POOL_GROUP,
        "v1",
        "InferencePool",
        "inferencepools",
        Some(&ns),
    );
    pools
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(pool(picker))?,
        )
        .await?;
    let url = match programmed_gateway(
        &ctx,
        &client,
        &ns,
        (&class, &controller),
        port,
        pool_route(),
    )
    .await?
    {
        Ok(u) => u,
        Err(o) => return Ok(o),
    };
    let waited = tokio::time::timeout_at(
        deadline(&ctx),
        await_condition(pools.clone(), POOL, |p: Option<&DynamicObject>| {
            p.is_some_and(pool_accepted)
        }),
    )
    .await;
    if !matches!(waited, Ok(Ok(Some(_)))) {
        let state = pools
            .get_opt(POOL)
            .await?
            .and_then(|p| p.data.pointer("/status").map(|s| s.to_string()))
            .unwrap_or_else(|| "no status".to_string());
        return Ok(Outcome::failed(format!(
            "InferencePool {ns}/{POOL} behind HTTPRoute {ROUTE} was not Accepted by a parent Gateway within {}s: {state}",
            secs(ctx.spec.timeout)
        )));
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let name = "inference-ingress-client";
    let extra = [
        "--record-header".to_string(),
        DESTINATION_HEADER.to_string(),
    ];
    create(&pods, client_pod(name, &image, &url, requests, &extra)).await?;
    let tally = match client_tally(&pods, name, &ctx).await? {
        Ok(t) => t,
        Err(why) => {
            return Ok(Outcome::failed(format!(
                "Gateway {ns}/{GATEWAY} Programmed at {url}; InferencePool {POOL} Accepted; but client pod {name}: {why}"
            )));
        }
    };
    let prefix = format!(
        "InferencePool {ns}/{POOL} ({} model servers; {best} least loaded: {best_waiting} waiting, KV cache {best_kv}) Accepted behind HTTPRoute {ROUTE} on Gateway {GATEWAY} (class {class}) at {url}",
        MEMBERS.len()
    );
    Ok(match judge_picks(&tally, best, &best_addr) {
        Ok(m) => Outcome::passed(format!("{prefix}; {m}")),
        Err(e) => Outcome::failed(format!("{prefix}; but {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(backends: &[(&str, u64)], decisions: &[(&str, u64)]) -> Tally {
        Tally {
            requests: backends.iter().map(|(_, n)| n).sum(),
            by_backend: backends.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            by_header: decisions.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Tally::default()
        }
    }

    #[test]
    fn all_requests_to_the_least_loaded_with_its_decision_pass() {
        let t = tally(&[("idle", 30)], &[("127.16.0.9:8000", 30)]);
        assert_eq!(
            judge_picks(&t, "idle", "127.16.0.9:8000"),
            Ok("all 30 requests reached the least-loaded model server idle and the endpoint picker named 127.16.0.9:8000 in x-gateway-destination-endpoint for each".to_string())
        );
    }

    #[test]
    fn spread_or_undecided_requests_fail() {
        let rr = tally(
            &[("busy", 10), ("idle", 10), ("warm", 10)],
            &[("a:8000", 10), ("b:8000", 10), ("c:8000", 10)],
        );
        assert_eq!(
            judge_picks(&rr, "idle", "c:8000").unwrap_err(),
            "30 requests reached busy=10 idle=10 warm=10; the least-loaded model server idle should have answered all"
        );
        let silent = tally(&[("idle", 5)], &[("", 5)]);
        assert!(
            judge_picks(&silent, "idle", "c:8000")
                .unwrap_err()
                .contains("decisions (x-gateway-destination-endpoint) were (none)=5"),
        );
        let mut failed = tally(&[("idle", 5)], &[("c:8000", 5)]);
        failed.record(Err("connection refused".into()));
        assert!(
            judge_picks(&failed, "idle", "c:8000")
                .unwrap_err()
                .starts_with("1 of 6 requests failed")
        );
    }

    #[test]
    fn objects_reference_the_pool() {
        let r = pool_route();
        assert_eq!(
            r["spec"]["rules"][0]["backendRefs"][0]["kind"],
            "InferencePool"
        );
        let p = pool(json!({"name": "x"}));
        assert_eq!(p["spec"]["targetPorts"][0]["number"], 8000);
        let args =
            member("idle", 0, 0.1, "img")["spec"]["template"]["spec"]["containers"][0]["args"]
                .clone();
        assert_eq!(args[8], "--queue");
        assert_eq!(args[11], "0.1");
        let accepted: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": "p"},
            "status": {"parents": [{"parentRef": {"name": "g"},
                "conditions": [{"type": "Accepted", "status": "True"}]}]}}))
        .expect("pool");
        assert!(pool_accepted(&accepted));
    }
}
