//! What each CLI command does, on top of the library modules: reading arguments, printing
//! results for people (tables, progress) and for scripts (`--json`).

use std::ffi::OsString;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ask::Progress;
use crate::cli::{CompletionShell, ConfigCommand, GcArgs, LogArgs, PeerCommand};
use crate::config::Config;
use crate::error::Error;
use crate::fanout;
use crate::history::{self, Entry};
use crate::message;
use crate::peer::{self, Status};
use crate::reach::{self, Target};
use crate::remote;
use crate::spool::Spool;
use crate::team;
use crate::time;
use crate::time::now_ms;

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
    /// Outside tmux: asked by fork only.
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
    // name, status, agent, pane, last activity, path, description
    let mut lines: Vec<(String, &str, &str, &str, u64, String, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.name.to_string(),
                r.status.as_str(),
                r.agent,
                if r.fork_only { "-" } else { r.pane },
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
                    p.pane.as_str(),
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
    let pw = lines.iter().map(|l| l.5.len()).max().unwrap_or(4).max(4);
    let described = lines.iter().any(|l| !l.6.is_empty());
    let head = format!(
        "{:w$}  {:7}  {:8}  {:5}  {:13}  {:pw$}  DESCRIPTION",
        "NAME", "STATUS", "AGENT", "PANE", "LAST ACTIVITY", "PATH"
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
    for (name, status, agent, pane, last, path, description) in &lines {
        let line = format!(
            "{name:w$}  {status:7}  {agent:8}  {pane:5}  {:13}  {path:pw$}  {description}",
            time::ago(*last, now),
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    for u in &unreachable {
        writeln!(out, "{u}")?;
    }
    Ok(())
}

pub fn log(spool: &Spool, args: LogArgs) -> Result<()> {
    if let Some(p) = &args.peer {
        peer::validate_name(p).or_else(|e| if p == peer::USER { Ok(()) } else { Err(e) })?;
    }
    let mut out = std::io::stdout().lock();
    let mut offsets: std::collections::HashMap<std::path::PathBuf, u64> = Default::default();
    let mut print_new = |out: &mut std::io::StdoutLock| -> Result<()> {
        for f in history::files(spool)? {
            let start = offsets.get(&f).copied().unwrap_or(0);
            let mut file = crate::spool::open_private(&f, std::fs::OpenOptions::new().read(true))?;
            let len = file.metadata()?.len();
            if len <= start {
                continue;
            }
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::new();
            file.take(len - start).read_to_end(&mut buf)?;
            // Only whole lines: a line being appended right now is read next time.
            let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            offsets.insert(f.clone(), start + whole as u64);
            for line in buf[..whole]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                let Ok(e) = serde_json::from_slice::<Entry>(line) else {
                    continue;
                };
                if args
                    .peer
                    .as_ref()
                    .is_some_and(|p| *p != e.from && *p != e.to)
                {
                    continue;
                }
                if args.json {
                    out.write_all(line)?;
                    out.write_all(b"\n")?;
                } else {
                    writeln!(out, "{}", format_entry(&e))?;
                }
            }
        }
        out.flush()?;
        Ok(())
    };
    print_new(&mut out)?;
    if !args.follow {
        return Ok(());
    }
    let watch = crate::wait::Watch::new(&[spool.path("log")]);
    loop {
        watch.wait(Duration::from_secs(1));
        print_new(&mut out)?;
    }
}

fn format_entry(e: &Entry) -> String {
    let what = match e.event {
        history::Event::Sent => format!("{:?}", e.kind).to_lowercase(),
        ev => format!("{ev:?}").to_lowercase(),
    };
    let arrow = match e.event {
        history::Event::Answered => format!("{} → {}", e.to, e.from),
        _ => format!("{} → {}", e.from, e.to),
    };
    let mut line = format!(
        "{}  {:9}  {}  {}",
        time::format_utc(e.ts_ms),
        what,
        e.id,
        arrow
    );
    if let Some(t) = &e.text {
        let first: String = message::neutralize(t)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect();
        line.push_str(": ");
        line.push_str(&first);
        if t.lines().count() > 1 || first.chars().count() == 100 {
            line.push('…');
        }
    }
    if let Some(err) = &e.error {
        line.push_str(&format!(" ({err})"));
    }
    line
}

pub fn gc(spool: &Spool, args: GcArgs) -> Result<()> {
    let r = crate::gc::run(spool, args.older_than)?;
    println!(
        "removed {} finished messages, {} answers, {} days of history, {} temporary files, {} lock files",
        r.messages, r.responses, r.history_days, r.temp_files, r.lock_files
    );
    if r.unread_kept > 0 {
        println!(
            "kept {} older answers nobody has received yet (`repowire peer wait ID` fetches one)",
            r.unread_kept
        );
    }
    Ok(())
}

pub fn config(spool: &Spool, cmd: ConfigCommand) -> Result<()> {
    let path = spool.path("config.yaml");
    match cmd {
        ConfigCommand::Path => println!("{}", path.display()),
        ConfigCommand::Show => {
            let config = Config::load(spool)?;
            if path.exists() {
                println!("# {} (defaults for what it leaves out)", path.display());
            } else {
                println!(
                    "# {} does not exist: these are the defaults",
                    path.display()
                );
            }
            print!("{}", config.show());
        }
    }
    Ok(())
}

pub fn completions(shell: CompletionShell) -> Result<()> {
    use clap::CommandFactory;
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut cmd = crate::cli::Cli::command();
    // Into a buffer first: clap_complete panics on a write error such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "repowire", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(())
}
