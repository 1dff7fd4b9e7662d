//! Deploying a bundle to a cluster and waiting for component health.
//!
//! [`deploy`] verifies the bundle against its `bundle.yaml`, then takes the components in
//! deployment order: Helm charts through the `helm` CLI ([`helm`]; then every workload of
//! the release is waited for), manifests through server-side apply
//! (field manager `aiconform`, kinds resolved by discovery; an object refused because the
//! webhook that admits it is not serving yet is applied again until the deadline, as a
//! component's own objects are while its controller starts), kustomizations built by
//! `kubectl kustomize`. After each component it waits, with watches and a deadline, for the
//! component's health checks. A component that fails is reported with the object and the
//! reason, and the deploy stops there: later components are left untouched (with
//! `keep_going`, only the components that depend on it are skipped).
//!
//! The decisions (health of an object, what to skip, apply order) are pure functions in
//! [`health`] and here; the rest is I/O.

pub mod helm;
pub mod release;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde_json::{Value, json};

use crate::bundle::manifests::{self, ManifestObject};
use crate::bundle::{self, BundleComponent, BundleError, BundleManifest, Deployer};
use crate::health;
use crate::recipe::model::{ComponentType, HealthCheck};

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "aiconform";

#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// How long each component may take, from its first apply to its last health check.
    pub timeout: Duration,
    /// Passed to `helm` (kube-rs gets its client from the caller).
    pub kubeconfig: Option<PathBuf>,
    /// Pull `oci://` charts over plain HTTP (local registries).
    pub plain_http: bool,
    /// After a failure, go on with the components that do not depend on it.
    pub keep_going: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            kubeconfig: None,
            plain_http: false,
            keep_going: false,
        }
    }
}

/// Why a bundle could not be deployed at all. Component failures are not errors: they are
/// in the [`DeployReport`].
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(
        "{report}\nrefusing to deploy a bundle that does not match its bundle.yaml; re-render it with `aiconform bundle --force`"
    )]
    Tampered { report: String },
    #[error(
        "bundle {bundle} is rendered for --deployer {deployer}, which `aiconform deploy` does not install: {how}; or render the recipe with --deployer helm (or helmfile) to deploy it with aiconform"
    )]
    Deployer {
        bundle: String,
        deployer: Deployer,
        how: &'static str,
    },
}

/// Refuse a bundle whose deployer hands the releases to a controller in the cluster (Argo
/// CD, Flux): installing them with helm here would compete with it. Helm and helmfile
/// bundles list everything `deploy` needs in `bundle.yaml`.
pub fn check_deployer(manifest: &BundleManifest, bundle: &str) -> Result<(), DeployError> {
    let how = match manifest.deployer {
        Deployer::Helm | Deployer::Helmfile => return Ok(()),
        Deployer::ArgoCd => {
            "push it to Git and `kubectl apply -n argocd -f argocd/app-of-apps.yaml`, as its README.md says"
        }
        Deployer::ArgoCdHelm => {
            "push it to Git and `kubectl apply -n argocd -f argocd-helm/app-of-apps.yaml`, as its README.md says"
        }
        Deployer::Flux => {
            "push it to Git, `kubectl apply -f flux/source.yaml` and point a Flux Kustomization at it, as its README.md says"
        }
    };
    Err(DeployError::Deployer {
        bundle: bundle.to_string(),
        deployer: manifest.deployer,
        how,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Healthy,
    /// What failed, naming the object and why.
    Failed(String),
    /// Not attempted, and why.
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentResult {
    pub name: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReport {
    pub recipe: String,
    pub results: Vec<ComponentResult>,
}

impl DeployReport {
    pub fn is_ok(&self) -> bool {
        self.results.iter().all(|r| r.outcome == Outcome::Healthy)
    }

    pub fn count(&self, pred: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| pred(&r.outcome)).count()
    }
}

impl fmt::Display for DeployReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let healthy = self.count(|o| *o == Outcome::Healthy);
        let failed = self.count(|o| matches!(o, Outcome::Failed(_)));
        let skipped = self.count(|o| matches!(o, Outcome::Skipped(_)));
        write!(
            f,
            "deploy of recipe {}: {healthy} healthy, {failed} failed, {skipped} skipped",
            self.recipe
        )?;
        for r in &self.results {
            match &r.outcome {
                Outcome::Healthy => {}
                Outcome::Failed(why) => write!(f, "\n  FAILED  {}: {why}", r.name)?,
                Outcome::Skipped(why) => write!(f, "\n  SKIPPED {}: {why}", r.name)?,
            }
        }
        Ok(())
    }
}

/// Progress, for display.
#[derive(Debug, Clone)]
pub enum Event {
    Start {
        index: usize,
        total: usize,
        name: String,
        description: String,
    },
    Step {
        index: usize,
        total: usize,
        name: String,
        message: String,
    },
    Done {
        index: usize,
        total: usize,
        result: ComponentResult,
    },
}

/// The first dependency of `c` that is not healthy.
pub fn blocked_by<'a>(c: &'a BundleComponent, not_healthy: &BTreeSet<String>) -> Option<&'a str> {
    c.dependency_refs
        .iter()
        .find(|d| not_healthy.contains(*d))
        .map(String::as_str)
}

/// Why `c` is not attempted: a dependency failed, or the deploy stopped at a failure.
pub fn skip_reason(
    c: &BundleComponent,
    not_healthy: &BTreeSet<String>,
    stopped_at: Option<&str>,
) -> Option<String> {
    if let Some(dep) = blocked_by(c, not_healthy) {
        return Some(format!("depends on {dep}, which did not become healthy"));
    }
    stopped_at.map(|failed| format!("not attempted: the deploy stopped at {failed}, which failed"))
}

/// Apply order inside a component: namespaces, then CRDs, then everything else, each group
/// in file order.
pub fn apply_order(objects: Vec<ManifestObject>) -> (Vec<ManifestObject>, Vec<ManifestObject>) {
    let (first, rest): (Vec<_>, Vec<_>) = objects
        .into_iter()
        .partition(|o| o.is_crd() || (o.kind == "Namespace" && o.api_version == "v1"));
    let (mut ns, crds): (Vec<_>, Vec<_>) = first.into_iter().partition(|o| o.kind == "Namespace");
    ns.extend(crds);
    (ns, rest)
}

fn describe(c: &BundleComponent) -> String {
    match c.component_type {
        ComponentType::Helm => format!(
            "Helm chart {} {} into {}",
            c.chart.as_deref().unwrap_or(&c.name),
            c.version,
            c.namespace
        ),
        ComponentType::Kustomize => format!("kustomization {} into {}", c.version, c.namespace),
        ComponentType::Manifest => format!(
            "{} manifest file(s) {} into {}",
            c.manifests.len(),
            c.version,
            c.namespace
        ),
    }
}

/// Deploy the bundle in `dir` with `client`. Errors only when the bundle itself is unusable;
/// component failures are in the report.
pub async fn deploy(
    dir: &Path,
    client: &Client,
    opts: &DeployOptions,
    progress: &dyn Fn(Event),
) -> Result<DeployReport, DeployError> {
    let verified = bundle::verify(dir)?;
    if !verified.is_ok() {
        return Err(DeployError::Tampered {
            report: verified.to_string(),
        });
    }
    let manifest = verified.manifest;
    check_deployer(&manifest, &dir.display().to_string())?;
    let total = manifest.components.len();
    let mut not_healthy = BTreeSet::new();
    let mut stopped_at: Option<String> = None;
    let mut results = Vec::with_capacity(total);
    for (i, c) in manifest.components.iter().enumerate() {
        let index = i + 1;
        progress(Event::Start {
            index,
            total,
            name: c.name.clone(),
            description: describe(c),
        });
        let started = Instant::now();
        let outcome = match skip_reason(c, &not_healthy, stopped_at.as_deref()) {
            Some(why) => Outcome::Skipped(why),
            None => {
                let step = |message: String| {
                    progress(Event::Step {
                        index,
                        total,
                        name: c.name.clone(),
                        message,
                    })
                };
                let ctx = Ctx {
                    dir,
                    client,
                    opts,
                    deadline: started + opts.timeout,
                    step: &step,
                };
                match deploy_component(&ctx, c).await {
                    Ok(()) => Outcome::Healthy,
                    Err(why) => Outcome::Failed(why),
                }
            }
        };
        if outcome != Outcome::Healthy {
            not_healthy.insert(c.name.clone());
        }
        if matches!(outcome, Outcome::Failed(_)) && !opts.keep_going && stopped_at.is_none() {
            stopped_at = Some(c.name.clone());
        }
        let result = ComponentResult {
            name: c.name.clone(),
            outcome,
            elapsed: started.elapsed(),
        };
        progress(Event::Done {
            index,
            total,
            result: result.clone(),
        });
        results.push(result);
    }
    Ok(DeployReport {
        recipe: manifest.recipe.name,
        results,
    })
}

struct Ctx<'a> {
    dir: &'a Path,
    client: &'a Client,
    opts: &'a DeployOptions,
    deadline: Instant,
    step: &'a dyn Fn(String),
}

impl Ctx<'_> {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn path(&self, rel: &str) -> PathBuf {
        let mut p = self.dir.to_path_buf();
        for seg in rel.split('/') {
            p.push(seg);
        }
        p
    }
}

async fn deploy_component(ctx: &Ctx<'_>, c: &BundleComponent) -> Result<(), String> {
    let mut objects = Vec::new();
    match c.component_type {
        ComponentType::Helm => helm_install(ctx, c).await?,
        ComponentType::Kustomize => {
            ensure_namespace(ctx.client, &c.namespace).await?;
            if let Some(k) = &c.kustomization {
                (ctx.step)("building kustomization".into());
                objects.extend(kustomize_build(ctx, k).await?);
            }
        }
        ComponentType::Manifest => ensure_namespace(ctx.client, &c.namespace).await?,
    }
    for rel in &c.manifests {
        let path = ctx.path(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        objects.extend(manifests::parse(&text).map_err(|e| format!("{rel}: {e}"))?);
    }
    if !objects.is_empty() {
        let (first, rest) = apply_order(objects);
        for o in &first {
            apply_object(ctx, o, &c.namespace).await?;
        }
        let crds: Vec<&ManifestObject> = first.iter().filter(|o| o.is_crd()).collect();
        if !crds.is_empty() {
            (ctx.step)(format!(
                "waiting for {} CRD(s) to be Established",
                crds.len()
            ));
            let api: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
            for crd in crds {
                wait_for(
                    ctx,
                    api.clone(),
                    &crd.name,
                    format!("CustomResourceDefinition {}", crd.name),
                )
                .await?;
            }
        }
        for o in &rest {
            apply_object(ctx, o, &c.namespace).await?;
        }
    }
    if !c.health_checks.is_empty() {
        (ctx.step)(format!(
            "waiting for {} health check(s)",
            c.health_checks.len()
        ));
        let waits = c.health_checks.iter().map(|h| wait_health(ctx, c, h));
        let failures: Vec<String> = futures::future::join_all(waits)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }
    }
    Ok(())
}

fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.reason),
        other => other.to_string(),
    }
}

async fn ensure_namespace(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    api.patch(name, &PatchParams::apply(FIELD_MANAGER), &Patch::Apply(&ns))
        .await
        .map(|_| ())
        .map_err(|e| format!("creating namespace {name}: {}", kube_message(&e)))
}

async fn apply_object(ctx: &Ctx<'_>, o: &ManifestObject, default_ns: &str) -> Result<(), String> {
    let (group, version) = match o.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", o.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &o.kind);
    let (ar, caps) = pinned_kind(ctx.client, &gvk).await.map_err(|e| {
        format!(
            "{}: the cluster does not serve {} {} ({}); is the CRD installed by an earlier component?",
            o.describe(),
            o.api_version,
            o.kind,
            kube_message(&e)
        )
    })?;
    let mut value: Value = o.object.clone();
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = o
                .namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string());
            if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            Api::namespaced_with(ctx.client.clone(), &ns, &ar)
        }
        Scope::Cluster => Api::all_with(ctx.client.clone(), &ar),
    };
    (ctx.step)(format!("applying {}", o.describe()));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&value);
    let mut delays = webhook_retry_delays();
    loop {
        let apply = api.patch(&o.name, &params, &patch);
        let err = match tokio::time::timeout(ctx.remaining(), apply).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(format!(
                    "applying {}: no answer before the {} timeout",
                    o.describe(),
                    crate::duration::format(ctx.opts.timeout)
                ));
            }
        };
        let message = format!("applying {}: {}", o.describe(), kube_message(&err));
        let delay = delays.next().unwrap_or(WEBHOOK_RETRY_MAX);
        if !webhook_unavailable(&err) || ctx.remaining() <= delay {
            return Err(message);
        }
        (ctx.step)(format!("waiting for the webhook that admits it: {message}"));
        tokio::time::sleep(delay).await;
    }
}

/// Longest pause between two applies refused by an unavailable webhook.
const WEBHOOK_RETRY_MAX: Duration = Duration::from_secs(5);

/// Pauses between applies while a webhook is unavailable: 0.25 s doubling to 5 s.
fn webhook_retry_delays() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(Duration::from_millis(250)), |d| {
        Some((*d * 2).min(WEBHOOK_RETRY_MAX))
    })
}

/// Whether the API server refused an object because an admission or conversion webhook it
/// must call is not serving yet (no endpoints, connection refused, a certificate not yet
/// injected): what a component's own objects meet while its controller starts, and what
/// passes without anyone acting, unlike a webhook that denies the object.
pub fn webhook_unavailable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 500
                && (s.message.contains("failed calling webhook")
                    || s.message.contains("conversion webhook"))
        }
        _ => false,
    }
}

async fn wait_health(ctx: &Ctx<'_>, c: &BundleComponent, h: &HealthCheck) -> Result<(), String> {
    let ns = h.namespace.clone().unwrap_or_else(|| c.namespace.clone());
    let label = |kind: &str| format!("{kind} {ns}/{}", h.name);
    let client = ctx.client.clone();
    match h.kind.as_str() {
        "Deployment" => {
            let api: Api<Deployment> = Api::namespaced(client, &ns);
            wait_for(ctx, api, &h.name, label("Deployment")).await
        }
        "StatefulSet" => {
            let api: Api<StatefulSet> = Api::namespaced(client, &ns);
            wait_for(ctx, api, &h.name, label("StatefulSet")).await
        }
        "DaemonSet" => {
            let api: Api<DaemonSet> = Api::namespaced(client, &ns);
            wait_for(ctx, api, &h.name, label("DaemonSet")).await
        }
        "CustomResourceDefinition" => {
            let api: Api<CustomResourceDefinition> = Api::all(client);
            wait_for(
                ctx,
                api,
                &h.name,
                format!("CustomResourceDefinition {}", h.name),
            )
            .await
        }
        other => Err(format!(
            "health check kind {other} is not supported (use Deployment, DaemonSet, StatefulSet or CustomResourceDefinition)"
        )),
    }
}

/// Watch `name` until it is healthy or the component's deadline passes; then say what the
/// object looks like.
async fn wait_for<K: health::Workload>(
    ctx: &Ctx<'_>,
    api: Api<K>,
    name: &str,
    label: String,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + ctx.remaining();
    match crate::wait::wait_object(api, &label, name, deadline, health::check::<K>).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(why)) => Err(format!(
            "{why} after {}",
            crate::duration::format(ctx.opts.timeout)
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// `tool` on PATH, if there.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| is_executable_file(p))
}

#[cfg(unix)]
fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable_file(p: &Path) -> bool {
    p.is_file()
}

async fn helm_install(ctx: &Ctx<'_>, c: &BundleComponent) -> Result<(), String> {
    let chart = c.chart.as_deref().unwrap_or(&c.name);
    let helm = helm::locate().map_err(|why| {
        format!(
            "Helm chart {chart} {} cannot be installed: {why}; or install the chart as {}/README.md shows",
            c.version, c.folder
        )
    })?;
    let values = c.values.as_deref().map(|v| ctx.path(v));
    let archive = c.chart_archive.as_deref().map(|a| ctx.path(a));
    let kubeconfig = ctx.opts.kubeconfig.as_deref();
    let args = helm::install_args(
        c,
        archive.as_deref(),
        values.as_deref(),
        ctx.remaining(),
        kubeconfig,
        ctx.opts.plain_http,
    );
    (ctx.step)(match &c.chart_archive {
        Some(a) => format!("helm upgrade --install {} {a}", c.name),
        None => format!("helm upgrade --install {} {chart} {}", c.name, c.version),
    });
    // helm enforces --timeout itself; the grace covers its start-up and chart download.
    let grace = Duration::from_secs(30);
    if let Err(why) = helm.run(&args, ctx.remaining() + grace).await {
        let left = match helm.release_status(&c.name, &c.namespace, kubeconfig).await {
            Some(status) => format!(
                "release {} is left in namespace {} with {status}; `helm uninstall {} --namespace {}` or undeploy.sh removes it",
                c.name, c.namespace, c.name, c.namespace
            ),
            None => "nothing was installed".into(),
        };
        return Err(format!("{why}; {left}"));
    }
    let mut get = vec![
        "get".to_string(),
        "manifest".into(),
        c.name.clone(),
        "--namespace".into(),
        c.namespace.clone(),
    ];
    get.extend(helm::kubeconfig_args(kubeconfig));
    let manifest = helm.run(&get, Duration::from_secs(60)).await?;
    let workloads = helm::workloads(&manifest, &c.namespace)
        .map_err(|e| format!("cannot read the manifest of release {}: {e}", c.name))?;
    if workloads.is_empty() {
        return Ok(());
    }
    (ctx.step)(format!(
        "waiting for {} workload(s) of release {}",
        workloads.len(),
        c.name
    ));
    let waits = workloads.iter().map(|(kind, ns, name)| {
        let h = HealthCheck {
            kind: kind.clone(),
            name: name.clone(),
            namespace: Some(ns.clone()),
        };
        async move { wait_health(ctx, c, &h).await }
    });
    let failures: Vec<String> = futures::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "release {} installed but not healthy: {}",
            c.name,
            failures.join("; ")
        ))
    }
}

async fn kustomize_build(ctx: &Ctx<'_>, rel: &str) -> Result<Vec<ManifestObject>, String> {
    let Some(kubectl) = find_on_path("kubectl") else {
        return Err(
            "building the kustomization needs `kubectl` on PATH (kubectl kustomize); install it and re-run"
                .into(),
        );
    };
    let run = tokio::process::Command::new(&kubectl)
        .arg("kustomize")
        .arg(ctx.path(rel))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(ctx.remaining(), run)
        .await
        .map_err(|_| format!("kubectl kustomize {rel} did not finish in time"))?
        .map_err(|e| format!("cannot run {}: {e}", kubectl.display()))?;
    if !out.status.success() {
        return Err(format!(
            "kubectl kustomize {rel} failed: {}",
            helm::tail(&out.stderr, 5)
        ));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| format!("kubectl kustomize {rel} printed invalid UTF-8"))?;
    manifests::parse(&text).map_err(|e| format!("output of kubectl kustomize {rel}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(name: &str, deps: &[&str]) -> BundleComponent {
        BundleComponent {
            name: name.into(),
            folder: format!("01-{name}"),
            component_type: ComponentType::Helm,
            source: Some("https://charts.example.com".into()),
            chart: Some("chart".into()),
            chart_archive: None,
            version: "1.0.0".into(),
            namespace: "ns".into(),
            dependency_refs: deps.iter().map(|d| d.to_string()).collect(),
            values: Some("01-x/values.yaml".into()),
            kustomization: None,
            manifests: vec![],
            health_checks: vec![],
        }
    }

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            serde_json::from_value(json!({
                "status": "Failure", "code": code, "reason": reason, "message": message
            }))
            .unwrap(),
        )
    }

    #[test]
    fn only_an_unavailable_webhook_is_retried() {
        let down = api_error(
            500,
            "InternalError",
            "Internal error occurred: failed calling webhook \"mclusterqueue.kb.io\": failed to call webhook: Post \"https://kueue-webhook-service.kueue-system.svc:443/mutate\": dial tcp 10.0.0.9:443: connect: connection refused",
        );
        assert!(webhook_unavailable(&down));
        let denied = api_error(
            403,
            "Forbidden",
            "admission webhook \"vclusterqueue.kb.io\" denied the request: spec.cohort: Invalid value",
        );
        assert!(!webhook_unavailable(&denied));
        assert!(!webhook_unavailable(&api_error(
            500,
            "InternalError",
            "etcdserver: request timed out"
        )));
        assert!(!webhook_unavailable(&api_error(
            422,
            "Invalid",
            "failed calling webhook"
        )));
    }

    #[test]
    fn webhook_retries_back_off_to_a_ceiling() {
        let d: Vec<u128> = webhook_retry_delays()
            .take(7)
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(d, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn skips_dependents_of_failures() {
        let bad: BTreeSet<String> = ["b".to_string()].into();
        assert_eq!(blocked_by(&comp("c", &["a", "b"]), &bad), Some("b"));
        assert_eq!(blocked_by(&comp("d", &["a"]), &bad), None);
        assert_eq!(skip_reason(&comp("d", &["a"]), &bad, None), None);
        assert_eq!(
            skip_reason(&comp("d", &["a"]), &bad, Some("b")).unwrap(),
            "not attempted: the deploy stopped at b, which failed"
        );
        assert_eq!(
            skip_reason(&comp("c", &["b"]), &bad, Some("b")).unwrap(),
            "depends on b, which did not become healthy"
        );
    }

    #[test]
    fn crds_and_namespaces_first() {
        let objs = manifests::parse(
            "apiVersion: demo/v1\nkind: Widget\nmetadata: {name: w}\n---\n\
             apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.demo}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n",
        )
        .unwrap();
        let (first, rest) = apply_order(objs);
        let names = |v: &[ManifestObject]| v.iter().map(|o| o.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&first), ["ns1", "widgets.demo"]);
        assert_eq!(names(&rest), ["w", "c"]);
    }

    #[test]
    fn helm_arguments() {
        let args = helm::install_args(
            &comp("gpu-operator", &[]),
            None,
            Some(Path::new("/b/01-x/values.yaml")),
            Duration::from_secs(90),
            Some(Path::new("/k")),
            true,
        );
        assert_eq!(
            args.join(" "),
            "upgrade --install gpu-operator chart --repo https://charts.example.com --version 1.0.0 \
             --namespace ns --create-namespace --values /b/01-x/values.yaml --timeout 90s --kubeconfig /k"
        );
        let mut oci = comp("kai", &[]);
        oci.source = Some("oci://127.0.0.1:5000/charts".into());
        let args = helm::install_args(&oci, None, None, Duration::from_secs(9), None, true);
        assert_eq!(
            args.join(" "),
            "upgrade --install kai oci://127.0.0.1:5000/charts/chart --version 1.0.0 \
             --namespace ns --create-namespace --plain-http --timeout 9s"
        );
        // A vendored chart: the archive, no repository, version or registry option.
        oci.chart_archive = Some("charts/chart-1.0.0.tgz".into());
        let args = helm::install_args(
            &oci,
            Some(Path::new("/b/charts/chart-1.0.0.tgz")),
            None,
            Duration::from_secs(9),
            None,
            true,
        );
        assert_eq!(
            args.join(" "),
            "upgrade --install kai /b/charts/chart-1.0.0.tgz \
             --namespace ns --create-namespace --timeout 9s"
        );
    }

    #[test]
    fn only_helm_and_helmfile_bundles_are_deployed() {
        let manifest = |deployer| BundleManifest {
            api_version: "aiconform.dev/v1alpha1".into(),
            kind: "Bundle".into(),
            tool_version: "0".into(),
            deployer,
            serial: false,
            recipe: crate::bundle::RecipeRef {
                name: "r".into(),
                digest: "sha256:0".into(),
                criteria: Default::default(),
            },
            placement: Default::default(),
            components: vec![],
            files: vec![],
        };
        for d in Deployer::ALL {
            let r = check_deployer(&manifest(d), "./b");
            assert_eq!(r.is_ok(), !d.reads_git(), "{d}");
        }
        let e = check_deployer(&manifest(Deployer::Flux), "./b")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("bundle ./b is rendered for --deployer flux, which `aiconform deploy` does not install: push it to Git, `kubectl apply -f flux/source.yaml`"),
            "{e}"
        );
    }

    #[test]
    fn report_names_failures() {
        let r = DeployReport {
            recipe: "r".into(),
            results: vec![
                ComponentResult {
                    name: "a".into(),
                    outcome: Outcome::Healthy,
                    elapsed: Duration::ZERO,
                },
                ComponentResult {
                    name: "b".into(),
                    outcome: Outcome::Failed("DaemonSet b/b: 1 of 2 pods ready after 60s".into()),
                    elapsed: Duration::ZERO,
                },
                ComponentResult {
                    name: "c".into(),
                    outcome: Outcome::Skipped("depends on b".into()),
                    elapsed: Duration::ZERO,
                },
            ],
        };
        assert!(!r.is_ok());
        let text = r.to_string();
        assert!(text.contains("1 healthy, 1 failed, 1 skipped"), "{text}");
        assert!(
            text.contains("FAILED  b: DaemonSet b/b: 1 of 2 pods ready after 60s"),
            "{text}"
        );
        assert!(text.contains("SKIPPED c: depends on b"), "{text}");
    }
}
