//! Reports of a run, written to `--report-dir`: JUnit XML (`junit.xml`), CTRF JSON
//! (`ctrf.json`), the run record (`results.json`, read back by `aiconform submission`), the
//! performance data (`performance.json`) and the whole run on one page (`report.html`, with
//! a node × check grid for node-health runs; `performance.html` points to its performance
//! section). Cases that evaluate every node add one result per node
//! (`node-health/xid[gpu-1]`) to JUnit and CTRF.
//!
//! Renderers are pure functions of a [`RunReport`]; [`write_all`] is the only I/O. Reports
//! carry case ids, statuses, durations and messages — never recipe component values.

pub mod ctrf;
pub mod html;
pub mod junit;
pub mod markup;
pub mod nodes;
pub mod overview;
pub mod perf;
pub mod results;
pub mod verdict;

use std::path::{Path, PathBuf};

use crate::runner::RunReport;

pub const JUNIT_FILE: &str = "junit.xml";
pub const CTRF_FILE: &str = "ctrf.json";
pub const RESULTS_FILE: &str = "results.json";
pub const PERF_JSON_FILE: &str = "performance.json";
pub const REPORT_HTML_FILE: &str = "report.html";
/// Kept for links to it: points to `report.html#performance`.
pub const PERF_HTML_FILE: &str = "performance.html";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}; check that --report-dir is writable")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render the {what} report: {message}")]
    Render { what: &'static str, message: String },
}

/// Every report, as `(file name, content)`, in a fixed order.
pub fn render_all(report: &RunReport) -> Result<Vec<(&'static str, String)>, ReportError> {
    Ok(vec![
        (JUNIT_FILE, junit::render(report)?),
        (CTRF_FILE, ctrf::render(report)?),
        (RESULTS_FILE, results::render(report)?),
        (PERF_JSON_FILE, perf::render_json(&report.metrics)?),
        (REPORT_HTML_FILE, html::render(report)),
        (PERF_HTML_FILE, html::performance_redirect()),
    ])
}

/// Write every report into `dir` (created if needed). Returns the paths written.
pub fn write_all(dir: &Path, report: &RunReport) -> Result<Vec<PathBuf>, ReportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for (name, content) in render_all(report)? {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}
