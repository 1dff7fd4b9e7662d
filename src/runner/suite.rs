//! Suite definitions: `suites/<suite>.yaml`, built into the binary and overridable with
//! `--suites-dir DIR`. This module reads and checks them; [`super::plan`] turns them into
//! cases for a recipe.
//!
//! ```yaml
//! name: conformance            # must equal the file name without .yaml
//! phase: conformance           # readiness | node-health | deployment | conformance | performance
//! description: ...
//! cases:
//!   - name: dra-support        # case id is <suite>/<name>
//!     description: ...
//!     timeout: 3m              # 90s, 2m, 1m30s, 1h (default 5m)
//!     params: {}               # passed to the case as CaseSpec.params
//!     flaky: false             # retried `retries` times (default 1) when it fails
//!     retries: 0
//!     needsNamespace: false    # the runner creates and deletes a namespace for it
//!     validation: nccl.allReduce  # recipe.validation path deep-merged over params
//!     implementation: x        # registered case name (default: name)
//!     expand: perComponent     # one case per recipe component / perConstraint
//!     requirement: gang_scheduling  # CNCF AI conformance requirement id the case proves
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::case::Phase;
use crate::yaml::YamlError;

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/suites");

/// Default per-case timeout when the suite file gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A suite file could not be read or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("{origin}:{line}: {message}; {fix}")]
    Invalid {
        origin: String,
        line: u64,
        message: String,
        fix: String,
    },
    #[error("cannot read suites from {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no suite files (*.yaml) in {0}; point --suites-dir at a directory of suite definitions"
    )]
    Empty(String),
    #[error("suite `{name}` is defined twice: {first} and {second}; remove one")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("unknown suite `{name}`; available: {available}")]
    Unknown { name: String, available: String },
}

/// How a case entry becomes cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Expand {
    /// One case `<suite>/<component>` per recipe component, with `params.component`.
    PerComponent,
    /// One case `<suite>/<constraint>` per recipe constraint, with `params.constraint`.
    PerConstraint,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSuite {
    name: Spanned<String>,
    phase: Phase,
    #[serde(default)]
    description: String,
    cases: Vec<RawCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCase {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    params: Option<serde_json::Value>,
    #[serde(default)]
    flaky: bool,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    needs_namespace: bool,
    #[serde(default)]
    validation: Option<String>,
    #[serde(default)]
    implementation: Option<String>,
    #[serde(default)]
    expand: Option<Expand>,
    #[serde(default)]
    requirement: Option<Spanned<String>>,
}

/// One case entry of a suite file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseDef {
    pub name: String,
    pub description: String,
    pub timeout: Duration,
    /// Always an object.
    pub params: serde_json::Value,
    pub flaky: bool,
    pub retries: u32,
    pub needs_namespace: bool,
    /// Dot path into `recipe.validation` merged over `params`.
    pub validation: Option<String>,
    /// Registered implementation name.
    pub implementation: String,
    pub expand: Option<Expand>,
    /// CNCF AI conformance requirement id the case proves.
    pub requirement: Option<String>,
    /// `file:line` of the entry, for messages.
    pub origin: String,
}

/// A checked suite file.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub phase: Phase,
    pub description: String,
    pub cases: Vec<CaseDef>,
    pub origin: String,
}

/// Every suite available to a run, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SuiteSet {
    pub suites: BTreeMap<String, Suite>,
}

impl SuiteSet {
    /// The suites built into this binary.
    pub fn builtin() -> Result<SuiteSet, SuiteError> {
        let mut files: Vec<(String, String)> = Vec::new();
        for f in BUILTIN.files() {
            let path = f.path().to_string_lossy().to_string();
            if !path.ends_with(".yaml") {
                continue;
            }
            let text = f.contents_utf8().unwrap_or_default().to_string();
            files.push((format!("builtin:suites/{path}"), text));
        }
        Self::from_texts(&files)
    }

    /// Every `*.yaml` file of `dir` (replaces the built-in suites entirely).
    pub fn from_dir(dir: &Path) -> Result<SuiteSet, SuiteError> {
        let io = |source| SuiteError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(SuiteError::Empty(dir.display().to_string()));
        }
        let mut files = Vec::new();
        for p in paths {
            let meta = std::fs::metadata(&p).map_err(|source| SuiteError::Io {
                path: p.display().to_string(),
                source,
            })?;
            if meta.len() > crate::yaml::MAX_YAML_BYTES as u64 {
                return Err(SuiteError::Invalid {
                    origin: p.display().to_string(),
                    line: 1,
                    message: format!("file is {} bytes", meta.len()),
                    fix: "suite files are small; is this the right directory?".into(),
                });
            }
            let text = std::fs::read_to_string(&p).map_err(|source| SuiteError::Io {
                path: p.display().to_string(),
                source,
            })?;
            files.push((p.display().to_string(), text));
        }
        Self::from_texts(&files)
    }

    /// Parse `(origin, text)` pairs. The suite name must equal the file stem.
    pub fn from_texts(files: &[(String, String)]) -> Result<SuiteSet, SuiteError> {
        let mut set = SuiteSet::default();
        for (origin, text) in files {
            let suite = parse_suite(text, origin)?;
            if let Some(prev) = set.suites.get(&suite.name) {
                return Err(SuiteError::Duplicate {
                    name: suite.name.clone(),
                    first: prev.origin.clone(),
                    second: origin.clone(),
                });
            }
            set.suites.insert(suite.name.clone(), suite);
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Result<&Suite, SuiteError> {
        self.suites.get(name).ok_or_else(|| SuiteError::Unknown {
            name: name.to_string(),
            available: self.suites.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

fn stem(origin: &str) -> &str {
    let file = origin.rsplit(['/', '\\']).next().unwrap_or(origin);
    file.strip_suffix(".yaml")
        .or_else(|| file.strip_suffix(".yml"))
        .unwrap_or(file)
}

/// DNS-label-like names: lowercase letters, digits and `-`, not starting or ending with `-`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Parse and check one suite file.
pub fn parse_suite(text: &str, origin: &str) -> Result<Suite, SuiteError> {
    let raw: RawSuite = crate::yaml::from_str(text, origin)?;
    let invalid = |line: u64, message: String, fix: &str| SuiteError::Invalid {
        origin: origin.to_string(),
        line,
        message,
        fix: fix.to_string(),
    };
    let name = raw.name.value.clone();
    let expected = stem(origin);
    if name != expected {
        return Err(invalid(
            raw.name.referenced.line(),
            format!("suite name `{name}` does not match the file name `{expected}.yaml`"),
            "rename the file or the suite so they agree",
        ));
    }
    if !valid_name(&name) {
        return Err(invalid(
            raw.name.referenced.line(),
            format!("invalid suite name `{name}`"),
            "use lowercase letters, digits and `-`",
        ));
    }
    let mut cases: Vec<CaseDef> = Vec::new();
    for c in raw.cases {
        let line = c.name.referenced.line();
        let cname = c.name.value;
        if !valid_name(&cname) {
            return Err(invalid(
                line,
                format!("invalid case name `{cname}`"),
                "use lowercase letters, digits and `-` (at most 63)",
            ));
        }
        if cases.iter().any(|d| d.name == cname) {
            return Err(invalid(
                line,
                format!("case `{cname}` appears twice in suite `{name}`"),
                "give each case a unique name",
            ));
        }
        let timeout = match &c.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_duration(&t.value).map_err(|why| {
                invalid(
                    t.referenced.line(),
                    format!("case `{cname}`: timeout `{}`: {why}", t.value),
                    "write it like 90s, 2m, 1m30s or 1h",
                )
            })?,
        };
        let params = match c.params {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(v @ serde_json::Value::Object(_)) => v,
            Some(_) => {
                return Err(invalid(
                    line,
                    format!("case `{cname}`: params must be a mapping"),
                    "write params as `key: value` pairs",
                ));
            }
        };
        let retries = match (c.flaky, c.retries) {
            (true, r) => r.unwrap_or(1),
            (false, None | Some(0)) => 0,
            (false, Some(_)) => {
                return Err(invalid(
                    line,
                    format!("case `{cname}` has retries but is not flaky"),
                    "add `flaky: true` (retries only apply to cases declared flaky, and the report marks them) or remove `retries`",
                ));
            }
        };
        let requirement = match c.requirement {
            None => None,
            Some(r) if crate::conformance::catalog::known_ids().contains(r.value.as_str()) => {
                Some(r.value)
            }
            Some(r) => {
                return Err(invalid(
                    r.referenced.line(),
                    format!(
                        "case `{cname}`: `{}` is not a CNCF AI conformance requirement id",
                        r.value
                    ),
                    &format!(
                        "use one of {}",
                        crate::conformance::catalog::known_ids()
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        cases.push(CaseDef {
            requirement,
            implementation: c.implementation.unwrap_or_else(|| cname.clone()),
            name: cname,
            description: c.description,
            timeout,
            params,
            flaky: c.flaky,
            retries,
            needs_namespace: c.needs_namespace,
            validation: c.validation,
            expand: c.expand,
            origin: format!("{origin}:{line}"),
        });
    }
    Ok(Suite {
        name,
        phase: raw.phase,
        description: raw.description,
        cases,
        origin: origin.to_string(),
    })
}

use crate::duration::parse as parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_suites_load() {
        let set = SuiteSet::builtin().unwrap();
        let names: Vec<&str> = set.suites.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "conformance",
                "deployment",
                "fabric",
                "node-health",
                "readiness"
            ],
            "built-in suites"
        );
        let health = set.get("node-health").unwrap();
        assert_eq!(health.phase, Phase::NodeHealth);
        assert_eq!(health.cases.len(), 8);
        assert!(
            health
                .cases
                .iter()
                .all(|c| c.validation.as_deref() == Some("nodeHealth"))
        );
        let conf = set.get("conformance").unwrap();
        assert_eq!(conf.phase, Phase::Conformance);
        assert_eq!(conf.cases.len(), 16);
        assert!(conf.cases.iter().any(|c| c.name == "gang-scheduling"));
        assert_eq!(set.get("fabric").unwrap().phase, Phase::Performance);
        assert_eq!(
            set.get("deployment").unwrap().cases[0].expand,
            Some(Expand::PerComponent)
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("2").unwrap_err().contains("no unit"));
        assert!(parse_duration("2x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
    }

    fn parse(text: &str) -> Result<Suite, SuiteError> {
        parse_suite(text, "suites/demo.yaml")
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        let e =
            parse("name: demo\nphase: conformance\ncases:\n  - name: a\n    timeout: 3 minutes\n")
                .unwrap_err()
                .to_string();
        assert!(e.starts_with("suites/demo.yaml:5:"), "{e}");
        assert!(e.contains("90s, 2m"), "{e}");

        let e = parse("name: other\nphase: conformance\ncases: []\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("suites/demo.yaml:1:") && e.contains("file name"),
            "{e}"
        );

        let e = parse("name: demo\nphase: conformance\ncases:\n  - name: a\n  - name: a\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":5:") && e.contains("twice"), "{e}");

        let e = parse("name: demo\nphase: conformance\ncases:\n  - name: a\n    retries: 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("flaky: true"), "{e}");

        let e = parse("name: demo\nphase: nightly\ncases: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("suites/demo.yaml:2"), "{e}");

        let e = parse("name: demo\nphase: conformance\ncases:\n  - name: a\n    timout: 2m\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timout"), "{e}");
    }

    #[test]
    fn defaults() {
        let s = parse(
            "name: demo\nphase: deployment\ncases:\n  - name: a\n  - name: b\n    flaky: true\n",
        )
        .unwrap();
        assert_eq!(s.cases[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.cases[0].retries, 0);
        assert_eq!(s.cases[0].implementation, "a");
        assert_eq!(s.cases[0].params, serde_json::json!({}));
        assert_eq!(s.cases[1].retries, 1, "flaky defaults to one retry");
        assert_eq!(s.cases[1].origin, "suites/demo.yaml:5");
    }

    #[test]
    fn duplicate_suites_and_unknown_names() {
        let text = "name: demo\nphase: deployment\ncases: []\n".to_string();
        let e = SuiteSet::from_texts(&[
            ("a/demo.yaml".into(), text.clone()),
            ("b/demo.yaml".into(), text),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("defined twice"), "{e}");
        let set = SuiteSet::builtin().unwrap();
        let e = set.get("nope").unwrap_err().to_string();
        assert!(e.contains("available: conformance, deployment"), "{e}");
    }
}
