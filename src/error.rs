//! The errors a caller can act on, each with the exit code the CLI gives it.
//!
//! Everything else is an `anyhow` error with context, reported with exit code 1.

use std::fmt;

/// An error with a distinct meaning for scripts (`peer ask` exit codes) and a message that says
/// what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown peer '{name}'{hint}; `repowire peer list` shows the peers")]
    UnknownPeer { name: String, hint: Hint },

    #[error(
        "peer '{name}' is offline ({why}); start its agent again, or check it with `repowire peer list`"
    )]
    PeerOffline { name: String, why: String },

    #[error("no answer from '{peer}' within {secs}s (query {id}); {what}")]
    Timeout {
        peer: String,
        secs: u64,
        id: String,
        what: String,
        /// The peer still has the question: its answer can be fetched later.
        pending: bool,
    },

    #[error(
        "deadlock refused: {cycle}; {peer} cannot answer while it waits, so this question would never be answered. Answer from your own context instead, or ask after the pending question is answered"
    )]
    Deadlock { peer: String, cycle: String },

    #[error("query {id} to '{peer}' was cancelled by its asker; {what}")]
    Cancelled {
        id: String,
        peer: String,
        what: String,
    },

    #[error("query {id} to '{peer}' {why}")]
    Failed {
        id: String,
        peer: String,
        why: String,
    },

    #[error("{0}")]
    BadInput(String),

    #[error("tmux {command} failed: {stderr}")]
    Tmux { command: String, stderr: String },

    /// A fan-out that not every peer answered (see `fanout::outcome` for its code).
    #[error("{answered} of {asked} peers answered:\n  {why}")]
    FanOut {
        code: u8,
        answered: usize,
        asked: usize,
        why: String,
    },

    /// A peer on another host could not be reached or used (exit code 9), or its host
    /// reported one of the errors above (with that error's code).
    #[error("{why}")]
    Remote { code: u8, why: String },
}

impl Error {
    /// The process exit code for this error (documented in repowire-peer-ask(1)).
    pub fn exit_code(&self) -> u8 {
        match self {
            // Only an MCP call is cancelled: the CLI never exits with it.
            Error::Cancelled { .. } => 1,
            Error::BadInput(_) => 2,
            Error::UnknownPeer { .. } => 3,
            Error::PeerOffline { .. } => 4,
            Error::Timeout { .. } => 5,
            Error::Deadlock { .. } => 6,
            Error::Failed { .. } => 7,
            Error::Tmux { .. } => 8,
            Error::Remote { code, .. } | Error::FanOut { code, .. } => *code,
        }
    }
}

/// An optional "did you mean" suffix for [`Error::UnknownPeer`].
#[derive(Debug, Default)]
pub struct Hint(pub Option<String>);

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, " (did you mean '{s}'?)"),
            None => Ok(()),
        }
    }
}
