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
//! The payloads differ in a few field names ([`Agent`] knows them); this module only turns
//! them into the events of one session model (`session`), which does the rest. OpenCode runs
//! no hooks: repowire's plugin for it (`agents/opencode.js`) runs these with payloads in
//! Claude Code's field names. A turn cut short with Esc is never taken for
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
use crate::peer::{self, Peer};
use crate::session;
use crate::spool::Spool;

/// The most of a payload kept; the rest is read and dropped so the writer is never blocked.
/// A hook must stay small (see GUIDE.md's figures): an answer longer than this is not passed
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
    if session::headless(agent) {
        return Ok(());
    }
    let spool = Spool::open(home)?;
    // Not a peer (e.g. not in tmux): nothing to do.
    let peer = || find_peer(&spool, agent, field(p, "session_id"));
    let transcript = field(p, "transcript_path").map(Path::new);
    let turn_id = agent.turn_id(p);
    match event {
        Event::SessionStart => {
            let cwd = field(p, "cwd")
                .map(PathBuf::from)
                .filter(|c| c.is_absolute());
            session::started(&spool, agent, field(p, "session_id"), cwd, transcript)
        }
        Event::Prompt => peer()?.map_or(Ok(()), |peer| {
            session::prompted(&spool, &peer, turn_id, field(p, "prompt"), transcript)
        }),
        Event::Stop => peer()?.map_or(Ok(()), |peer| {
            session::stopped(&spool, &peer, turn_id, || end_of_turn(agent, p))
        }),
        Event::Interrupt => peer()?.map_or(Ok(()), |peer| {
            session::stopped(&spool, &peer, turn_id, || TurnEnd::Interrupted)
        }),
        // `/clear` ends a session and starts the next one in the same pane at once.
        Event::SessionEnd if field(p, "reason") == Some("clear") => Ok(()),
        Event::SessionEnd => {
            peer()?.map_or(Ok(()), |peer| session::ended(&spool, &peer, transcript))
        }
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
