//! `repowire hook EVENT --agent AGENT`: what the agents run on their session and turn events.
//!
//! | event         | Claude Code      | Codex            | Gemini CLI   | OpenCode (plugin) |
//! |---------------|------------------|------------------|--------------|-------------------|
//! | session-start | SessionStart     | SessionStart     | SessionStart | load, created     |
//! | prompt        | UserPromptSubmit | UserPromptSubmit | BeforeAgent  | chat.message      |
//! | stop          | Stop             | Stop             | AfterAgent   | session.idle      |
//! | interrupt     | –                | Interrupt        | –            | session.error     |
//! | session-end   | SessionEnd       | SessionEnd       | SessionEnd   | session.deleted   |
//!
//! The payloads differ in a few field names ([`Agent`] knows them); all map onto one peer
//! model. OpenCode runs no hooks: repowire's plugin for it (`setup/opencode.js`) runs these
//! with payloads in Claude Code's field names. A turn cut short with Esc is never taken for
//! an answer: Codex reports it with its Interrupt event, Gemini CLI with an AfterAgent without
//! a reply after a "Request cancelled." in its chat file, OpenCode with a session.error; the
//! asker is told the turn was interrupted.
//!
//! A hook must never hang and never break the agent: whatever arrives on stdin, it exits 0,
//! prints nothing on stdout (Claude Code would read it as context or a decision), reports
//! problems on stderr only, and a watchdog ends it if anything stalls.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::agents::transcript;
use crate::agents::{Agent, Event, TurnEnd};
use crate::config::Config;
use crate::deliver;
use crate::gc;
use crate::message::{self, Kind, State};
use crate::peer::{self, Peer, Turn};
use crate::process;
use crate::spool::Spool;
use crate::time::now_ms;
use crate::tmux::Server;

/// The most of a payload kept; the rest is read and dropped so the writer is never blocked.
/// A hook must stay small (see README.md's figures): an answer longer than this is not passed
/// on, and the asker is told where to read it.
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Marks a payload cut at [`MAX_PAYLOAD`].
const CUT: &str = "repowire_payload_cut";
/// After this long a hook gives up and exits 0, whatever it was doing.
const WATCHDOG: Duration = Duration::from_secs(10);

/// Runs a hook. Always succeeds: errors are printed on stderr and swallowed.
pub fn run(home: &Path, event: Event, agent: Agent) {
    // A fork answering a question (see `fork`) is no peer: it must change nothing.
    if std::env::var_os(crate::fork::ENV).is_some() {
        return;
    }
    arm_watchdog();
    let payload = read_payload();
    if let Err(e) = handle(home, event, agent, &payload) {
        eprintln!("repowire hook: {e:#}");
    }
}

/// Ends the process with status 0 after [`WATCHDOG`], whatever it is doing. A signal, not a
/// thread: hooks run on every turn, and starting a thread costs more than the rest of a hook
/// that has nothing to do.
fn arm_watchdog() {
    extern "C" fn give_up(_: libc::c_int) {
        const MSG: &[u8] = b"repowire hook: gave up after 10s\n";
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(0);
        }
    }
    // SAFETY: the handler only calls async-signal-safe functions; the set is initialized by
    // sigemptyset before use.
    unsafe {
        libc::signal(libc::SIGALRM, give_up as *const () as libc::sighandler_t);
        // The agent may have started us with it blocked.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::alarm(WATCHDOG.as_secs() as libc::c_uint);
    }
}

fn read_payload() -> Value {
    let mut buf = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let _ = (&mut stdin)
        .take(MAX_PAYLOAD as u64 + 1)
        .read_to_end(&mut buf);
    let cut = buf.len() > MAX_PAYLOAD;
    if cut {
        let _ = std::io::copy(&mut stdin, &mut std::io::sink());
    }
    parse_payload(&buf, cut)
}

/// The payload as JSON; `Null` if it is not. Of a payload `cut` at the size limit, the
/// top-level fields that arrived whole (the session, the prompt id, the transcript come
/// before the long text), marked with [`CUT`].
pub fn parse_payload(bytes: &[u8], cut: bool) -> Value {
    if !cut {
        return serde_json::from_slice(bytes).unwrap_or(Value::Null);
    }
    struct Fields<'a>(&'a mut serde_json::Map<String, Value>);
    impl<'de> serde::de::Visitor<'de> for Fields<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            // A field counts as whole once what follows it has arrived: a number cut short
            // (`12` of `1234`) parses as a number too.
            let mut last: Option<(String, Value)> = None;
            while let Some(k) = map.next_key::<String>()? {
                self.0.extend(last.take());
                last = Some((k, map.next_value::<Value>()?));
            }
            self.0.extend(last);
            Ok(())
        }
    }
    let mut fields = serde_json::Map::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = serde::Deserializer::deserialize_map(&mut de, Fields(&mut fields));
    if fields.is_empty() {
        return Value::Null;
    }
    fields.insert(CUT.into(), Value::Bool(true));
    Value::Object(fields)
}

/// A string field of the payload, if present and a string.
fn field<'a>(p: &'a Value, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}

fn handle(home: &Path, event: Event, agent: Agent, p: &Value) -> Result<()> {
    if !p.is_object() {
        return Ok(());
    }
    // `claude -p` or `opencode run` (run by a script, or as a tool inside a peer's pane) is
    // no peer, and its turns are not the pane's peer's.
    if process::hook_agent().is_some_and(|a| headless(agent, a.pid)) {
        return Ok(());
    }
    let spool = Spool::open(home)?;
    // Not a peer (e.g. not in tmux): nothing to do.
    let peer = || find_peer(&spool, agent, field(p, "session_id"));
    match event {
        Event::SessionStart => session_start(&spool, agent, p),
        Event::Prompt => peer()?.map_or(Ok(()), |peer| prompt(&spool, &peer, agent, p)),
        Event::Stop => peer()?.map_or(Ok(()), |peer| stop(&spool, &peer, p, false)),
        Event::Interrupt => peer()?.map_or(Ok(()), |peer| stop(&spool, &peer, p, true)),
        Event::SessionEnd => peer()?.map_or(Ok(()), |peer| session_end(&spool, &peer, p)),
    }
}

/// The peer this hook belongs to: by its tmux pane (through the pane index, without reading
/// every record), else by the agent's session id. Where the agent's hooks may run with
/// another session's environment, the session id comes first and the pane counts only when
/// the agent vouches for it.
fn find_peer(spool: &Spool, agent: Agent, session_id: Option<&str>) -> Result<Option<Peer>> {
    let by_session = || -> Result<Option<Peer>> {
        let Some(sid) = session_id else {
            return Ok(None);
        };
        Ok(peer::all(spool)?
            .into_iter()
            .find(|p| p.session_id.as_deref() == Some(sid)))
    };
    let shared = agent.shared_hook_env();
    if shared && let Some(p) = by_session()? {
        return Ok(Some(p));
    }
    if let Some((socket, pane)) = peer::own_pane()
        && (!shared || agent.check_pane(&socket, &pane).is_ok())
        && let Some(p) = peer::by_pane(spool, &socket, &pane)?
    {
        return Ok(Some(p));
    }
    if shared {
        return Ok(None);
    }
    by_session()
}

fn session_start(spool: &Spool, agent: Agent, p: &Value) -> Result<()> {
    let cwd = field(p, "cwd")
        .map(PathBuf::from)
        .filter(|c| c.is_absolute());
    let transcript = field(p, "transcript_path").map(Path::new);
    register_pane(spool, agent, field(p, "session_id"), cwd, transcript)
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
    if process::hook_agent().is_some_and(|a| headless(agent, a.pid)) {
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
        register_pane(spool, agent, None, None, None)
    })();
    if let Err(e) = res {
        eprintln!("repowire mcp: cannot register this session as a peer: {e:#}");
    }
}

/// Registers the agent session running in this process's pane (if it runs in one).
/// `transcript` is the new session's: the previous session's is beside it (Claude Code keeps a
/// directory's sessions together).
fn register_pane(
    spool: &Spool,
    agent: Agent,
    session_id: Option<&str>,
    cwd: Option<PathBuf>,
    transcript: Option<&Path>,
) -> Result<()> {
    let Some((socket, pane)) = peer::own_pane() else {
        // Nothing can be typed into a session outside tmux; some can answer by fork.
        if agent.registers_outside_tmux()
            && let (Some(cwd), Some(agent_process)) = (cwd, process::hook_agent())
            && session_id.is_some()
        {
            let config = Config::load(spool)?;
            peer::session_started(
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
                },
            )?;
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

/// Whether the agent process `pid` runs no session a person could see (`claude -p`,
/// `opencode run`): a script's run, not a peer.
fn headless(agent: Agent, pid: u32) -> bool {
    let args = process::args(pid);
    agent.headless(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn prompt(spool: &Spool, peer: &Peer, agent: Agent, p: &Value) -> Result<()> {
    let prompt_id = agent.turn_id(p).map(str::to_string);
    // Only a message this peer is being handed right now can claim the turn, so text that
    // imitates a header cannot tie a turn to some other query.
    let claimed = match field(p, "prompt").and_then(message::parse_header) {
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
    let transcript = field(p, "transcript_path").map(Path::new);
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

/// How the turn a stop payload reports ended: as the agent tells (its reply, or that it was
/// interrupted), else with a note that there was no text reply, or one too long to read.
fn end_of_turn(agent: Agent, p: &Value) -> TurnEnd {
    if let Some(end) = agent.turn_end(p) {
        return end;
    }
    let transcript = field(p, "transcript_path");
    let too_long = p.get(CUT).is_some()
        || transcript
            .and_then(|t| std::fs::metadata(t).ok())
            .is_some_and(|m| m.len() > transcript::MAX_SCAN);
    TurnEnd::Answer(match transcript {
        Some(t) if too_long => format!(
            "(the peer's answer may be longer than repowire passes on ({} KiB) and was not read; the whole turn is in its transcript: {t})",
            MAX_PAYLOAD / 1024
        ),
        _ => "(the peer's turn ended without a text reply)".to_string(),
    })
}

/// The turn ended (`interrupted`: by Codex's Interrupt event): its answer goes to whoever
/// asked, and the peer is idle again.
fn stop(spool: &Spool, peer: &Peer, p: &Value, interrupted: bool) -> Result<()> {
    let agent = peer.agent;
    let prompt_id = agent.turn_id(p).map(str::to_string);
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
                let end = if interrupted {
                    TurnEnd::Interrupted
                } else {
                    end_of_turn(agent, p)
                };
                match end {
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

fn session_end(spool: &Spool, peer: &Peer, p: &Value) -> Result<()> {
    // `/clear` ends a session and starts the next one in the same pane at once.
    if field(p, "reason") == Some("clear") {
        return Ok(());
    }
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
        field(p, "transcript_path").map(Path::new),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_payload_keeps_the_fields_that_arrived_whole() {
        let full = br#"{"session_id":"s","transcript_path":"/t.jsonl","last_assistant_message":"a very long ans"#;
        let p = parse_payload(full, true);
        assert_eq!(field(&p, "session_id"), Some("s"));
        assert_eq!(field(&p, "transcript_path"), Some("/t.jsonl"));
        assert_eq!(field(&p, "last_assistant_message"), None);
        assert_eq!(p[CUT], true);
        // Not cut: broken JSON is no payload at all, and nothing is marked.
        assert_eq!(parse_payload(full, false), Value::Null);
        assert_eq!(parse_payload(b"garbage", true), Value::Null);
        let whole = parse_payload(br#"{"session_id":"s"}"#, false);
        assert!(whole.get(CUT).is_none());
    }
}
