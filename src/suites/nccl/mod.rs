//! nccl-tests output and `NCCL_DEBUG=INFO` lines: what a run measured ([`table`]), which
//! transports NCCL used ([`transport`]), whether those are the recipe's fabric ([`expect`])
//! and whether the bandwidth reaches its floor ([`threshold`]). Pure: no I/O, unit-tested on
//! `fixtures/nccl/`.

pub mod expect;
pub mod table;
pub mod threshold;
pub mod transport;

pub use expect::{Expectation, Fabric, TransportVerdict, judge};
pub use table::{LaunchFailure, Measurement, NcclRun, Row, parse_row};
pub use threshold::{
    Algo, BandwidthFigures, BandwidthReport, Figure, Floors, Reference, Scope, Thresholds,
    check_bandwidth,
};
pub use transport::{Evidence, Marker};

/// A whole log: the runs it holds, launcher failures and the NCCL debug evidence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NcclLog {
    pub runs: Vec<NcclRun>,
    pub failures: Vec<LaunchFailure>,
    pub transport: Evidence,
}

/// Parse the combined output of one or more `all_reduce_perf` runs.
pub fn parse(text: &str) -> NcclLog {
    let (runs, failures) = table::parse_runs(text);
    NcclLog {
        runs,
        failures,
        transport: transport::evidence(text),
    }
}

impl NcclLog {
    /// Nodes the runs spanned: hosts under `# Using devices`, else `nNodes` of NCCL's
    /// `comm` lines.
    pub fn hosts(&self) -> usize {
        let listed = self.runs.iter().map(|r| r.hosts.len()).max().unwrap_or(0);
        let comm = self
            .transport
            .seen
            .iter()
            .filter_map(|s| match s.marker {
                Marker::Comm { nodes, .. } => Some(nodes as usize),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        listed.max(comm)
    }

    pub fn scope(&self) -> Scope {
        if self.hosts() >= 2 {
            Scope::MultiNode
        } else {
            Scope::SingleNode
        }
    }

    /// Ring when NCCL_ALGO forced it, or on one node when debug output shows no NVLS
    /// communicator; NCCL's own choice otherwise.
    pub fn algo(&self) -> Algo {
        let t = &self.transport;
        let single_without_nvls = self.scope() == Scope::SingleNode
            && t.info_lines > 0
            && t.first(|m| *m == Marker::NvlsComm).is_none();
        if t.ring_forced() || single_without_nvls {
            Algo::Ring
        } else {
            Algo::Default
        }
    }

    /// Bandwidth verdict against `t` for this log's scope and algorithm.
    pub fn check_bandwidth(&self, t: &Thresholds) -> BandwidthReport {
        check_bandwidth(&self.runs, &self.failures, t, self.scope(), self.algo())
    }

    /// Transport verdict against the recipe's expectation.
    pub fn judge_transport(&self, exp: &Expectation) -> TransportVerdict {
        judge(&self.transport, self.hosts(), exp)
    }
}

#[cfg(test)]
mod tests;
