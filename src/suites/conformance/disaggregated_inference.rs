//! disaggregated_inference (KAR-0041): a disaggregated inference stack serves requests
//! through a gateway with prefill and decode in separate pods, and the same request id
//! appears in both phases' logs.
//!
//! The case deploys model-server stand-ins of each phase (`aiconform probe serve --role
//! prefill|decode`, labelled with llm-d's role label `llm-d.ai/role`), an InferencePool
//! selecting both, and an HTTPRoute to the pool on a Gateway of an accepted class. The
//! platform's router (an endpoint picker with llm-d style disaggregation) must send each
//! request to a prefill pod first and hand the KV-transfer handle the prefill pod produced to
//! a decode pod, which answers. A client pod sends requests through the Gateway, each with
//! its own `x-request-id`; then the pods' logs, read through the API server, must show every
//! id in a prefill pod's log and in a decode pod's log, with the decode pod having received
//! the handle that prefill pod produced for that id.
//!
//! Params (all optional): `gatewayClass`, `listenerPort` (8080), `requests` (12),
//! `roleLabel` (`llm-d.ai/role`), `prefillRole` (`prefill`), `decodeRole` (`decode`),
//! `endpointPickerRef` (the pool's, default `{name: disagg-epp, port: {number: 9002}}`),
//! `probeImage`.
//!
//! A provider-installed stack (vLLM, SGLang, llm-d or Dynamo) is judged instead when
//! `stack` is given: `{gatewayUrl, namespace, prefillSelector (llm-d.ai/role=prefill),
//! decodeSelector (llm-d.ai/role=decode), container (all), requestBody}`. Requests are POSTed
//! with `requestBody` (e.g. an OpenAI completion) when set; every one must succeed and every
//! request id must appear in a prefill pod's and a separate decode pod's logs (the servers
//! must log the `x-request-id`, e.g. vLLM with `--enable-request-id-headers`); the KV-handle
//! check applies only to the case's own servers, whose log format it knows.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use kube::core::DynamicObject;
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, crd_problems, create, dynamic_api};
use super::inference_gateway::{
    GATEWAY, ROUTE, accepted_class, await_available, client_pod, client_tally, pod_states,
    programmed_gateway,
};
use super::*;
use crate::probe::phase::{self, Phase};
use crate::probe::traffic::{Tally, request_id};
use crate::runner::{CaseContext, Outcome};

const POOL_GROUP: &str = "inference.networking.k8s.io";
const POOL: &str = "disagg";
const TARGET_PORT: u16 = 8000;
const CONTAINER: &str = "server";
/// llm-d's pod label naming a model server's phase.
pub const ROLE_LABEL: &str = "llm-d.ai/role";
/// At most this many examples per kind of failure in a verdict.
const EXAMPLES: usize = 3;

/// One model-server pod's log, with the phase its labels give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseLog {
    pub pod: String,
    pub phase: Phase,
    pub text: String,
}

/// Whether `id` occurs in `text` between non-alphanumeric characters: not inside a longer
/// id, but found where a server wraps it (vLLM logs `cmpl-<x-request-id>-0`).
fn contains_token(text: &str, id: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    text.match_indices(id).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(alnum)
            && !text[i + id.len()..].chars().next().is_some_and(alnum)
    })
}

/// What the pods of one phase logged about one request id: the pods whose log names it
/// and the KV-transfer handles their log lines give for it.
#[derive(Debug, Default)]
struct Seen {
    pods: BTreeSet<String>,
    handles: BTreeSet<String>,
}

fn seen(logs: &[PhaseLog], phase: Phase, id: &str) -> Seen {
    let mut s = Seen::default();
    for l in logs.iter().filter(|l| l.phase == phase) {
        if !contains_token(&l.text, id) {
            continue;
        }
        s.pods.insert(l.pod.clone());
        for line in l.text.lines().filter_map(phase::parse_line) {
            if line.phase == phase && line.request_id == id {
                s.handles.extend(line.kv_handle);
            }
        }
    }
    s
}

fn examples(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(EXAMPLES).map(String::as_str).collect();
    let more = ids.len().saturating_sub(EXAMPLES);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Judge the pods' logs: every id must appear in the log of a prefill pod and of a
/// different, decode pod; with `handoff` (model servers that log [`phase::log_line`]s), the
/// decode pod must also have received a KV-transfer handle the prefill pod produced for that
/// id. Ok and Err both say what was observed.
pub fn judge_phases(ids: &[String], logs: &[PhaseLog], handoff: bool) -> Result<String, String> {
    let pods = |p: Phase| -> BTreeSet<&str> {
        logs.iter()
            .filter(|l| l.phase == p)
            .map(|l| l.pod.as_str())
            .collect()
    };
    let (prefill, decode) = (pods(Phase::Prefill), pods(Phase::Decode));
    if prefill.is_empty() || decode.is_empty() {
        return Err(format!(
            "logs of {} prefill and {} decode pod(s) were read; both phases need a pod",
            prefill.len(),
            decode.len()
        ));
    }
    if let Some(both) = prefill.intersection(&decode).next() {
        return Err(format!(
            "pod {both} is labelled as both prefill and decode: the phases do not run in separate pods"
        ));
    }
    if ids.is_empty() {
        return Err("no request id to look for".to_string());
    }
    let (mut no_prefill, mut no_decode, mut no_transfer) = (vec![], vec![], vec![]);
    let mut example = None;
    for id in ids {
        let p = seen(logs, Phase::Prefill, id);
        let d = seen(logs, Phase::Decode, id);
        if p.pods.is_empty() {
            no_prefill.push(id.clone());
        }
        if d.pods.is_empty() {
            no_decode.push(id.clone());
        }
        if p.pods.is_empty() || d.pods.is_empty() {
            continue;
        }
        if !handoff {
            example.get_or_insert_with(|| {
                format!(
                    "{id} in {} and {}",
                    p.pods.iter().next().map_or("", String::as_str),
                    d.pods.iter().next().map_or("", String::as_str)
                )
            });
            continue;
        }
        match d.handles.intersection(&p.handles).next() {
            Some(h) => {
                example.get_or_insert_with(|| {
                    format!(
                        "{id}: prefill {} produced {h}, decode {} received it",
                        p.pods.iter().next().map_or("", String::as_str),
                        d.pods.iter().next().map_or("", String::as_str)
                    )
                });
            }
            None => no_transfer.push(format!(
                "{id} (prefill handle {}, decode received {})",
                p.handles.iter().next().map_or(phase::NONE, String::as_str),
                d.handles.iter().next().map_or(phase::NONE, String::as_str)
            )),
        }
    }
    let n = ids.len();
    let mut problems = vec![];
    if !no_prefill.is_empty() {
        problems.push(format!(
            "{} never appeared in a prefill pod's log ({})",
            no_prefill.len(),
            examples(&no_prefill)
        ));
    }
    if !no_decode.is_empty() {
        problems.push(format!(
            "{} never appeared in a decode pod's log ({})",
            no_decode.len(),
            examples(&no_decode)
        ));
    }
    if !no_transfer.is_empty() {
        problems.push(format!(
            "{} reached a decode pod without the KV-transfer handle the prefill pod produced ({})",
            no_transfer.len(),
            examples(&no_transfer)
        ));
    }
    let pods_of = |s: &BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(", ");
    if !problems.is_empty() {
        return Err(format!(
            "of {n} request ids, {} (prefill pods {}; decode pods {})",
            problems.join("; "),
            pods_of(&prefill),
            pods_of(&decode)
        ));
    }
    let what = if handoff {
        "each decode pod having received the KV-transfer handle the prefill pod produced"
    } else {
        "the same id on both sides"
    };
    Ok(format!(
        "all {n} request ids appear in the logs of prefill pods ({}) and of separate decode pods ({}), {what} (e.g. {})",
        pods_of(&prefill),
        pods_of(&decode),
        example.unwrap_or_default()
    ))
}

/// Every request must have succeeded through the gateway and, when `decode_pods` is given
/// (model servers that name themselves in `x-served-by`), been answered by a decode pod.
pub fn judge_answers(
    tally: &Tally,
    decode_pods: Option<&BTreeSet<String>>,
) -> Result<String, String> {
    let Some(decode_pods) = decode_pods else {
        return match (tally.failures, tally.requests) {
            (0, 0) => Err("no request was sent through the gateway".to_string()),
            (0, n) => Ok(format!("all {n} requests through the gateway succeeded")),
            (f, n) => Err(format!(
                "{f} of {n} requests through the gateway failed (first failure: {})",
                tally.first_failure.as_deref().unwrap_or("-")
            )),
        };
    };
    if tally.failures > 0 || tally.unidentified > 0 {
        return Err(format!(
            "{} of {} requests through the gateway failed and {} answered without naming a server (first failure: {}); answered: {}",
            tally.failures,
            tally.requests,
            tally.unidentified,
            tally.first_failure.as_deref().unwrap_or("-"),
            tally.summary()
        ));
    }
    let n = tally.answered();
    if n == 0 {
        return Err("no request through the gateway was answered".to_string());
    }
    let others: u64 = tally
        .by_backend
        .iter()
        .filter(|(b, _)| !decode_pods.contains(*b))
        .map(|(_, v)| v)
        .sum();
    if others > 0 {
        return Err(format!(
            "{others} of {n} requests were answered by a pod that is not a decode pod: answered {}",
            tally.summary()
        ));
    }
    Ok(format!(
        "all {n} requests through the gateway succeeded, answered by decode pods ({})",
        tally.summary()
    ))
}

fn server(role_label: &str, role: &str, phase: Phase, image: &str) -> serde_json::Value {
    let labels = json!({"app.kubernetes.io/name": "disaggregated-model-server",
        "aiconform.dev/pool": POOL, role_label: role});
    json!({
        "metadata": {"name": format!("model-{phase}"), "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": CONTAINER, "image": image,
                    "args": ["probe", "serve", "--name", "$(POD_NAME)", "--address", "$(POD_IP)",
                        "--port", TARGET_PORT.to_string(), "--role", phase.to_string()],
                    "env": [
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
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

/// The stack under test: where its gateway is and how to find its model servers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stack {
    url: String,
    namespace: String,
    prefill: String,
    decode: String,
    /// The model servers' container to read (all containers when `None`).
    container: Option<String>,
    /// POSTed to the gateway instead of a GET, when set.
    body: Option<String>,
    /// The case's own model servers: their handoff log lines and `x-served-by` answers are
    /// judged too.
    ours: bool,
}

/// A provider-installed stack from `params.stack` (`gatewayUrl`, `namespace`,
/// `prefillSelector`, `decodeSelector`, `container`, `requestBody`), if given.
fn provider_stack(stack: Option<&serde_json::Value>) -> Result<Option<Stack>, String> {
    let Some(v) = stack else {
        return Ok(None);
    };
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let url = text("gatewayUrl")
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or("params.stack.gatewayUrl must be the http(s) URL of the stack's gateway")?;
    let namespace = text("namespace")
        .filter(|n| !n.is_empty())
        .ok_or("params.stack.namespace must name the namespace of the stack's model-server pods")?;
    Ok(Some(Stack {
        url,
        namespace,
        prefill: text("prefillSelector").unwrap_or_else(|| format!("{ROLE_LABEL}=prefill")),
        decode: text("decodeSelector").unwrap_or_else(|| format!("{ROLE_LABEL}=decode")),
        container: text("container"),
        body: v.get("requestBody").map(|b| b.to_string()),
        ours: false,
    }))
}

/// The logs of the pods `selector` matches, as pods of `phase`.
async fn phase_logs(
    pods: &Api<Pod>,
    selector: &str,
    container: Option<&str>,
    phase: Phase,
) -> anyhow::Result<Vec<PhaseLog>> {
    let mut out = vec![];
    for p in pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
    {
        let name = p.name_any();
        let containers: Vec<String> = match container {
            Some(c) => vec![c.to_string()],
            None => p
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
                .collect(),
        };
        let mut text = String::new();
        for c in containers {
            let params = LogParams {
                container: Some(c.clone()),
                ..LogParams::default()
            };
            text.push_str(&pods.logs(&name, &params).await.map_err(|e| {
                anyhow::anyhow!(
                    "reading the log of {phase} pod {name} (container {c}) through the API server: {e}"
                )
            })?);
        }
        out.push(PhaseLog {
            pod: name,
            phase,
            text,
        });
    }
    Ok(out)
}

/// Install the case's own stack: prefill and decode model servers, an InferencePool of
/// both behind an HTTPRoute on a Gateway. Err is the verdict when the platform does not
/// accept or program them.
async fn own_stack(
    ctx: &CaseContext,
    client: &Client,
    ns: &str,
) -> anyhow::Result<Result<Stack, Outcome>> {
    let (class, controller) = match accepted_class(ctx, client).await? {
        Ok(c) => c,
        Err(o) => return Ok(Err(o)),
    };
    let missing = crd_problems(client, &["inferencepools.inference.networking.k8s.io"]).await?;
    if !missing.is_empty() {
        return Ok(Err(Outcome::failed(format!(
            "the Gateway API Inference Extension is not installed: {}",
            missing.join("; ")
        ))));
    }
    let port: u16 = ctx.param("listenerPort")?.unwrap_or(8080);
    let role_label: String = ctx
        .param("roleLabel")?
        .unwrap_or_else(|| ROLE_LABEL.to_string());
    let roles = [
        (
            Phase::Prefill,
            ctx.param::<String>("prefillRole")?
                .unwrap_or_else(|| "prefill".to_string()),
        ),
        (
            Phase::Decode,
            ctx.param::<String>("decodeRole")?
                .unwrap_or_else(|| "decode".to_string()),
        ),
    ];
    let picker = ctx
        .param::<serde_json::Value>("endpointPickerRef")?
        .unwrap_or_else(|| json!({"name": format!("{POOL}-epp"), "port": {"number": 9002}}));
    let image = probe_image(ctx)?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    for (phase, role) in &roles {
        create(&deployments, server(&role_label, role, *phase, &image)).await?;
    }
    for (phase, role) in &roles {
        let d = format!("model-{phase}");
        if !await_available(&deployments, &d, deadline(ctx)).await? {
            return Ok(Err(Outcome::failed(format!(
                "{phase} model server Deployment {ns}/{d} has no available replica within {}s (pods: {})",
                secs(ctx.spec.timeout),
                pod_states(client, ns, &format!("{role_label}={role}")).await?
            ))));
        }
    }

    let pools = dynamic_api(
        client,
        POOL_GROUP,
        "v1",
        "InferencePool",
        "inferencepools",
        Some(ns),
    );
    pools
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(pool(picker))?,
        )
        .await?;
    let url = match programmed_gateway(ctx, client, ns, (&class, &controller), port, pool_route())
        .await?
    {
        Ok(u) => u,
        Err(o) => return Ok(Err(o)),
    };
    let waited = tokio::time::timeout_at(
        deadline(ctx),
        await_condition(pools.clone(), POOL, |p: Option<&DynamicObject>| {
            p.is_some_and(super::inference_ingress::pool_accepted)
        }),
    )
    .await;
    if !matches!(waited, Ok(Ok(Some(_)))) {
        let state = pools
            .get_opt(POOL)
            .await?
            .and_then(|p| p.data.pointer("/status").map(|s| s.to_string()))
            .unwrap_or_else(|| "no status".to_string());
        return Ok(Err(Outcome::failed(format!(
            "InferencePool {ns}/{POOL} behind HTTPRoute {ROUTE} was not Accepted by a parent Gateway within {}s: {state}",
            secs(ctx.spec.timeout)
        ))));
    }
    let [(_, prefill), (_, decode)] = roles;
    Ok(Ok(Stack {
        url,
        namespace: ns.to_string(),
        prefill: format!("{role_label}={prefill}"),
        decode: format!("{role_label}={decode}"),
        container: Some(CONTAINER.to_string()),
        body: None,
        ours: true,
    }))
}

pub(super) async fn disaggregated_inference_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let ns = case_namespace(&ctx)?;
    let stack = match provider_stack(ctx.spec.params.get("stack")) {
        Err(why) => return Ok(Outcome::failed(why)),
        Ok(Some(s)) => s,
        Ok(None) => match own_stack(&ctx, &client, &ns).await? {
            Ok(s) => s,
            Err(o) => return Ok(o),
        },
    };
    let requests: u64 = ctx.param("requests")?.unwrap_or(12);
    let image = probe_image(&ctx)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let name = "disaggregated-inference-client";
    let mut extra = vec!["--request-id-prefix".to_string(), ns.clone()];
    if let Some(b) = &stack.body {
        extra.extend(["--body".to_string(), b.clone()]);
    }
    create(
        &pods,
        client_pod(name, &image, &stack.url, requests, &extra),
    )
    .await?;
    let prefix = if stack.ours {
        format!(
            "InferencePool {ns}/{POOL} of prefill ({}) and decode ({}) model servers Accepted behind HTTPRoute {ROUTE} on Gateway {GATEWAY} at {}",
            stack.prefill, stack.decode, stack.url
        )
    } else {
        format!(
            "stack at {} with prefill pods {} and decode pods {} in namespace {}",
            stack.url, stack.prefill, stack.decode, stack.namespace
        )
    };
    let tally = match client_tally(&pods, name, &ctx).await? {
        Ok(t) => t,
        Err(why) => {
            return Ok(Outcome::failed(format!(
                "{prefix}; but client pod {name}: {why}"
            )));
        }
    };
    let stack_pods: Api<Pod> = Api::namespaced(client.clone(), &stack.namespace);
    let container = stack.container.as_deref();
    let mut logs = phase_logs(&stack_pods, &stack.prefill, container, Phase::Prefill).await?;
    logs.extend(phase_logs(&stack_pods, &stack.decode, container, Phase::Decode).await?);
    let decode_pods: BTreeSet<String> = logs
        .iter()
        .filter(|l| l.phase == Phase::Decode)
        .map(|l| l.pod.clone())
        .collect();
    let ids: Vec<String> = (0..requests).map(|i| request_id(&ns, Some(i))).collect();
    let answers = judge_answers(&tally, stack.ours.then_some(&decode_pods));
    let phases = judge_phases(&ids, &logs, stack.ours);
    Ok(match (answers, phases) {
        (Ok(a), Ok(p)) => Outcome::passed(format!("{prefix}; {a}; {p}")),
        (a, p) => {
            let say = |r: Result<String, String>| r.unwrap_or_else(|e| format!("but {e}"));
            Outcome::failed(format!("{prefix}; {}; {}", say(a), say(p)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(pod: &str, phase: Phase, lines: &[(&str, Option<&str>)]) -> PhaseLog {
        PhaseLog {
            pod: pod.into(),
            phase,
            text: lines
                .iter()
                .map(|(id, h)| phase::log_line(phase, pod, Some(id), *h, None) + "\n")
                .collect(),
        }
    }

    fn ids(n: u64) -> Vec<String> {
        (0..n).map(|i| request_id("ns", Some(i))).collect()
    }

    #[test]
    fn ids_on_both_sides_with_the_handle_pass() {
        let logs = [
            log(
                "model-prefill-a",
                Phase::Prefill,
                &[("ns-0000", Some("kv-p-1")), ("ns-0001", Some("kv-p-2"))],
            ),
            log(
                "model-decode-b",
                Phase::Decode,
                &[("ns-0000", Some("kv-p-1")), ("ns-0001", Some("kv-p-2"))],
            ),
        ];
        assert_eq!(
            judge_phases(&ids(2), &logs, true),
            Ok("all 2 request ids appear in the logs of prefill pods (model-prefill-a) and of separate decode pods (model-decode-b), each decode pod having received the KV-transfer handle the prefill pod produced (e.g. ns-0000: prefill model-prefill-a produced kv-p-1, decode model-decode-b received it)".to_string())
        );
    }

    #[test]
    fn requests_that_skip_a_phase_or_the_transfer_fail() {
        // Each request went to one pod: half to the prefill pod, half straight to decode.
        let split = [
            log(
                "p",
                Phase::Prefill,
                &[("ns-0000", Some("kv-p-1")), ("ns-0002", Some("kv-p-2"))],
            ),
            log("d", Phase::Decode, &[("ns-0001", None), ("ns-0003", None)]),
        ];
        assert_eq!(
            judge_phases(&ids(4), &split, true).unwrap_err(),
            "of 4 request ids, 2 never appeared in a prefill pod's log (ns-0001, ns-0003); 2 never appeared in a decode pod's log (ns-0000, ns-0002) (prefill pods p; decode pods d)"
        );
        // Both phases saw the id, but decode computed without the prefill's KV cache.
        let no_handle = [
            log("p", Phase::Prefill, &[("ns-0000", Some("kv-p-1"))]),
            log("d", Phase::Decode, &[("ns-0000", Some("kv-other"))]),
        ];
        assert!(
            judge_phases(&ids(1), &no_handle, true)
                .unwrap_err()
                .contains("1 reached a decode pod without the KV-transfer handle the prefill pod produced (ns-0000 (prefill handle kv-p-1, decode received kv-other))")
        );
        let many: Vec<(String, Option<&str>)> = ids(5).into_iter().map(|i| (i, None)).collect();
        let many: Vec<(&str, Option<&str>)> = many.iter().map(|(i, h)| (i.as_str(), *h)).collect();
        let only_decode = [
            log("p", Phase::Prefill, &[]),
            log("d", Phase::Decode, &many),
        ];
        assert!(
            judge_phases(&ids(5), &only_decode, true)
                .unwrap_err()
                .starts_with("of 5 request ids, 5 never appeared in a prefill pod's log (ns-0000, ns-0001, ns-0002 and 2 more)")
        );
    }

    #[test]
    fn phases_need_separate_pods() {
        let same = [
            log("x", Phase::Prefill, &[("ns-0000", Some("kv-1"))]),
            log("x", Phase::Decode, &[("ns-0000", Some("kv-1"))]),
        ];
        assert!(
            judge_phases(&ids(1), &same, true)
                .unwrap_err()
                .contains("pod x is labelled as both prefill and decode")
        );
        let no_decode = [log("p", Phase::Prefill, &[("ns-0000", Some("kv-1"))])];
        assert_eq!(
            judge_phases(&ids(1), &no_decode, true).unwrap_err(),
            "logs of 1 prefill and 0 decode pod(s) were read; both phases need a pod"
        );
    }

    #[test]
    fn ids_match_whole_tokens_in_any_log_format() {
        assert!(contains_token(
            "INFO Received request ns-0001: prompt",
            "ns-0001"
        ));
        assert!(!contains_token("request ns-00010", "ns-0001"));
        assert!(!contains_token("request xns-0001", "ns-0001"));
        assert!(contains_token(
            "Received request cmpl-ns-0001-0: prompt",
            "ns-0001"
        ));
        // A log without structured lines still places the id, but shows no transfer.
        let plain = [
            PhaseLog {
                pod: "p".into(),
                phase: Phase::Prefill,
                text: "Received request ns-0000\n".into(),
            },
            log("d", Phase::Decode, &[("ns-0000", None)]),
        ];
        assert!(
            judge_phases(&ids(1), &plain, true)
                .unwrap_err()
                .contains("(prefill handle none, decode received none)")
        );
    }

    #[test]
    fn answers_must_succeed_and_come_from_decode_pods() {
        let decode: BTreeSet<String> = ["d".to_string()].into();
        let mut t = Tally::default();
        t.record(Ok((200, Some("d".into()))));
        assert_eq!(
            judge_answers(&t, Some(&decode)),
            Ok(
                "all 1 requests through the gateway succeeded, answered by decode pods (d=1)"
                    .into()
            )
        );
        t.record(Ok((200, Some("p".into()))));
        assert_eq!(
            judge_answers(&t, Some(&decode)).unwrap_err(),
            "1 of 2 requests were answered by a pod that is not a decode pod: answered d=1 p=1"
        );
        t.record(Err("HTTP 503: no prefill".into()));
        assert!(
            judge_answers(&t, Some(&decode))
                .unwrap_err()
                .starts_with("1 of 3 requests through the gateway failed")
        );
    }

    #[test]
    fn provider_stacks_need_only_the_id_on_both_sides() {
        let plain = [
            PhaseLog {
                pod: "vllm-prefill-0".into(),
                phase: Phase::Prefill,
                text: "INFO Received request cmpl-ns-0000-0: prompt\n".into(),
            },
            PhaseLog {
                pod: "vllm-decode-0".into(),
                phase: Phase::Decode,
                text: "INFO Received request cmpl-ns-0000-0: prompt\n".into(),
            },
        ];
        assert_eq!(
            judge_phases(&ids(1), &plain, false),
            Ok("all 1 request ids appear in the logs of prefill pods (vllm-prefill-0) and of separate decode pods (vllm-decode-0), the same id on both sides (e.g. ns-0000 in vllm-prefill-0 and vllm-decode-0)".into())
        );
        assert!(
            judge_phases(&ids(2), &plain, false)
                .unwrap_err()
                .contains("1 never appeared in a prefill pod's log (ns-0001)")
        );
        let mut t = Tally::default();
        t.record(Ok((200, None)));
        assert_eq!(
            judge_answers(&t, None),
            Ok("all 1 requests through the gateway succeeded".into())
        );
        t.record(Err("HTTP 502: upstream".into()));
        assert_eq!(
            judge_answers(&t, None).unwrap_err(),
            "1 of 2 requests through the gateway failed (first failure: HTTP 502: upstream)"
        );
    }

    #[test]
    fn provider_stack_params() {
        assert_eq!(provider_stack(None), Ok(None));
        let s = provider_stack(Some(
            &json!({"gatewayUrl": "http://10.0.0.1/v1/completions",
            "namespace": "llm-d", "requestBody": {"model": "m", "prompt": "hi"}}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (s.prefill.as_str(), s.decode.as_str(), s.container, s.ours),
            ("llm-d.ai/role=prefill", "llm-d.ai/role=decode", None, false)
        );
        assert_eq!(s.body.as_deref(), Some(r#"{"model":"m","prompt":"hi"}"#));
        assert!(
            provider_stack(Some(&json!({"namespace": "x"})))
                .unwrap_err()
                .contains("gatewayUrl")
        );
        assert!(
            provider_stack(Some(&json!({"gatewayUrl": "http://g"})))
                .unwrap_err()
                .contains("params.stack.namespace")
        );
    }

    #[test]
    fn servers_carry_their_role() {
        let d = server("llm-d.ai/role", "decode", Phase::Decode, "img");
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"]["llm-d.ai/role"],
            "decode"
        );
        let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(args[8], "--role");
        assert_eq!(args[9], "decode");
        assert_eq!(
            pool(json!({"name": "x"}))["spec"]["selector"]["matchLabels"]["aiconform.dev/pool"],
            POOL
        );
        assert_eq!(
            pool_route()["spec"]["rules"][0]["backendRefs"][0]["name"],
            POOL
        );
    }
}
