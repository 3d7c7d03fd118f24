//! Sending to peers: asking and waiting for the answer, notifying, broadcasting. What the
//! `peer` commands and the MCP tools share.
//!
//! The asker queues the question, kicks delivery and waits on the spool. It holds the
//! question's waiter lock while it waits, so the deadlock check sees it; if it dies or gives up,
//! the question stays in the spool and its answer is still stored when it comes. An asker that
//! cancels its wait withdraws a question the peer does not have yet.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Policy};
use crate::deliver;
use crate::error::Error;
use crate::fork;
use crate::history;
use crate::message::{self, Draft, Kind, Message, Response, State};
use crate::peer::{self, Peer, Status};
use crate::spool::{Lock, Spool};
use crate::time::now_ms;
use crate::wait;
use crate::wait::CANCEL_TICK;

/// Where a question is, as shown while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Waiting for the peer to be free, behind this many messages.
    Queued { ahead: usize },
    /// Typed into the peer's pane, not yet taken up.
    Delivered,
    /// The peer's turn is working on it.
    Answering,
    /// A fork of the peer's session is answering it.
    Forking,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Queued { ahead: 0 } => write!(f, "queued, waiting for the peer to be idle"),
            Progress::Queued { ahead } => write!(f, "queued behind {ahead}"),
            Progress::Delivered => write!(f, "delivered"),
            Progress::Answering => write!(f, "answering"),
            Progress::Forking => write!(f, "answering in a fork of its session"),
        }
    }
}

/// How often a waiting asker asks tmux whether the peer's pane still runs its agent.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);

/// Queues question `text` from `from` to `to`. Refuses an unknown or offline peer, and a
/// question that would deadlock (here, or across hosts: `chain` holds the askers on other
/// hosts that wait on `from`, empty for a local asker). Returns the queued message and the
/// waiter lock to hold.
///
/// The question goes to a read-only fork of the peer's session (see `fork`) when `fork` asks
/// for it, when the peer runs outside tmux, or when config.yaml's `when_busy` or
/// `when_offline` say so for a peer in that state and its agent can fork.
pub fn ask(
    spool: &Spool,
    from: &str,
    to: &str,
    text: &str,
    timeout: Duration,
    chain: &[String],
    fork: bool,
) -> Result<(Message, Lock)> {
    let peer = peer::require(spool, to)?;
    let (status, why) = peer::status(&peer);
    let fork = if fork || peer.fork_only() {
        fork::check(&peer)?;
        true
    } else {
        let config = Config::load(spool)?;
        let policy = match status {
            Status::Busy => config.when_busy,
            Status::Offline => config.when_offline,
            Status::Online => Policy::Wait,
        };
        policy == Policy::Fork && fork::check(&peer).is_ok()
    };
    if status == Status::Offline && !fork {
        return Err(Error::PeerOffline {
            name: to.to_string(),
            why: why.to_string(),
        }
        .into());
    }
    if !fork {
        check_locks(spool, to)?;
    }
    let (msg, lock) = message::send(
        spool,
        &Draft {
            kind: Kind::Ask,
            from,
            to,
            text,
            deadline_ms: Some(now_ms() + timeout.as_millis() as u64),
            chain,
            fork,
        },
    )?;
    if fork {
        // Nothing else would start its fork: a question whose fork cannot start has failed.
        if let Err(e) = fork::kick(spool, &msg.id) {
            message::finish(
                spool,
                to,
                &msg.id,
                None,
                State::Failed,
                Some(format!("{e:#}")),
            )?;
            return Err(e);
        }
    } else {
        start_delivery(spool, to);
    }
    Ok((msg, lock.expect("an ask has a waiter lock")))
}

/// Waits for the answer to `id` for `timeout`, calling `progress` (if any: working it out
/// costs reads of the peer's queue) with its stage at every check (on every change, and at
/// least once a second).
/// On timeout, a question not yet delivered is withdrawn; a delivered one stays, and its answer
/// can be fetched later. When `cancelled` turns true, the wait ends within [`CANCEL_TICK`]
/// with [`Error::Cancelled`], after withdrawing the question as [`cancel`] does.
pub fn wait_answer(
    spool: &Spool,
    id: &str,
    timeout: Duration,
    cancelled: Option<&dyn Fn() -> bool>,
    mut progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<Response> {
    let deadline = Instant::now() + timeout;
    let mut next_liveness = Instant::now() + LIVENESS_EVERY;
    // Woken only by this question's own record and its peer's: many askers may wait at once.
    // Every change to the question changes queue/ID.json, and an answer is stored before it
    // leaves the queue. done/ and responses/ are not watched: they grow with the history, and
    // watching a directory costs the kernel a walk over the entries it has cached.
    let mut files = vec![message::queue_path(spool, id)];
    if let Some(m) = message::load(spool, id)? {
        files.push(peer::record_path(spool, &m.to));
    }
    // Checked at least as often as the peer's liveness is, and soon after a cancellation.
    let tick = match cancelled {
        Some(_) => CANCEL_TICK,
        None => LIVENESS_EVERY,
    };
    let check = || -> Result<Option<Response>> {
        if let Some(r) = message::load_response(spool, id)? {
            return Ok(Some(r));
        }
        let Some(m) = message::load(spool, id)? else {
            return Err(Error::BadInput(format!("there is no query {id} in the spool")).into());
        };
        if !m.state.is_open() {
            // Answered between the two reads: the answer is stored before the message moves.
            if let Some(r) = message::load_response(spool, id)? {
                return Ok(Some(r));
            }
            // Failed because the peer's session ended (its SessionEnd hook said so before the
            // agent was gone): the peer is offline, whoever noticed first.
            if m.state == State::Failed
                && peer::load(spool, &m.to)?.is_none_or(|p| peer::status(&p).0 == Status::Offline)
            {
                return Err(Error::PeerOffline {
                    name: m.to.clone(),
                    why: m.error.clone().unwrap_or_else(|| "it went away".into()),
                }
                .into());
            }
            return Err(finished_error(&m).into());
        }
        if cancelled.is_some_and(|c| c()) {
            return Err(cancel(spool, &m)?.into());
        }
        let liveness_due = Instant::now() >= next_liveness;
        if m.fork {
            // A fork answers whatever its peer does; its runner may have been lost.
            if liveness_due {
                next_liveness = Instant::now() + LIVENESS_EVERY;
                if m.state == State::Queued {
                    fork::kick(spool, id)?;
                }
            }
            if let Some(report) = progress.as_mut() {
                report(fork_progress(&m));
            }
            return Ok(None);
        }
        let Some(p) = peer::load(spool, &m.to)? else {
            message::finish(
                spool,
                &m.to,
                id,
                None,
                State::Failed,
                Some("the peer was unregistered".into()),
            )?;
            return Err(Error::PeerOffline {
                name: m.to.clone(),
                why: "it was unregistered".into(),
            }
            .into());
        };
        if !p.online || liveness_due {
            next_liveness = Instant::now() + LIVENESS_EVERY;
            let (status, why) = peer::status(&p);
            if status == Status::Offline {
                let why = format!("the peer went offline: {why}");
                message::finish(spool, &m.to, id, None, State::Failed, Some(why.clone()))?;
                // It may have answered in the very moment it left.
                if let Some(r) = message::load_response(spool, id)? {
                    return Ok(Some(r));
                }
                return Err(Error::PeerOffline {
                    name: m.to.clone(),
                    why,
                }
                .into());
            }
        }
        if let Some(report) = progress.as_mut() {
            report(self::progress(spool, &m, &p)?);
        }
        // A deliverer may have been lost (killed): start another when the peer is free. Not
        // at every check: the one `ask` started may still be starting up.
        if m.state == State::Queued && liveness_due {
            deliver::kick(spool, &m.to)?;
        }
        Ok(None)
    };
    let got = wait::until_file_changes(&files, Some(deadline), tick, check)?;
    if let Some(r) = got {
        message::mark_read(spool, id);
        return Ok(r);
    }
    // Timed out. Withdraw it if it was never typed; keep it if the peer has it. A fork is
    // ended: nobody would fetch what it says later.
    let m = message::load(spool, id)?;
    let to = m.as_ref().map(|m| m.to.clone()).unwrap_or_default();
    let after = match &m {
        Some(m) if m.fork => message::finish(
            spool,
            &to,
            id,
            None,
            State::Expired,
            Some("the fork did not answer before its asker stopped waiting, and was ended".into()),
        )?,
        Some(m) if m.state == State::Queued => message::finish(
            spool,
            &to,
            id,
            Some(State::Queued),
            State::Expired,
            Some("the asker stopped waiting before it could be delivered".into()),
        )?,
        other => other.clone(),
    };
    if let Some(r) = message::load_response(spool, id)? {
        message::mark_read(spool, id);
        return Ok(r);
    }
    let pending = after.as_ref().is_some_and(|m| m.state.is_open());
    let what = match after.as_ref().map(|m| (m.state, m.fork)) {
        Some((State::Expired, true)) => "the fork that was answering it has been ended".to_string(),
        Some((State::Expired, false)) => {
            "it was never delivered (the peer stayed busy) and has been withdrawn".to_string()
        }
        _ => format!(
            "the peer has the question; its answer will be stored when it comes: `repowire peer wait {id}`"
        ),
    };
    Err(Error::Timeout {
        peer: to,
        secs: timeout.as_secs(),
        id: id.to_string(),
        what,
        pending,
    }
    .into())
}

/// Where an earlier question stands, as [`check`] finds it.
pub enum Checked {
    /// Its answer.
    Answered(String),
    /// Not answered yet: the peer it is for, and its stage.
    Open { to: String, stage: String },
}

/// The answer to question `id` if it has come, else where it stands, without waiting. A
/// question that finished without an answer is an error saying how it ended.
pub fn check(spool: &Spool, id: &str) -> Result<Checked> {
    message::validate_id(id)?;
    if let Some(r) = message::load_response(spool, id)? {
        message::mark_read(spool, id);
        return Ok(Checked::Answered(r.text));
    }
    let m = message::load(spool, id)?
        .ok_or_else(|| Error::BadInput(format!("there is no query {id} in the spool")))?;
    if !m.state.is_open() {
        return Err(finished_error(&m).into());
    }
    let stage = match peer::load(spool, &m.to)? {
        Some(p) => progress(spool, &m, &p)?.to_string(),
        None => "its peer was unregistered".to_string(),
    };
    Ok(Checked::Open { to: m.to, stage })
}

/// Where open fork question `m` stands: its runner has not taken it yet, or its fork works.
fn fork_progress(m: &Message) -> Progress {
    match m.state {
        State::Queued => Progress::Queued { ahead: 0 },
        _ => Progress::Forking,
    }
}

/// Where open question `m` to peer `p` stands.
pub fn progress(spool: &Spool, m: &Message, p: &Peer) -> Result<Progress> {
    if m.fork {
        return Ok(fork_progress(m));
    }
    Ok(match m.state {
        State::Queued => {
            let inbox = message::inbox(spool, &m.to)?;
            let before: Vec<&Message> = inbox.iter().take_while(|o| o.id != m.id).collect();
            // A running turn on a question ahead is already counted among them.
            let own_turn = before
                .iter()
                .any(|o| p.turn.message.as_deref() == Some(o.id.as_str()));
            let ahead = before.len() + usize::from(p.turn.busy && !own_turn);
            Progress::Queued { ahead }
        }
        _ if p.turn.message.as_deref() == Some(m.id.as_str()) => Progress::Answering,
        _ => Progress::Delivered,
    })
}

/// Withdraws question `m` for its asker. Still queued, it becomes cancelled and is never typed.
/// Already typed, it stays delivered, so the peer's answer is still stored, and only the
/// history records the cancellation. Returns the error that says which it was.
fn cancel(spool: &Spool, m: &Message) -> Result<Error> {
    let after = message::finish(
        spool,
        &m.to,
        &m.id,
        // A fork is ended whatever it is doing.
        (!m.fork).then_some(State::Queued),
        State::Cancelled,
        Some(if m.fork {
            "its asker withdrew it; its fork was ended".into()
        } else {
            "its asker withdrew it before it was delivered".into()
        }),
    )?;
    let what = match after {
        Some(a) if a.state == State::Cancelled && a.fork => {
            "it was withdrawn and the fork answering it ended"
        }
        Some(a) if a.state == State::Cancelled => "it was withdrawn before the peer got it",
        Some(a) if a.state == State::Delivered => {
            let noted = Message {
                error: Some(
                    "the asker cancelled it after it was delivered; its answer is still stored"
                        .into(),
                ),
                ..a
            };
            message::log(spool, history::Event::Cancelled, &noted, None);
            "the peer already had it; its answer will be stored when it comes"
        }
        _ => "it had already finished",
    };
    Ok(Error::Cancelled {
        id: m.id.clone(),
        peer: m.to.clone(),
        what: what.into(),
    })
}

/// A notification sent with [`notify`].
pub struct Notified {
    pub id: String,
    pub to: String,
    /// The peer's status when it was sent, which says when it arrives.
    pub status: Status,
}

impl std::fmt::Display for Notified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let when = match self.status {
            Status::Online => "now",
            Status::Busy => "when its turn ends",
            Status::Offline => "when it comes back online",
        };
        write!(f, "sent {} to {} (delivered {when})", self.id, self.to)
    }
}

/// Sends `to` a message that needs no answer. A busy peer gets it when its turn ends, an
/// offline one when it comes back.
pub fn notify(spool: &Spool, from: &str, to: &str, text: &str) -> Result<Notified> {
    let p = peer::require(spool, to)?;
    if p.fork_only() {
        let why = p.no_inbox.as_deref().unwrap_or("its agent has none");
        return Err(Error::BadInput(format!(
            "'{to}' runs outside tmux and has no inbox repowire can post to ({why}), so nothing can reach its session: it can only be asked, and answers from a fork of its session (`repowire peer ask {to} --fork`)"
        ))
        .into());
    }
    check_locks(spool, &p.name)?;
    let msg = send_unanswered(spool, Kind::Notify, from, &p.name, text)?;
    Ok(Notified {
        id: msg.id,
        to: p.name.clone(),
        status: peer::status(&p).0,
    })
}

/// Queues a notification or broadcast copy for `to` and starts its delivery.
fn send_unanswered(spool: &Spool, kind: Kind, from: &str, to: &str, text: &str) -> Result<Message> {
    let draft = Draft {
        kind,
        from,
        to,
        text,
        deadline_ms: None,
        chain: &[],
        fork: false,
    };
    let (msg, _) = message::send(spool, &draft)?;
    start_delivery(spool, to);
    Ok(msg)
}

/// Checks, before anything is published to `to`, the locks its delivery takes: a broken one
/// fails now, naming itself and its fix, rather than later where nobody sees it.
fn check_locks(spool: &Spool, to: &str) -> Result<()> {
    for lock in [peer::lock_name(to), deliver::lock_name(to)] {
        spool.check_lock(&lock)?;
    }
    Ok(())
}

/// Starts the delivery of a message just published. A failure is said, not returned: the
/// message is in the spool, and the peer's next turn's end (or its next session) delivers it.
fn start_delivery(spool: &Spool, to: &str) {
    if let Err(e) = deliver::kick(spool, to) {
        eprintln!(
            "repowire: the message to {to} is queued, but its delivery did not start now ({e:#}); it is delivered when {to}'s turn ends or its session starts again"
        );
    }
}

/// Who a broadcast went to: idle peers get it now, busy ones when their turn ends; and to
/// whom it could not be sent, with why.
pub struct Broadcast {
    pub now: Vec<String>,
    pub later: Vec<String>,
    pub failed: Vec<String>,
}

impl std::fmt::Display for Broadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.now.is_empty() && self.later.is_empty() {
            return write!(f, "no online peer to send to");
        }
        let now = if self.now.is_empty() {
            "nobody".to_string()
        } else {
            self.now.join(", ")
        };
        write!(f, "sent to {now} now")?;
        if !self.later.is_empty() {
            write!(f, "; {} when their turn ends", self.later.join(", "))?;
        }
        if !self.failed.is_empty() {
            write!(f, "; not sent to {}", self.failed.join("; "))?;
        }
        Ok(())
    }
}

/// Sends every online peer but `from` a message that needs no answer, one copy each.
pub fn broadcast(spool: &Spool, from: &str, text: &str) -> Result<Broadcast> {
    message::validate_text(text)?;
    let peers = peer::all(spool)?;
    let panes = peer::live_panes(&peers);
    let mut sent = Broadcast {
        now: Vec::new(),
        later: Vec::new(),
        failed: Vec::new(),
    };
    for p in &peers {
        let (status, _) = peer::status_of(p, &panes);
        if p.name == from || status == Status::Offline || p.fork_only() {
            continue;
        }
        // One peer that cannot be sent to does not keep the others from getting it.
        let copy = check_locks(spool, &p.name)
            .and_then(|()| send_unanswered(spool, Kind::Broadcast, from, &p.name, text));
        if let Err(e) = copy {
            sent.failed.push(format!("{} ({e:#})", p.name));
        } else if status == Status::Busy {
            sent.later.push(p.name.clone());
        } else {
            sent.now.push(p.name.clone());
        }
    }
    Ok(sent)
}

/// The error for a question that finished without an answer.
pub fn finished_error(m: &Message) -> Error {
    let what = match m.state {
        State::Failed => "failed",
        State::Expired => "expired",
        State::Cancelled => "was cancelled",
        _ => "ended without an answer",
    };
    Error::Failed {
        id: m.id.clone(),
        peer: m.to.clone(),
        why: match &m.error {
            Some(e) => format!("{what}: {e}"),
            None => what.to_string(),
        },
    }
}
