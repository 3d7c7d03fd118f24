//! repowire: AI coding-agent sessions in tmux panes asking each other questions, with no
//! daemon. The state is a spool directory of plain files (see `spool` and repowire-spool(5));
//! every participant is a short-lived process: agent hooks, CLI commands, background
//! deliverers, and one MCP server per agent session.

pub mod ask;
pub mod cli;
mod commands;
pub mod deliver;
pub mod error;
pub mod gc;
pub mod history;
pub mod hook;
pub mod mcp;
pub mod message;
pub mod peer;
pub mod spool;
pub mod standin;
pub mod time;
pub mod tmux;
pub mod transcript;
pub mod wait;

use anyhow::{Result, anyhow};

use cli::{Cli, Command};
use spool::Spool;

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let home = match cli.home {
        Some(h) if !h.as_os_str().is_empty() => h,
        _ => spool::default_home()
            .ok_or_else(|| anyhow!("HOME is not set; set REPOWIRE_HOME to the spool directory"))?,
    };
    if let Command::Hook { event } = cli.command {
        hook::run(&home, event);
        return Ok(());
    }
    if let Command::Standin {
        events,
        no_last_message,
    } = cli.command
    {
        return standin::run(&standin::Options {
            events,
            no_last_message,
        });
    }
    let spool = Spool::open(&home)?;
    match cli.command {
        Command::Peer(cmd) => commands::peer(&spool, cmd),
        Command::Log(args) => commands::log(&spool, args),
        Command::Gc(args) => commands::gc(&spool, args),
        Command::Mcp => mcp::run(spool),
        Command::Deliver { name } => deliver::pump(&spool, &name),
        Command::Hook { .. } | Command::Standin { .. } => unreachable!("handled above"),
    }
}
