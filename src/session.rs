//! An agent session's life as repowire follows it, from the events its hooks report (see
//! `hook`, which turns the agents' payloads into these calls): it starts and becomes a peer
//! ([`started`]); each turn starts ([`prompted`]), claiming the message it was handed, and
//! ends ([`stopped`]), answering it; the session ends ([`ended`]), and whatever it will never
//! answer is settled: answered from its transcript where that holds the reply, else failed
//! with the reason. Every change to a peer's turn and to the messages it works on is made
//! here, under the peer's lock.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::agents::{Agent, TurnEnd};
use crate::config::Config;
use crate::deliver;
use crate::gc;
use crate::message::{self, Kind, State};
use crate::peer::{self, Peer, Turn};
use crate::process;
use crate::spool::Spool;
use crate::time::now_ms;
use crate::tmux::Server;

/// Whether the agent process this process runs for runs no session a person could see
/// (`claude -p`, `opencode run`): a script's run, not a peer, whose turns are not the pane's
/// peer's.
pub fn headless(agent: Agent) -> bool {
    process::hook_agent().is_some_and(|a| {
        let args = process::args(a.pid);
        agent.headless(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
}

/// What `repowire mcp --agent AGENT` does when it starts: for an agent that runs its
/// session-start hook late (Codex: with the first prompt), registers the session in its pane,
/// as its MCP server starts with the TUI; this is what makes a fresh session a peer that can
/// be asked. Nothing happens when the pane's peer already is this agent process (its MCP
/// server restarted).
pub fn mcp_started(spool: &Spool, agent: Agent) {
    if !agent.registers_from_mcp() {
        return; // the others run their session-start hook when they start
    }
    // `codex exec` starts MCP servers too, and is no peer.
    if headless(agent) {
        return;
    }
    let res = (|| {
        if let Some((socket, pane)) = peer::own_pane()
            && let Some(old) = peer::by_pane(spool, &socket, &pane)?
            && let Some(live) = Server::at(&socket).pane(&pane)?
            && old.online
            && old.agent == agent
            && old.agent_process.is_some()
            && old.agent_process == crate::process::agent_process(live.pid)
        {
            return Ok(());
        }
        started(spool, agent, None, None, None)
    })();
    if let Err(e) = res {
        eprintln!("repowire mcp: cannot register this session as a peer: {e:#}");
    }
}

/// The session-start event: registers the agent session running in this process's pane (if
/// it runs in one, or as a fork-only peer where its agent can answer so).
/// `transcript` is the new session's: the previous session's is beside it (Claude Code keeps a
/// directory's sessions together).
pub fn started(
    spool: &Spool,
    agent: Agent,
    session_id: Option<&str>,
    cwd: Option<PathBuf>,
    transcript: Option<&Path>,
) -> Result<()> {
    let inbox = agent.inbox();
    let Some((socket, pane)) = peer::own_pane() else {
        // Outside tmux nothing can be typed into the session: it is reached through its
        // inbox, else (where its agent forks) asked through forks only.
        if (agent.registers_outside_tmux() || matches!(inbox, Ok(Some(_))))
            && let (Some(cwd), Some(agent_process)) = (cwd, process::hook_agent())
            && session_id.is_some()
        {
            let config = Config::load(spool)?;
            let peer = peer::session_started(
                spool,
                &peer::SessionStart {
                    socket: Path::new(""),
                    pane: "",
                    cwd: &cwd,
                    session_id,
                    agent,
                    agent_process: Some(agent_process),
                    agent_command: None,
                    naming: config.naming,
                    inbox,
                    transcript,
                },
            )?;
            deliver::kick(spool, &peer.name)?;
        }
        return Ok(());
    };
    // `$TMUX_PANE` of a process that does not descend from that pane's agent, or that a
    // shared Codex daemon runs, may be another session's: registering it would route to the
    // wrong agent.
    if agent.shared_hook_env()
        && let Err(why) = agent.check_pane(&socket, &pane)
    {
        eprintln!("repowire: {why}");
        return Ok(());
    }
    let cwd = cwd
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    // Only a live pane can be typed into; anything else is not a session to register.
    let Some(live) = Server::at(&socket).pane(&pane)?.filter(|pn| !pn.dead) else {
        return Ok(());
    };
    let agent_process = crate::process::agent_process(live.pid);
    // A Codex session registered by its MCP server has no session id yet; its SessionStart
    // comes with the first prompt, which may be a question just typed: the same session,
    // whose delivered question must not be failed.
    let config = Config::load(spool)?;
    let previous = peer::by_pane(spool, &socket, &pane)?;
    let continued = session_id.is_some()
        && previous
            .as_ref()
            .is_some_and(|old| old.online && old.session_id.is_none() && old.agent == agent);
    let old_transcript = previous
        .as_ref()
        .and_then(|old| old.session_id.as_deref())
        .zip(transcript.and_then(Path::parent))
        .map(|(sid, dir)| dir.join(format!("{sid}.jsonl")));
    let peer = peer::session_started(
        spool,
        &peer::SessionStart {
            socket: &socket,
            pane: &pane,
            cwd: &cwd,
            session_id,
            agent,
            agent_process,
            agent_command: Some(live.command),
            naming: config.naming,
            inbox,
            transcript,
        },
    )?;
    if !continued {
        // A question typed into the previous session will never be answered by this one.
        let _lock = spool.lock(&peer::lock_name(&peer.name))?;
        settle_all_locked(
            spool,
            &peer,
            old_transcript.as_deref(),
            "the peer's session restarted before it answered",
        )?;
    }
    // With no daemon, housekeeping rides on session starts: at most once a day, detached.
    if let Err(e) = gc::start_housekeeping(spool, config.keep) {
        eprintln!("repowire: housekeeping did not start: {e:#}");
    }
    deliver::kick(spool, &peer.name)
}

/// The prompt event: a turn starts (`turn_id`: the agent's id for it, if it gives one), with
/// `prompt` as its text. A turn whose prompt carries the header of a message being handed to
/// this peer works on that message.
pub fn prompted(
    spool: &Spool,
    peer: &Peer,
    turn_id: Option<&str>,
    prompt: Option<&str>,
    transcript: Option<&Path>,
) -> Result<()> {
    let prompt_id = turn_id.map(str::to_string);
    // Only a message this peer is being handed right now can claim the turn, so text that
    // imitates a header cannot tie a turn to some other query.
    let claimed = match prompt.and_then(message::parse_header) {
        Some(id) => {
            message::load(spool, id)?.filter(|m| m.to == peer.name && m.state == State::Delivered)
        }
        None => None,
    };
    let claimed_id = claimed.as_ref().map(|m| m.id.clone());
    let mut unfinished = None;
    peer::update(spool, &peer.name, |pr| {
        let now = now_ms();
        pr.last_activity_ms = now;
        if pr.turn.busy && prompt_id.is_some() && pr.turn.prompt_id == prompt_id {
            // Typed while a turn runs: Claude Code fires this hook at once, with the running
            // turn's prompt id, and runs the prompt as its own turn after the current one.
            pr.queued_turns.push(claimed_id.clone());
        } else {
            // A new turn while another (with an id of its own) was running: that one ended
            // without a Stop hook. Claude Code runs none for a turn cancelled with Esc.
            if pr.turn.busy && pr.turn.prompt_id.is_some() && prompt_id.is_some() {
                unfinished = pr.turn.message.take();
            }
            pr.turn = Turn {
                busy: true,
                prompt_id: prompt_id.clone(),
                message: claimed_id.clone(),
                since_ms: now,
            };
        }
        true
    })?;
    if let Some(m) = claimed.filter(|m| m.kind != Kind::Ask) {
        message::finish(
            spool,
            &peer.name,
            &m.id,
            Some(State::Delivered),
            State::Received,
            None,
        )?;
    }
    if let Some(id) = unfinished {
        let _lock = spool.lock(&peer::lock_name(&peer.name))?;
        settle_locked(
            spool,
            peer,
            &id,
            transcript,
            "the peer's turn ended without an answer (interrupted with Esc, or it ended without a reply)",
        )?;
    }
    Ok(())
}

/// The stop event: the turn (`turn_id`, if the agent gives one) ended as `end` tells (asked
/// only when the turn worked on a question: it may read the transcript). Its answer goes to
/// whoever asked, and the peer is idle again.
pub fn stopped(
    spool: &Spool,
    peer: &Peer,
    turn_id: Option<&str>,
    end: impl FnOnce() -> TurnEnd,
) -> Result<()> {
    let prompt_id = turn_id.map(str::to_string);
    {
        // One hold of the peer's lock: the answer is stored before the turn shows idle, so no
        // waiter sees its question merely "delivered" again in between.
        let _lock = spool.lock(&peer::lock_name(&peer.name))?;
        let Some(mut pr) = peer::load(spool, &peer.name)? else {
            return Ok(());
        };
        let same_turn = match (&pr.turn.prompt_id, &prompt_id) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        let asked = match pr.turn.message.take() {
            Some(id) if pr.turn.busy && same_turn => {
                message::load(spool, &id)?.filter(|m| m.kind == Kind::Ask)
            }
            _ => None,
        };
        let answerer = pr.clone();
        let now = now_ms();
        pr.last_activity_ms = now;
        pr.turn = if pr.queued_turns.is_empty() {
            Turn::default()
        } else {
            Turn {
                busy: true,
                prompt_id: None,
                message: pr.queued_turns.remove(0),
                since_ms: now,
            }
        };
        match asked {
            // Most turns are a person's own: only the record changes.
            None => peer::save(spool, &pr)?,
            // The peer's record is written while the answer is (their fsyncs overlap), and put
            // in place after it.
            Some(m) => std::thread::scope(|s| -> Result<()> {
                let staged = s.spawn(|| peer::stage(spool, &pr));
                match end() {
                    TurnEnd::Answer(text) => {
                        message::answer(spool, &answerer, &m, &text, prompt_id.as_deref())?;
                    }
                    TurnEnd::Interrupted => {
                        message::finish_locked(
                            spool,
                            &m.id,
                            Some(State::Delivered),
                            State::Failed,
                            Some("the peer's turn was interrupted (Esc) before it answered".into()),
                        )?;
                    }
                }
                let staged = staged.join().expect("staging a record does not panic")?;
                peer::place(spool, &pr, staged)
            })?,
        }
    }
    deliver::kick(spool, &peer.name)
}

/// The session-end event: the peer goes offline, and what its session never answered is
/// settled (from `transcript`, the session's, where the agent's can be read).
pub fn ended(spool: &Spool, peer: &Peer, transcript: Option<&Path>) -> Result<()> {
    // One hold of the lock: a waiter that sees the peer offline and fails its question
    // (taking the lock) finds it settled, answered from the transcript where it can be.
    let _lock = spool.lock(&peer::lock_name(&peer.name))?;
    if let Some(mut pr) = peer::load(spool, &peer.name)? {
        pr.online = false;
        pr.turn = Turn::default();
        pr.queued_turns.clear();
        pr.last_activity_ms = now_ms();
        peer::save(spool, &pr)?;
    }
    settle_all_locked(
        spool,
        peer,
        transcript,
        "the peer's session ended before it answered",
    )
}

/// Settles every message delivered to `peer` that its session will now never answer (see
/// [`settle_locked`]). The caller holds the peer's lock.
fn settle_all_locked(
    spool: &Spool,
    peer: &Peer,
    transcript: Option<&Path>,
    why: &str,
) -> Result<()> {
    for m in message::inbox(spool, &peer.name)? {
        if m.state == State::Delivered {
            settle_locked(spool, peer, &m.id, transcript, why)?;
        }
    }
    Ok(())
}

/// A message delivered to `peer` whose turn is over without a Stop hook that settled it (the
/// hook was killed, the turn cut short, the session gone). A question is answered from the
/// agent's transcript when that holds the reply of the turn the question started; otherwise
/// (no reply: Esc, a crash; or an agent whose transcript repowire does not read) the message
/// fails with `why`. The caller holds the peer's lock.
fn settle_locked(
    spool: &Spool,
    peer: &Peer,
    id: &str,
    transcript: Option<&Path>,
    why: &str,
) -> Result<()> {
    let Some(m) = message::load(spool, id)?.filter(|m| m.state == State::Delivered) else {
        return Ok(());
    };
    let reply = transcript.filter(|_| m.kind == Kind::Ask).and_then(|t| {
        peer.agent
            .reply_in_transcript(t, &|prompt| message::parse_header(prompt) == Some(id))
    });
    match reply {
        Some(text) => {
            message::answer(spool, peer, &m, &text, None)?;
        }
        None => {
            message::finish_locked(
                spool,
                id,
                Some(State::Delivered),
                State::Failed,
                Some(why.to_string()),
            )?;
        }
    }
    Ok(())
}
