//! Deployment suite: `component-health` checks a recipe component's health checks
//! (workloads ready, CRDs established) and that the versions running are the recipe's.

use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use tokio::time::Instant;

use super::k8s::wait_object;
use super::version_evidence::{self, VersionEvidence};
use crate::health;
use crate::recipe::Component;
use crate::recipe::model::HealthCheck;
use crate::runner::{CaseContext, Outcome};

pub fn component_health(ctx: CaseContext) -> BoxFuture<'static, anyhow::Result<Outcome>> {
    Box::pin(run(ctx))
}

/// One health check's result: healthy summary + version evidence, or the problem.
type CheckResult = Result<(String, VersionEvidence), String>;

fn images(t: Option<&PodTemplateSpec>) -> Vec<String> {
    t.and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

async fn check_one(
    client: kube::Client,
    component: &Component,
    hc: &HealthCheck,
    deadline: Instant,
) -> anyhow::Result<CheckResult> {
    let ns = hc.namespace.as_deref().unwrap_or(&component.namespace);
    let what = match hc.kind.as_str() {
        "CustomResourceDefinition" => format!("CustomResourceDefinition {}", hc.name),
        k => format!("{k} {ns}/{}", hc.name),
    };
    let ev = |meta: &ObjectMeta, imgs: Vec<String>| {
        version_evidence::version_evidence(component, &what, meta, &imgs)
    };
    Ok(match hc.kind.as_str() {
        "Deployment" => {
            let api: Api<Deployment> = Api::namespaced(client, ns);
            wait_object(api, &what, &hc.name, deadline, health::deployment)
                .await?
                .map(|(o, m)| {
                    let e = ev(&o.metadata, images(o.spec.as_ref().map(|s| &s.template)));
                    (m, e)
                })
        }
        "DaemonSet" => {
            let api: Api<DaemonSet> = Api::namespaced(client, ns);
            wait_object(api, &what, &hc.name, deadline, health::daemonset)
                .await?
                .map(|(o, m)| {
                    let e = ev(&o.metadata, images(o.spec.as_ref().map(|s| &s.template)));
                    (m, e)
                })
        }
        "StatefulSet" => {
            let api: Api<StatefulSet> = Api::namespaced(client, ns);
            wait_object(api, &what, &hc.name, deadline, health::statefulset)
                .await?
                .map(|(o, m)| {
                    let e = ev(&o.metadata, images(o.spec.as_ref().map(|s| &s.template)));
                    (m, e)
                })
        }
        "CustomResourceDefinition" => {
            let api: Api<CustomResourceDefinition> = Api::all(client);
            wait_object(api, &what, &hc.name, deadline, health::crd)
                .await?
                .map(|(o, m)| (m, ev(&o.metadata, Vec::new())))
        }
        other => Err(format!(
            "{what}: unsupported healthCheck kind `{other}` (Deployment, DaemonSet, StatefulSet, CustomResourceDefinition)"
        )),
    })
}

/// Combine per-check results into the case outcome.
pub fn verdict(component: &Component, results: &[(String, CheckResult)]) -> Outcome {
    let mut problems = Vec::new();
    let mut matched = Vec::new();
    let mut healthy = 0;
    for (_, r) in results {
        match r {
            Err(e) => problems.push(e.clone()),
            Ok((_, VersionEvidence::Mismatch(m))) => {
                healthy += 1;
                problems.push(format!("version mismatch: {m}"));
            }
            Ok((_, VersionEvidence::Matches(m))) => {
                healthy += 1;
                matched.push(m.clone());
            }
            Ok((_, VersionEvidence::NotObservable)) => healthy += 1,
        }
    }
    if !problems.is_empty() {
        return Outcome::failed(format!(
            "{} {}: {}/{} health checks healthy; {}",
            component.name,
            component.version,
            healthy,
            results.len(),
            problems.join("; ")
        ));
    }
    let version = if matched.is_empty() {
        format!(
            "version {} not observable (no helm.sh/chart label or {} image on the checked objects)",
            component.version,
            component.chart.as_deref().unwrap_or(&component.name)
        )
    } else {
        format!(
            "version {} confirmed by {}",
            component.version,
            matched.join(", ")
        )
    };
    let detail: Vec<String> = results
        .iter()
        .filter_map(|(w, r)| r.as_ref().ok().map(|(m, _)| format!("{w}: {m}")))
        .collect();
    Outcome::passed(format!(
        "{}: all {} health checks healthy ({}); {version}",
        component.name,
        results.len(),
        detail.join("; ")
    ))
}

async fn run(ctx: CaseContext) -> anyhow::Result<Outcome> {
    let Some(name) = ctx.param::<String>("component")? else {
        anyhow::bail!(
            "case {} has no `component` parameter: the suite must name the recipe component",
            ctx.spec.id
        );
    };
    let Some(component) = ctx.recipe.component(&name).cloned() else {
        return Ok(Outcome::skipped(format!(
            "component {name} is not part of recipe {}",
            ctx.recipe.metadata.name
        )));
    };
    if component.health_checks.is_empty() {
        return Ok(Outcome::skipped(format!(
            "recipe {} declares no healthChecks for component {name}: its health cannot be shown",
            ctx.recipe.metadata.name
        )));
    }
    let client = match ctx.require_client() {
        Ok(c) => c.clone(),
        Err(skip) => return Ok(skip),
    };
    let deadline = super::k8s::case_deadline(&ctx);
    let checks = component.health_checks.iter().map(|hc| {
        let client = client.clone();
        let component = &component;
        async move {
            let what = format!("{} {}", hc.kind, hc.name);
            (what, check_one(client, component, hc, deadline).await)
        }
    });
    let mut results = Vec::new();
    for (what, r) in join_all(checks).await {
        results.push((what, r?));
    }
    Ok(verdict(&component, &results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> Component {
        serde_json::from_value(serde_json::json!({"name": "gpu-operator", "type": "Helm",
            "chart": "gpu-operator", "version": "v25.10.1", "namespace": "gpu-operator"}))
        .expect("component")
    }

    #[test]
    fn verdict_fails_on_any_problem_and_names_it() {
        let c = component();
        let ok = |m: &str, e| ("x".to_string(), Ok((m.to_string(), e)));
        let all_ok = vec![
            ok(
                "1/1 replicas ready",
                VersionEvidence::Matches(
                    "Deployment gpu-operator/gpu-operator: chart gpu-operator-v25.10.1".into(),
                ),
            ),
            ok("Established", VersionEvidence::NotObservable),
        ];
        let v = verdict(&c, &all_ok);
        assert!(
            matches!(&v, Outcome::Passed { message } if message.contains("version v25.10.1 confirmed")),
            "{v:?}"
        );

        let unobservable = vec![ok("Established", VersionEvidence::NotObservable)];
        assert!(
            matches!(verdict(&c, &unobservable), Outcome::Passed { message } if message.contains("not observable"))
        );

        let mut bad = all_ok.clone();
        bad.push((
            "DaemonSet d".into(),
            Err("DaemonSet gpu-operator/d: 1/2 pods ready".into()),
        ));
        bad.push(ok(
            "ready",
            VersionEvidence::Mismatch("Deployment x is from chart gpu-operator-v24.9.0".into()),
        ));
        match verdict(&c, &bad) {
            Outcome::Failed { message } => {
                assert!(message.contains("3/4 health checks healthy"), "{message}");
                assert!(message.contains("1/2 pods ready"), "{message}");
                assert!(message.contains("version mismatch"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
