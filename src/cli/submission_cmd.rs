//! `aiconform submission write|check`: a CNCF AI conformance submission from a finished run,
//! and the program's CI rules applied to one offline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use aiconform::conformance::check::{self, CheckReport};
use aiconform::conformance::online;
use aiconform::conformance::product::Product;
use aiconform::conformance::submission;
use aiconform::report::results::RunRecord;

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
a success status. Never checked: whether vendorName is a CNCF member.\n\n\
Exit status: 0 the submission passes, 1 it has problems, 2 it could not be checked.")]
struct CheckArgs {
    /// vX.Y/<product>/ directory or its PRODUCT.yaml
    #[arg(value_name = "DIR")]
    path: PathBuf,
    /// Also fetch every URL of the submission and report those that do not answer
    #[arg(long)]
    online: bool,
    /// How long each URL may take with --online (e.g. 10s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = aiconform::runner::suite::parse_duration, requires = "online")]
    timeout: std::time::Duration,
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
            if a.online {
                report.online = true;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("cannot start the async runtime")?;
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
    let sub = submission::render(checklist, &run, &product)?;
    let dir = submission::write(&a.output, &sub, a.force)
        .with_context(|| format!("cannot write the submission under {}", a.output.display()))?;
    println!(
        "wrote {} ({} files) for AI conformance {} from run {}",
        dir.display(),
        sub.files.len(),
        checklist.version,
        run.run_id
    );
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
    if r.online {
        out.push_str(&format!(
            "  followed {} URL(s); not checked: vendorName in the CNCF members list\n",
            r.links.len()
        ));
    } else {
        out.push_str(
            "  not checked offline: URL reachability (--online), vendorName in the CNCF members list\n",
        );
    }
    if r.passed() {
        out.push_str("OK: no problems\n");
    } else {
        out.push_str(&format!("FAILED: {} problem(s)\n", r.problems.len()));
    }
    out
}
