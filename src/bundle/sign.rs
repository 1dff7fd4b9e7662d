//! Signatures over `bundle.yaml`, in the format of `cosign sign-blob --key`: ECDSA P-256
//! over the SHA-256 of the blob, the ASN.1 DER signature base64-encoded in
//! `bundle.yaml.sig`. Keys are PEM: the private key PKCS#8 (or SEC1, as `openssl ecparam
//! -genkey` writes it), the public key SubjectPublicKeyInfo. So `cosign verify-blob --key`
//! and `openssl dgst -sha256 -verify` check what `aiconform bundle verify --key` checks.
//!
//! `bundle.yaml` records the SHA-256 of every other file, so one signature covers the whole
//! bundle. Signing is deterministic (RFC 6979 nonces): the same bundle and key give the
//! same signature, and so the same OCI digest.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The signature file, beside `bundle.yaml`. It is not listed in `bundle.yaml`.
pub const SIGNATURE_FILE: &str = "bundle.yaml.sig";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error(
        "{path} is not an ECDSA P-256 private key in PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`): {reason}; create one with `aiconform bundle keygen`"
    )]
    BadPrivateKey { path: String, reason: String },
    #[error(
        "{path} is not an ECDSA P-256 public key in PEM (`PUBLIC KEY`): {reason}; export it with `openssl ec -in KEY -pubout`"
    )]
    BadPublicKey { path: String, reason: String },
    #[error("{path} is not a base64 DER ECDSA signature: {reason}")]
    BadSignature { path: String, reason: String },
    #[error(
        "the signature in {path} does not match {what} and the public key {key}: the bundle was changed after signing, or signed with another key"
    )]
    Mismatch {
        path: String,
        what: String,
        key: String,
    },
}

/// A new key pair as PEM: (PKCS#8 private key, SubjectPublicKeyInfo public key).
pub fn generate_key_pair() -> (String, String) {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a fresh P-256 key encodes as PKCS#8")
        .to_string();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 public key encodes as SPKI");
    (private, public)
}

/// Parse a private key; `path` names it in errors.
pub fn parse_private_key(pem: &str, path: &str) -> Result<SigningKey, SignError> {
    let bad = |reason: String| SignError::BadPrivateKey {
        path: path.to_string(),
        reason,
    };
    if pem.contains("ENCRYPTED") {
        return Err(bad(
            "it is encrypted; decrypt it first (e.g. `openssl pkcs8 -in KEY -out plain.pem`)"
                .into(),
        ));
    }
    if pem.contains("BEGIN EC PRIVATE KEY") {
        return p256::SecretKey::from_sec1_pem(pem)
            .map(SigningKey::from)
            .map_err(|e| bad(e.to_string()));
    }
    SigningKey::from_pkcs8_pem(pem).map_err(|e| bad(e.to_string()))
}

pub fn parse_public_key(pem: &str, path: &str) -> Result<VerifyingKey, SignError> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| SignError::BadPublicKey {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// The PEM public key of a private key.
pub fn public_key_pem(key: &SigningKey) -> String {
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 public key encodes as SPKI")
}

/// The signature file's content for `blob`: base64 of the DER signature, newline-terminated.
pub fn sign(key: &SigningKey, blob: &[u8]) -> String {
    format!("{}\n", sign_base64(key, blob))
}

/// Base64 of the DER ECDSA P-256/SHA-256 signature of `blob`, as DSSE envelopes carry it.
pub fn sign_base64(key: &SigningKey, blob: &[u8]) -> String {
    let sig: DerSignature = key.sign(blob);
    BASE64.encode(sig.as_bytes())
}

/// The DSSE pre-authentication encoding (`DSSEv1 <len> <type> <len> <payload>`): what a
/// DSSE envelope's signatures sign, as `cosign attest-blob` and in-toto tooling compute it.
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Check `signature` (the signature file's content) over `blob`. `sig_path`, `what` and
/// `key_path` name the signature file, the signed blob and the key in errors.
pub fn verify(
    key: &VerifyingKey,
    blob: &[u8],
    signature: &[u8],
    sig_path: &str,
    what: &str,
    key_path: &str,
) -> Result<(), SignError> {
    let bad = |reason: String| SignError::BadSignature {
        path: sig_path.to_string(),
        reason,
    };
    let text: Vec<u8> = signature
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = BASE64.decode(&text).map_err(|e| bad(e.to_string()))?;
    let sig = Signature::from_der(&der).map_err(|e| bad(e.to_string()))?;
    key.verify(blob, &sig).map_err(|_| SignError::Mismatch {
        path: sig_path.to_string(),
        what: what.to_string(),
        key: key_path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (SigningKey, VerifyingKey) {
        let (private, public) = generate_key_pair();
        (
            parse_private_key(&private, "k").unwrap(),
            parse_public_key(&public, "p").unwrap(),
        )
    }

    #[test]
    fn sign_then_verify_and_reject_edits() {
        let (sk, vk) = keys();
        let sig = sign(&sk, b"apiVersion: x\n");
        assert_eq!(sig, sign(&sk, b"apiVersion: x\n"), "deterministic");
        verify(&vk, b"apiVersion: x\n", sig.as_bytes(), "s", "b", "p").unwrap();
        let err = verify(&vk, b"apiVersion: y\n", sig.as_bytes(), "s", "b", "p").unwrap_err();
        assert!(matches!(err, SignError::Mismatch { .. }), "{err}");
        let (_, other) = keys();
        assert!(verify(&other, b"apiVersion: x\n", sig.as_bytes(), "s", "b", "p").is_err());
        let err = verify(&vk, b"x", b"not base64!", "s", "b", "p").unwrap_err();
        assert!(matches!(err, SignError::BadSignature { .. }), "{err}");
    }

    #[test]
    fn dsse_pae_is_the_specified_encoding() {
        assert_eq!(
            dsse_pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        let (sk, vk) = keys();
        let sig = sign_base64(&sk, b"x");
        assert!(!sig.ends_with('\n'));
        verify(&vk, b"x", sig.as_bytes(), "s", "b", "p").unwrap();
    }

    #[test]
    fn rejects_keys_that_are_not_p256_pem() {
        let err = parse_private_key("-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "k.pem");
        assert!(err.unwrap_err().to_string().contains("encrypted"));
        assert!(parse_private_key("garbage", "k.pem").is_err());
        assert!(parse_public_key("garbage", "p.pem").is_err());
        let (private, public) = generate_key_pair();
        assert!(parse_public_key(&private, "p.pem").is_err());
        assert!(parse_private_key(&public, "k.pem").is_err());
    }
}
