//! Delivery: handing queued messages to a peer's live session, one at a time, only while it is
//! idle, through the peer's transport: posted to the session's own inbox (`inbox`), else
//! typed into its tmux pane (`pane`).
//!
//! There is no daemon. Whoever changes something that could allow a delivery (a sender after
//! queuing, the Stop hook when a turn ends, SessionStart when a peer comes back) calls [`kick`],
//! which starts a short-lived `repowire deliver NAME` in the background. That process holds
//! `peers/NAME.deliver.lock`, delivers while the peer is idle and has mail, and exits. Only one
//! delivers to a peer at a time, so each message is handed over once and in queue order; and since a
//! deliverer looks again after releasing the lock, a kick that found the lock held is never
//! lost.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::history;
use crate::message::{self, Message, State};
use crate::peer::{self, Peer, Status, Transport};
use crate::spool::Spool;
use crate::time::now_ms;
use crate::wait;

mod inbox;
mod pane;

use crate::agents::Inbox;
use pane::Pane;

/// How long to wait for the agent's UserPromptSubmit hook to confirm it took the prompt
/// before looking at its screen again.
const CONFIRM: Duration = Duration::from_millis(1500);
/// A message without a deadline (a notification) typed into a pane that never takes it is
/// failed after this long.
const STUCK_LIMIT_MS: u64 = 10 * 60 * 1000;
/// How long a deliverer with more mail waits for the peer's turn to end before it leaves that
/// to the Stop hook's kick.
const BUSY_WAIT: Duration = Duration::from_secs(30);
/// A session that keeps a message posted to its inbox this long while idle, without starting
/// a turn for it, holds or refuses it (a session starts one within about a second).
const HELD_AFTER: Duration = Duration::from_secs(20);
/// A session that just started may not read its terminal yet; input typed then can be lost.
const STARTUP_GRACE_MS: u64 = 1500;

/// The lock a deliverer to peer `name` holds.
pub fn lock_name(name: &str) -> String {
    format!("peers/{name}.deliver.lock")
}

/// Starts a background deliverer for `name` if the peer is idle and has mail. Never blocks.
pub fn kick(spool: &Spool, name: &str) -> Result<()> {
    if spool.is_locked(&lock_name(name)) || !has_work(spool, name)? {
        return Ok(());
    }
    crate::process::start_helper(&["deliver", name], spool.root())
        .context("cannot start the deliverer")
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
    peer::validate_name(name)?;
    loop {
        let recheck = {
            let Some(_lock) = spool.try_lock(&lock_name(name))? else {
                return Ok(());
            };
            drain(spool, name)?
        };
        if !recheck || !has_work(spool, name)? {
            return Ok(());
        }
    }
}

/// Delivers while the peer is idle and has mail. Returns true when it stopped because there
/// was nothing to do (then a kick may have been missed while it held the lock: look again),
/// false when delivery is blocked until something else changes.
fn drain(spool: &Spool, name: &str) -> Result<bool> {
    loop {
        let Some(peer) = peer::load(spool, name)? else {
            return Ok(false);
        };
        if !peer.online {
            return Ok(true);
        }
        let Some(next) = message::inbox(spool, name)?
            .into_iter()
            .find(|m| m.state == State::Queued)
        else {
            return Ok(true);
        };
        if peer.turn.busy {
            // More mail waits for this turn to end: stay for it (a while), rather than leave
            // it to a deliverer the Stop hook would start.
            let record = peer::record_path(spool, name);
            let end = Instant::now() + BUSY_WAIT;
            let idle = wait::until_file_changes(&[record], Some(end), BUSY_WAIT, || {
                Ok::<_, anyhow::Error>(
                    peer::load(spool, name)?
                        .is_none_or(|p| !p.online || !p.turn.busy)
                        .then_some(()),
                )
            })?;
            if idle.is_none() {
                return Ok(true);
            }
            continue;
        }
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
        if peer::status(&peer).0 == Status::Offline {
            return Ok(false);
        }
        let grace_end = peer.started_ms + STARTUP_GRACE_MS;
        if now_ms() < grace_end {
            std::thread::sleep(Duration::from_millis(grace_end - now_ms()));
            continue;
        }
        if !deliver_one(spool, &peer, next)? {
            return Ok(false);
        }
    }
}

/// How a message gets into the peer's live session.
enum Way<'a> {
    Pane(Pane<'a>),
    Inbox(Inbox),
}

/// Hands one message to the peer and waits until the agent's prompt hook confirms it took
/// it. Returns false when delivery to this peer must stop for now.
fn deliver_one(spool: &Spool, peer: &Peer, msg: Message) -> Result<bool> {
    let mut way = match peer.transport() {
        Transport::Inbox => match peer::load_inbox(spool, &peer.name)? {
            Some(inbox) => Way::Inbox(inbox),
            None => {
                let why = "its inbox is not known (its session-start hook kept none); restart its session";
                message::finish(
                    spool,
                    &peer.name,
                    &msg.id,
                    Some(State::Queued),
                    State::Failed,
                    Some(why.into()),
                )?;
                return Ok(true);
            }
        },
        Transport::Tmux => Way::Pane(Pane::of(peer)),
        // Asked through forks only (see `ask`); nothing is delivered to it.
        Transport::Fork => return Ok(false),
    };
    if let Way::Pane(pane) = &way
        && !pane.ready()
    {
        return Ok(false);
    }
    // Marked delivered before it is handed over, so the prompt hook, which may run before we
    // return, can tie the turn to it.
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
    message::log(spool, history::Event::Delivered, &msg, None);

    let text = message::prompt_text(&msg);
    let handed = match &way {
        Way::Pane(pane) => pane.hand_over(&text),
        Way::Inbox(inbox) => match inbox::post(inbox, &text) {
            Ok(()) => Ok(()),
            Err(inbox::Failed::Unsure(why)) => Err(why),
            // Nothing reached the session: type it where it has a pane to type into.
            Err(inbox::Failed::NotSent(why)) if !peer.pane.is_empty() => {
                eprintln!(
                    "repowire deliver: {why}; typing into pane {} instead",
                    peer.pane
                );
                let pane = Pane::of(peer);
                if !pane.ready() {
                    requeue(spool, peer, &msg)?;
                    return Ok(false);
                }
                let typed = pane.hand_over(&text);
                way = Way::Pane(pane);
                typed
            }
            Err(inbox::Failed::NotSent(why)) => Err(why),
        },
    };
    if let Err(why) = handed {
        fail(spool, peer, &msg, why)?;
        return Ok(false);
    }
    // A busy machine can delay the agent taking it for seconds: keep waiting until the
    // message's deadline, nudging the transport now and then. An inbox that keeps the
    // message while the session stays idle holds or refuses it.
    let give_up = msg.deadline_ms.unwrap_or(now_ms() + STUCK_LIMIT_MS);
    let mut idle_since = Instant::now();
    loop {
        let taken = wait::until_file_changes(
            &[
                peer::record_path(spool, &peer.name),
                // Finished, it leaves the queue (done/ is not watched: see ask::wait_answer).
                message::queue_path(spool, &msg.id),
            ],
            Some(Instant::now() + CONFIRM),
            CONFIRM,
            || taken(spool, &peer.name, &msg.id).map(|t| t.then_some(())),
        )?;
        if taken.is_some() {
            return Ok(true);
        }
        let now = peer::load(spool, &peer.name)?;
        if now
            .as_ref()
            .is_none_or(|p| peer::status(p).0 == Status::Offline)
        {
            return Ok(false); // the asker and the SessionEnd hook report it
        }
        if now.is_some_and(|p| p.turn.busy) {
            idle_since = Instant::now();
        }
        match &way {
            Way::Pane(pane) => {
                if now_ms() >= give_up {
                    fail(spool, peer, &msg, pane.not_taken())?;
                    return Ok(false);
                }
                pane.nudge()?;
            }
            Way::Inbox(inbox) => {
                if now_ms() >= give_up || idle_since.elapsed() >= HELD_AFTER {
                    let why = format!(
                        "it was posted to its inbox {} but {}",
                        inbox.socket.display(),
                        peer.agent.inbox_not_taken()
                    );
                    fail(spool, peer, &msg, why)?;
                    return Ok(false);
                }
            }
        }
    }
}

/// Puts a message marked delivered that was not handed over back in the queue.
fn requeue(spool: &Spool, peer: &Peer, msg: &Message) -> Result<()> {
    message::update(spool, &peer.name, &msg.id, |m| {
        if m.state != State::Delivered {
            return false;
        }
        m.state = State::Queued;
        m.delivered_ms = None;
        true
    })
    .map(drop)
}

/// Fails a message that was marked delivered, unless something else finished it first.
fn fail(spool: &Spool, peer: &Peer, msg: &Message, why: String) -> Result<()> {
    message::finish(
        spool,
        &peer.name,
        &msg.id,
        Some(State::Delivered),
        State::Failed,
        Some(why),
    )
    .map(drop)
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
