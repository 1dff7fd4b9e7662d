//! [`ClusterFacts`] on the wire: nodes written as node classes ([`super::node_class`]), one
//! flow line per ResourceSlice; read back from classes, a flat `nodes` list, or both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{
    ClusterFacts, DeviceClassFacts, HelmRelease, NodeFacts, OperatorFacts, ResourceSliceFacts,
    ServerVersion,
};
use super::node_class::{self, NodeClass};

/// [`ClusterFacts`] as written: nodes grouped into classes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterFactsOut<'a> {
    server_version: &'a ServerVersion,
    node_classes: Vec<NodeClass>,
    operators: &'a BTreeMap<String, OperatorFacts>,
    helm_releases: &'a [HelmRelease],
    crds: &'a [String],
    device_classes: &'a [DeviceClassFacts],
    /// One line each: clusters have one or more per node.
    #[serde(serialize_with = "node_class::one_line_each")]
    resource_slices: &'a [ResourceSliceFacts],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
}

/// [`ClusterFacts`] as read: node classes, a flat node list, or both.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterFactsIn {
    server_version: ServerVersion,
    #[serde(default)]
    nodes: Vec<NodeFacts>,
    #[serde(default)]
    node_classes: Vec<NodeClass>,
    #[serde(default)]
    operators: BTreeMap<String, OperatorFacts>,
    #[serde(default)]
    helm_releases: Vec<HelmRelease>,
    #[serde(default)]
    crds: Vec<String>,
    #[serde(default)]
    device_classes: Vec<DeviceClassFacts>,
    #[serde(default)]
    resource_slices: Vec<ResourceSliceFacts>,
    #[serde(default)]
    notes: Vec<String>,
}

impl Serialize for ClusterFacts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ClusterFactsOut {
            server_version: &self.server_version,
            node_classes: node_class::classify(&self.nodes),
            operators: &self.operators,
            helm_releases: &self.helm_releases,
            crds: &self.crds,
            device_classes: &self.device_classes,
            resource_slices: &self.resource_slices,
            notes: &self.notes,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ClusterFacts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ClusterFactsIn::deserialize(deserializer)?;
        let mut nodes = node_class::expand(wire.node_classes).map_err(serde::de::Error::custom)?;
        if let Some(unnamed) = wire.nodes.iter().position(|n| n.name.is_empty()) {
            return Err(serde::de::Error::custom(format!(
                "nodes[{unnamed}] has no name"
            )));
        }
        nodes.extend(wire.nodes);
        node_class::sort_unique(&mut nodes).map_err(serde::de::Error::custom)?;
        Ok(ClusterFacts {
            server_version: wire.server_version,
            nodes,
            operators: wire.operators,
            helm_releases: wire.helm_releases,
            crds: wire.crds,
            device_classes: wire.device_classes,
            resource_slices: wire.resource_slices,
            notes: wire.notes,
        })
    }
}
