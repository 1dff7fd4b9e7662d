//! What a healthy node looks like: the recipe's `validation.nodeHealth` (per accelerator
//! and fabric overlay: GPUs per node, NVLinks per GPU, PCIe generation and width, InfiniBand
//! rate) deep-merged over the suite's parameters (Xid classes, counter thresholds, thermal
//! reasons). Every value carries its source, quoted in verdicts.

use serde::Deserialize;

/// The expectations could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExpectationError {
    #[error("invalid node-health expectations: {0}; see suites/node-health.yaml for their shape")]
    Invalid(String),
}

/// A count with its source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    pub value: u32,
    #[serde(default)]
    pub source: String,
}

/// A PCIe link a device should train to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PcieLink {
    #[serde(rename = "gen")]
    pub generation: u8,
    pub width: u8,
    #[serde(default)]
    pub source: String,
}

/// InfiniBand / RoCE ports per node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IbPorts {
    /// Active ports a node should have.
    #[serde(default)]
    pub count: Option<u32>,
    /// Rate each port should run at, Gb/s.
    #[serde(default)]
    pub rate_gbps: Option<f64>,
    #[serde(default)]
    pub source: String,
}

/// Xid codes by consequence.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XidClasses {
    /// The GPU needs a reset or replacement (e.g. 48 DBE, 79 fallen off the bus).
    #[serde(default)]
    pub fatal: Vec<u32>,
    /// The GPU works with reduced reliability (e.g. 63 row remap recorded, 94 contained ECC).
    #[serde(default)]
    pub degraded: Vec<u32>,
    #[serde(default)]
    pub source: String,
}

/// NVLink error counters allowed per link.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NvlinkErrors {
    pub max_crc: u64,
    pub max_replay: u64,
    pub max_recovery: u64,
    #[serde(default)]
    pub source: String,
}

/// ECC limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EccLimits {
    /// Retired pages at which a GPU is due for replacement.
    pub max_retired_pages: u64,
    #[serde(default)]
    pub source: String,
}

/// Thermal limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thermal {
    /// Clock event reasons that mark a throttled GPU (`hw_thermal_slowdown`, ...).
    pub reasons: Vec<String>,
    /// Degrees below the GPU's own slowdown threshold a GPU must stay.
    #[serde(default)]
    pub margin_below_slowdown_c: u32,
    #[serde(default)]
    pub source: String,
}

/// Every expectation; each check reads its own.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expectations {
    #[serde(default)]
    pub gpus_per_node: Option<Count>,
    #[serde(default)]
    pub nvlinks_per_gpu: Option<Count>,
    #[serde(default)]
    pub gpu_pcie: Option<PcieLink>,
    #[serde(default)]
    pub nic_pcie: Option<PcieLink>,
    #[serde(default)]
    pub ib_ports: Option<IbPorts>,
    #[serde(default)]
    pub xid: Option<XidClasses>,
    #[serde(default)]
    pub nvlink_errors: Option<NvlinkErrors>,
    #[serde(default)]
    pub ecc: Option<EccLimits>,
    #[serde(default)]
    pub thermal: Option<Thermal>,
    /// Only Xid events within this window before the snapshot count (`24h`); none: since boot.
    #[serde(default)]
    pub xid_window: Option<String>,
}

impl Expectations {
    /// Read the case parameters (suite defaults with the recipe's values merged in).
    pub fn from_params(params: &serde_json::Value) -> Result<Self, ExpectationError> {
        let mut v = params.clone();
        if let Some(o) = v.as_object_mut() {
            // Keys of other cases' parameters (dcgm level, ...) are not expectations.
            o.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "gpusPerNode"
                        | "nvlinksPerGpu"
                        | "gpuPcie"
                        | "nicPcie"
                        | "ibPorts"
                        | "xid"
                        | "nvlinkErrors"
                        | "ecc"
                        | "thermal"
                        | "xidWindow"
                )
            });
        }
        serde_json::from_value(v).map_err(|e| ExpectationError::Invalid(e.to_string()))
    }

    /// The Xid window in seconds.
    pub fn xid_window_seconds(&self) -> Result<Option<f64>, String> {
        self.xid_window
            .as_deref()
            .map(|w| {
                crate::duration::parse(w)
                    .map(|d| d.as_secs_f64())
                    .map_err(|e| format!("xidWindow `{w}`: {e}"))
            })
            .transpose()
    }
}

/// ` (source: ...)` when a source is given.
pub fn cite(source: &str) -> String {
    if source.is_empty() {
        String::new()
    } else {
        format!(" (source: {source})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_recipe_shapes_and_ignores_other_keys() {
        let e = Expectations::from_params(&json!({
            "gpusPerNode": {"value": 8, "source": "HGX H100 8-GPU"},
            "gpuPcie": {"gen": 5, "width": 16, "source": "H100 SXM5 datasheet"},
            "ibPorts": {"rateGbps": 400, "source": "NDR"},
            "level": 2,
            "xidWindow": "24h",
        }))
        .unwrap();
        assert_eq!(e.gpus_per_node.as_ref().unwrap().value, 8);
        assert_eq!(e.gpu_pcie.as_ref().unwrap().width, 16);
        assert_eq!(e.ib_ports.as_ref().unwrap().rate_gbps, Some(400.0));
        assert_eq!(e.xid_window_seconds().unwrap(), Some(86400.0));
        let err =
            Expectations::from_params(&json!({"gpusPerNode": {"value": "eight"}})).unwrap_err();
        assert!(
            err.to_string().contains("invalid node-health expectations"),
            "{err}"
        );
        assert_eq!(cite("x"), " (source: x)");
        assert_eq!(cite(""), "");
    }
}
