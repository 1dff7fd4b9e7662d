//! ai_inference: a Gateway API implementation routes inference traffic by weight and header.
//!
//! The case deploys two model-server stand-ins (`aiconform probe serve`, each answering with
//! its name), a Gateway of an accepted GatewayClass and an HTTPRoute with a header rule
//! (`X-Gateway-Model-Name: canary` → canary) and a weighted rule (stable 80, canary 20). The
//! implementation must accept and program them (Gateway `Programmed` with an address, route
//! `Accepted` and `ResolvedRefs` from the class's controller); then client pods send requests
//! to the Gateway's address and report which backend answered each one. The weighted split
//! must lie within a binomial bound of the weights and every header request must reach canary.
//!
//! Params (all optional): `gatewayClass`, `listenerPort` (8080), `requests` (200),
//! `headerRequests` (20), `probeImage`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams};
use kube::core::DynamicObject;
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{
    case_namespace, condition_true, conditions, crd_problems, create, deployments_by_image,
    dynamic_api, image_named, pod_state,
};
use super::*;
use crate::probe::traffic::Tally;
use crate::runner::{CaseContext, Outcome};

const GW_GROUP: &str = "gateway.networking.k8s.io";
pub(super) const GATEWAY: &str = "inference";
pub(super) const ROUTE: &str = "inference";
/// Header and value of the header rule (the model-name header of inference gateways).
pub const MODEL_HEADER: &str = "X-Gateway-Model-Name";
pub const CANARY_MODEL: &str = "canary";
/// Backends and the weights of the weighted rule.
pub const WEIGHTS: [(&str, u32); 2] = [("stable", 80), ("canary", 20)];
/// Standard deviations a backend's count may stray from its binomial expectation: a correct
/// weighted random implementation fails this with probability below 1e-6 per backend.
pub const SIGMAS: f64 = 5.0;

/// Image names of Gateway API implementations by the `controllerName` of their GatewayClasses:
/// names the controller a case met in its evidence (never part of a verdict).
const IMPLEMENTATIONS: [(&str, &str); 6] = [
    ("traefik.io/gateway-controller", "traefik"),
    ("gateway.envoyproxy.io/gatewayclass-controller", "gateway"),
    ("istio.io/gateway-controller", "pilot"),
    (
        "gateway.nginx.org/nginx-gateway-controller",
        "nginx-gateway-fabric",
    ),
    ("projectcontour.io/gateway-controller", "contour"),
    ("kgateway.dev/kgateway", "kgateway"),
];

/// The image name of the implementation behind `controller`, when it is a known one.
pub fn implementation_image(controller: &str) -> Option<&'static str> {
    IMPLEMENTATIONS
        .iter()
        .find(|(c, _)| *c == controller)
        .map(|(_, image)| *image)
}

/// What runs the GatewayClass's controller, for evidence: the Deployments running its image
/// with their ready replicas (`traefik v3.6.12 (default/traefik), 1/1 ready`), "no Deployment
/// runs its image `traefik`", or None for an implementation whose image is not known here.
pub(super) async fn controller_evidence(client: &Client, controller: &str) -> Option<String> {
    let image = implementation_image(controller)?;
    let found: Vec<String> = deployments_by_image(client, |i| image_named(i, image))
        .await
        .into_iter()
        .map(|d| {
            format!(
                "{image} {} ({}), {}/{} ready",
                d.tag, d.name, d.ready, d.replicas
            )
        })
        .collect();
    Some(if found.is_empty() {
        format!("no Deployment runs its image `{image}`")
    } else {
        found.join("; ")
    })
}

/// Whether the weighted rule's answers follow `weights`: each backend's count must lie within
/// `sigmas` standard deviations of its binomial expectation n·p (p = weight / sum), no other
/// backend may answer and no request may fail. Ok and Err both say what was observed.
pub fn judge_split(tally: &Tally, weights: &[(&str, u32)], sigmas: f64) -> Result<String, String> {
    failures(tally)?;
    let n = tally.answered();
    let unknown: Vec<&String> = tally
        .by_backend
        .keys()
        .filter(|k| !weights.iter().any(|(w, _)| *w == k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "answers from backends outside the route: {} ({})",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            tally.summary()
        ));
    }
    if n == 0 {
        return Err("no request was answered".to_string());
    }
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let ratio = weights
        .iter()
        .map(|(_, w)| w.to_string())
        .collect::<Vec<_>>()
        .join(":");
    let mut bounds = Vec::new();
    for (name, w) in weights {
        let p = f64::from(*w) / f64::from(total);
        let expected = n as f64 * p;
        let tolerance = sigmas * (n as f64 * p * (1.0 - p)).sqrt();
        let got = tally.by_backend.get(*name).copied().unwrap_or(0);
        let bound = format!("{name} {expected:.0} ± {tolerance:.1}");
        if (got as f64 - expected).abs() > tolerance {
            return Err(format!(
                "{n} requests split {} for weights {ratio}: {name} answered {got}, outside the expected {bound} ({sigmas}σ binomial bound)",
                tally.summary()
            ));
        }
        bounds.push(bound);
    }
    Ok(format!(
        "{n} requests split {} for weights {ratio} (expected {}; {sigmas}σ binomial bounds)",
        tally.summary(),
        bounds.join(", ")
    ))
}

/// Whether every answer to the header rule came from `backend`.
pub fn judge_header(tally: &Tally, backend: &str) -> Result<String, String> {
    failures(tally)?;
    let n = tally.answered();
    let hits = tally.by_backend.get(backend).copied().unwrap_or(0);
    if n == 0 {
        return Err("no request was answered".to_string());
    }
    if hits != n {
        return Err(format!(
            "{n} requests with the header: {}; all should reach {backend}",
            tally.summary()
        ));
    }
    Ok(format!(
        "all {n} requests with the header reached {backend}"
    ))
}

fn failures(tally: &Tally) -> Result<(), String> {
    if tally.failures > 0 || tally.unidentified > 0 {
        return Err(format!(
            "{} of {} requests failed and {} answered without naming a backend (first failure: {}); answered: {}",
            tally.failures,
            tally.requests,
            tally.unidentified,
            tally.first_failure.as_deref().unwrap_or("-"),
            tally.summary()
        ));
    }
    Ok(())
}

/// The HTTPRoute under test: a header rule and a weighted default rule.
fn http_route() -> serde_json::Value {
    let weighted: Vec<serde_json::Value> = WEIGHTS
        .iter()
        .map(|(name, w)| json!({"name": format!("inference-{name}"), "port": 80, "weight": w}))
        .collect();
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": ROUTE},
        "spec": {
            "parentRefs": [{"name": GATEWAY}],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                    "headers": [{"type": "Exact", "name": MODEL_HEADER, "value": CANARY_MODEL}]}],
                 "backendRefs": [{"name": format!("inference-{CANARY_MODEL}"), "port": 80}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                 "backendRefs": weighted}
            ]
        }
    })
}

/// A model-server stand-in: answers every request with its name, on its pod IP.
fn backend(name: &str, image: &str) -> (serde_json::Value, serde_json::Value) {
    let labels =
        json!({"app.kubernetes.io/name": "inference-backend", "aiconform.dev/backend": name});
    let deploy = json!({
        "metadata": {"name": format!("inference-{name}"), "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "server", "image": image,
                    "args": ["probe", "serve", "--name", name, "--address", "$(POD_IP)", "--port", "8080"],
                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}
    });
    let svc = json!({
        "metadata": {"name": format!("inference-{name}")},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    });
    (deploy, svc)
}

/// A client pod that sends `count` requests to `url` (with `extra` args of `probe http`) and
/// reports the tally.
pub(super) fn client_pod(
    name: &str,
    image: &str,
    url: &str,
    count: u64,
    extra: &[String],
) -> serde_json::Value {
    let mut args = vec![
        "probe".to_string(),
        "http".into(),
        "--url".into(),
        url.to_string(),
        "--count".into(),
        count.to_string(),
    ];
    args.extend(extra.iter().cloned());
    json!({
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "inference-client"}},
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "client", "image": image, "args": args}]}
    })
}

/// `http://ADDRESS:PORT/v1/completions` for the first address of a Gateway's status.
fn gateway_url(gw: &DynamicObject, port: u16) -> Option<String> {
    let addr = gw
        .data
        .pointer("/status/addresses")?
        .as_array()?
        .iter()
        .find_map(|a| a.get("value")?.as_str())?;
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    Some(format!("http://{host}:{port}/v1/completions"))
}

/// The conditions of the route's status entry for our Gateway written by `controller`.
fn route_parent_conditions(
    route: &DynamicObject,
    controller: &str,
) -> Option<Vec<(String, String)>> {
    route
        .data
        .pointer("/status/parents")?
        .as_array()?
        .iter()
        .find(|p| {
            p.pointer("/parentRef/name").and_then(|v| v.as_str()) == Some(GATEWAY)
                && p.get("controllerName").and_then(|v| v.as_str()) == Some(controller)
        })
        .map(|p| {
            p.get("conditions")
                .and_then(|c| c.as_array())
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("");
                            (
                                s("type").to_string(),
                                format!("{}={} {}", s("type"), s("status"), s("reason")),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
}

fn route_ready(route: &DynamicObject, controller: &str) -> bool {
    route_parent_conditions(route, controller).is_some_and(|cs| {
        ["Accepted", "ResolvedRefs"].iter().all(|want| {
            cs.iter()
                .any(|(t, s)| t.as_str() == *want && s.starts_with(&format!("{want}=True")))
        })
    })
}

fn condition_list(obj: &DynamicObject) -> String {
    let c: Vec<String> = conditions(obj)
        .into_iter()
        .map(|(t, s, r, _)| format!("{t}={s} {r}"))
        .collect();
    if c.is_empty() {
        "no status conditions".to_string()
    } else {
        c.join(", ")
    }
}

/// The GatewayClass under test (`params.gatewayClass`, else the first accepted one) and its
/// controller name, or the failure saying what was found instead.
pub(super) async fn accepted_class(
    ctx: &CaseContext,
    client: &Client,
) -> anyhow::Result<Result<(String, String), Outcome>> {
    let missing = crd_problems(
        client,
        &[
            "gatewayclasses.gateway.networking.k8s.io",
            "gateways.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
        ],
    )
    .await?;
    if !missing.is_empty() {
        return Ok(Err(Outcome::failed(format!(
            "Gateway API is not installed: {}",
            missing.join("; ")
        ))));
    }
    let classes = dynamic_api(
        client,
        GW_GROUP,
        "v1",
        "GatewayClass",
        "gatewayclasses",
        None,
    )
    .list(&ListParams::default())
    .await?
    .items;
    let wanted = ctx.param::<String>("gatewayClass")?;
    let accepted: Vec<&DynamicObject> = classes
        .iter()
        .filter(|c| condition_true(c, "Accepted"))
        .filter(|c| wanted.as_ref().is_none_or(|w| *w == c.name_any()))
        .collect();
    let Some(class_obj) = accepted.first() else {
        let all: Vec<String> = classes
            .iter()
            .map(|c| format!("{} ({})", c.name_any(), condition_list(c)))
            .collect();
        return Ok(Err(Outcome::failed(format!(
            "no accepted GatewayClass{}: {}",
            wanted.map(|w| format!(" named {w}")).unwrap_or_default(),
            if all.is_empty() {
                "none defined (no Gateway controller installed)".to_string()
            } else {
                all.join("; ")
            }
        ))));
    };
    let controller = class_obj
        .data
        .pointer("/spec/controllerName")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    Ok(Ok((class_obj.name_any(), controller)))
}

/// Create Gateway `inference` of `class` with one HTTP listener on `port` and the route
/// `route`, wait until the Gateway is Accepted and Programmed with an address and the route
/// Accepted with ResolvedRefs by `controller`. Ok: the URL of the Gateway.
pub(super) async fn programmed_gateway(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
    (class, controller): (&str, &str),
    port: u16,
    route: serde_json::Value,
) -> anyhow::Result<Result<String, Outcome>> {
    let gws = dynamic_api(client, GW_GROUP, "v1", "Gateway", "gateways", Some(ns));
    let gw: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": GATEWAY},
        "spec": {"gatewayClassName": class,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]}
    }))?;
    gws.create(&kube::api::PostParams::default(), &gw).await?;
    let routes = dynamic_api(client, GW_GROUP, "v1", "HTTPRoute", "httproutes", Some(ns));
    routes
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(route)?,
        )
        .await?;
    let programmed = |g: Option<&DynamicObject>| {
        g.is_some_and(|g| {
            condition_true(g, "Accepted")
                && condition_true(g, "Programmed")
                && gateway_url(g, 0).is_some()
        })
    };
    let waited = tokio::time::timeout_at(
        deadline(ctx),
        await_condition(gws.clone(), GATEWAY, programmed),
    )
    .await;
    let gw = match waited {
        Ok(r) => r?,
        Err(_) => None,
    };
    let Some(gw) = gw else {
        let state = gws
            .get_opt(GATEWAY)
            .await?
            .map(|g| {
                format!(
                    "{}; addresses {}",
                    condition_list(&g),
                    g.data
                        .pointer("/status/addresses")
                        .map(|a| a.to_string())
                        .unwrap_or_else(|| "none".into())
                )
            })
            .unwrap_or_else(|| "gone".to_string());
        let implementation = controller_evidence(client, controller)
            .await
            .map(|e| format!("; controller {controller}: {e}"))
            .unwrap_or_default();
        return Ok(Err(Outcome::failed(format!(
            "Gateway {ns}/{GATEWAY} (class {class}) not Accepted and Programmed with an address within {}s: {state}{implementation}",
            secs(ctx.spec.timeout)
        ))));
    };
    let Some(url) = gateway_url(&gw, port) else {
        anyhow::bail!("Gateway {ns}/{GATEWAY} lost its address");
    };
    let ctrl = controller.to_string();
    let attached = move |r: Option<&DynamicObject>| r.is_some_and(|r| route_ready(r, &ctrl));
    let waited = tokio::time::timeout_at(
        deadline(ctx),
        await_condition(routes.clone(), ROUTE, attached),
    )
    .await;
    if !matches!(waited, Ok(Ok(Some(_)))) {
        let state = routes
            .get_opt(ROUTE)
            .await?
            .map(|r| match route_parent_conditions(&r, controller) {
                Some(cs) => cs
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect::<Vec<_>>()
                    .join(", "),
                None => format!("no status.parents entry for Gateway {GATEWAY} from {controller}"),
            })
            .unwrap_or_else(|| "gone".to_string());
        return Ok(Err(Outcome::failed(format!(
            "HTTPRoute {ns}/{ROUTE} not Accepted with ResolvedRefs by {controller} within {}s: {state}",
            secs(ctx.spec.timeout)
        ))));
    }
    Ok(Ok(url))
}

/// Pod states of `selector` in `ns`, for messages.
pub(super) async fn pod_states(
    client: &Client,
    ns: &str,
    selector: &str,
) -> anyhow::Result<String> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    let states: Vec<String> = pods
        .iter()
        .map(|p| format!("{} {}", p.name_any(), pod_state(p)))
        .collect();
    Ok(if states.is_empty() {
        "none".to_string()
    } else {
        states.join(", ")
    })
}

pub(super) async fn inference_gateway_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let (class, controller) = match accepted_class(&ctx, &client).await? {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    let port: u16 = ctx.param("listenerPort")?.unwrap_or(8080);
    let requests: u64 = ctx.param("requests")?.unwrap_or(200);
    let header_requests: u64 = ctx.param("headerRequests")?.unwrap_or(20);
    let image = probe_image(&ctx)?;
    let ns = case_namespace(&ctx)?;

    // Backends.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    for (name, _) in WEIGHTS {
        let (d, s) = backend(name, &image);
        create(&deployments, d).await?;
        create(&services, s).await?;
    }
    for (name, _) in WEIGHTS {
        let svc = format!("inference-{name}");
        if !await_available(&deployments, &svc, deadline(&ctx)).await? {
            return Ok(Outcome::failed(format!(
                "backend Deployment {ns}/{svc} has no available replica within {}s (pods: {})",
                secs(ctx.spec.timeout),
                pod_states(&client, &ns, &format!("aiconform.dev/backend={name}")).await?
            )));
        }
    }

    // Gateway and route, accepted and programmed by the implementation.
    let url = match programmed_gateway(
        &ctx,
        &client,
        &ns,
        (&class, &controller),
        port,
        http_route(),
    )
    .await?
    {
        Ok(u) => u,
        Err(o) => return Ok(o),
    };

    // Traffic through the gateway, from pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let header = format!("{MODEL_HEADER}: {CANARY_MODEL}");
    let clients = [
        ("inference-client", requests, vec![]),
        (
            "inference-client-header",
            header_requests,
            vec!["--header".to_string(), header],
        ),
    ];
    for (name, count, extra) in &clients {
        create(&pods, client_pod(name, &image, &url, *count, extra)).await?;
    }
    let mut tallies = Vec::new();
    for (name, _, _) in &clients {
        match client_tally(&pods, name, &ctx).await? {
            Ok(t) => tallies.push(t),
            Err(why) => {
                return Ok(Outcome::failed(format!(
                    "Gateway {ns}/{GATEWAY} Programmed at {url}; HTTPRoute Accepted; but client pod {name}: {why}"
                )));
            }
        }
    }
    let weighted = judge_split(&tallies[0], &WEIGHTS, SIGMAS);
    let header = judge_header(&tallies[1], CANARY_MODEL);
    let implementation = controller_evidence(&client, &controller)
        .await
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    let prefix = format!(
        "Gateway {ns}/{GATEWAY} (class {class}) Programmed at {url}; HTTPRoute {ROUTE} Accepted and ResolvedRefs by {controller}{implementation}"
    );
    Ok(match (weighted, header) {
        (Ok(w), Ok(h)) => Outcome::passed(format!(
            "{prefix}; weighted rule: {w}; header rule {MODEL_HEADER}: {CANARY_MODEL}: {h}"
        )),
        (w, h) => {
            let mut why = Vec::new();
            if let Err(e) = w {
                why.push(format!("weighted rule: {e}"));
            }
            if let Err(e) = h {
                why.push(format!("header rule {MODEL_HEADER}: {CANARY_MODEL}: {e}"));
            }
            Outcome::failed(format!("{prefix}; but {}", why.join("; ")))
        }
    })
}

/// Wait (watching) until the Deployment has an available replica.
pub(super) async fn await_available(
    deployments: &Api<Deployment>,
    name: &str,
    deadline: tokio::time::Instant,
) -> anyhow::Result<bool> {
    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()?.available_replicas)
            .is_some_and(|n| n > 0)
    };
    let waited = tokio::time::timeout_at(
        deadline,
        await_condition(deployments.clone(), name, available),
    )
    .await;
    Ok(matches!(waited, Ok(Ok(Some(_)))))
}

/// Wait for a client pod to finish and read its tally from the termination message.
pub(super) async fn client_tally(
    pods: &Api<Pod>,
    name: &str,
    ctx: &CaseContext,
) -> anyhow::Result<Result<Tally, String>> {
    let done = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.clone())
            .is_some_and(|ph| ph == "Succeeded" || ph == "Failed")
    };
    let waited =
        tokio::time::timeout_at(deadline(ctx), await_condition(pods.clone(), name, done)).await;
    let pod = match waited {
        Ok(r) => r?,
        Err(_) => pods.get_opt(name).await?,
    };
    let Some(pod) = pod else {
        return Ok(Err("disappeared".to_string()));
    };
    if !done(Some(&pod)) {
        return Ok(Err(format!(
            "did not finish within {}s ({})",
            secs(ctx.spec.timeout),
            pod_state(&pod)
        )));
    }
    let terminated = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref());
    let message = terminated
        .and_then(|t| t.message.clone())
        .unwrap_or_default();
    Ok(serde_json::from_str::<Tally>(message.trim()).map_err(|_| {
        format!(
            "exited {} without a tally (termination message: {:?})",
            terminated.map(|t| t.exit_code).unwrap_or(-1),
            message.chars().take(300).collect::<String>()
        )
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tally(pairs: &[(&str, u64)]) -> Tally {
        let by_backend: BTreeMap<String, u64> =
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Tally {
            requests: by_backend.values().sum(),
            by_backend,
            ..Tally::default()
        }
    }

    #[test]
    fn split_within_the_binomial_bound_passes() {
        // n = 200, p(canary) = 0.2: expected 40, σ = 5.66, 5σ = 28.3.
        let ok = judge_split(&tally(&[("stable", 160), ("canary", 40)]), &WEIGHTS, SIGMAS)
            .expect("exact split");
        assert_eq!(
            ok,
            "200 requests split canary=40 stable=160 for weights 80:20 (expected stable 160 ± 28.3, canary 40 ± 28.3; 5σ binomial bounds)"
        );
        assert!(judge_split(&tally(&[("stable", 188), ("canary", 12)]), &WEIGHTS, SIGMAS).is_ok());
        assert!(judge_split(&tally(&[("stable", 132), ("canary", 68)]), &WEIGHTS, SIGMAS).is_ok());
    }

    #[test]
    fn split_outside_the_bound_fails() {
        let first_only = judge_split(&tally(&[("stable", 200)]), &WEIGHTS, SIGMAS).unwrap_err();
        assert_eq!(
            first_only,
            "200 requests split stable=200 for weights 80:20: stable answered 200, outside the expected stable 160 ± 28.3 (5σ binomial bound)"
        );
        let even = judge_split(
            &tally(&[("stable", 100), ("canary", 100)]),
            &WEIGHTS,
            SIGMAS,
        );
        assert!(even.unwrap_err().contains("stable answered 100"));
        assert!(judge_split(&tally(&[("stable", 189), ("canary", 11)]), &WEIGHTS, SIGMAS).is_err());
        let stranger = judge_split(
            &tally(&[("stable", 160), ("canary", 39), ("other", 1)]),
            &WEIGHTS,
            SIGMAS,
        );
        assert!(stranger.unwrap_err().contains("outside the route: other"));
        assert_eq!(
            judge_split(&tally(&[]), &WEIGHTS, SIGMAS).unwrap_err(),
            "no request was answered"
        );
    }

    #[test]
    fn failed_requests_fail_the_judgement() {
        let mut t = tally(&[("stable", 160), ("canary", 39)]);
        t.record(Ok((503, None)));
        let e = judge_split(&t, &WEIGHTS, SIGMAS).unwrap_err();
        assert!(
            e.starts_with("1 of 200 requests failed") && e.contains("first failure: HTTP 503"),
            "{e}"
        );
        let mut u = tally(&[("canary", 19)]);
        u.record(Ok((200, None)));
        assert!(
            judge_header(&u, "canary")
                .unwrap_err()
                .contains("1 answered without naming")
        );
    }

    #[test]
    fn header_rule_must_reach_its_backend_only() {
        assert_eq!(
            judge_header(&tally(&[("canary", 20)]), "canary"),
            Ok("all 20 requests with the header reached canary".to_string())
        );
        assert_eq!(
            judge_header(&tally(&[("canary", 4), ("stable", 16)]), "canary").unwrap_err(),
            "20 requests with the header: canary=4 stable=16; all should reach canary"
        );
    }

    #[test]
    fn known_implementations_are_named_by_controller() {
        assert_eq!(
            implementation_image("traefik.io/gateway-controller"),
            Some("traefik")
        );
        assert_eq!(
            implementation_image("aiconform.dev/gateway-controller"),
            None
        );
    }

    #[test]
    fn route_and_gateway_shapes() {
        let r = http_route();
        assert_eq!(
            r["spec"]["rules"][0]["matches"][0]["headers"][0]["name"],
            MODEL_HEADER
        );
        assert_eq!(r["spec"]["rules"][1]["backendRefs"][1]["weight"], 20);
        let gw: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "g"},
            "status": {"addresses": [{"type": "IPAddress", "value": "fd00::1"}]}}))
        .expect("gw");
        assert_eq!(
            gateway_url(&gw, 8080).as_deref(),
            Some("http://[fd00::1]:8080/v1/completions")
        );
        let route: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r"},
            "status": {"parents": [
                {"parentRef": {"name": GATEWAY}, "controllerName": "other.dev/c",
                 "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"},
                                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"}]},
                {"parentRef": {"name": GATEWAY}, "controllerName": "x.dev/gw",
                 "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"},
                                {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound"}]}]}}))
        .expect("route");
        assert!(!route_ready(&route, "x.dev/gw"));
        assert!(route_ready(&route, "other.dev/c"));
        assert!(!route_ready(&route, "nobody"));
        let extra = [
            "--header".to_string(),
            format!("{MODEL_HEADER}: {CANARY_MODEL}"),
        ];
        let args =
            client_pod("c", "img", "http://a:1/", 5, &extra)["spec"]["containers"][0]["args"]
                .clone();
        assert_eq!(
            args,
            json!([
                "probe",
                "http",
                "--url",
                "http://a:1/",
                "--count",
                "5",
                "--header",
                "X-Gateway-Model-Name: canary"
            ])
        );
    }
}
