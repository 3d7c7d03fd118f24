//! `repowire gc`: prunes what the spool no longer needs. Finished messages and their answers
//! older than the cut-off go, except an answer nobody has received yet (no
//! `responses/ID.read`), which stays with its message; so do the history's days that ended
//! before the cut-off; temporary files left by killed writers and lock files of finished
//! questions go; open messages and peers stay.
//!
//! Housekeeping runs it by itself: at most once a day a session-start hook starts
//! `repowire gc --older-than KEEP` in the background (`keep` in config.yaml; zero keeps
//! everything), with `.housekeeping` in the spool saying when it last did.

use std::fs;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::message::{self, Kind};
use crate::spool::Spool;
use crate::time::now_ms;

/// Housekeeping runs at most this often.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(86_400);
const STAMP: &str = ".housekeeping";

/// Temporary files older than this were left by a writer that died.
const STALE_TMP: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub messages: usize,
    pub responses: usize,
    pub temp_files: usize,
    pub lock_files: usize,
    /// History files (days) removed.
    pub history_days: usize,
    /// Answers older than the cut-off kept because nobody has received them.
    pub unread_kept: usize,
}

pub fn run(spool: &Spool, older_than: Duration) -> Result<Report> {
    let mut r = Report::default();
    let cutoff = now_ms().saturating_sub(older_than.as_millis() as u64);
    for id in spool.list("done")? {
        let Some(m) = message::load(spool, &id)? else {
            continue;
        };
        if m.finished_ms.unwrap_or(m.created_ms) < cutoff {
            let answer = spool.path(&format!("responses/{id}.json"));
            if m.kind == Kind::Ask && answer.exists() && !message::read_marker(spool, &id).exists()
            {
                r.unread_kept += 1;
                continue;
            }
            if remove(&answer) {
                r.responses += 1;
            }
            remove(&message::read_marker(spool, &id));
            if remove(&spool.path(&format!("done/{id}.json"))) {
                r.messages += 1;
            }
        }
    }
    // Answers whose message is gone (removed by hand, or a crash between the two removals).
    for id in spool.list("responses")? {
        if message::load(spool, &id)?.is_none()
            && remove(&spool.path(&format!("responses/{id}.json")))
        {
            remove(&message::read_marker(spool, &id));
            r.responses += 1;
        }
    }
    // The history: `log/YYYY-MM-DD.jsonl`, one file a day, removed once its day is over and
    // older than the cut-off.
    for entry in fs::read_dir(spool.path("log"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let day_end = name
            .strip_suffix(".jsonl")
            .and_then(crate::time::parse_date)
            .map(|start| start + 86_400_000);
        if day_end.is_some_and(|end| end <= cutoff) && remove(&spool.path(&format!("log/{name}"))) {
            r.history_days += 1;
        }
    }
    let now = SystemTime::now();
    for entry in fs::read_dir(spool.path("tmp"))? {
        let entry = entry?;
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TMP);
        if old && remove(&entry.path()) {
            r.temp_files += 1;
        }
    }
    for entry in fs::read_dir(spool.path("queue"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".lock") else {
            continue;
        };
        if id.starts_with('.') {
            continue;
        }
        let open = message::load(spool, id)?.is_some_and(|m| m.state.is_open());
        let rel = format!("queue/{name}");
        if !open && !spool.is_locked(&rel) && remove(&spool.path(&rel)) {
            r.lock_files += 1;
        }
    }
    Ok(r)
}

/// Whether housekeeping is due: never run in this spool, or last run a day ago or more.
pub fn housekeeping_due(spool: &Spool) -> bool {
    let last = fs::metadata(spool.path(STAMP)).and_then(|m| m.modified());
    last.ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age >= HOUSEKEEPING_EVERY)
}

/// Starts `repowire gc --older-than KEEP` in the background, detached, when housekeeping is
/// due and `keep` is not zero, and records that it did; returns at once. At most one process
/// starts it per day, whoever takes `.housekeeping.lock` first.
pub fn start_housekeeping(spool: &Spool, keep: Duration) -> Result<()> {
    if keep.is_zero() || !housekeeping_due(spool) {
        return Ok(());
    }
    let Some(_lock) = spool.try_lock(".housekeeping.lock")? else {
        return Ok(()); // another session starts it
    };
    if !housekeeping_due(spool) {
        return Ok(());
    }
    let stamp = spool.path(STAMP);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let f = crate::spool::open_private(
            &stamp,
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600),
        )?;
        // The write sets its mtime, which is what counts.
        std::io::Write::write_all(&mut &f, format!("{}\n", now_ms()).as_bytes())?;
    }
    let keep = match keep.as_secs() {
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s => format!("{}s", s.max(1)),
    };
    crate::process::start_helper(&["gc", "--older-than", &keep], spool.root())?;
    Ok(())
}

fn remove(path: &std::path::Path) -> bool {
    fs::remove_file(path).is_ok()
}
