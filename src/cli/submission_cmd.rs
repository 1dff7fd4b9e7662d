//! `aiconform submission write|check`: a CNCF AI conformance submission from a finished run,
//! and the program's CI rules applied to one offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::report::results::RunRecord;
use aiconform::submission::check::{self, CheckReport};
use aiconform::submission::members;
use aiconform::submission::online;
use aiconform::submission::product::Product;
use aiconform::submission::write as submission;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Write vX.Y/<product>/PRODUCT.yaml, evidence/<requirement>.md and a README from a run
    Write(WriteArgs),
    /// Validate a submission the way the program's CI does (offline)
    Check(CheckArgs),
}

/// Write a submission from the reports of `aiconform run` (its results.json).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Status per requirement: Implemented when every case proving it passed; Not Implemented when \
one failed (the reason goes to notes); N/A when the run configuration declared it not \
applicable (the reason goes to notes); empty when it was not run.\n\n\
From 1.37 (hybrid verification) the run's junit.xml and results.json are copied to \
vX.Y/<product>/results/ and each implemented requirement's evidence also links the cases \
proving it, as the program's CI reads them: file://results/junit.xml#<case>. When the report \
directory holds a signed attestation (`aiconform run --attest DIR`, with DIR as the report \
directory), everything it covers goes to results/ with it, for `aiconform evidence verify`. \
A product file with `layers` puts the providing layer at the start of each requirement's \
notes.\n\n\
Example:\n  aiconform run --recipe recipe.yaml --phase conformance --config run.yaml --report-dir report\n  \
aiconform submission write --report-dir report --product product.yaml -o submission\n  \
aiconform submission check submission/v1.34/acme-ai-cloud")]
struct WriteArgs {
    /// Report directory of a finished run (holds results.json)
    #[arg(long, value_name = "DIR")]
    report_dir: PathBuf,
    /// Product metadata: platformName, platformVersion, vendorName, websiteUrl, repoUrl
    /// (optional), documentationUrl, productLogoUrl, description, contactEmailAddress,
    /// k8sConformanceUrl, directory (optional)
    #[arg(long, value_name = "FILE")]
    product: PathBuf,
    /// Output directory; the submission goes to OUT/vX.Y/<product>/
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Replace an existing OUT/vX.Y/<product>/ directory
    #[arg(long)]
    force: bool,
}

/// Check a PRODUCT.yaml (or the directory holding it).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The version comes from the vX.Y/ directory in the path, as in the program's repository. \
Each problem is printed with its path in the YAML. Offline, URLs are checked for form only; \
--online fetches each one (metadata and evidence) and reports those that do not answer with \
a success status. file:// evidence (hybrid verification, 1.37+) must stay inside the product \
directory; junit.xml, results.json (go test -json) and e2e.log (go test -v) are parsed and the \
#Test it names must be there and not have failed. --members FILE checks vendorName against \
the CNCF members (the landscape.yml of cncf/landscape, or one name per line), exactly, as the \
program's CI does; without it that check is not done. A layered product (notes starting \
`Layer: `) that provides no requirement of its own gets a warning.\n\n\
Exit status: 0 the submission passes, 1 it has problems, 2 it could not be checked.")]
struct CheckArgs {
    /// vX.Y/<product>/ directory or its PRODUCT.yaml
    #[arg(value_name = "DIR")]
    path: PathBuf,
    /// Also fetch every URL of the submission and report those that do not answer
    #[arg(long)]
    online: bool,
    /// How long each URL may take with --online (e.g. 10s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = aiconform::duration::parse, requires = "online")]
    timeout: std::time::Duration,
    /// CNCF members list: cncf/landscape's landscape.yml, or one name per line; vendorName
    /// must match one exactly
    #[arg(long, value_name = "FILE")]
    members: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Sub::Write(a) => write(a),
        Sub::Check(a) => {
            let file = check::product_file(&a.path);
            if !file.is_file() {
                super::report(&anyhow::anyhow!(
                    "{} does not exist; give a vX.Y/<product>/ directory or its PRODUCT.yaml",
                    file.display()
                ));
                return Ok(ExitCode::from(2));
            }
            let mut report = check::check(&a.path);
            if let Some(path) = &a.members {
                let members = match members::load(path) {
                    Ok(m) => m,
                    Err(e) => {
                        super::report(&anyhow::Error::new(e));
                        return Ok(ExitCode::from(2));
                    }
                };
                check::check_vendor(&mut report, &members, path);
            }
            if a.online {
                report.online = true;
                let rt = super::runtime()?;
                let found = rt.block_on(online::unreachable(&report.links, a.timeout));
                report.problems.extend(found);
            }
            print!("{}", render_check(&report));
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn write(a: WriteArgs) -> Result<ExitCode> {
    let product = Product::load(&a.product)?;
    let run = RunRecord::load(&a.report_dir)?;
    let checklist = submission::checklist_of(&run, &a.report_dir)?;
    if run.interrupted {
        eprintln!(
            "warning: the run was interrupted; requirements it did not finish are not proven"
        );
    }
    if aiconform::attest::is_attested(&a.report_dir) {
        // Carry signed evidence only as it was signed: a changed file would fail
        // `evidence verify` in the submission anyway, so say so now.
        let v = aiconform::attest::verify_dir(&a.report_dir, None)?;
        if !v.is_ok() {
            let lines: Vec<String> = v.mismatches.iter().map(|m| format!("  {m}")).collect();
            anyhow::bail!(
                "refusing to write a submission from {}: its files differ from its attestation:\n{}",
                a.report_dir.display(),
                lines.join("\n")
            );
        }
    }
    let artifacts = submission::read_artifacts(&a.report_dir, checklist)?;
    if product.contributes_nothing() {
        eprintln!(
            "warning: {} names layers but no add-on replaces, extends or adds a requirement: the program wants a layered product to contribute at least one of its own",
            a.product.display()
        );
    }
    let sub = submission::render(checklist, &run, &product, &artifacts)?;
    let dir = submission::write(&a.output, &sub, a.force)
        .with_context(|| format!("cannot write the submission under {}", a.output.display()))?;
    println!(
        "wrote {} ({} files) for AI conformance {} from run {}",
        dir.display(),
        sub.files.len(),
        checklist.version,
        run.run_id
    );
    if artifacts.attested {
        println!(
            "carried the run's signed evidence into {}/{}; check it with `aiconform evidence verify {} --key KEY.pub`",
            dir.display(),
            submission::RESULTS_DIR,
            dir.join(submission::PRODUCT_FILE).display()
        );
    }
    let report = check::check(&dir);
    if report.passed() {
        println!("submission check: no problems");
    } else {
        println!(
            "submission check: {} problem(s); the program's CI would refuse this submission:",
            report.problems.len()
        );
        for p in &report.problems {
            println!("  {p}");
        }
    }
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn render_check(r: &CheckReport) -> String {
    let mut out = match r.version {
        Some(v) => format!(
            "checking {} against the AI conformance {v} checklist\n",
            r.file.display()
        ),
        None => format!("checking {}\n", r.file.display()),
    };
    for p in &r.problems {
        out.push_str(&format!("  problem: {p}\n"));
    }
    for n in &r.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    for w in &r.warnings {
        out.push_str(&format!("  warning: {w}\n"));
    }
    let mut not_checked = Vec::new();
    if r.online {
        out.push_str(&format!("  followed {} URL(s)\n", r.links.len()));
    } else {
        not_checked.push("URL reachability (--online)");
    }
    match &r.members {
        Some(from) => out.push_str(&format!(
            "  checked vendorName against the CNCF members in {from}\n"
        )),
        None => not_checked.push("vendorName in the CNCF members list (--members FILE)"),
    }
    if !not_checked.is_empty() {
        out.push_str(&format!("  not checked: {}\n", not_checked.join(", ")));
    }
    if r.passed() {
        out.push_str("OK: no problems\n");
    } else {
        out.push_str(&format!("FAILED: {} problem(s)\n", r.problems.len()));
    }
    out
}
