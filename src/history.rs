//! The history: `log/YYYY-MM-DD.jsonl`, one JSON object per line for every message sent,
//! delivered, answered or given up on. Append-only; each line is one `write` to a file opened
//! with `O_APPEND` under `log/.lock`, so lines from concurrent processes never interleave. A line
//! cut short (by a full disk, or a writer killed mid-write) is removed before the next is written.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use serde::{Deserialize, Serialize};

use crate::spool::Spool;

/// What a message is; its history entries carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ask,
    Notify,
    Broadcast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Sent,
    Delivered,
    /// A fork of the peer's session started answering it (where `delivered` would be).
    Forked,
    Answered,
    Received,
    Expired,
    /// The asker withdrew the question; when the peer already had it, the message stays
    /// delivered and its answer is still stored.
    Cancelled,
    Failed,
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
pub fn append(spool: &Spool, entry: &Entry) {
    if let Err(e) = write(spool, entry) {
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
        OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .mode(0o600),
    )?;
    let len = whole_lines(&f)?;
    if let Err(e) = f.write_all(&line) {
        // A full disk can take part of the line: cut it off, or the next line would be glued
        // to it and both lost to readers.
        let _ = f.set_len(len);
        return Err(crate::spool::explain_full(e));
    }
    Ok(())
}

/// The length of the file's whole lines, after cutting off a line that a writer killed in the
/// middle of its `write` left unfinished (readers never show it, and the next line must not be
/// glued to it).
fn whole_lines(f: &std::fs::File) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata()?.len();
    let mut last = [0u8];
    if len == 0 || (f.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n') {
        return Ok(len);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = len;
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        end = start;
    };
    f.set_len(keep)?;
    Ok(keep)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_left_unfinished_is_cut_off_before_the_next() {
        let t = tempfile::tempdir().unwrap();
        let spool = Spool::open(t.path()).unwrap();
        let entry = |id: &str| Entry {
            ts_ms: 0,
            event: Event::Sent,
            id: id.into(),
            kind: Kind::Notify,
            from: "a".into(),
            to: "b".into(),
            text: None,
            error: None,
        };
        write(&spool, &entry("one")).unwrap();
        let path = files(&spool).unwrap().remove(0);
        // A writer killed in the middle of its line, longer than one read block.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&vec![b'x'; 100_000]).unwrap();
        write(&spool, &entry("two")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Entry>(l).unwrap().id)
            .collect();
        assert_eq!(ids, ["one", "two"]);
    }
}
