//! Bundles as OCI artifacts against a real registry process on 127.0.0.1 (the
//! go-containerregistry registry from `ci/tools/build.sh`): push is reproducible (same
//! recipe, same digest), verify pulls it, a tampered signed artifact is refused, and
//! unreachable registries, missing tags, wrong credentials and untrusted TLS are clear errors;
//! signed run evidence (`evidence push`) is pulled and verified the same way.

mod tools_support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use tools_support::{Registry, RegistryConfig, tools};

fn aiconform() -> Command {
    Command::cargo_bin("aiconform").unwrap()
}

fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recipes/manifest-stack.yaml")
}

fn push(reference: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    aiconform()
        .args(["bundle", "--recipe"])
        .arg(recipe())
        .args(["-o", reference])
        .args(extra)
        .env_remove("AICONFORM_REGISTRY_USERNAME")
        .env_remove("AICONFORM_REGISTRY_PASSWORD")
        .timeout(std::time::Duration::from_secs(120))
        .assert()
}

fn digest_of(assert: assert_cmd::assert::Assert) -> String {
    let out = assert.success().get_output().clone();
    let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "stdout `{digest}`, stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    digest
}

#[test]
fn push_is_reproducible_and_pull_verifies() {
    let Some(tools) = tools("push_is_reproducible_and_pull_verifies") else {
        return;
    };
    let registry = Registry::start(&tools, &RegistryConfig::default());
    let reference = format!("oci://{}/bundles/manifest-stack:v1", registry.addr);
    let first = digest_of(push(&reference, &["--plain-http"]));
    let second = digest_of(push(&reference, &["--plain-http"]));
    assert_eq!(first, second, "same recipe, same digest");
    let other_tag = format!("oci://{}/bundles/copy:v2", registry.addr);
    assert_eq!(first, digest_of(push(&other_tag, &["--plain-http"])));

    // Pulled by tag and by digest, the bundle verifies.
    aiconform()
        .args(["bundle", "verify", &reference, "--plain-http"])
        .assert()
        .success()
        .stdout(contains("is intact"))
        .stderr(contains(&first));
    let pinned = format!("oci://{}/bundles/manifest-stack@{first}", registry.addr);
    aiconform()
        .args(["bundle", "verify", &pinned, "--plain-http"])
        .assert()
        .success();

    // A missing tag names the reference.
    let missing = format!("oci://{}/bundles/manifest-stack:nope", registry.addr);
    aiconform()
        .args(["bundle", "verify", &missing, "--plain-http"])
        .assert()
        .failure()
        .stderr(contains(format!("{missing} not found in the registry")));
}

#[test]
fn signed_artifact_verifies_and_a_tampered_one_is_refused() {
    let Some(tools) = tools("signed_artifact_verifies_and_a_tampered_one_is_refused") else {
        return;
    };
    let registry = Registry::start(&tools, &RegistryConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = (tmp.path().join("k"), tmp.path().join("p"));
    aiconform()
        .args(["bundle", "keygen", "--private-key"])
        .arg(&key)
        .arg("--public-key")
        .arg(&public)
        .assert()
        .success();
    let reference = format!("oci://{}/bundles/signed:v1", registry.addr);
    let key_arg = key.to_str().unwrap();
    let signed = digest_of(push(&reference, &["--plain-http", "--sign", key_arg]));
    assert_eq!(
        signed,
        digest_of(push(&reference, &["--plain-http", "--sign", key_arg])),
        "signing is deterministic, so the digest is too"
    );
    aiconform()
        .args(["bundle", "verify", &reference, "--plain-http", "--key"])
        .arg(&public)
        .assert()
        .success()
        .stdout(contains("signature bundle.yaml.sig is valid"));

    // Push a tampered copy (an edit plus its rehash in bundle.yaml, the old signature kept)
    // through the library, as an attacker with registry access would.
    let bundle = aiconform::bundle::render(
        &aiconform::recipe::load_recipe_file(&recipe()).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let mut tampered = bundle.clone();
    let sk =
        aiconform::bundle::sign::parse_private_key(&std::fs::read_to_string(&key).unwrap(), "k")
            .unwrap();
    tampered.sign(&sk).unwrap();
    let path = "02-demo-api/manifests/deployment.yaml";
    let old = tampered.files[path].content.clone();
    let new = String::from_utf8(old.clone())
        .unwrap()
        .replace("replicas: 2", "replicas: 9");
    tampered.files.get_mut(path).unwrap().content = new.clone().into_bytes();
    let yaml = String::from_utf8(tampered.files["bundle.yaml"].content.clone())
        .unwrap()
        .replace(
            &aiconform::bundle::sha256_hex(&old),
            &aiconform::bundle::sha256_hex(new.as_bytes()),
        );
    tampered.files.get_mut("bundle.yaml").unwrap().content = yaml.into_bytes();
    let evil = format!("oci://{}/bundles/signed:evil", registry.addr);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = aiconform::bundle::oci::RegistryOptions {
        plain_http: true,
        ..Default::default()
    };
    rt.block_on(aiconform::bundle::oci::push(&tampered, &evil, &opts))
        .unwrap();
    aiconform()
        .args(["bundle", "verify", &evil, "--plain-http"])
        .assert()
        .code(3)
        .stdout(contains("signature not checked (pass --key)"));
    aiconform()
        .args(["bundle", "verify", &evil, "--plain-http", "--key"])
        .arg(&public)
        .assert()
        .failure()
        .stderr(contains("does not match"));
    aiconform()
        .args(["deploy", "--bundle", &evil, "--plain-http", "--key"])
        .arg(&public)
        .arg("--kubeconfig")
        .arg(tmp.path().join("never-read"))
        .assert()
        .failure()
        .stderr(contains(format!(
            "refusing to deploy {evil}: it is not signed by"
        )));
}

#[test]
fn registry_errors_are_clear() {
    let Some(tools) = tools("registry_errors_are_clear") else {
        return;
    };
    // Nothing listens on port 1.
    push("oci://127.0.0.1:1/bundles/x:v1", &["--plain-http"])
        .failure()
        .stderr(contains("registry 127.0.0.1:1 is unreachable"));
    aiconform()
        .args([
            "bundle",
            "verify",
            "oci://127.0.0.1:1/bundles/x:v1",
            "--plain-http",
        ])
        .assert()
        .failure()
        .stderr(contains("registry 127.0.0.1:1 is unreachable"));

    // Basic auth: none and wrong credentials are refused with a hint; right ones work.
    let auth = Registry::start(
        &tools,
        &RegistryConfig {
            basic_auth: Some(("ci".into(), "s3cret".into())),
            tls: false,
        },
    );
    let reference = format!("oci://{}/bundles/auth:v1", auth.addr);
    push(&reference, &["--plain-http"])
        .failure()
        .stderr(contains(format!(
            "registry {} refused the credentials",
            auth.addr
        )))
        .stderr(contains("AICONFORM_REGISTRY_USERNAME"));
    let with = |user: &str, pass: &str| {
        aiconform()
            .args(["bundle", "--recipe"])
            .arg(recipe())
            .args(["-o", &reference, "--plain-http"])
            .env("AICONFORM_REGISTRY_USERNAME", user)
            .env("AICONFORM_REGISTRY_PASSWORD", pass)
            .timeout(std::time::Duration::from_secs(120))
            .assert()
    };
    let out = with("ci", "wrong").failure().get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(
        !stderr.contains("wrong"),
        "the password must not be printed: {stderr}"
    );
    with("ci", "s3cret").success();

    // TLS with a CA the system does not trust: a clear error, and --ca-file fixes it.
    let tls = Registry::start(
        &tools,
        &RegistryConfig {
            basic_auth: None,
            tls: true,
        },
    );
    let reference = format!("oci://{}/bundles/tls:v1", tls.addr);
    push(&reference, &[])
        .failure()
        .stderr(contains(format!("TLS with registry {} failed", tls.addr)))
        .stderr(contains("--ca-file"));
    let ca = tls.ca.clone().unwrap();
    let digest = digest_of(push(&reference, &["--ca-file", ca.to_str().unwrap()]));
    aiconform()
        .args([
            "bundle",
            "verify",
            &reference,
            "--ca-file",
            ca.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stderr(contains(&digest));
    // Plain HTTP against a TLS registry is an error too, not a hang.
    push(&reference, &["--plain-http"]).failure();
}

/// Signed run evidence travels the same way: `evidence push` packs the attestation
/// directory as one layer; `evidence verify oci://...` pulls and checks it.
#[test]
fn run_evidence_pushes_and_verifies_from_the_registry() {
    let Some(tools) = tools("run_evidence_pushes_and_verifies_from_the_registry") else {
        return;
    };
    let registry = Registry::start(&tools, &RegistryConfig::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("evidence");
    aiconform::report::write_all(&dir, &aiconform::runner::RunReport::default()).unwrap();
    let (private, public) = aiconform::bundle::sign::generate_key_pair();
    let public_path = tmp.path().join("run.pub");
    std::fs::write(&public_path, public).unwrap();
    let key = aiconform::bundle::sign::parse_private_key(&private, "run.key").unwrap();
    let context = aiconform::attest::RunContext {
        recipe_yaml: std::fs::read_to_string(recipe()).unwrap(),
        ..Default::default()
    };
    aiconform::attest::attest(&dir, &dir, &context, &key).unwrap();

    let reference = format!("oci://{}/evidence/run:v1", registry.addr);
    let out = aiconform()
        .args(["evidence", "push"])
        .arg(&dir)
        .args([&reference, "--plain-http"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let digest = String::from_utf8(out).unwrap().trim().to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    aiconform()
        .args(["evidence", "verify", &reference, "--plain-http", "--key"])
        .arg(&public_path)
        .assert()
        .code(0)
        .stdout(contains("OK: verified"))
        .stderr(contains(&digest));
    aiconform()
        .args(["evidence", "verify", &reference, "--plain-http"])
        .assert()
        .code(3)
        .stdout(contains("signature not checked (pass --key)"));
    // A bundle is not run evidence.
    let bundle = format!("oci://{}/bundles/not-evidence:v1", registry.addr);
    push(&bundle, &["--plain-http"]).success();
    aiconform()
        .args(["evidence", "verify", &bundle, "--plain-http"])
        .assert()
        .code(2)
        .stderr(contains("is not aiconform run evidence"));
}
