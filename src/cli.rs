//! The command line, as clap definitions. The doc comments are the help text and the man pages.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::agents::{Agent, Event};
use crate::commands::{ConfigCommand, GcArgs, LogArgs, PeerCommand};
use crate::setup::{HooksCommand, SetupArgs};

/// Let AI coding-agent sessions ask each other questions.
///
/// Each agent session (Claude Code, Codex, Gemini CLI or OpenCode) is a peer. A question to a
/// peer reaches it when it is idle: posted to the agent's own inbox where it has one, else
/// typed into its tmux pane; its answer comes back from the peer's Stop hook. There is no
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
    /// Set up the agents for repowire: the spool, their hooks, the MCP server
    ///
    /// Creates the spool and configures each agent (--agent claude|codex|gemini|opencode; default
    /// every one found), running this binary by its absolute path. Claude Code: the four
    /// hooks in ~/.claude/settings.json and the MCP server at user scope in ~/.claude.json, as
    /// `claude mcp add -s user` would (with CLAUDE_CONFIG_DIR set, both in that directory).
    /// Codex ($CODEX_HOME, else ~/.codex): five hooks in hooks.json; in config.toml the MCP
    /// server, forwarding TMUX, TMUX_PANE and REPOWIRE_HOME, and
    /// features.daemon_auto_start = false. Codex then asks you to review the new hooks: trust
    /// them there; repowire never does it for you. Gemini CLI: the four hooks and the MCP
    /// server in ~/.gemini/settings.json. OpenCode ($XDG_CONFIG_HOME/opencode, else
    /// ~/.config/opencode): the plugin plugin/repowire.js, which runs the hooks on OpenCode's
    /// events, and the MCP server in opencode.json. Your own entries, the order of every key and TOML
    /// comments stay. Running it again changes nothing; hooks of another repowire binary are
    /// pointed at this one. The first change to a file keeps the original as
    /// FILE.repowire-backup. A file that is not valid JSON or TOML is refused, naming the
    /// line, and then nothing is changed.
    Setup(SetupArgs),

    /// Remove everything setup added, leaving your own settings as they were
    ///
    /// Removes repowire's hooks, its MCP server, its tool permission and the Codex setting it
    /// added, from the files of Claude Code, Codex, Gemini CLI and OpenCode (its plugin is
    /// deleted). A file that is then as it
    /// was before setup first changed it gets its original bytes back (from
    /// FILE.repowire-backup, which goes). The spool stays unless --purge.
    Uninstall {
        /// Show what would change, change nothing
        #[arg(long)]
        dry_run: bool,
        /// Also delete the spool (peers, messages, answers, history)
        #[arg(long)]
        purge: bool,
    },

    /// Install, remove or check only the Claude Code hooks
    #[command(subcommand)]
    Hooks(HooksCommand),

    /// Check that everything is in place, and say how to fix what is not
    ///
    /// Checks the spool and its permissions, the hooks and the MCP server (there, and running
    /// this binary), each installed agent's release against the ones repowire is tested with
    /// (older is a problem, newer a note), tmux and its version, and the inotify limits; shows
    /// the spool's size and oldest record; lists the peers and their state. Each problem comes
    /// with the command that fixes it; a warning (low inotify limits: repowire then polls) is
    /// worth knowing but does not count as a problem. A missing spool is reported, not
    /// created.
    ///
    /// Exit status 0 when all is well, 1 when something needs fixing.
    Status {
        /// Print JSON: {"ok", "checks": [{"check", "ok", "level", "detail", "fix"}], "peers"}
        #[arg(long)]
        json: bool,
    },

    /// Show the settings in the spool's config.yaml
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script (e.g. `repowire completions bash > ~/.local/share/bash-completion/completions/repowire`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: CompletionShell,
    },

    /// Watch one stand-in agent ask another and notify it, in a private tmux server
    ///
    /// Needs only tmux: no Claude Code, no setup. Your spool and your tmux server are not
    /// touched; it prints the command to watch the agents from another terminal, and removes
    /// everything it started when it ends (also on Ctrl-C).
    Demo {
        /// Leave the agents running afterwards, to attach and try them (Ctrl-C ends it)
        #[arg(long)]
        keep: bool,
    },

    /// Start the team of a team file: every peer not running, each in its own tmux window
    ///
    /// Reads repowire.yaml in the current directory (or -f FILE):
    ///
    ///   tmux_session: dev      # for the peers' windows; default: repowire
    ///   peers:
    ///     backend:  { path: ~/src/backend, description: "users API" }
    ///     frontend: { path: ~/src/frontend, agent: codex }
    ///     infra:    { path: ~/src/infra, agent: gemini, command: "gemini --yolo" }
    ///
    /// Each peer not running starts in a window named after it, in a tmux session of your tmux
    /// server (the one you are in, else the default one), in its directory (relative paths are
    /// taken from the file's directory), with its agent (claude, codex, gemini or opencode; default
    /// claude), or with `command` instead of the agent's own command line. It is that peer
    /// whatever its directory is called; `description` is shown in `peer list` and to the
    /// agents. Then it waits until every one has registered, and says of each that did not
    /// why: its agent is not installed, its path is missing, `repowire setup` was not run for
    /// its agent, the agent exited, or it waits on a question in its pane (such as Claude
    /// Code's "Do you trust the files in this folder?"). Running it again starts only what is
    /// missing. Messages sent to a peer while it was down are delivered once it is up.
    ///
    /// Exit status 0 when every peer runs, 1 otherwise.
    #[command(verbatim_doc_comment)]
    Up {
        /// The team file [default: ./repowire.yaml]
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// How long to wait for the agents to register
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::time::parse_duration)]
        timeout: Duration,
    },

    /// End the team's agents: those of the team file that run in its tmux session
    ///
    /// Closes each one's pane, as closing its terminal would (its agent runs its SessionEnd
    /// hook), and waits until the agent has ended; one still running 3 seconds later is sent
    /// SIGTERM. Messages sent to them meanwhile wait, and
    /// are delivered after the next `repowire up`. A peer running elsewhere (a pane you started
    /// yourself) is left alone and reported.
    ///
    /// Exit status 0 when none of them runs any more, 1 otherwise.
    Down {
        /// The team file [default: ./repowire.yaml]
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },

    /// List, register and message peers
    #[command(subcommand)]
    Peer(PeerCommand),

    /// Show the history of every question, answer, notification and broadcast
    Log(LogArgs),

    /// Watch the mesh live: peers, open asks, the latest messages
    ///
    /// A full-screen view, redrawn as the spool changes: each peer with its agent, status,
    /// queue and how long its turn has run and which question it answers; every open ask as
    /// ASKER → PEER with its age and state (queued, delivered, answering); the latest
    /// messages, newest first. Keys: q (or Esc, Ctrl-C) quits, ↑ ↓ select a peer, Enter shows
    /// its queue and recent history, ? shows help. It needs a terminal; scripts use `repowire
    /// peer list --json` and `repowire log --follow --json`.
    Top,

    /// Prune finished messages, their answers and stale temporary files
    Gc(GcArgs),

    /// Run the MCP server on stdio (each agent session starts its own)
    ///
    /// Its tools let the agent list the peers, ask one and get the answer, notify them and
    /// register a pane. `repowire setup` registers it with each agent.
    Mcp {
        /// The agent that runs it; with `codex` it also registers the Codex session in its
        /// pane as a peer (Codex runs its SessionStart hook only with the first prompt)
        #[arg(long, value_enum, default_value_t)]
        agent: Agent,
    },

    /// Run an agent hook (the agents call this; it reads the hook's JSON payload on stdin)
    ///
    /// Always exits 0 and prints nothing on stdout, whatever the input.
    Hook {
        /// The hook event
        #[arg(value_enum)]
        event: Event,
        /// The agent whose hook this is (their payloads differ)
        #[arg(long, value_enum, default_value_t)]
        agent: Agent,
    },

    /// Deliver queued messages to a peer while it is idle (started in the background by
    /// repowire itself)
    #[command(hide = true)]
    Deliver {
        /// The peer
        name: String,
    },

    /// Answer a question from a read-only fork of its peer's session (started in the
    /// background by repowire itself)
    #[command(hide = true)]
    Fork {
        /// The query id
        id: String,
    },

    /// Serve one request from another host's repowire: a JSON line on stdin, JSON lines on
    /// stdout (run through ssh by repowire itself)
    #[command(hide = true)]
    Remote,

    /// Run the stand-in agent used by the tests and the demo (in a tmux pane)
    #[command(hide = true)]
    Standin {
        /// Append every input event as a JSON line to FILE
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Leave last_assistant_message out of the Stop payload
        #[arg(long)]
        no_last_message: bool,
        /// Keep running after the terminal hangs up, until SIGTERM
        #[arg(long)]
        outlive_pane: bool,
        /// Serve an inbox as Claude Code 2.1.330 does (its hooks get the socket and token)
        #[arg(long)]
        inbox: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// `repowire completions SHELL`: the completion script on stdout.
pub fn completions(shell: CompletionShell) -> anyhow::Result<()> {
    use clap::CommandFactory;
    use std::io::Write;
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = Cli::command();
    // Into a buffer first: clap_complete panics on a write error such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "repowire", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(())
}

/// `hook EVENT [--agent AGENT]`, read without clap: agents run a hook on every turn, and
/// building the whole command tree to parse it costs more than the hook's own work. Any
/// other shape (`--help`, `--home`, a typo) returns `None` and goes through clap, which
/// parses these same forms to the same values (a unit test holds the two together).
pub fn hook_args(args: &[OsString]) -> Option<(Event, Agent)> {
    use clap::ValueEnum;
    let mut args = args.iter().map(|a| a.to_str());
    if args.next()? != Some("hook") {
        return None;
    }
    let (mut event, mut agent) = (None, None);
    while let Some(a) = args.next() {
        let a = a?;
        let value = match a.strip_prefix("--agent") {
            Some("") => args.next()??,
            Some(v) => v.strip_prefix('=')?,
            None if event.is_none() && !a.starts_with('-') => {
                event = Some(Event::from_str(a, false).ok()?);
                continue;
            }
            None => return None,
        };
        if agent.is_some() {
            return None;
        }
        agent = Some(Agent::named(value)?);
    }
    Some((event?, agent.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the fast path takes, clap would have parsed to the same event and agent; what
    /// it leaves to clap includes every form it cannot be sure of.
    #[test]
    fn hook_args_agrees_with_clap() {
        let taken = [
            "hook stop",
            "hook session-start",
            "hook prompt --agent codex",
            "hook interrupt --agent=codex",
            "hook --agent gemini session-end",
            "hook --agent=claude stop",
        ];
        let left = [
            "hook",
            "hook --help",
            "hook stop --help",
            "hook Stop",
            "hook stop extra",
            "hook stop --agent",
            "hook stop --agent nobody",
            "hook stop --agent codex --agent gemini",
            "hook stop --agentcodex",
            "hook stop --home /x",
            "--home /x hook stop",
            "peer list",
            "",
        ];
        for line in taken {
            let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
            let fast = hook_args(&args).unwrap_or_else(|| panic!("{line}: not taken"));
            let cli = Cli::try_parse_from(std::iter::once("repowire".into()).chain(args))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            match cli.command {
                Command::Hook { event, agent } => assert_eq!((event, agent), fast, "{line}"),
                other => panic!("{line}: clap parsed {other:?}"),
            }
        }
        for line in left {
            let args: Vec<OsString> = line
                .split(' ')
                .filter(|a| !a.is_empty())
                .map(OsString::from)
                .collect();
            assert_eq!(hook_args(&args), None, "{line}");
        }
        use std::os::unix::ffi::OsStringExt;
        let bad = [
            OsString::from("hook"),
            OsString::from_vec(b"st\xffop".to_vec()),
        ];
        assert_eq!(hook_args(&bad), None);
    }
}
