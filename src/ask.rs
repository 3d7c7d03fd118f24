//! Asking a peer and waiting for the answer: what `peer ask`, `peer wait` and the MCP tools
//! share.
//!
//! The asker queues the question, kicks delivery and waits on the spool. It holds the
//! question's waiter lock while it waits, so the deadlock check sees it; if it dies or gives up,
//! the question stays in the spool and its answer is still stored when it comes.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::deliver;
use crate::error::Error;
use crate::message::{self, Draft, Kind, Message, Response, State};
use crate::peer::{self, Status};
use crate::spool::{Lock, Spool, now_ms};
use crate::wait;

/// Where a question is, as shown while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for the peer to be free, behind this many messages.
    Queued { ahead: usize },
    /// Typed into the peer's pane, not yet taken up.
    Delivered,
    /// The peer's turn is working on it.
    Answering,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Queued { ahead: 0 } => write!(f, "queued, waiting for the peer to be idle"),
            Progress::Queued { ahead } => write!(f, "queued behind {ahead}"),
            Progress::Delivered => write!(f, "delivered"),
            Progress::Answering => write!(f, "answering"),
        }
    }
}

/// How often a waiting asker asks tmux whether the peer's pane still runs its agent.
const LIVENESS_EVERY: Duration = Duration::from_secs(1);

/// Queues question `text` from `from` to `to`. Refuses an unknown or offline peer, and a
/// question that would deadlock. Returns the queued message and the waiter lock to hold.
pub fn ask(
    spool: &Spool,
    from: &str,
    to: &str,
    text: &str,
    timeout: Duration,
) -> Result<(Message, Lock)> {
    let peer = peer::require(spool, to)?;
    let (status, why) = peer::status(&peer);
    if status == Status::Offline {
        return Err(Error::PeerOffline {
            name: to.to_string(),
            why: why.to_string(),
        }
        .into());
    }
    let (msg, lock) = message::send(
        spool,
        &Draft {
            kind: Kind::Ask,
            from,
            to,
            text,
            deadline_ms: Some(now_ms() + timeout.as_millis() as u64),
        },
    )?;
    deliver::kick(spool, to)?;
    Ok((msg, lock.expect("an ask has a waiter lock")))
}

/// Waits for the answer to `id` until `deadline`, calling `progress` when its stage changes.
/// On timeout, a question not yet delivered is withdrawn; a delivered one stays, and its answer
/// can be fetched later.
pub fn wait_answer(
    spool: &Spool,
    id: &str,
    timeout: Duration,
    mut progress: impl FnMut(Progress),
) -> Result<Response> {
    let deadline = Instant::now() + timeout;
    let mut last: Option<Progress> = None;
    let mut next_liveness = Instant::now() + LIVENESS_EVERY;
    let dirs = [
        spool.path("responses"),
        spool.path("queue"),
        spool.path("done"),
        spool.path("peers"),
    ];
    let got = wait::until(&dirs, Some(deadline), || -> Result<Option<Response>> {
        if let Some(r) = message::load_response(spool, id)? {
            return Ok(Some(r));
        }
        let Some(m) = message::load(spool, id)? else {
            return Err(Error::BadInput(format!("there is no query {id} in the spool")).into());
        };
        if !m.state.is_open() {
            return Err(finished_error(&m).into());
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
        if !p.online || Instant::now() >= next_liveness {
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
        let now = match m.state {
            State::Queued => {
                let ahead = message::inbox(spool, &m.to)?
                    .iter()
                    .take_while(|o| o.id != m.id)
                    .count()
                    + usize::from(p.turn.busy);
                Progress::Queued { ahead }
            }
            _ if p.turn.message.as_deref() == Some(id) => Progress::Answering,
            _ => Progress::Delivered,
        };
        if last != Some(now) {
            last = Some(now);
            progress(now);
        }
        // A deliverer may have been lost (killed): start another when the peer is free.
        if m.state == State::Queued {
            deliver::kick(spool, &m.to)?;
        }
        Ok(None)
    })?;
    if let Some(r) = got {
        return Ok(r);
    }
    // Timed out. Withdraw it if it was never typed; keep it if the peer has it.
    let m = message::load(spool, id)?;
    let to = m.as_ref().map(|m| m.to.clone()).unwrap_or_default();
    let after = match &m {
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
        return Ok(r);
    }
    let what = match after.map(|m| m.state) {
        Some(State::Expired) => {
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
    }
    .into())
}

/// The error for a question that finished without an answer.
pub fn finished_error(m: &Message) -> Error {
    let why = m.error.clone().unwrap_or_else(|| match m.state {
        State::Expired => "expired before it could be delivered".into(),
        _ => "ended without an answer".into(),
    });
    Error::Failed {
        id: m.id.clone(),
        peer: m.to.clone(),
        why: match m.state {
            State::Failed => format!("failed: {why}"),
            _ => why,
        },
    }
}
