//! `/etc/os-release` parsing (freedesktop format) and the fallback from a Node's
//! `nodeInfo.osImage` when no agent ran.

use std::collections::BTreeMap;

/// Parse os-release text: `KEY=value` lines, values optionally in single or double quotes
/// (double-quoted values honour `\"`, `\\`, `\$` and `` \` `` escapes). Blank lines,
/// comments and malformed lines are skipped; later keys override earlier ones.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(value) = unquote(raw.trim()) {
            out.insert(key.to_string(), value);
        }
    }
    out
}

fn unquote(raw: &str) -> Option<String> {
    let mut chars = raw.chars();
    match chars.next() {
        Some('"') => {
            let mut out = String::new();
            let mut escaped = false;
            for c in chars {
                if escaped {
                    if !matches!(c, '"' | '\\' | '$' | '`') {
                        out.push('\\');
                    }
                    out.push(c);
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    return Some(out);
                } else {
                    out.push(c);
                }
            }
            None // unterminated
        }
        Some('\'') => {
            let rest = &raw[1..];
            rest.find('\'').map(|end| rest[..end].to_string())
        }
        _ => {
            // Unquoted: up to an inline comment.
            let v = raw.split(" #").next().unwrap_or(raw).trim();
            Some(v.to_string())
        }
    }
}

/// Best-effort os-release facts from `nodeInfo.osImage` (e.g. `Ubuntu 24.04.1 LTS`), used
/// when no agent report is available. Only `PRETTY_NAME` is certain; `ID` and `VERSION_ID`
/// are derived for distributions whose image names are well known.
pub fn from_os_image(os_image: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let image = os_image.trim();
    if image.is_empty() {
        return out;
    }
    out.insert("PRETTY_NAME".into(), image.to_string());
    let lower = image.to_ascii_lowercase();
    let first_version = image
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()));
    let (id, version) = if lower.starts_with("ubuntu ") {
        // /etc/os-release has VERSION_ID="24.04" for "Ubuntu 24.04.1 LTS".
        let v = first_version.map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."));
        ("ubuntu", v)
    } else if lower.starts_with("red hat enterprise linux") {
        ("rhel", first_version.map(str::to_string))
    } else if lower.starts_with("amazon linux") {
        // "Amazon Linux 2023.6.20241010" → 2023; "Amazon Linux 2" → 2.
        (
            "amzn",
            first_version
                .and_then(|v| v.split('.').next())
                .map(str::to_string),
        )
    } else if lower.starts_with("container-optimized os") {
        ("cos", None)
    } else if lower.starts_with("rocky linux") {
        ("rocky", first_version.map(str::to_string))
    } else if lower.starts_with("debian gnu/linux") {
        ("debian", first_version.map(str::to_string))
    } else {
        return out;
    };
    out.insert("ID".into(), id.to_string());
    if let Some(v) = version {
        out.insert("VERSION_ID".into(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_comments_and_escapes() {
        let text = r#"
# a comment
NAME="Ubuntu"
VERSION_ID="24.04"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME='Ubuntu 24.04.1 LTS'
  # indented comment
ESCAPED="say \"hi\" \$HOME \\ \n"
UNQUOTED=value # trailing comment
not a line
bad-key=x
EMPTY=
UNTERMINATED="oops
"#;
        let m = parse(text);
        assert_eq!(m["NAME"], "Ubuntu");
        assert_eq!(m["VERSION_ID"], "24.04");
        assert_eq!(m["ID"], "ubuntu");
        assert_eq!(m["PRETTY_NAME"], "Ubuntu 24.04.1 LTS");
        assert_eq!(m["ESCAPED"], r#"say "hi" $HOME \ \n"#);
        assert_eq!(m["UNQUOTED"], "value");
        assert_eq!(m["EMPTY"], "");
        assert!(!m.contains_key("bad-key"));
        assert!(!m.contains_key("UNTERMINATED"));
        assert_eq!(m.len(), 8, "{m:?}");
    }

    #[test]
    fn later_keys_override() {
        assert_eq!(parse("ID=a\nID=b\n")["ID"], "b");
    }

    #[test]
    fn os_image_fallback() {
        let u = from_os_image("Ubuntu 24.04.1 LTS");
        assert_eq!(u["ID"], "ubuntu");
        assert_eq!(u["VERSION_ID"], "24.04");
        assert_eq!(u["PRETTY_NAME"], "Ubuntu 24.04.1 LTS");
        let r = from_os_image("Red Hat Enterprise Linux 9.4 (Plow)");
        assert_eq!(
            (r["ID"].as_str(), r["VERSION_ID"].as_str()),
            ("rhel", "9.4")
        );
        let a = from_os_image("Amazon Linux 2023.6.20241010");
        assert_eq!(
            (a["ID"].as_str(), a["VERSION_ID"].as_str()),
            ("amzn", "2023")
        );
        let c = from_os_image("Container-Optimized OS from Google");
        assert_eq!(c["ID"], "cos");
        assert!(!c.contains_key("VERSION_ID"));
        let other = from_os_image("Talos (v1.8.0)");
        assert_eq!(other.len(), 1);
        assert!(from_os_image("  ").is_empty());
    }
}
