//! Upgrade records: `recipes/upgrades/<component>.yaml`, one per component, built into the
//! binary with the recipes (a `--data DIR` with `upgrades/<component>.yaml` replaces one).
//!
//! ```yaml
//! apiVersion: aiconform.dev/v1alpha1
//! kind: ComponentUpgrades
//! component: gpu-operator
//! reviewed: {from: v24.9.0, through: v25.10.1}   # releases whose notes were read
//! rules:                                          # version changes that always need a step
//!   - change: any | minor | major                 # any change / first two parts / first part
//!     verdict: manual | blocked
//!     reason: ...
//!     source: https://...                         # the release note saying so
//! boundaries:                                     # crossing a release needs a step
//!   - version: v25.3.0                            # from < version <= to
//!     verdict: manual | blocked
//!     reason: ...
//!     source: https://...
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::recipe::source::{RecipeFiles, SourceFile};
use crate::version::Version;

pub const UPGRADES_DIR: &str = "upgrades/";
pub const KIND: &str = "ComponentUpgrades";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error(
        "{origin}: no overlay declares component `{component}`; name the file after a component of the recipes"
    )]
    UnknownComponent { origin: String, component: String },
    #[error("{origin} and {other} both hold the upgrade record of `{component}`")]
    Duplicate {
        component: String,
        origin: String,
        other: String,
    },
}

/// A step an upgrade needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Possible with a documented manual step.
    Manual,
    /// Not supported: uninstall and reinstall, or go through an intermediate release.
    Blocked,
}

/// Which version changes a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeLevel {
    /// Any version change.
    Any,
    /// A change of the first two version parts (`25.3.x` → `25.7.x`).
    Minor,
    /// A change of the first version part (`72.x` → `73.x`).
    Major,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reviewed {
    pub from: String,
    pub through: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub change: ChangeLevel,
    pub verdict: Step,
    pub reason: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Boundary {
    pub version: String,
    pub verdict: Step,
    pub reason: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeRecord {
    pub api_version: String,
    pub kind: String,
    pub component: String,
    pub reviewed: Reviewed,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub boundaries: Vec<Boundary>,
    /// Where the record was read from (not part of the file).
    #[serde(skip)]
    pub origin: String,
}

/// Parse and check one record file.
pub fn parse(file: &SourceFile) -> Result<UpgradeRecord, RecordError> {
    let mut r: UpgradeRecord = crate::yaml::from_slice(&file.content, &file.origin)?;
    r.origin = file.origin.clone();
    let invalid = |message: String| RecordError::Invalid {
        origin: file.origin.clone(),
        message,
    };
    if r.kind != KIND || r.api_version != crate::recipe::overlay::API_VERSION {
        return Err(invalid(format!(
            "not an upgrade record (kind `{}`, apiVersion `{}`); expected kind {KIND}, apiVersion {}",
            r.kind,
            r.api_version,
            crate::recipe::overlay::API_VERSION
        )));
    }
    let stem = file
        .origin
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".yaml").or_else(|| f.strip_suffix(".yml")))
        .unwrap_or_default();
    if r.component != stem {
        return Err(invalid(format!(
            "holds the record of `{}` but is named {stem}.yaml; name it {}.yaml",
            r.component, r.component
        )));
    }
    let version = |what: &str, v: &str| {
        Version::parse(v)
            .ok_or_else(|| invalid(format!("{what} `{v}` is not a version (e.g. v25.10.1)")))
    };
    let from = version("reviewed.from", &r.reviewed.from)?;
    let through = version("reviewed.through", &r.reviewed.through)?;
    if from > through {
        return Err(invalid(format!(
            "reviewed.from {} is newer than reviewed.through {}",
            r.reviewed.from, r.reviewed.through
        )));
    }
    let sourced = |what: String, reason: &str, source: &str| {
        if reason.trim().is_empty() {
            return Err(invalid(format!("{what} has no reason")));
        }
        if !source.starts_with("https://") {
            return Err(invalid(format!(
                "{what} needs a source: the https:// URL of the release note that says so"
            )));
        }
        Ok(())
    };
    for (i, rule) in r.rules.iter().enumerate() {
        sourced(format!("rules[{i}]"), &rule.reason, &rule.source)?;
    }
    for (i, b) in r.boundaries.iter().enumerate() {
        version(&format!("boundaries[{i}].version"), &b.version)?;
        sourced(format!("boundaries[{i}]"), &b.reason, &b.source)?;
    }
    Ok(r)
}

/// Every upgrade record of `files`, by component; a later layer replaces an earlier one.
pub fn load(files: &RecipeFiles) -> Result<BTreeMap<String, UpgradeRecord>, RecordError> {
    let mut out: BTreeMap<String, UpgradeRecord> = BTreeMap::new();
    for layer in &files.layers {
        let mut in_layer: BTreeMap<String, String> = BTreeMap::new();
        for (rel, file) in layer {
            if !rel.starts_with(UPGRADES_DIR) || !(rel.ends_with(".yaml") || rel.ends_with(".yml"))
            {
                continue;
            }
            let r = parse(file)?;
            if let Some(other) = in_layer.insert(r.component.clone(), file.origin.clone()) {
                return Err(RecordError::Duplicate {
                    component: r.component,
                    origin: file.origin.clone(),
                    other,
                });
            }
            out.insert(r.component.clone(), r);
        }
    }
    Ok(out)
}

/// Refuse records of components no overlay declares (a misspelt name would never apply).
pub fn check_known(
    records: &BTreeMap<String, UpgradeRecord>,
    declared: &std::collections::BTreeSet<String>,
) -> Result<(), RecordError> {
    match records.values().find(|r| !declared.contains(&r.component)) {
        Some(r) => Err(RecordError::UnknownComponent {
            origin: r.origin.clone(),
            component: r.component.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        let mut rf = RecipeFiles::default();
        rf.push_memory_layer("test", &[(name, text)]);
        rf.get(name).unwrap().clone()
    }

    const HEAD: &str = "apiVersion: aiconform.dev/v1alpha1\nkind: ComponentUpgrades\n";

    #[test]
    fn builtin_records_load() {
        let records = load(&RecipeFiles::builtin()).unwrap();
        for c in [
            "gpu-operator",
            "network-operator",
            "nvidia-dra-driver-gpu",
            "kai-scheduler",
            "kube-prometheus-stack",
        ] {
            assert!(records.contains_key(c), "no record for {c}");
        }
    }

    #[test]
    fn builtin_records_name_declared_components() {
        let files = RecipeFiles::builtin();
        let records = load(&files).unwrap();
        let catalog = crate::recipe::Catalog::load(files).unwrap();
        let declared = crate::recipe::resolve::declared_components(&catalog);
        check_known(&records, &declared).unwrap();
        let mut bad = records.clone();
        let mut r = bad["gpu-operator"].clone();
        r.component = "gpu-operater".into();
        r.origin = "builtin:recipes/upgrades/gpu-operater.yaml".into();
        bad.insert(r.component.clone(), r);
        let e = check_known(&bad, &declared).unwrap_err().to_string();
        assert!(
            e.contains("no overlay declares component `gpu-operater`"),
            "{e}"
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let f = file(
            "upgrades/x.yaml",
            &format!("{HEAD}component: x\nreviewed: [\n"),
        );
        let e = parse(&f).unwrap_err().to_string();
        assert!(e.starts_with("test:upgrades/x.yaml:"), "{e}");
    }

    #[test]
    fn a_step_needs_a_source_url() {
        let f = file(
            "upgrades/x.yaml",
            &format!(
                "{HEAD}component: x\nreviewed: {{from: 1.0.0, through: 2.0.0}}\n\
                 boundaries:\n  - {{version: 2.0.0, verdict: manual, reason: r, source: somewhere}}\n"
            ),
        );
        let e = parse(&f).unwrap_err().to_string();
        assert!(e.contains("boundaries[0] needs a source"), "{e}");
    }

    #[test]
    fn file_name_must_match_component() {
        let f = file(
            "upgrades/y.yaml",
            &format!("{HEAD}component: x\nreviewed: {{from: 1.0.0, through: 2.0.0}}\n"),
        );
        assert!(
            parse(&f)
                .unwrap_err()
                .to_string()
                .contains("name it x.yaml")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let f = file(
            "upgrades/x.yaml",
            &format!("{HEAD}component: x\nreviewed: {{from: 1.0.0, through: 2.0.0}}\nsafe: true\n"),
        );
        assert!(parse(&f).unwrap_err().to_string().contains("safe"));
    }
}
