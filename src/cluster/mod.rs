//! Targets for deploys and test runs: the embedded test cluster (default when no kubeconfig
//! is given), kind, or any cluster named by a kubeconfig.

pub mod embedded;
pub mod testing;
pub mod upstream;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The source checkout this binary was built from, when it still holds `script` (development
/// builds can then build what the embedded cluster needs).
fn source_root(script: &str) -> Option<std::path::PathBuf> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.join(script).exists().then_some(root)
}

/// Run a build script of the checkout at `root`; its failure carries the last lines of its
/// stderr.
fn run_build_script(root: &Path, script: &str) -> Result<(), ClusterError> {
    let out = std::process::Command::new("bash")
        .arg(root.join(script))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ClusterError::Build(format!("cannot run {script}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    Err(ClusterError::Build(format!(
        "{script} exited with {}:\n{}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )))
}

static API_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// HTTP requests sent to API servers by clients from [`connect`] so far (watches count once
/// per request, however long they stream).
pub fn api_requests() -> u64 {
    API_REQUESTS.load(Ordering::Relaxed)
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
    let counter = tower::util::MapRequestLayer::new(|req| {
        API_REQUESTS.fetch_add(1, Ordering::Relaxed);
        req
    });
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| ClusterError::Unreachable {
            server: server.clone(),
            message: e.to_string(),
        })?
        .with_layer(&counter)
        .build();
    client
        .apiserver_version()
        .await
        .map_err(|e| ClusterError::Unreachable {
            server,
            message: e.to_string(),
        })?;
    Ok(client)
}
