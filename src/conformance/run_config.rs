//! The run configuration file (`aiconform run --config run.yaml`): what the user declares
//! about the platform rather than what a run observes.
//!
//! ```yaml
//! aiConformance: "1.34"          # checklist to report against (--ai-conformance wins)
//! notApplicable:                 # requirement id -> why its context does not apply
//!   cluster_autoscaling: "on-prem: nodes are bare metal, there is no cluster autoscaler"
//! ```
//!
//! Only requirements whose published text is conditional ("If the platform provides ...")
//! and SHOULDs may be declared not applicable; the reason is carried into every report.
//!
//! In a `kind: AiconformConfig` file ([`crate::config`]) the same keys live in the `run` and
//! `validate` sections ([`RunConfig::load_for`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::catalog::{self, Checklist, Ordered};
use super::version::Version;
use crate::yaml::YamlError;

/// A run configuration file is unreadable or declares something it may not.
#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read run configuration {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {message}; {fix}")]
    Invalid {
        origin: String,
        line: u64,
        message: String,
        fix: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    ai_conformance: Option<Spanned<String>>,
    #[serde(default)]
    not_applicable: Option<Ordered<Spanned<String>>>,
}

/// The run configuration's keys in the `run` and `validate` sections of a
/// `kind: AiconformConfig` file; the sections' other keys are flags, read elsewhere.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InConfig {
    #[serde(default)]
    run: Option<Section>,
    #[serde(default)]
    validate: Option<Section>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Section {
    #[serde(default)]
    not_applicable: Option<Ordered<Spanned<String>>>,
}

/// One `notApplicable` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub requirement: String,
    pub reason: String,
    pub line: u64,
}

/// A parsed run configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// The file it came from, for messages.
    pub origin: String,
    pub ai_conformance: Option<Version>,
    pub not_applicable: Vec<Declaration>,
}

impl RunConfig {
    pub fn load(path: &Path) -> Result<RunConfig, RunConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RunConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The run configuration of `--config FILE` for `command` (run or validate): the file
    /// itself in the older form, else its section for the command (`aiConformance` there is
    /// a flag, applied as --ai-conformance).
    pub fn load_for(
        path: &Path,
        command: crate::config::Section,
    ) -> Result<RunConfig, RunConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RunConfigError::Io {
            path: origin.clone(),
            source,
        })?;
        Self::parse_for(&text, &origin, command)
    }

    /// [`Self::load_for`] on text.
    pub fn parse_for(
        text: &str,
        origin: &str,
        command: crate::config::Section,
    ) -> Result<RunConfig, RunConfigError> {
        use crate::config::{ConfigDocument, Section as Command};
        match crate::config::parse(text, origin)? {
            ConfigDocument::RunConfig => Self::parse(text, origin),
            ConfigDocument::Config(file) => {
                file.section(command)?;
                let sections: InConfig = crate::yaml::from_str(text, origin)?;
                let section = match command {
                    Command::Validate => sections.validate,
                    _ => sections.run,
                };
                let raw = Raw {
                    ai_conformance: None,
                    not_applicable: section.and_then(|s| s.not_applicable),
                };
                Self::from_raw(raw, origin)
            }
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<RunConfig, RunConfigError> {
        let raw: Raw = crate::yaml::from_str(text, origin)?;
        Self::from_raw(raw, origin)
    }

    fn from_raw(raw: Raw, origin: &str) -> Result<RunConfig, RunConfigError> {
        let invalid = |line: u64, message: String, fix: &str| RunConfigError::Invalid {
            origin: origin.to_string(),
            line,
            message,
            fix: fix.to_string(),
        };
        let ai_conformance = match raw.ai_conformance {
            None => None,
            Some(v) => Some(v.value.parse::<Version>().map_err(|e| {
                invalid(
                    v.referenced.line(),
                    format!("aiConformance: {e}"),
                    "write the checklist version as a string, e.g. aiConformance: \"1.34\"",
                )
            })?),
        };
        let mut not_applicable: Vec<Declaration> = Vec::new();
        for (id, reason) in raw.not_applicable.map(|o| o.0).unwrap_or_default() {
            let line = reason.referenced.line();
            if !catalog::known_ids().contains(id.as_str()) {
                return Err(invalid(
                    line,
                    format!("notApplicable: `{id}` is not a CNCF AI conformance requirement id"),
                    &format!(
                        "use one of {}",
                        catalog::known_ids()
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if reason.value.trim().is_empty() {
                return Err(invalid(
                    line,
                    format!("notApplicable: `{id}` has no reason"),
                    "say why the requirement's context does not apply to this platform (e.g. \"on-prem: no cluster autoscaler\"); \"not supported\" is not a valid justification",
                ));
            }
            not_applicable.push(Declaration {
                requirement: id,
                reason: reason.value.trim().to_string(),
                line,
            });
        }
        Ok(RunConfig {
            origin: origin.to_string(),
            ai_conformance,
            not_applicable,
        })
    }

    /// The declarations that hold for `checklist`, by requirement id. A declaration for a
    /// requirement the checklist does not list, or for an unconditional MUST, is an error.
    pub fn not_applicable_for(
        &self,
        checklist: &Checklist,
    ) -> Result<BTreeMap<String, String>, RunConfigError> {
        let mut out = BTreeMap::new();
        for d in &self.not_applicable {
            let invalid = |message: String, fix: String| RunConfigError::Invalid {
                origin: self.origin.clone(),
                line: d.line,
                message,
                fix,
            };
            let Some(req) = checklist.get(&d.requirement) else {
                let in_versions: Vec<String> = catalog::versions_with(&d.requirement)
                    .iter()
                    .map(Version::to_string)
                    .collect();
                return Err(invalid(
                    format!(
                        "notApplicable: `{}` is not a requirement of the AI conformance {} checklist (it is in {})",
                        d.requirement,
                        checklist.version,
                        in_versions.join(", ")
                    ),
                    "remove the entry, or select a checklist that has it with --ai-conformance"
                        .into(),
                ));
            };
            if !req.may_be_not_applicable() {
                let conditional: Vec<&str> = checklist
                    .requirements()
                    .filter(|r| r.may_be_not_applicable())
                    .map(|r| r.id.as_str())
                    .collect();
                return Err(invalid(
                    format!(
                        "notApplicable: `{}` is an unconditional {} requirement of AI conformance {}; it applies to every platform and must be proven",
                        d.requirement, req.level, checklist.version
                    ),
                    format!(
                        "remove the entry; only conditional requirements and SHOULDs can be declared not applicable ({})",
                        conditional.join(", ")
                    ),
                ));
            }
            out.insert(d.requirement.clone(), d.reason.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::catalog::checklist;

    fn v(m: u32) -> &'static Checklist {
        checklist(Version::new(1, m)).unwrap()
    }

    #[test]
    fn declarations_for_conditional_requirements() {
        let c = RunConfig::parse(
            "aiConformance: \"1.35\"\nnotApplicable:\n  cluster_autoscaling: \"on-prem: no cluster autoscaler\"\n  gpu_sharing: no sharable accelerators\n",
            "run.yaml",
        )
        .unwrap();
        assert_eq!(c.ai_conformance, Some(Version::new(1, 35)));
        let na = c.not_applicable_for(v(35)).unwrap();
        assert_eq!(na["cluster_autoscaling"], "on-prem: no cluster autoscaler");
        assert_eq!(na.len(), 2);
    }

    #[test]
    fn unconditional_must_is_refused_with_file_and_line() {
        let c = RunConfig::parse(
            "notApplicable:\n  pod_autoscaling: no HPA on this platform\n  gang_scheduling: we use plain pods\n",
            "run.yaml",
        )
        .unwrap();
        let e = c.not_applicable_for(v(34)).unwrap_err().to_string();
        assert!(
            e.starts_with("run.yaml:3: notApplicable: `gang_scheduling` is an unconditional MUST"),
            "{e}"
        );
        assert!(e.contains("cluster_autoscaling, pod_autoscaling"), "{e}");
        // dra_support is a SHOULD in 1.33 (may be declared), a MUST in 1.34, absent in 1.36.
        let c = RunConfig::parse("notApplicable:\n  dra_support: x\n", "run.yaml").unwrap();
        assert!(c.not_applicable_for(v(33)).is_ok());
        assert!(
            c.not_applicable_for(v(34))
                .unwrap_err()
                .to_string()
                .contains("unconditional MUST")
        );
        let e = c.not_applicable_for(v(36)).unwrap_err().to_string();
        assert!(
            e.contains(
                "not a requirement of the AI conformance 1.36 checklist (it is in 1.33, 1.34, 1.35)"
            ),
            "{e}"
        );
    }

    #[test]
    fn malformed_files() {
        let e = RunConfig::parse("notApplicable:\n  autoscaling: x\n", "r.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("r.yaml:2:") && e.contains("use one of accelerator_metrics"),
            "{e}"
        );
        let e = RunConfig::parse("notApplicable:\n  pod_autoscaling: \"  \"\n", "r.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no reason"), "{e}");
        let e = RunConfig::parse("aiConformance: \"1.31\"\n", "r.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("r.yaml:1: aiConformance: Kubernetes 1.31 has no"),
            "{e}"
        );
        let e = RunConfig::parse("notApplicabel: {}\n", "r.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("notApplicabel"), "{e}");
    }

    #[test]
    fn both_forms_of_the_file() {
        use crate::config::Section;
        let old = "notApplicable:\n  gpu_sharing: none here\n";
        let c = RunConfig::parse_for(old, "r.yaml", Section::Validate).unwrap();
        assert_eq!(c.not_applicable[0].requirement, "gpu_sharing");
        let new = "apiVersion: aiconform.dev/v1alpha1\nkind: AiconformConfig\nrun:\n  reportDir: r\n  notApplicable:\n    gpu_sharing: none here\n    autoscaling: x\nvalidate: {}\n";
        let e = RunConfig::parse_for(new, "c.yaml", Section::Run)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.yaml:7: notApplicable: `autoscaling`"),
            "{e}"
        );
        let c = RunConfig::parse_for(new, "c.yaml", Section::Validate).unwrap();
        assert!(c.not_applicable.is_empty());
        let e = RunConfig::parse_for(
            "apiVersion: aiconform.dev/v1alpha1\nkind: AiconformConfig\nrecipe: {}\n",
            "c.yaml",
            Section::Run,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("has no `run` section (it has: recipe)"), "{e}");
    }
}
