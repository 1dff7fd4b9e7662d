//! Reports of a run, written to `--report-dir`: JUnit XML (`junit.xml`), CTRF JSON
//! (`ctrf.json`), the run record (`results.json`, read back by `aiconform submission`), the
//! performance data (`performance.json`) and the whole run on one page (`report.html`, with
//! a node × check grid for node-health runs; `performance.html` points to its performance
//! section). Cases that evaluate every node add one result per node
//! (`node-health/xid[gpu-1]`) to JUnit and CTRF.
//!
//! Renderers are pure functions of a [`RunReport`]; [`write_all`] is the only I/O, done when
//! the run finishes by [`ReportFiles`] (a reader of the run's events, as the console is). Reports
//! carry case ids, statuses, durations and messages — never recipe component values.

pub mod console;
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

use std::sync::Mutex;

use crate::runner::{EventSink, RunEvent, RunReport};

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

/// Writes every report into a directory when the run finishes.
pub struct ReportFiles {
    dir: PathBuf,
    written: Mutex<Option<Result<Vec<PathBuf>, ReportError>>>,
}

impl ReportFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ReportFiles {
            dir: dir.into(),
            written: Mutex::new(None),
        }
    }

    /// The files written, or why they could not be; none when the run never finished.
    pub fn finish(self) -> Result<Vec<PathBuf>, ReportError> {
        self.written
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(|| Ok(Vec::new()))
    }
}

impl EventSink for ReportFiles {
    fn event(&self, event: &RunEvent<'_>) {
        if let RunEvent::RunFinished { report } = event {
            *self.written.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(write_all(&self.dir, report));
        }
    }
}
