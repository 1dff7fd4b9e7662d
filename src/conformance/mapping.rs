//! How a run relates cases to requirements: the selected checklist version, the user's
//! not-applicable declarations, and for each case whether it runs (and at which level) or
//! is reported without running.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::{self, Checklist, Requirement};
use super::version::{Version, VersionError, known_list};

/// The conformance side of a run: which checklist the cases report against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConformanceRun {
    pub version: Version,
    /// How the version was chosen, e.g. `--ai-conformance`, `run.yaml`, `cluster v1.34.4`.
    pub source: String,
    /// Requirement id -> the user's reason it does not apply (from the run configuration).
    #[serde(default)]
    pub not_applicable: BTreeMap<String, String>,
}

/// What the mapping says about a case's requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate<'a> {
    /// Part of the checklist: run it and report it at this requirement's level.
    Run(&'a Requirement),
    /// The checklist of this version does not list the requirement.
    NotInChecklist,
    /// The user declared it not applicable, with this reason.
    NotApplicable(&'a Requirement, &'a str),
}

impl ConformanceRun {
    pub fn new(version: Version, source: impl Into<String>) -> Self {
        ConformanceRun {
            version,
            source: source.into(),
            not_applicable: BTreeMap::new(),
        }
    }

    /// The checklist of [`Self::version`] (always built in: versions are checked on parse).
    pub fn checklist(&self) -> &'static Checklist {
        catalog::checklist(self.version)
            .or_else(|| catalog::checklist(super::version::SUPPORTED[0]))
            .expect("built-in checklists")
    }

    pub fn gate(&self, requirement: &str) -> Gate<'_> {
        match self.checklist().get(requirement) {
            None => Gate::NotInChecklist,
            Some(r) => match self.not_applicable.get(requirement) {
                Some(reason) => Gate::NotApplicable(r, reason),
                None => Gate::Run(r),
            },
        }
    }

    /// Why a case proving `requirement` is reported without running, if it is.
    pub fn skip_reason(&self, requirement: &str) -> Option<String> {
        match self.gate(requirement) {
            Gate::Run(_) => None,
            Gate::NotApplicable(_, reason) => Some(not_applicable_message(reason)),
            Gate::NotInChecklist => {
                let others: Vec<String> = catalog::versions_with(requirement)
                    .iter()
                    .map(Version::to_string)
                    .collect();
                Some(format!(
                    "requirement {requirement} is not part of the AI conformance {} checklist (it is in {}); not run",
                    self.version,
                    others.join(", ")
                ))
            }
        }
    }

    /// `MUST`, `MUST (conditional)`, `SHOULD`, or `not in 1.36`.
    pub fn level_label(&self, requirement: &str) -> String {
        match self.checklist().get(requirement) {
            Some(r) => r.level_label(),
            None => format!("not in {}", self.version),
        }
    }
}

/// The report text of a declared not-applicable requirement.
pub fn not_applicable_message(reason: &str) -> String {
    format!("declared not applicable: {reason}")
}

/// The checklist version of a run: `--ai-conformance`, else the run configuration's
/// `aiConformance`, else the cluster's minor version.
pub fn select_version(
    flag: Option<Version>,
    config: Option<(Version, &str)>,
    server: Result<&str, &str>,
) -> Result<ConformanceRun, String> {
    if let Some(v) = flag {
        return Ok(ConformanceRun::new(v, "--ai-conformance"));
    }
    if let Some((v, origin)) = config {
        return Ok(ConformanceRun::new(v, origin.to_string()));
    }
    let choose = format!(
        "pass --ai-conformance with one of {} to choose the checklist",
        known_list()
    );
    let git = server.map_err(|e| {
        format!("cannot tell which AI conformance checklist applies: the cluster's Kubernetes version is unknown ({e}); {choose}")
    })?;
    match Version::parse_loose(git).and_then(Version::supported) {
        Ok(v) => Ok(ConformanceRun::new(v, format!("cluster {git}"))),
        Err(VersionError::Syntax(_)) => Err(format!(
            "cannot tell which AI conformance checklist applies: the cluster reports version `{git}`; {choose}"
        )),
        Err(VersionError::Unsupported(v)) => Err(format!(
            "the cluster runs Kubernetes {git} ({v}); CNCF AI conformance checklists exist for {}; {choose}",
            known_list()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_follow_the_selected_checklist() {
        let mut run = ConformanceRun::new(Version::new(1, 36), "--ai-conformance");
        assert!(matches!(run.gate("gang_scheduling"), Gate::Run(r) if r.id == "gang_scheduling"));
        assert_eq!(
            run.skip_reason("dra_support").unwrap(),
            "requirement dra_support is not part of the AI conformance 1.36 checklist (it is in 1.33, 1.34, 1.35); not run"
        );
        assert_eq!(run.level_label("dra_support"), "not in 1.36");
        run.not_applicable
            .insert("cluster_autoscaling".into(), "on-prem".into());
        assert_eq!(
            run.skip_reason("cluster_autoscaling").unwrap(),
            "declared not applicable: on-prem"
        );
        assert_eq!(run.level_label("cluster_autoscaling"), "MUST (conditional)");
        let run = ConformanceRun::new(Version::new(1, 33), "x");
        assert_eq!(run.level_label("dra_support"), "SHOULD");
        assert_eq!(run.skip_reason("dra_support"), None);
    }

    #[test]
    fn version_selection_order_and_messages() {
        let v34 = Version::new(1, 34);
        let v35 = Version::new(1, 35);
        let r = select_version(Some(v35), Some((v34, "run.yaml")), Ok("v1.33.0")).unwrap();
        assert_eq!((r.version, r.source.as_str()), (v35, "--ai-conformance"));
        let r = select_version(None, Some((v34, "run.yaml")), Ok("v1.33.0")).unwrap();
        assert_eq!((r.version, r.source.as_str()), (v34, "run.yaml"));
        let r = select_version(None, None, Ok("v1.34.4")).unwrap();
        assert_eq!((r.version, r.source.as_str()), (v34, "cluster v1.34.4"));
        let e = select_version(None, None, Ok("v1.31.2")).unwrap_err();
        assert!(e.starts_with("the cluster runs Kubernetes v1.31.2 (1.31); CNCF AI conformance checklists exist for 1.33, 1.34, 1.35, 1.36, 1.37; pass --ai-conformance"), "{e}");
        let e = select_version(None, None, Err("connection refused")).unwrap_err();
        assert!(e.contains("version is unknown (connection refused)"), "{e}");
        let e = select_version(None, None, Ok("weird")).unwrap_err();
        assert!(e.contains("reports version `weird`"), "{e}");
    }
}
