//! A run's results pushed as an OCI artifact, packed as bundles are.

use std::collections::BTreeMap;

use super::{Contents, FleetError};
use crate::report::results::RunRecord;
use crate::snapshot::configmap as layout;

/// A run's results as an OCI artifact: the stored keys as one deterministic tar.gz layer,
/// packed as bundles are.
pub const RESULTS_ARTIFACT: crate::bundle::oci::ArtifactKind = crate::bundle::oci::ArtifactKind {
    artifact_type: "application/vnd.aiconform.results.v1",
    layer_media_type: "application/vnd.aiconform.results.layer.v1.tar+gzip",
    title: "results.tar.gz",
    what: "aiconform run results",
};

/// The files of the artifact: the reports, `drift.json`, `snapshot.yaml` and `error`, as
/// the ConfigMap holds them.
pub fn artifact_files(contents: &Contents) -> Result<crate::bundle::Bundle, FleetError> {
    let mut files = contents.text_files()?;
    if let Some(s) = &contents.snapshot {
        files.insert(layout::TEXT_KEY.into(), s.clone());
    }
    Ok(crate::bundle::Bundle {
        files: files
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    crate::bundle::BundleFile {
                        content: v.into_bytes(),
                        executable: false,
                    },
                )
            })
            .collect(),
    })
}

/// Push the results to `reference` (`oci://REGISTRY/REPO[:TAG]`), annotated with the member
/// and, when there is one, the run's id and recipe.
pub async fn push_oci(
    contents: &Contents,
    member: &str,
    reference: &str,
    opts: &crate::bundle::oci::RegistryOptions,
) -> Result<crate::bundle::oci::Pushed, FleetError> {
    let files = artifact_files(contents)?;
    let mut annotations: BTreeMap<String, String> =
        [("dev.aiconform.member".to_string(), member.to_string())].into();
    if let Some(text) = contents.reports.get(crate::report::RESULTS_FILE)
        && let Ok(r) = serde_json::from_str::<RunRecord>(text)
    {
        annotations.insert("dev.aiconform.run".into(), r.run_id);
        annotations.insert("dev.aiconform.recipe".into(), r.recipe);
        annotations.insert("dev.aiconform.tool.version".into(), r.tool_version);
    }
    Ok(
        crate::bundle::oci::push_files(&RESULTS_ARTIFACT, &files, &annotations, reference, opts)
            .await?,
    )
}
