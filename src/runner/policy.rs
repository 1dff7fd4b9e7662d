//! Pure run policy: retries, phase gating, namespace names.

use std::time::Duration;

use super::case::{CaseSpec, Phase};
use super::result::{CaseResult, Status};
use crate::duration::format as format_duration;

/// Attempts a case gets at most: 1, plus `retries` for cases declared flaky.
pub fn max_attempts(spec: &CaseSpec) -> u32 {
    if spec.flaky { 1 + spec.retries } else { 1 }
}

/// Whether to run another attempt after `attempt` (1-based) ended with `status`. Only
/// failures of flaky cases are retried; skips, passes and interruptions are final.
pub fn should_retry(spec: &CaseSpec, attempt: u32, status: Status) -> bool {
    status == Status::Failed && attempt < max_attempts(spec)
}

/// The failure message of a case that ran out of time.
pub fn timeout_message(timeout: Duration) -> String {
    format!(
        "timed out after {}; raise `timeout` in the suite file if the cluster is slow",
        format_duration(timeout)
    )
}

/// Phases whose failure makes later phases pointless (nothing to test on a cluster that is
/// not ready or not deployed).
pub fn gates_later_phases(phase: Phase) -> bool {
    matches!(phase, Phase::Readiness | Phase::Deployment)
}

/// The skip reason for later phases after `phase` produced `results`, if any failed.
pub fn gate_reason(phase: Phase, results: &[&CaseResult]) -> Option<String> {
    if !gates_later_phases(phase) {
        return None;
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| r.spec.id.as_str())
        .collect();
    if failed.is_empty() {
        return None;
    }
    let shown: Vec<&str> = failed.iter().take(3).copied().collect();
    let more = if failed.len() > 3 {
        format!(" and {} more", failed.len() - 3)
    } else {
        String::new()
    };
    Some(format!(
        "{phase} phase failed: {}{more}; rerun with --keep-going to run later phases anyway",
        shown.join(", ")
    ))
}

/// `aiconform-<case>-<suffix>`: a valid namespace name (DNS label, at most 63 characters).
pub fn namespace_name(case_name: &str, suffix: &str) -> String {
    let mut slug: String = case_name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let slug = slug.trim_matches('-');
    let budget = 63 - "aiconform-".len() - 1 - suffix.len();
    let slug = slug[..slug.len().min(budget)].trim_end_matches('-');
    if slug.is_empty() {
        format!("aiconform-{suffix}")
    } else {
        format!("aiconform-{slug}-{suffix}")
    }
}

/// A label value (at most 63 characters of `[a-z0-9A-Z._-]`, alphanumeric at both ends).
pub fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::result::Attempt;
    use std::sync::Arc;

    fn spec(flaky: bool, retries: u32) -> CaseSpec {
        CaseSpec {
            id: "s/c".into(),
            suite: "s".into(),
            name: "c".into(),
            phase: Phase::Deployment,
            description: String::new(),
            params: serde_json::json!({}),
            timeout: Duration::from_secs(1),
            retries,
            flaky,
            needs_namespace: false,
            requirement: None,
        }
    }

    #[test]
    fn retries_only_for_flaky_failures() {
        let s = spec(true, 2);
        assert_eq!(max_attempts(&s), 3);
        assert!(should_retry(&s, 1, Status::Failed));
        assert!(should_retry(&s, 2, Status::Failed));
        assert!(!should_retry(&s, 3, Status::Failed));
        assert!(!should_retry(&s, 1, Status::Skipped));
        assert!(!should_retry(&s, 1, Status::Interrupted));
        assert!(!should_retry(&s, 1, Status::Passed));
        let s = spec(false, 5);
        assert_eq!(max_attempts(&s), 1);
        assert!(!should_retry(&s, 1, Status::Failed));
    }

    #[test]
    fn flaky_pass_is_marked() {
        let a = |status, msg: &str| Attempt {
            status,
            message: msg.into(),
            duration: Duration::from_secs(1),
            failure: (status == Status::Failed).then_some(super::super::result::Failure::Assertion),
        };
        let r = CaseResult::from_attempts(
            Arc::new(spec(true, 2)),
            vec![a(Status::Failed, "boom"), a(Status::Passed, "ok")],
        );
        assert_eq!(r.status, Status::Passed);
        assert!(r.is_flaky());
        assert_eq!(r.retries(), 1);
        assert_eq!(r.message, "flaky: passed on attempt 2; ok");
        assert_eq!(r.duration, Duration::from_secs(2));
        let r = CaseResult::from_attempts(
            Arc::new(spec(true, 1)),
            vec![a(Status::Failed, "boom"), a(Status::Failed, "bang")],
        );
        assert_eq!(r.status, Status::Failed);
        assert!(!r.is_flaky());
        assert_eq!(r.message, "failed all 2 attempts; last: bang");
    }

    #[test]
    fn gating() {
        let s = Arc::new(spec(false, 0));
        let failed = CaseResult::not_run(s.clone(), Status::Failed, "x");
        let passed = CaseResult::not_run(s.clone(), Status::Passed, "x");
        assert_eq!(
            gate_reason(Phase::Deployment, &[&passed, &failed]).as_deref(),
            Some(
                "deployment phase failed: s/c; rerun with --keep-going to run later phases anyway"
            )
        );
        assert_eq!(gate_reason(Phase::Deployment, &[&passed]), None);
        assert_eq!(gate_reason(Phase::Conformance, &[&failed]), None);
        let many = vec![&failed; 5];
        assert!(
            gate_reason(Phase::Readiness, &many)
                .unwrap()
                .contains("s/c, s/c, s/c and 2 more")
        );
    }

    #[test]
    fn timeout_text() {
        assert!(timeout_message(Duration::from_secs(90)).starts_with("timed out after 1m30s"));
    }

    #[test]
    fn namespace_names_are_dns_labels() {
        assert_eq!(
            namespace_name("dra-support", "x1y2z"),
            "aiconform-dra-support-x1y2z"
        );
        assert_eq!(
            namespace_name("K8s.server.version", "abcde"),
            "aiconform-k8s-server-version-abcde"
        );
        let long = namespace_name(&"a".repeat(100), "abcde");
        assert_eq!(long.len(), 63);
        assert!(!namespace_name("--x--", "abcde").contains("--"));
        assert_eq!(namespace_name("...", "abcde"), "aiconform-abcde");
        assert_eq!(
            label_value("conformance/dra-support"),
            "conformance_dra-support"
        );
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }
}
