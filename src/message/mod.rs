//! Messages between peers: questions (asks), notifications and broadcasts.
//!
//! A message lives in `queue/ID.json` while it is open (queued or delivered) and moves to
//! `done/ID.json` when it is finished (answered, expired, cancelled or failed); an answer is
//! `responses/ID.json`, written once. Every change of a message to peer P happens under P's lock
//! `peers/P.lock`; new messages are published under `queue/.send.lock`, which also makes the
//! deadlock check and the id order (the delivery order) atomic.
//!
//! What reaches the peer's pane is [`prompt_text`] (`prompt`): a header line that only
//! repowire writes, then the text with every control character made visible and inert. The
//! deadlock check is `deadlock`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use crate::history::Kind;
use crate::history::{self, Entry, Event};
use crate::peer::{Peer, USER, validate_name};
use crate::spool::{Spool, Staged, new_id};
use crate::time::now_ms;

mod deadlock;
mod prompt;

use deadlock::find_cycle;
pub use deadlock::waiting_on;
pub use prompt::{header, neutralize, parse_header, prompt_text};

/// Largest message text accepted, in bytes. Text is typed into a terminal at a few KB/s, and
/// an agent reads long pastes badly: longer content belongs in a file whose path is sent.
pub const MAX_TEXT: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for the peer to be idle.
    Queued,
    /// Typed into the peer's pane.
    Delivered,
    /// The answer is in `responses/ID.json`.
    Answered,
    /// A notification or broadcast the peer's agent took as a prompt.
    Received,
    /// Its deadline passed before it could be delivered; withdrawn.
    Expired,
    /// Withdrawn by its asker before it was delivered.
    Cancelled,
    /// Could not be delivered or answered; `error` says why.
    Failed,
}

impl From<State> for Event {
    fn from(s: State) -> Event {
        match s {
            State::Queued => Event::Sent,
            State::Delivered => Event::Delivered,
            State::Answered => Event::Answered,
            State::Received => Event::Received,
            State::Expired => Event::Expired,
            State::Cancelled => Event::Cancelled,
            State::Failed => Event::Failed,
        }
    }
}

/// Appends `event` of message `m` to the history (`answer` with `answered`).
pub fn log(spool: &Spool, event: Event, m: &Message, answer: Option<&str>) {
    history::append(
        spool,
        &Entry {
            ts_ms: now_ms(),
            event,
            id: m.id.clone(),
            kind: m.kind,
            from: m.from.clone(),
            to: m.to.clone(),
            text: match event {
                Event::Sent => Some(m.text.clone()),
                Event::Answered => answer.map(str::to_string),
                _ => None,
            },
            // An answer that comes after its question was given up on is still an answer.
            error: (event != Event::Answered)
                .then(|| m.error.clone())
                .flatten(),
        },
    );
}

impl State {
    pub fn is_open(self) -> bool {
        matches!(self, State::Queued | State::Delivered)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub kind: Kind,
    pub from: String,
    pub to: String,
    pub text: String,
    pub created_ms: u64,
    /// Not delivered after this, it expires (asks only).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// The asking process, while it waits (informational; liveness is its lock).
    #[serde(default)]
    pub asker_pid: Option<u32>,
    pub state: State,
    #[serde(default)]
    pub delivered_ms: Option<u64>,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    /// For a question from another host: the askers (`NAME@HOST`) waiting on its asker, as
    /// that host sent them; part of the waits the deadlock check follows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// Answered by a read-only fork of the peer's session (see `fork`), never typed into its
    /// pane: not in its inbox, and no wait on the peer itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fork: bool,
}

/// The answer to an ask, `responses/ID.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub id: String,
    /// The peer that answered.
    pub from: String,
    /// The asker.
    pub to: String,
    pub text: String,
    pub created_ms: u64,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub prompt_id: Option<String>,
}

/// `queue/ID.json`: an open message. Every change to it, to the end of its life, shows there.
pub fn queue_path(spool: &Spool, id: &str) -> PathBuf {
    spool.path(&format!("queue/{id}.json"))
}

fn done_path(spool: &Spool, id: &str) -> PathBuf {
    spool.path(&format!("done/{id}.json"))
}

/// The lock an asker holds while it waits for `id`: how the deadlock check knows it waits.
pub fn waiter_lock(id: &str) -> String {
    format!("queue/{id}.lock")
}

/// Checks an id given by a user before it is used in a path.
pub fn validate_id(id: &str) -> Result<(), Error> {
    if id.len() == 26 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "invalid query id {:?}: ids are 26 letters and digits, as printed by `peer ask --no-wait`",
            id.chars().take(40).collect::<String>()
        )))
    }
}

/// Loads a message wherever it is (finished records win over a stale open copy).
pub fn load(spool: &Spool, id: &str) -> Result<Option<Message>> {
    // The open copy first: a message is written to done/ before it leaves queue/, so in this
    // order one that finishes meanwhile is still found.
    let open = read(spool, &queue_path(spool, id), id)?;
    if let Some(m) = read(spool, &done_path(spool, id), id)? {
        return Ok(Some(m));
    }
    Ok(open)
}

/// The message record at `path`, which must be message `id`'s. Its id, sender and addressee
/// name files and locks, so a record whose id is not its file's, or whose peer names are no
/// names, is moved aside as unusable.
fn read(spool: &Spool, path: &Path, id: &str) -> Result<Option<Message>> {
    let Some(m) = spool.read_json::<Message>(path)? else {
        return Ok(None);
    };
    let why = if m.id != id {
        Some("its id is not its file's")
    } else if validate_name(&m.to).is_err() {
        Some("it is addressed to no valid peer name")
    } else if !(m.from == USER
        || validate_name(&m.from).is_ok()
        || m.from
            .split_once('@')
            .is_some_and(|(n, _)| n == USER || validate_name(n).is_ok()))
    {
        Some("it is from no valid peer name")
    } else {
        None
    };
    match why {
        Some(why) => {
            spool.quarantine(path, why);
            Ok(None)
        }
        None => Ok(Some(m)),
    }
}

/// Reads every message and answer record, so that each one that cannot be used is moved
/// aside (see `Spool::read_json`): how `repowire status` finds them all.
pub fn read_all(spool: &Spool) -> Result<()> {
    for dir in ["queue", "done"] {
        for id in spool.list(dir)? {
            read(spool, &spool.path(&format!("{dir}/{id}.json")), &id)?;
        }
    }
    for id in spool.list("responses")? {
        load_response(spool, &id)?;
    }
    Ok(())
}

pub fn load_response(spool: &Spool, id: &str) -> Result<Option<Response>> {
    let path = spool.path(&format!("responses/{id}.json"));
    match spool.read_json::<Response>(&path)? {
        Some(r) if r.id != id => {
            spool.quarantine(&path, "its id is not its file's");
            Ok(None)
        }
        r => Ok(r),
    }
}

/// `responses/ID.read`: the empty file that says someone received the answer to `id` (the
/// asker, `peer wait`, `get_answer`). Housekeeping never removes an answer without it. Not
/// synced: lost, it only keeps an answer longer.
pub fn read_marker(spool: &Spool, id: &str) -> PathBuf {
    spool.path(&format!("responses/{id}.read"))
}

/// Marks the answer to `id` as received (see [`read_marker`]); best effort.
pub fn mark_read(spool: &Spool, id: &str) {
    let path = read_marker(spool, id);
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = crate::spool::open_private(
            &path,
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .mode(0o600),
        );
    }
}

/// Every open message, oldest first.
pub fn open_messages(spool: &Spool) -> Result<Vec<Message>> {
    let mut out = Vec::new();
    for id in spool.list("queue")? {
        if let Some(m) = read(spool, &queue_path(spool, &id), &id)? {
            // A copy left behind by a crash between moving it to done/ and unlinking it here.
            if m.state.is_open() && !done_path(spool, &id).exists() {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Open messages to be typed into `to`'s pane, oldest first (questions to its forks are not).
pub fn inbox(spool: &Spool, to: &str) -> Result<Vec<Message>> {
    Ok(open_messages(spool)?
        .into_iter()
        .filter(|m| m.to == to && !m.fork)
        .collect())
}

/// Checks text to be sent: not empty, not too long.
pub fn validate_text(text: &str) -> Result<(), Error> {
    if text.trim().is_empty() {
        return Err(Error::BadInput(
            "the message is empty; say something".into(),
        ));
    }
    if text.len() > MAX_TEXT {
        return Err(too_long(Some(text.len())));
    }
    Ok(())
}

/// The error for a message over [`MAX_TEXT`] bytes (`len` when known).
pub fn too_long(len: Option<usize>) -> Error {
    let size = len.map_or(String::new(), |l| format!("{l} bytes, "));
    Error::BadInput(format!(
        "the message is {size}more than the {MAX_TEXT} bytes (32 KiB) that can be typed into a pane; write the content to a file and send its path"
    ))
}

/// A new message, not yet published.
pub struct Draft<'a> {
    pub kind: Kind,
    pub from: &'a str,
    pub to: &'a str,
    pub text: &'a str,
    pub deadline_ms: Option<u64>,
    /// See [`Message::chain`].
    pub chain: &'a [String],
    /// See [`Message::fork`].
    pub fork: bool,
}

/// Publishes a message into `to`'s queue. For an ask, refuses one that would close a cycle of
/// peers waiting on each other (a fork waits on nobody, and nobody on it, so never one to a
/// fork). The returned guard (asks only) is the asker's waiter lock:
/// hold it while waiting.
pub fn send(spool: &Spool, d: &Draft<'_>) -> Result<(Message, Option<crate::spool::Lock>)> {
    validate_text(d.text)?;
    let _send = spool.lock("queue/.send.lock")?;
    if d.kind == Kind::Ask
        && d.from != USER
        && !d.fork
        && let Some(cycle) = find_cycle(spool, d.from, d.to, d.chain)?
    {
        return Err(Error::Deadlock {
            peer: d.from.to_string(),
            cycle,
        }
        .into());
    }
    let id = next_id(spool)?;
    let waiter = match d.kind {
        Kind::Ask => Some(spool.lock(&waiter_lock(&id))?),
        _ => None,
    };
    let msg = Message {
        id: id.clone(),
        kind: d.kind,
        from: d.from.to_string(),
        to: d.to.to_string(),
        text: d.text.to_string(),
        created_ms: now_ms(),
        deadline_ms: d.deadline_ms,
        asker_pid: (d.kind == Kind::Ask).then(std::process::id),
        state: State::Queued,
        delivered_ms: None,
        finished_ms: None,
        error: None,
        chain: d.chain.to_vec(),
        fork: d.fork,
    };
    spool.write_json(&queue_path(spool, &id), &msg)?;
    log(spool, Event::Sent, &msg, None);
    Ok((msg, waiter))
}

/// A new id greater than every open message's, so that ids give the delivery order even for
/// messages sent in the same millisecond. Called under `queue/.send.lock`.
fn next_id(spool: &Spool) -> Result<String> {
    let id = ulid::Ulid::from_string(&new_id())?;
    let last = spool
        .list("queue")?
        .last()
        .and_then(|l| ulid::Ulid::from_string(l).ok());
    Ok(match last {
        Some(last) if last >= id => last.increment().unwrap_or(id),
        _ => id,
    }
    .to_string())
}

/// Changes an open message to `to` under `to`'s lock. `f` sees the current record and returns
/// false to leave it. A message that reaches a finished state moves to `done/`.
/// Returns the record after the change, `None` if the message is not open any more.
pub fn update(
    spool: &Spool,
    to: &str,
    id: &str,
    f: impl FnOnce(&mut Message) -> bool,
) -> Result<Option<Message>> {
    let _lock = spool.lock(&crate::peer::lock_name(to))?;
    update_locked(spool, id, f)
}

/// [`update`] for a caller that already holds the peer's lock.
pub fn update_locked(
    spool: &Spool,
    id: &str,
    f: impl FnOnce(&mut Message) -> bool,
) -> Result<Option<Message>> {
    let qp = queue_path(spool, id);
    let Some(mut m) = read(spool, &qp, id)? else {
        return Ok(None);
    };
    if !m.state.is_open() || !f(&mut m) {
        return Ok(Some(m));
    }
    if m.state.is_open() {
        spool.write_json(&qp, &m)?;
    } else {
        m.finished_ms = Some(now_ms());
        let staged = spool.stage(&record_bytes(&m)?)?;
        move_to_done(spool, id, staged)?;
    }
    Ok(Some(m))
}

fn record_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Puts the finished record of open message `id`, staged, in `done/`, and takes it out of
/// the queue.
fn move_to_done(spool: &Spool, id: &str, staged: Staged) -> Result<()> {
    let dest = done_path(spool, id);
    staged
        .place(&dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    std::fs::remove_file(queue_path(spool, id))
        .context("cannot remove finished message from the queue")?;
    let _ = std::fs::remove_file(spool.path(&waiter_lock(id)));
    Ok(())
}

/// Finishes an open message with `state` and an optional error, and logs it: only if it is
/// still in state `only_from` (any open state when `None`). Returns the record as it is after,
/// `None` if there is no such message.
pub fn finish(
    spool: &Spool,
    to: &str,
    id: &str,
    only_from: Option<State>,
    state: State,
    error: Option<String>,
) -> Result<Option<Message>> {
    let _lock = spool.lock(&crate::peer::lock_name(to))?;
    finish_locked(spool, id, only_from, state, error)
}

/// [`finish`] for a caller that already holds the peer's lock.
pub fn finish_locked(
    spool: &Spool,
    id: &str,
    only_from: Option<State>,
    state: State,
    error: Option<String>,
) -> Result<Option<Message>> {
    let mut changed = false;
    let m = update_locked(spool, id, |m| {
        if only_from.is_some_and(|from| from != m.state) {
            return false;
        }
        m.state = state;
        m.error = error.clone();
        changed = true;
        true
    })?;
    if let Some(m) = m.as_ref().filter(|_| changed) {
        log(spool, Event::from(state), m, None);
    }
    Ok(m)
}

/// Stores the answer to ask `id` (once) and finishes the message as answered; the caller
/// holds the peer's lock. Returns false if an answer was already stored.
pub fn answer(
    spool: &Spool,
    peer: &Peer,
    msg: &Message,
    text: &str,
    prompt_id: Option<&str>,
) -> Result<bool> {
    let resp = Response {
        id: msg.id.clone(),
        from: peer.name.clone(),
        to: msg.from.clone(),
        text: text.to_string(),
        created_ms: now_ms(),
        session_id: peer.session_id.clone(),
        prompt_id: prompt_id.map(str::to_string),
    };
    let answer = record_bytes(&resp)?;
    let answer_path = spool.path(&format!("responses/{}.json", msg.id));
    // The message as it will be finished, staged with the answer: the two writes overlap.
    let finished = read(spool, &queue_path(spool, &msg.id), &msg.id)?
        .filter(|m| m.state.is_open())
        .map(|mut m| {
            m.state = State::Answered;
            m.finished_ms = Some(now_ms());
            m
        });
    let (staged_answer, staged_done) = match &finished {
        Some(m) => {
            let [a, d] = spool.stage_all([&answer, &record_bytes(m)?])?;
            (a, Some(d))
        }
        None => (spool.stage(&answer)?, None),
    };
    let fresh = staged_answer
        .place_new(&answer_path)
        .context("cannot store the answer")?;
    if fresh {
        log(spool, Event::Answered, msg, Some(text));
    }
    if let Some(d) = staged_done {
        move_to_done(spool, &msg.id, d)?;
    }
    Ok(fresh)
}
