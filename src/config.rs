//! The configuration file of `--config FILE`: one YAML document with a section per command,
//! whose keys are the command's long flags in camelCase.
//!
//! ```yaml
//! apiVersion: aiconform.dev/v1alpha1
//! kind: AiconformConfig
//! recipe:
//!   service: eks
//!   accelerator: h100
//!   set: ["gpuoperator:driver.version=580.95.05"]
//! run:
//!   reportDir: report
//!   phase: [conformance]
//!   notApplicable:
//!     cluster_autoscaling: "on-prem: no cluster autoscaler"
//! ```
//!
//! A command reads its own section, as if each key had been given as its flag; flags on the
//! command line win. The flags themselves (names, kinds, help) are supplied by the caller
//! ([`Flag`]), so this module stays independent of the argument parser. A document without
//! `kind` is the older run configuration ([`crate::conformance::run_config`]), which `run`
//! and `validate` still read as it is.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use serde_saphyr::Spanned;

use crate::yaml::YamlError;

pub const API_VERSION: &str = "aiconform.dev/v1alpha1";
pub const KIND: &str = "AiconformConfig";

/// A command that reads a section of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Section {
    Snapshot,
    Recipe,
    Bundle,
    Deploy,
    Validate,
    #[default]
    Run,
}

impl Section {
    pub const ALL: [Section; 6] = [
        Section::Snapshot,
        Section::Recipe,
        Section::Bundle,
        Section::Deploy,
        Section::Validate,
        Section::Run,
    ];

    /// The command's name, which is also the section's key.
    pub fn name(self) -> &'static str {
        match self {
            Section::Snapshot => "snapshot",
            Section::Recipe => "recipe",
            Section::Bundle => "bundle",
            Section::Deploy => "deploy",
            Section::Validate => "validate",
            Section::Run => "run",
        }
    }

    pub fn from_command(name: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Keys of the section that are not flags: the run configuration's declarations.
    pub fn extra_keys(self) -> &'static [&'static str] {
        match self {
            Section::Validate | Section::Run => &[NOT_APPLICABLE],
            _ => &[],
        }
    }
}

/// The run configuration's not-applicable declarations, a key of the run and validate
/// sections (see [`crate::conformance::run_config`]).
pub const NOT_APPLICABLE: &str = "notApplicable";

/// A configuration file is unreadable, malformed, or does not fit the command.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: u64,
        message: String,
    },
    #[error(
        "{origin} has no `{command}` section (it has: {present}); add `{command}:` with the flags of `aiconform {command}`, or leave out --config"
    )]
    NoSection {
        origin: String,
        command: String,
        present: String,
    },
}

/// How a flag takes its value, which decides the YAML value its key accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--flag` alone: `true` or `false`.
    Switch,
    /// `--flag` counted: a non-negative integer.
    Count,
    /// `--flag VALUE` once: a scalar.
    Single,
    /// `--flag VALUE` repeatable: a list of scalars (or one scalar).
    Multiple,
}

/// A long flag of a command, as the argument parser defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag's long name without dashes, e.g. `report-dir`.
    pub long: String,
    pub kind: FlagKind,
    pub help: Option<String>,
    /// The values the flag accepts, when it has a closed set.
    pub values: Vec<String>,
}

impl Flag {
    /// The flag's key in a section: the long name in camelCase (`report-dir` -> `reportDir`).
    pub fn key(&self) -> String {
        key_of(&self.long)
    }
}

/// `report-dir` -> `reportDir`.
pub fn key_of(long: &str) -> String {
    let mut out = String::with_capacity(long.len());
    let mut upper = false;
    for c in long.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Only `kind` and `apiVersion`, to tell the two forms apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    api_version: Option<Spanned<String>>,
}

type RawSection = BTreeMap<String, Spanned<Value>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Raw {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    snapshot: Option<RawSection>,
    #[serde(default)]
    recipe: Option<RawSection>,
    #[serde(default)]
    bundle: Option<RawSection>,
    #[serde(default)]
    deploy: Option<RawSection>,
    #[serde(default)]
    validate: Option<RawSection>,
    #[serde(default)]
    run: Option<RawSection>,
}

/// What a `--config` file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigDocument {
    /// No `kind`: the older run configuration (`aiConformance`, `notApplicable` at top level).
    RunConfig,
    Config(ConfigFile),
}

/// One key of a section with its value and line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub line: u64,
}

/// A parsed `kind: AiconformConfig` file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The file it came from, for messages.
    pub origin: String,
    sections: BTreeMap<Section, Vec<Entry>>,
}

/// Read a `--config` file.
pub fn load(path: &std::path::Path) -> Result<ConfigDocument, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parse a `--config` document: a `kind: AiconformConfig` file, or (no `kind`) the older run
/// configuration.
pub fn parse(text: &str, origin: &str) -> Result<ConfigDocument, ConfigError> {
    let invalid = |line: u64, message: String| ConfigError::Invalid {
        origin: origin.to_string(),
        line,
        message,
    };
    let probe: Probe = crate::yaml::from_str(text, origin)?;
    match (&probe.kind, &probe.api_version) {
        (None, None) => return Ok(ConfigDocument::RunConfig),
        (None, Some(v)) => {
            return Err(invalid(
                v.referenced.line(),
                format!("apiVersion without kind; add `kind: {KIND}`"),
            ));
        }
        (Some(k), _) if k.value != KIND => {
            return Err(invalid(
                k.referenced.line(),
                format!(
                    "kind `{}` is not a configuration file; write `kind: {KIND}`",
                    k.value
                ),
            ));
        }
        (Some(k), None) => {
            return Err(invalid(
                k.referenced.line(),
                format!("kind {KIND} without apiVersion; add `apiVersion: {API_VERSION}`"),
            ));
        }
        (Some(_), Some(v)) if v.value != API_VERSION => {
            return Err(invalid(
                v.referenced.line(),
                format!(
                    "apiVersion `{}` is not supported; write `apiVersion: {API_VERSION}`",
                    v.value
                ),
            ));
        }
        (Some(_), Some(_)) => {}
    }
    let raw: Raw = crate::yaml::from_str(text, origin)?;
    let mut sections = BTreeMap::new();
    for (section, body) in [
        (Section::Snapshot, raw.snapshot),
        (Section::Recipe, raw.recipe),
        (Section::Bundle, raw.bundle),
        (Section::Deploy, raw.deploy),
        (Section::Validate, raw.validate),
        (Section::Run, raw.run),
    ] {
        if let Some(body) = body {
            let entries = body
                .into_iter()
                .map(|(key, v)| Entry {
                    key,
                    line: v.referenced.line(),
                    value: v.value,
                })
                .collect();
            sections.insert(section, entries);
        }
    }
    Ok(ConfigDocument::Config(ConfigFile {
        origin: origin.to_string(),
        sections,
    }))
}

impl ConfigFile {
    /// The sections the file has.
    pub fn sections(&self) -> Vec<Section> {
        self.sections.keys().copied().collect()
    }

    /// The keys of `section`; a file without it is an error naming the ones it has.
    pub fn section(&self, section: Section) -> Result<&[Entry], ConfigError> {
        self.sections
            .get(&section)
            .map(Vec::as_slice)
            .ok_or_else(|| ConfigError::NoSection {
                origin: self.origin.clone(),
                command: section.name().to_string(),
                present: if self.sections.is_empty() {
                    "none".to_string()
                } else {
                    self.sections()
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })
    }

    /// Command-line arguments (`--flag=VALUE`) for the keys of `section`, leaving out the
    /// flags `given(long)` says were on the command line (they win) and the keys that are
    /// not flags ([`Section::extra_keys`]). A key that is not one of `flags` is an error
    /// naming it and its line.
    pub fn arguments(
        &self,
        section: Section,
        flags: &[Flag],
        given: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for entry in self.section(section)? {
            if section.extra_keys().contains(&entry.key.as_str()) {
                continue;
            }
            let Some(flag) = flags.iter().find(|f| f.key() == entry.key) else {
                return Err(self.unknown_key(section, flags, entry));
            };
            if given(&flag.long) {
                continue;
            }
            out.extend(flag_arguments(flag, &entry.value).map_err(|message| {
                ConfigError::Invalid {
                    origin: self.origin.clone(),
                    line: entry.line,
                    message: format!("{}.{}: {message}", section.name(), entry.key),
                }
            })?);
        }
        Ok(out)
    }

    fn unknown_key(&self, section: Section, flags: &[Flag], entry: &Entry) -> ConfigError {
        let mut keys: Vec<String> = flags.iter().map(Flag::key).collect();
        keys.extend(section.extra_keys().iter().map(|k| k.to_string()));
        keys.sort();
        let hint = if entry.key.contains('-') || entry.key.contains('_') {
            format!(
                " (keys are flag names in camelCase: `{}`)",
                key_of(&entry.key.replace('_', "-"))
            )
        } else {
            String::new()
        };
        ConfigError::Invalid {
            origin: self.origin.clone(),
            line: entry.line,
            message: format!(
                "unknown key `{}` in the `{}` section{hint}; `aiconform {}` takes: {}",
                entry.key,
                section.name(),
                section.name(),
                keys.join(", ")
            ),
        }
    }
}

/// A scalar as it would be typed on the command line.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The arguments that give `flag` the value `value`; the error says what the key takes.
pub fn flag_arguments(flag: &Flag, value: &Value) -> Result<Vec<String>, String> {
    let long = &flag.long;
    match flag.kind {
        FlagKind::Switch => match value {
            Value::Bool(true) => Ok(vec![format!("--{long}")]),
            Value::Bool(false) => Ok(Vec::new()),
            _ => Err(format!("is a switch; write true or false, not {value}")),
        },
        FlagKind::Count => match value.as_u64() {
            Some(n) => Ok((0..n).map(|_| format!("--{long}")).collect()),
            None => Err(format!("is a count; write a whole number, not {value}")),
        },
        FlagKind::Single => match scalar(value) {
            Some(v) => Ok(vec![format!("--{long}={v}")]),
            None => Err(format!(
                "takes one value (a string, number or boolean), not {value}"
            )),
        },
        FlagKind::Multiple => {
            let items: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            items
                .into_iter()
                .map(|item| {
                    scalar(item)
                        .map(|v| format!("--{long}={v}"))
                        .ok_or_else(|| {
                            format!(
                                "takes a list of values (strings, numbers or booleans), not {value}"
                            )
                        })
                })
                .collect()
        }
    }
}

fn flag_schema(flag: &Flag) -> Value {
    let one = if flag.values.is_empty() {
        json!({"type": ["string", "number", "boolean"]})
    } else {
        json!({"enum": flag.values})
    };
    let mut schema = match flag.kind {
        FlagKind::Switch => json!({"type": "boolean"}),
        FlagKind::Count => json!({"type": "integer", "minimum": 0}),
        FlagKind::Single => one,
        FlagKind::Multiple => json!({"anyOf": [one, {"type": "array", "items": one}]}),
    };
    let mut description = format!("--{}", flag.long);
    if let Some(help) = &flag.help {
        description = format!("{description}: {help}");
    }
    schema["description"] = Value::String(description);
    schema
}

/// The JSON Schema of the file, from each command's flags.
pub fn schema(commands: &[(Section, Vec<Flag>)]) -> Value {
    let mut properties = Map::new();
    properties.insert("apiVersion".into(), json!({"const": API_VERSION}));
    properties.insert("kind".into(), json!({"const": KIND}));
    for (section, flags) in commands {
        let mut keys: BTreeMap<String, Value> =
            flags.iter().map(|f| (f.key(), flag_schema(f))).collect();
        if section.extra_keys().contains(&NOT_APPLICABLE) {
            keys.insert(
                NOT_APPLICABLE.into(),
                json!({
                    "type": "object",
                    "additionalProperties": {"type": "string", "minLength": 1},
                    "description": "Conditional CNCF AI conformance requirements whose context does not apply to the platform: requirement id -> reason",
                }),
            );
        }
        properties.insert(
            section.name().into(),
            json!({
                "type": "object",
                "additionalProperties": false,
                "description": format!("Flags of `aiconform {}`, by long name in camelCase", section.name()),
                "properties": keys,
            }),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://aiconform.dev/schemas/aiconform-config.v1alpha1.json",
        "title": KIND,
        "description": "aiconform --config FILE: a section per command whose keys are the command's long flags in camelCase; flags on the command line win",
        "type": "object",
        "additionalProperties": false,
        "required": ["apiVersion", "kind"],
        "properties": properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> Vec<Flag> {
        let f = |long: &str, kind| Flag {
            long: long.into(),
            kind,
            help: None,
            values: Vec::new(),
        };
        vec![
            f("service", FlagKind::Single),
            f("report-dir", FlagKind::Single),
            f("set", FlagKind::Multiple),
            f("keep-going", FlagKind::Switch),
            f("verbose", FlagKind::Count),
        ]
    }

    fn file(text: &str) -> ConfigFile {
        match parse(text, "c.yaml").unwrap() {
            ConfigDocument::Config(f) => f,
            other => panic!("{other:?}"),
        }
    }

    const HEAD: &str = "apiVersion: aiconform.dev/v1alpha1\nkind: AiconformConfig\n";

    #[test]
    fn camel_case_keys() {
        assert_eq!(key_of("report-dir"), "reportDir");
        assert_eq!(key_of("set-json"), "setJson");
        assert_eq!(key_of("service"), "service");
    }

    #[test]
    fn section_becomes_arguments_except_given_flags() {
        let f = file(&format!(
            "{HEAD}run:\n  service: eks\n  reportDir: r\n  set: [a:b=1, \"c:d=x\"]\n  keepGoing: true\n  verbose: 2\n  notApplicable:\n    gpu_sharing: none\n"
        ));
        let args = f.arguments(Section::Run, &flags(), |_| false).unwrap();
        assert_eq!(
            args,
            [
                "--keep-going",
                "--report-dir=r",
                "--service=eks",
                "--set=a:b=1",
                "--set=c:d=x",
                "--verbose",
                "--verbose"
            ]
        );
        let args = f
            .arguments(Section::Run, &flags(), |l| l == "service" || l == "set")
            .unwrap();
        assert!(
            !args
                .iter()
                .any(|a| a.contains("service") || a.contains("set="))
        );
    }

    #[test]
    fn scalars_and_switch_off() {
        let flag = &flags()[0];
        assert_eq!(
            flag_arguments(flag, &json!(1.5)).unwrap(),
            ["--service=1.5"]
        );
        assert_eq!(
            flag_arguments(&flags()[2], &json!("x")).unwrap(),
            ["--set=x"]
        );
        assert!(
            flag_arguments(&flags()[3], &json!(false))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unknown_key_names_key_file_and_line() {
        let f = file(&format!("{HEAD}recipe:\n  service: eks\n  servce: gke\n"));
        let e = f
            .arguments(Section::Recipe, &flags(), |_| false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.yaml:5: unknown key `servce` in the `recipe` section"),
            "{e}"
        );
        assert!(e.contains("reportDir, service, set"), "{e}");
        let f = file(&format!("{HEAD}run:\n  report-dir: x\n"));
        let e = f
            .arguments(Section::Run, &flags(), |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("camelCase: `reportDir`"), "{e}");
        // notApplicable belongs to run and validate only.
        let f = file(&format!("{HEAD}recipe:\n  notApplicable: {{}}\n"));
        assert!(f.arguments(Section::Recipe, &flags(), |_| false).is_err());
    }

    #[test]
    fn unknown_section_is_refused_with_its_line() {
        let e = parse(&format!("{HEAD}recipe: {{}}\nrecpie: {{}}\n"), "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml:4:") && e.contains("recpie"), "{e}");
    }

    #[test]
    fn missing_section_names_command_and_present_sections() {
        let f = file(&format!("{HEAD}recipe: {{service: eks}}\nrun: {{}}\n"));
        let e = f.section(Section::Bundle).unwrap_err().to_string();
        assert!(
            e.starts_with("c.yaml has no `bundle` section (it has: recipe, run)"),
            "{e}"
        );
        let e = file(HEAD).section(Section::Run).unwrap_err().to_string();
        assert!(e.contains("(it has: none)"), "{e}");
    }

    #[test]
    fn bad_values_name_section_key_and_line() {
        let f = file(&format!("{HEAD}run:\n  keepGoing: yes please\n"));
        let e = f
            .arguments(Section::Run, &flags(), |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml:4: run.keepGoing: is a switch"), "{e}");
        let f = file(&format!("{HEAD}run:\n  service: [a, b]\n"));
        let e = f
            .arguments(Section::Run, &flags(), |_| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.service: takes one value"), "{e}");
        let f = file(&format!("{HEAD}run:\n  set: [{{a: 1}}]\n"));
        assert!(f.arguments(Section::Run, &flags(), |_| false).is_err());
    }

    #[test]
    fn the_two_forms_and_bad_headers() {
        assert_eq!(
            parse("notApplicable:\n  gpu_sharing: x\n", "r.yaml").unwrap(),
            ConfigDocument::RunConfig
        );
        let e = parse("kind: Recipe\napiVersion: x\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml:1: kind `Recipe`"), "{e}");
        let e = parse("kind: AiconformConfig\napiVersion: v9\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml:2: apiVersion `v9`"), "{e}");
        let e = parse("kind: AiconformConfig\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without apiVersion"), "{e}");
        let e = parse("apiVersion: aiconform.dev/v1alpha1\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without kind"), "{e}");
    }

    #[test]
    fn schema_lists_sections_and_keys() {
        let s = schema(&[(Section::Run, flags()), (Section::Recipe, flags())]);
        assert_eq!(s["properties"]["kind"]["const"], KIND);
        assert_eq!(
            s["properties"]["run"]["properties"]["set"]["anyOf"][1]["type"],
            "array"
        );
        assert!(s["properties"]["run"]["properties"][NOT_APPLICABLE].is_object());
        assert!(s["properties"]["recipe"]["properties"][NOT_APPLICABLE].is_null());
        assert_eq!(s["properties"]["recipe"]["additionalProperties"], false);
    }
}
