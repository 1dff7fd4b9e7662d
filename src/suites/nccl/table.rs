//! nccl-tests result output: runs, rows, footers and launcher failures.
//!
//! A row has size(B) count type redop [root], then out-of-place time(us) algbw busbw and a
//! check column, then the same for in-place. The check column is `#wrong` (wrong elements,
//! nccl-tests >= 2.13) or `error` (max error float, earlier versions); logs older than the
//! `root` column have 12 columns. A run opens with `# nThread ...` and closes with
//! `# Out of bounds values : N OK|FAILED` and `# Avg bus bandwidth : X`. One log may hold
//! several runs (a sweep for the plot, a large-message run for the floor).

use std::collections::BTreeSet;

/// One measurement (out-of-place or in-place) of a result row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub time_us: f64,
    pub algbw_gbps: f64,
    pub busbw_gbps: f64,
    /// `#wrong`; `None` when validation was off (`N/A`) or the log predates the column.
    pub wrong: Option<u64>,
    /// The pre-2.13 `error` column (max error of the check), when that is what the log has.
    pub max_error: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub size_bytes: u64,
    pub count: u64,
    pub dtype: String,
    pub redop: String,
    /// `None` in logs older than the `root` column.
    pub root: Option<i64>,
    pub out_of_place: Measurement,
    pub in_place: Measurement,
}

/// Which check column the table header announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckColumn {
    /// `#wrong` (nccl-tests >= 2.13).
    #[default]
    Wrong,
    /// `error` (max error float, before 2.13).
    Error,
}

/// One `all_reduce_perf` invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NcclRun {
    /// `# nccl-tests version X` (printed since about 2.17.6).
    pub tests_version: Option<String>,
    /// `minBytes` / `maxBytes` of the `# nThread` header.
    pub min_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
    pub check_column: CheckColumn,
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

/// A failure the launcher or nccl-tests reported, with the line that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchFailure {
    /// Exit status when the line carries one (`exit status 7`, mpirun's `Exit code: 1`).
    pub exit_code: Option<i32>,
    pub line: String,
}

fn parse_measurement(cols: &[&str], check: CheckColumn) -> Option<Measurement> {
    let [t, a, b, w] = cols else { return None };
    let f = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    let (wrong, max_error) = match (*w, check) {
        ("N/A", _) => (None, None),
        (w, CheckColumn::Wrong) => (Some(w.parse().ok()?), None),
        (w, CheckColumn::Error) => (None, Some(f(w)?)),
    };
    Some(Measurement {
        time_us: f(t)?,
        algbw_gbps: f(a)?,
        busbw_gbps: f(b)?,
        wrong,
        max_error,
    })
}

/// A result row (`#wrong` layout), or `None` if the line is not one.
pub fn parse_row(line: &str) -> Option<Row> {
    parse_row_as(line, CheckColumn::Wrong)
}

/// A result row in the layout the table header announced.
pub fn parse_row_as(line: &str, check: CheckColumn) -> Option<Row> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    let (root, rest) = match cols.len() {
        13 => (Some(cols[4].parse().ok()?), &cols[5..]),
        12 => (None, &cols[4..]),
        _ => return None,
    };
    Some(Row {
        size_bytes: cols[0].parse().ok()?,
        count: cols[1].parse().ok()?,
        dtype: cols[2].to_string(),
        redop: cols[3].to_string(),
        root,
        out_of_place: parse_measurement(&rest[..4], check)?,
        in_place: parse_measurement(&rest[4..], check)?,
    })
}

/// `key value` out of the `# nThread 1 nGpus 8 minBytes 8 maxBytes ...` header.
fn header_value(header: &str, key: &str) -> Option<u64> {
    let mut words = header.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()?.parse().ok()
}

/// A launcher or nccl-tests failure line: nccl-tests' `Test failure` / `Test NCCL failure` /
/// `Test CUDA failure`, the launch script's `all_reduce_perf exit status N`, mpirun's
/// `Exit code: N` and "exited with non-zero status" summary.
pub fn launch_failure(line: &str) -> Option<LaunchFailure> {
    let t = line.trim();
    let exit_after = |key: &str| -> Option<i32> {
        let (_, rest) = t.split_once(key)?;
        rest.trim_start_matches([' ', ':'])
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    if let Some(code) =
        exit_after("all_reduce_perf exit status").or_else(|| exit_after("container exit status"))
    {
        return (code != 0).then(|| LaunchFailure {
            exit_code: Some(code),
            line: t.to_string(),
        });
    }
    if t.starts_with("Exit code:") {
        let code = exit_after("Exit code:")?;
        return (code != 0).then(|| LaunchFailure {
            exit_code: Some(code),
            line: t.to_string(),
        });
    }
    let markers = [
        "Test failure common.cu:",
        "Test NCCL failure",
        "Test CUDA failure",
        "exited with non-zero status",
        "exited on signal",
    ];
    markers
        .iter()
        .any(|m| t.contains(m))
        .then(|| LaunchFailure {
            exit_code: None,
            line: t.to_string(),
        })
}

/// Runs and launcher failures of one nccl-tests log (the `NCCL INFO` lines are read by
/// [`super::transport`]).
pub fn parse_runs(text: &str) -> (Vec<NcclRun>, Vec<LaunchFailure>) {
    let mut runs: Vec<NcclRun> = Vec::new();
    let mut failures = Vec::new();
    let mut in_table = false;
    let mut pending_version: Option<String> = None;
    for raw in text.lines() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.contains("NCCL INFO") || trimmed.contains("NCCL WARN") {
            continue;
        }
        if let Some(f) = launch_failure(trimmed) {
            failures.push(f);
            continue;
        }
        let Some(comment) = trimmed.strip_prefix('#') else {
            if in_table && let Some(run) = runs.last_mut() {
                match parse_row_as(trimmed, run.check_column) {
                    Some(row) => run.rows.push(row),
                    None => run.malformed.push(trimmed.to_string()),
                }
            }
            continue;
        };
        let c = comment.trim();
        if let Some(v) = c.strip_prefix("nccl-tests version ") {
            pending_version = v.split_whitespace().next().map(str::to_string);
        } else if c.starts_with("nThread ") {
            runs.push(NcclRun {
                tests_version: pending_version.take(),
                min_bytes: header_value(c, "minBytes"),
                max_bytes: header_value(c, "maxBytes"),
                ..NcclRun::default()
            });
            in_table = false;
        } else if let Some(rest) = c.strip_prefix("Rank ") {
            // "#  Rank  0 Group  0 Pid  41210 on  p5-node-0 device  0 [0x18] NVIDIA H100 80GB HBM3"
            let run = current(&mut runs);
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
            let run = current(&mut runs);
            run.check_column = if c.contains("#wrong") {
                CheckColumn::Wrong
            } else {
                CheckColumn::Error
            };
            in_table = true;
        } else if let Some(v) = c.strip_prefix("Out of bounds values") {
            let v = v.trim_start_matches([' ', ':']).trim();
            let mut it = v.split_whitespace();
            if let Some(n) = it.next().and_then(|n| n.parse().ok()) {
                current(&mut runs).out_of_bounds = Some((n, it.next() == Some("OK")));
            }
            in_table = false;
        } else if let Some(v) = c.strip_prefix("Avg bus bandwidth") {
            current(&mut runs).avg_bus_bandwidth = v
                .trim_start_matches([' ', ':'])
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .filter(|v: &f64| v.is_finite());
            in_table = false;
        }
    }
    (runs, failures)
}

/// The run being read; a log cut before its `# nThread` header still gets one.
fn current(runs: &mut Vec<NcclRun>) -> &mut NcclRun {
    if runs.is_empty() {
        runs.push(NcclRun::default());
    }
    let last = runs.len() - 1;
    &mut runs[last]
}
