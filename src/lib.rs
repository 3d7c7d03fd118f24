//! repowire: AI coding-agent sessions in tmux panes asking each other questions, with no
//! daemon. The state is a spool directory of plain files (see `spool` and repowire-spool(5));
//! every participant is a short-lived process: agent hooks, CLI commands, background
//! deliverers, and one MCP server per agent session.
//!
//! The modules form four layers, and a module uses only modules of its own layer or below
//! (never in a circle; `tests/structure.rs` checks both):
//!
//! 1. **Primitives**: the spool's files and locks (`spool`), waiting on them (`wait`),
//!    `time`, `error`, host names (`host`), and the outside world as repowire meets it:
//!    processes (`process`),
//!    tmux (`tmux`), the agents, one file each, with everything that differs between them
//!    (`agents`),
//!    a repository's own description of itself (`describe`).
//! 2. **Records** in the spool: `config`, `peer`, `history`, `message`.
//! 3. **Operations** on them: one way to reach a peer wherever it is (`reach`), asking and
//!    waiting (`ask`), typing into panes (`deliver`),
//!    other hosts (`remote`: the calling and the serving side), one question to several
//!    peers (`fanout`), answers from a read-only fork of a peer's session (`fork`),
//!    housekeeping (`gc`), an agent session's life from its events: registration, turns that
//!    claim and answer questions, its end (`session`).
//! 4. **Front ends**: the command line (`cli`, `commands`), the agents' hooks (`hook`), the
//!    MCP server (`mcp`), wiring into the agents' files (`setup`), starting and ending a team
//!    (`team`), `status`, the live view (`top`), `demo`, and the stand-in agent (`standin`).

pub mod agents;
pub mod ask;
pub mod cli;
mod commands;
pub mod config;
pub mod deliver;
pub mod demo;
pub mod describe;
pub mod error;
pub mod fanout;
pub mod fork;
pub mod gc;
pub mod history;
pub mod hook;
pub mod host;
pub mod mcp;
pub mod message;
pub mod peer;
pub mod process;
pub mod reach;
pub mod remote;
pub mod session;
pub mod setup;
pub mod spool;
pub mod standin;
pub mod status;
pub mod team;
pub mod time;
pub mod tmux;
pub mod top;
pub mod wait;

use std::path::PathBuf;

use anyhow::{Result, anyhow};

use cli::{Cli, Command};
use spool::Spool;

/// The spool directory: `dir` (from --home or REPOWIRE_HOME) unless empty, else ~/.repowire.
pub fn home(dir: Option<PathBuf>) -> Result<PathBuf> {
    match dir {
        Some(h) if !h.as_os_str().is_empty() => Ok(h),
        _ => spool::default_home()
            .ok_or_else(|| anyhow!("HOME is not set; set REPOWIRE_HOME to the spool directory")),
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let home = home(cli.home)?;
    // Output to a person (a table, a report) into a pipe whose reader is gone ends the command
    // quietly, as for any Unix tool. The processes that talk to programs keep Rust's default
    // (the write fails): a hook must exit 0, and the MCP server, the remote server, the
    // deliverer and a fork runner must finish what they are doing.
    let machine = matches!(
        cli.command,
        Command::Hook { .. }
            | Command::Mcp { .. }
            | Command::Remote
            | Command::Deliver { .. }
            | Command::Fork { .. }
            | Command::Standin { .. }
    );
    if !machine {
        // SAFETY: restoring a signal's default disposition has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // Hooks, setup, status, the demo and the remote server must work whatever state the
    // spool is in (or create it themselves); the rest open it first.
    let spool = || Spool::open(&home);
    match cli.command {
        Command::Hook { event, agent } => {
            hook::run(&home, event, agent);
            Ok(())
        }
        Command::Standin {
            events,
            no_last_message,
            outlive_pane,
            inbox,
        } => standin::run(&standin::Options {
            events,
            no_last_message,
            outlive_pane,
            inbox,
        }),
        Command::Setup(args) => setup::setup(&home, &args),
        Command::Uninstall { dry_run, purge } => setup::uninstall(&home, dry_run, purge),
        Command::Hooks(cmd) => setup::hooks(cmd),
        Command::Status { json } => status::run(&home, json),
        Command::Completions { shell } => cli::completions(shell),
        Command::Demo { keep } => demo::run(keep),
        // Its errors are replies too, even one opening the spool.
        Command::Remote => remote::serve(&home),
        Command::Peer(cmd) => commands::peer(&spool()?, cmd),
        Command::Log(args) => commands::log(&spool()?, args),
        Command::Gc(args) => commands::gc(&spool()?, args),
        Command::Top => top::run(&spool()?),
        Command::Up { file, timeout } => {
            team::up(&spool()?, &team::Team::load(file.as_deref())?, timeout)
        }
        Command::Down { file } => team::down(&spool()?, &team::Team::load(file.as_deref())?),
        Command::Config(cmd) => commands::config(&spool()?, cmd),
        Command::Mcp { agent } => {
            let spool = spool()?;
            session::mcp_started(&spool, agent);
            mcp::run(spool)
        }
        Command::Deliver { name } => deliver::pump(&spool()?, &name),
        Command::Fork { id } => fork::run(&spool()?, &id),
    }
}
