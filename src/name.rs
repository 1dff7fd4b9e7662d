//! Kubernetes object names: what the API server accepts (DNS-1123 labels and subdomains) and
//! the random suffixes that keep names of one run apart from another's. Below every stage, so
//! recipe, bundle, snapshot, runner and server share one definition.

use std::hash::{BuildHasher, Hasher};

/// DNS-1123 label: what Kubernetes accepts for names, and safe as a directory name.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// Label value: at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a
/// letter or digit (a fleet member's name labels its result ConfigMap).
pub fn is_label_value(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(ok)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// `len` lowercase alphanumerics from the std random hasher seed, the time and the pid.
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    let mut x = h.finish();
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        out.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
        x /= ALPHABET.len() as u64;
        if x == 0 {
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            x = h.finish();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        assert!(is_label_value("gpu-east_1.a"));
        assert!(!is_label_value(""));
        assert!(!is_label_value("-a"));
        assert!(!is_label_value("a/b"));
        assert!(!is_label_value(&"a".repeat(64)));
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("gpu-operator"));
        assert!(is_dns_label("a1"));
        for bad in ["", "-a", "a-", "A", "a/b", "..", "a_b", &"x".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_dns_subdomain("aiconform.dev"));
        assert!(!is_dns_subdomain("a..b"));
    }

    #[test]
    fn suffixes_are_label_characters_of_the_asked_length() {
        for len in [5, 6, 20] {
            let s = random_suffix(len);
            assert_eq!(s.len(), len);
            assert!(is_dns_label(&s), "{s}");
        }
        assert_ne!(random_suffix(12), random_suffix(12));
    }
}
