//! Comparing two fact trees: every added, removed and changed fact, sorted by path.
//!
//! A subtree present on one side only (a node that joined, a Helm release that was
//! uninstalled) is one change at its own path carrying the whole subtree, not one change per
//! fact under it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::facts::{Tree, child_path, cluster_tree};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

/// One fact (or subtree) that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
    /// Absent when added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Value>,
    /// Absent when removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub total: usize,
}

/// The drift between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDiff {
    /// Where the baseline came from (file or `cm://`), and when it was taken.
    pub base: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_created_at: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_created_at: String,
    pub summary: Summary,
    pub changes: Vec<Change>,
}

impl SnapshotDiff {
    pub fn has_drift(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Every difference between `base` and `target`, sorted by path.
pub fn compare(base: &Tree, target: &Tree) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", base, target, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn walk(path: &str, base: &Tree, target: &Tree, out: &mut Vec<Change>) {
    match (base, target) {
        (Tree::Fields(a), Tree::Fields(b)) | (Tree::Keyed(a), Tree::Keyed(b)) => {
            let keyed = matches!(base, Tree::Keyed(_));
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = child_path(path, k, keyed);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(&p, x, y, out),
                    (Some(x), None) => out.push(Change {
                        path: p,
                        kind: ChangeKind::Removed,
                        base: Some(x.to_value()),
                        target: None,
                    }),
                    (None, Some(y)) => out.push(Change {
                        path: p,
                        kind: ChangeKind::Added,
                        base: None,
                        target: Some(y.to_value()),
                    }),
                    (None, None) => {}
                }
            }
        }
        _ if base == target => {}
        _ => out.push(Change {
            path: path.to_string(),
            kind: ChangeKind::Changed,
            base: Some(base.to_value()),
            target: Some(target.to_value()),
        }),
    }
}

/// The drift between two snapshots; `base_origin`/`target_origin` name where they came from.
pub fn diff_snapshots(
    base: &Snapshot,
    base_origin: &str,
    target: &Snapshot,
    target_origin: &str,
) -> SnapshotDiff {
    let changes = compare(&cluster_tree(&base.cluster), &cluster_tree(&target.cluster));
    let mut summary = Summary::default();
    for c in &changes {
        match c.kind {
            ChangeKind::Added => summary.added += 1,
            ChangeKind::Removed => summary.removed += 1,
            ChangeKind::Changed => summary.changed += 1,
        }
    }
    summary.total = changes.len();
    SnapshotDiff {
        base: base_origin.to_string(),
        base_created_at: base.metadata.created_at.clone(),
        target: target_origin.to_string(),
        target_created_at: target.metadata.created_at.clone(),
        summary,
        changes,
    }
}

/// Longest value shown in a table cell; longer ones are cut with `…`.
const CELL_CHARS: usize = 60;

/// A value as one table cell: scalars as text, subtrees as `{N facts}`, absent as `-`.
pub fn cell(v: Option<&Value>) -> String {
    let text = match v {
        None => return "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(_)) => {
            let n = super::facts::from_value(v.cloned().unwrap_or_default()).leaves();
            return format!("{{{n} fact{}}}", if n == 1 { "" } else { "s" });
        }
        Some(other) => other.to_string(),
    };
    if text.chars().count() > CELL_CHARS {
        let cut: String = text.chars().take(CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The diff as a table (change, path, base, target) followed by a summary line.
pub fn render_table(d: &SnapshotDiff) -> String {
    let mut out = format!(
        "base:   {}{}\ntarget: {}{}\n\n",
        d.base,
        created(&d.base_created_at),
        d.target,
        created(&d.target_created_at)
    );
    if d.changes.is_empty() {
        out.push_str("no drift: every fact is the same\n");
        return out;
    }
    let rows: Vec<Vec<String>> = d
        .changes
        .iter()
        .map(|c| {
            vec![
                c.kind.as_str().to_string(),
                c.path.clone(),
                cell(c.base.as_ref()),
                cell(c.target.as_ref()),
            ]
        })
        .collect();
    out.push_str(&crate::output::table(
        &["CHANGE", "PATH", "BASE", "TARGET"],
        &rows,
    ));
    out.push_str(&format!(
        "\ndrift: {} added, {} removed, {} changed ({} total)\n",
        d.summary.added, d.summary.removed, d.summary.changed, d.summary.total
    ));
    out
}

fn created(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" (taken {at})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::facts::from_value;
    use serde_json::json;

    #[test]
    fn reports_added_removed_and_changed_sorted() {
        let a = from_value(json!({"nodes": [
            {"name": "a", "kernel": "6.8.0", "modules": ["nvidia"]},
            {"name": "b", "kernel": "6.8.0"}
        ]}));
        let b = from_value(json!({"nodes": [
            {"name": "c", "kernel": "6.8.0"},
            {"name": "a", "kernel": "6.8.1", "modules": ["nvidia", "efa"]}
        ]}));
        let got: Vec<(String, ChangeKind)> = compare(&a, &b)
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("nodes[a].kernel".to_string(), ChangeKind::Changed),
                ("nodes[a].modules[efa]".to_string(), ChangeKind::Added),
                ("nodes[b]".to_string(), ChangeKind::Removed),
                ("nodes[c]".to_string(), ChangeKind::Added),
            ]
        );
    }

    #[test]
    fn same_facts_in_another_order_is_no_drift() {
        let a = from_value(json!({"crds": ["x", "y"], "n": [{"name": "a"}, {"name": "b"}]}));
        let b = from_value(json!({"crds": ["y", "x"], "n": [{"name": "b"}, {"name": "a"}]}));
        assert!(compare(&a, &b).is_empty());
    }

    #[test]
    fn a_value_that_becomes_a_map_is_one_change() {
        let a = from_value(json!({"x": "1"}));
        let b = from_value(json!({"x": {"y": "1"}}));
        let c = compare(&a, &b);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, ChangeKind::Changed);
    }

    #[test]
    fn cells_are_short() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!({"a": 1, "b": {"c": 2}}))), "{2 facts}");
        assert_eq!(cell(Some(&json!(8))), "8");
        assert!(cell(Some(&json!("x".repeat(100)))).ends_with('…'));
    }
}
