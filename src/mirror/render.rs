//! Rendering charts with `helm template` to see the images they deploy. The arguments are
//! built by a pure function; [`Renderer::template`] runs helm with a deadline.
//!
//! `helm template` runs the chart's template code: only render recipes and bundles you
//! trust, as you would before installing them.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::ChartRef;
use crate::deploy::helm;

/// Runs `helm template` for one chart at a time.
#[derive(Debug, Clone)]
pub struct Renderer {
    pub helm: helm::Helm,
    /// Pull OCI charts over plain HTTP (local registries).
    pub plain_http: bool,
    /// Deadline of one render (fetching the chart included).
    pub timeout: Duration,
}

impl Renderer {
    /// A renderer using the helm `deploy` uses (`AICONFORM_HELM`, else `helm` on PATH).
    pub fn locate(plain_http: bool, timeout: Duration) -> Result<Renderer, String> {
        Ok(Renderer {
            helm: helm::locate()?,
            plain_http,
            timeout,
        })
    }

    /// The rendered manifests of `chart` installed as `release` into `namespace` with
    /// `values`, or why it could not be rendered (helm's own message, shortened).
    pub async fn template(
        &self,
        release: &str,
        chart: &ChartRef,
        namespace: &str,
        values: &Value,
    ) -> Result<String, String> {
        let mut file = tempfile::NamedTempFile::new()
            .map_err(|e| format!("cannot write a values file: {e}"))?;
        let text = serde_json::to_string(&values_or_empty(values))
            .map_err(|e| format!("cannot encode the values: {e}"))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| format!("cannot write a values file: {e}"))?;
        let args = template_args(release, chart, namespace, file.path(), self.plain_http);
        self.helm.run(&args, self.timeout).await
    }
}

fn values_or_empty(v: &Value) -> Value {
    if v.is_object() {
        v.clone()
    } else {
        Value::Object(Default::default())
    }
}

/// Arguments of `helm template` for `chart`: `oci://` locations name the chart by URL,
/// chart repositories go through `--repo`, a local directory holds the chart by name.
pub fn template_args(
    release: &str,
    chart: &ChartRef,
    namespace: &str,
    values: &Path,
    plain_http: bool,
) -> Vec<String> {
    let mut args = vec!["template".to_string(), release.to_string()];
    if chart.is_oci() {
        args.push(format!(
            "{}/{}",
            chart.repo.trim_end_matches('/'),
            chart.name
        ));
    } else if chart.repo.starts_with("http://") || chart.repo.starts_with("https://") {
        args.extend([chart.name.clone(), "--repo".into(), chart.repo.clone()]);
    } else {
        let dir = chart.repo.strip_prefix("file://").unwrap_or(&chart.repo);
        args.push(Path::new(dir).join(&chart.name).display().to_string());
    }
    args.extend([
        "--version".into(),
        chart.version.clone(),
        "--namespace".into(),
        namespace.to_string(),
        "--values".into(),
        values.display().to_string(),
        "--skip-tests".into(),
    ]);
    if chart.is_oci() && plain_http {
        args.push("--plain-http".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(repo: &str) -> ChartRef {
        ChartRef {
            name: "kai-scheduler".into(),
            repo: repo.into(),
            version: "v0.13.0".into(),
        }
    }

    #[test]
    fn oci_repo_and_local_charts() {
        let v = Path::new("/tmp/v.json");
        let oci = template_args(
            "k",
            &chart("oci://ghcr.io/nvidia/kai-scheduler"),
            "ns",
            v,
            true,
        );
        assert_eq!(oci[2], "oci://ghcr.io/nvidia/kai-scheduler/kai-scheduler");
        assert!(oci.contains(&"--plain-http".to_string()));
        let repo = template_args("k", &chart("https://charts.example.com"), "ns", v, true);
        assert_eq!(
            repo[2..5],
            ["kai-scheduler", "--repo", "https://charts.example.com"]
        );
        assert!(!repo.contains(&"--plain-http".to_string()));
        let local = template_args("k", &chart("file:///srv/charts"), "ns", v, false);
        assert_eq!(local[2], "/srv/charts/kai-scheduler");
    }
}
