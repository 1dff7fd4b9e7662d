//! ai_inference: a Gateway API implementation routes inference traffic.

use kube::api::ListParams;
use kube::runtime::wait::await_condition;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::super::k8s::{case_namespace, condition_true, conditions, crd_problems, dynamic_api};
use super::*;
use crate::runner::{CaseContext, Outcome};

pub(super) async fn inference_gateway_impl(
    ctx: CaseContext,
    client: Client,
) -> anyhow::Result<Outcome> {
    let missing = crd_problems(
        &client,
        &[
            "gatewayclasses.gateway.networking.k8s.io",
            "gateways.gateway.networking.k8s.io",
            "httproutes.gateway.networking.k8s.io",
        ],
    )
    .await?;
    if !missing.is_empty() {
        return Ok(Outcome::failed(format!(
            "Gateway API is not installed: {}",
            missing.join("; ")
        )));
    }
    let classes = dynamic_api(
        &client,
        "gateway.networking.k8s.io",
        "v1",
        "GatewayClass",
        "gatewayclasses",
        None,
    )
    .list(&ListParams::default())
    .await?
    .items;
    let wanted = ctx.param::<String>("gatewayClass");
    let accepted: Vec<String> = classes
        .iter()
        .filter(|c| condition_true(c, "Accepted"))
        .map(|c| c.name_any())
        .filter(|n| wanted.as_ref().is_none_or(|w| w == n))
        .collect();
    let Some(class) = accepted.first().cloned() else {
        let all: Vec<String> = classes
            .iter()
            .map(|c| {
                let conds: Vec<String> = conditions(c)
                    .into_iter()
                    .map(|(t, s, r, _)| format!("{t}={s} {r}"))
                    .collect();
                format!("{} ({})", c.name_any(), conds.join(", "))
            })
            .collect();
        return Ok(Outcome::failed(format!(
            "no accepted GatewayClass{}: {}",
            wanted.map(|w| format!(" named {w}")).unwrap_or_default(),
            if all.is_empty() {
                "none defined (no Gateway controller installed)".to_string()
            } else {
                all.join("; ")
            }
        )));
    };
    let ns = case_namespace(&ctx)?;
    let gws = dynamic_api(
        &client,
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
        "gateways",
        Some(&ns),
    );
    let gw: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "inference"},
        "spec": {"gatewayClassName": class,
            "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}
    }))?;
    gws.create(&kube::api::PostParams::default(), &gw).await?;
    let cond =
        |g: Option<&kube::core::DynamicObject>| g.is_some_and(|g| condition_true(g, "Accepted"));
    let waited = tokio::time::timeout_at(
        deadline(&ctx),
        await_condition(gws.clone(), "inference", cond),
    )
    .await;
    if let Ok(r) = waited
        && r?.is_some()
    {
        return Ok(Outcome::passed(format!(
            "Gateway API installed; GatewayClass {class} accepted; Gateway {ns}/inference Accepted"
        )));
    }
    let state = gws
        .get_opt("inference")
        .await?
        .map(|g| {
            conditions(&g)
                .into_iter()
                .map(|(t, s, r, m)| format!("{t}={s} {r} {m}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "gone".to_string());
    Ok(Outcome::failed(format!(
        "Gateway {ns}/inference (class {class}) not Accepted within {}s: {}",
        secs(ctx.spec.timeout),
        if state.is_empty() {
            "no status conditions"
        } else {
            &state
        }
    )))
}
