//! Signed bundles: `bundle keygen`, `bundle --sign`, `bundle sign`, `bundle verify --key`;
//! every tampering (a file, a file plus its hash in bundle.yaml, the signature, the key) is
//! refused; a signed bundle verified without --key is "signature not checked" (exit 3),
//! never intact; and the signature is the public format: openssl verifies ours and we verify
//! one openssl made (the checks `cosign verify-blob --key` does for key-based blobs).

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use aiconform::bundle::sha256_hex;
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn aiconform() -> Command {
    Command::cargo_bin("aiconform").unwrap()
}

fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/manifest-stack.yaml")
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join("bundle.key"), dir.join("bundle.pub"));
    aiconform()
        .args(["bundle", "keygen", "--private-key"])
        .arg(&key)
        .arg("--public-key")
        .arg(&public)
        .assert()
        .success();
    (key, public)
}

fn signed_bundle(dir: &Path, key: &Path) -> PathBuf {
    let out = dir.join("bundle");
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(recipe())
        .arg("-o")
        .arg(&out)
        .arg("--sign")
        .arg(key)
        .assert()
        .success();
    out
}

fn verify(bundle: &Path, public: &Path) -> assert_cmd::assert::Assert {
    aiconform()
        .args(["bundle", "verify"])
        .arg(bundle)
        .arg("--key")
        .arg(public)
        .assert()
}

#[test]
fn signed_bundle_verifies_and_every_tampering_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "private key must not be readable by others"
        );
    }
    let bundle = signed_bundle(tmp.path(), &key);
    verify(&bundle, &public)
        .success()
        .stdout(contains("is intact and signed"))
        .stdout(contains("signature bundle.yaml.sig is valid"));
    aiconform()
        .args(["bundle", "verify"])
        .arg(&bundle)
        .assert()
        .code(3)
        .stdout(contains("signed, signature not checked (pass --key)"));

    // Same recipe and key: byte-identical signature (deterministic ECDSA).
    let again = signed_bundle(&tmp.path().join("again"), &key);
    assert_eq!(
        std::fs::read(bundle.join("bundle.yaml.sig")).unwrap(),
        std::fs::read(again.join("bundle.yaml.sig")).unwrap()
    );

    // An edited file is caught by its hash.
    let values = "02-demo-api/manifests/deployment.yaml";
    let copy = |name: &str| {
        let dst = tmp.path().join(name);
        StdCommand::new("cp")
            .arg("-a")
            .arg(&bundle)
            .arg(&dst)
            .status()
            .unwrap();
        dst
    };
    let edited = copy("edited");
    let path = edited.join(values);
    assert!(path.exists(), "fixture layout changed: {}", path.display());
    let tampered = std::fs::read_to_string(&path)
        .unwrap()
        .replace("replicas: 2", "replicas: 9");
    std::fs::write(&path, &tampered).unwrap();
    verify(&edited, &public)
        .failure()
        .stdout(contains(format!("changed: {values}")));

    // The edit plus its new hash in bundle.yaml: the hashes agree, the signature does not.
    let yaml_path = edited.join("bundle.yaml");
    let original = std::fs::read(bundle.join(values)).unwrap();
    let yaml = std::fs::read_to_string(&yaml_path)
        .unwrap()
        .replace(&sha256_hex(&original), &sha256_hex(tampered.as_bytes()));
    std::fs::write(&yaml_path, yaml).unwrap();
    // Without the key the hashes agree, but a signed bundle is never called intact.
    aiconform()
        .args(["bundle", "verify"])
        .arg(&edited)
        .assert()
        .code(3)
        .stdout(contains("signed, signature not checked (pass --key)"))
        .stdout(contains("is intact").not());
    verify(&edited, &public)
        .failure()
        .stderr(contains("does not match"))
        .stderr(contains("bundle.yaml.sig"));

    // Missing signature.
    let unsigned = copy("unsigned");
    std::fs::remove_file(unsigned.join("bundle.yaml.sig")).unwrap();
    verify(&unsigned, &public)
        .failure()
        .stderr(contains("is not signed (no bundle.yaml.sig)"));

    // Garbage signature.
    let garbage = copy("garbage");
    std::fs::write(garbage.join("bundle.yaml.sig"), "bm90IGEgc2lnbmF0dXJl\n").unwrap();
    verify(&garbage, &public)
        .failure()
        .stderr(contains("not a base64 DER ECDSA signature"));

    // Another key.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_public) = keygen(&other);
    verify(&bundle, &other_public)
        .failure()
        .stderr(contains("signed with another key"));

    // `bundle sign` re-signs an intact bundle, and refuses a tampered one.
    aiconform()
        .args(["bundle", "sign"])
        .arg(&unsigned)
        .arg("--key")
        .arg(&key)
        .assert()
        .success();
    verify(&unsigned, &public).success();
    let changed = copy("changed");
    std::fs::write(changed.join(values), &tampered).unwrap();
    aiconform()
        .args(["bundle", "sign"])
        .arg(&changed)
        .arg("--key")
        .arg(&key)
        .assert()
        .failure()
        .stderr(contains("refusing to sign"));
}

/// `openssl dgst -sha256 -verify PUB -signature SIG.der BLOB` is the check cosign's
/// verify-blob makes for a key-based blob (ECDSA P-256, SHA-256, base64 DER signature).
#[test]
fn signatures_interoperate_with_openssl() {
    if aiconform::deploy::find_on_path("openssl").is_none() {
        eprintln!(
            "SKIP signatures_interoperate_with_openssl: openssl not on PATH (ci/install-deps.sh installs it)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let openssl = |args: &[&str]| {
        let out = StdCommand::new("openssl")
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let b64 = |from: &Path, to: &Path, decode: bool| {
        let flag = if decode { "-d" } else { "-w0" };
        let out = StdCommand::new("base64")
            .arg(flag)
            .arg(from)
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::write(to, out.stdout).unwrap();
    };

    // aiconform signs, openssl verifies.
    let (key, public) = keygen(tmp.path());
    let bundle = signed_bundle(tmp.path(), &key);
    b64(
        &bundle.join("bundle.yaml.sig"),
        &tmp.path().join("sig.der"),
        true,
    );
    let blob = bundle.join("bundle.yaml");
    let (ok, out) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public.to_str().unwrap(),
        "-signature",
        "sig.der",
        blob.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("Verified OK"), "{out}");
    // ... and refuses a tampered bundle.yaml.
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(&bad, std::fs::read_to_string(&blob).unwrap() + "# edit\n").unwrap();
    let (ok, out) = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public.to_str().unwrap(),
        "-signature",
        "sig.der",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok && out.contains("Verification failure"), "{out}");

    // openssl makes the key (SEC1 PEM) and signs; aiconform verifies, and signs with it.
    let (ok, out) = openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ossl.key",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&["ec", "-in", "ossl.key", "-pubout", "-out", "ossl.pub"]);
    assert!(ok, "{out}");
    let unsigned = tmp.path().join("unsigned");
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(recipe())
        .arg("-o")
        .arg(&unsigned)
        .assert()
        .success();
    let (ok, out) = openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        "ossl.key",
        "-out",
        "ossl.der",
        unsigned.join("bundle.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    b64(
        &tmp.path().join("ossl.der"),
        &unsigned.join("bundle.yaml.sig"),
        false,
    );
    verify(&unsigned, &tmp.path().join("ossl.pub")).success();
    let resigned = tmp.path().join("resigned");
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(recipe())
        .arg("-o")
        .arg(&resigned)
        .arg("--sign")
        .arg(tmp.path().join("ossl.key"))
        .assert()
        .success();
    verify(&resigned, &tmp.path().join("ossl.pub")).success();
}
