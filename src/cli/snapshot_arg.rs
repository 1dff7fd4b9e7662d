//! Reading `--snapshot FILE|cm://NAMESPACE/NAME`, shared by the commands that take one.

use std::path::Path;

use anyhow::{Context, Result, bail};

use aiconform::snapshot::model::Snapshot;
use aiconform::snapshot::{self, Location};

/// Load a snapshot from a file, or from a ConfigMap through `kubeconfig` (or the default
/// one); an unreachable cluster is an error naming the server.
pub fn load(arg: &str, kubeconfig: Option<&Path>) -> Result<Snapshot> {
    match Location::parse(arg)? {
        Location::Stdout => {
            bail!("--snapshot - is not supported; give a file or cm://NAMESPACE/NAME")
        }
        Location::File(path) => Ok(snapshot::load_file(&path)?),
        Location::ConfigMap { namespace, name } => {
            let rt = super::runtime()?;
            rt.block_on(async {
                let client = aiconform::cluster::connect(kubeconfig)
                    .await
                    .with_context(|| format!("cannot read snapshot {arg}"))?;
                Ok::<_, anyhow::Error>(snapshot::load_configmap(&client, &namespace, &name).await?)
            })
        }
    }
}
