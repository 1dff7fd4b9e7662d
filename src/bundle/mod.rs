//! Bundles: a recipe rendered into deployable artifacts.
//!
//! [`render`] is pure: recipe + [`BundleOptions`] → [`Bundle`] (files in memory). The I/O is
//! at the edges: [`Bundle::write_to`] (temp dir beside the target, then rename),
//! [`Bundle::to_tar_gz`] (deterministic archive) and [`verify`] (a directory against its
//! `bundle.yaml`).
//!
//! Layout, components numbered in deployment order:
//!
//! ```text
//! bundle.yaml            recipe digest, tool version, options, components, every file's SHA-256
//! recipe.yaml            the recipe rendered
//! README.md              what is in the bundle and how to deploy, verify, undeploy it
//! checksums.sha256       `sha256sum -c` list of every file but bundle.yaml
//! deploy.sh undeploy.sh  (helm deployer)
//! argocd/app-of-apps.yaml, argocd/applications/NN-name.yaml   (argocd deployer)
//! argocd-helm/{app-of-apps.yaml,Chart.yaml,values.yaml,templates/NN-name.yaml}   (argocd-helm)
//! kustomization.yaml, flux/NN-name.yaml   (flux deployer)
//! helmfile.yaml          (helmfile deployer)
//! NN-name/values.yaml    chart values with node placement injected (Helm components)
//! NN-name/manifests/*    extra manifests, applied with server-side apply
//! NN-name/kustomize/kustomization.yaml   (Kustomize components)
//! NN-name/README.md      what, version, source, install/uninstall, health checks
//! NN-name/checksums.sha256
//! charts/<chart>-<version>.tgz, charts/provenance.yaml   (--vendor-charts: helm, helmfile)
//! bundle.yaml.sig        (signed bundles) cosign-compatible signature of bundle.yaml
//! ```
//!
//! Bundles also travel as OCI artifacts ([`oci`]): the same tar.gz as one layer, so the
//! same recipe gives the same digest.

mod argocd;
mod argocd_helm;
mod error;
mod flux;
mod fs;
mod helmfile;
pub mod manifests;
mod model;
pub mod oci;
mod options;
pub mod placement;
mod planned;
mod readme;
mod render;
mod scripts;
pub mod sign;
pub mod vendor;

use std::collections::BTreeMap;

pub use argocd::REPO_PLACEHOLDER as ARGOCD_REPO_PLACEHOLDER;
pub use error::BundleError;
pub use fs::{
    FileProblem, SignatureState, VerifyReport, check_bundle_path, read_manifest, temp_dir, verify,
    verify_signature,
};
pub use model::{
    BUNDLE_FILE, BundleComponent, BundleManifest, ChartLocation, FileEntry, Placement, RecipeRef,
    recipe_digest, sha256_hex,
};
pub use options::{
    Deployer, TaintEffect, Toleration, TolerationOperator, parse_selector, parse_selectors,
};
pub use render::{HEALTH_KINDS, render, render_with_charts};
pub use scripts::sh_quote;

/// A rendered text file: bundle path and content.
type RenderedText = (String, String);

/// How to render a bundle. `Default` gives no node placement and the Helm deployer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BundleOptions {
    /// Pins system workloads (operators, controllers) to these node labels.
    pub system_node_selector: BTreeMap<String, String>,
    /// Pins per-GPU-node workloads (GPU Operator daemonsets, DRA kubelet plugin, ...).
    pub accelerated_node_selector: BTreeMap<String, String>,
    /// Lets per-GPU-node workloads onto tainted GPU nodes.
    pub accelerated_tolerations: Vec<Toleration>,
    pub deployer: Deployer,
    /// Git repository the Argo CD Applications (or Flux's GitRepository) read the bundle
    /// from; a placeholder ([`ARGOCD_REPO_PLACEHOLDER`]) when `None`. Unused by the Helm and
    /// helmfile deployers.
    pub argocd_repo_url: Option<String>,
    /// One component at a time: each depends on the one before it in deployment order,
    /// instead of only on its recipe dependencies.
    pub serial: bool,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    pub content: Vec<u8>,
    pub executable: bool,
}

/// A rendered bundle: relative paths (with `/`) to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub files: BTreeMap<String, BundleFile>,
}

impl Bundle {
    /// The parsed `bundle.yaml` of this bundle.
    pub fn manifest(&self) -> Result<BundleManifest, BundleError> {
        let f = self
            .files
            .get(BUNDLE_FILE)
            .ok_or_else(|| BundleError::NotABundle {
                dir: "(in memory)".into(),
                reason: format!("no {BUNDLE_FILE}"),
            })?;
        Ok(crate::yaml::from_slice(&f.content, BUNDLE_FILE)?)
    }
}
