//! Which CNCF AI conformance checklist applies: one per Kubernetes minor version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Kubernetes `major.minor` for which the program publishes a checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

/// A version that cannot select a checklist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("`{0}` is not a Kubernetes minor version; write it like 1.34 (or v1.34)")]
    Syntax(String),
    #[error(
        "Kubernetes {0} has no CNCF AI conformance checklist; aiconform knows {known}",
        known = known_list()
    )]
    Unsupported(Version),
}

/// The versions whose checklists are built in, oldest first.
pub const SUPPORTED: [Version; 5] = [
    Version::new(1, 33),
    Version::new(1, 34),
    Version::new(1, 35),
    Version::new(1, 36),
    Version::new(1, 37),
];

/// `1.33, 1.34, 1.35, 1.36, 1.37`, for messages.
pub fn known_list() -> String {
    SUPPORTED
        .iter()
        .map(Version::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Self {
        Version { major, minor }
    }

    /// `1.34`, `v1.34`, or a server `gitVersion` such as `v1.34.4+k3s1` (patch ignored).
    pub fn parse_loose(text: &str) -> Result<Version, VersionError> {
        let syntax = || VersionError::Syntax(text.to_string());
        let t = text.trim();
        let t = t.strip_prefix('v').unwrap_or(t);
        let mut parts = t.split('.');
        let major = parts.next().and_then(leading_number).ok_or_else(syntax)?;
        let minor = parts.next().and_then(leading_number).ok_or_else(syntax)?;
        Ok(Version::new(major, minor))
    }

    /// A version with a built-in checklist.
    pub fn supported(self) -> Result<Version, VersionError> {
        if SUPPORTED.contains(&self) {
            Ok(self)
        } else {
            Err(VersionError::Unsupported(self))
        }
    }

    /// `v1.34`: the directory name the program uses for submissions.
    pub fn dir_name(self) -> String {
        format!("v{self}")
    }
}

/// Digits at the start of `s` (`34+k3s1` -> 34), none if it starts otherwise.
fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = VersionError;

    /// Exactly `1.34` or `v1.34`, and only a supported version.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().strip_prefix('v').unwrap_or(s.trim());
        let ok = t.split('.').count() == 2
            && t.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(VersionError::Syntax(s.to_string()));
        }
        Version::parse_loose(t)?.supported()
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flag_values_and_server_versions() {
        assert_eq!("1.34".parse::<Version>().unwrap(), Version::new(1, 34));
        assert_eq!("v1.36".parse::<Version>().unwrap(), Version::new(1, 36));
        assert!(matches!(
            "1.32".parse::<Version>(),
            Err(VersionError::Unsupported(_))
        ));
        assert!(matches!(
            "1.34.1".parse::<Version>(),
            Err(VersionError::Syntax(_))
        ));
        assert!(matches!(
            "latest".parse::<Version>(),
            Err(VersionError::Syntax(_))
        ));
        assert_eq!(
            Version::parse_loose("v1.34.4+k3s1").unwrap(),
            Version::new(1, 34)
        );
        assert_eq!(Version::parse_loose("1.35+").unwrap(), Version::new(1, 35));
        let e = Version::new(1, 32).supported().unwrap_err().to_string();
        assert_eq!(
            e,
            "Kubernetes 1.32 has no CNCF AI conformance checklist; aiconform knows 1.33, 1.34, 1.35, 1.36, 1.37"
        );
        assert_eq!(Version::new(1, 35).dir_name(), "v1.35");
    }
}
