//! Bundles as OCI artifacts: `oci://REGISTRY/REPO[:TAG|@DIGEST]`.
//!
//! The artifact is the bundle's deterministic tar.gz ([`Bundle::to_tar_gz`]) as its one
//! layer, the empty config, and a manifest whose JSON is built here (sorted keys, no
//! timestamps), so the same bundle always has the same digest. The registry protocol is
//! `oci-client`'s; this module adds the references, the manifest and errors that say what
//! to do.

use std::path::PathBuf;
use std::str::FromStr;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::json;

use super::model::{BUNDLE_FILE, sha256_hex};
use super::{Bundle, BundleError};

pub const SCHEME: &str = "oci://";
pub const ARTIFACT_TYPE: &str = "application/vnd.aiconform.bundle.v1";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.aiconform.bundle.layer.v1.tar+gzip";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";
/// Environment variables holding registry credentials (HTTP basic auth).
pub const USERNAME_ENV: &str = "AICONFORM_REGISTRY_USERNAME";
pub const PASSWORD_ENV: &str = "AICONFORM_REGISTRY_PASSWORD";

/// Whether `s` names an OCI reference rather than a directory.
pub fn is_oci(s: &str) -> bool {
    s.starts_with(SCHEME)
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "invalid OCI reference `{reference}`: {reason}; expected oci://REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]"
    )]
    BadReference { reference: String, reason: String },
    #[error(
        "registry {registry} is unreachable ({reason}); check the address and that it is running"
    )]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} refused the credentials for {reference} ({reason}); set {USERNAME_ENV} and {PASSWORD_ENV} to an account that may access it"
    )]
    Unauthorized {
        registry: String,
        reference: String,
        reason: String,
    },
    #[error(
        "TLS with registry {registry} failed: {reason}; pass --ca-file with the registry's CA certificate, or --plain-http if it serves plain HTTP"
    )]
    Tls { registry: String, reason: String },
    #[error("{reference} not found in the registry: {reason}")]
    NotFound { reference: String, reason: String },
    #[error("{reference} is not an aiconform bundle: {reason}")]
    NotABundle { reference: String, reason: String },
    #[error("{reference} is not {what}: {reason}")]
    NotArtifact {
        reference: String,
        what: &'static str,
        reason: String,
    },
    #[error("registry error for {reference}: {reason}")]
    Registry { reference: String, reason: String },
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Speak plain HTTP (local registries only).
    pub plain_http: bool,
    /// Extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// HTTP basic auth; anonymous when `None`.
    pub credentials: Option<(String, String)>,
}

impl RegistryOptions {
    /// Credentials from [`USERNAME_ENV`] and [`PASSWORD_ENV`], when both are set.
    pub fn credentials_from_env() -> Option<(String, String)> {
        match (std::env::var(USERNAME_ENV), std::env::var(PASSWORD_ENV)) {
            (Ok(u), Ok(p)) if !u.is_empty() => Some((u, p)),
            _ => None,
        }
    }
}

/// Parse `oci://REGISTRY/REPO[:TAG|@DIGEST]`; without tag or digest the tag is
/// `default_tag`.
pub fn parse_reference(s: &str, default_tag: &str) -> Result<Reference, OciError> {
    let bad = |reason: &str| OciError::BadReference {
        reference: s.to_string(),
        reason: reason.to_string(),
    };
    let rest = s
        .strip_prefix(SCHEME)
        .ok_or_else(|| bad("it does not start with oci://"))?;
    if !rest.contains('/') {
        return Err(bad("it names no repository"));
    }
    // The parser would default to `latest`; the last path segment says if a tag or digest
    // was given.
    let last = rest.rsplit('/').next().unwrap_or_default();
    let full = if last.contains(':') || last.contains('@') {
        rest.to_string()
    } else {
        format!("{rest}:{default_tag}")
    };
    Reference::from_str(&full).map_err(|e| bad(&e.to_string()))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({
        "mediaType": media_type,
        "digest": format!("sha256:{}", sha256_hex(bytes)),
        "size": bytes.len(),
    })
}

/// What an artifact of one tar.gz layer holds: its types and the layer's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactKind {
    pub artifact_type: &'static str,
    pub layer_media_type: &'static str,
    pub title: &'static str,
    /// For messages: "an aiconform bundle".
    pub what: &'static str,
}

/// Bundles.
pub const BUNDLE_ARTIFACT: ArtifactKind = ArtifactKind {
    artifact_type: ARTIFACT_TYPE,
    layer_media_type: LAYER_MEDIA_TYPE,
    title: "bundle.tar.gz",
    what: "an aiconform bundle",
};

/// The artifact manifest for a bundle archive; `annotations` are copied in. Pure and
/// deterministic: keys sorted, no timestamps.
pub fn artifact_manifest(
    layer: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    manifest_of(&BUNDLE_ARTIFACT, layer, annotations)
}

/// The artifact manifest of one `kind` layer.
pub fn manifest_of(
    kind: &ArtifactKind,
    layer: &[u8],
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    let mut layer_desc = descriptor(kind.layer_media_type, layer);
    layer_desc["annotations"] = json!({"org.opencontainers.image.title": kind.title});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": kind.artifact_type,
        "config": descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG),
        "layers": [layer_desc],
        "annotations": annotations,
    });
    serde_json::to_vec(&manifest).expect("a JSON value serializes")
}

fn client(opts: &RegistryOptions) -> Result<Client, OciError> {
    // reqwest is built without a default TLS provider; use ring, as kube does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut extra = Vec::new();
    if let Some(path) = &opts.ca_file {
        let data = std::fs::read(path).map_err(|e| OciError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        extra.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    Ok(Client::new(ClientConfig {
        protocol: if opts.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        extra_root_certificates: extra,
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        ..ClientConfig::default()
    }))
}

fn auth(opts: &RegistryOptions) -> RegistryAuth {
    match &opts.credentials {
        Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
        None => RegistryAuth::Anonymous,
    }
}

/// The error and all its sources, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// Turn an oci-client error into one that says what is wrong and what to do.
fn classify(e: OciDistributionError, reference: &Reference, full: &str) -> OciError {
    let registry = reference.registry().to_string();
    let text = chain(&e);
    let lower = text.to_ascii_lowercase();
    match &e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => {
            return OciError::Unauthorized {
                registry,
                reference: full.to_string(),
                reason: text,
            };
        }
        OciDistributionError::ServerError { code: 401, .. }
        | OciDistributionError::ServerError { code: 403, .. } => {
            return OciError::Unauthorized {
                registry,
                reference: full.to_string(),
                reason: text,
            };
        }
        OciDistributionError::ImageManifestNotFoundError(_)
        | OciDistributionError::ServerError { code: 404, .. } => {
            return OciError::NotFound {
                reference: full.to_string(),
                reason: text,
            };
        }
        _ => {}
    }
    if lower.contains("certificate")
        || lower.contains("invalidcontenttype")
        || lower.contains("tls")
    {
        return OciError::Tls {
            registry,
            reason: text,
        };
    }
    if lower.contains("unauthorized") || lower.contains(" 401") {
        return OciError::Unauthorized {
            registry,
            reference: full.to_string(),
            reason: text,
        };
    }
    if [
        "manifest_unknown",
        "name_unknown",
        "unknown manifest",
        "manifest unknown",
        "name unknown",
    ]
    .iter()
    .any(|m| lower.contains(m))
    {
        return OciError::NotFound {
            reference: full.to_string(),
            reason: text,
        };
    }
    if lower.contains("connect") || lower.contains("dns error") || lower.contains("timed out") {
        return OciError::Unreachable {
            registry,
            reason: text,
        };
    }
    OciError::Registry {
        reference: full.to_string(),
        reason: text,
    }
}

/// What a push or pull resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `oci://REGISTRY/REPO@sha256:...`
    pub pinned: String,
    pub digest: String,
}

/// Upload a blob. Some registries (go-containerregistry's, like ECR for manifests) answer
/// the final upload with 201 but no Location header, which the client reports as an error;
/// the blob is then checked for instead.
async fn push_blob(c: &Client, r: &Reference, data: Vec<u8>, full: &str) -> Result<(), OciError> {
    let digest = format!("sha256:{}", sha256_hex(&data));
    match c.push_blob(r, data, &digest).await {
        Ok(_) => Ok(()),
        Err(OciDistributionError::RegistryNoLocationError)
            if c.blob_exists(r, &digest).await.unwrap_or(false) =>
        {
            Ok(())
        }
        Err(e) => Err(classify(e, r, full)),
    }
}

/// Push `bundle` to `reference` (`oci://...`); returns the manifest digest.
pub async fn push(
    bundle: &Bundle,
    reference: &str,
    opts: &RegistryOptions,
) -> Result<Pushed, OciError> {
    let manifest = bundle.manifest()?;
    let annotations = [
        ("dev.aiconform.recipe".to_string(), manifest.recipe.name),
        ("dev.aiconform.recipe.digest".into(), manifest.recipe.digest),
        ("dev.aiconform.tool.version".into(), manifest.tool_version),
    ]
    .into();
    push_files(&BUNDLE_ARTIFACT, bundle, &annotations, reference, opts).await
}

/// Push `files` packed as [`Bundle::to_tar_gz`] does, as one `kind` layer.
pub async fn push_files(
    kind: &ArtifactKind,
    files: &Bundle,
    annotations: &std::collections::BTreeMap<String, String>,
    reference: &str,
    opts: &RegistryOptions,
) -> Result<Pushed, OciError> {
    let r = parse_reference(reference, env!("CARGO_PKG_VERSION"))?;
    let layer = files.to_tar_gz()?;
    let manifest_bytes = manifest_of(kind, &layer, annotations);
    let digest = format!("sha256:{}", sha256_hex(&manifest_bytes));
    let c = client(opts)?;
    let full = reference.to_string();
    let err = |e| classify(e, &r, &full);
    c.auth(&r, &auth(opts), RegistryOperation::Push)
        .await
        .map_err(err)?;
    push_blob(&c, &r, EMPTY_CONFIG.to_vec(), &full).await?;
    push_blob(&c, &r, layer, &full).await?;
    c.push_manifest_raw(
        &r,
        manifest_bytes,
        http::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
    )
    .await
    .map_err(err)?;
    Ok(Pushed {
        pinned: format!("{SCHEME}{}/{}@{digest}", r.registry(), r.repository()),
        digest,
    })
}

/// Pull the bundle at `reference` (`oci://...`): the bundle and the manifest digest.
pub async fn pull(reference: &str, opts: &RegistryOptions) -> Result<(Bundle, String), OciError> {
    let (files, digest) = pull_files(&BUNDLE_ARTIFACT, reference, opts).await?;
    if !files.files.contains_key(BUNDLE_FILE) {
        return Err(OciError::NotABundle {
            reference: reference.to_string(),
            reason: format!("no {BUNDLE_FILE}"),
        });
    }
    Ok((files, digest))
}

/// Pull the files of a `kind` artifact and the manifest digest.
pub async fn pull_files(
    kind: &ArtifactKind,
    reference: &str,
    opts: &RegistryOptions,
) -> Result<(Bundle, String), OciError> {
    let r = parse_reference(reference, env!("CARGO_PKG_VERSION"))?;
    let c = client(opts)?;
    let full = reference.to_string();
    let err = |e| classify(e, &r, &full);
    let not_bundle = |reason: String| OciError::NotArtifact {
        reference: full.clone(),
        what: kind.what,
        reason,
    };
    let (bytes, digest) = c
        .pull_manifest_raw(&r, &auth(opts), &[MANIFEST_MEDIA_TYPE])
        .await
        .map_err(err)?;
    let manifest: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| not_bundle(format!("its manifest is not JSON: {e}")))?;
    if manifest["artifactType"] != kind.artifact_type {
        return Err(not_bundle(format!(
            "artifactType is {}, expected {}",
            manifest["artifactType"], kind.artifact_type
        )));
    }
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let [layer] = layers.as_slice() else {
        return Err(not_bundle(format!(
            "it has {} layers, expected 1",
            layers.len()
        )));
    };
    let desc: OciDescriptor = serde_json::from_value(layer.clone())
        .map_err(|e| not_bundle(format!("bad layer descriptor: {e}")))?;
    if desc.media_type != kind.layer_media_type {
        return Err(not_bundle(format!(
            "its layer is {}, expected {}",
            desc.media_type, kind.layer_media_type
        )));
    }
    let mut data = Vec::new();
    c.pull_blob(&r, &desc, &mut data).await.map_err(err)?;
    Ok((Bundle::files_from_tar_gz(&data, &full)?, digest))
}

/// A pulled bundle, written to a temporary directory that is removed on drop.
pub struct Pulled {
    pub dir: PathBuf,
    pub digest: String,
    _tmp: tempfile::TempDir,
}

/// Pull `reference` and write the bundle to a temporary directory, to verify or deploy it.
pub async fn pull_to_dir(reference: &str, opts: &RegistryOptions) -> Result<Pulled, OciError> {
    let (bundle, digest) = pull(reference, opts).await?;
    let tmp = super::temp_dir("aiconform-oci-bundle-")?;
    let dir = tmp.path().join("bundle");
    bundle.write_to(&dir, false)?;
    Ok(Pulled {
        dir,
        digest,
        _tmp: tmp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = parse_reference("oci://127.0.0.1:5000/bundles/h100:v1", "0.1.0").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "bundles/h100", Some("v1"))
        );
        let r = parse_reference("oci://reg.example.com/b", "0.1.0").unwrap();
        assert_eq!(r.tag(), Some("0.1.0"));
        for bad in ["127.0.0.1:5000/x:1", "oci://reg"] {
            assert!(parse_reference(bad, "t").is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_is_deterministic() {
        let a = [("k".to_string(), "v".to_string())].into();
        let m = artifact_manifest(b"layer", &a);
        assert_eq!(m, artifact_manifest(b"layer", &a));
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["artifactType"], ARTIFACT_TYPE);
        assert_eq!(v["layers"][0]["size"], 5);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
