//! `aiconform submission check`: a PRODUCT.yaml judged the way the program's CI
//! (`cncf/k8s-ai-conformance:scripts/validate.go`) and its instructions judge it, offline.
//!
//! Rules: the version comes from the `vX.Y/` directory in the path; every category and
//! requirement id of that checklist is present with `description` and `level` unchanged;
//! `status` is Implemented, Not Implemented, Partially Implemented or N/A; a MUST is
//! Implemented; N/A has notes; a SHOULD with empty status and evidence is skipped; evidence
//! entries are http(s) URLs (checked for form), files that exist in the product directory, or
//! `file://<path>#<Test>` links to test artifacts (hybrid verification, see
//! [`super::artifacts`]: inside the product directory, and the named test present and not
//! failed); required metadata is present, a string, not empty and not a `[...]` placeholder
//! (camelCase or snake_case keys); `k8sConformanceUrl` has the required form (the CI requires
//! it even where the template lacks it: every template but 1.35's, 1.37 included).
//!
//! Not checked offline: whether URLs answer (`--online` follows them, see [`super::online`]).
//! `vendorName` is checked against a CNCF members list only when one is given
//! ([`check_vendor`]). A layered product (notes starting `Layer: `) providing no requirement
//! of its own gets a warning (the program's FAQ on layered products).
//! A conditional MUST declared N/A with notes is a note, not a problem: the program's FAQ
//! allows it for platforms where the requirement's context does not apply, while
//! `validate.go` flags every non-Implemented MUST, so a reviewer decides.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::product::{is_k8s_conformance_url, is_placeholder, url_problem};
use crate::conformance::catalog::{self, Level};
use crate::conformance::version::Version;

const STATUSES: [&str; 4] = [
    "Implemented",
    "Not Implemented",
    "Partially Implemented",
    "N/A",
];

/// Metadata fields the CI knows, in the template's order, and whether each is required.
const METADATA: [(&str, &str, bool); 11] = [
    ("kubernetesVersion", "kubernetes_version", true),
    ("platformName", "platform_name", true),
    ("platformVersion", "platform_version", true),
    ("vendorName", "vendor_name", true),
    ("websiteUrl", "website_url", true),
    ("repoUrl", "repo_url", false),
    ("documentationUrl", "documentation_url", true),
    ("productLogoUrl", "product_logo_url", true),
    ("description", "description", true),
    ("contactEmailAddress", "contact_email_address", true),
    ("k8sConformanceUrl", "k8s_conformance_url", true),
];

/// An http(s) URL of a submission and where it sits in the YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub path: String,
    pub url: String,
}

/// One finding, at its path in the YAML (`spec.security[0].status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The PRODUCT.yaml checked.
    pub file: PathBuf,
    pub version: Option<Version>,
    /// Each makes the submission fail.
    pub problems: Vec<Finding>,
    /// Worth a reviewer's attention, not a failure.
    pub notes: Vec<Finding>,
    /// The well-formed http(s) URLs of the submission, for `--online`.
    pub links: Vec<Link>,
    /// Whether [`Self::links`] were followed (their failures are in `problems`).
    pub online: bool,
    /// Not a failure by the CI's rules, but likely one in review.
    pub warnings: Vec<Finding>,
    /// The members list `vendorName` was checked against; `None`: not checked.
    pub members: Option<String>,
    /// `metadata.vendorName` as submitted.
    pub vendor_name: Option<String>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The PRODUCT.yaml of `path` (a product directory or the file itself).
pub fn product_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(super::write::PRODUCT_FILE)
    } else {
        path.to_path_buf()
    }
}

/// The `vX.Y` directory in a path, as the CI finds it (the first `vX.Y/` segment).
pub fn version_in_path(path: &Path) -> Option<(u32, u32)> {
    let comps: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            _ => None,
        })
        .collect();
    comps[..comps.len().saturating_sub(1)].iter().find_map(|c| {
        let (a, b) = c.strip_prefix('v')?.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(a) && digits(b)) {
            return None;
        }
        Some((a.parse().ok()?, b.parse().ok()?))
    })
}

/// Check the submission at `path` (a product directory or its PRODUCT.yaml).
pub fn check(path: &Path) -> CheckReport {
    let file = product_file(path);
    let mut f = Findings::default();
    let version = check_file(&file, &mut f);
    CheckReport {
        file,
        version,
        problems: f.problems,
        notes: f.notes,
        links: f.links,
        online: false,
        warnings: f.warnings,
        members: None,
        vendor_name: f.vendor_name,
    }
}

/// Check `vendorName` against the CNCF member names (exact match, as the CI does);
/// `origin` names the list.
pub fn check_vendor(
    report: &mut CheckReport,
    members: &std::collections::BTreeSet<String>,
    origin: &Path,
) {
    report.members = Some(origin.display().to_string());
    let Some(vendor) = report.vendor_name.as_deref().map(str::trim) else {
        return;
    };
    if vendor.is_empty() || members.contains(vendor) {
        return;
    }
    let close: Vec<&str> = members
        .iter()
        .filter(|m| {
            m.eq_ignore_ascii_case(vendor)
                || m.starts_with(vendor)
                || vendor.starts_with(m.as_str())
        })
        .map(String::as_str)
        .take(3)
        .collect();
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(" (close: {})", close.join(", "))
    };
    report.problems.push(Finding {
        path: "metadata.vendorName".into(),
        message: format!(
            "'{vendor}' does not match any CNCF member in {}{hint}; the program's CI requires the organization name exactly as listed at https://landscape.cncf.io/members",
            origin.display()
        ),
    });
}

fn check_file(file: &Path, f: &mut Findings) -> Option<Version> {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let Some((major, minor)) = version_in_path(file).or_else(|| version_in_path(&abs)) else {
        f.problem(
            "(path)",
            format!(
                "cannot determine the version from {}; a submission lives in vX.Y/<product>/PRODUCT.yaml",
                file.display()
            ),
        );
        return None;
    };
    let version = Version::new(major, minor);
    let Some(checklist) = catalog::checklist(version) else {
        f.problem(
            "(path)",
            format!(
                "no AI conformance checklist for v{version}; known: {}",
                crate::conformance::version::known_list()
            ),
        );
        return None;
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            f.problem("(file)", format!("cannot read {}: {e}", file.display()));
            return Some(version);
        }
    };
    let doc: Value = match crate::yaml::from_str(&text, &file.display().to_string()) {
        Ok(v) => v,
        Err(e) => {
            f.problem("(file)", e.to_string());
            return Some(version);
        }
    };
    let product_dir = file.parent().unwrap_or(Path::new("."));
    check_metadata(doc.get("metadata"), checklist, f);
    check_spec(doc.get("spec"), checklist, product_dir, f);
    check_layers(doc.get("spec"), f);
    Some(version)
}

#[derive(Default)]
struct Findings {
    problems: Vec<Finding>,
    notes: Vec<Finding>,
    links: Vec<Link>,
    warnings: Vec<Finding>,
    vendor_name: Option<String>,
}

impl Findings {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }
    fn link(&mut self, path: impl Into<String>, url: &str) {
        self.links.push(Link {
            path: path.into(),
            url: url.to_string(),
        });
    }
    fn note(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.notes.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }
}

fn check_metadata(metadata: Option<&Value>, checklist: &catalog::Checklist, f: &mut Findings) {
    let Some(Value::Object(m)) = metadata.filter(|v| !v.is_null()) else {
        f.problem("metadata", "missing 'metadata' section");
        return;
    };
    f.vendor_name = ["vendorName", "vendor_name"]
        .iter()
        .find_map(|k| m.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    for (field, snake, required) in METADATA {
        let (key, value) = match (m.get(field), m.get(snake)) {
            (Some(v), _) if !v.is_null() => (field, v),
            (_, Some(v)) if !v.is_null() => (snake, v),
            _ => {
                if required {
                    let why = if checklist.template_has(field) {
                        String::new()
                    } else {
                        format!(
                            "; the v{} template does not have it, but the program's CI (validate.go) requires it: add {field}: https://github.com/cncf/k8s-conformance/tree/master/vX.Y/<product> (your Kubernetes conformance submission)",
                            checklist.version
                        )
                    };
                    f.problem(
                        format!("metadata.{field}"),
                        format!("missing metadata field {field} (or {snake}){why}"),
                    );
                }
                continue;
            }
        };
        let path = format!("metadata.{key}");
        let Some(s) = value.as_str() else {
            f.problem(path, "is not a string");
            continue;
        };
        if s.is_empty() {
            if required {
                f.problem(path, "is empty");
            }
        } else if is_placeholder(s) {
            f.problem(path, format!("has placeholder value: {s}"));
        } else if field == "k8sConformanceUrl" {
            if is_k8s_conformance_url(s) {
                f.link(path, s);
            } else {
                f.problem(
                    path,
                    format!("invalid format: {s}; expected https://github.com/cncf/k8s-conformance/tree/master/v{{version}}/{{product}}"),
                );
            }
        } else if s.starts_with("http") {
            match url_problem(s) {
                Some(p) => f.problem(path, format!("invalid URL: {p}")),
                None => f.link(path, s),
            }
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn check_spec(
    spec: Option<&Value>,
    checklist: &catalog::Checklist,
    product_dir: &Path,
    f: &mut Findings,
) {
    let Some(Value::Object(spec)) = spec.filter(|v| !v.is_null()) else {
        f.problem("spec", "missing 'spec' section");
        return;
    };
    for cat in &checklist.categories {
        let cat_path = format!("spec.{}", cat.name);
        let Some(list) = spec.get(&cat.name) else {
            f.problem(&cat_path, format!("missing spec category: {}", cat.name));
            continue;
        };
        let Some(list) = list.as_array() else {
            f.problem(&cat_path, "must be a list of requirements");
            continue;
        };
        for req in &cat.requirements {
            // Like the CI, a later entry with the same id wins.
            let Some((i, entry)) = list
                .iter()
                .enumerate()
                .rev()
                .find(|(_, e)| e.get("id").and_then(Value::as_str) == Some(req.id.as_str()))
            else {
                f.problem(
                    &cat_path,
                    format!(
                        "missing requirement '{}' in category '{}'",
                        req.id, cat.name
                    ),
                );
                continue;
            };
            let at = |k: &str| format!("{cat_path}[{i}].{k}");
            if str_of(entry, "description") != req.description {
                f.problem(
                    at("description"),
                    format!(
                        "'{}' differs from the published checklist; id, description and level must be submitted unchanged",
                        req.id
                    ),
                );
            }
            if str_of(entry, "level") != req.level.as_str() {
                f.problem(
                    at("level"),
                    format!(
                        "'{}' must stay {} as published (found '{}')",
                        req.id,
                        req.level,
                        str_of(entry, "level")
                    ),
                );
            }
            let status = str_of(entry, "status");
            let evidence: Vec<&Value> = match entry.get("evidence") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(a)) => a.iter().collect(),
                Some(_) => {
                    f.problem(at("evidence"), "must be a list of URLs or files");
                    vec![]
                }
            };
            if req.level == Level::Should && status.is_empty() && evidence.is_empty() {
                continue;
            }
            if !STATUSES.contains(&status) {
                f.problem(
                    at("status"),
                    format!(
                        "invalid status '{status}' for '{}'; must be one of {}",
                        req.id,
                        STATUSES.join(", ")
                    ),
                );
            }
            let notes = str_of(entry, "notes");
            if req.level == Level::Must && status != "Implemented" {
                if req.conditional && status == "N/A" && !notes.is_empty() {
                    f.note(
                        at("status"),
                        format!(
                            "'{}' is a conditional MUST declared N/A ({notes}); the program's FAQ allows N/A where the requirement's context does not apply, validate.go flags it, so a reviewer decides",
                            req.id
                        ),
                    );
                } else {
                    f.problem(
                        at("status"),
                        format!(
                            "requirement '{}' is MUST level but status is '{status}'; it must be 'Implemented'",
                            req.id
                        ),
                    );
                }
            }
            if status == "N/A" && notes.is_empty() {
                f.problem(
                    at("notes"),
                    format!("notes required for '{}' when status is N/A", req.id),
                );
            }
            for (j, link) in evidence.iter().enumerate() {
                let path = format!("{}[{j}]", at("evidence"));
                let Some(link) = link.as_str() else {
                    f.problem(path, "must be a URL or a file path");
                    continue;
                };
                if link.is_empty() {
                    continue;
                }
                if link.starts_with("file://") {
                    check_file_link(link, &req.id, status, product_dir, &path, f);
                } else if link.starts_with("http://") || link.starts_with("https://") {
                    match url_problem(link) {
                        Some(p) => {
                            f.problem(path, format!("invalid evidence URL for '{}': {p}", req.id))
                        }
                        None => f.link(path, link),
                    }
                } else if !product_dir.join(link).exists() {
                    f.problem(
                        path,
                        format!(
                            "invalid evidence file for '{}': {link} (not found at {})",
                            req.id,
                            product_dir.join(link).display()
                        ),
                    );
                }
            }
        }
    }
}

/// `(vX.Y, <product>)` of a product directory, for links written from the repository root.
fn product_names(product_dir: &Path) -> Option<(String, String)> {
    let abs = std::path::absolute(product_dir).ok()?;
    let name = abs.file_name()?.to_string_lossy().to_string();
    let version = abs.parent()?.file_name()?.to_string_lossy().to_string();
    Some((version, name))
}

/// A `file://` evidence link: inside the product directory and present; a test artifact the
/// CI parses must parse and hold the named test, not failed (nor skipped when the
/// requirement is Implemented: a skip proves nothing).
fn check_file_link(
    link: &str,
    id: &str,
    status: &str,
    product_dir: &Path,
    path: &str,
    f: &mut Findings,
) {
    use super::artifacts::{self, Outcome};
    let names = product_names(product_dir);
    let parsed =
        artifacts::parse_file_link(link, names.as_ref().map(|(v, n)| (v.as_str(), n.as_str())));
    let fl = match parsed {
        Ok(fl) => fl,
        Err(e) => {
            f.problem(path, format!("invalid evidence link for '{id}': {e}"));
            return;
        }
    };
    let file = product_dir.join(&fl.path);
    if !file.is_file() {
        f.problem(
            path,
            format!(
                "evidence link for '{id}' names {}, which is not in the submission (looked at {})",
                fl.path,
                file.display()
            ),
        );
        return;
    }
    let Some(tests) = artifacts::read(product_dir, &fl) else {
        return;
    };
    let tests = match tests {
        Ok(t) => t,
        Err(e) => {
            f.problem(path, format!("evidence link for '{id}': {e}"));
            return;
        }
    };
    let Some(name) = &fl.test else {
        f.note(
            path,
            format!(
                "evidence link for '{id}' names no #Test in {}; the CI checks the test it maps to the requirement",
                fl.path
            ),
        );
        return;
    };
    let found = artifacts::matching(&tests, name);
    if found.is_empty() {
        f.problem(
            path,
            format!(
                "evidence link {link} for '{id}': case '{name}' does not exist in {}",
                fl.path
            ),
        );
        return;
    }
    for t in &found {
        match t.outcome {
            Outcome::Failed => f.problem(
                path,
                format!(
                    "evidence link {link} for '{id}': case '{}' failed in {}; the CI refuses evidence whose test failed",
                    t.name, fl.path
                ),
            ),
            Outcome::Skipped if status == "Implemented" => f.problem(
                path,
                format!(
                    "evidence link {link} for '{id}': case '{}' was skipped in {}, which does not prove 'Implemented'",
                    t.name, fl.path
                ),
            ),
            _ => {}
        }
    }
}

/// A layered product (notes starting `Layer: `) should provide at least one requirement of
/// its own: an add-on that replaces, extends or adds it.
fn check_layers(spec: Option<&Value>, f: &mut Findings) {
    use super::product::{LAYER_NOTE, OWN_MARKERS};
    let Some(Value::Object(spec)) = spec else {
        return;
    };
    let notes: Vec<&str> = spec
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .map(|e| str_of(e, "notes"))
        .collect();
    if !notes.iter().any(|n| n.starts_with(LAYER_NOTE)) {
        return;
    }
    if !notes
        .iter()
        .any(|n| n.starts_with(LAYER_NOTE) && OWN_MARKERS.iter().any(|m| n.contains(m)))
    {
        f.warnings.push(Finding {
            path: "spec".into(),
            message: "a layered product whose notes name no requirement of its own: no add-on replaces, extends or adds one; the program's FAQ wants a layered product to contribute at least one (e.g. another gang scheduler) and to reference its base's AI conformance".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_directory() {
        assert_eq!(
            version_in_path(Path::new("out/v1.34/acme/PRODUCT.yaml")),
            Some((1, 34))
        );
        assert_eq!(
            version_in_path(Path::new("v1.35/x/PRODUCT.yaml")),
            Some((1, 35))
        );
        assert_eq!(version_in_path(Path::new("out/acme/PRODUCT.yaml")), None);
        assert_eq!(version_in_path(Path::new("v1.34")), None);
    }
}
