//! The command line, as clap definitions. The doc comments are the help text and the man pages.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::hook;

/// Let AI coding-agent sessions in tmux ask each other questions.
///
/// Each agent session (Claude Code in a tmux pane) is a peer. A question to a peer is typed
/// into its pane when it is idle; its answer comes back from the peer's Stop hook. There is no
/// daemon: the state is a spool directory of plain files (see repowire-spool(5)).
#[derive(Debug, Parser)]
#[command(
    name = "repowire",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The spool directory [default: ~/.repowire]
    #[arg(long, env = "REPOWIRE_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, register and message peers
    #[command(subcommand)]
    Peer(PeerCommand),

    /// Show the history of every question, answer, notification and broadcast
    Log(LogArgs),

    /// Prune finished messages, their answers and stale temporary files
    Gc(GcArgs),

    /// Run the MCP server on stdio (each agent session starts its own)
    ///
    /// Its tools let the agent list the peers, ask one and get the answer, notify them and
    /// register a pane. Register it with Claude Code once:
    /// claude mcp add -s user repowire -- /abs/path/repowire mcp
    Mcp,

    /// Run an agent hook (Claude Code calls this; it reads the hook's JSON payload on stdin)
    ///
    /// Always exits 0 and prints nothing on stdout, whatever the input.
    Hook {
        /// The hook event
        #[arg(value_enum)]
        event: hook::Event,
    },

    /// Deliver queued messages to a peer while it is idle (started in the background by
    /// repowire itself)
    #[command(hide = true)]
    Deliver {
        /// The peer
        name: String,
    },

    /// Run the stand-in agent used by the tests and the demo (in a tmux pane)
    #[command(hide = true)]
    Standin {
        /// Append every input event as a JSON line to FILE
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Leave last_assistant_message out of the Stop payload
        #[arg(long)]
        no_last_message: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// List the peers with their status (online, busy, offline), pane, path and last activity
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },

    /// Give the agent in a tmux pane a peer name
    ///
    /// Claude Code sessions register themselves through the SessionStart hook, named after
    /// their repository. Use this to choose the name: it is kept when the session restarts in
    /// that pane or that path.
    Register {
        /// The peer name: letters, digits, '.', '_' and '-'
        name: String,
        /// The tmux session, window or pane the agent runs in (e.g. backend, backend:1, %3)
        #[arg(short = 't', long = "tmux-session", value_name = "TARGET")]
        tmux_session: String,
        /// The agent's working directory
        #[arg(short = 'p', long, value_name = "PATH")]
        path: PathBuf,
    },

    /// Forget a peer (messages already queued for it stay in the spool)
    Unregister {
        /// The peer name
        name: String,
    },

    /// Ask a peer a question and print its answer
    ///
    /// The question is typed into the peer's pane when it is idle, after the questions queued
    /// before it. The answer is printed on stdout. On a terminal, progress goes to stderr.
    ///
    /// Exit status: 0 answered, 1 other error, 2 bad input, 3 unknown peer, 4 peer offline,
    /// 5 timeout (the error names the query id; fetch the answer later with repowire peer
    /// wait), 6 deadlock refused, 7 the question failed, 8 tmux failed.
    Ask {
        /// The peer name
        name: String,
        /// The question ('-' reads it from stdin)
        text: String,
        /// How long to wait for the answer (e.g. 90s, 5m)
        #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = parse_duration)]
        timeout: Duration,
        /// Print the query id and return at once; fetch the answer with repowire peer wait ID
        #[arg(long)]
        no_wait: bool,
    },

    /// Wait for the answer to an earlier question and print it
    ///
    /// Prints it at once if it has come. Exit status as for repowire peer ask.
    Wait {
        /// The query id printed by `peer ask --no-wait` or by a timeout
        id: String,
        /// How long to wait for the answer (e.g. 90s, 5m)
        #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = parse_duration)]
        timeout: Duration,
    },

    /// Send a peer a message that needs no answer; returns at once
    ///
    /// A busy peer gets it when its turn ends, an offline one when it comes back, in order.
    Notify {
        /// The peer name
        name: String,
        /// The message ('-' reads it from stdin)
        text: String,
    },

    /// Send a message to every online peer but yourself; returns at once
    Broadcast {
        /// The message ('-' reads it from stdin)
        text: String,
    },
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep printing new entries as they come
    #[arg(short, long)]
    pub follow: bool,
    /// Only messages from or to this peer
    #[arg(long, value_name = "NAME")]
    pub peer: Option<String>,
    /// Print the raw JSON lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Prune finished messages older than this
    #[arg(long, default_value = "7d", value_name = "AGE", value_parser = parse_age)]
    pub older_than: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::time::parse_duration(s)
}

fn parse_age(s: &str) -> Result<Duration, String> {
    if let Some(days) = s.strip_suffix('d') {
        return days
            .parse::<u64>()
            .map(|d| Duration::from_secs(d * 86_400))
            .map_err(|_| format!("'{s}' is not a number of days"));
    }
    crate::time::parse_duration(s)
}
