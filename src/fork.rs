//! Questions answered by a read-only fork of the peer's session, at once, whatever the peer is
//! doing (busy, offline, outside tmux): nothing is typed into its pane.
//!
//! A fork question is an ordinary ask in the spool, marked `fork`, so that waiting for it,
//! `peer wait`, `get_answer`, timeouts and the history work as for any other. Its runner,
//! `repowire fork ID`, is started in the background like a deliverer: it takes the question
//! (`queued` → `delivered`, logged as `forked`), runs the agent's fork command (see
//! `agents::Kind::fork_command`) in the peer's directory, and stores the answer or why there is none.
//! It ends the fork when the question is withdrawn (its asker cancelled or timed out) or its
//! deadline passes. Several forks of one peer may run at once: each question has its own.

use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::error::Error;
use crate::history::Event;
use crate::message::{self, Message, State};
use crate::peer::{self, Peer};
use crate::spool::Spool;
use crate::time::now_ms;

/// Set in a fork's environment: repowire's hooks do nothing there, so a fork never registers,
/// never marks the real peer busy and never answers the peer's questions.
pub const ENV: &str = "REPOWIRE_FORK";

/// How often the runner looks at its fork and its question.
const TICK: Duration = Duration::from_millis(100);

/// Whether `peer` can be asked by fork; the error says why not.
pub fn check(peer: &Peer) -> Result<(), Error> {
    let agent = peer.agent;
    if peer.session_id.is_none() {
        return Err(Error::BadInput(format!(
            "'{}' has no session to fork yet (its agent has not started one); ask without --fork",
            peer.name
        )));
    }
    agent
        .fork_command("", "", &peer.path)
        .map_err(Error::BadInput)?;
    // The agent keeps a conversation once it has one: before its first turn there is nothing
    // to resume ("No conversation found").
    if let Some(t) = peer.transcript.as_ref().filter(|t| !t.exists()) {
        return Err(Error::BadInput(format!(
            "'{}' has had no turn yet in its session, so there is no conversation to fork ({} does not exist); ask again after its first turn",
            peer.name,
            t.display()
        )));
    }
    Ok(())
}

/// Starts the runner of fork question `id` in the background, in a session of its own.
pub fn kick(spool: &Spool, id: &str) -> Result<()> {
    crate::process::start_helper(&["fork", id], spool.root()).context("cannot start the fork")
}

/// `repowire fork ID`: answers fork question `id`, if nobody else has taken it.
pub fn run(spool: &Spool, id: &str) -> Result<()> {
    message::validate_id(id)?;
    let Some(m) = message::load(spool, id)? else {
        return Ok(());
    };
    if !m.fork || m.state != State::Queued {
        return Ok(());
    }
    let fail = |why: String| message::finish(spool, &m.to, id, None, State::Failed, Some(why));
    let Some(peer) = peer::load(spool, &m.to)? else {
        fail("the peer was unregistered".into())?;
        return Ok(());
    };
    let agent = peer.agent;
    let argv = match peer
        .session_id
        .as_deref()
        .ok_or_else(|| "the peer has no session to fork".to_string())
        .and_then(|sid| agent.fork_command(sid, &prompt(&m), &peer.path))
    {
        Ok(a) => a,
        Err(why) => {
            fail(why)?;
            return Ok(());
        }
    };
    // Taken: only one runner gets past this.
    let mut taken = false;
    let m = message::update(spool, &m.to, id, |m| {
        taken = m.state == State::Queued;
        m.state = State::Delivered;
        m.delivered_ms = Some(now_ms());
        taken
    })?;
    let Some(m) = m.filter(|_| taken) else {
        return Ok(());
    };
    message::log(spool, Event::Forked, &m, None);
    match answer(spool, &m, &peer, &argv) {
        Ok(Some(text)) => {
            let _lock = spool.lock(&peer::lock_name(&peer.name))?;
            message::answer(spool, &peer, &m, &text, None)?;
        }
        Ok(None) => {} // withdrawn: its asker said so already
        Err(why) => {
            fail(why)?;
        }
    }
    Ok(())
}

/// What the fork is asked: the header every question has, a line saying what it is, the text.
fn prompt(m: &Message) -> String {
    format!(
        "{}\nYou are a read-only fork of this session, started to answer this one question: you cannot change files or run commands, and your reply goes to {} and nowhere else.\n{}",
        message::header(m),
        m.from,
        m.text
    )
}

/// Runs the fork until it answers, its question is withdrawn (`Ok(None)`), or its deadline
/// passes or it fails (`Err`, why).
fn answer(
    spool: &Spool,
    m: &Message,
    peer: &Peer,
    argv: &[String],
) -> Result<Option<String>, String> {
    let io = |e: std::io::Error| format!("cannot run the fork: {e}");
    let (mut out, mut err) = (
        tempfile::tempfile().map_err(io)?,
        tempfile::tempfile().map_err(io)?,
    );
    // The fork's temporary files (an OpenCode fork's copy of the session among them) go in a
    // directory of its own, removed when the runner is done with the fork, however it ended.
    let scratch = tempfile::Builder::new()
        .prefix("repowire-fork")
        .tempdir()
        .map_err(io)?;
    // The peer's own environment (its provider settings and credentials) is the one that can
    // resume its session: read from its running agent now, never stored. Without it (the
    // session ended, another user's process), the asker's. Its PATH is followed by the
    // asker's, for an agent started by its full path.
    let mut cmd = Command::new(&argv[0]);
    if let Some(mut vars) = peer.agent_process.and_then(crate::process::environ) {
        let ours = std::env::var_os("PATH").unwrap_or_default();
        match vars.iter_mut().find(|(k, _)| k == "PATH") {
            Some((_, path)) => {
                path.push(":");
                path.push(ours);
            }
            None => vars.push(("PATH".into(), ours)),
        }
        cmd.env_clear().envs(vars);
    }
    let mut child = cmd
        .args(&argv[1..])
        .current_dir(&peer.path)
        .env(ENV, "1")
        .env("TMPDIR", scratch.path())
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(io)?)
        .stderr(err.try_clone().map_err(io)?)
        // Its own process group, ended as a whole.
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{} is not on PATH here, so its session cannot be forked",
                argv[0]
            ),
            _ => format!("cannot start {}: {e}", argv[0]),
        })?;
    let end = |child: &mut std::process::Child| {
        // SAFETY: kill only sends a signal to the fork's own process group.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGTERM);
        }
        std::thread::sleep(Duration::from_millis(200));
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGKILL);
        }
        let _ = child.wait();
    };
    let status = loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            break status;
        }
        let open = message::load(spool, &m.id).ok().flatten();
        if !open.is_some_and(|o| o.state.is_open()) {
            end(&mut child);
            return Ok(None);
        }
        if m.deadline_ms.is_some_and(|d| now_ms() >= d) {
            end(&mut child);
            return Err(
                "the fork did not answer before the question's deadline and was ended".into(),
            );
        }
        std::thread::sleep(TICK);
    };
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        let _ = f.rewind();
        let _ = f.take(message::MAX_TEXT as u64 * 8).read_to_string(&mut s);
        s
    };
    let stdout = read(&mut out);
    match peer.agent.fork_answer(&stdout) {
        Ok(text) => Ok(Some(text)),
        Err(why) if status.success() => Err(why),
        Err(why) => {
            let stderr = read(&mut err);
            let tail: String = stderr
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(format!("{why} ({status}; stderr: {tail:?})"))
        }
    }
}
