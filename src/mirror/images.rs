//! Container image references found in Kubernetes objects and Helm values. Pure.
//!
//! Two shapes are recognised anywhere in a document:
//! - a string under an `image` key (`containers[].image`, `image: nginx:1.27`), with a
//!   sibling `tag`/`version` appended when the string has none;
//! - a map with a `repository` string (Helm values and operator CRs): `registry/` before it,
//!   an `image` string after it (`repository: nvcr.io/nvidia` + `image: driver`, the GPU
//!   Operator's convention), then `:tag` (`tag` or `version`) or `@digest`.
//!
//! Strings with template syntax, spaces or an empty repository are not image references.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Whether `s` reads as an image reference (`[registry/]path[:tag][@digest]`).
pub fn is_image_ref(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && !s.starts_with(['-', ':', '@', '/', '.'])
        && !s.ends_with([':', '/', '@'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
        && s.chars().any(|c| c.is_ascii_alphabetic())
}

/// Whether a reference carries a tag or digest (`nginx:1.27`, `x@sha256:…`; not
/// `registry:5000/x`).
pub fn is_pinned(image: &str) -> bool {
    image.contains('@')
        || image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

fn text(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        // Numeric tags (`tag: 1.5`) are YAML numbers.
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn with_tag(base: String, m: &Map<String, Value>) -> String {
    if let Some(digest) = text(m, "digest").filter(|d| d.contains(':')) {
        return format!("{base}@{digest}");
    }
    if is_pinned(&base) {
        return base;
    }
    match text(m, "tag").or_else(|| text(m, "version")) {
        Some(tag) => format!("{base}:{tag}"),
        None => base,
    }
}

/// The image a map describes, if any (see the module docs).
fn image_of_map(m: &Map<String, Value>) -> Option<String> {
    if let Some(repo) = text(m, "repository") {
        let mut base = repo;
        if let Some(reg) = text(m, "registry") {
            base = format!("{}/{base}", reg.trim_end_matches('/'));
        }
        if let Some(name) = text(m, "image") {
            base = format!("{}/{name}", base.trim_end_matches('/'));
        }
        return Some(with_tag(base, m));
    }
    let image = text(m, "image")?;
    Some(with_tag(image, m))
}

/// Every image reference in `v`, added to `out`.
pub fn collect(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(image) = image_of_map(m).filter(|i| is_image_ref(i)) {
                out.insert(image);
            }
            for child in m.values() {
                collect(child, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect(item, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn images(v: Value) -> Vec<String> {
        let mut out = BTreeSet::new();
        collect(&v, &mut out);
        out.into_iter().collect()
    }

    #[test]
    fn container_images_in_objects() {
        let deploy = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [{"name": "c", "image": "nvcr.io/nvidia/gpu-operator:v25.10.1"}]
        }}}});
        assert_eq!(
            images(deploy),
            ["busybox:1.36", "nvcr.io/nvidia/gpu-operator:v25.10.1"]
        );
    }

    #[test]
    fn values_shapes() {
        let values = json!({
            "driver": {"repository": "nvcr.io/nvidia", "image": "driver", "version": "580.95.05"},
            "operator": {"image": {"registry": "ghcr.io", "repository": "x/op", "tag": "1.2"}},
            "sidecar": {"image": "quay.io/s/side", "tag": 3},
            "digest": {"repository": "r/x", "digest": "sha256:abc", "tag": "ignored"},
            "templated": {"image": "{{ .Values.x }}"},
            "off": {"image": {"pullPolicy": "Always"}}
        });
        assert_eq!(
            images(values),
            [
                "ghcr.io/x/op:1.2",
                "nvcr.io/nvidia/driver:580.95.05",
                "quay.io/s/side:3",
                "r/x@sha256:abc"
            ]
        );
    }

    #[test]
    fn pinned_references() {
        assert!(is_pinned("nginx:1.27"));
        assert!(is_pinned("x@sha256:abc"));
        assert!(!is_pinned("registry:5000/x"));
        assert!(!is_image_ref("two words"));
        assert!(!is_image_ref("123"));
    }
}
