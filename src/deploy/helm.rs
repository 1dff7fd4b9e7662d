//! The `helm` CLI: finding a supported one, the arguments of an install, reading back what
//! a release holds, and pulling the charts a bundle vendors ([`pull_charts`]). Parsing and
//! argument building are pure (the pull's in `crate::bundle::vendor`); the rest runs `helm`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bundle::manifests::{self, ManifestObject};
use crate::bundle::{BundleComponent, BundleError, vendor};
use crate::recipe::model::Recipe;

/// Path of the `helm` binary to use, instead of the one on PATH.
pub const HELM_ENV: &str = "AICONFORM_HELM";
/// Oldest Helm that installs OCI charts from plain-HTTP registries (`--plain-http`).
pub const MIN_VERSION: semver::Version = semver::Version::new(3, 13, 0);

/// A `helm` binary whose version was checked.
#[derive(Debug, Clone)]
pub struct Helm {
    pub path: PathBuf,
    pub version: semver::Version,
}

/// The version `helm version --template '{{.Version}}'` printed, if supported.
pub fn parse_version(text: &str) -> Result<semver::Version, String> {
    let t = text.trim();
    let v = semver::Version::parse(t.strip_prefix('v').unwrap_or(t))
        .map_err(|e| format!("cannot read its version from `{t}`: {e}"))?;
    if v < MIN_VERSION || v.major > 4 {
        return Err(format!(
            "it is Helm {v}; aiconform needs Helm 3 (>= {MIN_VERSION}) or Helm 4"
        ));
    }
    Ok(v)
}

/// `$AICONFORM_HELM`, else `helm` on PATH, version-checked. The error says what to do.
pub fn locate() -> Result<Helm, String> {
    let path = match std::env::var_os(HELM_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => super::find_on_path("helm").ok_or_else(|| {
            format!(
                "the `helm` CLI is not on PATH; install Helm 3 (https://helm.sh/docs/intro/install/) \
                 or point {HELM_ENV} at a helm binary, and re-run"
            )
        })?,
    };
    let out = std::process::Command::new(&path)
        .args(["version", "--template", "{{.Version}}"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} version failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let version = parse_version(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Helm { path, version })
}

/// Arguments of `helm upgrade --install` for `c`. No `--wait`: deploy waits for the
/// release's workloads itself and names the one that is not ready.
///
/// `archive` is where the bundle's vendored chart ([`BundleComponent::chart_archive`]) is
/// on disk: installed from there, with no repository, version or registry option.
pub fn install_args(
    c: &BundleComponent,
    archive: Option<&Path>,
    values: Option<&Path>,
    timeout: Duration,
    kubeconfig: Option<&Path>,
    plain_http: bool,
) -> Vec<String> {
    let mut args = vec!["upgrade".to_string(), "--install".into(), c.name.clone()];
    let mut oci = false;
    match archive {
        Some(path) => args.push(path.display().to_string()),
        None => {
            let (chart_ref, repo) = c.helm_chart_ref();
            oci = chart_ref.starts_with("oci://");
            args.push(chart_ref);
            if let Some(repo) = repo {
                args.extend(["--repo".into(), repo]);
            }
            args.extend(["--version".into(), c.version.clone()]);
        }
    }
    args.extend([
        "--namespace".into(),
        c.namespace.clone(),
        "--create-namespace".into(),
    ]);
    if let Some(v) = values {
        args.extend(["--values".into(), v.display().to_string()]);
    }
    if oci && plain_http {
        args.push("--plain-http".into());
    }
    args.extend(["--timeout".into(), format!("{}s", timeout.as_secs().max(1))]);
    args.extend(kubeconfig_args(kubeconfig));
    args
}

pub fn kubeconfig_args(kubeconfig: Option<&Path>) -> Vec<String> {
    kubeconfig
        .map(|k| vec!["--kubeconfig".to_string(), k.display().to_string()])
        .unwrap_or_default()
}

/// The workloads a release's manifest creates (Deployments, DaemonSets, StatefulSets),
/// namespaced with `default_ns` where the chart left the namespace out.
pub fn workloads(
    manifest: &str,
    default_ns: &str,
) -> Result<Vec<(String, String, String)>, String> {
    let objects: Vec<ManifestObject> = manifests::parse(manifest)?;
    Ok(objects
        .into_iter()
        .filter(|o| {
            o.api_version == "apps/v1"
                && matches!(o.kind.as_str(), "Deployment" | "DaemonSet" | "StatefulSet")
        })
        .map(|o| {
            let ns = o
                .namespace
                .clone()
                .unwrap_or_else(|| default_ns.to_string());
            (o.kind, ns, o.name)
        })
        .collect())
}

/// The last `lines` non-empty lines of a command's output, joined.
pub fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

impl Helm {
    /// Run helm with `args`, killed after `timeout`; stdout on success, else a message
    /// with the tail of stderr.
    pub async fn run(&self, args: &[String], timeout: Duration) -> Result<String, String> {
        let run = tokio::process::Command::new(&self.path)
            .args(args)
            .kill_on_drop(true)
            .output();
        let what = format!(
            "helm {}",
            args.iter().take(3).cloned().collect::<Vec<_>>().join(" ")
        );
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(out)) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(Ok(out)) => Err(format!(
                "{what} failed ({}): {}",
                out.status,
                tail(&out.stderr, 5)
            )),
            Ok(Err(e)) => Err(format!("cannot run {}: {e}", self.path.display())),
            Err(_) => Err(format!(
                "{what} did not finish within {}s",
                timeout.as_secs()
            )),
        }
    }

    /// `helm status` of a release as "status S (revision N)", or None when there is none.
    pub async fn release_status(
        &self,
        name: &str,
        namespace: &str,
        kubeconfig: Option<&Path>,
    ) -> Option<String> {
        let mut args: Vec<String> = ["status", name, "--namespace", namespace, "--output", "json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(kubeconfig_args(kubeconfig));
        let out = self.run(&args, Duration::from_secs(30)).await.ok()?;
        let v: serde_json::Value = serde_json::from_str(&out).ok()?;
        Some(format!(
            "status {} (revision {})",
            v["info"]["status"].as_str().unwrap_or("unknown"),
            v["version"]
        ))
    }
}

/// Pull the chart of every Helm component of `recipe` with `helm`, into memory. The first
/// chart that cannot be pulled, or is not the chart and version asked for, is an error
/// naming the component, chart, version and source.
pub async fn pull_charts(
    recipe: &Recipe,
    helm: &Helm,
    opts: &vendor::PullOptions,
) -> Result<vendor::VendoredCharts, BundleError> {
    let mut out = vendor::VendoredCharts::new();
    for p in vendor::plan(recipe)? {
        let failed = |reason: String| BundleError::VendorPull {
            component: p.component.clone(),
            chart: p.chart.clone(),
            version: p.version.clone(),
            location: p.source.clone(),
            reason,
        };
        let tmp = crate::bundle::temp_dir("aiconform-chart-")?;
        let args = vendor::pull_args(&p.chart, &p.version, &p.source, tmp.path(), opts);
        helm.run(&args, opts.timeout).await.map_err(&failed)?;
        let content = pulled_archive(tmp.path()).map_err(&failed)?;
        vendor::check_archive(&content, &p.chart, &p.version).map_err(&failed)?;
        out.insert(
            p.component,
            vendor::VendoredChart {
                chart: p.chart,
                version: p.version,
                source: p.source,
                file: p.file,
                content,
            },
        );
    }
    Ok(out)
}

/// The one `.tgz` `helm pull` wrote into `dir`.
fn pulled_archive(dir: &Path) -> Result<Vec<u8>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let archives: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tgz"))
        .collect();
    let [archive] = archives.as_slice() else {
        return Err(format!(
            "helm pull wrote {} chart archives into {}, expected 1",
            archives.len(),
            dir.display()
        ));
    };
    std::fs::read(archive).map_err(|e| format!("cannot read {}: {e}", archive.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("v3.22.0\n").unwrap(),
            semver::Version::new(3, 22, 0)
        );
        assert!(parse_version("v4.3.1").is_ok());
        let e = parse_version("v3.12.3").unwrap_err();
        assert!(e.contains("needs Helm 3 (>= 3.13.0)"), "{e}");
        assert!(parse_version("v2.17.0").is_err());
        assert!(parse_version("garbage").unwrap_err().contains("`garbage`"));
    }

    #[test]
    fn release_workloads() {
        let m = "---\n# Source: a/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n\
                 ---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds, namespace: other}\n\
                 ---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n";
        assert_eq!(
            workloads(m, "ns").unwrap(),
            [
                ("Deployment".to_string(), "ns".to_string(), "d".to_string()),
                ("DaemonSet".into(), "other".into(), "ds".into()),
            ]
        );
    }
}
