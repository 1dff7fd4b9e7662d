//! Helm release records: the Secrets of type `helm.sh/release.v1` that Helm writes for every
//! revision of a release. Their `release` key holds base64 text of gzipped JSON (`name`,
//! `namespace`, `version` = revision, `info.status`, `chart.metadata.{name,version,appVersion}`).
//! Decoding ([`decode`]) and choosing the current revision ([`current`]) are pure; [`list`]
//! reads them from a cluster.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

/// Largest decompressed release JSON read (a release holds its rendered manifest).
const MAX_RELEASE_BYTES: u64 = 64 << 20;

/// What a Helm release record says about one revision of a release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRecord {
    pub namespace: String,
    pub name: String,
    pub revision: u64,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, …
    pub status: String,
    /// Chart name (`chart.metadata.name`).
    pub chart: String,
    /// Chart version (`chart.metadata.version`).
    pub chart_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("Helm release Secret {secret} cannot be read: {message}")]
    Decode { secret: String, message: String },
    #[error("cannot list Helm release Secrets: {0}")]
    List(String),
}

#[derive(Deserialize)]
struct Raw {
    name: String,
    #[serde(default)]
    namespace: String,
    version: u64,
    #[serde(default)]
    info: Option<RawInfo>,
    #[serde(default)]
    chart: Option<RawChart>,
}

#[derive(Deserialize)]
struct RawInfo {
    #[serde(default)]
    status: String,
}

#[derive(Deserialize)]
struct RawChart {
    #[serde(default)]
    metadata: Option<RawMeta>,
}

#[derive(Deserialize)]
struct RawMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "appVersion")]
    app_version: String,
}

/// Decode the `release` value of a release Secret (`secret` names it in errors): base64
/// text of gzipped JSON, or of plain JSON as very old Helm 3 wrote it.
pub fn decode(secret: &str, data: &[u8]) -> Result<ReleaseRecord, ReleaseError> {
    let err = |message: String| ReleaseError::Decode {
        secret: secret.to_string(),
        message,
    };
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| err(format!("the release is not base64: {e}")))?;
    let json = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(MAX_RELEASE_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| err(format!("the release is not valid gzip: {e}")))?;
        out
    } else {
        bytes
    };
    let raw: Raw = serde_json::from_slice(&json)
        .map_err(|e| err(format!("the release is not Helm release JSON: {e}")))?;
    let meta = raw.chart.and_then(|c| c.metadata);
    Ok(ReleaseRecord {
        namespace: raw.namespace,
        name: raw.name,
        revision: raw.version,
        status: raw.info.map(|i| i.status).unwrap_or_default(),
        chart: meta.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
        chart_version: meta.as_ref().map(|m| m.version.clone()).unwrap_or_default(),
        app_version: meta.map(|m| m.app_version).unwrap_or_default(),
    })
}

/// The current revision of every release, sorted by namespace and name: the newest
/// `deployed` revision, else (a release whose last upgrade failed or is pending) the newest.
pub fn current(records: Vec<ReleaseRecord>) -> Vec<ReleaseRecord> {
    let mut by_release: BTreeMap<(String, String), ReleaseRecord> = BTreeMap::new();
    for r in records {
        let key = (r.namespace.clone(), r.name.clone());
        let rank = |x: &ReleaseRecord| (x.status == "deployed", x.revision);
        match by_release.get(&key) {
            Some(have) if rank(have) >= rank(&r) => {}
            _ => {
                by_release.insert(key, r);
            }
        }
    }
    by_release.into_values().collect()
}

/// The current revision of every Helm release in the cluster; Secrets that cannot be
/// decoded are returned as messages naming them, not as errors.
pub async fn list(
    client: &kube::Client,
) -> Result<(Vec<ReleaseRecord>, Vec<String>), ReleaseError> {
    let api: Api<Secret> = Api::all(client.clone());
    let mut lp = ListParams::default()
        .labels("owner=helm")
        .fields("type=helm.sh/release.v1")
        .limit(50);
    let mut records = Vec::new();
    let mut problems = Vec::new();
    loop {
        let page = api
            .list(&lp)
            .await
            .map_err(|e| ReleaseError::List(crate::snapshot::kube_message(&e)))?;
        for s in &page.items {
            let name = format!(
                "{}/{}",
                s.metadata.namespace.as_deref().unwrap_or_default(),
                s.metadata.name.as_deref().unwrap_or_default()
            );
            match s.data.as_ref().and_then(|d| d.get("release")) {
                Some(data) => match decode(&name, &data.0) {
                    Ok(r) => records.push(r),
                    Err(e) => problems.push(e.to_string()),
                },
                None => problems.push(format!("Helm release Secret {name} has no `release` key")),
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => break,
        }
    }
    Ok((current(records), problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A release encoded as Helm stores it (base64 of gzipped JSON).
    fn encode_for_test(json: &serde_json::Value) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.to_string().as_bytes())
            .expect("writing to a Vec");
        let bytes = gz.finish().expect("finishing gzip into a Vec");
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into_bytes()
    }

    fn release(name: &str, rev: u64, status: &str, version: &str) -> serde_json::Value {
        json!({
            "name": name, "namespace": "gpu-operator", "version": rev,
            "info": {"status": status},
            "chart": {"metadata": {"name": "gpu-operator", "version": version, "appVersion": version}},
            "manifest": "---\n"
        })
    }

    #[test]
    fn decodes_gzipped_release() {
        let data = encode_for_test(&release("gpu-operator", 3, "deployed", "v25.10.1"));
        let r = decode("gpu-operator/sh.helm.release.v1.gpu-operator.v3", &data).unwrap();
        assert_eq!(r.name, "gpu-operator");
        assert_eq!(r.revision, 3);
        assert_eq!(r.status, "deployed");
        assert_eq!(r.chart, "gpu-operator");
        assert_eq!(r.chart_version, "v25.10.1");
    }

    #[test]
    fn decodes_plain_json_release() {
        let text = release("a", 1, "deployed", "1.0.0").to_string();
        let data = base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(decode("s", data.as_bytes()).unwrap().chart_version, "1.0.0");
    }

    #[test]
    fn bad_release_names_the_secret() {
        let e = decode("ns/sh.helm.release.v1.x.v1", b"%%%").unwrap_err();
        assert!(e.to_string().contains("ns/sh.helm.release.v1.x.v1"), "{e}");
        let not_json = base64::engine::general_purpose::STANDARD.encode("{\"name\": 1}");
        let e = decode("s", not_json.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("not Helm release JSON"), "{e}");
    }

    #[test]
    fn current_prefers_newest_deployed_revision() {
        let r = |rev, status: &str| ReleaseRecord {
            namespace: "n".into(),
            name: "a".into(),
            revision: rev,
            status: status.into(),
            chart: "a".into(),
            chart_version: format!("1.{rev}.0"),
            app_version: String::new(),
        };
        let got = current(vec![r(1, "superseded"), r(3, "failed"), r(2, "deployed")]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].revision, 2);
        let got = current(vec![r(1, "failed"), r(2, "pending-upgrade")]);
        assert_eq!(got[0].revision, 2);
    }
}
