//! What an agent run tells its caller while it goes: typed events, rendered by the CLI.

use std::fmt;

/// One step of an agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentProgress<'a> {
    /// The namespace exists; agents start on `nodes` nodes.
    Started { nodes: usize, namespace: &'a str },
    /// Every agent pod is created; `done` of `total` have reported so far.
    Created { done: usize, total: usize },
    /// Another tenth of the agents has reported (or failed).
    Reported { done: usize, total: usize },
    /// The namespace and the agents still running in it are being deleted.
    CleaningUp { namespace: &'a str },
    /// The cleanup did not finish; what is left and how to remove it.
    CleanupFailed { warning: &'a str },
}

impl fmt::Display for AgentProgress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentProgress::Started { nodes, namespace } => write!(
                f,
                "running the agent on {nodes} node(s) in namespace {namespace}"
            ),
            AgentProgress::Created { done, total } => {
                write!(f, "agent pods created; agents done: {done}/{total}")
            }
            AgentProgress::Reported { done, total } => write!(f, "agents done: {done}/{total}"),
            AgentProgress::CleaningUp { namespace } => write!(
                f,
                "deleting namespace {namespace} and the agent pods still running in it"
            ),
            AgentProgress::CleanupFailed { warning } => write!(f, "warning: {warning}"),
        }
    }
}

/// Receives an agent run's progress.
pub type ProgressFn<'a> = &'a (dyn Fn(AgentProgress<'_>) + Sync);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_reads_as_before() {
        let lines: Vec<String> = [
            AgentProgress::Started {
                nodes: 3,
                namespace: "aiconform-snapshot-abc",
            },
            AgentProgress::Created { done: 1, total: 3 },
            AgentProgress::Reported { done: 2, total: 3 },
            AgentProgress::CleaningUp {
                namespace: "aiconform-snapshot-abc",
            },
            AgentProgress::CleanupFailed { warning: "left x" },
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            lines,
            [
                "running the agent on 3 node(s) in namespace aiconform-snapshot-abc",
                "agent pods created; agents done: 1/3",
                "agents done: 2/3",
                "deleting namespace aiconform-snapshot-abc and the agent pods still running in it",
                "warning: left x",
            ]
        );
    }
}
