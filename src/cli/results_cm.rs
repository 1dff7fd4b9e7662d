//! `aiconform run --report-configmap NAMESPACE/NAME`: the run's reports, its snapshot and the
//! drift from the previous run's snapshot, stored in one ConfigMap (see [`aiconform::fleet`]).

use anyhow::{Context, Result};

use aiconform::diff;
use aiconform::fleet::{self, ConfigMapRef, Contents};
use aiconform::runner::RunReport;
use aiconform::snapshot::{self, Snapshot};

fn member_name(s: &str) -> Result<String, String> {
    if aiconform::name::is_label_value(s) {
        Ok(s.to_string())
    } else {
        Err(fleet::FleetError::Member(s.into()).to_string())
    }
}

/// Where `run` stores its results besides `--report-dir`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ResultsArgs {
    /// Also store junit.xml, ctrf.json and results.json in this ConfigMap (created or
    /// replaced by server-side apply, labelled aiconform.dev/purpose=run-results), with the
    /// snapshot the run took and drift.json, its difference from the snapshot of the run
    /// stored there before (no snapshot phase selected: one without node agents is taken).
    /// A run that fails to start records its error there under `error`
    #[arg(long, value_name = "NAMESPACE/NAME")]
    report_configmap: Option<ConfigMapRef>,
    /// Name of the tested cluster in the ConfigMap's aiconform.dev/member label (what
    /// `aiconform fleet report` lists)
    #[arg(long, value_name = "NAME", default_value = "default", value_parser = member_name, requires = "report_configmap")]
    report_member: String,
    /// Write the ConfigMap to the cluster this pod runs in (its ServiceAccount) instead of
    /// the tested cluster: a management cluster's Job testing a member through --kubeconfig
    #[arg(long, requires = "report_configmap")]
    report_in_cluster: bool,
    /// Also push what the ConfigMap holds to oci://REGISTRY/REPO[:TAG] (one tar.gz layer,
    /// artifact type application/vnd.aiconform.results.v1; credentials from
    /// AICONFORM_REGISTRY_USERNAME and AICONFORM_REGISTRY_PASSWORD)
    #[arg(long, value_name = "OCI_REF", requires = "report_configmap")]
    report_oci: Option<String>,
    /// Push to --report-oci over plain HTTP (local registries only)
    #[arg(long, requires = "report_oci")]
    report_oci_plain_http: bool,
    /// CA certificate (PEM) to trust for --report-oci's registry
    #[arg(long, value_name = "FILE", requires = "report_oci")]
    report_oci_ca_file: Option<std::path::PathBuf>,
}

impl ResultsArgs {
    /// The target of a run testing the cluster of `kubeconfig` (`None`: the default one).
    pub fn target(&self, kubeconfig: Option<&std::path::Path>) -> Option<ResultsTarget> {
        self.report_configmap.clone().map(|at| ResultsTarget {
            at,
            member: self.report_member.clone(),
            in_cluster: self.report_in_cluster,
            kubeconfig: kubeconfig.map(std::path::Path::to_path_buf),
            oci: self.report_oci.clone().map(|reference| {
                (
                    reference,
                    aiconform::bundle::oci::RegistryOptions {
                        plain_http: self.report_oci_plain_http,
                        ca_file: self.report_oci_ca_file.clone(),
                        credentials: aiconform::bundle::oci::RegistryOptions::credentials_from_env(
                        ),
                    },
                )
            }),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ResultsTarget {
    pub at: ConfigMapRef,
    pub member: String,
    pub in_cluster: bool,
    /// The tested cluster's kubeconfig (`None`: the default one, or in-cluster).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Where the results are also pushed (`--report-oci`).
    pub oci: Option<(String, aiconform::bundle::oci::RegistryOptions)>,
}

impl ResultsTarget {
    /// The client of the cluster holding the ConfigMap.
    async fn client(&self, tested: Option<&kube::Client>) -> Result<kube::Client> {
        Ok(match (self.in_cluster, tested) {
            (false, Some(c)) => c.clone(),
            (false, None) => aiconform::cluster::connect(self.kubeconfig.as_deref()).await?,
            (true, _) => in_cluster_client()?,
        })
    }
}

/// A client for the cluster this process runs in as a pod (its ServiceAccount's token).
fn in_cluster_client() -> Result<kube::Client> {
    let config = kube::Config::incluster()
        .context("cannot connect to the cluster this pod runs in (--report-in-cluster)")?;
    kube::Client::try_from(config)
        .context("cannot connect to the cluster this pod runs in (--report-in-cluster)")
}

/// Store the run: its reports, its snapshot (`snap`, else one taken now without agents) and
/// the drift from the snapshot stored by the previous run.
pub fn store(
    rt: &tokio::runtime::Runtime,
    target: &ResultsTarget,
    tested: &kube::Client,
    report: &RunReport,
    snap: Option<&Snapshot>,
) -> Result<()> {
    let reports = aiconform::report::render_all(report)?
        .into_iter()
        .filter(|(name, _)| fleet::REPORT_KEYS.contains(name))
        .map(|(name, text)| (name.to_string(), text))
        .collect();
    rt.block_on(async {
        let current = match snap {
            Some(s) => s.clone(),
            None => {
                eprintln!("taking a snapshot for drift (no node agents) ...");
                let opts = snapshot::TakeOptions {
                    node_selector: None,
                    agent: None,
                };
                let (s, warnings) = snapshot::take(tested, &opts, &|p: snapshot::job::AgentProgress<'_>| eprintln!("  {p}"))
                    .await
                    .context("cannot take the snapshot that --report-configmap keeps for drift")?;
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                s
            }
        };
        let client = target.client(Some(tested)).await?;
        let previous = fleet::read(&client, &target.at).await?;
        let origin = format!("cm://{}", target.at);
        let drift = match previous.as_ref().and_then(|p| p.contents.snapshot.as_deref()) {
            Some(text) => match snapshot::parse(text, &origin) {
                Ok(base) => Some(diff::diff_snapshots(
                    &base,
                    &format!("{origin} (previous run)"),
                    &current,
                    "this run",
                )),
                Err(e) => {
                    eprintln!(
                        "warning: the snapshot in {origin} does not parse ({e}); no drift recorded this time"
                    );
                    None
                }
            },
            None => None,
        };
        let contents = Contents {
            reports,
            snapshot: Some(snapshot::render(&current)?),
            drift,
            error: None,
        };
        write_contents(&client, target, &contents).await?;
        if let Some((reference, opts)) = &target.oci {
            let pushed = fleet::push_oci(&contents, &target.member, reference, opts)
                .await
                .with_context(|| format!("cannot push the run's results to {reference}"))?;
            eprintln!("results: pushed to {}", pushed.pinned);
        }
        match &contents.drift {
            Some(d) => eprintln!(
                "results: ConfigMap {} (member {}); drift since the previous run: {} added, {} removed, {} changed",
                target.at, target.member, d.summary.added, d.summary.removed, d.summary.changed
            ),
            None => eprintln!(
                "results: ConfigMap {} (member {}); no previous snapshot there, drift starts with the next run",
                target.at, target.member
            ),
        }
        Ok(())
    })
}

/// Write `contents` to the target's ConfigMap, stamped now.
async fn write_contents(
    client: &kube::Client,
    target: &ResultsTarget,
    contents: &Contents,
) -> Result<()> {
    let cm = fleet::results_configmap(
        &target.at,
        &target.member,
        &snapshot::now_rfc3339(),
        contents,
    )?;
    fleet::write(client, &cm).await?;
    Ok(())
}

/// Record the error of a run that produced no reports, keeping what the ConfigMap held
/// (the previous run's reports and snapshot). Problems doing so are printed, not returned:
/// the run's own error is the one that matters.
pub fn record_error(target: &ResultsTarget, err: &anyhow::Error) {
    let message = super::error_lines(err).join("\n  caused by: ");
    let write = async {
        let client = target.client(None).await?;
        let mut contents = fleet::read(&client, &target.at)
            .await?
            .map(|s| s.contents)
            .unwrap_or_default();
        contents.error = Some(message);
        write_contents(&client, target, &contents).await?;
        anyhow::Ok(())
    };
    let result = super::runtime().and_then(|rt| rt.block_on(write));
    match result {
        Ok(()) => eprintln!("error recorded in ConfigMap {}", target.at),
        Err(e) => eprintln!(
            "warning: cannot record the error in ConfigMap {}: {e:#}",
            target.at
        ),
    }
}
