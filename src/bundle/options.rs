//! Bundle options: node placement (selectors, tolerations) and the deployer. Parsing of the
//! command-line forms `k=v` and `key=value:Effect` lives here so the CLI and the REST server
//! accept the same syntax.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::BundleError;

/// How the bundle is meant to be deployed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash,
)]
#[serde(rename_all = "lowercase")]
pub enum Deployer {
    /// `deploy.sh` / `undeploy.sh` running `helm upgrade --install` and `kubectl apply`.
    #[default]
    Helm,
    /// An Argo CD app-of-apps with one Application per component, ordered by sync waves.
    #[serde(rename = "argocd")]
    ArgoCd,
    /// The Argo CD app-of-apps as a Helm chart (`Chart.yaml` + one Application template per
    /// component), so the repository URL and revision are chart values.
    #[serde(rename = "argocd-helm")]
    ArgoCdHelm,
    /// Flux: a HelmRepository or OCIRepository and a HelmRelease per chart, a Kustomization per
    /// manifest folder, `dependsOn` from the dependency graph.
    Flux,
    /// A `helmfile.yaml` with one release per component and `needs` from the dependency graph.
    Helmfile,
}

impl Deployer {
    pub const ALL: [Deployer; 5] = [
        Deployer::Helm,
        Deployer::ArgoCd,
        Deployer::ArgoCdHelm,
        Deployer::Flux,
        Deployer::Helmfile,
    ];

    /// Whether the deployer reads the bundle from a Git repository (`--argocd-repo-url`).
    pub fn reads_git(self) -> bool {
        matches!(
            self,
            Deployer::ArgoCd | Deployer::ArgoCdHelm | Deployer::Flux
        )
    }
}

impl fmt::Display for Deployer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deployer::Helm => "helm",
            Deployer::ArgoCd => "argocd",
            Deployer::ArgoCdHelm => "argocd-helm",
            Deployer::Flux => "flux",
            Deployer::Helmfile => "helmfile",
        })
    }
}

impl FromStr for Deployer {
    type Err = BundleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "helm" => Ok(Deployer::Helm),
            "argocd" | "argo-cd" | "argo" => Ok(Deployer::ArgoCd),
            "argocd-helm" => Ok(Deployer::ArgoCdHelm),
            "flux" => Ok(Deployer::Flux),
            "helmfile" => Ok(Deployer::Helmfile),
            _ => Err(BundleError::InvalidOption {
                flag: "--deployer",
                value: s.to_string(),
                reason: "expected one of `helm`, `argocd`, `argocd-helm`, `flux`, `helmfile`"
                    .into(),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum TolerationOperator {
    Equal,
    Exists,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl FromStr for TaintEffect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "NoSchedule" => Ok(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Ok(TaintEffect::PreferNoSchedule),
            "NoExecute" => Ok(TaintEffect::NoExecute),
            _ => Err(format!(
                "effect `{s}` is not one of NoSchedule, PreferNoSchedule, NoExecute"
            )),
        }
    }
}

/// A pod toleration, serialized exactly as Kubernetes expects it in chart values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    pub key: String,
    pub operator: TolerationOperator,
    /// Set for `Equal`, absent for `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Absent: tolerate every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

impl fmt::Display for Toleration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(v) = &self.value {
            write!(f, "={v}")?;
        }
        if let Some(e) = &self.effect {
            write!(f, ":{e:?}")?;
        }
        Ok(())
    }
}

impl FromStr for Toleration {
    type Err = BundleError;

    /// `key=value:Effect` (operator Equal), `key:Effect` (operator Exists); the effect may be
    /// left out (`key=value`, `key`) to tolerate every effect.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| BundleError::InvalidOption {
            flag: "--accelerated-node-toleration",
            value: s.to_string(),
            reason: format!(
                "{reason}; expected key=value:Effect, e.g. nvidia.com/gpu=present:NoSchedule"
            ),
        };
        let (head, effect) = match s.rsplit_once(':') {
            Some((head, effect)) => (head, Some(effect.parse::<TaintEffect>().map_err(err)?)),
            None => (s, None),
        };
        let (key, value) = match head.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (head, None),
        };
        check_label_key(key).map_err(|r| err(format!("key: {r}")))?;
        if let Some(v) = value {
            check_label_value(v).map_err(|r| err(format!("value: {r}")))?;
        }
        Ok(Toleration {
            key: key.to_string(),
            operator: if value.is_some() {
                TolerationOperator::Equal
            } else {
                TolerationOperator::Exists
            },
            value: value.map(str::to_string),
            effect,
        })
    }
}

/// Parse one `key=value` node-selector argument.
pub fn parse_selector(flag: &'static str, arg: &str) -> Result<(String, String), BundleError> {
    let err = |reason: String| BundleError::InvalidOption {
        flag,
        value: arg.to_string(),
        reason: format!("{reason}; expected key=value, e.g. nodeGroup=system"),
    };
    let (k, v) = arg
        .split_once('=')
        .ok_or_else(|| err("missing `=`".into()))?;
    check_label_key(k).map_err(|r| err(format!("key: {r}")))?;
    check_label_value(v).map_err(|r| err(format!("value: {r}")))?;
    Ok((k.to_string(), v.to_string()))
}

/// Parse repeated `key=value` arguments into a selector; a repeated key is an error.
pub fn parse_selectors(
    flag: &'static str,
    args: &[String],
) -> Result<BTreeMap<String, String>, BundleError> {
    let mut out = BTreeMap::new();
    for arg in args {
        let (k, v) = parse_selector(flag, arg)?;
        if out.insert(k.clone(), v).is_some() {
            return Err(BundleError::InvalidOption {
                flag,
                value: arg.clone(),
                reason: format!("key `{k}` is given twice; give each key once"),
            });
        }
    }
    Ok(out)
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
}

/// Kubernetes qualified-name syntax: `[prefix/]name`, name ≤ 63 of [A-Za-z0-9._-] starting
/// and ending alphanumeric, prefix a DNS subdomain.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!("prefix `{p}` is not a DNS subdomain"));
        }
    }
    check_label_value(name)?;
    if name.is_empty() {
        return Err("name is empty".into());
    }
    Ok(())
}

/// Kubernetes label-value syntax: empty, or ≤ 63 of [A-Za-z0-9._-] starting and ending
/// alphanumeric.
pub fn check_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let bytes = v.as_bytes();
    if v.len() > 63 {
        return Err(format!("`{v}` is longer than 63 characters"));
    }
    if !bytes.iter().all(|&b| is_name_char(b))
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return Err(format!(
            "`{v}` must be letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tolerations() {
        let t: Toleration = "nvidia.com/gpu=present:NoSchedule".parse().unwrap();
        assert_eq!(t.key, "nvidia.com/gpu");
        assert_eq!(t.operator, TolerationOperator::Equal);
        assert_eq!(t.value.as_deref(), Some("present"));
        assert_eq!(t.effect, Some(TaintEffect::NoSchedule));
        assert_eq!(t.to_string(), "nvidia.com/gpu=present:NoSchedule");

        let t: Toleration = "dedicated:NoExecute".parse().unwrap();
        assert_eq!(t.operator, TolerationOperator::Exists);
        assert_eq!(t.value, None);
        assert_eq!(t.effect, Some(TaintEffect::NoExecute));

        let t: Toleration = "dedicated".parse().unwrap();
        assert_eq!(t.effect, None);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            serde_json::json!({"key": "dedicated", "operator": "Exists"})
        );
    }

    #[test]
    fn rejects_bad_tolerations() {
        for bad in [
            "k=v:Sometimes",
            "=v:NoSchedule",
            "k=v v:NoSchedule",
            "Bad_Prefix/k=v",
            "",
        ] {
            let err = bad.parse::<Toleration>().unwrap_err().to_string();
            assert!(
                err.contains("--accelerated-node-toleration"),
                "{bad}: {err}"
            );
            assert!(err.contains("key=value:Effect"), "{bad}: {err}");
        }
    }

    #[test]
    fn parses_selectors() {
        let m = parse_selectors(
            "--system-node-selector",
            &["nodeGroup=system".into(), "example.com/pool=".into()],
        )
        .unwrap();
        assert_eq!(m["nodeGroup"], "system");
        assert_eq!(m["example.com/pool"], "");
        let err = parse_selectors("--system-node-selector", &["a=1".into(), "a=2".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
        let err = parse_selector("--system-node-selector", "novalue")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing `=`"), "{err}");
        assert!(parse_selector("--x", "a=-b").is_err());
        assert!(parse_selector("--x", &format!("a={}", "v".repeat(64))).is_err());
    }

    #[test]
    fn deployer_round_trip() {
        assert_eq!("helm".parse::<Deployer>().unwrap(), Deployer::Helm);
        assert_eq!("argocd".parse::<Deployer>().unwrap(), Deployer::ArgoCd);
        assert_eq!(Deployer::ArgoCd.to_string(), "argocd");
        for d in Deployer::ALL {
            assert_eq!(d.to_string().parse::<Deployer>().unwrap(), d);
            assert_eq!(
                serde_json::to_value(d).unwrap(),
                serde_json::json!(d.to_string())
            );
        }
        assert!("kapp".parse::<Deployer>().is_err());
        assert_eq!(
            serde_json::to_value(Deployer::ArgoCd).unwrap(),
            serde_json::json!("argocd")
        );
    }
}
