//! Tolerant version parsing for constraint comparisons.
//!
//! Real-world version strings are not semver: Kubernetes reports `v1.34.2-eks-a737599`,
//! kernels `6.8.0-1015-aws`, drivers `580.95.05`, distributions `22.04`. A [`Version`] is the
//! run of numeric parts at the start of such a string (after an optional `v`), split on `.`,
//! `-`, `+`, `_` and `~`, stopping at the first part that is not a number. Versions compare
//! part by part; missing parts count as zero, so `1.34` == `1.34.0` and
//! `6.8.0-1015-aws` > `6.8.0`.

use std::cmp::Ordering;
use std::fmt;

/// The numeric parts of a version string. See the module docs for the parsing rules.
#[derive(Debug, Clone)]
pub struct Version {
    parts: Vec<u64>,
}

impl Version {
    /// Parse `text`; `None` when it does not start (after an optional `v`) with a number.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t
            .strip_prefix('v')
            .or_else(|| t.strip_prefix('V'))
            .unwrap_or(t);
        if !t.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let mut parts = Vec::new();
        for token in t.split(['.', '-', '+', '_', '~']) {
            let digits: &str = &token[..token
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(token.len())];
            if digits.is_empty() {
                break;
            }
            // More than 19 digits cannot be a version component; treat as the end.
            let Ok(n) = digits.parse::<u64>() else { break };
            parts.push(n);
            if digits.len() != token.len() {
                // `0rc1`: keep the leading number, stop at the suffix.
                break;
            }
        }
        if parts.is_empty() {
            None
        } else {
            Some(Version { parts })
        }
    }

    pub fn parts(&self) -> &[u64] {
        &self.parts
    }

    /// True when `self` starts with every part of `prefix` (`1.34.2` starts with `1.34`);
    /// missing parts of `self` count as zero (`1.34` starts with `1.34.0`).
    pub fn has_prefix(&self, prefix: &Version) -> bool {
        prefix
            .parts
            .iter()
            .enumerate()
            .all(|(i, p)| self.parts.get(i).copied().unwrap_or(0) == *p)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.parts.len().max(other.parts.len());
        for i in 0..n {
            let a = self.parts.get(i).copied().unwrap_or(0);
            let b = other.parts.get(i).copied().unwrap_or(0);
            match a.cmp(&b) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self.parts.iter().map(u64::to_string).collect();
        f.write_str(&s.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_real_world_versions() {
        let cases: &[(&str, &[u64])] = &[
            ("1.34.2", &[1, 34, 2]),
            ("v1.34.2", &[1, 34, 2]),
            ("V1.30", &[1, 30]),
            ("v1.34.2-eks-abc", &[1, 34, 2]),
            ("v1.30.4-eks-a737599", &[1, 30, 4]),
            ("v1.30.5-gke.1014001", &[1, 30, 5]),
            ("6.8.0-1015-aws", &[6, 8, 0, 1015]),
            ("5.15.0-1063-nvidia", &[5, 15, 0, 1063]),
            ("580.95.05", &[580, 95, 5]),
            ("22.04", &[22, 4]),
            ("2.2.0rc1", &[2, 2, 0]),
            ("12", &[12]),
            (" 1.2.3 ", &[1, 2, 3]),
            ("1.2.3+build.7", &[1, 2, 3]),
        ];
        for (text, parts) in cases {
            assert_eq!(v(text).parts(), *parts, "{text}");
        }
    }

    #[test]
    fn rejects_non_versions() {
        for s in [
            "",
            "v",
            "abc",
            "NVIDIA H100",
            "Ubuntu 24.04",
            "-1",
            ".5",
            "true",
        ] {
            assert!(Version::parse(s).is_none(), "{s:?} should not parse");
        }
    }

    #[test]
    fn huge_component_does_not_panic() {
        assert_eq!(v("1.99999999999999999999999").parts(), &[1]);
    }

    #[test]
    fn compares_numerically_with_zero_padding() {
        assert!(v("1.10") > v("1.9"));
        assert_eq!(v("1.34"), v("1.34.0"));
        assert!(v("6.8.0-1015-aws") > v("6.8.0"));
        assert!(v("6.8.0-1015-aws") < v("6.8.0-1016-aws"));
        assert!(v("580.95.05") == v("580.95.5"));
        assert!(v("v1.34.2-eks-abc") == v("1.34.2"));
        assert!(v("24.04") > v("22.04"));
    }

    #[test]
    fn prefix_match() {
        assert!(v("1.34.2").has_prefix(&v("1.34")));
        assert!(!v("1.35.0").has_prefix(&v("1.34")));
        assert!(v("1.34").has_prefix(&v("1.34.0")));
        assert!(!v("1.34").has_prefix(&v("1.34.1")));
    }
}
