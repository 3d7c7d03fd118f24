//! The tmux transport: a message typed into the agent's prompt box in its pane, the way the
//! agent takes typed text (see `agents::Typing`), and Enter pressed as its own key.

use std::time::{Duration, Instant};

use crate::agents::{Agent, Typing};
use crate::peer::Peer;
use crate::time::now_ms;
use crate::tmux::Server;

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

/// A peer's pane, to type a message into.
pub(super) struct Pane<'a> {
    peer: &'a Peer,
    server: Server,
}

impl<'a> Pane<'a> {
    pub(super) fn of(peer: &'a Peer) -> Pane<'a> {
        Pane {
            peer,
            server: Server::at(&peer.tmux_socket),
        }
    }

    /// Whether the prompt box is empty, so that typing adds to nobody's text: never type after
    /// someone else's text, a person's draft or a prompt the agent did not take (the draft's
    /// own turn ends with a Stop hook, which delivers again).
    pub(super) fn ready(&self) -> bool {
        let agent = self.peer.agent;
        // Codex, Gemini CLI or OpenCode still starting (or showing a dialog) draws no prompt box
        // yet: give it a moment.
        let starting = self.peer.session_id.is_none()
            && now_ms() < self.peer.started_ms + STARTING.as_millis() as u64;
        let limit = match agent.typing() {
            Typing::Paste { .. } if starting => STARTING,
            Typing::Paste { .. } => BOX_APPEARS,
            Typing::Keys { .. } => Duration::ZERO,
        };
        let box_now = wait_box(&self.server, &self.peer.pane, agent, limit, Option::is_some);
        box_now.is_none_or(|t| t.is_empty())
    }

    /// Types `text` and presses Enter once it shows (Enter must arrive as its own read, or
    /// the agent takes it for a newline in a paste).
    pub(super) fn hand_over(&self, text: &str) -> Result<(), String> {
        let (server, pane, agent) = (&self.server, &self.peer.pane, self.peer.agent);
        type_text(server, pane, agent, text)
            .map_err(|e| format!("could not type into pane {pane}: {e}"))?;
        let settle_end = Instant::now() + SETTLE;
        while Instant::now() < settle_end
            && !prompt_box(server, self.peer).is_some_and(|b| shows_typed(&b, text))
        {
            std::thread::sleep(ECHO_POLL);
        }
        if let Typing::Paste { gap } = agent.typing() {
            std::thread::sleep(gap);
        }
        server
            .send_enter(pane)
            .map_err(|e| format!("could not type into pane {pane}: {e}"))
    }

    /// Presses Enter again where it cannot do harm: the prompt box is on screen and holds
    /// text (never into a dialog, where Enter would choose an answer). Text and Enter that
    /// arrived together, on a busy machine, became one paste.
    pub(super) fn nudge(&self) -> anyhow::Result<()> {
        if prompt_box(&self.server, self.peer).is_some_and(|t| !t.is_empty()) {
            self.server.send_enter(&self.peer.pane)?;
        }
        Ok(())
    }

    /// Why a message handed over but never taken failed.
    pub(super) fn not_taken(&self) -> String {
        format!(
            "it was typed into pane {} but the agent has not taken it as a prompt; the text may still be in its prompt box",
            self.peer.pane
        )
    }
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
