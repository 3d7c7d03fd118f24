//! `repowire hook EVENT`: what Claude Code runs on SessionStart, UserPromptSubmit, Stop and
//! SessionEnd.
//!
//! A hook must never hang and never break the agent: whatever arrives on stdin, it exits 0,
//! prints nothing on stdout (Claude Code would read it as context or a decision), reports
//! problems on stderr only, and a watchdog ends it if anything stalls.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::config::Config;
use crate::deliver;
use crate::message::{self, Kind, State};
use crate::peer::{self, Peer, Turn};
use crate::spool::{Spool, now_ms};
use crate::tmux::Server;
use crate::transcript;

/// The most of a payload kept; the rest is read and dropped so the writer is never blocked.
/// A hook must stay small (see README.md's figures): an answer longer than this is not passed
/// on, and the asker is told where to read it.
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Marks a payload cut at [`MAX_PAYLOAD`].
const CUT: &str = "repowire_payload_cut";
/// After this long a hook gives up and exits 0, whatever it was doing.
const WATCHDOG: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Event {
    /// Register this session's pane as a peer (SessionStart)
    SessionStart,
    /// Mark the peer busy and tie the turn to the message it carries (UserPromptSubmit)
    Prompt,
    /// Send the turn's answer to whoever asked; the peer is idle again (Stop)
    Stop,
    /// Mark the peer offline; its undelivered messages wait for it (SessionEnd)
    SessionEnd,
}

/// Runs a hook. Always succeeds: errors are printed on stderr and swallowed.
pub fn run(home: &Path, event: Event) {
    arm_watchdog();
    let payload = read_payload();
    if let Err(e) = handle(home, event, &payload) {
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

fn handle(home: &Path, event: Event, p: &Value) -> Result<()> {
    if !p.is_object() {
        return Ok(());
    }
    let spool = Spool::open(home)?;
    if event == Event::SessionStart {
        return session_start(&spool, p);
    }
    let Some(peer) = find_peer(&spool, field(p, "session_id"))? else {
        return Ok(()); // not a peer (e.g. not in tmux): nothing to do
    };
    match event {
        Event::SessionStart => unreachable!(),
        Event::Prompt => prompt(&spool, &peer, p),
        Event::Stop => stop(&spool, &peer, p),
        Event::SessionEnd => session_end(&spool, &peer, field(p, "reason")),
    }
}

/// The peer this hook belongs to: by its tmux pane, else by the agent's session id.
fn find_peer(spool: &Spool, session_id: Option<&str>) -> Result<Option<Peer>> {
    if let Some((socket, pane)) = peer::own_pane()
        && let Some(p) = peer::by_pane(spool, &socket, &pane)?
    {
        return Ok(Some(p));
    }
    let Some(sid) = session_id else {
        return Ok(None);
    };
    Ok(peer::all(spool)?
        .into_iter()
        .find(|p| p.session_id.as_deref() == Some(sid)))
}

fn session_start(spool: &Spool, p: &Value) -> Result<()> {
    let Some((socket, pane)) = peer::own_pane() else {
        return Ok(()); // outside tmux nobody could type to it
    };
    let cwd = field(p, "cwd")
        .map(PathBuf::from)
        .filter(|c| c.is_absolute())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    // Only a live pane can be typed into; anything else is not a session to register.
    let Some(live) = Server::at(&socket).pane(&pane)?.filter(|pn| !pn.dead) else {
        return Ok(());
    };
    let peer = peer::session_started(
        spool,
        &peer::SessionStart {
            socket: &socket,
            pane: &pane,
            cwd: &cwd,
            session_id: field(p, "session_id"),
            agent: "claude",
            agent_process: peer::agent_process(live.pid),
            agent_command: Some(live.command),
            naming: Config::load(spool)?.naming,
        },
    )?;
    // A question typed into the previous session will never be answered by this one.
    fail_delivered(
        spool,
        &peer.name,
        "the peer's session restarted before it answered",
    )?;
    deliver::kick(spool, &peer.name)
}

fn prompt(spool: &Spool, peer: &Peer, p: &Value) -> Result<()> {
    let prompt_id = field(p, "prompt_id").map(str::to_string);
    // Only a message this peer is being handed right now can claim the turn, so text that
    // imitates a header cannot tie a turn to some other query.
    let claimed = match field(p, "prompt").and_then(message::parse_header) {
        Some(id) => {
            message::load(spool, id)?.filter(|m| m.to == peer.name && m.state == State::Delivered)
        }
        None => None,
    };
    let claimed_id = claimed.as_ref().map(|m| m.id.clone());
    peer::update(spool, &peer.name, |pr| {
        let now = now_ms();
        pr.last_activity_ms = now;
        if pr.turn.busy && prompt_id.is_some() && pr.turn.prompt_id == prompt_id {
            // Typed while a turn runs: Claude Code fires this hook at once, with the running
            // turn's prompt id, and runs the prompt as its own turn after the current one.
            pr.queued_turns.push(claimed_id.clone());
        } else {
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
    Ok(())
}

fn stop(spool: &Spool, peer: &Peer, p: &Value) -> Result<()> {
    let prompt_id = field(p, "prompt_id").map(str::to_string);
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
        // The peer's record is written while the answer is (their fsyncs overlap), and put in
        // place after it.
        std::thread::scope(|s| -> Result<()> {
            let staged = s.spawn(|| peer::stage(spool, &pr));
            if let Some(m) = asked {
                message::answer(spool, &answerer, &m, &answer_text(p), prompt_id.as_deref())?;
            }
            let staged = staged.join().expect("staging a record does not panic")?;
            peer::place(spool, &pr, staged)
        })?;
    }
    deliver::kick(spool, &peer.name)
}

/// The turn's answer: `last_assistant_message`, else the transcript's last assistant text.
fn answer_text(p: &Value) -> String {
    let transcript = field(p, "transcript_path");
    if let Some(text) = field(p, "last_assistant_message")
        .map(str::to_string)
        .or_else(|| transcript.and_then(|t| transcript::last_assistant_text(Path::new(t))))
    {
        return text;
    }
    let too_long = p.get(CUT).is_some()
        || transcript
            .and_then(|t| std::fs::metadata(t).ok())
            .is_some_and(|m| m.len() > transcript::MAX_SCAN);
    match transcript {
        Some(t) if too_long => format!(
            "(the peer's answer may be longer than repowire passes on ({} KiB) and was not read; the whole turn is in its transcript: {t})",
            MAX_PAYLOAD / 1024
        ),
        _ => "(the peer's turn ended without a text reply)".to_string(),
    }
}

fn session_end(spool: &Spool, peer: &Peer, reason: Option<&str>) -> Result<()> {
    // `/clear` ends a session and starts the next one in the same pane at once.
    if reason == Some("clear") {
        return Ok(());
    }
    peer::update(spool, &peer.name, |pr| {
        pr.online = false;
        pr.turn = Turn::default();
        pr.queued_turns.clear();
        pr.last_activity_ms = now_ms();
        true
    })?;
    fail_delivered(
        spool,
        &peer.name,
        "the peer's session ended before it answered",
    )
}

/// Fails every ask already typed into `name`'s pane and not answered.
fn fail_delivered(spool: &Spool, name: &str, why: &str) -> Result<()> {
    for m in message::inbox(spool, name)? {
        if m.state == State::Delivered {
            message::finish(
                spool,
                name,
                &m.id,
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
