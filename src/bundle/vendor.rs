//! Vendored charts (`bundle --vendor-charts`): every Helm component's chart pulled with the
//! project's helm into `charts/<chart>-<version>.tgz`, with `charts/provenance.yaml` saying
//! where each came from, so the bundle installs without reaching a chart source.
//!
//! The I/O, one `helm pull` per chart into memory, is `crate::deploy::helm::pull_charts`;
//! here are the pure parts: the arguments, the archive's name, the check of the archive's
//! `Chart.yaml` and the provenance text.
//! [`super::render_with_charts`] lays the archives into the bundle, where
//! `bundle.yaml` lists them with their SHA-256 like every other file.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::error::BundleError;
use super::model::sha256_hex;
use super::options::Deployer;
use crate::recipe::model::{ComponentType, Recipe};

/// Folder of the vendored archives.
pub const CHARTS_DIR: &str = "charts";
/// Where each vendored chart came from.
pub const PROVENANCE_FILE: &str = "charts/provenance.yaml";

/// One chart pulled for a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendoredChart {
    pub chart: String,
    pub version: String,
    /// The recipe's source: a chart repository URL or an `oci://` location.
    pub source: String,
    /// Bundle path, `charts/<chart>-<version>.tgz`.
    pub file: String,
    pub content: Vec<u8>,
}

/// Vendored charts by component name.
pub type VendoredCharts = BTreeMap<String, VendoredChart>;

/// How `helm pull` reaches the chart sources.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--plain-http` for `oci://` sources (local registries).
    pub plain_http: bool,
    /// `--ca-file`: an extra CA to trust for HTTPS repositories and registries.
    pub ca_file: Option<PathBuf>,
    /// `--username`/`--password`.
    pub credentials: Option<(String, String)>,
    /// How long one pull may take.
    pub timeout: Duration,
}

impl Deployer {
    /// Whether bundles of this deployer can install vendored charts: the helm scripts,
    /// `aiconform deploy` and helmfile read them from the bundle directory. Argo CD and Flux
    /// fetch charts in the cluster from the chart source, not from the bundle.
    pub fn vendors_charts(self) -> bool {
        matches!(self, Deployer::Helm | Deployer::Helmfile)
    }
}

/// Refuse `--vendor-charts` for a deployer that cannot install vendored charts.
pub fn check_deployer(deployer: Deployer) -> Result<(), BundleError> {
    if deployer.vendors_charts() {
        Ok(())
    } else {
        Err(BundleError::VendorUnsupported {
            deployer: deployer.to_string(),
        })
    }
}

/// A chart to pull for a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPull {
    pub component: String,
    pub chart: String,
    pub version: String,
    pub source: String,
    /// Bundle path of the archive.
    pub file: String,
}

/// The charts to pull for `recipe`, one per Helm component in recipe order; a Helm
/// component without a source, or whose archive name would not be a plain file name, is an
/// error before anything is pulled.
pub fn plan(recipe: &Recipe) -> Result<Vec<PlannedPull>, BundleError> {
    recipe
        .components
        .iter()
        .filter(|c| c.component_type == ComponentType::Helm)
        .map(|c| {
            let chart = c.chart.clone().unwrap_or_else(|| c.name.clone());
            let Some(source) = c.source.clone() else {
                return Err(BundleError::VendorNoSource {
                    component: c.name.clone(),
                    chart,
                });
            };
            let file =
                archive_path(&chart, &c.version).map_err(|reason| BundleError::InvalidField {
                    component: c.name.clone(),
                    field: "chart",
                    value: chart.clone(),
                    reason,
                })?;
            Ok(PlannedPull {
                component: c.name.clone(),
                chart,
                version: c.version.clone(),
                source,
                file,
            })
        })
        .collect()
}

/// `charts/<chart>-<version>.tgz`, with the chart's last path segment; its name must be a
/// plain file name.
pub fn archive_path(chart: &str, version: &str) -> Result<String, String> {
    let name = chart.rsplit('/').next().unwrap_or(chart);
    let file = format!("{name}-{version}.tgz");
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && file.len() <= 200
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if !ok {
        return Err(format!(
            "`{file}` is not a plain file name (letters, digits, `-`, `_`, `.`, `+`)"
        ));
    }
    Ok(format!("{CHARTS_DIR}/{file}"))
}

/// Arguments of `helm pull` for `chart` `version` from `source` into `dest`: `oci://`
/// sources name the chart by URL, chart repositories go through `--repo`.
pub fn pull_args(
    chart: &str,
    version: &str,
    source: &str,
    dest: &Path,
    opts: &PullOptions,
) -> Vec<String> {
    let oci = source.starts_with("oci://");
    let mut args = vec!["pull".to_string()];
    if oci {
        args.push(format!("{}/{chart}", source.trim_end_matches('/')));
    } else {
        args.extend([chart.to_string(), "--repo".into(), source.to_string()]);
    }
    args.extend([
        "--version".into(),
        version.to_string(),
        "--destination".into(),
        dest.display().to_string(),
    ]);
    if oci && opts.plain_http {
        args.push("--plain-http".into());
    }
    if let Some(ca) = &opts.ca_file {
        args.extend(["--ca-file".into(), ca.display().to_string()]);
    }
    if let Some((user, password)) = &opts.credentials {
        args.extend([
            "--username".into(),
            user.clone(),
            "--password".into(),
            password.clone(),
        ]);
    }
    args
}

/// Name and version from the `Chart.yaml` at the top of a packaged chart.
pub fn chart_metadata(archive: &[u8]) -> Result<(String, String), String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar
        .entries()
        .map_err(|e| format!("not a packaged chart (tar.gz): {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt chart archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("corrupt chart archive: {e}"))?
            .to_string_lossy()
            .into_owned();
        let segs: Vec<&str> = path.split('/').collect();
        if segs.len() != 2 || segs[1] != "Chart.yaml" {
            continue;
        }
        let mut text = String::new();
        entry
            .by_ref()
            .take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        let meta: serde_json::Value =
            crate::yaml::from_str(&text, &path).map_err(|e| e.to_string())?;
        let field = |k: &str| {
            meta[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{path} has no {k}"))
        };
        return Ok((field("name")?, field("version")?));
    }
    Err("no Chart.yaml at the top of the archive".into())
}

/// Chart versions as equal as Helm treats them: a leading `v` and OCI tags' `_` for `+`
/// aside.
fn same_version(a: &str, b: &str) -> bool {
    let norm = |v: &str| v.strip_prefix('v').unwrap_or(v).replace('_', "+");
    norm(a) == norm(b)
}

/// Check that `archive` is `chart` `version`; the reason when it is not.
pub fn check_archive(archive: &[u8], chart: &str, version: &str) -> Result<(), String> {
    let (name, found) = chart_metadata(archive)?;
    let want = chart.rsplit('/').next().unwrap_or(chart);
    if name != want || !same_version(&found, version) {
        return Err(format!(
            "the archive holds chart {name} {found}, not {want} {version}"
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct Provenance<'a> {
    charts: Vec<ProvenanceEntry<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProvenanceEntry<'a> {
    component: &'a str,
    chart: &'a str,
    version: &'a str,
    source: &'a str,
    file: &'a str,
    sha256: String,
}

/// `charts/provenance.yaml`: per component (sorted by name) the chart, version, source,
/// archive and its SHA-256.
pub fn provenance(charts: &VendoredCharts) -> Result<String, BundleError> {
    let entries: Vec<ProvenanceEntry<'_>> = charts
        .iter()
        .map(|(component, v)| ProvenanceEntry {
            component,
            chart: &v.chart,
            version: &v.version,
            source: &v.source,
            file: &v.file,
            sha256: sha256_hex(&v.content),
        })
        .collect();
    Ok(format!(
        "# Charts vendored by `aiconform bundle --vendor-charts`: where each came from and its SHA-256.\n\
         # The bundle installs them from here; `aiconform bundle verify` checks them against bundle.yaml.\n{}",
        crate::yaml::to_string(&Provenance { charts: entries })?
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A packaged chart: `name/Chart.yaml` and a template.
    pub(crate) fn packaged(name: &str, version: &str) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        for (path, text) in [
            (
                format!("{name}/Chart.yaml"),
                format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
            ),
            (
                format!("{name}/templates/cm.yaml"),
                "kind: ConfigMap\n".into(),
            ),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn archive_names() {
        assert_eq!(
            archive_path("gpu-operator", "v25.3.0").unwrap(),
            "charts/gpu-operator-v25.3.0.tgz"
        );
        assert_eq!(
            archive_path("nvidia/gpu-operator", "1.0.0+build").unwrap(),
            "charts/gpu-operator-1.0.0+build.tgz"
        );
        for bad in ["", ".hidden", "a:b", "x@sha256"] {
            assert!(archive_path(bad, "1.0.0").is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_takes_helm_components_and_refuses_missing_sources() {
        use crate::bundle::render::tests::{component, recipe};
        let mut r = recipe(vec![
            component("a", ComponentType::Helm),
            component("m", ComponentType::Manifest),
            component("b", ComponentType::Helm),
        ]);
        r.components[2].chart = Some("nvidia/b-chart".into());
        let p = plan(&r).unwrap();
        assert_eq!(
            p.iter()
                .map(|p| (p.component.as_str(), p.file.as_str()))
                .collect::<Vec<_>>(),
            [
                ("a", "charts/a-v1.0.0.tgz"),
                ("b", "charts/b-chart-v1.0.0.tgz")
            ]
        );
        assert_eq!(p[1].source, "https://charts.example.com");
        r.components[2].source = None;
        let e = plan(&r).unwrap_err().to_string();
        assert!(
            e.starts_with("component `b`: chart nvidia/b-chart has no source to vendor it from"),
            "{e}"
        );
        r.components[2].chart = Some("b:1".into());
        r.components[2].source = Some("https://x".into());
        assert!(
            plan(&r)
                .unwrap_err()
                .to_string()
                .contains("not a plain file name")
        );
    }

    #[test]
    fn pull_arguments() {
        let dest = Path::new("/tmp/d");
        let classic = pull_args(
            "gpu-operator",
            "1.2.0",
            "https://charts.example.com",
            dest,
            &PullOptions {
                plain_http: true,
                ca_file: Some("/ca.pem".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            classic.join(" "),
            "pull gpu-operator --repo https://charts.example.com --version 1.2.0 --destination /tmp/d --ca-file /ca.pem"
        );
        let oci = pull_args(
            "kai",
            "v0.9.0",
            "oci://127.0.0.1:5000/charts/",
            dest,
            &PullOptions {
                plain_http: true,
                credentials: Some(("u".into(), "p".into())),
                ..Default::default()
            },
        );
        assert_eq!(
            oci.join(" "),
            "pull oci://127.0.0.1:5000/charts/kai --version v0.9.0 --destination /tmp/d --plain-http --username u --password p"
        );
    }

    #[test]
    fn archives_are_checked_against_the_recipe() {
        let a = packaged("gpu-policy", "0.3.0");
        assert_eq!(
            chart_metadata(&a).unwrap(),
            ("gpu-policy".to_string(), "0.3.0".to_string())
        );
        check_archive(&a, "gpu-policy", "0.3.0").unwrap();
        check_archive(&a, "gpu-policy", "v0.3.0").unwrap();
        let e = check_archive(&a, "gpu-policy", "0.4.0").unwrap_err();
        assert_eq!(
            e,
            "the archive holds chart gpu-policy 0.3.0, not gpu-policy 0.4.0"
        );
        assert!(check_archive(&a, "other", "0.3.0").is_err());
        assert!(chart_metadata(b"not gzip").is_err());
        check_archive(&packaged("x", "1.0.0_b1"), "x", "1.0.0+b1").unwrap();
    }

    #[test]
    fn provenance_is_sorted_and_names_everything() {
        let chart = |name: &str, source: &str| VendoredChart {
            chart: name.into(),
            version: "1.0.0".into(),
            source: source.into(),
            file: format!("charts/{name}-1.0.0.tgz"),
            content: name.as_bytes().to_vec(),
        };
        let mut charts = VendoredCharts::new();
        charts.insert("zeta".into(), chart("z", "oci://r.example.com/charts"));
        charts.insert("alpha".into(), chart("a", "https://charts.example.com"));
        let text = provenance(&charts).unwrap();
        assert_eq!(text, provenance(&charts).unwrap());
        assert!(text.find("component: alpha").unwrap() < text.find("component: zeta").unwrap());
        assert!(
            text.contains("\ncharts:\n- component: alpha\n  chart: a\n  version:"),
            "{text}"
        );
        let doc: serde_json::Value = crate::yaml::from_str(&text, "provenance").unwrap();
        assert_eq!(
            doc["charts"][0],
            serde_json::json!({
                "component": "alpha",
                "chart": "a",
                "version": "1.0.0",
                "source": "https://charts.example.com",
                "file": "charts/a-1.0.0.tgz",
                "sha256": sha256_hex(b"a"),
            })
        );
    }

    fn vendored(recipe: &Recipe) -> VendoredCharts {
        recipe
            .components
            .iter()
            .filter(|c| c.component_type == ComponentType::Helm)
            .map(|c| {
                let chart = c.chart.clone().unwrap();
                let v = VendoredChart {
                    file: archive_path(&chart, &c.version).unwrap(),
                    content: packaged(&chart, &c.version),
                    chart,
                    version: c.version.clone(),
                    source: c.source.clone().unwrap(),
                };
                (c.name.clone(), v)
            })
            .collect()
    }

    fn text(b: &super::super::Bundle, path: &str) -> String {
        String::from_utf8(b.files[path].content.clone()).unwrap()
    }

    #[test]
    fn vendored_charts_are_listed_and_installed_from_the_bundle() {
        use crate::bundle::render::tests::{component, recipe};
        use crate::bundle::{BundleOptions, render, render_with_charts};
        let mut oci = component("kai", ComponentType::Helm);
        oci.source = Some("oci://registry.example.com/charts".into());
        let r = recipe(vec![
            component("a", ComponentType::Helm),
            oci,
            component("m", ComponentType::Manifest),
        ]);
        let opts = BundleOptions::default();
        let plain = render(&r, &opts).unwrap();
        assert_eq!(
            plain,
            render_with_charts(&r, &opts, &VendoredCharts::new()).unwrap()
        );
        let charts = vendored(&r);
        let b = render_with_charts(&r, &opts, &charts).unwrap();
        assert_eq!(b, render_with_charts(&r, &opts, &charts).unwrap());

        // The archives and the provenance are files of the bundle, each listed with its hash.
        let m = b.manifest().unwrap();
        for (component, v) in &charts {
            assert_eq!(b.files[&v.file].content, v.content);
            let entry = m.files.iter().find(|f| f.path == v.file).unwrap();
            assert_eq!(entry.sha256, sha256_hex(&v.content));
            let c = m.components.iter().find(|c| &c.name == component).unwrap();
            assert_eq!(c.chart_archive.as_deref(), Some(v.file.as_str()));
        }
        assert!(m.files.iter().any(|f| f.path == PROVENANCE_FILE));
        assert!(text(&b, "checksums.sha256").contains("  charts/kai-v1.0.0.tgz\n"));
        assert_eq!(text(&b, PROVENANCE_FILE), provenance(&charts).unwrap());
        assert!(!plain.files.keys().any(|p| p.starts_with("charts/")));
        assert!(!text(&plain, "bundle.yaml").contains("chartArchive"));

        // deploy.sh installs the archives: no repository, version or registry.
        let deploy = text(&b, "deploy.sh");
        assert!(
            deploy.contains(
                "\"$helm\" upgrade --install a \"$here/charts/a-v1.0.0.tgz\" \\\n  --namespace a"
            ),
            "{deploy}"
        );
        assert!(
            deploy.contains("\"$here/charts/kai-v1.0.0.tgz\""),
            "{deploy}"
        );
        assert!(
            !deploy.contains("--repo") && !deploy.contains("oci://"),
            "{deploy}"
        );
        assert!(
            text(&b, "01-a/README.md").contains("helm upgrade --install a ../charts/a-v1.0.0.tgz")
        );
        assert!(text(&b, "README.md").contains("## Vendored charts"));

        // helmfile: releases of the archives, no repositories.
        let hf = BundleOptions {
            deployer: Deployer::Helmfile,
            ..BundleOptions::default()
        };
        let b = render_with_charts(&r, &hf, &charts).unwrap();
        let doc: serde_json::Value =
            crate::yaml::from_slice(&b.files["helmfile.yaml"].content, "helmfile.yaml").unwrap();
        assert_eq!(doc["repositories"], serde_json::json!([]));
        assert_eq!(doc["releases"][0]["chart"], "./charts/a-v1.0.0.tgz");
        assert_eq!(doc["releases"][1]["chart"], "./charts/kai-v1.0.0.tgz");
        assert!(doc["releases"][0].get("version").is_none());

        // Git-reading deployers are refused.
        for d in [Deployer::ArgoCd, Deployer::ArgoCdHelm, Deployer::Flux] {
            let o = BundleOptions {
                deployer: d,
                ..BundleOptions::default()
            };
            assert!(matches!(
                render_with_charts(&r, &o, &charts),
                Err(BundleError::VendorUnsupported { .. })
            ));
        }
    }

    #[test]
    fn one_archive_path_with_two_contents_is_an_error() {
        use crate::bundle::render::tests::{component, recipe};
        use crate::bundle::{BundleOptions, render_with_charts};
        let mut b = component("b", ComponentType::Helm);
        b.chart = Some("a".into());
        let r = recipe(vec![component("a", ComponentType::Helm), b]);
        let mut charts = vendored(&r);
        // The same chart for both: one archive.
        let bundle = render_with_charts(&r, &BundleOptions::default(), &charts).unwrap();
        assert_eq!(
            bundle.files.keys().filter(|p| p.ends_with(".tgz")).count(),
            1
        );
        charts.get_mut("b").unwrap().content = packaged("a", "v1.0.1");
        let e = render_with_charts(&r, &BundleOptions::default(), &charts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("components `a` and `b` both vendor charts/a-v1.0.0.tgz"),
            "{e}"
        );
    }

    #[test]
    fn only_file_reading_deployers_vendor() {
        for d in Deployer::ALL {
            assert_eq!(check_deployer(d).is_ok(), !d.reads_git(), "{d}");
        }
        let e = check_deployer(Deployer::Flux).unwrap_err().to_string();
        assert!(e.contains("flux") && e.contains("helm, helmfile"), "{e}");
    }
}
