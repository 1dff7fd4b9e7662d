//! `aiconform evidence verify`: signed run evidence (`aiconform run --attest`) checked
//! against its signature, its files, and a submission's statuses.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use aiconform::attest::{self, AttestError, PublicKey, Verified};
use aiconform::bundle::sign;
use aiconform::submission::{check, write as submission};

use super::bundle_cmd::RegistryArgs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Check signed run evidence: an attestation directory, an oci:// reference, or a
    /// submission's PRODUCT.yaml
    Verify(VerifyArgs),
    /// Push an attestation directory to an OCI registry (one tar.gz layer, artifact type
    /// application/vnd.aiconform.evidence.v1); prints the digest
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
struct PushArgs {
    /// Attestation directory (from `aiconform run --attest DIR`)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// oci://REGISTRY/REPO[:TAG] (tag defaults to the aiconform version)
    #[arg(value_name = "OCI_REF")]
    reference: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Check the attestation of a run (a directory written by `aiconform run --attest DIR`), or
/// a submission (PRODUCT.yaml or its directory) carrying one in results/.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Checks: the signature of attestation.dsse.json (DSSE, ECDSA P-256, the keys of `aiconform bundle \
keygen`) with --key; the SHA-256 of every file it names (recipe.yaml, snapshot.yaml, junit.xml, \
results.json, ...); for a submission, also that every requirement's status in PRODUCT.yaml is \
the one the attested run gives. Each difference names the file (and YAML path).\n\n\
Exit status: 0 the signature is valid for --key and nothing differs; 1 something differs or the \
signature does not verify; 2 it could not be checked (no attestation, unreadable files); 3 \
nothing differs but the signature was not checked (no --key): the attestation itself may have \
been edited, so nothing is proven.\n\n\
Example:\n  aiconform bundle keygen --private-key run.key --public-key run.pub\n  \
aiconform run --recipe recipe.yaml --phase conformance --report-dir report --attest report --attest-key run.key\n  \
aiconform evidence verify report --key run.pub\n  \
aiconform submission write --report-dir report --product product.yaml -o submission\n  \
aiconform evidence verify submission/v1.37/acme-ai-cloud/PRODUCT.yaml --key run.pub")]
struct VerifyArgs {
    /// Attestation directory, oci://REGISTRY/REPO:TAG (from `evidence push`), or a
    /// submission's PRODUCT.yaml or vX.Y/<product>/ directory
    #[arg(value_name = "DIR|OCI_REF|PRODUCT.yaml")]
    target: PathBuf,
    /// Public key (PEM, ECDSA P-256) the attestation must be signed with
    #[arg(long, value_name = "PUB")]
    key: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Exit status when nothing differs but the signature was not checked.
const SIGNATURE_NOT_CHECKED: u8 = 3;

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Sub::Verify(a) => Ok(verify(&a)),
        Sub::Push(a) => push(&a),
    }
}

fn push(a: &PushArgs) -> Result<ExitCode> {
    if !aiconform::bundle::oci::is_oci(&a.reference) {
        anyhow::bail!(
            "`{}` is not an OCI reference; give oci://REGISTRY/REPO[:TAG]",
            a.reference
        );
    }
    let pushed =
        super::runtime()?.block_on(attest::push(&a.dir, &a.reference, &a.registry.options()))?;
    eprintln!("pushed run evidence {} to {}", a.dir.display(), a.reference);
    println!("{}", pushed.digest);
    eprintln!(
        "verify with `aiconform evidence verify {} --key PUB`",
        pushed.pinned
    );
    Ok(ExitCode::SUCCESS)
}

/// `PRODUCT.yaml` when `target` is one or a directory holding one (not an attestation).
fn product_file(target: &Path) -> Option<PathBuf> {
    if target.is_dir() {
        if attest::is_attested(target) {
            return None;
        }
        let f = check::product_file(target);
        return f.is_file().then_some(f);
    }
    (target
        .file_name()
        .is_some_and(|n| n == submission::PRODUCT_FILE))
    .then(|| target.to_path_buf())
}

fn verify(a: &VerifyArgs) -> ExitCode {
    let key = match &a.key {
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read public key {}: {e}", path.display()))
            .and_then(|pem| Ok(sign::parse_public_key(&pem, &path.display().to_string())?))
        {
            Ok(k) => Some((k, path.display().to_string())),
            Err(e) => {
                super::report(&e);
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let public = key.as_ref().map(|(k, p)| PublicKey { key: k, path: p });
    let target = a.target.to_string_lossy().to_string();
    let mut _pulled = None;
    let result = if aiconform::bundle::oci::is_oci(&target) {
        let rt = match super::runtime() {
            Ok(rt) => rt,
            Err(e) => {
                super::report(&e);
                return ExitCode::from(2);
            }
        };
        match rt.block_on(attest::pull_to_dir(&target, &a.registry.options())) {
            Ok(p) => {
                eprintln!("pulled {target} ({})", p.digest);
                let r = attest::verify_dir(&p.dir, public);
                _pulled = Some(p);
                r
            }
            Err(e) => Err(e),
        }
    } else {
        match product_file(&a.target) {
            Some(product) => attest::verify_submission(&product, public),
            None => attest::verify_dir(&a.target, public),
        }
    };
    match result {
        Ok(v) => {
            print!("{}", render(&v));
            if !v.is_ok() {
                ExitCode::FAILURE
            } else if v.key.is_none() {
                ExitCode::from(SIGNATURE_NOT_CHECKED)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e @ AttestError::Signature(_)) => {
            super::report(&anyhow::Error::new(e).context(format!(
                "the attestation of {} is not signed by {}",
                a.target.display(),
                a.key.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
            )));
            ExitCode::FAILURE
        }
        Err(e) => {
            super::report(&anyhow::Error::new(e));
            ExitCode::from(2)
        }
    }
}

fn render(v: &Verified) -> String {
    let p = &v.statement.predicate;
    let checklist = p
        .checklist
        .as_ref()
        .map(|c| format!(", checklist {}", c.version))
        .unwrap_or_default();
    let cluster = p
        .cluster
        .kube_system_uid
        .as_deref()
        .map(|u| format!(", cluster {u}"))
        .unwrap_or_default();
    let mut out = format!(
        "attestation {}: run {} of recipe {} by aiconform {} on Kubernetes {}{cluster}{checklist}; {} files\n",
        v.dir.join(attest::ENVELOPE_FILE).display(),
        p.run_id,
        p.recipe,
        p.aiconform_version,
        p.cluster
            .kubernetes_version
            .as_deref()
            .unwrap_or("(unknown)"),
        v.statement.subject.len()
    );
    for m in &v.mismatches {
        out.push_str(&format!("  differs: {m}\n"));
    }
    if v.is_ok() {
        out.push_str(&format!(
            "  every file matches its recorded sha256{}\n",
            if v.product.is_some() {
                "; every status in PRODUCT.yaml is the attested one"
            } else {
                ""
            }
        ));
    }
    match &v.key {
        Some(k) => out.push_str(&format!("  signature valid for {k}\n")),
        None => out.push_str(
            "  signed, signature not checked (pass --key): the attestation itself may have been edited\n",
        ),
    }
    if let Some(product) = &v.product {
        out.push_str(&format!(
            "  not attested: the evidence/*.md and README.md next to {} (written from the attested results.json)\n",
            product.display()
        ));
    }
    out.push_str(if !v.is_ok() {
        "FAILED: the evidence is not what the run produced\n"
    } else if v.key.is_none() {
        "NOT VERIFIED: files match, signature not checked\n"
    } else {
        "OK: verified\n"
    });
    out
}
