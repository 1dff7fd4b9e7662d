//! The verdict of moving each component from one stack to another. Pure.
//!
//! Per component, in order:
//! - only in the target: `safe` (a fresh install); only in the source: `manual` (deploy
//!   never uninstalls; remove it by hand);
//! - same version: `safe`;
//! - a version that does not parse, a downgrade, no record, or a version outside the
//!   releases the record reviewed: `unknown`, with the steps known so far listed;
//! - otherwise the worst step of every rule and boundary crossed (`blocked` > `manual`), or
//!   `safe` when none is crossed.
//!
//! A component whose identity moves (namespace, chart, source or type) is never `safe`:
//! the upgrade is really an uninstall and an install, so `safe` becomes `unknown`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::{ChangeLevel, Step, UpgradeRecord};
use crate::version::Version;

/// A component as deployed (or to be deployed): what an upgrade moves from and to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    pub name: String,
    pub version: String,
    pub namespace: String,
    /// Chart name (Helm components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Chart repository or OCI location; unknown when read from release records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `Helm`, `Kustomize`, `Manifest`; unknown when read from release records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Safe,
    Manual,
    Blocked,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Manual => "manual",
            Verdict::Blocked => "blocked",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Movement {
    Added,
    Removed,
    Unchanged,
    Upgrade,
    Downgrade,
    /// Versions that cannot be ordered.
    Changed,
}

impl Movement {
    pub fn as_str(self) -> &'static str {
        match self {
            Movement::Added => "added",
            Movement::Removed => "removed",
            Movement::Unchanged => "unchanged",
            Movement::Upgrade => "upgrade",
            Movement::Downgrade => "downgrade",
            Movement::Changed => "changed",
        }
    }
}

/// One reason behind a verdict, with the release note it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Reason {
    fn plain(text: impl Into<String>) -> Reason {
        Reason {
            text: text.into(),
            source: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentUpgrade {
    pub component: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub change: Movement,
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub safe: usize,
    pub manual: usize,
    pub blocked: usize,
    pub unknown: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeReport {
    pub from: String,
    pub to: String,
    pub summary: Summary,
    pub components: Vec<ComponentUpgrade>,
}

impl UpgradeReport {
    pub fn all_safe(&self) -> bool {
        self.components.iter().all(|c| c.verdict == Verdict::Safe)
    }
}

/// What moves with a component besides its version.
fn identity_moves(a: &Deployed, b: &Deployed) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut moved = |what: &str, x: &Option<String>, y: &Option<String>| {
        if let (Some(x), Some(y)) = (x, y)
            && x != y
        {
            out.push(Reason::plain(format!(
                "{what} moves from {x} to {y}: an uninstall and a fresh install, not an upgrade"
            )));
        }
    };
    moved(
        "namespace",
        &Some(a.namespace.clone()),
        &Some(b.namespace.clone()),
    );
    moved("chart", &a.chart, &b.chart);
    moved("source", &a.source, &b.source);
    moved("type", &a.kind, &b.kind);
    out
}

/// Whether a rule of `level` applies to the change `from` → `to`.
fn rule_applies(level: ChangeLevel, from: &Version, to: &Version) -> bool {
    let part = |v: &Version, i: usize| v.parts().get(i).copied().unwrap_or(0);
    match level {
        ChangeLevel::Any => from != to,
        ChangeLevel::Major => part(from, 0) != part(to, 0),
        ChangeLevel::Minor => (part(from, 0), part(from, 1)) != (part(to, 0), part(to, 1)),
    }
}

/// The verdict of one component present on both sides.
fn judge(a: &Deployed, b: &Deployed, record: Option<&UpgradeRecord>) -> ComponentUpgrade {
    let moves = identity_moves(a, b);
    let result = |change: Movement, verdict: Verdict, mut reasons: Vec<Reason>| {
        let verdict = if verdict == Verdict::Safe && !moves.is_empty() {
            Verdict::Unknown
        } else {
            verdict
        };
        let mut all = moves.clone();
        all.append(&mut reasons);
        ComponentUpgrade {
            component: b.name.clone(),
            from: Some(a.version.clone()),
            to: Some(b.version.clone()),
            change,
            verdict,
            reasons: all,
        }
    };
    if crate::diff::recipe::same_version(&a.version, &b.version) {
        return result(Movement::Unchanged, Verdict::Safe, Vec::new());
    }
    let (Some(from), Some(to)) = (Version::parse(&a.version), Version::parse(&b.version)) else {
        return result(
            Movement::Changed,
            Verdict::Unknown,
            vec![Reason::plain(format!(
                "cannot order versions {} and {}",
                a.version, b.version
            ))],
        );
    };
    if to < from {
        return result(
            Movement::Downgrade,
            Verdict::Unknown,
            vec![Reason::plain(
                "a downgrade: upgrade records cover upgrades only",
            )],
        );
    }
    let Some(record) = record else {
        return result(
            Movement::Upgrade,
            Verdict::Unknown,
            vec![Reason::plain(format!(
                "no upgrade record for {} (recipes/upgrades/{}.yaml)",
                b.name, b.name
            ))],
        );
    };
    let mut steps: Vec<(Step, Reason)> = Vec::new();
    for rule in &record.rules {
        if rule_applies(rule.change, &from, &to) {
            steps.push((
                rule.verdict,
                Reason {
                    text: rule.reason.clone(),
                    source: Some(rule.source.clone()),
                },
            ));
        }
    }
    for bd in &record.boundaries {
        let Some(v) = Version::parse(&bd.version) else {
            continue;
        };
        if from < v && v <= to {
            steps.push((
                bd.verdict,
                Reason {
                    text: format!("{}: {}", bd.version, bd.reason),
                    source: Some(bd.source.clone()),
                },
            ));
        }
    }
    let reviewed_from = Version::parse(&record.reviewed.from);
    let reviewed_through = Version::parse(&record.reviewed.through);
    let outside =
        reviewed_from.is_some_and(|r| from < r) || reviewed_through.is_some_and(|r| to > r);
    let worst = steps.iter().map(|(s, _)| *s).max();
    let mut reasons: Vec<Reason> = steps.into_iter().map(|(_, r)| r).collect();
    let verdict = match worst {
        Some(Step::Blocked) => Verdict::Blocked,
        _ if outside => {
            reasons.push(Reason::plain(format!(
                "the record reviews releases {} through {} only",
                record.reviewed.from, record.reviewed.through
            )));
            Verdict::Unknown
        }
        Some(Step::Manual) => Verdict::Manual,
        None => Verdict::Safe,
    };
    result(Movement::Upgrade, verdict, reasons)
}

/// The verdict of every component of `from` and `to`, sorted by name. Components of
/// `from` not in `to` are listed only when `include_removed` (a cluster runs releases that
/// no recipe knows).
pub fn check(
    from: &[Deployed],
    to: &[Deployed],
    records: &BTreeMap<String, UpgradeRecord>,
    include_removed: bool,
    from_origin: &str,
    to_origin: &str,
) -> UpgradeReport {
    let before: BTreeMap<&str, &Deployed> = from.iter().map(|d| (d.name.as_str(), d)).collect();
    let after: BTreeMap<&str, &Deployed> = to.iter().map(|d| (d.name.as_str(), d)).collect();
    let mut names: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
    names.sort();
    names.dedup();
    let mut components = Vec::new();
    for name in names {
        match (before.get(name), after.get(name)) {
            (Some(a), Some(b)) => components.push(judge(a, b, records.get(name))),
            (None, Some(b)) => components.push(ComponentUpgrade {
                component: name.to_string(),
                from: None,
                to: Some(b.version.clone()),
                change: Movement::Added,
                verdict: Verdict::Safe,
                reasons: vec![Reason::plain("new component: a fresh install")],
            }),
            (Some(a), None) if include_removed => components.push(ComponentUpgrade {
                component: name.to_string(),
                from: Some(a.version.clone()),
                to: None,
                change: Movement::Removed,
                verdict: Verdict::Manual,
                reasons: vec![Reason::plain(
                    "not in the target: deploy never uninstalls, remove it by hand",
                )],
            }),
            _ => {}
        }
    }
    let mut summary = Summary::default();
    for c in &components {
        match c.verdict {
            Verdict::Safe => summary.safe += 1,
            Verdict::Manual => summary.manual += 1,
            Verdict::Blocked => summary.blocked += 1,
            Verdict::Unknown => summary.unknown += 1,
        }
    }
    UpgradeReport {
        from: from_origin.to_string(),
        to: to_origin.to_string(),
        summary,
        components,
    }
}

/// The report as a table (component, from, to, change, verdict), then each reason with its
/// source, then a summary line.
pub fn render_table(r: &UpgradeReport) -> String {
    let mut out = format!("from: {}\nto:   {}\n\n", r.from, r.to);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = r
        .components
        .iter()
        .map(|c| {
            vec![
                c.component.clone(),
                dash(&c.from),
                dash(&c.to),
                c.change.as_str().to_string(),
                c.verdict.as_str().to_string(),
            ]
        })
        .collect();
    out.push_str(&crate::output::table(
        &["COMPONENT", "FROM", "TO", "CHANGE", "VERDICT"],
        &rows,
    ));
    let explained: Vec<&ComponentUpgrade> = r
        .components
        .iter()
        .filter(|c| c.verdict != Verdict::Safe && !c.reasons.is_empty())
        .collect();
    if !explained.is_empty() {
        out.push('\n');
        for c in explained {
            out.push_str(&format!("{} ({}):\n", c.component, c.verdict.as_str()));
            for reason in &c.reasons {
                out.push_str(&format!("  - {}\n", reason.text));
                if let Some(s) = &reason.source {
                    out.push_str(&format!("    source: {s}\n"));
                }
            }
        }
    }
    out.push_str(&format!(
        "\nupgrade: {} safe, {} manual, {} blocked, {} unknown\n",
        r.summary.safe, r.summary.manual, r.summary.blocked, r.summary.unknown
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::record::{Boundary, Reviewed, Rule};

    fn d(name: &str, version: &str) -> Deployed {
        Deployed {
            name: name.into(),
            version: version.into(),
            namespace: name.into(),
            chart: Some(name.into()),
            source: Some("https://charts.example.com".into()),
            kind: Some("Helm".into()),
        }
    }

    fn record() -> BTreeMap<String, UpgradeRecord> {
        let r = UpgradeRecord {
            api_version: "aiconform.dev/v1alpha1".into(),
            kind: "ComponentUpgrades".into(),
            component: "op".into(),
            reviewed: Reviewed {
                from: "1.0.0".into(),
                through: "4.0.0".into(),
            },
            rules: vec![Rule {
                change: ChangeLevel::Major,
                verdict: Step::Manual,
                reason: "apply the CRDs".into(),
                source: "https://example.com/notes".into(),
            }],
            boundaries: vec![Boundary {
                version: "3.0.0".into(),
                verdict: Step::Blocked,
                reason: "reinstall".into(),
                source: "https://example.com/3".into(),
            }],
            origin: "test".into(),
        };
        BTreeMap::from([("op".to_string(), r)])
    }

    fn verdict(a: &str, b: &str) -> Verdict {
        check(&[d("op", a)], &[d("op", b)], &record(), true, "a", "b").components[0].verdict
    }

    #[test]
    fn verdicts_follow_rules_and_boundaries() {
        assert_eq!(verdict("1.0.0", "1.0.0"), Verdict::Safe);
        assert_eq!(verdict("1.0.0", "1.2.0"), Verdict::Safe);
        assert_eq!(verdict("1.2.0", "2.0.0"), Verdict::Manual);
        assert_eq!(verdict("2.1.0", "3.0.0"), Verdict::Blocked);
        assert_eq!(verdict("3.1.0", "3.0.0"), Verdict::Unknown, "downgrade");
        assert_eq!(verdict("3.1.0", "5.0.0"), Verdict::Unknown, "beyond review");
        assert_eq!(verdict("2.0.0", "5.0.0"), Verdict::Blocked, "known block");
    }

    #[test]
    fn no_record_is_unknown() {
        let r = check(
            &[d("x", "1.0")],
            &[d("x", "1.1")],
            &record(),
            true,
            "a",
            "b",
        );
        assert_eq!(r.components[0].verdict, Verdict::Unknown);
        assert!(
            r.components[0].reasons[0]
                .text
                .contains("no upgrade record")
        );
    }

    #[test]
    fn an_identity_move_is_never_safe() {
        let mut b = d("op", "1.0.0");
        b.namespace = "elsewhere".into();
        let r = check(&[d("op", "1.0.0")], &[b], &record(), true, "a", "b");
        assert_eq!(r.components[0].verdict, Verdict::Unknown);
        assert!(r.components[0].reasons[0].text.contains("namespace moves"));
    }

    #[test]
    fn added_and_removed() {
        let r = check(
            &[d("old", "1")],
            &[d("new", "1")],
            &record(),
            true,
            "a",
            "b",
        );
        let got: Vec<_> = r
            .components
            .iter()
            .map(|c| (c.component.as_str(), c.change, c.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("new", Movement::Added, Verdict::Safe),
                ("old", Movement::Removed, Verdict::Manual)
            ]
        );
        let r = check(&[d("old", "1")], &[], &record(), false, "a", "b");
        assert!(r.components.is_empty());
    }
}
