//! The history: `log/YYYY-MM-DD.jsonl`, one JSON object per line for every message sent,
//! delivered, answered or given up on. Append-only; each line is one `write` to a file opened
//! with `O_APPEND` under `log/.lock`, so lines from concurrent processes never interleave, and a
//! line a full disk cuts short is removed again.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use crate::message::{Kind, Message, State};
use crate::spool::{Spool, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Sent,
    Delivered,
    Answered,
    Received,
    Expired,
    /// The asker withdrew the question; when the peer already had it, the message stays
    /// delivered and its answer is still stored.
    Cancelled,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub ts_ms: u64,
    pub event: Event,
    pub id: String,
    pub kind: Kind,
    pub from: String,
    pub to: String,
    /// The message text for `sent`, the answer for `answered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Appends one entry. The history is a record, not a source of truth, so a failure to write it
/// is reported on stderr and never stops the message itself.
pub fn append(spool: &Spool, event: Event, m: &Message, answer: Option<&str>) {
    let entry = Entry {
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
    };
    if let Err(e) = write(spool, &entry) {
        eprintln!("repowire: cannot write the history: {e}");
    }
}

fn write(spool: &Spool, entry: &Entry) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry)?;
    line.push(b'\n');
    let (y, mo, d) = crate::time::civil_date(entry.ts_ms);
    let path = spool.path(&format!("log/{y:04}-{mo:02}-{d:02}.jsonl"));
    let _lock = spool.lock("log/.lock")?;
    let mut f = crate::spool::open_private(
        &path,
        OpenOptions::new().create(true).append(true).mode(0o600),
    )?;
    let len = f.metadata()?.len();
    if let Err(e) = f.write_all(&line) {
        // A full disk can take part of the line: cut it off, or the next line would be glued
        // to it and both lost to readers.
        let _ = f.set_len(len);
        return Err(crate::spool::explain_full(e));
    }
    Ok(())
}

/// The log files, oldest first.
pub fn files(spool: &Spool) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out: Vec<_> = std::fs::read_dir(spool.path("log"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "jsonl")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    Ok(out)
}
