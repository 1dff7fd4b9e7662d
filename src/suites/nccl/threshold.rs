//! Bandwidth floors and anchors, and the bandwidth verdict of a log.
//!
//! Recipe data (`validation.nccl.allReduce`) holds, per scope (one node / several nodes) and
//! algorithm (NCCL's own choice / Ring), a `floor` the large-message busbw must reach and an
//! `anchor` (the published figure it is compared with), each with its `source` and whether
//! it is an `estimate`. On 2 nodes NCCL's Tree/NVLSTree exceeds the NIC line rate, and on
//! one node NVLS reaches ~480 GB/s where Ring gets ~370 (H100), so the two algorithms get
//! their own figures.

use serde::Deserialize;

use super::table::{LaunchFailure, NcclRun};

/// A published or estimated bus bandwidth figure.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    #[serde(rename = "busbwGBps")]
    pub busbw_gbps: f64,
    pub source: String,
    pub estimate: bool,
}

/// Floor and anchor for one (scope, algorithm).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub floor: Option<Figure>,
    pub anchor: Option<Figure>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByAlgo {
    pub default: Option<Reference>,
    pub ring: Option<Reference>,
}

/// `floors.singleNode` / `floors.multiNode`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Floors {
    pub single_node: Option<ByAlgo>,
    pub multi_node: Option<ByAlgo>,
}

/// Whether a run stayed in one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    SingleNode,
    MultiNode,
}

/// The allreduce algorithm family a run used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// NCCL's own choice (NVLS on one NVSwitch node, Tree/NVLSTree across nodes).
    Default,
    /// Ring: forced with NCCL_ALGO=Ring, or one node without NVLS.
    Ring,
}

impl Scope {
    /// The scope of a run over `nodes` nodes.
    pub fn of(nodes: usize) -> Scope {
        if nodes >= 2 {
            Scope::MultiNode
        } else {
            Scope::SingleNode
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Scope::SingleNode => "singleNode",
            Scope::MultiNode => "multiNode",
        }
    }
}

impl Algo {
    pub fn key(self) -> &'static str {
        match self {
            Algo::Default => "default",
            Algo::Ring => "ring",
        }
    }
}

impl Floors {
    pub fn get(&self, scope: Scope, algo: Algo) -> Option<&Reference> {
        let by = match scope {
            Scope::SingleNode => self.single_node.as_ref(),
            Scope::MultiNode => self.multi_node.as_ref(),
        }?;
        match algo {
            Algo::Default => by.default.as_ref(),
            Algo::Ring => by.ring.as_ref(),
        }
    }
}

/// Thresholds from params or `recipe.validation.nccl.allReduce`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Optional floor on `# Avg bus bandwidth` (the lowest over the log's complete runs).
    pub min_avg_bus_bandwidth_g_bps: Option<f64>,
    /// Explicit large-message floor; overrides `floors` when set.
    pub min_large_message_bus_bandwidth_g_bps: Option<f64>,
    /// Rows at or above this size are large messages.
    pub large_message_bytes: Option<u64>,
    pub floors: Floors,
}

impl Thresholds {
    /// Read the camelCase keys used in recipes; a malformed `floors` is an error naming it.
    pub fn from_json(v: &serde_json::Value) -> Result<Thresholds, String> {
        let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let floors = match v.get("floors") {
            None | Some(serde_json::Value::Null) => Floors::default(),
            Some(fl) => Floors::deserialize(fl).map_err(|e| {
                format!("validation.nccl.allReduce.floors: {e} (each figure is {{busbwGBps: N, source: TEXT, estimate: true|false}} under singleNode|multiNode . default|ring . floor|anchor)")
            })?,
        };
        Ok(Thresholds {
            min_avg_bus_bandwidth_g_bps: f("minAvgBusBandwidthGBps"),
            min_large_message_bus_bandwidth_g_bps: f("minLargeMessageBusBandwidthGBps"),
            large_message_bytes: v
                .get("largeMessageBytes")
                .and_then(serde_json::Value::as_u64),
            floors,
        })
    }

    /// The floor and anchor that apply to a run of this scope and algorithm.
    pub fn reference(&self, scope: Scope, algo: Algo) -> Reference {
        let mut r = self.floors.get(scope, algo).cloned().unwrap_or_default();
        if let Some(min) = self.min_large_message_bus_bandwidth_g_bps {
            r.floor = Some(Figure {
                busbw_gbps: min,
                source: "minLargeMessageBusBandwidthGBps".to_string(),
                estimate: false,
            });
        }
        r
    }
}

/// The bandwidth figures a verdict is based on.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthFigures {
    /// `# Avg bus bandwidth` of the first complete run (the sweep), or the row mean of a
    /// truncated one.
    pub avg_bus_bandwidth: f64,
    /// Lowest out-of-place busbw over the large-message rows of the floor run.
    pub large_message_bus_bandwidth: Option<f64>,
    /// Size of the row that gave it.
    pub large_message_size: Option<u64>,
    pub peak_bus_bandwidth: f64,
}

/// The outcome of the bandwidth check.
#[derive(Debug, Clone, PartialEq)]
pub struct BandwidthReport {
    pub figures: Option<BandwidthFigures>,
    pub scope: Scope,
    pub algo: Algo,
    pub reference: Reference,
    /// `Ok(summary)` or `Err(every problem found)`.
    pub verdict: Result<String, Vec<String>>,
}

fn cite(f: &Figure) -> String {
    format!(
        "{} GB/s ({}{})",
        f.busbw_gbps,
        f.source,
        if f.estimate { "; estimate" } else { "" }
    )
}

/// Integrity of every run: rows present, complete, no `#wrong`, no out-of-bounds values.
fn integrity(runs: &[NcclRun], failures: &[LaunchFailure], problems: &mut Vec<String>) {
    for f in failures.iter().take(3) {
        match f.exit_code {
            Some(code) => problems.push(format!(
                "the launcher exited with status {code}: `{}`",
                f.line
            )),
            None => problems.push(format!("nccl-tests reported a failure: `{}`", f.line)),
        }
    }
    let many = runs.len() > 1;
    for (i, run) in runs.iter().enumerate() {
        let which = if many {
            format!("run {} of {}: ", i + 1, runs.len())
        } else {
            String::new()
        };
        if !run.complete() {
            problems.push(format!(
                "{which}output truncated: no closing `# Out of bounds values` / `# Avg bus bandwidth` lines after {} rows (last complete size {} B)",
                run.rows.len(),
                run.max_size().unwrap_or(0)
            ));
        }
        for bad in run.malformed.iter().take(3) {
            problems.push(format!("{which}malformed result line: `{bad}`"));
        }
        let wrong = run.wrong_rows();
        if !wrong.is_empty() {
            let list: Vec<String> = wrong
                .iter()
                .map(|(s, a, b)| format!("{s} B ({a} out-of-place, {b} in-place)"))
                .collect();
            problems.push(format!(
                "{which}data corruption: #wrong > 0 at {}",
                list.join(", ")
            ));
        }
        if let Some((n, ok)) = run.out_of_bounds
            && (!ok || n > 0)
        {
            problems.push(format!("{which}out of bounds values: {n} (FAILED)"));
        }
    }
}

/// Judge the runs of a log: integrity always, then the large-message busbw of the floor run
/// (the last run with rows at or above `large_message_bytes`) against the floor for the
/// run's scope and algorithm.
pub fn check_bandwidth(
    runs: &[NcclRun],
    failures: &[LaunchFailure],
    t: &Thresholds,
    scope: Scope,
    algo: Algo,
) -> BandwidthReport {
    let reference = t.reference(scope, algo);
    let mut problems = Vec::new();
    let report = |figures, verdict| BandwidthReport {
        figures,
        scope,
        algo,
        reference: reference.clone(),
        verdict,
    };
    if runs.iter().all(|r| r.rows.is_empty()) {
        integrity(&[], failures, &mut problems);
        problems.push(
            "no result rows found: not all_reduce_perf output, or the run ended before the first size"
                .to_string(),
        );
        return report(None, Err(problems));
    }
    integrity(runs, failures, &mut problems);
    if reference.floor.is_none() && t.min_avg_bus_bandwidth_g_bps.is_none() {
        problems.push(format!(
            "no bandwidth floor for {} runs with the {} algorithm: set validation.nccl.allReduce.floors.{}.{}.floor (or minLargeMessageBusBandwidthGBps)",
            scope.key(),
            algo.key(),
            scope.key(),
            algo.key()
        ));
    }
    let peak = runs
        .iter()
        .flat_map(|r| &r.rows)
        .map(|r| r.out_of_place.busbw_gbps.max(r.in_place.busbw_gbps))
        .fold(0.0, f64::max);
    let large_bytes = t.large_message_bytes.unwrap_or(u64::MAX);
    let floor_run = runs
        .iter()
        .rev()
        .find(|r| r.rows.iter().any(|row| row.size_bytes >= large_bytes));
    let large = floor_run.and_then(|r| {
        r.rows
            .iter()
            .filter(|row| row.size_bytes >= large_bytes)
            .min_by(|a, b| {
                a.out_of_place
                    .busbw_gbps
                    .total_cmp(&b.out_of_place.busbw_gbps)
            })
            .map(|row| (row.size_bytes, row.out_of_place.busbw_gbps))
    });
    let first = runs
        .iter()
        .find(|r| !r.rows.is_empty())
        .expect("a run with rows");
    let avg = runs
        .iter()
        .find_map(|r| r.avg_bus_bandwidth)
        .unwrap_or_else(|| {
            // Truncated: the mean of what is there, for the report only.
            let n = first.rows.len() as f64;
            first
                .rows
                .iter()
                .map(|r| (r.out_of_place.busbw_gbps + r.in_place.busbw_gbps) / 2.0)
                .sum::<f64>()
                / n
        });
    let mut summary = Vec::new();
    if let Some(min) = t.min_avg_bus_bandwidth_g_bps {
        let lowest = runs
            .iter()
            .filter_map(|r| r.avg_bus_bandwidth)
            .fold(f64::INFINITY, f64::min);
        if lowest.is_finite() && lowest < min {
            problems.push(format!(
                "average bus bandwidth {lowest:.2} GB/s is below the minimum {min} GB/s"
            ));
        }
        summary.push(format!("avg busbw {avg:.2} GB/s (min {min})"));
    }
    if let Some(floor) = &reference.floor {
        match (t.large_message_bytes, large) {
            (None, _) => problems.push(
                "a large-message floor is set but largeMessageBytes is not".to_string(),
            ),
            (Some(bytes), None) => problems.push(format!(
                "no result rows at or above largeMessageBytes {bytes} B (largest size tested: {} B); run with -b {bytes} -e {}",
                runs.iter().filter_map(NcclRun::max_size).max().unwrap_or(0),
                bytes.saturating_mul(2)
            )),
            (Some(_), Some((size, bw))) => {
                let what = format!("busbw {bw:.2} GB/s at {size} B ({} run, {} algorithm)", scope.key(), algo.key());
                if bw < floor.busbw_gbps {
                    problems.push(format!("{what} is below the floor {}", cite(floor)));
                } else {
                    summary.push(format!("{what} >= floor {}", cite(floor)));
                }
            }
        }
    }
    if let (Some(anchor), Some((_, bw))) = (&reference.anchor, large) {
        summary.push(format!(
            "{:.0}% of the anchor {}",
            100.0 * bw / anchor.busbw_gbps.max(f64::MIN_POSITIVE),
            cite(anchor)
        ));
    }
    let figures = BandwidthFigures {
        avg_bus_bandwidth: avg,
        large_message_bus_bandwidth: large.map(|l| l.1),
        large_message_size: large.map(|l| l.0),
        peak_bus_bandwidth: peak,
    };
    let ranks = runs.iter().map(|r| r.ranks).max().unwrap_or(0);
    let hosts = runs.iter().map(|r| r.hosts.len()).max().unwrap_or(0);
    if problems.is_empty() {
        let msg = format!(
            "{ranks} ranks on {hosts} host(s): {}; peak {peak:.2} GB/s",
            summary.join(", ")
        );
        report(Some(figures), Ok(msg))
    } else {
        report(Some(figures), Err(problems))
    }
}
