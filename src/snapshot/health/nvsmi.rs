//! GPU health from `nvidia-smi`: `-q -x` (XML: PCI bus id, UUID, ECC error counters,
//! retired pages, remapped rows, temperature, clock event reasons, PCIe link) and `nvlink
//! -s` / `nvlink -e` (per-link state and CRC/replay/recovery counters, text).
//!
//! The XML is read into a small element tree and queried by path, so elements that older or
//! newer drivers add, rename or leave out (`clocks_throttle_reasons` before R535,
//! `clocks_event_reasons` after; `remapped_rows` is `N/A` before Ampere) are simply absent.

use serde::{Deserialize, Serialize};

/// Health of one GPU as `nvidia-smi -q -x` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuHealth {
    /// Position in the report (nvidia-smi's GPU index).
    pub index: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    /// PCI address normalized like sysfs: `0000:18:00.0`.
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// Volatile (since driver load) uncorrectable ECC errors, DRAM + SRAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_volatile_uncorrectable: Option<u64>,
    /// Aggregate (lifetime) uncorrectable ECC errors, DRAM + SRAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_aggregate_uncorrectable: Option<u64>,
    /// Pages retired for double-bit errors (pre-Ampere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_dbe: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement_pending: Option<bool>,
    /// Rows remapped for uncorrectable errors (Ampere and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remapped_rows_uncorrectable: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_pending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_failure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
    /// The driver's slowdown threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown_temperature_c: Option<u32>,
    /// Active clock event (throttle) reasons, e.g. `hw_thermal_slowdown`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clock_events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_current_gen: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_max_gen: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_current_width: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pcie_max_width: Option<u8>,
}

/// NVLink state of one GPU from `nvidia-smi nvlink -s` and `-e`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GpuNvlink {
    pub index: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uuid: String,
    pub links: Vec<NvlinkLink>,
}

impl Eq for GpuNvlink {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NvlinkLink {
    pub link: u32,
    pub up: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_gbps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_errors: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_errors: Option<u64>,
}

/// A parsed XML element.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// The element at a `/`-separated path below this one.
    fn at(&self, path: &str) -> Option<&Element> {
        path.split('/').try_fold(self, |e, part| e.child(part))
    }
    fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path)
            .map(|e| e.text.trim())
            .filter(|t| !t.is_empty())
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_tree(text: &str) -> Result<Element, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    let start = |e: &quick_xml::events::BytesStart<'_>| -> Result<Element, String> {
        let mut el = Element {
            name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| e.to_string())?;
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| e.to_string())?;
            el.attrs.push((
                String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                v.into_owned(),
            ));
        }
        Ok(el)
    };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => stack.push(start(&e)?),
            Event::Empty(e) => {
                let el = start(&e)?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(el);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced XML")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Err("unbalanced XML".into()),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("truncated XML (unclosed elements)".into());
    }
    Ok(stack.pop().unwrap_or_default())
}

/// `00000000:18:00.0` → `0000:18:00.0` (sysfs form: 4-digit domain, lowercase).
pub fn normalize_bus_id(id: &str) -> String {
    let id = id.trim().to_lowercase();
    match id.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 => {
            format!("{}:{rest}", &domain[domain.len() - 4..])
        }
        _ => id,
    }
}

/// The leading number of a reading such as `45 C`, `16x`, `0`; `None` for `N/A`.
fn number(text: Option<&str>) -> Option<u64> {
    let t = text?.trim();
    let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn yes_no(text: Option<&str>) -> Option<bool> {
    match text?.trim() {
        t if t.eq_ignore_ascii_case("yes") => Some(true),
        t if t.eq_ignore_ascii_case("no") => Some(false),
        _ => None,
    }
}

/// Sum of the uncorrectable counters of an `ecc_errors/volatile|aggregate` element
/// (`dram_uncorrectable`, `sram_uncorrectable*`, or older `double_bit/total`).
fn uncorrectable(scope: Option<&Element>) -> Option<u64> {
    let scope = scope?;
    let mut total = None;
    for c in &scope.children {
        if (c.name.contains("uncorrectable") || c.name.contains("uncorrected"))
            && let Some(n) = number(Some(&c.text))
        {
            *total.get_or_insert(0) += n;
        }
    }
    total.or_else(|| number(scope.text_at("double_bit/total")))
}

fn u8_of(n: Option<u64>) -> Option<u8> {
    n.and_then(|n| u8::try_from(n).ok())
}

fn u32_of(n: Option<u64>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok())
}

/// Parse `nvidia-smi -q -x`.
pub fn parse_query(xml: &str) -> Result<Vec<GpuHealth>, String> {
    let tree = parse_tree(xml)?;
    let root = tree
        .child("nvidia_smi_log")
        .ok_or("no <nvidia_smi_log> element")?;
    let mut out = Vec::new();
    for (i, gpu) in root.children.iter().filter(|c| c.name == "gpu").enumerate() {
        let bus_id = gpu
            .text_at("pci/pci_bus_id")
            .or_else(|| gpu.attr("id"))
            .unwrap_or_default();
        let reasons = gpu
            .child("clocks_event_reasons")
            .or_else(|| gpu.child("clocks_throttle_reasons"));
        let clock_events = reasons
            .map(|r| {
                r.children
                    .iter()
                    .filter(|c| c.text.trim() == "Active")
                    .map(|c| {
                        c.name
                            .trim_start_matches("clocks_event_reason_")
                            .trim_start_matches("clocks_throttle_reason_")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let link = gpu.at("pci/pci_gpu_link_info");
        let link_num = |p: &str| link.and_then(|l| number(l.text_at(p)));
        out.push(GpuHealth {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            uuid: gpu.text_at("uuid").unwrap_or_default().to_string(),
            pci_address: normalize_bus_id(bus_id),
            product: gpu.text_at("product_name").unwrap_or_default().to_string(),
            ecc_volatile_uncorrectable: uncorrectable(gpu.at("ecc_errors/volatile")),
            ecc_aggregate_uncorrectable: uncorrectable(gpu.at("ecc_errors/aggregate")),
            retired_pages_dbe: number(
                gpu.text_at("retired_pages/double_bit_retirement/retired_count"),
            ),
            retirement_pending: yes_no(gpu.text_at("retired_pages/pending_retirement")),
            remapped_rows_uncorrectable: number(gpu.text_at("remapped_rows/remapped_row_unc")),
            remap_pending: yes_no(gpu.text_at("remapped_rows/remapped_row_pending")),
            remap_failure: yes_no(gpu.text_at("remapped_rows/remapped_row_failure")),
            temperature_c: u32_of(number(gpu.text_at("temperature/gpu_temp"))),
            slowdown_temperature_c: u32_of(number(
                gpu.text_at("temperature/gpu_temp_slow_threshold"),
            )),
            clock_events,
            pcie_current_gen: u8_of(link_num("pcie_gen/current_link_gen")),
            pcie_max_gen: u8_of(link_num("pcie_gen/max_link_gen")),
            pcie_current_width: u8_of(link_num("link_widths/current_link_width")),
            pcie_max_width: u8_of(link_num("link_widths/max_link_width")),
        });
    }
    Ok(out)
}

/// `GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)` → (index, uuid).
fn gpu_header(line: &str) -> Option<(u32, String)> {
    let rest = line.trim().strip_prefix("GPU ")?;
    let (index, rest) = rest.split_once(':')?;
    let index = index.trim().parse().ok()?;
    let uuid = rest
        .rsplit_once("(UUID:")
        .map(|(_, u)| u.trim().trim_end_matches(')').trim().to_string())
        .unwrap_or_default();
    Some((index, uuid))
}

/// `Link 3: 26.562 GB/s` → (3, "26.562 GB/s").
fn link_line(line: &str) -> Option<(u32, &str)> {
    let rest = line.trim().strip_prefix("Link ")?;
    let (n, value) = rest.split_once(':')?;
    Some((n.trim().parse().ok()?, value.trim()))
}

/// Parse `nvidia-smi nvlink -s`: per GPU, `Link N: <speed> GB/s` for an active link and
/// `Link N: <inactive>` for one that is down.
pub fn parse_nvlink_status(text: &str) -> Vec<GpuNvlink> {
    let mut out: Vec<GpuNvlink> = Vec::new();
    for line in text.lines() {
        if let Some((index, uuid)) = gpu_header(line) {
            out.push(GpuNvlink {
                index,
                uuid,
                links: Vec::new(),
            });
        } else if let (Some((link, value)), Some(gpu)) = (link_line(line), out.last_mut()) {
            let speed: Option<f64> = value.split_whitespace().next().and_then(|v| v.parse().ok());
            gpu.links.push(NvlinkLink {
                link,
                up: speed.is_some_and(|s| s > 0.0),
                speed_gbps: speed,
                ..NvlinkLink::default()
            });
        }
    }
    out
}

/// Add the counters of `nvidia-smi nvlink -e` (`Link N: Replay Errors: 0`, `Recovery
/// Errors`, `CRC Errors`) to the links of [`parse_nvlink_status`].
pub fn merge_nvlink_errors(gpus: &mut [GpuNvlink], text: &str) {
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some((index, _)) = gpu_header(line) {
            current = gpus.iter().position(|g| g.index == index);
            continue;
        }
        let (Some(g), Some((link, value))) = (current, link_line(line)) else {
            continue;
        };
        let Some((counter, n)) = value.rsplit_once(':') else {
            continue;
        };
        let Ok(n) = n.trim().parse::<u64>() else {
            continue;
        };
        let Some(l) = gpus[g].links.iter_mut().find(|l| l.link == link) else {
            continue;
        };
        let counter = counter.to_ascii_lowercase();
        if counter.contains("crc") {
            *l.crc_errors.get_or_insert(0) += n;
        } else if counter.contains("replay") {
            l.replay_errors = Some(n);
        } else if counter.contains("recovery") {
            l.recovery_errors = Some(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/node-health")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn query_fixture() {
        let gpus = parse_query(&fixture("nvidia-smi-q.xml")).unwrap();
        assert_eq!(gpus.len(), 2, "{gpus:#?}");
        let g = &gpus[0];
        assert_eq!(g.index, 0);
        assert_eq!(g.pci_address, "0000:18:00.0");
        assert_eq!(g.uuid, "GPU-4a2b9f3e-1c7d-4e55-9b0a-2f6c8d1e3a70");
        assert_eq!(g.product, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.ecc_volatile_uncorrectable, Some(0));
        assert_eq!(g.ecc_aggregate_uncorrectable, Some(0));
        assert_eq!(g.retired_pages_dbe, None, "N/A on Hopper");
        assert_eq!(
            (g.remap_pending, g.remap_failure),
            (Some(false), Some(false))
        );
        assert_eq!(
            (g.temperature_c, g.slowdown_temperature_c),
            (Some(34), Some(92))
        );
        assert_eq!(g.clock_events, ["gpu_idle"]);
        assert_eq!((g.pcie_current_gen, g.pcie_max_gen), (Some(5), Some(5)));
        assert_eq!(
            (g.pcie_current_width, g.pcie_max_width),
            (Some(16), Some(16))
        );
        let b = &gpus[1];
        assert_eq!(b.pci_address, "0000:29:00.0");
        assert_eq!(b.ecc_volatile_uncorrectable, Some(2));
        assert_eq!(b.remapped_rows_uncorrectable, Some(1));
        assert_eq!(b.remap_pending, Some(true));
        assert_eq!(b.clock_events, ["hw_slowdown", "hw_thermal_slowdown"]);
    }

    #[test]
    fn query_errors() {
        assert!(
            parse_query("<other/>")
                .unwrap_err()
                .contains("nvidia_smi_log")
        );
        assert!(
            parse_query("<nvidia_smi_log><gpu>")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse_query("<nvidia_smi_log></nvidia_smi_log>")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bus_ids() {
        assert_eq!(normalize_bus_id("00000000:18:00.0"), "0000:18:00.0");
        assert_eq!(normalize_bus_id("00000000:9A:00.0"), "0000:9a:00.0");
        assert_eq!(normalize_bus_id("0000:18:00.0"), "0000:18:00.0");
    }

    #[test]
    fn nvlink_fixtures() {
        let mut v = parse_nvlink_status(&fixture("nvidia-smi-nvlink-s.txt"));
        merge_nvlink_errors(&mut v, &fixture("nvidia-smi-nvlink-e.txt"));
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].uuid, "GPU-4a2b9f3e-1c7d-4e55-9b0a-2f6c8d1e3a70");
        assert_eq!(v[0].links.len(), 18);
        assert!(v[0].links.iter().all(|l| l.up));
        assert_eq!(v[0].links[0].speed_gbps, Some(26.562));
        assert_eq!(v[0].links[0].crc_errors, Some(0));
        assert_eq!(v[1].links.iter().filter(|l| !l.up).count(), 1);
        assert!(!v[1].links[5].up);
        assert_eq!(v[1].links[2].replay_errors, Some(12));
    }
}
