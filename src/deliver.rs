//! Delivery: typing queued messages into a peer's pane, one at a time, only while it is idle.
//!
//! There is no daemon. Whoever changes something that could allow a delivery (a sender after
//! queuing, the Stop hook when a turn ends, SessionStart when a peer comes back) calls [`kick`],
//! which starts a short-lived `repowire deliver NAME` in the background. That process holds
//! `peers/NAME.deliver.lock`, delivers while the peer is idle and has mail, and exits. Only one
//! delivers to a peer at a time, so each message is typed once and in queue order; and since a
//! deliverer looks again after releasing the lock, a kick that found the lock held is never
//! lost.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::agents::{Agent, Typing};
use crate::history;
use crate::message::{self, Message, State};
use crate::peer::{self, Peer, Status};
use crate::spool::Spool;
use crate::time::now_ms;
use crate::tmux::Server;
use crate::wait;

/// Enter must arrive as its own read, or the agent takes it for a newline in a paste. Once the
/// typed text shows in the prompt box, the agent has read it; until then the screen is looked
/// at every `ECHO_POLL`, for at most `SETTLE` (a box that never shows the text: too long for the
/// screen, or an agent drawing none).
const SETTLE: Duration = Duration::from_millis(300);
const ECHO_POLL: Duration = Duration::from_millis(5);
/// How long Codex or Gemini CLI may take to draw its prompt box before a message is typed
/// anyway.
const BOX_APPEARS: Duration = Duration::from_secs(5);
/// The same for a session with no session id yet that registered less than this long ago:
/// OpenCode registers when its plugin loads and draws its box later (measured with 1.18.33 on
/// a 2-core machine: 7 s, and about 20 s on its very first start, while it sets up its
/// database); Codex registers when its MCP server starts.
const STARTING: Duration = Duration::from_secs(60);
/// How long a paste may take to show in the prompt box.
const TEXT_SHOWS: Duration = Duration::from_secs(3);
const BOX_POLL: Duration = Duration::from_millis(100);
/// How often a paste that did not show is tried (see [`type_text`]).
const PASTES: usize = 3;
/// How long to wait for the agent's UserPromptSubmit hook to confirm it took the prompt
/// before looking at its screen again.
const CONFIRM: Duration = Duration::from_millis(1500);
/// A message without a deadline (a notification) typed into a pane that never takes it is
/// failed after this long.
const STUCK_LIMIT_MS: u64 = 10 * 60 * 1000;
/// How long a deliverer with more mail waits for the peer's turn to end before it leaves that
/// to the Stop hook's kick.
const BUSY_WAIT: Duration = Duration::from_secs(30);
/// A session that just started may not read its terminal yet; input typed then can be lost.
const STARTUP_GRACE_MS: u64 = 1500;

fn lock_name(name: &str) -> String {
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

/// Types one message and waits until the agent's prompt hook confirms it took it. Returns
/// false when delivery to this peer must stop for now.
fn deliver_one(spool: &Spool, peer: &Peer, msg: Message) -> Result<bool> {
    let server = Server::at(&peer.tmux_socket);
    // Never type after someone else's text: a person's draft, or a prompt the agent did not
    // take. The draft's own turn ends with a Stop hook, which delivers again.
    let agent = peer.agent;
    // Codex, Gemini CLI or OpenCode still starting (or showing a dialog) draws no prompt box
    // yet: give it a moment.
    let starting =
        peer.session_id.is_none() && now_ms() < peer.started_ms + STARTING.as_millis() as u64;
    let limit = match agent.typing() {
        Typing::Paste { .. } if starting => STARTING,
        Typing::Paste { .. } => BOX_APPEARS,
        Typing::Keys { .. } => Duration::ZERO,
    };
    let box_now = wait_box(&server, &peer.pane, agent, limit, Option::is_some);
    if box_now.is_some_and(|t| !t.is_empty()) {
        return Ok(false);
    }
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
    message::log(spool, history::Event::Delivered, &msg, None);

    let text = message::prompt_text(&msg);
    if let Err(e) = type_text(&server, &peer.pane, agent, &text) {
        fail(
            spool,
            peer,
            &msg,
            format!("could not type into pane {}: {e}", peer.pane),
        )?;
        return Ok(false);
    }
    let settle_end = Instant::now() + SETTLE;
    while Instant::now() < settle_end
        && !prompt_box(&server, peer).is_some_and(|b| shows_typed(&b, &text))
    {
        std::thread::sleep(ECHO_POLL);
    }
    if let Typing::Paste { gap } = agent.typing() {
        std::thread::sleep(gap);
    }
    server.send_enter(&peer.pane)?;
    // A busy machine can delay the agent reading its input for seconds, and then the text and
    // Enter arrive together as one paste. So keep waiting until the message's deadline, and
    // press Enter again only where it cannot do harm: the prompt box is on screen and holds
    // text (never into a dialog, where Enter would choose an answer).
    let give_up = msg.deadline_ms.unwrap_or(now_ms() + STUCK_LIMIT_MS);
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
        if peer::status(peer).0 == Status::Offline {
            return Ok(false); // the asker and the SessionEnd hook report it
        }
        if now_ms() >= give_up {
            fail(
                spool,
                peer,
                &msg,
                format!(
                    "it was typed into pane {} but the agent has not taken it as a prompt; the text may still be in its prompt box",
                    peer.pane
                ),
            )?;
            return Ok(false);
        }
        if prompt_box(&server, peer).is_some_and(|t| !t.is_empty()) {
            server.send_enter(&peer.pane)?;
        }
    }
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

/// The text in the peer's prompt box, if its screen shows one (see [`Agent::prompt_box`]).
fn prompt_box(server: &Server, peer: &Peer) -> Option<String> {
    box_of(server, &peer.pane, peer.agent)
}

fn box_of(server: &Server, pane: &str, agent: Agent) -> Option<String> {
    agent.prompt_box(&server.capture_styled(pane).ok()?)
}

/// Polls the prompt box until `done` holds or `limit` passed; returns what it saw last.
fn wait_box(
    server: &Server,
    pane: &str,
    agent: Agent,
    limit: Duration,
    done: impl Fn(&Option<String>) -> bool,
) -> Option<String> {
    let end = Instant::now() + limit;
    loop {
        let seen = box_of(server, pane, agent);
        if done(&seen) || Instant::now() >= end {
            return seen;
        }
        std::thread::sleep(BOX_POLL);
    }
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

/// Types `text` the way `agent` takes it, without pressing Enter.
fn type_text(
    server: &Server,
    pane: &str,
    agent: Agent,
    text: &str,
) -> Result<(), crate::error::Error> {
    match agent.typing() {
        Typing::Keys { chunk, gap } => {
            let mut rest = text;
            while !rest.is_empty() {
                let mut end = rest.len().min(chunk);
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                server.send_literal(pane, &rest[..end])?;
                rest = &rest[end..];
                if !rest.is_empty() {
                    std::thread::sleep(gap);
                }
            }
        }
        Typing::Paste { .. } => {
            // A paste the agent was not ready to read can vanish. Enter was not pressed yet, so
            // a box seen empty never took the text: paste again.
            for _ in 0..PASTES {
                server.paste(pane, text)?;
                // Enter only once the text is on screen, read by the agent.
                let seen = wait_box(server, pane, agent, TEXT_SHOWS, |b| {
                    b.as_ref().is_none_or(|t| !t.is_empty())
                });
                if seen.is_none_or(|t| !t.is_empty()) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Whether the prompt box `shown` ends with the end of `typed`. Agents wrap, indent and
/// elide long input differently, so only the last few visible characters are compared,
/// whitespace ignored.
fn shows_typed(shown: &str, typed: &str) -> bool {
    let visible = |s: &str| -> Vec<char> {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '↵')
            .collect()
    };
    let (shown, typed) = (visible(shown), visible(typed));
    let tail = &typed[typed.len().saturating_sub(12)..];
    !tail.is_empty() && shown.ends_with(tail)
}

#[cfg(test)]
mod tests {
    use super::shows_typed;

    #[test]
    fn sees_the_typed_text_however_the_box_wraps_it() {
        let typed = "[repowire] Question from a (query 01J)\nwhat is the users API schema?";
        // Claude Code wraps a long prompt over several indented lines.
        assert!(shows_typed(
            "[repowire] Question from a (query 01J)\nwhat is the users\n  API schema?",
            typed
        ));
        // The stand-in shows one row: the end of the text, newlines as ↵.
        assert!(shows_typed(
            "…om a (query 01J)↵what is the users API schema?",
            typed
        ));
        assert!(!shows_typed(
            "[repowire] Question from a (query 01J)\nwhat is",
            typed
        ));
        assert!(!shows_typed("", typed));
    }
}
