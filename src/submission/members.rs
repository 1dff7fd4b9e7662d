//! The CNCF members list `vendorName` must match exactly (`submission check --members FILE`).
//!
//! The program's CI reads the landscape (`cncf/landscape:landscape.yml`): the items of the
//! `CNCF Members` category, with a trailing ` (member)` or ` (supporter)` removed and spaces
//! trimmed. A FILE is either that landscape YAML or a plain list, one name per line (blank
//! lines and `#` comments ignored).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

const CATEGORY: &str = "CNCF Members";
const SUFFIXES: [&str; 2] = [" (member)", " (supporter)"];

#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    #[error("cannot read the members list {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} looks like the CNCF landscape but cannot be read as one: {reason}")]
    Landscape { path: String, reason: String },
    #[error(
        "{path} has no '{CATEGORY}' category; give the landscape.yml of cncf/landscape or a list of names, one per line"
    )]
    NoMembers { path: String },
}

#[derive(Deserialize)]
struct Landscape {
    landscape: Vec<Category>,
}

#[derive(Deserialize)]
struct Category {
    name: String,
    #[serde(default)]
    subcategories: Vec<Subcategory>,
}

#[derive(Deserialize)]
struct Subcategory {
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    name: String,
}

/// A member name as the CI keys it.
fn member_name(raw: &str) -> String {
    let mut name = raw;
    for s in SUFFIXES {
        name = name.strip_suffix(s).unwrap_or(name);
    }
    name.trim().to_string()
}

/// The member names in `text`; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<BTreeSet<String>, MembersError> {
    let is_landscape = text
        .lines()
        .any(|l| l.trim_end() == "landscape:" || l.starts_with("landscape:"));
    if !is_landscape {
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(member_name)
            .collect());
    }
    // Only the fields read here are declared; the landscape's other fields are ignored.
    let data: Landscape = serde_saphyr::from_str(text).map_err(|e| MembersError::Landscape {
        path: origin.into(),
        reason: e.to_string(),
    })?;
    let category = data
        .landscape
        .into_iter()
        .find(|c| c.name == CATEGORY)
        .ok_or_else(|| MembersError::NoMembers {
            path: origin.into(),
        })?;
    Ok(category
        .subcategories
        .into_iter()
        .flat_map(|s| s.items)
        .map(|i| member_name(&i.name))
        .filter(|n| !n.is_empty())
        .collect())
}

pub fn load(path: &Path) -> Result<BTreeSet<String>, MembersError> {
    let text = std::fs::read_to_string(path).map_err(|source| MembersError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landscape_members_without_suffixes() {
        let text = "landscape:\n  - category:\n    name: Provisioning\n    subcategories:\n      - subcategory:\n        name: x\n        items:\n          - item:\n            name: Not A Member\n  - category:\n    name: CNCF Members\n    subcategories:\n      - subcategory:\n        name: Platinum\n        items:\n          - item:\n            name: Acme Corporation (member)\n            homepage_url: https://acme.example\n          - item:\n            name: Beta Inc (supporter)\n";
        let m = parse(text, "landscape.yml").unwrap();
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            ["Acme Corporation", "Beta Inc"]
        );
        let e = parse("landscape:\n  - name: Other\n", "l.yml").unwrap_err();
        assert!(matches!(e, MembersError::NoMembers { .. }), "{e}");
    }

    #[test]
    fn plain_list() {
        let m = parse("# members\nAcme Corporation\n\n  Beta Inc  \n", "m.txt").unwrap();
        assert!(m.contains("Acme Corporation") && m.contains("Beta Inc"));
        assert!(!m.contains("acme corporation"), "exact match only");
    }
}
