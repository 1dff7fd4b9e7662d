//! A snapshot's cluster facts as a tree addressed by path.
//!
//! Nodes are compared one by one whatever node classes they were written in, so the tree
//! holds every node's expanded facts under `nodes[<name>]`. Lists become maps keyed by a
//! natural key, so reordering is no change and one added item is one added fact:
//! nodes, device classes and resource slices by name, Helm releases by `namespace/name`,
//! operators by component name, taints by `key:effect`, PCI functions by address, GPUs by
//! PCI address, and lists of plain values (CRDs, kernel modules, notes) by the value itself.
//! A list of objects without such a key is keyed by position.
//!
//! Paths: a field is `.field`, an entry of a keyed map or a key that is not a plain word
//! (labels, capacity, sysctls) is `[key]`: `nodes[gpu-a].capacity[nvidia.com/gpu]`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::snapshot::model::ClusterFacts;

/// A fact tree: leaves hold scalar values; fields and keyed entries hold subtrees.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Leaf(Value),
    /// Struct fields and free-form maps: `.field`, or `[key]` for keys that are not words.
    Fields(BTreeMap<String, Tree>),
    /// Entries of a list keyed by a natural key: always `[key]`.
    Keyed(BTreeMap<String, Tree>),
}

impl Tree {
    /// Number of leaves under this tree.
    pub fn leaves(&self) -> usize {
        match self {
            Tree::Leaf(_) => 1,
            Tree::Fields(m) | Tree::Keyed(m) => m.values().map(Tree::leaves).sum(),
        }
    }

    /// This tree as plain JSON (keyed entries as an object by key).
    pub fn to_value(&self) -> Value {
        match self {
            Tree::Leaf(v) => v.clone(),
            Tree::Fields(m) | Tree::Keyed(m) => {
                Value::Object(m.iter().map(|(k, t)| (k.clone(), t.to_value())).collect())
            }
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The fact tree of a snapshot's cluster facts (metadata such as `createdAt` is not a fact).
pub fn cluster_tree(c: &ClusterFacts) -> Tree {
    let keyed = |items: Vec<(String, Value)>| {
        let mut m = BTreeMap::new();
        for (k, v) in items {
            insert_unique(&mut m, k, from_value(v));
        }
        Tree::Keyed(m)
    };
    let mut root = BTreeMap::new();
    root.insert(
        "serverVersion".into(),
        from_value(to_json(&c.server_version)),
    );
    root.insert(
        "nodes".into(),
        keyed(
            c.nodes
                .iter()
                .map(|n| {
                    let mut v = to_json(n);
                    if let Value::Object(m) = &mut v {
                        m.remove("name");
                    }
                    (n.name.clone(), v)
                })
                .collect(),
        ),
    );
    root.insert(
        "operators".into(),
        keyed(
            c.operators
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    );
    root.insert(
        "helmReleases".into(),
        keyed(
            c.helm_releases
                .iter()
                .map(|r| {
                    let mut v = to_json(r);
                    if let Value::Object(m) = &mut v {
                        m.remove("name");
                        m.remove("namespace");
                    }
                    (format!("{}/{}", r.namespace, r.name), v)
                })
                .collect(),
        ),
    );
    root.insert("crds".into(), from_value(to_json(&c.crds)));
    root.insert(
        "deviceClasses".into(),
        from_value(to_json(&c.device_classes)),
    );
    root.insert(
        "resourceSlices".into(),
        from_value(to_json(&c.resource_slices)),
    );
    root.insert("notes".into(), from_value(to_json(&c.notes)));
    Tree::Fields(root)
}

/// Insert under `key`, or `key#2`, `key#3`… when a list repeats a key.
fn insert_unique(m: &mut BTreeMap<String, Tree>, key: String, t: Tree) {
    let key = match m.entry(key) {
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(t);
            return;
        }
        std::collections::btree_map::Entry::Occupied(e) => e.key().clone(),
    };
    let mut n = 2;
    while m.contains_key(&format!("{key}#{n}")) {
        n += 1;
    }
    m.insert(format!("{key}#{n}"), t);
}

/// The natural key of a list item: see the module docs.
fn item_key(item: &Value) -> Option<String> {
    let obj = item.as_object()?;
    let s = |k: &str| obj.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let (Some(k), Some(e)) = (s("key"), s("effect")) {
        return Some(format!("{k}:{e}"));
    }
    s("name")
        .or_else(|| s("address"))
        .or_else(|| s("pciAddress"))
        .or_else(|| s("uuid"))
        .map(str::to_string)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON value as a fact tree (objects as fields, lists keyed).
pub fn from_value(v: Value) -> Tree {
    match v {
        Value::Object(m) => Tree::Fields(m.into_iter().map(|(k, v)| (k, from_value(v))).collect()),
        Value::Array(items) => {
            let mut m = BTreeMap::new();
            let all_scalar = items.iter().all(|i| !i.is_object() && !i.is_array());
            for (index, item) in items.into_iter().enumerate() {
                let key = if all_scalar {
                    scalar_text(&item)
                } else {
                    item_key(&item).unwrap_or_else(|| index.to_string())
                };
                insert_unique(&mut m, key, from_value(item));
            }
            Tree::Keyed(m)
        }
        scalar => Tree::Leaf(scalar),
    }
}

/// Whether `key` can be written as `.key`.
fn is_word(key: &str) -> bool {
    key.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `parent` extended by one step into a map of the given kind.
pub fn child_path(parent: &str, key: &str, keyed: bool) -> String {
    if keyed || !is_word(key) {
        format!("{parent}[{key}]")
    } else if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_keyed_by_natural_key_or_value() {
        let t = from_value(json!({
            "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "present"}],
            "modules": ["nvidia", "efa"],
            "devices": [{"model": "H100", "pciAddress": "0000:53:00.0"}],
            "loose": [{"a": 1}, {"a": 2}]
        }));
        let Tree::Fields(m) = &t else { panic!() };
        let keys = |k: &str| match &m[k] {
            Tree::Keyed(e) => e.keys().cloned().collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(keys("taints"), ["nvidia.com/gpu:NoSchedule"]);
        assert_eq!(keys("modules"), ["efa", "nvidia"]);
        assert_eq!(keys("devices"), ["0000:53:00.0"]);
        assert_eq!(keys("loose"), ["0", "1"]);
        assert_eq!(t.leaves(), 9);
    }

    #[test]
    fn repeated_keys_stay_apart() {
        let Tree::Keyed(m) = from_value(json!(["a", "a"])) else {
            panic!()
        };
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "a#2"]);
    }

    #[test]
    fn paths_bracket_keyed_entries_and_non_words() {
        assert_eq!(child_path("", "nodes", false), "nodes");
        assert_eq!(child_path("nodes", "gpu-a", true), "nodes[gpu-a]");
        assert_eq!(
            child_path("nodes[gpu-a]", "labels", false),
            "nodes[gpu-a].labels"
        );
        assert_eq!(
            child_path("nodes[gpu-a].capacity", "nvidia.com/gpu", false),
            "nodes[gpu-a].capacity[nvidia.com/gpu]"
        );
    }
}
