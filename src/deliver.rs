//! Delivery: typing queued messages into a peer's pane, one at a time, only while it is idle.
//!
//! There is no daemon. Whoever changes something that could allow a delivery (a sender after
//! queuing, the Stop hook when a turn ends, SessionStart when a peer comes back) calls [`kick`],
//! which starts a short-lived `repowire deliver NAME` in the background. That process holds
//! `peers/NAME.deliver.lock`, delivers while the peer is idle and has mail, and exits. Only one
//! delivers to a peer at a time, so each message is typed once and in queue order; and since a
//! deliverer looks again after releasing the lock, a kick that found the lock held is never
//! lost.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::history;
use crate::message::{self, Message, State};
use crate::peer::{self, Peer, Status};
use crate::spool::{Spool, now_ms};
use crate::tmux::Server;
use crate::wait;

/// Text is typed in pieces of at most this many bytes: Claude Code turns a single read of 800
/// bytes or more into a "[Pasted text]" placeholder.
const CHUNK: usize = 200;
/// Pause between pieces, so each arrives as its own read.
const CHUNK_GAP: Duration = Duration::from_millis(30);
/// Pause before Enter, so Enter arrives as its own read and submits instead of becoming a
/// newline in a paste.
const SETTLE: Duration = Duration::from_millis(300);
/// How long to wait for the agent's UserPromptSubmit hook to confirm it took the prompt
/// before pressing Enter again.
const CONFIRM: Duration = Duration::from_millis(1500);
const ENTER_RETRIES: usize = 2;
/// A session that just started may not read its terminal yet; input typed then can be lost.
const STARTUP_GRACE_MS: u64 = 1500;

fn lock_name(name: &str) -> String {
    format!("peers/{name}.deliver.lock")
}

/// Starts a background deliverer for `name` if the peer is idle and has mail. Never blocks.
pub fn kick(spool: &Spool, name: &str) -> Result<()> {
    if !has_work(spool, name)? || spool.is_locked(&lock_name(name)) {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the repowire binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("deliver")
        .arg(name)
        .env("REPOWIRE_HOME", spool.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own session: it must outlive a hook or CLI that exits at once, and not get the
    // terminal's signals.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the deliverer")?;
    // Reap it without waiting: a thread would die with us, so let it be reparented instead.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Whether `name` is idle, online and has a queued message.
fn has_work(spool: &Spool, name: &str) -> Result<bool> {
    let Some(p) = peer::load(spool, name)? else {
        return Ok(false);
    };
    if !p.online || p.turn.busy {
        return Ok(false);
    }
    Ok(message::inbox(spool, name)?
        .iter()
        .any(|m| m.state == State::Queued))
}

/// `repowire deliver NAME`: delivers while there is work, then exits.
pub fn pump(spool: &Spool, name: &str) -> Result<()> {
    loop {
        {
            let Some(_lock) = spool.try_lock(&lock_name(name))? else {
                return Ok(());
            };
            drain(spool, name)?;
        }
        if !has_work(spool, name)? {
            return Ok(());
        }
    }
}

fn drain(spool: &Spool, name: &str) -> Result<()> {
    loop {
        let Some(peer) = peer::load(spool, name)? else {
            return Ok(());
        };
        if !peer.online || peer.turn.busy {
            return Ok(());
        }
        let Some(next) = message::inbox(spool, name)?
            .into_iter()
            .find(|m| m.state == State::Queued)
        else {
            return Ok(());
        };
        if next.deadline_ms.is_some_and(|d| d <= now_ms()) {
            message::finish(
                spool,
                name,
                &next.id,
                Some(State::Queued),
                State::Expired,
                Some("its deadline passed before the peer was free".into()),
            )?;
            continue;
        }
        let (status, _) = peer::status(&peer);
        if status == Status::Offline {
            return Ok(());
        }
        let grace_end = peer.started_ms + STARTUP_GRACE_MS;
        if now_ms() < grace_end {
            std::thread::sleep(Duration::from_millis(grace_end - now_ms()));
            continue;
        }
        if !deliver_one(spool, &peer, next)? {
            return Ok(());
        }
    }
}

/// Types one message and waits until the agent's prompt hook confirms it. Returns false when
/// the pane did not take it (the message is then failed and delivery stops).
fn deliver_one(spool: &Spool, peer: &Peer, msg: Message) -> Result<bool> {
    // Marked delivered before typing, so the prompt hook, which may run before we return, can
    // tie the turn to it.
    let Some(msg) = message::update(spool, &peer.name, &msg.id, |m| {
        if m.state != State::Queued {
            return false;
        }
        m.state = State::Delivered;
        m.delivered_ms = Some(now_ms());
        true
    })?
    else {
        return Ok(true);
    };
    if msg.state != State::Delivered {
        return Ok(true);
    }
    history::append(spool, history::Event::Delivered, &msg, None);

    let server = Server::at(&peer.tmux_socket);
    if let Err(e) = type_text(&server, &peer.pane, &message::prompt_text(&msg)) {
        message::finish(
            spool,
            &peer.name,
            &msg.id,
            Some(State::Delivered),
            State::Failed,
            Some(format!("could not type into pane {}: {e}", peer.pane)),
        )?;
        return Ok(false);
    }
    for _ in 0..=ENTER_RETRIES {
        server.send_enter(&peer.pane)?;
        let taken = wait::until(
            &[spool.path("peers"), spool.path("queue")],
            Some(Instant::now() + CONFIRM),
            || taken(spool, &peer.name, &msg.id).map(|t| t.then_some(())),
        )?;
        if taken.is_some() {
            return Ok(true);
        }
    }
    message::finish(
        spool,
        &peer.name,
        &msg.id,
        Some(State::Delivered),
        State::Failed,
        Some(format!(
            "it was typed into pane {} but the agent did not take it as a prompt (is a dialog open there?)",
            peer.pane
        )),
    )?;
    Ok(false)
}

/// Whether the agent took message `id` as a prompt: its turn (or a queued turn) carries it, or
/// the message is already finished.
fn taken(spool: &Spool, name: &str, id: &str) -> Result<bool> {
    let Some(p) = peer::load(spool, name)? else {
        return Ok(true);
    };
    if p.turn.message.as_deref() == Some(id)
        || p.queued_turns.iter().any(|q| q.as_deref() == Some(id))
    {
        return Ok(true);
    }
    Ok(!message::load(spool, id)?.is_some_and(|m| m.state.is_open()))
}

/// Types `text` literally, in pieces, without pressing Enter.
fn type_text(server: &Server, pane: &str, text: &str) -> Result<(), crate::error::Error> {
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        server.send_literal(pane, &rest[..end])?;
        rest = &rest[end..];
        std::thread::sleep(if rest.is_empty() { SETTLE } else { CHUNK_GAP });
    }
    Ok(())
}
