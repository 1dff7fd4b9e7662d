//! Kubernetes manifests: multi-document YAML parsed into objects, each checked for
//! `apiVersion`, `kind` and `metadata.name`. Used when rendering (to validate and to know which
//! CRDs a file defines) and when deploying (to apply the objects).

use serde_json::Value;

pub use crate::recipe::manifest_files::MAX_MANIFEST_BYTES;

/// One object of a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub object: Value,
}

impl ManifestObject {
    pub fn is_crd(&self) -> bool {
        self.kind == "CustomResourceDefinition"
            && self.api_version.starts_with("apiextensions.k8s.io/")
    }

    /// `Kind/name` or `Kind namespace/name` for messages.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// Parse a (multi-document) manifest. Empty documents are skipped. Errors are plain messages;
/// callers add the file and component.
pub fn parse(text: &str) -> Result<Vec<ManifestObject>, String> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{} bytes is over the {MAX_MANIFEST_BYTES} byte limit",
            text.len()
        ));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_aliases: 64,
            max_anchors: 64,
            max_events: 1_000_000,
            max_depth: 64,
            max_documents: 1000,
        },
    };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let msg = e.to_string();
            msg.lines().next().unwrap_or(&msg).trim().to_string()
        })?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let n = i + 1;
        let Value::Object(map) = &doc else {
            return Err(format!("document {n} is not a mapping"));
        };
        let field = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_string);
        let api_version = field("apiVersion")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("document {n} has no apiVersion"))?;
        let kind = field("kind")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("document {n} has no kind"))?;
        let meta = map.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("document {n} ({kind}) has no metadata.name"))?
            .to_string();
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push(ManifestObject {
            api_version,
            kind,
            name,
            namespace,
            object: doc,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document() {
        let objs = parse(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\n---\n\
             ---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: bs.example.com}\n",
        )
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[0].describe(), "ConfigMap ns/a");
        assert!(!objs[0].is_crd());
        assert!(objs[1].is_crd());
        assert_eq!(
            objs[1].describe(),
            "CustomResourceDefinition bs.example.com"
        );
    }

    #[test]
    fn rejects_incomplete_objects() {
        assert!(
            parse("kind: ConfigMap\nmetadata: {name: a}\n")
                .unwrap_err()
                .contains("apiVersion")
        );
        assert!(
            parse("apiVersion: v1\nkind: ConfigMap\n")
                .unwrap_err()
                .contains("metadata.name")
        );
        assert!(parse("- a\n").unwrap_err().contains("not a mapping"));
        assert!(parse("a: [unclosed\n").is_err());
    }
}
