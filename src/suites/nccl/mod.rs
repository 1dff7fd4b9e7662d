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

/// How many nodes a run spanned, and what says so. A log's own lines win over what a caller
/// states; with neither, the topology is unknown rather than assumed to be one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// `# Rank N ... on HOST` lines or NCCL's `comm ... nNodes` lines.
    Logged(usize),
    /// Not in the log: stated by the caller (the run it launched, `params.nodes`, the recipe).
    Stated(usize),
    Unknown,
}

impl Topology {
    pub fn scope(self) -> Option<Scope> {
        match self {
            Topology::Logged(n) | Topology::Stated(n) => Some(Scope::of(n)),
            Topology::Unknown => None,
        }
    }
}

/// The bandwidth verdict of a log, or why its topology leaves the verdict open.
#[derive(Debug, Clone, PartialEq)]
pub enum BandwidthCheck {
    Judged(BandwidthReport),
    /// The topology is unknown and the log meets one scope's floor but not the other's.
    Undetermined(String),
}

impl NcclLog {
    /// Nodes the runs spanned: hosts under `# Using devices`, else `nNodes` of NCCL's
    /// `comm` lines; 0 when the log shows neither.
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

    /// The topology from the log's own lines, else the `stated` node count.
    pub fn topology(&self, stated: Option<usize>) -> Topology {
        match (self.hosts(), stated) {
            (0, Some(n)) if n > 0 => Topology::Stated(n),
            (0, _) => Topology::Unknown,
            (n, _) => Topology::Logged(n),
        }
    }

    /// Ring when NCCL_ALGO forced it, or on one node when debug output shows no NVLS
    /// communicator; NCCL's own choice otherwise.
    pub fn algo(&self, scope: Scope) -> Algo {
        let t = &self.transport;
        let single_without_nvls = scope == Scope::SingleNode
            && t.info_lines > 0
            && t.first(|m| *m == Marker::NvlsComm).is_none();
        if t.ring_forced() || single_without_nvls {
            Algo::Ring
        } else {
            Algo::Default
        }
    }

    /// Bandwidth verdict against `t` for the run's scope and algorithm. With the topology
    /// unknown, the log is judged against both scopes' floors: a verdict stands when both
    /// agree, otherwise it is undetermined.
    pub fn check_bandwidth(&self, t: &Thresholds, stated_nodes: Option<usize>) -> BandwidthCheck {
        let judge = |scope| check_bandwidth(&self.runs, &self.failures, t, scope, self.algo(scope));
        let topology = self.topology(stated_nodes);
        if let Some(scope) = topology.scope() {
            let mut report = judge(scope);
            if let (Topology::Stated(n), Ok(summary)) = (topology, &mut report.verdict) {
                summary.push_str(&format!(
                    "; {n} node(s) as stated (the log has no `# Rank ... on HOST` lines)"
                ));
            }
            return BandwidthCheck::Judged(report);
        }
        let (single, multi) = (judge(Scope::SingleNode), judge(Scope::MultiNode));
        let floor = |r: &BandwidthReport| r.reference.floor.as_ref().map_or(0.0, |f| f.busbw_gbps);
        let unknown = "topology unknown (no `# Rank ... on HOST` lines, no NCCL `comm ... nNodes` lines, no stated node count)";
        match (single.verdict.is_ok(), multi.verdict.is_ok()) {
            (true, true) => {
                let mut r = if floor(&single) >= floor(&multi) {
                    single
                } else {
                    multi
                };
                if let Ok(summary) = &mut r.verdict {
                    *summary = format!(
                        "{unknown}: meets the floors of one node and of several; {summary}"
                    );
                }
                BandwidthCheck::Judged(r)
            }
            (false, false) => {
                let mut r = if floor(&single) <= floor(&multi) {
                    single
                } else {
                    multi
                };
                if let Err(problems) = &mut r.verdict {
                    problems.insert(
                        0,
                        format!("{unknown}: fails the floors of one node and of several"),
                    );
                }
                BandwidthCheck::Judged(r)
            }
            (single_ok, _) => {
                let (met, missed) = if single_ok {
                    (&single, &multi)
                } else {
                    (&multi, &single)
                };
                let why = |r: &BandwidthReport| match &r.verdict {
                    Ok(s) => s.clone(),
                    Err(p) => p.join("; "),
                };
                BandwidthCheck::Undetermined(format!(
                    "{unknown}: as a {} run it passes ({}), as a {} run it fails ({}); set params.nodes (or validation.nccl.nodes) to the number of nodes the run spanned",
                    met.scope.key(),
                    why(met),
                    missed.scope.key(),
                    why(missed)
                ))
            }
        }
    }

    /// Transport verdict against the recipe's expectation.
    pub fn judge_transport(&self, exp: &Expectation) -> TransportVerdict {
        judge(&self.transport, self.hosts(), exp)
    }
}

#[cfg(test)]
mod tests;
