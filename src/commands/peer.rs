//! `repowire peer …`: listing, naming and describing peers, and talking to them (ask, wait,
//! notify, broadcast), with results for people (tables, progress) and for scripts (`--json`).

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;

use crate::agents::Agent;
use crate::ask::Progress;
use crate::config::Config;
use crate::error::Error;
use crate::fanout;
use crate::message;
use crate::peer::{self, Status, Transport};
use crate::reach::{self, Target};
use crate::remote;
use crate::spool::Spool;
use crate::team;
use crate::time;
use crate::time::now_ms;

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// List the peers with their status (online, busy, offline), pane, path and last activity
    ///
    /// VIA says how each is reached: inbox (posted to the agent's own inbox, in tmux or not),
    /// tmux (typed into its pane) or fork (outside tmux without an inbox: asked through
    /// read-only forks of its session only).
    ///
    /// With --all, also the peers of the hosts listed under `remotes:` in config.yaml, named
    /// NAME@HOST, asked over ssh all at once; a host that does not answer within 5 seconds is
    /// shown as unreachable, with the reason.
    ///
    /// DESCRIPTION is what a person gave the peer (the team file, `peer describe`), else the
    /// first line of prose of its repository's CLAUDE.md, AGENTS.md or README.md.
    List {
        /// Print JSON instead of a table (with --all, remote peers have a "host"; an
        /// unreachable host is {"host", "status": "unreachable", "error"})
        #[arg(long)]
        json: bool,
        /// Include the peers of the remotes in config.yaml
        #[arg(long)]
        all: bool,
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
        /// One line on what the peer knows (see `peer describe`)
        #[arg(short = 'd', long, value_name = "TEXT")]
        description: Option<String>,
    },

    /// Start one peer in a new tmux window, as `repowire up` does for a team file's peers
    ///
    /// Starts its agent in DIR, in a window named NAME of tmux session `repowire` (or
    /// --tmux-session) of your tmux server, and waits until it has registered as NAME. Exit
    /// status 0 when it runs, 1 otherwise.
    Spawn {
        /// The peer name: letters, digits, '.', '_' and '-'
        name: String,
        /// Its directory
        #[arg(short = 'p', long, value_name = "DIR")]
        path: PathBuf,
        /// Its agent
        #[arg(long, value_enum, default_value_t)]
        agent: Agent,
        /// The command line that starts it, instead of the agent's own (run by the shell)
        #[arg(long, value_name = "COMMAND")]
        command: Option<String>,
        /// One line on what the peer knows
        #[arg(short = 'd', long, value_name = "TEXT")]
        description: Option<String>,
        /// The tmux session to put its window in
        #[arg(long, value_name = "NAME", default_value = "repowire")]
        tmux_session: String,
        /// How long to wait for it to register
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::time::parse_duration)]
        timeout: Duration,
    },

    /// Set the one line that tells the agents what a peer knows
    ///
    /// It is shown in `peer list` and by the list_peers tool, and stays across the peer's
    /// restarts. At most 100 characters, one line. An empty TEXT gives the peer its
    /// repository's own again: the first line of prose of its CLAUDE.md, AGENTS.md or
    /// README.md.
    Describe {
        /// The peer name
        name: String,
        /// The description
        text: String,
    },

    /// Forget a peer (messages already queued for it stay in the spool)
    Unregister {
        /// The peer name
        name: String,
    },

    /// Ask a peer (or several) a question and print the answer
    ///
    /// The question reaches the peer when it is idle (posted to its inbox, else typed into its
    /// pane), after the questions queued before it. The answer is printed on stdout. On a
    /// terminal, progress goes to stderr.
    ///
    /// Several names (or --all: every peer not offline, but you) ask each of them at once.
    /// Each answer is printed as it comes, under a line `==> NAME <==`; a peer that does not
    /// answer (unknown, offline, deadlock refused, timeout with its query id) is reported on
    /// stderr and does not hold up the others. Exit status 0 when all answered, 10 when some
    /// did, and when none did the status of the first named peer's error. With --no-wait,
    /// each line is NAME QUERY-ID.
    ///
    /// A peer on another host is NAME@HOST, HOST being anything ssh takes (an alias from your
    /// ssh config too): repowire runs `ssh HOST repowire remote` (or $REPOWIRE_SSH instead of
    /// ssh) and the question goes through the spool there. ssh runs in batch mode: it must log
    /// in without a prompt. The query id of such a question is ID@HOST.
    ///
    /// Exit status: 0 answered, 1 other error, 2 bad input, 3 unknown peer, 4 peer offline,
    /// 5 timeout (the error names the query id; fetch the answer later with repowire peer
    /// wait), 6 deadlock refused, 7 the question failed, 8 tmux failed, 9 the other host could
    /// not be reached or used (ssh failed, authentication failed, no repowire there, the
    /// connection was lost).
    Ask {
        /// The peer's name (NAME@HOST for another host's), several for a fan-out, then the
        /// question ('-' reads it from stdin)
        #[arg(value_name = "NAME... QUESTION", required = true, num_args = 1..)]
        args: Vec<OsString>,
        /// Ask every peer not offline but you
        #[arg(long)]
        all: bool,
        /// Answer at once from a read-only fork of the peer's session, whatever the peer is
        /// doing (busy, offline: its last session). Nothing is typed into its pane; the fork
        /// can read files but not change them or run commands, and leaves no session behind.
        /// It re-reads the whole session, which costs tokens. Claude Code and Codex peers.
        #[arg(long)]
        fork: bool,
        /// How long to wait for the answer (e.g. 90s, 5m) [default: ask_timeout in config.yaml, 120s]
        #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
        timeout: Option<Duration>,
        /// Print the query id and return at once; fetch the answer with repowire peer wait ID
        #[arg(long)]
        no_wait: bool,
    },

    /// Wait for the answer to an earlier question and print it
    ///
    /// Prints it at once if it has come. Exit status as for repowire peer ask.
    Wait {
        /// The query id printed by `peer ask --no-wait` or by a timeout (ID@HOST for a peer on
        /// another host)
        id: String,
        /// How long to wait for the answer (e.g. 90s, 5m) [default: ask_timeout in config.yaml, 120s]
        #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
        timeout: Option<Duration>,
    },

    /// Send a peer a message that needs no answer; returns at once
    ///
    /// A busy peer gets it when its turn ends, an offline one when it comes back, in order.
    Notify {
        /// The peer name, or NAME@HOST
        name: String,
        /// The message ('-' reads it from stdin)
        text: OsString,
    },

    /// Send a message to every online peer but yourself; returns at once
    Broadcast {
        /// The message ('-' reads it from stdin)
        text: OsString,
        /// Also to the online peers of the remotes in config.yaml (exit status 9 if a host
        /// could not be reached; the others still get it)
        #[arg(long)]
        all: bool,
    },
}

pub fn peer(spool: &Spool, cmd: PeerCommand) -> Result<()> {
    match cmd {
        PeerCommand::List { json, all } => list(spool, json, all),
        PeerCommand::Register {
            name,
            tmux_session,
            path,
            description,
        } => {
            let p = peer::register(spool, &name, &tmux_session, &path, description.as_deref())?;
            println!(
                "registered {} (pane {}, {})",
                p.name,
                p.pane,
                p.path.display()
            );
            Ok(())
        }
        PeerCommand::Unregister { name } => {
            peer::unregister(spool, &name)?;
            println!("unregistered {name}");
            Ok(())
        }
        PeerCommand::Ask {
            mut args,
            all,
            fork,
            timeout,
            no_wait,
        } => {
            let text = args.pop().expect("clap requires an argument");
            let names = args
                .into_iter()
                .map(|n| {
                    n.into_string()
                        .map_err(|n| Error::BadInput(format!("invalid peer name {n:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            match (names.is_empty(), all) {
                (true, false) => {
                    return Err(Error::BadInput(
                        "name the peer to ask before the question (or several, or --all for every one)".into(),
                    )
                    .into());
                }
                (false, true) => {
                    return Err(Error::BadInput(format!(
                        "--all asks every peer: give only the question, not {}",
                        names.join(" ")
                    ))
                    .into());
                }
                _ => {}
            }
            let text = text_arg(text)?;
            let timeout = timeout.unwrap_or(Config::load(spool)?.ask_timeout);
            let how = (timeout, fork);
            match names.as_slice() {
                [name] if !all => ask_one(spool, name, &text, how, no_wait),
                _ => ask_many(spool, names, &text, how, no_wait),
            }
        }
        PeerCommand::Spawn {
            name,
            path,
            agent,
            command,
            description,
            tmux_session,
            timeout,
        } => {
            team::check_session(&tmux_session)?;
            let member = team::Member::new(
                &name,
                &path,
                Some(agent.name()),
                description.as_deref(),
                command,
            )
            .map_err(|e| Error::BadInput(format!("{e:#}")))?;
            let team = team::Team {
                tmux_session,
                members: vec![member],
            };
            team::up(spool, &team, timeout)
        }
        PeerCommand::Describe { name, text } => {
            let p = peer::set_description(spool, &name, &text)?;
            match (&p.description, p.described) {
                (Some(d), true) => println!("{name}: {d}"),
                (Some(d), false) => println!("{name}: {d} (from its repository)"),
                (None, _) => println!("{name}: no description (its repository has none to give)"),
            }
            Ok(())
        }
        PeerCommand::Wait { id, timeout } => {
            let timeout = timeout.unwrap_or(Config::load(spool)?.ask_timeout);
            let waiting = reach::waiting(spool, &id)?;
            let who = waiting.who().to_string();
            let answer = wait_printing(&who, |show| waiting.answer(spool, timeout, show))?;
            print_answer(&answer)
        }
        PeerCommand::Notify { name, text } => {
            let text = text_arg(text)?;
            println!("{}", reach::notify(spool, Target::parse(&name)?, &text)?);
            Ok(())
        }
        PeerCommand::Broadcast { text, all } => {
            let text = text_arg(text)?;
            let hosts = if all {
                Config::load(spool)?.remotes
            } else {
                Vec::new()
            };
            let (sent, failed) = reach::broadcast(spool, &text, &hosts)?;
            println!("{sent}");
            // Copies that were published are sent; failing for the rest would invite a retry
            // that sends them twice. Only a broadcast that reached nobody fails.
            if sent.now.is_empty() && sent.later.is_empty() && !sent.failed.is_empty() {
                return Err(anyhow::anyhow!("the broadcast reached nobody"));
            }
            if failed.is_empty() {
                return Ok(());
            }
            Err(Error::Remote {
                code: remote::EXIT_REMOTE,
                why: failed.join("; "),
            }
            .into())
        }
    }
}

/// `peer ask NAME`: one peer, the answer alone on stdout.
fn ask_one(
    spool: &Spool,
    name: &str,
    text: &str,
    (timeout, fork): (Duration, bool),
    no_wait: bool,
) -> Result<()> {
    let target = Target::parse(name)?;
    if no_wait {
        println!(
            "{}",
            reach::ask_no_wait(spool, target, text, timeout, fork)?
        );
        return Ok(());
    }
    let question = reach::ask(spool, target, text, timeout, fork)?;
    let answer = wait_printing(name, |show| question.answer(spool, None, show))?;
    print_answer(&answer)
}

/// `peer ask A B "Q"` and `--all`: each answer under `==> NAME <==` as it comes.
fn ask_many(
    spool: &Spool,
    names: Vec<String>,
    text: &str,
    (timeout, fork): (Duration, bool),
    no_wait: bool,
) -> Result<()> {
    let from = peer::sender_name(spool)?;
    let names = if names.is_empty() {
        let everyone = fanout::everyone(spool, &from)?;
        if everyone.is_empty() {
            return Err(Error::BadInput(
                "no peer to ask: there is none but you, or all are offline; `repowire peer list` shows them".into(),
            )
            .into());
        }
        everyone
    } else {
        names
    };
    let mut out = std::io::stdout().lock();
    if no_wait {
        let mut replies = Vec::new();
        for name in &names {
            let id = Target::parse(name)
                .map_err(anyhow::Error::from)
                .and_then(|target| reach::ask_no_wait(spool, target, text, timeout, fork));
            if let Ok(id) = &id {
                writeln!(out, "{name} {id}")?;
            }
            replies.push(fanout::Reply {
                peer: name.clone(),
                answer: id,
            });
        }
        return fanout::outcome(&names, &replies);
    }
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let (mut answered, mut printed) = (0, 0);
    let mut write_err = None;
    let replies = fanout::ask(spool, &names, text, (timeout, fork), None, &mut |r| {
        if let Ok(answer) = &r.answer {
            answered += 1;
            let sep = if printed > 0 { "\n" } else { "" };
            printed += 1;
            if tty {
                eprint!("\r\x1b[2K");
            }
            let nl = if answer.ends_with('\n') { "" } else { "\n" };
            if let Err(e) = write!(out, "{sep}==> {} <==\n{answer}{nl}", r.peer).and(out.flush()) {
                write_err.get_or_insert(e);
            }
        }
        if tty {
            eprint!(
                "\r\x1b[2K{answered} of {} answered ({}s)",
                names.len(),
                start.elapsed().as_secs()
            );
        }
    });
    if tty {
        eprint!("\r\x1b[2K");
    }
    if let Some(e) = write_err {
        return Err(e.into());
    }
    fanout::outcome(&names, &replies)
}

/// The text argument, or stdin for `-`. Text that is not UTF-8 is refused, not mangled.
fn text_arg(text: OsString) -> Result<String> {
    if text != "-" {
        return text.into_string().map_err(|_| {
            Error::BadInput(
                "the message is not valid UTF-8; convert it to UTF-8 first (e.g. with iconv)"
                    .into(),
            )
            .into()
        });
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .take(message::MAX_TEXT as u64 + 1)
        .read_to_end(&mut buf)
        .context("cannot read the message from stdin")?;
    if buf.len() > message::MAX_TEXT {
        // Cut at the limit, it may end inside a character: say what is wrong with it.
        return Err(message::too_long(None).into());
    }
    String::from_utf8(buf).map_err(|_| {
        Error::BadInput(
            "the message on stdin is not valid UTF-8; convert it (e.g. with iconv) first".into(),
        )
        .into()
    })
}

fn print_answer(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Runs `wait`, showing the progress it reports on stderr when that is a terminal.
fn wait_printing<T>(
    peer: &str,
    wait: impl FnOnce(Option<&mut dyn FnMut(Progress)>) -> Result<T>,
) -> Result<T> {
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut show = |p: Progress| eprint!("\r\x1b[2K{peer}: {p} ({}s)", start.elapsed().as_secs());
    let res = wait(tty.then_some(&mut show as _));
    if tty {
        eprint!("\r\x1b[2K");
    }
    res
}

#[derive(Serialize)]
struct PeerRow<'a> {
    name: &'a str,
    status: Status,
    agent: &'a str,
    pane: &'a str,
    tmux_socket: &'a Path,
    path: &'a Path,
    session_id: Option<&'a str>,
    last_activity_ms: u64,
    queued: usize,
    description: Option<&'a str>,
    /// How its live session is reached: `inbox`, `tmux` or `fork` (asked by fork only).
    transport: Transport,
    /// Outside tmux without an inbox: asked by fork only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fork_only: bool,
}

/// A peer of another host in `peer list --all --json`.
#[derive(Serialize)]
struct RemoteRow<'a> {
    name: String,
    host: &'a str,
    status: Status,
    agent: &'a str,
    pane: &'a str,
    path: &'a Path,
    last_activity_ms: u64,
    queued: usize,
    description: Option<&'a str>,
    /// How the peer is reached there; absent when that host's repowire does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'a str>,
}

/// A remote host that could not be listed, in `peer list --all --json`.
#[derive(Serialize)]
struct UnreachableRow<'a> {
    host: &'a str,
    status: &'static str,
    error: &'a str,
}

fn list(spool: &Spool, json: bool, all: bool) -> Result<()> {
    let peers = peer::all(spool)?;
    let panes = peer::live_panes(&peers);
    let open = message::open_messages(spool)?;
    let rows: Vec<PeerRow> = peers
        .iter()
        .map(|p| PeerRow {
            name: &p.name,
            status: peer::status_of(p, &panes).0,
            agent: p.agent.name(),
            pane: &p.pane,
            tmux_socket: &p.tmux_socket,
            path: &p.path,
            session_id: p.session_id.as_deref(),
            last_activity_ms: p.last_activity_ms,
            queued: open.iter().filter(|m| m.to == p.name).count(),
            description: p.description.as_deref(),
            transport: p.transport(),
            fork_only: p.fork_only(),
        })
        .collect();
    let hosts = if all {
        Config::load(spool)?.remotes
    } else {
        Vec::new()
    };
    if all && hosts.is_empty() && !json {
        eprintln!(
            "no remotes: list other hosts under `remotes:` in {}",
            spool.path("config.yaml").display()
        );
    }
    let remotes = remote::list(&hosts);
    let mut out = std::io::stdout().lock();
    if json {
        let mut values = rows
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        for r in &remotes {
            match &r.peers {
                Ok(peers) => {
                    for p in peers {
                        values.push(serde_json::to_value(RemoteRow {
                            name: format!("{}@{}", p.name, r.host),
                            host: &r.host,
                            status: p.status,
                            agent: &p.agent,
                            pane: &p.pane,
                            path: &p.path,
                            last_activity_ms: p.last_activity_ms,
                            queued: p.queued,
                            description: p.description.as_deref(),
                            transport: p.transport.as_deref(),
                        })?);
                    }
                }
                Err(e) => values.push(serde_json::to_value(UnreachableRow {
                    host: &r.host,
                    status: "unreachable",
                    error: e,
                })?),
            }
        }
        serde_json::to_writer_pretty(&mut out, &values)?;
        writeln!(out)?;
        return Ok(());
    }
    // name, status, agent, transport, pane, last activity, path, description
    type Line<'a> = (
        String,
        &'a str,
        &'a str,
        String,
        &'a str,
        u64,
        String,
        &'a str,
    );
    let mut lines: Vec<Line> = rows
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                r.status.as_str(),
                r.agent,
                r.transport.to_string(),
                if r.pane.is_empty() { "-" } else { r.pane },
                r.last_activity_ms,
                r.path.display().to_string(),
                r.description.unwrap_or(""),
            )
        })
        .collect();
    let mut unreachable = Vec::new();
    for r in &remotes {
        match &r.peers {
            Ok(peers) => lines.extend(peers.iter().map(|p| {
                (
                    format!("{}@{}", p.name, r.host),
                    p.status.as_str(),
                    p.agent.as_str(),
                    p.transport.clone().unwrap_or_else(|| "?".into()),
                    if p.pane.is_empty() {
                        "-"
                    } else {
                        p.pane.as_str()
                    },
                    p.last_activity_ms,
                    p.path.display().to_string(),
                    p.description.as_deref().unwrap_or(""),
                )
            })),
            Err(e) => unreachable.push(format!("{}: unreachable: {e}", r.host)),
        }
    }
    if lines.is_empty() && unreachable.is_empty() {
        writeln!(
            out,
            "no peers yet: start Claude Code, Codex, Gemini CLI or OpenCode in a tmux pane (after `repowire setup`), or use `repowire peer register`"
        )?;
        return Ok(());
    }
    let now = now_ms();
    let w = lines.iter().map(|l| l.0.len()).max().unwrap_or(4).max(4);
    let pw = lines.iter().map(|l| l.6.len()).max().unwrap_or(4).max(4);
    let described = lines.iter().any(|l| !l.7.is_empty());
    let head = format!(
        "{:w$}  {:7}  {:8}  {:5}  {:5}  {:13}  {:pw$}  DESCRIPTION",
        "NAME", "STATUS", "AGENT", "VIA", "PANE", "LAST ACTIVITY", "PATH"
    );
    writeln!(
        out,
        "{}",
        if described {
            &head
        } else {
            head.trim_end_matches("DESCRIPTION").trim_end()
        }
    )?;
    for (name, status, agent, via, pane, last, path, description) in &lines {
        let line = format!(
            "{name:w$}  {status:7}  {agent:8}  {via:5}  {pane:5}  {:13}  {path:pw$}  {description}",
            time::ago(*last, now),
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    for u in &unreachable {
        writeln!(out, "{u}")?;
    }
    Ok(())
}
