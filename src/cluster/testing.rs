//! Embedded clusters for `cargo test`: one shared cluster per test binary, started on first
//! use, plus fresh clusters for tests that inject faults.
//!
//! When the cluster binary cannot be found or built, [`shared`] returns the reason so tests
//! can skip with it; with `AICONFORM_REQUIRE_CLUSTER=1` (set by `ci/test`) that is a failure.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::embedded::{EmbeddedOptions, RealNode, RunningCluster};

pub const REQUIRE_ENV: &str = "AICONFORM_REQUIRE_CLUSTER";

/// A cluster shared by the tests of one test binary. It exits with the test process.
pub struct SharedCluster {
    pub kubeconfig: PathBuf,
    _cluster: RunningCluster,
}

static SHARED: OnceLock<Result<SharedCluster, String>> = OnceLock::new();

/// Options for test clusters: two simulated GPU nodes and no real node, bound to this
/// process's lifetime.
pub fn test_options() -> EmbeddedOptions {
    EmbeddedOptions {
        nodes: Some(2),
        parent_pid: Some(std::process::id()),
        real_node: RealNode::Off,
        image_archives: Vec::new(),
        ..EmbeddedOptions::default()
    }
}

/// Options for a cluster with a real node (kubelet + containerd) loaded with the locally
/// built images: required (`on`) when `AICONFORM_REQUIRE_CLUSTER=1`, else `auto`.
pub fn real_node_options() -> EmbeddedOptions {
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    EmbeddedOptions {
        real_node: if required {
            RealNode::On
        } else {
            RealNode::Auto
        },
        image_archives: super::embedded::local_image_archives(),
        ..test_options()
    }
}

/// The shared cluster, or why there is none.
pub fn shared() -> Result<&'static SharedCluster, String> {
    SHARED
        .get_or_init(|| {
            fresh(&test_options()).map(|c| SharedCluster {
                kubeconfig: c.kubeconfig.clone(),
                _cluster: c,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A cluster of its own, for tests that change cluster-wide state.
pub fn fresh(opts: &EmbeddedOptions) -> Result<RunningCluster, String> {
    RunningCluster::start(opts, &|line| eprintln!("[testcluster] {line}"))
        .map_err(|e| e.to_string())
}

/// Skip (return None after printing why) or, when required, panic with the reason.
pub fn shared_or_skip(test: &str) -> Option<&'static SharedCluster> {
    match shared() {
        Ok(c) => Some(c),
        Err(reason) => skip(test, &reason),
    }
}

/// This process's cluster with a real node loaded with the aiconform image, started on
/// first use; or skip (see [`skip`]) saying why there is none.
pub fn real_node_or_skip(test: &str) -> Option<&'static RunningCluster> {
    static CLUSTER: OnceLock<Result<RunningCluster, String>> = OnceLock::new();
    let c = CLUSTER.get_or_init(|| {
        let opts = real_node_options();
        if !opts
            .image_archives
            .iter()
            .any(|p| p.to_string_lossy().contains("aiconform-v"))
        {
            return Err(
                "no aiconform image in target/image (build it with ci/image/build.sh)".into(),
            );
        }
        let c = fresh(&opts)?;
        match &c.real_node {
            Ok(_) => Ok(c),
            Err(reason) => Err(format!("the cluster has no real node: {reason}")),
        }
    });
    match c {
        Ok(c) => Some(c),
        Err(reason) => skip(test, reason),
    }
}

/// Create namespace `name` (a test's own, on a cluster of its own); panics on failure.
pub async fn create_namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_string());
    kube::Api::<Namespace>::all(client.clone())
        .create(&kube::api::PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}

/// Report a skipped cluster test; fatal when `AICONFORM_REQUIRE_CLUSTER=1`.
pub fn skip<T>(test: &str, reason: &str) -> Option<T> {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: embedded cluster required ({REQUIRE_ENV}=1) but unavailable: {reason}");
    }
    eprintln!("SKIP {test}: embedded test cluster unavailable: {reason}");
    None
}
