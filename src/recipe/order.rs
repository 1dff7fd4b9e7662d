//! Deployment order from the component dependency graph.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::error::{RecipeError, Result};

/// Topological order of `deps` (component -> its dependencies). Among components whose
/// dependencies are all placed, the alphabetically first goes next, so the order is
/// stable whatever order the input came in. Every dependency must be a key of `deps`.
pub fn deployment_order(deps: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
    let mut graph: DiGraph<&str, ()> = DiGraph::new();
    let index: BTreeMap<&str, NodeIndex> = deps
        .keys()
        .map(|name| (name.as_str(), graph.add_node(name.as_str())))
        .collect();
    for (name, ds) in deps {
        for d in ds {
            let Some(&from) = index.get(d.as_str()) else {
                return Err(RecipeError::UnknownDependency {
                    origin: "recipe".into(),
                    component: name.clone(),
                    dependency: d.clone(),
                });
            };
            // Edge dependency -> dependent: the dependency deploys first.
            graph.update_edge(from, index[name.as_str()], ());
        }
    }

    let mut indegree: BTreeMap<NodeIndex, usize> = graph
        .node_indices()
        .map(|n| (n, graph.neighbors_directed(n, Direction::Incoming).count()))
        .collect();
    let mut ready: BinaryHeap<Reverse<(&str, NodeIndex)>> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| Reverse((graph[*n], *n)))
        .collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(Reverse((name, n))) = ready.pop() {
        order.push(name.to_string());
        for next in graph.neighbors_directed(n, Direction::Outgoing) {
            let d = indegree.get_mut(&next).expect("every node has an indegree");
            *d -= 1;
            if *d == 0 {
                ready.push(Reverse((graph[next], next)));
            }
        }
    }
    if order.len() != deps.len() {
        // Name the members of the (first) strongly connected component with a cycle.
        let mut cyclic: Vec<String> = tarjan_scc(&graph)
            .into_iter()
            .find(|scc| scc.len() > 1 || scc.iter().any(|n| graph.contains_edge(*n, *n)))
            .unwrap_or_default()
            .into_iter()
            .map(|n| graph[n].to_string())
            .collect();
        cyclic.sort();
        return Err(RecipeError::DependencyCycle { components: cyclic });
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn dependencies_first_ties_by_name() {
        let d = deps(&[
            ("gpu-operator", &["cert-manager"]),
            ("zeta", &[]),
            ("cert-manager", &[]),
            ("alpha", &["gpu-operator"]),
        ]);
        assert_eq!(
            deployment_order(&d).unwrap(),
            ["cert-manager", "gpu-operator", "alpha", "zeta"]
        );
    }

    #[test]
    fn cycle_is_named() {
        let d = deps(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        match deployment_order(&d) {
            Err(RecipeError::DependencyCycle { components }) => {
                assert_eq!(components, ["a", "b", "c"])
            }
            other => panic!("expected cycle, got {other:?}"),
        }
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let d = deps(&[("a", &["a"])]);
        assert!(matches!(
            deployment_order(&d),
            Err(RecipeError::DependencyCycle { .. })
        ));
    }

    #[test]
    fn unknown_dependency_is_named() {
        let d = deps(&[("a", &["ghost"])]);
        let err = deployment_order(&d).unwrap_err().to_string();
        assert!(err.contains("`a` depends on `ghost`"), "{err}");
    }
}
