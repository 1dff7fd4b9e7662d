//! Node classes: how a snapshot writes thousands of alike nodes once.
//!
//! Nodes of one pool carry the same labels, capacity and agent facts apart from a few
//! per-node values (hostname label, provider id, GPU UUIDs). A class holds one node's facts
//! as its template and, for every member, an RFC 6902 JSON Patch from the template to that
//! member's facts, so reading the class back gives every node exactly as it was collected.
//! Grouping is deterministic: nodes are taken in name order and each joins the most recent
//! class of the same hardware (capacity and GPU facts) whose template it is close to.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::NodeFacts;

/// Nodes whose facts differ from one template by a small patch each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeClass {
    /// The first member's facts, without its name.
    pub facts: NodeFacts,
    /// Members in name order; the first has an empty patch. One line per node.
    #[serde(serialize_with = "one_line_each")]
    pub nodes: Vec<ClassMember>,
}

/// Write a list one item per line (YAML flow mappings), for lists with an item per node.
pub(super) fn one_line_each<T: Serialize, S: serde::Serializer>(
    items: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(serde_saphyr::FlowMap))
}

/// One node of a class: its name and how its facts differ from the class template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassMember {
    pub name: String,
    /// RFC 6902 operations that turn the template into this node's facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patch: Vec<json_patch::PatchOperation>,
}

/// A class that cannot be read back into nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassError {
    #[error("node class {class}: a member has an empty name")]
    EmptyName { class: usize },
    #[error("node {node} appears more than once")]
    Duplicate { node: String },
    #[error("node {node} (class {class}): its patch does not apply to the class facts: {message}")]
    Patch {
        class: usize,
        node: String,
        message: String,
    },
}

/// How many recent classes a node is compared with before it starts a class of its own;
/// bounds the work per node when a cluster has many shapes of node.
const CLASSES_SCANNED: usize = 16;

/// Group `nodes` (sorted by name) into classes.
pub fn classify(nodes: &[NodeFacts]) -> Vec<NodeClass> {
    let mut classes: Vec<Draft> = Vec::new();
    for node in nodes {
        let facts = facts_value(node);
        let joined = classes
            .iter_mut()
            .rev()
            .take(CLASSES_SCANNED)
            .find_map(|class| {
                if !same_hardware(&class.template, &facts) {
                    return None;
                }
                let patch = json_patch::diff(&class.template, &facts).0;
                close_enough(&patch, class.leaves).then_some((class, patch))
            });
        let member = |patch| ClassMember {
            name: node.name.clone(),
            patch,
        };
        match joined {
            Some((class, patch)) => class.members.push(member(patch)),
            None => classes.push(Draft {
                leaves: leaves(&facts),
                template: facts,
                facts: NodeFacts {
                    name: String::new(),
                    ..node.clone()
                },
                members: vec![member(Vec::new())],
            }),
        }
    }
    classes
        .into_iter()
        .map(|d| NodeClass {
            facts: d.facts,
            nodes: d.members,
        })
        .collect()
}

/// The nodes of `classes`, sorted by name, each with its own facts restored.
pub fn expand(classes: Vec<NodeClass>) -> Result<Vec<NodeFacts>, ClassError> {
    let mut nodes = Vec::with_capacity(classes.iter().map(|c| c.nodes.len()).sum());
    for (index, class) in classes.into_iter().enumerate() {
        let template = facts_value(&class.facts);
        for member in class.nodes {
            if member.name.is_empty() {
                return Err(ClassError::EmptyName { class: index });
            }
            let mut facts = if member.patch.is_empty() {
                class.facts.clone()
            } else {
                patched(&template, &member.patch).map_err(|message| ClassError::Patch {
                    class: index,
                    node: member.name.clone(),
                    message,
                })?
            };
            facts.name = member.name;
            nodes.push(facts);
        }
    }
    sort_unique(&mut nodes)?;
    Ok(nodes)
}

/// Sort nodes by name and refuse a name that appears twice.
pub fn sort_unique(nodes: &mut [NodeFacts]) -> Result<(), ClassError> {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    match nodes.windows(2).find(|w| w[0].name == w[1].name) {
        Some(w) => Err(ClassError::Duplicate {
            node: w[0].name.clone(),
        }),
        None => Ok(()),
    }
}

struct Draft {
    template: Value,
    leaves: usize,
    facts: NodeFacts,
    members: Vec<ClassMember>,
}

/// A node's facts as JSON, without its name (the part a class shares).
fn facts_value(node: &NodeFacts) -> Value {
    let mut value = serde_json::to_value(node).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("name");
    }
    value
}

fn patched(template: &Value, patch: &[json_patch::PatchOperation]) -> Result<NodeFacts, String> {
    let mut value = template.clone();
    json_patch::patch(&mut value, patch).map_err(|e| e.to_string())?;
    if let Value::Object(map) = &mut value {
        map.insert("name".into(), Value::String(String::new()));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Members of a class have the same capacity and GPU facts, so a class reads as one kind of
/// machine.
fn same_hardware(template: &Value, facts: &Value) -> bool {
    ["capacity", "gpu"]
        .iter()
        .all(|key| template.get(key) == facts.get(key))
}

/// A patch is worth sharing a template when it touches at most a quarter of the template's
/// values (or a handful, for small nodes); otherwise the node starts a class of its own.
fn close_enough(patch: &[json_patch::PatchOperation], template_leaves: usize) -> bool {
    let weight: usize = patch.iter().map(op_weight).sum();
    weight <= (template_leaves / 4).max(4)
}

fn op_weight(op: &json_patch::PatchOperation) -> usize {
    use json_patch::PatchOperation as Op;
    1 + match op {
        Op::Add(o) => leaves(&o.value),
        Op::Replace(o) => leaves(&o.value),
        Op::Test(o) => leaves(&o.value),
        Op::Remove(_) | Op::Move(_) | Op::Copy(_) => 0,
    }
}

/// Scalars in a JSON value (an empty object or list counts as one).
fn leaves(value: &Value) -> usize {
    match value {
        Value::Object(m) if !m.is_empty() => m.values().map(leaves).sum(),
        Value::Array(a) if !a.is_empty() => a.iter().map(leaves).sum(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::model::{AgentOutcome, GpuLabels, NodeInfo, Taint};
    use std::collections::BTreeMap;

    fn node(name: &str, product: &str) -> NodeFacts {
        let mut labels: BTreeMap<String, String> = (0..30)
            .map(|i| (format!("example.com/label-{i:02}"), format!("value-{i}")))
            .collect();
        labels.insert("kubernetes.io/hostname".into(), name.into());
        labels.insert("nvidia.com/gpu.product".into(), product.into());
        NodeFacts {
            name: name.into(),
            provider_id: format!("aws:///us-east-1a/i-{name}"),
            labels,
            capacity: [("nvidia.com/gpu".to_string(), "8".to_string())].into(),
            allocatable: [("nvidia.com/gpu".to_string(), "8".to_string())].into(),
            taints: vec![Taint {
                key: "nvidia.com/gpu".into(),
                value: "present".into(),
                effect: "NoSchedule".into(),
            }],
            node_info: NodeInfo {
                kernel_version: "6.8.0".into(),
                ..NodeInfo::default()
            },
            gpu: GpuLabels {
                product: Some(product.into()),
                count: Some(8),
                ..GpuLabels::default()
            },
            agent: AgentOutcome::Skipped,
        }
    }

    fn pool(prefix: &str, n: usize, product: &str) -> Vec<NodeFacts> {
        (0..n)
            .map(|i| node(&format!("{prefix}-{i:04}"), product))
            .collect()
    }

    #[test]
    fn alike_nodes_share_one_class_with_per_node_patches() {
        let nodes = pool("gpu", 50, "H100");
        let classes = classify(&nodes);
        assert_eq!(classes.len(), 1);
        assert_eq!(classes[0].facts.name, "");
        assert_eq!(classes[0].nodes.len(), 50);
        assert!(classes[0].nodes[0].patch.is_empty());
        // Hostname label and provider id differ per node, nothing else.
        assert_eq!(
            classes[0].nodes[7].patch.len(),
            2,
            "{:?}",
            classes[0].nodes[7]
        );
        assert_eq!(expand(classes).unwrap(), nodes);
    }

    #[test]
    fn different_hardware_starts_a_class_and_every_difference_survives() {
        let mut nodes = pool("a", 3, "H100");
        nodes.extend(pool("b", 3, "B200"));
        nodes[4].labels.remove("example.com/label-03");
        nodes[4].taints.clear();
        nodes[5].capacity.insert("memory".into(), "2Ti".into());
        let mut cpu = node("c-0000", "none");
        cpu.labels.clear();
        cpu.capacity.clear();
        cpu.gpu = GpuLabels::default();
        cpu.agent = AgentOutcome::Unavailable {
            reason: "no permission".into(),
        };
        nodes.push(cpu);
        let classes = classify(&nodes);
        // a-*; b-0000 and b-0001 (another GPU); b-0002 (more memory); the CPU node.
        let sizes: Vec<usize> = classes.iter().map(|c| c.nodes.len()).collect();
        assert_eq!(sizes, [3, 2, 1, 1], "{classes:#?}");
        assert_eq!(expand(classes).unwrap(), nodes);
    }

    #[test]
    fn grouping_is_deterministic() {
        let nodes = pool("gpu", 20, "H100");
        let a = serde_json::to_string(&classify(&nodes)).unwrap();
        let b = serde_json::to_string(&classify(&nodes)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_patch_that_does_not_apply_names_the_node() {
        let mut classes = classify(&pool("gpu", 2, "H100"));
        classes[0].nodes[1].patch = serde_json::from_value(serde_json::json!([
            {"op": "remove", "path": "/labels/no-such-label"}
        ]))
        .unwrap();
        let err = expand(classes).unwrap_err();
        assert!(
            err.to_string().starts_with("node gpu-0001 (class 0):"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let mut classes = classify(&pool("gpu", 2, "H100"));
        classes[0].nodes[1].name = "gpu-0000".into();
        assert_eq!(
            expand(classes.clone()).unwrap_err(),
            ClassError::Duplicate {
                node: "gpu-0000".into()
            }
        );
        classes[0].nodes[1].name.clear();
        assert_eq!(
            expand(classes).unwrap_err(),
            ClassError::EmptyName { class: 0 }
        );
    }
}
