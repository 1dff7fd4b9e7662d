//! Targets for deploys and test runs: the embedded test cluster (default when no kubeconfig
//! is given), kind, or any cluster named by a kubeconfig.

pub mod embedded;
pub mod testing;

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// A cluster could not be reached or started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error(
        "no kubeconfig given and none found ({0}); pass --kubeconfig FILE, set KUBECONFIG, or start the embedded cluster with `aiconform cluster up`"
    )]
    NoKubeconfig(String),
    #[error(
        "cluster at {server} is unreachable: {message}; check that it is running (`aiconform cluster status`) and that the kubeconfig is current"
    )]
    Unreachable { server: String, message: String },
    #[error("embedded test cluster binary not found: {0}")]
    BinaryMissing(String),
    #[error("building the embedded test cluster failed: {0}")]
    Build(String),
    #[error("embedded test cluster did not become ready: {message}\n  last log lines:\n{log_tail}")]
    NotReady { message: String, log_tail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// A kube client for the cluster in `kubeconfig`, or the inferred default (KUBECONFIG,
/// ~/.kube/config, in-cluster) when `None`. Verifies the API server answers.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<kube::Client, ClusterError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Kubeconfig {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::NoKubeconfig(e.to_string()))?,
    };
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Unreachable {
        server: server.clone(),
        message: e.to_string(),
    })?;
    client
        .apiserver_version()
        .await
        .map_err(|e| ClusterError::Unreachable {
            server,
            message: e.to_string(),
        })?;
    Ok(client)
}
