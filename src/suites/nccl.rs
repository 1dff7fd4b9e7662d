//! nccl-tests output: parsing `all_reduce_perf` results and `NCCL_DEBUG=INFO` transport lines,
//! and checking them against bandwidth thresholds. Pure: no I/O, unit-tested on
//! `fixtures/nccl/`.
//!
//! Result rows have 13 columns: size(B) count type redop root, then out-of-place
//! time(us) algbw busbw #wrong, then in-place time algbw busbw #wrong. The run closes with
//! `# Out of bounds values : N OK|FAILED` and `# Avg bus bandwidth    : X`.

use std::collections::BTreeSet;

/// One measurement (out-of-place or in-place) of a result row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub time_us: f64,
    pub algbw_gbps: f64,
    pub busbw_gbps: f64,
    /// `#wrong`; `None` when validation was off (`N/A`).
    pub wrong: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub size_bytes: u64,
    pub count: u64,
    pub dtype: String,
    pub redop: String,
    pub root: i64,
    pub out_of_place: Measurement,
    pub in_place: Measurement,
}

/// What `NCCL_DEBUG=INFO` lines say about the transports NCCL chose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportEvidence {
    /// Any `NCCL INFO` line at all (debug logging was on).
    pub info_lines: usize,
    /// Channel connections over a network transport (`via NET/...`).
    pub net_channels: usize,
    /// ... of which used GPUDirect RDMA (`/GDRDMA`).
    pub gdr_channels: usize,
    /// Network transports seen in channel lines (`IB`, `AWS Libfabric`, `Socket`, ...).
    pub net_transports: BTreeSet<String>,
    /// `Using network X` lines.
    pub networks: BTreeSet<String>,
    /// Intra-node channels (`via P2P/...`, `via SHM`, NVLS).
    pub intra_node_channels: usize,
    /// First channel line without GDRDMA, for the failure message.
    pub first_non_gdr: Option<String>,
    /// Lines stating GDR is disabled (`GPU Direct RDMA Disabled`).
    pub gdr_disabled_notes: Vec<String>,
}

/// A parsed `all_reduce_perf` run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NcclRun {
    pub rows: Vec<Row>,
    /// Ranks listed under `# Using devices`.
    pub ranks: usize,
    /// Hosts those ranks ran on.
    pub hosts: BTreeSet<String>,
    pub devices: BTreeSet<String>,
    /// `# Avg bus bandwidth` (absent in a truncated run).
    pub avg_bus_bandwidth: Option<f64>,
    /// `# Out of bounds values : N OK|FAILED`.
    pub out_of_bounds: Option<(u64, bool)>,
    /// Lines in the result table that are not valid rows (e.g. cut off).
    pub malformed: Vec<String>,
    pub transport: TransportEvidence,
}

impl NcclRun {
    pub fn complete(&self) -> bool {
        self.avg_bus_bandwidth.is_some() && self.out_of_bounds.is_some()
    }

    /// Rows whose `#wrong` is non-zero, as (size, out-of-place wrong, in-place wrong).
    pub fn wrong_rows(&self) -> Vec<(u64, u64, u64)> {
        self.rows
            .iter()
            .filter_map(|r| {
                let a = r.out_of_place.wrong.unwrap_or(0);
                let b = r.in_place.wrong.unwrap_or(0);
                (a > 0 || b > 0).then_some((r.size_bytes, a, b))
            })
            .collect()
    }

    pub fn max_size(&self) -> Option<u64> {
        self.rows.iter().map(|r| r.size_bytes).max()
    }
}

fn parse_measurement(cols: &[&str]) -> Option<Measurement> {
    let [t, a, b, w] = cols else { return None };
    let f = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    Some(Measurement {
        time_us: f(t)?,
        algbw_gbps: f(a)?,
        busbw_gbps: f(b)?,
        wrong: match *w {
            "N/A" => None,
            w => Some(w.parse().ok()?),
        },
    })
}

/// A result row, or `None` if the line is not one.
pub fn parse_row(line: &str) -> Option<Row> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    if cols.len() != 13 {
        return None;
    }
    Some(Row {
        size_bytes: cols[0].parse().ok()?,
        count: cols[1].parse().ok()?,
        dtype: cols[2].to_string(),
        redop: cols[3].to_string(),
        root: cols[4].parse().ok()?,
        out_of_place: parse_measurement(&cols[5..9])?,
        in_place: parse_measurement(&cols[9..13])?,
    })
}

/// The transport named in a channel line: `... via NET/IB/0/GDRDMA` → `("NET", "IB", gdr)`.
fn channel_transport(line: &str) -> Option<(&str, Option<(&str, bool)>)> {
    let (_, via) = line.split_once(" via ")?;
    let via = via.trim();
    if let Some(net) = via.strip_prefix("NET/") {
        let parts: Vec<&str> = net.split('/').collect();
        let name = parts.first().copied().unwrap_or("");
        let gdr = parts.iter().skip(1).any(|p| p.trim() == "GDRDMA");
        return Some(("NET", Some((name, gdr))));
    }
    Some((via.split('/').next().unwrap_or(via), None))
}

fn note_info_line(t: &mut TransportEvidence, line: &str) {
    t.info_lines += 1;
    let Some((_, msg)) = line.split_once("NCCL INFO ") else {
        return;
    };
    let msg = msg.trim();
    if let Some(net) = msg.strip_prefix("Using network ") {
        t.networks.insert(net.trim().to_string());
    }
    if msg.contains("GPU Direct RDMA Disabled") {
        t.gdr_disabled_notes.push(msg.to_string());
    }
    if msg.starts_with("Channel ") || msg.contains(" via ") {
        match channel_transport(msg) {
            Some(("NET", Some((name, gdr)))) => {
                t.net_channels += 1;
                t.net_transports.insert(name.to_string());
                if gdr {
                    t.gdr_channels += 1;
                } else if t.first_non_gdr.is_none() {
                    t.first_non_gdr = Some(msg.to_string());
                }
            }
            Some(_) => t.intra_node_channels += 1,
            None => {}
        }
    }
}

/// Parse the combined stdout/stderr of an `all_reduce_perf` run.
pub fn parse(text: &str) -> NcclRun {
    let mut run = NcclRun::default();
    let mut in_table = false;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.contains("NCCL INFO") {
            note_info_line(&mut run.transport, trimmed);
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let c = comment.trim();
            if let Some(rest) = c.strip_prefix("Rank ") {
                // "#  Rank  0 Group  0 Pid  41210 on  p5-node-0 device  0 [0x18] NVIDIA H100 80GB HBM3"
                run.ranks += 1;
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let Some(i) = words.iter().position(|w| *w == "on")
                    && let Some(host) = words.get(i + 1)
                {
                    run.hosts.insert(host.to_string());
                }
                if let Some((_, dev)) = rest.split_once(']') {
                    run.devices.insert(dev.trim().to_string());
                }
            } else if c.starts_with("size") && c.contains("busbw") {
                in_table = true;
            } else if let Some(v) = c.strip_prefix("Out of bounds values") {
                let v = v.trim_start_matches([' ', ':']).trim();
                let mut it = v.split_whitespace();
                if let Some(n) = it.next().and_then(|n| n.parse().ok()) {
                    run.out_of_bounds = Some((n, it.next() == Some("OK")));
                }
                in_table = false;
            } else if let Some(v) = c.strip_prefix("Avg bus bandwidth") {
                run.avg_bus_bandwidth = v
                    .trim_start_matches([' ', ':'])
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|v: &f64| v.is_finite());
                in_table = false;
            }
            continue;
        }
        if in_table {
            match parse_row(trimmed) {
                Some(row) => run.rows.push(row),
                None => run.malformed.push(trimmed.to_string()),
            }
        }
    }
    run
}

/// Thresholds from params or `recipe.validation.nccl.allReduce`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub min_avg_bus_bandwidth_g_bps: Option<f64>,
    pub min_large_message_bus_bandwidth_g_bps: Option<f64>,
    pub large_message_bytes: Option<u64>,
}

impl Thresholds {
    /// Read the camelCase keys used in recipes (`minAvgBusBandwidthGBps`, ...).
    pub fn from_json(v: &serde_json::Value) -> Thresholds {
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        Thresholds {
            min_avg_bus_bandwidth_g_bps: f("minAvgBusBandwidthGBps"),
            min_large_message_bus_bandwidth_g_bps: f("minLargeMessageBusBandwidthGBps"),
            large_message_bytes: v
                .get("largeMessageBytes")
                .and_then(serde_json::Value::as_u64),
        }
    }

    /// `primary` wins key by key over `fallback`.
    pub fn or(self, fallback: Thresholds) -> Thresholds {
        Thresholds {
            min_avg_bus_bandwidth_g_bps: self
                .min_avg_bus_bandwidth_g_bps
                .or(fallback.min_avg_bus_bandwidth_g_bps),
            min_large_message_bus_bandwidth_g_bps: self
                .min_large_message_bus_bandwidth_g_bps
                .or(fallback.min_large_message_bus_bandwidth_g_bps),
            large_message_bytes: self.large_message_bytes.or(fallback.large_message_bytes),
        }
    }
}

/// The bandwidth figures a verdict is based on.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthFigures {
    pub avg_bus_bandwidth: f64,
    /// Lowest out-of-place busbw over rows at or above `large_message_bytes`.
    pub large_message_bus_bandwidth: Option<f64>,
    pub peak_bus_bandwidth: f64,
}

/// Verdict of a bandwidth check: `Ok(summary)` or `Err(every problem found)`.
pub fn check_bandwidth(
    run: &NcclRun,
    t: &Thresholds,
) -> (Option<BandwidthFigures>, Result<String, Vec<String>>) {
    let mut problems = Vec::new();
    if run.rows.is_empty() {
        problems.push(
            "no result rows found: not all_reduce_perf output, or the run ended before the first size"
                .to_string(),
        );
        return (None, Err(problems));
    }
    if !run.complete() {
        let last = run.max_size().unwrap_or(0);
        problems.push(format!(
            "output truncated: no closing `# Out of bounds values` / `# Avg bus bandwidth` lines after {} rows (last complete size {last} B)",
            run.rows.len()
        ));
    }
    for bad in run.malformed.iter().take(3) {
        problems.push(format!("malformed result line: `{bad}`"));
    }
    let wrong = run.wrong_rows();
    if !wrong.is_empty() {
        let list: Vec<String> = wrong
            .iter()
            .map(|(s, a, b)| format!("{s} B ({a} out-of-place, {b} in-place)"))
            .collect();
        problems.push(format!(
            "data corruption: #wrong > 0 at {}",
            list.join(", ")
        ));
    }
    if let Some((n, ok)) = run.out_of_bounds
        && (!ok || n > 0)
    {
        problems.push(format!("out of bounds values: {n} (FAILED)"));
    }
    if t.min_avg_bus_bandwidth_g_bps.is_none() && t.min_large_message_bus_bandwidth_g_bps.is_none()
    {
        problems.push(
            "no bandwidth thresholds: set minAvgBusBandwidthGBps / minLargeMessageBusBandwidthGBps in params or recipe validation.nccl.allReduce"
                .to_string(),
        );
    }
    let peak = run
        .rows
        .iter()
        .map(|r| r.out_of_place.busbw_gbps.max(r.in_place.busbw_gbps))
        .fold(0.0, f64::max);
    let large_bytes = t.large_message_bytes.unwrap_or(u64::MAX);
    let large: Vec<f64> = run
        .rows
        .iter()
        .filter(|r| r.size_bytes >= large_bytes)
        .map(|r| r.out_of_place.busbw_gbps)
        .collect();
    let large_bw = (!large.is_empty()).then(|| large.iter().copied().fold(f64::INFINITY, f64::min));
    let avg = run.avg_bus_bandwidth.unwrap_or_else(|| {
        // A truncated run: the average of what is there, for the report only.
        let n = run.rows.len() as f64;
        run.rows
            .iter()
            .map(|r| (r.out_of_place.busbw_gbps + r.in_place.busbw_gbps) / 2.0)
            .sum::<f64>()
            / n
    });
    let mut summary = Vec::new();
    if let Some(min) = t.min_avg_bus_bandwidth_g_bps {
        if run.avg_bus_bandwidth.is_some() && avg < min {
            problems.push(format!(
                "average bus bandwidth {avg:.2} GB/s is below the minimum {min} GB/s"
            ));
        }
        summary.push(format!("avg busbw {avg:.2} GB/s (min {min})"));
    }
    if let Some(min) = t.min_large_message_bus_bandwidth_g_bps {
        match (t.large_message_bytes, large_bw) {
            (None, _) => problems.push(
                "minLargeMessageBusBandwidthGBps is set but largeMessageBytes is not".to_string(),
            ),
            (Some(bytes), None) => problems.push(format!(
                "no result rows at or above largeMessageBytes {bytes} B (largest size tested: {} B); run with -e {bytes} or larger",
                run.max_size().unwrap_or(0)
            )),
            (Some(bytes), Some(bw)) => {
                if bw < min {
                    problems.push(format!(
                        "bus bandwidth at >= {bytes} B is {bw:.2} GB/s, below the minimum {min} GB/s"
                    ));
                }
                summary.push(format!("busbw at >= {bytes} B {bw:.2} GB/s (min {min})"));
            }
        }
    }
    let figures = BandwidthFigures {
        avg_bus_bandwidth: avg,
        large_message_bus_bandwidth: large_bw,
        peak_bus_bandwidth: peak,
    };
    if problems.is_empty() {
        (
            Some(figures),
            Ok(format!(
                "{} ranks on {} host(s): {}; peak {peak:.2} GB/s",
                run.ranks,
                run.hosts.len(),
                summary.join(", ")
            )),
        )
    } else {
        (Some(figures), Err(problems))
    }
}

/// GDR verdict from `NCCL_DEBUG=INFO` evidence.
#[derive(Debug, Clone, PartialEq)]
pub enum GdrVerdict {
    /// Every network channel used GPUDirect RDMA.
    Enabled(String),
    /// Network channels without GDRDMA, or a socket transport.
    Disabled(String),
    /// The run cannot show it (no debug lines, or no inter-node channels).
    NotShown(String),
}

pub fn check_gdr(run: &NcclRun) -> GdrVerdict {
    let t = &run.transport;
    if t.info_lines == 0 {
        return GdrVerdict::NotShown(
            "no `NCCL INFO` lines in the output: run with NCCL_DEBUG=INFO to show the transports"
                .to_string(),
        );
    }
    if t.net_channels == 0 {
        return GdrVerdict::NotShown(format!(
            "no network channels (`via NET/...`) in the NCCL INFO output ({} intra-node channels, {} host(s)): GPUDirect RDMA is only used between nodes; run across at least 2 nodes",
            t.intra_node_channels,
            run.hosts.len()
        ));
    }
    let transports = t
        .net_transports
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if t.net_transports.contains("Socket") {
        return GdrVerdict::Disabled(format!(
            "NCCL used the socket transport ({transports}): no RDMA fabric, so no GPUDirect RDMA"
        ));
    }
    if t.gdr_channels < t.net_channels {
        let mut msg = format!(
            "{} of {} network channels over {transports} lack the GDRDMA marker (GPUDirect RDMA off: check nvidia-peermem / dma-buf)",
            t.net_channels - t.gdr_channels,
            t.net_channels
        );
        if let Some(first) = &t.first_non_gdr {
            msg.push_str(&format!("; e.g. `{first}`"));
        }
        if let Some(note) = t.gdr_disabled_notes.first() {
            msg.push_str(&format!("; NCCL says `{note}`"));
        }
        return GdrVerdict::Disabled(msg);
    }
    GdrVerdict::Enabled(format!(
        "all {} network channels over {transports} use GPUDirect RDMA (GDRDMA)",
        t.net_channels
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> NcclRun {
        let path = format!("{}/fixtures/nccl/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse(&text)
    }

    fn h100() -> Thresholds {
        Thresholds {
            min_avg_bus_bandwidth_g_bps: Some(100.0),
            min_large_message_bus_bandwidth_g_bps: Some(420.0),
            large_message_bytes: Some(8_589_934_592),
        }
    }

    #[test]
    fn parses_a_row_with_na_wrong() {
        let r = parse_row(
            "  1048576  262144  float  sum  -1  30.91  33.92  59.37  N/A  31.00  33.82  59.18  N/A",
        )
        .expect("row");
        assert_eq!(r.size_bytes, 1_048_576);
        assert_eq!(r.out_of_place.wrong, None);
        assert_eq!(r.in_place.busbw_gbps, 59.18);
        assert!(parse_row("  1048576  262144  float  sum  -1  30.91").is_none());
        assert!(parse_row("a b c d e f g h i j k l m").is_none());
        assert!(parse_row("1 1 float sum -1 NaN 1 1 0 1 1 1 0").is_none());
    }

    #[test]
    fn nvlink_single_node_passes_h100_thresholds() {
        let run = fixture("h100-8gpu-nvlink.txt");
        assert_eq!(run.rows.len(), 31);
        assert_eq!(run.ranks, 8);
        assert_eq!(run.hosts.len(), 1);
        assert!(run.complete());
        assert_eq!(run.avg_bus_bandwidth, Some(147.19));
        assert_eq!(run.out_of_bounds, Some((0, true)));
        assert!(run.malformed.is_empty(), "{:?}", run.malformed);
        let (fig, verdict) = check_bandwidth(&run, &h100());
        let fig = fig.expect("figures");
        assert!(verdict.is_ok(), "{verdict:?}");
        assert!((fig.large_message_bus_bandwidth.unwrap_or(0.0) - 477.98).abs() < 1e-9);
        assert!(fig.peak_bus_bandwidth > 470.0);
        // Raising the floor above what the run reached fails with both numbers named.
        let strict = Thresholds {
            min_avg_bus_bandwidth_g_bps: Some(300.0),
            ..h100()
        };
        let (_, verdict) = check_bandwidth(&run, &strict);
        let problems = verdict.expect_err("below threshold");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("147.19") && problems[0].contains("300"));
        // Single node: GDR is not exercised, and there are no INFO lines at all.
        assert!(
            matches!(check_gdr(&run), GdrVerdict::NotShown(m) if m.contains("NCCL_DEBUG=INFO"))
        );
    }

    #[test]
    fn large_message_threshold_uses_rows_at_or_above_the_size() {
        let run = fixture("h100-8gpu-nvlink.txt");
        let t = Thresholds {
            min_avg_bus_bandwidth_g_bps: None,
            min_large_message_bus_bandwidth_g_bps: Some(450.0),
            large_message_bytes: Some(268_435_456),
        };
        // 256 MiB reaches 418.48 GB/s: the minimum over the large rows decides.
        let (fig, verdict) = check_bandwidth(&run, &t);
        let problems = verdict.expect_err("418 < 450");
        assert!(problems[0].contains("418.48"), "{problems:?}");
        assert_eq!(
            fig.and_then(|f| f.large_message_bus_bandwidth),
            Some(418.48)
        );
        let t = Thresholds {
            large_message_bytes: Some(17_179_869_184),
            ..t
        };
        let problems = check_bandwidth(&run, &t).1.expect_err("no rows that large");
        assert!(
            problems[0].contains("largest size tested: 8589934592"),
            "{problems:?}"
        );
    }

    #[test]
    fn ib_two_nodes_with_gdr() {
        let run = fixture("h100-2node-ib-gdr.txt");
        assert_eq!(run.ranks, 16);
        assert_eq!(run.hosts.len(), 2);
        assert_eq!(run.rows.len(), 31);
        assert!(run.malformed.is_empty(), "{:?}", run.malformed);
        assert_eq!(run.transport.net_channels, 64);
        assert_eq!(run.transport.gdr_channels, 64);
        assert_eq!(run.transport.intra_node_channels, 16);
        assert!(run.transport.networks.contains("IB"));
        match check_gdr(&run) {
            GdrVerdict::Enabled(m) => assert!(m.contains("64") && m.contains("IB"), "{m}"),
            other => panic!("{other:?}"),
        }
        let t = Thresholds {
            min_avg_bus_bandwidth_g_bps: Some(80.0),
            min_large_message_bus_bandwidth_g_bps: Some(340.0),
            large_message_bytes: Some(8_589_934_592),
        };
        assert!(check_bandwidth(&run, &t).1.is_ok());
    }

    #[test]
    fn efa_libfabric_counts_as_gdr() {
        let run = fixture("h100-2node-efa.txt");
        assert_eq!(run.ranks, 16);
        assert!(run.transport.net_transports.contains("AWS Libfabric"));
        assert!(run.transport.networks.contains("AWS Libfabric"));
        assert_eq!(run.transport.net_channels, 48);
        assert!(matches!(check_gdr(&run), GdrVerdict::Enabled(_)));
        // The EKS training floor (300 GB/s at 8 GiB) is met by the fixture's ~350 GB/s.
        let t = Thresholds {
            min_avg_bus_bandwidth_g_bps: None,
            min_large_message_bus_bandwidth_g_bps: Some(300.0),
            large_message_bytes: Some(8_589_934_592),
        };
        assert!(check_bandwidth(&run, &t).1.is_ok());
    }

    #[test]
    fn ib_without_gdrdma_marker_is_gdr_off() {
        let run = fixture("h100-2node-ib-no-gdr.txt");
        assert_eq!(run.transport.net_channels, 32);
        assert_eq!(run.transport.gdr_channels, 0);
        match check_gdr(&run) {
            GdrVerdict::Disabled(m) => {
                assert!(m.contains("32 of 32"), "{m}");
                assert!(m.contains("via NET/IB/0"), "{m}");
                assert!(m.contains("GPU Direct RDMA Disabled"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        // Without GDR the bandwidth is well below an IB floor, too.
        let t = Thresholds {
            min_avg_bus_bandwidth_g_bps: Some(80.0),
            min_large_message_bus_bandwidth_g_bps: Some(340.0),
            large_message_bytes: Some(8_589_934_592),
        };
        assert_eq!(check_bandwidth(&run, &t).1.expect_err("slow").len(), 2);
    }

    #[test]
    fn wrong_values_and_out_of_bounds_fail() {
        let run = fixture("h100-8gpu-wrong.txt");
        assert!(run.complete());
        assert_eq!(run.out_of_bounds, Some((1_048_578, false)));
        assert_eq!(
            run.wrong_rows(),
            vec![(4_194_304, 2, 2), (8_388_608, 1_048_576, 1_048_576)]
        );
        let t = Thresholds {
            large_message_bytes: Some(1_073_741_824),
            ..h100()
        };
        let problems = check_bandwidth(&run, &t).1.expect_err("corrupt");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("#wrong > 0 at 4194304 B")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("out of bounds values: 1048578")),
            "{problems:?}"
        );
    }

    #[test]
    fn truncated_run_fails_even_when_fast() {
        let run = fixture("h100-8gpu-truncated.txt");
        assert!(!run.complete());
        assert_eq!(run.rows.len(), 22);
        assert_eq!(run.malformed.len(), 1);
        let t = Thresholds {
            min_avg_bus_bandwidth_g_bps: Some(1.0),
            min_large_message_bus_bandwidth_g_bps: None,
            large_message_bytes: None,
        };
        let problems = check_bandwidth(&run, &t).1.expect_err("truncated");
        assert!(
            problems[0].contains("truncated") && problems[0].contains("16777216"),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("malformed result line"))
        );
    }

    #[test]
    fn garbage_and_missing_thresholds_fail() {
        let run = parse("Error: cannot find libnccl.so.2\nSegmentation fault\n");
        assert!(run.rows.is_empty());
        assert!(check_bandwidth(&run, &h100()).1.is_err());
        let run = fixture("h100-8gpu-nvlink.txt");
        let none = Thresholds {
            min_avg_bus_bandwidth_g_bps: None,
            min_large_message_bus_bandwidth_g_bps: None,
            large_message_bytes: None,
        };
        let problems = check_bandwidth(&run, &none).1.expect_err("no thresholds");
        assert!(problems[0].contains("no bandwidth thresholds"));
    }

    #[test]
    fn socket_transport_is_not_gdr() {
        let run = parse(
            "h:1:1 [0] NCCL INFO Using network Socket\nh:1:2 [0] NCCL INFO Channel 00/0 : 1[0] -> 0[0] [receive] via NET/Socket/0\n",
        );
        assert!(matches!(check_gdr(&run), GdrVerdict::Disabled(m) if m.contains("socket")));
    }

    #[test]
    fn thresholds_from_recipe_json_and_precedence() {
        let recipe = Thresholds::from_json(&serde_json::json!({
            "minAvgBusBandwidthGBps": 300, "minLargeMessageBusBandwidthGBps": 420,
            "largeMessageBytes": 8589934592u64}));
        let params = Thresholds::from_json(&serde_json::json!({"minAvgBusBandwidthGBps": 120.5}));
        let t = params.or(recipe);
        assert_eq!(t.min_avg_bus_bandwidth_g_bps, Some(120.5));
        assert_eq!(t.min_large_message_bus_bandwidth_g_bps, Some(420.0));
        assert_eq!(t.large_message_bytes, Some(8_589_934_592));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,400}") {
            let run = parse(&s);
            let _ = check_bandwidth(&run, &Thresholds { min_avg_bus_bandwidth_g_bps: Some(1.0), min_large_message_bus_bandwidth_g_bps: Some(1.0), large_message_bytes: Some(1) });
            let _ = check_gdr(&run);
        }
    }
}
